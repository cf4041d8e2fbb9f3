"""The benefits board report: one self-contained HTML page per collaborative, for its programme office's board paper.

The page reads the serving database read-only and shows, in the collaborative's own words:

1. the benefits register: each benefit's baseline, target, latest actual, % of target achieved, RAG, and the
   Making Data Count variation and assurance icons;
2. one SPC chart per benefit (series, mean, process limits, trajectory, target, rebase);
3. variation between member trusts (funnel plot for proportions, else a dot chart), as learning, never a
   league table: members are listed alphabetically and never ranked;
4. the evaluation estimates (before/after, difference-in-differences, interrupted time series) with their
   uncertainty, charted forest-style and said in plain English;
5. data-quality caveats.

Everything is inline (CSS, SVG charts drawn here): no JavaScript, no fonts, scripts or images from elsewhere, so the
page can be e-mailed, archived and printed to A4 PDF. Missing data never raises: a benefit without usable data shows
"no usable data" with a grey RAG, and an empty section says so in a sentence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

TEMPLATES_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "benefits_report.html.j2"

#: What the report says when the serving database was built from the bundled samples (the caller decides).
DEFAULT_SYNTHETIC_NOTE = "Activity figures in this report are synthetic sample data."

MINUS = "\u2212"
NO_DATA = "no usable data"

# Making Data Count colours (icons and SPC points), and NHS identity colours for the rest.
MDC_COMMON = "#a6a6a6"
MDC_IMPROVEMENT = "#2b8cc4"
MDC_CONCERN = "#e8890c"
MDC_NEUTRAL = "#6f2c91"
NHS_BLUE = "#005eb8"
NHS_DARK_GREY = "#425563"
NHS_MID_GREY = "#768692"
TARGET_RED = "#d5281b"
TRAJECTORY_GREEN = "#007f3b"

POINT_COLOURS = {
    "special_cause_improvement": MDC_IMPROVEMENT,
    "special_cause_concern": MDC_CONCERN,
    "special_cause_neutral": MDC_NEUTRAL,
    "common_cause": MDC_COMMON,
}
POINT_LABELS = {
    "special_cause_improvement": "Special cause: improvement",
    "special_cause_concern": "Special cause: concern",
    "special_cause_neutral": "Special cause: neither better nor worse",
    "common_cause": "Common cause variation",
}

RAG_WORDS = {"achieved": "Achieved", "green": "Green", "amber": "Amber", "red": "Red", "grey": "Grey"}
RAG_MEANINGS = {
    "achieved": "target met",
    "green": "on or better than trajectory",
    "amber": "behind trajectory, within tolerance",
    "red": "behind trajectory, beyond tolerance",
    "grey": "data missing or suppressed",
}

COLLABORATIVE_TYPES = {
    "acute": "Acute",
    "mhlda": "Mental health, learning disability and autism",
    "community": "Community",
    "all_in": "All-in (acute, mental health and community)",
}
GOVERNANCE_MODELS = {
    "provider_leadership_board": "Provider leadership board",
    "provider_leadership_board_formal": "Provider leadership board (formal)",
    "provider_leadership_board_informal": "Provider leadership board (informal)",
    "lead_provider": "Lead provider",
    "shared_leadership": "Shared leadership",
    "joint_committee": "Joint committee",
    "icb_sub_committee": "ICB sub-committee",
    "portfolio_leadership": "Portfolio leadership",
    "emerging_leadership": "Emerging leadership",
}
METHOD_LABELS = {
    ("before_after", None): "Before and after",
    ("did", None): "Difference-in-differences",
    ("its", "level"): "Interrupted time series: change in level",
    ("its", "slope"): "Interrupted time series: change in trend",
    ("synthetic_control", None): "Synthetic control",
}
#: The coverage study's finding for the synthetic-control interval (README, `collab-benefits evaluate-coverage`).
SYNTHETIC_CONTROL_CAUTION = (
    "In simulation this interval covers the true effect less often than it claims (87% for a nominal 95% with 5 "
    "member trusts), so read it beside the difference-in-differences, which is the headline estimate."
)
METHOD_ORDER = {"before_after": 0, "did": 1, "its": 2, "synthetic_control": 3}
#: Metrics counted per month (flows), whose estimates read "… bed days a month".
FLOW_METRICS = {
    "oap_inappropriate_bed_days",
    "oap_inappropriate_started",
    "rtt_clock_starts",
    "rtt_clock_stops",
    "los_bed_days",
    "mhsds_bed_days_month",  # MHS24, monthly (the published length-of-stay measures are rolling quarters)
}
OUTLIER_WORDS = {
    "above_998": "Above the 99.8% limit",
    "above_95": "Above the 95% limit",
    "within": "Within the expected range",
    "below_95": "Below the 95% limit",
    "below_998": "Below the 99.8% limit",
}


# --------------------------------------------------------------------------------------------------------------
# Small helpers: missing values, numbers, dates
# --------------------------------------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _float(value: Any) -> float | None:
    if _missing(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    if _missing(value):
        return None
    text = str(value).strip()
    return text or None


def _date(value: Any) -> date | None:
    if _missing(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, pd.Timestamp):
        return value.date()
    try:
        return pd.Timestamp(str(value)).date()
    except (ValueError, TypeError):
        return None


def _bool(value: Any) -> bool:
    return False if _missing(value) else bool(value)


def _month(value: date | None, short: bool = False) -> str:
    if value is None:
        return "—"
    return value.strftime("%b %Y") if not short else value.strftime("%b %y")


def _long_date(value: date | None) -> str:
    if value is None:
        return "—"
    return f"{value.day} {value.strftime('%B %Y')}"


def _signed(text: str) -> str:
    return text.replace("-", MINUS) if text.startswith("-") else text


def _fmt_number(value: float | None, unit: str | None = None, decimals: int | None = None) -> str:
    """A value as a board paper would print it: thousands separators, sensible decimals, a true minus sign."""
    if value is None:
        return "—"
    if decimals is None:
        magnitude = abs(value)
        if unit == "percent":
            decimals = 1
        elif magnitude >= 100 or (magnitude > 0 and float(value).is_integer()):
            decimals = 0
        elif magnitude >= 10 or magnitude >= 1:
            decimals = 1
        elif magnitude == 0:
            decimals = 0
        else:
            decimals = 3
    text = f"{value:,.{decimals}f}"
    if text.lstrip("-").strip("0.,") == "":
        text = text.lstrip("-")
    text = _signed(text)
    return f"{text}%" if unit == "percent" else text


def _unit_words(unit: str | None, measure: str | None = None) -> str:
    if measure == "coefficient_of_variation":
        return "coefficient of variation"
    if not unit:
        return ""
    return "per cent" if unit == "percent" else unit


def _fmt_with_unit(value: float | None, unit: str | None, measure: str | None = None) -> str:
    if value is None:
        return "—"
    if measure == "coefficient_of_variation":
        return _fmt_number(value, decimals=3)
    text = _fmt_number(value, unit)
    if unit and unit != "percent":
        text = f"{text} {unit}"
    return text


def _shared_decimals(*values: float | None) -> int:
    """One number of decimals for an estimate and its interval, from the largest of them."""
    largest = max((abs(v) for v in values if v is not None), default=0.0)
    if largest >= 10:
        return 0
    if largest >= 1:
        return 1
    return 2 if largest >= 0.1 else 3


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}"


def _fmt_int(value: Any) -> str:
    number = _float(value)
    return "—" if number is None else f"{int(round(number)):,}"


def _humanise(code: str | None, table: dict[str, str]) -> str:
    if not code:
        return "—"
    return table.get(code, code.replace("_", " ").capitalize())


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


# --------------------------------------------------------------------------------------------------------------
# Reading the serving database
# --------------------------------------------------------------------------------------------------------------


class _Reader:
    """Queries against the serving database that return an empty frame (never raise) when a table is missing."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.problems: list[str] = []
        rows = con.execute("select table_name from information_schema.tables").fetchall()
        self.tables = {row[0] for row in rows}

    def has(self, table: str) -> bool:
        return table in self.tables

    def frame(self, table: str, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        if not self.has(table):
            self.problems.append(f"The serving database has no {table} table.")
            return pd.DataFrame()
        try:
            return self.con.execute(sql, list(params)).df()
        except duckdb.Error as exc:  # a column missing from an older publication: say so, do not fail
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.problems.append(f"Could not read {table}: {first_line}")
            return pd.DataFrame()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    if frame.empty:
        return []
    return [
        {key: (None if _missing(value) else value) for key, value in row.items()} for row in frame.to_dict("records")
    ]


# --------------------------------------------------------------------------------------------------------------
# SVG drawing
# --------------------------------------------------------------------------------------------------------------


def _nice_step(span: float, target_ticks: int = 5) -> float:
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(target_ticks, 1)
    power = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        if raw <= multiple * power:
            return multiple * power
    return 10 * power


def _nice_domain(
    values: Iterable[float], include_zero: bool = False, ticks: int = 5, pad_fraction: float = 0.0
) -> tuple[float, float, list[float]]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if include_zero:
        finite.append(0.0)
    if not finite:
        return 0.0, 1.0, [0.0, 0.5, 1.0]
    low, high = min(finite), max(finite)
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    elif pad_fraction:
        pad = (high - low) * pad_fraction
        low, high = (low - pad if not (include_zero and low == 0) else low), high + pad
    step = _nice_step(high - low, ticks)
    low = math.floor(low / step) * step
    high = math.ceil(high / step) * step
    count = int(round((high - low) / step))
    return low, high, [low + i * step for i in range(count + 1)]


def _tick_label(value: float, step: float, unit: str | None = None) -> str:
    decimals = 0 if step >= 1 else min(4, max(0, -int(math.floor(math.log10(step))) + (0 if step * 10 % 1 == 0 else 1)))
    text = _signed(f"{value:,.{decimals}f}")
    if text in (f"{MINUS}0", f"{MINUS}0.0"):
        text = text[1:]
    return f"{text}%" if unit == "percent" else text


class _Svg:
    """A tiny SVG writer: every chart is drawn in a fixed viewBox and scales to the page width."""

    def __init__(self, width: int, height: int, title: str, description: str) -> None:
        self.width = width
        self.height = height
        self.parts: list[str] = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
            f'preserveAspectRatio="xMidYMid meet" role="img" class="chart" aria-labelledby="t{id(self)} d{id(self)}">',
            f'<title id="t{id(self)}">{escape(title)}</title>',
            f'<desc id="d{id(self)}">{escape(description)}</desc>',
        ]

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str, width: float = 1, dash: str = "") -> None:
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
            f'stroke-width="{width}"{dash_attr}/>'
        )

    def polyline(self, points: Sequence[tuple[float, float]], stroke: str, width: float = 1, dash: str = "") -> None:
        if len(points) < 2:
            return
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        self.add(
            f'<polyline points="{coords}" fill="none" stroke="{stroke}" stroke-width="{width}" '
            f'stroke-linejoin="round"{dash_attr}/>'
        )

    def text(
        self,
        x: float,
        y: float,
        content: str,
        size: float = 11,
        anchor: str = "start",
        fill: str = "#212b32",
        weight: str = "normal",
        rotate: float | None = None,
    ) -> None:
        transform = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
        self.add(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
            f'font-weight="{weight}"{transform}>{escape(content)}</text>'
        )

    def render(self) -> Markup:
        return Markup("".join([*self.parts, "</svg>"]))


