"""Evaluate a file contract's Great Expectations suite as DuckDB SQL, with GX's own semantics, without GX.

The suites in ``expectations/*.json`` stay the declared contract (reviewed as JSON, rendered as Data Docs, and the
referee in ``tests/test_contracts_sql.py``); this module reads them as plain JSON (importing GX costs 3 s) and
compiles each expectation into SQL over a relation (a table, a view, or a registered pandas or Arrow object) that
has a line-number column. One aggregate query computes every expectation's unexpected count; then one query per
failed expectation fetches its first offending rows, in line order, with their values. The result is the
:class:`~orchestration.contracts.ExpectationFailure` records GX's pandas batch gives (see
:func:`orchestration.contracts.failures_of`).

GX semantics kept, expectation by expectation (GX 1.x, pandas execution engine):

* column map expectations (``between``, ``match_regex``, ``in_set``) ignore nulls; ``not_be_null`` counts them;
  ``between`` compares a text column with numeric bounds (or the reverse) as an error, as GX does; ``in_set``
  compares values of the column's own kind only (pandas ``isin``: ``'1'`` is not ``1``);
* ``match_regex`` is ``re.search`` (a partial match): the Python regex is translated to RE2 for DuckDB's
  ``regexp_matches`` (also a partial match), keeping Python's meaning of ``$`` (end, or before a final newline),
  ``\\s`` and ``\\d`` (Unicode); constructs RE2 lacks (look-arounds, back-references, ``\\b``, ``\\w``) are refused
  when the suite is compiled, never silently changed;
* ``expect_compound_columns_to_be_unique``: every row of a duplicated key is unexpected, nulls equal to nulls,
  rows whose key columns are all null ignored (GX's default ``ignore_row_if="all_values_are_missing"``);
* ``expect_column_distinct_values_to_contain_set``: the set's values missing from the column;
* ``expect_table_columns_to_match_ordered_list`` / ``_match_set`` (``exact_match``, default true): compared with
  the relation's columns;
* ``mostly``: the share of non-null values that pass must be at least ``mostly``;
* an expectation on a column the relation lacks fails with GX's message (``Error: The column "x" in BatchData does
  not exist.``) and ``missing_columns``, so callers that drop those (the header rule names the column) keep working.

An expectation type not listed raises :class:`UnsupportedExpectation` when the suite is compiled.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb

#: Types GX's ``between`` refuses to compare with numeric bounds (``INVALID_COLUMN_TYPES`` in GX, by prefix).
_TEXT_TYPES = ("VARCHAR", "CHAR", "TEXT", "STRING", "BOOLEAN", "BOOL", "BIT")
_NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
)

COLUMN_MAP_TYPES = frozenset(
    {
        "expect_column_values_to_be_between",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_in_set",
    }
)
SUPPORTED_TYPES = COLUMN_MAP_TYPES | {
    "expect_compound_columns_to_be_unique",
    "expect_column_distinct_values_to_contain_set",
    "expect_table_columns_to_match_ordered_list",
    "expect_table_columns_to_match_set",
}

#: Python's ``\s`` on str (every code point ``re`` matches with it), as an RE2 class body.
_PY_WHITESPACE = (
    r"\t\n\v\f\r\x{1c}-\x{1f} \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
)
_PY_DIGIT = r"\p{Nd}"


class UnsupportedExpectation(ValueError):
    """A suite uses an expectation type, argument or regex construct the SQL engine cannot evaluate as GX does."""


@dataclass(frozen=True)
class CompiledExpectation:
    """One expectation of a suite, its placeholders filled, ready to be evaluated."""

    position: int
    expectation_type: str
    kwargs: Mapping[str, Any]
    rule: str
    description: str
    gx_severity: str
    columns: tuple[str, ...]
    regex: str | None = None  # the RE2 translation, for match_regex


# --------------------------------------------------------------------------------------------------------------
# Suites as JSON


@lru_cache(maxsize=64)
def _suite_json(path: str, mtime_ns: int) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_suite_json(name: str, directory: Path | None = None) -> dict:
    """The suite ``<directory>/<name>.json`` as plain JSON (cached while the file is unchanged)."""
    from orchestration.contracts import EXPECTATIONS_DIR

    path = (directory or EXPECTATIONS_DIR) / f"{name}.json"
    return _suite_json(str(path), path.stat().st_mtime_ns)


def _fill(value: Any, parameters: Mapping[str, Any], where: str) -> Any:
    if isinstance(value, Mapping) and set(value) == {"$PARAMETER"}:
        name = value["$PARAMETER"]
        if name not in parameters:
            raise UnsupportedExpectation(f"{where}: the suite parameter {name!r} was not given")
        return parameters[name]
    return value


def compile_suite(suite: Mapping[str, Any], parameters: Mapping[str, Any] | None = None) -> list[CompiledExpectation]:
    """The suite's expectations with their ``{"$PARAMETER": name}`` arguments filled from ``parameters``.

    Raises :class:`UnsupportedExpectation` for an expectation type (or an argument, or a regex construct) the
    engine does not evaluate exactly as GX does.
    """
    from orchestration.contracts import _expectation_columns

    parameters = parameters or {}
    compiled = []
    for position, expectation in enumerate(suite.get("expectations", [])):
        kind = expectation.get("type") or expectation.get("expectation_type")
        where = f"suite {suite.get('name')!r}, expectation {position + 1} ({kind})"
        if kind not in SUPPORTED_TYPES:
            raise UnsupportedExpectation(
                f"{where}: the SQL contract engine does not know this expectation type; add it to "
                "orchestration/contracts_sql.py (with GX's semantics and a test) or run COLLAB_CONTRACT_ENGINE=gx"
            )
        kwargs = {key: _fill(value, parameters, where) for key, value in (expectation.get("kwargs") or {}).items()}
        for unsupported in ("row_condition", "condition_parser", "parse_strings_as_datetimes", "allow_cross_type"):
            if kwargs.get(unsupported):
                raise UnsupportedExpectation(f"{where}: argument {unsupported!r} is not supported by the SQL engine")
        if kind == "expect_compound_columns_to_be_unique" and kwargs.get(
            "ignore_row_if", "all_values_are_missing"
        ) not in (
            "all_values_are_missing",
            "any_value_is_missing",
            "never",
        ):
            raise UnsupportedExpectation(f"{where}: unknown ignore_row_if {kwargs['ignore_row_if']!r}")
        if kind == "expect_column_values_to_be_between":
            low, high = kwargs.get("min_value"), kwargs.get("max_value")
            if low is None and high is None:
                raise UnsupportedExpectation(f"{where}: min_value and max_value cannot both be None")
        meta = expectation.get("meta") or {}
        severity = str(expectation.get("severity") or "critical").lower()
        compiled.append(
            CompiledExpectation(
                position=position,
                expectation_type=kind,
                kwargs=kwargs,
                rule=meta.get("rule", kind),
                description=meta.get("description", kind.replace("_", " ")),
                gx_severity=severity,
                columns=_expectation_columns(kwargs),
                regex=python_regex_to_re2(kwargs["regex"], where)
                if kind == "expect_column_values_to_match_regex"
                else None,
            )
        )
    return compiled


def python_regex_to_re2(pattern: str, where: str = "regex") -> str:
    """A Python ``re`` pattern as an RE2 pattern that matches (``re.search``-style) exactly the same strings.

    Python's ``$`` (no MULTILINE) also matches before a final newline, its ``\\s`` and ``\\d`` are Unicode; RE2's
    are not. Constructs RE2 does not have, or has with another meaning, are refused.
    """
    out: list[str] = []
    i, in_class, n = 0, False, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\":
            if i + 1 >= n:
                raise UnsupportedExpectation(f"{where}: the regex {pattern!r} ends with a backslash")
            escaped = pattern[i + 1]
            if escaped == "s":
                out.append(_PY_WHITESPACE if in_class else f"[{_PY_WHITESPACE}]")
            elif escaped == "d":
                out.append(_PY_DIGIT)
            elif escaped in "SDwWbBZ" or escaped.isdigit() and escaped != "0":
                raise UnsupportedExpectation(
                    f"{where}: the regex {pattern!r} uses \\{escaped}, which RE2 (DuckDB) does not match as Python does"
                )
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if char == "]" and not (out and out[-1] in ("[", "[^")):
                in_class = False
            out.append(char)
        elif char == "[":
            in_class = True
            if pattern.startswith("[^", i):
                out.append("[^")
                i += 2
                if i < n and pattern[i] == "]":  # a literal ] first in the class
                    out.append("\\]")
                    i += 1
                continue
            out.append("[")
            if i + 1 < n and pattern[i + 1] == "]":
                out.append("\\]")
                i += 1
        elif char == "$":
            out.append(r"(?:\n?\z)")
        elif char == "(" and pattern.startswith("(?", i):
            follow = pattern[i + 2 : i + 4]
            if follow[:1] in ("=", "!", "#") or follow in ("<=", "<!", "P="):
                raise UnsupportedExpectation(
                    f"{where}: the regex {pattern!r} uses a look-around, comment or back-reference RE2 lacks"
                )
            out.append(char)
        else:
            out.append(char)
        i += 1
    return "".join(out)


# --------------------------------------------------------------------------------------------------------------
# Evaluation


def quote(name: str) -> str:
    """A DuckDB identifier for any column name."""
    return '"' + str(name).replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A DuckDB literal for a suite value (a string, number or bool)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return f"'{value}'::DOUBLE"
        return repr(value) + "::DOUBLE"
    return "'" + str(value).replace("'", "''") + "'"


def _kind(column_type: str) -> str:
    upper = column_type.upper()
    if upper.startswith(_NUMERIC_TYPES):
        return "number"
    if upper.startswith(_TEXT_TYPES):
        return "text"
    return "other"


def _value_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return "other"


@dataclass
class _Plan:
    expectation: CompiledExpectation
    unexpected: str | None = None  # SQL condition of an unexpected row (column map expectations)
    error: str | None = None
    missing: tuple[str, ...] = ()


def _plan(expectation: CompiledExpectation, types: Mapping[str, str], present: set[str]) -> _Plan:
    plan = _Plan(expectation)
    missing = tuple(column for column in expectation.columns if column not in present)
    kind = expectation.expectation_type
    if kind.startswith("expect_table_"):
        plan.missing = missing  # as failures_of names them; the rule itself says what is wrong
        return plan
    missing = tuple(column for column in expectation.columns if column not in present or column not in types)
    if missing:
        plan.missing = missing
        plan.error = f'Error: The column "{missing[0]}" in BatchData does not exist.'
        return plan
    kwargs = expectation.kwargs
    if kind in COLUMN_MAP_TYPES:
        column = kwargs["column"]
        ref = quote(column)
        column_kind = _kind(types[column])
        if kind == "expect_column_values_to_not_be_null":
            plan.unexpected = f"{ref} IS NULL"
        elif kind == "expect_column_values_to_be_between":
            low, high = kwargs.get("min_value"), kwargs.get("max_value")
            if low is not None and high is not None and low > high:
                plan.error = "min_value cannot be greater than max_value"
                return plan
            bounds = [bound for bound in (low, high) if bound is not None]
            if any(_value_kind(bound) != ("text" if column_kind == "text" else "number") for bound in bounds):
                plan.error = "Column values, min_value, and max_value must either be None or of the same type."
                return plan
            inside = []
            if low is not None:
                inside.append(f"{ref} {'>' if kwargs.get('strict_min') else '>='} {literal(low)}")
            if high is not None:
                inside.append(f"{ref} {'<' if kwargs.get('strict_max') else '<='} {literal(high)}")
            plan.unexpected = f"{ref} IS NOT NULL AND NOT ({' AND '.join(inside)})"
        elif kind == "expect_column_values_to_match_regex":
            text = ref if column_kind == "text" else f"CAST({ref} AS VARCHAR)"
            plan.unexpected = f"{ref} IS NOT NULL AND NOT regexp_matches({text}, {literal(expectation.regex)})"
        elif kind == "expect_column_values_to_be_in_set":
            wanted = "text" if column_kind == "text" else "number" if column_kind == "number" else None
            members = [value for value in (kwargs.get("value_set") or []) if _value_kind(value) == wanted]
            if wanted is None:
                members = [str(value) for value in kwargs.get("value_set") or []]
                ref = f"CAST({ref} AS VARCHAR)"
            listed = ", ".join(literal(value) for value in members)
            plan.unexpected = f"{quote(column)} IS NOT NULL" + (f" AND {ref} NOT IN ({listed})" if listed else "")
    return plan


def _table_failure(expectation: CompiledExpectation, columns: Sequence[str]) -> dict | None:
    """GX's result for a table-columns expectation, or None when it passes."""
    from itertools import zip_longest

    kwargs = expectation.kwargs
    actual = list(columns)
    if expectation.expectation_type == "expect_table_columns_to_match_ordered_list":
        expected = kwargs.get("column_list")
        if expected is None or actual == list(expected):
            return None
        mismatched = [
            {"Expected Column Position": i, "Expected": k, "Found": v}
            for i, k, v in zip_longest(range(max(len(expected), len(actual))), list(expected), actual)
            if k != v
        ]
        return {"observed_value": actual, "details": {"mismatched": mismatched}}
    expected_set = set(kwargs.get("column_set") or [])
    exact = kwargs.get("exact_match", True)
    unexpected, missing = sorted(set(actual) - expected_set), sorted(expected_set - set(actual))
    if not unexpected and not missing:
        return None
    if not exact and not missing:
        return None
    mismatched = {}
    if unexpected:
        mismatched["unexpected"] = unexpected
    if missing:
        mismatched["missing"] = missing
    return {"observed_value": sorted(str(c) for c in actual), "details": {"mismatched": mismatched}}


