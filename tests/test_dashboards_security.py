"""The dashboards hold against someone trying (issue 17, items 3 to 5), in the session's real Superset.

- No secret in a readable file: Superset's home is 0700 and every file in it 0600, and no file in it but the
  ``*.secret`` files holds the admin password, the SECRET_KEY or a user's password (the log, the metadata
  database, anything else); the warehouse's databases are 0600.
- Least privilege, pinned: the security settings Superset actually runs with (read from Superset's own Python),
  and each role's permissions, exactly ``ROLE_PERMISSIONS`` plus its datasets.
- The adversary: a ``PMO SLP`` user tries every route we know of to read another collaborative's rows, read a
  file, learn the serving file's path or write anything; an anonymous visitor tries too. Each attempt is recorded
  (route, HTTP status, what came back): they are printed at the end of the module and written to
  ``tests/artifacts/dashboards/security-routes.md``.

This module sorts after ``test_dashboards.py``, so that the home is inspected after every other dashboard test
has written to it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import stat
import subprocess
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import requests

from orchestration.dashboards import bundle as b
from orchestration.dashboards.deploy import ROLE_PERMISSIONS, Deployer, pmo_role
from orchestration.dashboards.server import (
    SUPERSET_CONFIG,
    SUPERSET_VENV,
    Scrubber,
    SupersetHome,
    mask_command,
)
from orchestration.publish import publish_serving_database
from tests.superset_session import AUDIENCE_USERS, PMO_CODE, PMO_PASSWORD, PMO_USER

ARTIFACTS = Path(__file__).parent / "artifacts" / "dashboards"
FILE_CONTENT = ("root:x:0:0", "/bin/bash", "/usr/sbin/nologin", "daemon:x:")


# ---------------------------------------------------------------------------------------------------------------
# Without Superset


def test_command_lines_are_logged_with_secret_values_masked():
    assert mask_command(["fab", "create-admin", "--username", "admin", "--password", "hunter2-x"]) == (
        "fab create-admin --username admin --password ***"
    )
    assert mask_command(["--password=hunter2-x", "--secret-key", "k" * 40, "--api-token=abc123", "run"]) == (
        "--password=*** --secret-key *** --api-token=*** run"
    )
    scrub = Scrubber()
    scrub.add("s3cret-value-1", None, "", "abc")  # empty and very short values are not masked
    assert scrub("login s3cret-value-1 failed; abc") == "login *** failed; abc"


def test_the_home_and_its_files_are_made_private(tmp_path):
    home = SupersetHome(tmp_path / "home")
    home.path.mkdir(mode=0o755)
    (home.path / "superset.db").write_text("x")
    (home.path / "superset.db").chmod(0o644)
    (home.path / "sub").mkdir(mode=0o755)
    (home.path / "sub" / "f").write_text("y")
    home.log("a line with s3cret-value-2\n")
    home.secure()
    assert stat.S_IMODE(home.path.stat().st_mode) == 0o700
    assert stat.S_IMODE((home.path / "sub").stat().st_mode) == 0o700
    for path in (home.path / "superset.db", home.path / "sub" / "f", home.log_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    home.protect("s3cret-value-2")
    home.log("again s3cret-value-2\n")
    assert home.log_file.read_text().splitlines()[-1] == "again ***"
    home.scrub_log()  # what was written before the value was known is masked too
    assert "s3cret-value-2" not in home.log_file.read_text()
    assert stat.S_IMODE(home.log_file.stat().st_mode) == 0o600


def test_a_publication_is_readable_by_its_owner_only_or_a_named_group(tmp_path, monkeypatch):
    build = tmp_path / "build.duckdb"
    con = duckdb.connect(str(build))
    con.execute("create schema marts")
    con.execute("create table marts.fct_x as select 1 as a")
    con.close()
    build.chmod(0o644)
    serving = tmp_path / "serving.duckdb"
    monkeypatch.delenv("COLLAB_SERVING_GROUP", raising=False)
    publish_serving_database(build, serving)
    assert stat.S_IMODE(serving.stat().st_mode) == 0o600
    assert stat.S_IMODE(build.stat().st_mode) == 0o600, "the build database holds patient-level data"
    import grp
    import os

    group = grp.getgrgid(os.getgid()).gr_name
    monkeypatch.setenv("COLLAB_SERVING_GROUP", group)
    publish_serving_database(build, serving)
    assert stat.S_IMODE(serving.stat().st_mode) == 0o640 and serving.stat().st_gid == os.getgid()
    monkeypatch.setenv("COLLAB_SERVING_GROUP", f"no-such-group-{uuid.uuid4().hex[:8]}")
    with pytest.raises(RuntimeError, match="COLLAB_SERVING_GROUP"):
        publish_serving_database(build, serving)


def test_the_warehouse_databases_of_the_session_run_are_private(bundled_run):
    for path in (bundled_run.serving_db, bundled_run.build_db):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path}: {oct(path.stat().st_mode)}"


# ---------------------------------------------------------------------------------------------------------------
# The configuration Superset runs with

#: Settings and the values they must have in the running Superset (issue 17, item 4).
PINNED = {
    "DEBUG": False,
    "SHOW_STACKTRACE": False,
    "FAB_API_SWAGGER_UI": False,
    "FAB_ADD_OPENAPI_VIEWS": False,
    "PUBLIC_ROLE_LIKE": None,
    "AUTH_USER_REGISTRATION": False,
    "AUTH_TYPE": 1,  # AUTH_DB
    "PREVENT_UNSAFE_DB_CONNECTIONS": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_ENABLED": True,
    "RATELIMIT_ENABLED": True,
    "AUTH_RATE_LIMITED": True,
    "ENABLE_PROXY_FIX": False,
    "TALISMAN_ENABLED": True,
    "ENABLE_CORS": False,
    "HTML_SANITIZATION": True,
    "ALLOWED_EXTENSIONS": [],
    "DATASET_IMPORT_ALLOWED_DATA_URLS": [],
    "LOG_LEVEL": 20,
}
PINNED_FLAGS = {
    "ALLOW_ADHOC_SUBQUERY": False,
    "ENABLE_TEMPLATE_PROCESSING": False,
    "ENABLE_JAVASCRIPT_CONTROLS": False,
    "ENABLE_SUPERSET_META_DB": False,
    "EMBEDDED_SUPERSET": False,
    "EMBEDDABLE_CHARTS": False,
    "DASHBOARD_RBAC": False,
    "ALERT_REPORTS": False,
    "THUMBNAILS": False,
    "DYNAMIC_PLUGINS": False,
    "RLS_IN_SQLLAB": False,
}

_EFFECTIVE_CONFIG = """
import json
from superset import is_feature_enabled
from superset.app import create_app

