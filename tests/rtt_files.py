"""Write small RTT files in NHS England's published layout, for tests that need figures worked out by hand."""

from __future__ import annotations

import csv
import io
import zipfile
from collections import defaultdict
from datetime import date
from pathlib import Path

from orchestration.sources.rtt_layout import (
    LAYOUTS,
    PART_TYPES,
    TOTAL_TREATMENT_FUNCTION,
    file_name,
    format_period,
    layout_for,
)


def rtt_row(provider: str, commissioner: str, part: str, function: str, bands: dict[int, int]) -> dict:
    """One published row: ``bands`` maps a band index (0 = 'Gt 00 To 01 Weeks') to its count."""
    return {"provider": provider, "commissioner": commissioner, "part": part, "function": function, "bands": bands}


def write_rtt_file(folder: Path, month: date, rows: list[dict], *, revised: bool = False, zipped: bool = True) -> Path:
    """Write ``rows`` plus their consistent C_999 totals as a real-layout file for ``month``."""
    layout = layout_for(month)
    header = LAYOUTS[layout]
    n_bands = layout
    totals: dict[tuple, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        for band, count in row["bands"].items():
            totals[(row["provider"], row["commissioner"], row["part"])][band] += count
    all_rows = list(rows) + [
        rtt_row(provider, commissioner, part, TOTAL_TREATMENT_FUNCTION, dict(bands))
        for (provider, commissioner, part), bands in totals.items()
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in all_rows:
        counts = [row["bands"].get(i, 0) for i in range(n_bands)]
        band_total = sum(counts)
        is_completed = row["part"] in ("Part_1A", "Part_1B")
        total = band_total if is_completed else None
        if row["part"] == "Part_3":
            counts = [0] * n_bands
        writer.writerow(
            [
                format_period(month),
                "Y63",
                "NHS ENGLAND NORTH EAST AND YORKSHIRE",
                row["provider"],
                f"TRUST {row['provider']}",
                "NONC" if row["commissioner"] == "NONC" else "QWO",
                "NON-ENGLISH COMMISSIONER" if row["commissioner"] == "NONC" else "NHS WEST YORKSHIRE ICB",
                row["commissioner"],
                f"COMMISSIONER {row['commissioner']}",
                row["part"],
                PART_TYPES[row["part"]],
                row["function"],
                "Total" if row["function"] == TOTAL_TREATMENT_FUNCTION else f"FUNCTION {row['function']}",
                *[count or "" for count in counts],
                "" if total is None else total,
                "0" if is_completed else "",
                band_total,
            ]
        )
    name = file_name(month, revised=revised)
    folder.mkdir(parents=True, exist_ok=True)
    data = buffer.getvalue().encode("utf-8")
    if not zipped:
        path = folder / name
        path.write_bytes(data)
        return path
    path = folder / name.replace(".csv", ".zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return path
