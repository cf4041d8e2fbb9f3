"""The RTT file contract and idempotent loading into raw_rtt, on real CSV/zip files and a real DuckDB file.

The files are written by a small builder below (two providers, two commissioners, two treatment functions, every
part type, consistent C_999 rows), so each test can break exactly one rule and see it named with its row and
column.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pytest

from orchestration import raw
from orchestration.contracts import EXPECTATIONS_DIR
from orchestration.raw import ContractError, ContractViolation, quarantine_file
from orchestration.sources import rtt
from orchestration.sources.rtt_layout import (
    LAYOUTS,
    PART_TYPES,
    PARTS_WITH_TOTAL,
    RAW_BAND_COLUMNS,
    TOTAL_TREATMENT_FUNCTION,
    file_name,
    format_period,
    layout_for,
)

PROVIDERS = ("RJ1", "RYJ")
COMMISSIONERS = ("15N", "NONC")
FUNCTIONS = ("C_100", "C_110")
ROWS_PER_FILE = len(PROVIDERS) * len(COMMISSIONERS) * len(PART_TYPES) * (len(FUNCTIONS) + 1)


# --------------------------------------------------------------------------------------------------------------
# A small file builder


@dataclass
class Detail:
    """One detail row's figures: ``bands`` maps band index → count (the last index is the open band)."""

    provider: str
    commissioner: str
    part: str
    function: str
    bands: dict[int, int] = field(default_factory=dict)
    unknown: int = 0
    new_periods: int = 0


def details(month: date, bump: int = 0) -> list[Detail]:
    """Figures that satisfy every rule; ``bump`` shifts them so that a revision has different figures."""
    last = layout_for(month) - 1
    out = []
    for p, provider in enumerate(PROVIDERS):
        for c, commissioner in enumerate(COMMISSIONERS):
            for f, function in enumerate(FUNCTIONS):
                k = p + 2 * c + 3 * f + bump
                out += [
                    Detail(provider, commissioner, "Part_1A", function, {0: 1 + k, 3: 2, last: 1}, unknown=f),
                    Detail(provider, commissioner, "Part_1B", function, {0: 2 + k, 10: 1}),
                    Detail(provider, commissioner, "Part_2", function, {0: 3 + k, 5: 4, last: 2}),
                    Detail(provider, commissioner, "Part_2A", function, {0: 1, 5: 1}),
                    Detail(provider, commissioner, "Part_3", function, new_periods=5 + k),
                ]
    return out


def published_rows(month: date, records: list[Detail], *, period: str | None = None) -> list[dict[str, str]]:
    """Published rows (header name → cell text) for ``records`` plus a consistent C_999 row per group."""
    header = LAYOUTS[layout_for(month)]
    bands = header[13:-3]
    groups: dict[tuple[str, str, str], list[Detail]] = {}
    for record in records:
        groups.setdefault((record.provider, record.commissioner, record.part), []).append(record)
    rows = []
    for (provider, commissioner, part), members in groups.items():
        total_row = Detail(provider, commissioner, part, TOTAL_TREATMENT_FUNCTION)
        for member in members:
            for band, count in member.bands.items():
                total_row.bands[band] = total_row.bands.get(band, 0) + count
            total_row.unknown += member.unknown
            total_row.new_periods += member.new_periods
        for record in [*members, total_row]:
            band_total = sum(record.bands.values())
            with_total = part in PARTS_WITH_TOTAL
            row = {
                "Period": period or format_period(month),
                "Provider Parent Org Code": "Y63",
                "Provider Parent Name": "NHS ENGLAND NORTH EAST AND YORKSHIRE",
                "Provider Org Code": provider,
                "Provider Org Name": f"TRUST {provider}",
                "Commissioner Parent Org Code": "NONC" if commissioner == "NONC" else "QWO",
                "Commissioner Parent Name": "NON-ENGLISH COMMISSIONER" if commissioner == "NONC" else "WY ICB",
                "Commissioner Org Code": commissioner,
                "Commissioner Org Name": f"COMMISSIONER {commissioner}",
                "RTT Part Type": part,
                "RTT Part Description": PART_TYPES[part],
                "Treatment Function Code": record.function,
                "Treatment Function Name": "Total" if record.function == TOTAL_TREATMENT_FUNCTION else "Surgery",
            }
            row |= {name: str(record.bands[i]) if record.bands.get(i) else "" for i, name in enumerate(bands)}
            row["Total"] = str(band_total) if with_total else ""
            row["Patients with unknown clock start date"] = str(record.unknown) if with_total else ""
            row["Total All"] = str(record.new_periods if part == "Part_3" else band_total + record.unknown)
            rows.append(row)
    return rows


