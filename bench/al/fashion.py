"""The derived multi-class set: real Fashion-MNIST product photos (28x28, light on black) pasted
onto real photos and textures bundled with scikit-image. The labels are exact because every box
is measured from the pasted masks.

What makes it a task to learn rather than a lookup: 16..96 px objects on busy backgrounds, each
item tinted and lit differently, low-contrast texture patches, light blobs and item fragments
that are not objects, occlusion (an object less than half visible loses its label), a class
imbalance of about 10:1 in the pool (the test set is balanced), and near-copies of pool images
(the same composition shifted, relit, noisier and recompressed) that share a ``group``.

The core (:func:`generate`) takes the item photos, their labels and the backgrounds as arrays, so
it runs on any crops; :func:`build` feeds it the Debian package's photos and skimage's images.
Same inputs and seed: byte-identical files.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from scipy import ndimage

from al.cache import CocoSplit, write_coco

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
# Fashion-MNIST's ten classes in label order, written as identifiers (YMIR class names end up in
# YAML and file names)
CLASS_NAMES = ("tshirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
               "ankle_boot")
# skimage.data images shipped inside the scikit-image wheel (they load with no network and no
# download cache; the others need pooch and a download) whose docstrings state CC0, public domain
# or no known copyright restrictions (moon, page and the Middlebury motorcycle state none: left out)
BACKGROUNDS = ("brick", "grass", "gravel", "camera", "coffee", "astronaut", "chelsea", "rocket", "coins",
               "immunohistochemistry", "hubble_deep_field", "retina", "text", "cell", "clock")
VARIANTS = ("detection", "rotated", "instance")
MASK_THRESHOLD = 0.1  # of an item's intensity (0..1): above it is the item (holes filled)
PAD = 8  # background margin for the near-copies' shifts


@dataclass(frozen=True)
class Settings:
    """What a generated image holds; ranges are inclusive ``(low, high)``."""

    size: int = 256
    objects: tuple[int, int] = (2, 8)
    scale: tuple[float, float] = (16.0, 96.0)  # side of the pasted 28 px frame, drawn log-uniformly
    textures: tuple[int, int] = (1, 4)  # low-contrast patches cut from other backgrounds
    blobs: tuple[int, int] = (0, 2)  # light blobs in the items' style that are not objects
    fragments: tuple[int, int] = (0, 2)  # strips of items keeping under 40 % of them: not objects
    imbalance: float = 10.0  # pool: the most common class over the least common
    dup_share: float = 0.2  # pool: the share of images that are near-copies of another pool image
    min_visible: float = 0.5  # an object keeps its label when at least this share of its mask shows


@dataclass
class Layer:
    """A pasted thing in its own frame: colour (0..255 RGB), alpha, mask, and where its top-left
    corner goes; ``category`` -1 for clutter. ``centre`` and ``angle`` place the item's unrotated
    frame (size ``frame``) for the rotated box."""

    colour: np.ndarray
    alpha: np.ndarray
    mask: np.ndarray
    x: int
    y: int
    category: int = -1
    angle: float = 0.0
    frame: tuple[float, float] = (0.0, 0.0)
    centre: tuple[float, float] = (0.0, 0.0)  # of the frame, in the layer's own pixels


@dataclass
class Scene:
    background: np.ndarray  # (size + 2 PAD) square, float32 RGB
    clutter: list[Layer] = field(default_factory=list)
    objects: list[Layer] = field(default_factory=list)
    noise: float = 0.0


@dataclass
class Rendered:
    jpeg: bytes
    scene: int  # index of the composition: near-copies share it
    annotations: list[dict[str, Any]]  # category_id, xyxy and the variant's keys
    items: tuple[int, ...] = ()  # indices of the item photos pasted (objects and fragments)


# --- loading the real inputs ---------------------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """An idx file (gzip) of unsigned bytes as an array of its shape."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an idx file of unsigned bytes (magic {data[:4].hex()})")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(dims):
        raise ValueError(f"{path}: {body.size} bytes of data for the shape {dims}")
    return body.reshape(dims)


