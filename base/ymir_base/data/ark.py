"""Parse YMIR ark annotation files (``ark`` / ``det-ark`` export formats).

One object per line: ``class_idx, xmin, ymin, xmax, ymax[, anno_quality[, rotate_angle]]``
(7 fields in YMIR 2.x, 5 in 1.x; ``", "`` or ``","`` separated). ``xmax``/``ymax`` are inclusive
pixel coordinates. ``rotate_angle`` is kept as written (radians, see ObjectAnnotation.angle);
``anno_quality`` is not used by training and is only checked to be numeric. An empty file is an
image without objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from ymir_base.data.types import ObjectAnnotation
from ymir_base.errors import DatasetError, brief


def parse_ark(path: Path, class_names: Sequence[str]) -> list[ObjectAnnotation]:
    """Objects of one ark file; any malformed line raises DatasetError naming file and line."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read annotation file {path}: {exc}") from exc
    objects = []
    for line_no, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            objects.append(_parse_line(line, len(class_names), f"annotation {path} line {line_no}"))
    return objects


def _parse_line(line: str, num_classes: int, where: str) -> ObjectAnnotation:
    fields = [f.strip() for f in line.split(",")]
    if not 5 <= len(fields) <= 7:
        raise DatasetError(f"{where}: expected 5 to 7 comma-separated fields (class, xmin, ymin, xmax, "
                           f"ymax[, quality[, angle]]), got {len(fields)}: {brief(line)}")
    try:
        class_id = int(fields[0])
    except ValueError:
        raise DatasetError(f"{where}: class index {brief(fields[0])} is not an integer") from None
    if not 0 <= class_id < num_classes:
        raise DatasetError(f"{where}: class index {class_id} outside class_names ({num_classes} classes)")
    values = []
    for field in fields[1:]:
        try:
            value = float(field)
        except ValueError:
            raise DatasetError(f"{where}: field {brief(field)} is not a number") from None
        if not math.isfinite(value):
            raise DatasetError(f"{where}: field {brief(field)} is not a finite number")
        values.append(value)
    xmin, ymin, xmax, ymax = values[:4]
    angle = values[5] if len(values) == 6 else 0.0
    return ObjectAnnotation(class_id=class_id, bbox=(xmin, ymin, xmax + 1, ymax + 1), angle=angle)