names, flags = json.loads(input())
app = create_app()
with app.app_context():
    config = {name: app.config.get(name, "<missing>") for name in names}
    config = {k: sorted(v) if isinstance(v, (set, frozenset)) else v for k, v in config.items()}
    talisman = app.config["TALISMAN_CONFIG"]["content_security_policy"]
    print("EFFECTIVE=" + json.dumps({
        "config": config,
        "flags": {flag: is_feature_enabled(flag) for flag in flags},
        "csp": talisman,
        "views": sorted(app.view_functions),
        "guest_secret_default": app.config["GUEST_TOKEN_JWT_SECRET"] == "test-guest-secret-change-me",
    }, default=str))
"""


def test_superset_runs_with_every_security_setting_pinned(superset):
    """The configuration as Superset's own Python loads it (superset_config.py with this SUPERSET_HOME)."""
    home: SupersetHome = superset["home"]
    result = subprocess.run(
        [str(SUPERSET_VENV / "bin" / "python"), "-c", _EFFECTIVE_CONFIG],
        input=json.dumps([sorted(PINNED), sorted(PINNED_FLAGS)]),
        env=home.environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        umask=0o077,
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("EFFECTIVE=")), None)
    assert line, f"no configuration read (exit {result.returncode}): {result.stderr[-2000:]}"
    effective = json.loads(line.removeprefix("EFFECTIVE="))
    assert effective["config"] == PINNED
    assert effective["flags"] == PINNED_FLAGS
    assert effective["guest_secret_default"] is False
    csp = effective["csp"]
    sources = [src for value in csp.values() for src in ([value] if isinstance(value, str) else value)]
    assert not [src for src in sources if src.startswith(("http:", "https:"))], "a third party in the CSP"
    assert "'unsafe-eval'" not in csp["script-src"]
    views = effective["views"]
    assert not [v for v in views if v.startswith(("SwaggerView", "OpenApi."))], "Swagger or the OpenAPI spec"
    # every pinned name exists in Superset 6.1's (or Flask-AppBuilder's) defaults: none is a typo taking no effect
    defaults = (SUPERSET_VENV / "lib").glob("python3*/site-packages/superset/config.py")
    text = next(defaults).read_text()
    fab = next((SUPERSET_VENV / "lib").glob("python3*/site-packages/flask_appbuilder")).rglob("*.py")
    fab_text = "\n".join(path.read_text(errors="replace") for path in fab)
    for name in [*PINNED, *PINNED_FLAGS]:
        assert re.search(rf'^{name}\b|"{name}"', text, re.M) or name in fab_text, f"{name} is not a setting"
    assert "ALLOW_ADHOC_SUBQUERY" in SUPERSET_CONFIG.read_text()


# ---------------------------------------------------------------------------------------------------------------
# The roles


FORBIDDEN_VIEWS = {"Database", "Databases", "SQLLab", "SQL Lab", "RowLevelSecurity", "Row Level Security"}


def test_each_role_has_exactly_its_listed_permissions_and_its_datasets(superset):
    admin: Deployer = superset["deployer"]
    deployment = superset["deployment"]
    listed = {(permission, view) for permission, view, _ in ROLE_PERMISSIONS}
    assert len(listed) == len(ROLE_PERMISSIONS), "a pair is listed twice"
    assert all(why.strip() for _, _, why in ROLE_PERMISSIONS), "every pair needs its reason"
    audiences = {pmo_role(PMO_CODE): b.PMO, b.ICB_ANALYST: b.ICB_ANALYST, b.EVALUATOR: b.EVALUATOR}
    for role, audience in audiences.items():
        datasets = {
            ("datasource_access", f"[{b.DATABASE_NAME}].[{d.name}](id:{deployment.datasets[d.name]})")
            for d in b.DATASETS
            if audience in d.audiences
        }
        assert admin.role_permissions(role) == listed | datasets, role
    for permission, view in listed:
        assert not permission.startswith(("can_export", "can_import", "can_upload")), (permission, view)
        assert view not in FORBIDDEN_VIEWS and "sql" not in view.lower(), (permission, view)
        assert view != "Dataset" or permission in ("can_read", "can_get_drill_info"), (permission, view)


