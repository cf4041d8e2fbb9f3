"""The published layout of NHS England's RTT "Full CSV data file" (SPEC §3.1).

Kept in one place because three parts of the product must agree on it exactly: the sample generator that writes
files in this layout, the file contract that checks a delivered file against it, and the loader that maps it
into the raw layer. A change in NHS England's layout is a change here and nowhere else.
"""

from __future__ import annotations

import calendar
import re
from datetime import date

ID_COLUMNS: tuple[str, ...] = (
    "Period",
    "Provider Parent Org Code",
    "Provider Parent Name",
    "Provider Org Code",
    "Provider Org Name",
    "Commissioner Parent Org Code",
    "Commissioner Parent Name",
    "Commissioner Org Code",
    "Commissioner Org Name",
    "RTT Part Type",
    "RTT Part Description",
    "Treatment Function Code",
    "Treatment Function Name",
)
TOTAL_COLUMNS: tuple[str, ...] = ("Total", "Patients with unknown clock start date", "Total All")

#: April 2021 is the first month published with 104 weekly bands and an open band above 104 weeks.
LONG_BAND_LAYOUT_FROM = date(2021, 4, 1)


def band_columns(n_closed_bands: int) -> tuple[str, ...]:
    """Week-band headers: ``n_closed_bands`` one-week bands then the open-ended band above them."""
    closed = tuple(f"Gt {w:02d} To {w + 1:02d} Weeks SUM 1" for w in range(n_closed_bands))
    return closed + (f"Gt {n_closed_bands:02d} Weeks SUM 1",)


#: 53 bands (0-1 … 51-52 weeks, then "Gt 52 Weeks"): files for months before April 2021.
BANDS_53: tuple[str, ...] = band_columns(52)
#: 105 bands (0-1 … 103-104 weeks, then "Gt 104 Weeks"): files from April 2021.
BANDS_105: tuple[str, ...] = band_columns(104)

HEADER_53: tuple[str, ...] = ID_COLUMNS + BANDS_53 + TOTAL_COLUMNS
HEADER_105: tuple[str, ...] = ID_COLUMNS + BANDS_105 + TOTAL_COLUMNS
LAYOUTS: dict[int, tuple[str, ...]] = {53: HEADER_53, 105: HEADER_105}

PART_TYPES: dict[str, str] = {
    "Part_1A": "Completed Pathways For Admitted Patients",
    "Part_1B": "Completed Pathways For Non-Admitted Patients",
    "Part_2": "Incomplete Pathways",
    "Part_2A": "Incomplete Pathways with DTA",
    "Part_3": "New RTT Periods - All Patients",
}
#: Parts whose week bands are filled, and those whose ``Total`` equals the sum of their bands.
PARTS_WITH_BANDS = ("Part_1A", "Part_1B", "Part_2", "Part_2A")
PARTS_WITH_TOTAL = ("Part_1A", "Part_1B")

TOTAL_TREATMENT_FUNCTION = "C_999"
NON_ENGLISH_COMMISSIONER = "NONC"

_PERIOD = re.compile(r"^RTT-([A-Za-z]+)-(\d{4})$")
_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}


def parse_period(text: str) -> date:
    """``RTT-June-2026`` or ``RTT-NOVEMBER-2019`` → the first day of that month.

    Raises ``ValueError`` naming the text when it is not a period NHS England would publish.
    """
    match = _PERIOD.match(text.strip())
    month = _MONTHS.get(match.group(1).lower()) if match else None
    if not match or month is None:
        raise ValueError(f"{text!r} is not an RTT period like 'RTT-June-2026'")
    return date(int(match.group(2)), month, 1)


def format_period(month: date) -> str:
    """The first day of a month → ``RTT-June-2026``."""
    return f"RTT-{calendar.month_name[month.month]}-{month.year}"


def layout_for(month: date) -> int:
    """How many week bands NHS England published for ``month``: 53 before April 2021, 105 from then."""
    return 105 if month >= LONG_BAND_LAYOUT_FROM else 53


def file_name(month: date, revised: bool = False) -> str:
    """The published file name, e.g. ``20240430-RTT-April-2024-full-extract.csv`` (``-revised`` for revisions)."""
    last_day = calendar.monthrange(month.year, month.month)[1]
    stem = f"{month:%Y%m}{last_day:02d}-RTT-{calendar.month_name[month.month]}-{month.year}-full-extract"
    return stem + ("-revised" if revised else "") + ".csv"


def raw_band_name(header: str) -> str:
    """``Gt 05 To 06 Weeks SUM 1`` → ``gt_05_to_06_weeks``; ``Gt 104 Weeks SUM 1`` → ``gt_104_weeks``."""
    return header.removesuffix(" SUM 1").lower().replace(" ", "_")


#: Raw-layer band columns: every closed band of the long layout, then the two open bands. A 53-band file fills
#: ``gt_00_to_01_weeks`` … ``gt_51_to_52_weeks`` and ``gt_52_weeks``; a 105-band file fills every closed band and
#: ``gt_104_weeks``. Columns a layout does not publish are NULL.
RAW_BAND_COLUMNS: tuple[str, ...] = tuple(raw_band_name(h) for h in BANDS_105[:-1]) + ("gt_52_weeks", "gt_104_weeks")
