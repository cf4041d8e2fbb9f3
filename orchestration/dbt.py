"""The dbt project as Dagster assets: every model, seed and test, with dbt sources keyed to the raw assets
(source ``rtt.full_extract`` ↔ asset ``["rtt", "full_extract"]``) so lineage runs from file to mart."""

import hashlib
import json
import os
import sys
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path

from dagster import AssetExecutionContext
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets
from packaging.version import Version

from orchestration.resources import DBT_PROJECT_DIR, WarehouseResource

# dbt is installed beside this Python (the project's .venv); make it findable even when .venv is not activated.
_VENV_BIN = str(Path(sys.executable).parent)
if _VENV_BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join([_VENV_BIN, os.environ.get("PATH", "")])


class WarehouseDbtResource(DbtCliResource):
    """dagster-dbt's CLI resource without two start-up costs that a monthly update pays on every build and that
    buy this project nothing (together about 4.5 s of a 40 s update, SPEC §12):

    - dbt's version comes from the installed dbt-core package instead of a ``dbt --version`` subprocess; the dbt
      it runs is the one installed beside this Python (see ``_VENV_BIN``), so the two cannot differ;
    - no in-process dbt adapter is opened: dagster-dbt uses it only for ``fetch_row_counts()`` and
      ``fetch_column_metadata()``, which these assets do not call (without an adapter dagster-dbt skips them).
    """

    @cached_property
    def _cli_version(self) -> Version:
        return Version(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):  # noqa: ARG002 - the signature dagster-dbt calls
        return None


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def _manifest_is_stale(project: DbtProject) -> bool:
    """True when a model, macro, seed or setting changed after the manifest was written."""
    manifest = project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    watched = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        watched.extend((DBT_PROJECT_DIR / folder).rglob("*"))
    watched.extend((DBT_PROJECT_DIR.parent / "seeds" / "reference").glob("*.csv"))
    return any(path.is_file() and path.stat().st_mtime > built for path in watched)


def prepare_manifest(project: DbtProject = dbt_project) -> Path:
    """Parse the project when its manifest is missing or older than its sources (``dbt parse``, a few seconds)."""
    if _manifest_is_stale(project):
        project.preparer.prepare(project)
    return project.manifest_path


prepare_manifest()


def macros_fingerprint(folder: Path = DBT_PROJECT_DIR / "macros") -> str:
    """SHA-256 of every macro file (name and bytes). The month-incremental models fold it into the version of each
    month they hold (macros/incremental_months.sql), so editing a shared macro rebuilds every month, as editing
    the model itself does; dbt's own checksum of a model does not cover the macros it calls."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*.sql")):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project)
def warehouse_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Seeds, staging, attribution and marts, built and tested in the build database (dbt tests block publish)."""
    # dbt reads the build database's path from its profile's env_var; the subprocess inherits os.environ.
    os.environ["COLLAB_BUILD_DB"] = str(warehouse.build_db_path)
    build = ["build", "--vars", json.dumps({"macros_fingerprint": macros_fingerprint()})]
    yield from dbt.cli(build, context=context, target_path=warehouse.dbt_target_path).stream()
