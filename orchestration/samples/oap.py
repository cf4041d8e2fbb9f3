"""Synthetic out-of-area placements (OAP) files in the layout of NHS England's MHSDS "Out of Area Placements" data
file (SPEC §3.2; the layout's facts, and where the publisher's code shows them, are in
:mod:`orchestration.sources.oap_layout`).

All figures are synthetic: seeded random draws shaped to look like the monthly statistics. Only the trusts (every
``mental_health`` organisation in ``seeds/reference/organisations.csv``, by ODS code and name) are real; the
numbers describe no real patients.

What a file holds, as published:

* one month and one STATUS: every row ends on the month's last day (``30/04/2026``) and the three periods are told
  apart only by REPORTING_PERIOD_START: the rolling 12 months (START eleven months earlier), the rolling quarter
  (two months earlier) and the month. Flows (OAP01 started, OAP02 bed days, OAP04 ended) are sums over the
  period's months; OAP03 (active at the end of the period) is the month's value in every period;
* breakdowns ``England`` (PRIMARY_LEVEL ``England``), ``England; IMD Decile`` (PRIMARY_LEVEL and its description
  ``01 Most deprived`` … ``10 Least deprived`` and ``UNKNOWN``) and ``Sending Provider`` (PRIMARY_LEVEL = ODS code
  of every reference mental health trust open in the 12 months, description its name in upper case, and
  ``UNKNOWN``/``UNKNOWN`` for placements with no referring organisation); SECONDARY_LEVEL ``NONE``;
* measures (names as published, :data:`~orchestration.sources.oap_layout.MEASURE_NAMES`): the counts OAP01–OAP04
  and their adult-acute variants for every breakdown; the rates per million OAP05–OAP07(a) for England and the
  IMD deciles; the proportions OAP08–OAP11(a) for England. (The real file has more breakdowns, Receiving Provider
  and the geographies among them; the samples hold the ones the warehouse reads, in the same layout.)
* disclosure control as the publisher applies it: national rows (``England``, ``England; …``) exact and unrounded,
  ``0`` where nothing happened, rates and proportions written in single precision (``12.34567``); every Sending
  Provider count below 5 (0 included) is ``*``, the rest rounded to the nearest 5;
* rows sorted by START, BREAKDOWN, PRIMARY_LEVEL, SECONDARY_LEVEL, MEASURE_ID; dates ``DD/MM/YYYY``; UTF-8, no
  byte-order mark, ``\\n`` line endings, quotes only around a cell with a comma (``"CUMBRIA, NORTHUMBERLAND, …"``).

England counts every sender in the country: the reference trusts, the unknown senders (about 3% of bed days) and
a synthetic "rest of England" (:data:`REST_OF_ENGLAND_BED_DAYS` bed days a month at the 2021 level, about 22,000 in
all, the order of the national figure), so England is well above the sum of the Sending Provider rows. The IMD
deciles split England's counts (more placements in more deprived deciles, about 3% in ``UNKNOWN``): they add up to
England exactly.

Which files (:func:`publications`), as NHS England releases them: a Performance file (``…AprPerf_2026``) for every
month but the last; a Provisional file (``…MayProv_2026``) for each of the last three months (the newest month's
early figures, published with the month before's Performance); a Final file (``…AprFinal_2025``) for every month
of the latest financial year whose year-end refresh is out (:func:`final_year`); and one re-publication,
``MHSDS Data_OAPs_NovPerf_2023_v2`` (:data:`REPUBLISHED`). A month's own figures are less complete the earlier the
publication: Provisional below Performance (late submissions, up to 12% per trust), Performance a little below
Final and the ``_v2`` correction; earlier months inside a quarter or 12 months are as refreshed.

A planted effect for evaluation (:data:`PLANTED_EFFECTS`): SLP's members' inappropriate bed days (OAP02/OAP02a,
and with them OAP03/OAP03a, the placements active at month end) fall 30% after SLP's go-live (April 2022),
ramping 10%, 20%, 30% over its first three months; placements started and ended are unchanged (placements get
shorter). NENCMH (RX4, RX3) has no effect (:data:`NO_EFFECT_COLLABORATIVES`): a negative control.

Randomness is keyed by ``(seed, "oap", organisation, month)`` (:func:`~orchestration.samples.common.rng_for`), so
the RTT samples never change and any month can be generated alone.
"""

