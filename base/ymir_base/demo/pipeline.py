"""``ymir-exec demo IMAGE``: train a small model until it really detects the sample's shapes,
infer on new images at the template's threshold, mine with every algorithm, then draw what the
model sees, plot its training curve and print a summary measured on this run."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import yaml

from ymir_base.data.reader import load_split
from ymir_base.demo.compare import Box, Match, match
from ymir_base.demo.curve import plot_training_curve, read_scalars
from ymir_base.demo.draw import comparison_sheet
from ymir_base.engine.registry import backend_class, image_spec
from ymir_base.protocol.paths import PathMapper
from ymir_base.results.metrics import MAP_TAG
from ymir_base.sample.generator import generate
from ymir_base.verify.pipeline import Report, candidate_paths, class_names_of, verify

CANDIDATE_SEED = 2  # candidates are new images: the training folder uses seed 1
PICTURE, CURVE = "predictions.png", "training-curve.png"


@dataclass
class DemoResult:
    report: Report
    summary: list[str] = field(default_factory=list)
    best_map: float = 0.0
    ok: bool = False


def run_demo(image: str, out_dir: Path, *, echo: Callable[[str], None] = print, min_map: float = 0.5,
             images: int | None = None, candidates: int = 12, shown: int = 6) -> DemoResult:
    """Run the demo into ``out_dir`` (``<task>/in`` and ``<task>/out`` per task, the two PNGs)."""
    backend = backend_class(image)
    out_dir = Path(out_dir)
    settings = backend.demo_settings(out_dir / "settings")
    if not settings:
        raise ValueError(f"image {image!r} has no demo settings")
    images = images or backend.demo_images
    started = time.perf_counter()
    report = verify(image, out_dir, images=images, settings=settings, candidates=candidates,
                    candidate_seed=CANDIDATE_SEED, echo=echo)
    result = DemoResult(report)
    models = yaml.safe_load((out_dir / "training/out/models/result.yaml").read_text()) \
        if (out_dir / "training/out/models/result.yaml").is_file() else None
    if models is None:
        result.summary = [f"demo {image}: training wrote no result.yaml; see {out_dir / 'training/out'}"]
        return result
    result.best_map = float(models.get("mAP", 0.0))

    class_names = class_names_of(out_dir / "training/in")
    truth = _ground_truth(out_dir / "ground-truth" / "in", candidates, class_names)
    predicted = _predictions(out_dir / "infer/out/infer-result.json")
    total = Match()
    for name, boxes in truth.items():
        total += match(boxes, predicted.get(name, []))
    order = [c.rsplit("/", 1)[-1] for c in candidate_paths(out_dir / "infer/in")]
    items = [(name, cv2.imread(str(_asset(out_dir / "infer/in", name))), truth.get(name, []),
              predicted.get(name, [])) for name in order[:shown]]
    picture = comparison_sheet(items, class_names, out_dir / PICTURE)

    series = read_scalars(out_dir / "training/out/tensorboard")
    map_tag = MAP_TAG if MAP_TAG in series else None  # mAP@0.5, the stage mAP, in every image
    train = settings["training"]
    curve = plot_training_curve(series, map_tag, out_dir / CURVE,
                                title=f"{image} {_model(train)} on the sample shapes") if map_tag else None
    result.ok = report.ok and result.best_map >= min_map
    result.summary = _summary(image, out_dir, settings, models, series.get(map_tag or "", []), total,
                              sum(len(v) for v in predicted.values()), len(order), picture, curve,
                              report, time.perf_counter() - started, min_map)
    return result


def _model(train: dict) -> str:
    return str(train.get("model") or train.get("model_name") or train.get("config_file") or "")


def _ground_truth(in_dir: Path, count: int, class_names: list[str]) -> dict[str, list[Box]]:
    """The candidates' boxes: the generator draws the same images for a training folder of the
    same seed, and writes their annotations there."""
    generate(in_dir, task="training", object_type="detection", fmt="ark", images=count, seed=CANDIDATE_SEED,
             class_names=class_names)
    mapper = PathMapper(in_dir, in_dir.parent / "out")
    truth: dict[str, list[Box]] = {}
    for index in ("train-index.tsv", "val-index.tsv"):
        for record in load_split(in_dir / index, mapper, class_names, "ark:raw"):
            truth[record.name] = [Box(*o.bbox, class_names[o.class_id]) for o in record.objects]
    return truth


def _predictions(infer_result: Path) -> dict[str, list[Box]]:
    detection = json.loads(infer_result.read_text())["detection"] if infer_result.is_file() else {}
    return {name: [Box(b["box"]["x"], b["box"]["y"], b["box"]["x"] + b["box"]["w"], b["box"]["y"] + b["box"]["h"],
                       b["class_name"], float(b["score"])) for b in entry["boxes"]]
            for name, entry in detection.items()}


def _asset(in_dir: Path, name: str) -> Path:
    return in_dir / "assets" / Path(name).stem[-2:] / name


def _summary(image: str, out_dir: Path, settings: dict, models: dict, map_curve: list[tuple[int, float]],
             total: Match, boxes: int, candidates: int, picture: Path, curve: Path | None, report: Report,
             seconds: float, min_map: float) -> list[str]:
    train, infer = settings["training"], settings.get("infer", {})
    n_train = len((out_dir / "training/in/train-index.tsv").read_text().splitlines())
    n_val = len((out_dir / "training/in/val-index.tsv").read_text().splitlines())
    best = models["best_stage_name"]
    lines = [f"demo {image}: {'PASS' if report.ok else 'FAIL'} "
             f"({sum(ok for ok, _, _ in report.lines)}/{len(report.lines)} protocol checks), {seconds:.0f} s"]
    epochs = train.get("epochs", train.get("max_epochs"))
    lines.append(f"trained {_model(train)} for {epochs} epochs at {train.get('img_size')} px on {n_train} sample "
                 f"images ({n_val} for validation) in {report.timings.get('training', 0):.0f} s")
    if train.get("args_options"):
        lines.append(f"  with args_options: {train['args_options']}")
    if map_curve:
        lines.append(f"  mAP@0.5 on the validation images: {map_curve[0][1]:.3f} after epoch {map_curve[0][0]}, "
                     f"{map_curve[-1][1]:.3f} after epoch {map_curve[-1][0]}")
    lines.append(f"  result.yaml: best stage '{best}', mAP@0.5 {models.get('mAP', 0.0):.3f}"
                 + ("" if models.get("mAP", 0.0) >= min_map else f"  <- below {min_map}: the model did not learn"))
    spec = image_spec(image)
    effective = {**spec.defaults("infer", spec.object_types[0]), **infer}
    conf = next((f"{effective[k]} ({k})" for k in ("conf_thres", "conf_threshold") if k in effective), "default")
    lines.append(f"infer on {candidates} new images at confidence {conf}: {boxes} boxes, {total.correct} right, "
                 f"{total.wrong} wrong, {total.missed} objects missed (right = same class, IoU >= 0.5)")
    lines.append("mining, the top 3 of each result.tsv (score):")
    for tsv in sorted(out_dir.glob("mining*/out/result.tsv")):
        rows = [r.split("\t") for r in tsv.read_text().splitlines()[:3]]
        picks = ", ".join(f"{r[0].rsplit('/', 1)[-1][:10]}.. {float(r[1]):.3g}" for r in rows)
        lines.append(f"  {tsv.parts[-3]:<16} {picks}")
    lines.append(f"pictures: {picture} (ground truth | predicted), {curve or 'no training curve (no mAP scalar)'}")
    lines.append(f"each task's /in and /out: {out_dir}/<task>/in, {out_dir}/<task>/out "
                 f"({', '.join(report.timings)}); ground truth of the new images: {out_dir}/ground-truth/in")
    return lines
