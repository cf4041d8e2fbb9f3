"""``python -m orchestration.samples --out seeds/samples``: write the bundled sample files (synthetic values)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from orchestration.samples import generate_samples
from orchestration.samples.common import (
    DEFAULT_FIRST_MONTH,
    DEFAULT_LAST_MONTH,
    DEFAULT_SAMPLES_DIR,
    DEFAULT_SEED,
    parse_month,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.samples",
        description="Write deterministic synthetic sample files in the published NHS layouts.",
    )
    parser.add_argument("--out", default=str(DEFAULT_SAMPLES_DIR), help="output folder (default: %(default)s)")
    parser.add_argument(
        "--first-month", type=parse_month, default=DEFAULT_FIRST_MONTH, help="YYYY-MM (default 2021-01)"
    )
    parser.add_argument("--last-month", type=parse_month, default=DEFAULT_LAST_MONTH, help="YYYY-MM (default 2026-09)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    parser.add_argument("--extra-providers", type=int, default=0, help="synthetic RZ… trusts to add (benchmarks)")
    parser.add_argument(
        "--workers",
        type=int,
        default=min(os.cpu_count() or 1, 4),
        help="processes writing files in parallel (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    written = generate_samples(
        args.out,
        first_month=args.first_month,
        last_month=args.last_month,
        seed=args.seed,
        extra_providers=args.extra_providers,
        workers=args.workers,
    )
    total_files = total_bytes = 0
    for source, paths in written.items():
        size = sum(p.stat().st_size for p in paths)
        for path in paths:
            print(path)
        print(f"{source}: {len(paths)} files, {size:,} bytes")
        total_files += len(paths)
        total_bytes += size
    print(f"wrote {total_files} files, {total_bytes:,} bytes in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
