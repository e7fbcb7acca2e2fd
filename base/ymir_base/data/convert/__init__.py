"""Converters from :class:`~ymir_base.data.types.Dataset` to the layouts upstream trainers read.

They write into scratch folders (``/out/...`` or a temp dir): ``/in`` is read-only.
"""

from ymir_base.data.convert.coco import write_coco_json
from ymir_base.data.convert.yolo import write_yolo_dataset

__all__ = ["write_coco_json", "write_yolo_dataset"]
