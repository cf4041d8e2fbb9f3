"""The SQL contract engine (orchestration/contracts_sql.py) against Great Expectations, the referee.

For every file suite in ``expectations/*.json`` the batches the feeds really validate are captured (each feed's own
reader and derived checks, on bundled sample files and on the bad-input corpus, whose files each break one rule;
for RTT, whose checks are SQL over the file's Arrow text, the relation it validates, fetched as a frame for GX),
then each expectation of the suite is broken on a copy of a good batch (a value out of range, a regex miss, a null,
a value outside the set, a duplicated key, a missing distinct value, a wrong or missing column), and GX and the SQL
engine must report the same failures: rule, rows, values, counts, missing columns, error and severity, in GX's
order.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from orchestration import contracts
from orchestration.contracts import EXPECTATIONS_DIR, validate_frame
from orchestration.contracts_sql import (
    UnsupportedExpectation,
    compile_suite,
    python_regex_to_re2,
    validate_relation,
)
from orchestration.raw import MAX_ROWS_PER_RULE
from orchestration.sources import acute_long_stay, feeds, los_acute, los_mh, mhsds_los, oap, rtt
from tests.bad_inputs import write_corpus

FILE_SUITES = sorted(path.stem for path in EXPECTATIONS_DIR.glob("*.json"))
SOURCE_MODULES = (rtt, oap, mhsds_los, los_mh, los_acute, acute_long_stay)
#: Rows a mutated batch keeps (GX's cost grows with rows; the rules are row-wise or already derived columns).
ROWS = 300


# --------------------------------------------------------------------------------------------------------------
# What the two engines say, made comparable


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _comparable(failures) -> list[dict]:
    """The failures as plain data; rows and values as many as the callers use (:func:`contracts.to_violations`
    keeps an error's first MAX_ROWS_PER_RULE rows and a warning's first MAX_FLAGGED_ROWS_PER_RULE; the GX path
    asks GX for the larger number for every failed rule when one of them is a warning)."""
    out = []
    for failure in failures:
        result = dict(failure.result or {})
        shown = MAX_ROWS_PER_RULE if failure.severity == "error" else contracts.MAX_FLAGGED_ROWS_PER_RULE
        out.append(
            {
                "rule": failure.rule,
                "type": failure.expectation_type,
                "columns": failure.columns,
                "rows": [_plain(row) for row in failure.rows[:shown]],
                "values": [_plain(value) for value in failure.values[:shown]],
                "unexpected_count": failure.unexpected_count,
                "missing_columns": failure.missing_columns,
                "error": failure.error,
                "severity": failure.severity,
                "observed_value": _plain(result.get("observed_value")),
                "details": result.get("details"),
                "partial_missing_list": sorted(map(str, result.get("partial_missing_list") or [])),
            }
        )
    return out


def assert_same(frame: pd.DataFrame, suite: str, parameters, what: str) -> list:
    by_gx = validate_frame(frame, suite, parameters, engine="gx")
    by_sql = validate_frame(frame, suite, parameters, engine="sql")
    sql, gx = _comparable(by_sql), _comparable(by_gx)
    if sql != gx:
        differences = [
            f"{len(sql)} failures by SQL, {len(gx)} by GX",
            f"SQL: {[(f['rule'], f['error']) for f in sql]}",
            f" GX: {[(f['rule'], f['error']) for f in gx]}",
        ] + [
            f"#{index} {key}: SQL {str(a.get(key))[:300]} | GX {str(b.get(key))[:300]}"
            for index, (a, b) in enumerate(zip(sql, gx, strict=False))
            for key in a
            if a.get(key) != b.get(key)
        ]
        pytest.fail(f"{what}: the engines disagree\n" + "\n".join(differences))
    return by_sql


# --------------------------------------------------------------------------------------------------------------
# The batches the feeds validate


@pytest.fixture(scope="module")
def captured(bundled_samples, tmp_path_factory):
    """``suite → [(label, batch, parameters)]``: every batch each feed's reader hands to validate_frame, for one
    or two sample files per feed and every file of the bad-input corpus."""
    root = tmp_path_factory.mktemp("contracts_sql")
    landing = root / "landing"
    for feed in feeds.FEEDS:
        files = sorted(path for path in (bundled_samples / feed.name).iterdir() if path.is_file())
        for path in files[:2]:
            (landing / feed.name).mkdir(parents=True, exist_ok=True)
            (landing / feed.name / path.name).write_bytes(path.read_bytes())
    write_corpus(bundled_samples, landing)
    batches: dict[str, list] = {}
    patch = pytest.MonkeyPatch()

    def recorder(frame, suite_name, parameters=None, **kwargs):
        batches.setdefault(suite_name, []).append(
            (f"{suite_name} #{len(batches.get(suite_name, []))}", frame.copy(), dict(parameters or {}))
        )
        return validate_frame(frame, suite_name, parameters, **kwargs)

    def relation_recorder(con, relation, suite_name, parameters=None, *, line_column="source_row", columns=None, **kw):
        # RTT validates a DuckDB relation: GX gets it as the frame the pandas path used to build (its columns in
        # the relation's order, the layout's unpublished bands as 0), indexed by line
        frame = con.execute(f"SELECT * FROM {relation} ORDER BY {line_column}").df().set_index(line_column)
        frame.index.name = "line"
        for column in columns or ():
            if column not in frame.columns:
                frame[column] = 0.0
        frame = frame[list(columns)] if columns else frame
        batches.setdefault(suite_name, []).append(
            (f"{suite_name} #{len(batches.get(suite_name, []))}", frame, dict(parameters or {}))
        )
        return validate_relation(con, relation, suite_name, parameters, line_column=line_column, columns=columns, **kw)

    for module in SOURCE_MODULES:
        if hasattr(module, "validate_frame"):
            patch.setattr(module, "validate_frame", recorder)
    patch.setattr(rtt.contracts_sql, "validate_relation", relation_recorder)
    try:
        con = duckdb.connect(str(root / "build.duckdb"))
        for feed in feeds.FEEDS:
            if (landing / feed.name).is_dir():
                feed.ingest_folder(con, landing / feed.name, root / "quarantine", move_rejected=False)
        con.close()
    finally:
        patch.undo()
    return batches


def test_every_file_suite_is_captured(captured):
    assert sorted(captured) == FILE_SUITES


@pytest.mark.parametrize("suite", FILE_SUITES)
def test_the_feeds_batches_fail_alike(captured, suite):
    """Every batch the feeds validated (good files, and the corpus's files that each break one rule)."""
    failing = 0
    for label, batch, parameters in captured[suite]:
        failing += bool(assert_same(batch, suite, parameters, label))
    assert len(captured[suite]) >= 2
    if suite in ("rtt_full_extract", "oap_monthly_statistics", "los_acute_apc_episodes"):
        assert failing, f"the corpus breaks {suite}: some captured batch must fail"


# --------------------------------------------------------------------------------------------------------------
# Every expectation broken, one at a time


def _good_batch(captured, suite):
    for _label, batch, parameters in captured[suite]:
        if not validate_frame(batch, suite, parameters, engine="sql"):
            return batch.iloc[:ROWS].copy(), parameters
    pytest.fail(f"no captured batch passes {suite}")


def _positions(frame: pd.DataFrame) -> list[int]:
    n = len(frame)
    return sorted({1, n // 2, n - 1})


def _set(frame: pd.DataFrame, column: str, positions, value) -> pd.DataFrame:
    frame = frame.copy()
    at = frame.columns.get_loc(column)
    if not isinstance(at, int):
        at = int(np.flatnonzero(at)[0])
    series = frame.iloc[:, at]
    if isinstance(value, str) or value is None:
        series = series.astype(object)
    series = series.copy()
    series.iloc[list(positions)] = value
    frame.isetitem(at, series)
    return frame


def _mutations(frame: pd.DataFrame, expectation, parameters):
    """``(what, mutated frame)`` pairs, each breaking ``expectation`` (and a null where nulls are ignored)."""
    kind, kwargs = expectation.expectation_type, expectation.kwargs
    column = kwargs.get("column")
    first, middle, last = _positions(frame)
    if column is not None and column in frame.columns:
        yield "column dropped", frame.drop(columns=[column])
    for key in kwargs.get("column_list") or () if kind == "expect_compound_columns_to_be_unique" else ():
        yield "column dropped", frame.drop(columns=[key])
    if kind == "expect_column_values_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        if not numeric:
            yield "a text column", frame
            return
        whole = pd.api.types.is_integer_dtype(frame[column])
        broken = frame
        if high is not None:
            broken = _set(broken, column, [first, last], high + 1)
        if low is not None:
            broken = _set(broken, column, [middle], low - 1 if whole else low - 0.5)
        if whole:
            yield "out of range", broken
        else:
            yield "out of range", _set(broken, column, [first + 1], np.nan)
        if high is not None:
            yield "on the bound", _set(frame, column, [middle], high)
    elif kind == "expect_column_values_to_match_regex":
        yield "regex misses", _set(_set(frame, column, [first, last], "bad value!"), column, [middle], None)
        good = str(frame[column].dropna().iloc[0])
        yield "a final newline (Python's $)", _set(frame, column, [middle], good + "\n")
        yield "two final newlines", _set(frame, column, [middle], good + "\n\n")
        yield (
            "a non-breaking space and a vertical tab",
            _set(frame, column, [middle, last], [f"\xa0{good}", f"{good}\v"]),
        )
        yield "lower case", _set(frame, column, [middle], good.lower())
    elif kind == "expect_column_values_to_not_be_null":
        yield "nulls", _set(frame, column, [first, last], None)
        yield "blank text is not null", _set(frame, column, [middle], "")
    elif kind == "expect_column_values_to_be_in_set":
        if pd.api.types.is_numeric_dtype(frame[column]):
            yield "outside the set", _set(_set(frame, column, [first, last], 190001.0), column, [middle], np.nan)
        else:
            yield "outside the set", _set(_set(frame, column, [first, last], "Part_9"), column, [middle], None)
    elif kind == "expect_compound_columns_to_be_unique":
        keys = list(kwargs["column_list"])
        duplicated = frame.copy()
        for key in keys:
            duplicated = _set(duplicated, key, [middle, last], frame[key].iloc[first])
        yield "a key three times", duplicated
        blank = duplicated
        for key in keys:
            blank = _set(blank, key, [first + 1, first + 2], None)
        yield "all-null keys are ignored", blank
        partly = _set(_set(frame, keys[0], [first + 1, first + 2], None), keys[1], [first + 1, first + 2], "X")
        yield "partly null keys are compared", partly
    elif kind == "expect_column_distinct_values_to_contain_set":
        wanted = list(kwargs["value_set"])
        present = frame[column].isin(wanted[:1])
        yield "a value missing", frame.loc[~present] if (~present).any() else frame.iloc[:0]
        yield "every value missing", _set(frame, column, range(len(frame)), None)
    elif kind == "expect_table_columns_to_match_ordered_list":
        names = list(frame.columns)
        yield "two columns swapped", frame[[names[1], names[0], *names[2:]]]
        yield "a column missing", frame.drop(columns=[names[2]])
        yield "a column added", frame.assign(extra=1)
    elif kind == "expect_table_columns_to_match_set":
        wanted = list(kwargs["column_set"] or [])
        if wanted:
            yield "a required column missing", frame.drop(columns=[wanted[0]])
        yield "a column added", frame.assign(extra=1)


def _cases():
    for suite in FILE_SUITES:
        raw = json.loads((EXPECTATIONS_DIR / f"{suite}.json").read_text(encoding="utf-8"))
        for position, expectation in enumerate(raw["expectations"]):
            yield pytest.param(suite, position, id=f"{suite}-{position + 1}-{expectation['type']}")


@pytest.mark.parametrize(("suite", "position"), list(_cases()))
def test_each_expectation_broken_fails_alike(captured, suite, position):
    frame, parameters = _good_batch(captured, suite)
    expectation = compile_suite(json.loads((EXPECTATIONS_DIR / f"{suite}.json").read_text()), parameters)[position]
    tried = 0
    for what, mutated in _mutations(frame, expectation, parameters):
        failures = assert_same(
            mutated, suite, parameters, f"{suite}: {expectation.expectation_type} on {expectation.columns}: {what}"
        )
        tried += 1
        if what in (
            "out of range",
            "regex misses",
            "nulls",
            "outside the set",
            "a key three times",
            "a value missing",
            "two columns swapped",
            "a required column missing",
            "column dropped",
        ):
            assert any(f.rule == expectation.rule for f in failures), f"{suite}: {what} must break {expectation.rule}"
    assert tried


# --------------------------------------------------------------------------------------------------------------
# The engine's own promises


def test_an_unknown_expectation_type_is_refused_when_compiled():
    suite = {"name": "x", "expectations": [{"type": "expect_column_values_to_be_unique", "kwargs": {"column": "a"}}]}
    with pytest.raises(UnsupportedExpectation, match="expect_column_values_to_be_unique"):
        compile_suite(suite)


def test_a_missing_parameter_is_refused():
    suite = json.loads((EXPECTATIONS_DIR / "rtt_full_extract.json").read_text())
    with pytest.raises(UnsupportedExpectation, match="expected_columns"):
        compile_suite(suite, {})


def test_every_file_suite_regex_matches_as_python_does():
    """Each suite regex, translated to RE2, accepts and refuses the same strings as Python's re.search."""
    con = duckdb.connect()
    probes = [
        "",
        " ",
        "\n",
        "ABC",
        "ABC\n",
        "ABC\n\n",
        "\xa0RTT-April-2024",
        "RTT-APRIL-2024 ",
        "RTT-april-2024\v",
        "RTT-April-24",
        "C_999",
        "C_9999",
        "X01",
        "X07",
        "RBZ",
        "rbz",
        "R1A2B3",
        "R1A2B3C",
        "AB",
        "ÀBC",
        "R-1",
    ]
    for suite in FILE_SUITES:
        for expectation in json.loads((EXPECTATIONS_DIR / f"{suite}.json").read_text())["expectations"]:
            pattern = expectation["kwargs"].get("regex")
            if pattern is None:
                continue
            translated = python_regex_to_re2(pattern)
            for probe in probes:
                expected = re.search(pattern, probe) is not None
                found = con.execute("SELECT regexp_matches(?, ?)", [probe, translated]).fetchone()[0]
                assert found == expected, (suite, pattern, probe)


def test_python_whitespace_is_translated_exactly():
    con = duckdb.connect()
    translated = python_regex_to_re2(r"^\s$")
    sample = [chr(c) for c in [*range(0, 0x3100), 0xFEFF, 0x10FFFF] if not 0xD800 <= c <= 0xDFFF]
    matched = {
        row[0]
        for row in con.execute(
            "SELECT c FROM unnest(?) t(c) WHERE regexp_matches(c, ?)", [sample, translated]
        ).fetchall()
    }
    assert matched == {c for c in sample if re.search(r"^\s$", c)}


@pytest.mark.parametrize("construct", [r"(?=a)", r"(?!a)", r"(?<=a)b", r"(a)\1", r"\bA", r"\w+"])
def test_regex_constructs_re2_lacks_are_refused(construct):
    with pytest.raises(UnsupportedExpectation):
        python_regex_to_re2(construct)


def test_a_relation_is_validated_in_line_order_without_pandas(tmp_path):
    """validate_relation on a DuckDB table: rows are its line column, first max_rows in line order."""
    suite = {
        "name": "lines",
        "expectations": [
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "v", "min_value": 0, "max_value": 5},
                "meta": {"rule": "v_in_range"},
            },
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "w", "max_value": 0},
                "severity": "warning",
                "meta": {"rule": "w_not_positive"},
            },
        ],
    }
    (tmp_path / "lines.json").write_text(json.dumps(suite))
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT 1000 - i AS source_row, (i % 7)::DOUBLE AS v, (i % 3) - 1 AS w FROM range(1000) r(i)"
    )
    failures = validate_relation(con, "t", "lines", directory=tmp_path, max_rows=3)
    by_rule = {failure.rule: failure for failure in failures}
    lines = con.execute("SELECT source_row FROM t WHERE v > 5 ORDER BY source_row").fetchall()
    assert by_rule["v_in_range"].rows == tuple(row[0] for row in lines[:3])
    assert by_rule["v_in_range"].unexpected_count == len(lines)
    assert by_rule["w_not_positive"].severity == "warn" and by_rule["v_in_range"].severity == "error"
    assert list(by_rule["w_not_positive"].rows) == sorted(by_rule["w_not_positive"].rows)
    assert len(by_rule["w_not_positive"].rows) == 333  # a warning's rows are all recorded (up to 1000)
    assert by_rule["w_not_positive"].unexpected_count == 333


