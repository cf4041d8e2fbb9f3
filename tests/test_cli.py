"""`collab-benefits run` as a user runs it: real folders, real files, the exit codes of SPEC §10."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.rtt_files import rtt_row, write_rtt_file


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_usage_errors_exit_2(tmp_path):
    assert run_cli("run", "--no-such-option").returncode == 2
    missing = run_cli("run", "--sources-dir", str(tmp_path / "nowhere"), "--warehouse-dir", str(tmp_path / "wh"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr


def test_a_source_with_no_files_is_not_an_error(tmp_path):
    (tmp_path / "sources" / "rtt").mkdir(parents=True)
    result = run_cli("run", "--sources-dir", str(tmp_path / "sources"), "--warehouse-dir", str(tmp_path / "wh"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "wh" / "serving.duckdb").exists()


@pytest.fixture(scope="module")
def landing_run(tmp_path_factory):
    """A sources folder with one good file and one with a negative count (an error: the file is quarantined; a
    C_999 row that disagrees with its detail alone would only be a warning)."""
    root = tmp_path_factory.mktemp("landing")
    rtt = root / "sources" / "rtt"
    write_rtt_file(rtt, date(2024, 4, 1), [rtt_row("RR8", "15F", "Part_2", "C_100", {0: 10, 60: 3})])
    bad = write_rtt_file(rtt, date(2024, 5, 1), [rtt_row("RR8", "15F", "Part_2", "C_100", {0: 12})], zipped=False)
    lines = bad.read_text().splitlines()
    c999 = next(i for i, line in enumerate(lines) if ",C_100," in line and ",Part_2," in line)
    lines[c999] = lines[c999].replace(",12,", ",-12,", 1)
    bad.write_text("\r\n".join(lines) + "\r\n")
    result = run_cli("run", "--sources-dir", str(root / "sources"), "--warehouse-dir", str(root / "wh"))
    return root, bad, c999 + 1, result


def test_a_bad_file_exits_1_and_says_file_row_column_and_rule(landing_run):
    root, bad, line, result = landing_run
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"rtt/{bad.name}: row {line}, column 'Gt 00 To 01 Weeks SUM 1': count_not_negative" in result.stdout


def test_the_bad_file_is_quarantined_with_a_reason_and_the_good_one_published(landing_run):
    root, bad, line, _ = landing_run
    quarantined = root / "wh" / "quarantine" / "rtt" / bad.name
    # copied, not moved: a folder given with --sources-dir is the user's, and the reason file says where it lies
    assert quarantined.read_bytes() == bad.read_bytes()
    reason = (quarantined.parent / f"{bad.name}.reason.txt").read_text()
    assert f"row: {line}" in reason and "count_not_negative" in reason
    assert f"The original is still at {bad.resolve()}" in reason
    con = duckdb.connect(str(root / "wh" / "serving.duckdb"), read_only=True)
    try:
        months = con.execute(
            "select period_month, incomplete_pathways, over_52_weeks from fct_rtt_provider_month "
            "where org_code = 'RR8' and treatment_function_code = 'ALL'"
        ).fetchall()
    finally:
        con.close()
    assert months == [(date(2024, 4, 1), 13, 3)]


def test_run_prints_where_the_serving_database_is(landing_run):
    root, _, _, result = landing_run
    assert f"Published the serving database: {Path(root / 'wh' / 'serving.duckdb')}" in result.stdout


def test_the_rejection_is_recorded_in_the_data_quality_mart(landing_run):
    root, bad, _, _ = landing_run
    con = duckdb.connect(str(root / "wh" / "serving.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "select source, check_name, success, details from fct_data_quality where check_name like 'rejected_file:%'"
        ).fetchall()
    finally:
        con.close()
    assert rows and all(source == "rtt" and not success for source, _, success, _ in rows)
    assert any(name == "rejected_file:count_not_negative" and bad.name in details for _, name, _, details in rows)