def test_a_redeploy_replaces_a_roles_permissions_rather_than_adding_to_them(superset):
    """A role deployed by an earlier version (with Gamma's permissions) keeps none of the extra ones."""
    admin: Deployer = superset["deployer"]
    role = pmo_role(PMO_CODE)
    before = admin.role_permissions(role)
    gamma = admin.get(f"security/roles/{admin.roles()['Gamma']}/permissions/")["result"]
    role_id = admin.roles()[role]
    current = [p["id"] for p in admin.get(f"security/roles/{role_id}/permissions/")["result"]]
    admin._send(
        "post",
        f"security/roles/{role_id}/permissions",
        {"permission_view_menu_ids": current + [p["id"] for p in gamma]},
    )
    assert ("can_export", "Dashboard") in admin.role_permissions(role)
    admin.configure_security(superset["deployment"].datasets, superset["serving_db"])
    assert admin.role_permissions(role) == before


# ---------------------------------------------------------------------------------------------------------------
# The adversary

ROUTES: list[tuple[str, str, int | str, str]] = []  # (who, route, HTTP status, what came back)


@dataclass
class Context:
    base: str
    pmo: Deployer
    admin: Deployer
    deployment: object
    serving_db: Path
    serving_sha256: str
    pmo_permissions: set[tuple[str, str]]
    saved_charts: dict[int, tuple[str, str]]  # chart id -> (params, query_context) as deployed
    foreign: set[str]  # values that would be another collaborative's: codes, their benefit ids, their trusts
    own: set[str]
    path_markers: tuple[str, ...]


def _saved_charts(admin: Deployer) -> dict[int, tuple[str, str]]:
    saved = {}
    for chart in admin.list_all("chart/"):
        found = admin.get(f"chart/{chart['id']}")["result"]
        saved[chart["id"]] = (found["params"], found["query_context"])
    return saved


@pytest.fixture(scope="module")
def ctx(superset) -> Context:
    serving_db: Path = superset["serving_db"]
    con = duckdb.connect(str(serving_db), read_only=True)
    try:
        codes = {r[0] for r in con.execute("select collaborative_code from main.dim_collaborative").fetchall()}
        members = con.execute(
            "select collaborative_code, org_code from main.bridge_collaborative_membership "
            "union select collaborative_code, current_org_code from main.bridge_collaborative_membership "
            "where current_org_code is not null"
        ).fetchall()
    finally:
        con.close()
    own_trusts = {org for code, org in members if code == PMO_CODE}
    foreign_trusts = {org for code, org in members if code != PMO_CODE} - own_trusts
    assert PMO_CODE in codes and len(codes) > 1 and foreign_trusts
    resolved = serving_db.resolve()
    return Context(
        base=superset["server"].url,
        pmo=Deployer(superset["server"].url, PMO_USER, PMO_PASSWORD),
        admin=superset["deployer"],
        deployment=superset["deployment"],
        serving_db=serving_db,
        serving_sha256=hashlib.sha256(serving_db.read_bytes()).hexdigest(),
        pmo_permissions=superset["deployer"].role_permissions(pmo_role(PMO_CODE)),
        saved_charts=_saved_charts(superset["deployer"]),
        foreign=(codes - {PMO_CODE}) | foreign_trusts,
        own={PMO_CODE} | own_trusts,
        path_markers=(str(resolved), str(resolved.parent), resolved.name),
    )


def _describe(response: requests.Response) -> str:
    kind = response.headers.get("Content-Type", "").split(";")[0]
    try:
        body = response.json()
    except ValueError:
        return f"{kind} {len(response.content)} bytes"
    if isinstance(body, dict):
        if "result" in body and isinstance(body["result"], list) and body["result"] and "data" in body["result"][0]:
            rows = sum(len(r.get("data") or []) for r in body["result"])
            return f"{rows} rows"
        message = body.get("message") or body.get("msg") or body.get("errors") or body.get("error")
        if message:
            text = message if isinstance(message, str) else json.dumps(message)
            return re.sub(r"\s+", " ", text)[:110]
        if "count" in body:
            return f"count {body['count']}"
    return f"{kind} {len(response.content)} bytes"


