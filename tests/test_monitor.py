from ymir_base.errors import ErrorCode
from ymir_base.monitor import Monitor
from ymir_base.verify.checks import check_monitor


def read(path):
    return path.read_text().splitlines()


def test_line_format_and_phases(tmp_path):
    path = tmp_path / "monitor.txt"
    m = Monitor(path, "t1", min_interval=0)
    m.start()
    fields = read(path)[0].split("\t")
    assert fields[0] == "t1" and fields[3] == "2" and fields[4] == "0" and len(fields) == 5
    with m.phase(0.5, 1.0):
        m.progress(0.5)
    assert float(read(path)[0].split("\t")[2]) == 0.75
    m.progress(0.1)  # never goes backwards
    assert float(read(path)[0].split("\t")[2]) == 0.75
    m.done()
    assert check_monitor(path) == []


def test_error_state_code_and_message(tmp_path):
    path = tmp_path / "monitor.txt"
    m = Monitor(path, "t1", min_interval=0)
    m.error(ErrorCode.DATASET, "bad\tline  in file", ["Traceback", "  detail"])
    lines = read(path)
    fields = lines[0].split("\t")
    assert fields[3] == "4" and fields[4] == "300002" and fields[5] == "bad line in file"
    assert lines[1:] == ["Traceback", "  detail"]
    assert check_monitor(path, expect_error=True) == []


def test_throttled_but_timestamps_increase(tmp_path):
    path = tmp_path / "monitor.txt"
    now = [1000.0]
    m = Monitor(path, "t1", min_interval=60, clock=lambda: now[0])
    m.start()
    first = read(path)[0]
    now[0] += 59.0
    m.progress(0.3)  # within min_interval: not written
    assert read(path)[0] == first
    now[0] += 2.0
    m.progress(0.35)  # 61 s after the last write: written
    fields = read(path)[0].split("\t")
    assert (float(fields[1]), float(fields[2])) == (1061.0, 0.35)
    m.progress(0.4, force=True)  # forced at the same clock reading: written with a later timestamp
    assert 1061.0 < float(read(path)[0].split("\t")[1]) <= 1061.0 + 1e-3


def test_only_rank_zero_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    m = Monitor(tmp_path / "monitor.txt", "t1")
    m.start()
    assert not (tmp_path / "monitor.txt").exists()
