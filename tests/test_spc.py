"""SPC (Making Data Count XmR) on hand-worked series: every expected number below is worked out by hand.

Notation in the comments: MR = moving range, AMR = average moving range, near = (2/3)(2.66) = 1.77333… × AMR.
"""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest

from orchestration.analytics.spc import assurance, spc, variation_icon

# 13 points, a spike of 36 in the middle of a 9/11 alternation.
# mean = (6×9 + 6×11 + 36) / 13 = 156 / 13 = 12.
# MRs: ten of 2, 11→36 = 25, 36→9 = 27: AMR = (20 + 25 + 27) / 12 = 72 / 12 = 6.
# Screen: 3.267 × 6 = 19.602, so 25 and 27 are dropped: AMR = 20 / 10 = 2.
# UPL = 12 + 2.66 × 2 = 17.32, LPL = 6.68; near limits 12 ± 3.54667 = 15.54667 / 8.45333 (9 and 11 not beyond).
# Every 9 and 11 is below the mean, but the spike splits them into runs of 6: no shift.
SPIKE = [9, 11, 9, 11, 9, 11, 36, 9, 11, 9, 11, 9, 11]


def rules(frame):
    return list(frame["special_cause_rule"])


def test_spike_above_upl_is_outside_limits_and_typed_by_direction():
    frame = spc(SPIKE, improvement="increase")
    assert len(frame) == 13
    assert frame["mean"].iloc[0] == pytest.approx(12)
    assert frame["upl"].iloc[0] == pytest.approx(17.32)
    assert frame["lpl"].iloc[0] == pytest.approx(6.68)
    assert frame["upper_near_limit"].iloc[0] == pytest.approx(12 + 2 * 2.66 * 2 / 3)
    assert frame["lower_near_limit"].iloc[0] == pytest.approx(12 - 2 * 2.66 * 2 / 3)
    assert rules(frame) == [None] * 6 + ["outside_limits"] + [None] * 6
    assert frame["point_type"].iloc[6] == "special_cause_improvement"
    assert set(frame["point_type"].drop(index=6)) == {"common_cause"}
    assert not frame["is_trial_limits"].any()

    assert spc(SPIKE, improvement="decrease")["point_type"].iloc[6] == "special_cause_concern"
    assert spc(SPIKE, improvement="neutral")["point_type"].iloc[6] == "special_cause_neutral"


def test_moving_range_screening_changes_the_amr():
    frame = spc(SPIKE, improvement="increase")
    # Moving ranges are reported unscreened; the first point has none.
    assert math.isnan(frame["moving_range"].iloc[0])
    assert list(frame["moving_range"].iloc[1:]) == [2, 2, 2, 2, 2, 25, 27, 2, 2, 2, 2, 2]
    # Unscreened AMR would be 72 / 12 = 6 (UPL 27.96); after dropping 25 and 27 (≥ 19.602) it is 20 / 10 = 2.
    assert frame["average_moving_range"].iloc[0] == pytest.approx(2)
    assert frame["upl"].iloc[0] == pytest.approx(17.32)


# 13 points with a rising run 9..15 (indices 4–10: 6 successive increases = 7 points).
# mean = (10 + 14 + 10 + 14 + 84 + 10 + 14) / 13 = 156 / 13 = 12.
# MRs: 4, 4, 4, 5, 1×6, 5, 4 = 32 over 12: AMR = 8/3 (screen 8.712 drops none).
# UPL = 12 + 2.66 × 8/3 = 19.0933, LPL = 4.9067; near 12 ± 4.7289 = 16.7289 / 7.2711: nothing beyond.
# Sides: - + - + - - - 0 + + + - +: no run of 7.
TREND_UP = [10, 14, 10, 14, 9, 10, 11, 12, 13, 14, 15, 10, 14]


def test_seven_point_rising_trend_is_flagged():
    frame = spc(TREND_UP, improvement="increase")
    assert frame["mean"].iloc[0] == pytest.approx(12)
    assert frame["average_moving_range"].iloc[0] == pytest.approx(8 / 3)
    assert frame["upl"].iloc[0] == pytest.approx(12 + 2.66 * 8 / 3)
    assert rules(frame) == [None] * 4 + ["trend"] * 7 + [None] * 2
    # A rising trend is "high" even for the points below the mean.
    assert set(frame["point_type"].iloc[4:11]) == {"special_cause_improvement"}
    assert set(frame["special_cause_direction"].iloc[4:11]) == {"high"}


