#!/usr/bin/env python3
"""Build the YMIR executor images: the shared base first, then every image FROM it, in order.

    python build.py                      # the base, then each images/<name>/Dockerfile
    python build.py --only yolov5        # the base and one image (repeatable)
    python build.py --only yolov5 --no-base   # reuse a base built (or pulled) earlier
    python build.py --push               # build, then push every tag built
    python build.py --plan               # print the resolved plan as JSON; needs no engine

Every external source is an option (docs/docker.md, "building behind a firewall or a mirror"),
defaulting to today's: --devel-image, --runtime-image, --uv-image, --python uv|system,
--python-mirror, --index-url, --ca-bundle, --weights download|local|none (--weights-dir),
--wheelhouse. ``--cuda cpu`` builds mmcv without CUDA ops and tags the images ``-cpu``. The CA
bundle, wheels and local weights are copied into build-inputs/ (emptied first), which only the
throw-away stages of the Dockerfiles read.

Tags: ``<repository>:<ymir version>-<image>-<cuda>-tmi`` for the images and
``<repository>:<ymir version>-base-<cuda>`` for the base. The build context of every step is the
repository root. The Docker SDK for Python (``pip install docker``) is imported only to build, so
``--plan`` runs anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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
DEFAULT_DEVEL_IMAGE = "nvidia/cuda:12.8.1-cudnn-devel-ubuntu22.04"
DEFAULT_RUNTIME_IMAGE = "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04"
DEFAULT_UV_IMAGE = "ghcr.io/astral-sh/uv:0.13.8"
NO_UV_STAGE = "no-uv"  # base/Dockerfile's stand-in for the uv image when Python comes from the base
CPU = "cpu"  # --cuda value of a build without CUDA ops
PYTHON_SOURCES = ("uv", "system")
WEIGHT_SOURCES = ("download", "local", "none")
INPUTS = "build-inputs"
INPUT_DIRS = ("ca", "wheels", "weights")
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
    devel_image: str = DEFAULT_DEVEL_IMAGE
    runtime_image: str = DEFAULT_RUNTIME_IMAGE
    uv_image: str = DEFAULT_UV_IMAGE
    python: str = "uv"
    python_mirror: str = ""
    index_url: str = ""
    ca_bundle: str | None = None
    weights: str = "download"
    weights_dir: str | None = None
    wheelhouse: str | None = None
    network: str | None = None

    def options(self) -> dict[str, Any]:
        """The sources and choices of this build, as --plan shows them."""
        names = ("devel_image", "runtime_image", "uv_image", "python", "python_mirror", "index_url", "ca_bundle",
                 "weights", "weights_dir", "wheelhouse", "network", "cuda")
        return {name: getattr(self, name) for name in names}


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


def _base_args(settings: Settings) -> dict[str, str]:
    system = settings.python == "system"
    return {
        "DEVEL_IMAGE": settings.devel_image,
        "RUNTIME_IMAGE": settings.runtime_image,
        "UV_IMAGE": NO_UV_STAGE if system else settings.uv_image,
        "PYTHON_SOURCE": settings.python,
        "PYTHON_MIRROR": settings.python_mirror,
        "INDEX_URL": settings.index_url,
        "FORCE_CUDA": "0" if settings.cuda == CPU else "1",
        "CUDA": settings.cuda,
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
        steps.append((BASE, "base/Dockerfile", base_tag(settings), {**_base_args(settings), **_label_args(settings)}))
    image_args = {
        "BASE_IMAGE": base_tag(settings),
        "ALLOW_UNPINNED_WEIGHTS": "1" if settings.allow_unpinned_weights else "0",
        "WEIGHTS": settings.weights,
        **_label_args(settings),
    }
    steps += [(name, f"images/{name}/Dockerfile", image_tag(settings, name), image_args) for name in wanted]
    return [
        Step(order, name, str(root), dockerfile, [tag], dict(buildargs))
        for order, (name, dockerfile, tag, buildargs) in enumerate(steps)
    ]


def plan_document(steps: Sequence[Step], push: bool, settings: Settings | None = None) -> dict[str, Any]:
    options = settings.options() if settings else {}
    documented = []
    for step in steps:
        entry = asdict(step)
        if step.name != BASE:
            entry["weights"] = baked_weights(Path(step.context), step.name)
        documented.append(entry)
    return {"push": push, "options": options, "steps": documented}


def baked_weights(root: Path, image: str) -> dict[str, dict[str, Any]]:
    """Per /weights/<folder> the image bakes (unless --weights none): the models its manifest
    lists and those of them without a hash, which a download refuses unless
    --allow-unpinned-weights. Read line by line: --plan needs nothing beyond the standard library."""
    baked: dict[str, dict[str, Any]] = {}
    for folder in weight_folders(root, image):
        manifest = root / "images" / folder / "weights.yaml"
        if not manifest.is_file():
            continue
        models, unpinned = [], []
        for line in manifest.read_text(encoding="utf-8").splitlines():
            if match := re.match(r"-\s+name:\s*(\S+)", line):
                models.append(match.group(1))
            elif re.match(r"\s+sha256:\s*(null|~)?\s*$", line) and models:
                unpinned.append(models[-1])
        baked[f"/weights/{folder}"] = {"manifest": f"images/{folder}/weights.yaml", "models": models,
                                       "unpinned": unpinned}
    return baked


def input_problems(settings: Settings) -> list[str]:
    """What is wrong with the files the options name (checked before any build)."""
    problems = []
    if settings.ca_bundle and not Path(settings.ca_bundle).is_file():
        problems.append(f"--ca-bundle {settings.ca_bundle}: no such file")
    if settings.wheelhouse and not Path(settings.wheelhouse).is_dir():
        problems.append(f"--wheelhouse {settings.wheelhouse}: no such folder")
    if settings.weights == "local" and not (settings.weights_dir and Path(settings.weights_dir).is_dir()):
        problems.append("--weights local needs --weights-dir, a folder laid out like /weights "
                        f"(got {settings.weights_dir})")
    if settings.weights_dir and settings.weights != "local":
        problems.append("--weights-dir is used only with --weights local")
    return problems


def stage_inputs(root: Path, settings: Settings, images: Sequence[str]) -> None:
    """Empty build-inputs/ (its READMEs stay), then copy in what the options give."""
    inputs = root / INPUTS
    for name in INPUT_DIRS:
        folder = inputs / name
        folder.mkdir(parents=True, exist_ok=True)
        for entry in folder.iterdir():
            if entry.name == "README.md":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    if settings.ca_bundle:
        shutil.copyfile(settings.ca_bundle, inputs / "ca" / "ca.crt")
    if settings.wheelhouse:
        for wheel in sorted(Path(settings.wheelhouse).rglob("*.whl")):
            _link_or_copy(wheel, inputs / "wheels" / wheel.name)
    if settings.weights == "local" and settings.weights_dir:
        folders = sorted({folder for image in images for folder in weight_folders(root, image)})
        for folder in folders:
            source = Path(settings.weights_dir) / folder
            if source.is_dir():
                shutil.copytree(source, inputs / "weights" / folder, copy_function=_link_or_copy)


def weight_folders(root: Path, image: str) -> list[str]:
    """The /weights/<folder>s an image bakes: one per weights manifest its Dockerfile copies
    (seg-in-one bakes the yolov5 image's detection weights besides its own)."""
    dockerfile = root / "images" / image / "Dockerfile"
    if not dockerfile.is_file():
        return [image]
    found = re.findall(r"^COPY images/([\w.-]+)/weights\.yaml ", dockerfile.read_text(encoding="utf-8"), re.M)
    return list(dict.fromkeys(found)) or [image]


def _link_or_copy(source: Path | str, dest: Path | str) -> None:
    """A hard link where the file system allows it (weights are GBs), else a copy."""
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


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


def build_step(client: Any, step: Step, out: TextIO, network: str | None = None) -> None:
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
        network_mode=network,
    )
    _relay(chunks, out)
    for tag in others:
        client.api.tag(first, *_split_tag(tag))


