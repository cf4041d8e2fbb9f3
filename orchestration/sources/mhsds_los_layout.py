"""The length-of-stay measures of NHS England's MHSDS monthly data file, as facts.

Read off the publisher's own code, NHSDigital/mental-health-monthly-statistics (GitHub; commit 7b4d742):

* **Which file** (``menh_bbrb/notebooks/03_Extract/menh_bbrb_extract.sql``): the length-of-stay measures go into
  the *main* monthly data file (``MHSDS Data{_Mon}{Perf|Prov|Final}_{YYYY}``, every measure that is not OAP, 4WW
  (MRS) or a population, ``_bbrb`` being the piece this pipeline contributes), not into a family file of their
  own. Same 11-column long layout as every MHSDS data file (:mod:`orchestration.sources.oap_layout`: header,
  ``DD/MM/YYYY`` dates, STATUS, ``*``, one month and one STATUS per file). The extract drops rows whose value is
  0 (``MEASURE_VALUE != 0``), so a trust with no such discharges has no row rather than a ``0``.
* **Measures** (``menh_bbrb/notebooks/measure_metadata.py``, ``los_measure_ids``), all ``"freq": "Q"``: a
  **rolling quarter** (``get_qtr_startdate``: REPORTING_PERIOD_START two months before the month, END the month's
  last day), never a month, so they must not be set beside monthly figures. Source table ``spells``
  (``02_Specific_Prepare/01_los/los_prep.py``): hospital provider spells (MHS501) *discharged* in the quarter, the
  length of stay ``HOSP_LOS = DATEDIFF(DischDateHospProvSpell, StartDateHospProvSpell)`` in days, the bed type from
  the ward stay that ended at discharge (MHS502 ``MHAdmittedPatientClass`` 200/10 Adult Acute, 201/11 Older Adult
  Acute, 202/12 PICU), age at the end of the reporting period:

  - MHS140 / MHS140a / MHS140b: people (distinct Person_ID) discharged from **adult acute** beds aged **18–64**,
    their mean and median length of stay (days, ``ROUND(AVG(HOSP_LOS), 0)``);
  - MHS141 / a / b: the same for **older adult acute** beds, aged **65+**; MHS142 / a / b: all beds, aged **0–17**;
  - MHS100 / MHS101 (adult acute 18–64), MHS102 / MHS103 (older adult acute 65+), MHS104 / MHS105 (0–17): people
    discharged with a stay of **60+** / **90+** days; their ``b`` measures the proportion (per cent of MHS140, MHS141,
    MHS142) and ``a`` a rate per 100,000 of the population (England and sub-ICB only, no provider rows);
  - MHS156: **discharges** (distinct hospital spells) of people **18+** from adult acute, older adult acute and
    PICU beds; MHS156a: their **bed days** (``SUM(HOSP_LOS)``); MHS156b: their **mean length of stay** (days,
    MHS156a / MHS156 rounded to a whole day).
* **Monthly bed days** (``menh_analysis/notebooks/02_Aggregate/1.Main_monthly_agg/3.Provider/Inpatient
  measures.py``, names in ``01_Prepare/0.Insert_lookup_data.py``): MHS24 "Bed days in RP" (every hospital bed day
  of the month) and MHS25 "Bed days less leave in RP": **monthly** (START = the month's first day).
* **Breakdowns** (``breakdown_metadata.py``): ``England`` (PRIMARY_LEVEL ``England``) and ``Provider``
  (PRIMARY_LEVEL the provider's ODS code ``OrgIDProv``, description its name), SECONDARY_LEVEL ``NONE``; also
  sub-ICB, ICB and region of GP practice or residence, which this feed counts but does not load.
* **Suppression** (``mhsds_functions.py`` ``count_suppression``, ``mhsds_suppression``): England is published
  exactly (``unsup_breakdowns``). Below England a count (``"suppression": "count"``: MHS140, MHS156, MHS156a …) is
  ``*`` below 5, else rounded to the nearest 5; a mean, median or proportion (``"percent"``) is ``*`` when its
  numerator count (``numerator_id``: MHS140 for MHS140a/b, MHS156a for MHS156b) is, else rounded to a whole number.
"""

