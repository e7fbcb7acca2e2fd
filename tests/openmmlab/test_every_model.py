"""Every model of the two seed tables builds from its upstream config and trains one step.

Each case is a real training task through the executor (the config's own pipelines, losses,
hooks and evaluation) for one epoch at 96 px, the smallest size whose stride-32 grid holds the
9 candidates of YOLOv6's ATSS assigner; it must leave a loadable stage.
"""

from __future__ import annotations

import pytest
import torch

from conftest import read_monitor
from ymir_base.engine.task import run_task
from ymir_mmdet.backend import MODELS as MMDET_MODELS
from ymir_mmyolo.backend import MODELS as MMYOLO_MODELS

# seeds/mmdet.md and seeds/mmyolo.md: the models of their performance tables
MMDET_SEED = [f"configs/yolox/yolox_{s}_8x8_300e_coco.py" for s in ("tiny", "s", "l", "x")]
MMYOLO_SEED = ["yolov8_n", "yolov8_s", "yolov8_m", "yolov7_tiny", "yolov7_l", "yolov7_x", "yolov6_n", "yolov6_t",
               "yolov6_s", "yolov6_m", "yolov5_n", "yolov5_s", "yolov5_m", "yolox_tiny", "yolox_s",
               "ppyoloe_plus_s", "ppyoloe_plus_m", "rtmdet_tiny", "rtmdet_s", "rtmdet_m", "rtmdet_l"]
ONE_STEP = {"max_epochs": 1, "img_size": 96, "samples_per_gpu": 4, "workers_per_gpu": 0}

pytestmark = pytest.mark.slow


def test_seed_models_are_offered():
    assert set(MMYOLO_SEED) <= set(MMYOLO_MODELS)
    assert {f"yolox_{s}" for s in ("tiny", "s", "l", "x")} == set(MMDET_MODELS)


@pytest.mark.parametrize(("image", "key", "model"), [("mmdet", "config_file", m) for m in MMDET_SEED]
                         + [("mmyolo", "model_name", m) for m in MMYOLO_SEED])
def test_one_training_step(sample, image, key, model):
    in_dir, out_dir = sample("training", images=6)
    code = run_task(image, in_dir, out_dir, {key: model, **ONE_STEP})
    assert code == 0, read_monitor(out_dir)[2]
    best = out_dir / "models" / "best" / "best.pth"
    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    assert ckpt["meta"]["dataset_meta"]["classes"] == ("circle", "square", "triangle")
    assert "ema_state_dict" not in ckpt and "optimizer" not in ckpt
    assert (out_dir / "models" / "best" / "config.py").is_file()
