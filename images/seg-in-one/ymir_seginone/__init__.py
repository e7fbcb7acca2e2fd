"""The seg-in-one image: semantic segmentation with FastSCNN and HRNet through mmsegmentation on the
shared OpenMMLab layer (instance segmentation and detection follow in part 2)."""
