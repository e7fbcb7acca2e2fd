#!/usr/bin/env bash
# Install the pinned deep-learning stack into a virtualenv, in the order that works
# (see docs/dependencies.md). Every step is constrained by requirements/constraints.txt.
# The compiled mmcv wheel lands in pip's wheel cache, so a second install on the same
# machine does not rebuild it.
set -euo pipefail
VENV=${1:-.venv}
PY=${PYTHON:-python3.11}
C=requirements/constraints.txt
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip="$VENV/bin/python -m pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# 1. torch from the registry (CUDA build; runs on CPU too). torchvision needs that build.
$pip install -c $C torch torchvision
# 2. build prerequisites of mmcv (it builds without isolation against the torch above)
$pip install -c $C onedl-mmengine "setuptools" wheel packaging ninja
# 3. mmcv with its compiled ops (CPU ops here; the Docker build stage adds the CUDA ops)
MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} FORCE_CUDA=${FORCE_CUDA:-0} \
  $pip install -c $C --no-build-isolation onedl-mmcv
# 4. everything else (upstream libs, test tools)
$pip install -c $C -r requirements/stack.txt
# 5. opencv-python, opencv-python-headless (required by yolov5, mmcv, albumentations...) and
#    opencv-contrib-python-headless all unpack into the same cv2/ folder, and whichever pip
#    wrote last wins. Reinstalling contrib (the same version, a superset with cv2.ximgproc) as the
#    last step makes cv2 contrib's on every machine, also after a later reinstall of the others.
$pip install -c $C --no-deps --force-reinstall opencv-contrib-python-headless
"$VENV/bin/python" -c "import cv2; assert hasattr(cv2, 'ximgproc'), 'cv2 is not opencv-contrib'"
# 6. our package: editable by default, a regular install with EDITABLE=0, none with PROJECT=0
#    (the Docker base installs it in a later layer, so that a source change does not rebuild the
#    stack)
if [ "${PROJECT:-1}" = 0 ]; then
  :
elif [ "${EDITABLE:-1}" = 0 ]; then
  $pip install -c $C --no-deps .
else
  $pip install -c $C --no-deps -e .
fi
$pip check
