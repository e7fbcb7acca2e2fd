"""``RSAL``: superpixel regions scored by uncertainty, class-balanced (Cai et al., "Revisiting
Superpixels for Active Learning in Semantic Segmentation with Realistic Annotation Costs", CVPR
2021), ranked per image as in the old YMIR mmsegmentation image (docs/mining.md §2.5).

Per image, at the resolution (h, w) of the predictor's ``semantic_probs`` [K, h, w]:

1. pixel uncertainty u = BvSB = p_(2) / p_(1) (``uncertainty_method``: BvSB is the only one);
2. superpixels of the RGB image resized to (h, w) with area interpolation
   (``superpixel_algorithm``, at most ``max_superpixel_per_image``, superpixels.py);
3. per region j: r_j = mean of u over its pixels and its dominant class c_j = the most frequent
   per-pixel argmax (ties: the lower class index), both in one ``np.bincount`` over all pixels,
   every label counted (the old port's loop skipped the last superpixel and cost O(S·H·W));
4. ``class_balance``: r_j *= exp(-p_{c_j}), p_c = the share of regions whose dominant class is c.
   The paper takes p_c over the whole pool, which a one-pass runner cannot know before it scores.
   Here p_c counts every region this process has segmented so far, this image's included, in
   candidate order (a running estimate): scores do not depend on the batch size and repeat for the
   same pool order. With several GPUs each rank keeps its own counts over its share;
5. image score = the sum of the ``topk_superpixel_score`` best r_j. Higher = label first.

Side output, for the ``max_kept_mining_image`` best images: /out/masks/<stem>.png, <stem> = the
candidate's file name without its extension (YMIR's asset id; ``a.jpg`` -> ``a.png``). It is a
one-channel 8-bit PNG at the original image size, 255 on the superpixels to label (the top-k
regions behind the score) and 0 elsewhere, upscaled from (h, w) by nearest neighbour. Only the
(h, w) mask, PNG-compressed, is kept in memory until the ranking is final (about a kilobyte each).

[DIFF] from the old port: no pool-wide percentile threshold adds further regions to the score or
the mask (it needs every region score of the pool before the first image is scored): the mask
holds exactly the regions that make the score; raise ``topk_superpixel_score`` for more per image.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch

from ymir_base.errors import ConfigError
from ymir_base.mining._common import param_bool, param_int
from ymir_base.mining._semantic import bvsb, probability_maps
from ymir_base.mining.base import AugmentPredictor, MiningAlgorithm, Scored, register
from ymir_base.mining.superpixels import check_algorithm, resize_area, superpixels
from ymir_base.prediction import SEMANTIC_PROBS, Prediction
from ymir_base.protocol.paths import file_name
from ymir_base.results.atomic import write_bytes_atomic

LOG = logging.getLogger(__name__)
UNCERTAINTY_METHODS = ("BvSB",)
MASK_DIR = "masks"


@dataclass(frozen=True)
class RegionMask:
    """The regions to label of one image: a PNG of the 0/1 mask at the maps' (h, w), and the
    original (H, W) it is written at."""

    png: bytes
    image_size: tuple[int, int]

    def full_size(self) -> np.ndarray:
        """The mask at (H, W), 0/255 uint8, nearest neighbour: pixel (y, x) takes the small
        mask's (y·h // H, x·w // W)."""
        small = cv2.imdecode(np.frombuffer(self.png, np.uint8), cv2.IMREAD_UNCHANGED)
        (h, w), (height, width) = small.shape, self.image_size
        rows = np.arange(height) * h // height
        cols = np.arange(width) * w // width
        return small[rows[:, None], cols[None, :]] * np.uint8(255)


