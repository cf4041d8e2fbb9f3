"""Acute lengths of stay from HES APC / SUS+ APC episode extracts (issue 16).

Hand-made extracts in the publishers' layouts, loaded into a real DuckDB file through the feed's own loop; spells
are built by the dbt models' own SQL (staging/los/stg_los_acute__apc_*.sql, run as views over the raw table).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from pathlib import Path

import duckdb
import pytest

from orchestration.samples import los as spell_samples
from orchestration.samples import los_acute as acute_samples
from orchestration.sources import los_acute

MODELS = Path(__file__).resolve().parents[1] / "dbt_project" / "models" / "staging" / "los"

HES_HEADER = [
    "FYEAR",
    "EPIKEY",
    "EPIORDER",
    "EPISTART",
    "EPIEND",
    "ADMIDATE",
    "DISDATE",
    "PROCODE3",
    "SUSSPELLID",
    "CLASSPAT",
    "ADMIMETH",
    "TRETSPEF",
    "SPELDUR",
    "IMD04_DECILE",
    "ETHNOS",
    "ENCRYPTED_HESID",
    "SEX",
]


def hes(epikey, order, start, end, admitted, discharged, provider, spell, classpat, speldur="", imd="", method="21"):
    return ["2425", epikey, order, start, end, admitted, discharged, provider, spell, classpat, method, "300", speldur,
            imd, "A", f"P{spell}", "1"]  # fmt: skip


#: A cumulative year-to-date extract for April-May 2024 (named for May). Hand computation of the answer:
#:
#: RCF  S1  3 episodes, ADMIDATE 01/04, last episode's DISDATE 11/04            ordinary   LoS 10
#:      S2  1 episode, 2024-04-10 → 2024-04-14                                  ordinary   LoS 4
#:      S3  day case (CLASSPAT 2), same day                                     excluded
#:      S4  2 episodes, ADMIDATE 20/04, episode 1 DISDATE placeholder 1801-01-01,
#:          last episode DISDATE 05/05                                          ordinary   LoS 15
#:      S5  regular day attender (CLASSPAT 3)                                   excluded
#:      → LoS 10, 4, 15: mean 29/3 = 9.667, median 10
#: RAE  T1  2 episodes, episode 1 EPISTART placeholder 1800-01-01, 2024-05-02 → 2024-05-09  LoS 7
#:      T2  2024-04-28 → 2024-05-01                                             ordinary   LoS 3
#:      T3  regular night attender (CLASSPAT 4)                                 excluded
#:      T4  not discharged (no DISDATE)                                         excluded
#:      T5  2024-04-01 → 2024-04-21                                             ordinary   LoS 20
#:      → LoS 7, 3, 20: mean 30/3 = 10, median 7
#: (Reading each row with a DISDATE as a spell, over every class, RCF would give 10, 4, 0, 15, 0: mean 5.8.)
YTD_ROWS = [
    hes("E101", "1", "01/04/2024", "03/04/2024", "01/04/2024", "", "RCF", "S1", "1", imd="Most deprived 10%", method="2A"),  # noqa: E501
    hes("E102", "2", "03/04/2024", "08/04/2024", "01/04/2024", "", "RCF", "S1", "1", imd="Most deprived 10%", method="2A"),  # noqa: E501
    hes("E103", "3", "08/04/2024", "11/04/2024", "01/04/2024", "11/04/2024", "RCF", "S1", "1", "10", "Most deprived 10%", "2A"),  # noqa: E501
    hes("E201", "1", "2024-04-10", "2024-04-14", "2024-04-10", "2024-04-14", "RCF", "S2", "1", "4", "Less deprived 40-50%"),  # noqa: E501
    hes("E301", "1", "2024-04-15", "2024-04-15", "2024-04-15", "2024-04-15", "RCF", "S3", "2", "0", method="11"),
    hes("E401", "1", "20/04/2024", "25/04/2024", "20/04/2024", "1801-01-01", "RCF", "S4", "1"),
    hes("E402", "2", "25/04/2024", "05/05/2024", "20/04/2024", "05/05/2024", "RCF", "S4", "1", "15"),
    hes("E501", "1", "2024-05-02", "2024-05-02", "2024-05-02", "2024-05-02", "RCF", "S5", "3", "0", method="13"),
    hes("F101", "1", "1800-01-01", "2024-05-04", "2024-05-02", "", "RAE", "T1", "1", imd="Least deprived 10%"),
    hes("F102", "2", "2024-05-04", "2024-05-09", "2024-05-02", "2024-05-09", "RAE", "T1", "1", "7", "Least deprived 10%"),  # noqa: E501
    hes("F201", "1", "2024-04-28", "2024-05-01", "2024-04-28", "2024-05-01", "RAE", "T2", "1", "3"),
    hes("F301", "1", "2024-05-10", "2024-05-10", "2024-05-10", "2024-05-10", "RAE", "T3", "4", "0", method="13"),
    hes("F401", "1", "2024-05-15", "2024-05-20", "2024-05-15", "", "RAE", "T4", "1"),
    hes("F501", "1", "2024-04-01", "2024-04-21", "2024-04-01", "2024-04-21", "RAE", "T5", "1", "20"),
]  # fmt: skip
APRIL = date(2024, 4, 1)
MAY = date(2024, 5, 1)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue().encode("utf-8"))
    return path


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "build.duckdb"))
    yield connection
    connection.close()


def ingest(con, folder: Path, tmp_path: Path) -> dict[str, los_acute.IngestResult]:
    results = los_acute.ingest_folder(con, folder, tmp_path / "q", move_rejected=False, today=date(2026, 1, 1))
    return {Path(r.file.split("/")[0]).name: r for r in results}


def model_sql(name: str) -> str:
    """A staging model's SQL with its Jinja comment dropped, source/ref resolved to the raw table and views, and
    dbt.datediff written as DuckDB's date_diff."""
    text = re.sub(r"\{#-.*?-#\}", "", (MODELS / f"{name}.sql").read_text(), flags=re.S)
    text = text.replace("{{ source('los_acute', 'apc_episodes') }}", los_acute.QUALIFIED_TABLE)
    text = re.sub(r"\{\{ ref\('(\w+)'\) \}\}", r"\1", text)
    # dbt's cross-database datediff as dbt-duckdb renders it
    datediff = r"\{\{ dbt\.datediff\('(.*?)', '(.*?)', 'day'\) \}\}"
    return re.sub(datediff, r"date_diff('day', (\1)::timestamp, (\2)::timestamp)", text)