def test_seven_point_falling_trend_is_a_concern_when_higher_is_better():
    # The same series reversed: same mean and limits, falling run at indices 2–8.
    frame = spc(TREND_UP[::-1], improvement="increase")
    assert frame["mean"].iloc[0] == pytest.approx(12)
    assert rules(frame) == [None] * 2 + ["trend"] * 7 + [None] * 4
    assert set(frame["point_type"].iloc[2:9]) == {"special_cause_concern"}


def test_six_point_trend_is_not_flagged():
    # 10, 10, 11, 12, 13, 14, 15: the repeated 10 is not an increase, so only 6 points (5 increases) rise.
    # mean = 157 / 13; MRs 4, 4, 4, 4, 0, 1×5, 5, 4 = 30 over 12: AMR = 2.5 (screen 8.1675 drops none).
    # UPL = 157/13 + 6.65 = 18.727; near 157/13 ± 4.4333 = 16.510 / 7.644: nothing beyond; longest side run is 4.
    frame = spc([10, 14, 10, 14, 10, 10, 11, 12, 13, 14, 15, 10, 14], improvement="increase")
    assert frame["mean"].iloc[0] == pytest.approx(157 / 13)
    assert frame["average_moving_range"].iloc[0] == pytest.approx(2.5)
    assert rules(frame) == [None] * 13
    assert set(frame["point_type"]) == {"common_cause"}


# 17 points: 10/12 alternating ×7, then 16, 13, 16.
# mean = (7 × 22 + 45) / 17 = 199 / 17 = 11.7059. MRs: 2×13, 4, 3, 3 = 36 over 16: AMR = 2.25 (screen 7.35).
# near upper = 199/17 + 1.77333 × 2.25 = 199/17 + 3.99 = 15.6959; UPL = 199/17 + 5.985 = 17.6909.
# So 16 is beyond the near limit but inside the UPL; 13 is above the mean but not beyond; 12 is above the mean.
TWO_OF_THREE = [10, 12] * 7 + [16, 13, 16]


def test_two_of_three_beyond_near_limit_flags_the_two_points_beyond():
    frame = spc(TWO_OF_THREE, improvement="increase")
    assert frame["mean"].iloc[0] == pytest.approx(199 / 17)
    assert frame["average_moving_range"].iloc[0] == pytest.approx(2.25)
    assert frame["upper_near_limit"].iloc[0] == pytest.approx(199 / 17 + 3.99)
    assert frame["upl"].iloc[0] == pytest.approx(199 / 17 + 5.985)
    # The window (16, 13, 16) is all above the mean with two beyond the near limit: the two 16s are flagged,
    # the 13 between them is not.
    assert rules(frame) == [None] * 14 + ["two_of_three", None, "two_of_three"]
    assert list(frame["point_type"].iloc[14:]) == [
        "special_cause_improvement",
        "common_cause",
        "special_cause_improvement",
    ]
    assert not frame["is_trial_limits"].any()


# 16 points: 9/13 alternating (7 points), a run of 7 above the mean, then 9, 7.
# mean = (75 + 85 + 16) / 16 = 11.0625 with the run 12, 13, 12, 12, 12, 13, 12 (sum 86 → total 177).
# MRs: 4×6, 3, 1, 1, 0, 0, 1, 1, 3, 2 = 36 over 15: AMR = 2.4 (screen 7.84).
# near 11.0625 ± 4.256 = 15.3185 / 6.8065 (13 and 7 not beyond); no trend (nothing rises 7 times).
SHIFT = [9, 13, 9, 13, 9, 13, 9, 12, 13, 12, 12, 12, 13, 12, 9, 7]


def test_seven_points_above_the_mean_is_a_shift():
    frame = spc(SHIFT, improvement="increase")
    assert frame["mean"].iloc[0] == pytest.approx(177 / 16)
    assert frame["average_moving_range"].iloc[0] == pytest.approx(2.4)
    assert rules(frame) == [None] * 7 + ["shift"] * 7 + [None] * 2
    assert set(frame["point_type"].iloc[7:14]) == {"special_cause_improvement"}
    assert set(spc(SHIFT, improvement="decrease")["point_type"].iloc[7:14]) == {"special_cause_concern"}


