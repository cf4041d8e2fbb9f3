"""Configuration in one typed place: where the sources are read from and where the warehouse is written.

Both come from the environment with safe local defaults, so `dagster dev`, the CLI and the tests agree:
``COLLAB_SOURCES_DIR`` (default: the bundled samples, ``seeds/samples``) and ``COLLAB_WAREHOUSE_DIR``
(default: ``warehouse/`` in the repository).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
from dagster import ConfigurableResource
from pydantic import Field

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_SAMPLES_DIR = REPO_ROOT / "seeds" / "samples"
#: The landing folder the warehouse owns (``collab-benefits pull``'s default): rejected files are moved out of it.
LANDING_DIR = REPO_ROOT / "landing"
DEFAULT_WAREHOUSE_DIR = REPO_ROOT / "warehouse"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


def default_sources_dir() -> Path:
    return Path(os.environ.get("COLLAB_SOURCES_DIR") or BUNDLED_SAMPLES_DIR).resolve()


def default_warehouse_dir() -> Path:
    return Path(os.environ.get("COLLAB_WAREHOUSE_DIR") or DEFAULT_WAREHOUSE_DIR).resolve()


class WarehouseResource(ConfigurableResource):
    """The build database (one writer), the serving database (many readers) and the quarantine folder."""

    sources_dir: str = Field(default_factory=lambda: str(default_sources_dir()))
    warehouse_dir: str = Field(default_factory=lambda: str(default_warehouse_dir()))

    @property
    def sources_path(self) -> Path:
        return Path(self.sources_dir)

    @property
    def warehouse_path(self) -> Path:
        return Path(self.warehouse_dir)

    @property
    def build_db_path(self) -> Path:
        return self.warehouse_path / "build.duckdb"

    @property
    def serving_db_path(self) -> Path:
        return self.warehouse_path / "serving.duckdb"

    @property
    def quarantine_path(self) -> Path:
        return self.warehouse_path / "quarantine"

    @property
    def data_docs_path(self) -> Path:
        """The run's GX Data Docs (a static site: open ``index.html``)."""
        return self.warehouse_path / "data_docs"

    @property
    def dbt_target_path(self) -> Path:
        """dbt's artifacts (manifest, run_results.json) and its own debug log, ``dbt.log``."""
        return self.warehouse_path / "dbt_target"

    @property
    def logs_path(self) -> Path:
        """What the tools said while the pipeline ran (dbt's output, Dagster's events, Python's log), kept out of
        the console: ``dbt.log``, ``dagster.log``, ``pipeline.log``."""
        return self.warehouse_path / "logs"

    @property
    def dbt_log_path(self) -> Path:
        """dbt's console output of the latest build: every model, seed and test with its status and the errors."""
        return self.logs_path / "dbt.log"

    def source_folder(self, source: str) -> Path:
        return self.sources_path / source

    @property
    def moves_rejected_files(self) -> bool:
        """Whether a rejected file is moved out of the sources folder, or copied (with its SHA-256 remembered so
        it is not read again). Moved only out of a landing folder the warehouse owns: ``landing/`` in the
        repository (where ``collab-benefits pull`` lands files by default), or any folder when
        ``COLLAB_QUARANTINE_MOVES_FILES=1`` says the sources folder is the warehouse's. A folder given with
        ``--sources-dir``, the bundled samples and read-only shares keep their files (issue 12, item 6)."""
        if os.environ.get("COLLAB_QUARANTINE_MOVES_FILES", "").strip() in ("1", "true", "yes"):
            return True
        return self.sources_path.resolve() == LANDING_DIR.resolve()

    def connect_build(self, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
        """A connection to the build database, with DuckDB's memory bounded (``memory_limit``, else
        ``COLLAB_DUCKDB_MEMORY_LIMIT``, else 2 GB, as dbt's in profiles.yml): left to its default (80% of the
        machine), DuckDB keeps every block a backfill writes cached in the process that ingests (SPEC §12)."""
        self.warehouse_path.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.build_db_path))
        # SET rather than connect(config=…): a second connection to the same file with another config is refused
        con.execute("set memory_limit = ?", [memory_limit or os.environ.get("COLLAB_DUCKDB_MEMORY_LIMIT", "2GB")])
        return con
