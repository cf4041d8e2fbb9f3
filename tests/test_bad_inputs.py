"""The bad-input corpus through ``collab-benefits run`` (issue 5): every defect, end to end, with the dashboards safe.

A landing folder with three good months of every feed is run once (the baseline). Then every corpus file of
:mod:`tests.bad_inputs` is dropped in beside the good files, with one good file of a month not yet loaded, and the
CLI runs again. For each file that breaks its contract the second run must name its file, row, column and rule,
move it to ``WAREHOUSE/quarantine/<feed>/`` with a reason file, load nothing from it, still load the other files,
exit 1, and leave every serving row the file would have touched as the baseline had it. Patient-level rows with a
problem (a spell discharged before its admission, a provider outside the reference data) are loaded, flagged and
left out of the measures instead (SPEC §3.3, issue 3): the run names them the same way and nothing from them
reaches a mart.

Two runs of the CLI on a small folder keep this to about a minute and a half.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest

from orchestration import cli
from tests.bad_inputs import (
    BASELINE_MONTHS,
    CASES,
    GOOD_EXTRA,
    OUTCOMES,
    BadInput,
    sample_path,
    write_corpus,
    write_good_extra,
    write_landing_folder,
)

RAW_TABLES = {
    "rtt": "raw_rtt.full_extract",
    "oap": "raw_oap.monthly_statistics",
    "los_mh": "raw_los_mh.mhs501_hospital_spells",
    "los_acute": "raw_los_acute.apc_episodes",
}
#: The serving tables that hold one feed's figures month by month, and how to pick that feed's rows.
MONTHLY_TABLES = {
    "rtt": [("fct_rtt_provider_month", "true")],
    "oap": [("fct_oap_provider_month", "true"), ("fct_oap_england_month", "true")],
    "los_mh": [
        ("fct_los_provider_month", "setting = 'mental_health'"),
        ("fct_los_inequality_month", "setting = 'mental_health'"),
    ],
    "los_acute": [
        ("fct_los_provider_month", "setting = 'acute'"),
        ("fct_los_inequality_month", "setting = 'acute'"),
    ],
}
METRIC_PREFIX = {"rtt": "rtt_", "oap": "oap_", "los_mh": "los_", "los_acute": "los_"}


@dataclass
class CorpusRun:
    root: Path
    sources: Path
    warehouse: Path
    baseline_serving: Path
    baseline_exit: int
    baseline_output: str
    exit_code: int
    output: str
    cases: dict[str, BadInput]
    written: dict[str, bytes]
    sha256: dict[str, str]
    good_extra: Path

    @property
    def serving(self) -> Path:
        return self.warehouse / "serving.duckdb"

    @property
    def build(self) -> Path:
        return self.warehouse / "build.duckdb"


def _run_cli(sources: Path, warehouse: Path) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["run", "--sources-dir", str(sources), "--warehouse-dir", str(warehouse)])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def corpus_run(bundled_samples, tmp_path_factory) -> CorpusRun:
    root = tmp_path_factory.mktemp("bad_inputs")
    sources, warehouse = root / "landing", root / "warehouse"
    write_landing_folder(bundled_samples, sources)
    # a landing folder the warehouse owns: rejected files are moved out of it (elsewhere they are copied)
    patch = pytest.MonkeyPatch()
    patch.setenv("COLLAB_QUARANTINE_MOVES_FILES", "1")
    cases = {case.name: case for case in write_corpus(bundled_samples, sources)}
    written = {name: case.path.read_bytes() for name, case in cases.items()}
    sha256 = {name: hashlib.sha256(data).hexdigest() for name, data in written.items()}
    # The baseline holds the good files and the warned ones (genuine publications that load with rows flagged):
    # the files that must be rejected are held back until the second run, which must then change nothing served.
    aside = root / "held_back"
    for case in cases.values():
        if case.outcome != "warned":
            (aside / case.feed).mkdir(parents=True, exist_ok=True)
            shutil.move(case.path, aside / case.feed / case.path.name)
    baseline_exit, baseline_output = _run_cli(sources, warehouse)
    baseline_serving = root / "serving-baseline.duckdb"
    shutil.copy2(warehouse / "serving.duckdb", baseline_serving)
    for case in cases.values():
        if case.outcome != "warned":
            shutil.move(aside / case.feed / case.path.name, case.path)
    good_extra = write_good_extra(bundled_samples, sources)
    exit_code, output = _run_cli(sources, warehouse)
    patch.undo()
    return CorpusRun(
        root,
        sources,
        warehouse,
        baseline_serving,
        baseline_exit,
        baseline_output,
        exit_code,
        output,
        cases,
        written,
        sha256,
        good_extra,
    )


# --------------------------------------------------------------------------------------------------------------
# Helpers


def _query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _rows(db: Path, table: str, where: str, params: list | None = None) -> list[tuple]:
    """A table's rows (sorted; doubles rounded to 6 places: DuckDB's parallel sums differ in the last bit)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        columns = con.execute(
            "select column_name, data_type from duckdb_columns() where table_name = ? order by column_index", [table]
        ).fetchall()
        select = ", ".join(
            f'round("{name}", 6)' if kind in ("DOUBLE", "FLOAT") else f'"{name}"' for name, kind in columns
        )
        return sorted(
            con.execute(f'select {select} from "{table}" where {where}', params or []).fetchall(),
            key=repr,
        )
    finally:
        con.close()