from __future__ import annotations

import csv
import io
import math
import re
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
    curve,
    load_organisations,
    month_end,
    month_range,
    month_start,
    months_since,
    rng_for,
    write_csv_file,
    write_zip,
)
from orchestration.sources.oap_layout import (
    COUNT_MEASURES,
    DATE_FORMAT,
    ENGLAND,
    HEADER,
    IMD_DECILE,
    IMD_DECILES,
    MEASURE_NAMES,
    NOT_USED,
    SENDING_PROVIDER,
    SUPPRESSED,
    UNKNOWN,
    file_name,
)

SOURCE = "oap"

MEASURES: tuple[str, ...] = COUNT_MEASURES  # OAP01, OAP01a, OAP02, OAP02a, OAP03, OAP03a, OAP04, OAP04a
_STARTED, _BED_DAYS, _ACTIVE, _ENDED = 0, 2, 4, 6  # index of each total; its adult-acute variant follows it
_FLOWS = np.array([True, True, True, True, False, False, True, True])  # summed over a period; OAP03 is a stock

#: Rates per million of the population: measure → the count it is the rate of.
RATES: dict[str, str] = {
    "OAP05": "OAP01",
    "OAP05a": "OAP01a",
    "OAP06": "OAP03",
    "OAP06a": "OAP03a",
    "OAP07": "OAP04",
    "OAP07a": "OAP04a",
}
#: Proportions (per cent): measure → (its count, the all-admissions measure it is a share of).
PROPORTIONS: dict[str, tuple[str, str]] = {
    "OAP08": ("OAP01", "ADDSTART"),
    "OAP08a": ("OAP01a", "ADDSTARTa"),
    "OAP09": ("OAP02", "BEDDAYS"),
    "OAP09a": ("OAP02a", "BEDDAYSa"),
    "OAP10": ("OAP03", "ADDACTIVE"),
    "OAP10a": ("OAP03a", "ADDACTIVEa"),
    "OAP11": ("OAP04", "DISCH"),
    "OAP11a": ("OAP04a", "DISCHa"),
}
#: England's mental health admissions a month (all, not only out of area; a = adult acute beds), their bed days,
#: spells open at month end and discharges: the denominators of the proportions. ADDACTIVE is a stock.
ALL_ADMISSIONS: dict[str, float] = {
    "ADDSTART": 9_100.0,
    "ADDSTARTa": 5_600.0,
    "BEDDAYS": 545_000.0,
    "BEDDAYSa": 298_000.0,
    "ADDACTIVE": 17_900.0,
    "ADDACTIVEa": 9_800.0,
    "DISCH": 9_050.0,
    "DISCHa": 5_550.0,
}
#: Mid-year population of England, all ages (the rates' denominator); each IMD decile holds a tenth of it.
ENGLAND_POPULATION = 56_989_570

#: Relative placements per decile (01 = most deprived) and, last, the share with no known decile (UNKNOWN).
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
#: Bed days a month of placements with no referring organisation: the publisher's ``UNKNOWN`` sender.
UNKNOWN_SENDER_BED_DAYS = 650.0

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

#: The one re-publication in the samples: (month, status) → version. November 2023's Performance file reissued
#: as ``_v2`` with the month's late submissions included.
REPUBLISHED: dict[tuple[date, str], int] = {(date(2023, 11, 1), "Performance"): 2}
#: How many of the newest months have a Provisional file.
PROVISIONAL_MONTHS = 3


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
# Which files are published


@dataclass(frozen=True)
class Publication:
    """One published file: ``month``'s ``status`` file, ``version`` 2 or more for a ``_vN`` re-publication."""

    month: date
    status: str
    version: int = 1

    def file_name(self, suffix: str = ".zip") -> str:
        return file_name(self.month, self.status, version=self.version, suffix=suffix)


