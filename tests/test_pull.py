"""Pulling publications from the publishers' pages, against a real local HTTP server that serves pages laid out as
the real ones are (tests/publisher_site.py says how) and misbehaves on purpose."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import quote

import duckdb
import pytest

from orchestration import cli, pull
from orchestration.pull import choose_files, oap_data_file, publication_month, pull_source, rtt_data_file
from orchestration.resources import PublishersResource
from orchestration.sources import rtt, rtt_layout
from tests.publisher_site import (
    AREA,
    MHSDS,
    OAP_HEADER,
    UPLOADS,
    FakePublisher,
    Reply,
    RttUpload,
    files_url,
    mhsds_index_page,
    mhsds_month_page,
    oap_zip,
    ods_zip,
    rtt_year_page,
    rtt_zip,
    running_publisher,
    serve_rtt,
    year_path,
)

FAST = {"timeout": 2.0, "retries": 2, "backoff": 0.01}
APR26, MAY26, MAR26, FEB26, JAN26 = (date(2026, m, 1) for m in (4, 5, 3, 2, 1))


@pytest.fixture
def publisher() -> Iterator[FakePublisher]:
    with running_publisher() as fake:
        yield fake


def landed(folder: Path) -> list[str]:
    """Every file in a landing folder (temporary files included: none may be left behind)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def data_files(folder: Path) -> list[str]:
    return [name for name in landed(folder) if not name.endswith(pull.SIDECAR_SUFFIX)]


def statuses(results: list[pull.PullResult]) -> list[tuple[str, str]]:
    return [(r.path.name, r.status) for r in results]


# --------------------------------------------------------------------------------------------------------------
# Link names as the publishers write them


@pytest.mark.parametrize(
    "name, month, revised",
    [
        ("Full-CSV-data-file-Apr26-ZIP-3M-Dc1i9U.zip", APR26, False),
        ("Full-CSV-data-file-Mar24-ZIP-3832K-revised.zip", date(2024, 3, 1), True),
        ("Full-CSV-data-file-Apr22-ZIP-3300K-57873-1.zip", date(2022, 4, 1), False),
        ("Full-CSV-data-file-May23-ZIP-3627K-revised.zip", date(2023, 5, 1), True),
        ("Full-CSV-data-file-Apr24-ZIP-3855K-11417.zip", date(2024, 4, 1), False),
        ("Full-CSV-data-file-ZIP-4M-revised-Jan26-x9Qz.zip", JAN26, True),  # the tokens in any order
        ("full-csv-data-file-jun25-zip-3m.ZIP", date(2025, 6, 1), False),
    ],
)
def test_rtt_full_csv_links_are_read_whatever_the_order_of_their_tokens(name, month, revised) -> None:
    url = f"https://www.england.nhs.uk{UPLOADS}/2026/06/{name}"
    found = rtt_data_file(url, "page")
    assert found is not None
    assert (found.month, found.edition == "revised", found.published_name) == (month, revised, name)
    assert found.landing_name == rtt_layout.file_name(month, revised=revised).replace(".csv", ".zip")
    assert found.uploaded == (2026, 6)


@pytest.mark.parametrize(
    "name",
    [
        "Commissioner-Apr26-XLSX-9M-ab12c.xlsx",
        "Incomplete-Provider-Apr26-XLSX-7M-x1y2.xlsx",
        "Incomplete-Commissioner-Apr26-CSV-1M.csv",
        "Commissioner-Apr26-CSV-3M-k2j3.csv",
        "RTT-Overview-Timeseries-Including-Estimates-Jul26-XLS-116K.xlsx",
        "Apr26-RTT-SPN-Publication-PDF-442K-61260.pdf",
        "Full-CSV-data-file-Apr26.pdf",
        "Full-CSV-data-file-ZIP-3M.zip",  # no month: not a month's file
        "rtt-data-2026-27",
    ],
)
def test_other_links_on_the_rtt_pages_are_not_data_files(name) -> None:
    assert rtt_data_file(f"https://www.england.nhs.uk{UPLOADS}/2026/06/{name}") is None


