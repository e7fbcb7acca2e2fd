"""Weights manifests (images/<image>/weights.yaml) and scripts/fetch_weights.py, offline.

Downloads are exercised with file:// URLs and fake openers: no network, no engine.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import re
import shlex
import stat
import urllib.error
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from _docker_helpers import REPO, fetch_weights_module, image_dockerfiles, parse_dockerfile

from ymir_base.engine.registry import backend_class

fw = fetch_weights_module()
IMAGES = list(image_dockerfiles())
# The models of each image's seed table (shared/seeds/<image>.md), which the image must bake in.
SEED_MODELS = {
    "yolov5": {
        "yolov5n", "yolov5s", "yolov5m", "yolov5l", "yolov5x",
        "yolov5n6", "yolov5s6", "yolov5m6", "yolov5l6",
    },
    "mmdet": {"yolox_tiny", "yolox_s", "yolox_l", "yolox_x"},
    "mmyolo": {
        "yolov8_n", "yolov8_s", "yolov8_m",
        "yolov7_tiny", "yolov7_l", "yolov7_x",
        "yolov6_n", "yolov6_t", "yolov6_s", "yolov6_m",
        "yolov5_n", "yolov5_s", "yolov5_m",
        "yolox_tiny", "yolox_s",
        "ppyoloe_plus_s", "ppyoloe_plus_m",
        "rtmdet_tiny", "rtmdet_s", "rtmdet_m", "rtmdet_l",
    },
    "mmrotate": {
        "rotated_rtmdet_tiny", "rotated_rtmdet_tiny_ms", "rotated_rtmdet_s", "rotated_rtmdet_s_ms",
        "rotated_rtmdet_m", "rotated_rtmdet_m_ms",
    },
    "seg-in-one": {
        *(f"yolov5{m}-seg" for m in "nsmlx"),
        "fast_scnn",
        *(f"fcn_{net}_{schedule}" for net in ("hr18s", "hr18", "hr48") for schedule in ("40k", "80k", "160k")),
    },
}
YOLOV5_RELEASE = "https://github.com/ultralytics/yolov5/releases/download/v7.0/"
# OpenMMLab images: the backend package whose MODELS names the models, and where the seed's
# checkpoints live on OpenMMLab's download server.
OPENMMLAB_IMAGES = {
    "mmdet": ("ymir_mmdet.backend", "https://download.openmmlab.com/mmdetection/v2.0/yolox/"),
    "mmyolo": ("ymir_mmyolo.backend", "https://download.openmmlab.com/mmyolo/v0/"),
    "mmrotate": ("ymir_mmrotate.backend", "https://download.openmmlab.com/mmrotate/v1.0/rotated_rtmdet/"),
    "seg-in-one": ("ymir_seginone.models", "https://download.openmmlab.com/mmsegmentation/v0.5/"),
}
HASH_IN_NAME = re.compile(r"-([0-9a-f]{8})\.pth")


def manifest_path(image: str) -> Path:
    return REPO / "images" / image / "weights.yaml"


def offered_models(image: str) -> set[str]:
    """The ``model`` choices of the training schemas of the kinds whose weights the image bakes
    under its own name (not those of a backend with a ``weights_folder`` of another image)."""
    backend = backend_class(image)
    offered: set[str] = set()
    for kind in backend.served():
        part = backend.part_class(kind) if hasattr(backend, "part_class") else backend
        if part.weights_folder not in (None, image):
            continue
        params = yaml.safe_load(backend.params_file_for(kind).read_text(encoding="utf-8"))
        offered |= set(params.get("training", {}).get("model", {}).get("choices", []))
    return offered


def openmmlab_entries(image: str) -> list[Any]:
    """The entries of OpenMMLab checkpoints (seg-in-one also bakes YOLOv5-seg release assets)."""
    return [item for item in fw.load_manifest(manifest_path(image)) if "download.openmmlab.com" in item.url]


def write_manifest(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump(entries), encoding="utf-8")
    return path


def entry(name: str = "w", url: str = "https://example.org/w.pt", sha256: str | None = "0" * 64,
          path: str = "/weights/x/w.pt") -> dict[str, Any]:
    return {"name": name, "url": url, "sha256": sha256, "path": path}


def prefix_entry(prefix: Any = "0123abcd", url: str = "https://example.org/w.pt") -> dict[str, Any]:
    return {"name": "w", "url": url, "sha256_prefix": prefix, "path": "/weights/x/w.pt"}


OPENMMLAB_URL = ("https://download.openmmlab.com/mmyolo/v0/yolov8/yolov8_n_syncbn_fast_8xb16-500e_coco/"
                 "yolov8_n_syncbn_fast_8xb16-500e_coco_20230114_131804-88c11cdb.pth")


# ---- the manifests in the repository ----------------------------------------------------------


@pytest.mark.parametrize("image", IMAGES)
def test_manifest_is_well_formed(image: str) -> None:
    entries = fw.load_manifest(manifest_path(image))
    for item in entries:
        assert item.path.parent == PurePosixPath(f"/weights/{image}"), item
        # named after the model, with the download's extension
        assert item.path.name == item.name + PurePosixPath(item.url).suffix, item


@pytest.mark.parametrize("image", IMAGES)
def test_manifest_covers_every_model_of_the_image(image: str) -> None:
    names = {item.name for item in fw.load_manifest(manifest_path(image))}
    assert SEED_MODELS.get(image, set()) <= names
    offered = offered_models(image)
    assert offered <= names, f"baked {sorted(names)} but the image offers {sorted(offered)}"
    others = names - offered  # the OpenMMLab models, named by the backend's MODELS, not a `model` choice
    if image in OPENMMLAB_IMAGES:
        others -= set(importlib.import_module(OPENMMLAB_IMAGES[image][0]).MODELS)
    assert not others, f"baked {sorted(others)}, which the image does not offer"


def test_seg_in_one_detection_uses_the_yolov5_manifest() -> None:
    # the Dockerfile bakes images/yolov5/weights.yaml at /weights/yolov5, where its detection looks
    from ymir_base.tasks import kind_named

    backend = backend_class("seg-in-one")
    detection = backend.part_class(kind_named("detection"))
    assert detection.weights_dir().name == "yolov5"
    params = yaml.safe_load(backend.params_file_for(kind_named("detection")).read_text(encoding="utf-8"))
    baked = {item.name for item in fw.load_manifest(manifest_path("yolov5"))}
    assert set(params["training"]["model"]["choices"]) == baked


def test_seg_in_one_instance_weights_are_the_v7_release() -> None:
    seg = [item for item in fw.load_manifest(manifest_path("seg-in-one")) if item.url.startswith(YOLOV5_RELEASE)]
    assert {item.name for item in seg} == {f"yolov5{m}-seg" for m in "nsmlx"}
    for item in seg:
        assert item.url == f"{YOLOV5_RELEASE}{item.name}.pt"
        assert str(item.path) == f"/weights/seg-in-one/{item.name}.pt"
    # the manifest's header says why some have no sha256; everything else is pinned
    loose = {item.name for item in fw.unpinned(fw.load_manifest(manifest_path("seg-in-one")))}
    assert loose <= {item.name for item in seg} and "yolov5n-seg" not in loose
    assert "No published hash" in manifest_path("seg-in-one").read_text(encoding="utf-8")


@pytest.mark.parametrize("image", IMAGES)
def test_dockerfile_fetches_the_manifest(image: str) -> None:
    # in a throw-away stage (it sees the build's CA bundle), whose /weights/<image>/ the image copies
    dockerfile = parse_dockerfile(image_dockerfiles()[image])
    weights = next(stage for stage in dockerfile.stages if stage.alias == "weights")
    copies = [shlex.split(i.args) for i in weights.all("COPY")]
    target = f"/weights/{image}/weights.yaml"
    assert [f"images/{image}/weights.yaml", target] in copies
    assert ["scripts/fetch_weights.py", "/opt/ymir/fetch_weights.py"] in copies
    runs = [i.args for i in weights.all("RUN")]
    assert any(f"fetch_weights.py {target}" in run and "ALLOW_UNPINNED_WEIGHTS" in run
               and '--source "$WEIGHTS"' in run for run in runs)
    args = [i.args for i in weights.all("ARG")]
    assert "ALLOW_UNPINNED_WEIGHTS=0" in args and "WEIGHTS=download" in args
    final_copies = [shlex.split(i.args) for i in dockerfile.final.all("COPY")]
    assert ["--from=weights", f"/weights/{image}/", f"/weights/{image}/"] in final_copies
    assert not [c for c in final_copies if any("build-inputs" in word for word in c)]


def test_yolov5_weights_are_the_v7_release_and_all_pinned() -> None:
    entries = fw.load_manifest(manifest_path("yolov5"))
    assert not fw.unpinned(entries)
    for item in entries:
        assert item.url == f"{YOLOV5_RELEASE}{item.name}.pt"
        assert str(item.path) == f"/weights/yolov5/{item.name}.pt"


@pytest.mark.parametrize("image", sorted(OPENMMLAB_IMAGES))
def test_openmmlab_weights_are_models_of_the_backend(image: str) -> None:
    module, _ = OPENMMLAB_IMAGES[image]
    models = importlib.import_module(module).MODELS
    for item in openmmlab_entries(image):
        assert item.name in models, f"{item.name} is not a model of {module}: {sorted(models)}"
        # where Backend.starting_weights looks: /weights/<image>/<model key>.pth
        assert str(item.path) == f"/weights/{image}/{item.name}.pth"


@pytest.mark.parametrize("image", sorted(OPENMMLAB_IMAGES))
def test_openmmlab_weights_are_pinned_by_the_hash_in_their_file_name(image: str) -> None:
    _, server = OPENMMLAB_IMAGES[image]
    entries = openmmlab_entries(image)
    assert entries and not fw.unpinned(entries)
    for item in entries:
        assert item.url.startswith(server), item.url
        file_name = item.url.rsplit("/", 1)[-1]
        match = HASH_IN_NAME.search(file_name)
        assert match and match.end() == len(file_name), f"{file_name}: no -<8 hex>.pth suffix"
        assert item.sha256_prefix == match.group(1) == fw.openmmlab_prefix(item.url), item
        assert item.sha256 is None or item.sha256.startswith(item.sha256_prefix), item


@pytest.mark.parametrize("image", sorted(OPENMMLAB_IMAGES))
def test_openmmlab_manifests_explain_their_prefixes(image: str) -> None:
    header = manifest_path(image).read_text(encoding="utf-8").split("\n- ", 1)[0]
    assert "sha256_prefix" in header and "first 8 hex digits" in header


@pytest.mark.parametrize("image", IMAGES)
def test_check_mode_accepts_the_manifest(image: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert fw.main([str(manifest_path(image)), "--check"]) == 0
    assert "pinned" in capsys.readouterr().out


# ---- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        (entry(url="http://example.org/w.pt"), "https"),
        (entry(sha256="ABC"), "sha256"),
        (entry(sha256="A" * 64), "sha256"),
        (entry(sha256=1234), "sha256"),
        (entry(path="weights/x/w.pt"), "path"),
        (entry(path="/opt/w.pt"), "path"),
        (entry(path="/weights/../etc/w.pt"), "path"),
        ({**entry(), "md5": "x"}, "unknown key"),
        ({"name": "w", "url": "https://example.org/w.pt", "path": "/weights/x/w.pt"}, "missing key 'sha256'"),
        ({**entry(), "sha256_prefix": "0" * 8}, "not both"),
        ({**entry(sha256=None), "sha256_prefix": "0" * 8}, "not both"),
        (prefix_entry("0123abcz"), "sha256_prefix"),
        (prefix_entry("0123ABCD"), "sha256_prefix"),
        (prefix_entry("0123abc"), "sha256_prefix"),
        (prefix_entry("0" * 64), "sha256_prefix"),
        (prefix_entry(None), "sha256_prefix"),
        (prefix_entry(123456789), "sha256_prefix"),
        (prefix_entry("0123abcd", url=OPENMMLAB_URL), "-88c11cdb.pth"),
        (prefix_entry("88c11cdb", url=OPENMMLAB_URL.replace("-88c11cdb", "-88c11cd8")), "-88c11cd8.pth"),
        (entry(url=OPENMMLAB_URL, sha256="88c11cd" + "0" * 57), "-88c11cdb.pth"),
    ],
)
def test_invalid_entries_are_reported(item: dict[str, Any], problem: str) -> None:
    problems = fw.manifest_problems([item])
    assert problems and any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    "item",
    [
        prefix_entry("0123abcd"),
        prefix_entry("0123abcd" * 7 + "0123abc"),  # 63 digits
        prefix_entry("88c11cdb", url=OPENMMLAB_URL),
        prefix_entry("88c11cdb0123", url=OPENMMLAB_URL),
        entry(url=OPENMMLAB_URL, sha256="88c11cdb" + "0" * 56),
        entry(url=OPENMMLAB_URL, sha256=None),  # unpinned: refused later unless --allow-unpinned
    ],
)
def test_valid_entries_pass(item: dict[str, Any]) -> None:
    assert fw.manifest_problems([item]) == []


def test_a_prefix_entry_counts_as_pinned_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(tmp_path / "w.yaml", [prefix_entry(), entry(name="v", path="/weights/x/v.pt")])
    (weak, full) = fw.load_manifest(manifest)
    assert weak.sha256 is None and weak.sha256_prefix == "0123abcd" and full.sha256_prefix is None
    assert fw.unpinned([weak, full]) == [] and fw.prefix_only([weak, full]) == [weak]
    assert fw.main([str(manifest), "--check"]) == 0
    assert "2 entries, 2 pinned (1 by sha256 prefix only, a weaker check)" in capsys.readouterr().out


def test_duplicates_and_empty_manifests_are_reported() -> None:
    assert fw.manifest_problems([])
    assert fw.manifest_problems({"name": "w"})
    problems = fw.manifest_problems([entry(), entry()])
    assert "duplicate name: w" in problems and "duplicate path: /weights/x/w.pt" in problems


def test_unpinned_entries_refuse_to_build_without_the_flag(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(tmp_path / "w.yaml", [entry(sha256=None)])
    assert fw.main([str(manifest)]) == 2  # refused before anything is fetched
    assert "ALLOW_UNPINNED_WEIGHTS=1" in capsys.readouterr().err
    # validating, or baking nothing, fetches no unverified file; --check names the unpinned ones
    assert fw.main([str(manifest), "--check"]) == 0
    assert "no sha256 for w" in capsys.readouterr().out
    assert fw.main([str(manifest), "--source", "none", "--root", str(tmp_path)]) == 0


def test_invalid_manifest_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(tmp_path / "w.yaml", [entry(url="ftp://x/w.pt")])
    assert fw.main([str(manifest), "--check"]) == 2
    assert "https" in capsys.readouterr().err


# ---- downloads -----------------------------------------------------------------------------------


def served(tmp_path: Path, content: bytes) -> tuple[str, str]:
    source = tmp_path / "served.pt"
    source.write_bytes(content)
    return source.as_uri(), hashlib.sha256(content).hexdigest()


def pinned(url: str, sha256: str | None) -> Any:
    return fw.Entry("w", url, sha256, PurePosixPath("/weights/x/w.pt"))


def prefix_pinned(url: str, prefix: str) -> Any:
    return fw.Entry("w", url, None, PurePosixPath("/weights/x/w.pt"), sha256_prefix=prefix)


def test_fetch_writes_a_verified_world_readable_file(tmp_path: Path) -> None:
    url, digest = served(tmp_path, b"weights" * 1000)
    dest = tmp_path / "out" / "w.pt"
    assert fw.fetch(pinned(url, digest), dest) == digest
    assert dest.read_bytes() == b"weights" * 1000
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert [p.name for p in dest.parent.iterdir()] == ["w.pt"]


def test_fetch_rejects_a_wrong_hash_and_leaves_nothing(tmp_path: Path) -> None:
    url, _ = served(tmp_path, b"tampered")
    dest = tmp_path / "out" / "w.pt"
    with pytest.raises(fw.FetchError, match="sha256 mismatch"):
        fw.fetch(pinned(url, "0" * 64), dest)
    assert list(dest.parent.iterdir()) == []


def test_fetch_accepts_a_download_whose_hash_starts_with_the_prefix(tmp_path: Path) -> None:
    url, digest = served(tmp_path, b"openmmlab" * 1000)
    dest = tmp_path / "out" / "w.pt"
    assert fw.fetch(prefix_pinned(url, digest[:8]), dest) == digest
    assert dest.read_bytes() == b"openmmlab" * 1000
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644


def test_fetch_rejects_a_wrong_prefix_and_leaves_nothing(tmp_path: Path) -> None:
    url, digest = served(tmp_path, b"tampered")
    wrong = format(int(digest[:8], 16) ^ 1, "08x")
    dest = tmp_path / "out" / "w.pt"
    with pytest.raises(fw.FetchError, match=f"expected a hash starting {wrong}, got {digest}"):
        fw.fetch(prefix_pinned(url, wrong), dest, sleep=lambda _: None)
    assert list(dest.parent.iterdir()) == []


def test_fetch_replaces_a_file_in_place_whose_hash_lacks_the_prefix(tmp_path: Path) -> None:
    dest = tmp_path / "w.pt"
    dest.write_bytes(b"stale")
    digest = hashlib.sha256(b"fresh").hexdigest()
    assert fw.fetch(prefix_pinned("https://example.org/w.pt", digest[:8]), dest,
                    opener=flaky([], b"fresh")) == digest
    assert dest.read_bytes() == b"fresh"


def test_fetch_keeps_a_file_in_place_whose_hash_has_the_prefix(tmp_path: Path) -> None:
    dest = tmp_path / "w.pt"
    dest.write_bytes(b"ok")

    def no_network(*_: Any, **__: Any) -> Any:
        raise AssertionError("downloaded again")

    digest = hashlib.sha256(b"ok").hexdigest()
    assert fw.fetch(prefix_pinned("https://example.org/w.pt", digest[:10]), dest, opener=no_network) == digest


def test_fetch_all_notes_a_prefix_check_and_prints_the_full_hash(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    url, digest = served(tmp_path, b"data")
    fw.fetch_all([prefix_pinned(url, digest[:8])], tmp_path / "root")
    out = capsys.readouterr().out
    assert f"verified sha256 prefix {digest[:8]} only" in out and "weaker" in out
    assert f"sha256: {digest}" in out


def test_main_fetches_a_prefix_manifest_without_allow_unpinned(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = write_manifest(tmp_path / "w.yaml", [prefix_entry()])
    fetched: list[Any] = []
    monkeypatch.setattr(fw, "fetch_all", lambda entries, root: fetched.append((entries, root)))
    assert fw.main([str(manifest), "--root", str(tmp_path)]) == 0
    ((entries, root),) = fetched
    assert [e.sha256_prefix for e in entries] == ["0123abcd"] and root == tmp_path


def test_fetch_keeps_a_file_already_in_place(tmp_path: Path) -> None:
    dest = tmp_path / "w.pt"
    dest.write_bytes(b"ok")

    def no_network(*_: Any, **__: Any) -> Any:
        raise AssertionError("downloaded again")

    digest = hashlib.sha256(b"ok").hexdigest()
    assert fw.fetch(pinned("https://example.org/w.pt", digest), dest, opener=no_network) == digest


def flaky(failures: list[Exception], content: bytes) -> Callable[..., io.BytesIO]:
    def opener(url: str, timeout: float) -> io.BytesIO:
        if failures:
            raise failures.pop(0)
        return io.BytesIO(content)

    return opener


def http_error(code: int) -> urllib.error.HTTPError:
    return urllib.error.HTTPError("https://example.org/w.pt", code, "boom", {}, None)  # type: ignore[arg-type]


def test_fetch_retries_network_and_server_errors(tmp_path: Path) -> None:
    pauses: list[float] = []
    opener = flaky([ConnectionResetError("reset"), http_error(503)], b"ok")
    digest = hashlib.sha256(b"ok").hexdigest()
    assert fw.fetch(pinned("https://example.org/w.pt", digest), tmp_path / "w.pt", opener=opener,
                    sleep=pauses.append) == digest
    assert pauses == [2.0, 4.0]


def test_fetch_gives_up_on_client_errors_and_after_the_last_retry(tmp_path: Path) -> None:
    with pytest.raises(fw.FetchError, match="HTTP 404"):
        fw.fetch(pinned("https://example.org/w.pt", None), tmp_path / "w.pt",
                 opener=flaky([http_error(404)], b""), sleep=lambda _: None)
    errors: list[Exception] = [TimeoutError("slow")] * 3
    with pytest.raises(fw.FetchError, match="failed: slow"):
        fw.fetch(pinned("https://example.org/w.pt", None), tmp_path / "w.pt",
                 opener=flaky(errors, b""), sleep=lambda _: None)


def test_fetch_all_writes_under_root_and_prints_the_hash_to_pin(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    url, digest = served(tmp_path, b"data")
    fw.fetch_all([pinned(url, None)], tmp_path / "root")
    assert (tmp_path / "root" / "weights" / "x" / "w.pt").read_bytes() == b"data"
    assert re.search(rf"UNPINNED.*{digest}", capsys.readouterr().out)


# ---- --source local and none -----------------------------------------------------------------------


def local_manifest(tmp_path: Path, sha256: str | None) -> Path:
    return write_manifest(tmp_path / "w.yaml", [{"name": "w", "url": "https://example.org/w.pt", "sha256": sha256,
                                                 "path": "/weights/x/w.pt"}])


def test_local_source_copies_a_checked_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content = b"local weights" * 100
    manifest = local_manifest(tmp_path, hashlib.sha256(content).hexdigest())
    (tmp_path / "local" / "x").mkdir(parents=True)
    (tmp_path / "local" / "x" / "w.pt").write_bytes(content)
    root = tmp_path / "root"
    assert fw.main([str(manifest), "--source", "local", "--local-dir", str(tmp_path / "local"),
                    "--root", str(root)]) == 0
    dest = root / "weights" / "x" / "w.pt"
    assert dest.read_bytes() == content and stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert hashlib.sha256(content).hexdigest() in capsys.readouterr().out


def test_local_source_rejects_a_wrong_file_and_leaves_nothing(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    manifest = local_manifest(tmp_path, hashlib.sha256(b"the pinned one").hexdigest())
    (tmp_path / "local" / "x").mkdir(parents=True)
    (tmp_path / "local" / "x" / "w.pt").write_bytes(b"another file")
    root = tmp_path / "root"
    assert fw.main([str(manifest), "--source", "local", "--local-dir", str(tmp_path / "local"),
                    "--root", str(root)]) == 1
    assert "sha256 mismatch" in capsys.readouterr().err
    assert list((root / "weights" / "x").iterdir()) == []


def test_local_source_names_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = local_manifest(tmp_path, hashlib.sha256(b"x").hexdigest())
    assert fw.main([str(manifest), "--source", "local", "--local-dir", str(tmp_path / "empty"),
                    "--root", str(tmp_path / "root")]) == 1
    assert f"{tmp_path / 'empty' / 'x' / 'w.pt'} does not exist" in capsys.readouterr().err


def test_local_source_needs_a_folder_and_keeps_the_pin_rules(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    manifest = local_manifest(tmp_path, hashlib.sha256(b"x").hexdigest())
    assert fw.main([str(manifest), "--source", "local"]) == 2
    assert "--local-dir" in capsys.readouterr().err
    unpinned_manifest = local_manifest(tmp_path, None)
    assert fw.main([str(unpinned_manifest), "--source", "local", "--local-dir", str(tmp_path)]) == 2


def test_none_source_bakes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = local_manifest(tmp_path, hashlib.sha256(b"x").hexdigest())
    assert fw.main([str(manifest), "--source", "none", "--root", str(tmp_path / "root")]) == 0
    assert not (tmp_path / "root").exists()
    assert "random init" in capsys.readouterr().out
