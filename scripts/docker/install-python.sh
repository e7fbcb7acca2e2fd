#!/bin/sh
# The build stage's Python 3.11, from PYTHON_SOURCE (a build arg):
#   uv      a uv-managed CPython PYTHON_VERSION under /opt/python (relocatable: the runtime stage
#           copies the tree as is); downloads python-build-standalone (or PYTHON_MIRROR)
#   system  the base image's python3.11 from apt (Debian bookworm: 3.11.2); the runtime stage
#           installs the same package, and /opt/python stays empty
# Writes the interpreter's path to /opt/ymir-build/python.
set -eu
mkdir -p /opt/python
case "${PYTHON_SOURCE:?}" in
  uv)
    uv python install "${PYTHON_VERSION:?}"
    uv python find "$PYTHON_VERSION" > /opt/ymir-build/python ;;
  system)
    apt-get update
    apt-get install -y --no-install-recommends python3.11 python3.11-venv python3.11-dev
    rm -rf /var/lib/apt/lists/*
    command -v python3.11 > /opt/ymir-build/python ;;
  *)
    echo "PYTHON_SOURCE must be uv or system, not '$PYTHON_SOURCE'" >&2
    exit 2 ;;
esac
echo "build Python: $(cat /opt/ymir-build/python) ($("$(cat /opt/ymir-build/python)" -V))"