def _distinct_sql(expectation: CompiledExpectation, types: Mapping[str, str]) -> str:
    column = expectation.kwargs["column"]
    return f"list(DISTINCT {quote(column)}) FILTER (WHERE {quote(column)} IS NOT NULL)"


def _missing_from(expectation: CompiledExpectation, present: Sequence[Any]) -> list[Any]:
    seen = set(present or [])
    wanted = list(dict.fromkeys(expectation.kwargs.get("value_set") or []))
    # GX coerces the set to the column's type (e.g. '2024-01-01' to a date); as text or numbers, a value is itself
    return sorted((value for value in wanted if value not in seen), key=lambda value: (str(type(value)), value))


def _compound_keys(expectation: CompiledExpectation) -> tuple[list[str], str]:
    keys = list(expectation.kwargs["column_list"])
    ignore = expectation.kwargs.get("ignore_row_if", "all_values_are_missing")
    joiner = {"all_values_are_missing": " OR ", "any_value_is_missing": " AND "}.get(ignore)
    keep = "TRUE" if joiner is None else "(" + joiner.join(f"{quote(k)} IS NOT NULL" for k in keys) + ")"
    return keys, keep


def evaluate(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    expectations: Sequence[CompiledExpectation],
    *,
    line_column: str,
    max_rows: int,
    flagged_rows: int | None = None,
    labels: Any = None,
    columns: Sequence[str] | None = None,
    suite_expectations: Sequence[Mapping[str, Any]] = (),
) -> list:
    """Evaluate compiled ``expectations`` over ``relation`` (SQL text naming a table, a view or a registered
    object); return the :class:`~orchestration.contracts.ExpectationFailure` records of those that failed.

    Offending rows are reported by ``line_column`` (in its order), or by ``labels[line]`` when ``labels`` is
    given (a frame's index, with ``line_column`` its positions). ``columns`` are the columns the table-columns
    rules see (default: the relation's, without ``line_column``; a frame's own, which may repeat a name).
    An error reports its first ``max_rows`` rows, a warning (GX ``warning``/``info``) its first ``flagged_rows``
    (each flagged row is recorded). Failures come in GX's order for ``suite_expectations`` (the suite's JSON).
    """
    from orchestration.contracts import SEVERITY_OF_GX, ExpectationFailure

    described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    types = {row[0]: row[1] for row in described if row[0] != line_column}
    columns = list(types) if columns is None else list(columns)
    present = set(columns)
    plans = [_plan(expectation, types, present) for expectation in expectations]

    # One scan: every column map expectation's unexpected and non-null counts, every distinct set.
    selects: list[str] = ["count(*)"]
    slots: dict[int, tuple[int, ...]] = {}
    for index, plan in enumerate(plans):
        if plan.error:
            continue
        expectation = plan.expectation
        kind = expectation.expectation_type
        if plan.unexpected is not None:
            column = quote(expectation.kwargs["column"])
            slots[index] = (len(selects), len(selects) + 1)
            selects += [f"count(*) FILTER (WHERE {plan.unexpected})", f"count({column})"]
        elif kind == "expect_column_distinct_values_to_contain_set":
            slots[index] = (len(selects),)
            selects.append(_distinct_sql(expectation, types))
        elif kind == "expect_compound_columns_to_be_unique":
            keys, keep = _compound_keys(expectation)
            grouped = ", ".join(quote(k) for k in keys)
            slots[index] = (len(selects),)
            selects.append(
                f"(SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM {relation} WHERE {keep} "
                f"GROUP BY {grouped} HAVING count(*) > 1))"
            )
    try:
        totals = con.execute(f"SELECT {', '.join(selects)} FROM {relation}").fetchone()
    except duckdb.Error:
        totals = None  # some expectation cannot run on this data: find which, one by one
    if totals is None:
        totals = [None] * len(selects)
        totals[0] = con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
        for index, positions in slots.items():
            try:
                values = con.execute(f"SELECT {', '.join(selects[p] for p in positions)} FROM {relation}").fetchone()
            except duckdb.Error as error:
                plans[index].error = str(error)
                continue
            for p, value in zip(positions, values, strict=True):
                totals[p] = value
    element_count = int(totals[0])

    failed: list[tuple[_Plan, dict, int]] = []
    for index, plan in enumerate(plans):
        expectation = plan.expectation
        kind = expectation.expectation_type
        if plan.error:
            failed.append((plan, {}, 0))
            continue
        if kind.startswith("expect_table_"):
            result = _table_failure(expectation, columns)
            if result is not None:
                failed.append((plan, result, 0))
            continue
        positions = slots[index]
        if kind == "expect_column_distinct_values_to_contain_set":
            missing = _missing_from(expectation, totals[positions[0]])
            if missing:
                failed.append(
                    (plan, {"observed_value": None, "missing_count": len(missing), "partial_missing_list": missing}, 0)
                )
            continue
        if kind == "expect_compound_columns_to_be_unique":
            unexpected = int(totals[positions[0]])
            nonnull = element_count
        else:
            unexpected, nonnull = int(totals[positions[0]]), int(totals[positions[1]])
            if kind == "expect_column_values_to_not_be_null":
                nonnull = element_count
        if unexpected == 0:
            continue
        mostly = expectation.kwargs.get("mostly")
        if mostly is not None and nonnull and (nonnull - unexpected) / nonnull >= float(mostly):
            continue
        failed.append((plan, {"element_count": element_count, "unexpected_count": unexpected}, unexpected))

    if not failed:
        return []
    line = quote(line_column)
    failures = []
    for plan, result, unexpected in failed:
        expectation = plan.expectation
        severity = SEVERITY_OF_GX.get(expectation.gx_severity, "error")
        limit = max(max_rows, flagged_rows or 0) if severity == "warn" else max_rows
        rows: tuple = ()
        values: tuple = ()
        if unexpected:
            if expectation.expectation_type == "expect_compound_columns_to_be_unique":
                keys, keep = _compound_keys(expectation)
                grouped = ", ".join(quote(k) for k in keys)
                found = con.execute(
                    f"SELECT {line}, {grouped} FROM (SELECT {line}, {grouped}, count(*) OVER (PARTITION BY {grouped})"
                    f" AS __n FROM {relation} WHERE {keep}) WHERE __n > 1 ORDER BY {line} LIMIT {int(limit)}"
                ).fetchall()
                values = tuple(dict(zip(keys, row[1:], strict=True)) for row in found)
            else:
                column = quote(expectation.kwargs["column"])
                found = con.execute(
                    f"SELECT {line}, {column} FROM {relation} WHERE {plan.unexpected} ORDER BY {line} "
                    f"LIMIT {int(limit)}"
                ).fetchall()
                values = tuple(row[1] for row in found)
            rows = tuple(labels[row[0]] if labels is not None else row[0] for row in found)
            result = {**result, "partial_unexpected_list": list(values)}
        failures.append(
            ExpectationFailure(
                rule=expectation.rule,
                description=expectation.description,
                expectation_type=expectation.expectation_type,
                columns=expectation.columns,
                rows=rows,
                values=values,
                unexpected_count=unexpected,
                result=result,
                missing_columns=plan.missing,
                error=plan.error,
                severity="error" if plan.error else severity,
            )
        )
    return gx_order(failures, suite_expectations)


