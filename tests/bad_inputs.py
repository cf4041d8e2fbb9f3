"""The bad-input corpus: real-layout files, each with one defect, written from the bundled samples.

Each :class:`BadInput` takes one bundled sample file (so its layout, codes and figures are those a real delivery
has), breaks it in exactly one way and writes it into a landing folder laid out as ``<feed>/<file>``. The corpus is
written by code rather than stored, so that it always matches the current samples and a reviewer can read each
defect in one line. Expected behaviour is part of each case: whether the file is quarantined (``rejected``),
loaded with the row flagged and left out of the measures (``flagged``, for patient-level rows, SPEC §3.3), or
loaded as published with the row flagged (``warned``, a warning of a published aggregate's contract, SPEC §8), and
the violation the run must name (file, row, column, rule, and a phrase of the message).

``python -m tests.bad_inputs OUT_DIR`` writes the corpus beside nothing else, for looking at the files by hand.
"""

from __future__ import annotations

import csv
import io
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from orchestration.sources import los_acute, los_mh, oap
from orchestration.sources.rtt_layout import TOTAL_TREATMENT_FUNCTION, file_name, format_period

#: Months of the baseline each test landing folder starts from (every feed), before the corpus is dropped in.
BASELINE_MONTHS: tuple[date, ...] = (date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1))
#: A good file of a month not yet loaded, dropped in beside the corpus: it must still load.
GOOD_EXTRA = ("los_acute", date(2024, 4, 1))


# --------------------------------------------------------------------------------------------------------------
# Reading and writing CSV the way the publishers do (comma separated, minimal quoting, their line endings)


@dataclass
class Table:
    """A delivered CSV as its header and rows of text, plus the name of the CSV (inside the zip, if zipped)."""

    name: str
    header: list[str]
    rows: list[list[str]]
    #: as the publisher ends lines: ``\r\n`` (RTT, the extracts), ``\n`` (MHSDS monthly statistics)
    lineterminator: str = "\r\n"

    def column(self, name: str) -> int:
        return self.header.index(name)

    def line_of(self, index: int) -> int:
        """The CSV line of ``rows[index]`` (the header is line 1)."""
        return index + 2

    def find(self, **where: str) -> int:
        """The index of the first row whose cells equal ``where`` (column name → text)."""
        positions = {self.column(name): value for name, value in where.items()}
        for index, row in enumerate(self.rows):
            if all(row[position] == value for position, value in positions.items()):
                return index
        raise LookupError(f"no row with {where} in {self.name}")

    def to_bytes(self) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator=self.lineterminator)
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return buffer.getvalue().encode("utf-8")


def read_table(path: Path) -> Table:
    """A sample ``.csv`` or ``.zip`` (holding one CSV) as a :class:`Table`."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            [name] = archive.namelist()
            data = archive.read(name)
    else:
        name, data = path.name, path.read_bytes()
    header, *rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    return Table(name, header, rows, "\r\n" if b"\r\n" in data[:4096] else "\n")


def write_bytes(folder: Path, name: str, data: bytes, *, zipped: bool = False, member: str | None = None) -> Path:
    """Write ``data`` as ``folder/name`` (``zipped``: as a zip of ``member``, named ``name``)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if zipped:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(member or name.removesuffix(".zip") + ".csv", data)
    else:
        path.write_bytes(data)
    return path


# --------------------------------------------------------------------------------------------------------------
# Where the samples are


def sample_path(samples: Path, feed: str, month: date) -> Path:
    """The bundled sample file of ``feed`` for ``month``."""
    if feed == "rtt":
        return samples / "rtt" / file_name(month).replace(".csv", ".zip")
    if feed == "oap":  # the month's Performance file, zipped as NHS England publishes it
        return samples / "oap" / oap.file_name(month, "Performance", suffix=".zip")
    if feed == "los_acute":  # HES APC episodes (orchestration/sources/los_acute.py)
        return samples / feed / los_acute.file_name(month).replace(".csv", ".zip")
    if feed == "los_mh":  # the month's MHSDS submission: one zip of MHS501, MHS502 and MHS001
        return samples / "los_mh" / los_mh.file_name(month)
    raise ValueError(f"no sample file for feed {feed!r}")


