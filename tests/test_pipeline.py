"""The whole pipeline, executed in process on the bundled samples and on hand-worked real-layout files."""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.pipeline import run_pipeline
from orchestration.sources.rtt_layout import BANDS_53, BANDS_105
from tests.rtt_files import rtt_row, write_rtt_file

WYAAT_MEMBERS = ["RCF", "RAE", "RWY", "RCD", "RR8", "RXF"]


def read_published_file(path: Path) -> pd.DataFrame:
    """Read a bundled zip independently of the pipeline: plain pandas, blanks as 0."""
    with zipfile.ZipFile(path) as archive:
        (member,) = archive.namelist()
        frame = pd.read_csv(io.BytesIO(archive.read(member)), dtype=str, keep_default_na=False)
    return frame


def over_52_from_raw(frame: pd.DataFrame, providers: list[str]) -> int:
    """Part_2 patients in the bands above 52 weeks, summed over commissioners and detail treatment functions."""
    bands = BANDS_105 if BANDS_105[-1] in frame.columns else BANDS_53
    above_52 = [column for column in bands[52:]]
    rows = frame[
        (frame["RTT Part Type"] == "Part_2")
        & (frame["Treatment Function Code"] != "C_999")
        & frame["Provider Org Code"].isin(providers)
    ]
    return int(rows[above_52].replace("", "0").astype(int).to_numpy().sum())


def test_the_whole_job_publishes_the_serving_database(bundled_run, serving):
    assert bundled_run.exit_code == 0, (bundled_run.rejected_files, bundled_run.failed_checks)
    tables = {row[0] for row in serving.execute("show tables").fetchall()}
    assert {
        "dim_collaborative",
        "dim_organisation",
        "bridge_collaborative_membership",
        "fct_rtt_provider_month",
        "fct_collaborative_metric_month",
    } <= tables
    # only marts are served: no raw, staging or intermediate relation leaves the build database
    schemas = {row[0] for row in serving.execute("select distinct schema_name from duckdb_tables()").fetchall()}
    assert schemas == {"main"}
    assert not any(name.startswith(("stg_", "int_", "raw")) for name in tables)
    months = serving.execute(
        "select min(period_month), max(period_month), count(distinct period_month) from fct_rtt_provider_month"
    ).fetchone()
    assert months == (date(2021, 1, 1), date(2026, 9, 1), 69)


@pytest.mark.parametrize("month", ["2021-02", "2022-06", "2025-11", "2026-09"])
@pytest.mark.parametrize("basis", ["as_was", "as_is"])
def test_wyaat_over_52_weeks_equals_its_members_raw_bands(bundled_samples, serving, month, basis):
    """SPEC §6 check: bands above 52 weeks of Part_2, summed over commissioners and treatment functions, C_999 not
    double counted; for 2025-11 the revised file is the one that counts."""
    candidates = sorted((bundled_samples / "rtt").glob(f"*-RTT-*-{month[:4]}-full-extract*.zip"))
    month_name = date.fromisoformat(month + "-01").strftime("%B")
    files = [path for path in candidates if f"-RTT-{month_name}-" in path.name]
    revised = [path for path in files if "-revised" in path.name]
    raw = read_published_file((revised or files)[0])
    expected = over_52_from_raw(raw, WYAAT_MEMBERS)
    assert expected > 0
    value, is_partial = serving.execute(
        """
        select value, is_partial from fct_collaborative_metric_month
        where collaborative_code = 'WYAAT' and org_code = 'ALL' and metric_code = 'rtt_over_52_weeks'
          and membership_basis = ? and period_month = ?
        """,
        [basis, date.fromisoformat(month + "-01")],
    ).fetchone()
    assert value == expected
    assert is_partial is False


def test_fct_rtt_provider_month_trust_total_is_the_detail_not_c999_added(bundled_samples, serving):
    raw = read_published_file(sorted((bundled_samples / "rtt").glob("20240331-*.zip"))[0])
    part_2 = raw[(raw["RTT Part Type"] == "Part_2") & (raw["Provider Org Code"] == "RR8")]
    total_all = part_2["Total All"].replace("", "0").astype(int)
    detail = int(total_all[part_2["Treatment Function Code"] != "C_999"].sum())
    c999 = int(total_all[part_2["Treatment Function Code"] == "C_999"].sum())
    assert detail == c999
    waiting = serving.execute(
        "select incomplete_pathways from fct_rtt_provider_month "
        "where org_code = 'RR8' and treatment_function_code = 'ALL' and period_month = date '2024-03-01'"
    ).fetchone()[0]
    assert waiting == detail