@pytest.mark.parametrize(
    "name, month, edition, version",
    [
        ("MHSDS Data_OAPs_AprPerf_2026.zip", APR26, "Performance", 1),
        ("MHSDS Data_OAPs_MarPerf_2026_v2.zip", MAR26, "Performance", 2),
        ("MHSDS Data_OAPs_MayProv_2023.zip", date(2023, 5, 1), "Provisional", 1),
        ("MHSDS Data_OAPs_AprFinal__2025.zip", date(2025, 4, 1), "Final", 1),
        ("MHSDS Data_OAPs_JunPrf_2024 v3.csv", date(2024, 6, 1), "Performance", 3),
        ("MHSDS Data_OAPs_SeptPerf_2025.zip", date(2025, 9, 1), "Performance", 1),
        ("MHSDS Monthly Performance July 2025 Out of Area Placements.zip", date(2025, 7, 1), "Performance", 1),
    ],
)
def test_mhsds_out_of_area_placements_links(name, month, edition, version) -> None:
    found = oap_data_file(f"https://files.digital.nhs.uk/7A/1B2C3D/{quote(name)}")
    assert found is not None
    assert (found.month, found.edition, found.version) == (month, edition, version)
    assert found.published_name == found.landing_name == name


@pytest.mark.parametrize(
    "name",
    [
        "MHSDS Data_AprPerf_2026.zip",
        "MHSDS Data_Rstr_Apr2026_Prf.zip",
        "MHSDS Data_4WW_AprPerf_2026.zip",
        "MHSDS OAPs_Time_Series_Apr_2023_Apr_2026_Perf.zip",
        "MHSDS Time_Series_data_Apr_2016_Apr_2026_Perf v2.zip",
        "DQ_coverage_AprPerf_2026.zip",
        "MHSDS Monthly Performance July 2025 Restrictive Interventions.zip",
        "MHSDS Data_OAPs_AprPerf_2026.pdf",
        "Pre-Release Access List.pdf",
    ],
)
def test_other_mhsds_files_are_not_the_out_of_area_placements_file(name) -> None:
    assert oap_data_file(f"https://files.digital.nhs.uk/7A/1B2C3D/{quote(name)}") is None


@pytest.mark.parametrize(
    "slug, month",
    [
        ("performance-april-2026", APR26),
        ("performance-march-provisional-april-2023", date(2023, 3, 1)),
        ("performance-december-provisional-january-2023", date(2022, 12, 1)),
        ("final-february-provisional-march-2019", date(2019, 2, 1)),
        ("upcoming", None),
        ("latest", None),
    ],
)
def test_the_month_of_an_mhsds_publication_page(slug, month) -> None:
    assert publication_month(slug) == month


def test_of_two_uploads_of_one_edition_the_later_wins() -> None:
    base = f"https://www.england.nhs.uk{UPLOADS}"
    first = rtt_data_file(f"{base}/2026/06/Full-CSV-data-file-Apr26-ZIP-3M-aaaaa.zip")
    again = rtt_data_file(f"{base}/2026/07/Full-CSV-data-file-Apr26-ZIP-3M-bbbbb.zip")
    may = rtt_data_file(f"{base}/2026/07/Full-CSV-data-file-May26-ZIP-3M-ccccc.zip")
    assert first and again and may
    assert choose_files([again, first, may], months=2) == [again, may]
    assert choose_files([again, first, may], months=1) == [may]


# --------------------------------------------------------------------------------------------------------------
# RTT: the area page, the year pages, the files


def rtt_site(fake: FakePublisher) -> tuple[str, list[RttUpload]]:
    """Two financial years and an older one; April's revision beside its original, in a later upload folder."""
    uploads = [
        RttUpload(MAY26, (2026, 7), "Qm81xT"),
        RttUpload(APR26, (2026, 6), "Dc1i9U"),
        RttUpload(APR26, (2026, 7), "", revised=True),
        RttUpload(MAR26, (2026, 5), "9j03fJT"),
        RttUpload(FEB26, (2026, 4), "57873-1", size="ZIP-3611K"),
        RttUpload(JAN26, (2026, 3), "Lk2"),
        RttUpload(date(2025, 3, 1), (2025, 5), "old"),
    ]
    return serve_rtt(fake, uploads), uploads