def csv_bytes(rows: list[dict[str, str]], header: tuple[str, ...] | list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([row.get(name, "") for name in header] for row in rows)
    return buffer.getvalue().encode("utf-8")


def write_file(
    folder: Path,
    month: date,
    *,
    rows: list[dict[str, str]] | None = None,
    revised: bool = False,
    zipped: bool = False,
    header: tuple[str, ...] | list[str] | None = None,
    name: str | None = None,
    data: bytes | None = None,
) -> Path:
    """Write a file in the published layout for ``month`` (or exactly ``data``) under its published name."""
    folder.mkdir(parents=True, exist_ok=True)
    name = name or file_name(month, revised=revised)
    if data is None:
        data = csv_bytes(
            rows if rows is not None else published_rows(month, details(month)), header or LAYOUTS[layout_for(month)]
        )
    if not zipped:
        path = folder / name
        path.write_bytes(data)
        return path
    path = folder / name.replace(".csv", ".zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return path


def line_of(rows: list[dict[str, str]], **match: str) -> int:
    """The CSV line number of the first row matching ``match`` (header = line 1)."""
    for index, row in enumerate(rows):
        if all(row[key] == value for key, value in match.items()):
            return index + 2
    raise LookupError(match)


def row_index(rows: list[dict[str, str]], **match: str) -> int:
    return line_of(rows, **match) - 2


def table(con: duckdb.DuckDBPyConnection, sql: str = "select * from raw_rtt.full_extract") -> list[tuple]:
    return con.execute(sql + " order by all").fetchall()


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "build.duckdb"))
    yield connection
    connection.close()


APRIL_2024, MAY_2024 = date(2024, 4, 1), date(2024, 5, 1)


# --------------------------------------------------------------------------------------------------------------
# Loading


def test_good_105_band_file_loads_with_its_values(con, tmp_path):
    folder = tmp_path / "rtt"
    path = write_file(folder, APRIL_2024, zipped=True)

    [result] = rtt.ingest_rtt_folder(con, folder, tmp_path / "quarantine", move_rejected=False)

    assert (result.action, result.rows, result.period_month) == ("loaded", ROWS_PER_FILE, APRIL_2024)
    columns = [row[0] for row in con.execute("describe raw_rtt.full_extract").fetchall()]
    assert columns[:5] == ["period_month", "source_file", "source_row", "band_layout", "period"]
    assert columns[17:-3] == list(RAW_BAND_COLUMNS)
    assert columns[-3:] == ["total", "patients_with_unknown_clock_start_date", "total_all"]
    assert con.execute("select count(*) from raw_rtt.full_extract").fetchone()[0] == ROWS_PER_FILE

    row = con.execute(
        """select source_file, source_row, band_layout, period, gt_00_to_01_weeks, gt_03_to_04_weeks,
                  gt_01_to_02_weeks, gt_103_to_104_weeks, gt_104_weeks, gt_52_weeks, total,
                  patients_with_unknown_clock_start_date, total_all
           from raw_rtt.full_extract
           where provider_org_code = 'RYJ' and commissioner_org_code = 'NONC' and rtt_part_type = 'Part_1A'
             and treatment_function_code = 'C_110'"""
    ).fetchone()
    k = 1 + 2 + 3  # provider 1, commissioner 1, function 1
    name = file_name(APRIL_2024)
    rows = published_rows(APRIL_2024, details(APRIL_2024))
    line = line_of(
        rows,
        **{
            "Provider Org Code": "RYJ",
            "Commissioner Org Code": "NONC",
            "RTT Part Type": "Part_1A",
            "Treatment Function Code": "C_110",
        },
    )
    # blank bands stay NULL; the open band above 104 weeks is filled, the 53-band layout's is NULL
    assert row == (
        f"{name.replace('.csv', '.zip')}/{name}",
        line,
        105,
        "RTT-April-2024",
        1 + k,
        2,
        None,
        None,
        1,
        None,
        4 + k,
        1,
        5 + k,
    )

    load = con.execute(
        "select source_file, period_month, sha256, file_bytes, row_count, is_revision, action, "
        "is_current, loaded_at is not null from raw_rtt.file_loads"
    ).fetchall()
    assert load == [
        (
            f"{path.name}/{name}",
            APRIL_2024,
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_size,
            ROWS_PER_FILE,
            False,
            "loaded",
            True,
            True,
        )
    ]