def _no_data_svg(title: str, message: str, width: int = 760, height: int = 120) -> Markup:
    svg = _Svg(width, height, title, message)
    svg.add(
        f'<rect x="1" y="1" width="{width - 2}" height="{height - 2}" rx="6" fill="#f0f4f5" '
        f'stroke="{MDC_COMMON}" stroke-dasharray="6 4"/>'
    )
    svg.text(width / 2, height / 2 + 5, message, size=15, anchor="middle", fill=NHS_DARK_GREY)
    return svg.render()


def variation_icon(code: str | None) -> Markup:
    """A Making Data Count variation icon (circle, H/L letter) with a <title> and a text label beside it."""
    code = code or ""
    if code.startswith("special_cause_improvement"):
        colour, kind = MDC_IMPROVEMENT, "Improvement"
    elif code.startswith("special_cause_concern"):
        colour, kind = MDC_CONCERN, "Concern"
    elif code.startswith("special_cause_neutral"):
        colour, kind = MDC_NEUTRAL, "Neither"
    elif code == "common_cause":
        colour, kind = MDC_COMMON, "Common cause"
    else:
        return Markup('<span class="icon-label muted">Not available</span>')
    letter = "H" if code.endswith("_high") else "L" if code.endswith("_low") else ""
    if kind == "Common cause":
        label = "Common cause"
        description = "common cause, no significant change"
    else:
        direction = {"H": "high", "L": "low"}.get(letter, "")
        label = kind + (f" ({direction})" if direction else "")
        description = f"special cause variation of {kind.lower()} nature" + (
            f", {'higher' if letter == 'H' else 'lower'} values" if letter else ""
        )
    parts = [
        '<svg class="icon" viewBox="0 0 32 32" width="26" height="26" role="img">',
        f"<title>Variation: {escape(description)}</title>",
        f'<circle cx="16" cy="16" r="14" fill="#ffffff" stroke="{colour}" stroke-width="3"/>',
    ]
    if kind == "Common cause":
        parts.append(
            f'<polyline points="7,18 11,14 15,19 19,13 23,17 26,15" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
    else:
        parts.append(f'<circle cx="16" cy="16" r="10" fill="{colour}"/>')
        if letter:
            parts.append(
                f'<text x="16" y="20.5" font-size="13" font-weight="bold" text-anchor="middle" fill="#ffffff">'
                f"{letter}</text>"
            )
    parts.append("</svg>")
    return Markup(f'<span class="icon-wrap">{"".join(parts)}<span class="icon-label">{escape(label)}</span></span>')


def assurance_icon(code: str | None) -> Markup:
    """A Making Data Count assurance icon (P / F / ?) with a <title> and a text label beside it."""
    table = {
        "consistently_passes": (MDC_IMPROVEMENT, "P", "Passes consistently", "consistently passes the target"),
        "consistently_fails": (MDC_CONCERN, "F", "Fails consistently", "consistently fails the target"),
        "inconsistent": (MDC_COMMON, "?", "Hit and miss", "hit and miss: may or may not meet the target"),
    }
    if code not in table:
        return Markup('<span class="icon-label muted">Not available</span>')
    colour, letter, label, description = table[code]
    svg = (
        '<svg class="icon" viewBox="0 0 32 32" width="26" height="26" role="img">'
        f"<title>Assurance: {escape(description)}</title>"
        f'<circle cx="16" cy="16" r="14" fill="#ffffff" stroke="{colour}" stroke-width="3"/>'
        f'<text x="16" y="21.5" font-size="16" font-weight="bold" text-anchor="middle" fill="{colour}">{letter}</text>'
        "</svg>"
    )
    return Markup(f'<span class="icon-wrap">{svg}<span class="icon-label">{escape(label)}</span></span>')


def rag_badge(status: str | None) -> Markup:
    status = status if status in RAG_WORDS else "grey"
    word = RAG_WORDS[status]
    meaning = RAG_MEANINGS[status]
    return Markup(f'<span class="rag rag-{status}" title="{escape(meaning)}">{escape(word)}</span>')


def _month_ticks(months: Sequence[date], max_labels: int = 10) -> list[int]:
    count = len(months)
    if count == 0:
        return []
    for step in (1, 2, 3, 4, 6, 12, 24):
        if math.ceil(count / step) <= max_labels:
            break
    # Start on a month that lines up with the step (e.g. every April for annual steps, quarters otherwise).
    first = 0
    if step in (3, 6, 12):
        for index, month in enumerate(months[:step]):
            if (month.month - 1) % step == 0:
                first = index
                break
    return list(range(first, count, step))


def spc_chart(benefit: BenefitView, go_live: date | None) -> Markup:
    """The XmR chart of one benefit: values coloured by point type, mean, limits, trajectory, target, rebase."""
    title = f"SPC chart: {benefit.title}"
    if not benefit.has_data:
        return _no_data_svg(title, "No usable data: this benefit's values are missing or suppressed.")
    rows = benefit.rows
    months = [row["period_month"] for row in rows]
    width, height = 760, 330
    left, right, top, bottom = 84, 18, 28, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    unit = None if benefit.measure == "coefficient_of_variation" else benefit.unit

    values: list[float | None] = []
    for row in rows:
        for key in ("actual_value", "spc_mean", "spc_upl", "spc_lpl", "trajectory_value"):
            values.append(row.get(key))
    values.append(benefit.target_value)
    values.append(benefit.baseline_value)
    low, high, ticks = _nice_domain([v for v in values if v is not None], pad_fraction=0.04)
    if unit == "percent":
        low, high = max(low, 0.0) if min(v for v in values if v is not None) >= 0 else low, high
        ticks = [t for t in ticks if low <= t <= high]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    n = len(months)

    def x(index: float) -> float:
        return left + (plot_w * (index + 0.5) / n)

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - low) / (high - low))

    svg = _Svg(
        width,
        height,
        title,
        f"Monthly {benefit.metric_name.lower()} from {_month(months[0])} to {_month(months[-1])} with the mean, "
        f"process limits, trajectory and target.",
    )
    for tick in ticks:
        svg.line(left, y(tick), left + plot_w, y(tick), "#e8edee")
        svg.text(left - 6, y(tick) + 4, _tick_label(tick, step, unit), size=13, anchor="end", fill=NHS_DARK_GREY)
    svg.line(left, top + plot_h, left + plot_w, top + plot_h, NHS_MID_GREY)
    svg.line(left, top, left, top + plot_h, NHS_MID_GREY)
    for index in _month_ticks(months):
        svg.line(x(index), top + plot_h, x(index), top + plot_h + 4, NHS_MID_GREY)
        svg.text(x(index), top + plot_h + 20, _month(months[index]), size=13, anchor="middle", fill=NHS_DARK_GREY)
    svg.text(left + plot_w / 2, height - 8, "Month", size=13, anchor="middle", fill=NHS_DARK_GREY)
    axis_label = benefit.axis_label
    svg.text(16, top + plot_h / 2, axis_label, size=13, anchor="middle", fill=NHS_DARK_GREY, rotate=-90)

    # Markers for go-live and rebase (limits recalculated), drawn first so that the data sit on top.
    markers: list[tuple[date, str]] = []
    if go_live is not None and months[0] <= go_live <= months[-1]:
        markers.append((go_live, "Go-live"))
    if benefit.rebase_date is not None and months[0] < benefit.rebase_date <= months[-1]:
        markers.append((benefit.rebase_date, "Rebased: limits recalculated"))
    for number, (when, label) in enumerate(markers):
        index = next((i for i, m in enumerate(months) if m >= when), None)
        if index is None:
            continue
        position = x(index - 0.5)
        svg.line(position, top, position, top + plot_h, NHS_DARK_GREY, 1, "2 3")
        anchor = "start" if position < left + plot_w * 0.7 else "end"
        svg.text(
            position + (4 if anchor == "start" else -4),
            top - 8 if number == 0 else top + 10,
            label,
            size=12,
            anchor=anchor,
            fill=NHS_DARK_GREY,
        )

    def runs(key: str) -> list[list[tuple[float, float]]]:
        """Polylines of one line series, broken where it is missing or where the limits restart."""
        segments: list[list[tuple[float, float]]] = []
        current: list[tuple[float, float]] = []
        for index, row in enumerate(rows):
            value = row.get(key)
            restart = benefit.rebase_date is not None and row["period_month"] == benefit.rebase_date
            if value is None or restart:
                if len(current) > 0:
                    segments.append(current)
                current = []
            if value is not None:
                current.append((x(index), y(value)))
        if current:
            segments.append(current)
        # A one-point run (a single month) still gets a short horizontal stroke.
        return [s if len(s) > 1 else [(s[0][0] - 4, s[0][1]), (s[0][0] + 4, s[0][1])] for s in segments]

    for segment in runs("spc_upl") + runs("spc_lpl"):
        svg.polyline(segment, "#555f66", 1.2, "6 4")
    for segment in runs("spc_mean"):
        svg.polyline(segment, "#212b32", 1.4)
    trajectory = [(x(i), y(r["trajectory_value"])) for i, r in enumerate(rows) if r.get("trajectory_value") is not None]
    svg.polyline(trajectory, TRAJECTORY_GREEN, 1.8, "2 3")
    if benefit.target_value is not None:
        svg.line(left, y(benefit.target_value), left + plot_w, y(benefit.target_value), TARGET_RED, 1.6, "9 4")
        label_y = y(benefit.target_value) - 5
        svg.text(
            left + 6, label_y if label_y > top + 8 else label_y + 17, "Target", size=12, fill=TARGET_RED, weight="bold"
        )

    # The data: a thin line broken by missing months, then points coloured by type.
    for segment in [s for s in runs("actual_value") if len(s) > 1]:
        svg.polyline(segment, "#768692", 1.2)
    for index, row in enumerate(rows):
        value = row.get("actual_value")
        if value is None:
            continue
        kind = row.get("spc_point_type") or "common_cause"
        colour = POINT_COLOURS.get(kind, MDC_COMMON)
        svg.add(
            f'<circle cx="{x(index):.1f}" cy="{y(value):.1f}" r="4" fill="{colour}" stroke="#ffffff" '
            f'stroke-width="1"><title>{escape(_month(row["period_month"]))}: '
            f"{escape(_fmt_with_unit(value, unit, benefit.measure))} ({escape(POINT_LABELS.get(kind, kind))})"
            "</title></circle>"
        )
    return svg.render()


