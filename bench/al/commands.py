"""The ``run``, ``pretrain``, ``convert``, ``diversity`` and ``report`` subcommands of bench/al_bench.py."""

from __future__ import annotations

import argparse
from pathlib import Path

from al.convert import yolov5_to_mmyolo
from al.diversity import write_study
from al.loop import Loop, Miner, Plan
from al.report import write_report

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "bench-out" / "al"


def add_run(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="run the loop for one image on one prepared dataset",
                              description="Rounds of train / evaluate / mine through 'ymir-exec run IMAGE'; "
                                          "a killed run picks up at its last finished step when rerun.")
    p.add_argument("dataset", type=Path, help="a prepared dataset folder (images/, pool.json, test.json)")
    p.add_argument("--image", required=True, help="the executor image, e.g. yolov5, mmdet, mmyolo")
    p.add_argument("--miners", default="random,entropy",
                   help="comma-separated mining algorithms of the image, NAME or NAME:DIVERSITY "
                        "(random is always added)")
    p.add_argument("--initial", type=int, default=10, help="labelled images before the first round")
    p.add_argument("-k", type=int, default=10, help="images moved from the pool to the labelled set per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (initial set, validation split)")
    p.add_argument("--jobs", type=int, default=1,
                   help="tasks at once: round 0 of every seed, then every (seed, miner) curve (e.g. on one GPU)")
    _model_options(p)
    _pretrained_option(p)
    p.add_argument("--full-pool", action="store_true",
                   help="per seed, also train on the whole pool: the level labelling everything gives, drawn "
                        "with the curves (a setting where the curves already reach it is too easy to tell "
                        "miners apart; one where it stays low, too small)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.set_defaults(func=run)


def _pretrained_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pretrained", type=Path, metavar="MODEL_DIR",
                   help="every training starts from this model (a stage folder, e.g. the one "
                        "'al_bench.py pretrain' prints) with the image's own fine-tuning settings")


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--model", help="the image's model instead of the scale's (e.g. yolov5n)")
    p.add_argument("--epochs", type=int, help="training epochs per round (default: the scale's)")
    p.add_argument("--img-size", type=int, help="input size of every task (default: the scale's)")


def add_pretrain(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("pretrain", help="train one model on a whole pool, e.g. a source set, to start from",
                              description="One training task on every pool image of a prepared set (e.g. "
                                          "'data fashion --source N'), evaluated on its test set; prints the "
                                          "model folder to give 'run --pretrained'.")
    p.add_argument("dataset", type=Path, help="a prepared dataset folder (images/, pool.json, test.json)")
    p.add_argument("--image", required=True)
    _model_options(p)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.set_defaults(func=pretrain)


def add_convert(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("convert", help="a yolov5 model folder as mmyolo's YOLOv5 pretrained start",
                              description="Converts a yolov5 stage (e.g. the one 'pretrain --image yolov5' prints) "
                                          "with mmyolo's own key mapping, so that mmyolo's curves start from the "
                                          "same detecting model without a pretraining of their own.")
    p.add_argument("model", type=Path, help="a yolov5 stage folder (one .pt file)")
    p.add_argument("--out", type=Path, required=True, help="the model folder to write")
    p.set_defaults(func=convert)


def add_diversity(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("diversity", help="near-duplicate picks per miner and diversity weight (rankings only)",
                              description="Mining tasks with the round-0 model of a plan, one per miner and "
                                          "diversity weight; counts the near-duplicates in each ranking's top n.")
    p.add_argument("dataset", type=Path, help="a prepared dataset folder with near-duplicate groups (fashion)")
    p.add_argument("--image", required=True)
    p.add_argument("--miners", default="random,entropy", help="comma-separated algorithm names")
    p.add_argument("--weights", default="0,0.25,0.5,1", help="comma-separated diversity weights")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--initial", type=int, default=10, help="labelled images the round-0 model trains on")
    _model_options(p)
    _pretrained_option(p)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.set_defaults(func=diversity)


def add_report(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="curves, tables and report.md of every run under a folder")
    p.add_argument("out", type=Path, nargs="?", default=DEFAULT_OUT)
    p.set_defaults(func=report)


def run(args: argparse.Namespace) -> int:
    miners = tuple(Miner.parse(m) for m in args.miners.split(",") if m.strip())
    plan = Plan(dataset=args.dataset, image=args.image, miners=miners, out=args.out, initial=args.initial, k=args.k,
                rounds=args.rounds, seeds=tuple(int(s) for s in args.seeds.split(",")), scale=args.scale,
                epochs=args.epochs, img_size=args.img_size, pretrained=args.pretrained, model=args.model,
                full_pool=args.full_pool)
    Loop(plan, echo=lambda line: print(line, flush=True), jobs=args.jobs).run()
    print(write_report(args.out))
    return 0


def pretrain(args: argparse.Namespace) -> int:
    # a plan of round 0 only, whose labelled set is the whole pool (k and rounds are not used)
    plan = Plan(dataset=args.dataset, image=args.image, miners=(), out=args.out, initial=3, k=1, rounds=1,
                seeds=(0,), scale=args.scale, epochs=args.epochs, img_size=args.img_size, model=args.model)
    loop = Loop(plan, echo=lambda line: print(line, flush=True))
    point, model = loop.train_and_evaluate(loop.folder / "pretrain", 0, list(loop.dataset.pool), 0, None)
    print(f"pretrained model: {model} (test mAP@0.5 {point.map50:.3f}, mAP@0.5:0.95 {point.map:.3f}; "
          f"{point.seconds['train']:.0f} s training)")
    return 0


def convert(args: argparse.Namespace) -> int:
    target = yolov5_to_mmyolo(args.model, args.out)
    print(f"mmyolo start: {target}\nuse: run ... --image mmyolo --model {target.stem} --pretrained {target.parent}")
    return 0


def diversity(args: argparse.Namespace) -> int:
    plan = Plan(dataset=args.dataset, image=args.image, miners=(), out=args.out, initial=args.initial,
                seeds=(args.seed,), scale=args.scale, epochs=args.epochs, img_size=args.img_size,
                pretrained=args.pretrained, model=args.model)
    out = write_study(Loop(plan, echo=lambda line: print(line, flush=True)), args.seed,
                      [m.strip().lower() for m in args.miners.split(",") if m.strip()],
                      [float(w) for w in args.weights.split(",")])
    print(out.read_text(encoding="utf-8"))
    return 0


def report(args: argparse.Namespace) -> int:
    print(write_report(args.out))
    return 0
