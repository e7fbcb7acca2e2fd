"""The mmdet image: YOLOX tiny/s/l/x through mmdetection on the shared OpenMMLab layer."""
