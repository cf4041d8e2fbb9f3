"""Sample "Discharge delays (Acute)" monthly files, in NHS England's long CSV layout (synthetic figures).

One file per month from April 2024 (the first month NHS England published this CSV layout; earlier months were
xlsx workbooks, which the feed does not read) to the last sample month, named as the publisher names them in
2026 (``Daily-discharge-sitrep-monthly-data-webfile-1-CSV-apr24.csv``: the month's number in the financial year,
then the month), plain CSV as published, UTF-8 with ``\\r\\n`` line endings. April 2026 is also re-issued as
``...-apr26-v2.csv`` (the real April 2026 file was), with a few trusts' figures revised.

Rows, for every bundled acute trust open in the month (``seeds/reference/organisations.csv``), each ICB and region
holding one, and England (``ENG``): the three daily measures for every day (patients no longer meeting the criteria
to reside, of them discharged, remaining in hospital), weekly additional-bed-days snapshots for stays of 7, 14 and
21 days or over dated each Monday of the month (the week commencing), a few
"Delay reason LOS 7+" weekly rows (not used by the feed, as in real files), and from August 2025 the publisher's
monthly "Daily Average - Number of patients remaining …" row. ICB, region and England rows add up the bundled
trusts only. A trust misses a day now and then (Value blank, as real returns do): never a zero.
Metric names carry the publisher's en dashes; ``Metric Type`` and ``Metric Group`` values are this generator's
best reading of the publisher's and the feed does not rely on them.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from orchestration.samples.common import (
    DEFAULT_FIRST_MONTH,
    DEFAULT_LAST_MONTH,
    DEFAULT_SEED,
    REFERENCE_DIR,
    csv_bytes,
    load_icbs,
    load_organisations,
    month_range,
    month_start,
    months_since,
    region_name,
    rng_for,
    seasonal_activity,
    write_csv_file,
)
from orchestration.sources.acute_long_stay import HEADER, file_name

SOURCE = "acute_long_stay"
#: The first month NHS England published the monthly file as this CSV.
FIRST_CSV_MONTH = date(2024, 4, 1)
#: Months re-issued as ``-v2`` (the real April 2026 file was).
REVISED_MONTHS: tuple[date, ...] = (date(2026, 4, 1),)

NCTR = "Number of patients who no longer meet the criteria to reside"
DISCHARGED = "Number of patients discharged"
REMAINING = "Number of patients remaining in hospital who no longer meet the criteria to reside"
DAILY_AVERAGE = "Daily Average - Number of patients remaining in hospital who no longer meet the criteria to reside"
ADDITIONAL = {
    7: "Number of additional bed days, patients with a length of stay of 7 days or over",
    14: "Number of additional bed days, patients with a length of stay of 14 days or over",
    21: "Number of additional bed days, patients with a length of stay of 21 days or over",
}
DELAY_REASONS = (
    "Capacity \u2013 Home-based rehabilitation, reablement or recovery services not yet available (Pathway 1)",
    "Capacity \u2013 Bed-based rehabilitation, reablement or recovery services not yet available (Pathway 2)",
    "Hospital process \u2013 Awaiting therapy review of need for supported discharge",
)
#: The publisher's monthly daily-average row exists from August 2025.
DAILY_AVERAGE_FROM = date(2025, 8, 1)


def _trusts(month: date, reference_dir: Path) -> list:
    return [
        org
        for org in sorted(load_organisations(reference_dir).values(), key=lambda o: o.code)
        if org.org_type == "acute" and org.is_open(month)
    ]


def _trust_days(seed: int, code: str, month: date, version: int) -> dict[str, np.ndarray]:
    """One trust's daily counts and weekly snapshots for ``month`` (NaN = the trust did not return that day)."""
    days = calendar.monthrange(month.year, month.month)[1]
    profile = rng_for(seed, SOURCE, "profile", code)
    size = profile.uniform(35, 190)  # the trust's typical number of patients no longer meeting the criteria
    remaining_share = profile.uniform(0.5, 0.72)
    rng = rng_for(seed, SOURCE, code, month)
    level = size * seasonal_activity(month) * (1 + 0.004 * months_since(month))
    weekday = np.array([1.0 if date(month.year, month.month, d + 1).weekday() < 5 else 0.9 for d in range(days)])
    nctr = rng.poisson(level * weekday).astype(float)
    remaining = np.minimum(nctr, rng.binomial(nctr.astype(int), remaining_share)).astype(float)
    discharged = nctr - remaining
    missing = rng.random(days) < 0.01
    if version > 1:  # the re-issue revises a few trusts' returns
        revise = rng_for(seed, SOURCE, "revision", code, month)
        if revise.random() < 0.3:
            nctr = nctr + revise.integers(1, 4, size=days)
            discharged = nctr - remaining
    for series in (nctr, discharged, remaining):
        series[missing] = np.nan
    mondays = _snapshot_days(month)
    long_7 = rng.normal(level * remaining_share * 11.0, level * 0.8, size=len(mondays)).clip(min=0).round()
    long_14 = (long_7 * rng.uniform(0.62, 0.75, size=len(mondays))).round()
    long_21 = (long_14 * rng.uniform(0.7, 0.82, size=len(mondays))).round()
    reasons = rng.multinomial(int(np.nanmean(remaining) * 0.6), [0.45, 0.3, 0.25], size=len(mondays)).astype(float)
    return {
        "nctr": nctr,
        "discharged": discharged,
        "remaining": remaining,
        "7": long_7,
        "14": long_14,
        "21": long_21,
        "reasons": reasons,
    }


