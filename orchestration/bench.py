"""``collab-benefits bench``: the warehouse at national scale, side by side with pandas and the scan floor (SPEC §12).

One run, in this order, each contender in its own subprocess (so its CPU time and peak memory are its own):

1. generate national-scale files with the sample generator (:mod:`orchestration.samples.national`): ``months``
   months of history and the month after it, under ``DIR/files`` (kept between runs with the same settings:
   generation is not timed);
2. DuckDB's bare scan of the history's files (``read_csv`` over every file, ``count(*)`` and a sum): the floor
   no pipeline that reads the files can beat; also of the RTT files alone and of the new month's files (each
   scan the faster of two runs, so the floor is not a cold page cache);
3. the full build (ingest with file contracts, dbt build with tests, benefits marts, blocking checks, publish,
   board reports) as a user runs it, ``collab-benefits run``, into ``DIR/warehouse``;
4. the one-month update: the new month's files added to the same sources folder, ``collab-benefits run`` again on
   the same warehouse; then twice more with nothing new: as is (the run says so and stops) and with ``--force``
   (everything runs, and finds nothing to rebuild);
5. every dashboard query against the published serving database (p50 and p95 of repeated runs);
6. the RTT-only build (the RTT files alone, fresh warehouse) and the plain pandas script
   (:mod:`orchestration.bench_pandas`) on the same files, with their outputs compared figure for figure; pandas
   again over the whole history plus the new month (what an analyst re-runs each month);
7. the bundled samples (what ``make run`` builds) into an empty warehouse, then again with nothing new;
8. when it is there, a real month as NHS England published it (``--real-rtt``: the April 2026 RTT full extract):
   the bare scan of its CSV, ``collab-benefits run`` into an empty warehouse and again, and pandas on the same file,
   compared figure for figure.

Writes ``DIR/bench.json`` and ``DIR/bench.md`` and prints the table. Wall time is measured by this process around
each subprocess; CPU time and peak memory come from the subprocess's own ``getrusage`` (itself and its children,
dbt included) and from sampling the resident memory of its whole process tree (``/proc``), whichever is larger.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from orchestration.resources import REPO_ROOT

DEFAULT_BENCH_DIR = REPO_ROOT / "warehouse" / "bench"
FEED_FOLDERS = ("rtt", "oap", "los_acute", "los_mh")

#: The targets of issue 14 (2 cores, 24 GB), and issue 7's memory bound.
FULL_BUILD_SCAN_RATIO = 5.0
FULL_BUILD_PEAK_BYTES = 4 * 1024**3
INCREMENTAL_SECONDS = 10.0
INCREMENTAL_PANDAS_SPEEDUP = 6.0
NOTHING_NEW_SECONDS = 3.0
BUNDLED_RUN_SECONDS = 30.0
REAL_MONTH_PANDAS_RATIO = 10.0
QUERY_P95_SECONDS = 0.100

#: A real publication timed beside the national files when it is there (the repository's neighbour in this
#: workplace; ``--real-rtt`` names another): NHS England's RTT full extract of April 2026, as published.
DEFAULT_REAL_RTT = REPO_ROOT.parent / "shared" / "real" / "rtt" / "20260430-RTT-April-2026-full-extract.zip"
DEFAULT_REAL_ODS = REPO_ROOT.parent / "shared" / "real" / "ods"


# --------------------------------------------------------------------------------------------------------------
# Measuring one contender


@dataclass
class Measurement:
    name: str
    wall_seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    ok: bool
    detail: dict = field(default_factory=dict)


def _tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and all its descendants, from /proc (0 where /proc is not available)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)  # fields[1] is the parent pid
        rss[pid] = int(fields[21]) * page  # fields[21] is rss in pages
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measure(name: str, task: str, args: dict, work_dir: Path, *, timeout: float | None = None) -> Measurement:
    """Run ``task`` in a fresh ``python -m orchestration.bench --worker`` subprocess and measure it."""
    result_path = work_dir / f".{name}.result.json"
    result_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "orchestration.bench", "--worker", task, json.dumps(args), str(result_path)]
    log_path = work_dir / f"{name}.log"
    peak_tree = 0
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak_tree
            while not stop.is_set():
                peak_tree = max(peak_tree, _tree_rss_bytes(process.pid))
                stop.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            returncode = process.wait(timeout=timeout)
        finally:
            stop.set()
            sampler.join()
    wall = time.perf_counter() - started
    outcome = json.loads(result_path.read_text()) if result_path.exists() else {}
    result_path.unlink(missing_ok=True)
    usage = outcome.get("usage", {})
    return Measurement(
        name=name,
        wall_seconds=wall,
        cpu_seconds=usage.get("cpu_seconds", float("nan")),
        peak_rss_bytes=max(peak_tree, usage.get("max_rss_bytes", 0)),
        ok=returncode == 0 and outcome.get("ok", False),
        detail={
            **outcome.get("detail", {}),
            "log": str(log_path),
            "returncode": returncode,
            # the machine is shared: the 1-minute load average when the contender ended says how shared
            "load_average_after": round(os.getloadavg()[0], 2),
        },
    )


# --------------------------------------------------------------------------------------------------------------
# The tasks, run inside the worker subprocess


def _scan(folders: list[str]) -> dict:
    """DuckDB's bare scan: every CSV of each folder read whole (``count(*)`` and a sum of one count column)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"set threads = {os.cpu_count() or 1}")
    out = {}
    sums = {"rtt": '"Total All"', "oap": "MEASURE_VALUE", "los_acute": "SPELDUR", "los_mh": "length(Person_ID)"}
    for folder in folders:
        kind = Path(folder).name
        files = sorted(str(path) for path in Path(folder).glob("*.csv"))
        for archive in sorted(Path(folder).glob("*.zip")):  # a published zip: its CSV, unpacked once, not timed
            files.append(str(_unzipped(archive)))
        if not files:
            continue
        # OAP values hold '*' (suppressed): read that column as text and count it instead of summing.
        measure = sums.get(kind, "1")
        if kind == "oap":
            measure = "length(MEASURE_VALUE)"
        if kind == "los_acute":
            measure = "try_cast(SPELDUR as bigint)"
        rows, total = con.execute(
            f"select count(*), sum({measure}) from read_csv(?, union_by_name = true, all_varchar = {kind != 'rtt'})",
            [files],
        ).fetchone()
        out[kind] = {"files": len(files), "rows": rows, "sum": float(total or 0)}
    return out


