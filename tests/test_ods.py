"""The ODS organisation reference: reading etr.csv / ect.csv / succ.csv and reconciling the seeds with them.

Two kinds of input: ODS's real etr.csv and succ.csv (tests/fixtures/real/ods, see PROVENANCE.md), and small files
in the same layout written by the sample writer from the seeds and then changed one discrepancy at a time.
"""

from __future__ import annotations

import csv
import gzip
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from orchestration.pipeline import reconcile_with_ods
from orchestration.raw import ContractError
from orchestration.sources.ods import (
    ETR_WIDTH,
    REFERENCE_DIR,
    read_etr,
    read_ods_folder,
    read_successions,
    reconcile_reference,
    write_sample_ods,
)

REAL_ODS = Path(__file__).parent / "fixtures" / "real" / "ods"


@pytest.fixture
def sample(tmp_path) -> tuple[Path, Path, Path]:
    etr, ect, succ = write_sample_ods(tmp_path)
    return etr, ect, succ


@pytest.fixture
def reference(tmp_path) -> Path:
    """A copy of the bundled reference that a test may change."""
    copy = tmp_path / "reference"
    shutil.copytree(REFERENCE_DIR, copy)
    return copy


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Path:
    """ODS's real etr.csv and succ.csv, unzipped from the fixtures into a folder of their own."""
    folder = tmp_path_factory.mktemp("real_ods")
    for name in ("etr.csv", "succ.csv"):
        (folder / name).write_bytes(gzip.decompress((REAL_ODS / f"{name}.gz").read_bytes()))
    return folder