def baseline_files(samples: Path) -> list[Path]:
    """The sample files the baseline loads: every feed, :data:`BASELINE_MONTHS`."""
    return [sample_path(samples, feed, month) for feed in FEEDS for month in BASELINE_MONTHS]


FEEDS = ("rtt", "oap", "los_mh", "los_acute")


# --------------------------------------------------------------------------------------------------------------
# The cases


@dataclass(frozen=True)
class Expected:
    """The violation the run must name. ``row``/``column`` ``None`` means the rule concerns the whole file."""

    rule: str
    row: int | None
    column: str | None
    message: str


@dataclass
class BadInput:
    """One corpus file: what is wrong with it, where it was written, and what the run must do with it.

    ``outcome`` is ``rejected`` (an error rule: quarantined, nothing loaded), ``flagged`` (loaded; the bad row is
    flagged and left out of the measures) or ``warned`` (a warning rule: the genuine publication loads as published
    and the row is flagged on the figures it touches). ``rules`` is every rule the file breaks (a duplicated detail
    row, say, also makes its C_999 total disagree); ``expected`` is the violation that names the defect itself.
    """

    name: str
    feed: str
    month: date
    defect: str
    outcome: str
    expected: Expected
    rules: frozenset[str]
    path: Path
    #: the name the run and the audit give the file (``x.zip/x.csv`` for a zipped file)
    source_file: str
    #: facts a case's test needs (e.g. the provider whose row was flagged)
    facts: dict = field(default_factory=dict)


Writer = Callable[[Path, Path], BadInput]
#: Every case's writer, by name (the test id).
CASES: dict[str, Writer] = {}
#: What the run must do with each case's file: ``rejected``, ``flagged`` or ``warned``.
OUTCOMES: dict[str, str] = {}


def case(name: str, outcome: str = "rejected") -> Callable[[Writer], Writer]:
    def register(writer: Writer) -> Writer:
        CASES[name] = writer
        OUTCOMES[name] = outcome
        return writer

    return register


def _bad(name, feed, month, defect, outcome, expected, path, source_file=None, rules=None, **facts) -> BadInput:
    assert OUTCOMES[name] == outcome, f"{name}: registered as {OUTCOMES[name]}, written as {outcome}"
    return BadInput(
        name=name,
        feed=feed,
        month=month,
        defect=defect,
        outcome=outcome,
        expected=expected,
        rules=frozenset(rules or {expected.rule}),
        path=path,
        source_file=source_file or path.name,
        facts=facts,
    )


def _rtt_csv_name(month: date) -> str:
    return file_name(month)


# RTT: the Full CSV data file ----------------------------------------------------------------------------------


@case("rtt: empty file")
def rtt_empty(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 1, 1)
    path = write_bytes(sources / "rtt", _rtt_csv_name(month), b"")
    expected = Expected("not_empty", None, None, "the file is empty")
    return _bad("rtt: empty file", "rtt", month, "zero bytes", "rejected", expected, path)


@case("rtt: HTML error page saved as .csv")
def rtt_html(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 2, 1)
    page = b"<!DOCTYPE html>\r\n<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\r\n"
    path = write_bytes(sources / "rtt", _rtt_csv_name(month), page)
    expected = Expected("not_html", None, None, "HTML or XML page saved under a .csv name")
    return _bad("rtt: HTML error page saved as .csv", "rtt", month, "a 404 page", "rejected", expected, path)


@case("rtt: missing column")
def rtt_missing_column(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 3, 1)
    table = read_table(sample_path(samples, "rtt", month))
    gone = table.column("Gt 05 To 06 Weeks SUM 1")
    table.header.pop(gone)
    for row in table.rows:
        row.pop(gone)
    path = write_bytes(sources / "rtt", table.name, table.to_bytes())
    expected = Expected("header_matches_layout", 1, "Gt 05 To 06 Weeks SUM 1", "is missing")
    return _bad("rtt: missing column", "rtt", month, "one week band dropped", "rejected", expected, path)


