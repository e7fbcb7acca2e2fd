#!/usr/bin/env python3
"""Build the YMIR executor images: the shared base first, then every image FROM it, in order.

    python build.py                      # the base, then each images/<name>/Dockerfile
    python build.py --only yolov5        # the base and one image (repeatable)
    python build.py --only yolov5 --no-base   # reuse a base built (or pulled) earlier
    python build.py --push               # build, then push every tag built
    python build.py --plan               # print the resolved plan as JSON; needs no engine

Tags: ``<repository>:<ymir version>-<image>-<cuda>-tmi`` for the images and
``<repository>:<ymir version>-base-<cuda>`` for the base. The build context of every step is the
repository root. The Docker SDK for Python (``pip install docker``) is imported only to build, so
``--plan`` runs anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent
IMAGE_ORDER = ("yolov5", "mmdet", "mmyolo", "mmrotate", "seg-in-one")
BASE = "base"
DEFAULT_REPOSITORY = "ymir-executor"
DEFAULT_YMIR_VERSION = "ymir2.5.0"
DEFAULT_CUDA = "cu128"
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
CONNECT_TIMEOUT_S = 10
PUSH_TIMEOUT_S = 3600
EXIT_FAILED = 1
EXIT_USAGE = 2  # also: no SDK, no engine


class EngineUnavailable(RuntimeError):
    """No Docker SDK, or no engine answering: nothing can be built."""


class StepFailed(RuntimeError):
    """The engine reported an error while building or pushing."""


@dataclass(frozen=True)
class Step:
    order: int
    name: str
    context: str
    dockerfile: str
    tags: list[str]
    buildargs: dict[str, str]


@dataclass(frozen=True)
class Settings:
    repository: str = DEFAULT_REPOSITORY
    ymir_version: str = DEFAULT_YMIR_VERSION
    cuda: str = DEFAULT_CUDA
    only: tuple[str, ...] = ()
    with_base: bool = True
    allow_unpinned_weights: bool = False
    version: str = "dev"
    revision: str = "unknown"
    created: str = "unknown"
    source: str = "unknown"
    extra_buildargs: tuple[tuple[str, str], ...] = ()


# ---- the plan (no engine needed) ----------------------------------------------------------------


def discover_images(root: Path) -> list[str]:
    """Images with a Dockerfile, in build order: the known ones first, any others by name."""
    found = {path.parent.name for path in (root / "images").glob("*/Dockerfile")}
    known = [name for name in IMAGE_ORDER if name in found]
    return known + sorted(found - set(IMAGE_ORDER))


def base_tag(settings: Settings) -> str:
    return f"{settings.repository}:{settings.ymir_version}-{BASE}-{settings.cuda}"


def image_tag(settings: Settings, image: str) -> str:
    return f"{settings.repository}:{settings.ymir_version}-{image}-{settings.cuda}-tmi"


def _label_args(settings: Settings) -> dict[str, str]:
    return {
        "VERSION": settings.version,
        "REVISION": settings.revision,
        "CREATED": settings.created,
        "SOURCE": settings.source,
        **dict(settings.extra_buildargs),
    }


def make_plan(root: Path, settings: Settings) -> list[Step]:
    """The ordered build steps; raise ValueError for an unknown image in ``settings.only``."""
    images = discover_images(root)
    unknown = [name for name in settings.only if name not in images]
    if unknown:
        raise ValueError(f"unknown image(s) {', '.join(unknown)}; images: {', '.join(images) or 'none'}")
    wanted = [name for name in images if not settings.only or name in settings.only]
    steps: list[tuple[str, str, str, dict[str, str]]] = []
    if settings.with_base:
        steps.append((BASE, "base/Dockerfile", base_tag(settings), _label_args(settings)))
    image_args = {
        "BASE_IMAGE": base_tag(settings),
        "ALLOW_UNPINNED_WEIGHTS": "1" if settings.allow_unpinned_weights else "0",
        **_label_args(settings),
    }
    steps += [(name, f"images/{name}/Dockerfile", image_tag(settings, name), image_args) for name in wanted]
    return [
        Step(order, name, str(root), dockerfile, [tag], dict(buildargs))
        for order, (name, dockerfile, tag, buildargs) in enumerate(steps)
    ]


def plan_document(steps: Sequence[Step], push: bool) -> dict[str, Any]:
    return {"push": push, "steps": [asdict(step) for step in steps]}


# ---- facts about the checkout -------------------------------------------------------------------


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip() or None


def git_revision(root: Path) -> str:
    return _git(root, "rev-parse", "HEAD") or "unknown"


def git_source(root: Path) -> str:
    return _git(root, "remote", "get-url", "origin") or "unknown"


def project_version(root: Path) -> str:
    with open(root / "pyproject.toml", "rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- the engine ---------------------------------------------------------------------------------


def connect() -> Any:
    """A Docker client that answered a ping; raise EngineUnavailable with the reason otherwise."""
    try:
        import docker
    except ImportError as exc:
        raise EngineUnavailable(
            "the Docker SDK for Python is not installed: pip install docker; "
            "`python build.py --plan` works without it"
        ) from exc
    host = os.environ.get("DOCKER_HOST", DEFAULT_DOCKER_HOST)
    try:
        client = docker.from_env(timeout=CONNECT_TIMEOUT_S)
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:
        raise EngineUnavailable(
            f"no Docker engine reachable at {host}: start dockerd or set DOCKER_HOST; "
            f"`python build.py --plan` works without one\n  cause: {exc}"
        ) from exc
    client.api.timeout = PUSH_TIMEOUT_S  # pushes of multi-GB layers are slow
    return client


def _split_tag(tag: str) -> tuple[str, str]:
    repository, _, name = tag.rpartition(":")
    return repository, name


def _relay(chunks: Iterable[dict[str, Any]], out: TextIO) -> None:
    """Print the engine's progress as it comes; raise StepFailed on an error chunk."""
    for chunk in chunks:
        if "error" in chunk:
            raise StepFailed(str(chunk["error"]).strip())
        if "stream" in chunk:
            out.write(chunk["stream"])
        elif "status" in chunk and not chunk.get("progressDetail"):
            out.write(f"{chunk['status']} {chunk.get('id', '')}".rstrip() + "\n")
        out.flush()