def test_rtt_pull_follows_the_area_page_to_the_year_pages_and_lands_names_the_loader_reads(publisher, tmp_path):
    area, uploads = rtt_site(publisher)
    results = pull_source("rtt", tmp_path, index_url=area, months=4, **FAST)

    names = {month: rtt_layout.file_name(month).replace(".csv", ".zip") for month in (FEB26, MAR26, APR26, MAY26)}
    april_revised = rtt_layout.file_name(APR26, revised=True).replace(".csv", ".zip")
    assert statuses(results) == [
        (names[FEB26], "downloaded"),
        (names[MAR26], "downloaded"),
        (names[APR26], "downloaded"),
        (april_revised, "downloaded"),
        (names[MAY26], "downloaded"),
    ], [r.message for r in results]
    assert names[APR26] == "20260430-RTT-April-2026-full-extract.zip"
    folder = tmp_path / "rtt"
    assert data_files(folder) == sorted([*names.values(), april_revised])
    assert landed(folder) == sorted(data_files(folder) + [n + ".source.json" for n in data_files(folder)])
    assert results[0].message.startswith("RTT February 2026: downloaded")
    assert results[3].message.startswith("RTT April 2026 (revised): downloaded")

    # the newest four months were found on the two newest year pages: the 2024-25 page was not read
    assert publisher.hits(year_path(2026)) and publisher.hits(year_path(2025))
    assert not publisher.hits(year_path(2024))
    assert not [path for path in publisher.paths() if path.endswith((".pdf", ".xlsx", ".csv"))]

    # the sidecar keeps where the file came from and what it was called
    april = next(u for u in uploads if u.month == APR26 and not u.revised)
    recorded = json.loads((folder / (names[APR26] + ".source.json")).read_text())
    assert recorded["url"] == publisher.root + april.path
    assert recorded["page"] == publisher.root + year_path(2026)
    assert recorded["published_name"] == "Full-CSV-data-file-Apr26-ZIP-3M-Dc1i9U.zip"
    assert recorded["etag"] == april.etag and recorded["month"] == "2026-04-01" and recorded["edition"] == "original"
    assert recorded["sha256"] == hashlib.sha256((folder / names[APR26]).read_bytes()).hexdigest()
    assert recorded["bytes"] == (folder / names[APR26]).stat().st_size and recorded["landed_by_run"] is None


def test_a_second_pull_asks_conditionally_and_downloads_nothing_again(publisher, tmp_path):
    area, _ = rtt_site(publisher)
    first = pull_source("rtt", tmp_path, index_url=area, months=2, **FAST)
    assert [r.status for r in first] == ["downloaded"] * 3
    stamps = {r.path: r.path.stat().st_mtime_ns for r in first}
    sidecars = {r.path: pull.sidecar_path(r.path).read_bytes() for r in first}

    second = pull_source("rtt", tmp_path, index_url=area, months=2, **FAST)
    assert [r.status for r in second] == ["not_modified"] * 3, [r.message for r in second]
    assert "unchanged since the last download (ETag" in second[0].message
    for result in second:
        sent = publisher.hits(result.url.removeprefix(publisher.root))[-1]
        assert sent["If-None-Match"] == json.loads(sidecars[result.path])["etag"]
        assert result.path.stat().st_mtime_ns == stamps[result.path]
        assert pull.sidecar_path(result.path).read_bytes() == sidecars[result.path]


def test_a_revision_published_later_lands_beside_its_original(publisher, tmp_path):
    april = RttUpload(APR26, (2026, 6), "Dc1i9U")
    area = serve_rtt(publisher, [april])
    assert statuses(pull_source("rtt", tmp_path, index_url=area, months=3, **FAST)) == [
        ("20260430-RTT-April-2026-full-extract.zip", "downloaded")
    ]
    revision = RttUpload(APR26, (2026, 8), "r3v", revised=True)
    serve_rtt(publisher, [april, revision])
    assert statuses(pull_source("rtt", tmp_path, index_url=area, months=3, **FAST)) == [
        ("20260430-RTT-April-2026-full-extract.zip", "not_modified"),
        ("20260430-RTT-April-2026-full-extract-revised.zip", "downloaded"),
    ]


def test_pulled_rtt_files_are_found_by_the_rtt_loader_and_load(publisher, tmp_path):
    area, _ = rtt_site(publisher)
    pull_source("rtt", tmp_path, index_url=area, months=2, **FAST)
    folder = tmp_path / "rtt"

    found = rtt.discover_rtt_files(folder)
    assert [path.name for path in found] == [
        "20260430-RTT-April-2026-full-extract.zip",
        "20260430-RTT-April-2026-full-extract-revised.zip",
        "20260531-RTT-May-2026-full-extract.zip",
    ]
    assert [rtt.month_in_file_name(path) for path in found] == [APR26, APR26, MAY26]
    assert [rtt.is_revision_name(path) for path in found] == [False, True, False]
    assert rtt.months_in_folder(folder) == [APR26, MAY26]

    con = duckdb.connect(str(tmp_path / "build.duckdb"))
    try:
        results = rtt.ingest_rtt_folder(con, folder, tmp_path / "quarantine", move_rejected=True)
    finally:
        con.close()
    assert [(r.file.split("/")[0], r.action) for r in results] == [
        ("20260430-RTT-April-2026-full-extract.zip", "loaded"),
        ("20260430-RTT-April-2026-full-extract-revised.zip", "replaced"),
        ("20260531-RTT-May-2026-full-extract.zip", "loaded"),
    ], [[str(v) for v in r.violations] for r in results]


