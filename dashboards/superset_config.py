"""Superset's configuration for the warehouse's dashboards (read by Superset through SUPERSET_CONFIG_PATH).

Nothing secret lives here. The launcher (``orchestration/dashboards``) sets ``SUPERSET_HOME`` to a folder outside
git (``.superset/`` by default, mode 0700), where the metadata database and a SECRET_KEY generated on first start
are kept; ``SUPERSET_SECRET_KEY`` in the environment takes precedence. An optional ``superset_config_local.py``
beside this file (gitignored) can override anything for a local deployment.

Every setting that guards data or secrets is pinned below, with why, even where it equals Superset 6.1.0's
default: a guard that holds only by default goes the day a default changes (issue 17). Each name was checked
against ``superset/config.py`` of 6.1.0 and Flask-AppBuilder 5.3; ``tests/test_dashboard_security.py`` reads the
effective configuration from Superset's own Python and asserts each pin.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from pathlib import Path

from flask_appbuilder.security.manager import AUTH_DB

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


def _derived_secret(purpose: str) -> str:
    """A secret for one purpose derived from SECRET_KEY, so that no JWT secret is Superset's published default."""
    return hmac.new(SECRET_KEY.encode(), purpose.encode(), hashlib.sha256).hexdigest()


SECRET_KEY = _secret_key()
DATA_DIR = str(_HOME)
SQLALCHEMY_DATABASE_URI = os.environ.get("SUPERSET_METADATA_DB_URI") or f"sqlite:///{_HOME / 'superset.db'}"

# Roles, users and row-level security rules are created through the REST API by the deployer (its endpoints are
# Admin's only: no other role is given a permission on them).
FAB_ADD_SECURITY_API = True

# Query results are not cached: a new publication of the serving database shows at the next refresh.
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}

FEATURE_FLAGS = {
    # Every chart of a dashboard loads at once (the dashboards are small), also below the fold and in screenshots.
    "DASHBOARD_VIRTUALIZATION": False,
    # Security. The row-level security rules sit on the virtual datasets, so a sub-query in a custom SQL metric,
    # column, filter or order-by would read the underlying marts unfiltered: sub-queries stay refused.
    "ALLOW_ADHOC_SUBQUERY": False,
    # Jinja in SQL ({{ ... }}) would let chart authors template SQL, e.g. around the RLS clause: off.
    "ENABLE_TEMPLATE_PROCESSING": False,
    # JavaScript in chart controls (deck.gl) runs in other users' browsers: off.
    "ENABLE_JAVASCRIPT_CONTROLS": False,
    # Superset's "meta database" (superset://) queries datasets across databases outside their RLS: off.
    "ENABLE_SUPERSET_META_DB": False,
    # Guest tokens (embedded dashboards) would be a second way in, with its own roles and RLS: off.
    "EMBEDDED_SUPERSET": False,
    # "Embed code" for charts: nothing here is meant to be shown in other sites' pages.
    "EMBEDDABLE_CHARTS": False,
    # Access is by dataset permission, not by a dashboard's roles: one model of who sees what.
    "DASHBOARD_RBAC": False,
    # No alerts, reports, thumbnails or screenshots: they would run queries as their owner and send the results
    # out of Superset (and need a worker and a browser we do not run).
    "ALERT_REPORTS": False,
    "THUMBNAILS": False,
    "ENABLE_DASHBOARD_SCREENSHOT_ENDPOINTS": False,
    "ENABLE_DASHBOARD_DOWNLOAD_WEBDRIVER_SCREENSHOT": False,
    # Plugins loaded from URLs at run time would be code from outside the repository.
    "DYNAMIC_PLUGINS": False,
    # A CSV download is bounded by the chart's row limit, as its table is.
    "ALLOW_FULL_CSV_EXPORT": False,
    # SQL Lab is Admin's, who sees every row; row-level security there would be meaningless.
    "RLS_IN_SQLLAB": False,
    # No SSH tunnels from database connections.
    "SSH_TUNNELING": False,
}

# Flask and Flask-AppBuilder ---------------------------------------------------------------------------------------
# Debug mode shows an interactive debugger (code execution) and stack traces; FLASK_DEBUG must not turn it on.
DEBUG = False
# Errors reach users as messages, never as Python stack traces (which show paths and code).
SHOW_STACKTRACE = False
# INFO, not DEBUG: debug logs hold request details.
LOG_LEVEL = logging.INFO
# No Swagger UI and no OpenAPI spec: a map of every endpoint is no help to users and some help to an adversary.
FAB_API_SWAGGER_UI = False
FAB_ADD_OPENAPI_VIEWS = False
# Users log in with a password in Superset's database; nobody registers themselves, and anonymous visitors get
# the Public role, which has no permissions (only /health, /login and static files answer them).
AUTH_TYPE = AUTH_DB
AUTH_USER_REGISTRATION = False
PUBLIC_ROLE_LIKE = None