def _snapshot_days(month: date) -> list[date]:
    """The Mondays of ``month``: each week's snapshot is dated its week commencing."""
    last = date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])
    day = month + timedelta(days=(7 - month.weekday()) % 7)
    found = []
    while day <= last:
        found.append(day)
        day += timedelta(days=7)
    return found


def _cell(value: float) -> str:
    return "" if np.isnan(value) else str(int(value))


def _average(values: np.ndarray) -> str:
    return "" if np.isnan(values).all() else f"{np.nanmean(values):.1f}"


def file_bytes(
    month: date, *, version: int = 1, seed: int = DEFAULT_SEED, reference_dir: Path = REFERENCE_DIR
) -> bytes:
    """The month's file as NHS England publishes it (synthetic figures); the same arguments give the same bytes."""
    month = month_start(month)
    icbs = load_icbs(reference_dir)
    trusts = _trusts(month, reference_dir)
    figures = {org.code: _trust_days(seed, org.code, month, version) for org in trusts}
    days = calendar.monthrange(month.year, month.month)[1]
    mondays = _snapshot_days(month)
    # rows: (Level, Region, ICB, Org Code, Org Name) and the figures behind them
    units = []
    regions: dict[str, list[str]] = {}
    by_icb: dict[str, list[str]] = {}
    for org in trusts:
        by_icb.setdefault(org.icb_code, []).append(org.code)
        regions.setdefault(org.region_code, []).append(org.code)
    units.append(("National", "ENGLAND", "ENGLAND", "ENG", "ENGLAND", [org.code for org in trusts]))
    for code in sorted(regions):
        name = region_name(code, reference_dir).upper()
        units.append(("Region", name, "", code, name, regions[code]))
    for code in sorted(by_icb):
        found = icbs.get(code)
        name = found.name.upper() if found else code
        region = region_name(found.region_code, reference_dir).upper() if found else ""
        units.append(("ICB", region, code, code, name, by_icb[code]))
    for org in trusts:
        region = region_name(org.region_code, reference_dir).upper()
        units.append(("Provider", region, org.icb_code, org.code, org.name.upper(), [org.code]))

    def total(members: list[str], key: str) -> np.ndarray:
        stacked = np.vstack([figures[code][key] for code in members])
        if len(members) == 1:
            return stacked[0]
        return np.nansum(stacked, axis=0)  # an aggregate adds up the returns made

    rows = []
    for level, region, icb_code, code, name, members in units:
        unit = [level, region, icb_code, code, name]
        series = {key: total(members, key) for key in ("nctr", "discharged", "remaining", "7", "14", "21")}
        for day in range(days):
            period = f"{date(month.year, month.month, day + 1):%d/%m/%Y}"
            for metric, key in ((NCTR, "nctr"), (DISCHARGED, "discharged"), (REMAINING, "remaining")):
                rows.append([period, *unit, metric, "Daily", "Criteria to reside", _cell(series[key][day])])
        for i, monday in enumerate(mondays):
            period = f"{monday:%d/%m/%Y}"
            for threshold, metric in ADDITIONAL.items():
                value = _cell(series[str(threshold)][i])
                rows.append([period, *unit, metric, "Weekly snapshot", "Additional bed days", value])
            reasons = np.sum([figures[m]["reasons"][i] for m in members], axis=0)
            for reason, value in zip(DELAY_REASONS, reasons, strict=True):
                rows.append([period, *unit, reason, "Weekly snapshot", "Delay reason LOS 7+", _cell(value)])
        if month >= DAILY_AVERAGE_FROM:
            average = _average(series["remaining"])
            rows.append([f"{month:%d/%m/%Y}", *unit, DAILY_AVERAGE, "Monthly", "Criteria to reside", average])
    return csv_bytes(HEADER, rows)


def write_acute_long_stay_files(
    out_dir: Path,
    *,
    first_month: date = DEFAULT_FIRST_MONTH,
    last_month: date = DEFAULT_LAST_MONTH,
    seed: int = DEFAULT_SEED,
) -> list[Path]:
    """Write the month files (from April 2024, the first CSV month) under ``out_dir/acute_long_stay/``, each
    re-issue right after its original. Returns the paths in loading order; the same arguments give the same bytes."""
    folder = Path(out_dir) / SOURCE
    paths = []
    for month in month_range(max(month_start(first_month), FIRST_CSV_MONTH), month_start(last_month)):
        paths.append(write_csv_file(folder / file_name(month), file_bytes(month, seed=seed)))
        if month in REVISED_MONTHS:
            paths.append(write_csv_file(folder / file_name(month, version=2), file_bytes(month, version=2, seed=seed)))
    return paths