def test_an_html_page_served_in_place_of_a_zip_is_refused_and_the_other_months_land(publisher, tmp_path):
    area, uploads = rtt_site(publisher)
    may = next(u for u in uploads if u.month == MAY26)
    publisher.route(may.path, Reply(body=b"<!DOCTYPE html><html>Sign in</html>", headers={"Content-Type": "text/html"}))
    results = pull_source("rtt", tmp_path, index_url=area, months=2, **FAST)
    assert statuses(results)[-1] == ("20260531-RTT-May-2026-full-extract.zip", "failed")
    message = results[-1].message
    assert message.startswith("RTT May 2026: the server returned an HTML page, not a data file (http://")
    assert f"linked from {publisher.root}{year_path(2026)}" in message and message.endswith(": not saved")
    assert data_files(tmp_path / "rtt") == [
        "20260430-RTT-April-2026-full-extract-revised.zip",
        "20260430-RTT-April-2026-full-extract.zip",
    ]


def test_an_area_page_without_year_pages_is_a_layout_error_naming_the_page(publisher, tmp_path):
    publisher.page(AREA, '<html><body><a href="/statistics/rtt/monthly-data/">RTT monthly data</a></body></html>')
    [result] = pull_source("rtt", tmp_path, index_url=publisher.root + AREA, **FAST)
    assert result.status == "failed" and result.page == publisher.root + AREA
    assert result.message.startswith(f"RTT: the page {publisher.root}{AREA} has no links to the financial-year pages")
    assert "rtt-data-2026-27" in result.message and "changed the page's layout" in result.message
    assert landed(tmp_path / "rtt") == []


def test_a_year_page_without_data_files_is_a_layout_error_but_a_new_empty_year_is_not(publisher, tmp_path):
    area = serve_rtt(publisher, [RttUpload(MAR26, (2026, 5), "abc")], years=[2026])
    publisher.page(year_path(2025), rtt_year_page(2025, []))  # last year's page lost its links
    results = pull_source("rtt", tmp_path, index_url=area, **FAST)
    assert [(r.status, r.page.removeprefix(publisher.root)) for r in results] == [
        ("not_published", year_path(2026)),
        ("failed", year_path(2025)),
    ]
    assert "links no Full CSV data file yet" in results[0].message
    assert "has no links to a Full CSV data file (expected links like" in results[1].message
    assert "Full-CSV-data-file-Apr26-ZIP-3M-<tag>.zip" in results[1].message


def test_the_window_limits_the_months(publisher, tmp_path):
    area, _ = rtt_site(publisher)
    results = pull_source("rtt", tmp_path, index_url=area, months=13, within=(FEB26, APR26), **FAST)
    assert [r.month for r in results] == [FEB26, MAR26]


# --------------------------------------------------------------------------------------------------------------
# Out-of-area placements: the publication index, the monthly pages, the files


def mhsds_site(fake: FakePublisher) -> str:
    other = [
        ("MHSDS Data_{m}Perf_2026.zip", "A1/B2C3D4"),
        ("MHSDS Data_Rstr_{m}2026_Prf.zip", "A2/B2C3D4"),
        ("MHSDS OAPs_Time_Series_Apr_2023_{m}_2026_Perf.zip", "A3/B2C3D4"),
        ("MHSDS Monthly Statistics {m} 2026 Metadata.xlsx", "A4/B2C3D4"),
        ("Pre-Release Access List.pdf", "A5/B2C3D4"),
    ]

    def page(month: date, oap_files: list[tuple[str, str]]) -> str:
        files = [(name.format(m=f"{month:%b}"), folder) for name, folder in other] + oap_files
        return mhsds_month_page(f"Performance {month:%B %Y}", files)

    slugs = [
        "performance-april-2026",
        "performance-march-2026",
        "performance-february-2026",
        "performance-january-2026",
    ]
    fake.page(MHSDS, mhsds_index_page(slugs))
    fake.page(f"{MHSDS}/performance-april-2026", page(APR26, [("MHSDS Data_OAPs_AprPerf_2026.zip", "4F/9A1B2C")]))
    fake.page(
        f"{MHSDS}/performance-march-2026",
        page(
            MAR26, [("MHSDS Data_OAPs_MarPerf_2026.zip", "3E/111111"), ("MHSDS Data_OAPs_MarPerf_2026_v2.zip", "3E/2")]
        ),
    )
    fake.page(
        f"{MHSDS}/performance-february-2026",
        page(FEB26, [("MHSDS Data_OAPs_FebPerf_2026.zip", "2D/0"), ("MHSDS Data_OAPs_FebFinal_2026.zip", "2D/1")]),
    )
    fake.page(f"{MHSDS}/performance-january-2026", page(JAN26, [("MHSDS Data_OAPs_JanPerf_2026.zip", "1C/0")]))
    for folder, name, month, status in [
        ("4F/9A1B2C", "MHSDS Data_OAPs_AprPerf_2026.zip", APR26, "Performance"),
        ("3E/111111", "MHSDS Data_OAPs_MarPerf_2026.zip", MAR26, "Performance"),
        ("3E/2", "MHSDS Data_OAPs_MarPerf_2026_v2.zip", MAR26, "Performance"),
        ("2D/0", "MHSDS Data_OAPs_FebPerf_2026.zip", FEB26, "Performance"),
        ("2D/1", "MHSDS Data_OAPs_FebFinal_2026.zip", FEB26, "Final"),
        ("1C/0", "MHSDS Data_OAPs_JanPerf_2026.zip", JAN26, "Performance"),
    ]:
        fake.route(files_url(name, folder), Reply(body=oap_zip(month, status), etag=f'"{folder}"'))
    return fake.root + MHSDS


