# YMIR executor images. `make demo` and `make test` work on a fresh machine (Python 3.11).
PY ?= .venv/bin/python
VENV_STAMP := .venv/.installed
PYTEST_ARGS ?=

.PHONY: install demo test test-fast fuzz lint bench clean

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

# the fuzzed parser tests with many more examples than `make test` runs, from random seeds;
# FUZZ_EXAMPLES sets how many per test
FUZZ_EXAMPLES ?= 5000
fuzz: $(VENV_STAMP)
	YMIR_FUZZ_PROFILE=fuzz YMIR_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/fuzz --hypothesis-show-statistics $(PYTEST_ARGS)

lint: $(VENV_STAMP)
	$(PY) -m ruff check .

bench: $(VENV_STAMP)
	$(PY) bench/infer_bench.py

clean:
	rm -rf demo-out bench-out .pytest_cache

-include mk/docker.mk
