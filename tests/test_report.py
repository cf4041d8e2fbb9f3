"""The benefits board report: content, graceful handling of missing data, and rendering in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.report import build_report, write_all_reports, write_report

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
CODE = "SLP"
MONTHS = [date(2022 + (m // 12), m % 12 + 1, 1) for m in range(24)]  # Jan 2022 … Dec 2023
TITLE_OAP = "Halve inappropriate out-of-area bed days by March 2024"
TITLE_LOS = "Fewer long stays (21 days or more) on adult acute wards at RQY"
# Bed days: high in 2022, falling after go-live (April 2022) and again after the rebase (October 2022).
BED_DAYS = [620, 590, 640, 600, 575, 560, 610, 540, 555, 520, 470, 455,
            430, 445, 410, 400, 395, 380, 370, 365, 350, 340, 335, 320]  # fmt: skip


def _xmr(values: list[float]) -> tuple[float, float, float]:
    mean = sum(values) / len(values)
    moving = [abs(b - a) for a, b in zip(values, values[1:], strict=False)]
    amr = sum(moving) / len(moving)
    return mean, mean + 2.66 * amr, mean - 2.66 * amr


def _tracking_rows() -> list[dict]:
    rows = []
    rebase = MONTHS.index(date(2022, 10, 1))
    groups = [(0, rebase), (rebase, len(MONTHS))]
    baseline, target = 616.7, 300.0
    for start, end in groups:
        mean, upl, lpl = _xmr(BED_DAYS[start:end])
        for i in range(start, end):
            month = MONTHS[i]
            # Trajectory: straight line from the baseline (March 2022) to the target (March 2024).
            trajectory = baseline + (target - baseline) * max(0, i - 2) / 24
            actual = BED_DAYS[i]
            point = "common_cause"
            if i >= len(MONTHS) - 7:
                point = "special_cause_improvement"
            elif i == 2:
                point = "special_cause_concern"
            rows.append(
                {
                    "benefit_id": "SLP-B01",
                    "collaborative_code": CODE,
                    "metric_code": "oap_inappropriate_bed_days",
                    "period_month": month,
                    "actual_value": float(actual),
                    "baseline_value": baseline,
                    "target_value": target,
                    "trajectory_value": trajectory,
                    "pct_of_target_achieved": 100 * (actual - baseline) / (target - baseline),
                    "rag_status": "green" if actual <= trajectory else "amber",
                    "spc_variation": "special_cause_improvement_low",
                    "spc_assurance": "inconsistent",
                    "spc_mean": mean,
                    "spc_upl": upl,
                    "spc_lpl": lpl,
                    "spc_point_type": point,
                    "is_latest_month": i == len(MONTHS) - 1,
                }
            )
    for i, month in enumerate(MONTHS):
        # The second benefit is scoped to one trust whose figures are suppressed: no usable data, grey.
        rows.append(
            {
                "benefit_id": "SLP-B02",
                "collaborative_code": CODE,
                "metric_code": "los_long_stay_pct_21plus",
                "period_month": month,
                "actual_value": None,
                "baseline_value": None,
                "target_value": 20.0,
                "trajectory_value": None,
                "pct_of_target_achieved": None,
                "rag_status": "grey",
                "spc_variation": None,
                "spc_assurance": None,
                "spc_mean": None,
                "spc_upl": None,
                "spc_lpl": None,
                "spc_point_type": None,
                "is_latest_month": i == len(MONTHS) - 1,
            }
        )
    return rows


def _frames() -> dict[str, pd.DataFrame]:
    collaborative = pd.DataFrame(
        [
            {
                "collaborative_code": CODE,
                "collaborative_name": "South London Mental Health and Community Partnership",
                "collaborative_type": "mhlda",
                "governance_model": "lead_provider",
                "lead_provider_name": "South London and Maudsley NHS Foundation Trust",
                "icbs_spanned": "QKK, QWE",
                "go_live_date": date(2022, 4, 1),
            },
            {
                "collaborative_code": "WYAAT",
                "collaborative_name": "West Yorkshire Association of Acute Trusts",
                "collaborative_type": "acute",
                "governance_model": "joint_committee",
                "lead_provider_name": None,
                "icbs_spanned": "QWO, QOQ",
                "go_live_date": date(2022, 4, 1),
            },
        ]
    )
    metric = pd.DataFrame(
        [
            ("oap_inappropriate_bed_days", "Inappropriate out-of-area bed days", "bed days", "lower"),
            ("los_long_stay_pct_21plus", "Discharges after 21 days or more", "percent", "lower"),
        ],
        columns=["metric_code", "metric_name", "unit", "better"],
    )
    organisation = pd.DataFrame(
        [
            ("RPG", "Oxleas NHS Foundation Trust"),
            ("RV5", "South London and Maudsley NHS Foundation Trust"),
            ("RQY", "South West London and St George's Mental Health NHS Trust"),
        ],
        columns=["org_code", "org_name"],
    )
    common = {"collaborative_code": CODE, "baseline_start": date(2022, 1, 1), "baseline_end": date(2022, 3, 1)}
    benefit = pd.DataFrame(
        [
            {
                "benefit_id": "SLP-B01",
                **common,
                "title": TITLE_OAP,
                "metric_code": "oap_inappropriate_bed_days",
                "measure": "value",
                "scope_org_code": None,
                "direction": "decrease",
                "target_value": 300.0,
                "target_date": date(2024, 3, 1),
                "tolerance": 40.0,
                "owner": "Director of Mental Health Programmes",
                "programme": "Out-of-area placements",
                "rebase_date": date(2022, 10, 1),
            },
            {
                "benefit_id": "SLP-B02",
                **common,
                "title": TITLE_LOS,
                "metric_code": "los_long_stay_pct_21plus",
                "measure": "value",
                "scope_org_code": "RQY",
                "direction": "decrease",
                "target_value": 20.0,
                "target_date": date(2024, 3, 1),
                "tolerance": 2.0,
                "owner": "Clinical Director, Flow",
                "programme": "Flow and discharge",
                "rebase_date": None,
            },
        ]
    )
    tracking = pd.DataFrame(_tracking_rows())
    latest = MONTHS[-1]
    variation_rows = []
    # Bed days (a count): no funnel limits, a dot chart of members.
    for org, value in (("RPG", 90.0), ("RV5", 140.0), ("RQY", 90.0)):
        variation_rows.append(
            (CODE, "oap_inappropriate_bed_days", latest, org, value, None, 320.0, None, None, None, None, None, 0.26)
        )
    # Long stays (a proportion): funnel limits around the collaborative's 24%; RQY suppressed.
    for org, value, n in (("RPG", 22.0, 400.0), ("RV5", 31.0, 600.0), ("RQY", None, None)):
        if value is None:
            variation_rows.append(
                (CODE, "los_long_stay_pct_21plus", latest, org, None, None, 24.0, None, None, None, None, None, 0.24)
            )
            continue
        se = (0.24 * 0.76 / n) ** 0.5 * 100
        limits = (24 - 1.959964 * se, 24 + 1.959964 * se, 24 - 3.090232 * se, 24 + 3.090232 * se)
        flag = "above_998" if value > limits[3] else "above_95" if value > limits[1] else "within"
        variation_rows.append((CODE, "los_long_stay_pct_21plus", latest, org, value, n, 24.0, *limits, flag, 0.24))
    variation = pd.DataFrame(
        variation_rows,
        columns=[
            "collaborative_code", "metric_code", "period_month", "org_code", "value", "denominator",
            "collaborative_value", "lower_95", "upper_95", "lower_998", "upper_998", "outlier_flag",
            "coefficient_of_variation",
        ],
    )  # fmt: skip
    # binomial limits, no over-dispersion estimate (τ² unknown): the funnel is drawn as k / √n from the limits
    variation = variation.assign(phi=None, tau2=None).astype({"phi": "float64", "tau2": "float64"})
    evaluation = pd.DataFrame(
        [
            (CODE, "oap_inappropriate_bed_days", "did", -31.0, 7.1, -45.0, -17.0, 0.0004, 12, 12, 9, 0.42, None,
             "wild_cluster_bootstrap_webb_restricted"),
            (CODE, "oap_inappropriate_bed_days", "its", -85.0, 30.0, -143.8, -26.2, 0.006, 24, 21, None, None, "level",
             "newey_west_t"),
            (CODE, "oap_inappropriate_bed_days", "its", -4.0, 3.0, -9.9, 1.9, 0.19, 24, 21, None, None, "slope",
             "newey_west_t"),
        ],
        columns=[
            "collaborative_code", "metric_code", "method", "estimate", "std_error", "ci_lower", "ci_upper",
            "p_value", "pre_periods", "post_periods", "comparator_count", "pre_trend_p_value", "note", "inference",
        ],
    )  # fmt: skip
    metric_month = []
    for i, month in enumerate(MONTHS):
        metric_month.append(
            (CODE, "ALL", "as_was", month, "oap_inappropriate_bed_days", float(BED_DAYS[i]), i in (20, 21), False)
        )
        metric_month.append((CODE, "RQY", "as_was", month, "los_long_stay_pct_21plus", None, False, True))
    collaborative_metric_month = pd.DataFrame(
        metric_month,
        columns=[
            "collaborative_code", "org_code", "membership_basis", "period_month", "metric_code", "value",
            "is_partial", "is_suppressed",
        ],
    )  # fmt: skip
    # Event study of the bed days: leads drifting away from zero (a failing pre-trend), lags below zero.
    event_study = pd.DataFrame(
        [
            (CODE, "oap_inappropriate_bed_days", k, ("≤ -6" if k == -6 else str(k) if k <= 0 else f"+{k}"),
             k == -1, 7 if k == -6 else 1, 0.0 if k == -1 else (4.0 * (k + 1) if k < -1 else -30.0),
             0.0 if k == -1 else (4.0 * (k + 1) - 9 if k < -1 else -44.0),
             0.0 if k == -1 else (4.0 * (k + 1) + 9 if k < -1 else -16.0), 12, 9, 0.012)
            for k in range(-6, 4)
        ],
        columns=[
            "collaborative_code", "metric_code", "event_time", "event_time_label", "is_reference", "months_in_bin",
            "estimate", "ci_lower", "ci_upper", "pre_periods", "comparator_count", "pre_trend_p_value",
        ],
    ).assign(p_value=0.5, treated_count=3)  # fmt: skip
    return {
        "fct_event_study": event_study,
        "dim_collaborative": collaborative,
        "dim_metric": metric,
        "dim_organisation": organisation,
        "dim_benefit": benefit,
        "fct_benefit_tracking": tracking,
        "fct_variation": variation,
        "fct_evaluation": evaluation,
        "fct_collaborative_metric_month": collaborative_metric_month,
    }


def make_serving_db(path: Path, only: set[str] | None = None) -> Path:
    con = duckdb.connect(str(path))
    try:
        for name, frame in _frames().items():
            if only is not None and name not in only:
                continue
            con.register("frame", frame)
            con.execute(f"create table {name} as select * from frame")
            con.unregister("frame")
    finally:
        con.close()
    return path


@pytest.fixture
def serving_db(tmp_path) -> Path:
    return make_serving_db(tmp_path / "serving.duckdb")


def _assert_clean(page: str) -> None:
    text = re.sub(r"<[^>]+>", " ", page)
    for pattern in (r"Traceback", r"\bError\b", r"\bnan\b", r"\bNaN\b", r"\bNone\b", r"\bNaT\b", r"\binf\b"):
        assert not re.search(pattern, text), f"{pattern!r} appears in the page"
    assert not re.search(r"\bnan\b|\bNone\b", page), "a missing value leaked into the markup"
    # Self-contained: no scripts, stylesheets, fonts or images from elsewhere.
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert "<img" not in page.lower()
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)


def test_report_content(serving_db):
    page = build_report(serving_db, CODE)
    _assert_clean(page)
    assert page.lstrip().startswith("<!DOCTYPE html>")
    assert "South London Mental Health and Community Partnership" in page
    assert "Mental health, learning disability and autism" in page
    assert "Lead provider" in page and "QKK, QWE" in page
    assert "Jan 2022 to Dec 2023" in page
    assert "Activity figures in this report are synthetic sample data." in page
    # The register: every benefit, with its RAG word (never colour alone) and the owner.
    for title in (TITLE_OAP, TITLE_LOS):
        assert title in page
    assert ">Green<" in page
    assert ">Grey<" in page
    assert "Director of Mental Health Programmes" in page
    assert "320 bed days (Dec 2023)" in page
    assert "No usable data" in page and "no usable data" in page
    # Making Data Count icons carry a <title> and a text label.
    assert "<title>Variation: special cause variation of improvement nature, lower values</title>" in page
    assert "<title>Assurance: hit and miss: may or may not meet the target</title>" in page
    # One SVG chart per benefit, one per variation panel, one forest plot per evaluated metric.
    assert page.count('class="chart"') == 2 + 2 + 1
    assert "Rebased: limits recalculated" in page and "Go-live" in page
    # Variation as learning: alphabetical, no ranks.
    assert "not a league table" in page
    oxleas, maudsley, st_georges = (
        page.index("Oxleas NHS Foundation Trust</td>"),
        page.index("South London and Maudsley NHS Foundation Trust</td>"),
        page.index("South West London and St George&#39;s Mental Health NHS Trust</td>"),
    )
    assert oxleas < maudsley < st_georges
    assert not re.search(r">\s*(Rank|Position in league)", page), "members must not be ranked"
    assert "Above the 99.8% limit" in page
    assert "coefficient of variation between members is 26.0%" in page
    # Evaluation: the plain-English sentence with a true minus sign.
    assert "The difference-in-differences estimate is −31 bed days a month (95% CI −45 to −17; p &lt; 0.001)" in page
    assert "against 9 comparator trusts" in page
    assert "did not differ detectably (p = 0.420)" in page
    assert "change in trend" in page
    # Event study: a failing pre-trend said in words, and the leads and lags in a table.
    assert (
        "The leads before go-live are not jointly zero (p = 0.012): the comparison trusts were on a different path "
        "before go-live, so treat the difference-in-differences and event-study effects with caution." in page
    )
    assert (
        "From go-live on, 4 of 4 monthly intervals exclude zero (no difference from the 9 comparison trusts)." in page
    )
    assert '<td>≤ -6</td><td class="num">−20</td>' in page and "reference (zero)" in page
    # Data quality: partial months of the bed-days series and the suppressed trust.
    assert "2 of the last 12 months are partial" in page
    assert "12 months suppressed (small numbers)" in page


def test_no_synthetic_note_when_the_caller_says_so(serving_db):
    page = build_report(serving_db, CODE, synthetic_note=None)
    assert "synthetic" not in page


def test_missing_tables_and_unknown_collaborative_never_fail(tmp_path):
    only_dims = make_serving_db(tmp_path / "dims.duckdb", only={"dim_collaborative", "dim_metric", "dim_benefit"})
    page = build_report(only_dims, CODE)
    _assert_clean(page)
    assert TITLE_OAP in page and TITLE_LOS in page
    assert page.count(">Grey<") >= 2
    assert "No evaluation estimates are available" in page
    assert "cannot be shown" in page
    assert "The serving database has no fct_benefit_tracking table." in page

    empty = build_report(only_dims, "NOPE")
    _assert_clean(empty)
    assert "The benefits register has no benefits for this collaborative." in empty


def test_write_all_reports(serving_db, tmp_path):
    written = write_all_reports(serving_db, tmp_path / "reports")
    names = sorted(path.name for path in written)
    assert names == ["benefits-report-SLP.html", "index.html"]  # WYAAT has no benefits in this register
    index = (tmp_path / "reports" / "index.html").read_text()
    assert 'href="benefits-report-SLP.html"' in index
    single = write_report(serving_db, CODE, tmp_path / "one" / "report.html")
    assert single.read_text().startswith("<!DOCTYPE html>")


def _chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={user_data}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_report_renders_in_chromium_to_png_and_pdf(serving_db, tmp_path):
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make chromium` installs it (Debian package chromium)"
    html = write_report(serving_db, CODE, tmp_path / "benefits-report.html")
    png, pdf = tmp_path / "benefits-report.png", tmp_path / "benefits-report.pdf"
    url = html.resolve().as_uri()
    shot = _chromium(f"--screenshot={png}", "--window-size=1280,4000", url, user_data=tmp_path / "profile-png")
    assert png.exists(), f"no screenshot: {shot.stderr[-2000:]}"
    printed = _chromium(f"--print-to-pdf={pdf}", "--no-pdf-header-footer", url, user_data=tmp_path / "profile-pdf")
    assert pdf.exists(), f"no PDF: {printed.stderr[-2000:]}"

    assert png.stat().st_size > 20_000
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", data))
    assert pages >= 2, f"the PDF has {pages} page(s)"

    ARTIFACTS.mkdir(exist_ok=True)
    for path in (html, png, pdf):
        shutil.copy(path, ARTIFACTS / path.name)


def test_pre_trend_sentence_says_pass_fail_and_untested():
    from orchestration.report import _pre_trend_sentence

    assert _pre_trend_sentence(0.0004, 12, 3).startswith("The leads before go-live are not jointly zero (p < 0.001)")
    passed = _pre_trend_sentence(0.43, 12, 3)
    assert passed.startswith("The leads before go-live are compatible with zero (p = 0.430)")
    assert "with 12 months before go-live and 3 member trusts" in passed
    assert "could not be tested" in _pre_trend_sentence(None, 2, 3)


def test_a_synthetic_control_sentence_names_its_donors_and_its_under_coverage():
    from orchestration.report import EvaluationBlock, _estimate_sentence

    block = EvaluationBlock("oap_inappropriate_bed_days", "Bed days", "bed days", "lower", [])
    row = {
        "method": "synthetic_control", "note": None, "label": "Synthetic control", "estimate": -65.0,
        "ci_lower": -89.0, "ci_upper": -41.0, "p_value": 0.143, "pre_periods": 12, "post_periods": 12,
        "comparator_count": 6, "estimate_text": "−65", "ci_text": "−89 to −41", "inference": "placebo_groups_in_space",
        "pre_trend_p_value": None,
    }  # fmt: skip
    sentence = _estimate_sentence(block, row)
    assert sentence.startswith("The synthetic-control estimate is −65 bed days a month (95% CI −89 to −41; p = 0.143)")
    assert "against a weighted mix of 6 donor trusts fitted before go-live" in sentence
    assert "87% for a nominal 95%" in sentence and "difference-in-differences, which is the headline" in sentence
