"""The out-of-area placements file in NHS England's real layout: reading, the contract and its severities, which
publication of a month stands, and loading into raw_oap, on real CSV and zip files and real DuckDB; then a
hand-worked example through the whole pipeline to the marts.

Files are the generator's own (orchestration.samples.oap, the real layout) written to tmp_path; each contract test
breaks one rule in one cell and expects it named with its file, CSV line, column and rule. The real 4 week waits
file of the same publisher pipeline (tests/fixtures/real) proves the reader takes the published shape.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.pipeline import run_pipeline
from orchestration.raw import ContractViolation
from orchestration.samples.common import write_zip
from orchestration.samples.oap import generate_oap_file, published_csv
from orchestration.sources import oap
from orchestration.sources.oap_layout import MEASURE_NAMES, PublicationName, parse_file_name

JUNE, JULY = date(2024, 6, 1), date(2024, 7, 1)
REAL_4WW = Path(__file__).parent / "fixtures" / "real" / "mhsds" / "MHSDS Data_4WW_AprPerf_2024_v2.zip"


@cache
def _generated(month: date, status: str, version: int) -> pd.DataFrame:
    return generate_oap_file(month, status, version=version)


def frame_for(month: date = JUNE, status: str = "Performance", version: int = 1) -> pd.DataFrame:
    """A fresh copy of the generated rows of ``month``'s ``status`` file (safe to change)."""
    return _generated(month, status, version).copy()


def write(
    folder: Path,
    frame: pd.DataFrame,
    month: date = JUNE,
    *,
    status: str = "Performance",
    version: int = 1,
    name: str | None = None,
    header: list[str] | None = None,
    zipped: bool = False,
) -> Path:
    """Write ``frame`` as the publisher does (LF, minimal quoting), as a CSV or a zip holding one."""
    folder.mkdir(parents=True, exist_ok=True)
    data = published_csv(frame, header or list(oap.HEADER))
    name = name or oap.file_name(month, status, version=version, suffix=".zip" if zipped else ".csv")
    if name.endswith(".zip"):
        return write_zip(folder / name, name.removesuffix(".zip") + ".csv", data)
    path = folder / name
    path.write_bytes(data)
    return path


def ingest(con, folder: Path, tmp_path: Path, **kwargs):
    return oap.ingest_oap_folder(
        con, folder, tmp_path / "quarantine", move_rejected=kwargs.pop("move", False), **kwargs
    )


def rows(con, sql: str = "select * exclude (source_file) from raw_oap.monthly_statistics") -> list[tuple]:
    return con.execute(sql + " order by all").fetchall()


def index_of(frame: pd.DataFrame, **where: str) -> int:
    """The position of the first row whose cells equal ``where``."""
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        mask &= frame[column] == value
    return int(mask.to_numpy().nonzero()[0][0])


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "build.duckdb"))
    yield connection
    connection.close()


# --------------------------------------------------------------------------------------------------------------
# Names and the real layout


def test_publisher_file_names_are_parsed():
    assert parse_file_name("MHSDS Data_OAPs_AprPerf_2026.zip") == PublicationName(
        "OAPs", date(2026, 4, 1), "Performance"
    )
    assert parse_file_name("MHSDS Data_OAPs_MayProv_2026.csv").status == "Provisional"
    assert parse_file_name("MHSDS Data_OAPs_MarFinal_2025.zip").status == "Final"
    assert parse_file_name("MHSDS Data_OAPs_JanAdho_2025.csv").status == "Adhoc"
    v2 = parse_file_name("MHSDS Data_OAPs_AprPerf_2026_v2.zip/MHSDS Data_OAPs_AprPerf_2026_v2.csv")
    assert (v2.month, v2.version, v2.is_republication) == (date(2026, 4, 1), 2, True)
    adhoc = parse_file_name("MHSDS Data_OAPs_AprPerf_2026_Adhoc.csv")
    assert adhoc.adhoc and adhoc.is_republication and adhoc.version == 1
    assert parse_file_name("/tmp/x/MHSDS%20Data_OAPs_DecPerf_2023.zip").month == date(2023, 12, 1)
    real = parse_file_name(REAL_4WW)
    assert (real.family, real.month, real.status, real.version) == ("4WW", date(2024, 4, 1), "Performance", 2)
    # variants the publication pages link (orchestration/pull.py lands files under their published names)
    for name, month, status, version in [
        ("MHSDS Data_OAPs_AprFinal__2025.zip", date(2025, 4, 1), "Final", 1),
        ("MHSDS Data_OAPs_JunPrf_2024 v3.csv", date(2024, 6, 1), "Performance", 3),
        ("MHSDS Data_OAPs_SeptPerf_2025.zip", date(2025, 9, 1), "Performance", 1),
        ("MHSDS Monthly Performance July 2025 Out of Area Placements.zip", date(2025, 7, 1), "Performance", 1),
    ]:
        found = parse_file_name(name)
        assert (found.family, found.month, found.status, found.version) == ("OAPs", month, status, version), name
    assert parse_file_name("MHSDS OAPs_Time_Series_Apr_2023_Apr_2026_Perf.zip") is None  # another product
    # the names our first samples invented, and the publisher's unsuppressed internal extract, are not publications
    assert parse_file_name("MHSDS_OAPs_2024-06_Final.csv") is None
    assert parse_file_name("MHSDS Data_OAPs_AprPerf_2026_RAW.csv") is None
    assert oap.file_name(date(2026, 4, 1)) == "MHSDS Data_OAPs_AprPerf_2026.csv"
    assert oap.file_name(date(2026, 5, 1), "Provisional", suffix=".zip") == "MHSDS Data_OAPs_MayProv_2026.zip"
    assert oap.file_name(date(2023, 11, 1), version=2) == "MHSDS Data_OAPs_NovPerf_2023_v2.csv"


