"""Run a Great Expectations suite from ``expectations/<name>.json`` on a pandas frame and say what broke, where.

The rules of a file contract live in the suite JSON, where they can be read and reviewed without reading Python;
this module is the small, source-independent runner. GX validates the frame as a pandas batch in an ephemeral
context (SPEC §11: its SQL datasource cannot validate DuckDB tables), once per file. Each failed expectation
becomes :class:`ExpectationFailure` records and then :class:`~orchestration.raw.ContractViolation` records that
name the file, the line, the column and the rule.

Each expectation's ``meta`` in the suite carries ``rule`` (a short, stable rule id used in reason files) and
``description`` (what the rule means, in words); the runner falls back to the GX expectation type.

The marts' suites (``expectations/marts/``, :mod:`orchestration.quality`) run through the same runner, and
:func:`build_data_docs` turns a run's suites and results into GX Data Docs.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from orchestration.raw import MAX_ROWS_PER_RULE, ContractViolation

#: GX's severities → ours (SPEC §8): ``critical`` quarantines the file (``error``); ``warning`` and ``info`` load
#: it and flag the offending rows (``warn``).
SEVERITY_OF_GX = {"critical": "error", "warning": "warn", "info": "warn"}

#: A warning's rows are all recorded (each flags the figures it touches), up to this many per rule and file.
MAX_FLAGGED_ROWS_PER_RULE = 1000


def severity_of(expectation_or_config) -> str:
    """Our severity (``error`` or ``warn``) of a GX expectation or expectation configuration."""
    value = getattr(expectation_or_config, "severity", "critical")
    return SEVERITY_OF_GX[str(getattr(value, "value", value)).lower()]


#: Where suites live: ``<repo>/expectations/<name>.json``.
EXPECTATIONS_DIR = Path(__file__).resolve().parent.parent / "expectations"


@dataclass(frozen=True)
class ExpectationFailure:
    """One expectation that did not pass on one frame.

    ``rows`` are index labels of the frame (line numbers, when the frame is indexed by line) of up to
    ``max_rows`` offending rows, with their ``values``; ``unexpected_count`` counts them all. ``missing_columns``
    lists the columns the expectation needs that the frame lacks (GX then raises instead of checking).
    """

    rule: str
    description: str
    expectation_type: str
    columns: tuple[str, ...]
    rows: tuple[Any, ...]
    values: tuple[Any, ...]
    unexpected_count: int
    result: Mapping[str, Any]
    missing_columns: tuple[str, ...] = ()
    error: str | None = None
    severity: str = "error"

    @property
    def column(self) -> str | None:
        return self.columns[0] if len(self.columns) == 1 else None


_lock = threading.Lock()


_context_lock = threading.Lock()


def _context():
    """One ephemeral GX context per process (each new one leaves a temporary docs directory behind), made once
    even when two threads ask at the same time (:func:`warm_up_in_background`)."""
    with _context_lock:
        return _new_context()


def warm_up_in_background(*modules: str) -> threading.Thread:
    """Import ``modules`` and GX, and make the process's GX context, on a thread of its own (about 3 s of Python
    with the benefits marts' statistics), while the process waits on something else: the run's dbt build, after
    which the mart checks, the benefits marts and the Data Docs need them at once. A failure here is left for
    their first real use to raise and report."""

    def warm_up() -> None:
        try:
            for module in modules:
                importlib.import_module(module)
            _context()
        except Exception:  # noqa: BLE001 - the step that needs it imports it again and says what is wrong
            logging.getLogger(__name__).debug("warming up %s and GX failed", modules, exc_info=True)

    thread = threading.Thread(target=warm_up, name="warm-up")
    thread.start()
    return thread


@lru_cache(maxsize=1)
def _new_context():
    # GX logs at INFO while importing and on every context (docs directory, data sources): keep run logs clean.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)  # it sets INFO
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


@cache
def _batch_definition(suite_name: str):
    return (
        _context()
        .data_sources.add_pandas(f"{suite_name}_source")
        .add_dataframe_asset(f"{suite_name}_frame")
        .add_batch_definition_whole_dataframe("whole_frame")
    )


def load_suite(name: str, directory: Path | None = None):
    """The ExpectationSuite saved as ``<directory>/<name>.json`` (GX 1.x serialisation)."""
    _context()  # imports GX quietly
    import great_expectations as gx

    path = (directory or EXPECTATIONS_DIR) / f"{name}.json"
    return gx.ExpectationSuite(**json.loads(path.read_text(encoding="utf-8")))


def _expectation_columns(kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    if "column" in kwargs:
        return (kwargs["column"],)
    if "column_A" in kwargs:
        return (kwargs["column_A"], kwargs["column_B"])
    if "column_list" in kwargs and isinstance(kwargs["column_list"], list | tuple):
        return tuple(kwargs["column_list"])
    return ()


def run_suite(
    frame: pd.DataFrame,
    suite_name: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    directory: Path | None = None,
    max_rows: int = MAX_ROWS_PER_RULE,
    summary: bool = True,
    suite=None,
):
    """Validate ``frame`` against the suite ``suite_name`` as one pandas batch; return GX's validation result.

    With ``summary`` (GX's SUMMARY result format) offending rows are reported by position (0..n-1) in
    ``partial_unexpected_index_list``: GX 1.x with pandas 3 misreports rows for a frame whose index is not 0..n-1,
    so the frame is validated with a fresh index. Without it (BASIC: observed values and example values, no rows)
    a passing validation costs about a third as much. ``suite`` validates that suite (e.g. a subset of the file's)
    instead of loading ``suite_name``.
    """
    suite = suite if suite is not None else load_suite(suite_name, directory)
    positional = frame.reset_index(drop=True)
    result_format = (
        {"result_format": "SUMMARY", "partial_unexpected_count": max_rows, "return_unexpected_index_query": False}
        if summary
        else {"result_format": "BASIC", "partial_unexpected_count": max_rows}
    )
    with _lock:
        batch = _batch_definition(suite_name).get_batch(batch_parameters={"dataframe": positional})
        return batch.validate(suite, expectation_parameters=dict(parameters or {}), result_format=result_format)


def failures_of(validation, frame: pd.DataFrame) -> list[ExpectationFailure]:
    """The expectations of ``validation`` (a result of :func:`run_suite` on ``frame``) that failed, with their
    offending rows named by ``frame``'s own index labels."""
    labels = frame.index
    present = set(frame.columns)
    failures = []
    for outcome in validation.results:
        if outcome.success:
            continue
        config = outcome.expectation_config
        meta = config.meta or {}
        columns = _expectation_columns(config.kwargs)
        result = outcome.result or {}
        exception = outcome.exception_info or {}
        error = None
        if exception.get("raised_exception"):
            error = exception.get("exception_message")
        else:  # GX nests exceptions per metric when several are involved
            for value in exception.values():
                if isinstance(value, Mapping) and value.get("raised_exception"):
                    error = value.get("exception_message")
                    break
        positions = result.get("partial_unexpected_index_list") or []
        failures.append(
            ExpectationFailure(
                rule=meta.get("rule", config.type),
                description=meta.get("description", config.type.replace("_", " ")),
                expectation_type=config.type,
                columns=columns,
                rows=tuple(labels[int(position)] for position in positions),
                values=tuple(result.get("partial_unexpected_list") or ()),
                unexpected_count=int(result.get("unexpected_count") or len(positions)),
                result=result,
                missing_columns=tuple(column for column in columns if column not in present),
                error=error,
                # a rule that could not run says nothing about the rows: the file is not what it claims to be
                severity="error" if error else severity_of(config),
            )
        )
    return failures


#: Who evaluates file contracts: ``sql`` (DuckDB, the default) or ``gx`` (GX's pandas batch, the referee).
CONTRACT_ENGINES = ("sql", "gx")


def contract_engine(engine: str | None = None) -> str:
    """``engine``, else ``COLLAB_CONTRACT_ENGINE``, else ``sql``; anything else is refused."""
    import os

    chosen = (engine or os.environ.get("COLLAB_CONTRACT_ENGINE") or "sql").strip().lower()
    if chosen not in CONTRACT_ENGINES:
        raise ValueError(f"COLLAB_CONTRACT_ENGINE must be one of {', '.join(CONTRACT_ENGINES)}, not {chosen!r}")
    return chosen


def validate_frame(
    frame: pd.DataFrame,
    suite_name: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    directory: Path | None = None,
    max_rows: int = MAX_ROWS_PER_RULE,
    engine: str | None = None,
) -> list[ExpectationFailure]:
    """Validate ``frame`` against the suite ``suite_name``; return the expectations that failed ([] = passed).

    ``parameters`` fills the suite's ``{"$PARAMETER": …}`` placeholders (values that depend on the file, such as
    its month). Rows are reported by the frame's own index labels.

    ``engine`` (default: ``COLLAB_CONTRACT_ENGINE``, else ``sql``) picks who evaluates the suite: ``sql`` compiles
    it to DuckDB SQL over the registered frame (:mod:`orchestration.contracts_sql`, GX's semantics without
    importing GX), ``gx`` runs GX's pandas batch. With GX, every file passes through here, and almost every file
    passes: the suite is run first with GX's BASIC result format (about a third of the cost), and only the
    expectations that failed are run again with SUMMARY to find their rows.
    """
    if contract_engine(engine) == "sql":
        from orchestration.contracts_sql import validate_frame_sql

        return validate_frame_sql(frame, suite_name, parameters, directory=directory, max_rows=max_rows)
    suite = load_suite(suite_name, directory)
    validation = run_suite(frame, suite_name, parameters, max_rows=max_rows, summary=False, suite=suite)
    if validation.success:
        return []
    results, expectations = validation.results, list(suite.expectations)

    # GX reports results grouped by column, the failed metrics first, not in suite order: match each result to
    # its expectation by type and meta (rule ids are unique within a suite), never by position (which kept a
    # passing expectation in place of a failed one whenever GX reordered a suite of one expectation type).
    def key(configuration) -> tuple[str, str, str | None]:  # (a result's kwargs have their parameters filled)
        meta = json.dumps(configuration.meta or {}, sort_keys=True, default=str)
        return configuration.type, meta, str(configuration.kwargs.get("column"))

    keys = [key(expectation.configuration) for expectation in expectations]
    if len(results) == len(expectations) and len(set(keys)) == len(keys):
        failed = {key(result.expectation_config) for result in results if not result.success}
        suite.expectations = [e for e, k in zip(expectations, keys, strict=True) if k in failed]
    if any(severity_of(expectation) == "warn" for expectation in suite.expectations):
        max_rows = max(max_rows, MAX_FLAGGED_ROWS_PER_RULE)  # every flagged row is recorded, not just the first
    validation = run_suite(frame, suite_name, parameters, max_rows=max_rows, suite=suite)
    from orchestration.contracts_sql import gx_order

    # in the order GX gives when it runs the whole suite once, whichever expectations were run again
    return gx_order(failures_of(validation, frame), [e.configuration.to_json_dict() for e in expectations])


def _renderable(suite: dict) -> dict:
    """The suite with list arguments that are ``$PARAMETER`` placeholders shown as ``["$PARAMETER <name>"]``:
    GX's renderer fails on a placeholder where it expects a list (e.g. a file contract's expected header)."""
    for expectation in suite.get("expectations", []):
        kwargs = expectation.get("kwargs", {})
        for name in ("column_list", "value_set"):
            if isinstance(kwargs.get(name), Mapping) and "$PARAMETER" in kwargs[name]:
                kwargs[name] = [f"$PARAMETER {kwargs[name]['$PARAMETER']}"]
    return suite


#: The Data Docs site every run builds, under the warehouse folder.
DATA_DOCS_SITE = "warehouse"


def build_data_docs(
    site_dir: Path,
    validations: Sequence[tuple[str, Any]],
    *,
    run_name: str,
    suite_dirs: Sequence[Path] = (),
) -> Path:
    """Build GX Data Docs into ``site_dir`` (a static HTML site) and return its ``index.html``.

    The site shows every suite found in ``suite_dirs`` (the rules, readable without the JSON) and this run's
    ``validations``: ``(batch name, validation result of run_suite)`` pairs, filed under ``run_name``. The site is
    rebuilt from scratch, so it always shows the latest run; the process's ephemeral GX context holds the results
    only while the site is built. Its pages load their scripts, styles and fonts from ``static/vendor/`` in the site
    (:mod:`orchestration.data_docs_offline`), so it works without internet.
    """
    import shutil
    from datetime import UTC, datetime

    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    site_dir = Path(site_dir)
    context = _context()
    config = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(UTC))
    with _lock:
        if DATA_DOCS_SITE in context.list_data_docs_sites():
            context.update_data_docs_site(DATA_DOCS_SITE, config)
        else:
            context.add_data_docs_site(DATA_DOCS_SITE, config)
        for directory in suite_dirs:
            for path in sorted(Path(directory).glob("*.json")):
                suite = _renderable(json.loads(path.read_text(encoding="utf-8")))
                context.suites.add_or_update(gx.ExpectationSuite(**suite))
        store = context.validation_results_store
        keys = []
        for batch_name, validation in validations:
            validation.meta["run_id"] = run_id  # shown on the page (GX leaves it empty for a batch's validate)
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=validation.suite_name),
                run_id=run_id,
                batch_identifier=batch_name,
            )
            store.set(key, validation)
            keys.append(key)
        try:
            shutil.rmtree(site_dir, ignore_errors=True)
            context.build_data_docs(site_names=[DATA_DOCS_SITE])
        finally:
            for key in keys:
                store.remove_key(key)
    # GX's pages load Bootstrap, jQuery, Vega and Font Awesome from public CDNs: point them at local copies
    from orchestration.data_docs_offline import localise

    localise(site_dir)
    return site_dir / "index.html"


