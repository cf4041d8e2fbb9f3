"""The marts' quality gate: every mart validated against its Great Expectations suite before it is published.

dbt tests cover keys and relationships. The suites in ``expectations/marts/<table>.json`` say what dbt says badly:
ranges (a percentage between 0 and 100, no negative count), distributions (the median wait of a plausible size)
and cross-checks between columns (Part_2A within Part_2, long waits nested, SPC limits in order, no patient-derived
count between 1 and 4 that escaped suppression). Each mart is read from the build database into pandas and
validated as one batch by the runner the file contracts use (:mod:`orchestration.contracts`; SPEC §11: GX's SQL
datasource cannot validate DuckDB tables). A suite bounds dates with ISO text (``"2010-04-01"``).

The Dagster side is a blocking asset check per mart, run as two steps (the dbt marts, then the benefits marts
computed from them): a failed expectation stops the publish, so the dashboards keep the last good data. Every
result that differs from the mart's last is recorded in ``audit.mart_checks``, and ``fct_data_quality`` shows each
mart's latest (the check step writes it into the built mart, whose dbt model reads it from the audit table on the
next build); the run's GX Data Docs are built under ``WAREHOUSE/data_docs/``.
"""

import hashlib
import json
import logging
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from orchestration import audit, progress
from orchestration.contracts import (
    EXPECTATIONS_DIR,
    ExpectationFailure,
    build_data_docs,
    failures_of,
    load_suite,
    run_suite,
)
from orchestration.publish import SERVED_SCHEMAS
from orchestration.resources import WarehouseResource

log = logging.getLogger(__name__)

#: Where the mart suites live: ``expectations/marts/<table>.json``, one per served table.
MART_EXPECTATIONS_DIR = EXPECTATIONS_DIR / "marts"
#: The name of each mart's blocking check (asset check ``marts/<table>:gx_suite``).
CHECK_NAME = "gx_suite"
#: At most this many offending rows are quoted per failed expectation.
EXAMPLES = 3


@dataclass(frozen=True)
class MartValidation:
    """One mart against its suite. ``problems`` are sentences naming each failed expectation with example rows."""

    table: str
    rows: int
    expectations: int
    failures: tuple[ExpectationFailure, ...]
    problems: tuple[str, ...]
    #: GX's validation result (for Data Docs; its JSON when ``unchanged``); ``None`` when the mart has no suite
    validation: Any = None
    #: The result of the last clean pass, reused: nothing the suite judges changed since (the rows, the suite, the
    #: month)
    unchanged: bool = False

    @property
    def passed(self) -> bool:
        """No error-severity expectation failed (a warning is recorded and shown, and does not block)."""
        return not self.errors

    @property
    def errors(self) -> tuple[str, ...]:
        """The problems of failed expectations whose severity is ``error`` (and a missing suite)."""
        if not self.failures:
            return self.problems
        return tuple(p for f, p in zip(self.failures, self.problems, strict=True) if f.severity == "error")

    @property
    def warnings(self) -> tuple[str, ...]:
        """The problems of failed expectations whose severity is ``warn``."""
        return tuple(p for f, p in zip(self.failures, self.problems, strict=False) if f.severity != "error")

    @property
    def suite_path(self) -> Path:
        return MART_EXPECTATIONS_DIR / f"{self.table}.json"