def final_year(last_month: date) -> tuple[date, date] | None:
    """The latest financial year (April to March) whose Final files are out by ``last_month``: the year-end
    refresh is submitted in May (``run_notebooks.py`` ``checkfinalstatus``) and published by August."""
    year = last_month.year if last_month.month >= 8 else last_month.year - 1
    return date(year - 1, 4, 1), date(year, 3, 1)


def publications(first_month: date, last_month: date) -> list[Publication]:
    """Every file published for ``first_month`` … ``last_month``, month by month in the order they would be loaded
    (Provisional, Performance, its re-publication, Final)."""
    first_month, last_month = month_start(first_month), month_start(last_month)
    months = list(month_range(first_month, last_month))
    finals = final_year(last_month)
    out = []
    for month in months:
        if month > add_months(last_month, -PROVISIONAL_MONTHS):
            out.append(Publication(month, "Provisional"))
        if month < last_month:
            out.append(Publication(month, "Performance"))
            version = REPUBLISHED.get((month, "Performance"))
            if version:
                out.append(Publication(month, "Performance", version))
        if finals and finals[0] <= month <= finals[1]:
            out.append(Publication(month, "Final"))
    return out


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
    drawn = float(np.exp(rng.uniform(np.log(25.0), np.log(400.0))))
    level = {REST_OF_ENGLAND: REST_OF_ENGLAND_BED_DAYS, UNKNOWN: UNKNOWN_SENDER_BED_DAYS}.get(
        code, BASE_BED_DAYS.get(code, drawn)
    )
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


def _thin(seed: int, counts: np.ndarray, key: tuple, low: float, high: float) -> np.ndarray:
    """The part of ``counts`` already submitted: each placement kept with a completeness drawn in [low, high),
    adult-acute and other beds alike (so an ``a`` count stays within its total)."""
    rng = rng_for(seed, SOURCE, *key)
    complete = rng.uniform(low, high)
    totals, acute = counts[0::2], counts[1::2]
    kept_acute = rng.binomial(acute, complete)
    kept_other = rng.binomial(totals - acute, complete)
    out = np.empty_like(counts)
    out[0::2], out[1::2] = kept_acute + kept_other, kept_acute
    return out


@lru_cache(maxsize=16384)
def _latent(seed: int, code: str, month: date, edition: str = "Final") -> tuple[int, ...]:
    """The counts of ``code`` in ``month`` as the ``edition`` of its month's publication shows them, in
    :data:`MEASURES` order (an ``a`` variant ≤ its total): ``Final`` (and a ``_v2`` correction) the complete
    figures, ``Performance`` a little below them, ``Provisional`` below the Performance ones."""
    if edition == "Performance":
        final = np.array(_latent(seed, code, month))
        return tuple(int(x) for x in _thin(seed, final, (code, month, "performance"), 0.96, 1.0))
    if edition == "Provisional":
        performance = np.array(_latent(seed, code, month, "Performance"))
        return tuple(int(x) for x in _thin(seed, performance, (code, month, "provisional"), 0.88, 0.98))
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


def _edition(publication: Publication) -> str:
    return "Final" if publication.status == "Final" or publication.version > 1 else publication.status


def _period_counts(seed: int, code: str, month: date, months_back: int, edition: str, open_in) -> np.ndarray:
    """Counts of ``code`` over the period ending in ``month`` that starts ``months_back`` months earlier: the
    month itself as ``edition`` shows it, the earlier months as refreshed."""
    total = np.zeros(len(MEASURES), dtype=np.int64)
    for back in range(months_back + 1):
        m = add_months(month, -back)
        if open_in is not None and not open_in(m):
            continue
        values = np.array(_latent(seed, code, m, edition if back == 0 else "Final"))
        total += values if back == 0 else np.where(_FLOWS, values, 0)
    return total


def _imd_split(seed: int, month: date, edition: str, england: np.ndarray) -> np.ndarray:
    """England's counts for one month split into the IMD deciles 01-10 and UNKNOWN (rows): they add up to it."""
    rng = rng_for(seed, SOURCE, IMD_DECILE, month, edition)
    p = _IMD_WEIGHTS / _IMD_WEIGHTS.sum()
    out = np.zeros((len(IMD_DECILES), len(MEASURES)), dtype=np.int64)
    for i in range(0, len(MEASURES), 2):
        acute = rng.multinomial(england[i + 1], p)
        other = rng.multinomial(england[i] - england[i + 1], p)
        out[:, i], out[:, i + 1] = acute + other, acute
    return out


