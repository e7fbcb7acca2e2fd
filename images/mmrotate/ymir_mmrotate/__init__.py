"""The mmrotate image: rotated RTMDet tiny/s/m/l through mmrotate on the shared OpenMMLab layer."""
