"""How `collab-benefits run` shows progress: live bars only at a terminal, plain lines in logs, nothing if quiet."""

from __future__ import annotations

import io
from datetime import date

import pytest

from orchestration import progress
from orchestration.console import LiveBars, PlainLines, Silent, listener_for


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _a_feed_phase() -> None:
    with progress.phase("RTT waiting times (rtt): read, check and load files") as phase:
        phase.set_total(2)
        phase.busy_with("20240430-RTT-April-2024-full-extract.zip: reading and checking")
        phase.file_done(progress.FileLine("rtt", "a.zip", date(2024, 4, 1), "loaded", 1234))
        phase.file_done(
            progress.FileLine(
                "rtt", "b.csv", date(2024, 5, 1), "loaded", 99, warnings=("part_2a_within_part_2",), flagged_rows=2
            )
        )
        phase.finish(progress.count_actions(phase.files))


@pytest.mark.parametrize(
    ("out", "env", "quiet", "expected"),
    [
        (io.StringIO(), {}, False, PlainLines),  # a pipe or a file
        (FakeTerminal(), {}, False, LiveBars),
        (FakeTerminal(), {"CI": "true"}, False, PlainLines),
        (FakeTerminal(), {"TERM": "dumb"}, False, PlainLines),
        (FakeTerminal(), {}, True, Silent),
        (io.StringIO(), {}, True, Silent),
    ],
)
def test_the_display_suits_where_the_output_goes(monkeypatch, out, env, quiet, expected):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert type(listener_for(out, quiet=quiet)) is expected


def test_plain_lines_name_each_phase_and_file_without_escape_codes():
    out = io.StringIO()
    with PlainLines(out) as listener, progress.listening(listener):
        _a_feed_phase()
    lines = out.getvalue().splitlines()
    assert lines[0] == "RTT waiting times (rtt): read, check and load files ..."
    assert lines[1] == "  rtt/a.zip  2024-04  loaded  1,234 rows"
    assert lines[2] == "  rtt/b.csv  2024-05  loaded  99 rows  (2 flagged: part_2a_within_part_2)"
    assert lines[3].startswith("  done: 2 files: 2 loaded (1,333 rows loaded); 1 loaded with warnings [")
    assert "\x1b" not in out.getvalue()


def test_a_failed_phase_says_so():
    out = io.StringIO()
    with (
        PlainLines(out) as listener,
        progress.listening(listener),
        pytest.raises(RuntimeError),
        progress.phase("dbt build: seeds, models and their tests"),
    ):
        raise RuntimeError("dbt exited 1")
    assert out.getvalue().splitlines()[-1].startswith("  FAILED [")


def test_live_bars_keep_the_ended_phase_and_notable_files_on_screen():
    out = FakeTerminal()
    with LiveBars(out) as listener, progress.listening(listener):
        _a_feed_phase()
    text = out.getvalue()
    assert "✓ RTT waiting times (rtt): read, check and load files: 2 files: 2 loaded" in text
    assert "rtt/b.csv  2024-05  loaded  99 rows  (2 flagged: part_2a_within_part_2)" in text
    assert "rtt/a.zip  2024-04  loaded" not in text  # a plain load only passes through the bar


def test_nobody_listening_costs_nothing_and_says_nothing(capsys):
    assert not progress.listened()
    _a_feed_phase()
    progress.current().file_done(progress.FileLine("rtt", "c.zip", None, "unchanged", 0))  # outside any phase
    assert capsys.readouterr().out == ""
