"""The OpenMMLab layer shared by the mmdet, mmyolo (and later mmrotate, mmseg) images:
run configs from upstream config files, MMEngine training with YMIR reporting, batched
prediction through the model's own preprocessor and test pipeline."""