def served_marts(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The tables of the build database that publishing copies to the serving database."""
    rows = con.execute(
        "select table_name from duckdb_tables() where database_name = current_database() "
        "and list_contains(?, schema_name) order by table_name",
        [list(SERVED_SCHEMAS)],
    ).fetchall()
    return [table for (table,) in rows]


def suite_names() -> list[str]:
    """The marts that have a suite (file names under ``expectations/marts/``)."""
    return sorted(path.stem for path in MART_EXPECTATIONS_DIR.glob("*.json"))


@cache
def _suite_meta(table: str) -> dict:
    return json.loads((MART_EXPECTATIONS_DIR / f"{table}.json").read_text(encoding="utf-8")).get("meta") or {}


def parameters(today: date | None = None) -> dict[str, Any]:
    """Values for the suites' ``$PARAMETER`` placeholders: ``latest_month``, the first day of the current month."""
    today = today or date.today()
    return {"latest_month": f"{today:%Y-%m}-01T00:00:00"}


def mart_frame(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A mart (or just ``columns`` of it) as pandas, its dates and timestamps as ``datetime64[ns]``: GX compares
    those with the suites' ISO text bounds (``"2010-04-01"``) in one vectorised step, but not DuckDB's microsecond
    datetimes."""
    schema = SERVED_SCHEMAS[0]
    selected = "*" if columns is None else ", ".join(f'"{column}"' for column in columns)
    frame = con.execute(f'select {selected} from {schema}."{table}"').df()
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]) and frame[column].dtype != "datetime64[ns]":
            frame[column] = frame[column].astype("datetime64[ns]")
    return frame


def _used_columns(table: str, columns: Sequence[str]) -> list[str]:
    """The columns the suite reads (expectation columns, row conditions) and the mart's key, in the mart's order.

    GX copies the batch for many expectations; reading and validating only these columns (not, say, a list of 105
    week bands per row, which alone took a second to bring into pandas for the national RTT mart) keeps a mart's
    check to a fraction of a second.
    """
    body = json.loads((MART_EXPECTATIONS_DIR / f"{table}.json").read_text(encoding="utf-8"))
    wanted = set(_suite_meta(table).get("key") or [])
    for expectation in body["expectations"]:
        kwargs = expectation["kwargs"]
        for name in ("column", "column_A", "column_B"):
            if name in kwargs:
                wanted.add(kwargs[name])
        wanted.update(kwargs.get("column_list") or [])
        condition = kwargs.get("row_condition") or ""
        wanted.update(column for column in columns if re.search(rf"\b{re.escape(column)}\b", condition))
    return [column for column in columns if column in wanted]


#: Expectations about a column's distribution as a whole (a mean, a median, …) rather than about each value.
AGGREGATE_EXPECTATIONS = frozenset(
    {
        "expect_column_mean_to_be_between",
        "expect_column_median_to_be_between",
        "expect_column_quantile_values_to_be_between",
        "expect_column_stdev_to_be_between",
        "expect_column_sum_to_be_between",
        "expect_column_min_to_be_between",
        "expect_column_max_to_be_between",
    }
)


def _nothing_to_judge(expectation, frame: pd.DataFrame) -> bool:
    """True for a distribution expectation whose rows hold no value (an empty mart, or no acute rows yet): a
    distribution of nothing is neither right nor wrong, so it is left out rather than failed (GX fails it)."""
    if expectation.expectation_type not in AGGREGATE_EXPECTATIONS:
        return False
    rows = frame
    condition = getattr(expectation, "row_condition", None)
    condition = getattr(condition, "pass_through_filter", condition)  # GX keeps a pandas condition's text there
    if condition:
        rows = frame.query(condition, engine="python")
    return rows[expectation.column].notna().sum() == 0


def _example(frame: pd.DataFrame, key: Sequence[str], failure: ExpectationFailure, row: Any) -> str:
    cells = [column for column in key if column in frame.columns]
    cells += [column for column in failure.columns if column in frame.columns and column not in cells]
    record = frame.loc[row, cells] if cells else {}
    return ", ".join(f"{column}={_show(record[column])}" for column in cells)


def _show(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
        return "null"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d" if value == value.normalize() else "%Y-%m-%d %H:%M:%S")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def describe(table: str, frame: pd.DataFrame, failure: ExpectationFailure) -> str:
    """One sentence for a failed expectation: the rule, what it means, how many rows, and example rows."""
    key = _suite_meta(table).get("key") or []
    if failure.error is not None:
        return f"{failure.rule}: the check could not run ({failure.error})"
    what = f"{failure.rule}: {failure.description}"
    if failure.rows:
        examples = "; ".join(_example(frame, key, failure, row) for row in failure.rows[:EXAMPLES])
        more = f" (and {failure.unexpected_count - EXAMPLES} more)" if failure.unexpected_count > EXAMPLES else ""
        return f"{what}: {failure.unexpected_count} row(s) break it, e.g. {examples}{more}"
    observed = failure.result.get("observed_value")
    return f"{what} (observed: {_show(observed)})"


def validate_mart(con: duckdb.DuckDBPyConnection, table: str, *, today: date | None = None) -> MartValidation:
    """Validate one mart of the build database against ``expectations/marts/<table>.json``."""
    if not (MART_EXPECTATIONS_DIR / f"{table}.json").exists():
        rows = con.execute(f'select count(*) from {SERVED_SCHEMAS[0]}."{table}"').fetchone()[0]
        return MartValidation(
            table,
            rows,
            0,
            (),
            (f"no_suite: the mart has no GX suite; add expectations/marts/{table}.json (every served mart needs one)",),
        )
    fingerprint = _mart_fingerprint(con, table, today)
    cached = _cached_pass(con, table, fingerprint)
    if cached is not None:
        return cached
    columns = [row[0] for row in con.execute(f'describe {SERVED_SCHEMAS[0]}."{table}"').fetchall()]
    frame = mart_frame(con, table, _used_columns(table, columns) or None)  # a suite of table rules only: all
    suite = load_suite(table, MART_EXPECTATIONS_DIR)
    suite.expectations = [e for e in suite.expectations if not _nothing_to_judge(e, frame)]
    # BASIC first (cheap, and enough for Data Docs); only a failing mart is validated again to find its rows
    validation = run_suite(frame, table, parameters(today), suite=suite, summary=False)
    if not validation.success:
        validation = run_suite(frame, table, parameters(today), suite=suite)
    failures = tuple(failures_of(validation, frame))
    problems = tuple(describe(table, frame, failure) for failure in failures)
    checked = MartValidation(table, len(frame), len(validation.results), failures, problems, validation)
    if not problems:
        _remember_pass(con, checked, fingerprint)
    return checked


#: Clean passes of a mart's suite, by what they judged (issue 14, item 3: suites run on the marts that changed).
CACHE_TABLE = "audit.mart_check_cache"


def _mart_fingerprint(con: duckdb.DuckDBPyConnection, table: str, today: date | None) -> str:
    """What a mart's result depends on: its rows (count and the sum of their hashes, computed in DuckDB), its
    suite's text and the suite's parameters (the current month)."""
    rows, hashes = con.execute(f'select count(*), sum(hash(t)) from {SERVED_SCHEMAS[0]}."{table}" t').fetchone()
    suite = (MART_EXPECTATIONS_DIR / f"{table}.json").read_bytes()
    digest = hashlib.sha256(f"{rows}:{hashes}:{json.dumps(parameters(today), sort_keys=True)}:".encode() + suite)
    return digest.hexdigest()


def _ensure_cache(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists audit")
    con.execute(
        f"create table if not exists {CACHE_TABLE} (mart varchar primary key, fingerprint varchar, rows bigint, "
        "expectations integer, validation json, checked_at timestamp)"
    )


def _cached_pass(con: duckdb.DuckDBPyConnection, table: str, fingerprint: str) -> MartValidation | None:
    """The mart's last clean pass when nothing it judged has changed since: the same rows, suite and month."""
    _ensure_cache(con)
    row = con.execute(
        f"select rows, expectations, validation from {CACHE_TABLE} where mart = ? and fingerprint = ?",
        [table, fingerprint],
    ).fetchone()
    if row is None:
        return None
    rows, expectations, validation = row
    return MartValidation(table, rows, expectations, (), (), json.loads(validation), unchanged=True)


def _remember_pass(con: duckdb.DuckDBPyConnection, checked: MartValidation, fingerprint: str) -> None:
    _ensure_cache(con)
    con.execute(
        f"insert or replace into {CACHE_TABLE} values (?, ?, ?, ?, ?, ?)",
        [
            checked.table,
            fingerprint,
            checked.rows,
            checked.expectations,
            json.dumps(checked.validation.to_json_dict()),
            datetime.now(UTC).replace(tzinfo=None),
        ],
    )


def validate_marts(
    con: duckdb.DuckDBPyConnection, tables: Sequence[str] | None = None, *, today: date | None = None
) -> list[MartValidation]:
    """Validate every served mart (or ``tables``) of the build database."""
    tables = list(tables or served_marts(con))
    phase = progress.current()
    phase.set_total(len(tables))
    validations = []
    for table in tables:
        phase.busy_with(table)
        validations.append(validate_mart(con, table, today=today))
        phase.advance()
    return validations


def _result_rows(v: MartValidation) -> list[tuple[str, bool, float | None, str]]:
    """A mart's result as ``(check_name, success, observed_value, details)`` rows: one for the suite
    (``mart_suite``: passed or not, how many expectations failed) and one per failed expectation
    (``mart_expectation:<rule>``: how many rows break it, with examples)."""
    # no row count: fct_data_quality holds these rows itself, so its count would change the result it records
    if not v.problems:
        summary = f"{v.expectations} expectations passed (expectations/marts/{v.table}.json)"
    elif v.passed:
        summary = f"passed with {len(v.warnings)} warning(s) of {v.expectations} expectations: " + " | ".join(
            v.warnings
        )
    else:
        summary = f"{len(v.problems)} of {v.expectations} expectations failed: " + " | ".join(v.problems)
    rows = [("mart_suite", v.passed, float(len(v.problems)), summary)]
    rows += [
        (
            f"mart_{'expectation' if failure.severity == 'error' else 'warning'}:{failure.rule}",
            False,
            float(failure.unexpected_count),
            problem,
        )
        for failure, problem in zip(v.failures, v.problems, strict=False)
    ]
    if not v.failures and not v.passed:  # no suite at all
        rows.append(("mart_expectation:no_suite", False, None, v.problems[0]))
    return rows


def record_mart_checks(con: duckdb.DuckDBPyConnection, run_id: str, validations: Sequence[MartValidation]) -> None:
    """Record each mart's result in ``audit.mart_checks`` and make it the mart's rows of ``fct_data_quality``.

    A result is recorded when it differs from the mart's last recorded one; a run that finds what the last did
    (the same files loaded again, say) records nothing, so re-running changes nothing served and a killed run's
    recovery serves what an uninterrupted run would. ``fct_data_quality`` shows each mart's latest result, with
    the run that first found it; ``audit.mart_checks`` keeps every change.
    """
    audit.ensure_audit_schema(con)
    now = datetime.now(UTC).replace(tzinfo=None)
    quality = f"{SERVED_SCHEMAS[0]}.fct_data_quality"
    has_quality_mart = con.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = ? and table_name = 'fct_data_quality'",
        [SERVED_SCHEMAS[0]],
    ).fetchone()[0]
    for v in validations:
        rows = _result_rows(v)
        last = con.execute(
            """select check_name, success, observed_value, details from audit.mart_checks
               where mart = ? and run_id = (
                   select run_id from audit.mart_checks where mart = ? order by checked_at desc limit 1)""",
            [v.table, v.table],
        ).fetchall()
        if sorted(last, key=repr) == sorted(rows, key=repr):
            continue
        con.executemany(
            "insert into audit.mart_checks values (?, ?, ?, ?, ?, ?, ?)", [(run_id, now, v.table, *row) for row in rows]
        )
        if has_quality_mart:
            con.execute(
                f"delete from {quality} where source = ? "
                "and (check_name = 'mart_suite' or check_name like 'mart_expectation:%' "
                "or check_name like 'mart_warning:%')",
                [v.table],
            )
            con.executemany(
                f"insert into {quality} "
                "(run_id, run_at, source, period_month, check_name, success, observed_value, details) "
                "values (?, ?, ?, null, ?, ?, ?, ?)",
                [(run_id, now, v.table, *row) for row in rows],
            )


def save_validations(warehouse: WarehouseResource, run_id: str, validations: Sequence[MartValidation]) -> Path:
    """Keep this run's GX results as JSON (``WAREHOUSE/gx_validations/<run id>/<mart>.json``) so that the run's
    Data Docs can show the results of every check step, whichever process ran it; earlier runs' are removed."""
    folder = warehouse.warehouse_path / "gx_validations"
    for old in folder.glob("*"):
        if old.is_dir() and old.name != run_id:
            shutil.rmtree(old, ignore_errors=True)
    run_folder = folder / run_id
    run_folder.mkdir(parents=True, exist_ok=True)
    for v in validations:
        if v.validation is not None:
            validation = v.validation if isinstance(v.validation, dict) else v.validation.to_json_dict()
            (run_folder / f"{v.table}.json").write_text(json.dumps(validation), encoding="utf-8")
    return run_folder


def build_run_data_docs(warehouse: WarehouseResource, run_id: str) -> Path:
    """The run's Data Docs: every suite (file contracts and marts) and every mart validation of the run so far."""
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema

    schema = ExpectationSuiteValidationResultSchema()
    saved = sorted((warehouse.warehouse_path / "gx_validations" / run_id).glob("*.json"))
    return build_data_docs(
        warehouse.data_docs_path,
        [(path.stem, schema.load(json.loads(path.read_text(encoding="utf-8")))) for path in saved],
        run_name=run_id,
        suite_dirs=(EXPECTATIONS_DIR, MART_EXPECTATIONS_DIR),
    )


def _check_marts(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource, keys: Sequence[AssetKey], last: bool
):
    """Validate the marts of ``keys``, record the results, build the Data Docs (in the ``last`` check step of a run,
    or in any step that failed, since nothing after it will), and yield one check result per mart."""
    run_id = context.op_execution_context.run_id
    names = ", ".join(key.path[-1] for key in keys) if len(keys) <= 4 else f"{len(keys)} marts"
    with progress.phase(f"Mart checks (GX suites): {names}") as phase:
        con = warehouse.connect_build()
        try:
            built = set(served_marts(con))
            validations = validate_marts(con, [key.path[-1] for key in keys if key.path[-1] in built])
            record_mart_checks(con, run_id, validations)
        finally:
            con.close()
        docs = None
        try:
            save_validations(warehouse, run_id, validations)
            if last or not all(v.passed for v in validations):
                phase.busy_with("building the GX Data Docs")
                docs = build_run_data_docs(warehouse, run_id)
                context.log.info(f"GX Data Docs: {docs}")
        except Exception:  # documentation, not a gate: the checks above decide; say loudly that the docs are missing
            log.exception("building the GX Data Docs failed")
            context.log.error("Building the GX Data Docs failed; the mart checks ran and their results stand.")
        failed = [v.table for v in validations if not v.passed]
        missing = len(keys) - len(validations)
        unchanged = sum(v.unchanged for v in validations)
        phase.finish(
            f"{len(validations) - len(failed)} of {len(keys)} marts passed"
            + (f" ({unchanged} unchanged since their last check)" if unchanged else "")
            + (f"; failed: {', '.join(failed)}" if failed else "")
            + (f"; {missing} not built" if missing else "")
            + ("; Data Docs built" if docs else ""),
            failed=bool(failed or missing),
        )
    by_table = {v.table: v for v in validations}
    for key in keys:
        found = by_table.get(key.path[-1])
        metadata = {"data_docs": MetadataValue.path(str(docs))} if docs else {}
        if found is None:
            yield AssetCheckResult(
                asset_key=key,
                check_name=CHECK_NAME,
                passed=False,
                severity=AssetCheckSeverity.ERROR,
                metadata={**metadata, "problems": MetadataValue.json(["the mart is not in the build database"])},
            )
            continue
        yield AssetCheckResult(
            asset_key=key,
            check_name=CHECK_NAME,
            passed=found.passed,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                **metadata,
                "rows": found.rows,
                "expectations": found.expectations,
                "unchanged_since_last_check": found.unchanged,
                "expectations_failed": len(found.errors),
                "problems": MetadataValue.json(list(found.errors)),
                "warnings": MetadataValue.json(list(found.warnings)),
            },
        )


def build_mart_checks(name: str, mart_keys: Sequence[AssetKey], description: str, *, last: bool = False):
    """A blocking asset check per mart (``marts/<table>:gx_suite``), run together as one step named ``name``.

    The dbt marts and the benefits marts get one such step each: the benefits marts are computed from the dbt marts,
    so their checks must run after the dbt marts' checks have let them be built. ``last``: the run's last check
    step, which builds the Data Docs.
    """
    keys = list(mart_keys)

    @multi_asset_check(
        name=name,
        specs=[
            AssetCheckSpec(
                CHECK_NAME,
                asset=key,
                blocking=True,
                description=(
                    f"The mart passes its Great Expectations suite expectations/marts/{key.path[-1]}.json (ranges, "
                    "distributions, cross-checks). Blocking: a failure stops what is built from it and the "
                    "publish, so the dashboards keep the last good data. Results go to fct_data_quality and the "
                    "run's GX Data Docs."
                ),
            )
            for key in keys
        ],
        description=description,
    )
    def mart_gx_suites(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
        yield from _check_marts(context, warehouse, keys, last)

    return mart_gx_suites
