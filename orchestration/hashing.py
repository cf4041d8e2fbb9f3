"""The SHA-256 of a delivered file, the identity idempotency and "nothing new" use, read once per process.

A run hashes each file it has not seen when it starts (:mod:`orchestration.nothing_new`, which records what the
run read) and the feed's gate needs the same hash to know whether the bytes are loaded already
(:mod:`orchestration.raw`). Both ask here, so a file is read for its hash once: a first build of 60 national months
is 5.5 GB of files. Light on imports: the "nothing new" answer comes before pandas, DuckDB or Dagster load.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

_CHUNK = 1 << 20


def file_sha256(path: Path | str) -> str:
    """SHA-256 of the file's bytes as delivered (the zip, for a zipped file), remembered within the process for the
    file as it is: its resolved path, size, modification time (nanoseconds) and inode, so a file rewritten in place
    or replaced by rename is read again."""
    stat = os.stat(path)
    return _remembered(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)


@lru_cache(maxsize=4096)
def _remembered(path: str, _size: int, _mtime_ns: int, _inode: int) -> str:
    return _digest(Path(path))


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
