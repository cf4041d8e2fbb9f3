"""The published layout of NHS England's MHSDS monthly "Out of Area Placements" data file, as facts.

Shared by the reader and contract (:mod:`orchestration.sources.oap`), the sample generator
(:mod:`orchestration.samples.oap`) and the download client, so that none of them needs the others. Everything here
was read off the publisher's own code (NHSDigital/mental-health-monthly-statistics,
``Mental_Health_Monthly_Statistics/menh_bbrb/``) and a real file of the same pipeline
(``MHSDS Data_4WW_AprPerf_2024_v2.csv``, another measure family in the same 11-column layout):

* **Names** (``03_Extract/menh_bbrb_extract.sql``): ``MHSDS Data_OAPs_{Mon}{Perf|Prov|Final}_{YYYY}.csv``, where
  ``Mon`` and ``YYYY`` are the reporting month's (``%b`` and the calendar year of its first day) and the status
  token is the STATUS cut to four letters except ``Final`` (``Performance`` → ``Perf``, ``Provisional`` → ``Prov``,
  ``Adhoc`` → ``Adho``). Published zipped; a re-publication carries ``_v2`` (``_v3`` …) or ``_Adhoc``. The
  publication pages also link variants (``Prf``, ``Final__``, `` v3``, ``Sept``, the long form ``MHSDS Monthly
  Performance July 2025 Out of Area Placements``), which :func:`parse_file_name` reads too.
* **One file, one month, one status**: the extract selects ``REPORTING_PERIOD_END = rp_enddate AND STATUS =
  status``. The monthly job (``run_notebooks.py``) runs twice, ``Provisional`` for the newest month and then
  ``Performance`` for the month before, so they arrive together but as two files; ``Final`` is a custom run after
  the year-end (March) refresh; ``Adhoc`` a custom run with no period checks.
* **Periods** (``mhsds_functions.py`` ``mh_freq_to_rp_startdate``): each measure exists per month (``…M``),
  rolling quarter (``…Q``, START two months back) and rolling 12 months (``…Y``, START eleven months back), all
  ending on the month's last day; ``run_notebooks_master.py`` then drops the last letter of every ``OAP…`` id,
  so the three share a MEASURE_ID and only REPORTING_PERIOD_START tells them apart.
* **Dates** are written ``DD/MM/YYYY``; rows are sorted by START, END, STATUS, BREAKDOWN, PRIMARY_LEVEL,
  SECONDARY_LEVEL, MEASURE_ID; UTF-8 without a byte-order mark, ``\\n`` line endings, quotes only around a
  cell that holds a comma.
* **Which rows exist** (``csv_skeleton.py`` and the insert into ``bbrb_final``): every level of every breakdown a
  measure has, whether or not anything happened. A national breakdown (``England``, ``England; …``:
  ``parameters.py`` ``unsup_breakdowns``) is published exactly, unrounded, with ``0`` where nothing happened;
  every other row's count goes through ``count_suppression``: below 5 (0 included) is ``*``, the rest rounded to
  the nearest 5. Rates and proportions outside England are ``*`` when their numerator is, else rounded to a
  whole number; national rates and proportions are written unrounded (single precision: ``10.64024``).
* **Senders** (``08_oaps/oaps_prep.py``): a Sending Provider is the referral's referring organisation as
  submitted, ``coalesce(OrgIDReferring, "UNKNOWN")``, named from ODS or ``UNKNOWN``; the sender levels are every
  sender of the last 12 months. So ``UNKNOWN`` is a real row (placements nobody recorded a referrer for), and a
  sender can be any organisation code (a trust, one of its sites, a GP practice) or ``UNKNOWN``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

HEADER: tuple[str, ...] = (
    "REPORTING_PERIOD_START",
    "REPORTING_PERIOD_END",
    "STATUS",
    "BREAKDOWN",
    "PRIMARY_LEVEL",
    "PRIMARY_LEVEL_DESCRIPTION",
    "SECONDARY_LEVEL",
    "SECONDARY_LEVEL_DESCRIPTION",
    "MEASURE_ID",
    "MEASURE_NAME",
    "MEASURE_VALUE",
)

#: How dates are written (``01/04/2024``).
DATE_FORMAT = "%d/%m/%Y"
SUPPRESSED = "*"
#: An unused level (SECONDARY_LEVEL of a one-level breakdown) is published as this text.
NOT_USED = "NONE"
#: The sender (or any level) the publisher could not tell.
UNKNOWN = "UNKNOWN"

# --------------------------------------------------------------------------------------------------------------
# Statuses and their precedence

#: Every STATUS the publisher's job can write (``run_notebooks.py``).
STATUSES: tuple[str, ...] = ("Provisional", "Performance", "Adhoc", "Final")
#: Which publication of a month stands: a higher one replaces a lower one, never the reverse. Provisional (the
#: newest month's early figures) < Performance (the month's main figures) < Adhoc (a deliberate re-run) < Final
#: (after the year-end refresh).
STATUS_PRECEDENCE: dict[str, int] = {"Provisional": 1, "Performance": 2, "Adhoc": 3, "Final": 4}
#: The status token of the file name (``menh_bbrb_extract.sql``: ``Final``, else the first four letters).
STATUS_TOKENS: dict[str, str] = {"Provisional": "Prov", "Performance": "Perf", "Adhoc": "Adho", "Final": "Final"}

# --------------------------------------------------------------------------------------------------------------
# Measures (``measure_metadata.py``; the id loses its period letter M/Q/Y before publication)

MEASURE_NAMES: dict[str, str] = {
    "OAP01": "Number of Inappropriate new OAPs started in the period",
    "OAP01a": "Number of Inappropriate new OAPs in Adult Acute beds started in the period",
    "OAP02": "Number of Inappropriate OAPs bed days in the period",
    "OAP02a": "Number of Inappropriate OAPs bed days in Adult Acute beds in the period",
    "OAP03": "Number of Inappropriate OAPs active at the end of the period",
    "OAP03a": "Number of Inappropriate OAPs in Adult Acute beds active at the end of the period",
    "OAP04": "Number of Inappropriate OAPs ended in the period",
    "OAP04a": "Number of Inappropriate OAPs in Adult Acute beds ended in the period",
    "OAP05": "Rate of Inappropriate new OAPs started in the period per 1,000,000 of the population",
    "OAP05a": (
        "Rate of Inappropriate new OAPs in Adult Acute beds started in the period per 1,000,000 of the population"
    ),
    "OAP06": "Rate of Inappropriate OAPs active at the end of the period per 1,000,000 of the population",
    "OAP06a": (
        "Rate of Inappropriate OAPs in Adult Acute beds active at the end of the period per 1,000,000 of the population"
    ),
    "OAP07": "Rate of Inappropriate OAPs ended in the period per 1,000,000 of the population",
    "OAP07a": "Rate of Inappropriate OAPs in Adult Acute beds ended in the period per 1,000,000 of the population",
    "OAP08": "Proportion of Inappropriate new OAPs started in the period",
    "OAP08a": "Proportion of Inappropriate new OAPs in Adult Acute beds started in the period",
    "OAP09": "Proportion of Inappropriate OAPs bed days in the period",
    "OAP09a": "Proportion of Inappropriate OAPs bed days in Adult Acute beds in the period",
    "OAP10": "Proportion of Inappropriate OAPs active at the end of the period",
    "OAP10a": "Proportion of Inappropriate OAPs in Adult Acute beds active at the end of the period",
    "OAP11": "Proportion of Inappropriate OAPs ended in the period",
    "OAP11a": "Proportion of Inappropriate OAPs in Adult Acute beds ended in the period",
}
KNOWN_MEASURES: tuple[str, ...] = tuple(MEASURE_NAMES)
#: Counts (``"suppression": "count"``): whole numbers; outside England ``*`` below 5, else rounded to 5.
COUNT_MEASURES: tuple[str, ...] = tuple(f"OAP{i:02d}{suffix}" for i in range(1, 5) for suffix in ("", "a"))
#: Rates per million of the population (numerators OAP01, OAP03, OAP04) and proportions (per cent of all
#: admissions, bed days, active and ended hospital spells); ``"suppression": "percent"``.
RATE_MEASURES: tuple[str, ...] = tuple(f"OAP{i:02d}{suffix}" for i in range(5, 8) for suffix in ("", "a"))
PROPORTION_MEASURES: tuple[str, ...] = tuple(f"OAP{i:02d}{suffix}" for i in range(8, 12) for suffix in ("", "a"))
#: Every OAP file carries these (each of OAP01–OAP04 has an England row in every period).
REQUIRED_MEASURES: tuple[str, ...] = ("OAP01", "OAP02", "OAP03", "OAP04")

# --------------------------------------------------------------------------------------------------------------
# Breakdowns (``breakdown_metadata.py``; CCG → Sub ICB and STP → ICB from July 2022)

ENGLAND = "England"
SENDING_PROVIDER = "Sending Provider"
RECEIVING_PROVIDER = "Receiving Provider"
IMD_DECILE = "England; IMD Decile"
#: The second part of the two-level breakdowns (``England; X`` at national level, ``<parent>; X`` below it).
DIMENSIONS: tuple[str, ...] = (
    "Age Band",
    "Autism Status",
    "Bed Type",
    "Ethnicity",
    "Gender",
    "IMD Decile",
    "LD Status",
    "Primary reason for referral",
    "Upper Ethnicity",
)
GEOGRAPHIES: tuple[str, ...] = (
    "Commissioning Region",
    "ICB of GP Practice or Residence",
    "Sub ICB of GP Practice or Residence",
    "STP of GP Practice or Residence",  # until June 2022
    "CCG of GP Practice or Residence",  # until June 2022
)
PROVIDERS: tuple[str, ...] = (SENDING_PROVIDER, RECEIVING_PROVIDER)
NATIONAL_BREAKDOWNS: tuple[str, ...] = (ENGLAND, *(f"{ENGLAND}; {d}" for d in DIMENSIONS))
KNOWN_BREAKDOWNS: frozenset[str] = frozenset(
    (
        *NATIONAL_BREAKDOWNS,
        *GEOGRAPHIES,
        *PROVIDERS,
        *(f"{parent}; {d}" for parent in (*GEOGRAPHIES, *PROVIDERS) for d in DIMENSIONS),
        *(f"{parent}; {RECEIVING_PROVIDER}" for parent in (*GEOGRAPHIES, SENDING_PROVIDER)),
    )
)
#: Every OAP file has these breakdowns (England and the senders in every period).
REQUIRED_BREAKDOWNS: tuple[str, ...] = (ENGLAND, SENDING_PROVIDER)
#: IMD deciles as PRIMARY_LEVEL (and its description) of ``England; IMD Decile`` (``imd_desc``).
IMD_DECILES: tuple[str, ...] = (
    "01 Most deprived",
    "02 More deprived",
    "03 More deprived",
    "04 More deprived",
    "05 More deprived",
    "06 Less deprived",
    "07 Less deprived",
    "08 Less deprived",
    "09 Less deprived",
    "10 Least deprived",
    UNKNOWN,
)


def is_national(breakdown: str) -> bool:
    """Whether the publisher leaves the breakdown unsuppressed and unrounded (``England``, ``England; …``)."""
    return breakdown == ENGLAND or breakdown.startswith(f"{ENGLAND}; ")


#: An organisation code as the publisher writes senders and receivers: 3 to 6 upper-case letters and digits (a
#: trust RV5, a site RV505, a GP practice A81001), or ``UNKNOWN``.
ORG_CODE = r"[A-Z0-9]{3,6}"

# --------------------------------------------------------------------------------------------------------------
# Periods

#: Months from REPORTING_PERIOD_START's month to REPORTING_PERIOD_END's month → period type (measure suffix M/Q/Y).
PERIOD_TYPES: dict[int, str] = {0: "month", 2: "rolling_quarter", 11: "rolling_12_months"}


def period_type(start: date, end: date) -> str | None:
    """``month``, ``rolling_quarter`` or ``rolling_12_months`` from a row's START and END (``None``: neither)."""
    if start.day != 1 or start > end:
        return None
    return PERIOD_TYPES.get((end.year - start.year) * 12 + end.month - start.month)


