"""Mining/infer over several ranks: every candidate exactly once, the same result as one process."""

from __future__ import annotations

import os
import subprocess
import sys

from ymir_base.engine import predict
from ymir_base.engine.registry import backend_class, image_spec
from ymir_base.protocol.context import build_context
from ymir_base.protocol.paths import PathMapper


def test_two_ranks_merge_to_the_single_process_result(sample, yolov5n_checkpoint):
    in_dir, out_dir = sample("mining+infer", models={"best": yolov5n_checkpoint.parent}, images=7)
    sets = ["--set", "mining_algorithm=entropy", "--set", "img_size=64", "--set", "conf_thres=0.001"]
    cmd = [sys.executable, "-m", "ymir_base.cli", "run", "yolov5", "--in", str(in_dir), "--out"]
    single = out_dir.parent / "single"
    assert subprocess.run([*cmd, str(single), *sets], capture_output=True).returncode == 0
    procs = [subprocess.Popen([*cmd, str(out_dir), *sets], stdout=subprocess.DEVNULL,
                              env=dict(os.environ, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2"))
             for r in range(2)]
    assert [p.wait() for p in procs] == [0, 0]
    assert not (out_dir / "result.tsv").exists()  # ranks write shards only
    ctx = build_context(image_spec("yolov5"), PathMapper(in_dir, out_dir))
    merged = predict.merge_shards(ctx, 2)
    predict.write_outputs(ctx, backend_class("yolov5"), merged)
    candidates = (in_dir / "candidate-index.tsv").read_text().split()
    assert sorted(merged.scores) == sorted(candidates)
    assert (out_dir / "result.tsv").read_text() == (single / "result.tsv").read_text()
    import json

    assert json.loads((out_dir / "infer-result.json").read_text()) == json.loads(
        (single / "infer-result.json").read_text())
