"""RTT waiting times: read a monthly "Full CSV data file", check its contract, load it into ``raw_rtt``.

Pure functions (the Dagster assets wrap them): ``discover_rtt_files`` → ``read_rtt_file`` → ``check_rtt_contract``
→ ``load_rtt_file`` or quarantine, and ``ingest_rtt_folder`` doing that loop so that one bad file never stops
the others. The layout itself lives in :mod:`orchestration.sources.rtt_layout`; the contract's rules live in
``expectations/rtt_full_extract.json``. Rules that compare rows with other rows (bands = Total, C_999 = detail,
Part_2A ≤ Part_2) are computed here as ``check_*`` columns that the suite expects to be 0, so the suite still
states every rule and GX validates the file once.
"""

from __future__ import annotations

import calendar
import difflib
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from orchestration import raw
from orchestration.contracts import ExpectationFailure, to_violations, validate_frame
from orchestration.raw import ContractError, ContractViolation, IngestResult, LoadOutcome
from orchestration.sources.rtt_layout import (
    BANDS_53,
    BANDS_105,
    HEADER_53,
    HEADER_105,
    ID_COLUMNS,
    LAYOUTS,
    LONG_BAND_LAYOUT_FROM,
    PARTS_WITH_TOTAL,
    RAW_BAND_COLUMNS,
    TOTAL_COLUMNS,
    TOTAL_TREATMENT_FUNCTION,
    layout_for,
    parse_period,
    raw_band_name,
)

log = logging.getLogger(__name__)

SOURCE = "rtt"
SCHEMA = "raw_rtt"
TABLE = "full_extract"
SUITE = "rtt_full_extract"


def raw_name(header: str) -> str:
    """A published column name → its raw-layer name (``Provider Org Code`` → ``provider_org_code``)."""
    return raw_band_name(header)


ID_RAW: tuple[str, ...] = tuple(raw_name(column) for column in ID_COLUMNS)
TOTAL_RAW: tuple[str, ...] = tuple(raw_name(column) for column in TOTAL_COLUMNS)
COUNT_RAW: tuple[str, ...] = RAW_BAND_COLUMNS + TOTAL_RAW

#: ``raw_rtt.full_extract``, in column order.
RAW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("period_month", "date"),
    ("source_file", "varchar"),
    ("source_row", "integer"),
    ("band_layout", "smallint"),
    *((column, "varchar") for column in ID_RAW),
    *((column, "bigint") for column in COUNT_RAW),
)

#: Derived columns the suite checks (see the module docstring); appended to the validated batch in this order.
CHECK_COLUMNS: tuple[str, ...] = (
    "check_unreadable_count_cells",
    "check_negative_count_cells",
    "check_period_month",
    "check_bands_minus_total",
    "check_total_all_minus_total_and_unknown",
    "check_part_2a_minus_part_2",
    "check_c999_minus_detail",
)

_PUBLISHED_IDS = frozenset(ID_COLUMNS)
_PUBLISHED_COUNTS = frozenset(BANDS_53 + BANDS_105 + TOTAL_COLUMNS)
_RAW_TO_PUBLISHED = {raw_name(column): column for column in HEADER_105 + HEADER_53}
_FILE_NAME = re.compile(r"^\d{8}-(RTT-[A-Za-z]+-\d{4})-full-extract(-revised)?$", re.IGNORECASE)
_WHOLE_NUMBER = r"^[-+]?[0-9]+$"
#: NHS England's own name for the zip on its RTT pages: month token (``Apr26``), size tag and a random suffix.
_PUBLISHED_NAME = re.compile(r"^Full-CSV-data-file-([A-Za-z]{3})([0-9]{2})\b", re.IGNORECASE)
_MONTH_ABBREVIATIONS = {calendar.month_abbr[number].lower(): number for number in range(1, 13)}
_REVISED = re.compile(r"(?:^|[-_ .])revised(?:$|[-_ .])", re.IGNORECASE)


@dataclass(frozen=True)
class RttFile:
    """A delivered RTT file, as far as can be told before checking its rows.

    ``period_month`` is the month in the published file name, or else the month most of its rows give.
    ``band_layout`` is 53 or 105: the header's layout if it is exactly one of them, else the month's.
    ``source_file`` names it in the raw layer and in violations (``x.zip/x.csv`` for a zipped file).
    """

    path: Path
    period_month: date
    is_revision: bool
    band_layout: int
    sha256: str
    source_file: str = ""
    file_bytes: int = 0

    def __post_init__(self) -> None:
        if not self.source_file:
            object.__setattr__(self, "source_file", Path(self.path).name)