def spells(con) -> None:
    for name in ("stg_los_acute__apc_episodes", "stg_los_acute__apc_spells"):
        con.execute(f"create or replace view {name} as {model_sql(name)}")


def per_trust(con) -> dict[str, tuple[int, float, float]]:
    spells(con)
    rows = con.execute(
        """select provider_org_code, count(*), avg(los_days), median(los_days)
           from stg_los_acute__apc_spells
           where discharge_date is not null and row_problem is null and is_ordinary_admission
           group by 1 order by 1"""
    ).fetchall()
    return {code: (n, round(mean, 3), float(median)) for code, n, mean, median in rows}


def test_hes_episode_extract_gives_hand_computed_spell_level_los(tmp_path, con):
    folder = tmp_path / "landing"
    write_csv(folder / "HES_APC_2024-05.csv", HES_HEADER, YTD_ROWS)
    result = ingest(con, folder, tmp_path)["HES_APC_2024-05.csv"]
    assert result.action == "loaded", result.violations
    assert "HES APC, April 2024 to May 2024" in result.message
    assert "14 episodes in 10 spells" in result.message
    assert "3 day case / regular attender episodes" in result.message
    assert "2 placeholder dates read as missing" in result.message
    # every row kept, placeholders loaded as missing, episodes partitioned by the month they ended
    assert con.execute(
        "select period_month, count(*), sum(placeholder_dates) from raw_los_acute.apc_episodes group by 1 order by 1"
    ).fetchall() == [(APRIL, 7, 1), (MAY, 7, 1)]
    assert con.execute("select discharge_date from raw_los_acute.apc_episodes where epikey = 'E401'").fetchone() == (
        None,
    )

    assert per_trust(con) == {"RAE": (3, 10.0, 7.0), "RCF": (3, 9.667, 10.0)}
    s1 = con.execute(
        "select episode_count, imd_decile, admission_method, los_days from stg_los_acute__apc_spells "
        "where spell_id = 'RCF:S1'"
    ).fetchone()
    assert s1 == (3, 1, "2A", 10)
    assert con.execute(
        "select count(*) from stg_los_acute__apc_spells where is_day_case_or_regular_attender"
    ).fetchone() == (3,)
    assert con.execute("select imd_decile from stg_los_acute__apc_spells where spell_id = 'RAE:T1'").fetchone() == (10,)