# Sessions and CSRF. Local use on 127.0.0.1 over plain HTTP, hence SESSION_COOKIE_SECURE False: behind HTTPS, set it
# True in superset_config_local.py.
SESSION_COOKIE_HTTPONLY = True  # the session cookie is not readable by scripts in the page
SESSION_COOKIE_SECURE = False
SESSION_COOKIE_SAMESITE = "Lax"  # nor sent with another site's POSTs
WTF_CSRF_ENABLED = True  # forms and API calls with a session need the CSRF token
# Superset 6.1's own exemptions, listed so that any change to them shows here. Each still needs a logged-in user:
# chart data, explore_json and samples only read (under RLS), log records the page's own events, screenshots are
# off; and the session cookie's SameSite=Lax keeps another site's POST from carrying it.
WTF_CSRF_EXEMPT_LIST = [
    "superset.charts.data.api.data",
    "superset.dashboards.api.cache_dashboard_screenshot",
    "superset.views.core.explore_json",
    "superset.views.core.log",
    "superset.views.datasource.views.samples",
]

# Rate limiting (Flask-Limiter, counted in each worker's memory). Both logins, the form (POST /login/) and the API
# (/api/v1/security/login), take at most FAILED_LOGIN_RATE_LIMIT failed attempts for one user name from one
# address (FLASK_APP_MUTATOR below), then answer 429 until the minute is over. Every endpoint takes at most 200
# requests a second from one address (Superset's production default, 50, is reached by one client reading the API
# quickly, and everyone behind one proxy shares an address). AUTH_RATE_LIMITED is Flask-AppBuilder's own login
# limit: pinned on, but in 6.1 it is set on SupersetAuthView's blueprint, which only serves GET /login/ (the POST
# is AuthDBView's), hence the mutator.
RATELIMIT_ENABLED = True
RATELIMIT_STORAGE_URI = "memory://"
RATELIMIT_APPLICATION = "200 per second"
AUTH_RATE_LIMITED = True
AUTH_RATE_LIMIT = "20 per minute"
FAILED_LOGIN_RATE_LIMIT = "10 per minute"
# The client's address is the socket's: X-Forwarded-For from a client is not believed (it would dodge the limits).
ENABLE_PROXY_FIX = False

# Content Security Policy (Talisman): Superset 6.1's, without the third parties it allows (map tiles, Mapbox, the
# Scarf telemetry pixel, web fonts): these dashboards need none of them and the machine has no internet anyway.
TALISMAN_ENABLED = True
CONTENT_SECURITY_POLICY_WARNING = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'"],
        "script-src": ["'self'", "'strict-dynamic'"],
        "frame-ancestors": ["'self'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,  # plain HTTP on 127.0.0.1
    "session_cookie_secure": False,
    "frame_options": "SAMEORIGIN",
}
TALISMAN_DEV_CONFIG = TALISMAN_CONFIG  # DEBUG is off; should it ever be on, no looser policy either
# No cross-origin requests: no other site's scripts may read Superset's answers (6.1 enables CORS by default for
# map-tile servers).
ENABLE_CORS = False
CORS_OPTIONS: dict = {}
# Markdown and HTML in dashboards are sanitised.
HTML_SANITIZATION = True

# Databases and uploads -------------------------------------------------------------------------------------------
# Refuse SQLite and other unsafe connections made from the UI; the serving database itself is registered
# read-only, without external access and without DML by the deployer (SPEC §9).
PREVENT_UNSAFE_DB_CONNECTIONS = True
# No file uploads (CSV, Excel, columnar) into any database, whatever a database's own setting says.
ALLOWED_EXTENSIONS: set[str] = set()
# A dataset import may not fetch data from any URL (6.1 allows every URL).
DATASET_IMPORT_ALLOWED_DATA_URLS: list[str] = []
# JWT secrets for embedding and asynchronous queries, both off, are still not Superset's published defaults.
GUEST_TOKEN_JWT_SECRET = _derived_secret("guest-token")
GLOBAL_ASYNC_QUERIES_JWT_SECRET = _derived_secret("async-queries")

# DuckDB functions no query may call, in charts as in SQL Lab. Each reads the connection's settings, which hold
# the serving file's path (``allowed_paths``, ``temp_directory``) and the Superset user's home
# (``secret_directory``): ``current_setting('allowed_paths')`` in a chart's custom SQL column answered with the
# path. Superset 6.1 checks DISALLOWED_SQL_FUNCTIONS in SQL Lab only, so SQL_QUERY_MUTATOR (through which every
# query passes, charts' included) refuses them too. The table functions need a sub-query in a chart, refused
# anyway; they are listed for SQL Lab.
DUCKDB_DISALLOWED_FUNCTIONS = {
    "current_setting",
    "duckdb_settings",
    "duckdb_databases",
    "duckdb_secrets",
    "which_secret",
    "duckdb_extensions",
    "duckdb_temporary_files",
    "getenv",
}
DISALLOWED_SQL_FUNCTIONS = {"duckdb": DUCKDB_DISALLOWED_FUNCTIONS}


