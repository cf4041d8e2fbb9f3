"""Every routine feed end to end on the bundled samples: out-of-area placements and lengths of stay for a
mental health collaborative, checked against hand computations from the raw files, and disclosure control."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date

import numpy as np
import pandas as pd
import pytest

SLP_MEMBERS = ["RV5", "RPG", "RQY"]  # South London Mental Health & Community Partnership (MHLDA)


def read_oap(bundled_samples, month: date) -> pd.DataFrame:
    """The month's rows from the file its figures stand on: the last of its publications in loading order
    (Provisional, Performance, a _v2, Final)."""
    from orchestration.sources import oap

    files = [path for path in oap.discover_oap_files(bundled_samples / "oap") if oap.month_in_file_name(path) == month]
    assert files, f"no OAP sample file for {month:%Y-%m}"
    with zipfile.ZipFile(files[-1]) as archive:
        [member] = archive.namelist()
        return pd.read_csv(io.BytesIO(archive.read(member)), dtype=str, keep_default_na=False)


@pytest.mark.parametrize("month", [date(2021, 3, 1), date(2022, 2, 1), date(2023, 8, 1), date(2026, 8, 1)])
def test_slp_inappropriate_oap_bed_days_equal_the_raw_file(bundled_samples, serving, month):
    raw = read_oap(bundled_samples, month)
    month_rows = raw[
        (raw["REPORTING_PERIOD_START"] == f"{month:%d/%m/%Y}")
        & (raw["BREAKDOWN"] == "Sending Provider")
        & (raw["MEASURE_ID"] == "OAP02")
        & raw["PRIMARY_LEVEL"].isin(SLP_MEMBERS)
    ]
    published = dict(zip(month_rows["PRIMARY_LEVEL"], month_rows["MEASURE_VALUE"], strict=True))
    assert set(published) == set(SLP_MEMBERS)
    reported = [float(value) for value in published.values() if value != "*"]
    suppressed = [code for code, value in published.items() if value == "*"]
    rows = (
        serving.execute(
            """
        select org_code, value, is_partial, is_suppressed from fct_collaborative_metric_month
        where collaborative_code = 'SLP' and metric_code = 'oap_inappropriate_bed_days'
          and membership_basis = 'as_was' and period_month = ?
        """,
            [month],
        )
        .df()
        .set_index("org_code")
    )
    assert rows.loc["ALL", "value"] == sum(reported)
    assert bool(rows.loc["ALL", "is_partial"]) == bool(suppressed)
    for code in SLP_MEMBERS:
        if code in suppressed:  # suppressed is shown as missing and flagged, never as zero
            assert pd.isna(rows.loc[code, "value"]) and rows.loc[code, "is_suppressed"] and rows.loc[code, "is_partial"]
        else:
            assert rows.loc[code, "value"] == float(published[code])


def test_some_suppressed_oap_input_shows_as_partial_never_zero(serving):
    suppressed = serving.execute(
        "select count(*), count(inappropriate_oaps_started) from fct_oap_provider_month "
        "where inappropriate_oaps_started_suppressed"
    ).fetchone()
    assert suppressed[0] > 0 and suppressed[1] == 0
    partial = serving.execute(
        """
        select count(*) from fct_collaborative_metric_month as total
        where total.org_code = 'ALL' and total.metric_code = 'oap_inappropriate_started' and not total.is_partial
          and exists (
              select 1 from fct_collaborative_metric_month as member
              where member.collaborative_code = total.collaborative_code and member.org_code <> 'ALL'
                and member.membership_basis = total.membership_basis and member.period_month = total.period_month
                and member.metric_code = total.metric_code and member.is_suppressed)
        """
    ).fetchone()[0]
    assert partial == 0  # a collaborative with a suppressed member is always flagged partial
    zero_for_suppressed = serving.execute(
        """
        select count(*) from fct_collaborative_metric_month
        where metric_code like 'oap_%' and org_code <> 'ALL' and is_suppressed and coalesce(value, -1) = 0
        """
    ).fetchone()[0]
    assert zero_for_suppressed == 0


def read_mh_tables(bundled_samples) -> dict[str, pd.DataFrame]:
    """The MHSDS tables of every bundled submission zip, each row tagged with its file's month."""
    frames: dict[str, list[pd.DataFrame]] = {"MHS501": [], "MHS502": [], "MHS001": []}
    for path in sorted((bundled_samples / "los_mh").glob("*.zip")):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                key = next(k for k in frames if k in member.upper())
                frame = pd.read_csv(io.BytesIO(archive.read(member)), dtype=str, keep_default_na=False)
                frame["file"] = path.name
                frames[key].append(frame)
    return {key: pd.concat(parts, ignore_index=True) for key, parts in frames.items()}