def rows_of(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def write_rows(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)


def edit_seed(reference: Path, name: str, change) -> None:
    """Apply ``change`` to a seed of the reference copy as a frame of strings and write it back."""
    frame = pd.read_csv(reference / name, dtype=str, keep_default_na=False)
    frame = change(frame)
    frame.to_csv(reference / name, index=False)


def reconcile(folder: Path, reference: Path = REFERENCE_DIR) -> list[str]:
    found = read_ods_folder(folder)
    return reconcile_reference(found.organisations, found.successions, reference)


def etr_row(code: str, name: str, region: str, icb: str, opened: str, closed: str = "") -> list[str]:
    row = [""] * ETR_WIDTH
    row[:4] = [code, name, region, icb]
    row[10:12] = [opened, closed]
    row[21] = "1"
    return row


# --------------------------------------------------------------------------------------------------------------
# The files as ODS publishes them


def test_real_files_are_read_as_published(real) -> None:
    etr = read_etr(real / "etr.csv")
    assert len(etr) == 274 and len(etr.columns) == 27 and etr.index[0] == 1
    north_london = etr.set_index("org_code").loc["G6V2S"]  # a five-character trust code in a five-character ICB
    assert (north_london.org_name, north_london.region_code, north_london.icb_code) == (
        "NORTH LONDON NHS FOUNDATION TRUST",
        "Y56",
        "Z9B2Z",
    )
    assert north_london.address_line_1 == "4TH FLOOR, EAST WING"  # a quoted comma stays in its field
    assert north_london.open_date == pd.Timestamp("2024-11-01") and north_london.close_date is pd.NaT
    assert etr.open_date.max() == pd.Timestamp("2026-06-01")
    assert etr.icb_code.isna().sum() == 3  # the Welsh trusts have no ICB: blank, not ""

    succ = read_successions(real / "succ.csv")
    assert len(succ) == 11537 and succ.effective_date.max() == pd.Timestamp("2026-04-01")
    assert succ.reason_code.isna().all() and succ.forward_succession.dtype == bool
    assert succ.forward_succession.sum() == 498
    essex = succ[(succ.predecessor_org_code == "QH8")].iloc[0]
    assert (essex.successor_org_code, essex.effective_date, essex.forward_succession) == (
        "D7T5G",
        pd.Timestamp("2026-04-01"),
        False,
    )


def test_forward_succession_indicator_marks_a_successor_that_was_succeeded_again(real) -> None:
    """ODS's fifth field: 1 when the successor has a further succession of its own (a chain goes on)."""
    succ = read_successions(real / "succ.csv")
    predecessors = set(succ.predecessor_org_code)
    has_further = succ.successor_org_code.isin(predecessors)
    agree = (has_further == succ.forward_succession).mean()
    assert agree > 0.998  # 14 of 11,537 rows disagree, none of them trusts or ICBs of ours


def test_sample_is_written_as_ods_publishes(sample, tmp_path) -> None:
    etr, ect, succ = sample
    assert [p.name for p in sample] == ["etr.csv", "ect.csv", "succ.csv"] and etr.parent == tmp_path / "ods"
    real_start = gzip.decompress((REAL_ODS / "etr.csv.gz").read_bytes())[:1]
    for path in sample:
        data = path.read_bytes()
        assert data[:1] == real_start == b'"' and data.endswith(b'"\r\n') and b'\r\n"' in data
        assert b"\n" not in data.replace(b"\r\n", b"")
    rows = rows_of(etr)
    assert all(len(row) == ETR_WIDTH == 27 for row in rows)
    assert [row[0] for row in rows] == sorted(row[0] for row in rows) and rows[0][0] != "org_code"
    by_code = {row[0]: row for row in rows}
    assert by_code["RCF"][1] == "AIREDALE NHS FOUNDATION TRUST"
    assert by_code["RCF"][2:4] == ["Y63", "QWO"] and by_code["RTH"][2:4] == ["Y59", "S0E4D"]
    assert by_code["RCF"][4] == "SAMPLE ADDRESS" and by_code["RCF"][9].startswith("ZZ99 ")
    assert by_code["RBZ"][10:12] == ["19940401", "20220331"] and by_code["RCF"][21] == "1"
    # care trusts are in ODS's care trusts file, not the NHS trusts file
    assert [row[0] for row in rows_of(ect)] == ["TAD", "TAJ"] and not {"TAD", "TAJ"} & set(by_code)
    successions = rows_of(succ)
    assert all(len(row) == 5 and row[2] == "" and row[4] in ("0", "1") for row in successions)
    assert ["RBZ", "RH8", "", "20220401", "0"] in successions
    assert ["QJG", "D7T5G", "", "20260401", "0"] in successions and ["QJG", "T6Y0W", "", "20260401", "0"] in successions
    assert [row[:2] for row in successions] == sorted(row[:2] for row in successions)


def test_sample_sets_the_forward_indicator_on_a_chain(reference, tmp_path) -> None:
    """A merged into B, B later into C: the A → B row carries 1, as ODS writes it."""
    edit_seed(
        reference,
        "successions.csv",
        lambda f: pd.concat(
            [
                f,
                pd.DataFrame(
                    [
                        {
                            "predecessor_org_code": "RH8",
                            "successor_org_code": "RK9",
                            "effective_date": "2027-04-01",
                            "note": "fictional",
                        }
                    ]
                ),
            ]
        ),
    )
    *_, succ = write_sample_ods(tmp_path, reference)
    chain = {(row[0], row[1]): row[4] for row in rows_of(succ)}
    assert chain[("RBZ", "RH8")] == "1" and chain[("RH8", "RK9")] == "0"


def test_read_folder_gives_back_every_reference_trust_typed(sample) -> None:
    found = read_ods_folder(sample[0].parent)
    assert found.files == ("etr.csv", "ect.csv", "succ.csv")
    organisations = found.organisations
    reference = pd.read_csv(REFERENCE_DIR / "organisations.csv", dtype=str)
    assert sorted(organisations.org_code) == sorted(reference.org_code)
    assert set(organisations.set_index("org_code").ods_file[["TAD", "TAJ", "RCF"]]) == {"ect.csv", "etr.csv"}
    assert pd.api.types.is_datetime64_any_dtype(organisations.open_date)
    rbz = organisations.set_index("org_code").loc["RBZ"]
    assert rbz.close_date == pd.Timestamp("2022-03-31") and rbz.icb_code == "QJK" and rbz.region_code == "Y58"


def test_read_successions(sample) -> None:
    succ = read_successions(sample[2])
    rbz = succ[succ.predecessor_org_code == "RBZ"].iloc[0]
    assert (rbz.successor_org_code, rbz.effective_date, rbz.forward_succession) == (
        "RH8",
        pd.Timestamp("2022-04-01"),
        False,
    )


def test_zip_input(sample, tmp_path) -> None:
    archive = tmp_path / "etr.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.write(sample[0], "etr.csv")
    pd.testing.assert_frame_equal(read_etr(archive), read_etr(sample[0]))


# --------------------------------------------------------------------------------------------------------------
# Malformed files: the file, row and field are named


def test_wrong_field_count_names_the_row(sample) -> None:
    rows = rows_of(sample[0])
    rows[2] = rows[2][:26]
    write_rows(sample[0], rows)
    with pytest.raises(ContractError) as caught:
        read_etr(sample[0])
    error = caught.value
    assert "etr.csv" in str(error) and "row 3" in str(error) and "26 fields" in str(error)
    assert [(v.file, v.row, v.rule) for v in error.violations] == [("etr.csv", 3, "row_field_count")]


def test_unparseable_date_names_row_and_column(sample) -> None:
    rows = rows_of(sample[0])
    rows[4][10] = "2001-04-01"
    write_rows(sample[0], rows)
    with pytest.raises(ContractError) as caught:
        read_etr(sample[0])
    violation = caught.value.violations[0]
    assert (violation.file, violation.row, violation.column, violation.rule) == (
        "etr.csv",
        5,
        "Open Date",
        "date_yyyymmdd",
    )
    assert "row 5, column Open Date" in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value", "column", "rule"),
    [
        (4, "", "Forward Succession Indicator", "required"),  # the blank our old samples wrote
        (4, "2", "Forward Succession Indicator", "accepted_values"),
        (1, "rh 8", "Successor Organisation Code", "code_format"),
        (3, "1/4/2022", "Effective Date", "date_yyyymmdd"),
    ],
)
def test_malformed_succession_names_row_and_field(sample, field, value, column, rule) -> None:
    rows = rows_of(sample[2])
    rows[1][field] = value
    write_rows(sample[2], rows)
    with pytest.raises(ContractError) as caught:
        read_successions(sample[2])
    violation = caught.value.violations[0]
    assert (violation.file, violation.row, violation.column, violation.rule) == ("succ.csv", 2, column, rule)


