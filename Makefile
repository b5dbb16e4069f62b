# ssp: set-up and checks. `make run` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: run test lint typecheck pytest fuzz bench slt clean venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,record]'
	touch $(STAMP)

venv: $(STAMP)

## Replay the bundled forum workload in batch mode and write a report.
run: $(STAMP)
	$(BIN)/ssp replay fixtures/forum/views.sql fixtures/forum/log.jsonl --mode batch --report run-report.json

## Lint, type-check and run the default (fast) test suite.
test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check circuit ssp_cli tests benchmarks
	$(BIN)/ruff format --check circuit ssp_cli tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -m "not slow"

## Long differential run (hypothesis with many more examples).
fuzz: $(STAMP)
	SSP_FUZZ=1 $(BIN)/pytest -m "slow or not slow" tests/test_differential.py tests/test_circuit_properties.py tests/test_executors.py

## The whole sqllogictest corpus through maintained views (SSP_SLT_DIR, default ../shared/sqllogictest).
slt: $(STAMP)
	$(BIN)/python -m tests.slt.runner --json=slt-report.json

bench: $(STAMP)
	$(BIN)/python benchmarks/engine_throughput.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