def test_oap_pull_reads_the_publication_index_then_each_months_page(publisher, tmp_path):
    index = mhsds_site(publisher)
    results = pull_source("oap", tmp_path, index_url=index, months=3, **FAST)
    assert statuses(results) == [
        ("MHSDS Data_OAPs_FebPerf_2026.zip", "downloaded"),
        ("MHSDS Data_OAPs_FebFinal_2026.zip", "downloaded"),
        ("MHSDS Data_OAPs_MarPerf_2026_v2.zip", "downloaded"),
        ("MHSDS Data_OAPs_AprPerf_2026.zip", "downloaded"),
    ], [r.message for r in results]
    assert results[2].message.startswith("Out-of-area placements March 2026 (Performance v2): downloaded")
    assert not publisher.hits(f"{MHSDS}/performance-january-2026")  # three months were enough
    assert not publisher.hits(f"{MHSDS}/performance-april-2026/data-quality")
    downloaded = [path for path in publisher.paths() if path.endswith(".zip")]
    assert len(downloaded) == 4 and not [p for p in downloaded if "Rstr" in p or "Time_Series" in p]
    recorded = json.loads(pull.sidecar_path(results[-1].path).read_text())
    assert recorded["published_name"] == "MHSDS Data_OAPs_AprPerf_2026.zip"
    assert recorded["url"] == publisher.root + "/4F/9A1B2C/MHSDS%20Data_OAPs_AprPerf_2026.zip"
    assert recorded["page"] == f"{index}/performance-april-2026"
    with zipfile.ZipFile(results[-1].path) as archive:
        [member] = archive.namelist()
        assert archive.read(member).decode().splitlines()[0] == OAP_HEADER

    again = pull_source("oap", tmp_path, index_url=index, months=3, **FAST)
    assert [r.status for r in again] == ["not_modified"] * 4


def test_a_mirror_of_the_mhsds_index_elsewhere_still_leads_to_the_monthly_pages(publisher, tmp_path):
    mhsds_site(publisher)
    # the index saved verbatim under another path, its links absolute to where the pages are served
    publisher.page(
        "/mirror/mhsds.html",
        mhsds_index_page(["performance-april-2026", "performance-march-2026"]).replace(
            f'href="{MHSDS}', f'href="{publisher.root}{MHSDS}'
        ),
    )
    results = pull_source("oap", tmp_path, index_url=publisher.root + "/mirror/mhsds.html", months=1, **FAST)
    assert statuses(results) == [("MHSDS Data_OAPs_AprPerf_2026.zip", "downloaded")]


def test_an_mhsds_index_without_monthly_pages_is_a_layout_error(publisher, tmp_path):
    publisher.page(
        MHSDS,
        f'<html><a href="{MHSDS}/upcoming">Upcoming</a><a href="/search?q=mhsds">Search</a>'
        '<a href="/news/april-2026-update">News, April 2026</a></html>',
    )
    [result] = pull_source("oap", tmp_path, index_url=publisher.root + MHSDS, **FAST)
    assert result.status == "failed"
    assert f"the page {publisher.root}{MHSDS} has no links to the monthly publication pages" in result.message
    assert "performance-april-2026" in result.message


