"""Two warehouses' tables compared figure for figure: the proof that an engine builds what DuckDB builds (issue 15).

``compare_databases(left, right)`` opens two DuckDB files read-only and compares every table of the given schemas
(all of them by default: the serving database's
``main``, or a build database's ``marts`` when named): the same tables, the same columns in the same order, the
same rows.
Rows are compared after sorting both sides by every column (doubles rounded to 6 places for the sort only);
doubles are equal when within ``tolerance`` of each other (absolute, or relative for large magnitudes), anything
else must be equal exactly (NULL equals NULL). Column types are compared by family (integer, decimal or double,
text, date, timestamp, boolean, list): a BIGINT on one side and an INTEGER on the other is the same figure, an
integer against a text is not.

``collab-benefits compare LEFT RIGHT`` prints the result; the test of the two engines asserts on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

_FAMILIES = {
    "TINYINT": "integer",
    "SMALLINT": "integer",
    "INTEGER": "integer",
    "BIGINT": "integer",
    "HUGEINT": "integer",
    "UTINYINT": "integer",
    "USMALLINT": "integer",
    "UINTEGER": "integer",
    "UBIGINT": "integer",
    "FLOAT": "number",
    "DOUBLE": "number",
    "VARCHAR": "text",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "BOOLEAN": "boolean",
}


def type_family(data_type: str) -> str:
    """integer, number (decimal or floating point), text, date, timestamp, boolean, list, struct, or the type."""
    if data_type.endswith("[]"):
        return "list"
    if data_type.startswith("DECIMAL"):
        return "number"
    if data_type.startswith("STRUCT"):
        return "struct"
    return _FAMILIES.get(data_type, data_type)


@dataclass
class TableComparison:
    name: str
    rows: int = 0
    figures: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class Comparison:
    left: Path
    right: Path
    tables: list[TableComparison] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.problems and not any(table.problems for table in self.tables)

    @property
    def rows(self) -> int:
        return sum(table.rows for table in self.tables)

    @property
    def figures(self) -> int:
        return sum(table.figures for table in self.tables)

    def describe(self, limit: int = 20) -> str:
        head = f"{len(self.tables)} tables, {self.rows:,} rows, {self.figures:,} figures compared: " + (
            "identical" if self.equal else "DIFFERENT"
        )
        lines = [head, *self.problems]
        for table in self.tables:
            lines.extend(f"{table.name}: {problem}" for problem in table.problems)
        if len(lines) > limit + 1:
            lines = [*lines[: limit + 1], f"… and {len(lines) - limit - 1} more"]
        return "\n".join(lines)


def _columns(con, alias: str, schema: str, table: str, ignore: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    rows = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_catalog = ? and table_schema = ? and table_name = ? order by ordinal_position",
        [alias, schema, table],
    ).fetchall()
    return [(name, data_type) for name, data_type in rows if name not in ignore]


def _tables(con, alias: str, schemas: tuple[str, ...] | None) -> set[str]:
    rows = con.execute(
        "select table_schema, table_name from information_schema.tables where table_catalog = ?", [alias]
    ).fetchall()
    return {f"{schema}.{table}" for schema, table in rows if schemas is None or schema in schemas}


def _sorted(alias: str, name: str, columns: list[tuple[str, str]]) -> str:
    """The table's rows numbered in the order of all their columns: numbers as doubles (a DECIMAL on one side, a
    DOUBLE on the other), rounded to 6 places for the order only."""
    quoted = ['"' + column.replace('"', '""') + '"' for column, _ in columns]
    numeric = [type_family(data_type) == "number" for _, data_type in columns]
    values = [f"cast({q} as double) as {q}" if n else q for q, n in zip(quoted, numeric, strict=True)]
    keys = [f"round(cast({q} as double), 6)" if n else q for q, n in zip(quoted, numeric, strict=True)]
    schema, table = name.split(".", 1)
    order = ", ".join(f"{key} nulls first" for key in keys)
    return f'select row_number() over (order by {order}) as _row, {", ".join(values)} from {alias}."{schema}"."{table}"'


def _differs(column: str, numeric: bool, tolerance: float) -> str:
    """SQL true when the two sides' values of a column differ (NULL equals NULL; doubles within tolerance)."""
    q = '"' + column.replace('"', '""') + '"'
    if numeric:
        return (
            f"(l.{q} is null) != (r.{q} is null) or (isnan(l.{q}) != isnan(r.{q})) or "
            f"abs(l.{q} - r.{q}) > {tolerance!r} * greatest(1.0, abs(l.{q}), abs(r.{q}))"
        )
    return f"l.{q} is distinct from r.{q}"


