"""Starting weights for other classes keep their head's box and objectness rows
(ymir_openmmlab.head_fit)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ymir_base.engine.task import run_task
from ymir_mmdet.backend import config_dir as mmdet_configs
from ymir_mmrotate.backend import MODELS as ROTATED
from ymir_mmrotate.backend import config_dir as mmrotate_configs
from ymir_mmyolo.backend import MODELS
from ymir_mmyolo.backend import config_dir as mmyolo_configs
from ymir_openmmlab import checkpoint as mmckpt
from ymir_openmmlab import config as mmcfg
from ymir_openmmlab.head_fit import fit_head, initialised_model

OLD = ("circle", "square", "triangle")
NEW = ["triangle", "hexagon"]  # triangle: old row 2 -> new row 0; hexagon: new
# (config, a tensor that predicts the classes, priors per point, rows per prior before the classes)
CASES = {
    "mmyolo-yolov5": (mmyolo_configs() / MODELS["yolov5_n"], "bbox_head.head_module.convs_pred.1.bias", 3, 5),
    "mmyolo-yolov7": (mmyolo_configs() / MODELS["yolov7_tiny"], "bbox_head.head_module.convs_pred.0.2.implicit",
                      3, 5),
    "mmdet-yolox": (mmdet_configs() / "yolox" / "yolox_tiny_8xb8-300e_coco.py",
                    "bbox_head.multi_level_conv_cls.2.bias", 1, 0),
    "mmrotate-rtmdet": (mmrotate_configs() / ROTATED["rotated_rtmdet_tiny"], "bbox_head.rtm_cls.1.bias", 1, 0),
}


def _config(path: Path, classes: int):
    cfg = mmcfg.load_config(path)
    mmcfg.set_num_classes(cfg.model, classes)
    return cfg


def _checkpoint(path: Path, config: Path, classes: tuple[str, ...] | None, count: int = 3) -> Path:
    """A model of ``count`` classes, initialised with another seed than the fit's, saved as our stages are."""
    model = initialised_model(_config(config, count))
    torch.manual_seed(7)
    for p in model.parameters():  # unlike any initialisation: kept rows are told from fresh ones
        torch.nn.init.normal_(p, mean=3.0)
    meta = {"dataset_meta": {"classes": classes}} if classes else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "meta": meta}, path)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_rows_before_the_classes_and_same_named_classes_are_kept(tmp_path, case):
    config, key, priors, before = CASES[case]
    weights = _checkpoint(tmp_path / "in" / "best.pth", config, OLD)
    cfg = _config(config, len(NEW))
    fitted, change = fit_head(cfg, weights, mmckpt.load(weights), NEW, tmp_path / "start" / "best.pth")
    assert fitted != weights and "1 class(es) kept by name (triangle)" in change
    old = mmckpt.load(weights)["state_dict"]
    ckpt = mmckpt.load(fitted)
    new = ckpt["state_dict"]
    assert ckpt["meta"]["dataset_meta"]["classes"] == tuple(NEW)
    mmckpt.apply(initialised_model(cfg), ckpt)  # strict: every tensor now has the task's shape
    init = initialised_model(cfg).state_dict()[key]
    o, n, i = (t.flatten().view(priors, -1) for t in (old[key], new[key], init))
    assert o.shape[1] == before + 3 and n.shape[1] == before + 2
    assert torch.equal(n[:, :before], o[:, :before])
    assert torch.equal(n[:, before], o[:, before + 2])  # triangle
    assert torch.equal(n[:, before + 1], i[:, before + 1]) and not torch.equal(n[:, before + 1], o[:, before + 1])
    changed = {k for k in old if not torch.equal(old[k], new[k])}
    assert key in changed and all(k.startswith("bbox_head.") and old[k].shape != new[k].shape for k in changed)


