"""The training curve is read from tensorboard events and drawn to a PNG."""

from __future__ import annotations

import cv2
import pytest

from ymir_base.demo.curve import loss_tags, plot_training_curve, read_scalars


def _events(folder, scalars):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(folder))
    for tag, values in scalars.items():
        for step, value in values:
            writer.add_scalar(tag, value, step)
    writer.close()


def test_scalars_come_back_by_tag_and_step(tmp_path):
    _events(tmp_path, {"train/box_loss": [(1, 0.5), (2, 0.25)], "metrics/mAP_0.5": [(2, 0.75), (1, 0.125)],
                       "val/box_loss": [(1, 0.4)]})
    series = read_scalars(tmp_path)
    assert series["metrics/mAP_0.5"] == [(1, 0.125), (2, 0.75)]
    assert series["train/box_loss"] == [(1, 0.5), (2, 0.25)]
    assert loss_tags(series) == ["train/box_loss"]


def test_a_resumed_run_replaces_the_repeated_step(tmp_path):
    # files are read in name order: event file names start with their creation time
    _events(tmp_path / "a", {"metrics/mAP_0.5": [(1, 0.125), (2, 0.25)]})
    _events(tmp_path / "b", {"metrics/mAP_0.5": [(2, 0.375), (3, 0.5)]})
    assert read_scalars(tmp_path)["metrics/mAP_0.5"] == [(1, 0.125), (2, 0.375), (3, 0.5)]


def test_plot_is_a_png_and_needs_the_map_tag(tmp_path):
    series = {"train/box_loss": [(1, 0.5), (2, 0.25)], "metrics/mAP_0.5": [(1, 0.125), (2, 0.625)]}
    path = plot_training_curve(series, "metrics/mAP_0.5", tmp_path / "curve.png", title="t")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    with pytest.raises(KeyError, match="no scalar"):
        plot_training_curve(series, "coco/bbox_mAP_50", tmp_path / "other.png")