def _cells(response: requests.Response) -> list[str]:
    """Every value in a chart-data answer (JSON, CSV or an Excel workbook), as strings."""
    content_type = response.headers.get("Content-Type", "")
    if "json" in content_type:
        try:
            body = response.json()
        except ValueError:
            return []
        values: list[str] = []

        def walk(node: object) -> None:
            if isinstance(node, dict):
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)
            elif node is not None:
                values.append(str(node))

        results = body.get("result") if isinstance(body, dict) else None
        for result in results if isinstance(results, list) else []:
            if isinstance(result, dict):
                walk(result.get("data"))
        return values
    if "csv" in content_type:
        return [cell for row in csv.reader(io.StringIO(response.text)) for cell in row]
    if "spreadsheet" in content_type or response.content[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(response.content)) as book:
            text = " ".join(book.read(n).decode("utf-8", "replace") for n in book.namelist() if n.endswith(".xml"))
        return re.findall(r">([^<>]+)<", text)
    return []


def _check(ctx: Context, who: str, route: str, response: requests.Response, *, refused: bool | None) -> None:
    """Record the attempt and assert that it read no foreign row, no file and no path; ``refused`` True: the
    answer must be a refusal (4xx); False: it must succeed; None: either."""
    ROUTES.append((who, route, response.status_code, _describe(response)))
    text = response.text
    if response.content[:2] == b"PK":  # a zip (an export, an Excel workbook): what is inside it
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            text = "\n".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())
    leaked = [m for m in FILE_CONTENT if m in text]
    assert not leaked, f"{route}: file content {leaked} in the answer"
    paths = [m for m in ctx.path_markers if m in text]
    assert not paths, f"{route}: the serving file's path in the answer: {paths}"
    foreign = sorted(
        {cell for cell in _cells(response) for token in re.split(r"[\s,;|·-]+", cell) if token in ctx.foreign}
    )
    assert not foreign, f"{route}: another collaborative's rows: {foreign[:5]}"
    if refused is True:
        assert 400 <= response.status_code < 500, f"{route}: HTTP {response.status_code}: {response.text[:300]}"
    elif refused is False:
        assert response.status_code == 200, f"{route}: HTTP {response.status_code}: {response.text[:300]}"
    assert response.status_code < 500, f"{route}: HTTP {response.status_code}: {response.text[:300]}"


def _query(dataset_id: int, **query) -> dict:
    result_format = query.pop("result_format", "json")
    result_type = query.pop("result_type", "full")
    return {
        "datasource": {"id": dataset_id, "type": "table"},
        "force": True,
        "queries": [
            {
                "columns": query.pop("columns", ["collaborative_code"]),
                "metrics": query.pop("metrics", []),
                "filters": query.pop("filters", []),
                "orderby": query.pop("orderby", []),
                "extras": query.pop("extras", {}),
                "row_limit": 10000,
                **query,
            }
        ],
        "result_format": result_format,
        "result_type": result_type,
    }


def _sql_column(expression: str, label: str = "x") -> dict:
    return {"expressionType": "SQL", "sqlExpression": expression, "label": label}


def _post_data(ctx: Context, route: str, context: dict, *, refused: bool | None) -> requests.Response:
    response = ctx.pmo.client.post(ctx.pmo._url("chart/data"), json=context)
    _check(ctx, "PMO SLP", route, response, refused=refused)
    return response


def _own_codes(response: requests.Response, column: str = "collaborative_code") -> set[str]:
    return {row[column] for result in response.json()["result"] for row in result["data"]}


def test_chart_data_with_its_own_query_context_returns_only_its_own_rows(ctx):
    register = ctx.deployment.datasets["pmo_benefit_register"]
    members = ctx.deployment.datasets["pmo_member_contribution"]
    ok = _post_data(ctx, "POST chart/data: own query context, collaborative_code", _query(register), refused=False)
    assert _own_codes(ok) == {PMO_CODE}
    ok = _post_data(ctx, "POST chart/data: member trusts", _query(members, columns=["org_code"]), refused=False)
    assert _own_codes(ok, "org_code") <= ctx.own
    for label, where in [
        ("where 1=1 or 1=1", "1=1 or 1=1"),
        ("where collaborative_code = 'BCPC' or 1=1", "collaborative_code <> 'SLP' or 1=1"),
        ("where true) or (true", "true) or (true"),
        ("where 1=1 -- (comment out the rest)", "1=1 --"),
        ("where 1=1 /* comment */", "1=1 /*"),
    ]:
        response = _post_data(ctx, f"POST chart/data: {label}", _query(register, extras={"where": where}), refused=None)
        if response.status_code == 200:
            assert _own_codes(response) <= {PMO_CODE}
    response = _post_data(
        ctx,
        "POST chart/data: having count(*) > 0 or 1=1",
        _query(register, metrics=[_sql_column("count(*)", "n")], extras={"having": "count(*) > 0 or 1=1"}),
        refused=None,
    )
    if response.status_code == 200:
        assert _own_codes(response) <= {PMO_CODE}
    response = _post_data(
        ctx,
        "POST chart/data: filter collaborative_code IN (all codes)",
        _query(register, filters=[{"col": "collaborative_code", "op": "IN", "val": sorted(ctx.foreign | ctx.own)}]),
        refused=False,
    )
    assert _own_codes(response) <= {PMO_CODE}
    for result_type in ("samples", "drill_detail", "query", "results"):
        _post_data(
            ctx, f"POST chart/data: result_type {result_type}", _query(register, result_type=result_type), refused=None
        )