def _unzipped(archive: Path) -> Path:
    """The CSV inside a published zip, unpacked beside it in a hidden folder (once)."""
    import zipfile

    folder = archive.parent / f".{archive.stem}.unzipped"
    with zipfile.ZipFile(archive) as handle:
        member = next(name for name in handle.namelist() if name.lower().endswith(".csv"))
        target = folder / Path(member).name
        if not target.exists():
            folder.mkdir(exist_ok=True)
            handle.extract(member, folder)
            if folder / member != target:  # a member inside a folder of the zip
                (folder / member).rename(target)
    return target


def _pandas(rtt_folder: str, out_dir: str) -> dict:
    from orchestration.bench_pandas import build

    return build(Path(rtt_folder), Path(out_dir))


def _cli(arguments: list[str]) -> dict:
    """``collab-benefits`` itself, as a user runs it (the run's "nothing new" check included)."""
    import contextlib
    import io

    from orchestration.cli import console_main

    output = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(output):
        code = console_main(arguments)  # the worker is a process of its own, as the command is
    seconds = time.perf_counter() - started
    text = output.getvalue()
    print(text)  # into the contender's log: the run's phases with their times are its profile
    return {
        "ok": code == 0,
        "exit_code": code,
        "nothing_new": "Nothing new" in text,
        "seconds_in_run": round(seconds, 2),
        "last_lines": text[-600:],
    }


def _run_task(task: str, args: dict) -> tuple[bool, dict]:
    if task == "cli":
        detail = _cli(args["arguments"])
        return detail["ok"], detail
    if task == "scan":
        return True, _scan(args["folders"])
    if task == "pandas":
        return True, _pandas(args["rtt_folder"], args["out_dir"])
    raise ValueError(f"unknown bench task {task!r}")


def worker(task: str, args_json: str, result_path: str) -> int:
    ok, detail, error = False, {}, None
    try:
        ok, detail = _run_task(task, json.loads(args_json))
    except Exception as exc:  # the parent reports it; the table shows the contender failed
        import traceback

        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    usage = {
        "cpu_seconds": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime,
        # Linux reports ru_maxrss in KiB
        "max_rss_bytes": max(own.ru_maxrss, children.ru_maxrss) * 1024,
    }
    Path(result_path).write_text(json.dumps({"ok": ok, "detail": {**detail, "error": error}, "usage": usage}))
    return 0 if ok else 1


