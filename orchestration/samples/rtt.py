"""Synthetic RTT waiting-times sample files in NHS England's "Full CSV data file" layout (SPEC §3.1).

All figures are synthetic: seeded random draws shaped to look like the monthly Referral to Treatment publication
(waiting lists in the tens of thousands per trust, a long tail of waits that peaks in 2021-2022 and falls after,
18-week performance around 55-75%, seasonal dips in August and December). The organisations, regions, ICBs and the
RBZ → RH8 merger come from ``seeds/reference``; the commissioners are sub-ICB location codes from a small table in
:mod:`orchestration.samples.common`. Nothing here describes real patients or real trust performance.

The layout (headers, bands, part types, period text, file names) is imported from
:mod:`orchestration.sources.rtt_layout` and never redefined here.

What a file holds, for every acute trust in ``organisations.csv`` open in the month:

* 2-4 commissioners per trust (sub-ICB locations of its own and neighbouring ICBs; four trusts also treat a few
  ``NONC`` non-English-commissioned patients in most months);
* ten detail treatment functions (``X01`` "Other" before April 2021, ``X02``/``X05`` from then; a trust offers a
  deterministic subset of the ``C_`` codes) plus the pre-summed ``C_999`` "Total" row;
* the five part types. ``C_999`` equals the sum of the detail rows column by column; ``Part_2A`` ≤ ``Part_2``
  band by band; ``Total`` = sum of bands and ``Total All`` = ``Total`` + unknown clock starts for 1A/1B;
  ``Total All`` = sum of bands for 2/2A; only ``Total All`` for 3. Zeros are written as the real file writes them
  (``0``, blank where it leaves cells blank), and a row only where Total All is above 0.

Randomness is keyed by ``(seed, "rtt", provider, month)`` (see :func:`orchestration.samples.common.rng_for`), so a
month never depends on which other months, sources or providers are generated. From its merger date a successor
carries its predecessors' volume, so the merged series (RBZ + RH8 before April 2022, RH8 after) is continuous.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from orchestration.samples.common import (
    COVID_ACTIVITY,
    DEFAULT_SEED,
    REFERENCE_DIR,
    SUB_ICB_LOCATIONS,
    SUB_ICB_PARENT,
    Organisation,
    csv_bytes,
    curve,
    icb,
    load_icbs,
    load_organisations,
    load_successions,
    month_start,
    months_since,
    rng_for,
    seasonal_activity,
    seasonal_backlog,
    stable_hash,
    sub_icb_name,
    sub_icb_parent,
    write_csv_file,
    write_zip,
)
from orchestration.sources.rtt_layout import (
    LAYOUTS,
    LONG_BAND_LAYOUT_FROM,
    NON_ENGLISH_COMMISSIONER,
    PART_TYPES,
    TOTAL_TREATMENT_FUNCTION,
    file_name,
    format_period,
    layout_for,
)

SOURCE = "rtt"

#: Months that NHS England re-published: the samples carry a ``-revised`` file beside the original.
REVISED_MONTHS: tuple[date, ...] = (date(2025, 11, 1),)
#: How many reference trusts' figures a revised file changes.
REVISED_PROVIDER_COUNT = 3

TOTAL_TREATMENT_FUNCTION_NAME = "Total"
#: Synthetic providers added by ``extra_providers`` (benchmarks) are coded ``RZ001``, ``RZ002``, ...
EXTRA_PROVIDER_PREFIX = "RZ"


@dataclass(frozen=True)
class _Specialty:
    code: str
    name: str
    list_share: float  # share of a trust's waiting list
    p18_shift: float  # added to the trust's 18-week performance
    long_wait: float  # multiplier on the share waiting over 52 weeks
    dta: float  # share of the waiting list with a decision to admit
    admitted: float  # admitted clock stops a month, per patient waiting
    non_admitted: float  # non-admitted clock stops a month, per patient waiting
    new_periods: float  # new clock starts a month, per patient waiting


_SPECIALTIES_FROM_2021_04: tuple[_Specialty, ...] = (
    _Specialty("C_100", "General Surgery", 0.09, -0.03, 1.1, 0.35, 0.050, 0.11, 0.19),
    _Specialty("C_101", "Urology", 0.05, -0.02, 1.0, 0.30, 0.050, 0.12, 0.20),
    _Specialty("C_110", "Trauma and Orthopaedic", 0.13, -0.07, 1.8, 0.35, 0.040, 0.10, 0.16),
    _Specialty("C_120", "Ear Nose and Throat", 0.07, -0.05, 1.5, 0.20, 0.030, 0.13, 0.18),
    _Specialty("C_130", "Ophthalmology", 0.11, -0.03, 1.0, 0.30, 0.045, 0.12, 0.19),
    _Specialty("C_300", "General Internal Medicine", 0.03, 0.08, 0.4, 0.05, 0.010, 0.22, 0.28),
    _Specialty("C_320", "Cardiology", 0.05, 0.04, 0.5, 0.12, 0.015, 0.18, 0.24),
    _Specialty("C_330", "Dermatology", 0.05, 0.02, 0.6, 0.06, 0.008, 0.20, 0.26),
    _Specialty("C_502", "Gynaecology", 0.08, -0.04, 1.4, 0.25, 0.030, 0.12, 0.19),
    _Specialty("X02", "Other - Medical Services", 0.16, 0.05, 0.5, 0.07, 0.012, 0.20, 0.26),
    _Specialty("X05", "Other - Surgical Services", 0.13, -0.02, 1.0, 0.30, 0.045, 0.12, 0.19),
)
#: Before April 2021 the two "Other" rows were one: ``X01`` "Other" (the union of X02 and X05).
_OTHER_BEFORE_2021_04 = _Specialty("X01", "Other", 0.0, 0.02, 0.7, 0.17, 0.026, 0.17, 0.23)
_SPECIALTIES_BEFORE_2021_04: tuple[_Specialty, ...] = _SPECIALTIES_FROM_2021_04[:-2] + (_OTHER_BEFORE_2021_04,)
_N_SPECIALTIES = len(_SPECIALTIES_FROM_2021_04)
_C_CODES = [i for i, s in enumerate(_SPECIALTIES_FROM_2021_04) if s.code.startswith("C_")]

#: Commissioners of each reference trust, main one first (the rest are neighbours). Trusts not listed (a trust added
#: to the seeds later, or a synthetic benchmark trust) get commissioners drawn from their ICB and region.
PROVIDER_COMMISSIONERS: dict[str, tuple[str, ...]] = {
    "RCF": ("36J", "42D", "15F"),
    "RAE": ("36J", "15F", "X2C4Y", "02T"),
    "RWY": ("X2C4Y", "02T", "15F"),
    "RCD": ("42D", "15F", "36J"),
    "RR8": ("15F", "03R", "36J", "42D"),
    "RXF": ("03R", "X2C4Y", "15F"),
    "RCB": ("42D", "02Y", "15F"),
    "RWA": ("03F", "02Y", "03K"),
    "RJL": ("03H", "03K", "02Y"),
    "RNA": ("D2P2L", "15E", "05Q"),
    "RXK": ("D2P2L", "15E"),
    "RL4": ("D2P2L", "05Q", "05V"),
    "RBK": ("D2P2L", "04Y", "15E"),
    "RTD": ("13T", "00L", "99C", "84H"),
    "RR7": ("13T", "84H", "00N"),
    "RTF": ("00L", "99C", "13T"),
    "RXP": ("84H", "16C", "13T"),
    "R0B": ("00P", "00N", "84H"),
    "RH8": ("15N", "11N", "11X"),
    "RBZ": ("15N", "11N"),
    "RK9": ("15N", "11N"),
    "RA9": ("15N", "11X"),
    "RTH": ("10Q", "14Y", "15A"),
    "RHM": ("D9Y0V", "10R", "11J"),
    "RTG": ("15M", "05D", "04V"),
    "RWE": ("04C", "04V", "03W"),
    "RGT": ("06H", "26A", "06K"),
    "RAL": ("93C", "06N", "W2U3Z", "A3A8R"),
}
#: Reference trusts that treat a few patients commissioned outside England (in most months, not all).
NON_ENGLISH_PROVIDERS = frozenset({"RTD", "RTF", "RK9", "RAL"})

# National shape over time, by month index (0 = January 2021); see common.curve.
_GROWTH = (
    (-24, 0.95),
    (-10, 0.95),
    (-8, 0.86),
    (-4, 0.93),
    (0, 1.0),
    (6, 1.12),
    (12, 1.30),
    (24, 1.53),
    (32, 1.65),
    (45, 1.63),
    (57, 1.57),
    (69, 1.55),
)
_P18_SHIFT = (
    (-24, 0.16),
    (-11, 0.16),
    (-8, -0.05),
    (-4, 0.0),
    (0, 0.0),
    (6, 0.04),
    (18, -0.02),
    (30, -0.05),
    (48, -0.04),
    (69, -0.01),
)
_OVER_52 = (
    (-24, 0.0004),
    (-10, 0.0005),
    (-6, 0.012),
    (-2, 0.04),
    (0, 0.062),
    (2, 0.075),
    (6, 0.06),
    (12, 0.05),
    (24, 0.048),
    (36, 0.04),
    (48, 0.03),
    (60, 0.022),
    (69, 0.02),
)
_RATIO_65_52 = ((0, 0.45), (12, 0.5), (24, 0.35), (36, 0.3), (48, 0.25))
_RATIO_78_65 = ((0, 0.45), (12, 0.55), (18, 0.45), (27, 0.2), (36, 0.15))
_OVER_104 = ((-12, 0.00001), (0, 0.0004), (6, 0.0012), (12, 0.0025), (18, 0.0005), (24, 0.00015), (36, 0.00003))

#: Week knots of the piecewise-exponential survival curve behind every wait distribution.
_KNOTS = np.array([0.0, 18.0, 52.0, 65.0, 78.0, 104.0])
_N_WEEK_BANDS = 105  # 0-1 ... 103-104 weeks, then over 104


def _knot_weights() -> np.ndarray:
    """(105, 6) weights that linearly interpolate log-survival at knots to integer weeks 0…104."""
    weeks = np.arange(_N_WEEK_BANDS, dtype=float)
    weights = np.zeros((_N_WEEK_BANDS, len(_KNOTS)))
    for w, week in enumerate(weeks):
        k = min(int(np.searchsorted(_KNOTS, week, side="right")) - 1, len(_KNOTS) - 2)
        frac = (week - _KNOTS[k]) / (_KNOTS[k + 1] - _KNOTS[k])
        weights[w, k], weights[w, k + 1] = 1.0 - frac, frac
    return weights


_KNOT_WEIGHTS = _knot_weights()


# --------------------------------------------------------------------------------------------------------------
# Providers and their (month-independent) profiles
# --------------------------------------------------------------------------------------------------------------


def _acute_trusts(reference_dir: Path) -> dict[str, Organisation]:
    return {code: org for code, org in load_organisations(reference_dir).items() if org.org_type == "acute"}


def _extra_provider(i: int, reference_dir: Path) -> Organisation:
    icbs = list(load_icbs(reference_dir).values())
    home = icbs[(i - 1) % len(icbs)]
    code = f"{EXTRA_PROVIDER_PREFIX}{i:03d}"
    return Organisation(code, f"{code} Benchmark Hospitals NHS Trust", "acute", home.code, home.region_code, None, None)


def _universe(extra_providers: int, reference_dir: Path) -> dict[str, Organisation]:
    trusts = dict(_acute_trusts(reference_dir))
    for i in range(1, extra_providers + 1):
        extra = _extra_provider(i, reference_dir)
        trusts[extra.code] = extra
    return trusts


@dataclass(frozen=True)
class _Profile:
    code: str
    size: float  # waiting list in January 2021
    commissioners: tuple[str, ...]
    commissioner_shares: np.ndarray
    specialty_shares: np.ndarray  # over _SPECIALTIES_FROM_2021_04; zero where not offered
    p18: float
    long_wait: float
    dta: float
    trend: float  # log change a year
    wobble: tuple[float, ...]  # two slow sinusoids: amplitude, period (months), phase
    unknown_rate: float  # unknown clock starts per completed-pathway row
    non_english: bool
    non_english_specialties: tuple[int, ...]


def _default_commissioners(org: Organisation, rng: np.random.Generator) -> tuple[str, ...]:
    home = list(SUB_ICB_LOCATIONS.get(org.icb_code, ()))
    neighbours = [
        loc
        for icb_code, locs in SUB_ICB_LOCATIONS.items()
        if icb_code != org.icb_code and icb(icb_code).region_code == org.region_code
        for loc in locs
    ]
    rng.shuffle(home)
    rng.shuffle(neighbours)
    wanted = int(rng.integers(2, 5))
    chosen = home[: int(rng.integers(1, 3))]
    chosen += [loc for loc in neighbours if loc not in chosen][: wanted - len(chosen)]
    everywhere = sorted(SUB_ICB_PARENT)
    while len(chosen) < 2:
        candidate = everywhere[int(rng.integers(len(everywhere)))]
        if candidate not in chosen:
            chosen.append(candidate)
    return tuple(chosen)


def _national_commissioners(org: Organisation, rng: np.random.Generator) -> tuple[str, ...]:
    """A synthetic benchmark trust's commissioners: two or three local ones, then a tail of distant ones.

    In the national files a provider reports a row block for every sub-ICB location that referred even a few
    patients, about seven on average (185,000 rows a month from about 480 providers); the reference trusts keep
    their hand-picked few, so the bundled samples stay small and unchanged.
    """
    local = list(_default_commissioners(org, rng))[: int(rng.integers(2, 4))]
    everywhere = [loc for loc in sorted(SUB_ICB_PARENT) if loc not in local]
    tail = rng.choice(len(everywhere), size=int(rng.integers(3, 9)), replace=False)
    return tuple(local + [everywhere[i] for i in sorted(tail)])


@lru_cache(maxsize=4096)
def _profile(seed: int, org: Organisation) -> _Profile:
    rng = rng_for(seed, SOURCE, org.code, "profile")
    size = float(np.clip(rng.lognormal(np.log(42_000), 0.4), 12_000, 140_000))
    if "teaching" in org.name.lower() or "university" in org.name.lower():
        size *= 1.35
    commissioners = PROVIDER_COMMISSIONERS.get(org.code) or (
        _national_commissioners(org, rng)
        if org.code.startswith(EXTRA_PROVIDER_PREFIX)
        else _default_commissioners(org, rng)
    )
    main = rng.uniform(0.6, 0.85)
    others = np.sort(rng.dirichlet(np.full(len(commissioners) - 1, 2.0)))[::-1] * (1 - main)
    shares = np.array([s.list_share for s in _SPECIALTIES_FROM_2021_04]) * rng.lognormal(0, 0.25, _N_SPECIALTIES)
    dropped = rng.choice(_C_CODES, size=int(rng.integers(0, 4)), replace=False)
    shares[dropped] = 0.0
    wobble = (
        rng.uniform(0.01, 0.04),
        rng.uniform(14, 22),
        rng.uniform(0, 2 * np.pi),
        rng.uniform(0.005, 0.02),
        rng.uniform(26, 40),
        rng.uniform(0, 2 * np.pi),
    )
    unknown_rate = 0.0 if rng.random() < 0.5 else rng.uniform(0.05, 0.6)
    non_english = org.code in NON_ENGLISH_PROVIDERS if org.code in PROVIDER_COMMISSIONERS else rng.random() < 0.15
    offered = np.flatnonzero(shares)
    non_english_specialties = tuple(sorted(rng.choice(offered, size=int(rng.integers(2, 4)), replace=False)))
    return _Profile(
        code=org.code,
        size=size,
        commissioners=commissioners,
        commissioner_shares=np.concatenate([[main], others]),
        specialty_shares=shares / shares.sum(),
        p18=rng.uniform(0.60, 0.72),
        long_wait=rng.lognormal(0, 0.35),
        dta=rng.lognormal(0, 0.15),
        trend=rng.normal(0, 0.025),
        wobble=wobble,
        unknown_rate=unknown_rate,
        non_english=non_english,
        non_english_specialties=tuple(int(i) for i in non_english_specialties),
    )


def _level(profile: _Profile, month: date) -> float:
    """Expected waiting list of the trust at the end of ``month`` (before noise)."""
    t = months_since(month)
    a1, p1, f1, a2, p2, f2 = profile.wobble
    wobble = 1 + a1 * np.sin(2 * np.pi * t / p1 + f1) + a2 * np.sin(2 * np.pi * t / p2 + f2)
    return profile.size * curve(t, _GROWTH) * float(np.exp(profile.trend * t / 12)) * wobble * seasonal_backlog(month)


def _constituents(code: str, month: date, reference_dir: Path) -> list[str]:
    """``code`` and every predecessor whose activity it carries in ``month`` (mergers effective by then)."""
    found, queue = [code], [code]
    while queue:
        current = queue.pop()
        for succession in load_successions(reference_dir):
            if (
                succession.successor == current
                and succession.effective_date <= month
                and succession.predecessor not in found
            ):
                found.append(succession.predecessor)
                queue.append(succession.predecessor)
    return found


def _revised_providers(month: date, seed: int, reference: Iterable[str], extra: Iterable[str]) -> frozenset[str]:
    """Providers whose figures a revision changes: three reference trusts, and about one in ten extra providers
    (chosen apart, so that adding extra providers never changes which reference trusts are revised)."""
    ranked = sorted(reference, key=lambda code: (stable_hash(seed, SOURCE, "revised", month, code), code))
    revised_extra = [code for code in extra if stable_hash(seed, SOURCE, "revised", month, code) % 10 == 0]
    return frozenset(ranked[:REVISED_PROVIDER_COUNT] + revised_extra)


# --------------------------------------------------------------------------------------------------------------
# Wait distributions
# --------------------------------------------------------------------------------------------------------------


def _wait_probabilities(p18: np.ndarray, over52: np.ndarray, t: int, long_wait: np.ndarray) -> np.ndarray:
    """(rows, 105) probabilities of waiting 0-1, 1-2, … 103-104 and over 104 weeks.

    Survival is piecewise exponential through: 1 at 0 weeks, ``1 - p18`` at 18, ``over52`` at 52, then the
    national ratios for 65 and 78 weeks and the (tiny) share over 104 weeks, each scaled by ``long_wait``.
    """
    s18 = 1.0 - p18
    s52 = np.minimum(over52, 0.6 * s18)
    s65 = s52 * curve(t, _RATIO_65_52)
    s78 = s65 * curve(t, _RATIO_78_65)
    s104 = np.minimum(curve(t, _OVER_104) * long_wait, 0.6 * s78)
    log_knots = np.log(np.column_stack([np.ones_like(s18), s18, s52, s65, s78, s104]))
    survival = np.exp(log_knots @ _KNOT_WEIGHTS.T)  # S(0) … S(104)
    probabilities = np.empty_like(survival)
    probabilities[:, :-1] = survival[:, :-1] - survival[:, 1:]
    probabilities[:, -1] = survival[:, -1]
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def _up_down(rng: np.random.Generator, counts: np.ndarray, removable: np.ndarray | None = None) -> np.ndarray:
    """A small revision: about 1% of ``removable`` (default all) taken off, about 2% of ``counts`` added."""
    removable = counts if removable is None else removable
    return counts - rng.binomial(removable, 0.01) + rng.binomial(counts, 0.02)


# --------------------------------------------------------------------------------------------------------------
# One provider-month
# --------------------------------------------------------------------------------------------------------------


def _commissioner_ids(code: str, month: date, reference_dir: Path) -> tuple[str, str, str, str]:
    """(parent code, parent name, org code, org name) of a commissioner row in ``month``: from April 2026 the
    parent is the merged ICB that took the location over."""
    if code == NON_ENGLISH_COMMISSIONER:
        # as NHS England writes it (April 2026): no parent and no names, only the code
        return ("", "", code, "")
    parent = icb(sub_icb_parent(code, month, reference_dir), reference_dir)
    return parent.code, parent.name.upper(), code, sub_icb_name(code, month, reference_dir)


def _provider_month(
    org: Organisation,
    month: date,
    seed: int,
    revise: bool,
    universe: dict[str, Organisation],
    reference_dir: Path,
) -> tuple[list[tuple[str, ...]], np.ndarray]:
    """ID cells and counts of every row one provider contributes to ``month``."""
    t = months_since(month)
    long_layout = month >= LONG_BAND_LAYOUT_FROM
    specialties = _SPECIALTIES_FROM_2021_04 if long_layout else _SPECIALTIES_BEFORE_2021_04
    rng = rng_for(seed, SOURCE, org.code, month)

    # Expected waiting list by commissioner × specialty, summed over the trusts this one carries.
    profiles = [_profile(seed, universe[c]) for c in _constituents(org.code, month, reference_dir) if c in universe]
    commissioners: list[str] = []
    for profile in profiles:
        commissioners += [c for c in profile.commissioners if c not in commissioners]
    non_english = rng.random() < 0.75 and any(p.non_english for p in profiles)
    if non_english:
        commissioners.append(NON_ENGLISH_COMMISSIONER)
    expected = np.zeros((len(commissioners), _N_SPECIALTIES))
    for profile in profiles:
        level = _level(profile, month)
        rows = [commissioners.index(c) for c in profile.commissioners]
        expected[rows] += level * np.outer(profile.commissioner_shares, profile.specialty_shares)
        if non_english and profile.non_english:
            expected[-1, list(profile.non_english_specialties)] += level * 0.001 / len(profile.non_english_specialties)
    if not long_layout:  # X02 + X05 → X01
        expected = np.column_stack([expected[:, :-2], expected[:, -2:].sum(axis=1)])

    comm_index, spec_index = np.nonzero(expected > 0)
    mu = expected[comm_index, spec_index]
    n = len(mu)
    main = profiles[0]
    p18_shift = np.array([s.p18_shift for s in specialties])[spec_index]
    long_mult = np.array([s.long_wait for s in specialties])[spec_index] * main.long_wait
    dta = np.array([s.dta for s in specialties])[spec_index] * main.dta
    ratios = np.array([(s.admitted, s.non_admitted, s.new_periods) for s in specialties])[spec_index]
    activity = seasonal_activity(month) * curve(t, COVID_ACTIVITY)

    p18 = np.clip(main.p18 + curve(t, _P18_SHIFT) + p18_shift + rng.normal(0, 0.01, n), 0.45, 0.9)
    over52 = curve(t, _OVER_52) * long_mult * rng.lognormal(0, 0.1, n)
    waiting_p = _wait_probabilities(p18, over52, t, long_mult)
    waiting = rng.multinomial(rng.poisson(mu * rng.lognormal(0, 0.02, n)), waiting_p)
    week_ramp = 0.7 + 0.8 * np.minimum(np.arange(_N_WEEK_BANDS), 52) / 52
    with_dta = rng.binomial(waiting, np.clip(dta[:, None] * week_ramp[None, :], 0.0, 0.95))
    admitted_p = _wait_probabilities(np.clip(p18 - 0.12, 0.3, 0.9), over52 * 1.2, t, long_mult)
    admitted = rng.multinomial(rng.poisson(mu * ratios[:, 0] * activity * rng.lognormal(0, 0.05, n)), admitted_p)
    non_admitted_p = _wait_probabilities(np.clip(p18 + 0.17, 0.5, 0.96), over52 * 0.35, t, long_mult)
    non_admitted = rng.multinomial(
        rng.poisson(mu * ratios[:, 1] * activity * rng.lognormal(0, 0.05, n)), non_admitted_p
    )
    new_periods = rng.poisson(mu * ratios[:, 2] * activity * rng.lognormal(0, 0.04, n))
    unknown_admitted = rng.poisson(main.unknown_rate, n)
    unknown_non_admitted = rng.poisson(main.unknown_rate, n)

    if revise:
        revision = rng_for(seed, SOURCE, org.code, month, "revised")
        admitted = _up_down(revision, admitted)
        non_admitted = _up_down(revision, non_admitted)
        waiting = _up_down(revision, waiting, removable=waiting - with_dta)
        new_periods = _up_down(revision, new_periods)

    n_bands = layout_for(month)
    width = n_bands + 3

    def fold(bands: np.ndarray) -> np.ndarray:
        return bands if n_bands == _N_WEEK_BANDS else np.column_stack([bands[:, :52], bands[:, 52:].sum(axis=1)])

    def part(bands: np.ndarray | None, unknown: np.ndarray | None, total_all: np.ndarray | None = None) -> np.ndarray:
        values = np.zeros((n, width), dtype=np.int64)
        if bands is not None:
            values[:, :n_bands] = fold(bands)
            band_sum = values[:, :n_bands].sum(axis=1)
        if unknown is not None:  # Part_1A / 1B: Total, unknown clock starts, Total All
            values[:, n_bands] = band_sum
            values[:, n_bands + 1] = unknown
            values[:, n_bands + 2] = band_sum + unknown
        else:
            values[:, n_bands + 2] = band_sum if total_all is None else total_all
        return values

    parts = {
        "Part_1A": part(admitted, unknown_admitted),
        "Part_1B": part(non_admitted, unknown_non_admitted),
        "Part_2": part(waiting, None),
        "Part_2A": part(with_dta, None),
        "Part_3": part(None, None, new_periods),
    }

    period = format_period(month) if long_layout else format_period(month).upper()
    # Provider Parent Org Code is the trust's ICB in that month, as in the real files (April 2026: RTH → S0E4D,
    # RPG → QKK): here the ICB of its main (first) commissioner, so the April 2026 mergers show up as they did.
    host = next((code for code in commissioners if code in SUB_ICB_PARENT), None)
    parent = icb(sub_icb_parent(host, month, reference_dir) if host else org.icb_code, reference_dir)
    provider_ids = (
        period,
        parent.code,
        parent.name.upper(),
        org.code,
        org.name.upper(),
    )
    commissioner_ids = [_commissioner_ids(c, month, reference_dir) for c in commissioners]
    order = sorted(
        range(len(commissioners)), key=lambda i: (commissioners[i] == NON_ENGLISH_COMMISSIONER, commissioner_ids[i])
    )
    ids: list[tuple[str, ...]] = []
    blocks: list[np.ndarray] = []
    for c in order:
        commissioner = commissioner_ids[c]
        rows = np.flatnonzero(comm_index == c)  # specialty order, as np.nonzero is row-major
        for part_type, description in PART_TYPES.items():
            detail = parts[part_type][rows]
            blocks += [detail, detail.sum(axis=0, keepdims=True)]
            prefix = provider_ids + commissioner + (part_type, description)
            ids += [prefix + (specialties[s].code, specialties[s].name) for s in spec_index[rows]]
            ids.append(prefix + (TOTAL_TREATMENT_FUNCTION, TOTAL_TREATMENT_FUNCTION_NAME))
    return ids, (np.vstack(blocks) if blocks else np.zeros((0, width), dtype=np.int64))


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------


def _month_table(
    month: date,
    *,
    seed: int,
    revised: bool,
    providers: Iterable[str] | None,
    extra_providers: int,
    reference_dir: Path,
) -> tuple[tuple[str, ...], list[tuple[str, ...]], np.ndarray]:
    month = month_start(month)
    if extra_providers < 0:
        raise ValueError("extra_providers must be zero or more")
    universe = _universe(extra_providers, Path(reference_dir))
    if providers is not None:
        providers = [providers] if isinstance(providers, str) else list(providers)
        unknown = sorted(set(providers) - set(universe))
        if unknown:
            raise ValueError(f"not acute trusts in organisations.csv (or extra providers): {', '.join(unknown)}")
    open_codes = [code for code, org in universe.items() if org.is_open(month)]
    chosen = [code for code in open_codes if providers is None or code in providers]
    if revised:
        reference = _acute_trusts(Path(reference_dir))
        revise = _revised_providers(
            month,
            seed,
            [code for code in open_codes if code in reference],
            [code for code in open_codes if code not in reference],
        )
    else:
        revise = frozenset()
    chosen.sort(key=lambda code: (universe[code].region_code, code))

    header = LAYOUTS[layout_for(month)]
    ids: list[tuple[str, ...]] = []
    blocks: list[np.ndarray] = []
    for code in chosen:
        provider_ids, values = _provider_month(universe[code], month, seed, code in revise, universe, reference_dir)
        ids += provider_ids
        blocks.append(values)
    values = np.vstack(blocks) if blocks else np.zeros((0, layout_for(month) + 3), dtype=np.int64)
    return header, ids, values


def generate_rtt_month(
    month: date,
    *,
    seed: int = DEFAULT_SEED,
    revised: bool = False,
    providers: Iterable[str] | None = None,
    extra_providers: int = 0,
    reference_dir: Path = REFERENCE_DIR,
) -> pd.DataFrame:
    """One month of synthetic RTT data as a DataFrame whose columns are exactly the file's header.

    ``month``: any day of the month. ``revised``: the re-published figures (a few providers changed slightly).
    ``providers``: restrict to these provider codes (acute trusts of ``organisations.csv``, or ``RZ…`` extras);
    codes not open in ``month`` are skipped, so RBZ gives no rows from April 2022. ``extra_providers``: add that
    many synthetic trusts ``RZ001``… (for national-scale benchmarks); they never change the reference trusts' rows.

    ID columns hold the cell text as written. Count columns are ``int64`` where **0 is a blank cell** in the file
    (``Total`` and unknown clock starts of Parts 2/2A/3 and the bands of Part 3 are always 0, i.e. blank).
    """
    header, ids, values = _month_table(
        month,
        seed=seed,
        revised=revised,
        providers=providers,
        extra_providers=extra_providers,
        reference_dir=reference_dir,
    )
    n_ids = len(header) - values.shape[1]
    frame = pd.DataFrame(ids, columns=list(header[:n_ids]), dtype=object)
    counts = pd.DataFrame(values, columns=list(header[n_ids:]))
    return pd.concat([frame, counts], axis=1)


_CELL_TEXT_LIMIT = 1 << 16


@lru_cache(maxsize=1)
def _small_int_text() -> np.ndarray:
    """Cell text of 0 … 65535 (0 → blank), to turn counts into text faster than ``astype(str)``."""
    return np.array([""] + [str(i) for i in range(1, _CELL_TEXT_LIMIT)], dtype=object)


def _cell_text(values: np.ndarray, blank: np.ndarray | None = None) -> list[list[str]]:
    """Counts → cell text row by row: decimal digits, ``0`` for none, and a blank cell where ``blank`` says so
    (a cell the layout leaves empty, or a zero its provider writes as nothing)."""
    if values.size and values.min() < 0:
        raise ValueError("negative count")
    cells = _small_int_text()[np.minimum(values, _CELL_TEXT_LIMIT - 1)]
    for i, j in zip(*np.nonzero(values >= _CELL_TEXT_LIMIT), strict=True):
        cells[i, j] = str(int(values[i, j]))
    zero = values == 0
    cells[zero] = "0"
    if blank is not None:
        cells[zero & blank] = ""
    return cells.tolist()


def _blank_cells(ids: list[tuple[str, ...]], width: int) -> np.ndarray:
    """Which zero cells NHS England's file leaves blank (checked on the April 2026 extract): every cell of Part_3
    but Total All; Total and unknown clock starts of Part_2 and Part_2A; and, for about one provider in six, every
    zero of its rows (most providers write ``0``)."""
    parts = np.array([cells[9] for cells in ids], dtype=object)
    providers = [cells[3] for cells in ids]
    blank_writers = {code: stable_hash(SOURCE, "writes zeros blank", code) % 6 == 0 for code in set(providers)}
    blank = np.zeros((len(ids), width), dtype=bool)
    blank[parts == "Part_3", :-1] = True
    blank[np.isin(parts, ["Part_2", "Part_2A"]), -3:-1] = True
    blank[np.fromiter((blank_writers[code] for code in providers), dtype=bool, count=len(providers))] = True
    return blank


def rtt_month_csv(
    month: date,
    *,
    seed: int = DEFAULT_SEED,
    revised: bool = False,
    providers: Iterable[str] | None = None,
    extra_providers: int = 0,
    reference_dir: Path = REFERENCE_DIR,
) -> bytes:
    """The month's CSV file exactly as NHS England writes it: UTF-8, header first, ``\\r\\n`` line endings, a row
    only where Total All is above 0, zeros written ``0`` except where the real file leaves them blank."""
    header, ids, values = _month_table(
        month,
        seed=seed,
        revised=revised,
        providers=providers,
        extra_providers=extra_providers,
        reference_dir=reference_dir,
    )
    published = np.flatnonzero(values[:, -1] > 0) if len(values) else np.zeros(0, dtype=np.int64)
    ids = [ids[i] for i in published]
    values = values[published]
    cells = _cell_text(values, _blank_cells(ids, values.shape[1]))
    return csv_bytes(header, (row_ids + tuple(row) for row_ids, row in zip(ids, cells, strict=True)))


def write_rtt_month(
    month: date,
    out_dir: Path,
    *,
    seed: int = DEFAULT_SEED,
    revised: bool = False,
    providers: Iterable[str] | None = None,
    extra_providers: int = 0,
    reference_dir: Path = REFERENCE_DIR,
    compress: bool = True,
) -> Path:
    """Write ``out_dir/<stem>.zip`` holding ``<stem>.csv`` (``file_name(month, revised)``); return the zip's path.

    ``compress=False`` writes ``out_dir/<stem>.csv`` itself (the benchmark's plain files)."""
    member = file_name(month_start(month), revised)
    data = rtt_month_csv(
        month,
        seed=seed,
        revised=revised,
        providers=providers,
        extra_providers=extra_providers,
        reference_dir=reference_dir,
    )
    if not compress:
        return write_csv_file(Path(out_dir) / member, data)
    return write_zip(Path(out_dir) / (member.removesuffix(".csv") + ".zip"), member, data)