def test_the_newest_mhsds_page_without_an_oap_file_is_a_layout_error_naming_it(publisher, tmp_path):
    index = mhsds_site(publisher)
    publisher.page(
        f"{MHSDS}/performance-april-2026",
        mhsds_month_page("Performance April 2026", [("MHSDS Data_AprPerf_2026.zip", "4F/0"), ("Notes.pdf", "4F/1")]),
    )
    results = pull_source("oap", tmp_path, index_url=index, months=2, **FAST)
    failed = [r for r in results if r.status == "failed"]
    assert len(failed) == 1 and failed[0].page == f"{index}/performance-april-2026"
    assert "has no link to an out-of-area placements data file" in failed[0].message
    assert "'MHSDS Data_OAPs_AprPerf_2026.zip'" in failed[0].message
    assert [r.month for r in results if r.status == "downloaded"] == [FEB26, FEB26, MAR26]


# --------------------------------------------------------------------------------------------------------------
# ODS


def test_ods_files_from_their_stable_addresses_or_from_a_page(publisher, tmp_path):
    for name in ("etr", "succ"):
        publisher.route(f"/assets/ods/current/{name}.zip", Reply(body=ods_zip(name), etag=f'"{name}1"'))
    publishers = PublishersResource(ods_files_url=publisher.root + "/assets/ods/current/")
    results = pull_source("ods", tmp_path, publishers=publishers, **FAST)
    assert statuses(results) == [("etr.zip", "downloaded"), ("succ.zip", "downloaded")]
    assert results[0].message.startswith("ODS etr.zip: downloaded")

    publisher.page(
        "/ods/downloads",
        '<html><a href="/assets/ods/current/etr.zip">NHS Trusts (etr.zip)</a> <a href="/docs/etr.pdf">fields</a>'
        '<a href="/assets/ods/current/succ.zip">Successor organisations</a></html>',
    )
    again = pull_source("ods", tmp_path, publishers=publishers, index_url=publisher.root + "/ods/downloads", **FAST)
    assert statuses(again) == [("etr.zip", "not_modified"), ("succ.zip", "not_modified")]

    publisher.page("/ods/downloads", '<html><a href="/assets/ods/current/etr.zip">NHS Trusts</a></html>')
    moved = pull_source("ods", tmp_path, publishers=publishers, index_url=publisher.root + "/ods/downloads", **FAST)
    assert moved[0].status == "failed" and "has no link to succ.zip" in moved[0].message
    assert statuses(moved[1:]) == [("etr.zip", "not_modified")]


# --------------------------------------------------------------------------------------------------------------
# What a download guarantees (one RTT month on a minimal site)


ONE = RttUpload(APR26, (2026, 6), "Dc1i9U")
ONE_NAME = "20260430-RTT-April-2026-full-extract.zip"


def one_file(fake: FakePublisher, *replies: Reply) -> str:
    area = serve_rtt(fake, [ONE])
    if replies:
        fake.route(ONE.path, *replies)
    return area


def pull_one(tmp_path: Path, area: str, **kw) -> pull.PullResult:
    results = pull_source("rtt", tmp_path, index_url=area, months=1, **{**FAST, **kw})
    assert len(results) == 1, [r.message for r in results]
    return results[0]


def test_not_modified_by_last_modified(publisher, tmp_path):
    stamp = "Tue, 09 Jun 2026 09:30:00 GMT"
    area = one_file(publisher, Reply(body=rtt_zip(APR26), last_modified=stamp))
    assert pull_one(tmp_path, area).status == "downloaded"
    again = pull_one(tmp_path, area)
    assert again.status == "not_modified" and "Last-Modified" in again.message
    assert publisher.hits(ONE.path)[-1]["If-Modified-Since"] == stamp


def test_validators_not_sent_when_the_local_file_has_gone(publisher, tmp_path):
    area = one_file(publisher)
    pull_one(tmp_path, area).path.unlink()
    assert pull_one(tmp_path, area).status == "downloaded"
    assert "If-None-Match" not in publisher.hits(ONE.path)[-1]


def test_the_same_bytes_sent_again_are_not_rewritten(publisher, tmp_path):
    area = one_file(publisher, Reply(body=rtt_zip(APR26)))  # a server without validators
    first = pull_one(tmp_path, area)
    stamp = first.path.stat().st_mtime_ns
    again = pull_one(tmp_path, area)
    assert again.status == "not_modified" and "sent again with the same content" in again.message
    assert again.path.stat().st_mtime_ns == stamp


