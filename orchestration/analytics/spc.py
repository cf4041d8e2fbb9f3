"""Statistical process control: NHS England "Making Data Count" XmR charts (SPEC §7).

The calculations follow the public NHSRplotthedots R package (``ptd_spc``), which implements NHS England's
"Making Data Count" guidance. Everything here is a pure function: data in, data out, no I/O.

Calculation, per rebase group (see *Rebasing* below):

- ``mean``: the mean of the group's values.
- ``moving_range``: ``|y_t - y_(t-1)|`` between *adjacent rows* of the group; the first row of a group has none
  (a group never reaches back into the previous group).
- ``average_moving_range`` (AMR): the mean of the moving ranges, then **one** screening pass exactly as
  NHSRplotthedots does it: moving ranges ``>= 3.267 × AMR`` are dropped and the AMR is recomputed from the rest.
  (The ``moving_range`` column still shows every moving range, screened or not.) ``screen_outliers=False``
  skips the screen (Making Data Count's Excel tool does not screen).
- Guards when the moving ranges give no usable spread (deviations from NHSRplotthedots, which draws zero-width or
  NaN limits and then calls every point outside them), reported per group in ``limits_note``:

  * ``'unscreened_amr'``: the values vary but screening removed every non-zero moving range (a series of few
    distinct values, mostly equal neighbours): the unscreened AMR is used instead.
  * ``'no_spread'``: the values vary but no moving range is positive or there is none (e.g. missing months leave
    only pairs of equal neighbours): the limits (process and near) are left empty, so the outside-limits and
    two-of-three rules cannot fire; the trend and shift rules, which need no limits, still apply.
  * ``'every_point_outside'``: every point of the group lies outside the limits, so the group's mean is no
    centre of a stable process (a steep trend, or a measure so coarse, e.g. a median of 2 or 3 days, that the
    moving ranges cannot measure its spread). When the screened AMR did it and the unscreened AMR would not, the
    unscreened AMR is used (``'unscreened_amr'``); otherwise the limits are left empty as for ``'no_spread'``,
    and the shift and trend rules still say that the process moved.
  * ``'constant'``: every value of the group is equal: AMR 0, limits on the mean, nothing can lie outside them
    (NHSRplotthedots: NaN limits).
  * ``'single_point'``: one point, no moving range: no limits (as NHSRplotthedots).
  * None: the limits are the usual ones.
- ``upl`` / ``lpl`` = mean ± 2.66 × AMR; ``upper_near_limit`` / ``lower_near_limit`` = mean ± (2/3)(2.66 × AMR).
- ``is_trial_limits``: the group has fewer than 13 points (non-missing values). NHSRplotthedots' short-group
  warning counts rows; a missing value is not a point, so it is not counted here.

Special-cause rules, evaluated within each rebase group. A point reports the highest-priority rule that flags
it, in this order:

1. ``outside_limits``: the value is strictly above the UPL or strictly below the LPL.
2. ``trend``: 7 consecutive points each strictly greater (or each strictly less) than the one before, i.e. six
   successive increases or decreases, as ``ptd_seven_point_trend`` counts them. An equal consecutive value
   breaks the run; 6 rising points are not a trend. Every point of the run is flagged, and a longer run flags
   all its points. The side of the mean does not matter.
3. ``two_of_three``: a window of 3 consecutive points that all lie on the same side of the mean (strictly), of
   which at least 2 are *close to the limits*, i.e. beyond the near limit but not outside the process limit
   (NHSRplotthedots' ``close_to_limits``: ``!outside_limits & (y < nlpl | y > nupl)``, strict). Flagged: the
   close-to-limit points of every such window, and only those. The third point of the window (the one that is
   not beyond the near limit) is not flagged by this rule, and a point outside the process limits does not
   count towards the two (it is flagged by rule 1 anyway).
4. ``shift``: 7 or more consecutive points strictly on the same side of the mean. A point exactly on the mean
   breaks the run. Every point of the run is flagged.

Point type (as ``ptd_point_type``): the flagged point's direction is *high* when the rule is about being above
(above the UPL, a rising trend, two-of-three or shift above the mean) and *low* otherwise; a trend's direction is
its direction of travel, not its side of the mean, so a rising trend below the mean is still *high*. A point
where a rising run ends and a falling run starts (a peak shared by both) takes the later run's direction, as
NHSRplotthedots does. Deviation: NHSRplotthedots takes a trend point's direction from the step to the next
point whenever that point is also in a trend, so the last point of a falling run that is followed by one upward
step and then another falling run is labelled "increasing" there; here every trend point keeps its own run's
direction. (A randomised comparison with a line-by-line port of the R rules agreed on everything else.)
For ``improvement='increase'`` high is ``special_cause_improvement`` and low ``special_cause_concern``;
``'decrease'`` the reverse; ``'neutral'`` gives ``special_cause_neutral``. Unflagged points are
``common_cause``. The direction itself is kept in ``special_cause_direction`` ('high' / 'low' / None), which
is what NHSRplotthedots encodes as ``special_cause_neutral_high`` / ``_low`` and what `variation_icon` uses.

Missing values (None / NaN): the row is kept, with ``value``, ``moving_range``, ``special_cause_rule``,
``special_cause_direction`` and ``point_type`` null. The group-level columns (``rebase_group``, ``mean``,
``average_moving_range``, limits, ``is_trial_limits``) are still filled, so a chart's limit lines are
continuous. Missing values are excluded from the mean. No moving range is taken across a gap (the rows on both
sides of a missing value have no moving range with each other, as ``diff`` gives NA in R), so a gap never makes a
two-month change look like a one-month one. The run rules (trend, two-of-three, shift) are evaluated on the
group's non-missing points in order, i.e. a gap is skipped rather than breaking a run.

Rebasing: each date in ``rebase_at`` starts a new group at the first period on or after it (NHSRplotthedots
requires an exact match; here a date in the middle of a month starts the group at the next period). Dates on or
before the first period, or after the last, and dates that land on the same period as another, create no extra
group. Groups are numbered 0, 1, … in period order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

__all__ = [
    "COLUMNS",
    "IMPROVEMENT_DIRECTIONS",
    "LIMIT_FACTOR",
    "MIN_POINTS_FOR_FIRM_LIMITS",
    "NEAR_LIMIT_FACTOR",
    "RUN_LENGTH",
    "SCREENING_FACTOR",
    "LIMITS_NOTES",
    "assurance",
    "spc",
    "spc_arrays",
    "variation_icon",
]

#: Process limits are mean ± LIMIT_FACTOR × AMR (2.66 = 3 / d2, d2 = 1.128 for moving ranges of 2).
LIMIT_FACTOR = 2.66
#: Near (2-sigma) limits are mean ± NEAR_LIMIT_FACTOR × AMR.
NEAR_LIMIT_FACTOR = 2 * LIMIT_FACTOR / 3
#: Moving ranges at or above SCREENING_FACTOR × AMR are dropped before the AMR is recomputed (D4 for n = 2).
SCREENING_FACTOR = 3.267
#: Points in a run for the trend and shift rules.
RUN_LENGTH = 7
#: A rebase group with fewer points than this has trial limits.
MIN_POINTS_FOR_FIRM_LIMITS = 13

IMPROVEMENT_DIRECTIONS = ("increase", "decrease", "neutral")

#: Values of ``limits_note`` (see the module docstring); None when the limits are the usual ones.
LIMITS_NOTES = ("unscreened_amr", "no_spread", "every_point_outside", "constant", "single_point")

RULE_OUTSIDE_LIMITS = "outside_limits"
RULE_TREND = "trend"
RULE_TWO_OF_THREE = "two_of_three"
RULE_SHIFT = "shift"

#: Columns of the frame `spc` returns (``period`` first when periods are given).
COLUMNS = (
    "value",
    "rebase_group",
    "mean",
    "moving_range",
    "average_moving_range",
    "upl",
    "lpl",
    "upper_near_limit",
    "lower_near_limit",
    "is_trial_limits",
    "limits_note",
    "special_cause_rule",
    "special_cause_direction",
    "point_type",
    "target",
)


def _as_float(value: object) -> float:
    if value is None:
        return math.nan
    try:
        if pd.isna(value):
            return math.nan
    except (TypeError, ValueError):
        pass
    result = float(value)  # type: ignore[arg-type]
    if math.isinf(result):
        raise ValueError(f"SPC values must be finite or missing, got {value!r}")
    return result


def _rebase_groups(n: int, periods: Sequence[date] | None, rebase_at: Sequence[date]) -> np.ndarray:
    groups = np.zeros(n, dtype=np.int64)
    if not rebase_at:
        return groups
    if periods is None:
        raise ValueError("rebase_at needs periods")
    stamps = [pd.Timestamp(period) for period in periods]
    starts = set()
    for rebase in rebase_at:
        at = pd.Timestamp(rebase)
        first = next((i for i, stamp in enumerate(stamps) if stamp >= at), None)
        if first:  # None (after the last period) and 0 (on or before the first) start no group
            starts.add(first)
    for start in sorted(starts):
        groups[start:] += 1
    return groups


def _run_flags(steps: np.ndarray, run_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points belonging to runs of at least ``run_steps`` equal non-zero entries of ``steps``.

    ``steps[i]`` relates point ``i`` and point ``i + offset``; the caller passes steps over points (shift,
    offset 0, a run of k entries covers k points) or over differences (trend, a run of k differences covers
    k + 1 points). Returns the flag and the run's sign per point; later runs overwrite earlier ones.
    """
    n = len(steps)
    flagged = np.zeros(n, dtype=bool)
    sign = np.zeros(n, dtype=np.int64)
    start = 0
    while start < n:
        end = start
        while end + 1 < n and steps[end + 1] == steps[start]:
            end += 1
        if steps[start] != 0 and end - start + 1 >= run_steps:
            flagged[start : end + 1] = True
            sign[start : end + 1] = steps[start]
        start = end + 1
    return flagged, sign


