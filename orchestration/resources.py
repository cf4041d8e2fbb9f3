"""Configuration in one typed place: where the sources are read from, where the warehouse is written, and where
each publisher lists its files.

Everything comes from the environment with safe local defaults, so `dagster dev`, the CLI and the tests agree:
``COLLAB_SOURCES_DIR`` (default: the bundled samples, ``seeds/samples``), ``COLLAB_WAREHOUSE_DIR`` (default:
``warehouse/`` in the repository) and the ``COLLAB_PULL_*`` settings of :class:`PublishersResource` (default: the
publishers' real pages).
"""

from __future__ import annotations

import os
import shutil
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
#: The build database's file name in every warehouse folder (dbt finds it by this name, relative to the warehouse).
BUILD_DB_NAME = "build.duckdb"
#: Where dbt builds the models (issue 15): DuckDB, embedded, is the default; Spark runs the same project.
ENGINES = ("duckdb", "spark")


def default_sources_dir() -> Path:
    return Path(os.environ.get("COLLAB_SOURCES_DIR") or BUNDLED_SAMPLES_DIR).resolve()


def default_warehouse_dir() -> Path:
    return Path(os.environ.get("COLLAB_WAREHOUSE_DIR") or DEFAULT_WAREHOUSE_DIR).resolve()


def default_engine() -> str:
    engine = (os.environ.get("COLLAB_ENGINE") or "duckdb").strip().lower()
    if engine not in ENGINES:
        raise ValueError(f"COLLAB_ENGINE={engine!r}: the engines are {', '.join(ENGINES)}")
    return engine


class WarehouseResource(ConfigurableResource):
    """The build database (one writer), the serving database (many readers) and the quarantine folder."""

    sources_dir: str = Field(default_factory=lambda: str(default_sources_dir()))
    warehouse_dir: str = Field(default_factory=lambda: str(default_warehouse_dir()))
    #: where dbt builds the models (``COLLAB_ENGINE``): duckdb, or spark with the build database's raw layer
    #: mirrored as Parquet and Spark's tables copied back into the build database (orchestration/lake.py)
    engine: str = Field(default_factory=default_engine)

    @property
    def sources_path(self) -> Path:
        return Path(self.sources_dir)

    @property
    def warehouse_path(self) -> Path:
        return Path(self.warehouse_dir)

    @property
    def build_db_path(self) -> Path:
        return self.warehouse_path / BUILD_DB_NAME

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
    def spark_path(self) -> Path:
        """Spark's side of the warehouse: ``lake/`` (the raw layer as Parquet), ``tables/`` (what dbt builds there)
        and the session's metastore. Patient-level rows, like the build database: inside the private warehouse."""
        return self.warehouse_path / "spark"

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
        make_warehouse_private(self.warehouse_path)
        con = duckdb.connect(str(self.build_db_path))
        self.build_db_path.chmod(0o600)  # it holds patient-level rows: the owner's only (issue 17)
        # SET rather than connect(config=…): a second connection to the same file with another config is refused
        con.execute("set memory_limit = ?", [memory_limit or os.environ.get("COLLAB_DUCKDB_MEMORY_LIMIT", "2GB")])
        # Each file is loaded in its own transaction; at DuckDB's default (16 MB of write-ahead log) nearly every
        # commit also checkpointed the whole database: 0.22 s a commit, half the ingest of the bundled RTT files.
        # The log is still synced at every commit, so a load that committed survives a crash as before.
        con.execute("set checkpoint_threshold = ?", [CHECKPOINT_THRESHOLD])
        return con


CHECKPOINT_THRESHOLD = "256MB"


def make_warehouse_private(path: Path) -> None:
    """The warehouse folder holds patient-level data beyond the build database (the quarantine's copies of rejected
    extracts, the logs' row-level messages): only its owner may enter it. With ``COLLAB_SERVING_GROUP`` (a
    Superset running as another user, see orchestration/publish.py) that group may pass through it to the
    serving file, which is the only file it can read, without listing the folder (0710)."""
    group = os.environ.get("COLLAB_SERVING_GROUP", "").strip()
    if group:
        shutil.chown(path, group=group)
        path.chmod(0o710)
    else:
        path.chmod(0o700)