def test_the_real_mhsds_file_layout_is_read_as_published():
    """The real 4 week waits file (the OAP file's sibling in the same pipeline and layout): header, DD/MM/YYYY
    dates, quarter and month rows, quoting, provider codes and '*' are all read; the contract names it as another
    publication, not as a malformed file."""
    oap_file, frame = oap.read_oap_file(REAL_4WW)
    assert list(frame.columns) == list(oap.HEADER)
    assert (oap_file.period_month, oap_file.status, oap_file.version) == (date(2024, 4, 1), "Performance", 2)
    assert oap_file.source_file == f"{REAL_4WW.name}/{REAL_4WW.stem}.csv"
    assert len(frame) == 19_958
    starts, ends = oap.parse_dates(frame.REPORTING_PERIOD_START), oap.parse_dates(frame.REPORTING_PERIOD_END)
    assert starts.notna().all() and ends.notna().all()
    kinds = {oap.period_type(s.date(), e.date()) for s, e in zip(starts, ends, strict=True)}
    assert kinds == {"month", "rolling_quarter"}
    assert "NHS BEDFORDSHIRE, LUTON AND MILTON KEYNES INTEGRATED CARE BOARD" in set(frame.PRIMARY_LEVEL_DESCRIPTION)
    assert (frame.MEASURE_VALUE == "*").sum() == 12_477

    report = oap.contract_report(oap_file, frame, today=date(2026, 1, 1))
    assert {v.rule for v in report.errors} == {"required_breakdowns_present", "required_measures_present"}
    assert "no Sending Provider rows" in next(v.message for v in report.errors if v.column == "BREAKDOWN")
    # nothing about the layout itself: dates, periods, values, codes (PCN codes like U20256 included) all pass
    assert {v.rule for v in report.warnings} == {"known_measure_id", "known_breakdown"}


# --------------------------------------------------------------------------------------------------------------
# Loading


@pytest.mark.parametrize("status", ["Provisional", "Performance", "Final", "Adhoc"])
def test_a_file_of_each_status_in_the_real_layout_loads(con, tmp_path, status):
    frame = frame_for(status=status)
    path = write(tmp_path / "oap", frame, status=status, zipped=True)

    [result] = ingest(con, tmp_path / "oap", tmp_path)

    assert (result.action, result.rows, result.period_month) == ("loaded", len(frame), JUNE)
    assert result.file == f"{path.name}/{path.stem}.csv"
    assert con.execute("select distinct status from raw_oap.monthly_statistics").fetchall() == [(status,)]
    found = con.execute(
        """select period_type, reporting_period_start, reporting_period_end, count(*)
           from raw_oap.monthly_statistics group by all order by reporting_period_start"""
    ).fetchall()
    per_period = len(frame) // 3
    end = date(2024, 6, 30)
    assert found == [
        ("rolling_12_months", date(2023, 7, 1), end, per_period),
        ("rolling_quarter", date(2024, 4, 1), end, per_period),
        ("month", JUNE, end, per_period),
    ]


def test_a_loaded_month_keeps_every_cell_as_published(con, tmp_path):
    frame = frame_for()
    write(tmp_path / "oap", frame)
    ingest(con, tmp_path / "oap", tmp_path)

    described = con.execute("describe raw_oap.monthly_statistics").fetchall()
    assert [(name, kind) for name, kind, *_ in described] == [(name, kind.upper()) for name, kind in oap.RAW_COLUMNS]
    loaded = con.execute(
        "select source_row, measure_id, measure_value_published from raw_oap.monthly_statistics order by source_row"
    ).fetchall()
    assert loaded == [(i + 2, m, v) for i, (m, v) in enumerate(zip(frame.MEASURE_ID, frame.MEASURE_VALUE, strict=True))]
    # national rows are exact and unrounded; rates keep their decimals
    england = dict(
        con.execute(
            """select measure_id, measure_value from raw_oap.monthly_statistics
               where breakdown = 'England' and period_type = 'month'"""
        ).fetchall()
    )
    published = frame[(frame.BREAKDOWN == "England") & (frame.REPORTING_PERIOD_START == "01/06/2024")]
    assert england == {m: float(v) for m, v in zip(published.MEASURE_ID, published.MEASURE_VALUE, strict=True)}
    assert england["OAP02"] % 5 != 0 or england["OAP01"] % 5 != 0
    assert england["OAP05"] != round(england["OAP05"])
    assert con.execute("select count(*) from raw_oap.monthly_statistics where row_flags is not null").fetchone() == (0,)


