# The two commands of the README: `make run` and `make test`. Each creates .venv and installs the project into
# it when missing (or when pyproject.toml changed), then does its job. Only Python 3.11 and git are needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test test-faults samples bench dagster lint clean chromium

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(INSTALLED)

## run: the whole pipeline on the bundled samples (offline); prints where the serving database is
run: $(INSTALLED)
	$(BIN)/collab-benefits run

## test: every test (pytest: unit, dbt, the whole pipeline on real files, reports rendered in Chromium)
test: $(INSTALLED) chromium
	$(BIN)/python -m pytest

## test-faults: readers during a publish, and runs killed in every phase then recovered (about 6 minutes)
test-faults: $(INSTALLED)
	$(BIN)/python -m pytest -m faults tests/test_faults.py

## chromium: Debian's headless Chromium, which the report tests render pages with
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium package (needed by the report rendering tests)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }

## samples: (re)generate the bundled synthetic sample files into seeds/samples
samples: $(INSTALLED)
	$(BIN)/python -m orchestration.samples --out seeds/samples

## bench: national scale (60 months RTT + OAP, 12 months acute spells at F = 0.1) against pandas and DuckDB's scan;
## files and results in warehouse/bench (never committed). BENCH_ARGS="--months 3 --spell-fraction 0.01" for a quick run
bench: $(INSTALLED)
	$(BIN)/collab-benefits bench $(BENCH_ARGS)

## dagster: the Dagster UI over the same assets, partitions, checks and schedules
dagster: $(INSTALLED)
	$(BIN)/dagster dev -m orchestration.definitions

lint: $(INSTALLED)
	$(BIN)/ruff check orchestration tests
	$(BIN)/ruff format --check orchestration tests

clean:
	rm -rf warehouse seeds/samples dbt_project/target dbt_project/logs