def test_the_engine_is_chosen_by_setting(monkeypatch):
    monkeypatch.setenv("COLLAB_CONTRACT_ENGINE", "gx")
    assert contracts.contract_engine() == "gx"
    monkeypatch.setenv("COLLAB_CONTRACT_ENGINE", "pandas")
    with pytest.raises(ValueError, match="COLLAB_CONTRACT_ENGINE"):
        contracts.contract_engine()
    monkeypatch.delenv("COLLAB_CONTRACT_ENGINE")
    assert contracts.contract_engine() == "sql"


def test_the_sql_path_does_not_import_great_expectations(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys, pandas as pd\n"
        "from orchestration.contracts import validate_frame\n"
        "frame = pd.DataFrame({'period': ['RTT-April-2024']})\n"
        "validate_frame(frame, 'rtt_full_extract', {'expected_columns': ['period'], 'file_month': [202404],"
        " 'latest_month': 202604})\n"
        "print('great_expectations' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.stdout.strip() == "False"


def test_rtt_counts_are_whole_numbers_as_published_not_as_duckdb_casts(tmp_path):
    """DuckDB's cast takes ' 5', '5.0', '1_000' and '0x10' as numbers; the contract does not (nor a count beyond
    64 bits), while '+7' is a whole number. Each such cell is named by line and column."""
    import csv
    import io

    from tests.rtt_files import rtt_row, write_rtt_file

    month = date(2024, 4, 1)
    rows = [rtt_row("RAL", f"0{i}N", "Part_2", "C_100", {0: 3, 1: 4}) for i in range(8)]
    path = write_rtt_file(tmp_path, month, rows, zipped=False)
    table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    band = table[0].index("Gt 01 To 02 Weeks SUM 1")
    cells = {2: " 5", 3: "5.0", 4: "1_000", 5: "0x10", 6: "99999999999999999999", 7: "+4"}
    for line, cell in cells.items():
        table[line - 1][band] = cell
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(table)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    rtt_file, text = rtt.read_rtt_file(path)
    violations = rtt.check_rtt_contract(rtt_file, text, today=date(2026, 1, 1))
    unreadable = {(v.row, v.column) for v in violations if v.rule == "count_is_whole_number"}
    assert unreadable == {(line, "Gt 01 To 02 Weeks SUM 1") for line in (2, 3, 4, 5, 6)}
    assert all(v.severity == "error" for v in violations if v.rule == "count_is_whole_number")


@pytest.mark.parametrize("mostly", [None, 0.5, 0.7, 0.9])
def test_strict_bounds_and_mostly_fail_alike(tmp_path, mostly):
    """Arguments no file suite uses yet, refereed the same way: strict_min/strict_max, one-sided bounds,
    ``mostly`` (the share of non-null values that must pass), a set of numbers on a number column."""
    extra = {} if mostly is None else {"mostly": mostly}
    expectations = [
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "x", "min_value": 1, "max_value": 8, "strict_min": True, "strict_max": True, **extra},
            "meta": {"rule": "strict"},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "x", "min_value": 2, **extra},
            "severity": "info",
            "meta": {"rule": "at_least_2"},
        },
        {
            "type": "expect_column_values_to_match_regex",
            "kwargs": {"column": "s", "regex": "^a", **extra},
            "meta": {"rule": "starts_with_a"},
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "x", "value_set": [1, 2, 3], **extra},
            "severity": "warning",
            "meta": {"rule": "small"},
        },
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "s", **extra}, "meta": {"rule": "s"}},
    ]
    (tmp_path / "synthetic.json").write_text(json.dumps({"name": "synthetic", "expectations": expectations}))
    frame = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 8.0, np.nan, 5.0, 2.5, 9.0, 1.5, 3.0],
            "s": ["a", "ab", "b", None, "a", "ba", "a", "a", None, "ax"],
        },
        index=range(10, 20),
    )
    by_gx = contracts.validate_frame(frame, "synthetic", directory=tmp_path, engine="gx")
    by_sql = contracts.validate_frame(frame, "synthetic", directory=tmp_path, engine="sql")
    assert _comparable(by_sql) == _comparable(by_gx)
    if mostly is None:
        assert {f.rule for f in by_sql} == {"strict", "at_least_2", "starts_with_a", "small", "s"}


