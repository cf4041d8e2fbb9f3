"""Lengths of stay: the synthetic spell extracts, their file contract, row problems and idempotent loading.

Real zips written by the generator (or edited copies of them) in tmp_path, loaded into a real DuckDB file.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from orchestration.raw import ContractError
from orchestration.samples import los as samples
from orchestration.samples.common import month_range, write_zip
from orchestration.sources import los

BAD_MONTH = date(2021, 9, 1)  # acute: all three row problems (MHSDS submissions: tests/test_los_mh.py)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, list[Path]]:
    out = tmp_path_factory.mktemp("los_samples")
    acute = samples.write_los_files(out, first_month=BAD_MONTH, last_month=BAD_MONTH, sources=("los_acute",))
    return {"los_acute": acute["los_acute"]}


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "build.duckdb"))
    yield connection
    connection.close()


def rows_of(path: Path) -> tuple[list[str], list[list[str]]]:
    with zipfile.ZipFile(path) as archive:
        text = archive.read(archive.namelist()[0]).decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    return header, list(reader)


def write_csv_zip(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_zip(path, path.name.removesuffix(".zip") + ".csv", buffer.getvalue().encode("utf-8"))


def landing(tmp_path: Path, source: str, files: list[Path]) -> Path:
    folder = tmp_path / "landing" / source
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        (folder / file.name).write_bytes(file.read_bytes())
    return folder


# --------------------------------------------------------------------------------------------------------------
# Loading generated months


@pytest.mark.parametrize("source", ["los_acute"])  # MHSDS submissions: tests/test_los_mh.py
def test_generated_month_loads_with_open_spells_and_flagged_rows(tmp_path, con, generated, source):
    spec = los.layout(source)
    path = generated[source][0]
    header, rows = rows_of(path)
    assert header == list(spec.header)
    discharge_at = header.index(spec.discharge)
    blank_discharges = sum(1 for row in rows if row[discharge_at] == "")

    results = los.ingest_folder(con, source, landing(tmp_path, source, [path]), tmp_path / "q", move_rejected=True)
    assert [r.action for r in results] == ["loaded"]
    assert results[0].rows == len(rows)

    table = spec.qualified_table
    total, open_spells, bad_los = con.execute(
        f"""select count(*), count(*) filter (where discharge_date is null),
                   count(*) filter (where discharge_date < {"start_date" if source == "los_mh" else "admission_date"}
                                     and row_problem is null)
            from {table}"""
    ).fetchone()
    assert total == len(rows) and open_spells == blank_discharges > 0 and bad_los == 0
    start = "start_date" if source == "los_mh" else "admission_date"
    mean_los = con.execute(
        f"select avg(discharge_date - {start}) from {table} where discharge_date is not null and row_problem is null"
    ).fetchone()[0]
    assert (20 < mean_los < 80) if source == "los_mh" else (3 < mean_los < 7)

    expected = dict.fromkeys(samples.BAD_ROWS[source][los.month_in_file_name(source, path)], 1)
    assert los.row_problem_counts(con, source) == expected
    for rule in expected:
        assert rule in results[0].message
    flagged = con.execute(
        f"select {spec.raw_names[spec.provider]} from {table} where row_problem = 'unknown_provider'"
    ).fetchall()
    assert flagged == [(samples.UNKNOWN_PROVIDER,)]
    checked = los.check_loaded_months(con, source, run_id="t")
    assert checked == {los.month_in_file_name(source, path): []}


def test_reload_unchanged_revision_replaces_and_unmarked_resubmission_rejected(tmp_path, con, generated):
    source = "los_acute"
    path = generated[source][0]
    folder = landing(tmp_path, source, [path])
    first = los.ingest_folder(con, source, folder, tmp_path / "q", move_rejected=True)
    before = con.execute("select count(*), sum(hash(epikey)) from raw_los_acute.apc_spells").fetchall()
    again = los.ingest_folder(con, source, folder, tmp_path / "q", move_rejected=True)
    assert [r.action for r in first] == ["loaded"] and [r.action for r in again] == ["unchanged"]
    assert con.execute("select count(*), sum(hash(epikey)) from raw_los_acute.apc_spells").fetchall() == before
    assert con.execute("select count(*) from raw_los_acute.file_loads").fetchone()[0] == 1

    header, rows = rows_of(path)
    other = tmp_path / "other"
    unmarked = write_csv_zip(other / "HES_APC_2021-09.zip", header, rows[:-10])
    rejected = los.ingest_folder(
        con, source, landing(tmp_path / "x", source, [unmarked]), tmp_path / "q", move_rejected=True
    )
    assert [r.action for r in rejected] == ["rejected"]
    assert rejected[0].violations[0].rule == "revision_named_revised"
    assert (tmp_path / "q" / source / "HES_APC_2021-09.zip.reason.txt").exists()

    revised = write_csv_zip(other / "HES_APC_2021-09-revised.zip", header, rows[:-10])
    replaced = los.ingest_folder(
        con, source, landing(tmp_path / "y", source, [revised]), tmp_path / "q", move_rejected=True
    )
    assert [r.action for r in replaced] == ["replaced"]
    assert con.execute("select count(*) from raw_los_acute.apc_spells").fetchone()[0] == len(rows) - 10
    current = con.execute("select source_file from raw_los_acute.file_loads where is_current").fetchall()
    assert current == [("HES_APC_2021-09-revised.zip/HES_APC_2021-09-revised.csv",)]


# --------------------------------------------------------------------------------------------------------------
# The file contract


def _edit_date(header, rows):
    rows[4][header.index("ADMIDATE")] = "2021/09/03"
    return 6, "ADMIDATE", "date_parses"


def _edit_header(header, rows):
    header[header.index("SPELDUR")] = "SPELL_DURATION"
    return 1, "SPELL_DURATION", "header_matches_layout"


def _edit_duplicate(header, rows):
    rows[7][0] = rows[2][0]
    return 9, "EPIKEY", "unique_spell_id"


def _edit_imd(header, rows):
    rows[10][header.index("IMD04_DECILE")] = "11"
    return 12, "IMD04_DECILE", "imd_decile_range"


@pytest.mark.parametrize("edit", [_edit_date, _edit_header, _edit_duplicate, _edit_imd], ids=lambda f: f.__name__)
def test_contract_violation_named_and_quarantined_while_good_file_loads(tmp_path, con, generated, edit):
    source = "los_acute"
    header, rows = rows_of(generated[source][0])
    rows = rows[:300]
    line, column, rule = edit(header, rows)
    bad = write_csv_zip(tmp_path / "made" / "HES_APC_2021-08.zip", header, rows)
    good_header, good_rows = rows_of(generated[source][0])
    good = write_csv_zip(tmp_path / "made" / "HES_APC_2021-09.zip", good_header, good_rows[:300])
    folder = landing(tmp_path, source, [bad, good])
    results = {
        r.file.split("/")[0]: r for r in los.ingest_folder(con, source, folder, tmp_path / "q", move_rejected=True)
    }
    assert results["HES_APC_2021-09.zip"].action == "loaded"
    rejected = results["HES_APC_2021-08.zip"]
    assert rejected.action == "rejected"
    assert any(v.rule == rule and v.row == line and v.column == column for v in rejected.violations), (
        rejected.violations
    )
    reason = (tmp_path / "q" / source / "HES_APC_2021-08.zip.reason.txt").read_text()
    assert f"row: {line}, column: {column}, rule: {rule}" in reason
    assert not (folder / "HES_APC_2021-08.zip").exists()
    assert con.execute("select distinct period_month from raw_los_acute.apc_spells").fetchall() == [(BAD_MONTH,)]


def test_unreadable_files_raise_contract_error_naming_the_file(tmp_path, generated):
    truncated = tmp_path / "HES_APC_2021-09.zip"
    truncated.write_bytes(generated["los_acute"][0].read_bytes()[:500])
    with pytest.raises(ContractError, match="HES_APC_2021-09.zip") as error:
        los.read_file("los_acute", truncated)
    assert error.value.violations[0].rule == "readable_zip"
    html = tmp_path / "HES_APC_2021-06.csv"
    html.write_text("<html><body>Not found</body></html>")
    with pytest.raises(ContractError, match="HES_APC_2021-06.csv"):
        los.read_file("los_acute", html)


def test_month_from_rows_when_name_does_not_follow_pattern(tmp_path, generated):
    header, rows = rows_of(generated["los_acute"][0])
    path = write_csv_zip(tmp_path / "apc_extract.zip", header, rows)
    los_file, frame = los.read_file("los_acute", path)
    assert los_file.period_month == BAD_MONTH and not los_file.month_from_name
    assert los.check_contract("los_acute", los_file, frame) == []


# --------------------------------------------------------------------------------------------------------------
# The generator


def test_generator_is_deterministic_and_months_independent(tmp_path):
    a = samples.write_los_files(tmp_path / "a", first_month=date(2022, 3, 1), last_month=date(2022, 4, 1))
    b = samples.write_los_files(tmp_path / "b", first_month=date(2022, 4, 1), last_month=date(2022, 4, 1))
    assert [p.name for p in a["los_acute"]] == ["HES_APC_2022-03.zip", "HES_APC_2022-04.zip"]
    assert [p.name for p in a["los_mh"]] == ["MHSDS_2022-03.zip", "MHSDS_2022-04.zip"]
    for source in ("los_mh", "los_acute"):
        assert a[source][1].read_bytes() == b[source][0].read_bytes()
    # RBZ closes on 2022-03-31: its last file is March; from April RH8 reports its spells still open.
    _, march = rows_of(a["los_acute"][0])
    _, april = rows_of(a["los_acute"][1])
    assert "RBZ" in {row[2] for row in march} and "RBZ" not in {row[2] for row in april}
    rbz_open_at_march_end = {row[0] for row in march if row[2] == "RBZ" and row[4] == ""}
    carried = {row[0] for row in april if row[2] == "RH8"}
    assert rbz_open_at_march_end and rbz_open_at_march_end <= carried


def test_planted_wyaat_effect_visible():
    effect = samples.PLANTED_EFFECTS["WYAAT"]

    def mean_los(months) -> pd.Series:
        frames = [
            pd.read_csv(io.BytesIO(samples.month_csv("los_acute", m)), dtype=str, keep_default_na=False) for m in months
        ]
        spells = pd.concat(frames)
        spells = spells[spells.DISDATE != ""]
        return spells.SPELDUR.astype(int).groupby(spells.PROCODE3.isin(effect.members)).mean()

    before = mean_los(month_range(date(2021, 10, 1), date(2022, 3, 1)))
    after = mean_los(month_range(date(2022, 10, 1), date(2023, 3, 1)))
    change = after / before - 1
    assert change[True] < -0.05, change
    assert abs(change[False]) < 0.04, change
    assert change[True] - change[False] < -0.05
    assert np.isclose(effect.multiplier(date(2022, 6, 1)), 0.9) and effect.multiplier(date(2022, 3, 1)) == 1.0
