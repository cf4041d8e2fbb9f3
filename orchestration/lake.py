"""The raw layer as partitioned Parquet, for an engine that cannot open the DuckDB build database (issue 15).

The build database stays the raw layer's system of record: a file is loaded, revised, quarantined and audited
there in one DuckDB transaction, as on the default engine. Before a Spark build, :func:`export_raw` mirrors every
table the dbt sources name into ``WAREHOUSE/spark/lake/<schema>/<table>/``: a table with ``period_month`` as one
Parquet file per month under ``period_month=YYYY-MM-DD/`` (Hive-style, which Spark reads as a partition column),
any other table as one file. Only what changed is rewritten: each month's rows are fingerprinted (count and the
sum of their row hashes, as the build state does) and a month whose fingerprint is the one recorded in
``_lake.json`` keeps its file, so a new or revised month rewrites that month alone. A file is written beside its
final name and renamed into place. The dbt project's ``on-run-start`` hook on Spark
(``macros/engine/lake.sql``) registers each folder as a Spark table of the source's schema and name.

:func:`import_tables` goes the other way after the build: it copies each table dbt built on Spark (Parquet under
``spark/tables/<schema>.db/<table>``) into the DuckDB build database, replacing the build database's table of the
same name, so the benefits marts, the mart suites and the publish that follow read the engine's marts exactly as
they read DuckDB's.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

LAKE_RECORD = "_lake.json"
PARTITION_COLUMN = "period_month"


@dataclass
class LakeExport:
    """What one export wrote: tables and months rewritten, and those kept as they were."""

    tables: int = 0
    written: list[str] = field(default_factory=list)
    kept: int = 0
    removed: list[str] = field(default_factory=list)

    def describe(self) -> str:
        changed = f"{len(self.written)} file(s) written" if self.written else "nothing rewritten"
        return f"{self.tables} raw tables as Parquet: {changed}, {self.kept} kept" + (
            f", {len(self.removed)} removed" if self.removed else ""
        )


def source_tables(manifest: dict) -> list[tuple[str, str]]:
    """(schema, table) of every dbt source a model or test reads, in a stable order (the benefits marts are
    sources of the dashboards' exposures only: Spark builds without them)."""
    read = {key for node in manifest.get("nodes", {}).values() for key in node.get("depends_on", {}).get("nodes", [])}
    return sorted(
        {(source["schema"], source["identifier"]) for key, source in manifest.get("sources", {}).items() if key in read}
    )


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_catalog = current_database() and table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()


def _select_list(columns: list[tuple[str, str]], leave_out: str | None = None) -> str:
    """The table's columns for Parquet: HUGEINT (Spark has no 128-bit integer) as DECIMAL(38, 0)."""
    parts = []
    for name, data_type in columns:
        if name == leave_out:
            continue
        quoted = '"' + name.replace('"', '""') + '"'
        parts.append(f"cast({quoted} as decimal(38, 0)) as {quoted}" if data_type == "HUGEINT" else quoted)
    return ", ".join(parts)


def _write(con: duckdb.DuckDBPyConnection, query: str, params: list, target: Path) -> None:
    """COPY a query to ``target`` through a temporary name beside it (a reader never sees half a file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    con.execute(f"copy ({query}) to '{partial}' (format parquet, compression zstd)", params)
    os.replace(partial, target)


def _month_fingerprints(con, schema: str, table: str) -> dict[str, str]:
    rows = con.execute(
        f'select cast({PARTITION_COLUMN} as varchar), count(*), sum(hash(t)) from "{schema}"."{table}" t '
        f"group by all order by 1"
    ).fetchall()
    return {month: f"{count}:{hashes}" for month, count, hashes in rows if month is not None}


def _month_file(folder: Path, month: str) -> Path:
    return folder / f"{PARTITION_COLUMN}={month}" / "data.parquet"


def _write_months(con, schema: str, table: str, columns, months: list[str], folder: Path) -> None:
    """The given months of a table, one file each, written by one partitioned COPY into a folder beside the
    table's and moved into place month by month (each month's folder replaced whole)."""
    staging = folder.parent / f".{folder.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = ", ".join(f"date '{month}'" for month in months)
    con.execute(
        f'copy (select {_select_list(columns)} from "{schema}"."{table}" where {PARTITION_COLUMN} in ({wanted})) '
        f"to '{staging}' (format parquet, compression zstd, partition_by ({PARTITION_COLUMN}), "
        f"filename_pattern 'data', write_partition_columns false)"
    )
    for month in months:
        written = staging / f"{PARTITION_COLUMN}={month}"
        parquet = sorted(written.glob("*.parquet"))
        if len(parquet) != 1:
            raise RuntimeError(
                f"Parquet export of {schema}.{table} for {month}: expected one file, found {len(parquet)}"
            )
        parquet[0].rename(written / "data.parquet")
        final = folder / written.name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(written, final)
    shutil.rmtree(staging, ignore_errors=True)


def export_raw(con: duckdb.DuckDBPyConnection, lake_dir: Path, tables: list[tuple[str, str]]) -> LakeExport:
    """Mirror ``tables`` of the build database into ``lake_dir`` (see the module docstring)."""
    lake_dir = Path(lake_dir)
    lake_dir.mkdir(parents=True, exist_ok=True)
    record_path = lake_dir / LAKE_RECORD
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    export = LakeExport()
    new_record: dict[str, dict] = {}
    for schema, table in tables:
        columns = _columns(con, schema, table)
        if not columns:
            continue  # never created (a feed with no file yet): dbt reports the missing source as on DuckDB
        export.tables += 1
        folder = lake_dir / schema / table
        key = f"{schema}.{table}"
        held = record.get(key, {})
        layout = [list(column) for column in columns]
        if held.get("columns") != layout:
            shutil.rmtree(folder, ignore_errors=True)  # a new column or type: every file is rewritten
            held = {}
        names = [name for name, _ in columns]
        if PARTITION_COLUMN in names:
            months = _month_fingerprints(con, schema, table)
            held_months = held.get("months", {})
            if months:
                (folder / "empty.parquet").unlink(missing_ok=True)
            changed = [
                m for m, fp in months.items() if held_months.get(m) != fp or not _month_file(folder, m).is_file()
            ]
            export.kept += len(months) - len(changed)
            if changed:
                _write_months(con, schema, table, columns, changed, folder)
                export.written.extend(f"{key}/{month}" for month in changed)
            for month in sorted(set(held_months) - set(months)):
                shutil.rmtree(_month_file(folder, month).parent, ignore_errors=True)
                export.removed.append(f"{key}/{month}")
            if not months and not (folder / "empty.parquet").is_file():
                # no rows: one empty file carries the columns (Spark cannot read a table's layout from no file)
                query = f'select {_select_list(columns)} from "{schema}"."{table}" where false'
                _write(con, query, [], folder / "empty.parquet")
                export.written.append(f"{key}/empty")
            new_record[key] = {"columns": layout, "months": months}
        else:
            (rows, hashes) = con.execute(f'select count(*), sum(hash(t)) from "{schema}"."{table}" t').fetchone()
            fingerprint = f"{rows}:{hashes}"
            target = folder / "data.parquet"
            if held.get("fingerprint") == fingerprint and target.is_file():
                export.kept += 1
            else:
                _write(con, f'select {_select_list(columns)} from "{schema}"."{table}"', [], target)
                export.written.append(key)
            new_record[key] = {"columns": layout, "fingerprint": fingerprint}
    partial = record_path.with_name(f".{LAKE_RECORD}.partial")
    partial.write_text(json.dumps(new_record, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(partial, record_path)
    return export


#: Spark's own logging at errors only: its warnings (a new metastore, Hive settings it does not know) are not the
#: user's business, and dbt's log says what was built.
SPARK_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""


def prepare_spark_dir(spark_dir: Path) -> Path:
    """The folder the ``spark`` dbt target's session keeps its metastore, tables and log settings in. Spark 3.5
    runs on Java 17: Debian's (``make spark`` installs it) is the one used when ``JAVA_HOME`` names none."""
    if not os.environ.get("JAVA_HOME"):
        debian_java = sorted(Path("/usr/lib/jvm").glob("java-17-openjdk-*"))
        if debian_java:
            os.environ["JAVA_HOME"] = str(debian_java[0])
    spark_dir = Path(spark_dir)
    spark_dir.mkdir(parents=True, exist_ok=True)
    log4j = spark_dir / "log4j2.properties"
    if not log4j.is_file() or log4j.read_text(encoding="utf-8") != SPARK_LOG4J2:
        log4j.write_text(SPARK_LOG4J2, encoding="utf-8")
    return spark_dir