def test_sub_queries_union_and_several_statements_are_refused(ctx):
    register = ctx.deployment.datasets["pmo_benefit_register"]
    subquery = "(select string_agg(collaborative_code, ',') from main.dim_collaborative)"
    attempts = {
        "sub-query in a metric": _query(register, columns=[], metrics=[_sql_column(f"max({subquery})", "m")]),
        "sub-query in a column": _query(register, columns=[_sql_column(subquery)]),
        "sub-query in a filter (where)": _query(
            register, extras={"where": "collaborative_code in (select collaborative_code from main.dim_collaborative)"}
        ),
        "sub-query in having": _query(
            register,
            metrics=[_sql_column("count(*)", "n")],
            extras={"having": f"count(*) > 0 or {subquery} is not null"},
        ),
        "sub-query in order by": _query(register, orderby=[[_sql_column(subquery), True]]),
        "exists (select from the mart)": _query(
            register, extras={"where": "exists (select 1 from main.fct_benefit_status)"}
        ),
        "UNION in a filter": _query(
            register, extras={"where": "1=1 union select collaborative_code from main.dim_collaborative"}
        ),
        "UNION ALL in a column": _query(
            register, columns=[_sql_column("collaborative_code from x union all select collaborative_code")]
        ),
        "CTE in a column": _query(register, columns=[_sql_column("(with t as (select 1) select * from t)")]),
        "second statement: drop table": _query(register, extras={"where": "1=1; drop table main.dim_collaborative"}),
        "DML in a column: delete": _query(
            register, columns=[_sql_column("1); delete from main.dim_collaborative; --")]
        ),
        "DDL in a filter: create table": _query(register, extras={"where": "1=1); create table main.t as (select 1"}),
    }
    for label, context in attempts.items():
        _post_data(ctx, f"POST chart/data: {label}", context, refused=True)


def test_duckdb_file_and_system_functions_read_nothing(ctx):
    register = ctx.deployment.datasets["pmo_benefit_register"]
    attempts = {
        "read_csv('/etc/passwd') in a column": "(select * from read_csv('/etc/passwd'))",
        "read_text('/etc/passwd') in a column": "(select content from read_text('/etc/passwd'))",
        "glob('/etc/*') in a column": "(select string_agg(file, ',') from glob('/etc/*'))",
        "read_blob('/etc/passwd') as a function": "read_blob('/etc/passwd')",
        "getenv('HOME')": "getenv('HOME')",
        "duckdb_databases() (the file's path)": "(select string_agg(path, ',') from duckdb_databases())",
        "current_setting('temp_directory')": "current_setting('temp_directory')",
        "current_setting('home_directory')": "current_setting('home_directory')",
    }
    for label, expression in attempts.items():
        _post_data(ctx, f"POST chart/data: {label}", _query(register, columns=[_sql_column(expression)]), refused=None)
    for label, where in {
        "read_csv in a filter": "exists (from read_csv('/etc/passwd'))",
        "COPY in a filter": "1=1; copy main.dim_collaborative to '/tmp/x.csv'",
        "ATTACH in a filter": "1=1; attach '/tmp/other.duckdb'",
        "INSTALL httpfs in a filter": "1=1; install httpfs",
    }.items():
        _post_data(ctx, f"POST chart/data: {label}", _query(register, extras={"where": where}), refused=True)


def test_downloads_of_chart_data_hold_only_its_own_rows(ctx):
    register = ctx.deployment.datasets["pmo_benefit_register"]
    for result_format in ("csv", "xlsx"):
        response = _post_data(
            ctx,
            f"POST chart/data: result_format {result_format}",
            _query(register, columns=["collaborative_code", "benefit_id"], result_format=result_format),
            refused=False,
        )
        assert PMO_CODE in " ".join(_cells(response)), f"{result_format}: no rows of its own"
    chart = ctx.deployment.charts["benefit_register"]
    for fmt in ("csv", "json"):
        route = f"chart/{chart}/data/?format={fmt}"
        response = ctx.pmo.client.get(ctx.pmo._url(route))
        _check(ctx, "PMO SLP", f"GET {route} (own dashboard's chart)", response, refused=False)


def test_other_audiences_charts_datasets_and_dashboards_are_closed(ctx):
    others = [d for d in b.DATASETS if b.PMO not in d.audiences]
    for dataset in others[:3] + [d for d in others if d.rls is None][:1]:
        dataset_id = ctx.deployment.datasets[dataset.name]
        column = dataset.columns[0].name
        _post_data(
            ctx,
            f"POST chart/data: dataset {dataset.name} (not the PMO's)",
            _query(dataset_id, columns=[column]),
            refused=True,
        )
        for route in (f"dataset/{dataset_id}", f"explore/?datasource_id={dataset_id}&datasource_type=table"):
            response = ctx.pmo.client.get(ctx.pmo._url(route))
            _check(ctx, "PMO SLP", f"GET {route}", response, refused=True)
    for key in ("evaluation_estimates", "outcome_waiting_list"):
        chart = ctx.deployment.charts[key]
        for route in (f"chart/{chart}/data/", f"chart/{chart}", f"explore/?slice_id={chart}"):
            response = ctx.pmo.client.get(ctx.pmo._url(route))
            _check(ctx, "PMO SLP", f"GET {route} ({key})", response, refused=True)
    for slug in ("evaluation", "outcomes-monitor"):
        dashboard = ctx.deployment.dashboards[slug]
        for route in (f"dashboard/{slug}", f"dashboard/{dashboard}/charts", f"dashboard/{dashboard}/datasets"):
            response = ctx.pmo.client.get(ctx.pmo._url(route))
            _check(ctx, "PMO SLP", f"GET {route}", response, refused=True)
    titles = {row["dashboard_title"] for row in ctx.pmo.list_all("dashboard/")}
    assert titles == {"Benefits tracker", "Data quality"}, titles