def build_step(client: Any, step: Step, out: TextIO) -> None:
    """Build one step with its first tag, streaming the log, then add its other tags."""
    out.write(f"==> [{step.order}] {step.name}: {step.dockerfile} -> {', '.join(step.tags)}\n")
    first, *others = step.tags
    chunks = client.api.build(
        path=step.context,
        dockerfile=step.dockerfile,
        tag=first,
        buildargs=step.buildargs,
        rm=True,
        forcerm=True,
        decode=True,
    )
    _relay(chunks, out)
    for tag in others:
        client.api.tag(first, *_split_tag(tag))


def push_tag(client: Any, tag: str, out: TextIO) -> None:
    out.write(f"==> push {tag}\n")
    repository, name = _split_tag(tag)
    _relay(client.api.push(repository, tag=name, stream=True, decode=True), out)


def run(steps: Sequence[Step], push: bool, out: TextIO) -> None:
    client = connect()
    for step in steps:
        build_step(client, step, out)
    if push:
        for step in steps:
            for tag in step.tags:
                push_tag(client, tag, out)


# ---- command line -------------------------------------------------------------------------------


def _buildarg(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", action="store_true", help="print the resolved plan as JSON and exit")
    parser.add_argument(
        "--only", action="append", default=[], metavar="IMAGE", help="build only this image (repeatable)"
    )
    parser.add_argument("--no-base", action="store_true", help="do not build the base (it must exist)")
    parser.add_argument("--push", action="store_true", help="push every tag after building")
    parser.add_argument("--repository", default=DEFAULT_REPOSITORY, help="image repository (default %(default)s)")
    parser.add_argument("--ymir-version", default=DEFAULT_YMIR_VERSION, help="tag prefix (default %(default)s)")
    parser.add_argument("--cuda", default=DEFAULT_CUDA, help="CUDA part of the tags (default %(default)s)")
    parser.add_argument(
        "--allow-unpinned-weights", action="store_true", help="accept weights without a sha256 (not verified)"
    )
    parser.add_argument("--version", help="OCI version label (default: pyproject.toml's version)")
    parser.add_argument("--source", help="OCI source label (default: the git remote 'origin')")
    parser.add_argument(
        "--build-arg",
        action="append",
        default=[],
        type=_buildarg,
        metavar="KEY=VALUE",
        help="extra build arg for every step, e.g. MAX_JOBS=8 (repeatable)",
    )
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace, root: Path) -> Settings:
    return Settings(
        repository=args.repository,
        ymir_version=args.ymir_version,
        cuda=args.cuda,
        only=tuple(args.only),
        with_base=not args.no_base,
        allow_unpinned_weights=args.allow_unpinned_weights,
        version=args.version or project_version(root),
        revision=git_revision(root),
        created=utc_now(),
        source=args.source or git_source(root),
        extra_buildargs=tuple(args.build_arg),
    )


def main(argv: Sequence[str] | None = None, root: Path = ROOT, out: TextIO = sys.stdout) -> int:
    args = parse_args(argv)
    try:
        steps = make_plan(root, settings_from(args, root))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.plan:
        json.dump(plan_document(steps, args.push), out, indent=2)
        out.write("\n")
        return 0
    try:
        run(steps, args.push, out)
    except EngineUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StepFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