def load_fashion(split: str, root: Path = FASHION_DIR) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 28, 28) uint8, labels (N,))`` of the ``train`` or ``test`` (t10k) split."""
    prefix = {"train": "train", "test": "t10k"}[split]
    paths = [root / f"{prefix}-images-idx3-ubyte.gz", root / f"{prefix}-labels-idx1-ubyte.gz"]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the Fashion-MNIST photos come from the Debian package "
                                    f"dataset-fashion-mnist (apt-get install dataset-fashion-mnist)")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise ValueError(f"{root}: {images.shape} images against {labels.shape} labels")
    return images, labels.astype(np.int64)


def load_backgrounds(names: Sequence[str] = BACKGROUNDS) -> list[np.ndarray]:
    """The named ``skimage.data`` images as uint8 RGB arrays."""
    import skimage.data  # only here: the generator itself runs on any arrays

    out = []
    for name in names:
        image = getattr(skimage.data, name)()
        image = image[0] if isinstance(image, tuple) else image
        out.append(as_rgb(image))
    return out


def as_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 RGB of a grey, RGB or RGBA image (bool and float images scaled to 0..255)."""
    image = np.asarray(image)
    if image.dtype == bool or image.dtype.kind == "f":
        image = np.clip(image.astype(np.float64) * 255, 0, 255)
    image = image.astype(np.uint8)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


# --- making the layers -----------------------------------------------------------------------------

def _soft(mask: np.ndarray) -> np.ndarray:
    """Alpha with a soft rim: 1 inside, about 0.75 on the mask's edge, 0.25 just outside (the mask
    stays the item's geometry when the alpha is scaled down for translucency)."""
    m = mask.astype(np.float32)
    return 0.5 * m + 0.5 * cv2.GaussianBlur(m, (0, 0), 0.8)


def _tint(rng: np.random.Generator) -> np.ndarray:
    """A colour (per-channel gain, the largest channel 1) times a brightness."""
    tint = rng.uniform(0.3, 1.0, 3)
    return tint / tint.max() * rng.uniform(0.55, 1.15)