def test_sql_lab_the_database_and_the_security_apis_are_closed(ctx):
    database = ctx.admin._database_id()
    gets = [
        "database/",
        f"database/{database}",
        f"database/{database}/connection",
        f"database/{database}/schemas/",
        f"database/{database}/tables/?q=(schema_name:main)",
        f"database/{database}/select_star/main/dim_collaborative/",
        f"database/{database}/table_metadata/?name=dim_collaborative&schema=main",
        "database/export/?q=!(1)",
        "sqllab/",
        "query/",
        "saved_query/",
        "rowlevelsecurity/",
        "security/users/",
        "security/roles/",
        "security/permissions-resources/",
        "log/",
        "annotation_layer/",
        "css_template/",
        "report/",
        "tag/",
        "_openapi",
        "async_event/",
    ]
    for route in gets:
        response = ctx.pmo.client.get(ctx.pmo._url(route))
        _check(ctx, "PMO SLP", f"GET {route}", response, refused=True)
    posts = {
        "sqllab/execute/": {"database_id": database, "sql": "select * from main.dim_collaborative", "runAsync": False},
        "sqllab/estimate/": {"database_id": database, "sql": "select 1"},
        "sqllab/format_sql/": {"sql": "select 1"},
        "database/": {"database_name": "mine", "sqlalchemy_uri": "duckdb:////etc/passwd"},
        "database/test_connection/": {"sqlalchemy_uri": "duckdb:///:memory:", "database_name": "x"},
        f"database/{database}/validate_sql/": {"sql": "select 1", "schema": "main"},
        "rowlevelsecurity/": {"name": "mine", "filter_type": "Regular", "tables": [], "roles": [], "clause": "1=1"},
        f"security/roles/{ctx.admin.roles()[pmo_role(PMO_CODE)]}/permissions": {"permission_view_menu_ids": [1]},
        "security/users/": {"username": "x", "first_name": "x", "last_name": "x", "email": "x@x", "password": "x" * 12},
        "query/": {"q": "1"},  # the legacy query endpoint of views/api.py
    }
    for route, payload in posts.items():
        response = ctx.pmo.client.post(ctx.pmo._url(route), json=payload)
        _check(ctx, "PMO SLP", f"POST {route}", response, refused=True)
    response = ctx.pmo.client.put(ctx.pmo._url("me/"), json={"roles": [1], "username": "admin"})
    _check(ctx, "PMO SLP", "PUT me/ (roles, username)", response, refused=True)
    assert set(ctx.pmo.get("me/roles/")["result"]["roles"]) == {pmo_role(PMO_CODE)}


def test_datasets_cannot_be_created_or_changed_and_exports_are_refused(ctx):
    register = ctx.deployment.datasets["pmo_benefit_register"]
    database = ctx.admin._database_id()
    unfiltered = "select * from main.fct_benefit_status"
    attempts = [
        ("post", "dataset/", {"database": database, "schema": "main", "table_name": "mine", "sql": unfiltered}),
        ("put", f"dataset/{register}", {"sql": unfiltered}),
        ("put", f"dataset/{register}/refresh", None),
        ("post", "dataset/duplicate", {"base_model_id": register, "table_name": "mine"}),
        ("post", "dataset/get_or_create/", {"database_id": database, "table_name": "dim_collaborative"}),
        ("delete", f"dataset/{register}", None),
        ("put", f"dashboard/{ctx.deployment.dashboards['benefits-tracker']}", {"dashboard_title": "mine"}),
        ("delete", f"dashboard/{ctx.deployment.dashboards['benefits-tracker']}", None),
        ("post", "dashboard/", {"dashboard_title": "mine"}),
        ("post", f"dashboard/{ctx.deployment.dashboards['benefits-tracker']}/copy/", {"dashboard_title": "mine"}),
        ("put", f"chart/{ctx.deployment.charts['benefit_register']}", {"slice_name": "mine"}),
        # an update of only the saved query skips Superset 6.1's ownership check; superset_config.py restores it
        (
            "put",
            f"chart/{ctx.deployment.charts['benefit_register']}",
            {
                "query_context": json.dumps({"datasource": {"id": register, "type": "table"}}),
                "query_context_generation": True,
            },
        ),
        ("delete", f"chart/{ctx.deployment.charts['benefit_register']}", None),
        ("post", "assets/import/", None),
        ("post", "dashboard/import/", None),
    ]
    for method, route, payload in attempts:
        call = getattr(ctx.pmo.client, method)
        response = call(ctx.pmo._url(route), json=payload) if payload is not None else call(ctx.pmo._url(route))
        fields = f" ({', '.join(payload)})" if payload else ""
        _check(ctx, "PMO SLP", f"{method.upper()} {route}{fields}", response, refused=True)
    exports = [
        f"dashboard/export/?q=!({ctx.deployment.dashboards['benefits-tracker']})",
        f"chart/export/?q=!({ctx.deployment.charts['benefit_register']})",
        f"dataset/export/?q=!({register})",
        f"database/export/?q=!({database})",
        "assets/export/",
        "theme/export/?q=!(1)",
    ]
    for route in exports:
        response = ctx.pmo.client.get(ctx.pmo._url(route))
        _check(ctx, "PMO SLP", f"GET {route}", response, refused=True)


