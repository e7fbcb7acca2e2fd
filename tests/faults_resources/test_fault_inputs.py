"""A decompression bomb among the candidates (skipped with a warning, scored lowest), and index
lines that point outside /in (a DatasetError naming the file and line)."""

from __future__ import annotations

import json
import resource
import struct
import zlib
from pathlib import Path

import pytest

from conftest import read_monitor
from ymir_base.data.images import image_size, read_image
from ymir_base.engine.task import run_task
from ymir_base.errors import ErrorCode, ImageFormatError

FAST = {"model": "yolov5n", "epochs": 1, "img_size": 64, "batch_size_per_gpu": 4, "num_workers_per_gpu": 0}


def bomb_png(path: Path, side: int) -> Path:
    """A grey PNG that declares ``side`` x ``side`` pixels and holds the first 64 rows (a few KB)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = zlib.compress(b"\0" * (side + 1) * 64, 9)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [50000, 30000])
def test_a_bomb_is_refused_from_its_header(tmp_path, side):
    """50000^2 is above the pixel limit; 30000^2 is below it but cannot be in a 3 KB file (OpenCV
    spent 42 s and 8.6 GB on it before the header check)."""
    bomb = bomb_png(tmp_path / "bomb.png", side)
    assert bomb.stat().st_size < 10_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageFormatError, match=r"bomb\.png.*(decompression bomb|truncated)"):
        read_image(bomb)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: nothing decoded
    if side == 50000:
        with pytest.raises(ImageFormatError, match=r"bomb\.png"):
            image_size(bomb)


def test_a_large_complete_image_is_not_a_bomb(tmp_path):
    """A real image above BOMB_MIN_PIXELS whose file holds its data decodes."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (4200, 4100, 3), dtype=np.uint8)
    path = tmp_path / "big.jpg"
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 30])
    assert read_image(path).shape == (4200, 4100, 3)


@pytest.mark.parametrize("algorithm", ["entropy", "random"])
def test_a_bomb_candidate_is_skipped_not_the_task(sample, yolov5n_checkpoint, algorithm, capsys):
    in_dir, out_dir = sample("mining+infer", models={"best": yolov5n_checkpoint.parent})
    candidates = (in_dir / "candidate-index.tsv").read_text().splitlines()
    bomb = "/in/" + str(bomb_png(in_dir / "assets" / "ff" / "bomb.png", 50000).relative_to(in_dir))
    (in_dir / "candidate-index.tsv").write_text("\n".join([candidates[0], bomb, *candidates[1:]]) + "\n")
    assert run_task("yolov5", in_dir, out_dir, {"mining_algorithm": algorithm, "img_size": 64}) == 0
    rows = [r.split("\t") for r in (out_dir / "result.tsv").read_text().splitlines()]
    assert len(rows) == len(candidates) + 1
    assert rows[-1][0] == bomb and float(rows[-1][1]) == -1e9
    assert all(float(score) > -1e9 for _, score in rows[:-1])
    infer = json.loads((out_dir / "infer-result.json").read_text())["detection"]
    assert infer["bomb.png"] == {"boxes": []} and len(infer) == len(candidates) + 1
    log = capsys.readouterr().out
    assert f"candidate {bomb} is unreadable and gets the lowest score" in log and "decompression bomb" in log
    assert read_monitor(out_dir)[:2] == (2, 0)


# ---- index lines outside /in ---------------------------------------------------------------------
OUTSIDE = ["/etc/passwd", "../../x.jpg", "/in/../etc/passwd", "assets/a.jpg", "/in/assets/a\0.jpg"]


def _assert_dataset_error(code: int, out_dir: Path, *fragments: str) -> None:
    state, written, text = read_monitor(out_dir)
    assert code != 0
    assert (state, written) == (4, int(ErrorCode.DATASET)), text
    for fragment in fragments:
        assert fragment in text.splitlines()[0], text
    for name in ("models/result.yaml", "infer-result.json", "result.tsv"):
        assert not (out_dir / name).exists()


@pytest.mark.parametrize("path", OUTSIDE)
def test_a_training_index_line_outside_in(sample, path):
    in_dir, out_dir = sample("training")
    lines = (in_dir / "train-index.tsv").read_text().splitlines()
    _, annotation = lines[2].split("\t")
    lines[2] = f"{path}\t{annotation}"
    (in_dir / "train-index.tsv").write_text("\n".join(lines) + "\n")
    code = run_task("yolov5", in_dir, out_dir, FAST)
    _assert_dataset_error(code, out_dir, "/in/train-index.tsv line 3", "points outside /in")


def test_an_annotation_outside_in(sample):
    in_dir, out_dir = sample("training")
    lines = (in_dir / "val-index.tsv").read_text().splitlines()
    lines[0] = lines[0].split("\t")[0] + "\t/in/annotations/../../../etc/shadow"
    (in_dir / "val-index.tsv").write_text("\n".join(lines) + "\n")
    code = run_task("yolov5", in_dir, out_dir, FAST)
    _assert_dataset_error(code, out_dir, "/in/val-index.tsv line 1", "/etc/shadow", "'..'")


@pytest.mark.parametrize("path", OUTSIDE[:3])
def test_a_candidate_outside_in(sample, yolov5n_checkpoint, path):
    in_dir, out_dir = sample("mining+infer", models={"best": yolov5n_checkpoint.parent})
    candidates = (in_dir / "candidate-index.tsv").read_text().splitlines()
    (in_dir / "candidate-index.tsv").write_text("\n".join([*candidates, path]) + "\n")
    code = run_task("yolov5", in_dir, out_dir, {"mining_algorithm": "random"})
    _assert_dataset_error(code, out_dir, f"/in/candidate-index.tsv line {len(candidates) + 1}",
                          "points outside /in")