def test_the_53_band_layout_before_april_2021(serving):
    rows = serving.execute(
        """
        select band_layout, over_52_weeks, over_65_weeks, over_104_weeks, len(wait_bands)
        from fct_rtt_provider_month
        where treatment_function_code = 'ALL' and period_month in (date '2021-03-01', date '2021-04-01')
        order by period_month
        """
    ).fetchall()
    before = [row for row in rows if row[0] == 53]
    after = [row for row in rows if row[0] == 105]
    assert before and after
    assert all(row[1] is not None and row[2] is None and row[3] is None and row[4] == 53 for row in before)
    assert all(row[2] is not None and row[4] == 105 for row in after)


def test_the_revision_replaced_its_month(bundled_run):
    con = duckdb.connect(str(bundled_run.build_db), read_only=True)
    try:
        files = con.execute(
            "select distinct source_file from raw_rtt.full_extract where period_month = date '2025-11-01'"
        ).fetchall()
        loads = con.execute(
            "select source_file, action, is_current from raw_rtt.file_loads "
            "where period_month = date '2025-11-01' order by loaded_at"
        ).fetchall()
    finally:
        con.close()
    assert len(files) == 1 and "-revised" in files[0][0]
    assert [load[1:] for load in loads] == [("loaded", False), ("replaced", True)]