SUS_HEADER = [
    "Hospital Provider Spell Number",
    "Episode Number",
    "Pseudonymised NHS Number",
    "Organisation Code (Code of Provider)",
    "Start Date (Episode)",
    "End Date (Episode)",
    "Start Date (Hospital Provider Spell)",
    "Discharge Date (Hospital Provider Spell)",
    "Patient Classification Code",
    "Admission Method Code (Hospital Provider Spell)",
    "Treatment Function Code",
    "Ethnic Category",
    "Index of Multiple Deprivation Decile",
    "Age At CDS Activity Date",
]


def test_sus_plus_layout_loads(tmp_path, con):
    # SUS+ repeats the spell's discharge date on every episode. Hand computation: spell 9001 at RR8 runs
    # 2024-04-01 → 2024-04-06 over two episodes, LoS 5; spell 9002 is a day case (no LoS in the measures).
    rows = [
        ["9001", "1", "TOK1", "RR8", "2024-04-01", "2024-04-03", "2024-04-01", "2024-04-06", "1", "21", "300", "A", "4", "70"],  # noqa: E501
        ["9001", "2", "TOK1", "RR8", "2024-04-03", "2024-04-06", "2024-04-01", "2024-04-06", "1", "21", "430", "A", "4", "70"],  # noqa: E501
        ["9002", "1", "TOK2", "RR8", "2024-04-09", "2024-04-09", "2024-04-09", "2024-04-09", "2", "11", "100", "B", "", "51"],  # noqa: E501
    ]  # fmt: skip
    folder = tmp_path / "landing"
    # names matched case-insensitively, ignoring spaces and punctuation: upper case, and a compact spelling
    header = [h.upper() for h in SUS_HEADER[:2]] + ["PseudonymisedNHSNumber"] + SUS_HEADER[3:]
    write_csv(folder / "HES_APC_2024-04.csv", header, rows)
    result = ingest(con, folder, tmp_path)["HES_APC_2024-04.csv"]
    assert result.action == "loaded", result.violations
    assert result.message.startswith("SUS+ APC, April 2024")
    assert per_trust(con) == {"RR8": (1, 5.0, 5.0)}
    assert con.execute("select count(*) from stg_los_acute__apc_spells").fetchone() == (2,)


def test_missing_required_column_is_named_and_file_quarantined(tmp_path, con):
    header = [h for h in HES_HEADER if h != "CLASSPAT"]
    at = HES_HEADER.index("CLASSPAT")
    folder = tmp_path / "landing"
    write_csv(folder / "HES_APC_2024-05.csv", header, [row[:at] + row[at + 1 :] for row in YTD_ROWS])
    result = ingest(con, folder, tmp_path)["HES_APC_2024-05.csv"]
    assert result.action == "rejected"
    [violation] = result.violations
    assert violation.rule == "required_column_present" and violation.row == 1
    assert violation.column == "CLASSPAT / Patient Classification Code"
    assert "'CLASSPAT'" in violation.message and "'Patient Classification Code'" in violation.message
    reason = (tmp_path / "q" / "los_acute" / "HES_APC_2024-05.csv.reason.txt").read_text()
    assert "CLASSPAT" in reason
    assert con.execute("select count(*) from raw_los_acute.apc_episodes").fetchone() == (0,)


def april_only() -> list[list[str]]:
    """The April extract as first delivered: the April episodes, with S2 still recorded as discharged on 13/04
    (SPELDUR 3); the cumulative May file later corrects it to 14/04."""
    end = HES_HEADER.index("EPIEND")
    rows = [row for row in YTD_ROWS if row[end].endswith("/04/2024") or row[end].startswith("2024-04-")]
    fixed = []
    for row in rows:
        row = list(row)
        if row[1] == "E201":
            row[4] = row[6] = "2024-04-13"
            row[12] = "3"
        fixed.append(row)
    return fixed


def test_cumulative_year_to_date_file_replaces_its_months(tmp_path, con):
    april = april_only()
    assert len(april) == 7
    first = tmp_path / "first"
    write_csv(first / "HES_APC_2024-04.csv", HES_HEADER, april)
    assert ingest(con, first, tmp_path)["HES_APC_2024-04.csv"].action == "loaded"
    assert per_trust(con) == {"RAE": (1, 20.0, 20.0), "RCF": (2, 6.5, 6.5)}  # S1 10, S2 3 (to 13/04); T5 20

    second = tmp_path / "second"
    write_csv(second / "HES_APC_2024-05.csv", HES_HEADER, YTD_ROWS)
    result = ingest(con, second, tmp_path)["HES_APC_2024-05.csv"]
    assert result.action == "replaced" and "replaces HES_APC_2024-04.csv" in result.message
    current = con.execute(
        "select period_month, source_file, row_count from raw_los_acute.file_loads where is_current order by 1"
    ).fetchall()
    assert current == [(APRIL, "HES_APC_2024-05.csv", 7), (MAY, "HES_APC_2024-05.csv", 7)]
    assert con.execute("select count(*) from raw_los_acute.apc_episodes").fetchone() == (14,)
    assert per_trust(con) == {"RAE": (3, 10.0, 7.0), "RCF": (3, 9.667, 10.0)}  # the hand-computed answer

    # The older April file delivered again after May's: its month is held by the later cumulative file.
    late = tmp_path / "late"
    write_csv(late / "HES_APC_2024-04.csv", HES_HEADER, april[::-1])  # other bytes, older coverage
    late_result = ingest(con, late, tmp_path)["HES_APC_2024-04.csv"]
    assert late_result.action == "superseded"
    assert per_trust(con) == {"RAE": (3, 10.0, 7.0), "RCF": (3, 9.667, 10.0)}


