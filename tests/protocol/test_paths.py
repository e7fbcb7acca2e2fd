from pathlib import Path

from ymir_base.protocol.paths import PathMapper


def test_maps_in_and_out_and_leaves_others(tmp_path):
    m = PathMapper(tmp_path / "i", tmp_path / "o")
    assert m.host("/in/assets/ab/x.jpg") == tmp_path / "i" / "assets" / "ab" / "x.jpg"
    assert m.host("/out/models") == tmp_path / "o" / "models"
    assert m.host("/in") == tmp_path / "i"
    assert m.host("/input/x") == Path("/input/x")  # only whole path components
    assert m.host("/weights/a.pt") == Path("/weights/a.pt")
    assert m.container(tmp_path / "o" / "models" / "a.pt") == "/out/models/a.pt"


def test_identity_in_the_container():
    m = PathMapper()
    assert m.host("/in/env.yaml") == Path("/in/env.yaml")
