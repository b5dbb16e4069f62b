# ssp: set-up and checks. `make run` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: run test lint typecheck pytest fuzz fuzz-deps bench slt clean venv

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

## Long differential run (hypothesis with many more examples), then each atheris target
## (tests/fuzz/) for FUZZ_SECONDS, with a per-input time limit and a memory limit. A crash
## stops the target and leaves crash-* in FUZZ_DIR/TARGET/: add it to tests/fuzz/corpus/.
FUZZ_SECONDS ?= 60
FUZZ_DIR     ?= .fuzz
FUZZ_TARGETS := views_frontend log_reader small_replay
fuzz: $(STAMP) fuzz-deps
	SSP_FUZZ=1 $(BIN)/pytest -m "slow or not slow" tests/test_differential.py tests/test_circuit_properties.py tests/test_executors.py
	@for target in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/$$target/corpus && \
	  echo "fuzz: $$target for $(FUZZ_SECONDS) s" && \
	  $(BIN)/python tests/fuzz/run.py $$target -max_total_time=$(FUZZ_SECONDS) -timeout=20 \
	    -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_DIR)/$$target/ $$(cat tests/fuzz/$$target.flags 2>/dev/null) \
	    $(FUZZ_DIR)/$$target/corpus tests/fuzz/corpus/$$target tests/fuzz/seeds/$$target \
	    || exit 1; \
	done

fuzz-deps: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,fuzz]'

## The whole sqllogictest corpus through maintained views (SSP_SLT_DIR, default ../shared/sqllogictest).
slt: $(STAMP)
	$(BIN)/python -m tests.slt.runner --json=slt-report.json

bench: $(STAMP)
	$(BIN)/python benchmarks/engine_throughput.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