def test_53_band_file_with_upper_case_period_loads(con, tmp_path):
    month = date(2019, 11, 1)
    folder = tmp_path / "rtt"
    rows = published_rows(month, details(month), period="RTT-NOVEMBER-2019")
    write_file(folder, month, rows=rows)

    [result] = rtt.ingest_rtt_folder(con, folder, tmp_path / "quarantine", move_rejected=False)

    assert result.action == "loaded", result.violations
    got = con.execute(
        """select band_layout, period, gt_00_to_01_weeks, gt_51_to_52_weeks, gt_52_weeks, gt_52_to_53_weeks,
                  gt_103_to_104_weeks, gt_104_weeks, total
           from raw_rtt.full_extract
           where provider_org_code = 'RJ1' and commissioner_org_code = '15N' and rtt_part_type = 'Part_2'
             and treatment_function_code = 'C_100'"""
    ).fetchone()
    assert got == (53, "RTT-NOVEMBER-2019", 3, None, 2, None, None, None, None)
    long_only = " + ".join(f"count({c})" for c in RAW_BAND_COLUMNS[52:104] + ("gt_104_weeks",))
    assert con.execute(f"select {long_only} from raw_rtt.full_extract").fetchone()[0] == 0


def test_reloading_the_same_file_changes_nothing(con, tmp_path):
    folder = tmp_path / "rtt"
    write_file(folder, APRIL_2024)
    write_file(folder, MAY_2024, zipped=True)
    first = rtt.ingest_rtt_folder(con, folder, tmp_path / "quarantine", move_rejected=False)
    before = table(con), table(con, "select * from raw_rtt.file_loads")

    again = rtt.ingest_rtt_folder(con, folder, tmp_path / "quarantine", move_rejected=False)

    assert [r.action for r in first] == ["loaded", "loaded"]
    assert [r.action for r in again] == ["unchanged", "unchanged"]
    assert (table(con), table(con, "select * from raw_rtt.file_loads")) == before
    # load_rtt_file on its own is idempotent too
    rtt_file, frame = rtt.read_rtt_file(folder / file_name(APRIL_2024))
    assert rtt.load_rtt_file(con, rtt_file, frame).action == "unchanged"
    assert (table(con), table(con, "select * from raw_rtt.file_loads")) == before


def test_memory_is_handed_back_only_after_a_feed_read_a_file(con, tmp_path, monkeypatch):
    """A feed whose files are all known by their SHA-256 reads none of them, so the full garbage collection
    that hands a month's buffers back to the system is skipped; a feed that read one does it."""
    released = []
    monkeypatch.setattr(raw, "release_memory", lambda: released.append(True))
    folder = tmp_path / "rtt"
    write_file(folder, APRIL_2024)

    before = raw.files_read()
    assert [r.action for r in rtt.ingest_rtt_folder(con, folder, tmp_path / "q", move_rejected=False)] == ["loaded"]
    raw.release_memory_if_read(before)
    assert released == [True]

    before = raw.files_read()
    assert [r.action for r in rtt.ingest_rtt_folder(con, folder, tmp_path / "q", move_rejected=False)] == ["unchanged"]
    raw.release_memory_if_read(before)
    assert released == [True]


def test_revised_file_replaces_its_month_only_and_the_original_is_then_superseded(con, tmp_path):
    folder = tmp_path / "rtt"
    write_file(folder, APRIL_2024)
    write_file(folder, MAY_2024)
    rtt.ingest_rtt_folder(con, folder, tmp_path / "quarantine", move_rejected=False)
    may_before = table(con, "select * from raw_rtt.full_extract where period_month = date '2024-05-01'")

    revised = write_file(
        folder, APRIL_2024, rows=published_rows(APRIL_2024, details(APRIL_2024, bump=10)), revised=True
    )
    results = {r.file: r.action for r in rtt.ingest_rtt_folder(con, folder, tmp_path / "q", move_rejected=False)}

    # the original is still current when it is seen, then its revision replaces it
    assert results == {file_name(APRIL_2024): "unchanged", revised.name: "replaced", file_name(MAY_2024): "unchanged"}
    april = con.execute(
        "select count(*), count(distinct source_file), any_value(source_file), sum(total_all) "
        "from raw_rtt.full_extract where period_month = date '2024-04-01'"
    ).fetchone()
    original_total = sum(int(r["Total All"]) for r in published_rows(APRIL_2024, details(APRIL_2024)))
    assert april[:3] == (ROWS_PER_FILE, 1, revised.name) and april[3] > original_total
    assert table(con, "select * from raw_rtt.full_extract where period_month = date '2024-05-01'") == may_before
    loads = con.execute(
        "select source_file, action, is_current from raw_rtt.file_loads "
        "where period_month = date '2024-04-01' order by load_id"
    ).fetchall()
    assert loads == [(file_name(APRIL_2024), "loaded", False), (revised.name, "replaced", True)]

    # next run: the original, still in the folder, is recognised as superseded and nothing moves
    before = table(con), table(con, "select * from raw_rtt.file_loads")
    again = {r.file: r.action for r in rtt.ingest_rtt_folder(con, folder, tmp_path / "q", move_rejected=False)}
    assert again == {file_name(APRIL_2024): "superseded", revised.name: "unchanged", file_name(MAY_2024): "unchanged"}
    assert (table(con), table(con, "select * from raw_rtt.file_loads")) == before