def item_layer(item: np.ndarray, width: int, height: int, tint: np.ndarray, angle: float = 0.0) -> Layer:
    """An item photo resized to ``width`` x ``height``, its mask the thresholded intensity with holes
    filled, coloured by ``tint`` and rotated by ``angle`` (radians, clockwise on screen)."""
    v = cv2.resize(item.astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_LINEAR)
    mask = ndimage.binary_fill_holes(v > MASK_THRESHOLD)
    centre = ((width - 1) / 2, (height - 1) / 2)
    if angle:
        c, s = math.cos(angle), math.sin(angle)
        out_w = math.ceil(abs(width * c) + abs(height * s)) + 2
        out_h = math.ceil(abs(width * s) + abs(height * c)) + 2
        new_centre = ((out_w - 1) / 2, (out_h - 1) / 2)
        m = np.array([[c, -s, new_centre[0] - c * centre[0] + s * centre[1]],
                      [s, c, new_centre[1] - s * centre[0] - c * centre[1]]])
        v = cv2.warpAffine(v, m, (out_w, out_h), flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(mask.astype(np.float32), m, (out_w, out_h), flags=cv2.INTER_LINEAR) >= 0.5
        centre = new_centre
    colour = (0.15 + 0.85 * v)[:, :, None] * tint[None, None, :] * 255.0
    return Layer(colour.astype(np.float32), _soft(mask), mask, 0, 0, angle=angle, frame=(width, height),
                 centre=centre)


def _texture_layer(rng: np.random.Generator, backgrounds: Sequence[np.ndarray], size: int) -> Layer:
    """A patch of a background, faded to low contrast, in a soft ellipse."""
    src = backgrounds[rng.integers(len(backgrounds))]
    w, h = (int(v) for v in rng.integers(size // 10, size // 3, 2))
    side = int(min(src.shape[0], src.shape[1], rng.integers(24, 160)))
    y0, x0 = rng.integers(0, src.shape[0] - side + 1), rng.integers(0, src.shape[1] - side + 1)
    patch = cv2.resize(src[y0:y0 + side, x0:x0 + side].astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    mean = patch.mean(axis=(0, 1), keepdims=True)
    patch = mean + rng.uniform(0.4, 0.8) * (patch - mean)
    # an ellipse well inside the patch, blurred with a black border: it fades out before the edges
    ellipse = np.zeros((h, w), np.float32)
    cv2.ellipse(ellipse, (w // 2, h // 2), (max(w * 3 // 10, 1), max(h * 3 // 10, 1)), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(ellipse, (0, 0), max(w, h) / 12, borderType=cv2.BORDER_CONSTANT)
    alpha *= rng.uniform(0.35, 0.7) / max(float(alpha.max()), 1e-6)
    return Layer(patch, alpha, np.zeros((h, w), bool), 0, 0)


def _blob_layer(rng: np.random.Generator, settings: Settings) -> Layer:
    """A light, tinted blob of the items' size: smooth noise thresholded, not an object."""
    side = max(4, round(math.exp(rng.uniform(*np.log(settings.scale)))))
    noise = cv2.GaussianBlur(rng.random((side, side)).astype(np.float32), (0, 0), side / 6)
    yy, xx = np.mgrid[0:side, 0:side]
    falloff = 1 - np.hypot(yy - side / 2, xx - side / 2) / (side / 2)
    field_ = (noise - noise.mean()) / (noise.std() + 1e-6) * 0.3 + falloff
    mask = ndimage.binary_fill_holes(field_ > 0.35)
    shade = cv2.GaussianBlur(rng.random((side, side)).astype(np.float32), (0, 0), 1.5)
    v = 0.45 + 0.55 * (shade - shade.min()) / (np.ptp(shade) + 1e-6)
    colour = v[:, :, None] * _tint(rng)[None, None, :] * 255.0
    return Layer(colour.astype(np.float32), _soft(mask), mask, 0, 0)


def _fragment(layer: Layer, rng: np.random.Generator) -> Layer:
    """The strip of an item layer along one side that holds 15..35 % of its mask: what an item
    looks like when mostly hidden, and unlabelled like one."""
    axis, from_end = int(rng.integers(2)), bool(rng.integers(2))
    profile = layer.mask.sum(axis=1 - axis).astype(np.float64)
    profile = profile[::-1] if from_end else profile
    share = np.cumsum(profile) / max(profile.sum(), 1.0)
    cut = int(np.searchsorted(share, rng.uniform(0.15, 0.35))) + 1
    keep = np.zeros_like(layer.mask)
    index = [slice(None), slice(None)]
    index[axis] = slice(len(profile) - cut, None) if from_end else slice(0, cut)
    keep[tuple(index)] = True
    mask = layer.mask & keep
    return Layer(layer.colour, _soft(mask), mask, 0, 0)


def _background(rng: np.random.Generator, backgrounds: Sequence[np.ndarray], size: int) -> np.ndarray:
    """A random square crop of a background, flipped/turned, re-lit and colour-cast, PAD wider than
    the image on each side."""
    src = backgrounds[rng.integers(len(backgrounds))]
    short = min(src.shape[:2])
    side = int(rng.integers(min(short, max(size // 2, int(0.35 * short))), short + 1))
    y0, x0 = rng.integers(0, src.shape[0] - side + 1), rng.integers(0, src.shape[1] - side + 1)
    out = size + 2 * PAD
    bg = cv2.resize(src[y0:y0 + side, x0:x0 + side], (out, out),
                    interpolation=cv2.INTER_AREA if side > out else cv2.INTER_LINEAR).astype(np.float32)
    bg = np.rot90(bg, int(rng.integers(4)))
    if rng.integers(2):
        bg = bg[:, ::-1]
    mean = bg.mean()
    bg = (bg - mean) * rng.uniform(0.7, 1.1) + mean * rng.uniform(0.7, 1.2)
    return np.ascontiguousarray(bg * rng.uniform(0.75, 1.0, 3)[None, None, :], np.float32)


def _place(layer: Layer, rng: np.random.Generator, size: int) -> Layer:
    """``layer`` at a random place; up to 30 % of it may fall outside the image."""
    h, w = layer.mask.shape
    layer.x = int(rng.integers(-int(0.3 * w), size - int(0.7 * w) + 1))
    layer.y = int(rng.integers(-int(0.3 * h), size - int(0.7 * h) + 1))
    return layer


def make_scene(rng: np.random.Generator, items: np.ndarray, picks: Sequence[tuple[int, int]],
               fragment_items: Sequence[int], backgrounds: Sequence[np.ndarray], settings: Settings,
               rotate: bool) -> Scene:
    """One composition: the background, the clutter, then the objects ``picks`` (item index,
    category) in pasting order."""
    size = settings.size
    scene = Scene(_background(rng, backgrounds, size), noise=float(rng.uniform(0.0, 4.0)))

    def sized_item(index: int) -> Layer:
        side = math.exp(rng.uniform(*np.log(settings.scale)))
        stretch = math.exp(rng.uniform(-0.15, 0.15))
        angle = float(rng.uniform(-math.pi / 2, math.pi / 2)) if rotate else 0.0
        layer = item_layer(items[index], max(4, round(side * stretch)), max(4, round(side / stretch)), _tint(rng),
                           angle)
        layer.alpha *= rng.uniform(0.75, 1.0)  # some items let the background show through
        return layer

    for _ in range(int(rng.integers(settings.textures[0], settings.textures[1] + 1))):
        scene.clutter.append(_place(_texture_layer(rng, backgrounds, size), rng, size))
    for _ in range(int(rng.integers(settings.blobs[0], settings.blobs[1] + 1))):
        scene.clutter.append(_place(_blob_layer(rng, settings), rng, size))
    for index in fragment_items:
        scene.clutter.append(_place(_fragment(sized_item(index), rng), rng, size))
    for index, category in picks:
        layer = _place(sized_item(index), rng, size)
        layer.category = category
        scene.objects.append(layer)
    return scene


# --- rendering and measuring ------------------------------------------------------------------------

def _paste(canvas: np.ndarray, layer: Layer, x: int, y: int, owner: np.ndarray | None = None,
           index: int = -1) -> None:
    """Blends ``layer`` into ``canvas`` with its top-left at ``(x, y)``, clipped to the canvas; its
    mask pixels take over ``owner``."""
    h, w = layer.mask.shape
    x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + w, canvas.shape[1]), min(y + h, canvas.shape[0])
    if x1 >= x2 or y1 >= y2:
        return
    sub = (slice(y1 - y, y2 - y), slice(x1 - x, x2 - x))
    alpha = layer.alpha[sub][:, :, None]
    region = canvas[y1:y2, x1:x2]
    region *= 1 - alpha
    region += alpha * layer.colour[sub]
    if owner is not None:
        owner[y1:y2, x1:x2][layer.mask[sub]] = index


def _rbox(layer: Layer, ys: np.ndarray, xs: np.ndarray, x: int, y: int) -> list[float]:
    """The item-aligned box of the visible pixels ``(ys, xs)``: ``[cx, cy, w, h, angle]`` with w >= h
    and the angle in [-pi/2, pi/2) (mmrotate's le90), clockwise on screen."""
    cx0, cy0 = x + layer.centre[0], y + layer.centre[1]
    c, s = math.cos(layer.angle), math.sin(layer.angle)
    u = c * (xs - cx0) + s * (ys - cy0)
    v = -s * (xs - cx0) + c * (ys - cy0)
    u1, u2, v1, v2 = u.min() - 0.5, u.max() + 0.5, v.min() - 0.5, v.max() + 0.5
    um, vm = (u1 + u2) / 2, (v1 + v2) / 2
    # centre in pixel-edge coordinates (pixel i spans i..i+1)
    cx, cy = cx0 + c * um - s * vm + 0.5, cy0 + s * um + c * vm + 0.5
    w, h, angle = u2 - u1, v2 - v1, layer.angle
    if w < h:
        w, h, angle = h, w, angle + math.pi / 2
    angle = (angle + math.pi / 2) % math.pi - math.pi / 2
    return [float(cx), float(cy), float(w), float(h), float(angle)]


def _rle(mask: np.ndarray) -> dict[str, Any]:
    """The mask as COCO's compressed RLE (``counts`` a string): exact, and what YMIR takes for
    mask objects (it takes one polygon at most, and an occluded object's visible part may be in
    pieces)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def render(scene: Scene, settings: Settings, variant: str, rng: np.random.Generator, *, near_copy: bool = False,
           quality: int = 95) -> tuple[bytes, list[dict[str, Any]]]:
    """The JPEG of ``scene`` and its labelled objects (``rng`` draws the sensor noise). A
    ``near_copy`` has everything shifted by a few pixels, each object by one or two more, and is
    re-lit and noisier."""
    size = settings.size
    dx = dy = 0
    gain, noise = 1.0, scene.noise
    if near_copy:
        dx, dy = (int(v) for v in rng.integers(-6, 7, 2))
        gain, noise = float(rng.uniform(0.85, 1.15)), float(rng.uniform(2.0, 6.0))
    canvas = scene.background[PAD - dy:PAD - dy + size, PAD - dx:PAD - dx + size].copy()
    for layer in scene.clutter:
        _paste(canvas, layer, layer.x + dx, layer.y + dy)
    owner = np.full((size, size), -1, np.int16)
    places = []
    for k, layer in enumerate(scene.objects):
        jx, jy = (int(v) for v in rng.integers(-2, 3, 2)) if near_copy else (0, 0)
        places.append((layer.x + dx + jx, layer.y + dy + jy))
        _paste(canvas, layer, *places[-1], owner=owner, index=k)
    canvas *= gain
    canvas += rng.normal(0.0, noise, canvas.shape).astype(np.float32)
    image = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError("JPEG encoding failed")
    annotations = []
    for k, layer in enumerate(scene.objects):
        visible = owner == k
        ys, xs = np.nonzero(visible)
        if len(ys) < settings.min_visible * layer.mask.sum() or len(ys) == 0:
            continue
        annotation: dict[str, Any] = {"category_id": layer.category,
                                      "xyxy": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]}
        if variant == "rotated":
            annotation["rbox"] = _rbox(layer, ys, xs, *places[k])
        elif variant == "instance":
            annotation["segmentation"] = _rle(visible)
            annotation["area"] = float(len(ys))
        annotations.append(annotation)
    return buf.tobytes(), annotations


# --- a whole split ------------------------------------------------------------------------------------

def quotas(total: int, weights: np.ndarray) -> np.ndarray:
    """``total`` split in proportion to ``weights`` (largest remainders, ties to the lower index)."""
    share = total * weights / weights.sum()
    counts = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[:total - counts.sum()]] += 1
    return counts


def class_weights(n_classes: int, imbalance: float) -> np.ndarray:
    """Geometric decay from class 0 to the last, the first ``imbalance`` times the last."""
    return imbalance ** (-np.arange(n_classes) / max(n_classes - 1, 1))


def copy_plan(rng: np.random.Generator, n_images: int, share: float) -> list[int]:
    """How many near-copies each composition gets so that ``round(share * n_images)`` of the
    images are copies, 1 to 3 per copied composition."""
    copies = round(share * n_images)
    counts = [0] * (n_images - copies)
    if copies and not counts:
        raise ValueError(f"a near-copy share of {share} leaves no original among {n_images} images")
    left = copies
    for scene in rng.permutation(len(counts)):
        if left == 0:
            break
        counts[scene] = min(int(rng.integers(1, 4)), left)
        left -= counts[scene]
    if left:
        raise ValueError(f"a near-copy share of {share} is too high for {n_images} images (3 copies at most each)")
    return counts


def generate_split(items: np.ndarray, labels: np.ndarray, backgrounds: Sequence[np.ndarray], n_images: int,
                   rng: np.random.Generator, settings: Settings, *, balanced: bool,
                   variant: str = "detection") -> list[Rendered]:
    """``n_images`` rendered images: with ``balanced`` every class gets the same number of pasted
    objects and no image is a copy; otherwise the classes decay to ``1 / imbalance`` and
    ``dup_share`` of the images are near-copies (listed after their original, before shuffling)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: one of {', '.join(VARIANTS)}")
    n_classes = len(CLASS_NAMES)
    by_class = [np.flatnonzero(labels == c) for c in range(n_classes)]
    empty = [CLASS_NAMES[c] for c, found in enumerate(by_class) if not len(found)]
    if empty:
        raise ValueError(f"no item photos of the classes {', '.join(empty)}")
    plan = [0] * n_images if balanced else copy_plan(rng, n_images, settings.dup_share)
    counts = rng.integers(settings.objects[0], settings.objects[1] + 1, len(plan))
    weights = np.ones(n_classes) if balanced else class_weights(n_classes, settings.imbalance)
    sequence = np.repeat(np.arange(n_classes), quotas(int(counts.sum()), weights))
    rng.shuffle(sequence)
    starts = np.concatenate([[0], np.cumsum(counts)])
    out = []
    for scene_index, n_copies in enumerate(plan):
        classes = sequence[starts[scene_index]:starts[scene_index + 1]]
        picks = [(int(rng.choice(by_class[c])), int(c)) for c in classes]
        fragments = [int(rng.integers(len(items))) for _ in range(int(rng.integers(settings.fragments[0],
                                                                                  settings.fragments[1] + 1)))]
        scene = make_scene(rng, items, picks, fragments, backgrounds, settings, rotate=variant == "rotated")
        used = tuple(index for index, _ in picks) + tuple(fragments)
        jpeg, annotations = render(scene, settings, variant, rng)
        out.append(Rendered(jpeg, scene_index, annotations, used))
        for _ in range(n_copies):
            jpeg, annotations = render(scene, settings, variant, rng, near_copy=True,
                                       quality=int(rng.integers(55, 91)))
            out.append(Rendered(jpeg, scene_index, annotations, used))
    return out


def unused_items(items: tuple[np.ndarray, np.ndarray], rendered: Sequence[Rendered]) -> tuple[np.ndarray, np.ndarray]:
    """The item photos and labels of ``items`` that none of ``rendered`` pastes."""
    keep = np.setdiff1d(np.arange(len(items[1])), [i for r in rendered for i in r.items])
    return items[0][keep], items[1][keep]


def _info(seed: int, variant: str, settings: Settings) -> dict[str, Any]:
    kind = {"detection": "boxes", "rotated": "boxes and rotated boxes (rbox, le90)",
            "instance": "boxes and instance masks (RLE) of the visible parts"}[variant]
    low, high = settings.scale
    return {
        "description": f"DERIVED, synthetic compositions of real photos: Fashion-MNIST product photos pasted at "
                       f"{low:g}-{high:g} px onto scikit-image's bundled photos and textures, with clutter, "
                       f"occlusion, a {settings.imbalance:g}:1 class imbalance and {settings.dup_share:.0%} "
                       f"near-copies in the pool, a balanced test set; {kind} measured from the pasted masks",
        "source": "Fashion-MNIST (Zalando Research; Debian package dataset-fashion-mnist: train split for the pool, "
                  f"t10k for the test set); backgrounds: {', '.join(BACKGROUNDS)} from skimage.data (scikit-image "
                  f"wheel)",
        "license": "Fashion-MNIST: MIT; backgrounds: CC0 or public domain (no known copyright restrictions), "
                   "as each skimage.data function's docstring states",
        "derived": True,
        "seed": seed,
    }


def generate(folder: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
             backgrounds: Sequence[np.ndarray], *, seed: int, n_pool: int, n_test: int,
             settings: Settings | None = None, variant: str = "detection", source: int = 0) -> None:
    """Writes images/, pool.json and test.json into ``folder``: the pool from the ``train`` item
    photos (shuffled, near-copies sharing the group of the composition's first image), the test set
    from the ``test`` ones.

    With ``source`` > 0, pool.json holds instead ``source`` balanced images without near-copies,
    made only from the ``train`` photos that the pool of this seed does not paste: a set to
    pretrain a model on (as YMIR users start from COCO weights) that shares no item photo with the
    pool the loop labels from, and the same test set."""
    settings = settings or Settings()
    (folder / "images").mkdir(parents=True, exist_ok=True)
    categories = [{"id": i, "name": name} for i, name in enumerate(CLASS_NAMES)]
    splits = [("pool", train, n_pool, 0, False), ("test", test, n_test, 1, True)]
    if source:
        pool = generate_split(*train, backgrounds, n_pool, np.random.default_rng([seed, 0]), settings,
                              balanced=False, variant=variant)
        splits[0] = ("pool", unused_items(train, pool), source, 2, True)
    info = _info(seed, variant, settings)
    if source:
        info["description"] += (f"; pool.json is a pretraining source set of {source} balanced images whose item "
                                f"photos the pool of seed {seed} ({n_pool} images) does not use")
    first_id = 1
    for split_name, (items, labels), n_images, stream, balanced in splits:
        rng = np.random.default_rng([seed, stream])
        rendered = generate_split(items, labels, backgrounds, n_images, rng, settings, balanced=balanced,
                                  variant=variant)
        order = rng.permutation(len(rendered))
        split = CocoSplit(first_id)
        groups: dict[int, int] = {}
        for position, index in enumerate(order):
            r = rendered[index]
            image_id = first_id + position
            file_name = f"{split_name}_{position:05d}.jpg"
            (folder / "images" / file_name).write_bytes(r.jpeg)
            split.add_image(file_name, settings.size, settings.size, groups.setdefault(r.scene, image_id))
            for a in r.annotations:
                extra = {k: v for k, v in a.items() if k not in ("category_id", "xyxy")}
                split.add_box(image_id, a["category_id"], a["xyxy"], **extra)
        write_coco(folder / f"{split_name}.json", info, split.images, split.annotations, categories)
        first_id += len(rendered)


def build(folder: Path, *, seed: int, n_pool: int, n_test: int, variant: str = "detection",
          fashion_dir: Path = FASHION_DIR, source: int = 0) -> None:
    """:func:`generate` on the Debian package's photos and skimage's bundled images."""
    generate(folder, load_fashion("train", fashion_dir), load_fashion("test", fashion_dir), load_backgrounds(),
             seed=seed, n_pool=n_pool, n_test=n_test, variant=variant, source=source)
