"""``collab-benefits``: the warehouse from the command line.

Exit codes (SPEC §10): 0 when everything was published, 1 when some file or check failed (the summary says
which), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from orchestration.resources import BUNDLED_SAMPLES_DIR, default_sources_dir, default_warehouse_dir


def _ensure_bundled_samples(sources_dir: Path) -> None:
    """The bundled samples are generated deterministically by the repository's own generator, not committed."""
    if sources_dir.resolve() == BUNDLED_SAMPLES_DIR.resolve() and not any(BUNDLED_SAMPLES_DIR.glob("*/*")):
        from orchestration.samples import generate_samples

        print(f"Generating the bundled sample files (synthetic) into {BUNDLED_SAMPLES_DIR} ...")
        generate_samples(BUNDLED_SAMPLES_DIR)


def _print_summary(summary) -> None:
    print()
    if summary.rejected_files:
        print("Files that failed their contract and were quarantined (nothing from them reached the warehouse):")
        seen: set[str] = set()
        for rejection in summary.rejected_files:
            where = f"row {rejection['source_row']}" if rejection["source_row"] is not None else "file"
            column = f", column {rejection['source_column']!r}" if rejection["source_column"] else ""
            print(f"  {rejection['source']}/{rejection['source_file']}: {where}{column}: "
                  f"{rejection['rule']}: {rejection['message']}")
            if rejection["source_file"] not in seen and rejection["quarantined_to"]:
                seen.add(rejection["source_file"])
                print(f"    reason file: {rejection['quarantined_to']}.reason.txt")
        print("  Fix the file (or ask the publisher for a corrected one) and drop it into the sources folder again.")
    for check in summary.failed_checks:
        print(f"Blocking check failed: {check}")
    for step in summary.failed_steps:
        print(f"Step failed: {step}")
    if summary.published:
        print(f"Published the serving database: {summary.serving_db}")
        print(f"  {len(summary.published_tables)} tables: "
              + ", ".join(f"{name} ({rows:,} rows)" for name, rows in sorted(summary.published_tables.items())))
    else:
        print(f"Nothing was published; the serving database is unchanged: {summary.serving_db}")
    print(f"Build database (pipeline only): {summary.build_db}")
    print(f"Quarantine folder: {summary.quarantine_dir}")
    print("Explore assets, partitions and checks: .venv/bin/dagster dev -m orchestration.definitions")


def _run(args: argparse.Namespace) -> int:
    sources_dir = Path(args.sources_dir).resolve() if args.sources_dir else default_sources_dir()
    warehouse_dir = Path(args.warehouse_dir).resolve() if args.warehouse_dir else default_warehouse_dir()
    _ensure_bundled_samples(sources_dir)
    if not sources_dir.is_dir():
        print(f"collab-benefits run: the sources folder {sources_dir} does not exist", file=sys.stderr)
        return 2
    from orchestration.pipeline import run_pipeline

    print(f"Sources: {sources_dir} (layout <source>/<files>, e.g. rtt/*.zip)")
    print(f"Warehouse: {warehouse_dir}")
    summary = run_pipeline(sources_dir, warehouse_dir)
    _print_summary(summary)
    return summary.exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collab-benefits",
        description="Provider collaborative benefits warehouse: NHS activity data for collaboratives and their trusts.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help="ingest every file under the sources folder, build, check and publish the serving database"
    )
    run.add_argument("--sources-dir", help="folder laid out as DIR/rtt/... (default: the bundled samples)")
    run.add_argument("--warehouse-dir", help="where the build and serving databases go (default: ./warehouse)")
    run.set_defaults(handler=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("dagster").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
