"""Mining side outputs (RSAL's regions to label): the engine keeps those of the top images only
and hands them to the algorithm once the ranking is final."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ymir_base.engine import predict
from ymir_base.mining.base import MiningAlgorithm, Scored


class _Brightness(MiningAlgorithm):
    """Scores each image by its mean brightness and keeps a side note for the top two."""

    name = "brightness"
    needs = frozenset()
    keep_side = 2

    def score_batch(self, images, predictions, predictor):
        return [Scored(float(img.mean()), {"pixels": int(img.size)}) for img in images]

    def write_side_outputs(self, kept, out_dir: Path) -> None:
        (out_dir / "side.json").write_text(json.dumps(kept))


def test_only_the_top_images_side_outputs_are_kept_and_written(tmp_path):
    side = predict._SideOutputs(2)
    for asset, value in (("a", 0.2), ("b", 0.9), ("c", 0.5), ("d", 0.9), ("e", 0.1)):
        side.offer(asset, Scored(value, asset.upper()))
    assert len(side.heap) == 2  # bounded by keep_side, whatever the pool size
    algorithm = _Brightness({}, ["c"])
    side.write(algorithm, tmp_path)
    # best first; the tie at 0.9 keeps the earlier candidate first
    assert json.loads((tmp_path / "side.json").read_text()) == [["b", 0.9, "B"], ["d", 0.9, "D"]]


def test_scored_results_feed_the_ranking_and_the_side_outputs(sample, monkeypatch):
    in_dir, out_dir = sample("mining", images=5)
    monkeypatch.setattr("ymir_base.engine.predict.get_algorithm", lambda *a, **k: _Brightness({}, ["c"]))
    from ymir_base.engine.task import run_task

    assert run_task("yolov5", in_dir, out_dir, {"mining_algorithm": "random"}) == 0
    rows = [line.split("\t") for line in (out_dir / "result.tsv").read_text().splitlines()]
    kept = json.loads((out_dir / "side.json").read_text())
    assert [k[0] for k in kept] == [r[0] for r in rows[:2]]
    assert [k[1] for k in kept] == pytest.approx([float(r[1]) for r in rows[:2]], rel=1e-5)  # tsv rounds
    assert all(k[2]["pixels"] > 0 for k in kept)
    assert np.all(np.diff([float(r[1]) for r in rows]) <= 0)


def test_an_algorithm_that_keeps_side_outputs_must_write_them(tmp_path):
    class Forgetful(_Brightness):
        name = "forgetful"
        write_side_outputs = MiningAlgorithm.write_side_outputs

    with pytest.raises(NotImplementedError, match="keeps side outputs"):
        Forgetful({}, ["c"]).write_side_outputs([], tmp_path)