def test_pipeline_names_the_malformed_file(sample) -> None:
    rows = rows_of(sample[2])
    rows[0][4] = "Y"
    write_rows(sample[2], rows)
    (line,) = reconcile_with_ods(sample[0].parent)
    assert line.startswith("file: succ.csv, row: 1, column: Forward Succession Indicator, rule: accepted_values")


def test_zip_member_is_named_in_errors(sample, tmp_path) -> None:
    rows = rows_of(sample[0])
    rows[0].append("extra")
    archive = tmp_path / "etr.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("etr.csv", "".join('"' + '","'.join(row) + '"\r\n' for row in rows))
    with pytest.raises(ContractError) as caught:
        read_etr(archive)
    assert caught.value.violations[0].file == "etr.zip/etr.csv"
    assert caught.value.violations[0].row == 1


def test_duplicate_code_and_empty_and_html_files_are_refused(sample, tmp_path) -> None:
    rows = rows_of(sample[0])
    write_rows(sample[0], rows + [rows[0]])
    with pytest.raises(ContractError, match="appears again"):
        read_etr(sample[0])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ContractError, match="empty"):
        read_etr(empty)
    html = tmp_path / "page.csv"
    html.write_text("<!DOCTYPE html><html></html>")
    with pytest.raises(ContractError, match="HTML"):
        read_etr(html)


def test_trust_in_both_etr_and_ect_is_refused(sample) -> None:
    write_rows(sample[1], rows_of(sample[1]) + [rows_of(sample[0])[0]])
    with pytest.raises(ContractError, match="also in etr.csv") as caught:
        read_ods_folder(sample[0].parent)
    assert caught.value.violations[0].file == "ect.csv"


# --------------------------------------------------------------------------------------------------------------
# Reconciliation on the real files


def test_reconciliation_on_the_real_files_reports_only_what_concerns_our_trusts(real) -> None:
    """ODS's etr.csv and succ.csv against the bundled seeds: every line concerns a trust of ours, the ICBs agree,
    and nothing from before the warehouse's first month (April 2010) is listed."""
    problems = reconcile(real)
    assert problems[0] == (
        "TAD (Bradford District Care NHS Foundation Trust), TAJ (Black Country Healthcare NHS Foundation Trust): care "
        "trusts, which ODS lists in its care trusts file ect.csv, not in etr.csv, so they were not checked → put "
        "ect.csv (from ODS's ect.zip) beside etr.csv"
    )
    missing = [line.split(":")[0] for line in problems[1:]]
    assert missing == [
        "succession RBF → RTH (2011-11-02)",
        "succession RT6 → RMY (2012-01-01)",
        "succession RCC → RCB (2012-07-01)",
        "succession RVL → RAL (2014-07-02)",
        "succession R1G → RA9 (2015-10-01)",
        "succession RJX → RW4 (2016-07-01)",
        "succession RY1 → RW4 (2018-04-01)",
        "succession RJF → RTG (2018-07-01)",
        "succession RE9 → R0B (2019-04-01)",
        "succession RLN → R0B (2019-04-01)",
        "succession RTV → RW4 (2021-06-01)",
        "succession RAP → RAL (2025-01-01)",
    ]
    assert problems[-1] == (
        "succession RAP → RAL (2025-01-01): recorded by ODS but missing from successions.csv, so RAP's history is "
        "not attributed to RAL → add the row RAP,RAL,2025-01-01 to successions.csv, and add RAP (NORTH MIDDLESEX "
        "UNIVERSITY HOSPITAL NHS TRUST, closed 2024-12-31) to organisations.csv"
    )