def test_fitting_is_deterministic_and_leaves_the_global_random_state(tmp_path):
    config, key, _, _ = CASES["mmyolo-yolov5"]
    weights = _checkpoint(tmp_path / "in" / "best.pth", config, OLD)
    cfg = _config(config, len(NEW))
    torch.manual_seed(11)
    state = torch.random.get_rng_state()
    first, _ = fit_head(cfg, weights, mmckpt.load(weights), NEW, tmp_path / "a.pth")
    assert torch.equal(torch.random.get_rng_state(), state)
    second, _ = fit_head(cfg, weights, mmckpt.load(weights), NEW, tmp_path / "b.pth")
    assert torch.equal(mmckpt.load(first)["state_dict"][key], mmckpt.load(second)["state_dict"][key])


def test_nameless_weights_of_another_count_keep_box_and_objectness_only(tmp_path):
    config, key, priors, before = CASES["mmyolo-yolov5"]
    weights = _checkpoint(tmp_path / "in" / "best.pth", config, None, count=4)
    cfg = _config(config, 3)
    fitted, change = fit_head(cfg, weights, mmckpt.load(weights), list(OLD), tmp_path / "start.pth")
    assert "0 class(es) kept by name (none)" in change
    o, n = (mmckpt.load(p)["state_dict"][key].view(priors, -1) for p in (weights, fitted))
    assert torch.equal(n[:, :before], o[:, :before])
    assert not torch.equal(n[:, before:], o[:, before:before + 3])


@pytest.mark.parametrize("classes", [OLD, None])
def test_weights_of_the_tasks_class_count_are_used_as_they_are(tmp_path, monkeypatch, classes):
    from ymir_openmmlab import head_fit

    config = CASES["mmyolo-yolov5"][0]
    weights = _checkpoint(tmp_path / "in" / "best.pth", config, classes)
    if classes:  # named as the task's: not even a model is built to compare shapes with
        monkeypatch.setattr(head_fit, "initialised_model", lambda cfg: pytest.fail("built a model"))
    out = tmp_path / "start.pth"
    assert fit_head(_config(config, 3), weights, mmckpt.load(weights), list(OLD), out) == (weights, None)
    assert not out.exists()


@pytest.mark.slow
def test_training_from_a_model_of_other_classes_fits_its_head(sample, tmp_path, capfd):
    weights = _checkpoint(tmp_path / "model" / "best" / "best.pth", CASES["mmyolo-yolov5"][0],
                          ("circle", "ellipse", "star", "moon"), count=4)
    before = weights.read_bytes()
    in_dir, out_dir = sample("training", images=6, models={"best": weights.parent})
    settings = {"model_name": "yolov5_n", "max_epochs": 1, "img_size": 96, "samples_per_gpu": 4,
                "workers_per_gpu": 0}
    assert run_task("mmyolo", in_dir, out_dir, settings) == 0, (out_dir / "monitor.txt").read_text()
    captured = capfd.readouterr()
    log = captured.out + captured.err
    assert "head fitted to the task's 3 classes" in log and "1 class(es) kept by name (circle)" in log
    assert "size mismatch" not in log  # MMEngine dropped no head tensor
    start = mmckpt.load(out_dir / "work" / "start" / "best.pth")
    assert start["meta"]["dataset_meta"]["classes"] == ("circle", "square", "triangle")
    assert (out_dir / "models" / "result.yaml").is_file()
    assert weights.read_bytes() == before  # /in untouched


def test_a_segmentors_start_is_used_as_it_is(tmp_path, monkeypatch):
    from ymir_openmmlab import head_fit
    from ymir_seginone.models import config_dir as seg_configs

    cfg = mmcfg.load_config(seg_configs() / "fastscnn" / "fast_scnn_8xb4-160k_cityscapes-512x1024.py")
    monkeypatch.setattr(head_fit, "initialised_model", lambda cfg: pytest.fail("built a model to fit no head"))
    weights = tmp_path / "best.pth"
    assert fit_head(cfg, weights, {"state_dict": {}}, list(OLD), tmp_path / "start.pth") == (weights, None)