def test_republished_with_a_new_etag_or_at_a_new_address_is_downloaded_again(publisher, tmp_path):
    area = one_file(publisher, Reply(body=rtt_zip(APR26), etag='"v1"'))
    pull_one(tmp_path, area)
    publisher.route(ONE.path, Reply(body=rtt_zip(APR26, bump=1), etag='"v2"'))
    result = pull_one(tmp_path, area)
    assert result.status == "downloaded" and "republished: replaces the earlier download" in result.message
    assert publisher.hits(ONE.path)[-1]["If-None-Match"] == '"v1"'

    moved = RttUpload(APR26, (2026, 7), "n3w")  # re-uploaded under a new random suffix
    serve_rtt(publisher, [moved])
    publisher.route(moved.path, Reply(body=rtt_zip(APR26, bump=2), etag='"v3"'))
    result = pull_one(tmp_path, area)
    assert result.status == "downloaded" and "republished at a new address" in result.message
    assert "If-None-Match" not in publisher.hits(moved.path)[-1]


def test_server_error_then_success_is_retried(publisher, tmp_path):
    area = one_file(publisher, Reply(500, b"oops", {"Content-Type": "text/plain"}), Reply(body=rtt_zip(APR26)))
    assert pull_one(tmp_path, area).status == "downloaded"
    assert len(publisher.hits(ONE.path)) == 2


def test_persistent_server_error_fails_with_a_clear_message(publisher, tmp_path):
    area = one_file(publisher, Reply(503, b"down", {"Content-Type": "text/plain", "Retry-After": "0"}))
    result = pull_one(tmp_path, area, retries=2)
    assert result.status == "failed"
    assert result.message.startswith("RTT April 2026: the server returned HTTP 503")
    assert "after 3 attempts" in result.message and "not saved" in result.message
    assert len(publisher.hits(ONE.path)) == 3
    assert landed(tmp_path / "rtt") == []


def test_slow_server_beyond_the_read_timeout_fails_naming_the_timeout(publisher, tmp_path):
    area = one_file(publisher, Reply(body=rtt_zip(APR26), delay=2.0))
    started = time.monotonic()
    result = pull_one(tmp_path, area, timeout=0.3, retries=1)
    assert time.monotonic() - started < 1.9
    assert result.status == "failed"
    assert "read timeout of 0.3 s" in result.message and "after 2 attempts" in result.message
    assert landed(tmp_path / "rtt") == []