def test_real_files_against_the_reference_before_the_april_2026_icbs(real, reference) -> None:
    """The seeds as they were before the ICB update: each trust whose ICB merged, and each ICB succession and
    closure, is one line saying which file and line to edit."""
    new_icbs = {"RTH": "QU9", "RNU": "QU9", "RGT": "QUE", "RAL": "QMJ", "RMY": "QMM", "RYX": "QRV"}

    def old_icbs(frame: pd.DataFrame) -> pd.DataFrame:
        frame["icb_code"] = frame.org_code.map(new_icbs).fillna(frame.icb_code)
        return frame

    edit_seed(reference, "organisations.csv", old_icbs)
    edit_seed(reference, "icbs.csv", lambda f: f.assign(close_date=f.close_date.where(f.icb_code != "QU9", "")))
    edit_seed(reference, "icb_successions.csv", lambda f: f[f.predecessor_icb_code != "QNX"])
    problems = [line for line in reconcile(real, reference) if not line.startswith(("TAD", "succession R"))]
    assert problems == [
        "RTH (Oxford University Hospitals NHS Foundation Trust): ICB QU9 in organisations.csv but S0E4D in ODS "
        "(etr.csv line 180) → organisations.csv line 24: icb_code S0E4D (or icb_basis host_system if the trust's "
        "host system is not where ODS places it)",
        "RGT (Cambridge University Hospitals NHS Foundation Trust): ICB QUE in organisations.csv but S1Y5D in ODS "
        "(etr.csv line 80) → organisations.csv line 28: icb_code S1Y5D (or icb_basis host_system if the trust's "
        "host system is not where ODS places it)",
        "RAL (Royal Free London NHS Foundation Trust): ICB QMJ in organisations.csv but Z9B2Z in ODS (etr.csv line "
        "24) → organisations.csv line 29: icb_code Z9B2Z (or icb_basis host_system if the trust's host system is not "
        "where ODS places it)",
        "RNU (Oxford Health NHS Foundation Trust): ICB QU9 in organisations.csv but S0E4D in ODS (etr.csv line 136) "
        "→ organisations.csv line 39: icb_code S0E4D (or icb_basis host_system if the trust's host system is not "
        "where ODS places it)",
        "RMY (Norfolk and Suffolk NHS Foundation Trust): ICB QMM in organisations.csv but T6Y0W in ODS (etr.csv line "
        "123) → organisations.csv line 42: icb_code T6Y0W (or icb_basis host_system if the trust's host system is "
        "not where ODS places it)",
        "RYX (Central London Community Healthcare NHS Trust): ICB QRV in organisations.csv but Z9B2Z in ODS "
        "(etr.csv line 273) → organisations.csv line 45: icb_code Z9B2Z (or icb_basis host_system if the trust's "
        "host system is not where ODS places it)",
        "ICB succession QNX → S9B9J (2026-04-01): recorded by ODS but missing from icb_successions.csv → add the "
        "row QNX,S9B9J,2026-04-01 to icb_successions.csv",
        "ICB QU9 (NHS Buckinghamshire, Oxfordshire and Berkshire West Integrated Care Board): succeeded by S0E4D "
        "from 2026-04-01 (ODS succ.csv) but is open in icbs.csv → icbs.csv line 15: close_date 2026-03-31",
    ]


def test_host_system_trust_is_not_compared_with_where_ods_places_it(real, reference) -> None:
    """Oxleas (RPG) is in South East London's system; ODS places its Dartford headquarters in Kent and Medway."""
    assert not [line for line in reconcile(real) if line.startswith("RPG")]
    edit_seed(reference, "organisations.csv", lambda f: f.assign(icb_basis=""))
    (line,) = [line for line in reconcile(real, reference) if line.startswith("RPG")]
    assert line.startswith(
        "RPG (Oxleas NHS Foundation Trust): ICB and region QKK/Y56 in organisations.csv but QKS/Y59 in ODS "
        "(etr.csv line 145) → organisations.csv line 30: icb_code QKS, region_code Y59"
    )


