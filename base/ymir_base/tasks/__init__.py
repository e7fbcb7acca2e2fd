"""Object types as first-class choices: the task map.

YMIR tells a task its object type (``config.yaml`` ``object_type``: 2 detection, 3 semantic
segmentation, 4 instance segmentation); rotated detection is type 2 served by a rotated image.
Each :class:`ObjectKind` names what differs between them: the template folder YMIR reads for a
multi-type image, the stage metrics (main one first), and the infer writer. A backend lists the
kinds it serves; the engine, ``verify`` and ``ymir-exec`` pick the entry by the task's type.
"""

from ymir_base.tasks.kinds import DETECTION, INSTANCE, KINDS, ROTATED, SEMANTIC, ObjectKind, kind_named
from ymir_base.tasks.writers import DetectionWriter, InferWriter, SegmentationWriter

__all__ = ["DETECTION", "INSTANCE", "KINDS", "ROTATED", "SEMANTIC", "DetectionWriter", "InferWriter", "ObjectKind",
           "SegmentationWriter", "kind_named"]
