"""Over-dispersed funnel limits of fct_variation (issue 13) against FunnelPlotR's documented method.

FunnelPlotR (NHS-R community, Spiegelhalter 2005) for proportions ("PR"): y = asin √(O/n), s = 1 / (2 √n), target
asin √(Σ O / Σ n); z = (y − target) / s; z Winsorised at its 10th and 90th percentiles (R's quantile type 7);
φ = mean(z_w²); τ² = 0 when N φ < N − 1, else (N φ − (N − 1)) / (Σ w − Σ w² / Σ w) with w = 1 / s²; limits
sin²(target ± z √(s² + τ²)). `reference` below is that method written out; the first test works it by hand, the
second checks the served mart against it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest


def reference(numerators, denominators):
    """φ and τ² of FunnelPlotR's "PR" over-dispersion adjustment (od_adjustment.R), step by step."""
    o, n = np.asarray(numerators, float), np.asarray(denominators, float)
    target = math.asin(math.sqrt(o.sum() / n.sum()))
    s = 1 / (2 * np.sqrt(n))
    z = (np.arcsin(np.sqrt(o / n)) - target) / s
    lz, uz = np.quantile(z, 0.1), np.quantile(z, 0.9)  # numpy's default is R's type 7
    phi = float(np.mean(np.clip(z, lz, uz) ** 2))
    count = len(z)
    w = 1 / s**2
    tau2 = (
        0.0 if count * phi < count - 1 else max(0.0, (count * phi - (count - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    )
    return phi, tau2


def test_worked_example_by_hand():
    # Ten trusts of 400 patients each, 160, 170, …, 240 of 400 (40%, 42.5%, …, 60%; two at 50%): 2000 of 4000.
    numerators = [160, 170, 180, 190, 200, 200, 210, 220, 230, 240]
    denominators = [400] * 10
    # target = asin √0.5 = π/4 = 0.785398; s = 1 / (2 × 20) = 0.025 for every trust, w = 1 / s² = 1600.
    # z = 40 × (asin √p − π/4): 0.40 → asin √0.4 = 0.684719, z = −4.02716; 0.425 → 0.710114, z = −3.01137;
    # 0.45 → 0.735314, z = −2.00335; 0.475 → 0.760388, z = −1.00042; 0.5 → 0; and the mirror images above 50%.
    # 10th percentile (type 7): position 1 + 0.1 × 9 = 1.9, −4.02716 + 0.9 × (−3.01137 + 4.02716) = −3.11295;
    # 90th: +3.11295 (symmetric). Winsorised z²: 3.11295² = 9.69043 twice, 3.01137² = 9.06832 twice,
    # 2.00335² = 4.01340 twice, 1.00042² = 1.00083 twice, 0, 0: sum 47.54597, φ = 4.754597.
    # τ² = (10 × 4.754597 − 9) / (16000 − 10 × 1600² / 16000) = 38.54597 / 14400 = 0.00267680.
    phi, tau2 = reference(numerators, denominators)
    assert phi == pytest.approx(4.754597, abs=2e-6)
    assert tau2 == pytest.approx(0.00267680, rel=1e-5)
    # 99.8% limits for a trust of 400 around 50%: √(0.025² + 0.0026768) = 0.0574613, × 3.090232 = 0.177569:
    # sin²(π/4 − 0.177569) = sin²(0.607829) = 0.32614 and sin²(0.962967) = 0.67386. Unadjusted (τ² = 0):
    # π/4 ± 0.077256, 0.42305 to 0.57695, so the trusts at 40% and 60% were outside and are now inside.
    spread = 3.090232 * math.sqrt(0.025**2 + tau2)
    assert math.sin(math.pi / 4 - spread) ** 2 == pytest.approx(0.32614, abs=1e-5)
    assert math.sin(math.pi / 4 + spread) ** 2 == pytest.approx(0.67386, abs=1e-5)
    unadjusted = 3.090232 * 0.025
    assert math.sin(math.pi / 4 - unadjusted) ** 2 == pytest.approx(0.42305, abs=1e-5)
    # No over-dispersion: identical trusts give φ = 0 < (N − 1) / N, so τ² = 0.
    assert reference([200] * 10, denominators) == (0.0, 0.0)


def test_served_dispersion_and_limits_match_funnelplotr(serving):
    """For every RTT month, φ and τ² over all acute trusts and each member's 99.8% limits as FunnelPlotR gives them."""
    trusts = serving.execute(
        "select r.period_month, r.within_18_weeks, r.incomplete_pathways from fct_rtt_provider_month r "
        "join dim_organisation o on o.org_code = r.org_code "
        "where r.treatment_function_code = 'ALL' and o.org_type = 'acute' and r.incomplete_pathways > 0 "
        "order by 1"
    ).df()
    served = serving.execute(
        "select period_month, any_value(phi) phi, any_value(tau2) tau2, any_value(dispersion_trusts) trusts "
        "from fct_variation where metric_code = 'rtt_pct_within_18_weeks' and phi is not null group by 1 order by 1"
    ).df()
    assert len(served) > 12
    for row in served.itertuples():
        month = trusts[trusts["period_month"] == row.period_month]
        phi, tau2 = reference(month["within_18_weeks"], month["incomplete_pathways"])
        assert row.trusts == len(month)
        assert row.phi == pytest.approx(phi, rel=1e-9) and row.tau2 == pytest.approx(tau2, rel=1e-9, abs=1e-15)
    members = serving.execute(
        "select value, denominator, collaborative_value, tau2, lower_998, upper_998 from fct_variation "
        "where metric_code = 'rtt_pct_within_18_weeks' and upper_998 is not null"
    ).df()
    centre = np.arcsin(np.sqrt(members["collaborative_value"] / 100))
    spread = 3.090232 * np.sqrt(1 / (4 * members["denominator"]) + members["tau2"])
    assert np.allclose(members["upper_998"], 100 * np.sin(np.minimum(centre + spread, np.pi / 2)) ** 2)
    assert np.allclose(members["lower_998"], 100 * np.sin(np.maximum(centre - spread, 0)) ** 2)


def test_few_rtt_member_months_lie_outside_the_adjusted_998_limits(serving):
    adjusted, unadjusted = serving.execute(
        "select avg(case when outlier_flag in ('above_998', 'below_998') then 1.0 else 0 end), "
        "avg(case when outlier_flag_unadjusted in ('above_998', 'below_998') then 1.0 else 0 end) "
        "from fct_variation where metric_code = 'rtt_pct_within_18_weeks' and outlier_flag is not null"
    ).fetchone()
    assert adjusted < 0.05  # issue 13: 84% outside the binomial limits
    assert unadjusted > 0.5