def _legend_item(swatch: str, label: str) -> str:
    return f'<span class="legend-item">{swatch}<span>{escape(label)}</span></span>'


def _line_swatch(colour: str, dash: str = "", width: float = 2) -> str:
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<svg width="26" height="10" viewBox="0 0 26 10" aria-hidden="true"><line x1="1" y1="5" x2="25" y2="5" '
        f'stroke="{colour}" stroke-width="{width}"{dash_attr}/></svg>'
    )


def _dot_swatch(colour: str) -> str:
    return (
        f'<svg width="12" height="12" viewBox="0 0 12 12" aria-hidden="true"><circle cx="6" cy="6" r="5" '
        f'fill="{colour}"/></svg>'
    )


def spc_legend() -> Markup:
    items = [
        _legend_item(_dot_swatch(MDC_COMMON), "Common cause"),
        _legend_item(_dot_swatch(MDC_IMPROVEMENT), "Special cause: improvement"),
        _legend_item(_dot_swatch(MDC_CONCERN), "Special cause: concern"),
        _legend_item(_dot_swatch(MDC_NEUTRAL), "Special cause: neither"),
        _legend_item(_line_swatch("#212b32", width=1.4), "Mean"),
        _legend_item(_line_swatch("#555f66", "6 4", 1.2), "Process limits"),
        _legend_item(_line_swatch(TRAJECTORY_GREEN, "2 3"), "Trajectory"),
        _legend_item(_line_swatch(TARGET_RED, "9 4"), "Target"),
    ]
    return Markup(f'<div class="legend">{"".join(items)}</div>')


