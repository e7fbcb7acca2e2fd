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

# Build every image in a CPU profile behind this machine's firewall options and run each one as
# YMIR does (needs root; installs and starts the engine if none answers). Not part of `make test`.
.PHONY: docker-test
docker-test: $(VENV_STAMP)
	$(PY) -m pip install -q -c requirements/constraints.txt docker
	$(PY) scripts/docker_test.py $(DOCKER_TEST_ARGS)