# --------------------------------------------------------------------------------------------------------------
# Dashboard queries


def dashboard_queries(serving_db: Path) -> tuple[str, dict[str, str]]:
    """The SQL each dashboard chart issues, from the Superset bundle under dashboards/ when it exists, plus a
    representative set of the marts' queries (national trends, provider league, a trust's distribution)."""
    from orchestration.dashboard_queries import bundle_queries, representative_queries

    found = bundle_queries(REPO_ROOT / "dashboards")
    representative = representative_queries(serving_db)
    if found:
        extra = {f"(mart) {name}": sql for name, sql in representative.items()}
        return (
            "every chart of the dashboards/ Superset bundle (its dataset SQL and query_context), then representative "
            "mart queries marked (mart)",
            {**found, **extra},
        )
    return "representative mart queries (no Superset bundle in dashboards/ yet)", representative


def time_queries(serving_db: Path, queries: dict[str, str], repeats: int) -> dict[str, dict]:
    """Each query once cold, then ``repeats`` times; p50 and p95 of the repeats, on a read-only connection."""
    import duckdb

    con = duckdb.connect(str(serving_db), read_only=True)
    results = {}
    try:
        for name, sql in queries.items():
            started = time.perf_counter()
            try:
                rows = len(con.execute(sql).fetchall())
            except duckdb.Error as error:
                results[name] = {"error": str(error).splitlines()[0], "sql": sql}
                continue
            cold = time.perf_counter() - started
            timings = []
            for _ in range(repeats):
                started = time.perf_counter()
                con.execute(sql).fetchall()
                timings.append(time.perf_counter() - started)
            timings.sort()
            results[name] = {
                "rows": rows,
                "cold_seconds": cold,
                "p50_seconds": statistics.median(timings),
                "p95_seconds": timings[min(len(timings) - 1, int(round(0.95 * (len(timings) - 1))))],
                "sql": sql,
            }
    finally:
        con.close()
    return results


# --------------------------------------------------------------------------------------------------------------
# Files


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link (or copy) every file under ``source`` into ``target``, keeping the folder layout."""
    for path in sorted(source.rglob("*")):
        if not path.is_file():
            continue
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if destination.exists():
            continue
        try:
            os.link(path, destination)
        except OSError:
            shutil.copy2(path, destination)


def prepare_files(
    files_dir: Path, *, months: int, spell_fraction: float, acute_months: int, last_month: date, workers: int
) -> dict:
    """Generate the history (``months`` months ending the month before ``last_month``) and the new month, unless
    ``files_dir`` already holds them for the same settings."""
    from orchestration.samples.common import add_months
    from orchestration.samples.national import generate_national

    settings = {
        "months": months,
        "spell_fraction": spell_fraction,
        "acute_months": acute_months,
        "last_month": last_month.isoformat(),
        "generator": _generator_fingerprint(),
    }
    manifest = files_dir / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("settings") == settings:
        return json.loads(manifest.read_text())
    shutil.rmtree(files_dir, ignore_errors=True)
    started = time.perf_counter()
    common = {"spell_fraction": spell_fraction, "acute_months": acute_months, "workers": workers}
    history = generate_national(files_dir / "history", months=months, last_month=add_months(last_month, -1), **common)
    new_month = generate_national(files_dir / "next", months=1, last_month=last_month, **common)
    (files_dir / "next" / "ods").exists() and shutil.rmtree(files_dir / "next" / "ods")

    def sizes(written: dict) -> dict:
        return {
            source: {"files": len(paths), "bytes": sum(p.stat().st_size for p in paths if p.exists())}
            for source, paths in written.items()
        }

    info = {
        "settings": settings,
        "generated_seconds": time.perf_counter() - started,
        "history": sizes(history),
        "next": sizes({k: v for k, v in new_month.items() if k != "ods"}),
    }
    manifest.write_text(json.dumps(info, indent=2))
    return info


def _generator_fingerprint() -> str:
    """Modification times of the generator's modules: regenerate when the generator changed."""
    folder = REPO_ROOT / "orchestration" / "samples"
    return str(max(path.stat().st_mtime_ns for path in folder.glob("*.py")))


# --------------------------------------------------------------------------------------------------------------
# The run


