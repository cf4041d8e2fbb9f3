"""Chart builders: one function per Superset visualisation, returning the chart's ``params`` (the form data the
dashboard renders from) and its ``query_context`` (what the chart data API runs), built from the same inputs.

A hand-written chart without a ``query_context`` cannot be queried through ``/api/v1/chart/{id}/data/`` (SPEC
§11). Superset's frontend derives the query from the form data with each plugin's ``buildQuery``; these
functions do the same for the plugins used here, so the saved query and the rendered chart agree. The datasource
id in both is a placeholder: Superset's importer replaces it with the id of the imported dataset.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

PLACEHOLDER_DATASOURCE = "0__table"
TIME_GRAIN_MONTH = "P1M"
NO_TIME_FILTER = "No filter"
MONTH_FORMAT = "%b %Y"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def metric(sql: str, label: str) -> dict[str, Any]:
    """An ad hoc SQL metric with a label in the users' words (the label is also the series name)."""
    return {
        "expressionType": "SQL",
        "sqlExpression": sql,
        "label": label,
        "hasCustomLabel": True,
        "optionName": f"metric_{_slug(label)}",
    }


def where(column: str, operator: str, value: Any = None) -> dict[str, Any]:
    """An ad hoc filter (``==``, ``!=``, ``IN``, ``IS TRUE``, ``IS NOT NULL``, ``TEMPORAL_RANGE`` …)."""
    adhoc: dict[str, Any] = {
        "clause": "WHERE",
        "expressionType": "SIMPLE",
        "subject": column,
        "operator": operator,
        "filterOptionName": f"filter_{_slug(column + '_' + operator + '_' + str(value))}",
    }
    if value is not None:
        adhoc["comparator"] = value
    return adhoc


def period(column: str = "period_month") -> dict[str, Any]:
    """The time filter a dashboard's period filter drives (no restriction until the user picks a range)."""
    return where(column, "TEMPORAL_RANGE", NO_TIME_FILTER)


def _query_filter(adhoc: dict[str, Any]) -> dict[str, Any]:
    query = {"col": adhoc["subject"], "op": adhoc["operator"]}
    if "comparator" in adhoc:
        query["val"] = adhoc["comparator"]
    return query


def _label(item: dict[str, Any] | str) -> str:
    return item if isinstance(item, str) else item["label"]


@dataclass
class ChartSpec:
    """What a builder returns: Superset's visualisation type, form data and query context."""

    viz_type: str
    params: dict[str, Any]
    queries: list[dict[str, Any]] = field(default_factory=list)

    def query_context(self) -> str:
        context = {
            "datasource": {"id": 0, "type": "table"},
            "force": False,
            "queries": self.queries,
            "form_data": self.params,
            "result_format": "json",
            "result_type": "full",
        }
        return json.dumps(context, indent=2, sort_keys=True)


