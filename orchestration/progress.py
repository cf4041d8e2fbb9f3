"""What a run is doing while it does it: phases (a feed's files, dbt build, the mart checks, publishing, …) and the
files within them, told to whoever listens.

The pipeline's steps report here and never print: ``collab-benefits run`` installs a listener (live bars on a
terminal, plain lines in a log, nothing with ``--quiet``: :mod:`orchestration.console`); under ``dagster dev``
nobody listens and every call is a no-op. Steps run one at a time in the thread that executes the Dagster job
(the in-process executor), so the phase being run is simply the innermost one open.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol


@dataclass(frozen=True)
class FileLine:
    """One file's outcome: ``action`` is one of :data:`orchestration.raw.ACTIONS`; ``warnings`` the rules that
    flagged ``flagged_rows`` of its rows (severity "warn") when it loaded all the same."""

    source: str
    file: str
    period_month: date | None
    action: str
    rows: int
    message: str = ""
    warnings: tuple[str, ...] = ()
    flagged_rows: int = 0

    def __str__(self) -> str:
        month = f"{self.period_month:%Y-%m}" if self.period_month else "month ?"
        text = f"{self.source}/{self.file}  {month}  {self.action}  {self.rows:,} rows"
        if self.warnings:
            text += f"  ({self.flagged_rows:,} flagged: {', '.join(self.warnings)})"
        if self.action == "rejected":
            text += "  (quarantined: see the summary)"
        elif self.action == "known_rejected":
            text += "  (quarantined by an earlier run, unchanged: not read again)"
        return text

    @property
    def notable(self) -> bool:
        """Worth keeping on screen after the phase: anything but a plain load or a file seen before."""
        return self.action in ("rejected", "known_rejected", "replaced", "superseded") or bool(self.warnings)


@dataclass
class Phase:
    """One phase of the run. ``total``/``completed`` count its units (files, dbt nodes, marts) when it has any;
    ``doing`` says what it is busy with now; ``outcome`` is its one-line result."""

    title: str
    total: int | None = None
    completed: int = 0
    doing: str = ""
    outcome: str = ""
    failed: bool = False
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    files: list[FileLine] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def set_total(self, total: int) -> None:
        self.total = total
        _notify("phase_updated", self)

    def busy_with(self, doing: str) -> None:
        self.doing = doing
        _notify("phase_updated", self)

    def advance(self, units: int = 1, doing: str | None = None) -> None:
        self.completed += units
        if doing is not None:
            self.doing = doing
        _notify("phase_updated", self)

    def file_done(self, line: FileLine) -> None:
        self.files.append(line)
        self.completed += 1
        self.doing = ""
        _notify("file_done", self, line)

    def finish(self, outcome: str, *, failed: bool = False) -> None:
        """Set the phase's one-line result (shown when it ends); ``failed`` marks it as having failed."""
        self.outcome = outcome
        self.failed = self.failed or failed


class Listener(Protocol):
    def phase_started(self, phase: Phase) -> None: ...

    def phase_updated(self, phase: Phase) -> None: ...

    def file_done(self, phase: Phase, line: FileLine) -> None: ...

    def phase_finished(self, phase: Phase) -> None: ...


_listeners: list[Listener] = []
_open: list[Phase] = []
#: What :func:`current` returns outside any phase: reports into it go nowhere.
_NOWHERE = Phase("(outside any phase)")


def _notify(event: str, phase: Phase, *args) -> None:
    if phase is _NOWHERE:
        return
    for listener in list(_listeners):
        getattr(listener, event)(phase, *args)


def listened() -> bool:
    """True while someone shows the run's progress (the CLI): tools' own output then goes to log files only."""
    return bool(_listeners)


@contextmanager
def listening(listener: Listener) -> Iterator[Listener]:
    """Tell ``listener`` about every phase while the block runs."""
    _listeners.append(listener)
    try:
        yield listener
    finally:
        _listeners.remove(listener)


def begin(title: str, total: int | None = None) -> Phase:
    """Open a phase; :func:`end` closes it (or use :func:`phase`)."""
    opened = Phase(title, total)
    _open.append(opened)
    _notify("phase_started", opened)
    return opened


def end(opened: Phase, *, failed: bool = False) -> None:
    """Close a phase opened by :func:`begin`; ``failed`` marks it as failed (an exception escaped it, say)."""
    opened.failed = opened.failed or failed
    opened.finished = time.monotonic()
    if opened in _open:
        _open.remove(opened)
    _notify("phase_finished", opened)


@contextmanager
def phase(title: str, total: int | None = None) -> Iterator[Phase]:
    """Open a phase; it ends (and is marked failed if an exception escapes) when the block does."""
    opened = begin(title, total)
    failed = True
    try:
        yield opened
        failed = False
    finally:
        end(opened, failed=failed)


def current() -> Phase:
    """The innermost open phase (a file loop reports its files into its feed's phase), or a phase nobody sees."""
    return _open[-1] if _open else _NOWHERE


def count_actions(lines: list[FileLine]) -> str:
    """``"70 files: 68 loaded, 2 unchanged (12,345 rows loaded)"``: a feed phase's outcome."""
    if not lines:
        return "no files"
    by_action: dict[str, int] = {}
    for line in lines:
        by_action[line.action] = by_action.get(line.action, 0) + 1
    loaded_rows = sum(line.rows for line in lines if line.action in ("loaded", "replaced"))
    warned = sum(1 for line in lines if line.warnings and line.action in ("loaded", "replaced"))
    text = f"{len(lines)} file{'s' * (len(lines) != 1)}: " + ", ".join(
        f"{count} {action}" for action, count in sorted(by_action.items(), key=lambda item: -item[1])
    )
    if loaded_rows:
        text += f" ({loaded_rows:,} rows loaded)"
    if warned:
        text += f"; {warned} loaded with warnings"
    return text
