"""The audit schema of the build database: what each run rejected, which loads passed their contract, and how
each mart fared against its GX suite before publishing.

Rejections are kept per run so the CLI can say exactly which files failed and why, and the data-quality mart
can show how far the data can be trusted.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from orchestration.raw import ContractViolation


def ensure_audit_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists audit")
    con.execute(
        """
        create table if not exists audit.file_rejections (
            run_id varchar,
            source varchar,
            source_file varchar,
            period_month date,
            source_row bigint,
            source_column varchar,
            rule varchar,
            message varchar,
            quarantined_to varchar,
            rejected_at timestamp
        )
        """
    )
    con.execute(
        """
        create table if not exists audit.contract_checks (
            run_id varchar,
            source varchar,
            period_month date,
            sha256 varchar,
            passed boolean,
            violations bigint,
            checked_at timestamp
        )
        """
    )
    con.execute(
        """
        create table if not exists audit.row_flags (
            run_id varchar,
            source varchar,
            source_file varchar,
            period_month date,
            sha256 varchar,
            source_row bigint,
            source_column varchar,
            rule varchar,
            message varchar,
            row_count bigint,
            flagged_at timestamp
        )
        """
    )
    con.execute(
        """
        create table if not exists audit.mart_checks (
            run_id varchar,
            checked_at timestamp,
            mart varchar,
            check_name varchar,
            success boolean,
            observed_value double,
            details varchar
        )
        """
    )


def record_rejection(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    source: str,
    source_file: str,
    period_month,
    violations: list[ContractViolation],
    quarantined_to: str,
) -> None:
    ensure_audit_schema(con)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        (run_id, source, source_file, period_month, v.row, v.column, v.rule, v.message, quarantined_to, now)
        for v in violations
    ] or [(run_id, source, source_file, period_month, None, None, "unreadable", "rejected", quarantined_to, now)]
    con.executemany("insert into audit.file_rejections values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def rejections_for_run(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    ensure_audit_schema(con)
    cursor = con.execute(
        "select source, source_file, source_row, source_column, rule, message, quarantined_to "
        "from audit.file_rejections where run_id = ? order by source, source_file, source_row nulls first",
        [run_id],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def record_row_flags(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    source: str,
    source_file: str,
    period_month,
    sha256: str,
    violations: list[ContractViolation],
) -> None:
    """Record the row-level warnings (severity ``warn``) of a file that was loaded: one row per flagged row and
    column, keyed by the file's SHA-256 so the marts count only the flags of what is current. A closing
    "… and N more rows" line (no row) carries its count in ``row_count``."""
    ensure_audit_schema(con)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        (run_id, source, source_file, period_month, sha256, v.row, v.column, v.rule, v.message, v.count, now)
        for v in violations
        if not v.is_error
    ]
    if rows:
        con.executemany("insert into audit.row_flags values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def row_flags_for_run(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    """The rows flagged in the files this run loaded (source, file, row, column, rule, message, row_count)."""
    ensure_audit_schema(con)
    cursor = con.execute(
        "select source, source_file, source_row, source_column, rule, message, row_count "
        "from audit.row_flags where run_id = ? order by source, source_file, rule, source_row nulls last",
        [run_id],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def record_contract_pass(
    con: duckdb.DuckDBPyConnection, *, run_id: str, source: str, period_month, sha256: str
) -> None:
    """Record that a file passed its contract when it was loaded, so the blocking check need not validate the
    same bytes again; the check still validates any current partition without such a record."""
    ensure_audit_schema(con)
    con.execute(
        "insert into audit.contract_checks values (?, ?, ?, ?, true, 0, ?)",
        [run_id, source, period_month, sha256, datetime.now(UTC).replace(tzinfo=None)],
    )
