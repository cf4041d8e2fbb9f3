"""Synthetic out-of-area placements (OAP) sample files in the MHSDS monthly statistics long layout (SPEC §3.2).

All figures are synthetic: seeded random draws shaped to look like NHS England's monthly "Out of Area Placements
in Mental Health Services" statistics. Only the trusts (every ``mental_health`` organisation in
``seeds/reference/organisations.csv``, by ODS code and name) are real; the numbers describe no real patients.

What a monthly file holds (header :data:`orchestration.sources.oap.HEADER`, dates ``YYYY-MM-DD``):

* three periods, all ending on the month's last day and told apart only by REPORTING_PERIOD_START: the month
  (START = first of the month), the rolling quarter (START two months earlier) and the rolling 12 months (START
  eleven months earlier). Flows (OAP01 started, OAP02 bed days, OAP04 ended) are sums over the period's months;
  OAP03 (active at the end of the period) is the month's value in every period;
* breakdowns ``England`` (PRIMARY_LEVEL ``England``), ``England; IMD Decile`` (PRIMARY_LEVEL ``England``,
  SECONDARY_LEVEL ``1`` … ``10``) and ``Sending Provider`` (PRIMARY_LEVEL = ODS code of every mental health trust
  in the reference open in the month, description = its name in upper case); SECONDARY_LEVEL ``NONE`` where unused;
* measures OAP01–OAP04 and their adult-acute variants OAP01a–OAP04a (:data:`MEASURE_NAMES`);
* rows ordered by period (month, quarter, 12 months), then England, the IMD deciles, the providers by code, then
  measure.

The England rows count every sending provider in the country: the reference trusts plus a synthetic "rest of
England" (:data:`REST_OF_ENGLAND_BED_DAYS` bed days a month at the 2021 level, about 22,000 in all, the order of
the national figure), so England is well above the sum of the reference trusts. The IMD deciles split England's
counts (more placements in more deprived deciles; about 3% have no known decile and are in no decile row, so the
deciles add up to a little less than England).

Disclosure control as published, applied to every cell independently (England, decile and provider rows, and
every period): a count below 5 (including 0) is ``*``; any other count is rounded to the nearest 5 (halves up).
Small trusts (``TAD``, ``RW4``, ``RWK``, ``RNU``) are therefore often ``*``, especially for placements.

A planted effect for evaluation (:data:`PLANTED_EFFECTS`): SLP's members' inappropriate bed days (OAP02/OAP02a,
and with them OAP03/OAP03a, the placements active at month end) fall 30% after SLP's go-live (April 2022),
ramping 10%, 20%, 30% over its first three months; placements started and ended are unchanged (placements get
shorter). NENCMH (RX4, RX3) has no effect (:data:`NO_EFFECT_COLLABORATIVES`): a negative control.

STATUS is ``Final`` except in the latest month written, which is ``Provisional``: its own month's figures are
lower by up to 12% per trust (late submissions), as provisional data are. File names (chosen here; NHS England's
own names vary by year): ``MHSDS_OAPs_2024-06_Final.csv``, ``MHSDS_OAPs_2026-09_Provisional.csv``
(:func:`orchestration.sources.oap.file_name`), plain CSV, UTF-8, ``\\r\\n`` line endings.

Randomness is keyed by ``(seed, "oap", organisation, month)`` (:func:`~orchestration.samples.common.rng_for`), so
the RTT samples never change and any month can be generated alone.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from orchestration.samples.common import (
    DEFAULT_FIRST_MONTH,
    DEFAULT_LAST_MONTH,
    DEFAULT_SEED,
    REFERENCE_DIR,
    Organisation,
    add_months,
    csv_bytes,
    curve,
    load_organisations,
    month_end,
    month_range,
    month_start,
    months_since,
    rng_for,
)
from orchestration.sources.oap import COUNT_MEASURES, HEADER, NOT_USED, SUPPRESSED, file_name

SOURCE = "oap"

MEASURE_NAMES: dict[str, str] = {
    "OAP01": "Number of new inappropriate out of area placements started in the period",
    "OAP01a": "Number of new inappropriate out of area placements started in the period - adult acute beds",
    "OAP02": "Number of inappropriate out of area bed days in the period",
    "OAP02a": "Number of inappropriate out of area bed days in the period - adult acute beds",
    "OAP03": "Number of inappropriate out of area placements active at the end of the period",
    "OAP03a": "Number of inappropriate out of area placements active at the end of the period - adult acute beds",
    "OAP04": "Number of inappropriate out of area placements ended in the period",
    "OAP04a": "Number of inappropriate out of area placements ended in the period - adult acute beds",
}
MEASURES: tuple[str, ...] = COUNT_MEASURES  # OAP01, OAP01a, OAP02, OAP02a, OAP03, OAP03a, OAP04, OAP04a
_STARTED, _BED_DAYS, _ACTIVE, _ENDED = 0, 2, 4, 6  # index of each total; its adult-acute variant follows it
_FLOWS = np.array([True, True, True, True, False, False, True, True])  # summed over a period; OAP03 is a stock

ENGLAND = "England"
SENDING_PROVIDER = "Sending Provider"
IMD_BREAKDOWN = "England; IMD Decile"
IMD_DECILES: dict[str, str] = {
    str(d): f"{d:02d} {'Most' if d == 1 else 'Least' if d == 10 else 'More' if d <= 5 else 'Less'} deprived"
    for d in range(1, 11)
}
#: Relative placements per decile (1 = most deprived) and, last, the share with no known decile.
_IMD_WEIGHTS = np.array([1.45 - 0.09 * d for d in range(10)] + [0.32])

#: Typical inappropriate out-of-area bed days a month (2021 level) of each reference trust: tens to hundreds.
#: Trusts added to the reference later get a seeded draw in the same range.
BASE_BED_DAYS: dict[str, float] = {
    "RPG": 170.0,
    "RV5": 420.0,
    "RQY": 140.0,
    "RX4": 260.0,
    "RX3": 310.0,
    "RXG": 95.0,
    "TAD": 28.0,
    "RGD": 150.0,
    "TAJ": 120.0,
    "RNU": 55.0,
    "RXT": 380.0,
    "RWK": 40.0,
    "RMY": 240.0,
    "RW4": 22.0,
}
#: Bed days a month of every other sending provider in England together (2021 level).
REST_OF_ENGLAND_BED_DAYS = 19_500.0
REST_OF_ENGLAND = "REST_OF_ENGLAND"  # the RNG key of the synthetic rest of England (never published as a row)

#: National shape (month index from January 2021 → level): a rise to 2022/23, then the push to end inappropriate
#: out-of-area placements brings it down.
_TREND = ((0, 1.0), (15, 1.12), (27, 1.15), (42, 0.95), (69, 0.78))
#: Winter pressure on beds: more placements from November to March.
_SEASON: dict[int, float] = {
    1: 1.10,
    2: 1.07,
    3: 1.04,
    4: 0.99,
    5: 0.96,
    6: 0.95,
    7: 0.95,
    8: 0.94,
    9: 0.97,
    10: 1.00,
    11: 1.03,
    12: 1.05,
}


@dataclass(frozen=True)
class PlantedEffect:
    """A known effect planted in the samples, for checking the evaluation (SPEC §7) recovers it.

    From ``go_live`` the members' ``measures`` are multiplied by ``1 + relative_change × min(k + 1, ramp_months) /
    ramp_months`` in month ``k`` after go-live (k = 0 in the go-live month), so the full change holds from month
    ``ramp_months − 1`` on. Other measures of the members, and every other trust, are untouched.
    """

    collaborative: str
    members: tuple[str, ...]
    go_live: date
    measures: tuple[str, ...]
    relative_change: float
    ramp_months: int

    def multiplier(self, org_code: str, month: date) -> float:
        k = months_since(month_start(month), self.go_live)
        if org_code not in self.members or k < 0:
            return 1.0
        return 1.0 + self.relative_change * min(k + 1, self.ramp_months) / self.ramp_months


#: SLP (seeds/reference/collaboratives.csv: go-live 2022-04-01; members RV5, RPG, RQY): bed days −30% over 3 months.
#: OAP03/OAP03a (active at month end, i.e. occupancy) follow the bed days; OAP01/OAP04 do not change.
PLANTED_EFFECTS: tuple[PlantedEffect, ...] = (
    PlantedEffect(
        collaborative="SLP",
        members=("RV5", "RPG", "RQY"),
        go_live=date(2022, 4, 1),
        measures=("OAP02", "OAP02a", "OAP03", "OAP03a"),
        relative_change=-0.30,
        ramp_months=3,
    ),
)
#: Collaboratives with no planted effect on OAP figures (negative controls): code → members.
NO_EFFECT_COLLABORATIVES: dict[str, tuple[str, ...]] = {"NENCMH": ("RX4", "RX3")}


# --------------------------------------------------------------------------------------------------------------
# Latent monthly counts


@dataclass(frozen=True)
class _Profile:
    level: float  # bed days a month at the 2021 level
    stay: float  # mean days an inappropriate placement lasts
    adult_acute: float  # share of placements in adult acute beds
    cycle_amplitude: float
    cycle_months: float
    cycle_phase: float


@lru_cache(maxsize=256)
def _profile(seed: int, code: str) -> _Profile:
    rng = rng_for(seed, SOURCE, code, "profile")
    if code == REST_OF_ENGLAND:
        level = REST_OF_ENGLAND_BED_DAYS
    else:
        drawn = float(np.exp(rng.uniform(np.log(25.0), np.log(400.0))))
        level = BASE_BED_DAYS.get(code, drawn)
    return _Profile(
        level=level,
        stay=float(rng.uniform(24.0, 40.0)),
        adult_acute=float(rng.uniform(0.78, 0.93)),
        cycle_amplitude=float(rng.uniform(0.01, 0.04)),
        cycle_months=float(rng.uniform(20.0, 40.0)),
        cycle_phase=float(rng.uniform(0.0, 2 * math.pi)),
    )


def _effect(code: str, month: date) -> np.ndarray:
    """Per-measure multiplier of the planted effects on ``code`` in ``month``."""
    factor = np.ones(len(MEASURES))
    for effect in PLANTED_EFFECTS:
        m = effect.multiplier(code, month)
        if m != 1.0:
            factor[[MEASURES.index(measure) for measure in effect.measures]] *= m
    return factor


@lru_cache(maxsize=8192)
def _latent(seed: int, code: str, month: date, provisional: bool = False) -> tuple[int, ...]:
    """The true counts of ``code`` in ``month``, in :data:`MEASURES` order (an ``a`` variant ≤ its total).

    ``provisional``: the lower counts a provisional publication shows for its own month (late submissions).
    """
    if provisional:
        final = np.array(_latent(seed, code, month))
        rng = rng_for(seed, SOURCE, code, month, "provisional")
        complete = rng.uniform(0.88, 1.0)
        totals, acute = final[0::2], final[1::2]
        kept_acute = rng.binomial(acute, complete)
        kept_other = rng.binomial(totals - acute, complete)
        out = np.empty_like(final)
        out[0::2], out[1::2] = kept_acute + kept_other, kept_acute
        return tuple(int(x) for x in out)
    profile = _profile(seed, code)
    rng = rng_for(seed, SOURCE, code, month)
    t = months_since(month)
    cycle = 1.0 + profile.cycle_amplitude * math.sin(2 * math.pi * t / profile.cycle_months + profile.cycle_phase)
    mu = profile.level * curve(t, _TREND) * _SEASON[month.month] * cycle * float(rng.lognormal(0.0, 0.10))
    effect = _effect(code, month)
    days = month_end(month).day
    totals = rng.poisson(
        [
            mu / profile.stay * effect[_STARTED],
            mu * effect[_BED_DAYS],
            mu / days * effect[_ACTIVE],
            mu / profile.stay * effect[_ENDED],
        ]
    )
    acute = rng.binomial(totals, profile.adult_acute)
    out = np.empty(len(MEASURES), dtype=np.int64)
    out[0::2], out[1::2] = totals, acute
    return tuple(int(x) for x in out)


def _period_counts(seed: int, code: str, month: date, months_back: int, provisional: bool, open_in) -> np.ndarray:
    """Counts of ``code`` over the period ending in ``month`` that starts ``months_back`` months earlier."""
    total = np.zeros(len(MEASURES), dtype=np.int64)
    for back in range(months_back + 1):
        m = add_months(month, -back)
        if open_in is not None and not open_in(m):
            continue
        values = np.array(_latent(seed, code, m, provisional and back == 0))
        total += values if back == 0 else np.where(_FLOWS, values, 0)
    return total


def _imd_split(seed: int, month: date, england: np.ndarray) -> np.ndarray:
    """England's counts for one month split into IMD deciles 1-10 (rows); those without a decile are dropped."""
    rng = rng_for(seed, SOURCE, IMD_BREAKDOWN, month)
    p = _IMD_WEIGHTS / _IMD_WEIGHTS.sum()
    out = np.zeros((10, len(MEASURES)), dtype=np.int64)
    for i in range(0, len(MEASURES), 2):
        acute = rng.multinomial(england[i + 1], p)[:10]
        other = rng.multinomial(england[i] - england[i + 1], p)[:10]
        out[:, i], out[:, i + 1] = acute + other, acute
    return out


