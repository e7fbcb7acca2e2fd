"""Superpixels of an RGB image, at most ``max_count`` of them, as a label map.

Four methods, chosen by the ``superpixel_algorithm`` key:

- ``slico`` (default) and ``slic``: scikit-image's SLIC (``slic_zero=True`` is SLICO, which adapts
  the compactness per cluster; plain SLIC uses compactness 10 in CIELAB). Always available.
- ``mslic`` (manifold SLIC) and ``seeds``: OpenCV-contrib's ``cv2.ximgproc``
  (opencv-contrib-python-headless in the pinned stack, see docs/dependencies.md). Without it
  these two are a ConfigError naming what is missing.

slic/slico never go through OpenCV even where ximgproc exists, so that their labels do not depend
on which OpenCV wheel is installed.

Every method asks for ``max_count`` superpixels. The old YMIR image passed OpenCV's SLIC a region
size of ``2·sqrt(H·W / max)``, which gave about max/4 of them; here the key's meaning, an upper
bound, is the target [DIFF]. SLIC's connectivity step can add segments beyond the target (MSLIC's
count hardly follows its region size at all): a method that overshoots is rerun once with a
proportionally smaller target (not MSLIC), and what still overshoots is merged by the cell of a
regular grid of at most ``max_count`` cells that each superpixel's centroid falls in, so the
bound always holds and region borders stay superpixel borders. Labels are consecutive
``0 .. S-1`` (int32).

OpenCV 4.12's MSLIC and SEEDS crash or loop forever on some sizes (tiny or thin images, targets
too large for the image); :func:`_mslic` and :func:`_seeds_grid_fits` keep out of those cases and
fall back to slico, with a warning, where no safe setting exists.

Cost, measured on a busy 2-core machine for a 512 x 1024 image and 1024 superpixels: slico 1.4 s,
slic 1.2 s, seeds 0.7 s, mslic 17 s.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import cv2
import numpy as np

from ymir_base.errors import ConfigError

LOG = logging.getLogger(__name__)

SUPERPIXEL_ALGORITHMS = ("slico", "slic", "mslic", "seeds")
NEEDS_XIMGPROC = frozenset({"mslic", "seeds"})
ITERATIONS = 10
_SEEDS_LEVELS = 5  # with prior 3, 5 histogram bins and double step: the old image's settings


def has_ximgproc() -> bool:
    """Whether the installed cv2 is OpenCV-contrib's (mslic and seeds need it)."""
    return hasattr(cv2, "ximgproc")


def check_algorithm(value: object, key: str = "superpixel_algorithm") -> str:
    """The lower-case method named by the config value; ConfigError (300001) for an unknown
    one, or for mslic/seeds where ximgproc is missing."""
    name = str(value).strip().lower()
    if name not in SUPERPIXEL_ALGORITHMS:
        raise ConfigError(f"{key}: unknown superpixel algorithm {value!r}; choose one of: "
                          f"{', '.join(SUPERPIXEL_ALGORITHMS)}")
    if name in NEEDS_XIMGPROC and not has_ximgproc():
        raise ConfigError(f"{key}: {name} needs OpenCV-contrib's cv2.ximgproc "
                          "(opencv-contrib-python-headless), which this image lacks; "
                          "choose slico or slic")
    return name


