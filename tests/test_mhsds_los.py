"""The published MHSDS length-of-stay feed (mhsds_los): a file in the publisher's layout loads (the real 4WW file's
rows counted, not loaded), `*` stays suppressed, a revision replaces its month, a wrong header is named."""

from __future__ import annotations

import shutil
import zipfile
from datetime import date
from pathlib import Path

import duckdb
import pytest

from orchestration.samples.mhsds_los import file_bytes
from orchestration.sources import mhsds_los
from orchestration.sources.oap_layout import HEADER

REAL_ZIP = Path("/work/shared/real/mhsds/MHSDS Data_4WW_AprPerf_2024_v2.zip")

# Hand-made length-of-stay rows in the publisher's layout (April 2024, rolling quarter Feb-Apr), added to the real
# file's rows. RV5's MHS156a bed days 1,240 over 35 discharges = 35.43, published mean 35; RPG's MHS140 is `*`.
LOS_ROWS = [
    "01/02/2024,30/04/2024,Performance,England,England,England,NONE,NONE,MHS156,{MHS156},2561",
    "01/02/2024,30/04/2024,Performance,England,England,England,NONE,NONE,MHS156a,{MHS156a},99435",
    "01/02/2024,30/04/2024,Performance,England,England,England,NONE,NONE,MHS156b,{MHS156b},39",
    "01/02/2024,30/04/2024,Performance,Provider,RV5,SOUTH LONDON AND MAUDSLEY NHS FOUNDATION TRUST,NONE,NONE,"
    "MHS156,{MHS156},35",
    "01/02/2024,30/04/2024,Performance,Provider,RV5,SOUTH LONDON AND MAUDSLEY NHS FOUNDATION TRUST,NONE,NONE,"
    "MHS156a,{MHS156a},1240",
    "01/02/2024,30/04/2024,Performance,Provider,RV5,SOUTH LONDON AND MAUDSLEY NHS FOUNDATION TRUST,NONE,NONE,"
    "MHS156b,{MHS156b},35",
    "01/02/2024,30/04/2024,Performance,Provider,RPG,OXLEAS NHS FOUNDATION TRUST,NONE,NONE,MHS140,{MHS140},*",
    "01/02/2024,30/04/2024,Performance,Provider,RPG,OXLEAS NHS FOUNDATION TRUST,NONE,NONE,MHS140a,{MHS140a},*",
]


def _real_main_file(tmp: Path, name: str = "MHSDS Data_AprPerf_2024.csv", header: str | None = None) -> Path:
    """The real 4WW file's text (its 19,958 rows of MRS measures) plus the LOS rows, named as the main file."""
    with zipfile.ZipFile(REAL_ZIP) as z:
        text = z.read(z.namelist()[0]).decode("utf-8")
    names = {m: f'"{mhsds_los.MEASURE_NAMES[m]}"' for m in ("MHS156", "MHS156a", "MHS156b", "MHS140", "MHS140a")}
    lines = text.rstrip("\n").split("\n")
    if header is not None:
        lines[0] = header
    lines += [row.format(**names) for row in LOS_ROWS]
    path = tmp / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


@pytest.mark.skipif(not REAL_ZIP.exists(), reason="the real MHSDS file is not on this machine")
def test_real_layout_loads_los_rows_and_counts_the_rest(tmp_path, con):
    folder = tmp_path / "in"
    folder.mkdir()
    _real_main_file(folder)
    (result,) = mhsds_los.ingest_folder(con, folder, tmp_path / "q", move_rejected=False)
    assert result.action == "loaded", result
    # 8 LOS rows taken; the real file's 19,958 data rows are all MRS (4WW) measures: counted, not loaded
    assert result.rows == 8
    counted = con.execute("select sum(row_count) from raw_mhsds_los.rows_not_taken").fetchone()[0]
    assert counted == 19_958
    rv5 = con.execute(
        "select measure_value, period_type from raw_mhsds_los.monthly_statistics "
        "where primary_level = 'RV5' and measure_id = 'MHS156b'"
    ).fetchone()
    assert rv5 == (35.0, "rolling_quarter")  # START 01/02/2024, END 30/04/2024: two months back


@pytest.mark.skipif(not REAL_ZIP.exists(), reason="the real MHSDS file is not on this machine")
def test_suppressed_stays_suppressed_never_zero(tmp_path, con):
    folder = tmp_path / "in"
    folder.mkdir()
    _real_main_file(folder)
    mhsds_los.ingest_folder(con, folder, tmp_path / "q", move_rejected=False)
    rows = con.execute(
        "select measure_id, measure_value, is_suppressed, measure_value_published "
        "from raw_mhsds_los.monthly_statistics "
        "where primary_level = 'RPG' order by measure_id"
    ).fetchall()
    assert rows == [("MHS140", None, True, "*"), ("MHS140a", None, True, "*")]