def funnel_chart(panel: VariationPanel) -> Markup:
    """Funnel plot: each member's proportion against its denominator, with 95% and 99.8% limits."""
    width, height = 760, 340
    left, right, top, bottom = 84, 24, 18, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    centre = panel.collaborative_value
    members = [m for m in panel.members if m["value"] is not None and (m["denominator"] or 0) > 0]
    max_n = max(m["denominator"] for m in members) * 1.08

    # Half-widths from the mart's own limits: h = k / sqrt(n), so k = h * sqrt(n) (unclipped rows only).
    def constant(upper_key: str, lower_key: str) -> float | None:
        estimates = []
        for m in members:
            upper, lower = m.get(upper_key), m.get(lower_key)
            if centre is None or upper is None or lower is None:
                continue
            half = (upper - lower) / 2
            if half > 0 and lower > 0 and upper < (100 if panel.unit == "percent" else float("inf")):
                estimates.append(half * math.sqrt(m["denominator"]))
        if not estimates:
            return None
        estimates.sort()
        return estimates[len(estimates) // 2]

    k95 = constant("upper_95", "lower_95")
    k998 = constant("upper_998", "lower_998")
    if centre is not None and panel.unit == "percent" and 0 < centre < 100:
        fallback = 100 * math.sqrt((centre / 100) * (1 - centre / 100))
        k95 = k95 or 1.959964 * fallback
        k998 = k998 or 3.090232 * fallback
    cap_low, cap_high = (0.0, 100.0) if panel.unit == "percent" else (-math.inf, math.inf)
    # The mart's limits are adjusted for over-dispersion (issue 13): sin²(asin √p ± z √(1 / (4n) + τ²)). Draw
    # that curve when the mart gives τ² (the members of one type share it); else the binomial shape k / √n.
    tau2_values = sorted(m["tau2"] for m in members if m.get("tau2") is not None)
    tau2 = tau2_values[len(tau2_values) // 2] if tau2_values else None
    arcsine = tau2 is not None and panel.unit == "percent" and centre is not None and 0 <= centre <= 100

    def limit(k: float, z: float, n: float, sign: int) -> float:
        if arcsine:
            theta = math.asin(math.sqrt(centre / 100)) + sign * z * math.sqrt(1 / (4 * n) + tau2)
            return 100 * math.sin(min(max(theta, 0.0), math.pi / 2)) ** 2
        return min(cap_high, max(cap_low, centre + sign * k / math.sqrt(n)))

    curve_values: list[float] = [m["value"] for m in members]
    if centre is not None:
        curve_values.append(centre)
        for k, z in ((k95, 1.959964), (k998, 3.090232)):
            if k:
                for n in (min(m["denominator"] for m in members) * 0.6, max_n):
                    curve_values += [limit(k, z, n, -1), limit(k, z, n, 1)]
    low, high, ticks = _nice_domain(curve_values)
    if panel.unit == "percent":
        low, high = max(low, 0.0), min(high, 100.0)
        ticks = [t for t in ticks if low <= t <= high]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    x_low, x_high, x_ticks = _nice_domain([0.0, max_n], include_zero=True)
    first_n = max(1.0, x_high / 400)
    samples = [first_n + (x_high - first_n) * (i / 120) ** 2 for i in range(121)]

    def x(n: float) -> float:
        return left + plot_w * (n - x_low) / (x_high - x_low)

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - low) / (high - low))

    def clamp(value: float) -> float:
        return min(max(value, low), high)

    svg = _Svg(
        width,
        height,
        f"Funnel plot: {panel.metric_name}, {_month(panel.period_month)}",
        f"Each member trust's {panel.metric_name.lower()} against its number of patients, with the collaborative's "
        "value and 95% and 99.8% control limits, widened for the variation between trusts beyond chance "
        "(over-dispersion).",
    )
    for tick in ticks:
        svg.line(left, y(tick), left + plot_w, y(tick), "#e8edee")
        svg.text(left - 6, y(tick) + 4, _tick_label(tick, step, panel.unit), size=13, anchor="end", fill=NHS_DARK_GREY)
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    for tick in x_ticks:
        svg.line(x(tick), top + plot_h, x(tick), top + plot_h + 4, NHS_MID_GREY)
        svg.text(x(tick), top + plot_h + 20, _tick_label(tick, x_step), size=13, anchor="middle", fill=NHS_DARK_GREY)
    svg.line(left, top + plot_h, left + plot_w, top + plot_h, NHS_MID_GREY)
    svg.line(left, top, left, top + plot_h, NHS_MID_GREY)
    svg.text(left + plot_w / 2, height - 8, panel.denominator_label, size=13, anchor="middle", fill=NHS_DARK_GREY)
    svg.text(16, top + plot_h / 2, panel.axis_label, size=13, anchor="middle", fill=NHS_DARK_GREY, rotate=-90)

    clip = f"clip{id(svg)}"
    svg.add(
        f'<defs><clipPath id="{clip}"><rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/></clipPath></defs>'
    )
    if centre is not None:
        svg.add(f'<g clip-path="url(#{clip})">')
        for k, z, dash, colour in ((k998, 3.090232, "", "#555f66"), (k95, 1.959964, "6 4", "#555f66")):
            if not k:
                continue
            for sign in (1, -1):
                points = [(x(n), y(limit(k, z, n, sign))) for n in samples]
                svg.polyline(points, colour, 1.3, dash)
        svg.add("</g>")
        svg.line(left, y(centre), left + plot_w, y(centre), NHS_BLUE, 1.6)
    for number, member in enumerate(members):
        cx, cy = x(member["denominator"]), y(clamp(member["value"]))
        svg.add(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{NHS_DARK_GREY}" stroke="#ffffff" stroke-width="1">'
            f"<title>{escape(member['org_name'])}: {escape(_fmt_with_unit(member['value'], panel.unit))}</title>"
            "</circle>"
        )
        anchor = "end" if cx > left + plot_w - 60 else "start"
        svg.text(
            cx + (-8 if anchor == "end" else 8),
            cy + 4 + (number % 2) * 0,
            member["org_code"],
            size=13,
            anchor=anchor,
            fill="#212b32",
            weight="bold",
        )
    return svg.render()


def funnel_legend() -> Markup:
    items = [
        _legend_item(_line_swatch(NHS_BLUE, width=1.6), "Collaborative value"),
        _legend_item(_line_swatch("#555f66", "6 4", 1.3), "95% limits"),
        _legend_item(_line_swatch("#555f66", width=1.3), "99.8% limits"),
        _legend_item(_dot_swatch(NHS_DARK_GREY), "Member trust (labelled by ODS code)"),
    ]
    return Markup(f'<div class="legend">{"".join(items)}</div>')


def dot_chart(panel: VariationPanel) -> Markup:
    """Members (alphabetical) against the collaborative's value, for metrics that are not proportions."""
    members = [m for m in panel.members if m["value"] is not None]
    row_h = 30
    width = 760
    left, right, top, bottom = 340, 70, 14, 48
    height = top + bottom + row_h * max(len(members), 1)
    plot_w = width - left - right
    values = [m["value"] for m in members]
    if panel.collaborative_value is not None and panel.collaborative_value_comparable:
        values.append(panel.collaborative_value)
    low, high, ticks = _nice_domain(values, include_zero=min(values) >= 0 if values else True)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0

    def x(value: float) -> float:
        return left + plot_w * (value - low) / (high - low)

    svg = _Svg(
        width,
        height,
        f"Member trusts: {panel.metric_name}, {_month(panel.period_month)}",
        f"Each member trust's {panel.metric_name.lower()} in {_month(panel.period_month)}, alphabetically.",
    )
    plot_bottom = top + row_h * max(len(members), 1)
    for tick in ticks:
        svg.line(x(tick), top, x(tick), plot_bottom, "#e8edee")
        svg.text(
            x(tick), plot_bottom + 19, _tick_label(tick, step, panel.unit), size=13, anchor="middle", fill=NHS_DARK_GREY
        )
    svg.line(left, plot_bottom, left + plot_w, plot_bottom, NHS_MID_GREY)
    svg.text(left + plot_w / 2, height - 6, panel.axis_label, size=13, anchor="middle", fill=NHS_DARK_GREY)
    if panel.collaborative_value is not None and panel.collaborative_value_comparable:
        cx = x(panel.collaborative_value)
        svg.line(cx, top - 4, cx, plot_bottom, NHS_BLUE, 1.6, "5 3")
    for index, member in enumerate(members):
        cy = top + row_h * (index + 0.5)
        name = member["org_name"]
        if len(name) > 44:
            name = name[:43] + "…"
        svg.text(left - 10, cy + 4, name, size=13, anchor="end")
        svg.line(left, cy, left + plot_w, cy, "#f0f4f5")
        svg.add(
            f'<circle cx="{x(member["value"]):.1f}" cy="{cy:.1f}" r="5.5" fill="{NHS_DARK_GREY}">'
            f"<title>{escape(member['org_name'])}: {escape(_fmt_with_unit(member['value'], panel.unit))}</title>"
            "</circle>"
        )
        svg.text(x(member["value"]) + 9, cy + 4, _fmt_number(member["value"], panel.unit), size=12, fill=NHS_DARK_GREY)
    return svg.render()


def dot_legend(panel: VariationPanel) -> Markup:
    items = [_legend_item(_dot_swatch(NHS_DARK_GREY), "Member trust")]
    if panel.collaborative_value is not None and panel.collaborative_value_comparable:
        items.append(_legend_item(_line_swatch(NHS_BLUE, "5 3", 1.6), "Collaborative value"))
    return Markup(f'<div class="legend">{"".join(items)}</div>')


def forest_chart(block: EvaluationBlock) -> Markup:
    """Forest-style chart: each method's estimate with its 95% confidence interval, and the line of no change."""
    rows = block.rows
    width = 760
    left, right, top, bottom = 300, 30, 12, 48
    row_h = 34
    height = top + bottom + row_h * len(rows)
    plot_w = width - left - right
    values = [0.0]
    for row in rows:
        values += [v for v in (row["estimate"], row["ci_lower"], row["ci_upper"]) if v is not None]
    low, high, ticks = _nice_domain(values, include_zero=True)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0

    def x(value: float) -> float:
        return left + plot_w * (value - low) / (high - low)

    svg = _Svg(
        width,
        height,
        f"Evaluation estimates: {block.metric_name}",
        "Each method's estimate of the change with its 95% confidence interval; the vertical line is no change.",
    )
    plot_bottom = top + row_h * len(rows)
    for tick in ticks:
        svg.line(x(tick), top, x(tick), plot_bottom, "#e8edee")
        svg.text(x(tick), plot_bottom + 19, _tick_label(tick, step, None), size=13, anchor="middle", fill=NHS_DARK_GREY)
    svg.line(left, plot_bottom, left + plot_w, plot_bottom, NHS_MID_GREY)
    svg.line(x(0), top - 4, x(0), plot_bottom, "#212b32", 1.2)
    svg.text(
        left + plot_w / 2,
        height - 6,
        f"Estimated change ({block.change_unit})",
        size=13,
        anchor="middle",
        fill=NHS_DARK_GREY,
    )
    for index, row in enumerate(rows):
        cy = top + row_h * (index + 0.5)
        svg.text(left - 10, cy + 4, row["label"], size=13, anchor="end")
        if row["ci_lower"] is not None and row["ci_upper"] is not None:
            x1, x2 = x(row["ci_lower"]), x(row["ci_upper"])
            svg.line(x1, cy, x2, cy, NHS_BLUE, 2)
            svg.line(x1, cy - 6, x1, cy + 6, NHS_BLUE, 2)
            svg.line(x2, cy - 6, x2, cy + 6, NHS_BLUE, 2)
        if row["estimate"] is not None:
            cx = x(row["estimate"])
            svg.add(
                f'<rect x="{cx - 5:.1f}" y="{cy - 5:.1f}" width="10" height="10" fill="{NHS_BLUE}">'
                f"<title>{escape(row['label'])}: {escape(row['estimate_text'])} (95% CI {escape(row['ci_text'])})"
                "</title></rect>"
            )
    return svg.render()


