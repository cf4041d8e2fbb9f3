"""Helpers shared by the bundled-sample generators (RTT now; out-of-area placements and lengths of stay later).

Every value these generators produce is synthetic: invented by seeded random draws shaped to look like the
published statistics. Only the reference data they are built around (organisation codes and names, ICBs, regions,
successions) comes from ``seeds/reference``; the activity figures describe no real patients or services.

Determinism rules, which every generator follows:

* Randomness comes only from :func:`rng_for`, keyed by ``(seed, source, organisation, month, ...)`` through
  SHA-256, never Python's ``hash()`` (salted per process). Adding a source, an organisation or a month therefore
  never changes the draws of another key, and one month can be generated without generating any other.
* Files are written with :func:`write_zip`, which fixes the member's timestamp, permissions and compression so
  that the same bytes in give the same zip out.
"""

from __future__ import annotations

import calendar
import csv
import hashlib
import io
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = REPO_ROOT / "seeds" / "reference"
DEFAULT_SAMPLES_DIR = REPO_ROOT / "seeds" / "samples"

DEFAULT_SEED = 20261124
DEFAULT_FIRST_MONTH = date(2021, 1, 1)
DEFAULT_LAST_MONTH = date(2026, 9, 1)
#: Month 0 of the generators' time axis: trends and the COVID-19 recovery curves are pinned to it.
EPOCH = date(2021, 1, 1)

#: Fixed member timestamp of every zip written (zip has no time zone; any fixed value makes output reproducible).
ZIP_DATE_TIME = (2026, 1, 1, 0, 0, 0)

# --------------------------------------------------------------------------------------------------------------
# Reference seeds
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Organisation:
    code: str
    name: str
    org_type: str
    icb_code: str
    region_code: str
    open_date: date | None
    close_date: date | None

    def is_open(self, month: date) -> bool:
        """Open for at least part of ``month`` (a trust closing on 31 March still reports March)."""
        starts_in_time = self.open_date is None or self.open_date <= month_end(month)
        return starts_in_time and (self.close_date is None or self.close_date >= month)


@dataclass(frozen=True)
class Icb:
    code: str
    name: str
    region_code: str
    region_name: str


@dataclass(frozen=True)
class Succession:
    predecessor: str
    successor: str
    effective_date: date


def _parse_date(text: str) -> date | None:
    text = (text or "").strip()
    return date.fromisoformat(text) if text else None


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@lru_cache(maxsize=8)
def load_organisations(reference_dir: Path = REFERENCE_DIR) -> dict[str, Organisation]:
    """``organisations.csv`` keyed by ODS code, in file order."""
    return {
        row["org_code"]: Organisation(
            code=row["org_code"],
            name=row["org_name"],
            org_type=row["org_type"],
            icb_code=row["icb_code"],
            region_code=row["region_code"],
            open_date=_parse_date(row["open_date"]),
            close_date=_parse_date(row["close_date"]),
        )
        for row in _read_csv(Path(reference_dir) / "organisations.csv")
    }


@lru_cache(maxsize=8)
def load_icbs(reference_dir: Path = REFERENCE_DIR) -> dict[str, Icb]:
    """``icbs.csv`` keyed by ICB code, in file order."""
    return {
        row["icb_code"]: Icb(row["icb_code"], row["icb_name"], row["region_code"], row["region_name"])
        for row in _read_csv(Path(reference_dir) / "icbs.csv")
    }


@lru_cache(maxsize=8)
def load_icb_successions(reference_dir: Path = REFERENCE_DIR) -> tuple[Succession, ...]:
    """``icb_successions.csv``: predecessor ICB, a successor (one row per successor of a split) and the date."""
    path = Path(reference_dir) / "icb_successions.csv"
    if not path.is_file():
        return ()
    return tuple(
        Succession(row["predecessor_icb_code"], row["successor_icb_code"], date.fromisoformat(row["effective_date"]))
        for row in _read_csv(path)
    )


@lru_cache(maxsize=8)
def load_successions(reference_dir: Path = REFERENCE_DIR) -> tuple[Succession, ...]:
    """``successions.csv``: predecessor, successor and the date the successor takes over."""
    return tuple(
        Succession(row["predecessor_org_code"], row["successor_org_code"], date.fromisoformat(row["effective_date"]))
        for row in _read_csv(Path(reference_dir) / "successions.csv")
    )


#: NHS England regions, for region codes no ICB row in ``icbs.csv`` names.
REGION_NAMES: dict[str, str] = {
    "Y56": "London",
    "Y58": "South West",
    "Y59": "South East",
    "Y60": "Midlands",
    "Y61": "East of England",
    "Y62": "North West",
    "Y63": "North East and Yorkshire",
}


