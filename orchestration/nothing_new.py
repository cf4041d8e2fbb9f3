"""Nothing new, nothing done (issue 14, item 2): `collab-benefits run` answers at once when nothing has changed.

A run that published everything (exit 0) leaves a record beside the serving database: what it read and what it
was built with. The next run compares before importing Dagster, dbt or Great Expectations; when everything is as
recorded it says so and stops, the serving database and reports untouched (they are what those inputs give).
Compared:

- every file under the sources folder, by SHA-256 (a file whose size, mtime and inode are those recorded keeps
  its recorded SHA-256, as the raw layer's file-hash cache does; anything else is hashed again);
- what the warehouse is built with: reference data (seeds/reference), the dbt project, the expectation suites, the
  orchestration code and pyproject.toml, by content;
- the settings that change a result: every ``COLLAB_*`` environment variable, and the month (the mart suites check
  periods against the current month);
- the serving database itself: the file the run published, not one replaced or removed since.

The record is removed when a run starts and written only when it ends with exit 0, so a run that failed or was
killed is always followed by a full one. ``--force`` runs everything regardless.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestration.hashing import file_sha256
from orchestration.resources import REPO_ROOT

RECORD_NAME = ".last_run.json"
RECORD_VERSION = 1

#: What a run is built with, relative to the repository; hashed by content (their generated folders left out).
BUILT_WITH = ("seeds/reference", "dbt_project", "expectations", "orchestration", "pyproject.toml")
_SKIPPED_PARTS = {"target", "logs", "dbt_packages", "__pycache__", ".user.yml"}


@dataclass(frozen=True)
class LastRun:
    run_at: str
    files: int
    serving_db: Path


#: A run that must hash at least this many bytes of files no earlier run recorded says so first (a first run over
#: 60 national months hashes 5.5 GB, about 9 s, before anything else shows).
ANNOUNCE_BYTES = 1_000_000_000


def _source_files(
    sources_dir: Path, known: dict[str, list], announce: Callable[[int, int], None] | None = None
) -> dict[str, list]:
    """{relative path: [size, mtime_ns, inode, sha256]} of every file under the sources folder. ``announce`` is
    told how many files and bytes must be hashed, when that is at least :data:`ANNOUNCE_BYTES`."""
    found: list[tuple[str, Path, list, str | None]] = []  # relative path, path, [size, mtime, inode], kept SHA
    for path in sorted(sources_dir.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(sources_dir).parts):
            continue
        stat = path.stat()
        relative = path.relative_to(sources_dir).as_posix()
        key = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        previous = known.get(relative)
        # a file unchanged since the record keeps its SHA-256; the others are hashed below
        found.append((relative, path, key, previous[3] if previous and previous[:3] == key else None))
    if announce is not None:
        size = sum(key[0] for _relative, _path, key, kept in found if kept is None)
        if size >= ANNOUNCE_BYTES:
            announce(sum(kept is None for *_rest, kept in found), size)
    # hashed once per process: the feed's gate asks for the same hash
    files = {relative: [*key, kept or file_sha256(path)] for relative, path, key, kept in found}
    return files


def built_with_fingerprint(root: Path = REPO_ROOT) -> str:
    """One SHA-256 over the contents of everything a run is built with."""
    digest = hashlib.sha256()
    for entry in BUILT_WITH:
        base = root / entry
        paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in paths:
            if _SKIPPED_PARTS.intersection(path.relative_to(root).parts) or path.suffix == ".pyc":
                continue
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def settings(now: datetime | None = None) -> dict[str, str]:
    """The settings a run's results depend on. Taken when the run starts: the pipeline itself sets some
    ``COLLAB_*`` variables for dbt while it runs (where the build database is), which are not the user's."""
    now = now or datetime.now(UTC)
    found = {name: value for name, value in sorted(os.environ.items()) if name.startswith("COLLAB_")}
    found["month"] = f"{now:%Y-%m}"
    return found


def _record_path(warehouse_dir: Path) -> Path:
    return warehouse_dir / RECORD_NAME


def forget(
    warehouse_dir: Path, sources_dir: Path | None = None, announce: Callable[[int, int], None] | None = None
) -> dict[str, list] | None:
    """A run is starting: until it ends with exit 0 there is no run to compare with.

    With ``sources_dir``, returns the files under it as the run starts (size, mtime, inode, SHA-256), for
    :func:`remember` to record: what the run is about to read, not what is there when it ends (a file replaced
    meanwhile then makes the next run a full one). A file whose size, mtime and inode are those of the record
    being removed keeps its SHA-256, the rule the comparison itself follows: hashing every file anew cost each
    update of 60 national months (5.5 GB of files) several seconds."""
    path = _record_path(warehouse_dir)
    files = None
    if sources_dir is not None:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            record = {}
        same = record.get("version") == RECORD_VERSION and record.get("sources_dir") == str(sources_dir.resolve())
        files = _source_files(sources_dir, (record.get("files") or {}) if same else {}, announce)
    path.unlink(missing_ok=True)
    return files


def _serving_stamp(serving_db: Path) -> list[int] | None:
    if not serving_db.is_file():
        return None
    stat = serving_db.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def remember(
    sources_dir: Path,
    warehouse_dir: Path,
    serving_db: Path,
    run_settings: dict[str, str],
    files: dict[str, list] | None = None,
) -> None:
    """The run published everything: write what it read (``files``, as :func:`forget` found them when it started;
    else the files as they are now), what it was built with and the settings it started with."""
    now = datetime.now(UTC)
    record = {
        "version": RECORD_VERSION,
        "run_at": now.strftime("%Y-%m-%d %H:%M UTC"),
        "sources_dir": str(sources_dir.resolve()),
        "files": _source_files(sources_dir, {}) if files is None else files,
        "built_with": built_with_fingerprint(),
        "settings": run_settings,
        "serving_db": str(serving_db.resolve()),
        "serving_stamp": _serving_stamp(serving_db),
    }
    path = _record_path(warehouse_dir)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(record, handle)
    os.replace(temporary, path)


def unchanged_since_last_run(
    sources_dir: Path,
    warehouse_dir: Path,
    *,
    now: datetime | None = None,
    announce: Callable[[int, int], None] | None = None,
) -> LastRun | None:
    """The last run, when nothing it depended on has changed since; None when anything has (or there was none).
    ``announce`` as for :func:`forget`: files the record does not know are hashed to compare them."""
    path = _record_path(warehouse_dir)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    now = now or datetime.now(UTC)
    serving_db = Path(record.get("serving_db", ""))
    if (
        record.get("version") != RECORD_VERSION
        or record.get("sources_dir") != str(sources_dir.resolve())
        or record.get("settings") != settings(now)
        or record.get("serving_stamp") is None
        or _serving_stamp(serving_db) != record["serving_stamp"]
        or record.get("built_with") != built_with_fingerprint()
    ):
        return None
    known = record.get("files") or {}
    current = _source_files(sources_dir, known, announce)
    if {name: entry[3] for name, entry in current.items()} != {name: entry[3] for name, entry in known.items()}:
        return None
    return LastRun(run_at=record["run_at"], files=len(current), serving_db=serving_db)
