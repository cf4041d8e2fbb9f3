"""Synthetic, pseudonymised patient-level spell extracts for lengths of stay (SPEC §3.3): two sources.

Everything here is synthetic: seeded random draws shaped to look like provider submissions. No row describes a
real patient; identifiers are random hex tokens. Only the organisations, the RBZ → RH8 merger and the
collaboratives' go-live dates come from ``seeds/reference``.

Files (one zipped CSV per month and source, written with :func:`~orchestration.samples.common.write_zip`):

* ``out_dir/los_mh/MHSDS_<YYYY>-<MM>.zip``: the mental health spells drawn here, written as the MHSDS tables
  MHS501 + MHS502 + MHS001 by :mod:`orchestration.samples.los_mh` (which owns their layout and codes).
* ``out_dir/los_acute/HES_APC_<YYYY>-<MM>.zip`` holding ``HES_APC_<YYYY>-<MM>.csv``: HES admitted patient care
  style spells for every ``acute`` trust open in the month (RBZ closes on 2022-03-31; from April 2022 RH8 carries
  its volume and reports RBZ's spells still open).

A monthly file is the provider's monthly submission: spells discharged in the month plus spells still open at
its end (blank discharge date). A spell is drawn once, in its admission month, with randomness keyed by
``rng_for(seed, source, org, admission month)``, and appears in every file from that month to its discharge, so an
open spell in January is the same spell (same id, person, dates) as the discharged one in February.

Codes used (NHS Data Dictionary / MHSDS v5 as understood here; the MH admitted patient class codes are the
MHSDS v5 two-digit ones and worth checking against the current data dictionary before relying on them):

* ``WardType`` (MHS502): ``01`` child and adolescent mental health ward, ``03`` adult mental health ward,
  ``05`` learning disabilities ward, ``06`` older people's mental health ward.
* ``MHAdmittedPatientClass``: ``10`` adult acute (excluding PICU), ``11`` adult psychiatric intensive care,
  ``12`` adult eating disorders, ``14`` adult learning disabilities, ``19`` adult other (rehabilitation),
  ``20`` older adult acute, ``30`` child and young person general (assumed code; see :data:`MH_CLASSES`).
* ``MethAdmMHHospProvSpell`` / ``ADMIMETH``: ``11``/``12``/``13`` elective, ``21`` A&E, ``22`` GP, ``24``
  consultant clinic, ``25`` mental health crisis team, ``28`` other emergency, ``31``/``32`` maternity, ``81``
  transfer.
* ``MethOfDischMHHospProvSpell``: ``1`` clinical advice, ``2`` self-discharge, ``3`` tribunal/court, ``4`` died.
  ``DestOfDischHospProvSpell``: ``19`` usual residence, ``29`` temporary residence, ``38`` penal establishment,
  ``51`` NHS general ward, ``53`` NHS mental health ward, ``54`` NHS care home, ``79`` died, ``85`` non-NHS care
  home, ``87`` non-NHS hospital. Blank while the spell is open.
* ``CLASSPAT``: ``1`` ordinary admission, ``2`` day case, ``3`` regular day attender, ``5`` mothers and babies
  (delivery facilities only). ``TRETSPEF``: three-digit treatment function codes (100, 110, 300, 430, 501 …).
* ``IMD_Decile``/``IMD04_DECILE``: 1 (most deprived) … 10, sometimes blank (a number, not HES's text bands).
  ``EthnicCategory``/``ETHNOS``: census codes ``A``-``S``, ``Z`` not stated, ``99`` not known, sometimes blank.

Deliberate bad rows (:data:`BAD_ROWS`): in a few files one row is discharged before its admission, one has the
unknown provider code ``RZZ``, and (acute) one has a SPELDUR that disagrees with its dates. They pass the file
contract and are loaded and flagged by :mod:`orchestration.sources.los`.

Planted effects for evaluation (:data:`PLANTED_EFFECTS`): lengths of stay of spells admitted from go-live fall
by the stated share, ramping in over three months; none for NENCMH or HNYCAP members (or anyone else).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np

from orchestration.samples.common import (
    COVID_ACTIVITY,
    DEFAULT_FIRST_MONTH,
    DEFAULT_LAST_MONTH,
    DEFAULT_SEED,
    REFERENCE_DIR,
    Organisation,
    add_months,
    csv_bytes,
    curve,
    load_organisations,
    load_successions,
    month_end,
    month_range,
    month_start,
    months_since,
    rng_for,
    seasonal_activity,
    stable_hash,
    write_csv_file,
    write_zip,
)
from orchestration.sources.los import ACUTE, file_name

SOURCE_MH = "los_mh"  # written as MHSDS tables by orchestration.samples.los_mh
SOURCE_ACUTE = ACUTE.source  # written as HES APC episodes by orchestration.samples.los_acute
#: Sub-folder of ``out_dir`` per source.
FOLDERS: dict[str, str] = {SOURCE_MH: "los_mh", SOURCE_ACUTE: "los_acute"}
#: ``organisations.csv`` type of the trusts each source covers.
ORG_TYPES: dict[str, str] = {SOURCE_MH: "mental_health", SOURCE_ACUTE: "acute"}


@dataclass(frozen=True)
class PlantedEffect:
    """A change in length of stay planted for members of a collaborative from its go-live.

    LoS of a member's spells admitted in month m is multiplied by ``1 + change * ramp(m)``, where ``ramp`` is 0
    before ``go_live`` and reaches 1 after ``ramp_months`` (1/3, 2/3, 1 for the first three months).
    ``patient_classes`` limits it to those MH admitted patient classes (``None``: every spell).
    """

    collaborative: str
    source: str
    members: tuple[str, ...]
    go_live: date
    change: float
    ramp_months: int = 3
    patient_classes: tuple[str, ...] | None = None

    def multiplier(self, month: date) -> float:
        """``1 + change * ramp(month)``: 1 before go-live, full effect from the ``ramp_months``-th month on."""
        elapsed = months_since(month, self.go_live)
        if elapsed < 0:
            return 1.0
        return 1.0 + self.change * min(1.0, (elapsed + 1) / self.ramp_months)

    def shorten(self, admitted: np.ndarray, stay: np.ndarray) -> np.ndarray:
        """Stays (days, continuous) after the effect: the part of each stay after go-live is multiplied by the
        multiplier of the month the spell would otherwise have ended in; the part before go-live is unchanged.
        So patients already in hospital at go-live benefit too, and the fall shows in discharge-month figures."""
        go_live = np.datetime64(self.go_live, "D")
        start = (admitted - go_live).astype(np.int64).astype(np.float64)
        end = start + stay
        after = np.maximum(end - np.maximum(start, 0.0), 0.0)
        end_month = (go_live + np.floor(end).astype(np.int64).astype("timedelta64[D]")).astype("datetime64[M]")
        elapsed = (end_month - np.datetime64(self.go_live, "M")).astype(np.int64)
        ramp = np.clip((elapsed + 1) / self.ramp_months, 0.0, 1.0)
        return stay - after * (-self.change) * ramp


PLANTED_EFFECTS: dict[str, PlantedEffect] = {
    "WYAAT": PlantedEffect("WYAAT", SOURCE_ACUTE, ("RCF", "RAE", "RWY", "RCD", "RR8", "RXF"), date(2022, 4, 1), -0.10),
    "SLP": PlantedEffect("SLP", SOURCE_MH, ("RV5", "RPG", "RQY"), date(2022, 4, 1), -0.15, patient_classes=("10",)),
}
#: Collaboratives deliberately given no effect (comparators for the evaluation's null result).
NO_EFFECT: tuple[str, ...] = ("NENCMH", "HNYCAP")

#: Files with deliberate bad rows: ``{source: {month: rules}}`` (each rule plants one row in one trust's rows).
BAD_ROWS: dict[str, dict[date, tuple[str, ...]]] = {
    SOURCE_MH: {
        date(2021, 6, 1): ("discharged_before_admission", "unknown_provider"),
        date(2024, 2, 1): ("discharged_before_admission",),
    },
    SOURCE_ACUTE: {
        date(2021, 9, 1): ("discharged_before_admission", "unknown_provider", "spell_duration_disagrees"),
        date(2023, 11, 1): ("spell_duration_disagrees",),
        date(2025, 5, 1): ("unknown_provider", "discharged_before_admission"),
    },
}
UNKNOWN_PROVIDER = "RZZ"

#: Mean admissions a month per trust before its size profile (acute: a sample, not national volumes).
ACUTE_ADMISSIONS_PER_MONTH = 115.0
MH_ADMISSIONS_PER_MONTH = 90.0
#: Longest stay drawn, in days (spells admitted up to this long before a file's month can appear in it).
MAX_STAY_DAYS: dict[str, int] = {SOURCE_MH: 730, SOURCE_ACUTE: 180}


@dataclass(frozen=True)
class _Group:
    """A kind of spell: its share of admissions, how it is coded and how long it lasts (lognormal days)."""

    share: float
    codes: dict[str, tuple[str, ...]]
    weights: dict[str, tuple[float, ...]]
    median_days: float  # 0 = same-day spells
    sigma: float
    patient_class: str = ""


#: Mental health spells: (WardType, MHAdmittedPatientClass) groups. Adult acute median about 33 days.
MH_CLASSES: tuple[_Group, ...] = (
    _Group(0.57, {"WardType": ("03",), "MHAdmittedPatientClass": ("10",)}, {}, 34.0, 0.7, "10"),
    _Group(0.07, {"WardType": ("03",), "MHAdmittedPatientClass": ("11",)}, {}, 22.0, 0.8, "11"),
    _Group(0.02, {"WardType": ("03",), "MHAdmittedPatientClass": ("12",)}, {}, 70.0, 0.7, "12"),
    _Group(0.03, {"WardType": ("05",), "MHAdmittedPatientClass": ("14",)}, {}, 80.0, 1.0, "14"),
    _Group(0.04, {"WardType": ("03",), "MHAdmittedPatientClass": ("19",)}, {}, 140.0, 0.7, "19"),
    _Group(0.22, {"WardType": ("06",), "MHAdmittedPatientClass": ("20",)}, {}, 52.0, 0.75, "20"),
    _Group(0.05, {"WardType": ("01",), "MHAdmittedPatientClass": ("30",)}, {}, 45.0, 0.8, "30"),
)
_MH_ADMISSION = (("21", "22", "24", "25", "28", "81", "11"), (0.22, 0.10, 0.05, 0.38, 0.12, 0.05, 0.08))
_MH_DISCHARGE = (("1", "2", "3", "4"), (0.86, 0.07, 0.06, 0.01))
_MH_DESTINATION = (
    ("19", "29", "38", "51", "53", "54", "85", "87"),
    (0.78, 0.05, 0.01, 0.03, 0.04, 0.02, 0.04, 0.03),
)

_ELECTIVE = ("11", "12", "13")
_SURGICAL = ("100", "101", "110", "120", "130", "502", "301", "330", "370")
#: Acute spells. Mean LoS over all spells about 4.5 days: day cases 0, emergency ordinary admissions about 7.
ACUTE_GROUPS: tuple[_Group, ...] = (
    _Group(
        0.24,
        {"ADMIMETH": _ELECTIVE, "CLASSPAT": ("2",), "TRETSPEF": _SURGICAL},
        {"ADMIMETH": (0.7, 0.25, 0.05), "TRETSPEF": (0.16, 0.1, 0.08, 0.06, 0.22, 0.1, 0.18, 0.04, 0.06)},
        0.0,
        0.0,
    ),
    _Group(0.03, {"ADMIMETH": ("13",), "CLASSPAT": ("3",), "TRETSPEF": ("370", "303", "301")}, {}, 0.0, 0.0),
    _Group(
        0.12,
        {"ADMIMETH": _ELECTIVE, "CLASSPAT": ("1",), "TRETSPEF": _SURGICAL},
        {"ADMIMETH": (0.75, 0.2, 0.05), "TRETSPEF": (0.2, 0.12, 0.25, 0.06, 0.02, 0.12, 0.13, 0.02, 0.08)},
        2.2,
        0.8,
    ),
    _Group(
        0.50,
        {
            "ADMIMETH": ("21", "22", "24", "28"),
            "CLASSPAT": ("1",),
            "TRETSPEF": ("300", "430", "100", "110", "420", "320", "340"),
        },
        {"ADMIMETH": (0.78, 0.1, 0.05, 0.07), "TRETSPEF": (0.33, 0.14, 0.13, 0.1, 0.1, 0.08, 0.12)},
        4.8,
        0.9,
    ),
    _Group(
        0.09,
        {"ADMIMETH": ("31", "32"), "CLASSPAT": ("5", "1"), "TRETSPEF": ("501",)},
        {"ADMIMETH": (0.9, 0.1), "CLASSPAT": (0.3, 0.7)},
        1.5,
        0.7,
    ),
    _Group(0.02, {"ADMIMETH": ("81",), "CLASSPAT": ("1",), "TRETSPEF": ("300", "430")}, {}, 8.0, 0.8),
)

_ETHNICITY = (
    ("A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S", "Z", "99"),
    (
        0.72,
        0.02,
        0.04,
        0.008,
        0.006,
        0.005,
        0.006,
        0.025,
        0.035,
        0.012,
        0.01,
        0.012,
        0.018,
        0.006,
        0.005,
        0.02,
        0.03,
        0.012,
    ),
)
#: Share of spells whose IMD decile / ethnicity is not recorded (a blank cell).
BLANK_IMD, BLANK_ETHNICITY = 0.03, 0.04


# --------------------------------------------------------------------------------------------------------------
# Trusts and people


def _trusts(source: str, reference_dir: Path) -> list[Organisation]:
    return [org for org in load_organisations(reference_dir).values() if org.org_type == ORG_TYPES[source]]


@dataclass(frozen=True)
class _Profile:
    size: float  # admissions a month
    stay: float  # LoS multiplier
    trend: float  # log change in LoS a year
    deprivation: float  # tilt of the IMD distribution (positive: more deprived)


@lru_cache(maxsize=512)
def _profile(seed: int, source: str, org: Organisation) -> _Profile:
    rng = rng_for(seed, source, org.code, "profile")
    base = ACUTE_ADMISSIONS_PER_MONTH if source == SOURCE_ACUTE else MH_ADMISSIONS_PER_MONTH
    size = base * rng.lognormal(0, 0.3)
    if "teaching" in org.name.lower() or "university" in org.name.lower():
        size *= 1.3
    size = float(np.clip(size, 0.5 * base, 1.9 * base))
    return _Profile(size, float(rng.lognormal(0, 0.1)), float(rng.normal(0.005, 0.01)), float(rng.normal(0, 0.6)))


def _people(seed: int, source: str, org: Organisation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The trust's synthetic patients: pseudonymous token, IMD decile and ethnicity code, stable per person."""
    return _people_cached(seed, source, org)


