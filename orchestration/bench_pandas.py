"""The benchmark's pandas contender: ``fct_rtt_provider_month`` and the collaborative ``rtt_*`` metrics from the
RTT files with plain pandas, the way an analyst's script does it today (SPEC §12).

It follows the warehouse's rules (SPEC §3.1, §5, §6) so that the two outputs can be compared figure for figure:
C_999 rows left out and the detail summed over commissioners, provider codes mapped through successions,
Part_2 week bands pooled, percentiles interpolated within the weekly band, members attributed ``as_was`` and
``as_is``. It does what a careful script would (one file at a time, aggregated before the next is read, so memory
holds one month's raw rows), and none of what the warehouse adds: no file contract, no audit, no revisions
bookkeeping beyond "a -revised file replaces its month", no tests, no publication.

``python -m orchestration.bench_pandas RTT_FOLDER OUT_FOLDER`` writes ``fct_rtt_provider_month.parquet`` and
``rtt_collaborative_metrics.parquet``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "seeds" / "reference"
PARTS = ("Part_1A", "Part_1B", "Part_2", "Part_2A", "Part_3")
CLOSED = [f"Gt {w:02d} To {w + 1:02d} Weeks SUM 1" for w in range(104)]
_NAME = re.compile(r"^\d{8}-RTT-([A-Za-z]+)-(\d{4})-full-extract(-revised)?\.(csv|zip)$", re.IGNORECASE)


def _month_of(path: Path) -> tuple[date, bool]:
    match = _NAME.match(path.name)
    if not match:
        raise ValueError(f"{path.name} is not named like 20240430-RTT-April-2024-full-extract.csv")
    month = datetime.strptime(f"1 {match.group(1)} {match.group(2)}", "%d %B %Y").date()
    return month, bool(match.group(3))


def rtt_files(folder: Path) -> dict[date, Path]:
    """The file to use for each month: the ``-revised`` one when there is one."""
    chosen: dict[date, tuple[bool, Path]] = {}
    for path in sorted(Path(folder).iterdir()):
        if path.suffix.lower() not in (".csv", ".zip"):
            continue
        month, revised = _month_of(path)
        if month not in chosen or revised:
            chosen[month] = (revised, path)
    return {month: path for month, (_, path) in sorted(chosen.items())}


def current_codes(reference_dir: Path = REFERENCE_DIR) -> dict[str, str]:
    """Predecessor code → the code that carries its history today (chains followed)."""
    successions = pd.read_csv(reference_dir / "successions.csv", dtype=str)
    successor = dict(zip(successions["predecessor_org_code"], successions["successor_org_code"], strict=True))
    mapping = {}
    for code in successor:
        current, steps = code, 0
        while current in successor and steps < 20:
            current, steps = successor[current], steps + 1
        mapping[code] = current
    return mapping


def bands_of(frame: pd.DataFrame) -> list[str]:
    """The week-band columns a file publishes, in order (the last is the open band)."""
    return (
        CLOSED + ["Gt 104 Weeks SUM 1"]
        if "Gt 104 Weeks SUM 1" in frame.columns
        else CLOSED[:52] + ["Gt 52 Weeks SUM 1"]
    )


def provider_month(path: Path, month: date, successors: dict[str, str]) -> pd.DataFrame:
    """One file summed over commissioners: one row per organisation, treatment function (and ALL) and part."""
    frame = pd.read_csv(path, dtype={"Provider Org Code": str, "Treatment Function Code": str})
    frame = frame[frame["Treatment Function Code"] != "C_999"]
    bands = bands_of(frame)
    counts = bands + ["Total All"]
    org_code = frame["Provider Org Code"].map(successors).fillna(frame["Provider Org Code"]).rename("org_code")
    frame = pd.concat([frame.drop(columns=counts), frame[counts].fillna(0), org_code], axis=1)
    keys = ["org_code", "Treatment Function Code", "RTT Part Type"]
    detail = frame.groupby(keys, sort=False)[counts].sum()
    names = frame.groupby("Treatment Function Code")["Treatment Function Name"].first()
    total = frame.groupby(["org_code", "RTT Part Type"], sort=False)[counts].sum()
    total.index = pd.MultiIndex.from_arrays(
        [total.index.get_level_values(0), ["ALL"] * len(total), total.index.get_level_values(1)], names=keys
    )
    summed = pd.concat([detail, total])
    commissioners = pd.concat(
        [
            frame.groupby(["org_code", "Treatment Function Code"])["Commissioner Org Code"].nunique(),
            frame.groupby("org_code")["Commissioner Org Code"]
            .nunique()
            .to_frame()
            .assign(tf="ALL")
            .set_index("tf", append=True)["Commissioner Org Code"],
        ]
    )
    waiting = summed.xs("Part_2", level="RTT Part Type")[bands].to_numpy(dtype=np.float64)
    waiting_index = summed.xs("Part_2", level="RTT Part Type").index
    measures = measures_from_bands(waiting, len(bands))
    out = pd.DataFrame(measures, index=waiting_index)

    def part_total(part: str) -> pd.Series:
        if part not in summed.index.get_level_values("RTT Part Type"):
            return pd.Series(dtype=np.float64)
        return summed.xs(part, level="RTT Part Type")["Total All"]

    pairs = summed.index.droplevel("RTT Part Type").unique()
    result = pd.DataFrame(index=pairs).join(out)
    result["incomplete_pathways_with_dta"] = part_total("Part_2A")
    result["clock_starts"] = part_total("Part_3")
    result["admitted_clock_stops"] = part_total("Part_1A")
    result["non_admitted_clock_stops"] = part_total("Part_1B")
    # a part a trust published no rows of counts as none (SPEC §6, as the warehouse counts it): NaN only when both are
    result["clock_stops"] = result["admitted_clock_stops"].add(result["non_admitted_clock_stops"], fill_value=0)
    result["commissioner_count"] = commissioners.reindex(result.index).to_numpy()
    result = result.reset_index().rename(columns={"Treatment Function Code": "treatment_function_code"})
    result["treatment_function_name"] = result["treatment_function_code"].map(names).fillna("All treatment functions")
    result.insert(0, "period_month", pd.Timestamp(month))
    result["band_layout"] = len(bands)
    # the pooled Part_2 distribution, kept for the collaborative totals (trust totals only: that is all they need)
    all_rows = result["treatment_function_code"] == "ALL"
    pooled = pd.DataFrame(
        summed.xs(("ALL", "Part_2"), level=("Treatment Function Code", "RTT Part Type"))[bands].to_numpy(),
        index=summed.xs(("ALL", "Part_2"), level=("Treatment Function Code", "RTT Part Type")).index,
    )
    result.attrs["bands"] = pooled
    result.attrs["all_rows"] = all_rows
    return result


def measures_from_bands(bands: np.ndarray, n_bands: int) -> dict[str, np.ndarray]:
    """Waiting-list measures from Part_2 band counts (rows × bands), as SPEC §6 defines them."""
    cumulative = np.cumsum(bands, axis=1)
    total = cumulative[:, -1]
    out = {
        "incomplete_pathways": total,
        "within_18_weeks": bands[:, :18].sum(axis=1),
        "over_52_weeks": bands[:, 52:].sum(axis=1),
    }
    for weeks in (65, 78, 104):
        out[f"over_{weeks}_weeks"] = bands[:, weeks:].sum(axis=1) if n_bands == 105 else np.full(len(bands), np.nan)
    for name, p in (("median_wait_weeks", 0.5), ("p92_wait_weeks", 0.92)):
        rank = p * total
        band = np.argmax(cumulative >= rank[:, None], axis=1)  # 0-based index of the first band reaching the rank
        before = np.where(band > 0, cumulative[np.arange(len(band)), band - 1], 0.0)
        in_band = bands[np.arange(len(band)), band]
        with np.errstate(divide="ignore", invalid="ignore"):
            value = band + (rank - before) / in_band
        value = np.where(band == n_bands - 1, n_bands - 1.0, value)
        out[name] = np.where(total > 0, value, np.nan)
    return out


def members_by_month(months: Sequence[date], successors: dict[str, str], reference_dir: Path) -> pd.DataFrame:
    """collaborative_code, membership_basis, period_month, org_code (current code), deduplicated."""
    memberships = pd.read_csv(reference_dir / "memberships.csv", dtype=str, keep_default_na=False)
    memberships["org_code"] = memberships["org_code"].map(successors).fillna(memberships["org_code"])
    valid_from = pd.to_datetime(memberships["valid_from"])
    valid_to = pd.to_datetime(memberships["valid_to"].replace("", None))
    as_at = pd.Timestamp(max(months))
    frames = []
    for month in months:
        stamp = pd.Timestamp(month)
        as_was = (valid_from <= stamp) & (valid_to.isna() | (valid_to > stamp))
        as_is = (valid_from <= as_at) & (valid_to.isna() | (valid_to > as_at))
        for basis, mask in (("as_was", as_was), ("as_is", as_is)):
            chosen = memberships.loc[mask, ["collaborative_code", "org_code"]].drop_duplicates()
            frames.append(chosen.assign(membership_basis=basis, period_month=stamp))
    return pd.concat(frames, ignore_index=True)


def collaborative_metrics(provider: pd.DataFrame, pooled: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """The collaborative rtt_* metrics: members' Part_2 bands pooled, counts added, one row per metric."""
    trusts = provider[provider["treatment_function_code"] == "ALL"]
    joined = members.merge(trusts, on=["period_month", "org_code"], how="inner")
    keys = ["collaborative_code", "membership_basis", "period_month"]
    sums = joined.groupby(keys)[["incomplete_pathways_with_dta", "clock_starts", "clock_stops"]].sum(min_count=1)
    band_rows = members.merge(pooled, on=["period_month", "org_code"], how="inner")
    band_columns = [c for c in pooled.columns if c not in ("period_month", "org_code", "band_layout")]
    pooled_bands = band_rows.groupby(keys)[band_columns].sum()
    layout = band_rows.groupby(keys)["band_layout"].max()
    frames = []
    for n_bands, index in layout.groupby(layout).groups.items():
        bands = pooled_bands.loc[index, band_columns[:n_bands]].to_numpy(dtype=np.float64)
        frames.append(pd.DataFrame(measures_from_bands(bands, n_bands), index=index))
    measures = pd.concat(frames).join(sums)
    measures["rtt_pct_within_18_weeks"] = 100.0 * measures["within_18_weeks"] / measures["incomplete_pathways"]
    renamed = measures.rename(
        columns={
            "incomplete_pathways": "rtt_incomplete_pathways",
            "over_52_weeks": "rtt_over_52_weeks",
            "over_65_weeks": "rtt_over_65_weeks",
            "over_78_weeks": "rtt_over_78_weeks",
            "over_104_weeks": "rtt_over_104_weeks",
            "clock_starts": "rtt_clock_starts",
            "clock_stops": "rtt_clock_stops",
            "median_wait_weeks": "rtt_median_wait_weeks",
            "p92_wait_weeks": "rtt_p92_wait_weeks",
        }
    )
    metrics = [c for c in renamed.columns if c.startswith("rtt_")]
    return (
        renamed[metrics]
        .reset_index()
        .melt(id_vars=keys, value_vars=metrics, var_name="metric_code", value_name="value")
        .sort_values([*keys, "metric_code"], ignore_index=True)
    )