def test_star_is_kept_as_suppressed_never_zero(con, tmp_path):
    frame = frame_for()
    stars = int((frame.MEASURE_VALUE == "*").sum())
    assert stars > 0
    write(tmp_path / "oap", frame)
    ingest(con, tmp_path / "oap", tmp_path)

    suppressed = con.execute(
        """select count(*), count(measure_value), bool_and(is_suppressed)
           from raw_oap.monthly_statistics where measure_value_published = '*'"""
    ).fetchone()
    assert suppressed == (stars, 0, True)
    assert con.execute(
        "select count(*) from raw_oap.monthly_statistics where is_suppressed and measure_value_published <> '*'"
    ).fetchone() == (0,)
    # a zero is only ever a national figure, published as 0; a sender's zero is '*'
    assert con.execute(
        "select count(*) from raw_oap.monthly_statistics where measure_value = 0 and breakdown = 'Sending Provider'"
    ).fetchone() == (0,)


def test_unknown_senders_are_loaded_like_any_other_row(con, tmp_path):
    frame = frame_for()
    write(tmp_path / "oap", frame)
    [result] = ingest(con, tmp_path / "oap", tmp_path)
    assert result.action == "loaded"
    unknown = con.execute(
        """select period_type, count(*), any_value(primary_level_description), sum(measure_value)
           from raw_oap.monthly_statistics
           where breakdown = 'Sending Provider' and primary_level = 'UNKNOWN' group by 1 order by 1"""
    ).fetchall()
    assert [(kind, n, name) for kind, n, name, _ in unknown] == [
        ("month", 8, "UNKNOWN"),
        ("rolling_12_months", 8, "UNKNOWN"),
        ("rolling_quarter", 8, "UNKNOWN"),
    ]
    assert all(total > 0 for *_, total in unknown)


def test_loading_the_same_files_again_changes_nothing(con, tmp_path):
    folder = tmp_path / "oap"
    write(folder, frame_for(JUNE), JUNE, zipped=True)
    write(folder, frame_for(JULY), JULY)
    first = ingest(con, folder, tmp_path)
    before = rows(con)
    loads = rows(con, "select * exclude (loaded_at) from raw_oap.file_loads")

    again = ingest(con, folder, tmp_path)

    assert [r.action for r in first] == ["loaded", "loaded"]
    assert [r.action for r in again] == ["unchanged", "unchanged"]
    assert rows(con) == before
    assert rows(con, "select * exclude (loaded_at) from raw_oap.file_loads") == loads

    # The same figures in other bytes (re-saved with \r\n endings, other name) are recognised, not re-loaded.
    other = tmp_path / "other"
    other.mkdir()
    data = published_csv(frame_for(JULY)).replace(b"\n", b"\r\n")
    (other / "oap july copy.csv").write_bytes(data)
    [copy] = ingest(con, other, tmp_path)
    assert copy.action == "unchanged"
    assert rows(con) == before


# --------------------------------------------------------------------------------------------------------------
# Which publication of a month stands


def test_precedence_decides_between_two_publications_of_a_month():
    def pub(status, version=1, adhoc=False):
        return oap.Publication(status, version, adhoc)

    assert oap.compare_publications(pub("Performance"), pub("Provisional")) == "replace"
    assert oap.compare_publications(pub("Final"), pub("Performance")) == "replace"
    assert oap.compare_publications(pub("Final"), pub("Adhoc")) == "replace"
    assert oap.compare_publications(pub("Provisional"), pub("Performance")) == "keep"
    assert oap.compare_publications(pub("Performance", 2), pub("Final")) == "keep"  # a v2 never outranks a status
    assert oap.compare_publications(pub("Performance", 2), pub("Performance")) == "replace"
    assert oap.compare_publications(pub("Performance"), pub("Performance", 2)) == "keep"
    assert oap.compare_publications(pub("Performance", adhoc=True), pub("Performance", 3)) == "replace"
    assert oap.compare_publications(pub("Performance", 3), pub("Performance", adhoc=True)) == "keep"
    assert oap.compare_publications(pub("Performance"), pub("Performance")) == "conflict"


def test_provisional_then_performance_then_final_then_a_re_publication_each_replace(con, tmp_path):
    folder = tmp_path / "oap"
    editions = {
        "Provisional": frame_for(status="Provisional"),
        "Performance": frame_for(status="Performance"),
        "Final": frame_for(status="Final"),
    }
    assert not editions["Provisional"].MEASURE_VALUE.equals(editions["Performance"].MEASURE_VALUE)
    assert not editions["Performance"].MEASURE_VALUE.equals(editions["Final"].MEASURE_VALUE)
    # written in the wrong order on purpose: discovery orders a month's files by precedence
    for status in ("Final", "Provisional", "Performance"):
        write(folder, editions[status], status=status, zipped=True)
    assert [parse_file_name(p).status for p in oap.discover_oap_files(folder)] == [
        "Provisional",
        "Performance",
        "Final",
    ]

    results = ingest(con, folder, tmp_path)

    assert [r.action for r in results] == ["loaded", "replaced", "replaced"]
    assert "Performance replaces" in results[1].message and "(Provisional)" in results[1].message
    assert "Final replaces" in results[2].message
    loaded = con.execute("select measure_value_published from raw_oap.monthly_statistics order by source_row")
    assert [v for (v,) in loaded.fetchall()] == list(editions["Final"].MEASURE_VALUE)
    assert con.execute("select distinct status from raw_oap.monthly_statistics").fetchall() == [("Final",)]
    assert con.execute("select action, is_current from raw_oap.file_loads order by load_id").fetchall() == [
        ("loaded", False),
        ("replaced", False),
        ("replaced", True),
    ]

    # a re-publication of the Performance file arriving now is of lower precedence than the Final: kept out
    v2 = tmp_path / "v2"
    write(v2, frame_for(status="Performance", version=2), version=2)
    [late] = ingest(con, v2, tmp_path)
    assert late.action == "superseded"
    assert late.message.startswith("not loaded: June 2024 is already loaded from ")
    assert "(Final)" in late.message and "a Performance publication never replaces a Final one" in late.message
    assert con.execute("select distinct status from raw_oap.monthly_statistics").fetchall() == [("Final",)]


