"""yolov5's first import with a cheap ``inspect.stack`` (ymir_yolov5lib.runtime.import_yolov5)."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

from ymir_yolov5lib.runtime import frames_without_source


def _nested(depth: int) -> tuple[list[inspect.FrameInfo], list[inspect.FrameInfo]]:
    if depth:
        return _nested(depth - 1)
    return frames_without_source(), inspect.stack(0)


def test_the_frames_are_those_of_inspect_stack_without_source_lines():
    ours, theirs = _nested(3)
    assert len(ours) == len(theirs)
    assert [f.function for f in ours] == [f.function for f in theirs]
    assert [f.lineno for f in ours] == [f.lineno for f in theirs]
    # file names: the same for every frame of a file on disk (this test's, pytest's)
    on_disk = [(a.filename, b.filename) for a, b in zip(ours, theirs, strict=True) if not a.filename.startswith("<")]
    assert on_disk and all(a == b for a, b in on_disk)
    assert ours[0].filename == __file__ and ours[0].function == "_nested"
    assert all(f.code_context is None for f in ours)


def test_import_yolov5_restores_inspect_stack_and_keeps_cv2_as_it_is():
    script = textwrap.dedent("""
        import inspect, cv2
        original_stack, original_imread = inspect.stack, cv2.imread
        from ymir_yolov5lib import runtime
        runtime.import_yolov5()
        import sys
        print("general" , "yolov5.utils.general" in sys.modules)
        print("stack restored", inspect.stack is original_stack)
        # yolov5 replaces cv2.imread only when one of its own scripts is the program
        print("cv2 untouched", cv2.imread is original_imread)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split("\n")[:3] == ["general True", "stack restored True", "cv2 untouched True"]