def spark_table_folder(tables_dir: Path, schema: str, table: str) -> Path:
    """Where Spark keeps a managed table of the session's warehouse (``spark.sql.warehouse.dir``)."""
    return Path(tables_dir) / f"{schema}.db" / table


def _model_order(present: list[str], declared: list[str], partitioned: bool) -> list[str]:
    """The columns of a table Spark wrote, in the model's order: the files' own (the select's), with a partition
    column moved from the end to just after the column the model's YAML declares before it (first if none).

    The YAML's order alone is not the select's: a model documents its columns in the order a reader wants them.
    """
    if not partitioned or PARTITION_COLUMN not in present:
        return present
    columns = [name for name in present if name != PARTITION_COLUMN]
    before = None
    if PARTITION_COLUMN in declared:
        earlier = [name for name in declared[: declared.index(PARTITION_COLUMN)] if name in columns]
        before = earlier[-1] if earlier else None
    columns.insert(columns.index(before) + 1 if before else 0, PARTITION_COLUMN)
    return columns


def import_tables(
    con: duckdb.DuckDBPyConnection, tables_dir: Path, tables: list[tuple[str, str, list[str]]]
) -> dict[str, int]:
    """Copy each (schema, table, column order) Spark built into the build database; {schema.table: rows}.

    The files hold the model's columns in its select's order (what DuckDB's build has), except that Spark writes
    a partition column as folder names, after every other column: :func:`_model_order` puts it back. Each table
    is replaced in one transaction, so a failure leaves the previous table in place.
    """
    copied = {}
    for schema, table, order in tables:
        folder = spark_table_folder(tables_dir, schema, table)
        files = [path for path in folder.rglob("*.parquet") if not path.name.startswith((".", "_"))]
        if not files:
            # a table with no rows: Spark wrote no file; take its layout from the build database's own, if any
            raise FileNotFoundError(f"Spark built {schema}.{table} but no Parquet file is under {folder}")
        partitioned = any("=" in part for path in files for part in path.relative_to(folder).parts[:-1])
        # Spark names a partition by its value (period_month=2024-04-01): typed as the date it is
        hive = f", hive_partitioning = true, hive_types = {{'{PARTITION_COLUMN}': 'date'}}" if partitioned else ""
        scan = f"read_parquet('{folder}/**/*.parquet'{hive}, union_by_name = true)"
        present = [row[0] for row in con.execute(f"describe select * from {scan}").fetchall()]
        columns = _model_order(present, order, partitioned)
        select = ", ".join('"' + name.replace('"', '""') + '"' for name in columns)
        con.execute("begin")
        try:
            con.execute(f'create schema if not exists "{schema}"')
            is_view = con.execute(
                "select count(*) from duckdb_views() where database_name = current_database() "
                "and schema_name = ? and view_name = ?",
                [schema, table],
            ).fetchone()[0]
            if is_view:  # a DuckDB build's staging view, replaced by the table Spark built
                con.execute(f'drop view "{schema}"."{table}"')
            con.execute(f'create or replace table "{schema}"."{table}" as select {select} from {scan}')
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        copied[f"{schema}.{table}"] = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
    return copied
