"""The seg-in-one image's semantic segmentation (object type 3): FastSCNN and HRNet (FCN heads) through
mmsegmentation's own Cityscapes configs, trained by iterations as the seed's parameters are.

What differs from the detection images of the OpenMMLab layer: the object kind (semantic, type 3),
the annotations (label-map PNGs, see ymir_base/data/convert/semantic.py), the evaluator (IoU over the project's classes,
see metric.py), the predictor (label maps, see predictor.py), the checkpoint options of the seed
(``save_least_file``, ``max_keep_ckpts``) and the sizes mmseg keeps outside the pipelines.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ymir_base.data.convert import semantic as labels
from ymir_base.data.types import Dataset, ImageRecord
from ymir_base.engine.backend import Predictor
from ymir_base.errors import ConfigError
from ymir_base.mining import algorithm_names
from ymir_base.monitor import Monitor
from ymir_base.protocol.coerce import COERCERS
from ymir_base.protocol.context import TaskContext
from ymir_base.results.metrics import SemanticEvaluation
from ymir_base.results.training import TrainingResult
from ymir_openmmlab import config as mmcfg
from ymir_openmmlab.backend import OpenMMLabBackend
from ymir_seginone.models import DEFAULT_CONFIG, MODELS, config_dir, model_of

if TYPE_CHECKING:
    from mmengine.config import Config

LOG = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
QUICK_PREDICT = {"samples_per_gpu": 4, "workers_per_gpu": 0}


def ignore_blank(config: Mapping[str, Any]) -> bool:
    """``ignore_blank_area``, or the seed's spelling ``ignore_black_area``: either one true."""
    values = []
    for key in ("ignore_blank_area", "ignore_black_area"):
        if config.get(key) in (None, ""):
            continue
        try:
            values.append(COERCERS["bool"](config[key]))
        except ValueError as exc:
            raise ConfigError(f"config key '{key}': {exc}") from None
    return any(values)


def semantic_miners() -> tuple[str, ...]:
    """The image's mining choices that the base registers for semantic tasks (every one of them;
    the backend contract test holds them equal). For `verify` and the bench."""
    offered = SemanticBackend.miners_for(SemanticBackend.served()[0])
    return tuple(m for m in offered if m.lower() in algorithm_names("semantic"))


