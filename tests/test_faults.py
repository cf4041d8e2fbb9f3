"""Faults (SPEC §2, one writer, many readers): a reader never sees half a publication, and a killed run changes
nothing that dashboards show and recovers on the next run with no manual step.

Both tests drive ``python -m orchestration.cli run`` as a separate process, as cron or a user would, on a small
sources folder: 12 months (2022) of every feed. 2022 is chosen because the collaboratives go live between 2022-04
and 2023-04, so the evaluation mart has rows rather than none.

* ``test_readers_only_ever_see_a_complete_publication``: a warehouse holding the publication of months 1-11 gets
  month 12; while that run works, this process opens ``serving.duckdb`` read-only in a loop, as Superset does, and
  reads the ``_publication`` run id plus a fingerprint of the data, in one connection. Every read must succeed and
  show the old publication or the new one, whole.
* ``test_a_killed_run_changes_nothing_and_the_next_run_recovers``: the same update is killed (SIGKILL to the whole
  process group, as a container stop would) part-way into ingest, the dbt build and the benefits marts (a fraction
  of each phase's length in the uninterrupted update, counted from the killed run's own phase marker) and at two
  moments taken from the run itself (its staging file appearing; its "Published" line). The serving file
  must be byte-identical to the old one, or (only once publishing had started) the complete new one; then a plain
  ``run`` must exit 0 and serve the same table contents as an uninterrupted run into a fresh warehouse.

Evidence for where each kill landed is the killed run's own output so far (the phase markers below).

They take 5-6.5 minutes on a busy 2-core machine and passed five rounds in a row from a fresh clone (the five that
issue 5 asks for). They are marked ``faults`` and deselected from ``make test``, which they would lengthen by half:
``make test-faults`` runs them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.resources import REPO_ROOT

pytestmark = pytest.mark.faults

FIRST_MONTH = date(2022, 1, 1)
LAST_MONTH = date(2022, 12, 1)
RUN_TIMEOUT_S = 300
READ_LOOP_MAX_S = 300
READ_INTERVAL_S = 0.05

#: Lines the CLI prints, in order, and the phase the run is in once the line has appeared.
PHASE_MARKERS: tuple[tuple[str, str], ...] = (
    ("Sources:", "ingest (raw loads, contract checks)"),
    ("dbt build", "dbt build (what changed: seeds, models, tests)"),
    ("done: PASS=", "benefits marts, then publish"),
    ("Published the serving database", "board reports (publication already swapped in)"),
)
STARTUP_PHASE = "startup (imports, before ingest)"
#: Columns that record when or in which run something happened; they differ between any two runs.
VOLATILE_COLUMNS = frozenset({"loaded_at", "run_id", "run_at", "checked_at", "published_at"})
FLOAT_TYPES = frozenset({"DOUBLE", "FLOAT", "REAL"})
#: Kill points. Timed ones are a fraction of the way through a phase, measured from when the killed run printed
#: that phase's marker, the phase's length taken from the uninterrupted update; a fixed fraction of the whole run
#: drifts between phases when the machine is busier or idler than when it was measured. Event ones kill the moment
#: the run's staging file appears (mid-publish) or it prints "Published" (after the swap, writing reports).
KILL_POINTS: tuple[tuple[str, str, float], ...] = (
    ("timed", "Sources:", 0.5),
    ("timed", "dbt build", 0.5),
    ("timed", "done: PASS=", 0.3),
    ("event", "staging file", 0.0),
    ("event", "Published the serving database", 0.0),
)


# ---------------------------------------------------------------------------------------------------------------
# Running the CLI as a separate process


@dataclass
class CliRun:
    proc: subprocess.Popen
    log: Path
    warehouse: Path
    started: float
    marker_times: dict[str, float] = field(default_factory=dict)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def note_markers(self) -> None:
        """Record when each phase marker first appeared in the output (polled, so to within one poll)."""
        text = self.output()
        for marker, _ in PHASE_MARKERS:
            if marker not in self.marker_times and marker in text:
                self.marker_times[marker] = self.elapsed()

    def wait(self, timeout: float = RUN_TIMEOUT_S) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"run into {self.warehouse} did not finish in {timeout}s:\n{self.output()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the run and everything it started (dbt runs as a child process), then reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the group's other members (dbt) are gone once kill(0) fails
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def start_run(sources: Path, warehouse: Path, log: Path) -> CliRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLAB_")}
    env["PYTHONUNBUFFERED"] = "1"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestration.cli", "run", "--sources-dir", str(sources)]
            + ["--warehouse-dir", str(warehouse)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,  # its own process group, so a kill takes dbt with it
        )
    return CliRun(proc=proc, log=log, warehouse=warehouse, started=time.monotonic())


def run_all(runs: list[tuple[Path, Path, Path]], parallel: int = 2) -> list[tuple[int, CliRun]]:
    """Run ``(sources, warehouse, log)`` jobs to completion, ``parallel`` at a time (the machine has 2 cores)."""
    done: list[tuple[int, CliRun]] = []
    for i in range(0, len(runs), parallel):
        batch = [start_run(*job) for job in runs[i : i + parallel]]
        done += [(run.wait(), run) for run in batch]
    return done


def phase_of(output: str) -> str:
    phase = STARTUP_PHASE
    for marker, name in PHASE_MARKERS:
        if marker in output:
            phase = name
    return phase


# ---------------------------------------------------------------------------------------------------------------
# Reading the serving database as Superset does (read-only), and comparing publications


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_fingerprint(serving: Path) -> tuple:
    """The publication's run id and a consistency fingerprint of its data, read in one read-only connection.

    Sums are over DECIMAL casts so that re-reading the same file always gives the same figure.
    """
    con = duckdb.connect(str(serving), read_only=True)
    try:
        return con.execute(
            """
            select
                (select run_id from _publication),
                (select table_count from _publication),
                (select count(*) from duckdb_tables() where table_name <> '_publication'),
                (select count(*) from fct_collaborative_metric_month),
                (select sum(cast(value as decimal(38, 6))) from fct_collaborative_metric_month),
                (select max(period_month) from fct_collaborative_metric_month),
                (select count(*) from fct_spc),
                (select count(*) from fct_rtt_provider_month),
                (select count(*) from fct_benefit_tracking)
            """
        ).fetchone()
    finally:
        con.close()


def table_contents(serving: Path) -> dict[str, pd.DataFrame]:
    """Every served table but ``_publication``, without its volatile columns, in a deterministic order."""
    con = duckdb.connect(str(serving), read_only=True)
    try:
        tables = [
            row[0]
            for row in con.execute(
                "select table_name from duckdb_tables() where table_name <> '_publication' order by 1"
            ).fetchall()
        ]
        contents = {}
        for table in tables:
            columns = [(name, kind) for name, kind, *_ in con.execute(f'describe "{table}"').fetchall()]
            kept = [(name, kind) for name, kind in columns if name not in VOLATILE_COLUMNS]
            exact = [f'"{name}"' for name, kind in kept if kind not in FLOAT_TYPES]
            floats = [f'"{name}"' for name, kind in kept if kind in FLOAT_TYPES]
            select = ", ".join(exact + floats)
            contents[table] = con.execute(f'select {select} from "{table}" order by {select}').df()
        return contents
    finally:
        con.close()


def contents_sha256(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


def contents_differences(actual: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> list[str]:
    """Tables whose contents differ. Exact (sha256 of the CSV) where possible; DOUBLE columns within 1e-9 relative,
    because aggregates over doubles may round differently in the last bits when rows arrive in another order."""
    problems = []
    for table in sorted(set(actual) | set(expected)):
        if table not in actual or table not in expected:
            problems.append(f"{table}: only in {'actual' if table in actual else 'expected'}")
            continue
        if contents_sha256(actual[table]) == contents_sha256(expected[table]):
            continue
        try:
            pd.testing.assert_frame_equal(
                actual[table], expected[table], check_exact=False, rtol=1e-9, atol=1e-12, check_dtype=False
            )
        except AssertionError as error:
            problems.append(f"{table}: {len(actual[table])} vs {len(expected[table])} rows: {str(error)[:400]}")
    return problems


def leftovers(warehouse: Path) -> list[str]:
    return sorted(p.name for p in warehouse.iterdir() if p.name.endswith((".publishing", ".wal", ".tmp")))


# ---------------------------------------------------------------------------------------------------------------
# Fixtures: the sources, the warehouse holding months 1-11, and an uninterrupted run of months 1-12


@dataclass
class Setup:
    root: Path
    sources_old: Path
    sources_new: Path
    base_warehouse: Path
    base_serving_sha: str
    base_fingerprint: tuple
    reference_contents: dict[str, pd.DataFrame]
    reference_fingerprint: tuple
    seconds: dict[str, float]


@pytest.fixture(scope="module", name="setup")
def setup_fixture(tmp_path_factory) -> Setup:
    from orchestration.dbt import prepare_manifest
    from orchestration.samples import generate_samples

    prepare_manifest()  # parse once here, not in two runs at the same time
    root = tmp_path_factory.mktemp("faults")
    started = time.monotonic()
    sources_new = root / "sources_new"
    generate_samples(sources_new, first_month=FIRST_MONTH, last_month=LAST_MONTH)
    # The newest month's files are exactly those a one-month generation writes (same names, same bytes).
    last_only = generate_samples(root / "last_month_only", first_month=LAST_MONTH, last_month=LAST_MONTH)
    new_month_files = {path.name for source, paths in last_only.items() if source != "ods" for path in paths}
    sources_old = root / "sources_old"
    shutil.copytree(sources_new, sources_old, ignore=lambda _dir, names: [n for n in names if n in new_month_files])
    assert new_month_files and not any(next(sources_old.rglob(name), None) for name in new_month_files)
    generated = time.monotonic()

    base, reference = root / "warehouse_base", root / "warehouse_reference"
    (base_rc, base_run), (ref_rc, ref_run) = run_all(
        [(sources_old, base, root / "base.log"), (sources_new, reference, root / "reference.log")]
    )
    assert base_rc == 0, base_run.output()[-3000:]
    assert ref_rc == 0, ref_run.output()[-3000:]
    ran = time.monotonic()
    setup = Setup(
        root=root,
        sources_old=sources_old,
        sources_new=sources_new,
        base_warehouse=base,
        base_serving_sha=file_sha256(base / "serving.duckdb"),
        base_fingerprint=read_fingerprint(base / "serving.duckdb"),
        reference_contents=table_contents(reference / "serving.duckdb"),
        reference_fingerprint=read_fingerprint(reference / "serving.duckdb"),
        seconds={"generate samples": generated - started, "base + reference runs (parallel)": ran - generated},
    )
    # The update adds a month: the two publications must be told apart by the fingerprint, not only the run id.
    assert setup.base_fingerprint[1:] != setup.reference_fingerprint[1:]
    print(f"\nsetup: {', '.join(f'{k} {v:.1f}s' for k, v in setup.seconds.items())}; {len(new_month_files)} new files")
    return setup


def fresh_copy(setup: Setup, name: str) -> Path:
    """A warehouse holding the complete publication of months 1-11 (a copy of the base run's warehouse)."""
    warehouse = setup.root / name
    shutil.copytree(setup.base_warehouse, warehouse)
    assert file_sha256(warehouse / "serving.duckdb") == setup.base_serving_sha
    return warehouse


@dataclass
class ConcurrentUpdate:
    run: CliRun
    returncode: int
    duration: float
    reads: list[tuple[float, tuple]]
    errors: list[str]


@pytest.fixture(scope="module")
def concurrent_update(setup) -> ConcurrentUpdate:
    """The months 1-11 warehouse gets month 12 while this process keeps reading its serving database."""
    warehouse = fresh_copy(setup, "warehouse_concurrent")
    serving = warehouse / "serving.duckdb"
    run = start_run(setup.sources_new, warehouse, setup.root / "concurrent.log")
    reads: list[tuple[float, tuple]] = []
    errors: list[str] = []
    deadline = time.monotonic() + READ_LOOP_MAX_S
    after_exit = 3  # a few reads once the run has exited, which must all see the new publication
    exited_at = None
    while after_exit and time.monotonic() < deadline:
        if run.proc.poll() is not None:
            exited_at = exited_at or run.elapsed()
            after_exit -= 1
        run.note_markers()
        at = run.elapsed()
        try:
            reads.append((at, read_fingerprint(serving)))
        except Exception as error:  # any failure at all is what this test is about
            errors.append(f"{at:.2f}s: {type(error).__name__}: {error}")
        time.sleep(READ_INTERVAL_S)
    returncode = run.wait(timeout=max(1.0, deadline - time.monotonic()))
    run.note_markers()
    duration = exited_at or run.elapsed()
    return ConcurrentUpdate(run=run, returncode=returncode, duration=duration, reads=reads, errors=errors)


# ---------------------------------------------------------------------------------------------------------------
# 1. Many readers during one writer


def test_readers_only_ever_see_a_complete_publication(setup, concurrent_update):
    update = concurrent_update
    output = update.run.output()
    assert update.returncode == 0, output[-3000:]
    assert not update.errors, f"{len(update.errors)} of {len(update.reads) + len(update.errors)} reads failed:\n" + (
        "\n".join(update.errors[:20])
    )

    final = read_fingerprint(update.run.warehouse / "serving.duckdb")
    old = setup.base_fingerprint
    assert final[0] != old[0], "the update did not publish"
    assert final[1:] == setup.reference_fingerprint[1:], "the new publication differs from a fresh run's"
    assert not contents_differences(table_contents(update.run.warehouse / "serving.duckdb"), setup.reference_contents)

    states = {old[0]: old, final[0]: final}
    mixed = [(t, fp) for t, fp in update.reads if states.get(fp[0]) != fp]
    old_reads = [t for t, fp in update.reads if fp == old]
    new_reads = [t for t, fp in update.reads if fp == final]
    published_at = update.run.marker_times.get("Published the serving database")
    timeline = ", ".join(
        f"{marker!r} at {t:.1f}s" for marker, t in sorted(update.run.marker_times.items(), key=lambda x: x[1])
    )
    print(
        f"\nreaders: {len(update.reads)} reads over {update.duration:.1f}s, {len(old_reads)} saw the old publication "
        f"(last at {max(old_reads, default=-1):.2f}s), {len(new_reads)} the new one "
        f"(first at {min(new_reads, default=-1):.2f}s); "
        f"run timeline: {timeline}"
    )
    assert not mixed, f"reads that match neither complete publication: {mixed[:5]}"
    assert len(update.reads) > 20
    assert old_reads and new_reads
    # Nobody saw the new publication before the run had got to publishing, nor the old one after it said so.
    assert min(new_reads) >= update.run.marker_times["done: PASS="] - 1.0
    if published_at is not None:
        assert max(old_reads) <= published_at + 1.0
    assert not [name for name in leftovers(update.run.warehouse) if ".publishing" in name]


# ---------------------------------------------------------------------------------------------------------------
# 2. Kill at many points, then recover with a plain run


@dataclass
class Kill:
    label: str
    warehouse: Path
    at: float
    phase: str
    output_tail: str
    serving_state: str = ""
    leftovers_after_kill: list[str] = field(default_factory=list)


def start_killing(setup: Setup, name: str) -> CliRun:
    return start_run(setup.sources_new, fresh_copy(setup, name), setup.root / f"{name}.log")


def kill_timed(run: CliRun, marker: str, delay: float) -> bool:
    """Kill ``delay`` seconds after ``marker`` appears in the run's output; False if the run ended first."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while run.proc.poll() is None and time.monotonic() < deadline:
        run.note_markers()
        if marker in run.marker_times and run.elapsed() >= run.marker_times[marker] + delay:
            break
        time.sleep(0.01)
    hit = run.proc.poll() is None
    run.kill()
    return hit


def kill_on_event(run: CliRun, event: str) -> bool:
    """Kill as soon as the staging file exists, or as soon as ``event`` is printed; False if the run ended first."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while run.proc.poll() is None and time.monotonic() < deadline:
        if event == "staging file":
            if any(name.endswith(".publishing") for name in os.listdir(run.warehouse)):
                break
            time.sleep(0.002)
        else:
            if event in run.output():
                break
            time.sleep(0.01)
    hit = run.proc.poll() is None
    run.kill()
    return hit


def serving_after_kill(setup: Setup, kill: Kill, output: str) -> list[str]:
    """Which publication the killed run left being served, and whether that is allowed at the phase it reached."""
    serving = kill.warehouse / "serving.duckdb"
    kill.leftovers_after_kill = leftovers(kill.warehouse)
    try:
        read_fingerprint(serving)
    except Exception as error:
        kill.serving_state = "unreadable"
        return [f"kill {kill.label} ({kill.phase}): serving database unreadable: {type(error).__name__}: {error}"]
    if file_sha256(serving) == setup.base_serving_sha:
        kill.serving_state = "old (byte-identical)"
    elif not contents_differences(table_contents(serving), setup.reference_contents):
        kill.serving_state = "new (complete)"
    else:
        kill.serving_state = "neither old nor new"
        return [f"kill {kill.label} ({kill.phase}): serving is neither the old nor the new publication"]
    problems = []
    if kill.serving_state != "old (byte-identical)" and "done: PASS=" not in output:
        problems.append(f"kill {kill.label} ({kill.phase}): serving changed before publishing could have started")
    if "Published the serving database" in output and kill.serving_state != "new (complete)":
        problems.append(f"kill {kill.label} ({kill.phase}): the run said it had published but serves the old data")
    return problems


def recovery_verdict(setup: Setup, kill: Kill, run: CliRun, returncode: int) -> tuple[str, list[str]]:
    if returncode != 0:
        return f"exit {returncode}", [
            f"recovery after kill {kill.label} ({kill.phase}) exited {returncode}:\n{run.output()[-3000:]}"
        ]
    problems = []
    differences = contents_differences(table_contents(kill.warehouse / "serving.duckdb"), setup.reference_contents)
    if differences:
        problems.append(f"recovery after kill {kill.label} ({kill.phase}) serves other contents: {differences}")
    left = [name for name in leftovers(kill.warehouse) if ".publishing" in name]
    if left:
        problems.append(f"recovery after kill {kill.label} ({kill.phase}) left files behind: {left}")
    verdict = f"exit 0 in {run.elapsed():.1f}s, contents {'DIFFER' if differences else 'equal the fresh run'}"
    return verdict + (f", left behind {left}" if left else ""), problems


def test_a_killed_run_changes_nothing_and_the_next_run_recovers(setup, concurrent_update):
    assert concurrent_update.returncode == 0
    measured = concurrent_update.run.marker_times
    phase_ends = [measured[marker] for marker, _ in PHASE_MARKERS[1:]] + [concurrent_update.duration]
    phase_length = {marker: end - measured[marker] for (marker, _), end in zip(PHASE_MARKERS, phase_ends, strict=True)}
    print(
        f"\nuninterrupted update: {concurrent_update.duration:.1f}s; phases began at "
        + ", ".join(f"{name} {measured[marker]:.1f}s" for marker, name in PHASE_MARKERS)
    )

    kills: list[Kill] = []
    problems: list[str] = []
    recovering: tuple[Kill, CliRun] | None = None  # one recovery runs beside the next killed run (2 cores)
    verdicts: dict[str, str] = {}

    def finish_recovery() -> None:
        kill, run = recovering
        verdict, found = recovery_verdict(setup, kill, run, run.wait())
        verdicts[kill.label] = verdict
        problems.extend(found)

    for i, (kind, anchor, fraction) in enumerate(KILL_POINTS):
        run = start_killing(setup, f"warehouse_kill_{i}")
        if kind == "timed":
            delay = fraction * phase_length[anchor]
            label = f"{fraction:.0%} into {dict(PHASE_MARKERS)[anchor].split(' (')[0]} (+{delay:.1f}s after {anchor!r})"
            hit = kill_timed(run, anchor, delay)
        else:
            label = f"when the {anchor} appears"
            hit = kill_on_event(run, anchor)
        output = run.output()
        kill = Kill(
            label=label, warehouse=run.warehouse, at=run.elapsed(), phase=phase_of(output), output_tail=output[-400:]
        )
        kills.append(kill)
        if recovering is not None:
            finish_recovery()
            recovering = None
        if not hit:
            problems.append(f"kill {label}: the run ended before the kill point:\n{output[-1500:]}")
            continue
        problems.extend(serving_after_kill(setup, kill, output))
        # Recover with a plain run: no clean-up of the WAL, the staging file or anything else the kill left.
        recovering = (kill, start_run(setup.sources_new, kill.warehouse, setup.root / f"{kill.warehouse.name}.rec.log"))
    if recovering is not None:
        finish_recovery()

    for kill in kills:
        print(
            f"kill {kill.label}: at {kill.at:.1f}s during {kill.phase}; serving {kill.serving_state or '?'}; "
            f"left behind {kill.leftovers_after_kill or 'nothing'}; recovery: {verdicts.get(kill.label, '-')}"
        )
    assert not problems, "\n\n".join(problems)
