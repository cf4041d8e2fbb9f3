"""Synthetic, pseudonymised HES APC *episode* extracts for acute lengths of stay, in HES's own layout.

Everything here is synthetic: no row describes a real patient. The spells are the ones
:mod:`orchestration.samples.los` draws for acute trusts (same trusts, volumes, merger, planted WYAAT effect and
deliberate bad rows); this module cuts each spell into consultant episodes and writes the episodes as NHS England's
HES APC extracts hold them (field names from the HES APC data dictionary):

* one row per episode: ``EPIKEY``, ``EPIORDER`` (1, 2, … within the spell), ``EPISTART`` / ``EPIEND``,
  ``ADMIDATE`` on every episode, ``DISDATE`` and ``SPELDUR`` on the spell's last episode only, ``SUSSPELLID``
  (the spell id), ``PROCODE3``, ``CLASSPAT``, ``ADMIMETH``, ``TRETSPEF``, ``IMD04_DECILE`` as HES's text bands
  ("Most deprived 10%" …), ``ETHNOS``, ``ENCRYPTED_HESID``, plus columns the loader does not need (``FYEAR``,
  ``EPISTAT``, ``STARTAGE_CALC``), as real extracts have;
* a file per month, ``out_dir/los_acute/HES_APC_<YYYY>-<MM>.zip``, holding the episodes that *ended* in the month
  (a spell discharged in March after an episode ending in February has that episode in February's file);
* ordinary admissions with one to three episodes, day cases (CLASSPAT 2) and regular day / night attenders
  (3, 4) with one; ``ADMIMETH`` 2A-2D instead of 28 from April 2021;
* HES placeholder dates on a few rows (``1800-01-01`` on an EPISTART, ``1801-01-01`` on a non-final DISDATE or
  ADMIDATE), where they do not change any spell's length of stay;
* dates ``dd/mm/yyyy`` in the files of March, June, September and December, ``YYYY-MM-DD`` otherwise.

Files are deterministic: an episode's cut points come from a hash of its spell id, so a spell is cut the same way
in every month's file. The bundled files are monthly (not cumulative year-to-date: that would repeat each month up
to twelve times); cumulative files are exercised in ``tests/test_los_acute.py``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from orchestration.samples import los as spells_source
from orchestration.samples.common import (
    DEFAULT_FIRST_MONTH,
    DEFAULT_LAST_MONTH,
    DEFAULT_SEED,
    REFERENCE_DIR,
    csv_bytes,
    month_end,
    month_range,
    month_start,
    write_csv_file,
    write_zip,
)
from orchestration.sources.los_acute import IMD_TEXT, file_name

SOURCE = "los_acute"
FOLDER = "los_acute"

HEADER: tuple[str, ...] = (
    "FYEAR",
    "EPIKEY",
    "EPIORDER",
    "EPISTAT",
    "EPISTART",
    "EPIEND",
    "ADMIDATE",
    "DISDATE",
    "PROCODE3",
    "SUSSPELLID",
    "CLASSPAT",
    "ADMIMETH",
    "TRETSPEF",
    "SPELDUR",
    "IMD04_DECILE",
    "ETHNOS",
    "ENCRYPTED_HESID",
    "STARTAGE_CALC",
)
#: Emergency admission method codes that replaced 28 ("other emergency") from April 2021 here.
EMERGENCY_OTHER = np.array(["2A", "2B", "2C", "2D"], dtype=object)
NEW_EMERGENCY_CODES_FROM = date(2021, 4, 1)
#: Months whose files write dates dd/mm/yyyy.
DMY_MONTHS = (3, 6, 9, 12)


def _mix(values: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 of ``values`` (uint64) with ``salt``: uniform floats in [0, 1) that depend only on the inputs."""
    with np.errstate(over="ignore"):
        z = values + np.uint64((0x9E3779B97F4A7C15 * (salt + 1)) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def _dates(values: np.ndarray, dmy: bool) -> np.ndarray:
    text = np.datetime_as_string(values, unit="D").astype(object)
    if dmy:
        text = np.array([f"{t[8:10]}/{t[5:7]}/{t[0:4]}" if t != "NaT" else t for t in text], dtype=object)
    return np.where(np.isnat(values), "", text)


def _episodes(code: str, spells, month: date, dmy: bool) -> list[np.ndarray]:
    """The episodes of ``spells`` that end in ``month``, as columns of text in :data:`HEADER` order."""
    n = len(spells)
    if not n:
        return []
    key = np.array([int(s) for s in spells.spell_id], dtype=np.uint64)
    classpat = spells.codes["CLASSPAT"].copy()
    classpat[(classpat == "3") & (_mix(key, 7) < 0.3)] = "4"  # regular night attenders
    stay = (spells.discharged - spells.admitted).astype(np.int64)
    ordinary = (classpat == "1") | (classpat == "5")
    # Episodes per spell: 1, or 2 (35%), or 3 (12% of stays of 4 days or more); cut points inside the stay.
    k = 1 + (ordinary & (stay >= 1) & (_mix(key, 1) < 0.35)) + (ordinary & (stay >= 4) & (_mix(key, 2) < 0.12))
    f1 = 0.2 + 0.4 * _mix(key, 3)
    f2 = f1 + (1.0 - f1) * (0.3 + 0.4 * _mix(key, 4))
    first_day, last_day = np.datetime64(month, "D"), np.datetime64(month_end(month), "D")
    rows = []
    for j in (1, 2, 3):
        has = k >= j
        if not has.any():
            continue
        cut_before = np.where(j == 1, 0.0, np.where(j == 2, f1, f2))
        cut_after = np.where(k == j, 1.0, np.where(j == 1, f1, f2))
        start = spells.admitted + np.floor(np.maximum(stay, 0) * cut_before).astype("timedelta64[D]")
        end = spells.admitted + np.floor(np.maximum(stay, 0) * cut_after).astype("timedelta64[D]")
        last = k == j
        end = np.where(last, spells.discharged, end)
        start = np.where(j == 1, spells.admitted, start)
        take = np.flatnonzero(has & (end >= first_day) & (end <= last_day))
        if not len(take):
            continue
        rows.append((j, take, start[take], end[take], last[take]))
    columns = []
    fyear_start = month.year if month.month >= 4 else month.year - 1
    fyear = f"{fyear_start % 100:02d}{(fyear_start + 1) % 100:02d}"
    for j, take, start, end, last in rows:
        m = len(take)
        sub = key[take]
        discharged = np.where(last, spells.discharged[take], np.datetime64("NaT"))
        duration = (spells.discharged[take] - spells.admitted[take]).astype(np.int64)
        duration = duration + np.asarray(spells.codes.get("SPELDUR_OFFSET", np.zeros(n, np.int64)))[take]
        episode_start = _dates(start, dmy)
        admission = _dates(spells.admitted[take], dmy)
        discharge = _dates(discharged, dmy)
        # HES placeholders where they change no length of stay: a first episode's EPISTART (ADMIDATE holds the
        # same day), a non-final episode's ADMIDATE or DISDATE.
        episode_start[(j == 1) & (_mix(sub, 10 + j) < 0.01)] = "1800-01-01"
        admission[~last & (_mix(sub, 20 + j) < 0.02)] = "1801-01-01"
        discharge[~last & (_mix(sub, 30 + j) < 0.02)] = "1801-01-01"
        method = spells.codes["ADMIMETH"][take].copy()
        if month >= NEW_EMERGENCY_CODES_FROM:
            other = method == "28"
            method[other] = EMERGENCY_OTHER[(_mix(sub[other], 5) * 4).astype(int)]
        age = (18 + _mix(sub, 6) * 75).astype(int).astype(str).astype(object)
        block = [
            np.full(m, fyear, dtype=object),
            np.array([f"{s}{j:02d}" for s in spells.spell_id[take]], dtype=object),
            np.full(m, str(j), dtype=object),
            np.full(m, "3", dtype=object),
            episode_start,
            _dates(end, dmy),
            admission,
            discharge,
            np.full(m, code, dtype=object),
            spells.spell_id[take],
            classpat[take],
            method,
            spells.codes["TRETSPEF"][take],
            np.where(last, duration.astype(str).astype(object), ""),
            np.array(IMD_TEXT, dtype=object)[spells.imd[take]],
            spells.ethnicity[take],
            spells.person[take],
            age,
        ]
        columns.append(np.column_stack(block))
    return columns


def month_csv(
    month: date, *, seed: int = DEFAULT_SEED, reference_dir: Path = REFERENCE_DIR, volume_scale: float = 1.0
) -> bytes:
    """The month's HES APC episode extract exactly as written (UTF-8, header first, ``\\r\\n`` line endings)."""
    month = month_start(month)
    reporters = [org for org in spells_source._trusts(SOURCE, reference_dir) if org.is_open(month)]
    tables = [
        (org.code, spells_source._active_spells(seed, SOURCE, org, month, reference_dir, volume_scale))
        for org in reporters
    ]
    tables = spells_source._bad_rows(seed, SOURCE, month, tables)
    dmy = month.month in DMY_MONTHS
    blocks = [block for code, spells in tables for block in _episodes(code, spells, month, dmy)]
    rows = np.concatenate(blocks).tolist() if blocks else []
    return csv_bytes(HEADER, rows)


def write_month(
    month: date,
    out_dir: Path,
    *,
    seed: int = DEFAULT_SEED,
    reference_dir: Path = REFERENCE_DIR,
    volume_scale: float = 1.0,
    compress: bool = True,
) -> Path:
    """Write ``out_dir/HES_APC_<YYYY>-<MM>.zip`` (or the plain ``.csv`` with ``compress=False``)."""
    member = file_name(month_start(month))
    data = month_csv(month, seed=seed, reference_dir=reference_dir, volume_scale=volume_scale)
    if not compress:
        return write_csv_file(Path(out_dir) / member, data)
    return write_zip(Path(out_dir) / (member.removesuffix(".csv") + ".zip"), member, data)


def write_files(
    out_dir: Path,
    *,
    first_month: date = DEFAULT_FIRST_MONTH,
    last_month: date = DEFAULT_LAST_MONTH,
    seed: int = DEFAULT_SEED,
    reference_dir: Path = REFERENCE_DIR,
) -> list[Path]:
    """Every month's extract from ``first_month`` to ``last_month`` under ``out_dir/los_acute/``, in order."""
    folder = Path(out_dir) / FOLDER
    written = [
        write_month(m, folder, seed=seed, reference_dir=reference_dir) for m in month_range(first_month, last_month)
    ]
    spells_source._cohort.cache_clear()
    return written
