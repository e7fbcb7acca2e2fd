"""FastSCNN of the seg-in-one image learns the semantic sample shapes on CPU.

The Cityscapes config trains its heads with a sigmoid cross-entropy; from random initialisation
on the small sample that learned slowly (mIoU 0.00 up to iteration 75, then 0.03, 0.08, 0.12,
0.19 at iteration 200, img_size 256, batch 8, in a measured run). With softmax cross-entropy
(``use_sigmoid=False``, what the HRNet configs use) at img_size 128 on one CPU thread, the
measured run reached mIoU 0.05, 0.28, 0.51, 0.46, 0.51, 0.54, 0.61, 0.64 at iterations 25 to 200
(48 images, a third for validation; every class above IoU 0.56 at the end; 47 s; the same figures
in a second run). Runs of 120 iterations ended at 0.56 on two threads and 0.39 on one (the
triangles not yet found): the trajectory depends on the floating-point order, hence 200
iterations and one thread. The best is held to 0.4 with every class found, and the first
evaluation below 0.1."""

from __future__ import annotations

import json

import pytest
import yaml
from _seg_helpers import one_thread

from ymir_base.engine.task import run_task
from ymir_base.sample.generator import generate

SOFTMAX = " ".join(f"model.{head}.loss_decode.use_sigmoid=False"
                   for head in ("decode_head", "auxiliary_head.0", "auxiliary_head.1"))
LEARNING = {"config_file": "configs/fastscnn/fast_scnn_lr0.12_8x4_160k_cityscapes.py", "max_iters": 200,
            "interval": 25, "img_size": 128, "samples_per_gpu": 8, "workers_per_gpu": 0, "save_least_file": False,
            "cfg_options": SOFTMAX}


@pytest.mark.slow
def test_fast_scnn_learns_the_semantic_sample_shapes(tmp_path):
    in_dir = generate(tmp_path / "in", task="training", object_type="semantic", fmt="coco", images=48, seed=1,
                      extra_config=LEARNING)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with one_thread():
        assert run_task("seg-in-one", in_dir, out_dir) == 0
    result = yaml.safe_load((out_dir / "models" / "result.yaml").read_text())
    mious = {int(name[5:]): stage["mIoU"] for name, stage in result["model_stages"].items() if name.startswith("iter_")}
    assert sorted(mious) == list(range(25, 201, 25)), mious
    assert mious[25] < 0.1 and result["mIoU"] >= 0.4, mious
    best = json.loads((out_dir / "models" / "attachments" / "metrics" / "best.json").read_text())
    assert all(v["IoU"] > 0 for v in best["per_class"].values()), best  # every class is found