def _touched(db: Path, feed: str, month: date) -> dict[str, list[tuple]]:
    """Every serving row a file of ``feed`` for ``month`` would have touched: the feed's monthly facts, its metrics
    for collaboratives and members and their variation, and its SPC points and benefit months (their values)."""
    metric = METRIC_PREFIX[feed] + "%"
    found = {}
    for table, where in MONTHLY_TABLES[feed]:
        found[table] = _rows(db, table, f"{where} and period_month = ?", [month])
    for table in ("fct_collaborative_metric_month", "fct_variation"):
        found[table] = _rows(db, table, "metric_code like ? and period_month = ?", [metric, month])
    # the month's charted points (a series that other, good files start gives the month an empty point)
    found["fct_spc"] = _query(
        db,
        "select collaborative_code, org_code, metric_code, membership_basis, round(value, 6) from fct_spc "
        "where metric_code like ? and period_month = ? and value is not null order by all",
        [metric, month],
    )
    found["fct_benefit_tracking"] = _query(
        db,
        "select benefit_id, round(monthly_value, 6) from fct_benefit_tracking "
        "where metric_code like ? and period_month = ? order by all",
        [metric, month],
    )
    return found


def _where(row: int | None, column: str | None) -> str:
    where = f"row {row}" if row is not None else "file"
    return where + (f", column {column!r}" if column else "")


def _reason_rules(reason: str) -> set[str]:
    return set(re.findall(r"^file: .*?, rule: ([a-z0-9_]+)(?: \(warning\))?: ", reason, flags=re.MULTILINE))


# --------------------------------------------------------------------------------------------------------------
# The run as a whole


def test_the_baseline_publishes_and_exits_0(corpus_run):
    assert corpus_run.baseline_exit == 0, corpus_run.baseline_output
    assert "Files that failed their contract" not in corpus_run.baseline_output


def test_the_run_with_bad_files_exits_1_and_still_publishes(corpus_run):
    assert corpus_run.exit_code == 1, corpus_run.output
    assert f"Published the serving database: {corpus_run.serving}" in corpus_run.output


def test_the_other_files_still_load(corpus_run, bundled_samples):
    feed, month = GOOD_EXTRA
    loads = _query(
        corpus_run.build,
        "select period_month, source_file from raw_los_acute.file_loads where is_current order by period_month",
    )

    def zipped(path: Path) -> str:
        return f"{path.name}/{path.stem}.csv"

    assert (month, zipped(corpus_run.good_extra)) in loads
    for baseline_month in BASELINE_MONTHS:  # the good files loaded before stay loaded, unchanged
        assert (baseline_month, zipped(sample_path(bundled_samples, feed, baseline_month))) in loads
    discharges = _query(
        corpus_run.serving,
        "select count(*), sum(discharges) from fct_los_provider_month where setting = 'acute' and period_month = ?",
        [month],
    )[0]
    assert discharges[0] > 0 and discharges[1] > 0
    assert corpus_run.good_extra.exists()  # a good file stays in the landing folder