#: Explains one offending row of a failure: returns ``(column, message)`` pairs (one row can break a rule in
#: several columns, e.g. a total row that disagrees with its detail in two week bands).
RowExplainer = Callable[[ExpectationFailure, Any, Any], Sequence[tuple[str | None, str]]]


def to_violations(
    file: str,
    failures: Sequence[ExpectationFailure],
    *,
    column_labels: Mapping[str, str] | None = None,
    explain: Mapping[str, RowExplainer] | None = None,
    table_explain: Mapping[str, Callable[[ExpectationFailure], Sequence[ContractViolation]]] | None = None,
) -> list[ContractViolation]:
    """Turn failures into violations naming ``file``, row (the frame's index label), column and rule.

    ``column_labels`` maps the frame's column names to the names the file uses. ``explain`` (by rule id) writes a
    specific message for an offending row; ``table_explain`` (by rule id) replaces a table-level failure (one
    without rows, e.g. a wrong header) with its own violations. Rules without either get a generic message that
    quotes the offending value. Beyond the listed rows, a final violation counts the rest.
    """
    found: list[ContractViolation] = []
    for failure in failures:
        severity = failure.severity
        limit = MAX_ROWS_PER_RULE if severity == "error" else MAX_FLAGGED_ROWS_PER_RULE
        if len(failure.rows) > limit:
            failure = replace(failure, rows=failure.rows[:limit], values=failure.values[:limit])
        found += [
            replace(violation, severity=severity)
            for violation in _violations_of(file, failure, column_labels, explain, table_explain)
        ]
    return found


