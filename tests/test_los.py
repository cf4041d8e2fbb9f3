"""Lengths of stay: the synthetic extracts' generator (spells drawn once, written as HES APC episodes and MHSDS
tables) and what the two loaders share; each loader's own tests are in test_los_acute.py and test_los_mh.py.

Real zips written by the generator (or edited copies of them) in tmp_path, loaded into a real DuckDB file.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from orchestration.raw import ContractError
from orchestration.samples import los as samples
from orchestration.samples import los_acute as acute_samples
from orchestration.samples.common import month_range, write_zip
from orchestration.sources import los_acute

BAD_MONTH = date(2021, 9, 1)  # acute: all three row problems (MHSDS submissions: tests/test_los_mh.py)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, list[Path]]:
    out = tmp_path_factory.mktemp("los_samples")
    acute = samples.write_los_files(out, first_month=BAD_MONTH, last_month=BAD_MONTH, sources=("los_acute",))
    return {"los_acute": acute["los_acute"]}


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "build.duckdb"))
    yield connection
    connection.close()


def rows_of(path: Path) -> tuple[list[str], list[list[str]]]:
    with zipfile.ZipFile(path) as archive:
        text = archive.read(archive.namelist()[0]).decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    return header, list(reader)


def write_csv_zip(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_zip(path, path.name.removesuffix(".zip") + ".csv", buffer.getvalue().encode("utf-8"))


def landing(tmp_path: Path, source: str, files: list[Path]) -> Path:
    folder = tmp_path / "landing" / source
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        (folder / file.name).write_bytes(file.read_bytes())
    return folder


# --------------------------------------------------------------------------------------------------------------
# Loading generated months


def test_unreadable_files_raise_contract_error_naming_the_file(tmp_path, generated):
    truncated = tmp_path / "HES_APC_2021-09.zip"
    truncated.write_bytes(generated["los_acute"][0].read_bytes()[:500])
    with pytest.raises(ContractError, match="HES_APC_2021-09.zip") as error:
        los_acute.read_file(truncated)
    assert error.value.violations[0].rule == "readable_zip"
    html = tmp_path / "HES_APC_2021-06.csv"
    html.write_text("<html><body>Not found</body></html>")
    with pytest.raises(ContractError, match="HES_APC_2021-06.csv"):
        los_acute.read_file(html)


def test_month_from_rows_when_name_does_not_follow_pattern(tmp_path, generated):
    header, rows = rows_of(generated["los_acute"][0])
    path = write_csv_zip(tmp_path / "apc_extract.zip", header, rows)
    acute_file, frame = los_acute.read_file(path)
    assert acute_file.period_month == BAD_MONTH and not acute_file.month_from_name
    assert los_acute.check_contract(acute_file, frame) == []


# --------------------------------------------------------------------------------------------------------------
# The generator


def test_generator_is_deterministic_and_months_independent(tmp_path):
    a = samples.write_los_files(tmp_path / "a", first_month=date(2022, 3, 1), last_month=date(2022, 4, 1))
    b = samples.write_los_files(tmp_path / "b", first_month=date(2022, 4, 1), last_month=date(2022, 4, 1))
    assert [p.name for p in a["los_acute"]] == ["HES_APC_2022-03.zip", "HES_APC_2022-04.zip"]
    assert [p.name for p in a["los_mh"]] == ["MHSDS_2022-03.zip", "MHSDS_2022-04.zip"]
    for source in ("los_mh", "los_acute"):
        assert a[source][1].read_bytes() == b[source][0].read_bytes()
    # RBZ closes on 2022-03-31: its last file is March; from April RH8 reports the episodes of RBZ's spells still
    # open (HES layout: PROCODE3 is column 9, SUSSPELLID column 10, DISDATE column 8 and filled on a last episode).
    header, march = rows_of(a["los_acute"][0])
    _, april = rows_of(a["los_acute"][1])
    provider, spell, discharge = header.index("PROCODE3"), header.index("SUSSPELLID"), header.index("DISDATE")
    assert "RBZ" in {row[provider] for row in march} and "RBZ" not in {row[provider] for row in april}
    rbz_not_discharged_in_march = {row[spell] for row in march if row[provider] == "RBZ" and row[discharge] == ""}
    carried = {row[spell] for row in april if row[provider] == "RH8"}
    assert rbz_not_discharged_in_march & carried


def test_planted_wyaat_effect_visible():
    effect = samples.PLANTED_EFFECTS["WYAAT"]

    def mean_los(months) -> pd.Series:
        frames = [pd.read_csv(io.BytesIO(acute_samples.month_csv(m)), dtype=str, keep_default_na=False) for m in months]
        spells = pd.concat(frames)  # HES episodes: SPELDUR is on each spell's last episode
        spells = spells[(spells.SPELDUR != "") & (spells.CLASSPAT == "1")]
        return spells.SPELDUR.astype(int).groupby(spells.PROCODE3.isin(effect.members)).mean()

    before = mean_los(month_range(date(2021, 10, 1), date(2022, 3, 1)))
    after = mean_los(month_range(date(2022, 10, 1), date(2023, 3, 1)))
    change = after / before - 1
    assert change[True] < -0.05, change
    assert abs(change[False]) < 0.04, change
    assert change[True] - change[False] < -0.05
    assert np.isclose(effect.multiplier(date(2022, 6, 1)), 0.9) and effect.multiplier(date(2022, 3, 1)) == 1.0