def _compare_with_pandas(pandas_dir: Path, serving_db: Path) -> dict:
    """Figure-for-figure agreement of the pandas outputs with the RTT-only build's serving tables."""
    import duckdb

    con = duckdb.connect(str(serving_db), read_only=True)
    try:
        provider = con.execute(
            f"""
            with ours as (select * from fct_rtt_provider_month),
                 theirs as (select * from read_parquet('{pandas_dir / "fct_rtt_provider_month.parquet"}'))
            select
                (select count(*) from ours) as our_rows,
                (select count(*) from theirs) as pandas_rows,
                count(*) as matched,
                max(abs(coalesce(ours.incomplete_pathways, 0) - coalesce(theirs.incomplete_pathways, 0))),
                max(abs(coalesce(ours.over_52_weeks, 0) - coalesce(theirs.over_52_weeks, 0))),
                max(abs(coalesce(ours.median_wait_weeks, 0) - coalesce(theirs.median_wait_weeks, 0))),
                max(abs(coalesce(ours.p92_wait_weeks, 0) - coalesce(theirs.p92_wait_weeks, 0))),
                max(abs(coalesce(ours.clock_stops, 0) - coalesce(theirs.clock_stops, 0))),
                max(abs(coalesce(ours.clock_starts, 0) - coalesce(theirs.clock_starts, 0)))
            from ours
            inner join theirs
                on ours.period_month = cast(theirs.period_month as date)
                and ours.org_code = theirs.org_code
                and ours.treatment_function_code = theirs.treatment_function_code
            """
        ).fetchone()
        collaborative = con.execute(
            f"""
            with ours as (
                    select * from fct_collaborative_metric_month where org_code = 'ALL' and metric_code like 'rtt_%'),
                 theirs as (select * from read_parquet('{pandas_dir / "rtt_collaborative_metrics.parquet"}'))
            select
                (select count(*) from ours where value is not null) as our_rows,
                (select count(*) from theirs where value is not null) as pandas_rows,
                count(*) as matched,
                max(abs(coalesce(ours.value, 0) - coalesce(theirs.value, 0)))
            from ours
            inner join theirs
                on ours.collaborative_code = theirs.collaborative_code
                and ours.membership_basis = theirs.membership_basis
                and ours.period_month = cast(theirs.period_month as date)
                and ours.metric_code = theirs.metric_code
            where theirs.value is not null
            """
        ).fetchone()
    finally:
        con.close()
    our_rows, pandas_rows, matched, *diffs = provider
    c_ours, c_pandas, c_matched, c_diff = collaborative
    tolerance = 1e-6
    return {
        "fct_rtt_provider_month": {
            "rows": our_rows,
            "pandas_rows": pandas_rows,
            "matched": matched,
            "max_abs_difference": max(d or 0 for d in diffs),
        },
        "rtt_collaborative_metrics": {
            "rows": c_ours,
            "pandas_rows": c_pandas,
            "matched": c_matched,
            "max_abs_difference": c_diff or 0,
        },
        "agree": our_rows == pandas_rows == matched
        and c_pandas == c_matched
        and max(d or 0 for d in diffs) < tolerance
        and (c_diff or 0) < tolerance,
    }