# --------------------------------------------------------------------------------------------------------------
# Finding and reading files


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".zip", ".csv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def month_in_file_name(path: Path) -> date | None:
    """The month a file name states: ours (``20240430-RTT-April-2024-full-extract.csv`` → 2024-04-01) or NHS
    England's as published (``Full-CSV-data-file-Apr26-ZIP-3M-XYZ.zip`` → 2026-04-01)."""
    stem = _stem(Path(path))
    match = _FILE_NAME.match(stem)
    if match:
        try:
            return parse_period(match.group(1))
        except ValueError:
            return None
    published = _PUBLISHED_NAME.match(stem)
    if published:
        month = _MONTH_ABBREVIATIONS.get(published.group(1).lower())
        return date(2000 + int(published.group(2)), month, 1) if month else None
    return None


def is_revision_name(path: Path) -> bool:
    """Whether the file name marks a revised publication: ``…-full-extract-revised.csv``, or NHS England's
    ``Full-CSV-data-file-Apr26-ZIP-3M-revised-XYZ.zip`` (the word ``revised`` anywhere between separators)."""
    return bool(_REVISED.search(_stem(Path(path))))


def discover_rtt_files(folder: Path) -> list[Path]:
    """The ``.csv`` and ``.zip`` files directly in ``folder``, by month, each original before its ``-revised``.

    Files whose names do not state a month come last, by name (their month is read from their rows).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in (".csv", ".zip")
    ]
    return sorted(found, key=lambda path: (month_in_file_name(path) or date.max, is_revision_name(path), path.name))


def read_rtt_file(path: Path) -> tuple[RttFile, pd.DataFrame]:
    """Read a delivered file as text: every cell a string, columns as in its header, indexed by line number.

    Raises :class:`ContractError` when it is not a readable RTT CSV at all (empty, header only, HTML, corrupt
    zip, not UTF-8, ragged rows) or when its month cannot be told from its name or its rows.
    """
    path = Path(path)
    source_file, data = raw.open_source_file(path)
    frame = raw.read_csv_as_strings(source_file, data)
    month = month_in_file_name(path) or _month_from_rows(source_file, frame)
    header = tuple(frame.columns)
    layout = 105 if header == HEADER_105 else 53 if header == HEADER_53 else layout_for(month)
    rtt_file = RttFile(
        path=path,
        period_month=month,
        is_revision=is_revision_name(path),
        band_layout=layout,
        sha256=raw.file_sha256(path),
        source_file=source_file,
        file_bytes=path.stat().st_size,
    )
    return rtt_file, frame


def _period_column(frame: pd.DataFrame) -> pd.Series | None:
    positions = [i for i, column in enumerate(frame.columns) if column == "Period"]
    return frame.iloc[:, positions[0]] if positions else None


def _parse_or_none(text: str) -> date | None:
    try:
        return parse_period(text)
    except ValueError:
        return None


def _month_from_rows(source_file: str, frame: pd.DataFrame) -> date:
    periods = _period_column(frame)
    if periods is not None:
        months = {value: _parse_or_none(value) for value in periods.unique()}
        counts = periods.map(months).value_counts()
        if len(counts):
            return counts.index[0]
    raise ContractError(
        source_file,
        "cannot tell which month the file holds: its name does not follow the published pattern "
        "(e.g. 20240430-RTT-April-2024-full-extract.csv) and no Period value parses",
        rule="period_parses",
    )


# --------------------------------------------------------------------------------------------------------------
# The contract


def _strings(series: pd.Series) -> pa.ChunkedArray | pa.Array:
    return pc.fill_null(pa.array(series, from_pandas=True), "")


def _parse_counts(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A count column as float64 (NaN when blank or unreadable) and a mask of its unreadable cells."""
    text = _strings(series)
    blank = pc.equal(text, "")
    no_text = pa.scalar(None, text.type)
    try:  # the usual case, every cell a whole number or blank: one cast, no regex
        values = pc.cast(pc.if_else(blank, no_text, text), pa.int64())
        unreadable = np.zeros(len(text), dtype=bool)
    except pa.ArrowInvalid:
        whole = pc.match_substring_regex(text, _WHOLE_NUMBER)
        values = pc.cast(pc.if_else(whole, text, no_text), pa.int64())
        unreadable = pc.and_(pc.invert(whole), pc.invert(blank)).to_numpy(zero_copy_only=False)
    return values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False), unreadable


