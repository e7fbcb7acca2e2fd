"""build.py: the resolved plan, and what it does without an engine or with a fake one."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from _docker_helpers import REPO, build_module

build = build_module()
BASE_TAG = "ymir-executor:ymir2.5.0-base-cu128"
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def plan(*argv: str, root: Path = REPO) -> dict[str, Any]:
    out = io.StringIO()
    assert build.main(["--plan", *argv], root=root, out=out) == 0
    return json.loads(out.getvalue())


def fake_repo(tmp_path: Path, images: list[str]) -> Path:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "9.9.9"\n')
    for name in images:
        (tmp_path / "images" / name).mkdir(parents=True)
        (tmp_path / "images" / name / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    (tmp_path / "images" / "no-dockerfile").mkdir()
    return tmp_path


# ---- the plan ------------------------------------------------------------------------------------


def test_default_plan_builds_the_base_first_then_each_image() -> None:
    steps = plan()["steps"]
    assert [s["order"] for s in steps] == list(range(len(steps)))
    assert steps[0]["name"] == "base" and steps[0]["dockerfile"] == "base/Dockerfile"
    assert steps[0]["tags"] == [BASE_TAG]
    names = [s["name"] for s in steps[1:]]
    assert names[0] == "yolov5" and names == build.discover_images(REPO)
    for step in steps:
        assert step["context"] == str(REPO)
        assert (REPO / step["dockerfile"]).is_file()


def test_repository_plan_lists_every_image() -> None:
    steps = plan()["steps"]
    names = [s["name"] for s in steps]
    assert names == ["base", "yolov5", "mmdet", "mmyolo", "mmrotate", "seg-in-one"]
    for step in steps[1:]:
        assert step["tags"] == [f"ymir-executor:ymir2.5.0-{step['name']}-cu128-tmi"]
        assert step["dockerfile"] == f"images/{step['name']}/Dockerfile"


def test_image_steps_get_their_tag_and_build_args() -> None:
    base, yolov5 = plan("--only", "yolov5")["steps"]
    assert yolov5["tags"] == ["ymir-executor:ymir2.5.0-yolov5-cu128-tmi"]
    args = yolov5["buildargs"]
    assert args["BASE_IMAGE"] == BASE_TAG and args["ALLOW_UNPINNED_WEIGHTS"] == "0"
    assert ISO_UTC.fullmatch(args["CREATED"])
    assert args["VERSION"] == build.project_version(REPO)
    assert args["REVISION"] == build.git_revision(REPO)
    assert {"VERSION", "REVISION", "CREATED", "SOURCE"} <= set(base["buildargs"])
    assert "BASE_IMAGE" not in base["buildargs"]


def test_discovery_follows_the_fixed_order(tmp_path: Path) -> None:
    root = fake_repo(tmp_path, ["seg-in-one", "mmyolo", "zeta", "yolov5", "mmdet"])
    assert build.discover_images(root) == ["yolov5", "mmdet", "mmyolo", "seg-in-one", "zeta"]
    steps = plan(root=root)["steps"]
    assert [s["name"] for s in steps] == ["base", "yolov5", "mmdet", "mmyolo", "seg-in-one", "zeta"]
    assert steps[0]["buildargs"]["VERSION"] == "9.9.9"


def test_only_keeps_the_base_unless_no_base(tmp_path: Path) -> None:
    root = fake_repo(tmp_path, ["yolov5", "mmdet", "mmyolo"])
    assert [s["name"] for s in plan("--only", "mmyolo", "--only", "yolov5", root=root)["steps"]] == [
        "base", "yolov5", "mmyolo"]
    (step,) = plan("--only", "mmdet", "--no-base", root=root)["steps"]
    assert step["name"] == "mmdet" and step["order"] == 0 and step["buildargs"]["BASE_IMAGE"] == BASE_TAG


def test_tag_parts_and_flags_are_configurable() -> None:
    document = plan("--repository", "docker.io/me/ymir", "--ymir-version", "ymir2.1.0", "--cuda", "cu121",
                    "--allow-unpinned-weights", "--version", "1.2.3", "--source", "https://example.org/r",
                    "--build-arg", "MAX_JOBS=8", "--push")
    base, image = document["steps"][:2]
    assert document["push"] is True
    assert base["tags"] == ["docker.io/me/ymir:ymir2.1.0-base-cu121"]
    assert image["tags"] == [f"docker.io/me/ymir:ymir2.1.0-{image['name']}-cu121-tmi"]
    assert image["buildargs"]["BASE_IMAGE"] == base["tags"][0]
    assert image["buildargs"]["ALLOW_UNPINNED_WEIGHTS"] == "1"
    for step in (base, image):
        assert step["buildargs"]["VERSION"] == "1.2.3"
        assert step["buildargs"]["SOURCE"] == "https://example.org/r"
        assert step["buildargs"]["MAX_JOBS"] == "8"


def test_unknown_image_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--plan", "--only", "nosuch"]) == 2
    assert "unknown image(s) nosuch" in capsys.readouterr().err


def test_plan_on_the_command_line_needs_no_engine(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "build.py"), "--plan"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": f"unix://{tmp_path}/none.sock"},
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["steps"][0]["name"] == "base"


# ---- no SDK, no engine ------------------------------------------------------------------------


def fake_docker(from_env: Any) -> ModuleType:
    class DockerException(Exception):
        pass

    module = ModuleType("docker")
    module.errors = SimpleNamespace(DockerException=DockerException)  # type: ignore[attr-defined]
    module.from_env = lambda **_: from_env(DockerException)  # type: ignore[attr-defined]
    return module


def test_missing_sdk_is_a_clear_message(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)  # import docker -> ImportError
    assert build.main(["--only", "yolov5"]) == 2
    err = capsys.readouterr().err
    assert "Docker SDK for Python is not installed" in err and "--plan" in err
    assert "Traceback" not in err


def test_unreachable_engine_is_a_clear_message(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(error: type[Exception]) -> Any:
        raise error("Error while fetching server API version: connection refused")

    monkeypatch.setitem(sys.modules, "docker", fake_docker(refuse))
    monkeypatch.setenv("DOCKER_HOST", "unix:///nowhere.sock")
    assert build.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no Docker engine reachable at unix:///nowhere.sock: start dockerd or set DOCKER_HOST")
    assert "`python build.py --plan` works without one" in err and "Traceback" not in err


def test_command_line_without_engine_exits_2_without_traceback(tmp_path: Path) -> None:
    # whether or not this Python has the Docker SDK, a dead socket must give a message, not a trace
    done = subprocess.run([sys.executable, str(REPO / "build.py"), "--only", "yolov5"], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": f"unix://{tmp_path}/none.sock"},
                          timeout=60, check=False)
    assert done.returncode == 2
    assert re.search(r"no Docker engine reachable|Docker SDK for Python is not installed", done.stderr)
    assert "Traceback" not in done.stderr and done.stdout == ""


# ---- with a fake engine --------------------------------------------------------------------------


class FakeApi:
    def __init__(self, fail: str | None = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.buildargs: dict[str, dict[str, str]] = {}
        self.fail = fail
        self.timeout = 10

    def build(self, **kwargs: Any) -> Any:
        self.calls.append(("build", kwargs["dockerfile"], kwargs["tag"]))
        self.buildargs[kwargs["tag"]] = kwargs["buildargs"]
        yield {"stream": f"Step 1/1 : {kwargs['dockerfile']}\n"}
        if self.fail and self.fail in kwargs["dockerfile"]:
            yield {"error": "The command '/bin/sh -c false' returned a non-zero code: 1"}

    def push(self, repository: str, tag: str, stream: bool, decode: bool) -> Any:
        self.calls.append(("push", f"{repository}:{tag}"))
        yield {"status": "Pushed", "progressDetail": {}, "id": "abc"}
        yield {"status": "Pushing", "progressDetail": {"current": 1}, "id": "abc"}


def engine(monkeypatch: pytest.MonkeyPatch, api: FakeApi) -> None:
    monkeypatch.setattr(build, "connect", lambda: SimpleNamespace(api=api))


def test_builds_in_plan_order_then_pushes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    api = FakeApi()
    engine(monkeypatch, api)
    out = io.StringIO()
    assert build.main(["--only", "yolov5", "--push"], out=out, root=fake_repo(tmp_path, ["yolov5"])) == 0
    image_tag = "ymir-executor:ymir2.5.0-yolov5-cu128-tmi"
    assert api.calls == [
        ("build", "base/Dockerfile", BASE_TAG),
        ("build", "images/yolov5/Dockerfile", image_tag),
        ("push", BASE_TAG),
        ("push", image_tag),
    ]
    assert api.buildargs[image_tag]["BASE_IMAGE"] == BASE_TAG
    log = out.getvalue()
    assert "Step 1/1 : base/Dockerfile" in log and "Pushed abc" in log and "Pushing" not in log


def test_a_failed_build_stops_with_the_engines_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi(fail="base")
    engine(monkeypatch, api)
    assert build.main(["--push"], out=io.StringIO(), root=fake_repo(tmp_path, ["yolov5"])) == 1
    assert [c[0] for c in api.calls] == ["build"]
    assert "returned a non-zero code" in capsys.readouterr().err


# ---- sources for builds behind a firewall -----------------------------------------------------------


def dockerfile_arg_defaults(path: Path) -> dict[str, str]:
    defaults = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("ARG ") and "=" in line:
            key, _, value = line[4:].partition("=")
            defaults[key] = value.strip().strip('"')
    return defaults


def test_the_default_plan_resolves_to_the_dockerfiles_own_defaults() -> None:
    # `make build-all` on a host with internet access builds what the Dockerfiles say, pins and all
    document = plan()
    base = document["steps"][0]
    defaults = dockerfile_arg_defaults(REPO / "base" / "Dockerfile")
    for key in ("DEVEL_IMAGE", "RUNTIME_IMAGE", "UV_IMAGE", "PYTHON_SOURCE", "FORCE_CUDA", "INDEX_URL",
                "PYTHON_MIRROR", "CUDA"):
        assert base["buildargs"][key] == defaults[key], key
    for step in document["steps"][1:]:
        assert step["buildargs"]["WEIGHTS"] == dockerfile_arg_defaults(REPO / step["dockerfile"])["WEIGHTS"]
    assert document["options"] == {
        "devel_image": defaults["DEVEL_IMAGE"], "runtime_image": defaults["RUNTIME_IMAGE"],
        "uv_image": defaults["UV_IMAGE"], "python": "uv", "python_mirror": "", "index_url": "", "ca_bundle": None,
        "weights": "download", "weights_dir": None, "wheelhouse": None, "network": None, "cuda": "cu128"}


def test_a_firewalled_cpu_plan_names_every_source(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "wheels").mkdir()
    document = plan("--cuda", "cpu", "--python", "system", "--devel-image", "local/debian:bookworm",
                    "--runtime-image", "local/debian:bookworm", "--index-url", "https://mirror.example/simple",
                    "--ca-bundle", str(ca), "--wheelhouse", str(tmp_path / "wheels"), "--weights", "none",
                    "--network", "host", "--only", "yolov5")
    base, image = document["steps"]
    assert base["tags"] == ["ymir-executor:ymir2.5.0-base-cpu"]
    assert image["tags"] == ["ymir-executor:ymir2.5.0-yolov5-cpu-tmi"]
    args = base["buildargs"]
    assert (args["DEVEL_IMAGE"], args["RUNTIME_IMAGE"]) == ("local/debian:bookworm", "local/debian:bookworm")
    assert args["UV_IMAGE"] == "no-uv" and args["PYTHON_SOURCE"] == "system"  # nothing pulled from ghcr.io
    assert args["FORCE_CUDA"] == "0" and args["INDEX_URL"] == "https://mirror.example/simple"
    assert image["buildargs"]["WEIGHTS"] == "none"
    assert document["options"]["ca_bundle"] == str(ca) and document["options"]["network"] == "host"


@pytest.mark.parametrize(("argv", "problem"), [
    (["--ca-bundle", "/nonexistent/ca.pem"], "--ca-bundle /nonexistent/ca.pem: no such file"),
    (["--wheelhouse", "/nonexistent"], "--wheelhouse /nonexistent: no such folder"),
    (["--weights", "local"], "--weights local needs --weights-dir"),
    (["--weights-dir", "/tmp"], "--weights-dir is used only with --weights local"),
])
def test_missing_inputs_are_usage_errors(argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--plan", *argv]) == 2
    assert problem in capsys.readouterr().err


def test_inputs_are_staged_for_the_throw_away_stages_only(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    root = fake_repo(tmp_path / "repo", ["yolov5", "mmdet"])
    inputs = root / "build-inputs"
    (inputs / "ca").mkdir(parents=True)
    (inputs / "ca" / "README.md").write_text("kept")
    (inputs / "wheels").mkdir()
    (inputs / "wheels" / "stale-1.0-py3-none-any.whl").write_text("from an earlier build")
    ca = tmp_path / "proxy.pem"
    ca.write_text("PEM")
    wheels = tmp_path / "cache" / "ab" / "cd"
    wheels.mkdir(parents=True)
    (wheels / "onedl_mmcv-2.3.6-cp311-cp311-linux_x86_64.whl").write_text("wheel")
    weights = tmp_path / "weights" / "yolov5"
    weights.mkdir(parents=True)
    (weights / "yolov5n.pt").write_text("w")
    (tmp_path / "weights" / "mmdet").mkdir()
    (tmp_path / "weights" / "other").mkdir()
    argv = ["--ca-bundle", str(ca), "--wheelhouse", str(tmp_path / "cache"), "--weights", "local",
            "--weights-dir", str(tmp_path / "weights"), "--only", "yolov5"]
    settings = build.settings_from(build.parse_args(argv), root)
    build.stage_inputs(root, settings, ["yolov5"])
    assert (inputs / "ca" / "ca.crt").read_text() == "PEM" and (inputs / "ca" / "README.md").read_text() == "kept"
    assert sorted(p.name for p in (inputs / "wheels").iterdir()) == ["onedl_mmcv-2.3.6-cp311-cp311-linux_x86_64.whl"]
    assert sorted(p.relative_to(inputs / "weights").as_posix() for p in (inputs / "weights").rglob("*")) == [
        "yolov5", "yolov5/yolov5n.pt"]
    # the next build without those options starts from empty folders
    build.stage_inputs(root, build.settings_from(build.parse_args([]), root), ["yolov5"])
    assert [sorted(p.name for p in (inputs / name).iterdir()) for name in ("ca", "wheels", "weights")] == [
        ["README.md"], [], []]


def test_local_weights_stage_every_folder_an_image_bakes(tmp_path: Path) -> None:
    # seg-in-one bakes the yolov5 image's detection weights besides its own: both are staged
    assert build.weight_folders(REPO, "seg-in-one") == ["seg-in-one", "yolov5"]
    assert build.weight_folders(REPO, "mmdet") == ["mmdet"]
    root = tmp_path / "repo"
    (root / "images" / "seg-in-one").mkdir(parents=True)
    (root / "images" / "seg-in-one" / "Dockerfile").write_text(
        (REPO / "images" / "seg-in-one" / "Dockerfile").read_text())
    (root / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    for folder in ("seg-in-one", "yolov5", "mmdet"):
        (tmp_path / "weights" / folder).mkdir(parents=True)
        (tmp_path / "weights" / folder / "w.pt").write_text(folder)
    argv = ["--weights", "local", "--weights-dir", str(tmp_path / "weights"), "--only", "seg-in-one"]
    build.stage_inputs(root, build.settings_from(build.parse_args(argv), root), ["seg-in-one"])
    staged = root / "build-inputs" / "weights"
    assert sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*.pt")) == [
        "seg-in-one/w.pt", "yolov5/w.pt"]


def test_the_plan_shows_the_weights_each_image_bakes() -> None:
    import yaml

    steps = {step["name"]: step for step in plan("--only", "seg-in-one", "--only", "yolov5")["steps"]}
    assert "weights" not in steps["base"]
    seg = steps["seg-in-one"]["weights"]
    assert list(seg) == ["/weights/seg-in-one", "/weights/yolov5"]
    assert seg["/weights/yolov5"] == steps["yolov5"]["weights"]["/weights/yolov5"]
    for folder, baked in seg.items():
        entries = yaml.safe_load((REPO / baked["manifest"]).read_text())
        assert baked["models"] == [e["name"] for e in entries], folder
        assert baked["unpinned"] == [e["name"] for e in entries if "sha256" in e and e["sha256"] is None], folder
    assert {f"yolov5{m}-seg" for m in "nsmlx"} <= set(seg["/weights/seg-in-one"]["models"])
    assert "yolov5n-seg" not in seg["/weights/seg-in-one"]["unpinned"]