from __future__ import annotations

from orchestration.sources.oap_layout import ENGLAND

PROVIDER = "Provider"
#: The breakdowns this feed loads; every other breakdown of the main file is counted, not loaded.
TAKEN_BREAKDOWNS: tuple[str, ...] = (ENGLAND, PROVIDER)

#: MEASURE_ID → MEASURE_NAME exactly as ``measure_metadata.py`` (and ``0.Insert_lookup_data.py``) write them,
#: including the publisher's own "adult acute beds aged 65 and over" in MHS141a/b.
MEASURE_NAMES: dict[str, str] = {
    "MHS140": "The number of people discharged in the RP from adult acute beds aged 18 to 64",
    "MHS140a": "The mean length of stay in days of people discharged in the RP from adult acute beds aged 18 to 64",
    "MHS140b": "The median length of stay in days of people discharged in the RP from adult acute beds aged 18 to 64",
    "MHS141": "The number of people discharged in the RP from older adult acute beds aged 65 and over",
    "MHS141a": "The mean length of stay in days of people discharged in the RP from adult acute beds aged 65 and over",
    "MHS141b": (
        "The median length of stay in days of people discharged in the RP from adult acute beds aged 65 and over"
    ),
    "MHS142": "The number of people discharged in the RP aged 0 to 17",
    "MHS142a": "The mean length of stay in days of people discharged in the RP aged 0 to 17",
    "MHS142b": "The median length of stay in days of people discharged in the RP aged 0 to 17",
    "MHS100": (
        "The number of people discharged in the RP from adult acute beds aged 18 to 64 with a length of stay "
        "of 60+ days"
    ),
    "MHS100b": (
        "Proportion of people discharged in the RP from adult acute beds aged 18 to 64 with a length of stay "
        "of 60+ days"
    ),
    "MHS101": (
        "The number of people discharged in the RP from adult acute beds aged 18 to 64 with a length of stay "
        "of 90+ days"
    ),
    "MHS101b": (
        "Proportion of people discharged in the RP from adult acute beds aged 18 to 64 with a length of stay "
        "of 90+ days"
    ),
    "MHS102": (
        "The number of people discharged in the RP from older adult acute beds aged 65 and over with a length of stay "
        "of 60+ days"
    ),
    "MHS102b": (
        "Proportion of people discharged in the RP from older adult acute beds aged 65 and over with a length of stay "
        "of 60+ days"
    ),
    "MHS103": (
        "The number of people discharged in the RP from older adult acute beds aged 65 and over with a length of stay "
        "of 90+ days"
    ),
    "MHS103b": (
        "Proportion of people discharged in the RP from older adult acute beds aged 65 and over with a length of stay "
        "of 90+ days"
    ),
    "MHS104": "The number of people discharged in the RP aged 0 to 17 with a length of stay of 60+ days",
    "MHS104b": "Proportion of people discharged in the RP aged 0 to 17 with a length of stay of 60+ days",
    "MHS105": "The number of people discharged in the RP aged 0 to 17 with a length of stay of 90+ days",
    "MHS105b": "Proportion of people discharged in the RP aged 0 to 17 with a length of stay of 90+ days",
    "MHS156": (
        "Number of discharges in the RP for people aged 18 and over from adult acute, older adult acute and PICU beds"
    ),
    "MHS156a": (
        "Total bed days for discharges in the RP for people aged 18 and over from adult acute, older adult acute and "
        "PICU beds"
    ),
    "MHS156b": (
        "Mean Length of stay for discharges in the RP for people aged 18 and over from adult acute, older adult acute "
        "and PICU beds"
    ),
    "MHS24": "Bed days in RP",
    "MHS25": "Bed days less leave in RP",
}
LOS_MEASURES: tuple[str, ...] = tuple(MEASURE_NAMES)
#: ``"suppression": "count"``: whole numbers; below England ``*`` under 5, else rounded to 5.
COUNT_MEASURES: tuple[str, ...] = (
    "MHS140",
    "MHS141",
    "MHS142",
    "MHS100",
    "MHS101",
    "MHS102",
    "MHS103",
    "MHS104",
    "MHS105",
    "MHS156",
    "MHS156a",
    "MHS24",
    "MHS25",
)
#: The period each measure is published for (``"freq"``): MHS24/MHS25 monthly, the rest rolling quarters.
MEASURE_PERIOD: dict[str, str] = {
    measure: ("month" if measure in ("MHS24", "MHS25") else "rolling_quarter") for measure in MEASURE_NAMES
}
#: The count whose suppression a mean, median or proportion follows (``numerator_id``).
NUMERATOR_OF: dict[str, str] = {
    "MHS140a": "MHS140",
    "MHS140b": "MHS140",
    "MHS141a": "MHS141",
    "MHS141b": "MHS141",
    "MHS142a": "MHS142",
    "MHS142b": "MHS142",
    "MHS100b": "MHS100",
    "MHS101b": "MHS101",
    "MHS102b": "MHS102",
    "MHS103b": "MHS103",
    "MHS104b": "MHS104",
    "MHS105b": "MHS105",
    "MHS156b": "MHS156a",
}
#: Every main file carries these England rows (the 18+ discharges, bed days and mean, each quarter).
REQUIRED_MEASURES: tuple[str, ...] = ("MHS156", "MHS156a", "MHS156b")