def test_a_v2_re_publication_replaces_its_status_and_the_reverse_order_does_not_downgrade(con, tmp_path):
    first, second = frame_for(status="Performance"), frame_for(status="Performance", version=2)
    assert not first.MEASURE_VALUE.equals(second.MEASURE_VALUE)
    write(tmp_path / "a", first, zipped=True)
    ingest(con, tmp_path / "a", tmp_path)
    write(tmp_path / "b", second, version=2, zipped=True)
    [replaced] = ingest(con, tmp_path / "b", tmp_path)
    assert replaced.action == "replaced" and replaced.message.startswith("Performance v2 replaces ")
    assert con.execute("select is_revision from raw_oap.file_loads where is_current").fetchone() == (True,)

    # another warehouse: the v2 first, then the original, then a Provisional: neither takes its place
    other = duckdb.connect(str(tmp_path / "other.duckdb"))
    try:
        write(tmp_path / "c", second, version=2)
        [loaded] = ingest(other, tmp_path / "c", tmp_path)
        assert loaded.action == "loaded"
        write(tmp_path / "d", first)
        write(tmp_path / "d", frame_for(status="Provisional"), status="Provisional")
        results = {r.file: r for r in ingest(other, tmp_path / "d", tmp_path)}
        assert {r.action for r in results.values()} == {"superseded"}
        messages = " | ".join(r.message for r in results.values())
        assert "an earlier publication than the re-publication loaded" in messages
        assert "a Provisional publication never replaces a Performance one" in messages
        values = other.execute("select measure_value_published from raw_oap.monthly_statistics order by source_row")
        assert [v for (v,) in values.fetchall()] == list(second.MEASURE_VALUE)
    finally:
        other.close()


def test_the_same_status_again_with_other_figures_is_rejected_unless_re_published(con, tmp_path):
    folder = tmp_path / "oap"
    write(folder, frame_for())
    ingest(con, folder, tmp_path)
    before = rows(con)

    changed = frame_for()
    position = _sender()(changed)
    restated = int(changed.iloc[position, changed.columns.get_loc("MEASURE_VALUE")]) + 5
    changed.iloc[position, changed.columns.get_loc("MEASURE_VALUE")] = str(restated)
    second = tmp_path / "second"
    write(second, changed, zipped=True)  # the same name, zipped, one figure changed
    [result] = ingest(con, second, tmp_path)

    assert result.action == "rejected"
    assert [v.rule for v in result.violations] == ["republication_marked"]
    assert "June 2024 is already loaded from MHSDS Data_OAPs_JunPerf_2024.csv (Performance)" in str(
        result.violations[0]
    )
    assert result.quarantined_to is not None and result.quarantined_to.exists()
    assert "republication_marked" in Path(f"{result.quarantined_to}.reason.txt").read_text(encoding="utf-8")
    assert rows(con) == before

    # the same figures zipped are the same publication
    same = tmp_path / "same"
    write(same, frame_for(), zipped=True)
    [unchanged] = ingest(con, same, tmp_path)
    assert unchanged.action == "unchanged"

    revised = tmp_path / "revised"
    write(revised, changed, version=2)
    [replaced] = ingest(con, revised, tmp_path)
    assert replaced.action == "replaced"
    assert con.execute(
        "select measure_value from raw_oap.monthly_statistics where source_row = ?", [position + 2]
    ).fetchone() == (float(restated),)


# --------------------------------------------------------------------------------------------------------------
# The contract: critical rules quarantine the file


def _set(row, column: str, value: str):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        position = row(frame) if callable(row) else row
        frame.iloc[position, frame.columns.get_loc(column)] = value
        return frame

    return change


def _set_both(row: int, start: str, end: str):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.iloc[row, [frame.columns.get_loc("REPORTING_PERIOD_START"), frame.columns.get_loc(END)]] = [start, end]
        return frame

    return change


def _conflicting_duplicate(frame: pd.DataFrame) -> pd.DataFrame:
    frame.iloc[6] = frame.iloc[5]
    frame.iloc[6, frame.columns.get_loc("MEASURE_VALUE")] = "999999"
    return frame


def _sender(measure: str = "OAP02"):
    return lambda frame: index_of(frame, BREAKDOWN="Sending Provider", PRIMARY_LEVEL="RV5", MEASURE_ID=measure)


def _sender_line(measure: str = "OAP02") -> int:
    return _sender(measure)(frame_for()) + 2


