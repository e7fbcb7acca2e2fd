"""A miner that scores every candidate the same ranks nothing: result.tsv keeps the candidate
index's order, and the log says why (a model that detects nothing yet scores this way)."""

from __future__ import annotations

import logging

from ymir_base.engine import predict
from ymir_base.mining.base import MiningAlgorithm


class _Constant(MiningAlgorithm):
    name = "constant"
    needs = frozenset()

    def score_batch(self, images, predictions, predictor):
        return [0.0 for _ in images]


def test_all_tied_scores_keep_the_index_order_and_are_reported(sample, monkeypatch, capsys):
    in_dir, out_dir = sample("mining", images=6)
    monkeypatch.setattr("ymir_base.engine.predict.get_algorithm", lambda *a, **k: _Constant({}, ["c"]))
    from ymir_base.engine.task import run_task

    assert run_task("yolov5", in_dir, out_dir, {"mining_algorithm": "random"}) == 0
    index = (in_dir / "candidate-index.tsv").read_text().split()
    rows = [line.split("\t") for line in (out_dir / "result.tsv").read_text().splitlines()]
    assert [r[0] for r in rows] == index and {r[1] for r in rows} == {"0"}
    assert "mining: all 6 readable candidates scored 0, so result.tsv keeps the candidate index's order" in \
        capsys.readouterr().out  # the task's log


def test_only_readable_candidates_count_and_different_scores_are_quiet(caplog):
    with caplog.at_level(logging.WARNING, logger=predict.__name__):
        predict.warn_if_all_tied(predict.PredictionOutcome(scores={"a": 0.3, "b": 0.1, "c": 0.3}))
        predict.warn_if_all_tied(predict.PredictionOutcome(scores={"a": 0.3}))  # one candidate: nothing to rank
        assert not caplog.records
        predict.warn_if_all_tied(predict.PredictionOutcome(
            scores={"a": 0.5, "b": predict.UNREADABLE_SCORE, "c": 0.5}, unreadable=["b"]))
    assert [r.getMessage().split(",")[0] for r in caplog.records] == ["mining: all 2 readable candidates scored 0.5"]