def publish_count(value: int) -> str:
    """Disclosure control as published: below 5 → ``*``, else rounded to the nearest 5 (halves up)."""
    value = int(value)
    return SUPPRESSED if value < 5 else str((value + 2) // 5 * 5)


def _mental_health_trusts(reference_dir: Path) -> dict[str, Organisation]:
    orgs = load_organisations(Path(reference_dir))
    return dict(sorted((code, org) for code, org in orgs.items() if org.org_type == "mental_health"))


# --------------------------------------------------------------------------------------------------------------
# Public API


def generate_oap_month(
    month: date, *, seed: int = DEFAULT_SEED, provisional: bool = False, reference_dir: Path = REFERENCE_DIR
) -> pd.DataFrame:
    """The rows of ``month``'s file as published: columns :data:`~orchestration.sources.oap.HEADER`, every cell
    text (dates ``YYYY-MM-DD``, counts rounded to 5 or ``*``). ``provisional`` gives the Provisional publication
    (STATUS ``Provisional``, the month's own figures incomplete); otherwise the Final one."""
    month = month_start(month)
    trusts = _mental_health_trusts(Path(reference_dir))
    status = "Provisional" if provisional else "Final"
    end = month_end(month).isoformat()
    rows: list[tuple[str, ...]] = []
    for months_back in (0, 2, 11):
        start = add_months(month, -months_back).isoformat()
        providers = {
            code: _period_counts(seed, code, month, months_back, provisional, org.is_open)
            for code, org in trusts.items()
            if org.is_open(month)
        }
        # England counts every sending provider: the reference trusts (open or not: a closed trust's earlier
        # months still count in a rolling period) and the rest of the country.
        england = _period_counts(seed, REST_OF_ENGLAND, month, months_back, provisional, None)
        for code, org in trusts.items():
            england += (
                providers[code]
                if code in providers
                else _period_counts(seed, code, month, months_back, provisional, org.is_open)
            )
        deciles = np.zeros((10, len(MEASURES)), dtype=np.int64)
        for back in range(months_back + 1):
            m = add_months(month, -back)
            national = _period_counts(seed, REST_OF_ENGLAND, m, 0, provisional and back == 0, None)
            for org_code, org in trusts.items():
                national += _period_counts(seed, org_code, m, 0, provisional and back == 0, org.is_open)
            split = _imd_split(seed, m, national)
            deciles += split if back == 0 else np.where(_FLOWS, split, 0)

        def emit(breakdown, primary, primary_name, secondary, secondary_name, counts, start=start) -> None:
            for measure, value in zip(MEASURES, counts, strict=True):
                rows.append(
                    (
                        start,
                        end,
                        status,
                        breakdown,
                        primary,
                        primary_name,
                        secondary,
                        secondary_name,
                        measure,
                        MEASURE_NAMES[measure],
                        publish_count(value),
                    )
                )

        emit(ENGLAND, ENGLAND, ENGLAND, NOT_USED, NOT_USED, england)
        for i, (decile, name) in enumerate(IMD_DECILES.items()):
            emit(IMD_BREAKDOWN, ENGLAND, ENGLAND, decile, name, deciles[i])
        for code, counts in providers.items():
            emit(SENDING_PROVIDER, code, trusts[code].name.upper(), NOT_USED, NOT_USED, counts)
    return pd.DataFrame(rows, columns=list(HEADER))


def oap_month_csv(month: date, *, seed: int = DEFAULT_SEED, provisional: bool = False) -> bytes:
    """``month``'s file as bytes (UTF-8, no BOM, ``\\r\\n``)."""
    frame = generate_oap_month(month, seed=seed, provisional=provisional)
    return csv_bytes(HEADER, frame.itertuples(index=False, name=None))


def _write_atomically(path: Path, data: bytes) -> Path:
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def write_oap_files(
    out_dir: Path,
    *,
    first_month: date = DEFAULT_FIRST_MONTH,
    last_month: date = DEFAULT_LAST_MONTH,
    seed: int = DEFAULT_SEED,
) -> list[Path]:
    """Write ``out_dir/oap/MHSDS_OAPs_<YYYY-MM>_<Status>.csv`` for every month from ``first_month`` to
    ``last_month`` (both included): ``Final``, except ``last_month``, which is ``Provisional``.

    Files are replaced atomically. The other-status file of a month written (e.g. the ``Provisional`` file of a
    month now written as ``Final``, left by an earlier, shorter run) is removed, so the folder holds one file a
    month; other files are left alone. Returns the paths in month order; the same arguments give the same bytes.
    """
    first_month, last_month = month_start(first_month), month_start(last_month)
    if last_month < first_month:
        raise ValueError(f"last_month {last_month} is before first_month {first_month}")
    folder = Path(out_dir) / SOURCE
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for month in month_range(first_month, last_month):
        provisional = month == last_month
        status, other = ("Provisional", "Final") if provisional else ("Final", "Provisional")
        (folder / file_name(month, other)).unlink(missing_ok=True)
        data = oap_month_csv(month, seed=seed, provisional=provisional)
        paths.append(_write_atomically(folder / file_name(month, status), data))
    return paths