def test_original_and_revision_in_one_folder_load_in_order(con, tmp_path):
    folder = tmp_path / "rtt"
    revised = write_file(folder, APRIL_2024, rows=published_rows(APRIL_2024, details(APRIL_2024, bump=1)), revised=True)
    original = write_file(folder, APRIL_2024)
    assert rtt.discover_rtt_files(folder) == [original, revised]

    results = rtt.ingest_rtt_folder(con, folder, tmp_path / "q", move_rejected=False)

    assert [(r.file, r.action) for r in results] == [(original.name, "loaded"), (revised.name, "replaced")]
    assert con.execute("select distinct source_file from raw_rtt.full_extract").fetchall() == [(revised.name,)]


def test_same_month_again_without_revised_is_rejected(con, tmp_path):
    folder = tmp_path / "rtt"
    first = write_file(folder, APRIL_2024)
    rtt.ingest_rtt_folder(con, folder, tmp_path / "quarantine", move_rejected=False)
    before = table(con), table(con, "select * from raw_rtt.file_loads")

    # the same month, re-published with other figures but not named -revised (and zipped, so other bytes)
    other = write_file(
        tmp_path / "later", APRIL_2024, rows=published_rows(APRIL_2024, details(APRIL_2024, 5)), zipped=True
    )
    # the same figures, merely zipped: harmless
    same = write_file(tmp_path / "later", APRIL_2024, zipped=True, name="copy-of-april.csv")
    results = {
        r.file: r for r in rtt.ingest_rtt_folder(con, tmp_path / "later", tmp_path / "quarantine", move_rejected=False)
    }

    rejected = results[f"{other.name}/{file_name(APRIL_2024)}"]
    assert rejected.action == "rejected"
    [violation] = rejected.violations
    assert violation.rule == "revision_named_revised"
    assert violation.message == (
        f"period already loaded from {first.name} with different figures; a re-publication must be named -revised"
    )
    assert results["copy-of-april.zip/copy-of-april.csv"].action == "unchanged"
    assert (table(con), table(con, "select * from raw_rtt.file_loads")) == before
    reason = (tmp_path / "quarantine" / "rtt" / f"{other.name}.reason.txt").read_text()
    assert "rule: revision_named_revised: period already loaded from" in reason
    assert same.exists() and other.exists()  # copied, not moved


# --------------------------------------------------------------------------------------------------------------
# The contract: one folder of broken files and one good file, ingested once


@dataclass(frozen=True)
class Case:
    """A broken file: how to write it, and a violation it must produce (row/column None = not checked)."""

    name: str
    month: date
    write: Callable[[Path, date], Path]
    rule: str
    row: int | None | Callable[[], int] = None
    column: str | None = None
    message: str = ""


def _rows(month: date) -> list[dict[str, str]]:
    return published_rows(month, details(month))


def _edit(change: Callable[[list[dict[str, str]]], None], header: Callable[[tuple], list] | None = None):
    def write(folder: Path, month: date) -> Path:
        rows = _rows(month)
        change(rows)
        layout = LAYOUTS[layout_for(month)]
        return write_file(folder, month, rows=rows, header=header(layout) if header else layout)

    return write


def _set(index: int, column: str, value: str):
    return _edit(lambda rows: rows[index].update({column: value}))


def _raw(data: bytes, *, zipped: bool = False):
    return lambda folder, month: write_file(folder, month, data=data, zipped=zipped)


def _swap(layout: tuple, a: str, b: str) -> list:
    header = list(layout)
    i, j = header.index(a), header.index(b)
    header[i], header[j] = header[j], header[i]
    return header


def _bigger_part_2a(rows: list[dict[str, str]]) -> None:
    """Part_2A above Part_2 for one pathway, with its C_999 kept consistent: only the Part_2A rule breaks."""
    for key in (dict(function="C_100"), dict(function=TOTAL_TREATMENT_FUNCTION)):
        row = rows[
            row_index(
                rows,
                **{
                    "Provider Org Code": "RJ1",
                    "Commissioner Org Code": "15N",
                    "RTT Part Type": "Part_2A",
                    "Treatment Function Code": key["function"],
                },
            )
        ]
        row["Gt 00 To 01 Weeks SUM 1"] = str(int(row["Gt 00 To 01 Weeks SUM 1"]) + 50)
        row["Total All"] = str(int(row["Total All"]) + 50)