def _yyyymm(month: date) -> int:
    return month.year * 100 + month.month


@dataclass
class _Checked:
    """What the derived checks computed, kept to explain an offending row afterwards.

    ``counts`` holds each count column as numbers with blank (and unreadable) cells as 0: blank means none.
    """

    frame: pd.DataFrame
    counts: dict[str, np.ndarray]
    unreadable: dict[str, np.ndarray]
    bands: tuple[str, ...] = ()
    part_group: np.ndarray | None = None
    detail_sums: dict[str, np.ndarray] | None = None
    part_2_total_all: np.ndarray | None = None
    part_2_found: np.ndarray | None = None

    def position(self, line: int) -> int:
        return int(self.frame.index.get_loc(line))

    def value(self, column: str, line: int) -> int:
        return int(self.counts[column][self.position(line)])

    def detail_sum(self, column: str, line: int) -> int:
        return int(self.detail_sums[column][self.part_group[self.position(line)]])


def _validation_batch(frame: pd.DataFrame, month: date, header_ok: bool) -> tuple[pd.DataFrame, _Checked]:
    """The frame GX validates: the file's columns under raw names in file order (counts as numbers, blank = 0),
    then the raw band columns the month's layout does not publish (0), then the ``check_*`` columns.

    Columns the layout does not know keep their name behind ``unpublished:``, so they can never pass for one.
    """
    n = len(frame)
    columns: dict[str, object] = {}
    counts: dict[str, np.ndarray] = {}
    unreadable: dict[str, np.ndarray] = {}
    # Every count is parsed straight into one 2-D block (one row per count column): GX filters a frame whose
    # numbers are one block far faster than 200 separate arrays, and building the block as it is parsed avoids
    # a second 200 MB copy to consolidate them afterwards.
    file_names = {raw_name(published) for published in frame.columns}
    expected_layout = {raw_name(column) for column in LAYOUTS[layout_for(month)]}
    unpublished_bands = [band for band in RAW_BAND_COLUMNS if band not in expected_layout and band not in file_names]
    count_columns = sum(published in _PUBLISHED_COUNTS for published in frame.columns)
    block = np.zeros((count_columns + len(unpublished_bands) + len(CHECK_COLUMNS), n))
    for position, published in enumerate(frame.columns):
        series = frame.iloc[:, position]
        known = published in _PUBLISHED_IDS or published in _PUBLISHED_COUNTS
        name = raw_name(published) if known else f"unpublished: {published}"
        if name in columns:
            name = f"{published} (column {position + 1})"
        if published in _PUBLISHED_COUNTS:
            values, unreadable[name] = _parse_counts(series)
            row = block[len(counts)]
            np.copyto(row, values)
            # Blank means none. Validating blanks as 0 also keeps GX fast: it copies the whole batch for every
            # expectation on a column that has nulls.
            counts[name] = columns[name] = np.nan_to_num(row, copy=False)
        elif published in _PUBLISHED_IDS:
            columns[name] = series.where(series != "")
        else:
            columns[name] = series
    for offset, band in enumerate(unpublished_bands):
        columns[band] = block[count_columns + offset]
    checked = _Checked(frame=frame, counts=counts, unreadable=unreadable)

    # A check column is 0 where its rule does not apply (GX skips nothing, and 0 passes).
    check_values = {column: np.zeros(n) for column in CHECK_COLUMNS}
    if unreadable:
        check_values["check_unreadable_count_cells"] = np.sum(list(unreadable.values()), axis=0, dtype=np.float64)
    if counts:
        # One derived column for every count cell instead of one expectation per column: GX's cost grows with
        # the number of expectations (about 10 ms each per file), not with the rows.
        check_values["check_negative_count_cells"] = np.sum(
            [values < 0 for values in counts.values()], axis=0, dtype=np.float64
        )
    periods = _period_column(frame)
    if periods is not None:
        months = {value: _parse_or_none(value) for value in periods.unique()}
        as_number = {value: _yyyymm(parsed) if parsed else np.nan for value, parsed in months.items()}
        check_values["check_period_month"] = periods.map(as_number).to_numpy(dtype=np.float64)
    if header_ok:
        _cross_row_checks(frame, checked, check_values)
    everything = {**columns, **check_values}
    numeric = [*counts, *unpublished_bands, *CHECK_COLUMNS]  # the block's rows, in order
    text = list(everything)[: len(everything) - len(numeric)]
    if list(everything)[len(text) :] != numeric:  # a mangled header put text among the counts: no one block
        return pd.DataFrame(everything, index=frame.index, copy=True), checked
    for offset, column in enumerate(CHECK_COLUMNS):  # the block's last rows; unpublished bands stay 0
        block[count_columns + len(unpublished_bands) + offset] = check_values[column]
    batch = pd.concat(
        [
            pd.DataFrame({name: everything[name] for name in text}, index=frame.index),
            pd.DataFrame(block.T, columns=numeric, index=frame.index, copy=False),
        ],
        axis=1,
    )
    return batch, checked