@lru_cache(maxsize=512)
def _people_cached(seed: int, source: str, org: Organisation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    profile = _profile(seed, source, org)
    n = int(profile.size * (40 if source == SOURCE_ACUTE else 20)) + 50
    rng = rng_for(seed, source, org.code, "people")
    raw_bytes = rng.bytes(16 * n)
    hexed = raw_bytes.hex()
    width = 32 if source == SOURCE_ACUTE else 24
    tokens = np.array([hexed[i * 32 : i * 32 + width] for i in range(n)], dtype=object)
    if source == SOURCE_ACUTE:
        tokens = np.array([token.upper() for token in tokens], dtype=object)
    tilt = profile.deprivation + (0.35 if source == SOURCE_MH else 0.0)
    weights = np.exp(-tilt * (np.arange(10) - 4.5) / 4.5)
    imd = rng.choice(np.arange(1, 11), size=n, p=weights / weights.sum())
    codes, shares = _ETHNICITY
    ethnicity = np.array(codes, dtype=object)[rng.choice(len(codes), size=n, p=np.array(shares) / sum(shares))]
    return tokens, imd, ethnicity


def _org_number(code: str) -> int:
    """An ODS code read as base 36 (``RCF`` → 35475): keeps EPIKEYs of different trusts apart."""
    return int(code, 36) % 100_000


# --------------------------------------------------------------------------------------------------------------
# Spells, drawn per trust and admission month


@dataclass
class _Spells:
    """Spells as parallel arrays (days are ``datetime64[D]``)."""

    spell_id: np.ndarray
    person: np.ndarray
    admitted: np.ndarray
    discharged: np.ndarray
    codes: dict[str, np.ndarray]
    imd: np.ndarray  # 0 = blank
    ethnicity: np.ndarray

    def take(self, index: np.ndarray) -> _Spells:
        return _Spells(
            self.spell_id[index],
            self.person[index],
            self.admitted[index],
            self.discharged[index],
            {key: values[index] for key, values in self.codes.items()},
            self.imd[index],
            self.ethnicity[index],
        )

    @staticmethod
    def concat(parts: Sequence[_Spells]) -> _Spells:
        return _Spells(
            np.concatenate([p.spell_id for p in parts]),
            np.concatenate([p.person for p in parts]),
            np.concatenate([p.admitted for p in parts]),
            np.concatenate([p.discharged for p in parts]),
            {key: np.concatenate([p.codes[key] for p in parts]) for key in parts[0].codes},
            np.concatenate([p.imd for p in parts]),
            np.concatenate([p.ethnicity for p in parts]),
        )

    def __len__(self) -> int:
        return len(self.spell_id)


def _effect(source: str, code: str) -> PlantedEffect | None:
    for effect in PLANTED_EFFECTS.values():
        if effect.source == source and code in effect.members:
            return effect
    return None


def _draw(rng: np.random.Generator, group: _Group, key: str, n: int) -> np.ndarray:
    options = group.codes[key]
    if len(options) == 1:
        return np.full(n, options[0], dtype=object)
    weights = np.array(group.weights.get(key, (1.0,) * len(options)))
    return np.array(options, dtype=object)[rng.choice(len(options), size=n, p=weights / weights.sum())]


def _choice(rng: np.random.Generator, table: tuple[tuple[str, ...], tuple[float, ...]], n: int) -> np.ndarray:
    codes, weights = table
    weights = np.array(weights)
    return np.array(codes, dtype=object)[rng.choice(len(codes), size=n, p=weights / weights.sum())]


@lru_cache(maxsize=8192)
def _cohort(seed: int, source: str, org: Organisation, month: date, volume: float) -> _Spells:
    """The spells ``org`` admitted in ``month`` (``volume`` = expected admissions, merged trusts included)."""
    rng = rng_for(seed, source, org.code, month)
    profile = _profile(seed, source, org)
    t = months_since(month)
    groups = MH_CLASSES if source == SOURCE_MH else ACUTE_GROUPS
    shares = np.array([g.share for g in groups])
    n = int(rng.poisson(volume))
    which = rng.choice(len(groups), size=n, p=shares / shares.sum())
    first = np.datetime64(month, "D")
    admitted = first + rng.integers(0, month_end(month).day, size=n).astype("timedelta64[D]")
    # LoS: lognormal per group, times the trust's level, a slow trend, winter pressure and any planted effect;
    # stochastic rounding keeps the mean of whole days equal to the mean of the continuous draw.
    winter = 1.0 + 0.04 * np.cos(2 * np.pi * (month.month - 1) / 12)
    level = profile.stay * np.exp(profile.trend * t / 12) * winter
    effect = _effect(source, org.code)
    stay = np.zeros(n)
    codes: dict[str, np.ndarray] = {}
    keys = ("WardType", "MHAdmittedPatientClass") if source == SOURCE_MH else ("ADMIMETH", "CLASSPAT", "TRETSPEF")
    for key in keys:
        codes[key] = np.empty(n, dtype=object)
    for g, group in enumerate(groups):
        members = np.flatnonzero(which == g)
        k = len(members)
        if not k:
            continue
        if group.median_days > 0:
            stay[members] = rng.lognormal(np.log(group.median_days), group.sigma, k) * level
            if effect and (effect.patient_classes is None or group.patient_class in effect.patient_classes):
                stay[members] = effect.shorten(admitted[members], stay[members])
        for key in keys:
            codes[key][members] = _draw(rng, group, key, k)
    days = np.floor(stay + rng.random(n) * (stay > 0))
    days = np.minimum(days, MAX_STAY_DAYS[source]).astype(np.int64)
    discharged = admitted + days.astype("timedelta64[D]")

    tokens, person_imd, person_ethnicity = _people(seed, source, org)
    people = rng.integers(0, len(tokens), size=n)
    imd = np.where(rng.random(n) < BLANK_IMD, 0, person_imd[people])
    ethnicity = np.where(rng.random(n) < BLANK_ETHNICITY, "", person_ethnicity[people]).astype(object)
    if source == SOURCE_MH:
        codes["MethAdmMHHospProvSpell"] = _choice(rng, _MH_ADMISSION, n)
        method = _choice(rng, _MH_DISCHARGE, n)
        destination = _choice(rng, _MH_DESTINATION, n)
        destination[method == "4"] = "79"
        codes["MethOfDischMHHospProvSpell"] = method
        codes["DestOfDischHospProvSpell"] = destination
        spell_id = np.array([f"{org.code}{month:%Y%m}{i:05d}" for i in range(n)], dtype=object)
    else:
        prefix = f"{month:%Y%m}{_org_number(org.code):05d}"
        spell_id = np.array([f"{prefix}{i:05d}" for i in range(n)], dtype=object)
    return _Spells(spell_id, tokens[people], admitted, discharged, codes, imd, ethnicity)


def _constituents(code: str, month: date, reference_dir: Path) -> list[str]:
    """``code`` and every predecessor whose spells it carries in ``month`` (mergers effective by then)."""
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


def _active_spells(
    seed: int, source: str, reporter: Organisation, month: date, reference_dir: Path, volume_scale: float = 1.0
) -> _Spells:
    """Spells ``reporter`` submits for ``month``: admitted by its end and not discharged before its start.

    ``volume_scale`` multiplies every trust's admissions (national-scale benchmarks; 1 for the samples)."""
    organisations = load_organisations(reference_dir)
    lookback = MAX_STAY_DAYS[source] // 28 + 1
    first, last = np.datetime64(month, "D"), np.datetime64(month_end(month), "D")
    parts = []
    for code in _constituents(reporter.code, month, reference_dir):
        org = organisations[code]
        for admission_month in month_range(add_months(month, -lookback), month):
            if not org.is_open(admission_month):
                continue
            volume = sum(
                _profile(seed, source, organisations[c]).size
                for c in _constituents(code, admission_month, reference_dir)
            )
            if source == SOURCE_ACUTE:
                volume *= curve(months_since(admission_month), COVID_ACTIVITY)
            volume *= seasonal_activity(admission_month) * volume_scale
            cohort = _cohort(seed, source, org, admission_month, round(volume, 6))
            active = np.flatnonzero((cohort.discharged >= first) & (cohort.admitted <= last))
            if len(active):
                parts.append(cohort.take(active))
    if not parts:
        return _cohort(seed, source, reporter, month, 0.0)
    spells = _Spells.concat(parts)
    return spells.take(np.lexsort((spells.spell_id.astype(str), spells.admitted)))


# --------------------------------------------------------------------------------------------------------------
# Files


def _bad_rows(seed: int, source: str, month: date, tables: list[tuple[str, _Spells]]) -> list[tuple[str, _Spells]]:
    """Plant :data:`BAD_ROWS` for ``month`` in one trust's rows (chosen by a stable hash); returns new tables."""
    rules = BAD_ROWS[source].get(month, ())
    if not rules or not tables:
        return tables
    target = min(range(len(tables)), key=lambda i: (stable_hash(seed, source, "bad_rows", month, tables[i][0]), i))
    code, spells = tables[target]
    spells = spells.take(np.arange(len(spells)))  # a copy
    first, last = np.datetime64(month, "D"), np.datetime64(month_end(month), "D")
    closed = np.flatnonzero(
        (spells.admitted >= first)
        & (spells.discharged <= last)
        & (spells.discharged <= first + np.timedelta64(24, "D"))
    )
    extra = []
    used = 0
    for rule in rules:
        if rule == "unknown_provider":
            copy = spells.take(np.array([len(spells) // 2]))
            suffix = f"{99_999 - used:05d}"
            copy.spell_id = np.array([f"{copy.spell_id[0][:-5]}{suffix}"], dtype=object)
            extra.append(("unknown", copy))
            continue
        if not len(closed):
            continue
        row = closed[min(used, len(closed) - 1)]
        used += 1
        if rule == "discharged_before_admission":
            spells.admitted[row] = spells.discharged[row] + np.timedelta64(2, "D")
        elif rule == "spell_duration_disagrees":
            spells.codes.setdefault("SPELDUR_OFFSET", np.zeros(len(spells), dtype=np.int64))[row] = 3
    tables = list(tables)
    tables[target] = (code, spells)
    for _, copy in extra:
        tables.append((UNKNOWN_PROVIDER, copy))
    return tables


def _cells(values: np.ndarray, blank: np.ndarray | None = None) -> np.ndarray:
    text = np.datetime_as_string(values, unit="D").astype(object) if values.dtype.kind == "M" else values
    if blank is not None:
        text = np.where(blank, "", text)
    return text


_IMD_TEXT = np.array([""] + [str(i) for i in range(1, 11)], dtype=object)


def month_csv(
    source: str,
    month: date,
    *,
    seed: int = DEFAULT_SEED,
    reference_dir: Path = REFERENCE_DIR,
    volume_scale: float = 1.0,
) -> bytes:
    """The month's extract exactly as written: UTF-8, header first, ``\\r\\n`` line endings."""
    if source == SOURCE_MH:
        raise ValueError("mental health spells are MHSDS tables: orchestration.samples.los_mh.submission_tables")
    month = month_start(month)
    reporters = [org for org in _trusts(source, reference_dir) if org.is_open(month)]
    tables = [(org.code, _active_spells(seed, source, org, month, reference_dir, volume_scale)) for org in reporters]
    tables = _bad_rows(seed, source, month, tables)
    last = np.datetime64(month_end(month), "D")
    columns = []
    for code, spells in tables:
        n = len(spells)
        if not n:
            continue
        open_ = spells.discharged > last
        provider = np.full(n, code, dtype=object)
        imd = _IMD_TEXT[spells.imd]
        duration = (spells.discharged - spells.admitted).astype(np.int64)
        duration = duration + spells.codes.get("SPELDUR_OFFSET", 0)
        block = [
            spells.spell_id,
            spells.person,
            provider,
            _cells(spells.admitted),
            _cells(spells.discharged, open_),
            spells.codes["ADMIMETH"],
            spells.codes["CLASSPAT"],
            spells.codes["TRETSPEF"],
            np.where(open_, "", duration.astype(str).astype(object)),
            imd,
            spells.ethnicity,
        ]
        columns.append(np.column_stack(block))
    header = ACUTE.header
    rows = np.concatenate(columns).tolist() if columns else []
    return csv_bytes(header, rows)


def write_los_month(
    source: str,
    month: date,
    out_dir: Path,
    *,
    seed: int = DEFAULT_SEED,
    reference_dir: Path = REFERENCE_DIR,
    volume_scale: float = 1.0,
    compress: bool = True,
) -> Path:
    """Write ``out_dir/<stem>.zip`` holding ``<stem>.csv`` (``MHS501_2024-04`` / ``HES_APC_2024-04``), or with
    ``compress=False`` the plain ``out_dir/<stem>.csv`` (benchmarks)."""
    if source == SOURCE_ACUTE:  # HES APC episodes: orchestration/samples/los_acute.py
        from orchestration.samples import los_acute

        return los_acute.write_month(
            month, out_dir, seed=seed, reference_dir=reference_dir, volume_scale=volume_scale, compress=compress
        )
    if source == SOURCE_MH:  # MHSDS tables: orchestration.samples.los_mh
        from orchestration.samples.los_mh import write_los_mh_month

        if volume_scale != 1.0:
            raise ValueError("MHSDS submissions are written at volume_scale 1 (the national generator's setting)")
        return write_los_mh_month(month, out_dir, seed=seed, reference_dir=reference_dir, compress=compress)
    member = file_name(source, month_start(month))
    data = month_csv(source, month, seed=seed, reference_dir=reference_dir, volume_scale=volume_scale)
    if not compress:
        return write_csv_file(Path(out_dir) / member, data)
    return write_zip(Path(out_dir) / (member.removesuffix(".csv") + ".zip"), member, data)


def write_los_files(
    out_dir: Path,
    *,
    first_month: date = DEFAULT_FIRST_MONTH,
    last_month: date = DEFAULT_LAST_MONTH,
    seed: int = DEFAULT_SEED,
    sources: Sequence[str] = (SOURCE_MH, SOURCE_ACUTE),
    reference_dir: Path = REFERENCE_DIR,
) -> dict[str, list[Path]]:
    """Write every month's extract of each source from ``first_month`` to ``last_month`` (both included).

    ``out_dir/los_mh/MHSDS_<YYYY>-<MM>.zip`` (MHS501, MHS502, MHS001) and ``out_dir/los_acute/HES_APC_<YYYY>-<MM>.zip``
    (HES APC episodes); returns
    ``{"los_mh": [paths in month order], "los_acute": [...]}``. The same arguments give byte-identical files, and
    a month's file does not depend on which other months are written.
    """
    out_dir = Path(out_dir)
    if last_month < first_month:
        raise ValueError(f"last_month {last_month} is before first_month {first_month}")
    written: dict[str, list[Path]] = {}
    for source in sources:
        if source == SOURCE_ACUTE:  # HES APC episodes: orchestration/samples/los_acute.py
            from orchestration.samples import los_acute

            written[source] = los_acute.write_files(
                out_dir, first_month=first_month, last_month=last_month, seed=seed, reference_dir=reference_dir
            )
        elif source == SOURCE_MH:  # MHSDS tables: orchestration.samples.los_mh
            from orchestration.samples.los_mh import write_los_mh_files

            written[source] = write_los_mh_files(
                out_dir, first_month=first_month, last_month=last_month, seed=seed, reference_dir=reference_dir
            )
        else:
            raise ValueError(f"unknown length-of-stay source {source!r}; expected {SOURCE_MH!r} or {SOURCE_ACUTE!r}")
    _cohort.cache_clear()
    return written


def expected_admissions_per_month(
    source: str, *, seed: int = DEFAULT_SEED, reference_dir: Path = REFERENCE_DIR
) -> float:
    """Expected admissions a month over every trust of the source's type at ``volume_scale`` 1 (before seasonality
    and COVID-19): what a benchmark divides a national volume by to get its ``volume_scale``."""
    return float(sum(_profile(seed, source, org).size for org in _trusts(source, reference_dir)))