def _c999_off(rows: list[dict[str, str]]) -> None:
    row = rows[
        row_index(
            rows,
            **{
                "Provider Org Code": "RYJ",
                "RTT Part Type": "Part_2",
                "Treatment Function Code": TOTAL_TREATMENT_FUNCTION,
            },
        )
    ]
    row["Gt 00 To 01 Weeks SUM 1"] = str(int(row["Gt 00 To 01 Weeks SUM 1"]) + 1)
    row["Total All"] = str(int(row["Total All"]) + 1)


def _truncated_zip(folder: Path, month: date) -> Path:
    path = write_file(folder, month, zipped=True)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _latin_1(folder: Path, month: date) -> Path:
    rows = _rows(month)
    rows[6]["Provider Org Name"] = "HÔPITAL DE JERSEY"
    text = csv_bytes(rows, LAYOUTS[layout_for(month)]).decode("utf-8")
    return write_file(folder, month, data=text.encode("latin-1"))


def _duplicate(rows: list[dict[str, str]]) -> None:
    rows.append(dict(rows[3]))


GOOD_MONTH = date(2024, 3, 1)
M = [date(2022, month, 1) for month in range(1, 13)] + [date(2023, month, 1) for month in range(1, 13)]
APR_2022 = M[3]
ROW_5 = 5 + 2  # line of rows[5]

CASES = [
    Case(
        "missing column",
        M[0],
        _edit(lambda rows: None, lambda h: [c for c in h if c != "Gt 05 To 06 Weeks SUM 1"]),
        "header_matches_layout",
        1,
        "Gt 05 To 06 Weeks SUM 1",
        "is missing",
    ),
    Case(
        "reordered columns",
        M[1],
        _edit(lambda rows: None, lambda h: _swap(h, "Provider Org Code", "Provider Org Name")),
        "header_matches_layout",
        1,
        None,
        "out of order",
    ),
    Case(
        "renamed column",
        M[2],
        _edit(lambda rows: None, lambda h: [c.replace("Total All", "Grand Total") for c in h]),
        "header_matches_layout",
        1,
        "Grand Total",
        "should be 'Total All'",
    ),
    Case(
        "53-band layout for a 105-band month",
        M[3],
        lambda folder, month: write_file(
            folder,
            month,
            rows=published_rows(date(2020, 1, 1), details(date(2020, 1, 1)), period=format_period(month)),
            header=LAYOUTS[53],
        ),
        "header_matches_layout",
        1,
        None,
        "53-band layout",
    ),
    Case(
        "non-numeric count",
        M[4],
        _set(5, "Gt 03 To 04 Weeks SUM 1", "n/a"),
        "count_is_whole_number",
        ROW_5,
        "Gt 03 To 04 Weeks SUM 1",
        "'n/a' is not a whole number",
    ),
    Case(
        "decimal count",
        M[5],
        _set(5, "Gt 00 To 01 Weeks SUM 1", "1.5"),
        "count_is_whole_number",
        ROW_5,
        "Gt 00 To 01 Weeks SUM 1",
        "'1.5'",
    ),
    Case(
        "negative count",
        M[6],
        _set(5, "Gt 07 To 08 Weeks SUM 1", "-3"),
        "count_not_negative",
        ROW_5,
        "Gt 07 To 08 Weeks SUM 1",
        "-3",
    ),
    Case("duplicate key", M[7], _edit(_duplicate), "unique_key", 3 + 2, None, "duplicate key RJ1, 15N, Part_1B, C_100"),
    Case(
        "Part_2A above Part_2",
        M[8],
        _edit(_bigger_part_2a),
        "part_2a_within_part_2",
        lambda: line_of(_rows(M[8]), **{"RTT Part Type": "Part_2A", "Treatment Function Code": "C_100"}),
        "Total All",
        "exceeds Part_2",
    ),
    Case(
        "C_999 differs from detail",
        M[9],
        _edit(_c999_off),
        "c999_equals_detail",
        lambda: line_of(
            _rows(M[9]),
            **{
                "Provider Org Code": "RYJ",
                "RTT Part Type": "Part_2",
                "Treatment Function Code": TOTAL_TREATMENT_FUNCTION,
            },
        ),
        "Gt 00 To 01 Weeks SUM 1",
        "add up to",
    ),
    Case("bands do not sum to Total", M[10], _set(0, "Total", "999"), "bands_sum_to_total", 2, "Total", "Total is 999"),
    Case(
        "unknown part type",
        M[11],
        _set(5, "RTT Part Type", "Part_4"),
        "known_part_type",
        ROW_5,
        "RTT Part Type",
        "'Part_4'",
    ),
    Case(
        "blank provider code",
        M[12],
        _set(5, "Provider Org Code", ""),
        "required_code_present",
        ROW_5,
        "Provider Org Code",
    ),
    Case(
        "unparseable period",
        M[13],
        _set(5, "Period", "RTT-Aprl-2023"),
        "period_parses",
        ROW_5,
        "Period",
        "'RTT-Aprl-2023'",
    ),
    Case(
        "a row for another month",
        M[14],
        _set(5, "Period", "RTT-May-2021"),
        "single_month",
        ROW_5,
        "Period",
        "is not March 2023, the month in its file name",
    ),
    Case(
        "future period",
        date(2099, 1, 1),
        lambda folder, month: write_file(folder, month),
        "period_not_in_future",
        2,
        "Period",
        "later than the current month",
    ),
    Case("empty file", M[15], _raw(b""), "not_empty", None, None, "the file is empty"),
    Case("header only", M[16], _raw(",".join(LAYOUTS[105]).encode() + b"\r\n"), "has_rows", 1, None, "no data rows"),
    Case(
        "HTML page",
        M[17],
        _raw(b"<!DOCTYPE html>\n<html><body><h1>Page not found</h1></body></html>\n"),
        "not_html",
        None,
        None,
        "HTML",
    ),
    Case("truncated zip", M[18], _truncated_zip, "readable_zip", None, None, "not a readable zip"),
    Case("not UTF-8", M[19], _latin_1, "utf8_encoding", 8, None, "not UTF-8"),
    Case(
        "ragged row",
        M[20],
        _raw(csv_bytes(_rows(M[20]), LAYOUTS[105]) + b"RTT-September-2023,Y63,cut short\r\n"),
        "row_field_count",
        ROWS_PER_FILE + 2,
        None,
        "3 fields",
    ),
]


