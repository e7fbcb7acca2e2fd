import logging

import pytest

from ymir_base.data.index import iter_pairs, read_candidates, read_pairs
from ymir_base.errors import DatasetError
from ymir_base.protocol.paths import PathMapper


@pytest.fixture
def mapper(tmp_path):
    return PathMapper(in_dir=tmp_path)


def test_pairs_from_container_path(tmp_path, mapper):
    (tmp_path / "train-index.tsv").write_text(
        "/in/assets/aa/1.jpg\t/in/annotations/aa/1.txt\n"
        "\n"
        "/in/assets/bb/2.jpg\r\n"
        "  /in/assets/cc/3.jpg\t/in/annotations/cc/3.txt\t\n")
    assert read_pairs("/in/train-index.tsv", mapper) == [
        (1, "/in/assets/aa/1.jpg", "/in/annotations/aa/1.txt"),
        (3, "/in/assets/bb/2.jpg", ""),
        (4, "/in/assets/cc/3.jpg", "/in/annotations/cc/3.txt"),
    ]


def test_lines_end_at_any_newline_and_are_read_as_they_are_used(tmp_path, mapper):
    # \r\n, \r and \n each end a line; the bad line 4 is reached only when the reader gets there
    (tmp_path / "train-index.tsv").write_bytes(b"/in/a.jpg\t/in/a.txt\r\n\r/in/b.jpg\n/in/c.jpg\t\t/in/x\n")
    pairs = iter_pairs("/in/train-index.tsv", mapper)
    assert next(pairs) == (1, "/in/a.jpg", "/in/a.txt")
    assert next(pairs) == (3, "/in/b.jpg", "")
    with pytest.raises(DatasetError, match=r"line 4: .*3 tab-separated columns"):
        next(pairs)


def test_three_columns_name_file_and_line(tmp_path, mapper):
    (tmp_path / "val-index.tsv").write_text("/in/a.jpg\t/in/a.txt\n/in/b.jpg\t/in/b.txt\textra\n")
    with pytest.raises(DatasetError, match=r"index /in/val-index.tsv line 2: .*3 tab-separated columns"):
        read_pairs("/in/val-index.tsv", mapper)


def test_empty_image_field(tmp_path, mapper):
    (tmp_path / "train-index.tsv").write_text("\t/in/a.txt\n")
    with pytest.raises(DatasetError, match=r"/in/train-index.tsv line 1: the image path is empty"):
        read_pairs("/in/train-index.tsv", mapper)


def test_missing_index_file(mapper):
    with pytest.raises(DatasetError, match=r"index file /in/train-index.tsv does not exist"):
        read_pairs("/in/train-index.tsv", mapper)
    with pytest.raises(DatasetError, match=r"candidate-index.tsv does not exist"):
        read_candidates("/in/candidate-index.tsv", mapper)


def test_candidates_keep_order_and_duplicates(tmp_path, mapper, caplog):
    (tmp_path / "candidate-index.tsv").write_text("/in/b.jpg\n\n /in/a.jpg \n/in/b.jpg\n")
    with caplog.at_level(logging.WARNING):
        assert read_candidates("/in/candidate-index.tsv", mapper) == ["/in/b.jpg", "/in/a.jpg", "/in/b.jpg"]
    assert "more than once" in caplog.text and "/in/b.jpg" in caplog.text


def test_empty_candidate_index_is_an_empty_list(tmp_path, mapper):
    (tmp_path / "candidate-index.tsv").write_text("\n\n")
    assert read_candidates("/in/candidate-index.tsv", mapper) == []
