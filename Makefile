# YMIR executor images. `make demo` and `make test` work on a fresh machine (Python 3.11).
PY ?= .venv/bin/python
VENV_STAMP := .venv/.installed
PYTEST_ARGS ?=

.PHONY: install demo test test-fast lint bench clean

install: $(VENV_STAMP)

$(VENV_STAMP): requirements/constraints.txt requirements/stack.txt pyproject.toml scripts/install-stack.sh
	bash scripts/install-stack.sh .venv
	touch $@

demo: $(VENV_STAMP)
	.venv/bin/ymir-exec demo yolov5 --out demo-out

test: $(VENV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(VENV_STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(VENV_STAMP)
	$(PY) -m ruff check .

bench: $(VENV_STAMP)
	$(PY) bench/infer_bench.py

clean:
	rm -rf demo-out bench-out .pytest_cache

-include mk/docker.mk