class SemanticBackend(OpenMMLabBackend):
    name = "seg-in-one"
    scope = "mmseg"
    kinds: ClassVar[tuple[str, ...]] = ("semantic",)
    img_man_dir = HERE.parent / "img-man"
    params_file = HERE / "params_semantic.yaml"
    quick_settings: ClassVar[dict[str, dict[str, Any]]] = {
        "training": {"config_file": DEFAULT_CONFIG, "max_iters": 10, "interval": 5, "img_size": 128,
                     "samples_per_gpu": 4, "workers_per_gpu": 0},
        "infer": dict(QUICK_PREDICT), "mining": dict(QUICK_PREDICT)}
    annotation_dir: ClassVar[str] = "semantic"

    def __init__(self) -> None:
        self.ignore_blank = False

    def model_key(self, ctx: TaskContext) -> str:
        return model_of(str(ctx.config["config_file"]))

    def config_path(self, ctx: TaskContext) -> Path:
        return config_dir() / MODELS[self.model_key(ctx)]

    def train(self, ctx: TaskContext, dataset: Dataset, monitor: Monitor, result: TrainingResult) -> None:
        self.ignore_blank = ignore_blank(ctx.config)
        labels.model_classes(ctx.class_names, self.ignore_blank)  # checks the class list
        self.checkpoints_to_keep(ctx)  # checks the checkpoint options before any work
        records = [*dataset.train, *dataset.val]
        labels.check_categories([ctx.host(r.annotation) for r in records if r.annotation], ctx.class_names)
        LOG.info("unlabelled pixels: %s", "ignored (255)" if self.ignore_blank else
                 f"the training-only class {labels.BLANK_CLASS!r} (index {len(ctx.class_names)})")
        super().train(ctx, dataset, monitor, result)

    def write_annotations(self, records: list[ImageRecord], class_names: Sequence[str], out_file: Path) -> None:
        labels.write_split(records, class_names, out_file, ignore_blank=self.ignore_blank)

    def configure_data(self, cfg: Config, train_file: Path, val_file: Path, class_names: list[str],
                       metric: str) -> None:
        from ymir_seginone.dataset import YmirSegDataset  # registers them
        from ymir_seginone.metric import ProjectIoUMetric
        from ymir_seginone.predictor import SEMANTIC_KEY

        classes = labels.model_classes(class_names, self.ignore_blank)
        mmcfg.set_num_classes(cfg.model, len(classes))
        for loader, ann_file in ((cfg.train_dataloader, train_file), (cfg.val_dataloader, val_file),
                                 (cfg.test_dataloader, val_file)):
            leaves = mmcfg.dataset_leaves(loader.dataset) or [loader.dataset]
            for leaf in leaves:
                leaf.update(type=YmirSegDataset.__name__, data_root="", ann_file=str(ann_file),
                            data_prefix={"img_path": "", "seg_map_path": ""}, metainfo={"classes": tuple(classes)},
                            reduce_zero_label=False)
        for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
            for ev in evaluator if isinstance(evaluator, list) else [evaluator]:
                ev.update(type=ProjectIoUMetric.__name__, project_classes=len(class_names), iou_metrics=["mIoU"],
                          ignore_index=labels.IGNORE_INDEX)
        blank = None if self.ignore_blank else len(class_names)
        cfg[SEMANTIC_KEY] = {"classes": list(class_names), "blank_index": blank}

    def adapt_config(self, cfg: Config, ctx: TaskContext, total_iters: int) -> None:
        fit_model_sizes(cfg)
        if ctx.gpu_count <= 1:
            swapped = swap_sync_bn(cfg.model)
            if swapped:
                LOG.warning("training in one process (%s): the %d SyncBN norm config(s) of the model are plain BN in "
                            "this run (SyncBN needs a distributed run)", "CPU" if not ctx.gpu_ids else "one GPU",
                            swapped)

    def checkpoints_to_keep(self, ctx: TaskContext) -> int:
        """The seed's options: ``save_least_file`` keeps the best and the last stage only; without
        it ``max_keep_ckpts`` latest stages are kept besides the best, -1 keeps all."""
        if COERCERS["bool"](ctx.config.get("save_least_file", True)):
            return 1
        keep = int(ctx.config.get("max_keep_ckpts", -1))
        if keep == 0 or keep < -1:
            raise ConfigError(f"config key 'max_keep_ckpts': {keep}; use -1 (keep all) or a count >= 1")
        return keep

    def score_threshold(self, cfg: Config) -> float | None:
        return None

    def evaluation(self, metrics: Mapping[str, Any], class_names: Sequence[str]) -> SemanticEvaluation:
        """ProjectIoUMetric's fractions (metric.py)."""
        short = {k.split("/", 1)[-1]: v for k, v in metrics.items()}
        per_class = {n: {"IoU": short.get(f"IoU.{n}"), "Acc": short.get(f"Acc.{n}")} for n in class_names}
        return SemanticEvaluation(miou=short.get("mIoU", 0.0), macc=short.get("mAcc", 0.0), aacc=short.get("aAcc"),
                                  per_class=per_class)

    def predictor(self, ctx: TaskContext) -> Predictor:
        from ymir_seginone.predictor import SemanticPredictor

        return SemanticPredictor.from_context(ctx)


def fit_model_sizes(cfg: Config) -> None:
    """The sizes mmseg keeps in the model follow the (possibly scaled) training crop: the data
    preprocessor pads training batches to ``size`` (upstream: the crop size), and sliding-window
    inference (``test_cfg.mode='slide'``) crops and strides in proportion to it."""
    crops = [tuple(d["crop_size"]) for d in mmcfg.walk(cfg.train_dataloader.dataset.get("pipeline", []))
             if "crop_size" in d]
    preprocessor = cfg.model.get("data_preprocessor") or {}
    old = preprocessor.get("size")
    if not crops or old is None or tuple(old) == crops[0]:
        return
    crop = crops[0]
    preprocessor["size"] = crop
    test_cfg = cfg.model.get("test_cfg") or {}
    if test_cfg.get("mode") == "slide":
        factor = (crop[0] / old[0], crop[1] / old[1])
        for key in ("crop_size", "stride"):
            if key in test_cfg:
                test_cfg[key] = tuple(max(1, round(v * f)) for v, f in zip(test_cfg[key], factor, strict=True))


def swap_sync_bn(model_cfg: dict) -> int:
    """SyncBN -> BN in every norm config of the model; returns how many were changed."""
    swapped = 0
    for d in mmcfg.walk(model_cfg):
        if d.get("type") == "SyncBN":
            d["type"] = "BN"
            swapped += 1
    return swapped
