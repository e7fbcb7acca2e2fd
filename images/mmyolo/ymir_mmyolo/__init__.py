"""The mmyolo image: YOLOv5-v8, YOLOX, RTMDet and PPYOLOE+ through mmyolo on the shared OpenMMLab layer."""