# --------------------------------------------------------------------------------------------------------------
# Reconciliation: one hand-made discrepancy at a time


def test_seeds_reconcile_with_the_sample(sample) -> None:
    assert reconcile(sample[0].parent) == []


def test_changed_icb_is_reported(sample, reference) -> None:
    edit_seed(reference, "organisations.csv", lambda f: f.assign(icb_code=f.icb_code.mask(f.org_code == "RCF", "QOQ")))
    assert reconcile(sample[0].parent, reference) == [
        "RCF (Airedale NHS Foundation Trust): ICB QOQ in organisations.csv but QWO in ODS (etr.csv line 9) → "
        "organisations.csv line 2: icb_code QWO (or icb_basis host_system if the trust's host system is not where "
        "ODS places it)"
    ]


def test_icb_unknown_to_icbs_csv_is_reported(sample, reference) -> None:
    rows = rows_of(sample[0])
    for row in rows:
        if row[0] == "RCF":
            row[3] = "X1Y2Z"
    write_rows(sample[0], rows)
    (line,) = reconcile(sample[0].parent, reference)
    assert "ICB QWO in organisations.csv but X1Y2Z in ODS" in line
    assert "organisations.csv line 2: icb_code X1Y2Z and add X1Y2Z to icbs.csv" in line


