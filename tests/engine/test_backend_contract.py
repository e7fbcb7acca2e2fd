"""What the base gives every backend: the mining-algorithm list from params.yaml, the starting
weights, the class names a predictor reports."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ymir_base.engine.backend import Backend, model_class_names
from ymir_base.engine.registry import backend_class, image_spec, images
from ymir_base.mining import algorithm_names
from ymir_base.protocol.context import build_context
from ymir_base.protocol.params import ParamSchema
from ymir_base.protocol.paths import PathMapper


@pytest.mark.parametrize("image", images())
def test_mining_algorithms_are_the_params_yaml_choices(image):
    cls = backend_class(image)
    for kind in cls.served():
        spec = ParamSchema.load(cls.params_file_for(kind)).for_task("mining")["mining_algorithm"]
        assert cls.miners_for(kind) == tuple(spec.choices)
        # every choice the UI offers runs for the kind it is offered for
        assert {c.lower() for c in cls.miners_for(kind)} <= algorithm_names(kind.name)
        assert spec.default in spec.choices
    if len(cls.served()) == 1:
        assert cls.mining_algorithms == cls.miners_for(cls.served()[0])


def test_a_backend_cannot_keep_a_second_list(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("mining:\n  mining_algorithm: {type: str, default: random, choices: [random, entropy]}\n")

    class FromParams(Backend):
        name = "x"
        params_file = params

    assert FromParams.mining_algorithms == ("random", "entropy")
    with pytest.raises(TypeError, match=r"params\.yaml"):
        class Drifting(Backend):
            name = "y"
            params_file = params
            mining_algorithms: ClassVar[tuple[str, ...]] = ("random", "entropy", "aldd")


def _ctx(sample, **overrides: Any):
    in_dir, out_dir = sample("training")
    return build_context(image_spec("yolov5"), PathMapper(in_dir, out_dir), overrides=overrides)


def test_starting_weights_user_then_baked_then_none(sample, tmp_path, monkeypatch, caplog):
    backend = backend_class("yolov5")()
    monkeypatch.setenv("YMIR_WEIGHTS_DIR", str(tmp_path / "weights"))
    assert backend.weights_dir() == tmp_path / "weights" / "yolov5"
    ctx = _ctx(sample)
    with caplog.at_level(logging.INFO):
        assert backend.starting_weights(ctx, "yolov5n", ".pt") is None
    assert "random initialisation" in caplog.text
    baked = tmp_path / "weights" / "yolov5" / "yolov5n.pt"
    baked.parent.mkdir(parents=True)
    baked.write_bytes(b"x")
    assert backend.starting_weights(ctx, "yolov5n", ".pt") == baked
    in_dir = Path(ctx.host("/in"))
    user = in_dir / "models" / "epoch_3" / "epoch_3.pt"
    user.parent.mkdir(parents=True)
    user.write_bytes(b"x")
    ctx = build_context(image_spec("yolov5"), ctx.mapper, overrides={"pretrained_model_params": [
        "/in/models/epoch_3/epoch_3.pt"]})
    assert backend.starting_weights(ctx, "yolov5n", ".pt") == user


def test_model_class_names(caplog):
    assert model_class_names(["a", "b"], ["x", "y"], 2) == ["a", "b"]
    assert model_class_names(["a"], ["x", "y"], 2) == ["x", "y"] and "do not match" in caplog.text
    assert model_class_names(None, [], 2) == ["class_0", "class_1"]