def _cross_row_checks(frame: pd.DataFrame, checked: _Checked, out: dict[str, np.ndarray]) -> None:
    """Rules that compare a row with its own bands or with other rows (only run when the header is right)."""
    zero = checked.counts
    bands = tuple(raw_name(column) for column in (BANDS_105 if "gt_104_weeks" in zero else BANDS_53))
    checked.bands = bands
    part = frame["RTT Part Type"].to_numpy(dtype=object)
    treatment = frame["Treatment Function Code"].to_numpy(dtype=object)

    with_total = np.isin(part, PARTS_WITH_TOTAL)
    band_sum = np.zeros(len(frame))
    for band in bands:
        band_sum += zero[band]
    out["check_bands_minus_total"] = np.where(with_total, band_sum - zero["total"], 0.0)
    out["check_total_all_minus_total_and_unknown"] = np.where(
        with_total, zero["total_all"] - zero["total"] - zero["patients_with_unknown_clock_start_date"], 0.0
    )

    # Part_2A ≤ Part_2 (Total All) for the same provider, commissioner and treatment function.
    pathway = (
        frame.groupby(
            [frame["Provider Org Code"], frame["Commissioner Org Code"], frame["Treatment Function Code"]],
            sort=False,
        )
        .ngroup()
        .to_numpy()
    )
    groups = int(pathway.max()) + 1
    is_2, is_2a = part == "Part_2", part == "Part_2A"
    part_2_total_all = np.bincount(pathway[is_2], weights=zero["total_all"][is_2], minlength=groups)
    part_2_found = np.bincount(pathway[is_2], minlength=groups) > 0
    out["check_part_2a_minus_part_2"] = np.where(is_2a, zero["total_all"] - part_2_total_all[pathway], 0.0)
    checked.part_2_total_all, checked.part_2_found = part_2_total_all[pathway], part_2_found[pathway]

    # C_999 = the sum of the detail rows for the same provider, commissioner and part, in every measure.
    part_group = (
        frame.groupby(
            [frame["Provider Org Code"], frame["Commissioner Org Code"], frame["RTT Part Type"]],
            sort=False,
        )
        .ngroup()
        .to_numpy()
    )
    groups = int(part_group.max()) + 1
    is_total = treatment == TOTAL_TREATMENT_FUNCTION
    detail, totals = np.flatnonzero(~is_total), np.flatnonzero(is_total)
    detail_groups, total_groups = part_group[detail], part_group[totals]
    sums, difference = {}, np.zeros(len(totals))
    for column in bands + TOTAL_RAW:
        sums[column] = np.bincount(detail_groups, weights=zero[column][detail], minlength=groups)
        difference += np.abs(zero[column][totals] - sums[column][total_groups])
    out["check_c999_minus_detail"][totals] = difference
    checked.part_group, checked.detail_sums = part_group, sums