@case("rtt: non-numeric count")
def rtt_non_numeric(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 4, 1)
    table = read_table(sample_path(samples, "rtt", month))
    band = "Gt 40 To 41 Weeks SUM 1"
    # a blank cell (none) becomes text, so the sums that blank made still hold: only this cell is wrong
    index = next(
        i
        for i, row in enumerate(table.rows)
        if row[table.column("RTT Part Type")] == "Part_2"
        and row[table.column("Treatment Function Code")] != TOTAL_TREATMENT_FUNCTION
        and row[table.column(band)] == ""
    )
    table.rows[index][table.column(band)] = "n/a"
    path = write_bytes(sources / "rtt", table.name, table.to_bytes())
    expected = Expected("count_is_whole_number", table.line_of(index), band, "'n/a' is not a whole number")
    return _bad("rtt: non-numeric count", "rtt", month, "'n/a' in a count", "rejected", expected, path)


@case("rtt: negative count")
def rtt_negative(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 5, 1)
    table = read_table(sample_path(samples, "rtt", month))
    # Part_3 (new clock starts) has only Total All; moving 2 from the detail row's total to a negative keeps every
    # sum, so the one broken rule is that a count is negative
    index = table.find(**{"RTT Part Type": "Part_3", "Treatment Function Code": "C_100"})
    row = table.rows[index]
    total = table.column("Total All")
    c999 = table.find(
        **{
            "Provider Org Code": row[table.column("Provider Org Code")],
            "Commissioner Org Code": row[table.column("Commissioner Org Code")],
            "RTT Part Type": "Part_3",
            "Treatment Function Code": TOTAL_TREATMENT_FUNCTION,
        }
    )
    shift = int(row[total] or 0) + 2
    row[total] = str(-2)
    table.rows[c999][total] = str(int(table.rows[c999][total]) - shift)
    path = write_bytes(sources / "rtt", table.name, table.to_bytes())
    expected = Expected("count_not_negative", table.line_of(index), "Total All", "-2 is negative")
    return _bad("rtt: negative count", "rtt", month, "Total All of -2", "rejected", expected, path)


@case("rtt: duplicate key rows")
def rtt_duplicate(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 6, 1)
    table = read_table(sample_path(samples, "rtt", month))
    # a C_999 total row delivered twice: the detail still adds up to each copy, so only the key is broken
    index = table.find(**{"RTT Part Type": "Part_2", "Treatment Function Code": TOTAL_TREATMENT_FUNCTION})
    table.rows.append(list(table.rows[index]))
    row = table.rows[index]
    key = ", ".join(
        row[table.column(c)]
        for c in ("Provider Org Code", "Commissioner Org Code", "RTT Part Type", "Treatment Function Code")
    )
    path = write_bytes(sources / "rtt", table.name, table.to_bytes())
    expected = Expected(
        "unique_key",
        table.line_of(index),
        "Provider Org Code, Commissioner Org Code, RTT Part Type, Treatment Function Code",
        f"duplicate key {key} (also on line {table.line_of(len(table.rows) - 1)})",
    )
    return _bad("rtt: duplicate key rows", "rtt", month, "a row delivered twice", "rejected", expected, path)


@case("rtt: Part_2A greater than Part_2", outcome="warned")
def rtt_part_2a(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 7, 1)
    table = read_table(sample_path(samples, "rtt", month))
    ids = ("Provider Org Code", "Commissioner Org Code", "Treatment Function Code")
    index = table.find(**{"RTT Part Type": "Part_2A", "Treatment Function Code": "C_110"})
    row = table.rows[index]
    part_2 = table.rows[table.find(**{c: row[table.column(c)] for c in ids}, **{"RTT Part Type": "Part_2"})]
    total, band = table.column("Total All"), table.column("Gt 00 To 01 Weeks SUM 1")
    extra = int(part_2[total]) - int(row[total]) + 7
    # the Part_2A row and its C_999 total grow together, so only Part_2A ≤ Part_2 breaks
    c999 = table.rows[
        table.find(
            **{c: row[table.column(c)] for c in ids[:2]},
            **{"RTT Part Type": "Part_2A", "Treatment Function Code": TOTAL_TREATMENT_FUNCTION},
        )
    ]
    for target in (row, c999):
        target[band] = str(int(target[band] or 0) + extra)
        target[total] = str(int(target[total]) + extra)
    path = write_bytes(sources / "rtt", table.name, table.to_bytes())
    expected = Expected(
        "part_2a_within_part_2",
        table.line_of(index),
        "Total All",
        f"Part_2A Total All {row[total]} exceeds Part_2 Total All {part_2[total]}",
    )
    return _bad(
        "rtt: Part_2A greater than Part_2",
        "rtt",
        month,
        "DTA subset above the list",
        "warned",
        expected,
        path,
        org_code=row[table.column("Provider Org Code")],
    )