def test_rtt_and_out_of_area_marts_are_exactly_the_baseline(corpus_run):
    """No good RTT or OAP file arrived after the baseline, so every RTT and OAP figure served is the baseline's."""
    for table in (
        "fct_rtt_provider_month",
        "fct_oap_provider_month",
        "fct_oap_england_month",
        "fct_rtt_geography_month",
    ):
        assert _rows(corpus_run.serving, table, "true") == _rows(corpus_run.baseline_serving, table, "true"), table
    freshness = "source in ('rtt', 'oap')"
    assert _rows(corpus_run.serving, "dim_source_freshness", freshness) == _rows(
        corpus_run.baseline_serving, "dim_source_freshness", freshness
    )


@pytest.mark.parametrize(
    "name", [name for name, outcome in OUTCOMES.items() if outcome == "warned" and name.startswith("rtt:")]
)
def test_a_row_warning_is_named_loaded_as_published_and_flagged(corpus_run, name):
    """A warning-severity rule (README "Severity policy"): the genuine publication loads, the row is named in the
    run's warnings, counted in fct_data_quality and flagged on the trust-month it touches."""
    case = corpus_run.cases[name]
    expected = case.expected
    output = corpus_run.baseline_output  # the run that loaded it names its rows; later runs find it loaded
    assert f"  rtt {expected.rule}: 1 row(s) in {case.source_file}" in output, output
    line = f"    {case.source_file}: {_where(expected.row, expected.column)}: "
    assert any(text.startswith(line) and expected.message in text for text in output.splitlines()), output
    assert case.path.exists()  # loaded: it stays where it was, and nothing is quarantined
    assert not (corpus_run.warehouse / "quarantine" / case.feed / case.path.name).exists()
    loads = "select source_file from raw_rtt.file_loads where is_current and period_month = ?"
    assert _query(corpus_run.build, loads, [case.month]) == [(case.source_file,)]
    assert _query(
        corpus_run.serving,
        "select observed_value from fct_data_quality where source = 'rtt' and period_month = ? and check_name = ?",
        [case.month, f"row_flagged:{expected.rule}"],
    ) == [(1.0,)]
    flagged = _query(
        corpus_run.serving,
        "select org_code, flagged_rows, flagged_rules from fct_rtt_provider_month "
        "where period_month = ? and treatment_function_code = 'ALL' and flagged_rows > 0",
        [case.month],
    )
    assert flagged == [(case.facts["org_code"], 1, expected.rule)]


def test_the_corpus_covers_every_defect_the_issue_lists():
    defects = {
        "empty file": ["rtt: empty file"],
        "header only": ["oap: header only"],
        "HTML error page saved as .csv": ["rtt: HTML error page saved as .csv"],
        "truncated zip": ["los_acute: truncated zip"],
        "missing, renamed or reordered column": [
            "rtt: missing column",
            "oap: renamed column",
            "los_mh: missing column",
        ],
        "non-numeric count": ["rtt: non-numeric count", "los_acute: non-numeric count"],
        "negative count": ["rtt: negative count", "oap: negative count"],
        "a count the publisher suppresses or rounds, unsuppressed": ["oap: unsuppressed sender count"],
        "duplicate key rows": ["rtt: duplicate key rows"],
        "Part_2A greater than Part_2": ["rtt: Part_2A greater than Part_2"],
        "C_999 disagreeing with the detail": ["rtt: C_999 disagrees with the detail"],
        "unknown part type or measure id": ["rtt: unknown part type", "oap: unknown measure id"],
        "period in the future": ["rtt: period in the future"],
        "unparseable period": ["rtt: unparseable period", "oap: unparseable period"],
        "unknown provider code": [
            "rtt: provider code that is not an ODS code",
            "oap: provider code that is not an ODS code",
            "los_acute: provider code that is not an ODS code",
            "los_acute: unknown provider code",
        ],
        "non-UTF-8 file": ["los_mh: not UTF-8"],
        "same month twice, other figures, no -revised": [
            "rtt: same month again, other figures, no -revised",
            "oap: same month again, other figures, no -revised",
        ],
        "spell discharged before admission": [
            "los_mh: a spell discharged before admission",
            "los_mh: admission and discharge dates swapped throughout",
        ],
    }
    named = [name for names in defects.values() for name in names]
    assert sorted(named) == sorted(CASES)


# --------------------------------------------------------------------------------------------------------------
# Each file that breaks its contract