# --------------------------------------------------------------------------------------------------------------
# File names

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
#: Month tokens as names carry them: ``Apr``, ``Sept``, ``April``; longest first, so ``June`` is not ``Jun`` + ``e``.
_MONTH_OF = {
    **{m.lower(): i + 1 for i, m in enumerate(_MONTHS)},
    **{m.lower(): i + 1 for i, m in enumerate(_MONTH_NAMES)},
    "sept": 9,
}
_MONTH_TOKEN = "|".join(sorted(_MONTH_OF, key=len, reverse=True))
#: ``_v2``, `` v2``, ``-v2``, ``_Adhoc``: markers of a re-publication.
_MARKERS = r"(?P<markers>(?:[ _-]?(?:v\d+|Adhoc))*)"
#: The names the publisher uses (the extract's own, and variants its pages link: ``Prf``, ``Final__``, `` v3``,
#: ``Sept``, the long ``MHSDS Monthly Performance July 2025 Out of Area Placements``; see orchestration/pull.py).
_NAMES = (
    re.compile(
        r"^MHSDS(?: |_|\+|%20)Data_(?:(?P<family>OAPs?|[A-Za-z0-9]+)_)?(?P<mon>" + _MONTH_TOKEN + r")"
        r"(?P<status>Performance|Perf|Prf|Provisional|Prov|Final|Adhoc|Adho|P)_+(?P<year>\d{4})" + _MARKERS + "$",
        re.IGNORECASE,
    ),
    re.compile(
        r"^MHSDS Monthly:? (?P<status>Performance|Provisional|Final) (?P<mon>" + _MONTH_TOKEN + r") (?P<year>\d{4}) "
        r"Out of Area Placements" + _MARKERS + "$",
        re.IGNORECASE,
    ),
)
_TOKEN_STATUS = {
    "performance": "Performance",
    "perf": "Performance",
    "prf": "Performance",
    "provisional": "Provisional",
    "prov": "Provisional",
    "p": "Provisional",
    "final": "Final",
    "adho": "Adhoc",
    "adhoc": "Adhoc",
}
#: The measure family of the out-of-area placements file (``MHSDS Data_OAPs_…``).
FAMILY = "OAPs"
#: The family of the main monthly data file, whose name carries none (``MHSDS Data_AprPerf_2024.csv``: every
#: measure not published in a family file of its own, the length-of-stay measures among them).
MAIN = "Main"