@case("rtt: C_999 disagrees with the detail", outcome="warned")
def rtt_c999(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 8, 1)
    table = read_table(sample_path(samples, "rtt", month))
    index = table.find(**{"RTT Part Type": "Part_2", "Treatment Function Code": TOTAL_TREATMENT_FUNCTION})
    row = table.rows[index]
    band, total = table.column("Gt 02 To 03 Weeks SUM 1"), table.column("Total All")
    row[band] = str(int(row[band] or 0) + 3)
    row[total] = str(int(row[total]) + 3)
    path = write_bytes(sources / "rtt", table.name, table.to_bytes())
    expected = Expected("c999_equals_detail", table.line_of(index), "Gt 02 To 03 Weeks SUM 1", "add up to")
    return _bad(
        "rtt: C_999 disagrees with the detail",
        "rtt",
        month,
        "total 3 above detail",
        "warned",
        expected,
        path,
        org_code=row[table.column("Provider Org Code")],
    )


@case("rtt: unknown part type")
def rtt_unknown_part(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 9, 1)
    table = read_table(sample_path(samples, "rtt", month))
    # one provider and commissioner's Part_3 rows (detail and total) all relabelled: the sums still agree
    first = table.find(**{"RTT Part Type": "Part_3"})
    provider, commissioner = (
        table.rows[first][table.column(c)] for c in ("Provider Org Code", "Commissioner Org Code")
    )
    for row in table.rows:
        if (row[table.column("Provider Org Code")], row[table.column("Commissioner Org Code")]) == (
            provider,
            commissioner,
        ) and row[table.column("RTT Part Type")] == "Part_3":
            row[table.column("RTT Part Type")] = "Part_4"
    path = write_bytes(sources / "rtt", table.name, table.to_bytes())
    expected = Expected("known_part_type", table.line_of(first), "RTT Part Type", "'Part_4'")
    return _bad("rtt: unknown part type", "rtt", month, "Part_4", "rejected", expected, path)


@case("rtt: period in the future")
def rtt_future(samples: Path, sources: Path) -> BadInput:
    month = date(2099, 1, 1)
    table = read_table(sample_path(samples, "rtt", date(2023, 10, 1)))
    for row in table.rows:
        row[table.column("Period")] = format_period(month)
    path = write_bytes(sources / "rtt", file_name(month), table.to_bytes())
    expected = Expected("period_not_in_future", 2, "Period", "'RTT-January-2099' is later than the current month")
    return _bad("rtt: period in the future", "rtt", month, "January 2099", "rejected", expected, path)


@case("rtt: unparseable period")
def rtt_unparseable_period(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 11, 1)
    table = read_table(sample_path(samples, "rtt", month))
    index = 10
    table.rows[index][table.column("Period")] = "RTT-Novmber-2023"
    path = write_bytes(sources / "rtt", table.name, table.to_bytes())
    expected = Expected("period_parses", table.line_of(index), "Period", "'RTT-Novmber-2023'")
    return _bad(
        "rtt: unparseable period",
        "rtt",
        month,
        "a misspelt month",
        "rejected",
        expected,
        path,
    )


@case("rtt: provider code that is not an ODS code")
def rtt_unknown_provider(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 12, 1)
    table = read_table(sample_path(samples, "rtt", month))
    provider = table.column("Provider Org Code")
    victim = table.rows[0][provider]
    for row in table.rows:
        if row[provider] == victim:
            row[provider] = "UNKNOWN"
    path = write_bytes(sources / "rtt", table.name, table.to_bytes())
    expected = Expected("org_code_format", 2, "Provider Org Code", "'UNKNOWN'")
    return _bad("rtt: provider code that is not an ODS code", "rtt", month, "UNKNOWN", "rejected", expected, path)