def compare_databases(
    left: Path,
    right: Path,
    schemas: tuple[str, ...] | None = None,
    tolerance: float = 1e-9,
    max_rows_shown: int = 3,
    ignore_columns: tuple[str, ...] = (),
    ignore_tables: tuple[str, ...] = (),
) -> Comparison:
    """Every table (of ``schemas``, when given) in two DuckDB files, compared figure for figure (see the module
    docstring). ``ignore_columns`` (by name, in every table) and ``ignore_tables`` (``schema.table``) are left out:
    when or in which run something happened, not what the figures are."""
    comparison = Comparison(Path(left), Path(right))
    con = duckdb.connect()
    try:
        con.execute(f"attach '{left}' as lhs (read_only)")
        con.execute(f"attach '{right}' as rhs (read_only)")
        left_tables = _tables(con, "lhs", schemas) - set(ignore_tables)
        right_tables = _tables(con, "rhs", schemas) - set(ignore_tables)
        for missing in sorted(left_tables - right_tables):
            comparison.problems.append(f"{missing}: only in {left}")
        for missing in sorted(right_tables - left_tables):
            comparison.problems.append(f"{missing}: only in {right}")
        for name in sorted(left_tables & right_tables):
            result = TableComparison(name)
            comparison.tables.append(result)
            schema, table = name.split(".", 1)
            left_columns, right_columns = (
                _columns(con, "lhs", schema, table, ignore_columns),
                _columns(con, "rhs", schema, table, ignore_columns),
            )
            if [c for c, _ in left_columns] != [c for c, _ in right_columns]:
                result.problems.append(
                    f"columns differ: {[c for c, _ in left_columns]} against {[c for c, _ in right_columns]}"
                )
                continue
            for (column, left_type), (_, right_type) in zip(left_columns, right_columns, strict=True):
                if type_family(left_type) != type_family(right_type):
                    result.problems.append(f"column {column}: {left_type} against {right_type}")
            counts = [
                con.execute(f'select count(*) from {alias}."{schema}"."{table}"').fetchone()[0]
                for alias in ("lhs", "rhs")
            ]
            if counts[0] != counts[1]:
                result.problems.append(f"{counts[0]:,} rows against {counts[1]:,}")
                continue
            result.rows = counts[0]
            numeric = [type_family(data_type) == "number" for _, data_type in left_columns]
            names = [column for column, _ in left_columns]
            tests = [
                f"case when {_differs(column, n, tolerance)} then '{column}' end"
                for column, n in zip(names, numeric, strict=True)
            ]
            figures = " + ".join(f'count(l."{column}")' for column in names)
            joined = (
                f"with l as ({_sorted('lhs', name, left_columns)}), r as ({_sorted('rhs', name, right_columns)}), "
                f"compared as (select l._row, coalesce({', '.join(tests)}) as column_name, l, r "
                "from l join r using (_row)) "
            )
            (result.figures,) = con.execute(
                f"with l as ({_sorted('lhs', name, left_columns)}) select {figures} from l"
            ).fetchone()
            (differing,) = con.execute(
                joined + "select count(*) from compared where column_name is not null"
            ).fetchone()
            if differing:

                def side(alias: str, names: list[str] = names) -> str:
                    whens = " ".join(
                        f"""when '{column}' then cast({alias}."{column}" as varchar)""" for column in names
                    )
                    return f"case column_name {whens} end"

                shown = con.execute(
                    joined + f"select _row, column_name, {side('l')}, {side('r')} from compared "
                    f"where column_name is not null order by _row limit {max_rows_shown}"
                ).fetchall()
                for row, column, left_row, right_row in shown:
                    result.problems.append(f"row {row} (sorted), column {column}: {left_row} against {right_row}")
                if differing > len(shown):
                    result.problems.append(f"… {differing - len(shown)} more rows differ")
    finally:
        con.close()
    return comparison