def run_bench(
    out_dir: Path = DEFAULT_BENCH_DIR,
    *,
    months: int = 60,
    spell_fraction: float = 0.1,
    acute_months: int = 12,
    query_repeats: int = 20,
    workers: int = 2,
    last_month: date | None = None,
    command: str = "",
    real_rtt: Path | None = DEFAULT_REAL_RTT,
) -> dict:
    from orchestration.samples.common import DEFAULT_LAST_MONTH

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    last_month = last_month or DEFAULT_LAST_MONTH
    say = _progress
    say(f"generating {months} months of national-scale files (plus the month after) in {out_dir / 'files'}")
    files = prepare_files(
        out_dir / "files",
        months=months,
        spell_fraction=spell_fraction,
        acute_months=acute_months,
        last_month=last_month,
        workers=workers,
    )
    history, new_month = out_dir / "files" / "history", out_dir / "files" / "next"
    runs = out_dir / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir()
    sources, sources_rtt = runs / "sources", runs / "sources_rtt"
    _link_tree(history, sources)
    _link_tree(history / "rtt", sources_rtt / "rtt")
    _link_tree(history / "ods", sources_rtt / "ods")

    measured: dict[str, Measurement] = {}

    def run(name: str, task: str, args: dict, *, best_of: int = 1) -> Measurement:
        say(f"{name} …")
        tries = [measure(name, task, args, runs) for _ in range(best_of)]
        m = min(tries, key=lambda t: t.wall_seconds)
        m.detail["wall_seconds_of_each_try"] = [round(t.wall_seconds, 2) for t in tries]
        measured[name] = m
        say(
            f"{name}: {m.wall_seconds:.1f} s wall, {m.cpu_seconds:.1f} s CPU, {_gib(m.peak_rss_bytes)} peak"
            + ("" if m.ok else f"  FAILED (see {m.detail.get('log')})")
        )
        return m

    history_folders = [str(history / f) for f in FEED_FOLDERS]
    run("scan_history", "scan", {"folders": history_folders}, best_of=2)
    run("scan_history_rtt", "scan", {"folders": [str(history / "rtt")]}, best_of=2)
    run("scan_new_month", "scan", {"folders": [str(new_month / f) for f in FEED_FOLDERS]}, best_of=2)
    # Each build is `collab-benefits run`, as a user runs it (its "nothing new" check and board reports included)
    national = ["run", "--sources-dir", str(sources), "--warehouse-dir", str(runs / "warehouse")]
    run("full_build", "cli", {"arguments": national})
    _link_tree(new_month, sources)
    run("incremental_update", "cli", {"arguments": national})
    run("nothing_new", "cli", {"arguments": national})
    run("nothing_new_forced", "cli", {"arguments": [*national, "--force"]})

    say("dashboard queries …")
    serving = runs / "warehouse" / "serving.duckdb"
    query_source, queries = dashboard_queries(serving) if serving.exists() else ("no serving database", {})
    query_results = time_queries(serving, queries, query_repeats) if queries else {}

    rtt_only = ["run", "--sources-dir", str(sources_rtt), "--warehouse-dir", str(runs / "warehouse_rtt")]
    run("rtt_only_build", "cli", {"arguments": rtt_only})
    run("pandas_rtt", "pandas", {"rtt_folder": str(history / "rtt"), "out_dir": str(runs / "pandas")})
    run(
        "pandas_rtt_with_new_month", "pandas", {"rtt_folder": str(sources / "rtt"), "out_dir": str(runs / "pandas_all")}
    )
    agreement = (
        _compare_with_pandas(runs / "pandas", runs / "warehouse_rtt" / "serving.duckdb")
        if measured["rtt_only_build"].ok and measured["pandas_rtt"].ok
        else {"agree": None}
    )

    # The bundled samples, as `make run` builds them (generated, not timed), then again with nothing new
    bundled = runs / "bundled"
    from orchestration.samples import generate_samples

    generate_samples(bundled / "files")
    bundled_args = ["run", "--sources-dir", str(bundled / "files"), "--warehouse-dir", str(bundled / "warehouse")]
    run("bundled_samples", "cli", {"arguments": bundled_args})
    run("bundled_samples_again", "cli", {"arguments": bundled_args})

    # A real month as NHS England published it, beside pandas on the same file and the bare scan of it
    real_agreement = {"agree": None}
    if real_rtt is not None and Path(real_rtt).is_file():
        real = runs / "real"
        (real / "files" / "rtt").mkdir(parents=True)
        os.link(real_rtt, real / "files" / "rtt" / Path(real_rtt).name)
        if DEFAULT_REAL_ODS.is_dir():
            _link_tree(DEFAULT_REAL_ODS, real / "files" / "ods")
        run("scan_real_month", "scan", {"folders": [str(real / "files" / "rtt")]}, best_of=2)
        real_args = ["run", "--sources-dir", str(real / "files"), "--warehouse-dir", str(real / "warehouse")]
        run("real_month", "cli", {"arguments": real_args})
        run("real_month_again", "cli", {"arguments": real_args})
        run("pandas_real_month", "pandas", {"rtt_folder": str(real / "files" / "rtt"), "out_dir": str(real / "pandas")})
        if measured["real_month"].ok and measured["pandas_real_month"].ok:
            real_agreement = _compare_with_pandas(real / "pandas", real / "warehouse" / "serving.duckdb")
    else:
        say(f"no real RTT file at {real_rtt}: the real month's rows are left out")

    report = {
        "command": command,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "settings": {
            "months": months,
            "spell_fraction": spell_fraction,
            "acute_months": min(acute_months, months),
            "query_repeats": query_repeats,
        },
        "files": files,
        "measurements": {name: asdict(m) for name, m in measured.items()},
        "queries": {"source": query_source, "results": query_results},
        "pandas_agreement": agreement,
        "real_month": {"file": str(real_rtt) if real_rtt else None, "pandas_agreement": real_agreement},
    }
    report["targets"] = evaluate_targets(report)
    (out_dir / "bench.json").write_text(json.dumps(report, indent=2, default=str))
    table = markdown(report)
    (out_dir / "bench.md").write_text(table)
    print(table)
    return report