@case("rtt: same month again, other figures, no -revised")
def rtt_same_month(samples: Path, sources: Path) -> BadInput:
    month = BASELINE_MONTHS[1]
    table = read_table(sample_path(samples, "rtt", month))
    # new clock starts restated by one, consistently with their total: a silent re-publication
    index = table.find(**{"RTT Part Type": "Part_3", "Treatment Function Code": "C_100"})
    row = table.rows[index]
    c999 = table.rows[
        table.find(
            **{c: row[table.column(c)] for c in ("Provider Org Code", "Commissioner Org Code")},
            **{"RTT Part Type": "Part_3", "Treatment Function Code": TOTAL_TREATMENT_FUNCTION},
        )
    ]
    total = table.column("Total All")
    for target in (row, c999):
        target[total] = str(int(target[total] or 0) + 1)
    # published again a fortnight later, under that day's date
    name = f"{month:%Y}0315" + file_name(month)[8:]
    path = write_bytes(sources / "rtt", name, table.to_bytes())
    original = sample_path(samples, "rtt", month).name
    expected = Expected(
        "revision_named_revised", None, None, f"period already loaded from {original}/{table.name} with different"
    )
    return _bad(
        "rtt: same month again, other figures, no -revised", "rtt", month, "restated", "rejected", expected, path
    )


# Out-of-area placements: NHS England's MHSDS "Out of Area Placements" data file -------------------------------


def _oap_write(sources: Path, table: Table, name: str | None = None) -> Path:
    return write_bytes(sources / "oap", name or table.name, table.to_bytes())


@case("oap: header only")
def oap_header_only(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 1, 1)
    table = read_table(sample_path(samples, "oap", month))
    table.rows = []
    path = _oap_write(sources, table)
    expected = Expected("has_rows", 1, None, "has a header but no data rows")
    return _bad("oap: header only", "oap", month, "no rows", "rejected", expected, path)


@case("oap: renamed column")
def oap_renamed(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 2, 1)
    table = read_table(sample_path(samples, "oap", month))
    table.header[table.column("MEASURE_VALUE")] = "VALUE"
    path = _oap_write(sources, table)
    expected = Expected("header_matches_layout", 1, "VALUE", "has 'MEASURE_VALUE' there (renamed column?)")
    return _bad("oap: renamed column", "oap", month, "MEASURE_VALUE → VALUE", "rejected", expected, path)


@case("oap: negative count")
def oap_negative(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 3, 1)
    table = read_table(sample_path(samples, "oap", month))
    index = table.find(BREAKDOWN="Sending Provider", MEASURE_ID="OAP02")
    table.rows[index][table.column("MEASURE_VALUE")] = "-15"
    path = _oap_write(sources, table)
    expected = Expected("value_not_negative", table.line_of(index), "MEASURE_VALUE", "-15 is negative")
    return _bad("oap: negative count", "oap", month, "-15 bed days", "rejected", expected, path)


@case("oap: unsuppressed sender count")
def oap_unrounded(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 7, 1)
    table = read_table(sample_path(samples, "oap", month))
    index = table.find(BREAKDOWN="Sending Provider", PRIMARY_LEVEL="RV5", MEASURE_ID="OAP02")
    value = table.column("MEASURE_VALUE")
    table.rows[index][value] = str(int(table.rows[index][value]) + 2)  # as the unsuppressed _RAW extract has it
    path = _oap_write(sources, table)
    expected = Expected(
        "sub_national_counts_rounded", table.line_of(index), "MEASURE_VALUE", "is not '*' or a multiple of 5"
    )
    return _bad("oap: unsuppressed sender count", "oap", month, "not rounded to 5", "rejected", expected, path)