def gx_order(failures: Sequence, suite_expectations: Sequence[Mapping[str, Any]]) -> list:
    """Failures in the order GX reports a whole suite run once: those whose metrics could not be computed
    first, then by the suite's expectations grouped by their ``column`` argument in order of first appearance
    (GX's ``Validator.process_expectations_for_validation``), ``_nocolumn`` being one group like the others."""
    from orchestration.contracts import _expectation_columns

    groups: dict[str, list[int]] = {}
    for position, expectation in enumerate(suite_expectations):
        column = (expectation.get("kwargs") or {}).get("column")
        groups.setdefault(column if isinstance(column, str) else "\0no column", []).append(position)
    rank: dict[tuple, int] = {}
    for order, position in enumerate(position for group in groups.values() for position in group):
        expectation = suite_expectations[position]
        kind = expectation.get("type") or expectation.get("expectation_type")
        meta = expectation.get("meta") or {}
        key = (kind, meta.get("rule", kind), _expectation_columns(expectation.get("kwargs") or {}))
        rank.setdefault(key, order)

    def place(failure) -> tuple[bool, int]:
        key = (failure.expectation_type, failure.rule, tuple(failure.columns))
        return failure.error is None, rank.get(key, len(rank))

    return sorted(failures, key=place)


def validate_relation(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    suite_name: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    line_column: str = "source_row",
    directory: Path | None = None,
    max_rows: int | None = None,
    labels: Any = None,
    columns: Sequence[str] | None = None,
) -> list:
    """Validate ``relation`` against the suite ``suite_name`` in SQL; return the failed expectations."""
    from orchestration.contracts import MAX_FLAGGED_ROWS_PER_RULE
    from orchestration.raw import MAX_ROWS_PER_RULE

    suite = load_suite_json(suite_name, directory)
    expectations = compile_suite(suite, parameters)
    return evaluate(
        con,
        relation,
        expectations,
        line_column=line_column,
        max_rows=MAX_ROWS_PER_RULE if max_rows is None else max_rows,
        flagged_rows=MAX_FLAGGED_ROWS_PER_RULE,
        labels=labels,
        columns=columns,
        suite_expectations=suite.get("expectations", []),
    )


