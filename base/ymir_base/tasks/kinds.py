"""The four object kinds the base knows, and what each one means for the outputs."""

from __future__ import annotations

from dataclasses import dataclass

from ymir_base.protocol.config import OBJECT_TYPE_DIRS
from ymir_base.tasks.writers import DetectionWriter, InferWriter, SegmentationWriter


@dataclass(frozen=True)
class ObjectKind:
    name: str               # detection | rotated | semantic | instance
    object_type: int        # YMIR's number in config.yaml and manifest.yaml
    metrics: tuple[str, ...]  # stage metrics in result.yaml, as fractions; the first is the main one
    writer: InferWriter     # infer-result.json
    sample: str             # object type name of ymir_base.sample.generator for this kind's sample data

    @property
    def main_metric(self) -> str:
        return self.metrics[0]

    @property
    def template_dir(self) -> str:
        """/img-man/<dir>/ of an image that serves several types (YMIR's IMAGE_CONFIG_DIR_NAMES)."""
        return OBJECT_TYPE_DIRS[self.object_type]


DETECTION = ObjectKind("detection", 2, ("mAP", "mAR"), DetectionWriter(), "detection")
ROTATED = ObjectKind("rotated", 2, ("mAP", "mAR"), DetectionWriter(with_angle=True), "rotated")
SEMANTIC = ObjectKind("semantic", 3, ("mIoU", "mAcc"), SegmentationWriter(instance=False), "semantic")
INSTANCE = ObjectKind("instance", 4, ("maskAP", "boxAP"), SegmentationWriter(instance=True), "instance")
KINDS = {k.name: k for k in (DETECTION, ROTATED, SEMANTIC, INSTANCE)}


def kind_named(name: str) -> ObjectKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown object kind {name!r}; known: {', '.join(KINDS)}") from None