@pytest.fixture(scope="module")
def mh_adult_acute_discharges(bundled_samples):
    """Hand computation from the MHSDS tables, MHS140-style: each spell's latest record (highest UniqMonthID,
    then UniqSubmissionID), discharged, whose ward stay ending at discharge (same RecordNumber) is on an adult
    acute bed (v5 10 before UniqMonthID 1489, v6 200 from it), aged 18-64 (MHS001 AgeRepPeriodEnd), dates in
    order, provider known."""
    tables = read_mh_tables(bundled_samples)
    reference = pd.read_csv(bundled_samples.parent / "reference" / "organisations.csv", dtype=str)
    spells = tables["MHS501"].assign(
        month_id=lambda f: f["UniqMonthID"].astype(int), sub=lambda f: f["UniqSubmissionID"].astype(int)
    )
    spells = spells.sort_values(["month_id", "sub"]).drop_duplicates("UniqHospProvSpellID", keep="last")
    spells = spells[spells["DischDateHospProvSpell"] != ""]
    wards = tables["MHS502"].rename(columns={"EndDateWardStay": "DischDateHospProvSpell"})
    wards = wards[["file", "RecordNumber", "UniqHospProvSpellID", "DischDateHospProvSpell", "MHAdmittedPatientClass"]]
    spells = spells.merge(wards, on=["file", "RecordNumber", "UniqHospProvSpellID", "DischDateHospProvSpell"])
    adult_acute = np.where(spells["month_id"] >= 1489, "200", "10")
    spells = spells[spells["MHAdmittedPatientClass"] == adult_acute]
    people = tables["MHS001"][["file", "RecordNumber", "AgeRepPeriodEnd"]]
    spells = spells.merge(people, on=["file", "RecordNumber"])
    spells = spells[spells["AgeRepPeriodEnd"].astype(int).between(18, 64)]
    spells = spells[spells["OrgIDProv"].isin(reference["org_code"])]
    start = pd.to_datetime(spells["StartDateHospProvSpell"])
    discharge = pd.to_datetime(spells["DischDateHospProvSpell"])
    spells = spells.assign(los=(discharge - start).dt.days, month=discharge.dt.to_period("M").dt.to_timestamp())
    return spells[spells["los"] >= 0]


@pytest.mark.parametrize("month", [date(2021, 6, 1), date(2022, 9, 1), date(2025, 3, 1)])
def test_slp_adult_mental_health_median_los_equals_the_raw_files(mh_adult_acute_discharges, serving, month):
    in_month = mh_adult_acute_discharges[
        (mh_adult_acute_discharges["month"] == pd.Timestamp(month))
        & mh_adult_acute_discharges["OrgIDProv"].isin(SLP_MEMBERS)
    ]
    # a member with fewer than 5 discharges is suppressed (MHSDS rule) and left out of the pooled figures
    counts = in_month.groupby("OrgIDProv").size()
    reportable = in_month[in_month["OrgIDProv"].isin(counts[counts >= 5].index)]
    expected = float(reportable["los"].median())
    value, is_partial = serving.execute(
        """
        select value, is_partial from fct_collaborative_metric_month
        where collaborative_code = 'SLP' and org_code = 'ALL' and metric_code = 'los_median_days'
          and membership_basis = 'as_was' and period_month = ?
        """,
        [month],
    ).fetchone()
    assert value == pytest.approx(expected)
    assert is_partial == bool((counts < 5).any() or len(counts) < len(SLP_MEMBERS))
    for code, group in in_month.groupby("OrgIDProv"):
        member = serving.execute(
            "select median_los_days, discharges from fct_los_provider_month "
            "where org_code = ? and setting = 'mental_health' and period_month = ?",
            [code, month],
        ).fetchone()
        if len(group) >= 5:  # shown, rounded to the nearest 5
            assert member == (pytest.approx(float(group["los"].median())), 5 * round(len(group) / 5))
        else:
            assert member == (None, None)


IDENTIFIER = re.compile(r"person|patient|spell_id|spellid|epikey|hesid|nhs_number|uniq", re.IGNORECASE)


def test_no_person_or_spell_identifier_reaches_the_serving_database(serving):
    columns = serving.execute("select table_name, column_name from duckdb_columns() where not internal").fetchall()
    assert columns
    assert [(table, column) for table, column in columns if IDENTIFIER.search(column)] == []
    tables = {row[0] for row in serving.execute("select table_name from duckdb_tables()").fetchall()}
    assert not any(re.search(r"spell|stg_|int_|raw", table) for table in tables)
    views = serving.execute("select count(*) from duckdb_views() where not internal").fetchone()[0]
    assert views == 0


def test_rows_with_problems_are_counted_not_silently_dropped(bundled_run):
    import duckdb

    con = duckdb.connect(str(bundled_run.build_db), read_only=True)
    try:
        problems = dict(
            con.execute(
                "select row_problem, count(*) from raw_los_acute.apc_episodes where row_problem is not null group by 1"
            ).fetchall()
        )
    finally:
        con.close()
    assert problems.get("discharged_before_admission", 0) > 0
    assert problems.get("unknown_provider", 0) > 0
