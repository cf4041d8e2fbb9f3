"""Superset's configuration for the warehouse's dashboards (read by Superset through SUPERSET_CONFIG_PATH).

Nothing secret lives here. The launcher (``orchestration/dashboards``) sets ``SUPERSET_HOME`` to a folder outside
git (``.superset/`` by default), where the metadata database and a SECRET_KEY generated on first start are kept;
``SUPERSET_SECRET_KEY`` in the environment takes precedence. An optional ``superset_config_local.py`` beside
this file (gitignored) can override anything for a local deployment.
"""

from __future__ import annotations

import os
from pathlib import Path

_HOME = Path(os.environ.get("SUPERSET_HOME") or Path(__file__).resolve().parent.parent / ".superset")


def _secret_key() -> str:
    if os.environ.get("SUPERSET_SECRET_KEY"):
        return os.environ["SUPERSET_SECRET_KEY"]
    key_file = _HOME / "secret_key.secret"
    if not key_file.exists():
        raise RuntimeError(
            f"No SECRET_KEY: set SUPERSET_SECRET_KEY or start Superset with `make dashboards`, which writes {key_file}"
        )
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DATA_DIR = str(_HOME)
SQLALCHEMY_DATABASE_URI = os.environ.get("SUPERSET_METADATA_DB_URI") or f"sqlite:///{_HOME / 'superset.db'}"

# Roles, users and row-level security rules are created through the REST API by the deployer.
FAB_ADD_SECURITY_API = True

# Query results are not cached: a new publication of the serving database shows at the next refresh.
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}

# Local use on 127.0.0.1 over plain HTTP.
SESSION_COOKIE_SECURE = False
WTF_CSRF_ENABLED = True

# Refuse SQLite connections made from the UI; the serving database itself is registered read-only, without
# external access and without DML by the deployer (SPEC §9).
PREVENT_UNSAFE_DB_CONNECTIONS = True

FEATURE_FLAGS = {
    # Every chart of a dashboard loads at once (the dashboards are small), also below the fold and in screenshots.
    "DASHBOARD_VIRTUALIZATION": False,
    "DASHBOARD_RBAC": False,
    "ALERT_REPORTS": False,
    "ENABLE_TEMPLATE_PROCESSING": False,
}

ROW_LIMIT = 50000
SUPERSET_WEBSERVER_TIMEOUT = 120

# A local override beside this file, never committed (gitignored): e.g. another metadata database.
_LOCAL = Path(__file__).resolve().parent / "superset_config_local.py"
if _LOCAL.exists():
    exec(compile(_LOCAL.read_text(), str(_LOCAL), "exec"))  # noqa: S102