def evaluate_targets(report: dict) -> list[dict]:
    """Issue 14's targets, each marked holds or not, with what was measured (a contender that failed or was not
    run does not hold)."""
    m = report["measurements"]
    q = report["queries"]["results"]

    def w(name: str) -> float:
        return m[name]["wall_seconds"] if m.get(name, {}).get("ok") else float("inf")

    def peak(name: str) -> int:
        return m[name]["peak_rss_bytes"] if m.get(name, {}).get("ok") else 1 << 62

    targets = []

    def target(text: str, holds: bool, measured: str) -> None:
        targets.append({"target": text, "holds": bool(holds), "measured": measured})

    full, scan = w("full_build"), m["scan_history"]["wall_seconds"]
    target(
        f"full build within {FULL_BUILD_SCAN_RATIO:g} × the bare scan of the same files",
        full <= FULL_BUILD_SCAN_RATIO * scan,
        f"{full:.1f} s vs {FULL_BUILD_SCAN_RATIO:g} × {scan:.1f} s = {FULL_BUILD_SCAN_RATIO * scan:.1f} s "
        f"({full / scan:.1f} × the scan)",
    )
    target("full build peak memory under 4 GB", peak("full_build") < FULL_BUILD_PEAK_BYTES, _gib(peak("full_build")))
    rtt, pandas = w("rtt_only_build"), w("pandas_rtt")
    target(
        "RTT-only build no slower than the pandas script",
        rtt <= pandas,
        f"{rtt:.1f} s vs pandas {pandas:.1f} s ({rtt / pandas:.2f} ×)",
    )
    target(
        "RTT-only build with no more peak memory than the pandas script",
        peak("rtt_only_build") <= peak("pandas_rtt"),
        f"{_gib(peak('rtt_only_build'))} vs pandas {_gib(peak('pandas_rtt'))}",
    )
    inc = w("incremental_update")
    target(f"one national month's update under {INCREMENTAL_SECONDS:g} s", inc < INCREMENTAL_SECONDS, f"{inc:.1f} s")
    rerun = w("pandas_rtt_with_new_month")
    target(
        f"one month's update at least {INCREMENTAL_PANDAS_SPEEDUP:g} × faster than re-running pandas",
        rerun / inc >= INCREMENTAL_PANDAS_SPEEDUP,
        f"pandas {rerun:.1f} s ÷ update {inc:.1f} s = {rerun / inc:.1f} ×",
    )
    for name, what in (("nothing_new", "national warehouse"), ("bundled_samples_again", "bundled samples")):
        said = m.get(name, {}).get("detail", {}).get("nothing_new")
        target(
            f"a run with nothing new under {NOTHING_NEW_SECONDS:g} s ({what})",
            w(name) < NOTHING_NEW_SECONDS and said,
            f"{w(name):.1f} s" + ("" if said else " (it did not say nothing was new)"),
        )
    target(
        f"the bundled samples into an empty warehouse (make run after install) under {BUNDLED_RUN_SECONDS:g} s",
        w("bundled_samples") < BUNDLED_RUN_SECONDS,
        f"{w('bundled_samples'):.1f} s",
    )
    if "real_month" in m:
        real, real_pandas = w("real_month"), w("pandas_real_month")
        target(
            f"the real April 2026 month into an empty warehouse within {REAL_MONTH_PANDAS_RATIO:g} × pandas",
            real <= REAL_MONTH_PANDAS_RATIO * real_pandas,
            f"{real:.1f} s vs pandas {real_pandas:.1f} s ({real / real_pandas:.1f} ×)",
        )
    p95s = [r["p95_seconds"] for r in q.values() if "p95_seconds" in r]
    errors = [name for name, r in q.items() if "error" in r]
    worst = max(p95s) if p95s else float("inf")
    target(
        f"every dashboard query p95 under {QUERY_P95_SECONDS * 1000:.0f} ms",
        bool(p95s) and not errors and worst < QUERY_P95_SECONDS,
        f"worst p95 {worst * 1000:.0f} ms over {len(p95s)} queries"
        + (f"; {len(errors)} failed: {', '.join(errors)}" if errors else ""),
    )
    return targets