#: The name a frame's row positions get in the relation the SQL engine validates.
POSITION_COLUMN = "__contract_position__"


def validate_frame_sql(
    frame,
    suite_name: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    directory: Path | None = None,
    max_rows: int | None = None,
) -> list:
    """:func:`orchestration.contracts.validate_frame` in DuckDB: the frame is registered (not copied) in an
    in-memory connection with its row positions as the line column; rows are reported by the frame's index."""
    import numpy as np

    if POSITION_COLUMN in frame.columns:
        raise ValueError(f"the frame has a column named {POSITION_COLUMN!r}")
    batch = frame.reset_index(drop=True)
    batch[POSITION_COLUMN] = np.arange(len(batch), dtype=np.int64)
    con = _connection()
    name = f"contract_batch_{threading.get_ident()}"
    con.register(name, _as_arrow(batch))
    try:
        return validate_relation(
            con,
            quote(name),
            suite_name,
            parameters,
            line_column=POSITION_COLUMN,
            directory=directory,
            max_rows=max_rows,
            labels=frame.index,
            columns=[str(column) for column in frame.columns],
        )
    finally:
        con.unregister(name)


def _as_arrow(frame):
    """The frame as an Arrow table for DuckDB to scan, or the frame itself when it has no exact Arrow form.

    DuckDB scans a registered pandas frame by turning each Arrow-backed column (the feeds' text) into a NumPy
    array of Python strings, once for every query, with the GIL held: 5 s of the bundled samples' 80 s of
    ingest, while the thread loading the previous file waited. An Arrow table is scanned in place, so each of
    the suite's queries reads the same buffers. Arrow names columns by position and keeps repeated names, which
    DuckDB would rename: a frame that repeats a column name is registered as it is, as is one whose object
    columns mix types that Arrow cannot hold in one column (GX's semantics are the same either way:
    ``tests/test_contracts_sql.py`` referees both against GX)."""
    import pyarrow as pa

    if frame.columns.has_duplicates:
        return frame
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return frame


_local = threading.local()


def _connection() -> duckdb.DuckDBPyConnection:
    """This thread's in-memory DuckDB connection for validating frames (opening one costs a few milliseconds)."""
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect(":memory:")
    return con