def test_older_cumulative_file_does_not_replace_a_later_one(tmp_path, con):
    may = tmp_path / "may"
    write_csv(may / "HES_APC_2024-05.csv", HES_HEADER, YTD_ROWS)
    assert ingest(con, may, tmp_path)["HES_APC_2024-05.csv"].action == "loaded"
    april = tmp_path / "april"
    write_csv(april / "HES_APC_2024-04.csv", HES_HEADER, april_only())
    result = ingest(con, april, tmp_path)["HES_APC_2024-04.csv"]
    assert result.action == "superseded" and "later HES_APC_2024-05.csv" in result.message
    assert con.execute(
        "select distinct source_file from raw_los_acute.apc_episodes where period_month = ?", [APRIL]
    ).fetchall() == [("HES_APC_2024-05.csv",)]


def test_loading_twice_changes_nothing(tmp_path, con):
    folder = tmp_path / "landing"
    path = write_csv(folder / "HES_APC_2024-05.csv", HES_HEADER, YTD_ROWS)
    assert ingest(con, folder, tmp_path)["HES_APC_2024-05.csv"].action == "loaded"
    snapshot = (
        "select count(*), sum(hash(epikey, period_month, discharge_date, row_problem)) from raw_los_acute.apc_episodes"
    )
    before = con.execute(snapshot).fetchall()
    loads = con.execute("select count(*) from raw_los_acute.file_loads").fetchone()
    assert ingest(con, folder, tmp_path)["HES_APC_2024-05.csv"].action == "unchanged"
    acute, frame = los_acute.read_file(path)  # and straight through load_file, past the SHA-256 short cut
    assert los_acute.load_file(con, acute, frame).action == "unchanged"
    assert con.execute(snapshot).fetchall() == before
    assert con.execute("select count(*) from raw_los_acute.file_loads").fetchone() == loads
    # the blocking re-check of what is loaded passes for both months the file holds
    assert los_acute.check_loaded_months(con, run_id="t", today=date(2026, 1, 1)) == {APRIL: [], MAY: []}


def test_bad_rows_flagged_and_bad_cells_break_the_contract(tmp_path, con):
    rows = [list(r) for r in YTD_ROWS]
    rows[3][HES_HEADER.index("SPELDUR")] = "5"  # S2: SPELDUR 5 but DISDATE − ADMIDATE = 4 → flagged, loaded
    folder = tmp_path / "landing"
    write_csv(folder / "HES_APC_2024-05.csv", HES_HEADER, rows)
    result = ingest(con, folder, tmp_path)["HES_APC_2024-05.csv"]
    assert result.action == "loaded" and "spell_duration_disagrees 1" in result.message
    assert per_trust(con)["RCF"] == (2, 12.5, 12.5)  # S2 left out: S1 10, S4 15
    bad = [list(r) for r in YTD_ROWS]
    bad[0][HES_HEADER.index("IMD04_DECILE")] = "Very deprived"
    bad[1][HES_HEADER.index("EPIEND")] = "2024-13-01"
    other = tmp_path / "other"
    write_csv(other / "HES_APC_2024-06.csv", HES_HEADER, bad)
    rejected = ingest(con, other, tmp_path)["HES_APC_2024-06.csv"]
    assert rejected.action == "rejected"
    found = {(v.row, v.column, v.rule) for v in rejected.violations}
    assert (2, "IMD04_DECILE", "imd_decile_known") in found
    assert (3, "EPIEND", "date_parses") in found


