"""The container runner's own checks (no engine needed: docker itself is exercised by make docker-test)."""

from __future__ import annotations

from pathlib import Path

from ymir_base.verify.container import changed_paths, tree_digest, written_outside
from ymir_base.verify.pipeline import Outcome, verify


def test_tree_digest_sees_content_mode_and_new_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("one")
    before = tree_digest(tmp_path)
    assert changed_paths(before, tree_digest(tmp_path)) == []
    (tmp_path / "a" / "x.txt").write_text("two")
    (tmp_path / "new").write_text("")
    after = tree_digest(tmp_path)
    assert changed_paths(before, after) == ["a/x.txt", "new"]
    (tmp_path / "new").chmod(0o600)
    assert changed_paths(after, tree_digest(tmp_path)) == ["new"]


def test_only_writes_outside_the_scratch_folder_count() -> None:
    diff = "C /tmp\nA /tmp/.cache\nA /tmp/.cache/torch\nC /opt\nC /opt/ymir\nA /opt/ymir/settings.json\nC /etc"
    assert written_outside(diff, ("/tmp",)) == ["C /opt", "C /opt/ymir", "A /opt/ymir/settings.json", "C /etc"]
    assert written_outside("C /tmp\nA /tmp/x\n", ("/tmp",)) == []
    assert written_outside("A /tmpfile", ("/tmp",)) == ["A /tmpfile"]
    # the mount points docker makes for the volumes are not the task's writes
    assert written_outside("A /in\nA /out\nA /outside", ("/tmp",)) == ["A /outside"]


def test_verify_reports_the_runners_own_checks_per_step(tmp_path: Path) -> None:
    # a runner that fails one task and flags /in: verify reports both, and stops at training
    calls: list[str] = []

    def runner(image: str, in_dir: Path, out_dir: Path) -> Outcome:
        calls.append(in_dir.parent.name)
        return Outcome(3, {"/in unchanged": ["changed: config.yaml"], "nothing written outside /out": []})

    report = verify("yolov5", tmp_path, runner=runner)
    assert calls == ["training"]
    lines = {name: (ok, detail) for ok, name, detail in report.lines}
    assert lines["training: exit code 0"] == (False, "exit code 3")
    assert lines["training: /in unchanged"] == (False, "changed: config.yaml")
    assert lines["training: nothing written outside /out"] == (True, "")
    assert not report.ok
