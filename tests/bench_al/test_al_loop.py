"""The active-learning loop (bench/al/): its bookkeeping in isolation, and a tiny real run through
the yolov5 image (2 rounds, two miners) that checks images move from the pool to the labelled set,
the curve and report are written and a rerun resumes instead of redoing finished steps."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from al import commands  # noqa: E402
from al.dataset import load_dataset  # noqa: E402
from al.diversity import table as diversity_table  # noqa: E402
from al.loop import Loop, Miner, Plan, ranking, redundant, step  # noqa: E402
from al.report import auc, plot, step_seconds, summarise, table, write_report  # noqa: E402
from al.sample import sample_dataset  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return sample_dataset(tmp_path_factory.mktemp("al") / "sample", pool=10, test=4)


def test_miner_specs_and_random_always_in_the_plan(tmp_path):
    assert Miner.parse(" Entropy:0.5 ") == Miner("entropy", 0.5)
    assert Miner.parse("aldd").label == "aldd" and Miner("cald", 0.25).label == "cald+div0.25"
    with pytest.raises(ValueError, match="must be a number"):
        Miner.parse("entropy:lots")
    plan = Plan(dataset=tmp_path, image="yolov5", miners=(Miner("entropy"),), out=tmp_path)
    assert [m.label for m in plan.miners] == ["random", "entropy"]
    with pytest.raises(ValueError, match="twice"):
        Plan(dataset=tmp_path, image="yolov5", miners=(Miner("aldd"), Miner("aldd")), out=tmp_path)


def test_the_dataset_is_read_with_contiguous_classes_and_checked(dataset, tmp_path):
    data = load_dataset(dataset)
    assert data.class_names == ["circle", "square", "triangle"]
    assert len(data.pool) == 10 and len(data.test) == 4
    assert sum(len(i.boxes) for i in data.pool.values()) > 10
    bad = tmp_path / "bad"
    bad.mkdir()
    pool = json.loads((dataset / "pool.json").read_text())
    (bad / "pool.json").write_text(json.dumps(pool))
    (bad / "test.json").write_text(json.dumps(pool))  # the same images in both splits
    with pytest.raises(ValueError, match="both in the pool and the test set"):
        load_dataset(bad)


def test_ranking_reads_result_tsv_as_ymir_does(tmp_path):
    tsv = tmp_path / "result.tsv"
    tsv.write_text("/in/assets/aa/0aa.jpg\t0.5\n/in/assets/bb/1bb.jpg\t0.9\n/in/assets/cc/2cc.jpg\t0.5\n")
    names = {"0aa": "a.jpg", "1bb": "b.jpg", "2cc": "c.jpg"}
    assert ranking(tsv, names) == [("b.jpg", 0.9), ("a.jpg", 0.5), ("c.jpg", 0.5)]  # ties: file order
    with pytest.raises(ValueError, match="not the 4 given"):
        ranking(tsv, {**names, "3dd": "d.jpg"})
    tsv.write_text("/in/assets/zz/9zz.jpg\t0.1\n")
    with pytest.raises(ValueError, match="is not a candidate"):
        ranking(tsv, names)


def test_near_duplicate_picks_are_counted_against_labelled_images_and_earlier_picks(dataset):
    from dataclasses import replace

    data = load_dataset(dataset)
    names = list(data.pool)
    groups = {names[0]: 7, names[1]: 7, names[2]: 8, names[3]: 8, names[4]: 9}
    data.pool.update({n: replace(data.pool[n], group=g) for n, g in groups.items()})
    # names[1] repeats labelled names[0]; names[3] repeats the earlier pick names[2]; names[4] is new
    assert redundant(data, [names[0]], [names[1], names[2], names[3], names[4]]) == 2
    assert redundant(data, [], [names[2], names[4]]) == 0


def test_a_step_runs_once_and_a_half_done_step_is_redone(tmp_path):
    calls = []

    def action():
        calls.append(1)
        (tmp_path / "s" / "partial").write_text("x")
        return {"value": len(calls)}

    assert step(tmp_path / "s", action)["value"] == 1
    assert step(tmp_path / "s", action)["value"] == 1 and len(calls) == 1  # done: not rerun
    (tmp_path / "s" / "step.json").unlink()  # killed before the end
    assert step(tmp_path / "s", action)["value"] == 2


def test_a_killed_training_resumes_from_the_out_folder_it_left(dataset, tmp_path, monkeypatch):
    def killed(self: Loop, folder: Path) -> None:
        if (folder / "in" / "candidate-index.tsv").is_file():
            return _fake_execute(self, folder)
        (folder / "out" / "work").mkdir(parents=True)
        (folder / "out" / "work" / "epoch_3.pth").write_text("checkpoint")
        (folder / "leftover").write_text("x")
        raise KeyboardInterrupt  # the loop is killed during round 0's training

    resumed_from: list[str] = []

    def resume(self: Loop, folder: Path) -> None:
        checkpoint = folder / "out" / "work" / "epoch_3.pth"
        if checkpoint.is_file():
            resumed_from.append(str(folder.relative_to(tmp_path)))
            assert not (folder / "leftover").exists() and (folder / "in" / "config.yaml").is_file()
        _fake_execute(self, folder)

    plan = Plan(dataset=dataset, image="yolov5", miners=(), out=tmp_path / "out", initial=4, k=2, rounds=1, seeds=(0,))
    monkeypatch.setattr(Loop, "execute", killed)
    with pytest.raises(KeyboardInterrupt):
        Loop(plan, echo=lambda _: None).run()
    monkeypatch.setattr(Loop, "execute", resume)
    Loop(plan, echo=lambda _: None).run()
    run = tmp_path / "out" / "sample" / "yolov5" / "seed0"
    assert resumed_from == ["out/sample/yolov5/seed0/round0/train"]  # round 1 started afresh
    assert json.loads((run / "round0" / "train" / "step.json").read_text())["resumed"] is True
    assert "resumed" not in json.loads((run / "random" / "round1" / "train" / "step.json").read_text())


def test_a_task_dies_with_a_killed_loop_and_leaves_no_writer_behind():
    import os
    import signal
    import subprocess
    import time

    code = ("import subprocess, sys, time; sys.path.insert(0, sys.argv[1]); from al.loop import _die_with_parent; "
            "p = subprocess.Popen(['sleep', '60'], preexec_fn=_die_with_parent); print(p.pid, flush=True); "
            "time.sleep(60)")
    loop = subprocess.Popen([sys.executable, "-c", code, str(REPO / "bench")], stdout=subprocess.PIPE, text=True)
    task = int(loop.stdout.readline())
    loop.send_signal(signal.SIGKILL)
    loop.wait()
    for _ in range(100):  # the kernel delivers the parent-death signal right away; allow for scheduling
        try:
            state = Path(f"/proc/{task}/stat").read_text().split()[2]
        except FileNotFoundError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.05)
    os.kill(task, signal.SIGKILL)
    pytest.fail(f"the task {task} outlived its killed loop (state {state})")


def test_validation_split_is_seeded_and_keeps_training_images(dataset, tmp_path):
    loop = Loop(Plan(dataset=dataset, image="yolov5", miners=(), out=tmp_path, initial=4, k=2, rounds=2, seeds=(0,)))
    names = list(loop.dataset.pool)
    train, val = loop.split(0, names)
    assert len(val) == 2 and len(train) == 8 and set(train) | set(val) == set(names)
    assert loop.split(0, names) == (train, val)
    assert loop.split(1, names) != (train, val)
    assert loop.initial_set(0) == loop.initial_set(0) != loop.initial_set(1)


def curve(values: list[float], step: int = 10) -> list[dict]:
    """A learning curve's points as results.json holds them: ``step``, 2 x ``step``, ... labelled."""
    return [{"labelled": step * (i + 1), "map50": v, "map": v / 2, "seconds": {"train": 1.0}}
            for i, v in enumerate(values)]


