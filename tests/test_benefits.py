"""Benefits tracking, SPC and evaluation on the bundled samples, checked by hand computations (SPEC §7)."""

from __future__ import annotations

import csv
from datetime import date
from statistics import mean

import pytest

from orchestration.resources import REPO_ROOT


def register() -> dict[str, dict]:
    with open(REPO_ROOT / "seeds" / "reference" / "benefits.csv", newline="") as handle:
        return {row["benefit_id"]: row for row in csv.DictReader(handle)}


def months_apart(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def test_every_benefit_has_a_row_per_month(serving):
    months = serving.execute("select count(distinct period_month) from fct_collaborative_metric_month").fetchone()[0]
    counts = dict(serving.execute("select benefit_id, count(*) from fct_benefit_tracking group by 1").fetchall())
    assert set(counts) == set(register())
    assert set(counts.values()) == {months}
    assert len(register()) >= 12


def test_the_samples_give_achieved_on_track_off_track_and_no_data(serving):
    latest = dict(
        serving.execute("select benefit_id, rag_status from fct_benefit_tracking where is_latest_month").fetchall()
    )
    statuses = set(latest.values())
    assert {"achieved", "red", "grey"} <= statuses
    assert statuses & {"green", "amber"}
    assert latest["WYMHLDA-B02"] == "grey"  # Leeds Community Healthcare reports no inpatient spells


def collaborative_series(serving, collaborative: str, metric: str) -> dict[date, float | None]:
    rows = serving.execute(
        """
        select period_month, case when is_partial then null else value end
        from fct_collaborative_metric_month
        where collaborative_code = ? and org_code = 'ALL' and membership_basis = 'as_was' and metric_code = ?
        order by period_month
        """,
        [collaborative, metric],
    ).fetchall()
    return dict(rows)


def hand_xmr_limits(values: list[float]) -> tuple[float, float, float]:
    """Mean and process limits of an XmR chart, worked as NHS 'Making Data Count' does: the average moving
    range recomputed without moving ranges at or above 3.267 times it."""
    centre = mean(values)
    ranges = [abs(b - a) for a, b in zip(values, values[1:], strict=False)]
    average = mean(ranges)
    kept = [r for r in ranges if r < 3.267 * average]
    average = mean(kept)
    return centre, centre - 2.66 * average, centre + 2.66 * average


@pytest.mark.parametrize("benefit_id", ["SLP-B01", "BCPC-B01"])
def test_baseline_trajectory_rag_and_spc_agree_with_a_hand_computation(serving, benefit_id):
    benefit = register()[benefit_id]
    series = collaborative_series(serving, benefit["collaborative_code"], benefit["metric_code"])
    months = sorted(series)
    start, end = date.fromisoformat(benefit["baseline_start"]), date.fromisoformat(benefit["baseline_end"])
    baseline = mean(v for m, v in series.items() if start <= m <= end and v is not None)
    target = (
        float(benefit["target_value"])
        if benefit["target_value"]
        else baseline * (1 + float(benefit["target_change_pct"]) / 100)
    )
    target_date = date.fromisoformat(benefit["target_date"])
    smoothing = int(benefit["smoothing_months"])
    tolerance = float(benefit["tolerance"])
    better = -1 if benefit["direction"] == "decrease" else 1
    for month in (date(2023, 6, 1), date(2024, 3, 1), months[-1]):
        index = months.index(month)
        recent = [series[m] for m in months[max(0, index - smoothing + 1) : index + 1] if series[m] is not None]
        actual = mean(recent)
        elapsed = min(months_apart(end, month), months_apart(end, target_date))
        trajectory = baseline + (target - baseline) * elapsed / months_apart(end, target_date)
        if better * (actual - target) >= 0:
            rag = "achieved"
        elif better * (actual - trajectory) >= 0:
            rag = "green"
        elif better * (trajectory - actual) <= tolerance:
            rag = "amber"
        else:
            rag = "red"
        row = serving.execute(
            """
            select baseline_value, target_value, trajectory_value, actual_value, pct_of_target_achieved, rag_status
            from fct_benefit_tracking where benefit_id = ? and period_month = ?
            """,
            [benefit_id, month],
        ).fetchone()
        assert row[0] == pytest.approx(baseline)
        assert row[1] == pytest.approx(target)
        assert row[2] == pytest.approx(trajectory)
        assert row[3] == pytest.approx(actual)
        assert row[4] == pytest.approx(100 * (actual - baseline) / (target - baseline))
        assert row[5] == rag, month

    # SPC limits of the latest rebase group (from the register's rebase date)
    rebase = date.fromisoformat(benefit["rebase_date"])
    group = [series[m] for m in months if m >= rebase and series[m] is not None]
    centre, lower, upper = hand_xmr_limits(group)
    spc_mean, spc_lpl, spc_upl = serving.execute(
        "select spc_mean, spc_lpl, spc_upl from fct_benefit_tracking where benefit_id = ? and is_latest_month",
        [benefit_id],
    ).fetchone()
    assert (spc_mean, spc_lpl, spc_upl) == (pytest.approx(centre), pytest.approx(lower), pytest.approx(upper))


def did(serving, collaborative: str, metric: str):
    return serving.execute(
        """
        select estimate, ci_lower, ci_upper, pre_periods, post_periods, comparator_count from fct_evaluation
        where collaborative_code = ? and metric_code = ? and method = 'did'
        """,
        [collaborative, metric],
    ).fetchone()


def pre_go_live_trust_mean(
    serving, table: str, column: str, members: list[str], go_live: date, where: str = ""
) -> float:
    first = date(go_live.year - 1, go_live.month, 1)
    placeholders = ", ".join("?" for _ in members)
    return serving.execute(
        f"select avg({column}) from {table} where org_code in ({placeholders}) "
        f"and period_month >= ? and period_month < ? {where}",
        [*members, first, go_live],
    ).fetchone()[0]


def test_planted_effects_are_recovered_within_their_intervals(serving):
    go_live = date(2022, 4, 1)
    # SLP: inappropriate out-of-area bed days planted 30% lower after go-live, per sending trust
    planted = -0.30 * pre_go_live_trust_mean(
        serving, "fct_oap_provider_month", "inappropriate_oap_bed_days", ["RV5", "RPG", "RQY"], go_live
    )
    estimate, lower, upper, pre, post, comparators = did(serving, "SLP", "oap_inappropriate_bed_days")
    # Three treated trusts against six: the planted fall must lie inside the interval and the estimate must fall.
    # With clustered t errors the interval's upper end was at about zero (p 0.050); the restricted wild cluster
    # bootstrap (issue 13), which covers 95% or more with 3 treated trusts in the coverage study, excludes zero
    # (about −132 to −16, p 0.005 on the bundled samples).
    assert lower <= planted <= upper and estimate < 0.5 * planted and upper < 0
    assert pre == 12 and post == 12 and comparators >= 4
    before_after = serving.execute(
        "select ci_upper from fct_evaluation where collaborative_code = 'SLP' "
        "and metric_code = 'oap_inappropriate_bed_days' and method = 'before_after'"
    ).fetchone()[0]
    assert before_after < 0
    # WYAAT: acute mean length of stay planted 10% lower
    planted = -0.10 * pre_go_live_trust_mean(
        serving,
        "fct_los_provider_month",
        "mean_los_days",
        ["RCF", "RAE", "RWY", "RCD", "RR8", "RXF"],
        go_live,
        "and setting = 'acute'",
    )
    estimate, lower, upper, *_ = did(serving, "WYAAT", "los_mean_days")
    assert lower <= planted <= upper and upper < 0


def test_absent_effects_are_not_claimed(serving):
    # NENCMH had no planted effect on out-of-area bed days: the interval must include zero
    estimate, lower, upper, *_ = did(serving, "NENCMH", "oap_inappropriate_bed_days")
    assert lower <= 0 <= upper


def test_every_estimate_carries_its_interval_and_counts(serving):
    rows = serving.execute(
        "select method, estimate, ci_lower, ci_upper, p_value, pre_periods, post_periods, comparator_count, "
        "inference from fct_evaluation"
    ).fetchall()
    assert {row[0] for row in rows} == {"before_after", "did", "its", "synthetic_control"}
    inference = {
        "before_after": "welch_t",
        "its": "newey_west_t",
        "did": "wild_cluster_bootstrap_webb_restricted",
        "synthetic_control": "placebo_groups_in_space",
    }
    for method, estimate, lower, upper, p_value, pre, post, comparators, named in rows:
        assert named == inference[method]
        assert lower <= estimate <= upper and 0 <= p_value <= 1
        assert pre >= 3 and post >= 3
        assert comparators >= 4 if method == "synthetic_control" else (comparators > 0) == (method == "did")


def test_synthetic_control_recovers_the_planted_slp_fall_and_serves_its_donors(serving):
    go_live = date(2022, 4, 1)
    planted = -0.30 * pre_go_live_trust_mean(
        serving, "fct_oap_provider_month", "inappropriate_oap_bed_days", ["RV5", "RPG", "RQY"], go_live
    )
    estimate, lower, upper, donors = serving.execute(
        "select estimate, ci_lower, ci_upper, comparator_count from fct_evaluation where collaborative_code = 'SLP' "
        "and metric_code = 'oap_inappropriate_bed_days' and method = 'synthetic_control'"
    ).fetchone()
    # on the bundled samples about −61 against a planted −75, from 6 donors. The interval comes from the 20 placebo
    # groups of 3 donors (too few donors for groups of SLP's 4 members): bed days of trusts of very different sizes,
    # so it is wide (about −275 to +153) and honest; the DiD, the headline, is the one that excludes 0.
    assert lower <= planted <= upper
    assert estimate < 0 and abs(estimate - planted) < 0.3 * abs(planted)
    weights = serving.execute(
        "select sum(weight), count(*), min(donor_count) from fct_synthetic_control_donor "
        "where collaborative_code = 'SLP' and metric_code = 'oap_inappropriate_bed_days'"
    ).fetchone()
    assert weights == (pytest.approx(1.0, abs=1e-6), donors, donors)


def test_the_event_study_covers_every_did_and_its_reference_month_is_zero(serving):
    did_pairs = set(
        serving.execute("select collaborative_code, metric_code from fct_evaluation where method = 'did'").fetchall()
    )
    study_pairs = set(
        serving.execute("select distinct collaborative_code, metric_code from fct_event_study").fetchall()
    )
    assert study_pairs == did_pairs
    assert serving.execute(
        "select count(*) from fct_event_study where is_reference and (event_time <> -1 or estimate <> 0)"
    ).fetchone() == (0,)
    lags = serving.execute(
        "select avg(estimate) from fct_event_study where collaborative_code = 'SLP' "
        "and metric_code = 'oap_inappropriate_bed_days' and event_time >= 3"
    ).fetchone()[0]
    assert lags < 0  # the planted fall shows after the transition months


def test_spc_covers_every_collaborative_series(serving):
    series = serving.execute(
        "select count(distinct (collaborative_code, org_code, metric_code, membership_basis)) from fct_spc"
    ).fetchone()[0]
    with_values = serving.execute(
        "select count(distinct (collaborative_code, org_code, metric_code, membership_basis)) "
        "from fct_collaborative_metric_month where value is not null"
    ).fetchone()[0]
    assert series == with_values
    types = {row[0] for row in serving.execute("select distinct point_type from fct_spc").fetchall()}
    assert {"common_cause", "special_cause_improvement", "special_cause_concern"} <= types


@pytest.mark.parametrize("collaborative", ["SLP", "WYAAT", "WYMHLDA"])
def test_the_board_report_on_the_bundled_run_renders_every_chart_without_error_text(
    bundled_run, tmp_path, collaborative
):
    import re

    from orchestration.report import write_report
    from tests.test_report import ARTIFACTS, CHROMIUM, _assert_clean, _chromium

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make chromium` installs it (Debian package chromium)"
    html = write_report(bundled_run.serving_db, collaborative, tmp_path / f"benefits-report-{collaborative}.html")
    page = html.read_text()
    _assert_clean(page)
    benefits = [row for row in register().values() if row["collaborative_code"] == collaborative]
    for benefit in benefits:
        assert benefit["title"].replace("&", "&amp;").replace("'", "&#39;") in page or benefit["title"] in page
    # one SPC chart per benefit with data, plus the register icons, funnel or dot charts and the forest plots
    assert page.count("<svg") >= len(benefits) + 2
    png, pdf = tmp_path / f"{collaborative}.png", tmp_path / f"{collaborative}.pdf"
    _chromium(f"--screenshot={png}", "--window-size=1280,5000", html.as_uri(), user_data=tmp_path / "png")
    _chromium(f"--print-to-pdf={pdf}", "--no-pdf-header-footer", html.as_uri(), user_data=tmp_path / "pdf")
    assert png.stat().st_size > 50_000
    assert pdf.read_bytes().startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page(?!s)", pdf.read_bytes())) >= 2
    ARTIFACTS.mkdir(exist_ok=True)
    for path in (html, png, pdf):
        (ARTIFACTS / f"bundled-{path.name}").write_bytes(path.read_bytes())