def _all_admissions(seed: int, month: date, months_back: int) -> dict[str, float]:
    """England's all-admissions denominators over the period (ADDACTIVE, a stock, is the month's)."""
    total = dict.fromkeys(ALL_ADMISSIONS, 0.0)
    for back in range(months_back + 1):
        m = add_months(month, -back)
        rng = rng_for(seed, SOURCE, "all_admissions", m)
        noise = float(rng.lognormal(0.0, 0.03))
        for measure, level in ALL_ADMISSIONS.items():
            if back and measure.startswith("ADDACTIVE"):
                continue
            total[measure] += round(level * _SEASON[m.month] * noise)
    return total


def publish_count(value: int) -> str:
    """Disclosure control outside England as published (``count_suppression``): below 5 (0 included) → ``*``, else
    rounded to the nearest 5."""
    value = int(value)
    return SUPPRESSED if value < 5 else str((value + 2) // 5 * 5)


def national_ratio(value: float) -> str:
    """A national rate or proportion as published: unrounded, in single precision (``10.64024``, ``0``)."""
    return np.format_float_positional(np.float32(value), trim="-")


def _mental_health_trusts(reference_dir: Path) -> dict[str, Organisation]:
    orgs = load_organisations(Path(reference_dir))
    return dict(sorted((code, org) for code, org in orgs.items() if org.org_type == "mental_health"))


# --------------------------------------------------------------------------------------------------------------
# Public API


def generate_oap_file(
    month: date,
    status: str = "Performance",
    *,
    version: int = 1,
    seed: int = DEFAULT_SEED,
    reference_dir: Path = REFERENCE_DIR,
) -> pd.DataFrame:
    """The rows of ``month``'s ``status`` file as published (``version`` 2 or more: its ``_vN`` re-publication):
    columns :data:`~orchestration.sources.oap_layout.HEADER`, every cell text, in the publisher's row order."""
    month = month_start(month)
    edition = _edition(Publication(month, status, version))
    trusts = _mental_health_trusts(Path(reference_dir))
    end = month_end(month).strftime(DATE_FORMAT)
    window = [add_months(month, -back) for back in range(12)]
    senders = {code: org for code, org in trusts.items() if any(org.is_open(m) for m in window)}
    rows: list[tuple[str, ...]] = []
    for months_back in (11, 2, 0):  # START ascending, as published
        start = add_months(month, -months_back).strftime(DATE_FORMAT)
        providers = {
            code: _period_counts(seed, code, month, months_back, edition, org.is_open) for code, org in senders.items()
        }
        unknown = _period_counts(seed, UNKNOWN, month, months_back, edition, None)
        # England counts every sending provider: the reference trusts (open or not: a closed trust's earlier
        # months still count in a rolling period), the unknown senders and the rest of the country.
        england = _period_counts(seed, REST_OF_ENGLAND, month, months_back, edition, None) + unknown
        for code, org in trusts.items():
            england += providers.get(code, _period_counts(seed, code, month, months_back, edition, org.is_open))
        deciles = np.zeros((len(IMD_DECILES), len(MEASURES)), dtype=np.int64)
        for back in range(months_back + 1):
            m, m_edition = add_months(month, -back), edition if back == 0 else "Final"
            national = _period_counts(seed, REST_OF_ENGLAND, m, 0, m_edition, None)
            national += _period_counts(seed, UNKNOWN, m, 0, m_edition, None)
            for code, org in trusts.items():
                national += _period_counts(seed, code, m, 0, m_edition, org.is_open)
            split = _imd_split(seed, m, m_edition, national)
            deciles += split if back == 0 else np.where(_FLOWS, split, 0)
        admissions = _all_admissions(seed, month, months_back)

        def emit(breakdown: str, level: str, name: str, values: dict[str, str], start: str = start) -> None:
            for measure in sorted(values):
                rows.append(
                    (
                        start,
                        end,
                        status,
                        breakdown,
                        level,
                        name,
                        NOT_USED,
                        NOT_USED,
                        measure,
                        MEASURE_NAMES[measure],
                        values[measure],
                    )  # fmt: skip
                )

        def counts_of(counts: np.ndarray) -> dict[str, float]:
            return dict(zip(MEASURES, (float(c) for c in counts), strict=True))

        def rates(counts: dict[str, float], population: float | None) -> dict[str, str]:
            return {
                rate: national_ratio(counts[count] / population * 1_000_000) if population else "0"
                for rate, count in RATES.items()
            }

        national_counts = counts_of(england)
        emit(
            ENGLAND,
            ENGLAND,
            ENGLAND,
            {
                **{measure: str(int(value)) for measure, value in national_counts.items()},
                **rates(national_counts, ENGLAND_POPULATION),
                **{
                    proportion: national_ratio(national_counts[count] / admissions[denominator] * 100)
                    for proportion, (count, denominator) in PROPORTIONS.items()
                },
            },
        )
        for decile, counts in zip(IMD_DECILES, deciles, strict=True):
            decile_counts = counts_of(counts)
            population = ENGLAND_POPULATION / 10 if decile != UNKNOWN else None
            emit(
                IMD_DECILE,
                decile,
                decile,
                {**{m: str(int(v)) for m, v in decile_counts.items()}, **rates(decile_counts, population)},
            )
        for code, counts in sorted({**providers, UNKNOWN: unknown}.items()):
            name = senders[code].name.upper() if code in senders else UNKNOWN
            emit(SENDING_PROVIDER, code, name, {m: publish_count(v) for m, v in zip(MEASURES, counts, strict=True)})
    return pd.DataFrame(rows, columns=list(HEADER))


def published_csv(frame: pd.DataFrame, header: tuple[str, ...] | list[str] = HEADER) -> bytes:
    """Rows as the publisher writes them: UTF-8, no byte-order mark, ``\\n`` line endings, quotes only where a cell
    holds a comma (as in the real ``MHSDS Data_4WW_AprPerf_2024_v2.csv``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(frame.itertuples(index=False, name=None))
    return buffer.getvalue().encode("utf-8")


def oap_file_bytes(month: date, status: str = "Performance", *, version: int = 1, seed: int = DEFAULT_SEED) -> bytes:
    """The CSV of ``month``'s ``status`` file as published (:func:`published_csv`)."""
    return published_csv(generate_oap_file(month, status, version=version, seed=seed))


#: The names the first samples used (``MHSDS_OAPs_2024-06_Final.csv``): removed from a samples folder written over.
_LEGACY_NAME = re.compile(r"^MHSDS_OAPs_\d{4}-\d{2}_(Final|Provisional)(-revised)?\.(csv|zip)$")


def write_oap_files(
    out_dir: Path,
    *,
    first_month: date = DEFAULT_FIRST_MONTH,
    last_month: date = DEFAULT_LAST_MONTH,
    seed: int = DEFAULT_SEED,
    zipped: bool = True,
) -> list[Path]:
    """Write every file of :func:`publications` for ``first_month`` … ``last_month`` under ``out_dir/oap/``: zipped
    as NHS England publishes them (``MHSDS Data_OAPs_AprPerf_2026.zip`` holding ``MHSDS Data_OAPs_AprPerf_2026.csv``),
    or plain CSVs (``zipped=False``, for the benchmark's bare scan).

    Files are replaced atomically; files in the old invented naming (``MHSDS_OAPs_2024-06_Final.csv``) are removed,
    other files are left alone. Returns the paths in loading order; the same arguments give the same bytes.
    """
    first_month, last_month = month_start(first_month), month_start(last_month)
    if last_month < first_month:
        raise ValueError(f"last_month {last_month} is before first_month {first_month}")
    folder = Path(out_dir) / SOURCE
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if _LEGACY_NAME.match(path.name):
            path.unlink()
    paths = []
    for publication in publications(first_month, last_month):
        data = oap_file_bytes(publication.month, publication.status, version=publication.version, seed=seed)
        if zipped:
            paths.append(write_zip(folder / publication.file_name(".zip"), publication.file_name(".csv"), data))
        else:
            paths.append(write_csv_file(folder / publication.file_name(".csv"), data))
    return paths