# --------------------------------------------------------------------------------------------------------------
# The publishers' pages (``collab-benefits pull`` and the Dagster pull assets)

#: NHS England's RTT area page: it links one page per financial year (``…/rtt-data-2026-27/``), which link each
#: month's "Full CSV data file" in a dated upload folder.
RTT_AREA_PAGE = "https://www.england.nhs.uk/statistics/statistical-work-areas/rtt-waiting-times/"
#: The MHSDS monthly statistics publication: it links each month's publication page, which links the month's data
#: files, the out-of-area placements file among them (``MHSDS Data_OAPs_AprPerf_2026.zip``).
MHSDS_MONTHLY_INDEX = (
    "https://digital.nhs.uk/data-and-information/publications/statistical/mental-health-services-monthly-statistics"
)
#: Where ODS keeps its current downloads (``etr.zip``: NHS trusts, ``succ.zip``: successions), at stable addresses.
ODS_FILES_URL = "https://files.digital.nhs.uk/assets/ods/current"
#: Thirteen months: a year of history plus the month a year ago, so revisions of last year's months are seen too.
DEFAULT_PULL_MONTHS = 13


def _env(name: str, default: str | None) -> str | None:
    return os.environ.get(name) or default


def _env_number(name: str, default: float, kind: type[int] | type[float]) -> float:
    """A number from the environment; a value that is not one is an error naming the variable."""
    text = os.environ.get(name)
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"{name} must be {what}, not {text!r}") from None


class PublishersResource(ConfigurableResource):
    """Where each publisher lists its files, how many months to keep current, and how patiently to download.

    Each field reads the environment (``COLLAB_PULL_INDEX_URL_RTT``, ``COLLAB_PULL_INDEX_URL_OAP``,
    ``COLLAB_PULL_INDEX_URL_ODS``, ``COLLAB_PULL_ODS_FILES_URL``, ``COLLAB_PULL_MONTHS``, ``COLLAB_PULL_TIMEOUT``,
    ``COLLAB_PULL_RETRIES``), defaulting to the publishers' real pages; an index URL can point at a mirror of the
    page instead. ODS has no index page by default: its two files are fetched from ``ods_files_url`` directly.
    """

    rtt_index_url: str = Field(
        default_factory=lambda: _env("COLLAB_PULL_INDEX_URL_RTT", RTT_AREA_PAGE),
        description="NHS England's RTT area page (links the financial-year pages), or a mirror of it.",
    )
    oap_index_url: str = Field(
        default_factory=lambda: _env("COLLAB_PULL_INDEX_URL_OAP", MHSDS_MONTHLY_INDEX),
        description="The MHSDS monthly statistics publication index (links each month's page), or a mirror.",
    )
    ods_index_url: str | None = Field(
        default_factory=lambda: _env("COLLAB_PULL_INDEX_URL_ODS", None),
        description="A page linking etr.zip and succ.zip; unset: fetch them from ods_files_url directly.",
    )
    ods_files_url: str = Field(
        default_factory=lambda: _env("COLLAB_PULL_ODS_FILES_URL", ODS_FILES_URL),
        description="The folder that serves ODS's etr.zip and succ.zip.",
    )
    months: int = Field(
        default_factory=lambda: _env_number("COLLAB_PULL_MONTHS", DEFAULT_PULL_MONTHS, int),
        description="How many of the newest published months to keep current.",
    )
    timeout_seconds: float = Field(
        default_factory=lambda: _env_number("COLLAB_PULL_TIMEOUT", 30.0, float),
        description="Connect and read timeout of every request.",
    )
    retries: int = Field(
        default_factory=lambda: _env_number("COLLAB_PULL_RETRIES", 3, int),
        description="Retries of a failed request (server errors, timeouts, broken connections), with back-off.",
    )
    backoff_seconds: float = Field(default=0.5, description="Back-off factor between retries (0.5, 1, 2 s …).")

    def index_url(self, source: str) -> str | None:
        """The page ``source``'s files are found from (``None`` for ODS without an index page)."""
        urls = {"rtt": self.rtt_index_url, "oap": self.oap_index_url, "ods": self.ods_index_url}
        if source not in urls:
            raise ValueError(f"no publisher is configured for {source!r}; expected one of {', '.join(urls)}")
        return urls[source] or None