def SQL_QUERY_MUTATOR(sql: str, **kwargs):  # noqa: N802 (Superset's name)
    database = kwargs.get("database")
    if database is not None and database.db_engine_spec.engine == "duckdb":
        from superset.errors import ErrorLevel, SupersetError, SupersetErrorType
        from superset.exceptions import SupersetSecurityException
        from superset.sql.parse import SQLScript

        if SQLScript(sql, "duckdb").check_functions_present(DUCKDB_DISALLOWED_FUNCTIONS):
            raise SupersetSecurityException(
                SupersetError(
                    error_type=SupersetErrorType.QUERY_SECURITY_ACCESS_ERROR,
                    message="This query calls a function that reads the database's settings, which is not allowed.",
                    level=ErrorLevel.ERROR,
                )
            )
    return sql


ROW_LIMIT = 50000
SUPERSET_WEBSERVER_TIMEOUT = 120


def _limit_failed_logins(app) -> None:
    """At most FAILED_LOGIN_RATE_LIMIT failed logins per user name and address, on the form and on the API (whose
    login Flask-AppBuilder does not limit). Only failures count, per user name: someone guessing one account's
    password is stopped, and the other users at that address can still log in."""
    from flask import request
    from flask_limiter.util import get_remote_address

    def key() -> str:
        body = request.get_json(silent=True) if request.is_json else None
        username = (body or {}).get("username") if isinstance(body, dict) else request.form.get("username")
        return f"login:{get_remote_address()}:{str(username or '').strip().lower()}"

    def failed(response) -> bool:
        # The API answers 401; the form redirects back to /login/ (and succeeds with a redirect elsewhere).
        if response.status_code in (400, 401, 403):
            return True
        return response.status_code in (302, 303) and "/login" in (response.headers.get("Location") or "")

    limiter = app.appbuilder.sm.limiter
    for endpoint in ("SecurityApi.login", "AuthDBView.login"):
        view = app.view_functions.get(endpoint)
        if view is None:
            raise RuntimeError(f"no {endpoint} to rate-limit: has Flask-AppBuilder renamed it?")
        # Flask-Limiter checks a decorated limit in the wrapper it returns, so the wrapper replaces the view.
        app.view_functions[endpoint] = limiter.limit(
            app.config["FAILED_LOGIN_RATE_LIMIT"], key_func=key, methods=["POST"], deduct_when=failed
        )(view)


def _guard_chart_writes() -> None:
    """Who may save a chart, and on what. Superset 6.1 lets anyone with ``can_write`` on Chart (a PMO, to save its
    own charts) (a) overwrite the saved query of any chart it can see, the dashboards' included, because an update
    of only ``query_context`` skips the ownership check (meant for report workers, which are off here), and
    (b) create or repoint a chart on a dataset it may not read (no row comes back, but the chart then sits in the
    lists of those who may). Both are refused: every chart update needs ownership, and every dataset a chart names
    (its ``datasource_id``, its query context's, its params') must be one the user may read."""
    from marshmallow import ValidationError
    from superset import security_manager
    from superset.commands.chart import create, update
    from superset.commands.chart.exceptions import ChartInvalidError
    from superset.commands.utils import get_datasource_by_id
    from superset.utils import json

    def referenced(properties: dict) -> set[tuple[int, str]]:
        found = set()
        if properties.get("datasource_id") is not None:
            found.add((int(properties["datasource_id"]), properties.get("datasource_type") or "table"))
        for key in ("query_context", "params"):
            try:
                document = json.loads(properties.get(key) or "{}")
            except (TypeError, ValueError):
                continue
            datasource = document.get("datasource") if isinstance(document, dict) else None
            if isinstance(datasource, dict) and str(datasource.get("id", "")).isdigit():
                found.add((int(datasource["id"]), datasource.get("type") or "table"))
            elif isinstance(datasource, str) and re.fullmatch(r"\d+__\w+", datasource):
                number, kind = datasource.split("__", 1)
                found.add((int(number), kind))
        return found

    def check_datasets(properties: dict) -> None:
        for datasource_id, datasource_type in referenced(properties):
            try:
                datasource = get_datasource_by_id(datasource_id, datasource_type)
            except ValidationError as error:
                raise ChartInvalidError(exceptions=[error]) from None
            if not security_manager.can_access_datasource(datasource):
                raise ChartInvalidError(
                    exceptions=[ValidationError("You may not read this dataset.", field_name="datasource_id")]
                )

    validate_create, validate_update = create.CreateChartCommand.validate, update.UpdateChartCommand.validate

    def create_validate(self) -> None:
        validate_create(self)
        check_datasets(self._properties)

    def update_validate(self) -> None:
        validate_update(self)
        check_datasets(self._properties)

    create.CreateChartCommand.validate = create_validate
    update.UpdateChartCommand.validate = update_validate
    update.is_query_context_update = lambda properties: False


def _harden(app) -> None:
    _limit_failed_logins(app)
    _guard_chart_writes()


FLASK_APP_MUTATOR = _harden

# A local override beside this file, never committed (gitignored): e.g. another metadata database.
_LOCAL = Path(__file__).resolve().parent / "superset_config_local.py"
if _LOCAL.exists():
    exec(compile(_LOCAL.read_text(), str(_LOCAL), "exec"))  # noqa: S102
