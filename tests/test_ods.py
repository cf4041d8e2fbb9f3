"""The ODS organisation reference: reading etr.csv / succ.csv and reconciling the seeds with them."""

from __future__ import annotations

import csv
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from orchestration.raw import ContractError
from orchestration.sources.ods import (
    ETR_WIDTH,
    REFERENCE_DIR,
    read_etr,
    read_successions,
    reconcile_reference,
    write_sample_ods,
)


@pytest.fixture
def sample(tmp_path) -> tuple[Path, Path]:
    etr, succ = write_sample_ods(tmp_path)
    return etr, succ


@pytest.fixture
def reference(tmp_path) -> Path:
    """A copy of the bundled reference that a test may change."""
    copy = tmp_path / "reference"
    shutil.copytree(REFERENCE_DIR, copy)
    return copy


def rows_of(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def write_rows(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)


def test_sample_is_in_the_ods_layout(sample, tmp_path) -> None:
    etr, succ = sample
    assert etr == tmp_path / "ods" / "etr.csv" and succ == tmp_path / "ods" / "succ.csv"
    rows = rows_of(etr)
    assert all(len(row) == ETR_WIDTH == 27 for row in rows)
    assert rows[0][0] != "org_code"  # no header
    by_code = {row[0]: row for row in rows}
    assert by_code["RCF"][1] == "AIREDALE NHS FOUNDATION TRUST"
    assert by_code["RCF"][2:4] == ["Y63", "QWO"]
    assert by_code["RCF"][4] == "SAMPLE ADDRESS" and by_code["RCF"][9].startswith("ZZ99 ")
    assert by_code["RBZ"][10:12] == ["19940401", "20220331"]
    assert rows_of(succ) == [["RBZ", "RH8", "", "20220401", ""]]


def test_read_etr_gives_back_every_reference_trust_typed(sample) -> None:
    etr = read_etr(sample[0])
    reference = pd.read_csv(REFERENCE_DIR / "organisations.csv", dtype=str)
    assert sorted(etr.org_code) == sorted(reference.org_code)
    assert {"org_code", "org_name", "region_code", "icb_code", "postcode", "open_date", "close_date"} <= set(
        etr.columns
    )
    assert len(etr.columns) == 27
    assert pd.api.types.is_datetime64_any_dtype(etr.open_date)
    assert pd.api.types.is_datetime64_any_dtype(etr.close_date)
    rbz = etr.set_index("org_code").loc["RBZ"]
    assert rbz.close_date == pd.Timestamp("2022-03-31") and rbz.icb_code == "QJK" and rbz.region_code == "Y58"
    assert etr.set_index("org_code").loc["RCF"].close_date is pd.NaT
    assert etr.index[0] == 1  # line numbers, for messages


def test_read_successions(sample) -> None:
    succ = read_successions(sample[1])
    assert list(succ[["predecessor_org_code", "successor_org_code"]].itertuples(index=False, name=None)) == [
        ("RBZ", "RH8")
    ]
    assert succ.effective_date.iloc[0] == pd.Timestamp("2022-04-01")


def test_seeds_reconcile_with_the_sample(sample) -> None:
    assert reconcile_reference(read_etr(sample[0]), read_successions(sample[1]), REFERENCE_DIR) == []


def test_zip_input(sample, tmp_path) -> None:
    archive = tmp_path / "etr.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.write(sample[0], "etr.csv")
    from_zip = read_etr(archive)
    pd.testing.assert_frame_equal(from_zip, read_etr(sample[0]))


def test_changed_icb_is_reported(sample, reference) -> None:
    orgs = pd.read_csv(reference / "organisations.csv", dtype=str, keep_default_na=False)
    orgs.loc[orgs.org_code == "RCF", "icb_code"] = "QOQ"
    orgs.to_csv(reference / "organisations.csv", index=False)
    problems = reconcile_reference(read_etr(sample[0]), read_successions(sample[1]), reference)
    assert problems == ["RCF (Airedale NHS Foundation Trust): ICB is QOQ in organisations.csv but QWO in ODS"]


def test_changed_region_and_name_are_reported_but_case_and_punctuation_are_not(sample, reference) -> None:
    orgs = pd.read_csv(reference / "organisations.csv", dtype=str, keep_default_na=False)
    orgs.loc[orgs.org_code == "RAE", "region_code"] = "Y60"
    orgs.loc[orgs.org_code == "RWY", "org_name"] = "Calderdale & Huddersfield NHS Foundation Trust."
    orgs.loc[orgs.org_code == "RCD", "org_name"] = "Harrogate District NHS Foundation Trust"
    orgs.to_csv(reference / "organisations.csv", index=False)
    problems = reconcile_reference(read_etr(sample[0]), read_successions(sample[1]), reference)
    assert problems == [
        "RAE (Bradford Teaching Hospitals NHS Foundation Trust): region is Y60 in organisations.csv but Y63 in ODS",
        "RCD (Harrogate District NHS Foundation Trust): name differs from ODS, which has "
        "'HARROGATE AND DISTRICT NHS FOUNDATION TRUST'",
    ]


def test_trust_missing_from_ods_is_reported(sample) -> None:
    etr = read_etr(sample[0])
    problems = reconcile_reference(etr[etr.org_code != "RR8"], read_successions(sample[1]), REFERENCE_DIR)
    assert problems == [
        "RR8 (Leeds Teaching Hospitals NHS Trust): in organisations.csv but missing from the ODS trust file (etr.csv)"
    ]


def test_different_close_date_is_reported(sample) -> None:
    rows = rows_of(sample[0])
    for row in rows:
        if row[0] == "RBZ":
            row[11] = "20220401"
        if row[0] == "RCF":
            row[11] = "20250331"
    write_rows(sample[0], rows)
    problems = reconcile_reference(read_etr(sample[0]), read_successions(sample[1]), REFERENCE_DIR)
    assert problems == [
        "RCF (Airedale NHS Foundation Trust): close date is none (open) in organisations.csv but 2025-03-31 in ODS",
        "RBZ (Northern Devon Healthcare NHS Trust): close date is 2022-03-31 in organisations.csv but 2022-04-01 "
        "in ODS",
    ]


def test_missing_succession_is_reported_both_ways(sample, reference) -> None:
    problems = reconcile_reference(read_etr(sample[0]), read_successions(sample[1]).iloc[0:0], REFERENCE_DIR)
    assert problems == [
        "succession RBZ → RH8 (2022-04-01): in successions.csv but not in the ODS successions file (succ.csv)"
    ]
    (reference / "successions.csv").write_text("predecessor_org_code,successor_org_code,effective_date,note\n")
    problems = reconcile_reference(read_etr(sample[0]), read_successions(sample[1]), reference)
    assert problems == [
        "succession RBZ → RH8 (2022-04-01): recorded by ODS but missing from successions.csv "
        "(the history of RBZ belongs to RH8)"
    ]


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