@case("oap: unknown measure id", outcome="warned")
def oap_unknown_measure(samples: Path, sources: Path) -> BadInput:
    month = date(2024, 4, 1)
    table = read_table(sample_path(samples, "oap", month))
    index = table.find(BREAKDOWN="Sending Provider", MEASURE_ID="OAP03")
    table.rows[index][table.column("MEASURE_ID")] = "OAP99"
    path = _oap_write(sources, table)
    expected = Expected("known_measure_id", table.line_of(index), "MEASURE_ID", "'OAP99' is not a known measure id")
    return _bad("oap: unknown measure id", "oap", month, "OAP99", "warned", expected, path)


@case("oap: provider code that is not an ODS code", outcome="warned")
def oap_malformed_sender(samples: Path, sources: Path) -> BadInput:
    month = date(2024, 5, 1)
    table = read_table(sample_path(samples, "oap", month))
    level, breakdown = table.column("PRIMARY_LEVEL"), table.column("BREAKDOWN")
    victim = "RXG"  # a WYMHLDA member, written as no ODS code looks
    first = table.find(BREAKDOWN="Sending Provider", PRIMARY_LEVEL=victim)
    for row in table.rows:
        if row[breakdown] == "Sending Provider" and row[level] == victim:
            row[level] = "R-XG"
    path = _oap_write(sources, table)
    expected = Expected(
        "org_code_format", table.line_of(first), "PRIMARY_LEVEL", "'R-XG' is neither an organisation code"
    )
    return _bad(
        "oap: provider code that is not an ODS code", "oap", month, "R-XG", "warned", expected, path, org_code=victim
    )


@case("oap: unparseable period")
def oap_unparseable_period(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 6, 1)
    table = read_table(sample_path(samples, "oap", month))
    index = 5
    table.rows[index][table.column("REPORTING_PERIOD_END")] = "2023-06-30"
    path = _oap_write(sources, table)
    expected = Expected(
        "dates_parse", table.line_of(index), "REPORTING_PERIOD_END", "'2023-06-30' is not a date in the published form"
    )
    return _bad("oap: unparseable period", "oap", month, "2023-06-30", "rejected", expected, path)


@case("oap: same month again, other figures, no -revised")
def oap_same_month(samples: Path, sources: Path) -> BadInput:
    month = BASELINE_MONTHS[2]
    loaded = sample_path(samples, "oap", month)
    table = read_table(loaded)
    index = table.find(BREAKDOWN="Sending Provider", PRIMARY_LEVEL="RV5", MEASURE_ID="OAP02")
    value = table.column("MEASURE_VALUE")
    table.rows[index][value] = str(int(table.rows[index][value]) + 5)
    # the same Performance publication, unzipped, with one figure changed and no _v2
    path = _oap_write(sources, table)
    expected = Expected(
        "republication_marked",
        None,
        None,
        f"March 2024 is already loaded from {loaded.name}/{table.name} (Performance) with different figures",
    )
    return _bad(
        "oap: same month again, other figures, no -revised", "oap", month, "restated", "rejected", expected, path
    )


# Mental health: MHSDS submissions (MHS501 + MHS502 + MHS001 in one zip) -------------------------------------


def _los_write(sources: Path, feed: str, table: Table, *, zipped: bool = True, name: str | None = None) -> Path:
    name = name or table.name.replace(".csv", ".zip" if zipped else ".csv")
    return write_bytes(sources / feed, name, table.to_bytes(), zipped=zipped, member=table.name)


def _mh_tables(samples: Path, month: date) -> dict[str, Table]:
    """The bundled submission zip of ``month`` as its three tables, by table key (MHS501, MHS502, MHS001)."""
    tables = {}
    with zipfile.ZipFile(sample_path(samples, "los_mh", month)) as archive:
        for name in archive.namelist():
            data = archive.read(name)
            header, *rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
            tables[name[:6].upper()] = Table(name, header, rows)
    return tables


def _mh_write(sources: Path, month: date, tables: dict[str, Table], data: dict[str, bytes] | None = None) -> Path:
    path = sources / "los_mh" / los_mh.file_name(month)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, table in tables.items():
            archive.writestr(table.name, (data or {}).get(key) or table.to_bytes())
    return path


