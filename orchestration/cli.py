"""``collab-benefits``: the warehouse from the command line.

Exit codes (SPEC §10): 0 when everything was published, 1 when some file or check failed (the summary says
which), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from pathlib import Path

from orchestration.resources import (
    BUNDLED_SAMPLES_DIR,
    ENGINES,
    REPO_ROOT,
    default_sources_dir,
    default_warehouse_dir,
)

DEFAULT_LANDING_DIR = REPO_ROOT / "landing"

#: True when this process is the ``collab-benefits`` command itself (:func:`console_main`), not a caller of
#: :func:`main` in its own process (the tests): only then are the heap's objects frozen (see :func:`_freeze_heap`).
_OWN_PROCESS = False


def _freeze_heap() -> None:
    """Move every object alive now out of the garbage collector's sight (``gc.freeze``).

    Dagster's, dbt's and Great Expectations' modules leave about 670,000 objects that live as long as the
    process. The interpreter's last collection at exit walked them all: 2.3 s after the summary of a run on the
    real April 2026 month, 0.15 s once they are frozen. Frozen after the imports, the run's own full collections
    skip them too. What frozen objects reference is still freed by reference counting. Only in the command's own
    process: a caller of :func:`main` (a test) keeps its garbage collector as it was."""
    if _OWN_PROCESS:
        gc.freeze()


def _ensure_bundled_samples(sources_dir: Path) -> None:
    """The bundled samples are generated deterministically by the repository's own generator, not committed."""
    expected = ("rtt", "oap", "mhsds_los", "los_mh", "los_acute", "acute_long_stay", "ods")
    missing = [source for source in expected if not any((BUNDLED_SAMPLES_DIR / source).glob("*"))]
    if sources_dir.resolve() == BUNDLED_SAMPLES_DIR.resolve() and missing:
        from orchestration.samples import generate_samples

        print(f"Generating the bundled sample files (synthetic) into {BUNDLED_SAMPLES_DIR} ...")
        generate_samples(BUNDLED_SAMPLES_DIR)


#: At most this many problems of one file (or one failed check) are printed; the reason file lists them all.
PRINTED_PER_FILE = 5


def _where(problem: dict) -> str:
    where = f"row {problem['source_row']}" if problem["source_row"] is not None else "file"
    column = f", column {problem['source_column']!r}" if problem["source_column"] else ""
    return f"{where}{column}"


