"""Read any image a YMIR dataset may hold as RGB uint8, with errors that name the file.

EXIF orientation is ignored on purpose: OpenCV's ``IMREAD_UNCHANGED`` does not apply it and
neither does :func:`image_size`, so pixel arrays and annotation coordinates stay in the same
(stored) frame that YMIR's annotations refer to.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ymir_base.errors import ImageFormatError

# Pillow refuses images above 2 * MAX_IMAGE_PIXELS (~179 M pixels by default) as "decompression
# bombs", even for a header read; remote-sensing datasets (mmrotate) exceed that. Dataset files come
# from the platform, so align Pillow with OpenCV's own default limit of 2**30 pixels.
Image.MAX_IMAGE_PIXELS = 2**30 // 2

# A small file that declares a huge image is a decompression bomb: decoding a 3 KB PNG that
# declares 30000 x 30000 pixels takes OpenCV 40 s and 8 GB before it finds the data missing. No
# complete image above BOMB_MIN_PIXELS packs more than this many decoded bytes into one byte of file
# (deflate, PNG's compression, tops out near 1032:1; JPEG far lower), so one that claims to is
# refused from its header alone. (A complete bomb within the pixel limit still decodes.)
BOMB_MIN_PIXELS = 2**24
MAX_DECODED_PER_FILE_BYTE = 1100

# ImportError: plugins other libraries register (ultralytics' HEIF opener needs pi_heif) fail
# on import when PIL tries them on a file no built-in plugin recognises.
_PIL_ERRORS = (OSError, ValueError, SyntaxError, ImportError, Image.DecompressionBombError)


def read_image(path: Path) -> np.ndarray:
    """Decode ``path`` to an ``H x W x 3`` RGB uint8 array.

    Grayscale is replicated to 3 channels, alpha is dropped (not composited), 16-bit samples are
    scaled by 1/257 so 65535 maps to 255. OpenCV decodes; Pillow is the fallback for formats
    OpenCV cannot read.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageFormatError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    if data.size == 0:
        raise ImageFormatError(f"image {path} is an empty file")
    _check_not_a_bomb(path, data.size)
    # Truncated files: OpenCV 4.12 (pinned) and Pillow both refuse them; tests/data pin that.
    try:
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        decoded = None
    if decoded is not None:
        return _to_rgb8(decoded, bgr=True, path=path)
    return _to_rgb8(_pil_decode(path), bgr=False, path=path)


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            width, height = im.size
    except _PIL_ERRORS as exc:
        raise ImageFormatError(f"cannot read the size of image {path}: {exc}") from exc
    if width <= 0 or height <= 0:
        raise ImageFormatError(f"image {path} has an invalid size {width}x{height}")
    return width, height


def _check_not_a_bomb(path: Path, file_bytes: int) -> None:
    try:
        with Image.open(path) as im:
            width, height = im.size
    except Image.DecompressionBombError as exc:  # above Pillow's own limit
        raise ImageFormatError(f"cannot decode image {path}: {exc}") from exc
    except _PIL_ERRORS:  # a format only OpenCV reads, or garbage: the decoders decide
        return
    pixels = width * height
    if pixels > BOMB_MIN_PIXELS and pixels * 3 > MAX_DECODED_PER_FILE_BYTE * file_bytes:
        raise ImageFormatError(f"image {path} declares {width}x{height} pixels in a file of {file_bytes} bytes, "
                               "more than any complete image packs: a decompression bomb or a truncated file")


def _pil_decode(path: Path) -> np.ndarray:
    """RGB(-ordered) array from Pillow; 16/32-bit integer grayscale kept as uint16."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode == "I" or im.mode.startswith("I;16"):
                return np.clip(np.asarray(im), 0, 65535).astype(np.uint16)
            return np.asarray(im.convert("RGB"))
    except _PIL_ERRORS as exc:
        raise ImageFormatError(f"cannot decode image {path}: {exc}") from exc


def _to_rgb8(img: np.ndarray, *, bgr: bool, path: Path) -> np.ndarray:
    if img.dtype == np.uint16:
        img = ((img.astype(np.float32) / 257.0) + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageFormatError(f"image {path} has unsupported pixel type {img.dtype}")
    if img.ndim == 3 and img.shape[2] in (1, 2):  # gray or gray + alpha
        img = img[:, :, 0]
    if img.ndim == 2:
        return np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2))
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ImageFormatError(f"image {path} has unsupported shape {img.shape}")
    rgb = img[:, :, 2::-1] if bgr else img[:, :, :3]
    return np.ascontiguousarray(rgb)
