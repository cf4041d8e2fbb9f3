"""The SQL the dashboards send to the serving database, for the benchmark's query timings (SPEC §12).

When ``dashboards/`` holds the Superset asset bundle (``datasets/**.yaml`` and ``charts/*.yaml``), each chart's
``query_context`` is turned into the SQL Superset would issue for it against its dataset (the dataset's own SQL
for a virtual dataset, else its table): its columns and metrics, its simple filters, GROUP BY, ORDER BY and row
limit. Without a bundle, :func:`representative_queries` gives the queries the dashboards are designed around:
collaborative trends, member comparison, SPC, the benefits RAG table, funnel plots, national RTT trends,
treatment-function breakdowns, a trust's wait distribution, placements, lengths of stay and data quality.
"""

from __future__ import annotations

import json
from pathlib import Path

_AGGREGATES = {"SUM", "AVG", "MIN", "MAX", "COUNT", "COUNT_DISTINCT"}


def _quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _literal(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _column_sql(column) -> tuple[str, str]:
    if isinstance(column, dict):
        expression = column.get("sqlExpression") or _quote(column.get("column_name") or column.get("label"))
        return expression, column.get("label") or expression
    return _quote(column), column


def _metric_sql(metric, dataset_metrics: dict[str, str]) -> str | None:
    if isinstance(metric, str):
        return dataset_metrics.get(metric) or ("count(*)" if metric == "count" else None)
    if not isinstance(metric, dict):
        return None
    if metric.get("expressionType") == "SQL":
        return metric.get("sqlExpression")
    aggregate = str(metric.get("aggregate", "")).upper()
    column = (metric.get("column") or {}).get("column_name")
    if aggregate not in _AGGREGATES or not column:
        return None
    if aggregate == "COUNT_DISTINCT":
        return f"count(distinct {_quote(column)})"
    return f"{aggregate.lower()}({_quote(column)})"


_OPERATORS = {"==": "=", "!=": "<>", ">": ">", "<": "<", ">=": ">=", "<=": "<="}


def _filter_sql(item: dict) -> str | None:
    column, op, value = item.get("col"), str(item.get("op", "")).upper(), item.get("val")
    if isinstance(column, dict):
        column = column.get("sqlExpression")
    elif column:
        column = _quote(column)
    if not column:
        return None
    if op in _OPERATORS:
        return f"{column} {_OPERATORS[op]} {_literal(value)}"
    if op in ("IN", "NOT IN") and isinstance(value, list) and value:
        return f"{column} {op.lower()} ({', '.join(_literal(v) for v in value)})"
    if op == "IS NULL":
        return f"{column} is null"
    if op == "IS NOT NULL":
        return f"{column} is not null"
    if op == "TEMPORAL_RANGE":
        return None  # "No filter" is Superset's default; a range needs Superset's parser
    return None


def chart_sql(query: dict, source_sql: str, dataset_metrics: dict[str, str]) -> str:
    """One ``query_context`` query as SQL against ``source_sql`` (a table name or a parenthesised select)."""
    selects, groups = [], []
    for column in query.get("columns") or query.get("groupby") or []:
        expression, label = _column_sql(column)
        selects.append(f"{expression} as {_quote(label)}")
        groups.append(expression)
    metrics = [sql for sql in (_metric_sql(m, dataset_metrics) for m in query.get("metrics") or []) if sql]
    selects += [f"{sql} as m{i}" for i, sql in enumerate(metrics)]
    sql = f"select {', '.join(selects) or '*'} from {source_sql} as dataset"
    wheres = [w for w in (_filter_sql(f) for f in query.get("filters") or []) if w]
    extras = (query.get("extras") or {}).get("where")
    if extras:
        wheres.append(f"({extras})")
    if wheres:
        sql += " where " + " and ".join(wheres)
    if metrics and groups:
        sql += " group by " + ", ".join(groups)
    if groups:
        sql += " order by " + ", ".join(groups)
    limit = query.get("row_limit")
    if limit:
        sql += f" limit {int(limit)}"
    return sql


def bundle_queries(dashboards_dir: Path) -> dict[str, str]:
    """``{chart name: SQL}`` for every chart of the Superset bundle(s) under ``dashboards_dir`` ({} if none)."""
    import yaml

    datasets: dict[str, dict] = {}
    for path in sorted(Path(dashboards_dir).rglob("datasets/**/*.yaml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if spec.get("uuid"):
            datasets[spec["uuid"]] = spec
    queries: dict[str, str] = {}
    for path in sorted(Path(dashboards_dir).rglob("charts/*.yaml")):
        chart = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        dataset = datasets.get(chart.get("dataset_uuid"))
        if dataset is None:
            continue
        source = f"({dataset['sql']})" if dataset.get("sql") else _quote(dataset["table_name"])
        dataset_metrics = {m["metric_name"]: m["expression"] for m in dataset.get("metrics") or []}
        context = chart.get("query_context")
        if isinstance(context, str) and context.strip():
            context = json.loads(context)
        chart_queries = (context or {}).get("queries") or [{}]
        name = chart.get("slice_name") or path.stem
        for i, query in enumerate(chart_queries):
            queries[name if len(chart_queries) == 1 else f"{name} [{i + 1}]"] = chart_sql(
                query, source, dataset_metrics
            )
    return queries


def representative_queries(serving_db: Path) -> dict[str, str]:
    """The queries the dashboards are designed around, with parameters taken from the data (the largest
    collaborative, its first member, the latest month)."""
    import duckdb

    con = duckdb.connect(str(serving_db), read_only=True)
    try:
        collaborative, member = con.execute(
            "select collaborative_code, min(org_code) filter (where org_code <> 'ALL') "
            "from fct_collaborative_metric_month group by 1 order by count(*) desc, 1 limit 1"
        ).fetchone()
        latest = con.execute("select max(period_month) from fct_rtt_provider_month").fetchone()[0]
    finally:
        con.close()
    c, o, month = _literal(collaborative), _literal(member), _literal(str(latest))
    return {
        "collaborative trend (rtt_pct_within_18_weeks)": (
            "select period_month, value, is_partial from fct_collaborative_metric_month "
            f"where collaborative_code = {c} and org_code = 'ALL' and membership_basis = 'as_was' "
            "and metric_code = 'rtt_pct_within_18_weeks' order by period_month"
        ),
        "members against the collaborative, latest month": (
            "select org_code, metric_code, value, is_partial from fct_collaborative_metric_month "
            f"where collaborative_code = {c} and membership_basis = 'as_was' and period_month = {month} "
            "order by metric_code, org_code"
        ),
        "SPC chart (rtt_incomplete_pathways)": (
            "select period_month, value, mean, upl, lpl, upper_near_limit, lower_near_limit, point_type from fct_spc "
            f"where collaborative_code = {c} and org_code = 'ALL' and metric_code = 'rtt_incomplete_pathways' "
            "and membership_basis = 'as_was' order by period_month"
        ),
        "benefits RAG table, latest month": (
            "select t.benefit_id, b.title, t.actual_value, t.target_value, t.trajectory_value, t.rag_status, "
            "t.spc_variation, t.spc_assurance from fct_benefit_tracking t join dim_benefit b using (benefit_id) "
            "where t.is_latest_month order by t.collaborative_code, t.benefit_id"
        ),
        "funnel plot (rtt_pct_within_18_weeks), latest month": (
            "select org_code, value, denominator, lower_95, upper_95, lower_998, upper_998, outlier_flag "
            f"from fct_variation where collaborative_code = {c} and metric_code = 'rtt_pct_within_18_weeks' "
            f"and period_month = {month}"
        ),
        "England RTT trend (all providers)": (
            "select period_month, sum(incomplete_pathways) as waiting, sum(over_52_weeks) as over_52, "
            "sum(within_18_weeks) / sum(incomplete_pathways) as within_18 from fct_rtt_provider_month "
            "where treatment_function_code = 'ALL' group by period_month order by period_month"
        ),
        "England by treatment function, latest month": (
            "select treatment_function_code, any_value(treatment_function_name) as name, "
            "sum(incomplete_pathways) as waiting, sum(over_52_weeks) as over_52 from fct_rtt_provider_month "
            f"where period_month = {month} and treatment_function_code <> 'ALL' group by 1 order by waiting desc"
        ),
        "provider league, latest month (all trusts)": (
            "select r.org_code, o.org_name, o.org_type, r.incomplete_pathways, r.median_wait_weeks, r.p92_wait_weeks, "
            "r.within_18_weeks / nullif(r.incomplete_pathways, 0) as within_18 from fct_rtt_provider_month r "
            f"join dim_organisation o using (org_code) where r.period_month = {month} "
            "and r.treatment_function_code = 'ALL' order by r.p92_wait_weeks desc"
        ),
        "trust wait distribution, latest month": (
            f"select unnest(wait_bands) as patients, generate_subscripts(wait_bands, 1) - 1 as weeks "
            f"from fct_rtt_provider_month where org_code = {o} and treatment_function_code = 'ALL' "
            f"and period_month = {month}"
        ),
        "trust trend by treatment function": (
            "select period_month, treatment_function_code, incomplete_pathways, median_wait_weeks "
            f"from fct_rtt_provider_month where org_code = {o} order by period_month, treatment_function_code"
        ),
        "out-of-area placements trend": (
            "select period_month, sum(inappropriate_oap_bed_days) as bed_days, "
            "count(*) filter (where inappropriate_oap_bed_days_suppressed) as suppressed "
            "from fct_oap_provider_month group by 1 order by 1"
        ),
        "length of stay by setting": (
            "select period_month, setting, sum(bed_days) / sum(discharges) as mean_los, sum(discharges) as discharges "
            "from fct_los_provider_month where not is_suppressed group by 1, 2 order by 1, 2"
        ),
        "evaluation estimates": "select * from fct_evaluation order by collaborative_code, metric_code, method",
        "data quality and freshness": (
            "select f.source, f.latest_period, f.loaded_at, f.suppressed_share, "
            "(select count(*) from fct_data_quality q where q.source = f.source and not q.success) as failed_checks "
            "from dim_source_freshness f order by f.source"
        ),
    }