@pytest.mark.skipif(not REAL_ZIP.exists(), reason="the real MHSDS file is not on this machine")
def test_wrong_header_names_file_column_and_rule(tmp_path, con):
    folder = tmp_path / "in"
    folder.mkdir()
    header = ",".join(HEADER).replace("MEASURE_VALUE", "VALUE")
    _real_main_file(folder, header=header)
    (result,) = mhsds_los.ingest_folder(con, folder, tmp_path / "q", move_rejected=False)
    assert result.action == "rejected"
    violation = next(v for v in result.violations if v.rule == "header_matches_layout")
    assert violation.file == "MHSDS Data_AprPerf_2024.csv"
    assert violation.column == "VALUE" and "MEASURE_VALUE" in violation.message
    assert con.execute("select count(*) from raw_mhsds_los.monthly_statistics").fetchone()[0] == 0


def test_family_file_is_not_the_main_file(tmp_path, con):
    """The real 4WW file itself is rejected: its name is the 4WW family's and it has no England MHS156 rows."""
    if not REAL_ZIP.exists():
        pytest.skip("the real MHSDS file is not on this machine")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(REAL_ZIP, folder / REAL_ZIP.name)
    (result,) = mhsds_los.ingest_folder(con, folder, tmp_path / "q", move_rejected=False)
    assert result.action == "rejected"
    assert {v.rule for v in result.violations} >= {"name_matches_family", "england_los_measures_present"}


def test_revision_replaces_its_month_and_never_the_reverse(tmp_path, con):
    folder = tmp_path / "in"
    folder.mkdir()
    month = date(2024, 4, 1)
    for status in ("Provisional", "Performance"):
        name = mhsds_los.sample_file_name(month, status)
        (folder / name).write_bytes(file_bytes(month, status))
    results = mhsds_los.ingest_folder(con, folder, tmp_path / "q", move_rejected=False)
    assert [r.action for r in results] == ["loaded", "replaced"]
    statuses = con.execute("select distinct status from raw_mhsds_los.monthly_statistics").fetchall()
    assert statuses == [("Performance",)]
    # the Provisional file again (same bytes): already superseded, the Performance figures stand
    again = mhsds_los.ingest_folder(con, folder, tmp_path / "q", move_rejected=False)
    assert {r.action for r in again} <= {"unchanged", "superseded"}
    current = con.execute("select count(*) from raw_mhsds_los.file_loads where is_current").fetchone()[0]
    assert current == 1


def test_sample_quarter_mean_is_bed_days_over_discharges():
    """The generator's MHS156b at England is MHS156a / MHS156 rounded to a day (measure_metadata.py)."""
    import io

    import pandas as pd

    frame = pd.read_csv(io.BytesIO(file_bytes(date(2024, 4, 1))), dtype=str)
    england = frame[(frame.BREAKDOWN == "England")].set_index("MEASURE_ID").MEASURE_VALUE
    assert round(float(england["MHS156a"]) / float(england["MHS156"])) == float(england["MHS156b"])
    assert list(frame.columns) == list(HEADER)
    assert set(frame.REPORTING_PERIOD_START[frame.MEASURE_ID == "MHS156"]) == {"01/02/2024"}
    assert set(frame.REPORTING_PERIOD_START[frame.MEASURE_ID == "MHS24"]) == {"01/04/2024"}


def test_metrics_in_the_catalogue_flow_to_the_collaborative_mart():
    """After a pipeline run on the bundled samples (the warehouse of MHSDSPUB_WH), the published metrics are in
    fct_collaborative_metric_month and a suppressed member figure is NULL there, never 0."""
    import os

    warehouse = Path(os.environ.get("MHSDSPUB_WH", "/tmp/mhsdspub-wh"))
    serving = warehouse / "serving.duckdb"
    if not serving.exists():
        pytest.skip("no pipeline run to read")
    db = duckdb.connect(str(serving), read_only=True)
    try:
        codes = {
            row[0]
            for row in db.execute(
                "select distinct metric_code from fct_collaborative_metric_month where metric_code like 'mhsds_%' "
                "and value is not null"
            ).fetchall()
        }
        assert {"mhsds_los_mean_days_18plus", "mhsds_los_discharges_18plus", "mhsds_bed_days_month"} <= codes
        zero_suppressed = db.execute(
            "select count(*) from fct_los_published_month where is_suppressed and published_value is not null"
        ).fetchone()[0]
        assert zero_suppressed == 0
    finally:
        db.close()