def test_area_under_the_curve_and_gains_are_paired_per_seed():
    assert auc([10, 20, 30], [0.0, 0.5, 0.5]) == pytest.approx((0.25 * 10 + 0.5 * 10) / 20)

    results = {"curves": {"random": {"0": curve([0.1, 0.2]), "1": curve([0.3, 0.3])},
                          "entropy": {"0": curve([0.1, 0.4]), "1": curve([0.3, 0.5])}}}
    s = summarise(results)
    assert s["entropy"]["gain_final"] == pytest.approx((0.2, 0.0))
    assert s["entropy"]["gain_auc"][0] == pytest.approx(0.1)
    assert s["random"]["rounds"][0] == pytest.approx((0.2, 0.1414), abs=1e-3)


def test_step_time_counts_a_seeds_shared_round_0_once():
    first = {"seconds": {"train": 100.0, "eval": 10.0}}
    results = {"curves": {"random": {"0": [first, {"seconds": {"mine": 1.0, "train": 200.0, "eval": 10.0}}]},
                          "entropy": {"0": [first, {"seconds": {"mine": 30.0, "train": 200.0, "eval": 10.0}}]}},
               "full_pool": {"0": {"seconds": {"train": 400.0, "eval": 10.0}}}}
    assert step_seconds(results) == 110 + 211 + 240 + 410