def test_truncated_zip_fails_and_nothing_is_saved(publisher, tmp_path):
    body = rtt_zip(APR26)
    area = one_file(publisher, Reply(body=body[: len(body) // 2]))
    result = pull_one(tmp_path, area)
    assert result.status == "failed" and "truncated or corrupt zip" in result.message
    assert landed(tmp_path / "rtt") == []


def test_zip_without_exactly_one_csv_fails(publisher, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", "x\n1\n")
        archive.writestr("b.csv", "x\n2\n")
    area = one_file(publisher, Reply(body=buffer.getvalue()))
    result = pull_one(tmp_path, area)
    assert result.status == "failed" and "exactly one .csv" in result.message
    assert landed(tmp_path / "rtt") == []


@pytest.mark.parametrize(
    "headers, body",
    [
        ({"Content-Type": "text/html; charset=utf-8"}, b"<html><body>Sorry</body></html>"),
        ({"Content-Type": "application/octet-stream"}, b"\n  <!DOCTYPE html>\n<html><body>Maintenance</body></html>"),
    ],
    ids=["content-type", "sniffed"],
)
def test_html_page_served_with_200_fails(publisher, tmp_path, headers, body):
    area = one_file(publisher, Reply(body=body, headers=headers))
    result = pull_one(tmp_path, area)
    assert result.status == "failed"
    assert result.message.startswith("RTT April 2026: the server returned an HTML page, not a data file (http://")
    assert landed(tmp_path / "rtt") == []


def test_content_length_larger_than_body_fails(publisher, tmp_path):
    body = rtt_zip(APR26)
    area = one_file(publisher, Reply(body=body, length=len(body) + 500))
    result = pull_one(tmp_path, area, retries=1)
    assert result.status == "failed"
    assert "truncated download" in result.message and f"{len(body) + 500}" in result.message
    assert landed(tmp_path / "rtt") == []


def test_failed_download_keeps_the_previous_good_file(publisher, tmp_path):
    good = rtt_zip(APR26)
    area = one_file(publisher, Reply(body=good, etag='"v1"'))
    pull_one(tmp_path, area)
    publisher.route(ONE.path, Reply(body=good[:40], etag='"v2"'))
    assert pull_one(tmp_path, area).status == "failed"
    assert (tmp_path / "rtt" / ONE_NAME).read_bytes() == good
    assert data_files(tmp_path / "rtt") == [ONE_NAME]


def test_a_linked_file_that_is_missing_fails_naming_the_page(publisher, tmp_path):
    area = one_file(publisher, Reply(404, b"gone", {"Content-Type": "text/plain"}))
    result = pull_one(tmp_path, area)
    assert result.status == "failed" and "HTTP 404" in result.message
    assert f"linked from {publisher.root}{year_path(2026)}" in result.message


def test_unreachable_publisher_fails_without_raising(tmp_path):
    [result] = pull_source("rtt", tmp_path, index_url="http://127.0.0.1:9/rtt/", timeout=0.5, retries=0)
    assert result.status == "failed"
    assert result.message.startswith("RTT: the page http://127.0.0.1:9/rtt/ could not be read: could not reach")
    assert "after 1 attempt" in result.message


def test_landed_by_run_is_only_true_while_the_file_is_as_the_run_left_it(publisher, tmp_path):
    area = one_file(publisher)
    result = pull_source("rtt", tmp_path, index_url=area, months=1, landed_by_run="run-1", **FAST)[0]
    assert pull.landed_by_run(result.path) == "run-1"
    result.path.write_bytes(result.path.read_bytes())  # replaced by hand: new mtime
    assert pull.landed_by_run(result.path) is None


# --------------------------------------------------------------------------------------------------------------
# The command


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(["pull", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_pull_from_a_mirror_of_the_rtt_area_page(publisher, tmp_path, capsys):
    area, _ = rtt_site(publisher)
    code, out, _ = run_cli(
        ["--sources-dir", str(tmp_path), "--source", "rtt", "--index-url", area, "--months", "1"], capsys
    )
    assert code == 0, out
    assert "rtt: downloaded: RTT May 2026: downloaded" in out
    assert "Pulled: 1 downloaded" in out and f"collab-benefits run --sources-dir {tmp_path}" in out
    assert data_files(tmp_path / "rtt") == ["20260531-RTT-May-2026-full-extract.zip"]


def test_cli_pull_exits_1_naming_a_page_whose_layout_changed(publisher, tmp_path, capsys, monkeypatch):
    publisher.page(AREA, "<html><body><p>We have moved our statistics.</p></body></html>")
    monkeypatch.setenv("COLLAB_PULL_INDEX_URL_RTT", publisher.root + AREA)
    code, out, err = run_cli(["--sources-dir", str(tmp_path), "--source", "rtt"], capsys)
    assert code == 1
    assert f"rtt: failed: RTT: the page {publisher.root}{AREA} has no links to the financial-year pages" in out
    assert "Some files or pages failed" in err


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["--index-url", "http://127.0.0.1:9/"], "exactly one --source"),
        (["--source", "rtt", "--source", "oap", "--index-url", "http://127.0.0.1:9/"], "exactly one --source"),
        (["--months", "0"], "--months must be at least 1"),
    ],
)
def test_cli_pull_usage_errors_exit_2(tmp_path, capsys, args, complaint):
    code, _, err = run_cli(["--sources-dir", str(tmp_path), *args], capsys)
    assert code == 2 and complaint in err


def test_publishers_default_to_the_real_pages_and_read_the_environment(monkeypatch):
    for name in ("RTT", "OAP", "ODS"):
        monkeypatch.delenv(f"COLLAB_PULL_INDEX_URL_{name}", raising=False)
    monkeypatch.delenv("COLLAB_PULL_MONTHS", raising=False)
    defaults = PublishersResource()
    assert (
        defaults.index_url("rtt") == "https://www.england.nhs.uk/statistics/statistical-work-areas/rtt-waiting-times/"
    )
    assert defaults.index_url("oap").endswith("/publications/statistical/mental-health-services-monthly-statistics")
    assert defaults.index_url("ods") is None and defaults.ods_files_url.endswith("/assets/ods/current")
    assert defaults.months == 13
    monkeypatch.setenv("COLLAB_PULL_INDEX_URL_OAP", "http://mirror.example/mhsds")
    monkeypatch.setenv("COLLAB_PULL_MONTHS", "4")
    assert (PublishersResource().index_url("oap"), PublishersResource().months) == ("http://mirror.example/mhsds", 4)
    monkeypatch.setenv("COLLAB_PULL_MONTHS", "many")
    with pytest.raises(ValueError, match="COLLAB_PULL_MONTHS must be a whole number, not 'many'"):
        PublishersResource()


def test_a_real_rtt_csv_header_is_what_the_test_files_carry() -> None:
    data = rtt_zip(APR26)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        [member] = archive.namelist()
        header = next(csv.reader(io.StringIO(archive.read(member).decode())))
    assert member == "20260430-RTT-April-2026-full-extract.csv"
    assert len(header) == 121 and tuple(header) == rtt_layout.LAYOUTS[105]
