"""KindsBackend: an image serving several object kinds hands each task to its kind's backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from ymir_base.engine.backend import Backend
from ymir_base.engine.composite import KindsBackend
from ymir_base.errors import ObjectTypeError
from ymir_base.tasks import kind_named


def _part(kind: str, params: Path, calls: list[tuple[str, Any]]) -> type[Backend]:
    class Part(Backend):
        name = "multi"
        kinds: ClassVar[tuple[str, ...]] = (kind,)
        params_file = params
        quick_settings: ClassVar[dict[str, dict[str, Any]]] = {"training": {"who": kind}}

        def train(self, ctx, dataset, monitor, result) -> None:
            calls.append(("train", kind))

        def predictor(self, ctx):
            calls.append(("predictor", kind))
            return kind

    return Part


@pytest.fixture
def multi(tmp_path):
    calls: list[tuple[str, Any]] = []
    files = {}
    for kind, miners in (("semantic", "[random, RSAL]"), ("instance", "[random, entropy]")):
        files[kind] = tmp_path / f"{kind}.yaml"
        files[kind].write_text(f"mining:\n  mining_algorithm: {{type: str, default: random, choices: {miners}}}\n")

    class Multi(KindsBackend):
        name = "multi"
        img_man_dir = tmp_path
        parts: ClassVar[dict[str, type[Backend]]] = {
            kind: _part(kind, path, calls) for kind, path in files.items()}

    return Multi, calls, files


class _Ctx:
    def __init__(self, object_type: int):
        self.object_type = object_type


def test_the_kinds_follow_the_parts(multi):
    cls, _, files = multi
    assert cls.kinds == ("semantic", "instance")
    assert [k.object_type for k in cls.served()] == [3, 4]
    semantic, instance = kind_named("semantic"), kind_named("instance")
    assert cls.params_file_for(semantic) == files["semantic"] and cls.params_file_for(instance) == files["instance"]
    assert cls.miners_for(semantic) == ("random", "RSAL") and cls.miners_for(instance) == ("random", "entropy")
    assert cls.quick_settings_for(instance) == {"training": {"who": "instance"}}


def test_each_task_goes_to_the_backend_of_its_object_type(multi):
    cls, calls, _ = multi
    backend = cls()
    backend.train(_Ctx(4), None, None, None)
    assert backend.predictor(_Ctx(3)) == "semantic"
    assert calls == [("train", "instance"), ("predictor", "semantic")]
    assert backend.part(_Ctx(4)) is backend.part(_Ctx(4))  # one backend per kind and task
    with pytest.raises(ObjectTypeError, match="3 \\(semantic\\), 4 \\(instance\\)"):
        backend.train(_Ctx(2), None, None, None)


def test_a_part_must_serve_exactly_its_kind(tmp_path):
    (tmp_path / "x.yaml").write_text("mining: {}\n")
    part = _part("instance", tmp_path / "x.yaml", [])
    with pytest.raises(TypeError, match="exactly its own kind"):
        class Wrong(KindsBackend):
            name = "wrong"
            parts: ClassVar[dict[str, type[Backend]]] = {"semantic": part}
