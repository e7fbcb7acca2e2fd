"""Thumbnails of what a miner picked first, with their ground-truth boxes and scores: the quickest
way to see whether a miner goes after informative images, empty ones or near-duplicates."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from al.dataset import Dataset

TILE = 160


def picks_sheet(dataset: Dataset, ranked: Sequence[tuple[str, float]], out: Path, columns: int = 4) -> Path:
    """One PNG: the images of ``ranked`` (name, score) in order, each with its boxes, rank, score
    and near-duplicate group."""
    tiles = []
    for rank, (name, score) in enumerate(ranked, start=1):
        item = dataset.pool[name]
        image = cv2.imread(str(dataset.image_file(name)))
        if image is None:
            raise ValueError(f"{dataset.image_file(name)}: not readable")
        for x1, y1, x2, y2 in item.boxes.astype(int):
            cv2.rectangle(image, (x1, y1), (x2, y2), (0, 255, 255), 1)
        scale = TILE / max(image.shape[:2])
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)))
        tile = np.full((TILE + 18, TILE, 3), 255, np.uint8)
        tile[:image.shape[0], :image.shape[1]] = image
        cv2.putText(tile, f"#{rank} {score:.3g} g{item.group} n{len(item.boxes)}", (2, TILE + 13),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    if not tiles:
        tiles = [np.full((TILE + 18, TILE, 3), 255, np.uint8)]
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % columns)
    rows = [np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)]
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.vstack(rows))
    return out