@pytest.mark.parametrize("name", [name for name, outcome in OUTCOMES.items() if outcome == "rejected"])
def test_a_bad_file_is_named_quarantined_and_changes_nothing_served(corpus_run, name):
    case = corpus_run.cases[name]
    assert case.outcome == "rejected"
    expected = case.expected

    # the run names the file, row, column and rule
    line = f"  {case.feed}/{case.source_file}: {_where(expected.row, expected.column)}: {expected.rule}: "
    printed = [text for text in corpus_run.output.splitlines() if text.startswith(line)]
    assert printed and expected.message in printed[0], f"{line!r} not in:\n{corpus_run.output}"

    # the file goes to WAREHOUSE/quarantine/<feed>/ (moved out of the landing folder) with a reason file
    quarantined = corpus_run.warehouse / "quarantine" / case.feed / case.path.name
    assert not case.path.exists()
    assert quarantined.read_bytes() == corpus_run.written[name]
    reason_path = quarantined.with_name(quarantined.name + ".reason.txt")
    assert f"    reason file: {reason_path}" in corpus_run.output
    reason = reason_path.read_text(encoding="utf-8")
    row = "-" if expected.row is None else expected.row
    stated = f"file: {case.source_file}, row: {row}, column: {expected.column or '-'}, rule: {expected.rule}: "
    assert any(text.startswith(stated) and expected.message in text for text in reason.splitlines()), reason
    assert _reason_rules(reason) == case.rules
    assert "What to do" in reason

    # nothing from it reaches the warehouse
    raw_table = RAW_TABLES[case.feed]
    schema = raw_table.split(".")[0]
    assert _query(corpus_run.build, f"select count(*) from {raw_table} where source_file = ?", [case.source_file]) == [
        (0,)
    ]
    assert _query(
        corpus_run.build, f"select count(*) from {schema}.file_loads where sha256 = ?", [corpus_run.sha256[name]]
    ) == [(0,)]
    loaded = _query(
        corpus_run.build,
        f"select source_file from {schema}.file_loads where is_current and period_month = ?",
        [case.month],
    )
    if case.month in BASELINE_MONTHS:
        assert loaded and loaded[0][0] != case.source_file  # the month is still the original file's
    else:
        assert loaded == []

    # every serving row the file would have touched is as it was
    assert _touched(corpus_run.serving, case.feed, case.month) == _touched(
        corpus_run.baseline_serving, case.feed, case.month
    )

    # and the data-quality mart says so
    recorded = _query(
        corpus_run.serving,
        "select success, details from fct_data_quality where source = ? and check_name = ? and details like ?",
        [case.feed, f"rejected_file:{expected.rule}", f"{case.source_file}:%"],
    )
    assert recorded and not any(success for success, _ in recorded)
    if case.feed in ("los_mh", "los_acute"):
        # a patient-level file's message can quote a spell's values: served are only file, row, column and rule
        for _, details in recorded:
            assert "values withheld: patient-level data" in details, details


# --------------------------------------------------------------------------------------------------------------
# Patient-level rows with a problem: loaded, flagged, left out of the measures, named


