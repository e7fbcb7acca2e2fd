"""Fuzzed ``/in/config.yaml`` with the UI's type mangling, and the hyper-parameter coercion.

The schemas are every image's own ``params*.yaml`` (found by glob, so a new image is covered
without a change here). YMIR's web UI sends numbers as strings, booleans as "true"/"False"/0/1,
lists as comma strings and drops falsy rows: each of those must come out typed as the schema
says, and anything else must be a 300001 naming the key.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from _fuzz import junk, parsed_or_typed, write, yaml_ish
from hypothesis import given
from hypothesis import strategies as st

from ymir_base.errors import ErrorCode
from ymir_base.protocol.coerce import COERCERS
from ymir_base.protocol.context import ImageSpec, build_context
from ymir_base.protocol.params import ParamSchema, ParamSpec
from ymir_base.protocol.paths import PathMapper

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILES = sorted({*REPO.glob("images/*/*/params*.yaml"), *REPO.glob("base/*/params/*.yaml")})
SCHEMAS = {str(p.relative_to(REPO)): ParamSchema.load(p) for p in SCHEMA_FILES}
TASKS = {"training": ["training"], "mining": ["mining"], "infer": ["infer"], "mining+infer": ["infer", "mining"]}
PLATFORM = ["class_names", "gpu_id", "gpu_count", "task_id", "object_type", "pretrained_model_params",
            "model_params_path"]
CODES = (ErrorCode.CONFIG, ErrorCode.OBJECT_TYPE)
TRUE_TEXTS, FALSE_TEXTS = ["true", "True", "TRUE", "1", "yes", "on", "t"], ["false", "False", "0", "no", "off", "f"]


def test_every_image_schema_is_found():
    assert len(SCHEMAS) >= 5 and all(s.tasks for s in SCHEMAS.values())


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("config")
    (folder / "img-man").mkdir()
    (folder / "img-man" / "manifest.yaml").write_text("object_type: 2\n")
    return folder


def _choice(spec: ParamSpec, value):
    """What ParamSpec.coerce makes of a choice given in another case."""
    for choice in spec.choices:
        if isinstance(choice, str) and isinstance(value, str) and choice.lower() == value.lower():
            return choice
    return value


@st.composite
def valid_value(draw: st.DrawFn, spec: ParamSpec) -> tuple[object, object]:
    """``(as the UI writes it, as the executor must see it)`` for a value inside the schema."""
    if spec.choices:
        value = draw(st.sampled_from(spec.choices))
        if isinstance(value, str) and draw(st.booleans()):
            return value.swapcase(), _choice(spec, value.swapcase())
        return (str(value) if spec.type != "str" and draw(st.booleans()) else value), value
    lo = -10**6 if spec.minimum is None else spec.minimum
    hi = 10**6 if spec.maximum is None else spec.maximum
    if spec.type == "bool":
        value = draw(st.booleans())
        return draw(st.sampled_from([value, int(value), *(TRUE_TEXTS if value else FALSE_TEXTS)])), value
    if spec.type == "int":
        value = draw(st.integers(math.ceil(lo), math.floor(hi)))
        return draw(st.sampled_from([value, str(value), f" {value} ", float(value), f"{value}.0"])), value
    if spec.type == "float":
        value = draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))
        return draw(st.sampled_from([value, str(value), repr(value)])), value
    if spec.type == "list":
        value = draw(st.lists(st.text("abcxyz_-.0123456789", min_size=1, max_size=6), max_size=3))
        return draw(st.sampled_from([value, ",".join(value), ", ".join(value)])), value
    value = draw(st.text(max_size=12))
    return value, value


@st.composite
def config_doc(draw: st.DrawFn, specs: dict[str, ParamSpec]) -> tuple[dict, dict, set]:
    """``(config.yaml document, expected typed values, keys given junk)``."""
    doc, expected, junk_keys = {}, {}, set()
    for name, spec in specs.items():
        kind = draw(st.integers(0, 9))
        if kind < 5:
            doc[name], expected[name] = draw(valid_value(spec))
        elif kind == 5:
            doc[name] = None  # a dropped row comes back as the default
        elif kind == 6:
            doc[name] = draw(junk)
            junk_keys.add(name)
    if draw(st.booleans()):
        names = draw(st.lists(st.sampled_from(["cat", "dog", "bird", "a b"]), min_size=1, max_size=3, unique=True))
        doc["class_names"] = draw(st.sampled_from([names, ",".join(names)]))
        expected["class_names"] = names
    if draw(st.booleans()):
        doc["object_type"] = draw(st.sampled_from([2, "2", 2.0, " 2 "]))
        expected["object_type"] = 2
    if draw(st.booleans()):
        doc["gpu_id"], expected["gpu_id"] = draw(st.sampled_from([("0", "0"), (0, "0"), ("0, 1", "0,1"), ("", "")]))
    for key in draw(st.lists(st.sampled_from(PLATFORM), max_size=2, unique=True)):
        doc[key] = draw(junk)
        junk_keys.add(key)
        expected.pop(key, None)
    doc["class_names"] = doc.get("class_names", ["cat"])  # training needs some
    return doc, expected, junk_keys


def context(folder: Path, schema: ParamSchema, task: str, config_text: str):
    config = write(folder, ".yaml", config_text)
    env = write(folder, ".yaml", yaml.safe_dump({
        f"run_{t}": True for t in ("training", "mining", "infer") if t in task.split("+")
    } | {"input": {"config_file": f"/in/{config.name}"}}))
    image = ImageSpec(name="fuzz", img_man_dir=folder / "img-man", schemas={2: schema})
    return lambda: build_context(image, PathMapper(in_dir=folder, out_dir=folder / "out"), env)


schema_names = st.sampled_from(sorted(SCHEMAS))
tasks = st.sampled_from(sorted(TASKS))


@given(schema_names, tasks, st.one_of(st.text(max_size=300), yaml_ish([*PLATFORM, "epochs", "model", "batch_size"])))
def test_random_and_yaml_like_text(folder, schema, task, text):
    _, error = parsed_or_typed(context(folder, SCHEMAS[schema], task, text), CODES)
    if error is not None:
        assert "config" in str(error), f"the message does not name config.yaml or a config key: {error}"


@given(schema_names, tasks, st.data())
def test_ui_mangled_documents(folder, schema, task, data):
    specs = {}
    for t in TASKS[task]:
        specs.update(SCHEMAS[schema].for_task(t))
    doc, expected, junk_keys = data.draw(config_doc(specs))
    text = yaml.safe_dump(doc, allow_unicode=True)
    ctx, error = parsed_or_typed(context(folder, SCHEMAS[schema], task, text), CODES)
    if error is not None:
        named = [key for key in junk_keys if f"'{key}'" in str(error)]
        assert named, f"refused without naming a key given junk ({sorted(junk_keys)}): {error}"
        return
    for key, value in expected.items():
        got = ctx.object_type if key == "object_type" else ctx.config[key]
        assert got == value and type(got) is type(value), f"{key}: {doc.get(key)!r} came out {got!r}, not {value!r}"
    for name, spec in specs.items():
        if name not in junk_keys:
            assert isinstance(ctx.config[name], COERCE_TYPES[spec.type]), f"{name}: {ctx.config[name]!r}"


COERCE_TYPES = {"bool": bool, "int": int, "float": float, "str": str, "list": list}


@given(st.sampled_from(sorted(COERCERS)), junk)
def test_coercers_give_their_type_or_a_short_value_error(kind, value):
    try:
        result = COERCERS[kind](value)
    except ValueError as exc:
        assert len(str(exc)) <= 300, f"a {len(str(exc))}-character message"
        return
    assert isinstance(result, COERCE_TYPES[kind]) and (kind != "bool" or type(result) is bool)
    if kind == "float":
        assert math.isfinite(result), f"{value!r} became the hyper-parameter {result!r}"
    if kind == "list":
        assert all(isinstance(v, str) for v in result)


@given(st.sampled_from(sorted(COERCERS)), junk, st.one_of(st.none(), st.integers(-5, 5)),
       st.one_of(st.none(), st.integers(5, 50)))
def test_param_spec_coerce_gives_its_type_or_names_the_key(kind, value, minimum, maximum):
    spec = ParamSpec("the_key", kind, None, minimum=minimum if kind in ("int", "float") else None,
                     maximum=maximum if kind in ("int", "float") else None)
    result, error = parsed_or_typed(lambda: spec.coerce(value), ErrorCode.CONFIG, ["config key 'the_key'"])
    if error is None and kind in ("int", "float"):
        assert (minimum is None or result >= minimum) and (maximum is None or result <= maximum)
