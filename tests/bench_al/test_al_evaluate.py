"""The evaluator's silencing of pycocotools when the loop evaluates in several threads (--jobs)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from al.evaluate import quiet  # noqa: E402

WAIT = 10  # seconds; each wait returns as soon as the other thread sets its event


def test_quiet_silences_only_its_own_thread(capsys):
    inside, printed = threading.Event(), threading.Event()

    def evaluating() -> None:
        with quiet():
            print("chatter 1")
            inside.set()
            assert printed.wait(WAIT)
            print("chatter 2")

    thread = threading.Thread(target=evaluating)
    thread.start()
    assert inside.wait(WAIT)
    print("progress line")  # another thread's output while an evaluation is quiet
    printed.set()
    thread.join(WAIT)
    assert capsys.readouterr().out == "progress line\n"


def test_overlapping_quiet_blocks_leave_stdout_working(capsys):
    # the order that left contextlib.redirect_stdout's buffer in sys.stdout: A in, B in, A out, B out
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def a() -> None:
        with quiet():
            a_in.set()
            assert b_in.wait(WAIT)
        a_out.set()

    def b() -> None:
        assert a_in.wait(WAIT)
        with quiet():
            b_in.set()
            assert a_out.wait(WAIT)
            print("chatter")

    threads = [threading.Thread(target=f) for f in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    print("after both")
    assert capsys.readouterr().out == "after both\n"
