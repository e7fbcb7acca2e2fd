"""The mmseg dataset that reads the image/label-map list written by labels.py.

mmseg's own ``BaseSegDataset`` lists an image folder or a text file of names relative to one
image and one label folder; YMIR's assets live in a shared content-addressed cache that must not
be listed or mirrored, so each entry here names its image and label map by full path.
"""

from __future__ import annotations

import json
from typing import Any

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from ymir_base.errors import DatasetError


@DATASETS.register_module()
class YmirSegDataset(BaseSegDataset):
    def load_data_list(self) -> list[dict[str, Any]]:
        try:
            with open(self.ann_file, encoding="utf-8") as f:
                items = json.load(f)["data_list"]
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(f"cannot read the label-map list {self.ann_file}: {exc}") from exc
        return [{"img_path": item["img_path"], "seg_map_path": item["seg_map_path"], "label_map": self.label_map,
                 "reduce_zero_label": self.reduce_zero_label, "seg_fields": []} for item in items]