START, END = "REPORTING_PERIOD_START", "REPORTING_PERIOD_END"
# (test id, change to the rows, rule, column, CSV line of the first violation)
CASES = [
    ("negative_value", _set(4, "MEASURE_VALUE", "-5"), "value_not_negative", "MEASURE_VALUE", 6),
    ("non_numeric_value", _set(5, "MEASURE_VALUE", "n/a"), "value_is_star_or_number", "MEASURE_VALUE", 7),
    ("blank_value", _set(5, "MEASURE_VALUE", ""), "value_is_star_or_number", "MEASURE_VALUE", 7),
    ("fractional_count", _set(2, "MEASURE_VALUE", "12.5"), "count_is_whole_number", "MEASURE_VALUE", 4),
    ("bad_date", _set(7, START, "31/13/2023"), "dates_parse", START, 9),
    ("iso_date", _set(7, END, "2024-06-30"), "dates_parse", END, 9),
    ("start_not_allowed", _set(9, START, "01/05/2024"), "known_period_start", START, 11),
    ("start_after_end", _set(9, START, "01/07/2024"), "known_period_start", START, 11),
    ("end_not_month_end", _set(1, END, "29/06/2024"), "end_is_month_end", END, 3),
    ("end_in_other_month", _set_both(1, "01/05/2024", "31/05/2024"), "single_month", END, 3),
    ("unknown_status", _set(8, "STATUS", "Draft"), "known_single_status", "STATUS", 10),
    ("mixed_status", _set(8, "STATUS", "Provisional"), "known_single_status", "STATUS", 10),
    ("blank_level", _set(8, "PRIMARY_LEVEL", ""), "required_level_present", "PRIMARY_LEVEL", 10),
    (
        "unrounded_sender_count",
        _set(_sender(), "MEASURE_VALUE", "312"),
        "sub_national_counts_rounded",
        "MEASURE_VALUE",
        _sender_line(),
    ),  # fmt: skip
    (
        "sender_zero",
        _set(_sender(), "MEASURE_VALUE", "0"),
        "sub_national_counts_rounded",
        "MEASURE_VALUE",
        _sender_line(),
    ),  # fmt: skip
    ("conflicting_duplicate", _conflicting_duplicate, "no_conflicting_duplicates", ", ".join(oap.KEY_COLUMNS), 7),
]


@pytest.mark.parametrize(("change", "rule", "column", "line"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_broken_critical_rule_is_named_and_quarantined_while_a_good_file_loads(
    con, tmp_path, change, rule, column, line
):
    folder = tmp_path / "oap"
    good = write(folder, frame_for(JULY), JULY)
    bad = write(folder, change(frame_for()))

    results = {r.file: r for r in ingest(con, folder, tmp_path, move=True)}

    rejected = results[bad.name]
    assert rejected.action == "rejected"
    assert results[good.name].action == "loaded"
    found = [v for v in rejected.violations if v.rule == rule]
    assert found, rejected.violations
    assert {v.rule for v in rejected.violations} == {rule}
    assert oap.rule_severities()[rule] == "error"
    first = found[0]
    assert (first.file, first.row) == (bad.name, line)
    assert first.column == column
    assert not bad.exists()  # moved out of the landing folder
    reason = (tmp_path / "quarantine" / "oap" / f"{bad.name}.reason.txt").read_text(encoding="utf-8")
    assert f"file: {bad.name}, row: {line}, column: {first.column}, rule: {rule}" in reason
    assert (tmp_path / "quarantine" / "oap" / bad.name).exists()
    assert con.execute("select distinct period_month from raw_oap.monthly_statistics").fetchall() == [(JULY,)]


def test_a_file_without_the_senders_or_the_counts_is_another_publication(con, tmp_path):
    frame = frame_for()
    without_senders = frame[frame.BREAKDOWN != "Sending Provider"]
    oap_file, read = oap.read_oap_file(write(tmp_path / "a", without_senders))
    assert [(v.rule, v.column) for v in oap.check_oap_contract(oap_file, read)] == [
        ("required_breakdowns_present", "BREAKDOWN")
    ]
    without_counts = frame[~frame.MEASURE_ID.isin(["OAP02"])]
    oap_file, read = oap.read_oap_file(write(tmp_path / "b", without_counts))
    [violation] = oap.check_oap_contract(oap_file, read)
    assert violation.rule == "required_measures_present" and "no OAP02 rows" in violation.message


def test_wrong_header_is_named_on_line_one(con, tmp_path):
    header = list(oap.HEADER)
    header[-1] = "VALUE"
    path = write(tmp_path / "oap", frame_for(), header=header)

    [result] = ingest(con, tmp_path / "oap", tmp_path)

    assert result.action == "rejected"
    assert [(v.row, v.column, v.rule) for v in result.violations] == [(1, "VALUE", "header_matches_layout")]
    assert "MEASURE_VALUE" in result.violations[0].message
    assert path.exists()  # copied, not moved, without move_rejected


def test_a_future_month_is_rejected(con, tmp_path):
    oap_file, frame = oap.read_oap_file(write(tmp_path / "oap", frame_for()))
    violations = oap.check_oap_contract(oap_file, frame, today=date(2024, 5, 15))
    assert {v.rule for v in violations} == {"period_not_in_future"}
    assert (violations[0].row, violations[0].column) == (2, "REPORTING_PERIOD_END")
    assert violations[-1].message.startswith("… and")
    assert oap.check_oap_contract(oap_file, frame, today=date(2024, 7, 3)) == []

    future = date(date.today().year + 1, 1, 1)
    write(tmp_path / "future", frame_for(future), future)
    [result] = ingest(con, tmp_path / "future", tmp_path)
    assert result.action == "rejected"
    assert {v.rule for v in result.violations} == {"period_not_in_future"}


def test_a_name_that_disagrees_with_the_rows_is_rejected(con, tmp_path):
    wrong_month = write(tmp_path / "a", frame_for(JUNE), name=oap.file_name(JULY))
    [result] = ingest(con, tmp_path / "a", tmp_path)
    assert (result.action, result.period_month) == ("rejected", JUNE)
    assert [(v.rule, v.row, v.column) for v in result.violations] == [
        ("name_matches_period", None, "REPORTING_PERIOD_END")
    ]
    assert wrong_month.name in str(result.violations[0]) and "says July 2024" in result.violations[0].message

    wrong_status = write(tmp_path / "b", frame_for(JULY), name=oap.file_name(JULY, "Provisional"))
    [result] = ingest(con, tmp_path / "b", tmp_path)
    assert result.action == "rejected"
    assert [(v.rule, v.column) for v in result.violations] == [("name_matches_status", "STATUS")]
    assert wrong_status.name in result.file and "Prov (Provisional)" in result.violations[0].message


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"", "not_empty"),
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "not_html"),
        (
            ",".join(oap.HEADER).encode() + b"\n01/06/2024,30/06/2024,Performance,England,England,Angleterre \xe9\n",
            None,
        ),
        (",".join(oap.HEADER).encode() + b"\n", "has_rows"),
    ],
    ids=["empty", "html", "not_utf8", "header_only"],
)
def test_unreadable_files_raise_contract_errors_naming_the_file(con, tmp_path, data, rule):
    folder = tmp_path / "oap"
    folder.mkdir()
    path = folder / oap.file_name(JUNE)
    path.write_bytes(data)
    [result] = ingest(con, folder, tmp_path)
    assert result.action == "rejected"
    assert result.file == path.name
    assert all(v.file == path.name for v in result.violations)
    if rule:
        assert result.violations[0].rule == rule
    else:
        assert result.violations[0].rule == "utf8_encoding"
        assert result.violations[0].row == 2