@dataclass(frozen=True)
class PublicationName:
    """What a publisher's file name says: ``MHSDS Data_OAPs_AprPerf_2026_v2.zip`` → OAPs, April 2026, Performance,
    version 2. ``version`` is 1 without a ``_vN`` marker; ``adhoc`` is an ``_Adhoc`` marker."""

    family: str
    month: date
    status: str
    version: int = 1
    adhoc: bool = False

    @property
    def is_republication(self) -> bool:
        return self.version > 1 or self.adhoc

    @property
    def marker(self) -> str:
        return ("_Adhoc" if self.adhoc else "") + (f"_v{self.version}" if self.version > 1 else "")


def stem(name: str | Path) -> str:
    """A delivered file's name without ``.zip``/``.csv`` (and, for ``x.zip/x.csv``, the delivered zip's)."""
    text = str(name)
    if ".zip/" in text.lower():  # a zipped delivery as the raw layer names it: x.zip/x.csv
        text = text[: text.lower().index(".zip/") + len(".zip")]
    name = Path(text).name
    for suffix in (".zip", ".csv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def parse_file_name(name: str | Path) -> PublicationName | None:
    """The :class:`PublicationName` of a publisher's file name, or ``None`` when the name is not of that form."""
    for pattern in _NAMES:
        match = pattern.match(stem(name))
        if match:
            break
    else:
        return None
    groups = match.groupdict()
    family = groups.get("family") or (MAIN if "family" in groups else FAMILY)
    versions = [int(v) for v in re.findall(r"v(\d+)", match["markers"], flags=re.IGNORECASE)]
    return PublicationName(
        family=FAMILY if family.lower() in ("oap", "oaps") else family,
        month=date(int(match["year"]), _MONTH_OF[match["mon"].lower()], 1),
        status=_TOKEN_STATUS[match["status"].lower()],
        version=max(versions, default=1),
        adhoc="adhoc" in match["markers"].lower(),
    )


def file_name(
    month: date, status: str = "Performance", *, version: int = 1, suffix: str = ".csv", family: str = FAMILY
) -> str:
    """The publisher's name for ``month``'s ``status`` file: ``MHSDS Data_OAPs_AprPerf_2026.csv``; ``version`` 2 or
    more adds ``_v2``; ``suffix`` ``.zip`` names the zip it is published in. ``family`` :data:`MAIN` names the main
    monthly data file, which has no family token (``MHSDS Data_AprPerf_2026.csv``)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
    marker = f"_v{version}" if version > 1 else ""
    token = "" if family == MAIN else f"{family}_"
    return f"MHSDS Data_{token}{_MONTHS[month.month - 1]}{STATUS_TOKENS[status]}_{month.year}{marker}{suffix}"