def test_a_point_exactly_on_the_mean_breaks_the_shift():
    # Index 10 set to 11: total 176, mean = 176 / 16 = 11 exactly, so that point is on the mean.
    # The run becomes 3 above, 1 on the mean, 3 above: no shift. (MRs 4×6, 3, 1, 1, 1, 1, 1, 1, 3, 2 = 38:
    # AMR = 38/15; near 11 ± 4.4924 = 15.4924 / 6.5076, nothing beyond.)
    values = SHIFT.copy()
    values[10] = 11
    frame = spc(values, improvement="increase")
    assert frame["mean"].iloc[0] == 11
    assert frame["average_moving_range"].iloc[0] == pytest.approx(38 / 15)
    assert rules(frame) == [None] * 16


def test_outside_limits_takes_priority_over_shift():
    # A run of 7 above the mean with a spike of 30 in it: 9/13 ×3, 9, then 14, 15, 14, 30, 14, 15, 14, then 9, 7.
    # mean = (75 + 116 + 16) / 16 = 207 / 16 = 12.9375 (13 is above it, 9 below).
    # MRs: 4×6, 5, 1, 1, 16, 16, 1, 1, 5, 2 = 72 over 15: AMR 4.8; screen 3.267 × 4.8 = 15.6816 drops both 16s:
    # AMR = 40 / 13. UPL = 12.9375 + 2.66 × 40/13 = 21.1221 (30 is outside), LPL = 4.7529.
    values = [9, 13, 9, 13, 9, 13, 9, 14, 15, 14, 30, 14, 15, 14, 9, 7]
    frame = spc(values, improvement="increase")
    assert frame["mean"].iloc[0] == pytest.approx(207 / 16)
    assert frame["average_moving_range"].iloc[0] == pytest.approx(40 / 13)
    assert frame["upl"].iloc[0] == pytest.approx(207 / 16 + 2.66 * 40 / 13)
    assert rules(frame) == [None] * 7 + ["shift"] * 3 + ["outside_limits"] + ["shift"] * 3 + [None] * 2