def markdown(report: dict) -> str:
    m = report["measurements"]
    s = report["settings"]
    lines = [
        f"## Benchmark: {s['months']} months of national RTT and OAP, {s['acute_months']} months of acute spells "
        f"at F = {s['spell_fraction']:g}",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {report['machine']}  ",
        f"Measured: {report['measured_at']}",
        "",
        "| contender | wall (s) | CPU (s) | peak memory | wall ÷ bare scan | ok | load avg |",
        "| --- | ---: | ---: | ---: | ---: | :-: | ---: |",
    ]
    for name, row in m.items():
        if name.startswith("scan_"):
            ratio_text = "(floor)"
        else:
            reference = (
                m.get("scan_real_month")
                if "real_month" in name
                else m["scan_new_month"]
                if name.startswith(("incremental_update", "nothing_new"))
                else m["scan_history_rtt"]
                if "rtt" in name
                else None
                if name.startswith("bundled")
                else m["scan_history"]
            )
            ratio_text = (
                f"{row['wall_seconds'] / reference['wall_seconds']:.1f} × {reference['name']}" if reference else ""
            )
        lines.append(
            f"| {name} | {row['wall_seconds']:.1f} | {row['cpu_seconds']:.1f} | {_gib(row['peak_rss_bytes'])} | "
            f"{ratio_text} | {'yes' if row['ok'] else '**no**'} | {row['detail'].get('load_average_after', '')} |"
        )
    lines += ["", f"Files: {_files_line(report['files'])}", ""]
    q = report["queries"]
    lines += [f"Dashboard queries ({q['source']}), {s['query_repeats']} runs each after one cold run:", ""]
    lines += ["| query | rows | cold (ms) | p50 (ms) | p95 (ms) |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, r in q["results"].items():
        if "error" in r:
            lines.append(f"| {name} | error: {r['error']} | | | |")
        else:
            lines.append(
                f"| {name} | {r['rows']} | {r['cold_seconds'] * 1000:.1f} | {r['p50_seconds'] * 1000:.1f} | "
                f"{r['p95_seconds'] * 1000:.1f} |"
            )
    agreement = report["pandas_agreement"]
    lines += ["", f"pandas and the RTT-only build agree figure for figure: {agreement.get('agree')}"]
    for table in ("fct_rtt_provider_month", "rtt_collaborative_metrics"):
        if table in agreement:
            a = agreement[table]
            lines.append(
                f"- {table}: {a['rows']} rows (pandas {a['pandas_rows']}), {a['matched']} matched, "
                f"largest difference {a['max_abs_difference']:.3g}"
            )
    real = report.get("real_month", {}).get("pandas_agreement", {})
    if real.get("agree") is not None:
        lines.append(f"- the real month ({Path(report['real_month']['file']).name}): agree {real['agree']}")
        for table in ("fct_rtt_provider_month", "rtt_collaborative_metrics"):
            a = real[table]
            lines.append(
                f"  - {table}: {a['rows']} rows (pandas {a['pandas_rows']}), {a['matched']} matched, "
                f"largest difference {a['max_abs_difference']:.3g}"
            )
    lines += ["", "| target | holds | measured |", "| --- | :-: | --- |"]
    for t in report["targets"]:
        lines.append(f"| {t['target']} | {'yes' if t['holds'] else '**no**'} | {t['measured']} |")
    return "\n".join(lines) + "\n"


def _files_line(files: dict) -> str:
    parts = []
    for source, info in files["history"].items():
        if source == "ods":
            continue
        parts.append(f"{source} {info['files']} files, {info['bytes'] / 1e6:,.0f} MB")
    return "history: " + "; ".join(parts) + f" (generated in {files['generated_seconds']:.0f} s)"


def _gib(size: int | float) -> str:
    return f"{size / 1024**3:.2f} GiB"


def _machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    system = f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
    return f"{os.cpu_count()} cores, {memory / 1024**3:.0f} GiB, {system}"


def _progress(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        sys.exit(worker(sys.argv[2], sys.argv[3], sys.argv[4]))
    print("usage: collab-benefits bench [--months N] [--spell-fraction F] [--out DIR]", file=sys.stderr)
    sys.exit(2)