def region_name(region_code: str, reference_dir: Path = REFERENCE_DIR) -> str:
    """Region name as ``icbs.csv`` spells it, falling back to :data:`REGION_NAMES`."""
    for icb in load_icbs(reference_dir).values():
        if icb.region_code == region_code:
            return icb.region_name
    return REGION_NAMES.get(region_code, region_code)


# --------------------------------------------------------------------------------------------------------------
# Sub-ICB locations (commissioners)
# --------------------------------------------------------------------------------------------------------------

#: Sub-ICB location codes per ICB as they were from July 2022 to March 2026, in the three- or five-character style
#: of the published files. From April 2026 a location's ICB follows ``icb_successions.csv`` (see
#: :func:`sub_icb_parent`).
SUB_ICB_LOCATIONS: dict[str, tuple[str, ...]] = {
    "QWO": ("15F", "36J", "02T", "03R", "X2C4Y"),
    "QOQ": ("42D", "03F", "02Y", "03H", "03K"),
    "QHM": ("13T", "00L", "84H", "00P", "99C", "00N", "16C", "01H"),
    "QUA": ("D2P2L",),
    "QHL": ("15E",),
    "QJ2": ("15M",),
    "QK1": ("04C", "04V", "03W"),
    "QJK": ("15N",),
    "QU9": ("10Q", "14Y", "15A"),
    "QRL": ("D9Y0V", "10R"),
    "QUE": ("06H",),
    "QMM": ("26A",),
    "QKK": ("72Q",),
    "QWE": ("36L",),
    "QMJ": ("93C",),
    "QMF": ("A3A8R",),
    "QRV": ("W2U3Z",),
    "QYG": ("99A", "01J", "01F"),
    "QT6": ("11N",),
    "QSL": ("11X",),
    "QVV": ("11J",),
    "QNC": ("05D", "05G", "05Q", "05V", "04Y", "05W"),
    "QM7": ("06K", "06N"),
}

#: Sub-ICB location code → its ICB code (until March 2026).
SUB_ICB_PARENT: dict[str, str] = {loc: icb for icb, locs in SUB_ICB_LOCATIONS.items() for loc in locs}

#: Where the locations of a split ICB went, as the April 2026 RTT file shows: Hertfordshire and West Essex (QM7) was
#: split between NHS Central East (S1Y5D) and NHS Essex (D7T5G); its two locations here are Hertfordshire's. An ICB
#: with one successor needs no entry.
SUB_ICB_SPLIT_SUCCESSORS: dict[str, str] = {"06K": "S1Y5D", "06N": "S1Y5D"}


def icb(code: str, reference_dir: Path = REFERENCE_DIR) -> Icb:
    """An ICB from ``icbs.csv``."""
    found = load_icbs(reference_dir).get(code)
    if found is None:
        raise KeyError(f"unknown ICB code {code!r}")
    return found


def sub_icb_parent(location_code: str, month: date | None = None, reference_dir: Path = REFERENCE_DIR) -> str:
    """The ICB a sub-ICB location belongs to in ``month`` (``None``: as in :data:`SUB_ICB_PARENT`).

    The ICB of :data:`SUB_ICB_PARENT` is followed through the successions of ``icb_successions.csv`` in effect by
    ``month``; at a split, :data:`SUB_ICB_SPLIT_SUCCESSORS` says which successor took the location.
    """
    code = SUB_ICB_PARENT[location_code]
    if month is None:
        return code
    successions = load_icb_successions(reference_dir)
    for _ in range(len(successions) + 1):
        successors = {s.successor for s in successions if s.predecessor == code and s.effective_date <= month}
        if not successors:
            return code
        if len(successors) == 1:
            code = successors.pop()
        elif SUB_ICB_SPLIT_SUCCESSORS.get(location_code) in successors:
            code = SUB_ICB_SPLIT_SUCCESSORS[location_code]
        else:
            raise KeyError(f"{code} was split between {', '.join(sorted(successors))}: which took {location_code}?")
    raise ValueError(f"icb_successions.csv loops through {code}")


def icb_short_name(icb_name: str) -> str:
    """``NHS West Yorkshire Integrated Care Board`` → ``NHS West Yorkshire ICB``."""
    return icb_name.replace("Integrated Care Board", "ICB")


def sub_icb_name(location_code: str, month: date | None = None, reference_dir: Path = REFERENCE_DIR) -> str:
    """Sub-ICB location name as published since July 2022: ``NHS WEST YORKSHIRE ICB - 15F`` (its ICB in ``month``)."""
    parent = icb(sub_icb_parent(location_code, month, reference_dir), reference_dir)
    return f"{icb_short_name(parent.name)} - {location_code}".upper()


# --------------------------------------------------------------------------------------------------------------
# Deterministic randomness
# --------------------------------------------------------------------------------------------------------------