def test_a_pmo_may_save_and_delete_its_own_chart_but_it_still_sees_only_its_rows(ctx):
    register = ctx.deployment.datasets["pmo_benefit_register"]
    context = _query(register)
    payload = {
        "slice_name": f"PMO's own chart {uuid.uuid4().hex[:6]}",
        "viz_type": "table",
        "datasource_id": register,
        "datasource_type": "table",
        "params": json.dumps(
            {"datasource": f"{register}__table", "viz_type": "table", "all_columns": ["collaborative_code"]}
        ),
        "query_context": json.dumps(context),
    }
    created = ctx.pmo.client.post(ctx.pmo._url("chart/"), json=payload)
    _check(ctx, "PMO SLP", "POST chart/ (its own chart, own dataset)", created, refused=None)
    assert created.status_code == 201, created.text[:300]
    chart = created.json()["id"]
    data = ctx.pmo.client.get(ctx.pmo._url(f"chart/{chart}/data/"))
    _check(ctx, "PMO SLP", f"GET chart/{chart}/data/ (its own chart)", data, refused=False)
    # and its chart is not another's way in: the admin's view of it is the admin's, the PMO's the PMO's
    foreign_dataset = ctx.deployment.datasets["eval_estimates"]
    other = dict(payload, datasource_id=foreign_dataset, slice_name="on another's dataset")
    response = ctx.pmo.client.post(ctx.pmo._url("chart/"), json=other)
    _check(ctx, "PMO SLP", "POST chart/ (on a dataset not the PMO's)", response, refused=True)
    response = ctx.pmo.client.put(
        ctx.pmo._url(f"chart/{chart}"), json={"datasource_id": foreign_dataset, "datasource_type": "table"}
    )
    _check(ctx, "PMO SLP", "PUT chart/<own> (move it to a dataset not the PMO's)", response, refused=True)
    deleted = ctx.pmo.client.delete(ctx.pmo._url(f"chart/{chart}"))
    _check(ctx, "PMO SLP", "DELETE chart/<own>", deleted, refused=False)