def test_a_file_done_with_leaves_nothing_of_it_in_memory(tmp_path, con):
    """The parsed cells a month's checks share with its load hold columns of the month's frame, so they keep it
    alive: once the file is loaded or rejected they must be forgotten (at twelve national months, the acute
    months left behind this way held 0.9 GB through the rest of the run)."""
    folder = tmp_path / "landing"
    write_csv(folder / "HES_APC_2024-05.csv", HES_HEADER, [list(r) for r in YTD_ROWS])
    bad = [list(r) for r in YTD_ROWS]
    bad[1][HES_HEADER.index("EPIEND")] = "2024-13-01"
    write_csv(folder / "HES_APC_2024-06.csv", HES_HEADER, bad)
    actions = sorted(r.action for r in ingest(con, folder, tmp_path).values())
    assert actions == ["loaded", "rejected"]
    remembered = [acute.path for _, acute, _ in los_acute._parse.cache]
    assert not [path for path in remembered if folder in path.parents], remembered


# --------------------------------------------------------------------------------------------------------------
# The generated samples (orchestration/samples/los_acute.py)

BAD_MONTH = date(2021, 9, 1)  # all three row problems (orchestration.samples.los.BAD_ROWS); dates dd/mm/yyyy


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("acute_samples")
    return acute_samples.write_files(out, first_month=date(2021, 8, 1), last_month=BAD_MONTH)


def test_generated_months_load_with_flagged_rows_and_plausible_los(tmp_path, con, generated):
    folder = tmp_path / "landing"
    folder.mkdir()
    for path in generated:
        (folder / path.name).write_bytes(path.read_bytes())
    results = ingest(con, folder, tmp_path)
    assert [r.action for r in results.values()] == ["loaded", "loaded"], [r.violations[:3] for r in results.values()]
    expected = dict.fromkeys(spell_samples.BAD_ROWS["los_acute"][BAD_MONTH], 1)
    expected["unknown_provider"] = con.execute(
        "select count(*) from raw_los_acute.apc_episodes where provider = ?", [spell_samples.UNKNOWN_PROVIDER]
    ).fetchone()[0]
    assert expected["unknown_provider"] >= 1
    assert los_acute.row_problem_counts(con) == expected
    placeholders, multi = con.execute(
        "select sum(placeholder_dates), count(*) filter (where episode_order > 1) from raw_los_acute.apc_episodes"
    ).fetchone()
    assert placeholders > 0 and multi > 0
    measured = per_trust(con)
    assert len(measured) > 10
    means = [mean for _, mean, _ in measured.values()]
    assert 3 < sum(means) / len(means) < 9, means  # ordinary admissions only: longer than over every class
    assert los_acute.check_loaded_months(con, run_id="t") == {date(2021, 8, 1): [], BAD_MONTH: []}


def test_generator_is_deterministic(tmp_path, generated):
    again = acute_samples.write_files(tmp_path, first_month=BAD_MONTH, last_month=BAD_MONTH)
    assert again[0].read_bytes() == generated[1].read_bytes()


def test_unmarked_resubmission_rejected_and_revision_replaces(tmp_path, con):
    folder = tmp_path / "one"
    write_csv(folder / "HES_APC_2024-05.csv", HES_HEADER, YTD_ROWS)
    ingest(con, folder, tmp_path)
    other = tmp_path / "two"
    write_csv(other / "HES_APC_2024-05.csv", HES_HEADER, YTD_ROWS[:-1])
    rejected = ingest(con, other, tmp_path)["HES_APC_2024-05.csv"]
    assert rejected.action == "rejected" and rejected.violations[0].rule == "revision_named_revised"
    revised = tmp_path / "three"
    write_csv(revised / "HES_APC_2024-05-revised.csv", HES_HEADER, YTD_ROWS[:-1])  # T5 (April) withdrawn
    assert ingest(con, revised, tmp_path)["HES_APC_2024-05-revised.csv"].action == "replaced"
    assert per_trust(con)["RAE"] == (2, 5.0, 5.0)  # T1 7, T2 3


def test_no_more_than_two_frames_are_remembered_by_callers_that_never_say_they_are_done(tmp_path):
    import pandas as pd

    from orchestration import raw

    calls = []

    @raw.once_per_frame
    def parse(delivered, frame):
        calls.append(delivered)
        return frame  # a result that holds its frame: the frame cannot be freed while it is remembered

    frames = [pd.DataFrame({"a": [n]}) for n in range(3)]
    for n, frame in enumerate(frames):
        assert parse(f"file {n}", frame) is frame
    assert parse("file 2", frames[2]) is frames[2] and calls == ["file 0", "file 1", "file 2"]  # remembered
    assert {key[0] for key in parse.cache} == {id(frames[1]), id(frames[2])}
    raw.forget_frame(frames[2])
    assert {key[0] for key in parse.cache} == {id(frames[1])}