# --------------------------------------------------------------------------------------------------------------
# The content model
# --------------------------------------------------------------------------------------------------------------


@dataclass
class BenefitView:
    benefit_id: str
    title: str
    metric_code: str | None
    metric_name: str
    unit: str | None
    better: str | None
    measure: str | None
    scope: str
    scope_code: str | None
    direction: str | None
    owner: str
    programme: str | None
    baseline_start: date | None
    baseline_end: date | None
    baseline_value: float | None
    target_value: float | None
    target_date: date | None
    tolerance: float | None
    rebase_date: date | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    latest: dict[str, Any] | None = None

    @property
    def anchor(self) -> str:
        return f"benefit-{_slug(self.benefit_id)}"

    @property
    def has_data(self) -> bool:
        return any(row.get("actual_value") is not None for row in self.rows)

    @property
    def rag(self) -> str:
        if self.latest is None:
            return "grey"
        status = self.latest.get("rag_status")
        return status if status in RAG_WORDS else "grey"

    @property
    def axis_label(self) -> str:
        if self.measure == "coefficient_of_variation":
            return "Coefficient of variation between members"
        return self.unit.capitalize() if self.unit and self.unit != "percent" else "Per cent"

    def fmt(self, value: float | None) -> str:
        return _fmt_with_unit(value, self.unit, self.measure)

    @property
    def baseline_text(self) -> str:
        value = self.fmt(self.baseline_value)
        if self.baseline_value is None:
            return value
        if self.baseline_start and self.baseline_end:
            return f"{value} (mean {_month(self.baseline_start)} to {_month(self.baseline_end)})"
        return value

    @property
    def target_text(self) -> str:
        if self.target_value is None:
            return "No target set"
        return (
            f"{self.fmt(self.target_value)} by {_month(self.target_date)}"
            if self.target_date
            else self.fmt(self.target_value)
        )

    @property
    def latest_text(self) -> str:
        if self.latest is None or self.latest.get("actual_value") is None:
            return NO_DATA.capitalize()
        return f"{self.fmt(self.latest['actual_value'])} ({_month(self.latest['period_month'])})"

    @property
    def achieved_text(self) -> str:
        if self.latest is None or self.latest.get("actual_value") is None:
            return "—"
        pct = _float(self.latest.get("pct_of_target_achieved"))
        return "—" if pct is None else f"{_fmt_number(pct, decimals=0)}%"

    @property
    def trajectory_text(self) -> str:
        if self.latest is None:
            return "—"
        return self.fmt(self.latest.get("trajectory_value"))

    @property
    def variation(self) -> str | None:
        return None if self.latest is None else self.latest.get("spc_variation")

    @property
    def assurance(self) -> str | None:
        return None if self.latest is None else self.latest.get("spc_assurance")

    @property
    def trial_limits(self) -> bool:
        """Fewer than 13 points since the last rebase: the SPC limits are trial limits."""
        points = [
            row
            for row in self.rows
            if row.get("actual_value") is not None
            and (self.rebase_date is None or row["period_month"] >= self.rebase_date)
        ]
        return 0 < len(points) < 13

    @property
    def summary_sentence(self) -> str:
        if not self.has_data or self.latest is None or self.latest.get("actual_value") is None:
            return f"There is {NO_DATA} for this benefit, so its status is grey."
        parts = [
            f"In {_month(self.latest['period_month'])} the value was {self.fmt(self.latest['actual_value'])}"
            + (
                f", against a trajectory of {self.trajectory_text}"
                if self.latest.get("trajectory_value") is not None
                else ""
            )
            + (f" and a target of {self.target_text}" if self.target_value is not None else "")
            + "."
        ]
        parts.append(f"Status: {RAG_WORDS[self.rag].lower()} ({RAG_MEANINGS[self.rag]}).")
        variation = self.variation or ""
        if variation.startswith("special_cause_improvement"):
            parts.append("The latest month shows special cause variation of an improving nature.")
        elif variation.startswith("special_cause_concern"):
            parts.append("The latest month shows special cause variation of a concerning nature.")
        elif variation.startswith("special_cause_neutral"):
            parts.append("The latest month shows special cause variation, neither better nor worse.")
        elif variation == "common_cause":
            parts.append("Variation is common cause: no significant change.")
        if self.assurance == "consistently_passes":
            parts.append("If nothing changes, the process will consistently meet the target.")
        elif self.assurance == "consistently_fails":
            parts.append("If nothing changes, the process will not meet the target: it needs redesign.")
        elif self.assurance == "inconsistent":
            parts.append("The process will meet the target only some of the time.")
        return " ".join(parts)


@dataclass
class VariationPanel:
    metric_code: str
    metric_name: str
    unit: str | None
    period_month: date | None
    members: list[dict[str, Any]]
    collaborative_value: float | None
    coefficient_of_variation: float | None
    is_funnel: bool
    collaborative_value_comparable: bool = True

    @property
    def axis_label(self) -> str:
        if self.unit == "percent":
            return f"{self.metric_name} (per cent)"
        return f"{self.metric_name} ({self.unit})" if self.unit else self.metric_name

    @property
    def denominator_label(self) -> str:
        return (
            "Denominator (patients in the measure)"
            if self.metric_code.startswith("los")
            else ("Patients waiting (denominator)")
        )

    @property
    def cv_sentence(self) -> str:
        if self.coefficient_of_variation is None:
            return "The coefficient of variation between members could not be calculated for this month."
        return (
            "The coefficient of variation between members is "
            f"{_fmt_number(100 * self.coefficient_of_variation, decimals=1)}% "
            "(standard deviation ÷ mean of the members' values): the lower it is, the more alike the members are."
        )


@dataclass
class EvaluationBlock:
    metric_code: str
    metric_name: str
    unit: str | None
    better: str | None
    rows: list[dict[str, Any]]
    #: The event study's event times (leads and lags around go-live) and its pre-trend in words.
    event_study: list[dict[str, Any]] = field(default_factory=list)
    event_study_sentence: str | None = None

    @property
    def change_unit(self) -> str:
        if self.unit == "percent":
            return "percentage points"
        unit = self.unit or "value"
        return f"{unit} a month" if self.metric_code in FLOW_METRICS else unit


@dataclass
class CaveatRow:
    title: str
    metric_name: str
    months_checked: int
    partial_months: int
    suppressed_months: int
    missing_months: int
    trial_limits: bool
    no_data: bool
    #: months (of those checked) in which a member trust's published rows disagree with the publication's own rules
    #: (warning-severity rules: the file was loaded, the rows flagged)
    flagged_months: int = 0
    flagged_rules: str = ""

    @property
    def notes(self) -> str:
        notes = []
        if self.flagged_months:
            notes.append(
                f"{self.flagged_months} of the last {self.months_checked} months include rows the publisher's own "
                f"file disagrees with itself on ({self.flagged_rules}); figures are as published, the rows are "
                "flagged on the Data quality dashboard"
            )
        if self.no_data:
            notes.append(f"{NO_DATA.capitalize()}: the status is grey")
        if self.partial_months:
            notes.append(
                f"{self.partial_months} of the last {self.months_checked} months are partial (a member's value "
                "missing or suppressed), so the collaborative value may be understated"
            )
        if self.suppressed_months:
            notes.append(f"{self.suppressed_months} months suppressed (small numbers)")
        if self.missing_months:
            notes.append(f"{self.missing_months} months without a value")
        if self.trial_limits:
            notes.append("fewer than 13 months since the last rebase: SPC limits are trial limits")
        return "; ".join(notes).capitalize() + "." if notes else "No caveats."


