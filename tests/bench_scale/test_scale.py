"""bench/scale.py's logic on small inputs: the growth fits, the flags, the generated index files
and one --quick run writing its table and report (the real measurements are the bench's job)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import scale  # noqa: E402
import scale_data  # noqa: E402

SIZES = [1_000, 10_000, 100_000]


@pytest.mark.parametrize(("power", "expected"), [(1.0, 1.0), (2.0, 2.0), (0.5, 0.5)])
def test_the_exponent_of_a_power_law_is_its_power(power, expected):
    assert scale.fit_exponent(SIZES, [3e-6 * n**power for n in SIZES]) == pytest.approx(expected)


def test_a_fixed_cost_pulls_the_exponent_below_one_and_the_slope_is_per_item():
    assert scale.fit_exponent(SIZES, [5.0 + 1e-4 * n for n in SIZES]) < 0.9
    assert scale.fit_slope(SIZES, [200e6 + 750.0 * n for n in SIZES]) == pytest.approx(750.0)
    assert scale.fit_exponent([10], [1.0]) != scale.fit_exponent([10], [1.0])  # NaN: one size fits nothing


def _measurements(step: str, seconds, peak_per_item: float, result_per_item: float) -> list[scale.Measurement]:
    return [scale.Measurement(step, n, seconds(n), seconds(n), seconds(n) + 1, int(300e6 + peak_per_item * n),
                              int(result_per_item * n)) for n in SIZES]


def test_the_growth_table_flags_superlinear_time_and_memory_beyond_the_result():
    rows = (_measurements("linear", lambda n: 2e-5 * n, 400.0, 300.0)
            + _measurements("quadratic", lambda n: 1e-9 * n * n, 300.0, 300.0)
            + _measurements("hoarder", lambda n: 2e-5 * n, 1500.0, 300.0))
    flags = {g.step: g.flags for g in scale.growth(rows)}
    assert flags == {"linear": [], "quadratic": ["time grows as n^2.00"], "hoarder": ["memory grows beyond the result"]}
    text = scale.tables(rows)
    assert "| quadratic | 1000/10000/100000 | 2.00 | 2.00 |" in text
    assert "| hoarder | 100000 |" in text
    assert "| linear | 1000/10000/100000 | 1.00 | 1.00 | 0.381 | 0.286 | 0.095 | ok |" in text


def test_index_files_have_the_promised_lines(tmp_path):
    candidates = scale_data.candidate_index(tmp_path, 120).read_text().splitlines()
    pairs = [line.split("\t") for line in scale_data.train_index(tmp_path, 50).read_text().splitlines()]
    coco = [line.split("\t") for line in scale_data.coco_index(tmp_path, 30).read_text().splitlines()]
    assert len(candidates) == len(set(candidates)) == 120
    assert len(pairs) == 50 and candidates[:50] == [image for image, _ in pairs]
    assert len(coco) == 30 and {ann for _, ann in coco} == {"/in/annotations/coco-30.json"}
    document = json.loads((tmp_path / "in" / "annotations" / "coco-30.json").read_text())
    assert [image["file_name"] for image in document["images"]] == [c.rsplit("/", 1)[1] for c in candidates[:30]]
    in_dir = tmp_path / "in"
    assert all((in_dir / c.removeprefix("/in/")).is_file() for c in candidates)
    assert all((in_dir / a.removeprefix("/in/")).is_file() for _, a in pairs)
    # hard links to the few distinct files
    assert len({(in_dir / c.removeprefix("/in/")).stat().st_ino for c in candidates}) == scale_data.DISTINCT


def test_a_quick_run_writes_the_tables(tmp_path):
    measured = scale.main(["--quick", "--steps", "index-candidates", "index-train", "--out", str(tmp_path)])
    assert [(m.step, m.n) for m in measured] == [("index-candidates", 100), ("index-candidates", 1000),
                                                  ("index-train", 100), ("index-train", 1000)]
    assert all(m.seconds > 0 and m.peak_bytes > 10 * 2**20 and m.result_bytes > 0 for m in measured)
    report = (tmp_path / "report.md").read_text()
    assert "| index-candidates | 1000 |" in report and "| index-train | 100/1000 |" in report
    saved = json.loads((tmp_path / "results.json").read_text())["measurements"]
    assert len(saved) == 4
    assert len((tmp_path / "cache" / "in" / "candidate-index-1000.tsv").read_text().splitlines()) == 1000