def _rules(
    y: np.ndarray, mean: float, upl: float, lpl: float, unl: float, lnl: float
) -> tuple[list[str | None], list[int]]:
    """Rule and direction (+1 high, -1 low, 0 none) for each of a group's non-missing values, in order."""
    n = len(y)
    rules: list[str | None] = [None] * n
    directions = [0] * n
    if n == 0:
        return rules, directions

    relative = np.sign(y - mean).astype(np.int64) if not math.isnan(mean) else np.zeros(n, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        outside = (y > upl) | (y < lpl)
        close = ~outside & ((y > unl) | (y < lnl))

    # Rule 2: RUN_LENGTH points = RUN_LENGTH - 1 successive strict increases (or decreases).
    trend = np.zeros(n, dtype=bool)
    trend_sign = np.zeros(n, dtype=np.int64)
    if n >= RUN_LENGTH:
        diff_sign = np.sign(np.diff(y)).astype(np.int64)
        run_flag, run_sign = _run_flags(diff_sign, RUN_LENGTH - 1)
        # difference i joins points i and i + 1; iterate in order so a later run's direction wins on a shared point
        for i in np.flatnonzero(run_flag):
            for point in (i, i + 1):
                trend[point] = True
                trend_sign[point] = run_sign[i]

    # Rule 3: windows of 3 consecutive points, all strictly on one side of the mean, at least 2 close to limits.
    two_of_three = np.zeros(n, dtype=bool)
    for start in range(n - 2):
        window = slice(start, start + 3)
        if abs(int(relative[window].sum())) == 3 and int(close[window].sum()) >= 2:
            two_of_three[window] |= close[window]

    # Rule 4: RUN_LENGTH points strictly on the same side of the mean (0 = on the mean, breaks the run).
    shift, _ = _run_flags(relative, RUN_LENGTH)

    for i in range(n):
        if outside[i]:
            rules[i], directions[i] = RULE_OUTSIDE_LIMITS, int(relative[i])
        elif trend[i]:
            rules[i], directions[i] = RULE_TREND, int(trend_sign[i])
        elif two_of_three[i]:
            rules[i], directions[i] = RULE_TWO_OF_THREE, int(relative[i])
        elif shift[i]:
            rules[i], directions[i] = RULE_SHIFT, int(relative[i])
    return rules, directions


def _average_moving_range(ranges: np.ndarray, points: np.ndarray, screen: bool) -> tuple[float, str | None]:
    """The group's AMR and its ``limits_note`` (see the module docstring for the guards)."""
    if points.size == 0:
        return math.nan, None
    varies = float(points.max()) > float(points.min())
    if points.size == 1:
        return math.nan, "single_point"
    if not varies:
        return (0.0 if ranges.size else math.nan), "constant"
    unscreened = float(ranges.mean()) if ranges.size else math.nan
    if not unscreened > 0:  # zero or undefined while the values vary: no usable spread
        return math.nan, "no_spread"
    if not screen:
        return unscreened, None
    screened = float(ranges[ranges < SCREENING_FACTOR * unscreened].mean())
    if not screened > 0:
        return unscreened, "unscreened_amr"
    return screened, None


def _all_outside(points: np.ndarray, mean: float, amr: float) -> bool:
    return bool(np.all(np.abs(points - mean) > LIMIT_FACTOR * amr))


def _point_type(direction: int, improvement: str) -> str:
    if direction == 0:
        return "common_cause"
    if improvement == "neutral":
        return "special_cause_neutral"
    good = 1 if improvement == "increase" else -1
    return "special_cause_improvement" if direction == good else "special_cause_concern"


def spc_arrays(
    values: Sequence[float | None],
    *,
    periods: Sequence[date] | None = None,
    improvement: str,
    rebase_at: Sequence[date] = (),
    screen_outliers: bool = True,
) -> dict[str, np.ndarray | list]:
    """`spc`'s calculations as plain arrays, one entry per input value: ``value``, ``rebase_group``, the group
    columns of `COLUMNS` and ``is_trial_limits`` as NumPy arrays, ``special_cause_rule``,
    ``special_cause_direction``, ``point_type`` and ``limits_note`` as lists. For callers that chart thousands of
    series (the marts), where a DataFrame per series would cost more than the calculation."""
    if improvement not in IMPROVEMENT_DIRECTIONS:
        raise ValueError(f"improvement must be one of {IMPROVEMENT_DIRECTIONS}, got {improvement!r}")
    y_all = np.array([_as_float(v) for v in values], dtype=float)
    n = len(y_all)
    if periods is not None:
        periods = list(periods)
        if len(periods) != n:
            raise ValueError(f"{len(periods)} periods for {n} values")
        stamps = [None if period is None or pd.isna(period) else pd.Timestamp(period) for period in periods]
        if any(stamp is None for stamp in stamps) or any(a >= b for a, b in zip(stamps[:-1], stamps[1:], strict=True)):
            raise ValueError("periods must be present and strictly increasing")

    groups = _rebase_groups(n, periods, rebase_at)
    out = {name: np.full(n, np.nan) for name in COLUMNS[2:9]}
    is_trial = np.zeros(n, dtype=bool)
    rule_col: list[str | None] = [None] * n
    direction_col: list[str | None] = [None] * n
    point_type_col: list[str | None] = [None] * n
    note_col: list[str | None] = [None] * n

    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        y = y_all[rows]
        present = ~np.isnan(y)
        points = y[present]

        mean = float(points.mean()) if points.size else math.nan
        moving_range = np.concatenate([[np.nan], np.abs(np.diff(y))]) if y.size else y.copy()
        ranges = moving_range[~np.isnan(moving_range)]
        amr, note = _average_moving_range(ranges, points, screen_outliers)
        if points.size > 1 and amr > 0 and _all_outside(points, mean, amr):
            unscreened = float(ranges.mean())
            if note is None and unscreened > amr and not _all_outside(points, mean, unscreened):
                amr, note = unscreened, "unscreened_amr"
            else:
                amr, note = math.nan, "every_point_outside"
        upl, lpl = mean + LIMIT_FACTOR * amr, mean - LIMIT_FACTOR * amr
        unl, lnl = mean + NEAR_LIMIT_FACTOR * amr, mean - NEAR_LIMIT_FACTOR * amr

        out["mean"][rows] = mean
        out["moving_range"][rows] = moving_range
        out["average_moving_range"][rows] = amr
        out["upl"][rows], out["lpl"][rows] = upl, lpl
        out["upper_near_limit"][rows], out["lower_near_limit"][rows] = unl, lnl
        is_trial[rows] = points.size < MIN_POINTS_FOR_FIRM_LIMITS
        for row in rows:
            note_col[row] = note

        rules, directions = _rules(points, mean, upl, lpl, unl, lnl)
        for row, rule, direction in zip(rows[present], rules, directions, strict=True):
            rule_col[row] = rule
            direction_col[row] = {1: "high", -1: "low"}.get(direction)
            point_type_col[row] = _point_type(direction, improvement)

    return {
        "value": y_all,
        "rebase_group": groups,
        **out,
        "is_trial_limits": is_trial,
        "limits_note": note_col,
        "special_cause_rule": rule_col,
        "special_cause_direction": direction_col,
        "point_type": point_type_col,
    }


def spc(
    values: Sequence[float | None],
    *,
    periods: Sequence[date] | None = None,
    improvement: str,
    rebase_at: Sequence[date] = (),
    target: float | None = None,
    screen_outliers: bool = True,
) -> pd.DataFrame:
    """XmR chart calculations for one series, one row per input value (see the module docstring for the rules).

    Args:
        values: the series in time order; None / NaN are missing values.
        periods: the period of each value (dates, strictly increasing). Needed for ``rebase_at``; when given it
            is the first column, ``period``.
        improvement: ``'increase'`` (higher is better), ``'decrease'`` (lower is better) or ``'neutral'``.
        rebase_at: dates at which the limits restart; each starts a new group at the first period on or after
            it.
        target: optional target, carried in the ``target`` column and ``frame.attrs['target']`` for
            `assurance`.
        screen_outliers: drop moving ranges of 3.267 × AMR or more before recomputing the AMR (default, as
            NHSRplotthedots); False keeps every moving range (Making Data Count's Excel tool).

    Returns:
        A DataFrame with columns ``period`` (when periods are given) followed by `COLUMNS`. ``frame.attrs``
        holds ``improvement`` and ``target``.
    """
    periods = None if periods is None else list(periods)
    arrays = spc_arrays(
        values, periods=periods, improvement=improvement, rebase_at=rebase_at, screen_outliers=screen_outliers
    )
    n = len(arrays["value"])
    target_value = None if target is None else _as_float(target)
    if target_value is not None and math.isnan(target_value):
        target_value = None

    frame = pd.DataFrame(
        {
            **{name: arrays[name] for name in COLUMNS[:10]},
            "limits_note": pd.Series(arrays["limits_note"], dtype=object),
            "special_cause_rule": pd.Series(arrays["special_cause_rule"], dtype=object),
            "special_cause_direction": pd.Series(arrays["special_cause_direction"], dtype=object),
            "point_type": pd.Series(arrays["point_type"], dtype=object),
            "target": np.full(n, np.nan if target_value is None else target_value),
        },
        columns=list(COLUMNS),
    )
    if periods is not None:
        frame.insert(0, "period", periods)
    frame.attrs["improvement"] = improvement
    frame.attrs["target"] = target_value
    return frame


def variation_icon(frame: pd.DataFrame) -> str | None:
    """The Making Data Count variation icon for the chart: the type of the last non-missing point.

    Returns one of ``'common_cause'``, ``'special_cause_improvement_high'``, ``'special_cause_improvement_low'``,
    ``'special_cause_concern_high'``, ``'special_cause_concern_low'``, ``'special_cause_neutral_high'``,
    ``'special_cause_neutral_low'`` (the names of the Making Data Count icons: improvement *high* is the
    higher-is-better improvement icon, concern *low* the higher-is-better concern icon, and so on), or None when
    the series has no values. The last *non-missing* point is used, so a missing latest month does not blank
    the icon.
    """
    flagged = frame[frame["point_type"].notna()]
    if flagged.empty:
        return None
    last = flagged.iloc[-1]
    if last["point_type"] == "common_cause":
        return "common_cause"
    return f"{last['point_type']}_{last['special_cause_direction']}"


def assurance(frame: pd.DataFrame, target: float | None = None, improvement: str | None = None) -> str | None:
    """Making Data Count assurance of meeting ``target``, judged on the limits of the latest rebase group.

    For ``improvement='increase'`` a target above the UPL is ``'consistently_fails'`` and a target below the
    LPL ``'consistently_passes'``; for ``'decrease'`` the reverse; otherwise (including a target exactly on a
    limit) ``'inconsistent'``. None when there is no target, when the direction is ``'neutral'`` (as
    NHSRplotthedots) or when the latest group has no limits (fewer than 2 values). ``target`` and
    ``improvement`` default to the values `spc` stored in ``frame.attrs``.
    """
    if target is None:
        target = frame.attrs.get("target")
    if improvement is None:
        improvement = frame.attrs.get("improvement")
    if improvement not in IMPROVEMENT_DIRECTIONS:
        raise ValueError(f"improvement must be one of {IMPROVEMENT_DIRECTIONS}, got {improvement!r}")
    if target is None or (isinstance(target, float) and math.isnan(target)) or improvement == "neutral":
        return None
    if frame.empty:
        return None
    latest = frame[frame["rebase_group"] == frame["rebase_group"].max()].iloc[-1]
    upl, lpl = latest["upl"], latest["lpl"]
    if pd.isna(upl) or pd.isna(lpl):
        return None
    increasing = improvement == "increase"
    if target > upl:
        return "consistently_fails" if increasing else "consistently_passes"
    if target < lpl:
        return "consistently_passes" if increasing else "consistently_fails"
    return "inconsistent"