def test_a_frame_is_scanned_as_arrow_unless_arrow_cannot_hold_it(tmp_path):
    """DuckDB scans the feeds' frames as Arrow tables (a pandas frame's text would be turned into Python strings
    for every query); a frame that repeats a column name, or mixes types in an object column, is registered as
    it is and judged as GX judges it."""
    import pyarrow as pa

    from orchestration.contracts_sql import _as_arrow

    text = pd.DataFrame({"s": pd.array(["a", None, "b"], dtype=pd.ArrowDtype(pa.string())), "x": [1.0, None, 3.0]})
    assert isinstance(_as_arrow(text), pa.Table)
    mixed = pd.DataFrame({"s": ["a", 1, None]}, index=[5, 6, 7])
    assert _as_arrow(mixed) is mixed
    repeated = pd.DataFrame([[1, 2]], columns=["x", "x"])
    assert _as_arrow(repeated) is repeated

    expectations = [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "s"}, "meta": {"rule": "s"}}]
    (tmp_path / "mixed.json").write_text(json.dumps({"name": "mixed", "expectations": expectations}))
    by_gx = contracts.validate_frame(mixed, "mixed", directory=tmp_path, engine="gx")
    by_sql = contracts.validate_frame(mixed, "mixed", directory=tmp_path, engine="sql")
    assert _comparable(by_sql) == _comparable(by_gx)
    assert [list(f.rows) for f in by_sql] == [[7]]