def check_rtt_contract(rtt_file: RttFile, frame: pd.DataFrame, *, today: date | None = None) -> list[ContractViolation]:
    """Check a read file against the RTT file contract (SPEC §8); ``[]`` means it may be loaded.

    Runs the GX suite ``expectations/rtt_full_extract.json`` once over the file, with the cross-row rules as
    derived columns, and names each violation's file, line, column (as the file names it) and rule. ``today``
    fixes "the current month" for the rule that no period may be in the future (default: today).
    """
    month = rtt_file.period_month
    expected_header = LAYOUTS[layout_for(month)]
    header = list(frame.columns)
    header_ok = header == list(expected_header)
    batch, checked = _validation_batch(frame, month, header_ok)
    published_raw = [raw_name(column) for column in expected_header]
    parameters = {
        "expected_columns": published_raw
        + [band for band in RAW_BAND_COLUMNS if band not in published_raw]
        + list(CHECK_COLUMNS),
        "file_month": [_yyyymm(month)],
        "latest_month": _yyyymm(today or date.today()),
    }
    failures = validate_frame(batch, SUITE, parameters)
    # A rule on a column the file lacks cannot run; the header rule already names the missing column.
    failures = [failure for failure in failures if not (failure.missing_columns and failure.error)]
    labels = dict(_RAW_TO_PUBLISHED)
    labels.update(
        {
            "check_unreadable_count_cells": "counts",
            "check_negative_count_cells": "counts",
            "check_period_month": "Period",
            "check_bands_minus_total": "Total",
            "check_total_all_minus_total_and_unknown": "Total All",
            "check_part_2a_minus_part_2": "Total All",
            "check_c999_minus_detail": "Treatment Function Code",
        }
    )
    explain = _explainers(rtt_file, checked)
    violations = to_violations(
        rtt_file.source_file,
        failures,
        column_labels=labels,
        explain=explain,
        table_explain={
            "header_matches_layout": lambda _failure: header_violations(rtt_file.source_file, header, month)
        },
    )
    if not header_ok and not any(v.rule == "header_matches_layout" for v in violations):
        violations[:0] = header_violations(rtt_file.source_file, header, month)
    return violations


def header_violations(source_file: str, header: Sequence[str], month: date) -> list[ContractViolation]:
    """Say exactly how a header differs from the published layout for ``month``: which columns are missing,
    renamed, unexpected or out of place, or that it is the other layout altogether."""
    layout = layout_for(month)
    expected = list(LAYOUTS[layout])
    header = list(header)
    rule = "header_matches_layout"

    def violation(column: str | None, message: str) -> ContractViolation:
        return ContractViolation(source_file, 1, column, rule, message)

    if header == expected:
        return []
    for other, other_header in LAYOUTS.items():
        if other != layout and header == list(other_header):
            return [
                violation(
                    other_header[-4],
                    (
                        f"the file has the {other}-band layout (bands up to '{other_header[-4]}') but {month:%B %Y} is "
                        f"published with {layout} bands ({'from' if layout == 105 else 'before'} "
                        f"{LONG_BAND_LAYOUT_FROM:%B %Y}): is the file for the month it says?"
                    ),
                )
            ]
    found: list[ContractViolation] = []
    duplicated = sorted({column for column in header if header.count(column) > 1})
    for column in duplicated:
        found.append(violation(column, f"column '{column}' appears {header.count(column)} times"))
    matcher = difflib.SequenceMatcher(a=expected, b=header, autojunk=False)
    missing: list[tuple[int, str]] = []
    unexpected: list[tuple[int, str]] = []
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "replace" and a1 - a0 == b1 - b0:
            for offset in range(a1 - a0):
                missing.append((a0 + offset, expected[a0 + offset]))
                unexpected.append((b0 + offset, header[b0 + offset]))
        elif tag in ("replace", "delete", "insert"):
            missing += [(i, expected[i]) for i in range(a0, a1)]
            unexpected += [(i, header[i]) for i in range(b0, b1)]
    moved = {name for _, name in missing} & {name for _, name in unexpected}
    for position, name in unexpected:
        if name in moved:
            found.append(
                violation(
                    name,
                    (
                        f"column '{name}' is column {position + 1} but the published layout has it at column "
                        f"{expected.index(name) + 1}: columns are out of order"
                    ),
                )
            )
    renames = {
        a: b
        for (a, name_a), (b, name_b) in zip(missing, unexpected, strict=False)
        if a == b and name_a not in moved and name_b not in moved
    }
    for position, name in missing:
        if name in moved:
            continue
        if position in renames:
            found.append(
                violation(
                    header[renames[position]],
                    (
                        f"column {position + 1} is named '{header[renames[position]]}' but should be '{name}' "
                        "(renamed column)"
                    ),
                )
            )
        else:
            found.append(violation(name, f"column '{name}' is missing (published at column {position + 1})"))
    for position, name in unexpected:
        if name not in moved and position not in renames.values() and name not in duplicated:
            found.append(violation(name, f"column '{name}' (column {position + 1}) is not in the published layout"))
    if not found:
        found.append(violation(None, f"the header does not match the published {layout}-band layout"))
    return found


