"""``ymir-exec``: run any image's logic on the host, make sample data, verify, show templates."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml


def _cmd_sample(args: argparse.Namespace) -> int:
    from ymir_base.sample.generator import generate

    out = generate(Path(args.out), task=args.task, object_type=args.object_type, fmt=args.format,
                   images=args.images, seed=args.seed)
    print(f"wrote a YMIR /in folder for {args.task} ({args.object_type}, {args.format}) to {out}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from ymir_base.engine.task import run_task
    from ymir_base.errors import ConfigError
    from ymir_base.protocol.config import parse_overrides

    try:
        overrides = parse_overrides(args.set or [])
    except ConfigError as exc:
        print(f"ymir-exec: {exc}", file=sys.stderr)
        return 2
    Path(args.out).mkdir(parents=True, exist_ok=True)
    return run_task(args.image, Path(args.in_dir), Path(args.out), overrides,
                    Path(args.img_man) if args.img_man else None)


def _cmd_verify(args: argparse.Namespace) -> int:
    from ymir_base.protocol.config import parse_overrides
    from ymir_base.verify.container import ContainerRunner
    from ymir_base.verify.pipeline import in_process, verify

    runner = ContainerRunner(args.docker, user=args.user) if args.docker else in_process
    report = verify(args.image, Path(args.keep) if args.keep else None, gpu_id=args.gpu_id,
                    overrides=parse_overrides(args.set or []), fmt=args.format,
                    echo=lambda line: print(line, flush=True), object_type=args.object_type, runner=runner)
    print("times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in report.timings.items()))
    passed = sum(ok for ok, _, _ in report.lines)
    print(f"verify {args.image}: {passed} passed, {len(report.lines) - passed} failed")
    if args.keep:
        _summary(Path(args.keep))
    return 0 if report.ok else 1


def _summary(root: Path) -> None:
    result = root / "training" / "out" / "models" / "result.yaml"
    if result.is_file():
        data = yaml.safe_load(result.read_text())
        best = data["model_stages"][data["best_stage_name"]]
        metric = next((k for k in ("mAP", "mIoU", "maskAP") if k in data), "mAP")
        print(f"\ntraining: {len(data['model_stages'])} stage(s), best {data['best_stage_name']} "
              f"{metric} {best.get(metric, 0):.4f} -> {result.parent}")
    infer = root / "infer" / "out" / "infer-result.json"
    if infer.is_file():
        document = json.loads(infer.read_text())
        if "detection" in document:
            boxes = sum(len(v["boxes"]) for v in document["detection"].values())
            print(f"infer: {boxes} boxes on {len(document['detection'])} images -> {infer}")
        else:  # segmentation: the COCO form of protocol §7.2.2
            print(f"infer: {len(document['annotations'])} masks on {len(document['images'])} images -> {infer}")
    for tsv in sorted(root.glob("mining-*/out/result.tsv")):
        rows = tsv.read_text().splitlines()
        top = rows[0].split("\t") if rows else ["-", "-"]
        print(f"{tsv.parts[-3]}: {len(rows)} candidates ranked, top {top[0].rsplit('/', 1)[-1]} "
              f"score {top[1]} -> {tsv}")


def _cmd_demo(args: argparse.Namespace) -> int:
    import shutil

    from ymir_base.demo.pipeline import run_demo

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    result = run_demo(args.image, out, echo=lambda line: print(line, flush=True), min_map=args.min_map)
    print("\n" + "\n".join(result.summary))
    return 0 if result.ok else 1


def _cmd_templates(args: argparse.Namespace) -> int:
    from ymir_base.engine.registry import image_spec
    from ymir_base.protocol.config import OBJECT_TYPE_DIRS

    spec = image_spec(args.image, Path(args.img_man) if args.img_man else None)
    for object_type in spec.object_types:
        folder = f"{OBJECT_TYPE_DIRS[object_type]}/" if spec.per_type_templates else ""
        for task in ("training", "mining", "infer"):
            print(f"# {folder}{task}-template.yaml")
            print(yaml.safe_dump(spec.defaults(task, object_type), sort_keys=False, allow_unicode=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ymir-exec", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample", help="write a synthetic YMIR /in folder")
    p.add_argument("--out", required=True)
    p.add_argument("--task", default="training", choices=["training", "mining", "infer", "mining+infer"])
    p.add_argument("--object-type", default="detection", choices=["detection", "rotated", "semantic", "instance"])
    p.add_argument("--format", default="ark", choices=["ark", "voc", "coco"])
    p.add_argument("--images", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("run", help="run IMAGE's task on an /in folder, writing to an /out folder")
    p.add_argument("image")
    p.add_argument("--in", dest="in_dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a hyper-parameter")
    p.add_argument("--img-man", help="the image's /img-man folder (default: the one in this repository)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("verify", help="sample data -> train -> infer -> mine, every output checked")
    p.add_argument("image")
    p.add_argument("--keep", help="work in this folder and keep the outputs")
    p.add_argument("--gpu-id", default="", help="e.g. 0 or 0,1 (default: CPU)")
    p.add_argument("--format", default="ark", choices=["ark", "voc", "coco"])
    p.add_argument("--object-type", type=int, choices=[2, 3, 4],
                   help="which of the image's object types to verify (default: the first it serves)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a training hyper-parameter")
    p.add_argument("--docker", metavar="TAG",
                   help="run every task in this built image as YMIR does (docker run, /in read-only, --user, "
                        "no network) instead of in this process")
    p.add_argument("--user", default="4242:4242", help="with --docker: the uid:gid to run as (default %(default)s)")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("demo", help="train a model that learns the sample data, infer, mine, draw, summarise")
    p.add_argument("image", nargs="?", default="yolov5")
    p.add_argument("--out", default="demo-out", help="folder for every task's /in and /out and the pictures")
    p.add_argument("--min-map", type=float, default=0.5, help="fail when the best mAP@0.5 stays below this")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("templates", help="print IMAGE's merged default templates")
    p.add_argument("image")
    p.add_argument("--img-man")
    p.set_defaults(func=_cmd_templates)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