def _key_bytes(key: Sequence[object]) -> bytes:
    parts = []
    for part in key:
        if isinstance(part, date):
            part = part.isoformat()
        if not isinstance(part, (str, int)) or isinstance(part, bool):
            raise TypeError(f"RNG key parts must be str, int or date, not {type(part).__name__}")
        parts.append(f"{type(part).__name__[0]}:{part}")
    return "\x1f".join(parts).encode("utf-8")


def stable_hash(*key: object) -> int:
    """A 64-bit integer from SHA-256 of ``key`` (str, int or date parts); the same in every process and Python."""
    return int.from_bytes(hashlib.sha256(_key_bytes(key)).digest()[:8], "big")


def rng_for(seed: int, *key: object) -> np.random.Generator:
    """A NumPy generator that depends only on ``seed`` and ``key``, e.g. ``rng_for(seed, "rtt", "RR8", month)``."""
    digest = hashlib.sha256(_key_bytes((int(seed), *key))).digest()
    entropy = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 32, 4)]
    return np.random.default_rng(np.random.SeedSequence(entropy))


# --------------------------------------------------------------------------------------------------------------
# Months
# --------------------------------------------------------------------------------------------------------------


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def months_since(month: date, origin: date = EPOCH) -> int:
    """Whole months from ``origin`` to ``month`` (negative before it)."""
    return (month.year - origin.year) * 12 + month.month - origin.month


def month_range(first: date, last: date) -> Iterator[date]:
    """First days of every month from ``first`` to ``last``, both included."""
    month, last = month_start(first), month_start(last)
    while month <= last:
        yield month
        month = add_months(month, 1)


def parse_month(text: str) -> date:
    """``2024-04`` or ``2024-04-01`` → ``date(2024, 4, 1)``."""
    parts = text.strip().split("-")
    if len(parts) not in (2, 3):
        raise ValueError(f"{text!r} is not a month like 2024-04")
    return date(int(parts[0]), int(parts[1]), 1)


# --------------------------------------------------------------------------------------------------------------
# Seasonality and the national shape of recovery after COVID-19 (month 0 = January 2021)
# --------------------------------------------------------------------------------------------------------------

#: Monthly activity (clock stops, referrals, admissions) relative to an average month: August and December dip,
#: January and March rise.
SEASONAL_ACTIVITY: dict[int, float] = {
    1: 1.04,
    2: 0.99,
    3: 1.07,
    4: 0.93,
    5: 0.98,
    6: 1.02,
    7: 1.03,
    8: 0.89,
    9: 1.00,
    10: 1.04,
    11: 1.05,
    12: 0.84,
}
#: Month-end backlogs (waiting lists, patients in beds) relative to trend: they grow after the dips in activity.
SEASONAL_BACKLOG: dict[int, float] = {
    1: 1.012,
    2: 1.006,
    3: 0.996,
    4: 0.999,
    5: 1.002,
    6: 0.998,
    7: 0.997,
    8: 1.004,
    9: 1.006,
    10: 1.000,
    11: 0.994,
    12: 1.002,
}


def seasonal_activity(month: date) -> float:
    return SEASONAL_ACTIVITY[month.month]


def seasonal_backlog(month: date) -> float:
    return SEASONAL_BACKLOG[month.month]


def curve(t: float, knots: Sequence[tuple[float, float]]) -> float:
    """Piecewise-linear curve through ``(month index, value)`` knots, flat beyond the ends."""
    xs, ys = zip(*knots, strict=True)
    return float(np.interp(t, xs, ys))


#: Elective activity relative to normal: the spring 2020 stop, the winter 2020/21 wave, then recovery.
COVID_ACTIVITY = ((-10, 1.0), (-9, 0.35), (-6, 0.70), (-3, 0.88), (-1, 0.85), (0, 0.74), (1, 0.82), (2, 0.95), (3, 1.0))


# --------------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------------


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[str]], lineterminator: str = "\r\n") -> bytes:
    """UTF-8 CSV (no BOM) written by :mod:`csv`, header first, minimal quoting, ``\\r\\n`` line endings."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=lineterminator)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def write_zip(path: Path, member_name: str, data: bytes) -> Path:
    """Write ``data`` as the single deflated member ``member_name`` of the zip ``path``, byte-deterministically.

    The member's timestamp, permissions, creating system and compression level are fixed; the zip is written to a
    temporary file beside ``path`` and moved into place, so a reader never sees half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = zipfile.ZipInfo(member_name, date_time=ZIP_DATE_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w") as archive:
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def write_csv_file(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` as a plain CSV, through a temporary file moved into place (a reader never sees
    half a file). The benchmark writes plain CSVs so that every contender, DuckDB's bare scan included, reads the
    same bytes; the bundled samples are zipped as NHS England publishes them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as raw:
            raw.write(data)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path
