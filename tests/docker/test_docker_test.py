"""scripts/docker_test.py (make docker-test): what it asks build.py for, and its table. The engine
part runs only under `make docker-test`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from _docker_helpers import REPO


def docker_test_module():
    spec = importlib.util.spec_from_file_location("ymir_docker_test", REPO / "scripts" / "docker_test.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


dt = docker_test_module()


def test_its_build_is_a_cpu_firewall_build_of_every_image(monkeypatch) -> None:
    monkeypatch.setattr(dt, "host_ca_bundle", lambda: "/etc/hostname")
    monkeypatch.setattr(dt, "host_wheelhouse", lambda: str(REPO))
    build = dt.build_module()
    settings = build.settings_from(build.parse_args(dt.build_options([])), REPO)
    assert build.input_problems(settings) == []
    steps = build.make_plan(REPO, settings)
    assert [s.name for s in steps] == ["base", *build.discover_images(REPO)]  # new images join by themselves
    assert all(s.tags[0].endswith(("-base-cpu", "-cpu-tmi")) for s in steps)
    base_args = steps[0].buildargs
    assert base_args["DEVEL_IMAGE"] == base_args["RUNTIME_IMAGE"] == dt.DEBIAN_BASE
    assert (base_args["PYTHON_SOURCE"], base_args["UV_IMAGE"], base_args["FORCE_CUDA"]) == ("system", "no-uv", "0")
    assert {s.buildargs["WEIGHTS"] for s in steps[1:]} == {"none"}
    assert settings.ca_bundle == "/etc/hostname" and settings.wheelhouse == str(REPO)


def test_the_table_lists_every_check_with_its_result_and_time() -> None:
    row = dt.Row("yolov5", size=9_000_000_000, build_s=12.4)
    row.record("training", [], 30.2)
    row.record("kill+resume", ["the rerun did not say 'resuming the killed run'"], 61.0)
    text = dt.table([row], base_size=8_900_000_000, base_s=700)
    assert text.splitlines()[0] == "base: 8.90 GB, built in 700 s"
    assert "| yolov5 | 9.00 | 12 | training | pass | 30 |" in text
    assert "| | | | kill+resume | FAIL | 61 |" in text
    assert row.failures == ["kill+resume: the rerun did not say 'resuming the killed run'"]


def test_it_refuses_to_run_without_root(monkeypatch) -> None:
    monkeypatch.setattr(dt.os, "geteuid", lambda: 1000)
    with pytest.raises(SystemExit, match="needs root"):
        dt.main([])


def test_img_man_files_exist_for_every_image() -> None:
    for name in dt.build_module().discover_images(REPO):
        assert sorted(p.name for p in (REPO / "images" / name / "img-man").glob("*.yaml")), name
        assert Path(REPO / "images" / name / "img-man" / "manifest.yaml").is_file()
