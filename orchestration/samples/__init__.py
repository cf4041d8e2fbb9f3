"""Bundled sample files: synthetic data in the exact layouts NHS England publishes (SPEC §3).

The values are synthetic, drawn from seeded random generators; only the reference data they hang on
(organisations, ICBs, regions, mergers from ``seeds/reference``) is real. They let the pipeline, its tests and the
benchmark run without downloading anything, and a user can drop the real files in their place.

``generate_samples(out_dir)`` writes every source's files under ``out_dir/<source>/`` and returns their paths;
``python -m orchestration.samples --out seeds/samples`` does the same from the command line.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from functools import partial
from pathlib import Path

from orchestration.samples.common import DEFAULT_FIRST_MONTH, DEFAULT_LAST_MONTH, DEFAULT_SEED, month_range
from orchestration.samples.rtt import REVISED_MONTHS, write_rtt_month

__all__ = ["generate_samples"]


def generate_samples(
    out_dir: Path,
    *,
    first_month: date = DEFAULT_FIRST_MONTH,
    last_month: date = DEFAULT_LAST_MONTH,
    seed: int = DEFAULT_SEED,
    extra_providers: int = 0,
    workers: int = 1,
) -> dict[str, list[Path]]:
    """Write the sample files of every month from ``first_month`` to ``last_month`` (both included).

    RTT: ``out_dir/rtt/<YYYYMMDD>-RTT-<Month>-<YYYY>-full-extract.zip`` per month, plus a ``-revised`` zip for each
    month of :data:`~orchestration.samples.rtt.REVISED_MONTHS` in range (written right after its original).
    Existing files of the same name are replaced atomically; other files in ``out_dir`` are left alone.
    ``extra_providers`` adds synthetic trusts ``RZ001``… for national-scale benchmarks (0 for the bundled samples).
    ``workers`` > 1 writes files in that many spawned processes (each file is independent, so the bytes are the
    same either way); the default 1 writes them in this process.

    Out-of-area placements (``oap/``), the main MHSDS monthly data file's published lengths of stay
    (``mhsds_los/``), mental health and acute spells (``los_mh/``, ``los_acute/``) are written for the same months,
    NHS England's acute discharge sitrep monthly files (``acute_long_stay/``, from April 2024, the first month of
    that CSV layout), and the ODS reference files (``ods/``) from ``seeds/reference``.

    Returns ``{source: [paths]}``. The same arguments always give byte-identical files.
    """
    out_dir = Path(out_dir)
    if last_month < first_month:
        raise ValueError(f"last_month {last_month} is before first_month {first_month}")
    tasks = [(month, False) for month in month_range(first_month, last_month)]
    tasks = sorted(tasks + [(month, True) for month, _ in tasks if month in REVISED_MONTHS])
    write = partial(_write_rtt, out_dir=out_dir / "rtt", seed=seed, extra_providers=extra_providers)
    if workers > 1 and len(tasks) > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context) as pool:
            rtt = list(pool.map(write, tasks, chunksize=4))
    else:
        rtt = [write(task) for task in tasks]
    from orchestration.samples.acute_long_stay import write_acute_long_stay_files
    from orchestration.samples.los import write_los_files
    from orchestration.samples.mhsds_los import write_mhsds_los_files
    from orchestration.samples.oap import write_oap_files
    from orchestration.sources.ods import write_sample_ods

    written = {"rtt": rtt}
    written["oap"] = write_oap_files(out_dir, first_month=first_month, last_month=last_month, seed=seed)
    written["mhsds_los"] = write_mhsds_los_files(out_dir, first_month=first_month, last_month=last_month, seed=seed)
    written.update(write_los_files(out_dir, first_month=first_month, last_month=last_month, seed=seed))
    written["acute_long_stay"] = write_acute_long_stay_files(
        out_dir, first_month=first_month, last_month=last_month, seed=seed
    )
    written["ods"] = write_sample_ods(out_dir)
    return written


def _write_rtt(task: tuple[date, bool], *, out_dir: Path, seed: int, extra_providers: int) -> Path:
    month, revised = task
    return write_rtt_month(month, out_dir, seed=seed, revised=revised, extra_providers=extra_providers)