def test_final_points_read_as_a_share_of_the_whole_pool_model(tmp_path):
    results = {"plan": {"image": "yolov5"}, "dataset": {"name": "sample"},
               "curves": {"random": {"0": curve([0.1, 0.2]), "1": curve([0.3, 0.3])},
                          "entropy": {"0": curve([0.1, 0.4]), "1": curve([0.3, 0.5])}}}
    assert summarise(results)["entropy"]["share_final"] is None and "whole pool" not in table(results)
    results["full_pool"] = {"0": {"labelled": 40, "map50": 0.4, "map": 0.2},
                            "1": {"labelled": 40, "map50": 0.6, "map": 0.3}}
    s = summarise(results)
    assert s["entropy"]["share_final"][0] == pytest.approx((0.4 / 0.4 + 0.5 / 0.6) / 2)  # paired per seed
    assert s["random"]["share_final"][0] == pytest.approx((0.2 / 0.4 + 0.3 / 0.6) / 2)
    text = table(results)
    assert "| final / whole pool |" in text and "| 92 ± 12 % |" in text and "| 50 ± 0 % |" in text
    assert "Whole pool labelled (40 images): 0.500 ± 0.141 over 2 seeds." in text
    assert plot(results, tmp_path / "curve.png").stat().st_size > 0
    results["full_pool"]["1"]["map50"] = 0.0  # a model that found nothing: no share to take of it
    assert summarise(results)["entropy"]["share_final"] == (1.0, 0.0)


def test_a_table_of_a_barely_detecting_model_shows_four_decimals():
    # no value on a rounding boundary: AUC 0.0066, gains 0.0009 and 0.0018
    low = {"curves": {"random": {"0": curve([0.0034, 0.0080], 20)}, "aldd": {"0": curve([0.0034, 0.0098], 20)}}}
    assert "| aldd | 0.0034 ± 0.0000 | 0.0098 ± 0.0000 | 0.0066 ± 0.0000 | +0.0009 ± 0.0000 | +0.0018 ± 0.0000 |" \
        in table(low)
    high = {"curves": {"random": {"0": curve([0.5, 0.0080], 20)}, "aldd": {"0": curve([0.5, 0.0097], 20)}}}
    assert "| aldd | 0.500 ± 0.000 | 0.010 ± 0.000 |" in table(high)


def _fake_execute(self: Loop, folder: Path) -> None:
    """A stand-in for ``ymir-exec run``: a model folder for training, no boxes for infer, and a
    result.tsv scored by a hash of each candidate for mining (deterministic whatever the order)."""
    out = folder / "out"
    out.mkdir(parents=True, exist_ok=True)
    config = (folder / "in" / "config.yaml").read_text()
    if (folder / "in" / "candidate-index.tsv").is_file() and "mining_algorithm" in config:
        if "entropy" in config and "seed1" in str(folder):
            raise RuntimeError("entropy failed on seed 1")
        lines = (folder / "in" / "candidate-index.tsv").read_text().split()
        scores = [(line, int(hashlib.sha1(line.encode()).hexdigest()[:6], 16) / 2**24) for line in lines]
        (out / "result.tsv").write_text("".join(f"{a}\t{s:.6f}\n" for a, s in scores))
    elif (folder / "in" / "candidate-index.tsv").is_file():
        (out / "infer-result.json").write_text(json.dumps({"detection": {}}))
    else:
        (out / "models" / "best").mkdir(parents=True)
        (out / "models" / "best" / "model.pt").write_bytes(b"weights")
        (out / "models" / "result.yaml").write_text("best_stage_name: best\nmAP: 0.5\n")