def _explainers(rtt_file: RttFile, checked: _Checked) -> dict:
    """Row-specific messages for the rules whose GX failure alone would not say enough."""
    month = rtt_file.period_month
    frame = checked.frame

    def cell(column: str, line: int) -> str:
        return str(frame.at[line, column]) if column in frame.columns else ""

    def unreadable(_failure: ExpectationFailure, line: int, _value):
        position = checked.position(line)
        return [
            (
                _RAW_TO_PUBLISHED.get(column, column),
                f"'{cell(_RAW_TO_PUBLISHED.get(column, column), line)}' is not a whole number "
                "(counts are whole numbers or blank)",
            )
            for column, mask in checked.unreadable.items()
            if mask[position]
        ]

    def negative(_failure: ExpectationFailure, line: int, _value):
        position = checked.position(line)
        return [
            (
                _RAW_TO_PUBLISHED.get(column, column),
                f"{int(values[position])} is negative (a count of patients cannot be below 0)",
            )
            for column, values in checked.counts.items()
            if values[position] < 0
        ]

    def other_month(_failure, line: int, _value):
        said = "the month in its file name" if month_in_file_name(rtt_file.path) else "the month of its other rows"
        return [("Period", f"Period '{cell('Period', line)}' is not {month:%B %Y}, {said}: a file holds one month")]

    def future(_failure, line: int, _value):
        return [("Period", f"Period '{cell('Period', line)}' is later than the current month")]

    def duplicate(failure: ExpectationFailure, line: int, value):
        others = [
            str(row) for row, other in zip(failure.rows, failure.values, strict=False) if other == value and row != line
        ]
        key = ", ".join(str(item) for item in (value or {}).values())
        also = f" (also on line {', '.join(others)})" if others else ""
        return [
            (
                "Provider Org Code, Commissioner Org Code, RTT Part Type, Treatment Function Code",
                f"duplicate key {key}{also}",
            )
        ]

    def bands_vs_total(_failure, line: int, _value):
        total = checked.value("total", line)
        band_sum = sum(checked.value(band, line) for band in checked.bands)
        return [("Total", f"{cell('RTT Part Type', line)} week bands add up to {band_sum} but Total is {total}")]

    def total_all(_failure, line: int, _value):
        t, u = checked.value("total", line), checked.value("patients_with_unknown_clock_start_date", line)
        return [
            (
                "Total All",
                f"Total All is {checked.value('total_all', line)} but Total {t} + unknown clock start {u} = {t + u}",
            )
        ]

    def part_2a(_failure, line: int, _value):
        position = checked.position(line)
        part_2 = int(checked.part_2_total_all[position])
        which = "" if checked.part_2_found[position] else " (there is no Part_2 row)"
        codes = ", ".join(
            cell(column, line) or "(blank)"
            for column in ("Provider Org Code", "Commissioner Org Code", "Treatment Function Code")
        )
        return [
            (
                "Total All",
                f"Part_2A Total All {checked.value('total_all', line)} exceeds Part_2 Total All "
                f"{part_2}{which} for the same provider, commissioner and treatment function ({codes})",
            )
        ]

    def c999(_failure, line: int, _value):
        part = cell("RTT Part Type", line)
        provider = cell("Provider Org Code", line) or "(blank)"
        commissioner = cell("Commissioner Org Code", line) or "(blank)"
        out = []
        for column in checked.bands + TOTAL_RAW:
            value, detail = checked.value(column, line), checked.detail_sum(column, line)
            if value != detail:
                message = (
                    f"C_999 {part} row has {value} but the detail rows for provider {provider} and commissioner "
                    f"{commissioner} add up to {detail}"
                )
                out.append((_RAW_TO_PUBLISHED[column], message))
        return out

    return {
        "count_is_whole_number": unreadable,
        "count_not_negative": negative,
        "single_month": other_month,
        "period_not_in_future": future,
        "unique_key": duplicate,
        "bands_sum_to_total": bands_vs_total,
        "total_all_is_total_plus_unknown": total_all,
        "part_2a_within_part_2": part_2a,
        "c999_equals_detail": c999,
    }