@pytest.fixture(scope="module")
def broken_folder(tmp_path_factory):
    """Every broken file and one good file in one landing folder, ingested once."""
    base = tmp_path_factory.mktemp("contract")
    folder = base / "rtt"
    files = {case.name: case.write(folder, case.month) for case in CASES}
    good = write_file(folder, GOOD_MONTH, zipped=True)
    con = duckdb.connect(str(base / "build.duckdb"))
    results = rtt.ingest_rtt_folder(con, folder, base / "quarantine", move_rejected=False)
    by_path = {}
    for result in results:
        path = folder / result.file.split("/")[0]
        by_path[path] = result
    yield {"con": con, "files": files, "good": good, "results": by_path, "quarantine": base / "quarantine"}
    con.close()


#: The rules real publications break without a published figure being wrong (README "Severity policy"): the file
#: loads and the row is flagged. Read from the suite, so a rule whose severity changes moves between the tests.
WARN_RULES = {
    expectation["meta"]["rule"]
    for expectation in json.loads((EXPECTATIONS_DIR / "rtt_full_extract.json").read_text())["expectations"]
    if expectation["severity"] == "warning"
}
ERROR_CASES = [case for case in CASES if case.rule not in WARN_RULES]
WARN_CASES = [case for case in CASES if case.rule in WARN_RULES]


def test_the_row_level_rules_are_warnings_and_the_rest_errors():
    assert {
        "part_2a_within_part_2",
        "c999_equals_detail",
        "bands_sum_to_total",
        "total_all_is_total_plus_unknown",
    } == WARN_RULES


def _matching(case: Case, result) -> list[ContractViolation]:
    row = case.row() if callable(case.row) else case.row
    return [
        v
        for v in result.violations
        if v.rule == case.rule
        and case.message in v.message
        and (case.row is None or v.row == row)
        and (case.column is None or v.column == case.column)
    ]


@pytest.mark.parametrize("case", WARN_CASES, ids=[case.name for case in WARN_CASES])
def test_row_warning_is_named_and_the_file_loads(broken_folder, case):
    path = broken_folder["files"][case.name]
    result = broken_folder["results"][path]

    assert result.action == "loaded"
    matching = _matching(case, result)
    assert matching, "\n".join(map(str, result.violations))
    assert all(v.severity == "warn" for v in result.violations)
    assert not (broken_folder["quarantine"] / "rtt" / path.name).exists()
    con = broken_folder["con"]
    rows = con.execute("select count(*) from raw_rtt.full_extract where period_month = ?", [case.month]).fetchone()[0]
    assert rows == result.rows > 0


