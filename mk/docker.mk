# Docker image targets, included by the root Makefile (which sets PY ?= .venv/bin/python).
# They need a Docker engine with network access (registries, GitHub releases) and the Docker SDK
# for Python (pip install docker); `make plan` needs neither. See docs/docker.md.
PY ?= .venv/bin/python

.PHONY: build-all push plan

build-all:
	$(PY) build.py

build-%:
	$(PY) build.py --only $*

push:
	$(PY) build.py --push

plan:
	$(PY) build.py --plan