def _base_query(
    filters: list[dict[str, Any]],
    columns: list,
    metrics: list,
    orderby: list | None,
    row_limit: int | None,
    order_desc: bool = True,
    annotation_layers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The query object Superset's frontend builds (``buildQueryObject``) for the given parts."""
    query: dict[str, Any] = {
        "filters": [_query_filter(f) for f in filters],
        "extras": {"having": "", "where": ""},
        "applied_time_extras": {},
        "columns": columns,
        "metrics": metrics,
        "annotation_layers": annotation_layers or [],
        "series_limit": 0,
        "order_desc": order_desc,
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
        "group_others_when_limit_reached": False,
    }
    if orderby is not None:
        query["orderby"] = orderby
    if row_limit is not None:
        query["row_limit"] = row_limit
    return query


def _x_axis_column(x_axis: str, temporal: bool) -> dict[str, Any]:
    return {
        "timeGrain": TIME_GRAIN_MONTH if temporal else None,
        "columnType": "BASE_AXIS",
        "sqlExpression": x_axis,
        "label": x_axis,
        "expressionType": "SQL",
        "isColumnReference": True,
    }


def timeseries(
    viz_type: str,
    *,
    metrics: list[dict[str, Any]],
    groupby: list[str] | None = None,
    filters: list[dict[str, Any]] | None = None,
    x_axis: str = "period_month",
    temporal: bool = True,
    x_axis_title: str = "",
    y_axis_title: str = "",
    y_axis_format: str = "SMART_NUMBER",
    stack: bool = False,
    markers: bool = False,
    annotation_layers: list[dict[str, Any]] | None = None,
    show_legend: bool = True,
    truncate_y_axis: bool = False,
    row_limit: int = 10000,
    extra_params: dict[str, Any] | None = None,
) -> ChartSpec:
    """ECharts time series (``echarts_timeseries_line``, ``_bar``, ``_scatter``): x axis, metrics, series."""
    groupby = groupby or []
    filters = filters or []
    params: dict[str, Any] = {
        "datasource": PLACEHOLDER_DATASOURCE,
        "viz_type": viz_type,
        "x_axis": x_axis,
        "time_grain_sqla": TIME_GRAIN_MONTH if temporal else None,
        "x_axis_sort_asc": True,
        "x_axis_sort_series": "name",
        "x_axis_sort_series_ascending": True,
        "metrics": metrics,
        "groupby": groupby,
        "adhoc_filters": filters,
        "order_desc": True,
        "row_limit": row_limit,
        "truncate_metric": True,
        "show_empty_columns": True,
        "comparison_type": "values",
        "annotation_layers": annotation_layers or [],
        "forecastPeriods": 10,
        "forecastInterval": 0.8,
        "x_axis_title": x_axis_title,
        "x_axis_title_margin": 30 if x_axis_title else 15,
        "y_axis_title": y_axis_title,
        "y_axis_title_margin": 40 if y_axis_title else 15,
        "y_axis_title_position": "Left",
        "sort_series_type": "sum",
        "color_scheme": "supersetColors",
        "seriesType": "line",
        "only_total": True,
        "opacity": 0.2,
        "markerEnabled": markers,
        "markerSize": 6,
        "show_legend": show_legend,
        "legendType": "scroll",
        "legendOrientation": "top",
        "x_axis_time_format": MONTH_FORMAT if temporal else "SMART_NUMBER",
        "rich_tooltip": True,
        "tooltipTimeFormat": MONTH_FORMAT,
        "y_axis_format": y_axis_format,
        "truncateXAxis": True,
        "y_axis_bounds": [None, None],
        "truncateYAxis": truncate_y_axis,
        "zoomable": False,
        "extra_form_data": {},
    }
    if viz_type == "echarts_timeseries_bar":
        params.update({"stack": "Stack" if stack else None, "orientation": "vertical"})
    if extra_params:
        params.update(extra_params)

    query = _timeseries_query(x_axis, temporal, metrics, groupby, filters, row_limit, annotation_layers)
    return ChartSpec(viz_type, params, [query])


def _timeseries_query(
    x_axis: str,
    temporal: bool,
    metrics: list[dict[str, Any]],
    groupby: list[str],
    filters: list[dict[str, Any]],
    row_limit: int,
    annotation_layers: list[dict[str, Any]] | None,
    drop_missing_columns: bool = False,
) -> dict[str, Any]:
    """The ECharts time series ``buildQuery``: x axis and series columns, pivoted to one column per series."""
    columns = [_x_axis_column(x_axis, temporal), *groupby]
    query = _base_query(
        filters, columns, metrics, [[metrics[0], False]], row_limit, annotation_layers=annotation_layers
    )
    query["extras"]["time_grain_sqla"] = TIME_GRAIN_MONTH if temporal else None
    query["series_columns"] = list(groupby)
    query["time_offsets"] = []
    post_processing: list[dict[str, Any]] = [
        {
            "operation": "pivot",
            "options": {
                "index": [x_axis],
                "columns": list(groupby),
                "aggregates": {_label(m): {"operator": "mean"} for m in metrics},
                "drop_missing_columns": drop_missing_columns,
            },
        }
    ]
    if len(metrics) == 1 and groupby:
        post_processing.append(
            {"operation": "rename", "options": {"columns": {_label(metrics[0]): None}, "level": 0, "inplace": True}}
        )
    post_processing.append({"operation": "flatten"})
    query["post_processing"] = post_processing
    return query


def mixed_timeseries(
    *,
    lines: list[dict[str, Any]],
    points: list[dict[str, Any]],
    filters: list[dict[str, Any]] | None = None,
    y_axis_format: str = "SMART_NUMBER",
    row_limit: int = 10000,
) -> ChartSpec:
    """``mixed_timeseries``: query A drawn as lines without markers, query B as markers only. Used for SPC
    charts in the Making Data Count style: the series and its limits as lines, special-cause points as dots."""
    filters = filters or []
    shared = {
        "groupby": [],
        "adhoc_filters": filters,
        "limit": None,
        "timeseries_limit_metric": None,
        "order_desc": True,
        "row_limit": row_limit,
        "truncate_metric": True,
    }
    params: dict[str, Any] = {
        "datasource": PLACEHOLDER_DATASOURCE,
        "viz_type": "mixed_timeseries",
        "x_axis": "period_month",
        "time_grain_sqla": TIME_GRAIN_MONTH,
        "metrics": lines,
        **shared,
        "metrics_b": points,
        **{f"{key}_b": value for key, value in shared.items()},
        "annotation_layers": [],
        "seriesType": "line",
        "seriesTypeB": "scatter",
        "markerEnabled": False,
        "markerEnabledB": True,
        "markerSize": 6,
        "markerSizeB": 9,
        "yAxisIndex": 0,
        "yAxisIndexB": 0,
        "opacity": 0.2,
        "opacityB": 0.2,
        "area": False,
        "areaB": False,
        "stack": False,
        "stackB": False,
        "show_value": False,
        "show_valueB": False,
        "color_scheme": "supersetColors",
        "show_legend": True,
        "legendType": "scroll",
        "legendOrientation": "top",
        "x_axis_time_format": MONTH_FORMAT,
        "tooltipTimeFormat": MONTH_FORMAT,
        "rich_tooltip": True,
        "y_axis_format": y_axis_format,
        "y_axis_format_secondary": y_axis_format,
        "y_axis_bounds": [None, None],
        "truncateYAxis": True,
        "zoomable": False,
        "extra_form_data": {},
    }
    queries = [
        _timeseries_query("period_month", True, lines, [], filters, row_limit, [], drop_missing_columns=True),
        _timeseries_query("period_month", True, points, [], filters, row_limit, [], drop_missing_columns=True),
    ]
    for query in queries:  # the mixed chart's buildQuery leaves the sort direction to the server
        del query["order_desc"]
    return ChartSpec("mixed_timeseries", params, queries)


def table(
    *,
    groupby: list[str],
    metrics: list[dict[str, Any]] | None = None,
    filters: list[dict[str, Any]] | None = None,
    sort_by: dict[str, Any] | None = None,
    sort_descending: bool = False,
    column_config: dict[str, dict[str, Any]] | None = None,
    page_length: int = 0,
    row_limit: int = 1000,
    extra_params: dict[str, Any] | None = None,
) -> ChartSpec:
    """A table in aggregate mode: one row per distinct ``groupby`` combination, so rows repeated by a join (a
    collaborative listed once per ICB it spans) collapse to one."""
    metrics = metrics or []
    filters = filters or []
    params: dict[str, Any] = {
        "datasource": PLACEHOLDER_DATASOURCE,
        "viz_type": "table",
        "query_mode": "aggregate",
        "groupby": groupby,
        "metrics": metrics,
        "all_columns": [],
        "percent_metrics": [],
        "adhoc_filters": filters,
        "order_by_cols": [],
        "row_limit": row_limit,
        "server_page_length": 10,
        "page_length": page_length,
        "order_desc": sort_descending,
        "table_timestamp_format": "%d %b %Y",
        "show_cell_bars": False,
        "color_pn": True,
        "allow_rearrange_columns": False,
        "column_config": column_config or {},
        "conditional_formatting": [],
        "extra_form_data": {},
    }
    if sort_by is not None:
        params["timeseries_limit_metric"] = sort_by
    if extra_params:
        params.update(extra_params)
    if sort_by is not None:
        orderby = [[sort_by, not sort_descending]]
    elif metrics:
        orderby = [[metrics[0], False]]
    else:
        orderby = []
    query = _base_query(filters, list(groupby), metrics, orderby, row_limit, order_desc=sort_descending)
    if sort_by is not None:
        query["series_limit_metric"] = sort_by
    query["post_processing"] = []
    query["time_offsets"] = []
    return ChartSpec("table", params, [query])


def pivot_table(
    *,
    rows: list[str],
    columns: list[str],
    metrics: list[dict[str, Any]],
    filters: list[dict[str, Any]] | None = None,
    value_format: str = "SMART_NUMBER",
    row_limit: int = 10000,
) -> ChartSpec:
    """``pivot_table_v2``: rows × columns of an aggregate, pivoted in the browser."""
    filters = filters or []
    params: dict[str, Any] = {
        "datasource": PLACEHOLDER_DATASOURCE,
        "viz_type": "pivot_table_v2",
        "groupbyRows": rows,
        "groupbyColumns": columns,
        "metrics": metrics,
        "metricsLayout": "COLUMNS",
        "adhoc_filters": filters,
        "row_limit": row_limit,
        "order_desc": True,
        "aggregateFunction": "Sum",
        "valueFormat": value_format,
        "date_format": "smart_date",
        "rowOrder": "key_a_to_z",
        "colOrder": "key_a_to_z",
        "transposePivot": False,
        "combineMetric": False,
        "rowTotals": False,
        "colTotals": False,
        "extra_form_data": {},
    }
    query = _base_query(filters, [*columns, *rows], metrics, [[metrics[0], False]], row_limit)
    return ChartSpec("pivot_table_v2", params, [query])


def big_number_total(
    *,
    metric_: dict[str, Any],
    filters: list[dict[str, Any]] | None = None,
    subheader: str = "",
    number_format: str = "SMART_NUMBER",
) -> ChartSpec:
    """``big_number_total``: one figure."""
    filters = filters or []
    params: dict[str, Any] = {
        "datasource": PLACEHOLDER_DATASOURCE,
        "viz_type": "big_number_total",
        "metric": metric_,
        "adhoc_filters": filters,
        "subheader": subheader,
        "header_font_size": 0.4,
        "subheader_font_size": 0.15,
        "y_axis_format": number_format,
        "time_format": "smart_date",
        "extra_form_data": {},
    }
    query = _base_query(filters, [], [metric_], None, None)
    return ChartSpec("big_number_total", params, [query])


def formula_annotation(name: str, value: float, color: str = "#005EB8") -> dict[str, Any]:
    """A horizontal line drawn by the frontend (e.g. the 92% RTT standard). Formula annotations are the kind
    Superset's importer keeps; they need no annotation layer in the metadata database."""
    return {
        "name": name,
        "annotationType": "FORMULA",
        "sourceType": "",
        "value": str(value),
        "overrides": {"time_range": None},
        "show": True,
        "showLabel": True,
        "titleColumn": "",
        "descriptionColumns": [],
        "timeColumn": "",
        "intervalEndColumn": "",
        "color": color,
        "opacity": "",
        "style": "dashed",
        "width": 2,
        "showMarkers": False,
        "hideLine": False,
    }
