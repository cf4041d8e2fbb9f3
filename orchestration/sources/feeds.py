"""The routine feeds the warehouse ingests, described once so that Dagster, the pipeline and the CLI agree.

Every feed arrives the same way (files under ``<sources_dir>/<feed>/``, one monthly partition per file, a
file contract, idempotent loading, quarantine), so each feed module exposes the same five operations and this
registry adapts them to one shape. Adding a feed is adding an entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from orchestration.raw import ContractViolation, IngestResult
from orchestration.sources import acute_long_stay, los_acute, los_mh, mhsds_los, oap, rtt

IngestFolder = Callable[..., list[IngestResult]]


@dataclass(frozen=True)
class Feed:
    name: str
    title: str
    asset_key: tuple[str, str]
    description: str
    #: when the publisher releases a new month (cron, Europe/London), for the feed's schedule
    cron_schedule: str
    publication_rhythm: str
    ingest_folder: IngestFolder
    months_in_folder: Callable[[Path], list[date]]
    check_loaded_months: Callable[..., dict[date, list[ContractViolation]]]
    ensure_raw_tables: Callable[[duckdb.DuckDBPyConnection], None]
    suite: str
    #: the publisher ``collab-benefits pull`` reads for this feed (orchestration/pull.py), or ``None`` for a feed
    #: that is not published (patient-level extracts arrive in the landing folder by hand)
    pull_source: str | None = None

    @property
    def key_string(self) -> str:
        return "/".join(self.asset_key)


FEEDS: tuple[Feed, ...] = (
    Feed(
        name="rtt",
        title="RTT waiting times",
        asset_key=("rtt", "full_extract"),
        description=(
            "NHS England RTT waiting times 'Full CSV data file', one partition per month, loaded into "
            "raw_rtt.full_extract after its file contract passed."
        ),
        cron_schedule="0 10 8-14 * 4",
        publication_rhythm="second Thursday of the month",
        ingest_folder=rtt.ingest_rtt_folder,
        months_in_folder=rtt.months_in_folder,
        check_loaded_months=rtt.check_loaded_months,
        ensure_raw_tables=rtt.ensure_raw_tables,
        suite="rtt_full_extract",
        pull_source="rtt",
    ),
    Feed(
        name="oap",
        title="Out-of-area placements",
        asset_key=("oap", "monthly_statistics"),
        description=(
            "NHS England MHSDS monthly statistics on out-of-area placements (long layout), one partition per "
            "month, loaded into raw_oap.monthly_statistics after its file contract passed; `*` kept as suppressed."
        ),
        cron_schedule="0 10 8-14 * 4",
        publication_rhythm="second Thursday of the month (MHSDS monthly statistics)",
        ingest_folder=oap.ingest_oap_folder,
        months_in_folder=oap.months_in_folder,
        check_loaded_months=oap.check_loaded_months,
        ensure_raw_tables=oap.ensure_raw_tables,
        suite="oap_monthly_statistics",
        pull_source="oap",
    ),
    Feed(
        name="mhsds_los",
        title="Published mental health lengths of stay",
        asset_key=("mhsds_los", "monthly_statistics"),
        description=(
            "NHS England MHSDS monthly statistics, main data file (long layout): the length-of-stay measures "
            "(MHS140-MHS142, MHS100-MHS105, MHS156/a/b rolling quarters; MHS24/MHS25 monthly bed days) at England "
            "and Provider level, loaded into raw_mhsds_los.monthly_statistics after its file contract passed; every "
            "other row counted in raw_mhsds_los.rows_not_taken; `*` kept as suppressed."
        ),
        cron_schedule="0 10 8-14 * 4",
        publication_rhythm="second Thursday of the month (MHSDS monthly statistics)",
        ingest_folder=mhsds_los.ingest_folder,
        months_in_folder=mhsds_los.months_in_folder,
        check_loaded_months=mhsds_los.check_loaded_months,
        ensure_raw_tables=mhsds_los.ensure_raw_tables,
        suite="mhsds_los_monthly_statistics",
    ),
    Feed(
        name="los_mh",
        title="Mental health hospital spells",
        asset_key=("los_mh", "hospital_spells"),
        description=(
            "Pseudonymised MHSDS submissions as their tables (MHS501 Hospital Provider Spell, MHS502 Ward Stay, "
            "MHS001 Master Patient Index), one zip or three files per submission month, loaded into "
            "raw_los_mh.mhs501_hospital_spells, mhs502_ward_stays and mhs001_mpi. Patient-level: never published."
        ),
        cron_schedule="0 7 20 * *",
        publication_rhythm="monthly submission, by the 20th",
        ingest_folder=lambda con, folder, quarantine_dir, **kw: los_mh.ingest_folder(con, folder, quarantine_dir, **kw),
        months_in_folder=los_mh.months_in_folder,
        check_loaded_months=lambda con, **kw: los_mh.check_loaded_months(con, **kw),
        ensure_raw_tables=los_mh.ensure_raw_tables,
        suite="los_mh_mhs501_hospital_spells",
    ),
    Feed(
        name="los_acute",
        title="Acute admitted patient care episodes",
        asset_key=("los_acute", "apc_episodes"),
        description=(
            "Pseudonymised HES APC / SUS+ APC episode extracts (one row per episode, columns found by name), loaded "
            "into raw_los_acute.apc_episodes by the month each episode ended; a cumulative year-to-date file "
            "replaces every month it holds. Spells are built in dbt. Patient-level: never published."
        ),
        cron_schedule="0 7 20 * *",
        publication_rhythm="monthly extract (provisional HES: cumulative for the financial year), by the 20th",
        ingest_folder=lambda con, folder, quarantine_dir, **kw: los_acute.ingest_folder(
            con, folder, quarantine_dir, **kw
        ),
        months_in_folder=los_acute.months_in_folder,
        check_loaded_months=lambda con, **kw: los_acute.check_loaded_months(con, **kw),
        ensure_raw_tables=los_acute.ensure_raw_tables,
        suite="los_acute_apc_episodes",
    ),
    Feed(
        name="acute_long_stay",
        title="Acute discharge delays and long stays (published)",
        asset_key=("acute_long_stay", "daily_discharge_sitrep"),
        description=(
            "NHS England 'Discharge delays (Acute)' monthly data file (acute discharge situation report, long CSV "
            "layout, by trust and day), one partition per month, loaded into "
            "raw_acute_long_stay.daily_discharge_sitrep after its file contract passed; a -v2/-revised file "
            "replaces its month."
        ),
        cron_schedule="0 10 8-14 * 4",
        publication_rhythm="second Thursday of the month (monthly discharge delays statistics)",
        ingest_folder=acute_long_stay.ingest_folder,
        months_in_folder=acute_long_stay.months_in_folder,
        check_loaded_months=acute_long_stay.check_loaded_months,
        ensure_raw_tables=acute_long_stay.ensure_raw_tables,
        suite="acute_long_stay_daily_discharge_sitrep",
    ),
)

FEEDS_BY_NAME: dict[str, Feed] = {feed.name: feed for feed in FEEDS}
