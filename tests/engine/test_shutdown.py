"""The end of a task's process: one collection, then the survivors frozen, at exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import atexit, gc, sys
    # registered first, so it runs last: after quick_shutdown's handler
    atexit.register(lambda: print("frozen", gc.get_freeze_count() > 0, flush=True))
    from ymir_base.engine.shutdown import quick_shutdown

    class Cycle:
        def __del__(self):
            with open(sys.argv[1], "w") as f:
                f.write("finalized")

    gc.disable()  # only a collection at exit finds the cycle below
    before = atexit._ncallbacks()
    quick_shutdown()
    quick_shutdown()
    print("handlers added", atexit._ncallbacks() - before, flush=True)
    garbage = Cycle()
    garbage.me = garbage
    del garbage
""")


def test_the_exit_collects_once_then_freezes(tmp_path):
    marker = tmp_path / "finalized.txt"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(marker)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["handlers added 1", "frozen True"]
    assert marker.read_text() == "finalized"  # garbage cycles alive at exit are still finalized