def test_violations_read_with_file_row_column_and_rule():
    text = str(ContractViolation("f.csv", 7, "MEASURE_ID", "known_measure_id", "'OAP99' is not a known measure id"))
    assert text == "file: f.csv, row: 7, column: MEASURE_ID, rule: known_measure_id: 'OAP99' is not a known measure id"


# --------------------------------------------------------------------------------------------------------------
# The contract: warnings load the file and flag the row


def _repeat(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame.iloc[:6], frame.iloc[5:6], frame.iloc[6:]], ignore_index=True)


def _acute_above_total(frame: pd.DataFrame) -> pd.DataFrame:
    position = _sender("OAP02a")(frame)
    total = frame.iloc[_sender("OAP02")(frame), frame.columns.get_loc("MEASURE_VALUE")]
    frame.iloc[position, frame.columns.get_loc("MEASURE_VALUE")] = str(int(total) + 5)
    return frame


def _malformed_sender(frame: pd.DataFrame) -> pd.DataFrame:
    level = frame.columns.get_loc("PRIMARY_LEVEL")
    rows = (frame.BREAKDOWN == "Sending Provider") & (frame.PRIMARY_LEVEL == "RV5")
    frame.iloc[rows.to_numpy().nonzero()[0], level] = "rv5 "
    return frame


WARNINGS = [
    ("unknown_measure_id", _set(3, "MEASURE_ID", "OAP99"), "known_measure_id", "MEASURE_ID", 5),
    (
        "reworded_measure_name",
        _set(3, "MEASURE_NAME", "Inappropriate OAP bed days in adult acute beds"),
        "measure_name_matches_id",
        "MEASURE_NAME",
        5,
    ),  # fmt: skip
    (
        "unknown_breakdown",
        _set(_sender(), "BREAKDOWN", "Sending Organisation"),
        "known_breakdown",
        "BREAKDOWN",
        _sender_line(),
    ),  # fmt: skip
    ("malformed_sender_code", _malformed_sender, "org_code_format", "PRIMARY_LEVEL", _sender_line("OAP01")),
    ("national_star", _set(3, "MEASURE_VALUE", "*"), "national_not_suppressed", "MEASURE_VALUE", 5),
    (
        "adult_acute_above_total",
        _acute_above_total,
        "adult_acute_within_total",
        "MEASURE_VALUE",
        _sender_line("OAP02a"),
    ),
    ("repeated_row", _repeat, "repeated_row", ", ".join(oap.KEY_COLUMNS), 8),
]


@pytest.mark.parametrize(("change", "rule", "column", "line"), [c[1:] for c in WARNINGS], ids=[c[0] for c in WARNINGS])
def test_a_broken_warning_loads_the_file_and_flags_the_row(con, tmp_path, change, rule, column, line):
    frame = change(frame_for())
    path = write(tmp_path / "oap", frame)
    oap_file, read = oap.read_oap_file(path)

    report = oap.contract_report(oap_file, read)
    assert report.errors == []
    assert oap.rule_severities()[rule] == "warn"
    [first, *_] = [v for v in report.warnings if v.rule == rule]
    assert {v.rule for v in report.warnings} == {rule}
    assert (first.file, first.row, first.column) == (path.name, line, column)

    [result] = ingest(con, tmp_path / "oap", tmp_path)
    assert result.action == "loaded"
    assert f"rows loaded and flagged: {rule}" in result.message
    flagged = con.execute(
        "select source_row, row_flags from raw_oap.monthly_statistics where row_flags is not null order by 1"
    ).fetchall()
    assert flagged[0] == (line, rule)
    assert {flags for _, flags in flagged} == {rule}
    assert oap.row_flag_counts(con) == {rule: len(flagged)}
    # the loaded month passes the blocking re-check: a warning was loaded on purpose
    assert oap.check_loaded_months(con, run_id="r1") == {JUNE: []}