@register
class RsalMining(MiningAlgorithm):
    name: ClassVar[str] = "RSAL"
    kinds: ClassVar[frozenset[str]] = frozenset({"semantic"})
    needs: ClassVar[frozenset[str]] = frozenset({SEMANTIC_PROBS})

    def __init__(self, params: Mapping[str, Any], class_names: Sequence[str]):
        super().__init__(params, class_names)
        self.superpixel_algorithm = check_algorithm(self.params.get("superpixel_algorithm", "slico"))
        method = self.params.get("uncertainty_method", "BvSB")
        if str(method).strip().lower() not in {m.lower() for m in UNCERTAINTY_METHODS}:
            raise ConfigError(f"uncertainty_method: unknown method {method!r}; choose one of: "
                              f"{', '.join(UNCERTAINTY_METHODS)}")
        self.max_superpixels = param_int(self.params, "max_superpixel_per_image", 1024, minimum=1)
        self.keep_side = param_int(self.params, "max_kept_mining_image", 5000, minimum=0)
        self.topk = param_int(self.params, "topk_superpixel_score", 3, minimum=1)
        self.class_balance = param_bool(self.params, "class_balance", True)
        self.class_counts = np.zeros(0, np.int64)  # regions per dominant class, so far

    @torch.no_grad()
    def score_batch(self, images: list[np.ndarray], predictions: list[Prediction] | None,
                    predictor: AugmentPredictor | None) -> list[Scored]:
        if predictions is None:
            raise ValueError("RSAL mining needs the predictions of the images")
        return [self.score_image(image, pred) for image, pred in zip(images, predictions, strict=True)]

    def score_image(self, image: np.ndarray, pred: Prediction) -> Scored:
        maps = probability_maps(pred, self.name)
        num_classes, h, w = maps.shape
        uncertainty = bvsb(maps).cpu().numpy().ravel().astype(np.float64)
        predicted = maps.argmax(dim=0).cpu().numpy().ravel()
        labels = superpixels(resize_area(image, (h, w)), self.superpixel_algorithm, self.max_superpixels)
        flat = labels.ravel()
        count = int(flat.max()) + 1
        area = np.bincount(flat, minlength=count)
        regions = np.bincount(flat, weights=uncertainty, minlength=count) / area
        votes = np.bincount(flat * num_classes + predicted, minlength=count * num_classes)
        dominant = votes.reshape(count, num_classes).argmax(axis=1)
        if self.class_balance:
            regions = regions * self._class_weights(dominant, num_classes)
        top = np.argsort(-regions, kind="stable")[:self.topk]
        chosen = np.zeros(count, np.uint8)
        chosen[top] = 1
        ok, png = cv2.imencode(".png", chosen[labels])
        if not ok:  # pragma: no cover - OpenCV always encodes a uint8 image
            raise RuntimeError("cannot encode a region mask")
        size = tuple(pred.image_size) if pred.image_size else image.shape[:2]
        return Scored(float(regions[top].sum()), RegionMask(png.tobytes(), (int(size[0]), int(size[1]))))

    def _class_weights(self, dominant: np.ndarray, num_classes: int) -> np.ndarray:
        """exp(-p_c) of each region's class, p_c over every region so far (this image's too)."""
        if len(self.class_counts) < num_classes:
            self.class_counts = np.pad(self.class_counts, (0, num_classes - len(self.class_counts)))
        self.class_counts += np.bincount(dominant, minlength=len(self.class_counts))
        shares = self.class_counts / self.class_counts.sum()
        return np.exp(-shares)[dominant]

    def write_side_outputs(self, kept: list[tuple[str, float, Any]], out_dir: Path) -> None:
        """/out/masks/<stem>.png for each kept image; a second candidate with the same stem
        (a.jpg and a.png) keeps the better one's mask, with a warning."""
        folder = Path(out_dir) / MASK_DIR
        written: set[str] = set()
        for asset, _, mask in kept:
            name = Path(file_name(str(asset).rsplit("/", 1)[-1], f"candidate {asset}: its name")).stem + ".png"
            if name in written:
                LOG.warning("RSAL: %s has the same mask name %s as a better-ranked candidate; not written",
                            asset, name)
                continue
            ok, png = cv2.imencode(".png", mask.full_size())
            if not ok:  # pragma: no cover
                raise RuntimeError(f"cannot encode the region mask of {asset}")
            write_bytes_atomic(folder / name, png.tobytes())
            written.add(name)
        LOG.info("RSAL: wrote %d region masks to %s", len(written), folder)
