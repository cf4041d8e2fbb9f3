"""The synthetic out-of-area placements samples: the real layout (byte for byte the shape of NHS England's file),
the real names and publications, determinism, disclosure control as published, the planted effect."""

from __future__ import annotations

import csv
import io
import re
import time
import zipfile
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orchestration.samples import oap as samples
from orchestration.samples.common import (
    DEFAULT_FIRST_MONTH,
    DEFAULT_LAST_MONTH,
    REFERENCE_DIR,
    add_months,
    load_organisations,
    month_range,
)
from orchestration.sources import oap
from orchestration.sources.oap_layout import IMD_DECILES, MEASURE_NAMES, parse_file_name

REAL_4WW = Path(__file__).parent / "fixtures" / "real" / "mhsds" / "MHSDS Data_4WW_AprPerf_2024_v2.zip"
MONTHS = list(month_range(DEFAULT_FIRST_MONTH, DEFAULT_LAST_MONTH))
PUBLICATIONS = samples.publications(DEFAULT_FIRST_MONTH, DEFAULT_LAST_MONTH)
#: The publication each month's figures come from once every file is loaded (the last one in loading order).
STANDING = {publication.month: publication for publication in PUBLICATIONS}


def _csv_of(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        [member] = archive.namelist()
        assert member == path.name.removesuffix(".zip") + ".csv"
        return archive.read(member)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("samples")
    (out / "oap").mkdir()
    (out / "oap" / "MHSDS_OAPs_2024-06_Final.csv").write_bytes(b"an old sample")  # the first samples' names
    (out / "oap" / "notes.txt").write_bytes(b"not ours")
    started = time.perf_counter()
    paths = samples.write_oap_files(out, first_month=DEFAULT_FIRST_MONTH, last_month=DEFAULT_LAST_MONTH, seed=7)
    return paths, time.perf_counter() - started


@cache
def month_rows() -> pd.DataFrame:
    """Every month's own rows (START = first of the month) of the file that stands for it, with a number."""
    frames = []
    for month in MONTHS:
        publication = STANDING[month]
        frame = samples.generate_oap_file(month, publication.status, version=publication.version)
        frame = frame[frame.REPORTING_PERIOD_START.eq(month.strftime("%d/%m/%Y"))].assign(month=month)
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out["value"] = pd.to_numeric(out.MEASURE_VALUE.where(out.MEASURE_VALUE != "*"))
    return out


def test_the_publications_are_those_nhs_england_releases():
    by_status: dict[str, list] = {}
    for publication in PUBLICATIONS:
        by_status.setdefault((publication.status, publication.version), []).append(publication.month)
    assert by_status[("Performance", 1)] == MONTHS[:-1]
    assert by_status[("Provisional", 1)] == MONTHS[-3:]
    assert by_status[("Performance", 2)] == [date(2023, 11, 1)]
    assert by_status[("Final", 1)] == list(month_range(date(2025, 4, 1), date(2026, 3, 1)))  # FY 2025/26
    assert set(by_status) == {("Performance", 1), ("Provisional", 1), ("Performance", 2), ("Final", 1)}
    assert STANDING[DEFAULT_LAST_MONTH].status == "Provisional"
    assert (STANDING[date(2023, 11, 1)].status, STANDING[date(2023, 11, 1)].version) == ("Performance", 2)
    assert samples.final_year(date(2026, 7, 1)) == (date(2024, 4, 1), date(2025, 3, 1))


def test_files_are_written_fast_with_the_real_names_zipped(written):
    paths, seconds = written
    assert seconds < 10
    assert [p.name for p in paths] == [publication.file_name() for publication in PUBLICATIONS]
    assert paths[0].name == "MHSDS Data_OAPs_JanPerf_2021.zip"
    assert "MHSDS Data_OAPs_NovPerf_2023_v2.zip" in {p.name for p in paths}
    assert "MHSDS Data_OAPs_SepProv_2026.zip" in {p.name for p in paths}
    assert "MHSDS Data_OAPs_MarFinal_2026.zip" in {p.name for p in paths}
    folder = paths[0].parent
    assert folder.name == "oap"
    assert not (folder / "MHSDS_OAPs_2024-06_Final.csv").exists()  # the invented names are gone
    assert (folder / "notes.txt").exists()  # anything else is left alone
    for path in paths:
        name = parse_file_name(path)
        assert name is not None and name.family == "OAPs", path.name


def test_the_bytes_have_the_real_files_layout(written):
    """Header, line endings, encoding, quoting, date format and row order exactly as in the real MHSDS file."""
    real = _csv_of(REAL_4WW)
    paths, _ = written
    for path in (paths[0], paths[-1], next(p for p in paths if "Final" in p.name)):
        data = _csv_of(path)
        assert data.split(b"\n", 1)[0] == real.split(b"\n", 1)[0]  # the same header, byte for byte
        for sample in (data, real):
            assert b"\r" not in sample and not sample.startswith(b"\xef\xbb\xbf") and sample.endswith(b"\n")
            sample.decode("utf-8")
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        assert all(len(row) == 11 for row in rows)
        # quotes only (and always) around a cell holding a comma, as csv's minimal quoting writes and the real has
        for line, row in zip(data.decode("utf-8").splitlines()[1:], rows[1:], strict=True):
            assert line == ",".join(f'"{cell}"' if "," in cell else cell for cell in row)
        assert any('"CUMBRIA, NORTHUMBERLAND, TYNE AND WEAR NHS FOUNDATION TRUST"' in line for line in
                   data.decode().splitlines())  # fmt: skip
        frame = pd.DataFrame(rows[1:], columns=rows[0])
        for column in ("REPORTING_PERIOD_START", "REPORTING_PERIOD_END"):
            assert frame[column].str.fullmatch(r"\d{2}/\d{2}/\d{4}").all()
        key = frame.assign(start=pd.to_datetime(frame.REPORTING_PERIOD_START, format="%d/%m/%Y"))
        order = ["start", "BREAKDOWN", "PRIMARY_LEVEL", "SECONDARY_LEVEL", "MEASURE_ID"]
        assert key.sort_values(order, kind="stable").index.equals(key.index)


def test_output_is_deterministic_and_each_month_independent(written, tmp_path):
    paths, _ = written
    again = samples.write_oap_files(tmp_path, first_month=date(2023, 10, 1), last_month=date(2023, 12, 1), seed=7)
    by_name = {p.name: p for p in paths}
    for path in again:
        if path.name in by_name:  # the Provisional files of this shorter range are not in the long one
            assert path.read_bytes() == by_name[path.name].read_bytes(), path.name
    assert {"MHSDS Data_OAPs_NovPerf_2023.zip", "MHSDS Data_OAPs_NovPerf_2023_v2.zip"} <= {p.name for p in again}
    november = date(2023, 11, 1)
    assert samples.oap_file_bytes(november, seed=7) == _csv_of(by_name["MHSDS Data_OAPs_NovPerf_2023.zip"])
    assert samples.oap_file_bytes(november, seed=8) != _csv_of(by_name["MHSDS Data_OAPs_NovPerf_2023.zip"])
    plain = samples.write_oap_files(tmp_path / "plain", first_month=november, last_month=november, zipped=False)
    assert [p.name for p in plain] == ["MHSDS Data_OAPs_NovProv_2023.csv"]


def test_every_generated_file_passes_its_contract_without_a_warning(written):
    paths, _ = written
    checked = paths[:: max(1, len(paths) // 8)] + [p for p in paths if "_v2" in p.name or "Final" in p.name][:2]
    for path in checked + [paths[-1]]:
        oap_file, frame = oap.read_oap_file(path)
        report = oap.contract_report(oap_file, frame, today=date(2026, 10, 15))
        assert (report.errors, report.warnings) == ([], []), path.name
        assert oap_file.status == parse_file_name(path).status


def test_layout_breakdowns_levels_and_measures():
    frame = samples.generate_oap_file(date(2024, 6, 1))
    trusts = sorted(code for code, org in load_organisations(REFERENCE_DIR).items() if org.org_type == "mental_health")
    providers = frame[frame.BREAKDOWN == "Sending Provider"]
    assert sorted(providers.PRIMARY_LEVEL.unique()) == sorted([*trusts, "UNKNOWN"])
    names = dict(zip(providers.PRIMARY_LEVEL, providers.PRIMARY_LEVEL_DESCRIPTION, strict=False))
    assert names["RV5"] == "SOUTH LONDON AND MAUDSLEY NHS FOUNDATION TRUST"
    assert names["UNKNOWN"] == "UNKNOWN"
    assert set(frame.BREAKDOWN) == {"England", "Sending Provider", "England; IMD Decile"}
    deciles = frame[frame.BREAKDOWN == "England; IMD Decile"]
    assert list(dict.fromkeys(deciles.PRIMARY_LEVEL)) == list(IMD_DECILES)  # "01 Most deprived" … "UNKNOWN"
    assert (deciles.PRIMARY_LEVEL == deciles.PRIMARY_LEVEL_DESCRIPTION).all()
    assert set(frame.SECONDARY_LEVEL) == {"NONE"} and set(frame.SECONDARY_LEVEL_DESCRIPTION) == {"NONE"}
    assert set(providers.MEASURE_ID) == set(oap.COUNT_MEASURES)
    assert set(frame[frame.BREAKDOWN == "England"].MEASURE_ID) == set(MEASURE_NAMES)
    assert set(deciles.MEASURE_ID) == set(oap.COUNT_MEASURES) | {f"OAP0{i}{a}" for i in (5, 6, 7) for a in ("", "a")}
    assert (frame.MEASURE_ID.map(MEASURE_NAMES) == frame.MEASURE_NAME).all()
    assert set(frame.STATUS) == {"Performance"}
    assert set(frame.REPORTING_PERIOD_END) == {"30/06/2024"}
    assert set(frame.REPORTING_PERIOD_START) == {"01/06/2024", "01/04/2024", "01/07/2023"}


def test_disclosure_control_is_the_publishers():
    rows = month_rows()
    providers = rows[rows.BREAKDOWN == "Sending Provider"]
    published = providers[providers.MEASURE_VALUE != "*"].value
    assert ((published % 5 == 0) & (published >= 5)).all()
    suppressed = providers[providers.MEASURE_VALUE == "*"]
    assert suppressed.PRIMARY_LEVEL.nunique() >= 4
    assert suppressed.month.nunique() >= 24
    assert 0.05 < len(suppressed) / len(providers) < 0.6
    national = rows[rows.BREAKDOWN != "Sending Provider"]
    assert (national.MEASURE_VALUE != "*").all()  # exact, never suppressed
    counts = national[national.MEASURE_ID.isin(oap.COUNT_MEASURES)]
    assert (counts.value % 5 != 0).mean() > 0.5  # unrounded
    ratios = national[~national.MEASURE_ID.isin(oap.COUNT_MEASURES)].MEASURE_VALUE
    assert ratios.str.fullmatch(r"\d+(\.\d{1,8})?").all() and ratios.str.contains(r"\.").mean() > 0.9
    assert samples.publish_count(4) == "*" and samples.publish_count(0) == "*"
    assert [samples.publish_count(v) for v in (5, 7, 8, 12, 13, 1234)] == ["5", "5", "10", "10", "15", "1235"]
    # single precision, as the real file writes its national proportions (MRS01b: 2099 of 19727, MRS02f)
    assert samples.national_ratio(2099 / 19727 * 100) == "10.64024"
    assert samples.national_ratio(143103 / 366988 * 100) == "38.99392" and samples.national_ratio(0.0) == "0"


def test_bed_days_are_tens_to_hundreds_per_trust_with_seasonality():
    rows = month_rows()
    bed_days = rows[(rows.BREAKDOWN == "Sending Provider") & (rows.MEASURE_ID == "OAP02")]
    means = bed_days[bed_days.PRIMARY_LEVEL != "UNKNOWN"].groupby("PRIMARY_LEVEL").value.mean()
    assert means.min() >= 10 and means.max() <= 800
    assert (means >= 100).sum() >= 4
    unknown = bed_days[bed_days.PRIMARY_LEVEL == "UNKNOWN"].value
    assert unknown.notna().all() and 300 < unknown.mean() < 1000
    england = rows[(rows.BREAKDOWN == "England") & (rows.MEASURE_ID == "OAP02")]
    by_month = england.groupby(england.month.map(lambda m: m.month)).value.mean()
    assert by_month[[1, 2]].mean() > by_month[[6, 7, 8]].mean()


def test_england_counts_every_sender_and_the_deciles_add_up_to_it():
    for month in MONTHS[::7]:
        frame = samples.generate_oap_file(month)
        frame = frame.assign(value=pd.to_numeric(frame.MEASURE_VALUE.where(frame.MEASURE_VALUE != "*")))
        keys = ["REPORTING_PERIOD_START", "MEASURE_ID"]
        counts = frame[frame.MEASURE_ID.isin(oap.COUNT_MEASURES)]
        england = counts[counts.BREAKDOWN == "England"].set_index(keys).value
        providers = counts[counts.BREAKDOWN == "Sending Provider"].groupby(keys).value.agg(["sum", "count"])
        providers = providers.reindex(england.index)
        # Each published sender cell is rounded on its own: allow 2.5 per cell.
        assert (england >= providers["sum"] - 2.5 * providers["count"]).all(), month
        bed_days = (england.xs("OAP02", level="MEASURE_ID") / providers["sum"].xs("OAP02", level="MEASURE_ID")).min()
        assert bed_days > 3  # England includes the synthetic rest of the country
        deciles = counts[counts.BREAKDOWN == "England; IMD Decile"].groupby(keys).value.sum().reindex(england.index)
        assert (deciles == england).all(), month


def test_later_publications_of_a_month_are_more_complete():
    month = date(2025, 6, 1)

    def england_month(status: str, version: int = 1) -> pd.Series:
        frame = samples.generate_oap_file(month, status, version=version)
        rows = frame[(frame.BREAKDOWN == "England") & (frame.REPORTING_PERIOD_START == "01/06/2025")]
        return rows.set_index("MEASURE_ID").MEASURE_VALUE[list(oap.COUNT_MEASURES)].astype(int)

    provisional, performance, final = (england_month(s) for s in ("Provisional", "Performance", "Final"))
    assert (provisional <= performance).all() and (performance <= final).all()
    assert provisional.sum() < performance.sum() < final.sum()
    assert england_month("Performance", 2).equals(final)  # the _v2 correction carries the late submissions


def test_adult_acute_never_exceeds_all_placements():
    rows = month_rows()
    wide = rows.pivot_table(
        index=["month", "BREAKDOWN", "PRIMARY_LEVEL", "SECONDARY_LEVEL"], columns="MEASURE_ID", values="value"
    )
    for measure in ("OAP01", "OAP02", "OAP03", "OAP04"):
        both = wide[[measure, f"{measure}a"]].dropna()
        assert (both[f"{measure}a"] <= both[measure]).all()


def test_every_oap_benefit_has_its_members_in_every_month_of_the_samples():
    benefits = pd.read_csv(REFERENCE_DIR / "benefits.csv", dtype=str)
    memberships = pd.read_csv(REFERENCE_DIR / "memberships.csv", dtype=str)
    oap_benefits = benefits[benefits.metric_code.str.startswith("oap_")]
    assert set(oap_benefits.benefit_id) == {"SLP-B01", "NENCMH-B01", "WYMHLDA-B01"}
    rows = month_rows()
    senders = rows[(rows.BREAKDOWN == "Sending Provider") & (rows.MEASURE_ID == "OAP02")]
    present = senders.groupby("month").PRIMARY_LEVEL.agg(set)
    for _, benefit in oap_benefits.iterrows():
        members = set(memberships[memberships.collaborative_code == benefit.collaborative_code].org_code)
        mental_health = {c for c in members if load_organisations(REFERENCE_DIR)[c].org_type == "mental_health"}
        assert mental_health, benefit.benefit_id
        assert all(mental_health <= codes for codes in present), benefit.benefit_id


def test_planted_effects_match_the_reference_seeds():
    [effect] = samples.PLANTED_EFFECTS
    collaboratives = pd.read_csv(REFERENCE_DIR / "collaboratives.csv", dtype=str).set_index("collaborative_code")
    memberships = pd.read_csv(REFERENCE_DIR / "memberships.csv", dtype=str)
    assert effect.collaborative == "SLP"
    assert date.fromisoformat(collaboratives.at["SLP", "go_live_date"]) == effect.go_live
    assert set(memberships[memberships.collaborative_code == "SLP"].org_code) == set(effect.members)
    assert set(memberships[memberships.collaborative_code == "NENCMH"].org_code) == set(
        samples.NO_EFFECT_COLLABORATIVES["NENCMH"]
    )
    assert {"OAP02", "OAP02a"} <= set(effect.measures)
    assert [round(effect.multiplier("RV5", add_months(effect.go_live, k)), 2) for k in (-1, 0, 1, 2, 12)] == [
        1.0,
        0.9,
        0.8,
        0.7,
        0.7,
    ]
    assert effect.multiplier("RX4", date(2024, 1, 1)) == 1.0


@pytest.mark.parametrize("measure", ["OAP02", "OAP02a"])
def test_planted_slp_effect_is_visible_in_unsuppressed_bed_days(measure):
    """Mean after (once ramped up) over mean before, SLP members against the other trusts: about 0.7; NENCMH ~1."""
    [effect] = samples.PLANTED_EFFECTS
    rows = month_rows()
    bed_days = rows[
        (rows.BREAKDOWN == "Sending Provider") & rows.MEASURE_ID.eq(measure) & (rows.PRIMARY_LEVEL != "UNKNOWN")
    ].dropna(subset=["value"])
    before = bed_days[bed_days.month < effect.go_live].groupby("PRIMARY_LEVEL").value.mean()
    ramped = add_months(effect.go_live, effect.ramp_months - 1)
    after = bed_days[bed_days.month >= ramped].groupby("PRIMARY_LEVEL").value.mean()
    ratio = after / before
    control = samples.NO_EFFECT_COLLABORATIVES["NENCMH"]
    others = ratio.drop(list(effect.members) + list(control))
    slp = np.mean(ratio[list(effect.members)]) / others.mean()
    nencmh = np.mean(ratio[list(control)]) / others.mean()
    assert 0.6 < slp < 0.82
    assert 0.88 < nencmh < 1.15


def test_no_sample_uses_the_invented_names_any_more():
    root = Path(__file__).resolve().parents[1]
    invented = re.compile(r"MHSDS_OAPs_\d{4}-\d{2}_(Final|Provisional)")
    for path in [*root.glob("orchestration/**/*.py"), *root.glob("tests/*.py"), root / "README.md"]:
        if path.name in ("test_samples_oap.py", "test_oap.py") or (
            path.name == "oap.py" and path.parent.name == "samples"
        ):
            continue  # the pattern itself, the test that it is no publication, the generator that removes old files
        assert not invented.search(path.read_text(encoding="utf-8")), path