# --------------------------------------------------------------------------------------------------------------
# Discovery and the asset check


def test_discovery_orders_months_and_publications_by_precedence(tmp_path):
    folder = tmp_path / "oap"
    folder.mkdir()
    names = [
        "MHSDS Data_OAPs_JulPerf_2024.zip",
        "MHSDS Data_OAPs_JunFinal_2024.zip",
        "MHSDS Data_OAPs_JunPerf_2024_v2.zip",
        "MHSDS Data_OAPs_JunPerf_2024.zip",
        "MHSDS Data_OAPs_JunProv_2024.csv",
        "notes.txt",
        "other.csv",
    ]
    for name in names:
        (folder / name).write_bytes(b"x")
    assert [p.name for p in oap.discover_oap_files(folder)] == [
        "MHSDS Data_OAPs_JunProv_2024.csv",
        "MHSDS Data_OAPs_JunPerf_2024.zip",
        "MHSDS Data_OAPs_JunPerf_2024_v2.zip",
        "MHSDS Data_OAPs_JunFinal_2024.zip",
        "MHSDS Data_OAPs_JulPerf_2024.zip",
        "other.csv",
    ]
    assert oap.month_in_file_name(folder / names[0]) == JULY
    assert oap.discover_oap_files(tmp_path / "missing") == []


def test_months_window_and_loaded_month_checks(con, tmp_path):
    folder = tmp_path / "oap"
    write(folder, frame_for(JUNE), JUNE)
    write(folder, frame_for(JULY), JULY)
    assert oap.months_in_folder(folder) == [JUNE, JULY]

    [only] = ingest(con, folder, tmp_path, months=(JULY, date(2024, 8, 1)))
    assert only.period_month == JULY

    assert oap.check_loaded_months(con, run_id="r1") == {JULY: []}
    ingest(con, folder, tmp_path)
    assert oap.check_loaded_months(con, run_id="r2") == {JUNE: []}
    assert oap.check_loaded_months(con, run_id="r3") == {}
    assert con.execute(
        "select run_id, source, period_month, passed from audit.contract_checks order by run_id"
    ).fetchall() == [("r1", "oap", JULY, True), ("r2", "oap", JUNE, True)]

    # What the warehouse holds is checked, not what the file said.
    con.execute("update raw_oap.monthly_statistics set measure_value_published = '-5' where source_row = 3")
    con.execute("delete from audit.contract_checks")
    outcome = oap.check_loaded_months(con, run_id="r4")
    for month in (JUNE, JULY):
        assert [(v.row, v.column, v.rule) for v in outcome[month]] == [(3, "MEASURE_VALUE", "value_not_negative")]


# --------------------------------------------------------------------------------------------------------------
# A hand-worked example through the pipeline to the marts
#
# May 2024, Provisional then Performance (which replaces it); June 2024, Provisional only. Month rows only.
# May (Performance), OAP02 bed days: England 1234 (exact: every sender counted); senders RV5 310, RPG 45, RQY *,
# RX4 60 (trusts of seeds/reference), UNKNOWN 120 (no referring organisation), RZ9 15 (no trust of ours) and
# "r-v5" 10 (not an organisation code: a warning, loaded and flagged).
# Expected: fct_oap_provider_month has RV5 310, RPG 45, RQY NULL (suppressed), RX4 60 and nothing else;
# fct_oap_england_month May: 1234, Performance, attributed 310 + 45 + 60 = 415, unattributed 120 + 15 + 10 = 145;
# SLP (RV5, RPG, RQY) = 310 + 45 = 355, partial because RQY is suppressed. June: England 1100 (Provisional),
# RV5 200, unattributed (UNKNOWN) 95.

_COUNTS = ("OAP01", "OAP01a", "OAP02", "OAP02a", "OAP03", "OAP03a", "OAP04", "OAP04a")
_NAMES = {
    "RV5": "SOUTH LONDON AND MAUDSLEY NHS FOUNDATION TRUST",
    "RPG": "OXLEAS NHS FOUNDATION TRUST",
    "RQY": "SOUTH WEST LONDON AND ST GEORGE'S MENTAL HEALTH NHS TRUST",
    "RX4": "CUMBRIA, NORTHUMBERLAND, TYNE AND WEAR NHS FOUNDATION TRUST",
    "UNKNOWN": "UNKNOWN",
    "RZ9": "UNKNOWN",
    "r-v5": "UNKNOWN",
}


def _tiny(month: date, status: str, england: dict[str, str], senders: dict[str, dict[str, str]]) -> pd.DataFrame:
    start, end = month.strftime("%d/%m/%Y"), (pd.Timestamp(month) + pd.offsets.MonthEnd(0)).strftime("%d/%m/%Y")
    rows = []
    for breakdown, level, name, values in [("England", "England", "England", england)] + [
        ("Sending Provider", code, _NAMES[code], values) for code, values in sorted(senders.items())
    ]:
        for measure in _COUNTS:
            value = values.get(measure, "0" if breakdown == "England" else "*")
            rows.append(
                (start, end, status, breakdown, level, name, "NONE", "NONE", measure, MEASURE_NAMES[measure], value)
            )
    return pd.DataFrame(rows, columns=list(oap.HEADER))