#: How each loaded measure reads in ``fct_los_published_month`` (measure, and the cohort it is of).
MART_MEASURES: dict[str, tuple[str, str]] = {
    "MHS156": ("discharges", "adult_acute_older_adult_picu_18plus"),
    "MHS156a": ("bed_days", "adult_acute_older_adult_picu_18plus"),
    "MHS156b": ("mean_los_days", "adult_acute_older_adult_picu_18plus"),
    "MHS140": ("people_discharged", "adult_acute_18_64"),
    "MHS140a": ("mean_los_days", "adult_acute_18_64"),
    "MHS140b": ("median_los_days", "adult_acute_18_64"),
    "MHS141": ("people_discharged", "older_adult_acute_65plus"),
    "MHS141a": ("mean_los_days", "older_adult_acute_65plus"),
    "MHS141b": ("median_los_days", "older_adult_acute_65plus"),
    "MHS142": ("people_discharged", "all_beds_0_17"),
    "MHS142a": ("mean_los_days", "all_beds_0_17"),
    "MHS142b": ("median_los_days", "all_beds_0_17"),
    "MHS100": ("people_discharged_los_60plus", "adult_acute_18_64"),
    "MHS100b": ("pct_discharged_los_60plus", "adult_acute_18_64"),
    "MHS101": ("people_discharged_los_90plus", "adult_acute_18_64"),
    "MHS101b": ("pct_discharged_los_90plus", "adult_acute_18_64"),
    "MHS102": ("people_discharged_los_60plus", "older_adult_acute_65plus"),
    "MHS102b": ("pct_discharged_los_60plus", "older_adult_acute_65plus"),
    "MHS103": ("people_discharged_los_90plus", "older_adult_acute_65plus"),
    "MHS103b": ("pct_discharged_los_90plus", "older_adult_acute_65plus"),
    "MHS104": ("people_discharged_los_60plus", "all_beds_0_17"),
    "MHS104b": ("pct_discharged_los_60plus", "all_beds_0_17"),
    "MHS105": ("people_discharged_los_90plus", "all_beds_0_17"),
    "MHS105b": ("pct_discharged_los_90plus", "all_beds_0_17"),
    "MHS24": ("occupied_bed_days", "all_beds_all_ages"),
    "MHS25": ("occupied_bed_days_less_leave", "all_beds_all_ages"),
}
