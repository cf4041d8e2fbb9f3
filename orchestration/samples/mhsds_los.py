"""Sample main MHSDS monthly data files (synthetic figures) in the publisher's layout, for ``mhsds_los``.

Each file is what NHS England publishes as ``MHSDS Data_{Mon}{Perf|Prov|Final}_{YYYY}.zip`` holding the CSV of the
same name (:func:`orchestration.sources.oap_layout.file_name` with family ``Main``): the 11 columns, ``DD/MM/YYYY``
dates, one month and one STATUS, rows sorted by START, END, STATUS, BREAKDOWN, PRIMARY_LEVEL, SECONDARY_LEVEL,
MEASURE_ID, ``\\n`` line endings (:func:`orchestration.samples.oap.published_csv`). The same publications as the
out-of-area placement samples (:func:`orchestration.samples.oap.publications`: Provisional for the newest months,
Performance, November 2023's ``_v2``, Final after the year-end refresh), for every mental health trust of
``seeds/reference/organisations.csv``.

Figures: a trust the patient-level MHSDS samples cover publishes the spells those samples discharge
(:func:`_drawn_stays`: the same draws, final bed types and ages), so the Data quality dashboard's published and
computed figures agree as a real trust's would, up to rounding, late submissions (a Performance file misses about
1%, a Provisional one 4%) and people counted once. Any other trust discharges a seeded number of spells a month in
each cohort (adult acute 18–64, older adult acute 65+, PICU 18+, under 18) with lognormal lengths of stay (means
near the national ones: about 35 days adult acute, 60 older adult, 20 PICU, 45 under 18). A quarter's measures are
computed from the spells of its three months, as ``measure_metadata.py`` does (MHS156b = the mean of MHS156a over
MHS156, rounded to a day), then disclosure-controlled as published: England exact; below England counts ``*`` under
5 else rounded to 5, means, medians and proportions ``*`` when their numerator count is, else whole numbers.
Provisional files lack some late discharges (about 4%), as a Provisional month does. A few other measures (MHS07
open spells, and MHS156 by ICB of residence) stand for the rest of the main file, which the feed counts and does not
load.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from orchestration.samples.common import (
    DEFAULT_FIRST_MONTH,
    DEFAULT_LAST_MONTH,
    DEFAULT_SEED,
    add_months,
    load_icbs,
    load_organisations,
    month_end,
    month_start,
    rng_for,
    seasonal_activity,
    write_zip,
)
from orchestration.samples.oap import national_ratio, publications, publish_count, published_csv
from orchestration.sources.mhsds_los_layout import MEASURE_NAMES, PROVIDER
from orchestration.sources.oap_layout import DATE_FORMAT, ENGLAND, HEADER, MAIN, NOT_USED, file_name

SOURCE = "mhsds_los"
#: cohort → (spells a month per 100 of the trust's size, mean length of stay in days, lognormal sigma)
COHORTS: dict[str, tuple[float, float, float]] = {
    "adult_acute_18_64": (30.0, 35.0, 0.9),
    "older_adult_acute_65plus": (9.0, 60.0, 0.8),
    "picu_18plus": (4.0, 20.0, 0.8),
    "under_18": (2.0, 45.0, 0.9),
}
OTHER_NAMES = {
    "MHS07": "People with an open hospital spell at the end of the reporting period",
}
ICB_BREAKDOWN = "ICB of GP Practice or Residence"


def _size(seed: int, code: str) -> float:
    return float(np.exp(rng_for(seed, SOURCE, code, "size").uniform(np.log(0.6), np.log(2.4))))


def _spells(seed: int, code: str, month: date, cohort: str) -> np.ndarray:
    """Lengths of stay (days) of the trust's spells of ``cohort`` discharged in ``month`` (seeded per month, so
    a quarter's figures are the sum of its months' and overlapping quarters agree)."""
    per_100, mean, sigma = COHORTS[cohort]
    rng = rng_for(seed, SOURCE, code, month.isoformat(), cohort)
    n = rng.poisson(per_100 * _size(seed, code) * seasonal_activity(month))
    mu = np.log(mean) - sigma**2 / 2
    return np.floor(rng.lognormal(mu, sigma, n))


@lru_cache(maxsize=8192)
def _drawn_stays(seed: int, code: str, month: date) -> dict[str, np.ndarray] | None:
    """Lengths of stay by cohort of the spells the trust's MHSDS extract sample discharges in ``month``
    (:mod:`orchestration.samples.los_mh`: the same draws, bed types and ages), so that the published figures and
    the ones the warehouse computes from the extract agree as they would for a real trust: up to rounding, late
    submissions and people counted once. ``None`` for a trust the extract samples do not cover."""
    from orchestration.samples import los as spells_source
    from orchestration.samples.los_mh import SOURCE as MH_SOURCE
    from orchestration.samples.los_mh import _age, _kind

    organisations = {org.code: org for org in spells_source._trusts(MH_SOURCE, spells_source.REFERENCE_DIR)}
    org = organisations.get(code)
    if org is None or not org.is_open(month):
        return None
    spells = spells_source._active_spells(seed, MH_SOURCE, org, month, spells_source.REFERENCE_DIR)
    first, last = np.datetime64(month, "D"), np.datetime64(month_end(month), "D")
    stays: dict[str, list[float]] = {c: [] for c in COHORTS}
    for i in range(len(spells)):
        discharged = spells.discharged[i]
        if not first <= discharged <= last:
            continue
        kind = _kind(str(spells.codes["MHAdmittedPatientClass"][i]))
        age = _age(seed, str(spells.person[i]), kind, month)
        cohort = {
            "adult_acute": "adult_acute_18_64" if 18 <= age <= 64 else None,
            "older_adult_acute": "older_adult_acute_65plus" if age >= 65 else None,
            "picu": "picu_18plus" if age >= 18 else None,
            "children": "under_18",
        }.get(kind)
        if cohort:
            stays[cohort].append(float((discharged - spells.admitted[i]).astype(np.int64)))
    return {c: np.asarray(v) for c, v in stays.items()}


def _edition(seed: int, code: str, month: date, cohort: str, status: str, newest: date, version: int = 1) -> np.ndarray:
    drawn = _drawn_stays(seed, code, month)
    if drawn is None:
        stays = _spells(seed + (version - 1) * 7919, code, month, cohort)
    else:
        stays = drawn[cohort]
        if status == "Performance" and version == 1:  # late submissions: a re-publication and Final have them
            keep = rng_for(seed, SOURCE, code, month.isoformat(), cohort, "late").random(len(stays)) > 0.01
            stays = stays[keep]
    if status == "Provisional" and month == newest:
        keep = rng_for(seed, SOURCE, code, month.isoformat(), cohort, "late").random(len(stays)) > 0.04
        stays = stays[keep]
    return stays


def _quarter_measures(stays: dict[str, np.ndarray]) -> dict[str, float]:
    """The unrounded quarter measures of one level from its spells by cohort (``measure_metadata.py``)."""
    adult, older, picu, young = (stays[c] for c in COHORTS)
    adults_all = np.concatenate([adult, older, picu])

    def mean(x):
        return float(np.round(x.mean())) if len(x) else 0.0

    def median(x):
        return float(np.round(np.median(x))) if len(x) else 0.0

    def share(k, n):
        return 100.0 * k / n if n else 0.0

    people = {c: int(round(len(stays[c]) * 0.96)) for c in COHORTS}  # a person discharged twice counts once
    out = {
        "MHS140": people["adult_acute_18_64"],
        "MHS140a": mean(adult),
        "MHS140b": median(adult),
        "MHS141": people["older_adult_acute_65plus"],
        "MHS141a": mean(older),
        "MHS141b": median(older),
        "MHS142": people["under_18"],
        "MHS142a": mean(young),
        "MHS142b": median(young),
        "MHS156": float(len(adults_all)),
        "MHS156a": float(adults_all.sum()),
        "MHS156b": mean(adults_all),
    }
    for ids, x, cohort in (
        (("MHS100", "MHS101"), adult, "adult_acute_18_64"),
        (("MHS102", "MHS103"), older, "older_adult_acute_65plus"),
        (("MHS104", "MHS105"), young, "under_18"),
    ):
        for measure, days in zip(ids, (60, 90), strict=True):
            k = int(round((x >= days).sum() * 0.96))
            out[measure] = k
            out[measure + "b"] = share(k, people[cohort])
    return out


def _published(measures: dict[str, float], national: bool) -> dict[str, str]:
    """Disclosure control as ``mhsds_suppression`` applies it (England exact)."""
    numerator = {
        "MHS140a": "MHS140",
        "MHS140b": "MHS140",
        "MHS141a": "MHS141",
        "MHS141b": "MHS141",
        "MHS142a": "MHS142",
        "MHS142b": "MHS142",
        "MHS156b": "MHS156a",
        **{f"MHS10{i}b": f"MHS10{i}" for i in range(6)},
    }
    out = {}
    for measure, value in measures.items():
        if measure in numerator:
            if national:  # means and medians are whole days already; proportions unrounded
                out[measure] = national_ratio(value) if measure.startswith("MHS10") else str(int(value))
            elif publish_count(measures[numerator[measure]]) == "*":
                out[measure] = "*"
            else:
                out[measure] = str(int(round(value)))
        else:
            out[measure] = str(int(value)) if national else publish_count(value)
    return out


def generate_file(
    month: date, status: str = "Performance", *, version: int = 1, seed: int = DEFAULT_SEED
) -> pd.DataFrame:
    """The rows of ``month``'s ``status`` main file (length-of-stay measures and a few others), in published order."""
    month = month_start(month)
    orgs = load_organisations()
    trusts = {
        code: org
        for code, org in sorted(orgs.items())
        if org.org_type == "mental_health"
        and (org.open_date is None or org.open_date <= month)
        and (org.close_date is None or month < org.close_date)
    }
    icbs = load_icbs()
    bed_seed = seed + (version - 1) * 7919  # a re-publication adds late submissions: other draws
    q_start = add_months(month, -2)
    months = [add_months(month, -k) for k in (2, 1, 0)]
    start_m, start_q, end = (
        month.strftime(DATE_FORMAT),
        q_start.strftime(DATE_FORMAT),
        month_end(month).strftime(DATE_FORMAT),
    )
    rows: list[tuple] = []

    def emit(start: str, breakdown: str, level: str, desc: str, measure: str, value: str, name: str | None = None):
        rows.append(
            (
                start,
                end,
                status,
                breakdown,
                level,
                desc,
                NOT_USED,
                NOT_USED,
                measure,
                name or MEASURE_NAMES[measure],
                value,
            )
        )

    by_trust: dict[str, dict[str, np.ndarray]] = {}
    for code in trusts:
        by_trust[code] = {
            c: np.concatenate([_edition(seed, code, m, c, status, month, version) for m in months]) for c in COHORTS
        }
    england = {c: np.concatenate([by_trust[code][c] for code in trusts]) for c in COHORTS}

    def bed_days(code_list) -> tuple[float, float]:
        total = 0.0
        for code in code_list:
            this = [_edition(seed, code, month, c, status, month, version) for c in COHORTS]
            rng = rng_for(bed_seed, SOURCE, code, month.isoformat(), status, "beds")
            total += float(sum(x.sum() for x in this)) * rng.uniform(0.97, 1.03)
        return round(total), round(total * 0.93)

    levels = [(ENGLAND, ENGLAND, ENGLAND, england, list(trusts))] + [
        (PROVIDER, code, trusts[code].name.upper(), by_trust[code], [code]) for code in trusts
    ]
    for breakdown, level, desc, stays, codes in levels:
        national = breakdown == ENGLAND
        measures = _quarter_measures(stays)
        for measure, value in _published(measures, national).items():
            if national and value == "0":
                continue  # the extract leaves zero rows out (MEASURE_VALUE != 0)
            emit(start_q, breakdown, level, desc, measure, value)
        mhs24, mhs25 = bed_days(codes)
        for measure, value in (("MHS24", mhs24), ("MHS25", mhs25)):
            emit(start_m, breakdown, level, desc, measure, str(int(value)) if national else publish_count(value))
        open_spells = int(round(mhs24 / 30.4))
        emit(
            start_m,
            breakdown,
            level,
            desc,
            "MHS07",
            str(open_spells) if national else publish_count(open_spells),
            OTHER_NAMES["MHS07"],
        )
    # the 18+ discharges by ICB of residence: a breakdown the feed counts, not loads
    for icb_code in sorted({org.icb_code for org in trusts.values() if org.icb_code in icbs}):
        members = [code for code, org in trusts.items() if org.icb_code == icb_code]
        count = sum(len(np.concatenate([by_trust[c][k] for k in COHORTS if k != "under_18"])) for c in members)
        emit(start_q, ICB_BREAKDOWN, icb_code, icbs[icb_code].name, "MHS156", publish_count(count))
    frame = pd.DataFrame(rows, columns=list(HEADER))
    order = [
        "REPORTING_PERIOD_START",
        "REPORTING_PERIOD_END",
        "STATUS",
        "BREAKDOWN",
        "PRIMARY_LEVEL",
        "SECONDARY_LEVEL",
        "MEASURE_ID",
    ]
    keys = frame[order].copy()
    keys["REPORTING_PERIOD_START"] = pd.to_datetime(keys["REPORTING_PERIOD_START"], format=DATE_FORMAT)
    return frame.loc[keys.sort_values(order, kind="stable").index].reset_index(drop=True)


def file_bytes(month: date, status: str = "Performance", *, version: int = 1, seed: int = DEFAULT_SEED) -> bytes:
    return published_csv(generate_file(month, status, version=version, seed=seed))


def write_mhsds_los_files(
    out_dir: Path,
    *,
    first_month: date = DEFAULT_FIRST_MONTH,
    last_month: date = DEFAULT_LAST_MONTH,
    seed: int = DEFAULT_SEED,
) -> list[Path]:
    """Write every publication of ``first_month`` … ``last_month`` under ``out_dir/mhsds_los/``, zipped as
    published; the same arguments give the same bytes. Returns the paths in loading order."""
    folder = Path(out_dir) / SOURCE
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for publication in publications(first_month, last_month):
        name = file_name(publication.month, publication.status, version=publication.version, family=MAIN, suffix="")
        data = file_bytes(publication.month, publication.status, version=publication.version, seed=seed)
        paths.append(write_zip(folder / f"{name}.zip", f"{name}.csv", data))
    return paths