def _violations_of(
    file: str,
    failure: ExpectationFailure,
    column_labels: Mapping[str, str] | None,
    explain: Mapping[str, RowExplainer] | None,
    table_explain: Mapping[str, Callable[[ExpectationFailure], Sequence[ContractViolation]]] | None,
) -> list[ContractViolation]:
    """One failure's violations (see :func:`to_violations`)."""
    labels = column_labels or {}
    violations: list[ContractViolation] = []
    shown = ", ".join(labels.get(column, column) for column in failure.columns) or None
    if failure.error is not None:
        violations.append(
            ContractViolation(file, None, shown, failure.rule, f"the check could not run: {failure.error}")
        )
        return violations
    if table_explain and failure.rule in table_explain:
        violations.extend(table_explain[failure.rule](failure))
        return violations
    if not failure.rows:
        observed = failure.result.get("observed_value")
        violations.append(
            ContractViolation(
                file,
                None,
                shown,
                failure.rule,
                f"{failure.description} (observed: {observed!r})",
            )
        )
        return violations
    for row, value in zip(failure.rows, failure.values or (None,) * len(failure.rows), strict=False):
        if explain and failure.rule in explain:
            for column, message in explain[failure.rule](failure, row, value):
                violations.append(ContractViolation(file, _line(row), column, failure.rule, message))
        else:
            violations.append(
                ContractViolation(
                    file,
                    _line(row),
                    shown,
                    failure.rule,
                    f"{failure.description} (found {_show(value)})",
                )
            )
    remaining = failure.unexpected_count - len(failure.rows)
    if remaining > 0:
        violations.append(
            ContractViolation(
                file,
                None,
                shown,
                failure.rule,
                f"… and {remaining} more rows break this rule",
                count=remaining,
            )
        )
    return violations


def _line(label: Any) -> int | None:
    try:
        return int(label)
    except (TypeError, ValueError):
        return None


def _show(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "a blank cell"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={item!r}" for key, item in value.items())
    return repr(value)