def _estimate_sentence(block: EvaluationBlock, row: dict[str, Any]) -> str:
    method, note = row["method"], row["note"]
    estimate, low, high, p = row["estimate"], row["ci_lower"], row["ci_upper"], row["p_value"]
    if estimate is None:
        return f"The {row['label'].lower()} estimate could not be calculated."
    unit = block.change_unit
    if method == "its" and note == "slope":
        unit = f"{unit} for each month after go-live"
    p_part = "" if p is None else ("; p < 0.001" if p < 0.001 else f"; p = {_fmt_p(p)}")
    ci = f" (95% CI {row['ci_text']}{p_part})" if low is not None else ""
    name = {
        "before_after": "The before-and-after estimate",
        "did": "The difference-in-differences estimate",
        "synthetic_control": "The synthetic-control estimate",
    }.get(method, "The interrupted time series estimate of the change in level")
    if method == "its" and note == "slope":
        name = "The interrupted time series estimate of the change in trend"
    sentence = f"{name} is {row['estimate_text']} {unit}{ci}"
    context = []
    if row["pre_periods"] is not None and row["post_periods"] is not None:
        context.append(
            f"{_fmt_int(row['pre_periods'])} months before and {_fmt_int(row['post_periods'])} after go-live"
        )
    if method == "did" and row["comparator_count"] is not None:
        context.append(f"against {_fmt_int(row['comparator_count'])} comparator trusts")
        if row.get("inference") == "wild_cluster_bootstrap_webb_restricted":
            context.append("(interval by wild cluster bootstrap, which holds with few trusts)")
    if method == "synthetic_control" and row["comparator_count"] is not None:
        context.append(
            f"against a weighted mix of {_fmt_int(row['comparator_count'])} donor trusts fitted before go-live "
            "(p-value and interval from each donor treated as if it had gone live)"
        )
    if context:
        sentence += ", from " + " ".join(context)
    sentence += "."
    if low is not None and high is not None:
        if low <= 0 <= high:
            sentence += " The interval includes no change, so the data cannot distinguish the effect from chance."
        else:
            better = block.better
            improving = (estimate < 0 and better == "lower") or (estimate > 0 and better == "higher")
            if better in ("lower", "higher"):
                sentence += " The interval excludes no change: " + (
                    "this is an improvement." if improving else "this is a deterioration."
                )
            else:
                sentence += " The interval excludes no change."
    if method == "did" and row.get("pre_trend_p_value") is not None:
        pre = row["pre_trend_p_value"]
        sentence += (
            f" Before go-live, members' and comparators' trends did not differ detectably (p = {_fmt_p(pre)})."
            if pre >= 0.05
            else f" Before go-live, members' and comparators' trends already differed (p = {_fmt_p(pre)}): "
            "treat this estimate with caution."
        )
    if method == "synthetic_control":
        sentence += f" {SYNTHETIC_CONTROL_CAUTION}"
    return sentence


# --------------------------------------------------------------------------------------------------------------
# Assembling the report
# --------------------------------------------------------------------------------------------------------------


def _load_collaborative(reader: _Reader, code: str) -> dict[str, Any]:
    frame = reader.frame(
        "dim_collaborative",
        "select collaborative_code, collaborative_name, collaborative_type, governance_model, lead_provider_name, "
        "icbs_spanned, go_live_date from dim_collaborative where collaborative_code = ?",
        [code],
    )
    records = _records(frame)
    if records:
        return records[0]
    return {"collaborative_code": code, "collaborative_name": code}


def _icbs_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "—"
    try:
        if hasattr(value, "tolist"):
            return ", ".join(str(v) for v in value.tolist()) or "—"
    except (TypeError, ValueError):
        pass
    return str(value)


def _load_metrics(reader: _Reader) -> dict[str, dict[str, Any]]:
    frame = reader.frame("dim_metric", "select metric_code, metric_name, unit, better from dim_metric")
    return {row["metric_code"]: row for row in _records(frame)}


def _load_org_names(reader: _Reader) -> dict[str, str]:
    frame = reader.frame("dim_organisation", "select org_code, org_name from dim_organisation")
    return {row["org_code"]: row["org_name"] or row["org_code"] for row in _records(frame)}


def _load_benefits(
    reader: _Reader, code: str, metrics: dict[str, dict[str, Any]], orgs: dict[str, str]
) -> list[BenefitView]:
    register = _records(
        reader.frame(
            "dim_benefit",
            "select benefit_id, collaborative_code, title, metric_code, measure, scope_org_code, direction, "
            "baseline_start, baseline_end, target_value, target_date, tolerance, owner, programme, rebase_date "
            "from dim_benefit where collaborative_code = ? order by benefit_id",
            [code],
        )
    )
    tracking = reader.frame(
        "fct_benefit_tracking",
        "select benefit_id, metric_code, period_month, actual_value, baseline_value, target_value, trajectory_value, "
        "pct_of_target_achieved, rag_status, spc_variation, spc_assurance, spc_mean, spc_upl, spc_lpl, "
        "spc_point_type, is_latest_month from fct_benefit_tracking where collaborative_code = ? "
        "order by benefit_id, period_month",
        [code],
    )
    by_benefit: dict[str, list[dict[str, Any]]] = {}
    for row in _records(tracking):
        row["period_month"] = _date(row["period_month"])
        if row["period_month"] is None:
            continue
        for key in (
            "actual_value",
            "baseline_value",
            "target_value",
            "trajectory_value",
            "pct_of_target_achieved",
            "spc_mean",
            "spc_upl",
            "spc_lpl",
        ):
            row[key] = _float(row.get(key))
        by_benefit.setdefault(str(row["benefit_id"]), []).append(row)

    views = []
    for item in register:
        benefit_id = str(item["benefit_id"])
        metric = metrics.get(item.get("metric_code") or "", {})
        rows = by_benefit.get(benefit_id, [])
        latest = next((r for r in reversed(rows) if _bool(r.get("is_latest_month"))), None)
        if latest is None or latest.get("actual_value") is None:
            with_value = [r for r in rows if r.get("actual_value") is not None]
            if with_value and latest is None:
                latest = with_value[-1]
        baseline = next((r["baseline_value"] for r in rows if r.get("baseline_value") is not None), None)
        target = _float(item.get("target_value"))
        if target is None:
            target = next((r["target_value"] for r in reversed(rows) if r.get("target_value") is not None), None)
        scope_code = _text(item.get("scope_org_code"))
        views.append(
            BenefitView(
                benefit_id=benefit_id,
                title=_text(item.get("title")) or benefit_id,
                metric_code=_text(item.get("metric_code")),
                metric_name=_text(metric.get("metric_name")) or _text(item.get("metric_code")) or "Unknown metric",
                unit=_text(metric.get("unit")),
                better=_text(metric.get("better")),
                measure=_text(item.get("measure")),
                scope=orgs.get(scope_code, scope_code) if scope_code else "Whole collaborative",
                scope_code=scope_code,
                direction=_text(item.get("direction")),
                owner=_text(item.get("owner")) or "—",
                programme=_text(item.get("programme")),
                baseline_start=_date(item.get("baseline_start")),
                baseline_end=_date(item.get("baseline_end")),
                baseline_value=baseline,
                target_value=target,
                target_date=_date(item.get("target_date")),
                tolerance=_float(item.get("tolerance")),
                rebase_date=_date(item.get("rebase_date")),
                rows=rows,
                latest=latest,
            )
        )
    return views


def _load_variation(
    reader: _Reader, code: str, benefits: list[BenefitView], metrics: dict[str, dict[str, Any]], orgs: dict[str, str]
) -> list[VariationPanel]:
    metric_codes = list(dict.fromkeys(b.metric_code for b in benefits if b.metric_code))
    if not metric_codes:
        return []
    frame = reader.frame(
        "fct_variation",
        "with latest as (select metric_code, max(period_month) as period_month from fct_variation "
        "where collaborative_code = ? and value is not null and list_contains(?, metric_code) group by metric_code) "
        "select v.metric_code, v.period_month, v.org_code, v.value, v.denominator, v.collaborative_value, v.lower_95, "
        "v.upper_95, v.lower_998, v.upper_998, v.outlier_flag, v.coefficient_of_variation, v.tau2, v.phi "
        "from fct_variation v join latest using (metric_code, period_month) where v.collaborative_code = ?",
        [code, metric_codes, code],
    )
    panels = []
    records = _records(frame)
    for metric_code in metric_codes:
        rows = [r for r in records if r["metric_code"] == metric_code]
        if not rows:
            continue
        metric = metrics.get(metric_code, {})
        members = []
        for r in rows:
            org_code = str(r["org_code"])
            members.append(
                {
                    "org_code": org_code,
                    "org_name": orgs.get(org_code, org_code),
                    "value": _float(r["value"]),
                    "denominator": _float(r["denominator"]),
                    "lower_95": _float(r["lower_95"]),
                    "upper_95": _float(r["upper_95"]),
                    "lower_998": _float(r["lower_998"]),
                    "upper_998": _float(r["upper_998"]),
                    "tau2": _float(r.get("tau2")),
                    "phi": _float(r.get("phi")),
                    "position": OUTLIER_WORDS.get(r.get("outlier_flag") or "", "No funnel limits"),
                }
            )
        members.sort(key=lambda m: (m["org_name"].lower(), m["org_code"]))
        unit = _text(metric.get("unit"))
        has_limits = any(m["upper_95"] is not None for m in members)
        with_denominator = [m for m in members if m["value"] is not None and (m["denominator"] or 0) > 0]
        panels.append(
            VariationPanel(
                metric_code=metric_code,
                metric_name=_text(metric.get("metric_name")) or metric_code,
                unit=unit,
                period_month=_date(rows[0]["period_month"]),
                members=members,
                collaborative_value=next(
                    (_float(r["collaborative_value"]) for r in rows if _float(r["collaborative_value"]) is not None),
                    None,
                ),
                coefficient_of_variation=next(
                    (
                        _float(r["coefficient_of_variation"])
                        for r in rows
                        if _float(r["coefficient_of_variation"]) is not None
                    ),
                    None,
                ),
                is_funnel=has_limits and len(with_denominator) > 0,
                # A count summed over members (a waiting list) is not comparable with one member's count.
                collaborative_value_comparable=unit in ("percent", "days", "weeks") or has_limits,
            )
        )
    return panels


