"""National-scale synthetic files for the benchmark (SPEC §12): the sample generators, at national volumes.

The same code writes these and the bundled samples; only the scale differs:

* RTT: the reference acute trusts plus :data:`NATIONAL_EXTRA_PROVIDERS` synthetic trusts ``RZ001``… (about 480
  providers and 185,000 rows, 75 MB, a month, as NHS England publishes). The synthetic trusts are not in
  ``seeds/reference``: the warehouse loads them as organisations ``not_in_reference`` (dim_organisation), i.e.
  non-member trusts, exactly as it treats the independent-sector providers of the real national file.
* Out-of-area placements: every mental health trust of the reference data, every month.
* Acute spells: ``spell_fraction`` × 1.4 million spells a month (England's admitted patient care), spread over the
  reference acute trusts (so every spell is attributed; synthetic trusts would be rejected as unknown providers),
  for the last ``acute_months`` months. Mental health spells: the samples' volume, the same months.

Files are plain CSVs (``compress=False``) so that every contender in the benchmark, DuckDB's bare scan included,
reads the same bytes. Everything is deterministic: the same arguments give the same bytes.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

from orchestration.samples.common import DEFAULT_LAST_MONTH, DEFAULT_SEED, add_months, month_range

#: Synthetic RTT providers added to the reference acute trusts: about 480 providers report in a national month.
NATIONAL_EXTRA_PROVIDERS = 453
#: Acute admitted patient care spells a month in England (about 17 million a year, SPEC §12).
NATIONAL_ACUTE_SPELLS_PER_MONTH = 1_400_000


def national_months(months: int, last_month: date = DEFAULT_LAST_MONTH) -> list[date]:
    """The ``months`` months ending at ``last_month`` (both included), oldest first."""
    if months < 1:
        raise ValueError("months must be at least 1")
    return list(month_range(add_months(last_month, 1 - months), last_month))


def _write(task: tuple) -> list[Path]:
    kind, month, out_dir, seed, extra = task
    if kind == "rtt":
        from orchestration.samples.rtt import REVISED_MONTHS, write_rtt_month

        written = [write_rtt_month(month, out_dir, seed=seed, extra_providers=extra, compress=False)]
        if month in REVISED_MONTHS:
            written.append(
                write_rtt_month(month, out_dir, seed=seed, revised=True, extra_providers=extra, compress=False)
            )
        return written
    from orchestration.samples.los import write_los_month

    return [write_los_month(kind, month, out_dir, seed=seed, volume_scale=extra, compress=False)]


def generate_national(
    out_dir: Path,
    *,
    months: int,
    last_month: date = DEFAULT_LAST_MONTH,
    spell_fraction: float = 0.1,
    acute_months: int = 12,
    seed: int = DEFAULT_SEED,
    workers: int = 2,
) -> dict[str, list[Path]]:
    """Write ``months`` months of national-scale files ending at ``last_month`` under ``out_dir/<source>/``.

    Returns ``{source: [paths]}``. RTT and out-of-area placements cover every month; spells the last
    ``min(acute_months, months)`` months.
    """
    from orchestration.samples.los import SOURCE_ACUTE, SOURCE_MH, expected_admissions_per_month
    from orchestration.samples.oap import write_oap_files
    from orchestration.sources.ods import write_sample_ods

    out_dir = Path(out_dir)
    every_month = national_months(months, last_month)
    spell_months = every_month[-min(acute_months, months) :]
    acute_scale = spell_fraction * NATIONAL_ACUTE_SPELLS_PER_MONTH / expected_admissions_per_month(SOURCE_ACUTE)
    tasks = [("rtt", month, out_dir / "rtt", seed, NATIONAL_EXTRA_PROVIDERS) for month in every_month]
    if spell_fraction > 0:
        tasks += [(SOURCE_ACUTE, month, out_dir / "los_acute", seed, acute_scale) for month in spell_months]
        tasks += [(SOURCE_MH, month, out_dir / "los_mh", seed, 1.0) for month in spell_months]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_write, tasks))
    else:
        results = [_write(task) for task in tasks]
    written: dict[str, list[Path]] = {"rtt": [], "los_acute": [], "los_mh": []}
    for (kind, *_), paths in zip(tasks, results, strict=True):
        written["rtt" if kind == "rtt" else kind] += paths
    written["oap"] = write_oap_files(
        out_dir, first_month=every_month[0], last_month=every_month[-1], seed=seed, zipped=False
    )
    written["ods"] = write_sample_ods(out_dir)
    return written