def months(n, start_year=2023):
    return [date(start_year + (m // 12), m % 12 + 1, 1) for m in range(n)]


def test_rebase_starts_a_new_group_with_its_own_limits():
    # Group 0: 10, 12, 10, 12 (mean 11, AMR 2); group 1 from the first period on or after 15 April 2023 (May):
    # 20, 22, 20, 22, 20 (mean 104 / 5 = 20.8, AMR 2; the 12→20 step is not a moving range of either group).
    values = [10, 12, 10, 12, 20, 22, 20, 22, 20]
    frame = spc(values, periods=months(9), improvement="increase", rebase_at=[date(2023, 4, 15)])
    assert list(frame.columns[:2]) == ["period", "value"]
    assert list(frame["rebase_group"]) == [0] * 4 + [1] * 5
    assert list(frame["mean"]) == pytest.approx([11] * 4 + [20.8] * 5)
    assert list(frame["average_moving_range"]) == pytest.approx([2] * 9)
    assert math.isnan(frame["moving_range"].iloc[4])
    assert list(frame["upl"]) == pytest.approx([11 + 5.32] * 4 + [20.8 + 5.32] * 5)
    # Short groups: trial limits.
    assert frame["is_trial_limits"].all()


def test_rebase_before_the_first_period_creates_no_extra_group():
    frame = spc([1, 2, 3], periods=months(3), improvement="neutral", rebase_at=[date(2022, 1, 1), date(2023, 1, 1)])
    assert list(frame["rebase_group"]) == [0, 0, 0]


def test_short_series_has_trial_limits():
    # 12 points < 13: trial. Same series plus one point: firm.
    assert spc(SPIKE[:12], improvement="increase")["is_trial_limits"].all()
    assert not spc(SPIKE, improvement="increase")["is_trial_limits"].any()


def test_missing_values_are_carried_through_and_skipped_by_runs():
    # SHIFT with a gap between indices 9 and 10 (inside the run above the mean).
    # Mean unchanged (177/16). The 12→12 moving range across the gap is lost: MRs sum to 36 over 14.
    values = SHIFT[:10] + [None] + SHIFT[10:]
    frame = spc(values, improvement="increase")
    assert len(frame) == 17
    gap = frame.iloc[10]
    assert math.isnan(gap["value"]) and math.isnan(gap["moving_range"])
    assert gap["special_cause_rule"] is None and gap["point_type"] is None
    assert math.isnan(frame["moving_range"].iloc[11])
    assert gap["mean"] == pytest.approx(177 / 16)
    assert frame["average_moving_range"].iloc[0] == pytest.approx(36 / 14)
    # The run of 7 points above the mean continues across the gap.
    assert rules(frame) == [None] * 7 + ["shift"] * 3 + [None] + ["shift"] * 4 + [None] * 2
    assert not frame["is_trial_limits"].any()


def test_assurance_both_directions_and_inconsistent():
    frame = spc(SPIKE, improvement="increase")  # UPL 17.32, LPL 6.68
    assert assurance(frame, 20, "increase") == "consistently_fails"
    assert assurance(frame, 5, "increase") == "consistently_passes"
    assert assurance(frame, 20, "decrease") == "consistently_passes"
    assert assurance(frame, 5, "decrease") == "consistently_fails"
    assert assurance(frame, 12, "increase") == "inconsistent"
    assert assurance(frame, 12, "decrease") == "inconsistent"
    assert assurance(frame, None, "increase") is None
    # Target and direction default to what spc() was given.
    assert assurance(spc(SPIKE, improvement="decrease", target=20)) == "consistently_passes"
    assert assurance(spc(SPIKE, improvement="decrease")) is None


def test_assurance_uses_the_latest_rebase_group():
    # Latest group: mean 20.8, LPL 15.48. A target of 14 is inside group 0's limits (5.68–16.32) but below the
    # latest LPL, so higher-is-better consistently passes.
    values = [10, 12, 10, 12, 20, 22, 20, 22, 20]
    frame = spc(values, periods=months(9), improvement="increase", rebase_at=[date(2023, 5, 1)])
    assert assurance(frame, 14, "increase") == "consistently_passes"


def test_variation_icon_is_the_last_points_type():
    assert variation_icon(spc(SPIKE, improvement="increase")) == "common_cause"
    # The last point of TWO_OF_THREE is special cause high.
    assert variation_icon(spc(TWO_OF_THREE, improvement="increase")) == "special_cause_improvement_high"
    assert variation_icon(spc(TWO_OF_THREE, improvement="decrease")) == "special_cause_concern_high"
    assert variation_icon(spc(TWO_OF_THREE, improvement="neutral")) == "special_cause_neutral_high"
    # Mirrored (30 − y): the last point is special cause low.
    mirrored = [30 - v for v in TWO_OF_THREE]
    assert variation_icon(spc(mirrored, improvement="increase")) == "special_cause_concern_low"
    assert variation_icon(spc(mirrored, improvement="decrease")) == "special_cause_improvement_low"
    # A missing latest value does not blank the icon.
    assert variation_icon(spc([*TWO_OF_THREE, None], improvement="increase")) == "special_cause_improvement_high"


def test_edge_cases():
    assert spc([], improvement="increase").empty
    single = spc([5.0], improvement="increase")
    assert single["special_cause_rule"].iloc[0] is None and single["is_trial_limits"].iloc[0]
    assert math.isnan(single["upl"].iloc[0])
    flat = spc([4] * 8, improvement="increase")  # AMR 0: limits on the mean, nothing flagged
    assert flat["upl"].iloc[0] == 4 and rules(flat) == [None] * 8
    with pytest.raises(ValueError):
        spc([1, 2], improvement="up")
    with pytest.raises(ValueError):
        spc([1, 2], improvement="increase", rebase_at=[date(2023, 1, 1)])
    with pytest.raises(ValueError):
        spc([1, 2], periods=[date(2023, 2, 1), date(2023, 1, 1)], improvement="increase")


def _metric_month(rows: list[tuple]) -> pd.DataFrame:
    columns = ["collaborative_code", "org_code", "metric_code", "membership_basis", "period_month", "value"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["period_month"] = pd.to_datetime(frame["period_month"])
    return frame


def test_build_spc_charts_each_series_on_its_own_and_tolerates_no_data():
    from orchestration.analytics.marts import build_spc

    metrics = pd.DataFrame({"metric_code": ["m_up", "m_down"], "better": ["higher", "lower"]})
    collaboratives = pd.DataFrame({"collaborative_code": ["C1"], "go_live_date": [pd.Timestamp("2024-04-01")]})
    empty = build_spc(_metric_month([]), metrics, collaboratives)
    assert empty.empty and {"collaborative_code", "period_month", "upl", "point_type"} <= set(empty.columns)

    months = [date(2024, m, 1) for m in range(1, 9)]
    first = [10.0, 12.0, 11.0, None, 13.0, 30.0, 12.0, 11.0]
    second = [5.0, 6.0, 5.0, 7.0, 6.0, 5.0, 6.0, 40.0]
    rows = [("C1", "ORG1", "m_up", "as_was", m, v) for m, v in zip(months, first, strict=True)]
    rows += [("C1", "ORG2", "m_down", "as_is", m, v) for m, v in zip(months, second, strict=True)]
    rows += [("C1", "ORG3", "m_up", "as_was", m, None) for m in months]  # no values at all: no chart
    chart = build_spc(_metric_month(rows[::-1]), metrics, collaboratives)  # order of the input does not matter

    assert len(chart) == 16 and set(chart["org_code"]) == {"ORG1", "ORG2"}
    for org, values, improvement in (("ORG1", first, "increase"), ("ORG2", second, "decrease")):
        got = chart[chart["org_code"] == org].reset_index(drop=True)
        assert list(got["period_month"]) == months
        want = spc(values, periods=months, improvement=improvement, rebase_at=[date(2024, 4, 1)])
        assert list(got["rebase_group"]) == list(want["rebase_group"]) == [0, 0, 0, 1, 1, 1, 1, 1]
        for column in ("value", "mean", "upl", "lpl"):
            assert got[column].tolist() == pytest.approx(want[column].tolist(), nan_ok=True), (org, column)
        assert got["point_type"].tolist() == want["point_type"].tolist()
    assert chart.loc[(chart["org_code"] == "ORG2") & (chart["value"] == 40.0), "point_type"].item() == (
        "special_cause_concern"
    )


# --- guards when the moving ranges give no usable spread (issue 13) ------------------------------------------


def test_gaps_that_leave_only_equal_neighbours_give_empty_limits_not_ten_red_dots():
    # The SLP / RQY case: values 5 and 10 with months missing between them; the only adjacent pair is 5, 5, so the
    # AMR is 0 while the values vary. NHSRplotthedots' limits would be 6.0 and 6.0 with every point outside them.
    values = [5, None, 10, None, 5, 5, None, 10, None, 5, None, 5, None, 10, None, 5]
    frame = spc(values, improvement="decrease")
    assert frame["upl"].isna().all() and frame["lpl"].isna().all()
    assert frame["upper_near_limit"].isna().all() and frame["lower_near_limit"].isna().all()
    assert set(frame["limits_note"]) == {"no_spread"}
    present = frame[frame["value"].notna()]
    assert "outside_limits" not in set(present["special_cause_rule"])
    assert "two_of_three" not in set(present["special_cause_rule"])
    assert set(present["point_type"]) == {"common_cause"}  # 8 points, no run of 7 on one side


def test_screening_that_removes_every_spread_falls_back_to_the_unscreened_amr():
    # The WYAAT / RXF case: a length of stay of 2 or 3 days, mostly equal neighbours. 20 points, one 3:
    # MRs: eighteen 0s and two 1s, AMR = 2/19 = 0.10526; screen at 3.267 × 0.10526 = 0.3439 drops both 1s, so the
    # screened AMR is 0 and NHSRplotthedots calls every point outside limits of width 0. Unscreened AMR kept:
    # mean = (19 × 2 + 3) / 20 = 2.05, UPL = 2.05 + 2.66 × 2/19 = 2.33, LPL = 1.77: the single 3 is outside; the
    # 2s sit inside the limits but below the mean in runs of 10 and 9, which the shift rule (no limits needed) flags.
    values = [2] * 10 + [3] + [2] * 9
    frame = spc(values, improvement="decrease")
    assert set(frame["limits_note"]) == {"unscreened_amr"}
    assert frame["average_moving_range"].iloc[0] == pytest.approx(2 / 19)
    assert frame["upl"].iloc[0] == pytest.approx(2.05 + 2.66 * 2 / 19)
    assert rules(frame) == ["shift"] * 10 + ["outside_limits"] + ["shift"] * 9
    # Ten 2s then ten 3s: the unscreened AMR (1/19) still leaves every point outside 2.5 ± 0.14, so no limits;
    # the step is a shift, which needs none.
    step = spc([2] * 10 + [3] * 10, improvement="decrease")
    assert set(step["limits_note"]) == {"every_point_outside"} and step["upl"].isna().all()
    assert set(step["special_cause_rule"]) == {"shift"}
    # Alternating values are no signal at all: 2, 3, 2, 2, 3, 3, ... has a positive screened AMR anyway.
    mixed = [2, 2, 2, 3, 2, 2, 2, 2, 3, 2, 2, 2, 2, 2, 3, 2, 2, 2]
    # MRs: six 1s, eleven 0s: AMR = 6/17 = 0.35294, screen 1.1531 keeps the 1s: no fallback needed.
    chart = spc(mixed, improvement="decrease")
    assert chart["limits_note"].isna().all()
    assert chart["average_moving_range"].iloc[0] == pytest.approx(6 / 17)


def test_screen_outliers_option_keeps_every_moving_range():
    # SPIKE unscreened: AMR = 72 / 12 = 6, UPL = 12 + 2.66 × 6 = 27.96, so the spike of 36 is still outside.
    frame = spc(SPIKE, improvement="increase", screen_outliers=False)
    assert frame["average_moving_range"].iloc[0] == pytest.approx(6)
    assert frame["upl"].iloc[0] == pytest.approx(27.96)
    assert frame["lpl"].iloc[0] == pytest.approx(12 - 15.96)
    assert rules(frame) == [None] * 6 + ["outside_limits"] + [None] * 6
    assert frame["limits_note"].isna().all()


def test_limits_notes_for_constant_and_single_point_groups():
    flat = spc([4] * 8, improvement="increase")
    assert set(flat["limits_note"]) == {"constant"} and rules(flat) == [None] * 8
    single = spc([5.0], improvement="increase")
    assert single["limits_note"].iloc[0] == "single_point"
    # Rebased: the first group is normal, the second varies with no usable spread (gaps between equal pairs).
    values = [10, 12, 10, 12, 10, 7, 7, None, 9, 9]
    frame = spc(values, periods=months(10), improvement="increase", rebase_at=[date(2023, 6, 1)])
    assert frame["limits_note"].tolist() == [None] * 5 + ["no_spread"] * 5
    assert frame["upl"].iloc[5:].isna().all() and frame["upl"].iloc[:5].notna().all()


def test_empty_limits_never_flag_a_point_outside_them():
    import random

    rng = random.Random(13)
    for _ in range(300):
        values = [rng.choice([1.0, 2.0, 3.0, None, None]) for _ in range(rng.randint(2, 30))]
        if all(v is None for v in values):
            continue
        frame = spc(values, improvement="increase")
        empty = frame["upl"].isna()
        assert not (empty & frame["special_cause_rule"].isin(["outside_limits", "two_of_three"])).any()
        varying = frame["value"].nunique() > 1
        assert not (varying and (frame["upl"] == frame["lpl"]).any()), values
        present = frame[frame["value"].notna()]
        assert not (
            len(present) > 1 and ((present["value"] > present["upl"]) | (present["value"] < present["lpl"])).all()
        )


def test_a_group_with_every_point_outside_its_limits_gets_no_limits():
    # A steady climb: 1, 2, …, 14. MRs all 1, AMR 1, mean 7.5, limits 7.5 ± 2.66: points 1–4 and 11–14 outside,
    # the rest inside: limits kept. A coarse series where the mean falls between the only two values
    # [2, 3, 2, 3, ...] then [2] * 12: MRs twelve 1s (the alternation) then zeros; AMR 12/24 = 0.5, screen 1.63
    # keeps the 1s; mean = (6 × 3 + 19 × 2) / 25 = 2.24, limits 2.24 ± 1.33: nothing outside, limits kept.
    climb = spc(list(range(1, 15)), improvement="increase")
    assert climb["limits_note"].isna().all() and climb["upl"].iloc[0] == pytest.approx(7.5 + 2.66)
    # Two levels far apart with tiny noise: 100, 100.1, 100, … then 200, 200.1, …: MRs 0.1 except one of ~100,
    # which the screen drops: AMR 0.1, mean ≈ 150, every point ~50 from the mean, outside 150 ± 0.27; unscreened
    # AMR ≈ (100 + 12 × 0.1) / 13 = 7.78 still leaves every point outside (±20.7): no limits, and the shift rule
    # still flags both halves.
    values = [100, 100.1] * 3 + [100] + [200, 200.1] * 3 + [200]
    frame = spc(values, improvement="increase")
    assert set(frame["limits_note"]) == {"every_point_outside"}
    assert frame["upl"].isna().all()
    assert set(frame["special_cause_rule"]) == {"shift"}