def _load_evaluation(reader: _Reader, code: str, metrics: dict[str, dict[str, Any]]) -> list[EvaluationBlock]:
    frame = reader.frame(
        "fct_evaluation",
        "select metric_code, method, estimate, std_error, ci_lower, ci_upper, p_value, pre_periods, post_periods, "
        "comparator_count, pre_trend_p_value, note, inference from fct_evaluation where collaborative_code = ? "
        "order by metric_code",
        [code],
    )
    blocks: dict[str, EvaluationBlock] = {}
    for r in _records(frame):
        metric_code = str(r["metric_code"])
        method = str(r["method"])
        note = _text(r.get("note"))
        key_note = note if method == "its" else None
        label = METHOD_LABELS.get((method, key_note)) or METHOD_LABELS.get((method, None)) or method.replace("_", " ")
        if method == "its" and key_note not in ("level", "slope"):
            label = "Interrupted time series"
        metric = metrics.get(metric_code, {})
        block = blocks.setdefault(
            metric_code,
            EvaluationBlock(
                metric_code=metric_code,
                metric_name=_text(metric.get("metric_name")) or metric_code,
                unit=_text(metric.get("unit")),
                better=_text(metric.get("better")),
                rows=[],
            ),
        )
        estimate, low, high = _float(r["estimate"]), _float(r["ci_lower"]), _float(r["ci_upper"])
        decimals = _shared_decimals(estimate, low, high)
        row = {
            "method": method,
            "note": key_note,
            "label": label,
            "estimate": estimate,
            "std_error": _float(r["std_error"]),
            "ci_lower": low,
            "ci_upper": high,
            "p_value": _float(r["p_value"]),
            "pre_periods": _float(r["pre_periods"]),
            "post_periods": _float(r["post_periods"]),
            "comparator_count": _float(r["comparator_count"]),
            "pre_trend_p_value": _float(r["pre_trend_p_value"]),
            "inference": _text(r.get("inference")),
            "estimate_text": _fmt_number(estimate, decimals=decimals),
            "ci_text": (
                f"{_fmt_number(low, decimals=decimals)} to {_fmt_number(high, decimals=decimals)}"
                if low is not None and high is not None
                else "—"
            ),
            "order": (METHOD_ORDER.get(method, 9), 0 if key_note == "level" else 1),
        }
        row["p_text"] = _fmt_p(row["p_value"])
        row["pre_trend_text"] = _fmt_p(row["pre_trend_p_value"])
        row["pre_text"] = _fmt_int(row["pre_periods"])
        row["post_text"] = _fmt_int(row["post_periods"])
        row["comparators_text"] = _fmt_int(row["comparator_count"]) if method in ("did", "synthetic_control") else "—"
        block.rows.append(row)
    result = []
    for block in blocks.values():
        block.rows.sort(key=lambda row: row["order"])
        for row in block.rows:
            row["sentence"] = _estimate_sentence(block, row)
        if any(row["estimate"] is not None for row in block.rows):
            result.append(block)
    return result


PRE_TREND_ALPHA = 0.05


def _pre_trend_sentence(p_value: float | None, pre_periods: float | None, treated: float | None) -> str:
    """The event study's joint test of the leads, in words."""
    if p_value is None:
        return "The leads before go-live could not be tested jointly (too few months before go-live)."
    p_text = "p < 0.001" if p_value < 0.001 else f"p = {_fmt_p(p_value)}"
    if p_value < PRE_TREND_ALPHA:
        return (
            f"The leads before go-live are not jointly zero ({p_text}): the comparison trusts were on a different "
            "path before go-live, so treat the difference-in-differences and event-study effects with caution."
        )
    return (
        f"The leads before go-live are compatible with zero ({p_text}): no evidence that member and comparison "
        f"trusts were on different paths before go-live (with {_fmt_int(pre_periods)} months before go-live and "
        f"{_fmt_int(treated)} member trusts the test cannot rule out a small pre-trend)."
    )


def _load_event_study(reader: _Reader, code: str) -> dict[str, tuple[list[dict[str, Any]], str]]:
    """Per metric: the event study's rows (event time, estimate, interval) and its pre-trend sentence."""
    if not reader.has("fct_event_study"):
        return {}
    frame = reader.frame(
        "fct_event_study",
        "select metric_code, event_time, event_time_label, is_reference, estimate, ci_lower, ci_upper, p_value, "
        "months_in_bin, pre_periods, treated_count, comparator_count, pre_trend_p_value "
        "from fct_event_study where collaborative_code = ? order by metric_code, event_time",
        [code],
    )
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for r in _records(frame):
        by_metric.setdefault(str(r["metric_code"]), []).append(r)
    result = {}
    for metric_code, records in by_metric.items():
        rows = []
        for r in records:
            estimate, low, high = _float(r["estimate"]), _float(r["ci_lower"]), _float(r["ci_upper"])
            decimals = _shared_decimals(estimate, low, high)
            reference = bool(r["is_reference"])
            rows.append(
                {
                    "event_time": int(r["event_time"]),
                    "label": _text(r.get("event_time_label")) or str(r["event_time"]),
                    "is_reference": reference,
                    "estimate": estimate,
                    "ci_lower": low,
                    "ci_upper": high,
                    "estimate_text": _fmt_number(estimate, decimals=decimals),
                    "ci_text": "reference (zero)"
                    if reference
                    else (
                        f"{_fmt_number(low, decimals=decimals)} to {_fmt_number(high, decimals=decimals)}"
                        if low is not None and high is not None
                        else "—"
                    ),
                    "months_text": _fmt_int(r["months_in_bin"]),
                }
            )
        first = records[0]
        sentence = _pre_trend_sentence(
            _float(first["pre_trend_p_value"]), _float(first["pre_periods"]), _float(first["treated_count"])
        )
        lags = [row for row in rows if row["event_time"] >= 0 and row["ci_lower"] is not None]
        excluding = [row for row in lags if row["ci_lower"] > 0 or row["ci_upper"] < 0]
        if lags:
            sentence += (
                f" From go-live on, {len(excluding)} of {len(lags)} monthly intervals exclude zero (no difference "
                f"from the {_fmt_int(first['comparator_count'])} comparison trusts)."
            )
        result[metric_code] = (rows, sentence)
    return result


def _load_caveats(reader: _Reader, code: str, benefits: list[BenefitView]) -> list[CaveatRow]:
    frame = reader.frame(
        "fct_collaborative_metric_month",
        "select org_code, membership_basis, period_month, metric_code, value, is_partial, is_suppressed "
        "from fct_collaborative_metric_month where collaborative_code = ?",
        [code],
    )
    records = _records(frame)
    for r in records:
        r["period_month"] = _date(r["period_month"])
    flagged = _records(
        reader.frame(
            "fct_rtt_provider_month",
            "select distinct rtt.period_month, rtt.org_code, rtt.flagged_rules "
            "from fct_rtt_provider_month as rtt "
            "inner join bridge_collaborative_membership as members "
            "on rtt.org_code = members.org_code and members.collaborative_code = ? "
            "and rtt.period_month >= members.valid_from "
            "and (members.valid_to is null or rtt.period_month < members.valid_to) "
            "where rtt.treatment_function_code = 'ALL' and rtt.flagged_rows > 0",
            [code],
        )
        if reader.has("bridge_collaborative_membership")
        else pd.DataFrame()
    )
    for r in flagged:
        r["period_month"] = _date(r["period_month"])
    caveats = []
    for benefit in benefits:
        scope_code = benefit.scope_code
        rows = [
            r
            for r in records
            if r["metric_code"] == benefit.metric_code
            and r["period_month"] is not None
            and (r["org_code"] == (scope_code or "ALL"))
        ]
        bases = {r["membership_basis"] for r in rows}
        if "as_was" in bases:
            rows = [r for r in rows if r["membership_basis"] == "as_was"]
        months = sorted({r["period_month"] for r in rows})[-12:]
        recent = [r for r in rows if r["period_month"] in months]
        partial = {r["period_month"] for r in recent if _bool(r.get("is_partial"))}
        suppressed = {r["period_month"] for r in recent if _bool(r.get("is_suppressed"))}
        touched = [
            r
            for r in flagged
            if benefit.metric_code.startswith("rtt_")
            and r["period_month"] in months
            and (scope_code is None or r["org_code"] == scope_code)
        ]
        tracked = benefit.rows[-12:]
        missing = sum(1 for r in tracked if r.get("actual_value") is None)
        caveats.append(
            CaveatRow(
                title=benefit.title,
                metric_name=benefit.metric_name,
                months_checked=len(months),
                partial_months=len(partial),
                suppressed_months=len(suppressed),
                missing_months=missing if benefit.has_data else 0,
                trial_limits=benefit.trial_limits,
                no_data=not benefit.has_data,
                flagged_months=len({r["period_month"] for r in touched}),
                flagged_rules=", ".join(
                    sorted({rule for r in touched for rule in str(r["flagged_rules"]).split(", ")})
                ),
            )
        )
    return caveats