def _by_file(problems: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Problems grouped by file, each file's in line order with what concerns the whole file after them."""
    grouped: dict[tuple[str, str], list[dict]] = {}
    for problem in problems:
        grouped.setdefault((problem["source"], problem["source_file"]), []).append(problem)
    for found in grouped.values():
        found.sort(key=lambda problem: (problem["source_row"] is None, problem["source_row"] or 0))
    return grouped


def _print_summary(summary, reports: Path | None = None, collaboratives: int = 0) -> None:
    print()
    if summary.rejected_files:
        print("Files that failed their contract and were quarantined (nothing from them reached the warehouse):")
        for (source, source_file), rejections in _by_file(summary.rejected_files).items():
            for rejection in rejections[:PRINTED_PER_FILE]:
                print(f"  {source}/{source_file}: {_where(rejection)}: {rejection['rule']}: {rejection['message']}")
            if len(rejections) > PRINTED_PER_FILE:
                print(f"    … and {len(rejections) - PRINTED_PER_FILE} more, all in the reason file")
            if rejections[0]["quarantined_to"]:
                print(f"    reason file: {rejections[0]['quarantined_to']}.reason.txt")
        print("  Fix the file (or ask the publisher for a corrected one) and drop it into the sources folder again.")
    if summary.known_rejected:
        print("Files quarantined by an earlier run, still in the sources folder and unchanged (not read again):")
        for known in summary.known_rejected:
            print(f"  {known['source']}/{known['source_file']}: reason file {known['quarantined_to']}.reason.txt")
    if summary.warnings:
        _print_warnings(summary.warnings)
    if summary.row_problems:
        print("Rows loaded but left out of the measures (counted, not silently dropped):")
        for source, counts in summary.row_problems.items():
            print(f"  {source}: " + ", ".join(f"{rule} {count:,}" for rule, count in sorted(counts.items())))
        for (source, source_file), flagged in _by_file(summary.flagged_rows).items():
            for row in flagged[:PRINTED_PER_FILE]:
                print(f"  {source}/{source_file}: {_where(row)}: {row['rule']}: {row['message']}")
            if len(flagged) > PRINTED_PER_FILE:
                print(f"    … and {len(flagged) - PRINTED_PER_FILE} more in this file (fct_data_quality counts them)")
    if summary.reference_discrepancies:
        print("The reference data (seeds/reference) disagree with the ODS files in the sources folder:")
        for discrepancy in summary.reference_discrepancies:
            print(f"  {discrepancy}")
    for check in summary.failed_checks:
        print(f"Blocking check failed: {check}")
        for problem in summary.check_problems.get(check, [])[:PRINTED_PER_FILE]:
            print(f"  {problem}")
    for step in summary.failed_steps:
        print(f"Step failed: {step}")
        for line in summary.step_problems.get(step, [])[: 4 * PRINTED_PER_FILE]:
            print(f"  {line}")
    if summary.published:
        print(f"Published the serving database: {summary.serving_db}")
        print(
            f"  {len(summary.published_tables)} tables: "
            + ", ".join(f"{name} ({rows:,} rows)" for name, rows in sorted(summary.published_tables.items()))
        )
    else:
        print(f"Nothing was published; the serving database is unchanged: {summary.serving_db}")
    if reports is not None:
        print(f"Benefits reports for the board ({collaboratives} collaboratives): {reports}")
    if summary.data_docs:
        from orchestration.data_docs_offline import is_offline

        offline = (
            "they work offline"
            if is_offline(summary.data_docs.parent)
            else "they load scripts and styles from the internet until `make data-docs-assets` has fetched them"
        )
        print(f"GX Data Docs (every suite, and this run's mart checks; {offline}): {summary.data_docs}")
    print(f"Build database (pipeline only): {summary.build_db}")
    print(f"Quarantine folder: {summary.quarantine_dir}")
    logs = [f"dbt's output {summary.dbt_log}"] if summary.dbt_log else []
    logs.append(f"Dagster's events {summary.dagster_log}")
    logs.append(f"the pipeline's {summary.dagster_log.parent / 'pipeline.log'}")
    print("Logs: " + ", ".join(logs))
    print("Explore assets, partitions and checks: .venv/bin/dagster dev -m orchestration.definitions")


def _print_warnings(warnings: list[dict]) -> None:
    """Row-level warnings of genuine publications, grouped by rule: how many rows, in which files, the first few."""
    print("Warnings (rows flagged in genuine publications, loaded and counted in fct_data_quality):")
    by_rule: dict[tuple[str, str], list[dict]] = {}
    for warning in warnings:
        by_rule.setdefault((warning["source"], warning["rule"]), []).append(warning)
    for (source, rule), found in sorted(by_rule.items()):
        # one row can be flagged in several columns (a C_999 row in each band that disagrees): count rows once
        rows = len({(w["source_file"], w["source_row"]) for w in found if w["source_row"] is not None}) + sum(
            int(w["row_count"] or 0) for w in found if w["source_row"] is None
        )
        files = sorted({w["source_file"] for w in found})
        print(f"  {source} {rule}: {rows:,} row(s) in {', '.join(files)}")
        listed = [w for w in found if w["source_row"] is not None]
        for warning in listed[:PRINTED_PER_FILE]:
            print(f"    {warning['source_file']}: {_where(warning)}: {warning['message']}")
        if len(listed) > PRINTED_PER_FILE:
            print(f"    … and {rows - PRINTED_PER_FILE:,} more (fct_data_quality and the Data quality dashboard)")


def _run(args: argparse.Namespace) -> int:
    sources_dir = Path(args.sources_dir).resolve() if args.sources_dir else default_sources_dir()
    warehouse_dir = Path(args.warehouse_dir).resolve() if args.warehouse_dir else default_warehouse_dir()
    _ensure_bundled_samples(sources_dir)
    if args.engine:
        # an environment setting, so the run's record of its settings (nothing new, build state) names the engine
        os.environ["COLLAB_ENGINE"] = args.engine
    if not sources_dir.is_dir():
        print(f"collab-benefits run: the sources folder {sources_dir} does not exist", file=sys.stderr)
        return 2
    from orchestration import nothing_new

    print(f"Sources: {sources_dir} (layout <source>/<files>, e.g. rtt/*.zip)")
    print(f"Warehouse: {warehouse_dir}", flush=True)
    if os.environ.get("COLLAB_ENGINE", "duckdb") != "duckdb":
        print(f"Engine: {os.environ['COLLAB_ENGINE']} (dbt's models built there; the serving database is DuckDB)")
    run_settings = nothing_new.settings()
    notice = _HashingNotice()
    last = None if args.force else nothing_new.unchanged_since_last_run(sources_dir, warehouse_dir, announce=notice)
    if last is not None:
        print(
            f"Nothing new: {last.files:,} file{'' if last.files == 1 else 's'} under the sources folder, all as "
            f"the run of {last.run_at} read them, and the reference data, models, checks and code are as they "
            "were then, so nothing was read, built or checked again."
        )
        print(f"Serving database (as that run published it): {last.serving_db}")
        index = warehouse_dir / "reports" / "index.html"
        if index.exists():
            print(f"Benefits reports for the board: {index}")
        print("To run everything again anyway: collab-benefits run --force")
        return 0

    from orchestration import progress
    from orchestration.console import listener_for, logging_to_files
    from orchestration.pipeline import run_pipeline

    _freeze_heap()  # what the imports made lives as long as the run
    warehouse_dir.mkdir(parents=True, exist_ok=True)
    files_read = nothing_new.forget(warehouse_dir, sources_dir, announce=notice)
    reports: list[Path] = []
    with (
        logging_to_files(warehouse_dir / "logs"),
        listener_for(sys.stdout, quiet=args.quiet) as listener,
        progress.listening(listener),
    ):
        summary = run_pipeline(sources_dir, warehouse_dir)
        if summary.serving_db.exists():
            from orchestration.report import write_all_reports

            with progress.phase("Board reports, one per collaborative") as phase:
                reports = write_all_reports(
                    summary.serving_db, warehouse_dir / "reports", synthetic_note=_synthetic(sources_dir)
                )
                phase.finish(f"{len(reports) - 1} reports and their index")
    _print_summary(summary, reports[-1] if reports else None, len(reports) - 1)
    print(
        "Dashboards: `make dashboards` starts Superset with the Benefits tracker, Outcomes monitor, Evaluation and "
        "Data quality dashboards over this serving database; then open http://127.0.0.1:8088"
    )
    if summary.exit_code == 0:
        nothing_new.remember(sources_dir, warehouse_dir, summary.serving_db, run_settings, files_read)
    return summary.exit_code


class _HashingNotice:
    """Says once, before a long pause with nothing on the screen, that the run is hashing files no earlier run
    recorded (the "nothing new" comparison and the run's own record ask in turn; each file is hashed once)."""

    def __init__(self) -> None:
        self.said = False

    def __call__(self, files: int, size: int) -> None:
        if not self.said:
            self.said = True
            print(
                f"Noting {files:,} file{'' if files == 1 else 's'} ({size / 1e9:.1f} GB) that no earlier run "
                "recorded: their SHA-256, so that the next run knows them ...",
                flush=True,
            )


def _synthetic(sources_dir: Path) -> str | None:
    from orchestration.report import DEFAULT_SYNTHETIC_NOTE

    return DEFAULT_SYNTHETIC_NOTE if sources_dir.resolve() == BUNDLED_SAMPLES_DIR.resolve() else None


def _dashboards(args: argparse.Namespace) -> int:
    """Superset on 127.0.0.1 with the four dashboards imported, serving until interrupted (SPEC §10)."""
    from orchestration.dashboards.launch import serve_dashboards

    warehouse_dir = Path(args.warehouse_dir).resolve() if args.warehouse_dir else default_warehouse_dir()
    return serve_dashboards(warehouse_dir / "serving.duckdb", host=args.host, port=args.port, serve=not args.no_serve)


def _report(args: argparse.Namespace) -> int:
    from orchestration.report import write_all_reports, write_report

    warehouse_dir = Path(args.warehouse_dir).resolve() if args.warehouse_dir else default_warehouse_dir()
    serving = warehouse_dir / "serving.duckdb"
    if not serving.exists():
        print(
            f"collab-benefits report: no serving database at {serving}: run `collab-benefits run` first",
            file=sys.stderr,
        )
        return 2
    note = _synthetic(default_sources_dir())
    if args.collaborative:
        import duckdb

        con = duckdb.connect(str(serving), read_only=True)
        try:
            known = {row[0] for row in con.execute("select collaborative_code from dim_collaborative").fetchall()}
        finally:
            con.close()
        code = args.collaborative.upper()
        if code not in known:
            print(
                f"collab-benefits report: unknown collaborative {args.collaborative!r}; known: "
                + ", ".join(sorted(known)),
                file=sys.stderr,
            )
            return 2
        out = Path(args.out) if args.out else warehouse_dir / "reports" / f"benefits-report-{code}.html"
        print(f"Benefits report for {code}: {write_report(serving, code, out, synthetic_note=note)}")
    else:
        reports = write_all_reports(
            serving, Path(args.out) if args.out else warehouse_dir / "reports", synthetic_note=note
        )
        print(f"Benefits reports: {reports[-1]}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    """Read each publisher's pages, download what is new into the landing folder; exit 1 if anything failed."""
    from orchestration.pull import SOURCES, pull_all
    from orchestration.resources import PublishersResource

    sources = list(dict.fromkeys(args.source or SOURCES))
    if args.index_url and len(sources) != 1:
        print(
            "collab-benefits pull: --index-url is the page of one publisher: give it with exactly one --source "
            f"({', '.join(SOURCES)})",
            file=sys.stderr,
        )
        return 2
    if args.months is not None and args.months < 1:
        print("collab-benefits pull: --months must be at least 1", file=sys.stderr)
        return 2
    sources_dir = Path(args.sources_dir or os.environ.get("COLLAB_SOURCES_DIR") or DEFAULT_LANDING_DIR).resolve()
    if sources_dir == BUNDLED_SAMPLES_DIR.resolve():
        print(
            f"collab-benefits pull: {sources_dir} holds the bundled samples; pull into a landing folder of its own "
            "(--sources-dir DIR)",
            file=sys.stderr,
        )
        return 2
    try:
        publishers = PublishersResource()
    except ValueError as error:  # a COLLAB_PULL_* variable that is not a number, say
        print(f"collab-benefits pull: {error}", file=sys.stderr)
        return 2
    months = args.months or publishers.months
    print(f"Landing folder: {sources_dir}; the newest {months} published months")
    results = pull_all(
        sources_dir, sources=sources, publishers=publishers, index_url=args.index_url, months=args.months
    )
    counts: dict[str, int] = {}
    for source, outcomes in results.items():
        for outcome in outcomes:
            print(f"{source}: {outcome.status}: {outcome.message}")
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
    print(
        "Pulled: "
        + (", ".join(f"{count} {status.replace('_', ' ')}" for status, count in sorted(counts.items())) or "nothing")
    )
    if counts.get("failed"):
        print(
            "Some files or pages failed (above: which, where and why); what did land is complete and checked.",
            file=sys.stderr,
        )
    print(f"Load what landed with: collab-benefits run --sources-dir {sources_dir}")
    return 1 if counts.get("failed") else 0


def _compare(args: argparse.Namespace) -> int:
    from orchestration.compare import compare_databases

    for path in (args.left, args.right):
        if not Path(path).is_file():
            print(f"collab-benefits compare: {path} is not a file", file=sys.stderr)
            return 2
    comparison = compare_databases(
        Path(args.left), Path(args.right), schemas=tuple(args.schema) if args.schema else None
    )
    print(comparison.describe(limit=args.limit))
    return 0 if comparison.equal else 1


def _bench(args: argparse.Namespace) -> int:
    """National-scale benchmark (SPEC §12): prints the table, writes bench.json and bench.md to --out."""
    from orchestration.bench import DEFAULT_BENCH_DIR, DEFAULT_REAL_RTT, run_bench

    if args.months < 2 or not 0 <= args.spell_fraction <= 1:
        print("bench: --months must be at least 2 and --spell-fraction between 0 and 1", file=sys.stderr)
        return 2
    given = sys.argv[2:] if sys.argv[1:2] == ["bench"] else []
    command = " ".join(["collab-benefits bench", *given])
    report = run_bench(
        Path(args.out) if args.out else DEFAULT_BENCH_DIR,
        months=args.months,
        spell_fraction=args.spell_fraction,
        acute_months=args.acute_months,
        query_repeats=args.query_repeats,
        command=command,
        real_rtt=Path(args.real_rtt) if args.real_rtt else DEFAULT_REAL_RTT,
    )
    return 0 if all(m["ok"] for m in report["measurements"].values()) else 1


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
    run.add_argument(
        "--quiet",
        action="store_true",
        help="no progress, only the summary at the end (for CI and cron; without a terminal, or with CI set, "
        "progress is plain lines anyway)",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="run everything even when nothing has changed since the last run that published (by default such "
        "a run says so and stops at once)",
    )
    run.add_argument(
        "--engine",
        choices=ENGINES,
        help="where dbt builds the models: duckdb (the default, embedded) or spark (a local PySpark session, or "
        "the cluster profiles.yml's spark target names; needs the spark extra and Java 17). Default: "
        "COLLAB_ENGINE, else duckdb",
    )
    run.set_defaults(handler=_run)
    report = commands.add_parser(
        "report", help="write the benefits board report (self-contained HTML) per collaborative"
    )
    report.add_argument("--collaborative", help="collaborative code, e.g. SLP (default: every collaborative)")
    report.add_argument("--out", help="output file (one collaborative) or folder (all)")
    report.add_argument("--warehouse-dir", help="where the serving database is (default: ./warehouse)")
    report.set_defaults(handler=_report)
    dashboards = commands.add_parser(
        "dashboards",
        help="start Superset on 127.0.0.1 with the dashboards imported (needs .venv-superset: `make dashboards`)",
    )
    dashboards.add_argument("--warehouse-dir", help="where the serving database is (default: ./warehouse)")
    dashboards.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    dashboards.add_argument("--port", type=int, default=8088, help="port (default: %(default)s)")
    dashboards.add_argument(
        "--no-serve", action="store_true", help="import the dashboards and stop (check that a deployment works)"
    )
    dashboards.set_defaults(handler=_dashboards)
    pull = commands.add_parser(
        "pull",
        help="download the newest publications from the publishers' pages into the landing folder (DIR/<source>/)",
        description=(
            "Read each publisher's index page (RTT: NHS England's RTT area page and its financial-year pages; "
            "out-of-area placements: the MHSDS monthly statistics publication and its monthly pages; ODS: etr.zip "
            "and succ.zip), find each month's data files by the publisher's naming, and download the new ones "
            "into DIR/rtt/, DIR/oap/ and DIR/ods/ with conditional requests. Pages come from COLLAB_PULL_INDEX_URL_"
            "<SOURCE> (default: the real pages). Exit 1 if a file or a page failed (a page whose layout changed is "
            "named), 2 on a usage error."
        ),
    )
    pull.add_argument("--sources-dir", help="landing folder (default: COLLAB_SOURCES_DIR, else ./landing)")
    pull.add_argument("--source", action="append", choices=["rtt", "oap", "ods"], help="only this source (repeatable)")
    pull.add_argument(
        "--index-url",
        help="read this page instead of the publisher's (a mirror of its index page); needs exactly one --source",
    )
    pull.add_argument(
        "--months",
        type=int,
        help="how many of the newest published months to keep current (default: COLLAB_PULL_MONTHS, else 13)",
    )
    pull.set_defaults(handler=_pull)
    bench = commands.add_parser(
        "bench",
        help="generate national-scale files and time the full build, a monthly update, the dashboard queries, "
        "pandas and DuckDB's bare scan side by side",
    )
    bench.add_argument("--months", type=int, default=60, help="months of RTT and OAP history (default: %(default)s)")
    bench.add_argument(
        "--spell-fraction",
        type=float,
        default=0.1,
        help="share of England's 1.4 million acute spells a month to generate (default: %(default)s)",
    )
    bench.add_argument("--acute-months", type=int, default=12, help="months of spells (default: %(default)s)")
    bench.add_argument("--query-repeats", type=int, default=20, help="runs of each dashboard query (default: 20)")
    bench.add_argument("--out", help="folder for the files, warehouses and results (default: ./warehouse/bench)")
    bench.add_argument(
        "--real-rtt",
        help="a real RTT full extract (zip or CSV) to time beside pandas "
        "(default: ../shared/real/rtt/20260430-RTT-April-2026-full-extract.zip when it is there)",
    )
    bench.set_defaults(handler=_bench)
    compare = commands.add_parser(
        "compare",
        help="compare two warehouses' served tables figure for figure (e.g. a DuckDB and a Spark build's "
        "serving.duckdb); exit 1 when they differ",
    )
    compare.add_argument("left", help="a DuckDB file (e.g. warehouse/serving.duckdb)")
    compare.add_argument("right", help="the other DuckDB file")
    compare.add_argument("--schema", action="append", help="schema to compare (repeatable; default: every schema)")
    compare.add_argument("--limit", type=int, default=40, help="differences printed at most (default: 40)")
    compare.set_defaults(handler=_compare)
    coverage = commands.add_parser(
        "evaluate-coverage",
        help="simulate panels shaped like ours with and without a planted effect and print, for each evaluation "
        "method and number of treated trusts, the coverage of its 95%% interval, its rejection rate under no effect "
        "and its mean interval width",
    )
    coverage.add_argument("--replications", type=int, default=500, help="per size and scenario (default: 500)")
    coverage.add_argument("--seed", type=int, default=13, help="seed of the study (default: 13)")
    coverage.add_argument("--jobs", type=int, help="worker processes (default: 2, or 1 on a single core)")
    coverage.set_defaults(handler=_evaluate_coverage)
    return parser


def _evaluate_coverage(args: argparse.Namespace) -> int:
    from orchestration.analytics.coverage import main as coverage_main

    return coverage_main(args.replications, args.seed, args.jobs)


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("dagster").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    return args.handler(args)


def console_main(argv: list[str] | None = None) -> int:
    """The ``collab-benefits`` command: :func:`main` in a process of its own (the command, or a bench contender's
    subprocess), which ends without the interpreter's last walk over every object still alive (the process's
    memory goes back to the system whole at exit)."""
    global _OWN_PROCESS  # noqa: PLW0603 - set once, by the command's entry point
    _OWN_PROCESS = True
    code = main(argv)
    sys.stdout.flush()
    _freeze_heap()
    return code


if __name__ == "__main__":
    sys.exit(console_main())
