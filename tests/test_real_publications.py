"""NHS England's real April 2026 RTT full extract, unchanged, through ``collab-benefits run`` (issue 12).

The fixture is the publisher's CSV byte for byte (tests/fixtures/real/PROVENANCE.md). Every expected figure here
is computed independently from the file with the csv module, from the publisher's own pre-summed C_999 rows, not
from the warehouse's detail sums: the test fails if the pipeline quarantines the month, loses a row, adds C_999 to
the detail, or counts non-English commissioners (NONC) in England.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import subprocess
import sys
import zipfile
from collections import defaultdict
from datetime import date
from pathlib import Path

import duckdb
import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "real" / "rtt" / "20260430-RTT-April-2026-full-extract.zip"
CSV_SHA256 = "0486aca5891a96af4f15e2f4559795138baef08b0ed580602b8c3a7aec6a56e9"
APRIL_2026 = date(2026, 4, 1)


def _published_rows() -> tuple[list[str], list[list[str]]]:
    with zipfile.ZipFile(FIXTURE) as archive:
        [name] = archive.namelist()
        data = archive.read(name)
    assert hashlib.sha256(data).hexdigest() == CSV_SHA256, "the fixture is no longer the publisher's file"
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(reader)
    return header, list(reader)


@pytest.fixture(scope="module")
def published():
    """Independent figures from the file: per trust from its C_999 rows, and the geography totals."""
    header, rows = _published_rows()
    at = {column: i for i, column in enumerate(header)}
    bands = [column for column in header if column.startswith("Gt ")]
    within_18 = [f"Gt {w:02d} To {w + 1:02d} Weeks SUM 1" for w in range(18)]
    over_52 = [band for band in bands if int(band.split()[1]) >= 52]

    def count(row, column):
        return int(row[at[column]] or 0)

    trusts = defaultdict(lambda: [0, 0, 0])
    england = 0
    by_provider_icb, by_commissioner_icb = defaultdict(int), defaultdict(int)
    part_2_keys = set()
    stops: dict[str, dict[str, int]] = defaultdict(dict)  # trust → {part: completed pathways} of its C_999 rows
    for row in rows:
        part, function = row[at["RTT Part Type"]], row[at["Treatment Function Code"]]
        key = (row[at["Provider Org Code"]], row[at["Commissioner Org Code"]], function)
        if part == "Part_2":
            part_2_keys.add(key)
        if part in ("Part_1A", "Part_1B") and function == "C_999":
            parts = stops[row[at["Provider Org Code"]]]
            parts[part] = parts.get(part, 0) + count(row, "Total All")
        if part != "Part_2" or function != "C_999":
            continue
        trust = trusts[row[at["Provider Org Code"]]]
        trust[0] += count(row, "Total All")
        trust[1] += sum(count(row, band) for band in within_18)
        trust[2] += sum(count(row, band) for band in over_52)
        if row[at["Commissioner Org Code"]] != "NONC":
            england += count(row, "Total All")
        by_provider_icb[row[at["Provider Parent Org Code"]]] += count(row, "Total All")
        if row[at["Commissioner Parent Org Code"]]:
            by_commissioner_icb[row[at["Commissioner Parent Org Code"]]] += count(row, "Total All")
    part_2a_without_part_2 = sorted(
        index + 2  # line number: the header is line 1
        for index, row in enumerate(rows)
        if row[at["RTT Part Type"]] == "Part_2A"
        and count(row, "Total All") > 0
        and (row[at["Provider Org Code"]], row[at["Commissioner Org Code"]], row[at["Treatment Function Code"]])
        not in part_2_keys
    )
    return {
        "trusts": {code: tuple(values) for code, values in trusts.items()},
        "england": england,
        "by_provider_icb": dict(by_provider_icb),
        "by_commissioner_icb": dict(by_commissioner_icb),
        "flagged_lines": part_2a_without_part_2,
        "clock_stops": {code: dict(parts) for code, parts in stops.items()},
    }


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """``collab-benefits run`` on a folder holding only the real extract, as a user would run it."""
    base = tmp_path_factory.mktemp("real")
    sources = base / "sources"
    (sources / "rtt").mkdir(parents=True)
    copy = sources / "rtt" / FIXTURE.name
    shutil.copy2(FIXTURE, copy)
    warehouse = base / "warehouse"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestration.cli",
            "run",
            "--sources-dir",
            str(sources),
            "--warehouse-dir",
            str(warehouse),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    return {"result": result, "copy": copy, "warehouse": warehouse}


def _serving(real_run) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(real_run["warehouse"] / "serving.duckdb"), read_only=True)


def test_the_real_month_loads_unchanged_and_is_published(real_run):
    result = real_run["result"]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "Published the serving database" in result.stdout
    assert real_run["copy"].read_bytes() == FIXTURE.read_bytes()  # the user's file is where it was, unchanged
    with _serving(real_run) as con:
        months = con.execute("select distinct period_month from fct_rtt_provider_month").fetchall()
    assert months == [(APRIL_2026,)]


def test_the_run_names_the_five_flagged_rows_and_their_rule(real_run, published):
    assert published["flagged_lines"] and len(published["flagged_lines"]) == 5
    out = real_run["result"].stdout
    assert "part_2a_within_part_2: 5 row(s)" in out
    for line in published["flagged_lines"]:
        assert f"row {line}, column 'Total All': Part_2A Total All 1 exceeds Part_2 Total All 0" in out
    with _serving(real_run) as con:
        [(observed,)] = con.execute(
            "select observed_value from fct_data_quality where check_name = 'row_flagged:part_2a_within_part_2'"
        ).fetchall()
        flagged = dict(
            con.execute(
                "select org_code, flagged_rows from fct_rtt_provider_month "
                "where treatment_function_code = 'ALL' and flagged_rows > 0"
            ).fetchall()
        )
    assert observed == 5
    assert flagged == {"RTR": 4, "RXR": 1}


def test_every_trusts_waiting_list_18_and_52_weeks_equal_the_publishers_c999_rows(real_run, published):
    with _serving(real_run) as con:
        served = {
            code: (waiting, within, over)
            for code, waiting, within, over in con.execute(
                "select org_code, incomplete_pathways, within_18_weeks, over_52_weeks from fct_rtt_provider_month "
                "where treatment_function_code = 'ALL'"
            ).fetchall()
        }
    expected = {code: values for code, values in published["trusts"].items()}
    assert len(expected) > 400
    # a trust that published no Part_2 row (e.g. NX505: completed pathways only) has no waiting list, not 0
    without_list = {code for code, values in served.items() if values == (None, None, None)}
    assert without_list and not without_list & set(expected)
    assert {code: values for code, values in served.items() if code not in without_list} == expected


def test_england_is_nhs_englands_method_nonc_left_out(real_run, published):
    with _serving(real_run) as con:
        england = con.execute(
            "select attribution_basis, icb_basis, incomplete_pathways, includes_non_english_commissioners "
            "from fct_rtt_geography_month where geography_level = 'england' order by 1, 2"
        ).fetchall()
        nonc = con.execute(
            "select sum(incomplete_pathways) from fct_rtt_geography_month where geography_code = 'NONC' "
            "and attribution_basis = 'commissioner' and icb_basis = 'as_was'"
        ).fetchone()[0]
    assert published["england"] == 7_093_502
    assert {row[2] for row in england} == {published["england"]} and len(england) == 4
    assert not any(row[3] for row in england)
    assert nonc == 30_478


def test_icb_totals_on_both_bases_equal_the_file(real_run, published):
    with _serving(real_run) as con:
        rows = con.execute(
            "select attribution_basis, geography_code, incomplete_pathways from fct_rtt_geography_month "
            "where geography_level = 'icb' and icb_basis = 'as_was'"
        ).fetchall()
    by_provider = {code: value for basis, code, value in rows if basis == "provider"}
    by_commissioner = {code: value for basis, code, value in rows if basis == "commissioner"}
    assert by_provider == published["by_provider_icb"]
    assert by_commissioner == published["by_commissioner_icb"]
    assert len(by_provider) == 36 and {"D7T5G", "S0E4D", "S1Y5D", "S9B9J", "T6Y0W", "Z9B2Z"} <= set(by_provider)


def test_every_trusts_clock_stops_are_its_admitted_and_non_admitted_completed_pathways(real_run, published):
    """Clock stops = Part_1A + Part_1B (Total All of the trust's C_999 rows). A trust publishes no rows of a part it
    completed no pathway of: that part counts as none (RXG, a mental health trust, publishes Part_1B only), and the
    collaborative's clock stops are its members' sum."""
    with _serving(real_run) as con:
        served = dict(
            con.execute(
                "select org_code, clock_stops from fct_rtt_provider_month where treatment_function_code = 'ALL'"
            ).fetchall()
        )
        collaborative = con.execute(
            "select value from fct_collaborative_metric_month where collaborative_code = 'WYMHLDA' "
            "and org_code = 'ALL' and membership_basis = 'as_is' and metric_code = 'rtt_clock_stops'"
        ).fetchone()
        members = {
            row[0]
            for row in con.execute(
                "select org_code from fct_collaborative_metric_month where collaborative_code = 'WYMHLDA' "
                "and org_code <> 'ALL' and membership_basis = 'as_is' and metric_code = 'rtt_clock_stops'"
            ).fetchall()
        }
    expected = {code: sum(parts.values()) for code, parts in published["clock_stops"].items()}
    one_part_only = {code for code, parts in published["clock_stops"].items() if len(parts) == 1}
    assert "RXG" in one_part_only and set(published["clock_stops"]["RXG"]) == {"Part_1B"}
    assert {code: served[code] for code in expected} == expected
    assert {"RXG", "TAD"} <= members
    assert collaborative == (sum(expected.get(code, 0) for code in members),)