# --------------------------------------------------------------------------------------------------------------
# Loading


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``raw_rtt.full_extract`` and ``raw_rtt.file_loads`` if they are missing."""
    raw.ensure_file_loads(con, SCHEMA)
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in RAW_COLUMNS)
    con.execute(f"create table if not exists {SCHEMA}.{TABLE} (\n    {columns}\n)")


def _incoming(con: duckdb.DuckDBPyConnection, rtt_file: RttFile, frame: pd.DataFrame) -> tuple[str, str, list]:
    """Register the file's rows with DuckDB, typed; return (view name, a SELECT of raw-layer rows, its parameters).

    Converting in Arrow (blank → NULL, text → BIGINT) and handing DuckDB typed columns is faster than casting in
    SQL, and the SELECT names every raw column so that columns the layout does not publish come out NULL.
    """
    header = LAYOUTS.get(rtt_file.band_layout)
    if header is None or tuple(frame.columns) != header:
        raise ValueError(
            f"{rtt_file.source_file}: the header is not the {rtt_file.band_layout}-band layout; "
            "check the contract before loading"
        )
    arrays = {"source_row": pa.array(frame.index.to_numpy(), pa.int32())}
    for column in header:
        text = _strings(frame[column])
        present = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)
        arrays[raw_name(column)] = present if column in _PUBLISHED_IDS else pc.cast(present, pa.int64())
    name = f"incoming_rtt_{uuid.uuid4().hex}"
    con.register(name, pa.table(arrays))
    constants = {
        "period_month": "cast(? as date)",
        "source_file": "cast(? as varchar)",
        "band_layout": "cast(? as smallint)",
    }
    selects = [
        f"{constants[column]} as {column}"
        if column in constants
        else column
        if column in arrays
        else f"cast(null as {kind}) as {column}"
        for column, kind in RAW_COLUMNS
    ]
    sql = "select " + ", ".join(selects) + f" from {name}"
    return name, sql, [rtt_file.period_month, rtt_file.source_file, rtt_file.band_layout]


def load_rtt_file(con: duckdb.DuckDBPyConnection, rtt_file: RttFile, frame: pd.DataFrame) -> LoadOutcome:
    """Load a file that passed its contract into ``raw_rtt.full_extract``, idempotently (SPEC §2).

    The same bytes already current → ``unchanged``; bytes since replaced (an original next to its revision) →
    ``superseded``; first file for its month → ``loaded``; a ``-revised`` file → ``replaced`` (the month's rows
    swapped in one transaction). A file that is not named ``-revised`` for a month already loaded with different
    figures is ``rejected`` and nothing changes; with the same figures (e.g. the zip of a loaded CSV) it is
    ``unchanged``.
    """
    ensure_raw_tables(con)
    month = rtt_file.period_month

    def outcome(
        action: str, rows: int, message: str = "", violations: tuple[ContractViolation, ...] = ()
    ) -> LoadOutcome:
        return LoadOutcome(action, rtt_file.source_file, month, rows, rtt_file.sha256, violations, message)

    plan = raw.plan_load(con, SCHEMA, month, rtt_file.sha256, rtt_file.is_revision)
    if plan.action in ("unchanged", "superseded"):
        return outcome(plan.action, len(frame), plan.message)
    view, select_sql, params = _incoming(con, rtt_file, frame)
    try:
        if plan.action == "conflict":
            figures = ID_RAW + COUNT_RAW
            if raw.same_rows(con, f"{SCHEMA}.{TABLE}", month, select_sql, params, figures):
                return outcome("unchanged", len(frame), f"same figures as {plan.current.source_file}")
            violation = ContractViolation(
                rtt_file.source_file,
                None,
                None,
                "revision_named_revised",
                f"period already loaded from {plan.current.source_file} with different figures; "
                "a re-publication must be named -revised",
            )
            return outcome("rejected", len(frame), violation.message, (violation,))
        audit = raw.AuditEntry(rtt_file.source_file, month, rtt_file.sha256, rtt_file.file_bytes, rtt_file.is_revision)
        rows = raw.write_partition(con, SCHEMA, TABLE, select_sql, params, audit, action=plan.action)
        return outcome(plan.action, rows, plan.message)
    finally:
        con.unregister(view)


# --------------------------------------------------------------------------------------------------------------
# The loop


def months_in_folder(folder: Path) -> list[date]:
    """The months the RTT files in ``folder`` hold (from their names, else from their rows), oldest first."""
    months = set()
    for path in discover_rtt_files(folder):
        month = month_in_file_name(path)
        if month is None:
            try:
                month = read_rtt_file(path)[0].period_month
            except ContractError:
                continue
        months.add(month)
    return sorted(months)


def ingest_rtt_folder(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    quarantine_dir: Path,
    *,
    move_rejected: bool,
    months: tuple[date, date] | None = None,
) -> list[IngestResult]:
    """Read, check and load every RTT file in ``folder``; quarantine the ones that fail.

    Files already loaded (by SHA-256) are recognised before they are read, so a monthly run costs the new files
    only. A file that fails never stops the others. ``move_rejected`` moves rejected files out of the folder
    (a landing folder); otherwise they are copied (bundled samples stay where they are). ``months`` limits the
    run to files for months in ``[start, end)`` (a Dagster partition window).
    """
    ensure_raw_tables(con)
    return raw.ingest_files(
        con,
        discover_rtt_files(folder),
        schema=SCHEMA,
        source=SOURCE,
        read=read_rtt_file,
        check=check_rtt_contract,
        load=load_rtt_file,
        month_in_name=month_in_file_name,
        quarantine_dir=Path(quarantine_dir),
        move=move_rejected,
        window=months,
    )


# --------------------------------------------------------------------------------------------------------------
# Re-checking what is loaded (the blocking asset check)


def frame_from_raw(con: duckdb.DuckDBPyConnection, period_month: date) -> tuple[RttFile, pd.DataFrame] | None:
    """The current load of ``period_month`` rebuilt as the file it came from: published header, text cells,
    indexed by its line numbers. ``None`` when nothing is loaded for the month."""
    ensure_raw_tables(con)
    load = raw.current_load(con, SCHEMA, period_month)
    if load is None:
        return None
    layout = con.execute(
        f"select any_value(band_layout) from {SCHEMA}.{TABLE} where period_month = ?", [period_month]
    ).fetchone()[0] or layout_for(period_month)
    header = LAYOUTS[int(layout)]
    selects = ["source_row"] + [
        f"coalesce({raw_name(column)}, '') as c{i}"
        if column in _PUBLISHED_IDS
        else f"coalesce(cast({raw_name(column)} as varchar), '') as c{i}"
        for i, column in enumerate(header)
    ]
    table = con.execute(
        f"select {', '.join(selects)} from {SCHEMA}.{TABLE} where period_month = ? order by source_row",
        [period_month],
    ).fetch_arrow_table()
    frame = table.drop(["source_row"]).to_pandas()
    frame.columns = list(header)
    frame.index = pd.Index(table.column("source_row").to_numpy(), name="line")
    rtt_file = RttFile(
        path=Path(load.source_file),
        period_month=period_month,
        is_revision=load.is_revision,
        band_layout=int(layout),
        sha256=load.sha256,
        source_file=load.source_file,
    )
    return rtt_file, frame


def check_loaded_months(
    con: duckdb.DuckDBPyConnection, *, run_id: str | None = None
) -> dict[date, list[ContractViolation]]:
    """Re-run the file contract on every current RTT month not yet checked in ``audit.contract_checks``.

    What the warehouse holds is checked, not what a file said, so a month loaded by other means or changed since
    is caught. Each month is checked once per load (keyed by its file's SHA-256) and the result recorded.
    Returns ``{month: violations}`` for the months checked now (``[]`` = passed).
    """
    from orchestration.audit import ensure_audit_schema

    ensure_raw_tables(con)
    ensure_audit_schema(con)
    pending = con.execute(
        f"""select l.period_month from {SCHEMA}.file_loads l
            where l.is_current and not exists (
                select 1 from audit.contract_checks c
                where c.source = ? and c.period_month = l.period_month and c.sha256 = l.sha256 and c.passed)
            order by l.period_month""",
        [SOURCE],
    ).fetchall()
    outcomes: dict[date, list[ContractViolation]] = {}
    for (month,) in pending:
        rebuilt = frame_from_raw(con, month)
        if rebuilt is None:
            continue
        rtt_file, frame = rebuilt
        violations = check_rtt_contract(rtt_file, frame)
        con.execute(
            "insert into audit.contract_checks values (?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                SOURCE,
                month,
                rtt_file.sha256,
                not raw.errors_of(violations),
                len(raw.errors_of(violations)),
                datetime.now(UTC).replace(tzinfo=None),
            ],
        )
        outcomes[month] = violations
    return outcomes
