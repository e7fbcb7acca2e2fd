"""Fuzzed ``/in/env.yaml`` reader: garbled YAML, mangled booleans, odd path values."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
import yaml
from _fuzz import junk, parsed_or_typed, write, yaml_ish
from hypothesis import given
from hypothesis import strategies as st

from ymir_base.errors import ErrorCode
from ymir_base.protocol.env import EnvInput, EnvOutput, load_env

FLAGS = ("run_training", "run_mining", "run_infer")
INPUT_KEYS = list(EnvInput.__dataclass_fields__)
OUTPUT_KEYS = list(EnvOutput.__dataclass_fields__)
KEYS = [*FLAGS, "task_id", "protocol_version", "manifest_file", "input", "output", *INPUT_KEYS]
# what the UI or a hand edit writes for a boolean, and what it means
BOOLS = [(True, True), (False, False), ("true", True), ("False", False), ("TRUE", True), (1, True), (0, False),
         ("1", True), ("0", False), ("yes", True), ("no", False), ("", False)]


# what survives a YAML round trip unchanged (YAML folds line breaks such as NEL, U+0085, in scalars)
TEXT = st.characters(codec="utf-8", blacklist_categories=["Cc", "Cs", "Zl", "Zp"])


ROOTS = {"input": "in", "output": "out"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("env")


@st.composite
def env_doc(draw: st.DrawFn) -> tuple[dict, dict | None]:
    """``(document, expected)``: expected run flags and fields, None when a value is junk."""
    doc, expected, known = {}, {}, True
    for flag in FLAGS:
        choice = draw(st.integers(0, 9))
        if choice < 6:
            doc[flag], expected[flag] = draw(st.sampled_from(BOOLS))
        elif choice < 8:
            expected[flag] = False  # missing
        else:
            doc[flag], known = draw(junk), False
    for key in ("task_id", "protocol_version"):
        if draw(st.booleans()):
            if draw(st.integers(0, 4)):
                doc[key] = expected[key] = draw(st.text(TEXT, min_size=1, max_size=12))
            else:
                doc[key], known = draw(junk), False
    for section, keys in (("input", INPUT_KEYS), ("output", OUTPUT_KEYS)):
        if draw(st.integers(0, 9)) == 0:
            doc[section], known = draw(junk), False
            continue
        values = {}
        for key in draw(st.lists(st.sampled_from(keys), max_size=4, unique=True)):
            kind = draw(st.integers(0, 9))
            if kind < 6:  # a path under the section's root (/in, /out), which env.yaml must keep to
                value = f"/{ROOTS[section]}/" + draw(st.text(TEXT, max_size=20))
                values[key] = expected[f"{section}.{key}"] = value
                known = known and ".." not in PurePosixPath(value).parts  # '..' may leave the root
            elif kind < 8:
                values[key], expected[f"{section}.{key}"] = None, ""
            else:
                values[key], known = draw(junk), False
        doc[section] = values
    return doc, expected if known else None


def check(path):
    return parsed_or_typed(lambda: load_env(path), ErrorCode.CONFIG, [str(path)])


@given(st.binary(max_size=300))
def test_random_bytes(folder, data):
    check(write(folder, ".yaml", data))


@given(st.one_of(st.text(max_size=300), yaml_ish(KEYS)))
def test_random_and_yaml_like_text(folder, text):
    check(write(folder, ".yaml", text))


@given(env_doc())
def test_near_valid_documents(folder, doc):
    document, expected = doc
    path = write(folder, ".yaml", yaml.safe_dump(document, allow_unicode=True))
    env, error = check(path)
    if expected is None:
        return
    flags = [expected[f] for f in FLAGS]
    if not any(flags) or (flags[0] and any(flags[1:])):
        assert error is not None and "run_" in str(error), f"flags {flags} were accepted"
        return
    assert error is None, f"a valid env.yaml was refused: {error}"
    assert [getattr(env, f) for f in FLAGS] == flags
    for key, value in expected.items():
        if "." in key:
            section, field = key.split(".")
            assert getattr(getattr(env, section), field) == value
        elif key not in FLAGS:
            assert getattr(env, key) == value
