"""The synthetic RTT sample files: published layout, internal consistency, mergers, revisions and determinism.

Every check reads the zips the generator really writes (no mocks), for a handful of months only.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest

from orchestration.samples import generate_samples
from orchestration.samples.common import load_organisations
from orchestration.samples.rtt import generate_rtt_month, rtt_month_csv
from orchestration.sources.rtt_layout import (
    BANDS_53,
    BANDS_105,
    HEADER_53,
    HEADER_105,
    ID_COLUMNS,
    PART_TYPES,
    file_name,
    parse_period,
)

SEED = 20261124
#: (first_month, last_month) ranges generated once for the module: both layouts, the RBZ → RH8 merger, a revision.
RANGES = ((date(2021, 3, 1), date(2021, 4, 1)), (date(2022, 3, 1), date(2022, 4, 1)), (date(2025, 11, 1),) * 2)
MONTHS = (date(2021, 3, 1), date(2021, 4, 1), date(2022, 3, 1), date(2022, 4, 1), date(2025, 11, 1))
REVISED = date(2025, 11, 1)
COUNT = re.compile(r"^[1-9][0-9]*$")
N_IDS = len(ID_COLUMNS)


def _generate(out_dir: Path, **kwargs: object) -> list[Path]:
    paths: list[Path] = []
    for first, last in RANGES:
        paths += generate_samples(out_dir, first_month=first, last_month=last, seed=SEED, **kwargs)["rtt"]
    return paths


def _zip_name(month: date, revised: bool = False) -> str:
    return file_name(month, revised).removesuffix(".csv") + ".zip"


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[date, bool], Path]:
    out_dir = tmp_path_factory.mktemp("samples")
    paths = _generate(out_dir)
    by_key = {(month, False): out_dir / "rtt" / _zip_name(month) for month in MONTHS}
    by_key[(REVISED, True)] = out_dir / "rtt" / _zip_name(REVISED, revised=True)
    assert sorted(paths) == sorted(by_key.values())
    assert all(p.is_file() for p in paths)
    return by_key


class File:
    """One zipped sample file, read with the csv module as a loader would."""

    def __init__(self, path: Path) -> None:
        with zipfile.ZipFile(path) as archive:
            self.members = archive.namelist()
            self.raw = archive.read(self.members[0])
        self.header, *self.rows = list(csv.reader(io.StringIO(self.raw.decode("utf-8"), newline="")))
        self.n_bands = len(self.header) - N_IDS - 3

    def ids(self, row: list[str]) -> dict[str, str]:
        return dict(zip(ID_COLUMNS, row[:N_IDS], strict=True))

    def counts(self, row: list[str]) -> list[int]:
        return [int(cell) if cell else 0 for cell in row[N_IDS:]]

    def key(self, row: list[str]) -> tuple[str, ...]:
        """(provider, commissioner, part, treatment function)."""
        return row[3], row[7], row[9], row[11]


@pytest.fixture(scope="module")
def files(written: dict[tuple[date, bool], Path]) -> dict[tuple[date, bool], File]:
    return {key: File(path) for key, path in written.items()}


ALL_FILES = [(month, False) for month in MONTHS] + [(REVISED, True)]


@pytest.mark.parametrize("key", ALL_FILES, ids=lambda k: f"{k[0]:%Y-%m}{'-revised' if k[1] else ''}")
class TestEveryFile:
    def test_zip_holds_one_csv_named_like_the_publication(self, key, written, files):
        month, revised = key
        assert files[key].members == [file_name(month, revised)]
        assert written[key].name == file_name(month, revised).removesuffix(".csv") + ".zip"
        assert files[key].raw.startswith(",".join(files[key].header).encode() + b"\r\n")

    def test_header_follows_the_layout_of_the_month(self, key, files):
        month, _ = key
        expected = HEADER_53 if month < date(2021, 4, 1) else HEADER_105
        assert tuple(files[key].header) == expected

    def test_period_text(self, key, files):
        month, _ = key
        periods = {row[0] for row in files[key].rows}
        assert len(periods) == 1
        (period,) = periods
        assert parse_period(period) == month
        expected_case = period.upper() if month < date(2021, 4, 1) else f"RTT-{month:%B}-{month.year}"
        assert period == expected_case

    def test_counts_are_blank_or_positive_integers(self, key, files):
        for row in files[key].rows:
            assert len(row) == len(files[key].header)
            for cell in row[N_IDS:]:
                assert cell == "" or COUNT.match(cell), f"bad count {cell!r} in {row[:N_IDS]}"

    def test_total_rows_equal_the_sum_of_the_detail_rows(self, key, files):
        f = files[key]
        detail: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0] * (f.n_bands + 3))
        totals: dict[tuple[str, ...], list[int]] = {}
        for row in f.rows:
            provider, commissioner, part, function = f.key(row)
            if function == "C_999":
                totals[(provider, commissioner, part)] = f.counts(row)
            else:
                detail[(provider, commissioner, part)] = [
                    a + b for a, b in zip(detail[(provider, commissioner, part)], f.counts(row), strict=True)
                ]
        assert totals.keys() == detail.keys()
        for group, total in totals.items():
            assert total == detail[group], group

    def test_part_columns(self, key, files):
        f = files[key]
        n = f.n_bands
        seen_parts = set()
        for row in f.rows:
            part = row[9]
            seen_parts.add(part)
            assert row[10] == PART_TYPES[part]
            counts = f.counts(row)
            bands, total, unknown, total_all = counts[:n], counts[n], counts[n + 1], counts[n + 2]
            if part in ("Part_1A", "Part_1B"):
                assert total == sum(bands)
                assert total_all == total + unknown
                assert unknown <= 20
            elif part in ("Part_2", "Part_2A"):
                assert row[N_IDS + n] == row[N_IDS + n + 1] == ""
                assert total_all == sum(bands)
            else:
                assert part == "Part_3"
                assert all(cell == "" for cell in row[N_IDS : N_IDS + n + 2])
        assert seen_parts == set(PART_TYPES)

    def test_with_decision_to_admit_is_a_subset_of_the_waiting_list(self, key, files):
        f = files[key]
        by_key = {f.key(row): f.counts(row) for row in f.rows}
        checked = 0
        for (provider, commissioner, part, function), counts in by_key.items():
            if part == "Part_2A":
                waiting = by_key[(provider, commissioner, "Part_2", function)]
                assert all(a <= w for a, w in zip(counts[: f.n_bands], waiting[: f.n_bands], strict=True))
                checked += 1
        assert checked > 100

    def test_providers_commissioners_and_functions(self, key, files):
        month, _ = key
        f = files[key]
        organisations = load_organisations()
        expected = {c for c, o in organisations.items() if o.org_type == "acute" and o.is_open(month)}
        assert {row[3] for row in f.rows} == expected
        commissioners: dict[str, set[str]] = defaultdict(set)
        functions = set()
        for row in f.rows:
            ids = f.ids(row)
            org = organisations[ids["Provider Org Code"]]
            assert ids["Provider Parent Org Code"] == org.region_code
            assert ids["Provider Parent Name"].startswith("NHS ENGLAND ") and ids["Provider Parent Name"].isupper()
            assert ids["Provider Org Name"] == org.name.upper()
            if ids["Commissioner Org Code"] == "NONC":
                assert ids["Commissioner Parent Org Code"] == "NONC"
            else:
                assert re.fullmatch(r"[A-Z0-9]{3}|[A-Z0-9]{5}", ids["Commissioner Parent Org Code"])
                assert ids["Commissioner Org Name"].endswith(" - " + ids["Commissioner Org Code"])
                commissioners[ids["Provider Org Code"]].add(ids["Commissioner Org Code"])
            functions.add(ids["Treatment Function Code"])
        assert all(2 <= len(c) <= 4 for c in commissioners.values())
        others = {"X01"} if month < date(2021, 4, 1) else {"X02", "X05"}
        assert others <= functions and not ({"X01", "X02", "X05"} - others) & functions
        assert {"C_999", "C_100", "C_110", "C_130"} <= functions

    def test_waits_look_plausible(self, key, files):
        f = files[key]
        bands = BANDS_53 if f.n_bands == 53 else BANDS_105
        totals = [f.counts(r) for r in f.rows if r[9] == "Part_2" and r[11] == "C_999"]
        waiting = sum(c[-1] for c in totals)
        within_18 = sum(sum(c[:18]) for c in totals)
        over_52 = sum(sum(c[52 : len(bands)]) for c in totals)
        assert 0.5 < within_18 / waiting < 0.8
        assert 0 < over_52 / waiting < 0.12
        per_provider: dict[str, int] = defaultdict(int)
        for row in f.rows:
            if row[9] == "Part_2" and row[11] == "C_999":
                per_provider[row[3]] += f.counts(row)[-1]
        assert all(10_000 <= n <= 250_000 for n in per_provider.values())


def test_long_waits_are_in_the_open_band_of_each_layout(files):
    old, new = files[(date(2021, 3, 1), False)], files[(date(2021, 4, 1), False)]
    assert sum(old.counts(r)[52] for r in old.rows if r[11] == "C_999" and r[9] == "Part_2") > 0
    assert sum(new.counts(r)[104] for r in new.rows if r[11] == "C_999" and r[9] == "Part_2") > 0


def test_zero_counts_are_written_blank(files):
    raw = files[(date(2022, 4, 1), False)].raw.decode()
    assert ",," in raw
    assert not re.search(r",0(,|\r\n)", raw)


def test_merged_trust_disappears_and_its_successor_carries_its_volume(files):
    def waiting(f: File, provider: str) -> int:
        return sum(f.counts(r)[-1] for r in f.rows if r[3] == provider and r[9] == "Part_2" and r[11] == "C_999")

    before, after = files[(date(2022, 3, 1), False)], files[(date(2022, 4, 1), False)]
    assert waiting(before, "RBZ") > 0
    assert "RBZ" not in {r[3] for r in after.rows}
    combined = waiting(before, "RH8") + waiting(before, "RBZ")
    assert abs(waiting(after, "RH8") / combined - 1) < 0.1


def test_revised_file_differs_for_a_few_providers(files):
    original, revised = files[(REVISED, False)], files[(REVISED, True)]
    assert original.header == revised.header
    assert [original.key(r) for r in original.rows] == [revised.key(r) for r in revised.rows]
    changed = {o[3] for o, r in zip(original.rows, revised.rows, strict=True) if o != r}
    assert 1 <= len(changed) <= 3


def test_generation_is_byte_identical_and_independent_of_other_months(tmp_path, written):
    def same_bytes(paths: list[Path]) -> None:
        for path in paths:
            assert path.read_bytes() == (next(iter(written.values())).parent / path.name).read_bytes(), path.name

    again = _generate(tmp_path / "again")
    assert sorted(p.name for p in again) == sorted(p.name for p in written.values())
    same_bytes(again)
    # Writing in parallel processes gives the same bytes.
    first, last = RANGES[0]
    same_bytes(generate_samples(tmp_path / "parallel", first_month=first, last_month=last, seed=SEED, workers=2)["rtt"])
    # One month alone gives the same bytes as that month inside a range.
    alone = generate_samples(tmp_path / "alone", first_month=date(2022, 4, 1), last_month=date(2022, 4, 1), seed=SEED)
    assert alone["rtt"][0].read_bytes() == written[(date(2022, 4, 1), False)].read_bytes()


def test_seed_changes_the_values_not_the_layout():
    month = date(2024, 6, 1)
    a = rtt_month_csv(month, seed=SEED, providers=["RR8"])
    b = rtt_month_csv(month, seed=SEED + 1, providers=["RR8"])
    assert a != b
    assert a.split(b"\r\n", 1)[0] == b.split(b"\r\n", 1)[0]


def test_dataframe_matches_the_file(files):
    month = date(2022, 4, 1)
    frame = generate_rtt_month(month, seed=SEED)
    f = files[(month, False)]
    assert list(frame.columns) == f.header
    assert len(frame) == len(f.rows)
    first = frame.iloc[0]
    assert [str(v) for v in first.iloc[:N_IDS]] == f.rows[0][:N_IDS]
    assert [int(v) for v in first.iloc[N_IDS:]] == f.counts(f.rows[0])


def test_extra_providers_leave_the_reference_trusts_unchanged():
    month = date(2025, 11, 1)
    plain = generate_rtt_month(month, seed=SEED, revised=True)
    extended = generate_rtt_month(month, seed=SEED, revised=True, extra_providers=3)
    extra = extended["Provider Org Code"].str.startswith("RZ")
    assert set(extended.loc[extra, "Provider Org Code"]) == {"RZ001", "RZ002", "RZ003"}
    reference = extended[~extra].reset_index(drop=True)
    assert reference.equals(plain)


def test_commissioners_move_to_the_merged_icbs_in_april_2026():
    """On 1 April 2026 twelve ICBs merged into six; the real April 2026 file gives each sub-ICB location its new ICB
    (10Q Oxfordshire → S0E4D Thames Valley, 06K East and North Hertfordshire → S1Y5D Central East, out of the split
    QM7), while the unmerged ICBs keep their codes."""

    def parents(month: date) -> dict[str, tuple[str, str, str]]:
        frame = generate_rtt_month(month, seed=SEED, providers=["RTH", "RGT", "RAL", "RR8"])
        columns = ["Commissioner Org Code", "Commissioner Parent Org Code", "Commissioner Parent Name"]
        named = frame[columns + ["Commissioner Org Name"]].drop_duplicates()
        return {row[0]: (row[1], row[2], row[3]) for row in named.itertuples(index=False)}

    march, april = parents(date(2026, 3, 1)), parents(date(2026, 4, 1))
    assert march["10Q"][:2] == ("QU9", "NHS BUCKINGHAMSHIRE, OXFORDSHIRE AND BERKSHIRE WEST INTEGRATED CARE BOARD")
    assert april["10Q"] == ("S0E4D", "NHS THAMES VALLEY INTEGRATED CARE BOARD", "NHS THAMES VALLEY ICB - 10Q")
    assert (march["06K"][0], april["06K"][0]) == ("QM7", "S1Y5D")
    assert (march["93C"][0], april["93C"][0]) == ("QMJ", "Z9B2Z")
    assert (
        march["15F"]
        == april["15F"]
        == ("QWO", "NHS WEST YORKSHIRE INTEGRATED CARE BOARD", "NHS WEST YORKSHIRE ICB - 15F")
    )


def test_unknown_provider_is_refused():
    with pytest.raises(ValueError, match="XYZ"):
        generate_rtt_month(date(2024, 1, 1), seed=SEED, providers=["XYZ"])