@case("los_mh: not UTF-8")
def los_mh_latin_1(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 1, 1)
    tables = _mh_tables(samples, month)
    people = tables["MHS001"]
    index = 40
    people.rows[index][people.column("EthnicCategory")] = "É"  # the table re-saved as Latin-1 by a spreadsheet
    path = _mh_write(sources, month, tables, {"MHS001": people.to_bytes().decode("utf-8").encode("latin-1")})
    expected = Expected("utf8_encoding", people.line_of(index), "EthnicCategory", "is not UTF-8 text: byte 0xc9")
    return _bad(
        "los_mh: not UTF-8",
        "los_mh",
        month,
        "Latin-1 bytes",
        "rejected",
        expected,
        path,
        source_file=f"{path.name}/{people.name}",
    )


@case("los_mh: missing column")
def los_mh_missing_column(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 2, 1)
    tables = _mh_tables(samples, month)
    wards = tables["MHS502"]
    at = wards.column("MHAdmittedPatientClass")
    wards.header.pop(at)
    for row in wards.rows:
        row.pop(at)
    path = _mh_write(sources, month, tables)
    expected = Expected(
        "required_column_present", 1, "MHAdmittedPatientClass", "has no column 'MHAdmittedPatientClass'"
    )
    return _bad(
        "los_mh: missing column",
        "los_mh",
        month,
        "MHS502 without its bed type",
        "rejected",
        expected,
        path,
    )


@case("los_mh: admission and discharge dates swapped throughout")
def los_mh_swapped(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 3, 1)
    tables = _mh_tables(samples, month)
    spells = tables["MHS501"]
    start, end = spells.column("StartDateHospProvSpell"), spells.column("DischDateHospProvSpell")
    for row in spells.rows:
        row[start], row[end] = row[end], row[start]
    first_open = next(i for i, row in enumerate(spells.rows) if row[start] == "")
    path = _mh_write(sources, month, tables)
    expected = Expected(
        "required_value_present",
        spells.line_of(first_open),
        "StartDateHospProvSpell",
        "StartDateHospProvSpell is blank",
    )
    return _bad(
        "los_mh: admission and discharge dates swapped throughout",
        "los_mh",
        month,
        "columns' values swapped",
        "rejected",
        expected,
        path,
    )


@case("los_mh: a spell discharged before admission", outcome="flagged")
def los_mh_discharged_before_admission(samples: Path, sources: Path) -> BadInput:
    month = date(2024, 4, 1)
    tables = _mh_tables(samples, month)
    spells, wards, people = tables["MHS501"], tables["MHS502"], tables["MHS001"]
    start, end = spells.column("StartDateHospProvSpell"), spells.column("DischDateHospProvSpell")
    record = spells.column("RecordNumber")
    # an MHS140 spell (the beds the LoS measures are about: final ward stay adult acute, v6 code 200, aged 18-64),
    # discharged in the month, early enough to move
    adult_acute = {
        (row[wards.column("UniqHospProvSpellID")], row[wards.column("EndDateWardStay")])
        for row in wards.rows
        if row[wards.column("MHAdmittedPatientClass")] == "200"
    }
    ages = {row[people.column("RecordNumber")]: int(row[people.column("AgeRepPeriodEnd")]) for row in people.rows}
    index = next(
        i
        for i, row in enumerate(spells.rows)
        if row[end].startswith(f"{month:%Y-%m}")
        and int(row[end][-2:]) <= 25
        and row[start] < row[end]
        and (row[spells.column("UniqHospProvSpellID")], row[end]) in adult_acute
        and 18 <= ages[row[record]] <= 64
    )
    row = spells.rows[index]
    discharged = date.fromisoformat(row[end])
    row[start] = (discharged + timedelta(days=3)).isoformat()
    path = _mh_write(sources, month, tables)
    expected = Expected(
        "discharged_before_admission",
        spells.line_of(index),
        "DischDateHospProvSpell",
        f"discharged {discharged.isoformat()}, before the admission on {row[start]}",
    )
    return _bad(
        "los_mh: a spell discharged before admission",
        "los_mh",
        month,
        "one spell",
        "flagged",
        expected,
        path,
        org_code=row[spells.column("OrgIDProv")],
        spell_id=row[spells.column("UniqHospProvSpellID")],
    )


# Acute admitted patient care episodes (HES APC) ---------------------------------------------------------------


