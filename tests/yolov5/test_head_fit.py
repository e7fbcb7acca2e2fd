"""Starting weights for other classes keep their box and objectness outputs (ymir_yolov5lib.head_fit)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ymir_base.engine.task import run_task
from ymir_yolov5lib import models, runtime
from ymir_yolov5lib.head_fit import BOX_AND_OBJECTNESS, checkpoint_classes, fit_head

FAST = {"model": "yolov5n", "epochs": 1, "img_size": 64, "batch_size_per_gpu": 4, "num_workers_per_gpu": 0}


def _checkpoint(folder: Path, name: str, classes: list[str]) -> Path:
    runtime.prepare()
    from yolov5.models.yolo import Model

    torch.manual_seed(1)
    model = Model(str(models.model_yaml(name)), ch=3, nc=len(classes))
    model.names = dict(enumerate(classes))
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.half(), "ema": None, "epoch": -1}, folder / "best.pt")
    return folder / "best.pt"


@pytest.mark.parametrize(("name", "extra"), [("yolov5n", 0), ("yolov5n-seg", 32)])
def test_box_objectness_masks_and_same_named_classes_keep_their_rows(tmp_path, name, extra):
    from yolov5.models.yolo import Model
    from yolov5.utils.general import intersect_dicts

    old = ["circle", "square", "triangle"]
    weights = _checkpoint(tmp_path / "in", name, old)
    fitted, change = fit_head(weights, ["triangle", "hexagon"], tmp_path / "start" / f"{name}.pt")
    assert fitted != weights and change is not None and "1 class(es) kept by name (triangle)" in change
    before = torch.load(weights, map_location="cpu", weights_only=False)["model"].model[-1]
    ckpt = torch.load(fitted, map_location="cpu", weights_only=False)
    after = ckpt["model"]
    assert checkpoint_classes(after) == ["triangle", "hexagon"] and after.yaml["nc"] == 2
    head = after.model[-1]
    assert (head.nc, head.no) == (2, BOX_AND_OBJECTNESS + 2 + extra)
    for old_conv, conv in zip(before.m, head.m, strict=True):
        assert conv.weight.dtype == torch.float16 and conv.out_channels == head.na * head.no
        for a in range(head.na):
            o, n = a * (BOX_AND_OBJECTNESS + 3 + extra), a * head.no
            kept = [*range(BOX_AND_OBJECTNESS), BOX_AND_OBJECTNESS + 2]  # box, objectness, triangle
            assert torch.equal(conv.weight[[n + r for r in range(BOX_AND_OBJECTNESS)] + [n + 5]],
                               old_conv.weight[[o + r for r in kept]])
            assert torch.equal(conv.bias[n + 5], old_conv.bias[o + 7])
            assert torch.equal(conv.weight[n + 7:n + 7 + extra], old_conv.weight[o + 8:o + 8 + extra])  # masks
            new_row = conv.weight[n + 6]  # hexagon: a fresh row, not a copy of an old class
            assert not any(torch.equal(new_row, old_conv.weight[o + 5 + c]) for c in range(3))
    # what yolov5's trainer does with it: a model for 2 classes takes every tensor
    model = Model(after.yaml, ch=3, nc=2)
    state = model.state_dict()
    assert len(intersect_dicts(after.float().state_dict(), state, exclude=())) == len(state)
    assert model.eval()(torch.zeros(1, 3, 64, 64))[0].shape[-1] == head.no  # boxes of every anchor


def test_weights_for_the_tasks_classes_are_used_as_they_are(tmp_path):
    weights = _checkpoint(tmp_path / "in", "yolov5n", ["circle", "square", "triangle"])
    assert fit_head(weights, ["circle", "square", "triangle"], tmp_path / "start.pt") == (weights, None)
    assert not (tmp_path / "start.pt").exists()
    # the same classes in another order are other classes: rows follow the names
    _, change = fit_head(weights, ["square", "circle", "triangle"], tmp_path / "start.pt")
    assert change is not None and "3 class(es) kept by name" in change


def test_a_checkpoint_without_class_names_keeps_box_and_objectness_only_when_the_count_changes(tmp_path):
    weights = _checkpoint(tmp_path / "in", "yolov5n", ["circle", "square"])
    ckpt = torch.load(weights, map_location="cpu", weights_only=False)
    ckpt["model"].names = None
    torch.save(ckpt, weights)
    assert fit_head(weights, ["a", "b"], tmp_path / "same.pt") == (weights, None)  # yolov5 transfers it whole
    _, change = fit_head(weights, ["a"], tmp_path / "one.pt")
    assert change is not None and "0 class(es) kept by name (none)" in change


def test_a_head_that_cannot_be_fitted_is_a_model_error(tmp_path):
    from ymir_base.errors import ModelError

    weights = _checkpoint(tmp_path / "in", "yolov5n", ["circle"])
    ckpt = torch.load(weights, map_location="cpu", weights_only=False)
    ckpt["model"].model[-1].m = None  # no per-level convolutions
    torch.save(ckpt, weights)
    with pytest.raises(ModelError, match="cannot fit the head of"):
        fit_head(weights, ["a", "b"], tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


def test_fitting_is_deterministic(tmp_path):
    weights = _checkpoint(tmp_path / "in", "yolov5n", ["circle"])
    heads = [torch.load(fit_head(weights, ["a", "b"], tmp_path / f"{i}.pt")[0], map_location="cpu",
                        weights_only=False)["model"].model[-1] for i in range(2)]
    assert all(torch.equal(x.weight, y.weight) for x, y in zip(heads[0].m, heads[1].m, strict=True))


def test_training_from_a_model_of_other_classes_fits_its_head(sample, tmp_path, capfd):
    weights = _checkpoint(tmp_path / "model" / "best", "yolov5n", ["circle", "ellipse", "star", "moon"])
    in_dir, out_dir = sample("training", models={"best": weights.parent})
    assert run_task("yolov5", in_dir, out_dir, FAST) == 0, (out_dir / "monitor.txt").read_text()
    captured = capfd.readouterr()
    log = captured.out + captured.err
    assert "head fitted from the checkpoint's 4 classes to the task's 3" in log and "by name (circle)" in log
    assert (out_dir / "models" / "result.yaml").is_file()
    start = torch.load(out_dir / "work" / "start" / "yolov5n.pt", map_location="cpu", weights_only=False)["model"]
    assert checkpoint_classes(start) == ["circle", "square", "triangle"]  # what the trainer started from
    assert torch.load(weights, map_location="cpu", weights_only=False)["model"].model[-1].nc == 4  # /in untouched
