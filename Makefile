# The two commands of the README: `make run` and `make test`. Each creates .venv and installs the project into
# it when missing (or when pyproject.toml changed), then does its job. Only Python 3.11 and git are needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Superset has its own environment: 6.1.0 needs SQLAlchemy 1.4 and pandas < 2.2 (SPEC §11).
SUPERSET_VENV := .venv-superset
SUPERSET_INSTALLED := $(SUPERSET_VENV)/.installed
# The Spark engine's extra (dbt-spark, pyspark: about 320 MB) in .venv, and Java 17
SPARK_INSTALLED := $(VENV)/.spark-installed
WAREHOUSE_DIR ?= $(or $(COLLAB_WAREHOUSE_DIR),warehouse)
# make test's pytest workers (pytest-xdist): a module and its fixtures stay on one worker, the heaviest start first
TEST_WORKERS ?= 2

# GX Data Docs' scripts, styles and fonts, from the npm registry (orchestration/data_docs_vendor.json), not committed
VENDORED := vendor/data-docs/.manifest.json

.PHONY: run test test-spark test-faults samples bench dagster lint clean chromium dashboards .venv-superset data-docs-assets spark

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(INSTALLED)

## data-docs-assets: Bootstrap, jQuery, Vega and Font Awesome for GX Data Docs, fetched with npm and checked against
## their recorded integrity, so the Data Docs work without internet (without npm they load them from public CDNs)
data-docs-assets: $(VENDORED)

$(VENDORED): orchestration/data_docs_vendor.json | $(INSTALLED)
	@command -v npm >/dev/null 2>&1 || { \
		echo "Installing Debian's npm package (fetches the Data Docs assets from the npm registry)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm >/dev/null || true; }
	@$(BIN)/python -m orchestration.data_docs_offline fetch || \
		echo "GX Data Docs will load their scripts and styles from the internet: install npm, then make data-docs-assets"

## run: the whole pipeline on the bundled samples (offline); prints where the serving database is
run: $(INSTALLED) $(VENDORED)
	$(BIN)/collab-benefits run

## test: every test (pytest: unit, dbt, the whole pipeline on real files, reports and dashboards in Chromium, the
## bundled samples on Spark compared with DuckDB figure for figure)
test: $(INSTALLED) chromium $(SUPERSET_INSTALLED) $(VENDORED) $(SPARK_INSTALLED)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

## test-spark: the Spark tests of make test alone (the two-engine comparison, dbt's tests on Spark, a revision)
test-spark: $(INSTALLED) $(SPARK_INSTALLED)
	$(BIN)/python -m pytest -m spark tests/test_spark.py

## test-faults: readers during a publish, and runs killed in every phase then recovered (about 6 minutes)
test-faults: $(INSTALLED)
	$(BIN)/python -m pytest -m faults tests/test_faults.py

## chromium: Debian's headless Chromium, which the report tests render pages with
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium package (needed by the report rendering tests)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }

## spark: what `collab-benefits run --engine spark` and the two-engine test need: Java 17 (Debian's
## openjdk-17-jre-headless when no Java 17 is found) and the spark extra (dbt-spark[session], pyspark 3.5) in .venv
spark: $(SPARK_INSTALLED)

$(SPARK_INSTALLED): pyproject.toml | $(INSTALLED)
	@test -x /usr/lib/jvm/java-17-openjdk-$$(dpkg --print-architecture 2>/dev/null)/bin/java \
		|| java -version 2>&1 | grep -q 'version "17' || { \
		echo "Installing Debian's openjdk-17-jre-headless (Spark 3.5 runs on Java 17)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	@touch $(SPARK_INSTALLED)

## .venv-superset: Superset 6.1.0, duckdb-engine and their pins (dashboards/requirements-superset.txt), from PyPI
.venv-superset: $(SUPERSET_INSTALLED)

$(SUPERSET_INSTALLED): dashboards/requirements-superset.txt
	@test -x $(SUPERSET_VENV)/bin/python || $(PYTHON) -m venv $(SUPERSET_VENV)
	$(SUPERSET_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SUPERSET_VENV)/bin/python -m pip install --quiet -r dashboards/requirements-superset.txt
	@touch $(SUPERSET_INSTALLED)

## dashboards: Superset on http://127.0.0.1:8088 with the four dashboards (runs the pipeline if nothing is published)
dashboards: $(INSTALLED) $(SUPERSET_INSTALLED)
	@test -f "$(WAREHOUSE_DIR)/serving.duckdb" || $(BIN)/collab-benefits run
	$(BIN)/collab-benefits dashboards

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

## lint: ruff on the Python, sqlfluff on the dbt models (pyproject.toml [tool.sqlfluff]: dbt templater, DuckDB dialect);
## dbt compiles the models against an empty throwaway build database, never the warehouse a run may be writing,
## with its artefacts in that folder too (the project's own partial parse is the one new warehouses reuse)
SQLFLUFF_DB_DIR := dbt_project/target/sqlfluff
lint: $(INSTALLED)
	$(BIN)/ruff check orchestration tests
	$(BIN)/ruff format --check orchestration tests
	@rm -rf $(SQLFLUFF_DB_DIR) && mkdir -p $(SQLFLUFF_DB_DIR)
	COLLAB_BUILD_DB=$(CURDIR)/$(SQLFLUFF_DB_DIR)/build.duckdb DBT_TARGET_PATH=$(CURDIR)/$(SQLFLUFF_DB_DIR)/target \
		$(BIN)/sqlfluff lint dbt_project/models

clean:
	rm -rf warehouse seeds/samples dbt_project/target dbt_project/logs
