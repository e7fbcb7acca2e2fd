#!/usr/bin/env python3
"""``make docker-test``: build the base and every image in a CPU profile, then run each image as
YMIR does and check every output (docs/docker.md, "Testing the images in a real engine").

Needs root on a Debian or Ubuntu machine, and nothing else: it installs and starts the Docker
engine when none answers, makes a local Debian bookworm base image with debootstrap when it is
missing (Docker Hub is not needed), and builds with ``build.py``'s firewall options: that base for
both stages, Debian's python3.11, no CUDA ops, no weights, the host's CA bundle (the one pip uses)
and the host's pip wheel cache as wheelhouse (a compiled mmcv wheel is not compiled again).

Per image: its size and build time; ``docker run IMAGE cat /img-man/<file>`` prints each file
exactly and it parses as YAML; the OCI title label; for each object type it serves, training,
infer, mining with every algorithm and mining+infer in containers (``--user`` without a passwd
entry, ``/in`` read-only, ``--network none``), every output checked by ``verify``'s checks, ``/in``
unchanged and nothing written outside ``/out`` and ``/tmp``; and a ``docker kill`` during
training whose rerun resumes and finishes. Prints a table; exit status 1 when any check failed.

    python scripts/docker_test.py [--only IMAGE] [--work DIR] [--no-build]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from ymir_base.engine.registry import backend_class
from ymir_base.sample.generator import generate
from ymir_base.verify import checks
from ymir_base.verify.container import ContainerRunner
from ymir_base.verify.pipeline import verify

ROOT = Path(__file__).resolve().parents[1]
DEBIAN_BASE = os.environ.get("DOCKER_TEST_DEBIAN_BASE", "local/debian:bookworm")
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
ENGINE_WAIT_S = 90
BUILD_DISK_GB = 25  # a cold build: the 9 GB build stage, the 8 GB venv copy, downloads
KILL_WAIT_S = 900
RESUMED = "resuming the killed run"


def sh(*command: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=check, text=True, capture_output=True, **kwargs)


def log(message: str) -> None:
    print(f"[docker-test] {message}", flush=True)


# ---- the engine and the local base image ----------------------------------------------------------


def engine_answers() -> bool:
    return shutil.which("docker") is not None and sh("docker", "info", check=False).returncode == 0


def ensure_engine() -> None:
    if engine_answers():
        return
    if shutil.which("dockerd") is None:
        log("no Docker engine: apt-get install docker.io")
        sh("apt-get", "update")
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "docker.io"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    log("starting dockerd (log: /var/log/dockerd.log)")
    with open("/var/log/dockerd.log", "ab") as out:
        subprocess.Popen(["dockerd"], stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + ENGINE_WAIT_S
    while not engine_answers():
        if time.monotonic() > deadline:
            raise SystemExit(f"dockerd did not answer within {ENGINE_WAIT_S} s: see /var/log/dockerd.log")
        time.sleep(2)


def ensure_debian_base(tag: str = DEBIAN_BASE, mirror: str = DEBIAN_MIRROR) -> None:
    if sh("docker", "image", "inspect", tag, check=False).returncode == 0:
        return
    if shutil.which("debootstrap") is None:
        sh("apt-get", "update")
        sh("apt-get", "install", "-y", "--no-install-recommends", "debootstrap")
    log(f"making {tag} with debootstrap from {mirror}")
    with tempfile.TemporaryDirectory(prefix="ymir-debootstrap-") as root:
        sh("debootstrap", "--variant=minbase", "bookworm", root, mirror)
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", "-", tag], stdin=tar.stdout, check=True, capture_output=True)
        if tar.wait() != 0:
            raise SystemExit(f"tar of the debootstrap tree {root} failed")


# ---- the build ------------------------------------------------------------------------------------


def build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ymir_build", ROOT / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def host_ca_bundle() -> str | None:
    """The CA bundle this machine's pip trusts (a TLS-inspecting proxy's CA lives there)."""
    candidates = [os.environ.get("PIP_CERT")]
    config = sh(sys.executable, "-m", "pip", "config", "list", check=False).stdout
    candidates += [line.split("=", 1)[1].strip().strip("'\"") for line in config.splitlines()
                   if line.split("=", 1)[0].endswith(".cert")]
    candidates.append("/etc/ssl/certs/ca-certificates.crt")
    return next((c for c in candidates if c and Path(c).is_file()), None)


def host_wheelhouse() -> str | None:
    cache = sh(sys.executable, "-m", "pip", "cache", "dir", check=False).stdout.strip()
    wheels = Path(cache) / "wheels" if cache else None
    return str(wheels) if wheels and wheels.is_dir() else None


def build_options(only: list[str]) -> list[str]:
    options = ["--cuda", "cpu", "--python", "system", "--devel-image", DEBIAN_BASE, "--runtime-image",
               DEBIAN_BASE, "--weights", "none"]
    if ca := host_ca_bundle():
        options += ["--ca-bundle", ca]
    if wheels := host_wheelhouse():
        options += ["--wheelhouse", wheels]
    for image in only:
        options += ["--only", image]
    return options


def build_all(build: ModuleType, settings: Any, steps: list[Any]) -> dict[str, float]:
    """Build every step; the seconds each took, by step name."""
    client = build.connect()
    build.stage_inputs(ROOT, settings, [step.name for step in steps if step.name != build.BASE])
    times = {}
    with open(ROOT / "docker-test-build.log", "w", encoding="utf-8") as out:
        for step in steps:
            log(f"building {step.name} -> {step.tags[0]} (log: docker-test-build.log)")
            started = time.perf_counter()
            try:
                build.build_step(client, step, out, settings.network)
            except build.StepFailed as exc:
                raise SystemExit(f"building {step.name} failed: {exc}") from exc
            times[step.name] = time.perf_counter() - started
    return times


def warn_if_disk_is_short() -> None:
    root = sh("docker", "info", "--format", "{{.DockerRootDir}}").stdout.strip() or "/var/lib/docker"
    free_gb = shutil.disk_usage(root).free / 1e9
    if free_gb < BUILD_DISK_GB:
        log(f"WARNING: {free_gb:.0f} GB free under {root}; a cold build needs about {BUILD_DISK_GB} GB "
            "(cached layers need far less). `docker image prune` removes old dangling layers.")


def image_size(tag: str) -> int:
    return int(sh("docker", "image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


# ---- the checks of one image ------------------------------------------------------------------------


@dataclass
class Row:
    image: str
    size: int = 0
    build_s: float = 0.0
    results: dict[str, tuple[bool, float | None]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def record(self, name: str, problems: list[str], seconds: float | None = None) -> None:
        self.results[name] = (not problems, seconds)
        self.failures += [f"{name}: {problem}" for problem in problems]


def check_img_man(tag: str, image: str) -> list[str]:
    """``docker run --rm IMAGE cat /img-man/<file>`` prints the file exactly, and it is YAML."""
    problems = []
    for path in sorted((ROOT / "images" / image / "img-man").glob("*.yaml")):
        done = sh("docker", "run", "--rm", "--network", "none", "--user", "4242:4242", tag, "cat",
                  f"/img-man/{path.name}", check=False)
        if done.returncode != 0:
            problems.append(f"cat /img-man/{path.name}: exit {done.returncode}: {done.stderr.strip()[-300:]}")
        elif done.stdout != path.read_text(encoding="utf-8"):
            problems.append(f"cat /img-man/{path.name}: stdout is not the file (extra output?)")
        else:
            try:
                yaml.safe_load(done.stdout)
            except yaml.YAMLError as exc:
                problems.append(f"/img-man/{path.name} is not YAML: {exc}")
    return problems


def check_labels(tag: str, image: str, cuda: str) -> list[str]:
    labels = yaml.safe_load(sh("docker", "image", "inspect", "--format", "{{json .Config.Labels}}", tag).stdout)
    problems = []
    if labels.get("org.opencontainers.image.title") != f"ymir-executor {image}":
        problems.append(f"title label is {labels.get('org.opencontainers.image.title')!r}")
    for key in ("description", "source", "version", "revision", "created", "licenses"):
        if not labels.get(f"org.opencontainers.image.{key}"):
            problems.append(f"no org.opencontainers.image.{key} label")
    if f"-{image}-{cuda}-" not in tag:
        problems.append(f"tag {tag} does not say {cuda}")
    if labels.get("io.ymir-executor.weights") != "none":
        problems.append(f"weights label is {labels.get('io.ymir-executor.weights')!r}, expected 'none'")
    history = sh("docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", tag).stdout
    if "build-inputs" in history:
        problems.append("a layer of the image was made from build-inputs/ (the build's CA bundle or wheels)")
    return problems


def check_kill_and_resume(image: str, tag: str, object_type: int, work: Path) -> list[str]:
    """``docker kill`` once the first stage is saved, then the same task again: it resumes."""
    backend = backend_class(image)
    kind = backend.kind_for(object_type)
    training = dict(backend.quick_settings_for(kind).get("training", {}))
    epochs = next((key for key in training if key.endswith("epochs")), None)
    if epochs is not None:
        training[epochs] = 8
    elif "max_iters" in training:  # iteration-based (seg-in-one): four evaluation periods
        training["max_iters"] = 4 * int(training.get("interval") or training["max_iters"])
    else:
        return [f"{image}'s quick training settings have no epochs or max_iters key to lengthen"]
    in_dir, out_dir = work / "in", work / "out"
    shutil.rmtree(work, ignore_errors=True)
    generate(in_dir, task="training", object_type=kind.sample, fmt="coco" if kind.name in ("semantic", "instance")
             else "ark", images=12, seed=1, extra_config=training)
    runner = ContainerRunner(tag)
    name = runner.start(in_dir, out_dir)
    result = out_dir / "models" / "result.yaml"
    deadline = time.monotonic() + KILL_WAIT_S
    try:
        while not (result.is_file() and (yaml.safe_load(result.read_text()) or {}).get("model_stages")):
            state = sh("docker", "inspect", "--format", "{{.State.Running}}", name).stdout.strip()
            if state != "true":
                return ["training ended before a stage was saved, nothing to kill"]
            if time.monotonic() > deadline:
                return [f"no stage saved within {KILL_WAIT_S} s"]
            time.sleep(0.5)
        runner.kill(name)
    finally:
        runner.save_log(name, out_dir)
        runner.remove(name)
    outcome = runner("", in_dir, out_dir)
    problems = [f"rerun: exit code {outcome.code}"] if outcome.code else []
    if RESUMED not in runner.logs[-1].read_text(encoding="utf-8"):
        problems.append(f"the rerun did not say {RESUMED!r} (log {runner.logs[-1]})")
    problems += checks.check_monitor(out_dir / "monitor.txt")
    problems += checks.check_training_result(out_dir / "models", kind.object_type, out_dir / "tensorboard")
    for check, found in outcome.problems.items():
        problems += [f"{check}: {p}" for p in found]
    return problems


def check_image(image: str, tag: str, work: Path, row: Row) -> None:
    started = time.perf_counter()
    row.record("img-man", check_img_man(tag, image), time.perf_counter() - started)
    backend = backend_class(image)
    for kind in backend.served():
        prefix = "" if len(backend.served()) == 1 else f"{kind.name} "
        log(f"{image}: {kind.name} tasks in containers")
        report = verify(image, work / kind.name, object_type=kind.object_type, runner=ContainerRunner(tag),
                        echo=lambda line: print(f"    {line}", flush=True))
        steps: dict[str, list[str]] = {}
        for ok, check, detail in report.lines:
            step = check.split(":", 1)[0]
            steps.setdefault(step, [])
            if not ok:
                steps[step].append(f"{check.split(':', 1)[1].strip()}: {detail}")
        for step, problems in steps.items():
            row.record(prefix + step, problems, report.timings.get(step))
        log(f"{image}: docker kill during {kind.name} training, then the same task again")
        started = time.perf_counter()
        row.record(prefix + "kill+resume", check_kill_and_resume(image, tag, kind.object_type,
                                                                 work / f"{kind.name}-kill"),
                   time.perf_counter() - started)


# ---- the table ------------------------------------------------------------------------------------


def table(rows: list[Row], base_size: int, base_s: float) -> str:
    lines = [f"base: {base_size / 1e9:.2f} GB, built in {base_s:.0f} s", "",
             "| image | size GB | build s | check | result | s |", "|---|---:|---:|---|---|---:|"]
    for row in rows:
        first = True
        for name, (ok, seconds) in row.results.items():
            head = f"| {row.image} | {row.size / 1e9:.2f} | {row.build_s:.0f} |" if first else "| | | |"
            took = "" if seconds is None else f"{seconds:.0f}"
            lines.append(f"{head} {name} | {'pass' if ok else 'FAIL'} | {took} |")
            first = False
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], metavar="IMAGE", help="test only this image")
    parser.add_argument("--work", type=Path, help="keep every task's /in, /out and container log here")
    parser.add_argument("--no-build", action="store_true", help="test the images built earlier")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("make docker-test needs root (it may install and start the Docker engine)")
    ensure_engine()
    ensure_debian_base()
    build = build_module()
    settings = build.settings_from(build.parse_args(build_options(args.only)), ROOT)
    steps = build.make_plan(ROOT, settings)
    log("build options: " + " ".join(build_options(args.only)))
    if not args.no_build:
        warn_if_disk_is_short()
    times = {} if args.no_build else build_all(build, settings, steps)
    work = args.work or Path(tempfile.mkdtemp(prefix="ymir-docker-test-"))
    rows = []
    for step in steps:
        if step.name == build.BASE:
            continue
        row = Row(step.name, image_size(step.tags[0]), times.get(step.name, 0.0))
        row.record("labels, tag, no build inputs", check_labels(step.tags[0], step.name, settings.cuda))
        check_image(step.name, step.tags[0], work / step.name, row)
        rows.append(row)
    base_tag = build.base_tag(settings)
    print("\n" + table(rows, image_size(base_tag), times.get(build.BASE, 0.0)))
    failures = [f"{row.image}: {failure}" for row in rows for failure in row.failures]
    for failure in failures:
        print(f"FAIL {failure}")
    print(f"\nwork folder: {work}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