def push_tag(client: Any, tag: str, out: TextIO) -> None:
    out.write(f"==> push {tag}\n")
    repository, name = _split_tag(tag)
    _relay(client.api.push(repository, tag=name, stream=True, decode=True), out)


def run(steps: Sequence[Step], push: bool, out: TextIO, settings: Settings, root: Path) -> None:
    client = connect()
    stage_inputs(root, settings, [step.name for step in steps if step.name != BASE])
    for step in steps:
        build_step(client, step, out, settings.network)
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
    parser.add_argument(
        "--cuda", default=DEFAULT_CUDA,
        help=f"CUDA part of the tags (default %(default)s); {CPU}: mmcv without CUDA ops, for CPU-only images",
    )
    sources = parser.add_argument_group("sources (for builds behind a firewall, a proxy or a mirror)")
    sources.add_argument("--devel-image", default=DEFAULT_DEVEL_IMAGE, help="build stage base (default %(default)s)")
    sources.add_argument("--runtime-image", default=DEFAULT_RUNTIME_IMAGE, help="runtime base (default %(default)s)")
    sources.add_argument("--uv-image", default=DEFAULT_UV_IMAGE, help="image holding /uv (default %(default)s)")
    sources.add_argument(
        "--python", choices=PYTHON_SOURCES, default="uv",
        help="Python 3.11 from a uv-managed download (default) or the base image's python3.11 (apt)",
    )
    sources.add_argument("--python-mirror", default="", metavar="URL",
                         help="mirror of python-build-standalone for --python uv (UV_PYTHON_INSTALL_MIRROR)")
    sources.add_argument("--index-url", default="", metavar="URL",
                         help="Python package index (default: pip's own, pypi.org)")
    sources.add_argument("--ca-bundle", metavar="FILE",
                         help="extra CA bundle (PEM) trusted by apt, pip, uv and the weights download; "
                              "not kept in the images")
    sources.add_argument("--weights", choices=WEIGHT_SOURCES, default="download",
                         help="download and check the weights (default), take them from --weights-dir, or bake none")
    sources.add_argument("--weights-dir", metavar="DIR",
                         help="with --weights local: a folder laid out like /weights (DIR/<image>/<file>)")
    sources.add_argument("--wheelhouse", metavar="DIR",
                         help="pre-built wheels (searched recursively) that pip prefers, e.g. a compiled mmcv")
    sources.add_argument("--network", help="network mode of the build containers, e.g. host")
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
        devel_image=args.devel_image,
        runtime_image=args.runtime_image,
        uv_image=args.uv_image,
        python=args.python,
        python_mirror=args.python_mirror,
        index_url=args.index_url,
        ca_bundle=_absolute(args.ca_bundle),
        weights=args.weights,
        weights_dir=_absolute(args.weights_dir),
        wheelhouse=_absolute(args.wheelhouse),
        network=args.network,
    )


def _absolute(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


def main(argv: Sequence[str] | None = None, root: Path = ROOT, out: TextIO = sys.stdout) -> int:
    args = parse_args(argv)
    settings = settings_from(args, root)
    try:
        steps = make_plan(root, settings)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    problems = input_problems(settings)
    if problems:
        print("error: " + "; ".join(problems), file=sys.stderr)
        return EXIT_USAGE
    if args.plan:
        json.dump(plan_document(steps, args.push, settings), out, indent=2)
        out.write("\n")
        return 0
    try:
        run(steps, args.push, out, settings, root)
    except EngineUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StepFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