@case("los_acute: truncated zip")
def los_acute_truncated(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 1, 1)
    data = sample_path(samples, "los_acute", month).read_bytes()
    path = write_bytes(sources / "los_acute", sample_path(samples, "los_acute", month).name, data[: len(data) // 2])
    expected = Expected("readable_zip", None, None, "is not a readable zip archive (truncated or corrupt download?)")
    return _bad("los_acute: truncated zip", "los_acute", month, "half the bytes", "rejected", expected, path)


@case("los_acute: non-numeric count")
def los_acute_non_numeric(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 2, 1)
    table = read_table(sample_path(samples, "los_acute", month))
    index = next(i for i, row in enumerate(table.rows) if row[table.column("SPELDUR")] != "")
    table.rows[index][table.column("SPELDUR")] = "twelve"
    path = _los_write(sources, "los_acute", table)
    expected = Expected("number_is_whole", table.line_of(index), "SPELDUR", "'twelve' is not a whole number")
    return _bad(
        "los_acute: non-numeric count",
        "los_acute",
        month,
        "'twelve' days",
        "rejected",
        expected,
        path,
        source_file=f"{path.name}/{table.name}",
    )


@case("los_acute: provider code that is not an ODS code")
def los_acute_malformed_provider(samples: Path, sources: Path) -> BadInput:
    month = date(2023, 3, 1)
    table = read_table(sample_path(samples, "los_acute", month))
    index = 3
    table.rows[index][table.column("PROCODE3")] = "R-1"
    path = _los_write(sources, "los_acute", table)
    expected = Expected("org_code_format", table.line_of(index), "PROCODE3", "'R-1'")
    return _bad(
        "los_acute: provider code that is not an ODS code",
        "los_acute",
        month,
        "R-1",
        "rejected",
        expected,
        path,
        source_file=f"{path.name}/{table.name}",
    )


@case("los_acute: unknown provider code", outcome="flagged")
def los_acute_unknown_provider(samples: Path, sources: Path) -> BadInput:
    month = date(2024, 5, 1)
    table = read_table(sample_path(samples, "los_acute", month))
    # a single-episode spell (EPIORDER 1 carrying the DISDATE) discharged in the month: the spell is that row
    index = next(
        i
        for i, row in enumerate(table.rows)
        if row[table.column("DISDATE")].startswith(f"{month:%Y-%m}") and row[table.column("EPIORDER")] == "1"
    )
    row = table.rows[index]
    known = row[table.column("PROCODE3")]
    row[table.column("PROCODE3")] = "RZ9"  # shaped like a trust code, but no such trust in seeds/reference
    path = _los_write(sources, "los_acute", table)
    expected = Expected(
        "unknown_provider", table.line_of(index), "PROCODE3", "'RZ9' is not an organisation in seeds/reference"
    )
    return _bad(
        "los_acute: unknown provider code",
        "los_acute",
        month,
        "RZ9",
        "flagged",
        expected,
        path,
        source_file=f"{path.name}/{table.name}",
        org_code=known,
        spell_id=f"RZ9:{row[table.column('SUSSPELLID')]}",  # spells are provider + SUSSPELLID
    )


# --------------------------------------------------------------------------------------------------------------


def write_corpus(samples: Path, sources: Path) -> list[BadInput]:
    """Write every case into ``sources/<feed>/``; return them in :data:`CASES` order."""
    return [writer(samples, sources) for writer in CASES.values()]


def write_landing_folder(samples: Path, sources: Path) -> None:
    """The baseline: copies of the bundled sample files of :data:`BASELINE_MONTHS`, every feed."""
    for path in baseline_files(samples):
        target = sources / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())


def write_good_extra(samples: Path, sources: Path) -> Path:
    feed, month = GOOD_EXTRA
    path = sample_path(samples, feed, month)
    target = sources / feed / path.name
    target.write_bytes(path.read_bytes())
    return target


if __name__ == "__main__":
    from orchestration.resources import BUNDLED_SAMPLES_DIR

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bad_inputs")
    for bad in write_corpus(BUNDLED_SAMPLES_DIR, out):
        print(f"{bad.outcome:8} {bad.feed}/{bad.path.name}: {bad.name} ({bad.defect})")
