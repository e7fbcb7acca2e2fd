"""An image that serves several object kinds, each through a backend of its own.

The seg-in-one image trains detection (YOLOv5), semantic segmentation (mmseg) and instance
segmentation (YOLOv5-seg): three libraries, three hyper-parameter schemas, three template folders
(/img-man/det, /img-man/semantic-seg, /img-man/instance-seg). :class:`KindsBackend` composes one
single-kind backend class per kind and hands every task to the one of its object type, so a
kind's backend is written once and works alone or inside such an image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ymir_base.data.types import Dataset
from ymir_base.engine.backend import Backend, Predictor
from ymir_base.monitor import Monitor
from ymir_base.protocol.context import TaskContext
from ymir_base.results.training import TrainingResult
from ymir_base.tasks import ObjectKind


class KindsBackend(Backend):
    """``parts`` maps a kind name to the backend class serving it; ``kinds`` follows its order
    (the first is the default of `ymir-exec verify`)."""

    parts: ClassVar[dict[str, type[Backend]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        parts = cls.__dict__.get("parts")
        if parts is None:
            return
        wrong = {kind: part.kinds for kind, part in parts.items() if tuple(part.kinds) != (kind,)}
        if wrong:
            raise TypeError(f"{cls.__name__}.parts: each part serves exactly its own kind, got {wrong}")
        cls.kinds = tuple(parts)

    def __init__(self) -> None:
        self._built: dict[str, Backend] = {}

    @classmethod
    def part_class(cls, kind: ObjectKind) -> type[Backend]:
        return cls.parts[kind.name]

    @classmethod
    def params_file_for(cls, kind: ObjectKind) -> Path:
        return cls.part_class(kind).params_file_for(kind)

    @classmethod
    def miners_for(cls, kind: ObjectKind) -> tuple[str, ...]:
        return cls.part_class(kind).miners_for(kind)

    @classmethod
    def quick_settings_for(cls, kind: ObjectKind) -> dict[str, dict[str, Any]]:
        return cls.part_class(kind).quick_settings_for(kind)

    @classmethod
    def demo_settings(cls, work_dir: Path) -> dict[str, dict[str, Any]]:
        """The demo of the first kind that has one."""
        for kind in cls.served():
            settings = cls.part_class(kind).demo_settings(work_dir)
            if settings:
                return settings
        return {}

    def part(self, ctx: TaskContext) -> Backend:
        """The backend of the task's object type (300005 for a type the image does not serve)."""
        kind = self.kind_for(ctx.object_type)
        if kind.name not in self._built:
            self._built[kind.name] = self.part_class(kind)()
        return self._built[kind.name]

    def train(self, ctx: TaskContext, dataset: Dataset, monitor: Monitor, result: TrainingResult) -> None:
        self.part(ctx).train(ctx, dataset, monitor, result)

    def predictor(self, ctx: TaskContext) -> Predictor:
        return self.part(ctx).predictor(ctx)