@pytest.fixture(scope="module")
def hand_worked(tmp_path_factory):
    sources = tmp_path_factory.mktemp("sources")
    folder = sources / "oap"
    may, june = date(2024, 5, 1), date(2024, 6, 1)
    england_may = {"OAP01": "40", "OAP01a": "35", "OAP02": "1234", "OAP02a": "1001", "OAP03": "38", "OAP03a": "30",
                   "OAP04": "41", "OAP04a": "36"}  # fmt: skip
    write(
        folder,
        _tiny(may, "Provisional", {**england_may, "OAP02": "900", "OAP02a": "800"}, {"RV5": {"OAP02": "100"}}),
        may,
        status="Provisional",
        zipped=True,
    )
    write(
        folder,
        _tiny(
            may,
            "Performance",
            england_may,
            {
                "RV5": {
                    "OAP01": "10",
                    "OAP01a": "10",
                    "OAP02": "310",
                    "OAP02a": "250",
                    "OAP03": "10",
                    "OAP03a": "10",
                    "OAP04": "5",
                    "OAP04a": "5",
                },  # fmt: skip
                "RPG": {"OAP02": "45", "OAP02a": "40"},
                "RQY": {},
                "RX4": {"OAP02": "60", "OAP02a": "60"},
                "UNKNOWN": {"OAP01": "5", "OAP02": "120", "OAP02a": "100", "OAP03": "5", "OAP04": "5"},
                "RZ9": {"OAP02": "15"},
                "r-v5": {"OAP02": "10"},
            },
        ),
        may,
        zipped=True,
    )
    write(
        folder,
        _tiny(
            june, "Provisional", {**england_may, "OAP02": "1100"}, {"RV5": {"OAP02": "200"}, "UNKNOWN": {"OAP02": "95"}}
        ),
        june,
        status="Provisional",
    )
    warehouse = tmp_path_factory.mktemp("warehouse")
    summary = run_pipeline(sources, warehouse)
    assert summary.exit_code == 0, (summary.rejected_files, summary.failed_checks, summary.failed_steps)
    con = duckdb.connect(str(summary.serving_db), read_only=True)
    yield con, summary
    con.close()


def test_hand_worked_senders_are_attributed_to_trusts_only(hand_worked):
    con, _ = hand_worked
    found = con.execute(
        """select period_month, org_code, inappropriate_oap_bed_days, inappropriate_oap_bed_days_suppressed,
                  inappropriate_oaps_started, is_suppressed
           from fct_oap_provider_month order by period_month, org_code"""
    ).fetchall()
    may, june = date(2024, 5, 1), date(2024, 6, 1)
    assert found == [
        (may, "RPG", 45, False, None, True),
        (may, "RQY", None, True, None, True),
        (may, "RV5", 310, False, 10, False),
        (may, "RX4", 60, False, None, True),
        (june, "RV5", 200, False, None, True),
    ]


def test_hand_worked_england_includes_the_unattributed_senders(hand_worked):
    con, _ = hand_worked
    found = con.execute(
        """select period_month, status, inappropriate_oap_bed_days, inappropriate_oaps_started,
                  attributed_oap_bed_days, unattributed_oap_bed_days, unattributed_oaps_started,
                  suppressed_sender_bed_day_cells, unattributed_sender_codes
           from fct_oap_england_month order by period_month"""
    ).fetchall()
    assert found == [
        (date(2024, 5, 1), "Performance", 1234, 40, 415, 145, 5, 1, ["RZ9", "UNKNOWN", "r-v5"]),
        (date(2024, 6, 1), "Provisional", 1100, 40, 200, 95, 0, 0, ["UNKNOWN"]),
    ]


def test_hand_worked_collaborative_counts_its_trusts_never_unknown(hand_worked):
    con, _ = hand_worked
    slp = con.execute(
        """select org_code, value, is_partial, is_suppressed from fct_collaborative_metric_month
           where collaborative_code = 'SLP' and membership_basis = 'as_was' and period_month = '2024-05-01'
             and metric_code = 'oap_inappropriate_bed_days' order by org_code"""
    ).fetchall()
    assert slp == [("ALL", 355.0, True, False), ("RPG", 45.0, False, False), ("RQY", None, True, True),
                   ("RV5", 310.0, False, False)]  # fmt: skip
    assert con.execute(
        "select count(*) from fct_collaborative_metric_month where org_code in ('UNKNOWN', 'RZ9', 'r-v5')"
    ).fetchone() == (0,)


def test_hand_worked_flagged_sender_is_named_and_counted(hand_worked):
    con, summary = hand_worked
    warnings = [w for w in summary.warnings if w["source"] == "oap"]
    assert {w["rule"] for w in warnings} == {"org_code_format"}
    assert [w["source_row"] for w in warnings] == list(range(58, 66))  # r-v5's eight rows, every one recorded
    first = warnings[0]
    assert first["source_column"] == "PRIMARY_LEVEL"
    assert first["source_file"] == "MHSDS Data_OAPs_MayPerf_2024.zip/MHSDS Data_OAPs_MayPerf_2024.csv"
    assert first["message"].startswith("'r-v5' is neither an organisation code")
    assert con.execute(
        "select period_month, observed_value from fct_data_quality where check_name = 'row_flagged:org_code_format'"
    ).fetchall() == [(date(2024, 5, 1), 8.0)]
