"""Parse YMIR Pascal-VOC xml annotations (``voc`` / ``det-voc`` export formats).

Classes are mapped by ``<name>`` through ``class_names``. Objects whose class is not in
``class_names`` are dropped with a warning rather than rejected: YMIR's exporter drops them too,
so they can only come from hand-made data, and the remaining objects are still valid.
``<bndbox>`` coordinates are inclusive; ``rotate_angle`` (YMIR extra, optional) is kept.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ymir_base.data.types import ObjectAnnotation
from ymir_base.errors import DatasetError, brief

logger = logging.getLogger(__name__)

_BOX_FIELDS = ("xmin", "ymin", "xmax", "ymax")


def parse_voc(path: Path, class_names: Sequence[str]) -> list[ObjectAnnotation]:
    """Objects of one VOC xml file; malformed xml or boxes raise DatasetError naming the file."""
    try:
        root = ET.parse(path).getroot()
    # ValueError / LookupError: the xml declaration names a multi-byte or an unknown encoding
    except (OSError, ET.ParseError, ValueError, LookupError) as exc:
        raise DatasetError(f"cannot parse annotation file {path}: {exc}") from exc
    index = {name: i for i, name in enumerate(class_names)}
    objects = []
    dropped: Counter[str] = Counter()
    for number, obj in enumerate(root.findall("object"), start=1):
        where = f"annotation {path} object {number}"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise DatasetError(f"{where}: <name> is missing or empty")
        if name not in index:
            dropped[name] += 1
            continue
        box = obj.find("bndbox")
        if box is None:
            raise DatasetError(f"{where}: <bndbox> is missing")
        xmin, ymin, xmax, ymax = (_number(box, tag, where) for tag in _BOX_FIELDS)
        angle = _number(box, "rotate_angle", where) if box.find("rotate_angle") is not None else 0.0
        objects.append(ObjectAnnotation(class_id=index[name], bbox=(xmin, ymin, xmax + 1, ymax + 1),
                                        angle=angle))
    if dropped:
        logger.warning("annotation %s: dropped %d object(s) of classes not in class_names: %s",
                       path, sum(dropped.values()), ", ".join(sorted(dropped)))
    return objects


def _number(box: ET.Element, tag: str, where: str) -> float:
    text = (box.findtext(tag) or "").strip()
    if not text:
        raise DatasetError(f"{where}: <bndbox><{tag}> is missing or empty")
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(f"{where}: <bndbox><{tag}> {brief(text)} is not a number") from None
    if not math.isfinite(value):
        raise DatasetError(f"{where}: <bndbox><{tag}> {brief(text)} is not a finite number")
    return value
