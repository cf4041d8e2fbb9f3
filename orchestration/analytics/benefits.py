"""Benefits tracking rules (SPEC §7): baseline, trajectory, % of target achieved and RAG.

Pure functions, so each rule can be checked against a hand computation. Months are the first day of a month.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date


def months_between(start: date, end: date) -> int:
    """Whole months from ``start`` to ``end`` (both first days of months)."""
    return (end.year - start.year) * 12 + end.month - start.month


def baseline(
    months: Sequence[date], values: Sequence[float | None], start: date, end: date, given: float | None = None
) -> float | None:
    """The register's baseline value if it gives one, else the mean over the baseline window (inclusive)."""
    if given is not None and not _missing(given):
        return float(given)
    window = [v for m, v in zip(months, values, strict=True) if start <= m <= end and not _missing(v)]
    return sum(window) / len(window) if window else None


def resolve_target(baseline_value: float | None, target_value: float | None, change_pct: float | None) -> float | None:
    """A target value, or the baseline changed by ``change_pct`` percent (e.g. −50 halves it)."""
    if target_value is not None and not _missing(target_value):
        return float(target_value)
    if baseline_value is None or change_pct is None or _missing(change_pct):
        return None
    return baseline_value * (1 + change_pct / 100)


def trajectory(
    month: date, baseline_end: date, baseline_value: float | None, target_date: date, target_value: float | None
) -> float | None:
    """Straight line from the baseline (at the end of the baseline window) to the target (at the target date);
    the baseline before the line starts and the target after it ends."""
    if baseline_value is None or target_value is None:
        return None
    span = months_between(baseline_end, target_date)
    if span <= 0 or month >= target_date:
        return target_value if month >= target_date else baseline_value
    elapsed = max(0, months_between(baseline_end, month))
    return baseline_value + (target_value - baseline_value) * elapsed / span


def pct_of_target_achieved(actual: float | None, baseline_value: float | None, target: float | None) -> float | None:
    """(actual − baseline) ÷ (target − baseline) as a percentage; None when it cannot be said."""
    if actual is None or baseline_value is None or target is None or target == baseline_value:
        return None
    return 100 * (actual - baseline_value) / (target - baseline_value)


def rag_status(
    actual: float | None, trajectory_value: float | None, target: float | None, direction: str, tolerance: float
) -> str:
    """achieved when the target is met; green at or better than the trajectory; amber worse by no more than the
    tolerance; red beyond it; grey when the data are missing or suppressed (or there is nothing to compare)."""
    if actual is None or trajectory_value is None or target is None:
        return "grey"
    better = -1 if direction == "decrease" else 1
    if better * (actual - target) >= 0:
        return "achieved"
    shortfall = better * (trajectory_value - actual)  # > 0 when worse than the trajectory
    if shortfall <= 0:
        return "green"
    if shortfall <= tolerance:
        return "amber"
    return "red"


def smoothed_actual(values: Sequence[float | None], months: int) -> float | None:
    """The latest value, or the mean of the last ``months`` values when the register asks for smoothing; None
    when the latest month is missing (a stale figure is not presented as the current one)."""
    if not values or _missing(values[-1]):
        return None
    recent = [v for v in values[-max(1, months) :] if not _missing(v)]
    return sum(recent) / len(recent)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