@pytest.mark.parametrize("case", ERROR_CASES, ids=[case.name for case in ERROR_CASES])
def test_contract_violation_is_named_and_quarantined(broken_folder, case):
    path = broken_folder["files"][case.name]
    result = broken_folder["results"][path]

    assert result.action == "rejected"
    matching = _matching(case, result)
    assert matching, "\n".join(map(str, result.violations))
    assert all(v.file.startswith(path.name) for v in result.violations)
    assert all(v.severity == "error" for v in matching)

    quarantined = broken_folder["quarantine"] / "rtt" / path.name
    assert quarantined.read_bytes() == path.read_bytes()  # copied: the landing file is left alone
    reason = (quarantined.parent / f"{path.name}.reason.txt").read_text()
    violation = matching[0]
    assert (
        f"file: {violation.file}, row: {'-' if violation.row is None else violation.row}, "
        f"column: {violation.column or '-'}, rule: {violation.rule}: {violation.message}"
    ) in reason
    assert "What to do" in reason

    con = broken_folder["con"]
    assert (
        con.execute("select count(*) from raw_rtt.full_extract where period_month = ?", [case.month]).fetchone()[0] == 0
    )
    assert con.execute("select count(*) from raw_rtt.file_loads where sha256 = ?", [result.sha256]).fetchone()[0] == 0


def test_good_file_next_to_broken_ones_still_loads(broken_folder):
    result = broken_folder["results"][broken_folder["good"]]
    assert (result.action, result.rows) == ("loaded", ROWS_PER_FILE)
    loaded = broken_folder["con"].execute("select distinct period_month from raw_rtt.full_extract").fetchall()
    assert sorted(loaded) == sorted([(GOOD_MONTH,)] + [(case.month,) for case in WARN_CASES])
    assert len(broken_folder["results"]) == len(CASES) + 1


def test_the_c999_violation_names_every_disagreeing_column(broken_folder):
    result = broken_folder["results"][broken_folder["files"]["C_999 differs from detail"]]
    columns = {v.column for v in result.violations if v.rule == "c999_equals_detail"}
    assert columns == {"Gt 00 To 01 Weeks SUM 1", "Total All"}


def test_many_bad_rows_are_counted_not_listed(tmp_path):
    month = date(2099, 1, 1)
    rtt_file, frame = rtt.read_rtt_file(write_file(tmp_path, month))
    violations = rtt.check_rtt_contract(rtt_file, frame)
    future = [v for v in violations if v.rule == "period_not_in_future"]
    assert len(future) == 21 and future[-1].message == f"… and {ROWS_PER_FILE - 20} more rows break this rule"
    assert rtt.check_rtt_contract(rtt_file, frame, today=date(2099, 2, 1)) == []


# --------------------------------------------------------------------------------------------------------------
# Smaller pieces


def test_good_file_passes_the_contract_and_reads_as_text_by_line(tmp_path):
    path = write_file(tmp_path, APRIL_2024)
    rtt_file, frame = rtt.read_rtt_file(path)
    assert rtt_file == rtt.RttFile(
        path, APRIL_2024, False, 105, hashlib.sha256(path.read_bytes()).hexdigest(), path.name, path.stat().st_size
    )
    assert tuple(frame.columns) == LAYOUTS[105] and frame.index[0] == 2 and len(frame) == ROWS_PER_FILE
    assert frame.loc[2, "Gt 01 To 02 Weeks SUM 1"] == ""
    assert rtt.check_rtt_contract(rtt_file, frame) == []


def test_byte_order_mark_and_unpublished_file_name(tmp_path):
    data = b"\xef\xbb\xbf" + csv_bytes(_rows(APRIL_2024), LAYOUTS[105])
    path = write_file(tmp_path, APRIL_2024, data=data, name="rtt april.csv")
    rtt_file, frame = rtt.read_rtt_file(path)
    assert (rtt_file.period_month, frame.columns[0]) == (APRIL_2024, "Period")
    assert rtt.check_rtt_contract(rtt_file, frame) == []


def test_discover_orders_months_and_revisions(tmp_path):
    names = [
        file_name(MAY_2024),
        file_name(APRIL_2024, revised=True),
        "notes.txt",
        file_name(APRIL_2024).replace(".csv", ".zip"),
        "zz-unnamed.csv",
    ]
    for name in names:
        (tmp_path / name).write_text("x")
    assert [p.name for p in rtt.discover_rtt_files(tmp_path)] == [
        file_name(APRIL_2024).replace(".csv", ".zip"),
        file_name(APRIL_2024, revised=True),
        file_name(MAY_2024),
        "zz-unnamed.csv",
    ]


