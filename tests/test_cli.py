"""`collab-benefits run` as a user runs it: real folders, real files, the exit codes of SPEC §10."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.rtt_files import rtt_row, write_rtt_file


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args], capture_output=True, text=True, timeout=600, env=env
    )


def as_a_user() -> dict[str, str]:
    """The environment of a user's run: without the test suite's setting that adds dbt's unit tests to a build."""
    return {name: value for name, value in os.environ.items() if name != "COLLAB_DBT_UNIT_TESTS"}


def test_usage_errors_exit_2(tmp_path):
    assert run_cli("run", "--no-such-option").returncode == 2
    missing = run_cli("run", "--sources-dir", str(tmp_path / "nowhere"), "--warehouse-dir", str(tmp_path / "wh"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr


def test_only_the_command_s_own_process_freezes_its_heap(tmp_path):
    """The command ends without the interpreter's last walk over every object (``gc.freeze``: 2.3 s of the real
    month's run); a caller of ``main`` in its own process (this test) keeps its garbage collector untouched."""
    import gc

    from orchestration import cli

    arguments = ["run", "--sources-dir", str(tmp_path / "nowhere"), "--warehouse-dir", str(tmp_path / "wh")]
    frozen = gc.get_freeze_count()
    assert cli.main(arguments) == 2
    assert gc.get_freeze_count() == frozen
    probe = (
        "import gc, sys\nfrom orchestration.cli import console_main\n"
        "code = console_main(sys.argv[1:])\nprint(code, gc.get_freeze_count() > 0)"
    )
    result = subprocess.run([sys.executable, "-c", probe, *arguments], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["2", "True"], result.stdout + result.stderr


def test_a_source_with_no_files_is_not_an_error(tmp_path):
    (tmp_path / "sources" / "rtt").mkdir(parents=True)
    result = run_cli("run", "--sources-dir", str(tmp_path / "sources"), "--warehouse-dir", str(tmp_path / "wh"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "wh" / "serving.duckdb").exists()


@pytest.fixture(scope="module")
def landing_run(tmp_path_factory):
    """A sources folder with one good file, one with a negative count (an error: the file is quarantined; a
    C_999 row that disagrees with its detail alone would only be a warning), and a June file of another trust whose
    Part_2A (8) exceeds its Part_2 (5): a genuine publication's odd row, a warning (README "Severity policy"), so
    the file loads and the row is flagged."""
    root = tmp_path_factory.mktemp("landing")
    rtt = root / "sources" / "rtt"
    write_rtt_file(rtt, date(2024, 4, 1), [rtt_row("RR8", "15F", "Part_2", "C_100", {0: 10, 60: 3})])
    bad = write_rtt_file(rtt, date(2024, 5, 1), [rtt_row("RR8", "15F", "Part_2", "C_100", {0: 12})], zipped=False)
    lines = bad.read_text().splitlines()
    c999 = next(i for i, line in enumerate(lines) if ",C_100," in line and ",Part_2," in line)
    lines[c999] = lines[c999].replace(",12,", ",-12,", 1)
    bad.write_text("\r\n".join(lines) + "\r\n")
    part_2a_above_part_2 = [
        rtt_row("RCF", "15F", "Part_2", "C_100", {0: 5}),
        rtt_row("RCF", "15F", "Part_2A", "C_100", {0: 8}),
    ]
    write_rtt_file(rtt, date(2024, 6, 1), part_2a_above_part_2, zipped=False)
    result = run_cli(
        "run", "--sources-dir", str(root / "sources"), "--warehouse-dir", str(root / "wh"), env=as_a_user()
    )
    return root, bad, c999 + 1, result


def _dbt_kinds(warehouse: Path) -> dict[str, set[str]]:
    """{kind of dbt node: its statuses} in the warehouse's last dbt build."""
    results = json.loads((warehouse / "dbt_target" / "run_results.json").read_text(encoding="utf-8"))
    kinds: dict[str, set[str]] = {}
    for result in results["results"]:
        kinds.setdefault(result["unique_id"].split(".", 1)[0], set()).add(result["status"])
    return kinds


def test_a_user_s_build_leaves_out_dbt_s_unit_tests_and_says_so(landing_run):
    root = landing_run[0]
    kinds = _dbt_kinds(root / "wh")
    assert "unit_test" not in kinds, kinds
    assert kinds["model"] == {"success"} and kinds["test"] == {"pass"}, kinds
    assert "dbt's unit tests are left out of a user's build" in (root / "wh" / "logs" / "dbt.log").read_text()


def test_a_new_warehouse_s_first_build_reuses_the_project_s_parse(landing_run):
    """dbt starts in the warehouse and finds its build database there by a relative name, so the project's partial
    parse (made with a build's --vars and that name) is valid for a new warehouse: dbt re-reads only the seeds
    that dagster-dbt's preparer marks changed instead of parsing 59 models and 309 tests again."""
    root = landing_run[0]
    debug_log = (root / "wh" / "dbt_target" / "dbt.log").read_text(encoding="utf-8")
    assert "Unable to do partial parsing" not in debug_log
    assert "Partial parsing enabled: 0 files deleted, 0 files added" in debug_log
    assert (root / "wh" / "build.duckdb").exists()
    # the relative name is resolved in the warehouse, never in the project folder dbt used to start in
    assert not list((Path(__file__).resolve().parents[1] / "dbt_project").glob("*.duckdb"))


def test_the_test_suite_s_builds_run_dbt_s_unit_tests_and_they_pass(bundled_run):
    warehouse = bundled_run.serving_db.parent
    assert _dbt_kinds(warehouse).get("unit_test") == {"pass"}
    results = json.loads((warehouse / "dbt_target" / "run_results.json").read_text(encoding="utf-8"))
    ran = {result["unique_id"] for result in results["results"] if result["unique_id"].startswith("unit_test.")}
    manifest = json.loads((warehouse / "dbt_target" / "manifest.json").read_text(encoding="utf-8"))
    assert ran == set(manifest["unit_tests"]) and len(ran) >= 8, sorted(ran)


def _warned_file(root: Path) -> tuple[Path, int]:
    """The landing run's June file and the line of its Part_2A row."""
    warned = next((root / "sources" / "rtt").glob("*June-2024*"))
    return warned, 1 + next(i for i, text in enumerate(warned.read_text().splitlines()) if ",Part_2A," in text)


def test_a_run_in_a_log_shows_each_phase_and_file_in_plain_lines(landing_run):
    root, bad, _, result = landing_run
    warned, _ = _warned_file(root)
    assert result.returncode == 1, result.stdout + result.stderr  # the quarantined file
    out = result.stdout
    assert "\x1b" not in out + result.stderr, "escape codes in a log that is not a terminal"
    assert "RTT waiting times (rtt): read, check and load files ..." in out
    april = next((root / "sources" / "rtt").glob("*April*"))  # a zip: named with the CSV inside it
    assert f"  rtt/{april.name}/{april.stem}.csv  2024-04  loaded  2 rows\n" in out
    assert f"  rtt/{bad.name}  2024-05  rejected  " in out
    # the C_100 row and its C_999 total are both flagged
    assert f"  rtt/{warned.name}  2024-06  loaded  4 rows  (2 flagged: part_2a_within_part_2)\n" in out
    assert "  done: 3 files: 2 loaded, 1 rejected" in out
    for phase in ("dbt build: seeds, models and their tests ...", "Publish the serving database ..."):
        assert phase in out
    assert "  done: PASS=" in out  # dbt's own counts, one line


def test_dbt_and_dagster_talk_to_log_files_not_the_console(landing_run):
    root, _, _, result = landing_run
    logs = root / "wh" / "logs"
    assert " START sql " not in result.stdout and "Running with dbt" not in result.stdout
    assert " - dagster - " not in result.stdout + result.stderr and "BetaWarning" not in result.stderr
    dbt_log = (logs / "dbt.log").read_text()
    assert "Running with dbt" in dbt_log and " START sql " in dbt_log and "Done. PASS=" in dbt_log
    assert "\x1b" not in dbt_log
    assert "STEP_SUCCESS" in (logs / "dagster.log").read_text()
    assert (logs / "pipeline.log").exists()
    assert f"Logs: dbt's output {logs / 'dbt.log'}, Dagster's events {logs / 'dagster.log'}" in result.stdout
    assert len(result.stdout.splitlines()) < 80


def test_warnings_are_grouped_by_rule_after_the_files(landing_run):
    root, _, _, result = landing_run
    warned, line = _warned_file(root)
    out = result.stdout
    heading = "Warnings (rows flagged in genuine publications, loaded and counted in fct_data_quality):"
    assert out.index("Files that failed their contract and were quarantined") < out.index(heading)
    assert f"  rtt part_2a_within_part_2: 2 row(s) in {warned.name}" in out
    assert f"    {warned.name}: row {line}, column 'Total All': Part_2A Total All 8 exceeds Part_2 Total All 5" in out
    con = duckdb.connect(str(root / "wh" / "serving.duckdb"), read_only=True)
    try:
        months = con.execute(
            "select period_month from fct_rtt_provider_month where org_code = 'RCF' and treatment_function_code = 'ALL'"
        ).fetchall()
        flagged = con.execute(
            "select observed_value from fct_data_quality where check_name = 'row_flagged:part_2a_within_part_2'"
        ).fetchall()
    finally:
        con.close()
    assert months == [(date(2024, 6, 1),)]  # loaded and published
    assert flagged == [(2,)]


def test_quiet_prints_only_the_summary_and_a_dbt_failure_names_its_log(tmp_path):
    """dbt fails (a raw table of the wrong shape): the console shows dbt's failing lines and where its log is."""
    (tmp_path / "sources" / "rtt").mkdir(parents=True)
    warehouse = tmp_path / "wh"
    warehouse.mkdir()
    con = duckdb.connect(str(warehouse / "build.duckdb"))
    con.execute("create schema raw_oap")
    con.execute("create table raw_oap.monthly_statistics (x integer)")
    con.close()
    result = run_cli("run", "--quiet", "--sources-dir", str(tmp_path / "sources"), "--warehouse-dir", str(warehouse))
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert " ..." not in out and "done:" not in out  # no progress
    assert "Step failed: warehouse_dbt_models" in out
    assert f"  dbt build failed; dbt's output: {warehouse / 'logs' / 'dbt.log'}" in out
    assert "Failure in test source_not_null_columns_oap_monthly_statistics_" in out
    assert 'Binder Error: Referenced column "period_month" not found' in out
    assert "Nothing was published" in out
    assert "Failure in test" in (warehouse / "logs" / "dbt.log").read_text()


def test_a_failed_dbt_test_shows_what_it_found(tmp_path):
    """A raw row with no suppression flag breaks the source's not-null test: dbt says only "Got 1 result"; the
    summary names the column and how many rows lack it, under the failure's line, and nothing is published."""
    from orchestration.sources import oap

    (tmp_path / "sources" / "rtt").mkdir(parents=True)
    warehouse = tmp_path / "wh"
    warehouse.mkdir()
    con = duckdb.connect(str(warehouse / "build.duckdb"))
    con.execute("create schema raw_oap")
    oap.ensure_raw_tables(con)
    con.execute(
        "insert into raw_oap.monthly_statistics (period_month, is_suppressed) "
        "values (date '2024-04-01', null), (date '2024-04-01', null), (date '2024-04-01', false)"
    )
    con.close()
    result = run_cli("run", "--quiet", "--sources-dir", str(tmp_path / "sources"), "--warehouse-dir", str(warehouse))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    failure = next(i for i, line in enumerate(lines) if "Failure in test source_not_null_columns_oap_monthly_" in line)
    assert lines[failure + 1] == "    found: null_column is_suppressed, null_rows 2", lines[failure - 2 : failure + 6]
    assert "Nothing was published" in result.stdout
    assert not (warehouse / "serving.duckdb").exists()


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


def test_a_run_with_nothing_new_answers_at_once_and_says_so(tmp_path, monkeypatch):
    """Issue 14, item 2: nothing changed since a run that published everything, so nothing is read, built or
    checked again, and the serving database is left exactly as it was. Any change makes the next run a full one."""
    from orchestration import nothing_new

    sources, warehouse = tmp_path / "sources", tmp_path / "wh"
    month = write_rtt_file(sources / "rtt", date(2024, 4, 1), [rtt_row("RR8", "15F", "Part_2", "C_100", {0: 10})])
    first = run_cli("run", "--quiet", "--sources-dir", str(sources), "--warehouse-dir", str(warehouse))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Nothing new" not in first.stdout
    serving = warehouse / "serving.duckdb"
    published = serving.stat().st_mtime_ns

    again = run_cli("run", "--sources-dir", str(sources), "--warehouse-dir", str(warehouse))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Nothing new: 1 file under the sources folder, all as the run of" in again.stdout
    assert "dbt build" not in again.stdout and "Publish" not in again.stdout
    assert serving.stat().st_mtime_ns == published

    # what makes the next run a full one, asked directly
    assert nothing_new.unchanged_since_last_run(sources, warehouse) is not None
    month.touch()  # a newer mtime, the same bytes: still nothing new
    assert nothing_new.unchanged_since_last_run(sources, warehouse) is not None
    monkeypatch.setenv("COLLAB_DUCKDB_MEMORY_LIMIT", "1GB")  # a setting that changes a run
    assert nothing_new.unchanged_since_last_run(sources, warehouse) is None
    monkeypatch.delenv("COLLAB_DUCKDB_MEMORY_LIMIT")
    monkeypatch.setattr(nothing_new, "built_with_fingerprint", lambda: "other code")
    assert nothing_new.unchanged_since_last_run(sources, warehouse) is None
    monkeypatch.undo()
    new_month = write_rtt_file(sources / "rtt", date(2024, 5, 1), [rtt_row("RR8", "15F", "Part_2", "C_100", {0: 9})])
    assert nothing_new.unchanged_since_last_run(sources, warehouse) is None
    new_month.unlink()
    assert nothing_new.unchanged_since_last_run(sources, warehouse) is not None

    # --force runs everything; a run that does not end with exit 0 leaves no record, so the next one is full
    forced = run_cli("run", "--quiet", "--force", "--sources-dir", str(sources), "--warehouse-dir", str(warehouse))
    assert forced.returncode == 0 and "Nothing new" not in forced.stdout
    assert serving.stat().st_mtime_ns != published
    serving.unlink()
    assert nothing_new.unchanged_since_last_run(sources, warehouse) is None


def test_a_run_records_the_files_as_it_started_hashing_only_those_that_changed(tmp_path, monkeypatch):
    """What the next run compares with is what this run read: the files as it started, not as they are when it
    ends (a file replaced meanwhile makes the next run a full one). A file whose size, mtime and inode are as
    recorded keeps its SHA-256, so an update of a large history hashes only its new files."""
    from orchestration import hashing, nothing_new, raw

    sources, warehouse = tmp_path / "sources", tmp_path / "wh"
    (sources / "rtt").mkdir(parents=True)
    warehouse.mkdir()
    held, new = sources / "rtt" / "held.csv", sources / "rtt" / "new.csv"
    held.write_text("a,b\n1,2\n")
    serving = warehouse / "serving.duckdb"
    serving.write_bytes(b"published")

    hashed = []
    real = hashing._digest
    monkeypatch.setattr(hashing, "_digest", lambda path: hashed.append(path.name) or real(path))

    files = nothing_new.forget(warehouse, sources)  # no earlier run: every file is hashed
    assert hashed == ["held.csv"]
    nothing_new.remember(sources, warehouse, serving, nothing_new.settings(), files)
    new.write_text("a,b\n3,4\n")
    hashed.clear()
    files = nothing_new.forget(warehouse, sources)  # the next run starts: only the new file is hashed
    assert hashed == ["new.csv"] and sorted(files) == ["rtt/held.csv", "rtt/new.csv"]
    assert not (warehouse / nothing_new.RECORD_NAME).exists()

    new.write_text("a,b\n3,45\n")  # replaced while the run reads the old bytes
    nothing_new.remember(sources, warehouse, serving, nothing_new.settings(), files)
    hashed.clear()
    assert nothing_new.unchanged_since_last_run(sources, warehouse) is None
    files = nothing_new.forget(warehouse, sources)
    assert hashed == ["new.csv"]  # its new bytes, once: to say something is new, then to list it
    nothing_new.remember(sources, warehouse, serving, nothing_new.settings(), files)
    assert nothing_new.unchanged_since_last_run(sources, warehouse) is not None

    # the feed's gate asks for the hash the run's start took: the file is not read again for it
    hashed.clear()
    con = duckdb.connect(str(tmp_path / "gate.duckdb"))
    raw.ensure_file_loads(con, "raw_rtt")
    assert raw.known_file_sha256(con, "raw_rtt", new) == files["rtt/new.csv"][3]
    con.close()
    assert hashed == []


def test_a_run_that_fails_leaves_nothing_to_compare_with(landing_run):
    root, _, _, result = landing_run
    assert result.returncode == 1
    assert not (root / "wh" / ".last_run.json").exists()


def test_a_run_says_so_before_hashing_many_files_no_earlier_run_recorded(tmp_path, monkeypatch, capsys):
    """A first run over a large history hashes its files before anything else shows (5.5 GB at 60 national months):
    it says how many first, once, whichever of the comparison and the run's record hashes them."""
    from orchestration import cli, nothing_new

    sources, warehouse = tmp_path / "sources", tmp_path / "wh"
    (sources / "rtt").mkdir(parents=True)
    warehouse.mkdir()
    (sources / "rtt" / "a.csv").write_text("a,b\n1,2\n")
    (sources / "rtt" / "b.csv").write_text("a,b\n3,4\n")
    told: list[tuple[int, int]] = []
    monkeypatch.setattr(nothing_new, "ANNOUNCE_BYTES", 16)
    files = nothing_new.forget(warehouse, sources, announce=lambda count, size: told.append((count, size)))
    assert told == [(2, 16)]
    serving = warehouse / "serving.duckdb"
    serving.write_bytes(b"published")
    nothing_new.remember(sources, warehouse, serving, nothing_new.settings(), files)
    (sources / "rtt" / "c.csv").write_text("a,b\n5,6\n")  # 8 bytes to hash: under the threshold
    assert nothing_new.unchanged_since_last_run(sources, warehouse, announce=told.append) is None
    assert told == [(2, 16)]

    notice = cli._HashingNotice()
    notice(61, 5_400_000_000)
    notice(61, 5_400_000_000)
    assert capsys.readouterr().out.splitlines() == [
        "Noting 61 files (5.4 GB) that no earlier run recorded: their SHA-256, so that the next run knows them ..."
    ]