def test_legacy_and_page_routes_are_closed(ctx):
    register = ctx.deployment.datasets["pmo_benefit_register"]
    session = requests.Session()
    page = session.get(f"{ctx.base}/login/", timeout=30).text
    token = re.search(r'name="csrf_token"\s+id="csrf_token"\s+value="([^"]+)"', page).group(1)
    login = session.post(
        f"{ctx.base}/login/",
        data={"username": PMO_USER, "password": PMO_PASSWORD, "csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )
    assert login.status_code in (302, 303), login.status_code
    form_data = json.dumps(
        {
            "datasource": f"{register}__table",
            "viz_type": "table",
            "all_columns": ["collaborative_code"],
            "adhoc_filters": [],
            "row_limit": 1000,
        }
    )
    pages = [
        ("get", "/sqllab/", None),
        ("get", "/swagger/v1", None),
        ("get", "/databaseview/list/", None),
        ("get", "/rowlevelsecurity/list/", None),
        ("get", "/superset/explore_json/?form_data=" + requests.utils.quote(form_data), None),
        ("post", "/superset/explore_json/?csv=true", {"form_data": form_data}),
        ("post", f"/datasource/samples?datasource_id={register}&datasource_type=table", None),
        ("get", f"/datasource/external_metadata/table/{register}/", None),
        (
            "get",
            "/datasource/external_metadata_by_name/?q=(database_name:'Collaborative benefits warehouse',"
            "schema_name:main,table_name:dim_collaborative)",
            None,
        ),
        ("get", f"/api/v1/form_data/?slice_id={ctx.deployment.charts['evaluation_estimates']}", None),
    ]
    for method, route, data in pages:
        response = getattr(session, method)(ctx.base + route, data=data, allow_redirects=False, timeout=60)
        refused = response.status_code in (301, 302, 303, 401, 403, 404, 405)
        _check(ctx, "PMO SLP (browser session)", f"{method.upper()} {route.split('?')[0]}", response, refused=None)
        assert refused, f"{route}: HTTP {response.status_code}: {response.text[:300]}"


def test_anonymous_visitors_reach_only_health_and_login(ctx):
    anonymous = requests.Session()
    for route, expected in [("/health", 200), ("/login/", 200)]:
        response = anonymous.get(ctx.base + route, timeout=30)
        _check(ctx, "anonymous", f"GET {route}", response, refused=None)
        assert response.status_code == expected
    for route in (
        "/api/v1/dashboard/",
        "/api/v1/chart/",
        f"/api/v1/chart/{ctx.deployment.charts['benefit_register']}/data/",
        "/api/v1/dataset/",
        "/api/v1/database/",
        "/api/v1/security/csrf_token/",
        "/superset/dashboard/benefits-tracker/",
        "/sqllab/",
    ):
        response = anonymous.get(ctx.base + route, allow_redirects=False, timeout=30)
        _check(ctx, "anonymous", f"GET {route}", response, refused=None)
        assert response.status_code in (302, 401, 403, 404), f"{route}: HTTP {response.status_code}"
        if response.status_code == 302:
            assert "/login" in response.headers["Location"], response.headers["Location"]
    # Superset 6.1 always serves the page shell at /register/; the form behind it exists only with
    # AUTH_USER_REGISTRATION, so nobody can register.
    username = f"self-registered-{uuid.uuid4().hex[:6]}"
    form = {"username": username, "first_name": "x", "last_name": "x", "email": f"{username}@x", "password": "x" * 12}
    for route in ("/register/form", "/register/"):
        response = anonymous.post(ctx.base + route, data=form, allow_redirects=False, timeout=30)
        _check(ctx, "anonymous", f"POST {route} (register oneself)", response, refused=True)
    users = ctx.admin.list_all("security/users/", filters=[{"col": "username", "opr": "eq", "value": username}])
    assert not users


def test_failed_logins_are_rate_limited_per_user_name(ctx):
    target = f"nobody-{uuid.uuid4().hex[:8]}"
    statuses = []
    for attempt in range(30):
        response = requests.post(
            f"{ctx.base}/api/v1/security/login",
            json={"username": target, "password": f"guess-{attempt}", "provider": "db", "refresh": False},
            timeout=30,
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    ROUTES.append(
        (
            "anonymous",
            f"POST /api/v1/security/login x{len(statuses)} (wrong password)",
            statuses[-1],
            f"statuses {sorted(set(statuses))}",
        )
    )
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401}, statuses
    # the other users at that address still log in
    assert Deployer(ctx.base, PMO_USER, PMO_PASSWORD).get("me/")["result"]["username"] == PMO_USER


def test_nothing_was_written(ctx, superset):
    """After all of the above: the serving file is the one published, and Superset's objects are as deployed."""
    admin = ctx.admin
    assert _saved_charts(admin) == ctx.saved_charts, "a chart's saved query or params changed"
    assert len(admin.list_all("dashboard/")) == len(b.DASHBOARDS)
    assert {d["table_name"] for d in admin.list_all("dataset/")} == set(b.DATASET_BY_NAME)
    assert [d["database_name"] for d in admin.list_all("database/")] == [b.DATABASE_NAME]
    rules = admin.list_all("rowlevelsecurity/")
    assert all(rule["name"].startswith(b.PMO + " ") for rule in rules)
    assert hashlib.sha256(ctx.serving_db.read_bytes()).hexdigest() == ctx.serving_sha256, "the serving file changed"
    assert set(admin.roles()) >= {pmo_role(PMO_CODE), b.ICB_ANALYST, b.EVALUATOR}
    assert admin.role_permissions(pmo_role(PMO_CODE)) == ctx.pmo_permissions, "the PMO's role changed"


def test_print_every_route_tried():
    assert ROUTES, "no route was tried"
    lines = ["| who | route | HTTP | what came back |", "| --- | --- | --- | --- |"]
    lines += [f"| {who} | `{route}` | {status} | {what.replace('|', '/')} |" for who, route, status, what in ROUTES]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "security-routes.md").write_text("\n".join(lines) + "\n")
    print(f"\n{len(ROUTES)} attempts (also in {ARTIFACTS / 'security-routes.md'}):")
    for who, route, status, what in ROUTES:
        print(f"  {status!s:>4}  {who:<26} {route}  ->  {what}")


# ---------------------------------------------------------------------------------------------------------------
# Last: the home, after every dashboard test has written to it


def test_superset_home_is_private_and_holds_no_secret_outside_the_secret_files(superset):
    home: SupersetHome = superset["home"]
    secrets = {
        "the admin password": superset["password"],
        "SECRET_KEY": home.secret_key_file.read_text().strip(),
        "the PMO user's password": PMO_PASSWORD,
        **{f"{role}'s password": password for role, (_, password, _) in AUDIENCE_USERS.items()},
    }
    assert stat.S_IMODE(home.path.stat().st_mode) == 0o700, oct(home.path.stat().st_mode)
    checked = []
    for path in sorted(home.path.rglob("*")):
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_dir():
            assert mode == 0o700, f"{path}: {oct(mode)}"
            continue
        assert mode & 0o077 == 0, f"{path} is readable by others: {oct(mode)}"
        if path.name.endswith(".secret"):
            continue
        content = path.read_bytes()
        found = [name for name, value in secrets.items() if value.encode() in content]
        assert not found, f"{path.name} holds {found}"
        checked.append(path.name)
    assert "superset.log" in checked and "superset.db" in checked, checked
    log = home.log_file.read_text()
    assert "$ superset db upgrade" in log and "password on stdin" in log
    assert "--password" not in log