def _picks(run: Path) -> dict[str, list[str]]:
    return {str(f.parent.relative_to(run)): json.loads(f.read_text())["picked"] for f in run.rglob("mine/step.json")}


def test_parallel_curves_match_and_finished_curves_are_kept_when_one_fails(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(Loop, "execute", _fake_execute)
    picks = []
    for jobs in (1, 3):
        plan = Plan(dataset=dataset, image="yolov5", miners=(Miner("entropy"),), out=tmp_path / f"jobs{jobs}",
                    initial=4, k=2, rounds=2, seeds=(0, 1))
        with pytest.raises(RuntimeError, match="entropy failed on seed 1"):
            Loop(plan, echo=lambda _: None, jobs=jobs).run()
        run = tmp_path / f"jobs{jobs}" / "sample" / "yolov5"
        results = json.loads((run / "results.json").read_text())
        # the failed curve is missing; every finished one is reported
        assert {m: sorted(c) for m, c in results["curves"].items()} == {"random": ["0", "1"], "entropy": ["0"]}
        assert [p["labelled"] for p in results["curves"]["entropy"]["0"]] == [4, 6, 8]
        picks.append(_picks(run))
    # the same picks whatever the number of jobs: each curve depends only on its seed and miner
    assert picks[0] == picks[1] and len(picks[0]) == 6


def test_the_whole_pool_is_trained_once_per_seed_with_the_full_pool_option(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(Loop, "execute", _fake_execute)
    lines: list[str] = []
    plan = Plan(dataset=dataset, image="yolov5", miners=(), out=tmp_path / "out", initial=4, k=2, rounds=1,
                seeds=(0, 1), full_pool=True)
    results = Loop(plan, echo=lines.append, jobs=2).run()
    run = tmp_path / "out" / "sample" / "yolov5"
    pool = sorted(load_dataset(dataset).pool)
    splits = []
    for seed in ("0", "1"):
        trained = json.loads((run / f"seed{seed}" / "full-pool" / "train" / "step.json").read_text())
        assert sorted(trained["train"] + trained["val"]) == pool and len(trained["val"]) == 2
        assert (run / f"seed{seed}" / "full-pool" / "eval" / "step.json").is_file()
        splits.append(trained["val"])
        assert results["full_pool"][seed]["labelled"] == 10
    assert splits[0] != splits[1]  # each seed's own validation split
    assert json.loads((run / "results.json").read_text())["full_pool"] == results["full_pool"]
    assert sum("whole pool: 10 labelled" in line for line in lines) == 2
    assert sum("round 0: 4 labelled" in line for line in lines) == 2
    # every step counted once: round 0, each round's mining, training and evaluation, the whole pool
    steps = [json.loads(f.read_text())["seconds"] for f in run.rglob("step.json")]
    assert len(steps) == 2 * (2 + 3 + 2) and step_seconds(results) == pytest.approx(sum(steps))
    Loop(Plan(dataset=dataset, image="yolov5", miners=(), out=tmp_path / "plain", initial=4, k=2, rounds=1,
              seeds=(0,)), echo=lambda _: None).run()
    plain = tmp_path / "plain" / "sample" / "yolov5"
    assert "full_pool" not in json.loads((plain / "results.json").read_text())
    assert not (plain / "seed0" / "full-pool").exists()


def test_mining_candidates_are_listed_in_asset_id_order(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(Loop, "execute", _fake_execute)
    plan = Plan(dataset=dataset, image="yolov5", miners=(), out=tmp_path / "out", initial=4, k=2, rounds=1, seeds=(0,))
    loop = Loop(plan, echo=lambda _: None)
    loop.run()
    pool_order = [loop.dataset.digest(n) for n in loop.dataset.pool]
    assert pool_order != sorted(pool_order)  # else the check below could not fail
    index = (tmp_path / "out" / "sample" / "yolov5" / "seed0" / "random" / "round1" / "mine" / "in"
             / "candidate-index.tsv").read_text().split()
    ids = [Path(line).stem for line in index]  # /in/assets/<last 2 of the id>/<sha1>.jpg
    assert len(ids) == 6 and ids == sorted(ids)


def test_rounds_whose_mining_scores_all_tie_are_marked_and_counted(dataset, tmp_path, monkeypatch):
    def tied_execute(self: Loop, folder: Path) -> None:
        _fake_execute(self, folder)
        tsv = folder / "out" / "result.tsv"
        if tsv.is_file() and "seed1" in str(folder):  # seed 1: a model that scores every candidate 0
            tsv.write_text("".join(f"{line.split()[0]}\t0\n" for line in tsv.read_text().splitlines()))

    monkeypatch.setattr(Loop, "execute", tied_execute)
    plan = Plan(dataset=dataset, image="yolov5", miners=(), out=tmp_path / "out", initial=4, k=2, rounds=2,
                seeds=(0, 1))
    results = Loop(plan, echo=lambda _: None).run()
    run = tmp_path / "out" / "sample" / "yolov5"
    tied = {f.parent.parent.parent.parent.name + "/" + f.parent.parent.name: json.loads(f.read_text())["tied"]
            for f in run.rglob("mine/step.json")}
    assert tied == {"seed0/round1": False, "seed0/round2": False, "seed1/round1": True, "seed1/round2": True}
    assert [p["tied"] for p in results["curves"]["random"]["1"]] == [False, True, True]  # round 0 mines nothing
    assert summarise(results)["random"]["tied"] == (2, 4)
    report = write_report(tmp_path / "out").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| random |"))
    assert "| tied rankings |" in report and "| 2/4 |" in row


def _training_configs(monkeypatch) -> list[dict]:
    """Runs the loop on _fake_execute and collects each training task's config.yaml and model files."""
    seen: list[dict] = []

    def execute(self: Loop, folder: Path) -> None:
        if not (folder / "in" / "candidate-index.tsv").is_file():
            config = yaml.safe_load((folder / "in" / "config.yaml").read_text())
            models = folder / "in" / "models"
            seen.append({**config, "files": sorted(str(p.relative_to(models)) for p in models.rglob("*.pt"))})
        _fake_execute(self, folder)

    monkeypatch.setattr(Loop, "execute", execute)
    return seen


def test_a_pretrained_model_starts_every_training_with_fine_tuning_settings(dataset, tmp_path, monkeypatch):
    stage = tmp_path / "pretrained" / "best"
    stage.mkdir(parents=True)
    (stage / "best.pt").write_bytes(b"weights")
    seen = _training_configs(monkeypatch)
    plan = Plan(dataset=dataset, image="yolov5", miners=(), out=tmp_path / "out", initial=4, k=2, rounds=1,
                seeds=(0,), pretrained=stage, model="yolov5s")
    Loop(plan, echo=lambda _: None).run()
    assert len(seen) == 2  # round 0 and random's round 1
    for config in seen:
        assert config["pretrained_model_params"] == ["/in/models/best/best.pt"] and config["files"] == ["best/best.pt"]
        assert config["model"] == "yolov5s" and "args_options" not in config  # the image's own defaults
    assert not list((tmp_path / "out").rglob("train/in/models"))  # each round's copy of the model is removed
    scratch = _training_configs(monkeypatch)
    Loop(Plan(dataset=dataset, image="yolov5", miners=(), out=tmp_path / "scratch", initial=4, k=2, rounds=1,
              seeds=(0,)), echo=lambda _: None).run()
    assert "pretrained_model_params" not in scratch[0] and scratch[0]["model"] == "yolov5n"
    assert "--hyp" in scratch[0]["args_options"]  # the demo's optimiser settings, for random initialisation
    with pytest.raises(ValueError, match="not a model folder"):
        Loop(Plan(dataset=dataset, image="yolov5", miners=(), out=tmp_path / "x", initial=4, k=2, rounds=1,
                  pretrained=tmp_path / "none"))


def test_pretrain_trains_on_the_whole_pool_and_names_the_model(dataset, tmp_path, monkeypatch, capsys):
    seen = _training_configs(monkeypatch)
    parser = commands.argparse.ArgumentParser()
    commands.add_pretrain(parser.add_subparsers())
    args = parser.parse_args(["pretrain", str(dataset), "--image", "yolov5", "--model", "yolov5s", "--epochs", "3",
                              "--out", str(tmp_path / "out")])
    assert args.func(args) == 0
    train = tmp_path / "out" / "sample" / "yolov5" / "pretrain" / "train"
    step_json = json.loads((train / "step.json").read_text())
    assert sorted(step_json["train"] + step_json["val"]) == sorted(load_dataset(dataset).pool)
    assert seen[0]["model"] == "yolov5s" and seen[0]["epochs"] == 3 and "pretrained_model_params" not in seen[0]
    assert f"pretrained model: {train / 'out' / 'models' / 'best'} (test mAP@0.5 0.000" in capsys.readouterr().out


@pytest.mark.slow
def test_two_rounds_through_the_yolov5_image_move_images_and_resume(dataset, tmp_path):
    plan = Plan(dataset=dataset, image="yolov5", miners=(Miner("entropy"),), out=tmp_path / "out", initial=4, k=2,
                rounds=2, seeds=(0,), epochs=1, img_size=64)
    lines: list[str] = []
    results = Loop(plan, echo=lines.append).run()
    run = tmp_path / "out" / "sample" / "yolov5"
    initial = set(Loop(plan).initial_set(0))
    for miner in ("random", "entropy"):
        labelled = set(initial)
        for r in (1, 2):
            folder = run / "seed0" / miner / f"round{r}"
            picked = json.loads((folder / "mine" / "step.json").read_text())["picked"]
            candidates = (folder / "mine" / "in" / "candidate-index.tsv").read_text().splitlines()
            assert len(picked) == 2 and not set(picked) & labelled  # moved from U ...
            assert len(candidates) == 10 - len(labelled)             # ... which shrank by k
            labelled |= set(picked)
            trained = json.loads((folder / "train" / "step.json").read_text())
            assert set(trained["train"]) | set(trained["val"]) == labelled  # ... into L
            assert (folder / "mine" / "picks.png").stat().st_size > 0
        curve = results["curves"][miner]["0"]
        assert [p["labelled"] for p in curve] == [4, 6, 8]
        assert all(0.0 <= p["map50"] <= 1.0 for p in curve)
    assert len(lines) == 1 + 2 * 2
    report = write_report(tmp_path / "out")
    assert (run / "curve.png").stat().st_size > 0 and "| entropy |" in report.read_text()

    last = run / "seed0" / "entropy" / "round2"
    (last / "eval" / "step.json").unlink()  # killed during the last evaluation
    trained_at = (last / "train" / "step.json").stat().st_mtime_ns
    again = Loop(plan, echo=lines.append).run()
    assert (last / "train" / "step.json").stat().st_mtime_ns == trained_at  # finished steps are kept
    assert (last / "eval" / "step.json").is_file()
    assert [p["map50"] for p in again["curves"]["entropy"]["0"]] == [p["map50"] for p in curve]  # same model


def test_the_diversity_table_has_a_row_per_miner_and_weight():
    rows = [{"miner": "entropy", "diversity": 0.0, "redundant_at": {"10": 3, "25": 9}, "seconds": 12.0},
            {"miner": "entropy", "diversity": 0.5, "redundant_at": {"10": 0, "25": 2}, "seconds": 13.0}]
    text = diversity_table(rows, labelled=50, pool=550, groups_in_pool=183)
    assert "| entropy | 0 | 3 | 9 | - | - | 12 |" in text
    assert "| entropy | 0.5 | 0 | 2 | - | - | 13 |" in text
    assert "183 images of the pool" in text