def _serving_fingerprint(path: Path) -> dict[str, str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [row[0] for row in con.execute("show tables").fetchall() if row[0] != "_publication"]
        return {
            table: hashlib.sha256(
                # floats to 10 significant digits: DuckDB adds in parallel, so the last bits of a sum can differ
                con.execute(f'select * from "{table}" order by all')
                .df()
                .to_csv(index=False, float_format="%.10g")
                .encode()
            ).hexdigest()
            for table in tables
        }
    finally:
        con.close()


def test_reloading_the_same_files_changes_nothing(bundled_samples, bundled_run, tmp_path):
    before = _serving_fingerprint(bundled_run.serving_db)
    # on a copy of the session's warehouse, which other tests (on other workers) read meanwhile
    warehouse = tmp_path / "warehouse"
    shutil.copytree(bundled_run.warehouse_dir, warehouse, symlinks=True)
    again = run_pipeline(bundled_samples, warehouse)
    assert again.exit_code == 0
    assert _serving_fingerprint(again.serving_db) == before
    con = duckdb.connect(str(again.build_db), read_only=True)
    try:
        changed = con.execute(
            "select count(*) from raw_rtt.file_loads where action in ('loaded', 'replaced')"
        ).fetchone()[0]
    finally:
        con.close()
    assert changed == 70  # 69 months and one revision, each loaded once only


# --- a hand-worked example ----------------------------------------------------------------------------------
# Three real-layout files, figures chosen by hand (band index 52 = 'Gt 52 To 53 Weeks'):
# March 2022: RH8 waits 16 (0-1 wk) + 4 (52-53); RBZ (merging into RH8 on 1 April 2022) 5 (0-1) + 2 (60-61)
#             and 1 (70-71) for a non-English commissioner; RK9 20 (0-1); RA9 sends nothing.
# June 2022:  RCD 1 (52-53); RCB 2 (52-53).
# July 2022:  RCD 30 (0-1) + 3 (52-53) for 42D and 2 (53-54) for 03F; RR8 10 (52-53); RCB 7 (52-53).
@pytest.fixture(scope="module")
def hand_worked(tmp_path_factory):
    sources = tmp_path_factory.mktemp("sources")
    rtt = sources / "rtt"
    write_rtt_file(
        rtt,
        date(2022, 3, 1),
        [
            rtt_row("RH8", "15N", "Part_2", "C_100", {0: 10, 52: 4}),
            rtt_row("RH8", "15N", "Part_2", "C_110", {0: 6}),
            rtt_row("RBZ", "15N", "Part_2", "C_100", {0: 5, 60: 2}),
            rtt_row("RBZ", "NONC", "Part_2", "C_100", {70: 1}),
            rtt_row("RK9", "15N", "Part_2", "C_100", {0: 20}),
        ],
    )
    write_rtt_file(
        rtt,
        date(2022, 6, 1),
        [
            rtt_row("RCD", "42D", "Part_2", "C_100", {52: 1}),
            rtt_row("RCB", "42D", "Part_2", "C_100", {52: 2}),
        ],
        zipped=False,
    )
    write_rtt_file(
        rtt,
        date(2022, 7, 1),
        [
            rtt_row("RCD", "42D", "Part_2", "C_100", {0: 30, 52: 3}),
            rtt_row("RCD", "03F", "Part_2", "C_100", {53: 2}),
            rtt_row("RR8", "15F", "Part_2", "C_100", {52: 10}),
            rtt_row("RCB", "42D", "Part_2", "C_100", {52: 7}),
        ],
    )
    warehouse = tmp_path_factory.mktemp("warehouse")
    summary = run_pipeline(sources, warehouse)
    assert summary.exit_code == 0, (summary.rejected_files, summary.failed_checks, summary.failed_steps)
    con = duckdb.connect(str(summary.serving_db), read_only=True)
    yield con
    con.close()


def metric(con, collaborative, org, basis, month, code="rtt_over_52_weeks"):
    return con.execute(
        """
        select value, is_partial from fct_collaborative_metric_month
        where collaborative_code = ? and org_code = ? and membership_basis = ? and period_month = ? and metric_code = ?
        """,
        [collaborative, org, basis, date.fromisoformat(month), code],
    ).fetchone()


@pytest.mark.parametrize("basis", ["as_was", "as_is"])
def test_hand_worked_merged_trust_history_belongs_to_its_successor(hand_worked, basis):
    # RH8 4 + RBZ 2 + 1 = 7 waiting over 52 weeks, all under RH8; RA9 sent nothing, so Devon is partial.
    assert metric(hand_worked, "DEVONPC", "RH8", basis, "2022-03-01") == (7, False)
    assert metric(hand_worked, "DEVONPC", "ALL", basis, "2022-03-01") == (7, True)
    assert metric(hand_worked, "DEVONPC", "ALL", basis, "2022-03-01", "rtt_incomplete_pathways") == (48, True)
    assert metric(hand_worked, "DEVONPC", "RA9", basis, "2022-03-01") == (None, True)
    assert hand_worked.execute("select count(*) from fct_rtt_provider_month where org_code = 'RBZ'").fetchone()[0] == 0


def test_hand_worked_trust_in_two_collaboratives_counts_in_both(hand_worked):
    # July 2022: RCD (5) is in WYAAT and, from 1 July, in HNYCAP. WYAAT = RCD 5 + RR8 10; HNYCAP = RCB 7 + RCD 5.
    for basis in ("as_was", "as_is"):
        assert metric(hand_worked, "WYAAT", "ALL", basis, "2022-07-01") == (15, True)
        assert metric(hand_worked, "HNYCAP", "ALL", basis, "2022-07-01") == (12, True)
        assert metric(hand_worked, "WYAAT", "RCD", basis, "2022-07-01") == (5, False)
        assert metric(hand_worked, "HNYCAP", "RCD", basis, "2022-07-01") == (5, False)
    # pooled median for WYAAT in July: 45 waiting, rank 22.5 falls in the 0-1 week band of 30: 22.5 / 30 = 0.75
    assert metric(hand_worked, "WYAAT", "ALL", "as_was", "2022-07-01", "rtt_median_wait_weeks")[0] == 0.75


def test_hand_worked_late_joiner_counts_from_the_month_it_joined(hand_worked):
    # June 2022: RCD had not joined HNYCAP yet: as_was counts RCB only (2); as_is counts today's members (2 + 1).
    assert metric(hand_worked, "HNYCAP", "ALL", "as_was", "2022-06-01") == (2, True)
    assert metric(hand_worked, "HNYCAP", "RCD", "as_was", "2022-06-01") is None
    assert metric(hand_worked, "HNYCAP", "ALL", "as_is", "2022-06-01") == (3, True)
    assert metric(hand_worked, "HNYCAP", "RCD", "as_is", "2022-06-01") == (1, False)