@pytest.mark.parametrize("name", [name for name, outcome in OUTCOMES.items() if outcome == "flagged"])
def test_a_bad_spell_is_named_flagged_and_left_out_of_the_measures(corpus_run, name):
    case = corpus_run.cases[name]
    assert case.outcome == "flagged"
    expected = case.expected

    line = f"  {case.feed}/{case.source_file}: {_where(expected.row, expected.column)}: {expected.rule}: "
    printed = [text for text in corpus_run.output.splitlines() if text.startswith(line)]
    assert printed and expected.message in printed[0], f"{line!r} not in:\n{corpus_run.output}"

    # the file is loaded (and stays in the landing folder): its other spells count
    assert case.path.exists()
    assert not (corpus_run.warehouse / "quarantine" / case.feed / case.path.name).exists()
    raw_table = RAW_TABLES[case.feed]
    schema = raw_table.split(".")[0]
    assert _query(
        corpus_run.build,
        f"select source_file from {schema}.file_loads where is_current and period_month = ?",
        [case.month],
    ) == [(case.source_file,)]

    # the row is loaded and flagged, never dropped
    assert _query(
        corpus_run.build,
        f"select row_problem from {raw_table} where source_file = ? and source_row = ?",
        [case.source_file, expected.row],
    ) == [(expected.rule,)]

    # and it is left out of the measures: the spell is not among the discharges the marts count
    setting = "mental_health" if case.feed == "los_mh" else "acute"
    spell = case.facts["spell_id"]
    assert _query(
        corpus_run.build,
        "select count(*) from intermediate.int_los__discharged_spells where setting = ? and spell_id = ?",
        [setting, spell],
    ) == [(0,)]
    counted = _query(
        corpus_run.build,
        "select count(*) from intermediate.int_los__discharged_spells where setting = ? and org_code = ? "
        "and discharge_month = ?",
        [setting, case.facts["org_code"], case.month],
    )[0][0]
    served = _query(
        corpus_run.serving,
        "select discharges from fct_los_provider_month where setting = ? and org_code = ? and period_month = ?",
        [setting, case.facts["org_code"], case.month],
    )
    # served by the publisher's rule (README "Disclosure control"): rounded to the nearest 5 unless suppressed
    suppressed = counted <= (7 if setting == "acute" else 4)
    assert served == [(None if suppressed else 5 * round(counted / 5),)]
    assert _query(corpus_run.serving, "select count(*) from fct_los_provider_month where org_code = 'RZ9'") == [(0,)]

    # counted in the data-quality mart for its month
    recorded = _query(
        corpus_run.serving,
        "select observed_value from fct_data_quality where source = ? and period_month = ? and check_name = ?",
        [case.feed, case.month, f"row_left_out:{expected.rule}"],
    )
    assert recorded == [(1.0,)]


# --------------------------------------------------------------------------------------------------------------
# Published aggregates with a row-level warning: loaded as published, the row flagged and named


@pytest.mark.parametrize(
    "name", [name for name, outcome in OUTCOMES.items() if outcome == "warned" and name.startswith("oap:")]
)
def test_an_oap_row_with_a_warning_is_loaded_flagged_and_named(corpus_run, name):
    case = corpus_run.cases[name]
    expected = case.expected

    output = corpus_run.baseline_output  # the run that loaded it names its rows; later runs find it loaded
    assert f"  oap {expected.rule}: " in output and case.source_file in output, output
    line = f"    {case.source_file}: {_where(expected.row, expected.column)}: "
    assert any(text.startswith(line) and expected.message in text for text in output.splitlines()), output

    # the file is loaded (and stays in the landing folder), its month's figures are its own
    assert case.path.exists()
    assert not (corpus_run.warehouse / "quarantine" / case.feed / case.path.name).exists()
    assert _query(
        corpus_run.build,
        "select source_file from raw_oap.file_loads where is_current and period_month = ?",
        [case.month],
    ) == [(case.source_file,)]
    flags = _query(
        corpus_run.build,
        "select row_flags from raw_oap.monthly_statistics where source_file = ? and source_row = ?",
        [case.source_file, expected.row],
    )
    assert flags == [(expected.rule,)]
    recorded = _query(
        corpus_run.serving,
        "select observed_value from fct_data_quality where source = 'oap' and period_month = ? and check_name = ?",
        [case.month, f"row_flagged:{expected.rule}"],
    )
    flagged_rows = _query(
        corpus_run.build,
        "select count(*) from raw_oap.monthly_statistics where source_file = ? and row_flags like ?",
        [case.source_file, f"%{expected.rule}%"],
    )[0][0]
    assert recorded == [(float(flagged_rows),)]  # every flagged row counted, none left out
    england = _query(
        corpus_run.serving,
        "select inappropriate_oap_bed_days, unattributed_sender_codes from fct_oap_england_month "
        "where period_month = ?",
        [case.month],
    )
    assert england and england[0][0] > 0

    if expected.rule == "org_code_format":
        # a sender written as no organisation code looks counts in England only, never for a trust
        victim = case.facts["org_code"]
        assert "R-XG" in england[0][1] and "UNKNOWN" in england[0][1]
        assert _query(
            corpus_run.serving,
            "select count(*) from fct_oap_provider_month where period_month = ? and org_code in (?, 'R-XG')",
            [case.month, victim],
        ) == [(0,)]
        assert _query(
            corpus_run.serving,
            "select count(*) from fct_collaborative_metric_month where org_code = 'R-XG'",
        ) == [(0,)]
