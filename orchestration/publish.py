"""Publishing: validated marts copied from the build database into the serving database, swapped atomically.

Superset and reports open ``serving.duckdb`` read-only. DuckDB allows one writer or many readers, so the
pipeline never writes that file in place: it writes a new file beside it, checkpoints and fsyncs it, and renames
it over the old one (``os.replace`` is atomic on POSIX). A reader holding the old file keeps reading the old
inode; a reader opening after the rename sees the new one; nobody sees half a publication. A run that fails or
is killed before the rename leaves the previous serving file exactly as it was.

The serving file is readable by its owner only (0600), as is the build database, which holds patient-level rows
(issue 17). When Superset runs as another user, name a group both are in with ``COLLAB_SERVING_GROUP``: the
serving file (only) then belongs to that group and is readable by it (0640); that user also needs to be able to
enter the warehouse folder.
"""

from __future__ import annotations

import grp
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

#: Schemas of the build database whose tables are served. Staging and intermediate models, the raw layer and
#: anything patient-level never leave the build database.
SERVED_SCHEMAS: tuple[str, ...] = ("marts",)


@dataclass(frozen=True)
class Publication:
    serving_path: Path
    tables: dict[str, int]
    published_at: datetime
    run_id: str


#: The group given read access to the serving file, for a Superset running as another user (see above).
SERVING_GROUP_ENV = "COLLAB_SERVING_GROUP"


def _serving_group() -> str | None:
    group = os.environ.get(SERVING_GROUP_ENV, "").strip() or None
    if group is not None:
        try:
            grp.getgrnam(group)
        except KeyError:
            raise RuntimeError(f"{SERVING_GROUP_ENV}={group!r}: no such group") from None
    return group


def make_private(path: Path, group: str | None = None) -> None:
    """Readable and writable by the owner only; with ``group``, that group may read it too."""
    if group is None:
        path.chmod(0o600)
    else:
        shutil.chown(path, group=group)
        path.chmod(0o640)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_serving_database(build_db: Path, serving_db: Path, run_id: str | None = None) -> Publication:
    """Copy every served table from ``build_db`` into a new file and swap it in as ``serving_db``."""
    run_id = run_id or uuid.uuid4().hex
    group = _serving_group()
    serving_db.parent.mkdir(parents=True, exist_ok=True)
    staging = serving_db.with_name(f".{serving_db.name}.{run_id}.publishing")
    # A run killed while publishing leaves its staging file (and maybe its WAL) behind, under its own run id. There
    # is one writer, so every staging file beside the serving database is such a leftover: remove them all.
    for leftover in serving_db.parent.glob(f".{serving_db.name}.*.publishing*"):
        leftover.unlink(missing_ok=True)
    published_at = datetime.now(UTC).replace(tzinfo=None)
    tables: dict[str, int] = {}
    try:
        con = duckdb.connect(str(staging))
        try:
            # Private from its first bytes (DuckDB creates it with the process's umask), before any row is copied.
            make_private(staging, group)
            make_private(build_db)
            con.execute(f"attach '{build_db}' as build (read_only)")
            served = con.execute(
                "select schema_name, table_name from duckdb_tables() "
                "where database_name = 'build' and list_contains(?, schema_name) order by table_name",
                [list(SERVED_SCHEMAS)],
            ).fetchall()
            if not served:
                raise RuntimeError(f"{build_db} holds no marts to publish: the dbt build has not run")
            for schema, table in served:
                con.execute(f'create table main."{table}" as select * from build."{schema}"."{table}"')
                tables[table] = con.execute(f'select count(*) from main."{table}"').fetchone()[0]
            con.execute(
                "create table main._publication as select ? as run_id, ? as published_at, ? as table_count",
                [run_id, published_at, len(tables)],
            )
            con.execute("detach build")
            con.execute("checkpoint")
        finally:
            con.close()
        _fsync(staging)
        make_private(staging, group)
        os.replace(staging, serving_db)
        _fsync(serving_db.parent)
    finally:
        staging.unlink(missing_ok=True)
        staging.with_name(staging.name + ".wal").unlink(missing_ok=True)
    return Publication(serving_path=serving_db, tables=tables, published_at=published_at, run_id=run_id)