def resize_area(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``size`` = (h, w) with area interpolation (a no-op at that size)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def superpixels(image: np.ndarray, algorithm: str, max_count: int) -> np.ndarray:
    """Label map [H, W] int32 with consecutive labels 0..S-1, 1 <= S <= max_count, of an RGB
    uint8 image (a 2-D image is taken as gray)."""
    algorithm = check_algorithm(algorithm)
    if max_count < 1:
        raise ConfigError(f"max_superpixel_per_image: must be >= 1, got {max_count}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    image = np.ascontiguousarray(image[:, :, :3], dtype=np.uint8)
    run = _METHODS[algorithm]
    labels, count = _consecutive(run(image, max_count))
    if count > max_count and algorithm != "mslic":  # MSLIC's count hardly follows its region size
        labels, count = _consecutive(run(image, max(1, math.floor(max_count * max_count / count))))
    if count > max_count:
        labels, count = merge_to_grid(labels, count, max_count)
    return labels


def merge_to_grid(labels: np.ndarray, count: int, max_count: int) -> tuple[np.ndarray, int]:
    """Superpixels merged by the cell of a regular grid of at most ``max_count`` cells their
    centroid falls in: at most ``max_count`` regions whose borders are still superpixel borders."""
    h, w = labels.shape
    side = _grid_side(h, w, max_count)
    ys, xs = np.indices((h, w))
    flat = labels.ravel()
    area = np.bincount(flat, minlength=count)
    cy = np.bincount(flat, weights=ys.ravel(), minlength=count) / area
    cx = np.bincount(flat, weights=xs.ravel(), minlength=count) / area
    cell = (cy // side).astype(np.int64) * math.ceil(w / side) + (cx // side).astype(np.int64)
    return _consecutive(cell[labels])


def _grid_side(h: int, w: int, max_count: int) -> int:
    """The smallest square cell side that tiles (h, w) in at most ``max_count`` cells."""
    side = max(1, math.ceil(math.sqrt(h * w / max_count)))
    while math.ceil(h / side) * math.ceil(w / side) > max_count:
        side += 1
    return side


def _consecutive(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels renumbered 0..S-1 in increasing order of the original ones, and S."""
    values, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(labels.shape).astype(np.int32), len(values)


def _skimage_slic(zero: bool) -> Callable[[np.ndarray, int], np.ndarray]:
    def run(image: np.ndarray, target: int) -> np.ndarray:
        from skimage.segmentation import slic

        return slic(image, n_segments=target, compactness=10.0, max_num_iter=ITERATIONS, slic_zero=zero,
                    start_label=0, channel_axis=-1, convert2lab=True, enforce_connectivity=True)

    return run


def _mslic(image: np.ndarray, target: int) -> np.ndarray:
    h, w = image.shape[:2]
    region = max(2, math.ceil(math.sqrt(h * w / target)))
    if 2 * region > min(h, w):
        # OpenCV 4.12's MSLIC crashes (segfault) with a region size of 1 or one larger than the
        # image's short side (seen from half of it on): tiny or very thin images
        LOG.warning("mslic cannot segment a %dx%d image into %d superpixels; using slico", w, h, target)
        return _METHODS["slico"](image, target)
    engine = cv2.ximgproc.createSuperpixelSLIC(cv2.cvtColor(image, cv2.COLOR_RGB2Lab),
                                               algorithm=cv2.ximgproc.MSLIC, region_size=region, ruler=10.0)
    engine.iterate(ITERATIONS)
    engine.enforceLabelConnectivity()
    return engine.getLabels()


def _seeds(image: np.ndarray, target: int) -> np.ndarray:
    h, w = image.shape[:2]
    # fewer superpixels than asked when the block grid does not fit, down to SEEDS' own minimum
    tries = [target] + [t for t in (target // 2 ** i for i in range(1, 8)) if t >= 10]
    target = next((t for t in tries if _seeds_grid_fits(h, w, t)), 0)
    if not target:
        LOG.warning("seeds cannot segment a %dx%d image; using slico", w, h)
        return _METHODS["slico"](image, tries[0])
    engine = cv2.ximgproc.createSuperpixelSEEDS(w, h, 3, target, _SEEDS_LEVELS, 3, 5, True)
    engine.iterate(cv2.cvtColor(image, cv2.COLOR_RGB2Lab), ITERATIONS)
    return engine.getLabels()


def _seeds_grid_fits(h: int, w: int, target: int) -> bool:
    """Whether OpenCV 4.12's SEEDS gets a usable block grid for this size and target.

    Its set-up (ximgproc seeds.cpp, initialize) clamps the target to >= 10, splits it into rows
    ``int(sqrt(n·h/w))`` and columns ``rows·w // h``, and drops levels until a level-0 block is
    at least one pixel. With fewer than 2 rows or columns, more rows or columns than pixels, a
    single level left or a top level thinner than 2 blocks it loops forever or segfaults (found
    by a sweep over sizes and targets); this mirrors that arithmetic to stay out of those cases.
    """
    n = max(target, 10)
    rows = int(math.sqrt(n * h / w))
    cols = rows * w // h
    if not (2 <= rows <= h and 2 <= cols <= w):
        return False
    levels = _SEEDS_LEVELS
    while w / cols / (1 << (levels - 1)) < 1 or h / rows / (1 << (levels - 1)) < 1:
        levels -= 1
    if levels < 2:
        return False
    block_w = math.ceil(w / cols / (1 << (levels - 1)))
    block_h = math.ceil(h / rows / (1 << (levels - 1)))
    return (w // block_w) >> (levels - 1) >= 2 and (h // block_h) >> (levels - 1) >= 2


_METHODS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "slico": _skimage_slic(zero=True), "slic": _skimage_slic(zero=False), "mslic": _mslic, "seeds": _seeds}
