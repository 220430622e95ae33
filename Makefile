# Two commands do everything on a fresh machine:  make demo  and  make test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast test-quick bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m jobs.demo

test: $(STAMP)
	$(PY) -m pytest -q --durations=15

# The pure suite (no Ray runtime started): what to run while you work.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not ray" --durations=10

# Everything but the few slowest tests (job submit, sweeps, fine-tune resume, SIGINT).
test-quick: $(STAMP)
	$(PY) -m pytest -q -m "not slow" --durations=10

bench: $(STAMP)
	$(PY) benchmarks/bench_regions.py

clean:
	rm -rf outputs benchmarks/out .pytest_cache
