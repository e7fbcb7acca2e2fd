"""The mmrotate image's backend: rotated RTMDet through mmrotate's own DOTA configs.

What differs from the mmdet and mmyolo images: the object kind (rotated boxes, object type 2 with
angles), the annotations (corners, see data.py), the evaluator (DOTAMetric: mAP with rotated
IoU), and on CPU the box loss (see ``adapt_config``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ymir_base.data.types import ImageRecord
from ymir_base.errors import ConfigError
from ymir_base.protocol.context import TaskContext
from ymir_base.results.metrics import DetectionEvaluation
from ymir_mmrotate.data import write_data_list
from ymir_openmmlab import config as mmcfg
from ymir_openmmlab.backend import OpenMMLabBackend, model_named, quick_settings_for

if TYPE_CHECKING:
    from mmengine.config import Config

LOG = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent

# model_name -> config under mmrotate's configs/rotated_rtmdet/: single-scale (RR) and
# multi-scale (MS+RR) DOTA training of each size; the seed table's tiny/s/m and mmrotate's l
MODELS: dict[str, str] = {
    **{f"rotated_rtmdet_{s}": f"rotated_rtmdet_{s}-3x-dota.py" for s in ("tiny", "s", "m", "l")},
    **{f"rotated_rtmdet_{s}_ms": f"rotated_rtmdet_{s}-3x-dota_ms.py" for s in ("tiny", "s", "m", "l")},
}
DEFAULT_MODEL = "rotated_rtmdet_tiny"
# DOTAMetric at these IoUs: AP50 is the stage mAP; AP75 and the mean of all (mAP@[.5:.95]) go to
# tensorboard and the stage's metrics attachment
IOU_THRESHOLDS = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
# RotatedIoULoss needs mmcv's CUDA-only diff_iou_rotated; the Gaussian Wasserstein loss runs
# anywhere. Not its KLD form: the tiny/s/m heads regress box sides linearly (exp_on_reg=False), so
# a freshly initialised head predicts sides near 0 and KLD inverts a singular covariance (NaN at
# the first iteration, measured); GWD has no inverse.
CPU_BOX_LOSS = {"type": "GDLoss", "loss_type": "gwd", "fun": "log1p", "tau": 1.0}
# the shipped test settings keep 2000 boxes per image: an untrained model scores all of them
# above a tiny threshold, and rotated NMS over them takes minutes per image on a CPU
QUICK_NMS = "model.test_cfg.nms_pre=200 model.test_cfg.max_per_img=100"


def config_dir() -> Path:
    import mmrotate

    return Path(mmrotate.__file__).resolve().parent / ".mim" / "configs" / "rotated_rtmdet"


def _quick_settings() -> dict[str, dict[str, Any]]:
    quick = quick_settings_for({"model_name": DEFAULT_MODEL})
    for settings in quick.values():
        settings["cfg_options"] = QUICK_NMS
    return quick


class MmrotateBackend(OpenMMLabBackend):
    name = "mmrotate"
    scope = "mmrotate"
    kinds: ClassVar[tuple[str, ...]] = ("rotated",)
    img_man_dir = HERE.parent / "img-man"
    params_file = HERE / "params.yaml"
    quick_settings: ClassVar[dict[str, dict[str, Any]]] = _quick_settings()
    annotation_dir: ClassVar[str] = "rotated"

    def model_key(self, ctx: TaskContext) -> str:
        return model_named(ctx, MODELS)

    def config_path(self, ctx: TaskContext) -> Path:
        return config_dir() / MODELS[self.model_key(ctx)]

    def write_annotations(self, records: list[ImageRecord], class_names: Sequence[str], out_file: Path) -> None:
        write_data_list(records, class_names, out_file)

    def configure_data(self, cfg: Config, train_file: Path, val_file: Path, class_names: list[str],
                       metric: str) -> None:
        for loader, ann_file in ((cfg.train_dataloader, train_file), (cfg.val_dataloader, val_file),
                                 (cfg.test_dataloader, val_file)):
            leaves = mmcfg.dataset_leaves(loader.dataset)
            if not leaves:
                raise ConfigError("the mmrotate config has no dataset with an ann_file to point at the YMIR data")
            for leaf in leaves:
                leaf.update(type="mmdet.BaseDetDataset", data_root="", ann_file=str(ann_file),
                            data_prefix={"img_path": ""}, metainfo={"classes": tuple(class_names)})
        from ymir_mmrotate.metric import InProcessDOTAMetric  # registers it

        for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
            for ev in evaluator if isinstance(evaluator, list) else [evaluator]:
                ev.update(type=InProcessDOTAMetric.__name__, metric="mAP", iou_thrs=list(IOU_THRESHOLDS),
                          format_only=False, merge_patches=False)
                ev.pop("outfile_prefix", None)

    def adapt_config(self, cfg: Config, ctx: TaskContext, total_iters: int) -> None:
        # DOTA's RandomRotate keeps its class ids 9 and 11 (storage tank, roundabout) upright;
        # in a YMIR dataset those ids are other classes
        for d in mmcfg.walk(cfg.train_dataloader.dataset.get("pipeline", [])):
            if str(d.get("type", "")).endswith("RandomRotate"):
                d.pop("rect_obj_labels", None)
        if ctx.gpu_ids:
            return
        for d in mmcfg.walk(cfg.model):
            loss = d.get("loss_bbox")
            if isinstance(loss, dict) and str(loss.get("type", "")).endswith("RotatedIoULoss"):
                d["loss_bbox"] = dict(CPU_BOX_LOSS, loss_weight=loss.get("loss_weight", 1.0))
                LOG.warning("training on CPU: the box loss RotatedIoULoss needs a CUDA-only op, so this run "
                            "uses %s instead (on a GPU the config's loss is kept)", d["loss_bbox"])

    def evaluation(self, metrics: Mapping[str, Any], class_names: Sequence[str]) -> DetectionEvaluation:
        """DOTAMetric's ``dota/AP50`` (mAP@0.5 with rotated IoU), ``dota/AP75`` and ``dota/mAP`` (the
        mean over IOU_THRESHOLDS, i.e. mAP@[.5:.95]), all fractions."""
        short = {k.split("/", 1)[-1]: v for k, v in metrics.items()}
        return DetectionEvaluation(map50=short.get("AP50", 0.0), map50_95=short.get("mAP"), map75=short.get("AP75"))
