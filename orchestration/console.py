"""What ``collab-benefits run`` shows while it runs, and where the tools' own output goes instead.

Three ways to show progress (:mod:`orchestration.progress`), chosen by :func:`listener_for`:

- on a terminal, live bars (rich): one per phase with the file or dbt node it is on; a line stays on screen when a
  phase ends, and for each file that was rejected, replaced or loaded with warnings;
- in a log (stdout not a terminal, or ``CI`` set), plain lines: each phase as it starts and ends, and every file
  with its month, action and rows; no live bars and no escape codes;
- with ``--quiet``, nothing until the summary.

dbt's output, Dagster's events and Python's log records go to files under ``WAREHOUSE/logs/``
(:func:`logging_to_files`); only errors reach the console, and the summary names the files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from orchestration.progress import FileLine, Phase


def _is_terminal(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def wants_live_display(out: TextIO) -> bool:
    """Live bars only for a person at a terminal: not in CI, not into a pipe or a file, not on a dumb terminal."""
    return _is_terminal(out) and not os.environ.get("CI") and os.environ.get("TERM") != "dumb"


class Silent:
    """``--quiet``: the summary says it all."""

    def __enter__(self) -> Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def phase_started(self, phase: Phase) -> None:
        pass

    def phase_updated(self, phase: Phase) -> None:
        pass

    def file_done(self, phase: Phase, line: FileLine) -> None:
        pass

    def phase_finished(self, phase: Phase) -> None:
        pass


def _ending(phase: Phase) -> str:
    state = "FAILED" if phase.failed else "done"
    return f"{state}{': ' + phase.outcome if phase.outcome else ''} [{phase.seconds:.1f} s]"


class PlainLines(Silent):
    """One line as each phase starts and ends, one per file: readable in a CI log, greppable, no escape codes."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def phase_started(self, phase: Phase) -> None:
        self._print(f"{phase.title} ...")

    def file_done(self, phase: Phase, line: FileLine) -> None:
        self._print(f"  {line}")

    def phase_finished(self, phase: Phase) -> None:
        self._print(f"  {_ending(phase)}")


class LiveBars(Silent):
    """rich's live progress bars on a terminal; what ends is printed above them and stays."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console(file=out, highlight=False)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[doing]}", markup=False),
            console=self.console,
            transient=True,
            redirect_stdout=True,
            redirect_stderr=True,
        )
        self.tasks: dict[int, object] = {}

    def __enter__(self) -> LiveBars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _say(self, text: str, style: str | None = None) -> None:
        from rich.text import Text

        self.progress.console.print(Text(text, style=style or ""))

    def phase_started(self, phase: Phase) -> None:
        self.tasks[id(phase)] = self.progress.add_task(phase.title, total=phase.total, doing="")

    def phase_updated(self, phase: Phase) -> None:
        task = self.tasks.get(id(phase))
        if task is not None:
            doing = phase.doing if len(phase.doing) <= 70 else phase.doing[:69] + "…"
            self.progress.update(task, total=phase.total, completed=phase.completed, doing=doing)

    def file_done(self, phase: Phase, line: FileLine) -> None:
        self.phase_updated(phase)
        task = self.tasks.get(id(phase))
        if task is not None:
            self.progress.update(task, doing=f"{line.file} {line.action}")
        if line.notable:
            self._say(f"  {line}", "red" if line.action == "rejected" else "yellow")

    def phase_finished(self, phase: Phase) -> None:
        task = self.tasks.pop(id(phase), None)
        if task is not None:
            self.progress.remove_task(task)
        mark, style = ("✗", "bold red") if phase.failed else ("✓", "green")
        ending = _ending(phase) if phase.failed else f"{phase.outcome or 'done'} [{phase.seconds:.1f} s]"
        self._say(f"{mark} {phase.title}: {ending}", style)


def listener_for(out: TextIO, *, quiet: bool = False) -> Silent:
    """How to show this run's progress on ``out`` (see the module's docstring)."""
    if quiet:
        return Silent()
    return LiveBars(out) if wants_live_display(out) else PlainLines(out)


class _OneLine(logging.Formatter):
    """An error on the console in one line; its traceback is in the log file named."""

    def __init__(self, log_file: Path) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.log_file = log_file

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage().splitlines()[0] if record.getMessage() else ""
        return f"{record.levelname} {record.name}: {text} (details: {self.log_file})"


class _ToStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes: the live display puts its own in place, which
    prints above the bars."""

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stderr)
        super().emit(record)


@contextlib.contextmanager
def logging_to_files(logs_dir: Path) -> Iterator[Path]:
    """While the block runs, Python's log records (the pipeline's, GX's, Dagster's own Python logger's) and
    warnings go to ``logs_dir/pipeline.log``; only errors reach the console (stderr), one line each."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    path = logs_dir / "pipeline.log"
    root = logging.getLogger()
    to_file = logging.FileHandler(path, mode="w", encoding="utf-8")
    to_file.setLevel(logging.INFO)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"))
    to_console = _ToStderr()
    to_console.setLevel(logging.ERROR)
    to_console.setFormatter(_OneLine(path))
    previous_level = root.level
    root.addHandler(to_file)
    root.addHandler(to_console)
    root.setLevel(min(previous_level, logging.INFO))
    logging.captureWarnings(True)
    try:
        yield path
    finally:
        logging.captureWarnings(False)
        root.removeHandler(to_file)
        root.removeHandler(to_console)
        root.setLevel(previous_level)
        to_file.close()
