"""Engine-free helpers for the Docker tests: a small Dockerfile parser and the repository's files."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
BASE_DOCKERFILE = REPO / "base" / "Dockerfile"
CONSTRAINTS = REPO / "requirements" / "constraints.txt"
INSTALL_SCRIPT = REPO / "scripts" / "install-stack.sh"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ...
    args: str  # continuation lines joined with one space
    line: int  # where it starts in the file


@dataclass
class Stage:
    image: str  # the FROM reference as written
    alias: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    path: Path
    global_args: dict[str, str]  # ARGs before the first FROM, with their defaults
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for stage in self.stages for i in stage.all(keyword)]

    def default_image(self, reference: str) -> str:
        """A FROM reference with the global ARGs' defaults put in (``${DEVEL_IMAGE}`` -> its default)."""
        return re.sub(r"\$\{(\w+)\}", lambda m: self.global_args.get(m.group(1), m.group(0)), reference)


def parse_instructions(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile: comments dropped (also inside continuations), lines joined."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        keyword, _, args = " ".join([*pending, stripped]).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    if pending:
        raise ValueError(f"line {start}: continuation never ends")
    return instructions


def parse_dockerfile(path: Path) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in parse_instructions(path.read_text(encoding="utf-8")):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            alias = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], alias))
        elif not stages:
            if instruction.keyword != "ARG":
                raise ValueError(f"{path}:{instruction.line}: only ARG may come before FROM")
            name, _, default = instruction.args.partition("=")
            global_args[name] = default.strip('"')
        else:
            stages[-1].instructions.append(instruction)
    return Dockerfile(path, global_args, stages)


def key_values(args: str) -> dict[str, str]:
    """``KEY=value KEY2="a b"`` (ENV, LABEL) or the legacy ``KEY value`` form."""
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        env.update(key_values(instruction.args))
    return env


def labels_of(stage: Stage) -> dict[str, str]:
    labels: dict[str, str] = {}
    for instruction in stage.all("LABEL"):
        labels.update(key_values(instruction.args))
    return labels


def exec_form(args: str) -> list[str]:
    """CMD/ENTRYPOINT as a word list: JSON exec form, or the shell form's words."""
    if args.startswith("["):
        return list(json.loads(args))
    return shlex.split(args)


def image_dockerfiles() -> dict[str, Path]:
    """images/<name>/Dockerfile in build.py's order."""
    return {name: REPO / "images" / name / "Dockerfile" for name in build_module().discover_images(REPO)}


def all_dockerfiles() -> list[Path]:
    return [BASE_DOCKERFILE, *image_dockerfiles().values()]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@functools.cache
def build_module() -> ModuleType:
    return _load("ymir_build_script", REPO / "build.py")


@functools.cache
def fetch_weights_module() -> ModuleType:
    return _load("ymir_fetch_weights_script", REPO / "scripts" / "fetch_weights.py")


def normalize(name: str) -> str:
    """PEP 503 project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def constraint_pins() -> dict[str, str]:
    """requirements/constraints.txt as {normalised name: version}; every line must be ``==``."""
    pins: dict[str, str] = {}
    for raw in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;=<>!~,]+)", line)
        if match is None:
            raise ValueError(f"{CONSTRAINTS}: not an exact pin: {raw!r}")
        pins[normalize(match.group(1))] = match.group(2)
    return pins
