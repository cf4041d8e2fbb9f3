"""The synthetic out-of-area placements samples: published layout, determinism, disclosure control, planted effect."""

from __future__ import annotations

import csv
import time
from datetime import date
from functools import cache

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

EXPECTED_HEADER = (
    "REPORTING_PERIOD_START,REPORTING_PERIOD_END,STATUS,BREAKDOWN,PRIMARY_LEVEL,PRIMARY_LEVEL_DESCRIPTION,"
    "SECONDARY_LEVEL,SECONDARY_LEVEL_DESCRIPTION,MEASURE_ID,MEASURE_NAME,MEASURE_VALUE"
)
MONTHS = list(month_range(DEFAULT_FIRST_MONTH, DEFAULT_LAST_MONTH))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("samples")
    started = time.perf_counter()
    paths = samples.write_oap_files(out, first_month=DEFAULT_FIRST_MONTH, last_month=DEFAULT_LAST_MONTH, seed=7)
    return paths, time.perf_counter() - started


@cache
def month_rows() -> pd.DataFrame:
    """Every month's own rows (START = first of the month) of the default samples, with the month and a number."""
    frames = []
    for month in MONTHS:
        frame = samples.generate_oap_month(month, provisional=month == DEFAULT_LAST_MONTH)
        frame = frame[frame.REPORTING_PERIOD_START.eq(month.isoformat())].assign(month=month)
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out["value"] = pd.to_numeric(out.MEASURE_VALUE.where(out.MEASURE_VALUE != "*"))
    return out


def test_files_are_written_for_every_month_fast_with_the_exact_header(written):
    paths, seconds = written
    assert seconds < 5
    assert [p.name for p in paths] == [oap.file_name(m, "Final") for m in MONTHS[:-1]] + [
        oap.file_name(MONTHS[-1], "Provisional")
    ]
    assert all(p.parent.name == "oap" for p in paths)
    for path in (paths[0], paths[-1]):
        data = path.read_bytes()
        assert data.startswith(EXPECTED_HEADER.encode() + b"\r\n")
        assert not data.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(data.decode("utf-8").splitlines()))
        assert all(len(row) == 11 for row in rows)
        statuses = {row[2] for row in rows[1:]}
        assert statuses == ({"Provisional"} if path == paths[-1] else {"Final"})


def test_output_is_deterministic_and_each_month_independent(written, tmp_path):
    paths, _ = written
    again = samples.write_oap_files(tmp_path, first_month=date(2023, 1, 1), last_month=date(2023, 3, 1), seed=7)
    by_name = {p.name: p for p in paths}
    for path in again[:-1]:  # the last one is Provisional here
        assert path.read_bytes() == by_name[path.name].read_bytes()
    assert samples.oap_month_csv(date(2023, 3, 1), seed=7) == by_name[oap.file_name(date(2023, 3, 1))].read_bytes()
    assert samples.oap_month_csv(date(2023, 3, 1), seed=8) != by_name[oap.file_name(date(2023, 3, 1))].read_bytes()
    # Extending the range turns the old Provisional month into a Final file and removes the Provisional one.
    samples.write_oap_files(tmp_path, first_month=date(2023, 3, 1), last_month=date(2023, 4, 1), seed=7)
    assert sorted(p.name for p in (tmp_path / "oap").iterdir()) == [
        oap.file_name(date(2023, 1, 1)),
        oap.file_name(date(2023, 2, 1)),
        oap.file_name(date(2023, 3, 1)),
        oap.file_name(date(2023, 4, 1), "Provisional"),
    ]