def build(rtt_folder: Path, out_dir: Path, reference_dir: Path = REFERENCE_DIR) -> dict[str, int]:
    """Read every month's file, write both outputs as Parquet under ``out_dir``; return their row counts."""
    successors = current_codes(reference_dir)
    months, provider_frames, pooled_frames = [], [], []
    for month, path in rtt_files(rtt_folder).items():
        frame = provider_month(path, month, successors)
        pooled = frame.attrs.pop("bands")
        frame.attrs.clear()
        pooled.columns = [f"band_{i:03d}" for i in range(pooled.shape[1])]
        pooled = pooled.reset_index().assign(period_month=pd.Timestamp(month), band_layout=frame["band_layout"].iat[0])
        months.append(month)
        provider_frames.append(frame)
        pooled_frames.append(pooled)
    provider = pd.concat(provider_frames, ignore_index=True)
    pooled = pd.concat(pooled_frames, ignore_index=True).fillna(0)
    members = members_by_month(months, successors, reference_dir)
    collaborative = collaborative_metrics(provider, pooled, members)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    provider.to_parquet(out_dir / "fct_rtt_provider_month.parquet", index=False)
    collaborative.to_parquet(out_dir / "rtt_collaborative_metrics.parquet", index=False)
    return {"fct_rtt_provider_month": len(provider), "rtt_collaborative_metrics": len(collaborative)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.bench_pandas", description=__doc__.split("\n")[0])
    parser.add_argument("rtt_folder", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    print(build(args.rtt_folder, args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