def test_read_errors_are_contract_errors_naming_the_file(tmp_path):
    path = write_file(tmp_path, APRIL_2024, data=b"<html></html>")
    with pytest.raises(ContractError) as error:
        rtt.read_rtt_file(path)
    assert path.name in str(error.value) and error.value.violations[0].rule == "not_html"


def test_quarantine_moves_when_asked(tmp_path):
    path = write_file(tmp_path / "landing", APRIL_2024, data=b"")
    violation = ContractViolation(path.name, None, None, "not_empty", "the file is empty")
    target, moved = quarantine_file(path, tmp_path / "quarantine", "rtt", [violation], move=True)
    assert moved and not path.exists() and target == tmp_path / "quarantine" / "rtt" / path.name
    assert str(violation) in (target.parent / f"{path.name}.reason.txt").read_text()


def test_a_read_only_folder_keeps_its_file_and_the_bytes_are_not_read_again(con, tmp_path):
    """Issue 12, item 6: a share the warehouse may not change: quarantine copies, says where the original lies,
    and remembers the SHA-256, so the next run passes the file over (and still tells of it)."""
    folder = tmp_path / "share" / "rtt"
    path = write_file(folder, APRIL_2024, data=b"<!DOCTYPE html><html><body>Sign in</body></html>")
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):  # root ignores permission bits: make the move itself fail instead
            original_move = raw.shutil.move
            raw.shutil.move = lambda *_args, **_kwargs: (_ for _ in ()).throw(PermissionError("read-only share"))
        try:
            [first] = rtt.ingest_rtt_folder(con, folder, tmp_path / "q", move_rejected=True)
        finally:
            if os.access(folder, os.W_OK):
                raw.shutil.move = original_move
        assert first.action == "rejected" and path.exists()
        reason = (tmp_path / "q" / "rtt" / f"{path.name}.reason.txt").read_text()
        assert f"The original is still at {path.resolve()}" in reason and "not_html" in reason
        [again] = rtt.ingest_rtt_folder(con, folder, tmp_path / "q", move_rejected=True)
        assert again.action == "known_rejected" and "not read again" in again.message
        assert again.sha256 == first.sha256 and path.exists()
    finally:
        folder.chmod(0o755)


def test_corrected_bytes_under_the_same_name_are_read_again(con, tmp_path):
    folder = tmp_path / "rtt"
    path = write_file(folder, APRIL_2024, data=b"")
    [first] = rtt.ingest_rtt_folder(con, folder, tmp_path / "q", move_rejected=False)
    assert first.action == "rejected" and path.exists()
    write_file(folder, APRIL_2024)
    [second] = rtt.ingest_rtt_folder(con, folder, tmp_path / "q", move_rejected=False)
    assert second.action == "loaded"


def test_suite_states_every_rule_on_every_count_column():
    suite = json.loads((EXPECTATIONS_DIR / "rtt_full_extract.json").read_text())
    expectations = suite["expectations"]
    non_negative = {e["kwargs"]["column"] for e in expectations if e["meta"]["rule"] == "count_not_negative"}
    assert non_negative == {"check_negative_count_cells"}
    checked = {e["kwargs"].get("column") for e in expectations}
    assert set(rtt.CHECK_COLUMNS) <= checked
    assert all(e["meta"].get("rule") and e["meta"].get("description") for e in expectations)


def test_loaded_months_are_rechecked_once(con, tmp_path):
    write_file(tmp_path / "rtt", APRIL_2024)
    rtt.ingest_rtt_folder(con, tmp_path / "rtt", tmp_path / "q", move_rejected=False)
    assert rtt.check_loaded_months(con, run_id="r1") == {APRIL_2024: []}
    assert rtt.check_loaded_months(con, run_id="r2") == {}


@pytest.mark.parametrize(
    ("name", "month", "revised"),
    [
        ("20240430-RTT-April-2024-full-extract.zip", date(2024, 4, 1), False),
        ("20240430-RTT-April-2024-full-extract-revised.csv", date(2024, 4, 1), True),
        ("Full-CSV-data-file-Apr26-ZIP-3M-4Xy7Q.zip", date(2026, 4, 1), False),
        ("Full-CSV-data-file-Mar26-ZIP-3M-revised-9aBcD.zip", date(2026, 3, 1), True),
        ("Full-CSV-data-file-Dec25-revised.zip", date(2025, 12, 1), True),
        ("Commissioner-Apr26-XLSX-9M.zip", None, False),
        ("unrevised-Apr26.zip", None, False),
    ],
)
def test_file_names_as_we_and_as_nhs_england_write_them(name, month, revised):
    assert rtt.month_in_file_name(Path(name)) == month
    assert rtt.is_revision_name(Path(name)) is revised
