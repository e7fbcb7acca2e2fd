"""The four object kinds the base knows, and what each one means for the outputs."""

from __future__ import annotations

from dataclasses import dataclass

from ymir_base.errors import ConfigError
from ymir_base.protocol.config import OBJECT_TYPE_DIRS
from ymir_base.tasks.writers import DetectionWriter, InferWriter, SegmentationWriter


@dataclass(frozen=True)
class ObjectKind:
    name: str               # detection | rotated | semantic | instance
    object_type: int        # YMIR's number in config.yaml and manifest.yaml
    metrics: tuple[str, ...]  # stage metrics in result.yaml, as fractions; the first is the main one
    writer: InferWriter     # infer-result.json
    sample: str             # object type name of ymir_base.sample.generator for this kind's sample data
    export_formats: tuple[str, ...]  # annotation part of export_format that can carry this kind
    export_note: str = ""   # why the others cannot, for the error message

    @property
    def main_metric(self) -> str:
        return self.metrics[0]

    def check_export_format(self, export_format: str) -> None:
        """ConfigError (300001) when the dataset's export format cannot carry this kind."""
        annotation = export_format.split(":", 1)[0].strip().lower()
        if export_format and annotation not in self.export_formats:
            choices = ", ".join(f"{f}:raw" for f in self.export_formats)
            raise ConfigError(f"config key 'export_format': {export_format!r} cannot carry {self.name} annotations"
                              + (f" ({self.export_note})" if self.export_note else "") + f"; use one of: {choices}")

    @property
    def template_dir(self) -> str:
        """/img-man/<dir>/ of an image that serves several types (YMIR's IMAGE_CONFIG_DIR_NAMES)."""
        return OBJECT_TYPE_DIRS[self.object_type]


_BOXES = ("ark", "det-ark", "voc", "det-voc")
_MASKS = ("seg-coco", "coco")
DETECTION = ObjectKind("detection", 2, ("mAP", "mAR"), DetectionWriter(), "detection", (*_BOXES, *_MASKS))
ROTATED = ObjectKind("rotated", 2, ("mAP", "mAR"), DetectionWriter(with_angle=True), "rotated", _BOXES,
                     "YMIR's COCO export drops rotate_angle")
SEMANTIC = ObjectKind("semantic", 3, ("mIoU", "mAcc"), SegmentationWriter(instance=False), "semantic", _MASKS,
                      "only COCO exports carry masks")
INSTANCE = ObjectKind("instance", 4, ("maskAP", "boxAP"), SegmentationWriter(instance=True), "instance", _MASKS,
                      "only COCO exports carry masks")
KINDS = {k.name: k for k in (DETECTION, ROTATED, SEMANTIC, INSTANCE)}


def kind_named(name: str) -> ObjectKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown object kind {name!r}; known: {', '.join(KINDS)}") from None