def _rag_summary(benefits: list[BenefitView]) -> str:
    if not benefits:
        return "The benefits register has no benefits for this collaborative."
    counts = {status: sum(1 for b in benefits if b.rag == status) for status in RAG_WORDS}
    words = []
    for status, label in (("achieved", "achieved"), ("green", "green"), ("amber", "amber"), ("red", "red")):
        if counts[status]:
            words.append(f"{counts[status]} {label}")
    if counts["grey"]:
        words.append(f"{counts['grey']} grey ({NO_DATA} or suppressed)")
    total = len(benefits)
    return f"Of {total} benefit{'s' if total != 1 else ''} in the register: " + ", ".join(words) + "."


def _published_at(reader: _Reader) -> str | None:
    if not reader.has("_publication"):
        return None
    try:
        row = reader.con.execute("select max(published_at) from _publication").fetchone()
    except duckdb.Error:
        return None
    when = _date(row[0]) if row else None
    return _long_date(when) if when else None


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        rag_badge=rag_badge,
        variation_icon=variation_icon,
        assurance_icon=assurance_icon,
        rag_words=RAG_WORDS,
        rag_meanings=RAG_MEANINGS,
    )
    return env


def _attach_keys(blocks: list[EvaluationBlock], studies: dict[str, Any]) -> list[tuple[EvaluationBlock, Any]]:
    return [(block, studies[block.metric_code]) for block in blocks if block.metric_code in studies]


def build_report(serving_db: Path, collaborative_code: str, synthetic_note: str | None = DEFAULT_SYNTHETIC_NOTE) -> str:
    """The benefits board report of one collaborative as a complete, self-contained HTML page."""
    con = duckdb.connect(str(serving_db), read_only=True)
    try:
        reader = _Reader(con)
        collaborative = _load_collaborative(reader, collaborative_code)
        metrics = _load_metrics(reader)
        orgs = _load_org_names(reader)
        benefits = _load_benefits(reader, collaborative_code, metrics, orgs)
        variation = _load_variation(reader, collaborative_code, benefits, metrics, orgs)
        evaluation = _load_evaluation(reader, collaborative_code, metrics)
        for block, (rows, sentence) in _attach_keys(evaluation, _load_event_study(reader, collaborative_code)):
            block.event_study, block.event_study_sentence = rows, sentence
        caveats = _load_caveats(reader, collaborative_code, benefits)
        published = _published_at(reader)
        problems = list(dict.fromkeys(reader.problems))
    finally:
        con.close()

    go_live = _date(collaborative.get("go_live_date"))
    months = [row["period_month"] for b in benefits for row in b.rows if row.get("actual_value") is not None]
    data_period = f"{_month(min(months))} to {_month(max(months))}" if months else NO_DATA.capitalize()
    lead = _text(collaborative.get("lead_provider_name"))
    context = {
        "code": collaborative_code,
        "name": _text(collaborative.get("collaborative_name")) or collaborative_code,
        "type_text": _humanise(_text(collaborative.get("collaborative_type")), COLLABORATIVE_TYPES),
        "governance_text": _humanise(_text(collaborative.get("governance_model")), GOVERNANCE_MODELS),
        "lead_provider": lead,
        "icbs": _icbs_text(collaborative.get("icbs_spanned")),
        "go_live": _long_date(go_live) if go_live else "—",
        "data_period": data_period,
        "published": published,
        "synthetic_note": synthetic_note,
        "rag_summary": _rag_summary(benefits),
        "benefits": benefits,
        "charts": [(b, spc_chart(b, go_live)) for b in benefits],
        "spc_legend": spc_legend(),
        "variation": [
            (
                panel,
                funnel_chart(panel) if panel.is_funnel else dot_chart(panel),
                funnel_legend() if panel.is_funnel else dot_legend(panel),
            )
            for panel in variation
        ],
        "evaluation": [(block, forest_chart(block)) for block in evaluation],
        "caveats": caveats,
        "problems": problems,
        "fmt": _fmt_with_unit,
        "fmt_number": _fmt_number,
        "month": _month,
    }
    return _environment().get_template(TEMPLATE_NAME).render(**context)


def write_report(
    serving_db: Path, collaborative_code: str, out: Path, synthetic_note: str | None = DEFAULT_SYNTHETIC_NOTE
) -> Path:
    """Write one collaborative's report to ``out`` (a file path) and return it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_report(serving_db, collaborative_code, synthetic_note), encoding="utf-8")
    return out


_INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Benefits reports</title>
<style>
body { font-family: Arial, "Liberation Sans", "DejaVu Sans", sans-serif; color: #212b32; margin: 0;
       background: #f0f4f5; }
main { max-width: 860px; margin: 0 auto; padding: 24px 32px 48px; background: #ffffff; min-height: 100vh; }
h1 { color: #005eb8; font-size: 26px; margin: 8px 0 12px; }
.note { background: #fff9c4; border-left: 6px solid #ffb81c; padding: 8px 12px; }
table { border-collapse: collapse; width: 100%; margin-top: 16px; }
th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid #d8dde0; }
th { background: #e8edee; }
a { color: #005eb8; }
</style>
</head>
<body>
<main>
<h1>Benefits reports</h1>
<p>One board report per provider collaborative with a benefits register, listed alphabetically.</p>
{% if synthetic_note %}<p class="note"><strong>Please note:</strong> {{ synthetic_note }}</p>{% endif %}
{% if entries %}
<table>
<thead><tr><th scope="col">Collaborative</th><th scope="col">Code</th><th scope="col">Benefits</th></tr></thead>
<tbody>
{% for entry in entries %}
<tr><td><a href="{{ entry.file }}">{{ entry.name }}</a></td><td>{{ entry.code }}</td><td>{{ entry.benefits }}</td></tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>No collaborative has a benefits register in the serving database yet, so there are no reports.</p>
{% endif %}
</main>
</body>
</html>
"""


def _index_page(entries: list[dict[str, Any]], synthetic_note: str | None) -> str:
    env = Environment(autoescape=True)
    return env.from_string(_INDEX_TEMPLATE).render(entries=entries, synthetic_note=synthetic_note)


def report_file_name(collaborative_code: str) -> str:
    return f"benefits-report-{collaborative_code}.html"


def write_all_reports(
    serving_db: Path, out_dir: Path, synthetic_note: str | None = DEFAULT_SYNTHETIC_NOTE
) -> list[Path]:
    """One report per collaborative that has benefits, plus ``index.html`` linking them; returns every file written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(serving_db), read_only=True)
    try:
        reader = _Reader(con)
        collaboratives = _records(
            reader.frame(
                "dim_benefit",
                "select b.collaborative_code, any_value(coalesce(c.collaborative_name, b.collaborative_code)) as name, "
                "count(*) as benefits from dim_benefit b left join dim_collaborative c using (collaborative_code) "
                "group by b.collaborative_code order by name",
            )
            if reader.has("dim_collaborative")
            else reader.frame(
                "dim_benefit",
                "select collaborative_code, collaborative_code as name, count(*) as benefits from dim_benefit "
                "group by collaborative_code order by collaborative_code",
            )
        )
    finally:
        con.close()
    written: list[Path] = []
    entries = []
    for item in collaboratives:
        code = str(item["collaborative_code"])
        path = write_report(serving_db, code, out_dir / report_file_name(code), synthetic_note)
        written.append(path)
        entries.append({"code": code, "name": item["name"], "benefits": int(item["benefits"]), "file": path.name})
    index = out_dir / "index.html"
    index.write_text(_index_page(entries, synthetic_note), encoding="utf-8")
    written.append(index)
    return written