def test_changed_region_and_name_are_reported_but_case_and_punctuation_are_not(sample, reference) -> None:
    def change(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[f.org_code == "RAE", "region_code"] = "Y60"
        f.loc[f.org_code == "RWY", "org_name"] = "Calderdale & Huddersfield NHS Foundation Trust."
        f.loc[f.org_code == "RCD", "org_name"] = "Harrogate District NHS Foundation Trust"
        return f

    edit_seed(reference, "organisations.csv", change)
    assert reconcile(sample[0].parent, reference) == [
        "RAE (Bradford Teaching Hospitals NHS Foundation Trust): region Y60 in organisations.csv but Y63 in ODS "
        "(etr.csv line 3) → organisations.csv line 3: region_code Y63 (or icb_basis host_system if the trust's "
        "host system is not where ODS places it)",
        "RCD (Harrogate District NHS Foundation Trust): name differs from ODS, which has 'HARROGATE AND DISTRICT NHS "
        "FOUNDATION TRUST' (etr.csv line 8) → organisations.csv line 5: org_name as ODS has it (any capitalisation)",
    ]


def test_trust_missing_from_ods_is_reported(sample) -> None:
    write_rows(sample[0], [row for row in rows_of(sample[0]) if row[0] != "RR8"])
    assert reconcile(sample[0].parent) == [
        "RR8 (Leeds Teaching Hospitals NHS Trust): not in ODS's trust files (etr.csv, ect.csv), which keep a closed "
        "trust with its close date → check the code on organisations.csv line 6 (a typing error, or not an NHS "
        "trust?)"
    ]


def test_care_trusts_without_ect_are_one_line(sample) -> None:
    sample[1].unlink()
    (line,) = reconcile(sample[0].parent)
    assert line.startswith("TAD (Bradford District Care NHS Foundation Trust), TAJ (Black Country Healthcare NHS")
    assert line.endswith("→ put ect.csv (from ODS's ect.zip) beside etr.csv")


def test_closed_trust_still_open_and_different_close_date_are_reported(sample) -> None:
    rows = rows_of(sample[0])
    for row in rows:
        if row[0] == "RBZ":
            row[11] = "20220401"
        if row[0] == "RCF":
            row[11] = "20250331"
    write_rows(sample[0], rows)
    assert reconcile(sample[0].parent) == [
        "RCF (Airedale NHS Foundation Trust): closed on 2025-03-31 in ODS (etr.csv line 9) but open in "
        "organisations.csv → organisations.csv line 2: close_date 2025-03-31, and record its successor in "
        "successions.csv",
        "RBZ (Northern Devon Healthcare NHS Trust): close date is 2022-03-31 in organisations.csv but 2022-04-01 in "
        "ODS (etr.csv line 6) → organisations.csv line 21: close_date 2022-04-01",
    ]


def test_missing_succession_is_reported_both_ways(sample, reference) -> None:
    rows = rows_of(sample[2])
    write_rows(sample[2], [row for row in rows if row[0] != "RBZ"])
    assert reconcile(sample[0].parent) == [
        "succession RBZ → RH8 (2022-04-01): on successions.csv line 2 but not in ODS's succ.csv → check the codes "
        "on successions.csv line 2"
    ]
    write_rows(sample[2], rows)
    (reference / "successions.csv").write_text("predecessor_org_code,successor_org_code,effective_date,note\n")
    assert reconcile(sample[0].parent, reference) == [
        "succession RBZ → RH8 (2022-04-01): recorded by ODS but missing from successions.csv, so RBZ's history is "
        "not attributed to RH8 → add the row RBZ,RH8,2022-04-01 to successions.csv"
    ]


def test_succession_dated_differently_is_reported(sample) -> None:
    rows = rows_of(sample[2])
    for row in rows:
        if row[0] == "RBZ":
            row[3] = "20220331"
    write_rows(sample[2], rows)
    assert reconcile(sample[0].parent) == [
        "succession RBZ → RH8: effective 2022-04-01 on successions.csv line 2 but 2022-03-31 in ODS → "
        "successions.csv line 2: effective_date 2022-03-31"
    ]


def test_only_successions_that_concern_our_trusts_since_april_2010_are_reported(sample) -> None:
    """Reported: a predecessor of a predecessor of ours (transitively), and a successor of ours with the trust
    it is still to be added as. Not reported: the same chain before April 2010 (no month the warehouse can hold
    has those codes), and successions among organisations that are none of ours."""
    extra = [
        ["RX1", "RBZ", "", "20150401", "1"],  # into our RBZ, which later merged into RH8
        ["RX0", "RX1", "", "20120401", "1"],  # into RX1: its history also ends up with RH8
        ["RW0", "RX0", "", "20090401", "1"],  # too early to matter
        ["RQ1", "RQ2", "", "20200401", "0"],  # nothing to do with us
        ["RK9", "Y7Z8W", "", "20270401", "0"],  # a successor of ours, not in organisations.csv
    ]
    write_rows(sample[2], rows_of(sample[2]) + extra)
    assert [line.split(" → add ")[1] for line in reconcile(sample[0].parent)] == [
        "the row RX0,RX1,2012-04-01 to successions.csv, and add RX0 and RX1 to organisations.csv",
        "the row RX1,RBZ,2015-04-01 to successions.csv, and add RX1 to organisations.csv",
        "the row RK9,Y7Z8W,2027-04-01 to successions.csv, and add Y7Z8W to organisations.csv",
    ]


def test_icb_successions_are_checked_against_icb_successions_csv(sample, reference) -> None:
    rows = rows_of(sample[2])
    for row in rows:
        if row[:2] == ["QMM", "T6Y0W"]:
            row[3] = "20260501"
    write_rows(sample[2], [row for row in rows if row[:2] != ["QH8", "D7T5G"]])
    edit_seed(reference, "icb_successions.csv", lambda f: f[f.predecessor_icb_code != "QUE"])
    assert reconcile(sample[0].parent, reference) == [
        "ICB succession QH8 → D7T5G (2026-04-01): on icb_successions.csv line 2 but not in ODS's succ.csv → check "
        "the codes on icb_successions.csv line 2",
        "ICB succession QMM → T6Y0W: effective 2026-04-01 on icb_successions.csv line 9 but 2026-05-01 in ODS → "
        "icb_successions.csv line 9: effective_date 2026-05-01",
        "ICB succession QUE → S1Y5D (2026-04-01): recorded by ODS but missing from icb_successions.csv → add the row "
        "QUE,S1Y5D,2026-04-01 to icb_successions.csv",
        "ICB QMM (NHS Norfolk and Waveney Integrated Care Board): succeeded by T6Y0W from 2026-05-01 (ODS succ.csv) "
        "but closes 2026-03-31 in icbs.csv → icbs.csv line 41: close_date 2026-04-30",
    ]


def test_host_icb_that_merged_is_reported_for_a_host_system_trust(sample, reference) -> None:
    edit_seed(
        reference,
        "organisations.csv",
        lambda f: f.assign(icb_code=f.icb_code.mask(f.org_code == "RPG", "QMJ")),
    )
    assert reconcile(sample[0].parent, reference) == [
        "RPG (Oxleas NHS Foundation Trust): its host ICB QMJ was succeeded by Z9B2Z on 2026-04-01 (ODS succ.csv) → "
        "organisations.csv line 30: icb_code of the ICB that hosts it now"
    ]