def test_every_generated_file_passes_its_contract(written):
    paths, _ = written
    for path in paths[:: max(1, len(paths) // 6)] + [paths[-1]]:
        oap_file, frame = oap.read_oap_file(path)
        assert oap.check_oap_contract(oap_file, frame, today=date(2026, 10, 15)) == [], path.name


def test_layout_breakdowns_and_levels(written):
    frame = samples.generate_oap_month(date(2024, 6, 1))
    trusts = sorted(code for code, org in load_organisations(REFERENCE_DIR).items() if org.org_type == "mental_health")
    providers = frame[frame.BREAKDOWN == "Sending Provider"]
    assert sorted(providers.PRIMARY_LEVEL.unique()) == trusts
    names = dict(zip(providers.PRIMARY_LEVEL, providers.PRIMARY_LEVEL_DESCRIPTION, strict=False))
    assert names["RV5"] == "SOUTH LONDON AND MAUDSLEY NHS FOUNDATION TRUST"
    assert set(frame.BREAKDOWN) == {"England", "Sending Provider", "England; IMD Decile"}
    deciles = frame[frame.BREAKDOWN == "England; IMD Decile"]
    assert sorted(deciles.SECONDARY_LEVEL.unique(), key=int) == [str(d) for d in range(1, 11)]
    assert set(deciles.PRIMARY_LEVEL) == {"England"}
    assert set(frame[frame.BREAKDOWN != "England; IMD Decile"].SECONDARY_LEVEL) == {"NONE"}
    assert set(frame.MEASURE_ID) == set(oap.COUNT_MEASURES)
    assert frame.groupby("MEASURE_ID").MEASURE_NAME.nunique().eq(1).all()
    assert set(frame.REPORTING_PERIOD_END) == {"2024-06-30"}
    assert set(frame.REPORTING_PERIOD_START) == {"2024-06-01", "2024-04-01", "2023-07-01"}


def test_disclosure_control_suppresses_small_counts_and_rounds_the_rest():
    rows = month_rows()
    published = rows[rows.MEASURE_VALUE != "*"].value
    assert ((published % 5 == 0) & (published >= 5)).all()
    providers = rows[rows.BREAKDOWN == "Sending Provider"]
    suppressed = providers[providers.MEASURE_VALUE == "*"]
    assert suppressed.PRIMARY_LEVEL.nunique() >= 4
    assert suppressed.month.nunique() >= 24
    assert 0.05 < len(suppressed) / len(providers) < 0.6
    assert samples.publish_count(4) == "*" and samples.publish_count(0) == "*"
    assert [samples.publish_count(v) for v in (5, 7, 8, 12, 13, 1234)] == ["5", "5", "10", "10", "15", "1235"]


def test_bed_days_are_tens_to_hundreds_per_trust_with_seasonality():
    rows = month_rows()
    bed_days = rows[(rows.BREAKDOWN == "Sending Provider") & (rows.MEASURE_ID == "OAP02")]
    means = bed_days.groupby("PRIMARY_LEVEL").value.mean()
    assert means.min() >= 10 and means.max() <= 800
    assert (means >= 100).sum() >= 4
    england = rows[(rows.BREAKDOWN == "England") & (rows.MEASURE_ID == "OAP02")]
    by_month = england.groupby(england.month.map(lambda m: m.month)).value.mean()
    assert by_month[[1, 2]].mean() > by_month[[6, 7, 8]].mean()


def test_england_is_at_least_the_sum_of_the_unsuppressed_providers():
    for month in MONTHS[::7]:
        frame = samples.generate_oap_month(month)
        frame = frame.assign(value=pd.to_numeric(frame.MEASURE_VALUE.where(frame.MEASURE_VALUE != "*")))
        keys = ["REPORTING_PERIOD_START", "MEASURE_ID"]
        england = frame[frame.BREAKDOWN == "England"].set_index(keys).value
        providers = frame[frame.BREAKDOWN == "Sending Provider"].groupby(keys).value.agg(["sum", "count"])
        providers = providers.reindex(england.index)
        # Each published cell is rounded on its own: allow 2.5 per provider cell.
        assert (england >= providers["sum"] - 2.5 * providers["count"]).all(), month
        bed_days = (england.xs("OAP02", level="MEASURE_ID") / providers["sum"].xs("OAP02", level="MEASURE_ID")).min()
        assert bed_days > 3  # England includes the synthetic rest of the country
        deciles = frame[frame.BREAKDOWN == "England; IMD Decile"].groupby(keys).value.sum().reindex(england.index)
        assert (deciles <= england + 25).all()


def test_adult_acute_never_exceeds_all_placements():
    rows = month_rows()
    wide = rows.pivot_table(
        index=["month", "BREAKDOWN", "PRIMARY_LEVEL", "SECONDARY_LEVEL"], columns="MEASURE_ID", values="value"
    )
    for measure in ("OAP01", "OAP02", "OAP03", "OAP04"):
        both = wide[[measure, f"{measure}a"]].dropna()
        assert (both[f"{measure}a"] <= both[measure]).all()


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
    bed_days = rows[(rows.BREAKDOWN == "Sending Provider") & rows.MEASURE_ID.eq(measure)].dropna(subset=["value"])
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
