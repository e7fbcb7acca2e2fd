"""Read a YMIR training dataset (index files + annotations) into :class:`Dataset`.

Index and image paths are container paths (``/in/...``) resolved with ``mapper.host()``;
records keep the container path in ``asset`` and the real file in ``path``. Errors name the
container path as written, so they read the same on the host and in the container.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from ymir_base.data.ark import parse_ark
from ymir_base.data.coco import CocoFiles
from ymir_base.data.images import image_size
from ymir_base.data.index import iter_pairs
from ymir_base.data.types import Dataset, ImageRecord, ObjectAnnotation
from ymir_base.data.validate import check_boxes
from ymir_base.data.voc import parse_voc
from ymir_base.errors import ConfigError, DatasetError
from ymir_base.protocol.paths import PathMapper

# annotation part of export_format -> reader family
FORMATS = {"ark": "ark", "det-ark": "ark", "voc": "voc", "det-voc": "voc", "coco": "coco", "seg-coco": "coco"}
# annotation formats whose objects are masks (an object without one is dropped, see coco.py)
SEGMENTATION_FORMATS = frozenset({"seg-coco"})
_SUFFIXES = {".txt": "ark", ".xml": "voc", ".json": "coco"}


def load_dataset(train_index: str | Path, val_index: str | Path, mapper: PathMapper,
                 class_names: Sequence[str], export_format: str | None) -> Dataset:
    """Both splits; an empty split is a DatasetError (YMIR leaves the index files empty when the
    export format selected no annotations, and training cannot be validated without val)."""
    splits = {}
    for role, index_file in (("training", train_index), ("validation", val_index)):
        records = load_split(index_file, mapper, class_names, export_format)
        if not records:
            raise DatasetError(
                f"{role} index {index_file} is empty: YMIR writes no index lines when the dataset has no "
                f"annotations in the chosen export_format ({export_format!r}); check that the "
                f"{role} dataset has annotations for class_names")
        splits[role] = records
    return Dataset(class_names=list(class_names), train=splits["training"], val=splits["validation"])


def load_split(index_file: str | Path, mapper: PathMapper, class_names: Sequence[str],
               export_format: str | None, *, check_images: bool = True) -> list[ImageRecord]:
    """Records of one index file, in file order, with boxes checked (see validate.py).

    ``check_images=False`` skips reading image headers: width/height stay 0 and boxes are not
    checked against the image bounds (existence of the image files is still checked).
    """
    _check_class_names(class_names)
    records = []
    annotation_format = _annotation_format(export_format) if export_format else None
    family = FORMATS[annotation_format] if annotation_format else None
    # without export_format a .json is read as plain ``coco``: boxes are kept whether or not they
    # carry a mask (the safe reading; seg-coco would drop maskless objects)
    segmentation = annotation_format in SEGMENTATION_FORMATS
    coco_files = CocoFiles(class_names, segmentation=segmentation)
    for line_no, asset, annotation in iter_pairs(index_file, mapper):
        where = f"index {index_file} line {line_no}"
        path = mapper.host(asset)
        if not path.is_file():
            raise DatasetError(f"{where}: image {asset} does not exist"
                               + (f" (looked at {path})" if str(path) != asset else ""))
        width, height = image_size(path) if check_images else (0, 0)
        objects: list[ObjectAnnotation] = []
        if annotation:
            parse = _parser(family or _family_from_suffix(annotation, where), annotation, where, coco_files)
            objects = check_boxes(parse(mapper.host(annotation), class_names, asset.rsplit("/", 1)[-1]),
                                  width, height, annotation)
        records.append(ImageRecord(asset=asset, path=path, width=width, height=height, objects=objects,
                                   annotation=annotation, line=line_no))
    return records


def _check_class_names(class_names: Sequence[str]) -> None:
    if not class_names:
        raise ConfigError("class_names is empty: config.yaml must list the classes to train")
    duplicates = sorted(name for name, n in Counter(class_names).items() if n > 1)
    if duplicates:
        raise ConfigError(f"class_names lists {', '.join(duplicates)} more than once")


def _annotation_format(export_format: str) -> str:
    """The annotation part of ``export_format`` (a key of FORMATS), lower case."""
    annotation, _, image = export_format.strip().partition(":")
    if annotation.strip().lower() not in FORMATS or image.strip().lower() not in ("", "raw"):
        supported = ", ".join(f"{name}:raw" for name in FORMATS)
        raise ConfigError(f"export_format {export_format!r} is not supported; use one of {supported}")
    return annotation.strip().lower()


def _family_from_suffix(annotation: str, where: str) -> str:
    suffix = Path(annotation).suffix.lower()
    if suffix not in _SUFFIXES:
        raise ConfigError(f"export_format is not set and {where}: annotation {annotation} has an unknown "
                          f"suffix; set export_format in config.yaml (e.g. ark:raw)")
    return _SUFFIXES[suffix]


def _parser(family: str, annotation: str, where: str,
            coco_files: CocoFiles) -> Callable[[Path, Sequence[str], str], list[ObjectAnnotation]]:
    """The parse function for ``family``, after checking that the file suffix agrees with it;
    COCO files are read through the index's ``coco_files``."""
    suffix_family = _SUFFIXES.get(Path(annotation).suffix.lower())
    if suffix_family is not None and suffix_family != family:
        raise DatasetError(f"{where}: annotation {annotation} looks like {suffix_family} but export_format "
                           f"selects {family}")
    if family == "coco":
        return lambda path, _names, image_name: coco_files.objects(path, image_name)
    parse_file = parse_ark if family == "ark" else parse_voc
    return lambda path, names, _image_name: parse_file(path, names)
