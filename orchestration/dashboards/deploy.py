"""Deploy the bundle into a running Superset: import, point at the serving database, create roles and RLS.

Through superset-client's authenticated session (JWT plus the CSRF token, SPEC §11), not its object helpers,
some of which no longer match Superset 6's API:

1. zip ``dashboards/bundle/`` with the database's URI replaced by the local serving file, and POST it to
   ``/api/v1/assets/import/`` (field ``bundle``); success is the JSON ``{"message": "OK"}``, not the status;
2. remap the dashboards' native-filter ``chartsInScope`` to the imported chart ids (Superset 6.1's importer
   remaps the filters' excluded charts but not this list: apache/superset#26338);
3. create the roles: ``ICB analyst`` and ``Evaluator``, and one ``PMO <code>`` per collaborative, each with the
   permissions of ``ROLE_PERMISSIONS`` (listed from scratch, each with its reason; not copied from Gamma) plus
   read access to its dashboards' datasets, and a row-level security rule per PMO role restricting it to its
   collaborative (and its member trusts on trust-level datasets). SQL Lab stays with Admin: no role here is
   given it.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

from orchestration.dashboards import bundle as b

os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # plain HTTP on 127.0.0.1 (SPEC §11)

from supersetapiclient.client import SupersetClient  # noqa: E402

BUNDLE_TOP_FOLDER = "collab_benefits_dashboards"

#: What every audience's role may do, as (permission, view menu, why), besides ``datasource_access`` on its
#: dashboards' datasets. Listed pair by pair from scratch (issue 17): Superset's Gamma role, which these roles used
#: to copy, has 95 pairs, among them dashboard and chart exports (their zip holds the database's URI, i.e. the
#: serving file's path), the Databases menu and API, the list of row-level security rules (every collaborative's
#: clause), SQL Lab's CSV export, saved queries, tags, theme writes, embedding, dataset metadata from the database
#: and the OpenAPI spec. None of those is here. What is: viewing the dashboards, and exploring the role's own
#: datasets and saving one's own charts, every query of which goes through the chart-data endpoint and its RLS.
ROLE_PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    # Dashboards
    ("can_read", "Dashboard", "list and open the dashboards whose datasets the role may read"),
    ("can_dashboard", "Superset", "the dashboard page, /superset/dashboard/<slug>/"),
    ("menu_access", "Dashboards", "the Dashboards menu"),
    ("can_read", "DashboardFilterStateRestApi", "native filters keep their values while a dashboard is open"),
    ("can_write", "DashboardFilterStateRestApi", "(the same: the values are stored under a key)"),
    ("can_read", "DashboardPermalinkRestApi", "open a link to a dashboard with its filters set"),
    ("can_write", "DashboardPermalinkRestApi", "Share > Copy link: store the filters behind such a link"),
    ("can_dashboard_permalink", "Superset", "the page such a link opens"),
    ("can_share_dashboard", "Superset", "a dashboard's Share menu: links only, nothing exported"),
    ("can_view_chart_as_table", "Dashboard", "a chart's rows as a table: the chart-data endpoint, under RLS"),
    ("can_view_query", "Dashboard", "a chart's SQL (the RLS clause included): no rows, no path"),
    ("can_drill", "Dashboard", "drill by and drill to detail: the chart-data endpoint again, under RLS"),
    ("can_get_drill_info", "Dataset", "the columns and metrics drill by offers"),
    ("can_time_range", "Api", "time filters turn 'Last year' into dates"),
    # Charts: a PMO may build and save its own charts over its own rows
    ("can_read", "Chart", "list charts, and the chart-data endpoint for the role's datasets"),
    (
        "can_write",
        "Chart",
        "save one's own charts; only a chart's owners may change or delete it, and only on datasets they may "
        "read (superset_config.py closes 6.1's exceptions to both)",
    ),
    ("menu_access", "Charts", "the Charts menu"),
    ("can_explore", "Superset", "Explore, where charts are built"),
    ("can_read", "Explore", "Explore's API: the dataset and chart being explored"),
    ("can_read", "ExploreFormDataRestApi", "Explore keeps the chart being built under a key"),
    ("can_write", "ExploreFormDataRestApi", "(the same)"),
    ("can_read", "ExplorePermalinkRestApi", "open a link to a chart being built"),
    ("can_write", "ExplorePermalinkRestApi", "Share > Copy link in Explore"),
    ("can_slice", "Superset", "/superset/slice/<id>/ opens a saved chart in Explore"),
    ("can_share_chart", "Superset", "a chart's Share menu: links only"),
    (
        "can_csv",
        "Superset",
        "a chart's data as CSV or Excel: the chart-data endpoint under RLS, so only the role's rows, "
        "and no path (the dashboard, chart and dataset exports, which hold the database URI, are not granted)",
    ),
    # Datasets: read, never write
    ("can_read", "Dataset", "the datasets the role may read and their columns, which Explore needs"),
    ("menu_access", "Datasets", "the dataset list, to pick one for a new chart"),
    ("menu_access", "Data", "the menu the dataset list is in (its Databases entry is not granted)"),
    # The pages themselves
    ("menu_access", "Home", "the home page"),
    ("can_recent_activity", "Log", "the home page's recently viewed: one's own activity"),
    ("can_get", "MenuApi", "the menu bar"),
    ("can_read", "SecurityRestApi", "the CSRF token the pages send with every change"),
    ("can_language_pack", "Superset", "the interface's words"),
    ("can_log", "Superset", "the pages record their own events in Superset's action log"),
    ("can_read", "Theme", "the theme dashboards are drawn with"),
    # One's own account
    ("can_read", "CurrentUserRestApi", "who is logged in (/api/v1/me/), which every page asks"),
    ("can_write", "CurrentUserRestApi", "change one's own name or password"),
    ("can_read", "user", "one's own profile page, /user_info/"),
    ("can_userinfo", "UserDBModelView", "(the same)"),
    ("resetmypassword", "UserDBModelView", "change one's own password"),
    ("can_this_form_get", "ResetMyPasswordView", "(its form)"),
    ("can_this_form_post", "ResetMyPasswordView", "(its form)"),
)


class DeployError(RuntimeError):
    pass


def rison(value: Any) -> str:
    """Rison, the query encoding of Superset's list endpoints (``?q=(filters:!(…),page_size:100)``)."""
    if isinstance(value, bool):
        return "!t" if value else "!f"
    if value is None:
        return "!n"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        if value and all(ch.isalnum() or ch in "-_./~" for ch in value) and not value[0].isdigit():
            return value
        return "'" + value.replace("!", "!!").replace("'", "!'") + "'"
    if isinstance(value, list | tuple):
        return "!(" + ",".join(rison(item) for item in value) + ")"
    if isinstance(value, dict):
        return "(" + ",".join(f"{key}:{rison(item)}" for key, item in value.items()) + ")"
    raise TypeError(f"cannot encode {value!r} as rison")


def serving_uri(serving_db: Path) -> str:
    return f"duckdb:///{serving_db.resolve()}"


def zip_bundle(serving_db: Path, bundle_dir: Path = b.BUNDLE_DIR) -> bytes:
    """The bundle as a zip under one top folder, its database pointed at ``serving_db``."""
    files = sorted(path for path in bundle_dir.rglob("*.yaml"))
    if not any(path.name == "metadata.yaml" for path in files):
        raise DeployError(
            f"{bundle_dir} holds no metadata.yaml: write it with `python -m orchestration.dashboards.bundle`"
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            relative = path.relative_to(bundle_dir).as_posix()
            text = path.read_text(encoding="utf-8")
            if relative.startswith("databases/"):
                document = yaml.safe_load(text)
                document["sqlalchemy_uri"] = serving_uri(serving_db)
                text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
            archive.writestr(f"{BUNDLE_TOP_FOLDER}/{relative}", text)
    return buffer.getvalue()


@dataclass
class Deployment:
    dashboards: dict[str, int]  # slug → id
    charts: dict[str, int]  # chart key → id
    datasets: dict[str, int]  # dataset name → id
    roles: dict[str, int]  # role name → id


class Deployer:
    """A logged-in admin session on one Superset."""

    def __init__(
        self, base_url: str, username: str, password: str, protect: Callable[[str], None] | None = None
    ) -> None:
        """``protect`` is told every password this session gives a user (e.g. ``SupersetHome.protect``, which keeps
        it out of Superset's log)."""
        self.base_url = base_url.rstrip("/")
        self.protect = protect
        self.client = SupersetClient(host=self.base_url, username=username, password=password)

    # -- HTTP --------------------------------------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return f"{self.base_url}/api/v1/{path.lstrip('/')}"

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.client.get(self._url(path), params=params or None)
        if response.status_code != 200:
            raise DeployError(f"GET {path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json()

    def _send(self, method: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = getattr(self.client, method)(self._url(path), json=payload)
        if response.status_code not in (200, 201):
            raise DeployError(f"{method.upper()} {path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json()

    def list_all(self, resource: str, **query: Any) -> list[dict[str, Any]]:
        rows, page = [], 0
        while True:
            result = self.get(resource, q=rison({**query, "page": page, "page_size": 100}))
            rows.extend(result.get("result", []))
            if len(result.get("result", [])) < 100:
                return rows
            page += 1

    # -- import --------------------------------------------------------------------------------------------------
    def import_bundle(self, serving_db: Path, bundle_dir: Path = b.BUNDLE_DIR) -> None:
        if not serving_db.exists():
            raise DeployError(f"No serving database at {serving_db}: run `make run` (or `collab-benefits run`) first")
        archive = zip_bundle(serving_db, bundle_dir)
        response = self.client.post(
            self._url("assets/import/"),
            files={"bundle": ("dashboards.zip", archive, "application/zip")},
            data={"passwords": "{}", "sparse": "false"},
        )
        try:
            answer = response.json()
        except ValueError:
            answer = {"error": response.text[:2000]}
        if answer != {"message": "OK"}:
            raise DeployError(f"Superset refused the bundle (HTTP {response.status_code}): {json.dumps(answer)[:4000]}")

    def _database_id(self) -> int:
        for database in self.list_all("database/"):
            if database["database_name"] == b.DATABASE_NAME:
                return database["id"]
        raise DeployError(f"database {b.DATABASE_NAME!r} not found after import")

    def dataset_ids(self) -> dict[str, int]:
        database_id = self._database_id()
        ids = {}
        for dataset in self.list_all("dataset/"):
            if dataset["table_name"] in b.DATASET_BY_NAME and dataset.get("database", {}).get("id") == database_id:
                ids[dataset["table_name"]] = dataset["id"]
        missing = sorted(set(b.DATASET_BY_NAME) - set(ids))
        if missing:
            raise DeployError(f"datasets missing after import: {', '.join(missing)}")
        return ids

    def fix_filter_scopes(self) -> tuple[dict[str, int], dict[str, int]]:
        """Point every native filter's ``chartsInScope`` at the imported charts' ids; return the dashboards' and
        the charts' ids."""
        dashboard_ids: dict[str, int] = {}
        chart_ids: dict[str, int] = {}
        for dashboard in b.DASHBOARDS:
            found = self.get(f"dashboard/{dashboard.slug}")["result"]
            dashboard_ids[dashboard.slug] = found["id"]
            position = json.loads(found["position_json"])
            by_uuid = {
                item["meta"]["uuid"]: item["meta"]["chartId"]
                for item in position.values()
                if isinstance(item, dict) and item.get("type") == "CHART"
            }
            placeholders = b.placeholder_chart_ids(dashboard)
            real = {}
            for key, placeholder in placeholders.items():
                uuid = b.CHART_BY_KEY[key].uuid
                if uuid not in by_uuid:
                    raise DeployError(f"chart {key!r} is missing from dashboard {dashboard.slug!r} after import")
                real[placeholder] = by_uuid[uuid]
                chart_ids[key] = by_uuid[uuid]
            metadata = json.loads(found["json_metadata"])
            for native_filter in metadata.get("native_filter_configuration", []):
                native_filter["chartsInScope"] = [real[i] for i in native_filter.get("chartsInScope", []) if i in real]
            global_config = metadata.get("global_chart_configuration")
            if global_config:
                global_config["chartsInScope"] = sorted(real.values())
            self._send("put", f"dashboard/{found['id']}", {"json_metadata": json.dumps(metadata)})
        return dashboard_ids, chart_ids

    # -- security ------------------------------------------------------------------------------------------------
    def roles(self) -> dict[str, int]:
        return {role["name"]: role["id"] for role in self.list_all("security/roles/")}

    def ensure_role(self, name: str) -> int:
        existing = self.roles()
        if name in existing:
            return existing[name]
        return self._send("post", "security/roles/", {"name": name})["id"]

    def role_permissions(self, role: str) -> set[tuple[str, str]]:
        """The (permission, view menu) pairs a role has."""
        result = self.get(f"security/roles/{self.roles()[role]}/permissions/")["result"]
        return {(p["permission_name"], p["view_menu_name"]) for p in result}

    def _permission_view_ids(self, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """Permission-on-resource ids of the wanted (permission, view menu) pairs; every one must exist."""
        ids = {}
        for pair in self.list_all("security/permissions-resources/"):
            key = (pair["permission"]["name"], pair["view_menu"]["name"])
            if key in wanted:
                ids[key] = pair["id"]
        missing = sorted(wanted - set(ids))
        if missing:
            raise DeployError(
                "Superset has no permission "
                + ", ".join(f"{p} on {v}" for p, v in missing)
                + ": was `superset init` run, or did an upgrade rename it? (ROLE_PERMISSIONS in deploy.py)"
            )
        return ids

    def _datasource_access_ids(self, dataset_ids: dict[str, int]) -> dict[str, int]:
        """Permission-on-resource ids of ``datasource_access`` for each dataset, by dataset name."""
        permission = self.list_all(
            "security/permissions/", filters=[{"col": "name", "opr": "eq", "value": "datasource_access"}]
        )
        if not permission:
            raise DeployError("Superset has no datasource_access permission: was `superset init` run?")
        pairs = self.list_all(
            "security/permissions-resources/",
            filters=[{"col": "permission", "opr": "rel_o_m", "value": permission[0]["id"]}],
        )
        by_resource = {pair["view_menu"]["name"]: pair["id"] for pair in pairs}
        ids = {}
        for name, dataset_id in dataset_ids.items():
            resource = f"[{b.DATABASE_NAME}].[{name}](id:{dataset_id})"
            if resource not in by_resource:
                raise DeployError(f"no datasource_access permission for {resource}")
            ids[name] = by_resource[resource]
        return ids

    def _ensure_rls(self, name: str, description: str, table_ids: list[int], role_id: int, clause: str) -> None:
        payload = {
            "name": name,
            "description": description,
            "filter_type": "Regular",
            "tables": table_ids,
            "roles": [role_id],
            "group_key": "",
            "clause": clause,
        }
        existing = self.list_all("rowlevelsecurity/", filters=[{"col": "name", "opr": "eq", "value": name}])
        if existing:
            self._send("put", f"rowlevelsecurity/{existing[0]['id']}", payload)
        else:
            self._send("post", "rowlevelsecurity/", payload)

    def configure_security(self, dataset_ids: dict[str, int], serving_db: Path) -> dict[str, int]:
        """Roles for the three audiences, with ``ROLE_PERMISSIONS`` and read access to their dashboards'
        datasets; RLS per PMO role. A role's permissions are replaced, not added to: a role deployed earlier with
        more (Gamma's) keeps none of them."""
        base_ids = self._permission_view_ids({(permission, view) for permission, view, _ in ROLE_PERMISSIONS})
        base = sorted(set(base_ids.values()))
        access = self._datasource_access_ids(dataset_ids)
        collaboratives, members = _collaboratives_and_members(serving_db)
        role_ids = {}

        def grant(role: str, audience: str) -> int:
            role_id = self.ensure_role(role)
            datasets = [access[d.name] for d in b.DATASETS if audience in d.audiences]
            self._send("post", f"security/roles/{role_id}/permissions", {"permission_view_menu_ids": base + datasets})
            role_ids[role] = role_id
            return role_id

        grant(b.ICB_ANALYST, b.ICB_ANALYST)
        grant(b.EVALUATOR, b.EVALUATOR)
        for code in collaboratives:
            role = pmo_role(code)
            role_id = grant(role, b.PMO)
            by_collaborative = [
                dataset_ids[d.name] for d in b.DATASETS if b.PMO in d.audiences and d.rls == "collaborative"
            ]
            by_member = [dataset_ids[d.name] for d in b.DATASETS if b.PMO in d.audiences and d.rls == "member_trusts"]
            self._ensure_rls(
                f"{role}: own collaborative",
                f"{role} sees only collaborative {code}.",
                by_collaborative,
                role_id,
                f"collaborative_code = '{code}'",
            )
            if by_member:
                codes = ", ".join(f"'{org}'" for org in members.get(code, [])) or "NULL"
                self._ensure_rls(
                    f"{role}: own member trusts",
                    f"{role} sees only the trusts that are or were members of {code}.",
                    by_member,
                    role_id,
                    f"org_code IN ({codes})",
                )
        return role_ids

    def ensure_user(self, username: str, password: str, roles: list[str], first_name: str, last_name: str) -> int:
        role_ids = self.roles()
        payload = {
            "username": username,
            "first_name": first_name,
            "last_name": last_name,
            "email": f"{username}@localhost",
            "active": True,
            "password": password,
            "roles": [role_ids[name] for name in roles],
        }
        if self.protect is not None:
            self.protect(password)
        existing = self.list_all("security/users/", filters=[{"col": "username", "opr": "eq", "value": username}])
        if existing:
            self._send("put", f"security/users/{existing[0]['id']}", payload)
            return existing[0]["id"]
        return self._send("post", "security/users/", payload)["id"]

    # -- everything ----------------------------------------------------------------------------------------------
    def deploy(self, serving_db: Path, bundle_dir: Path = b.BUNDLE_DIR) -> Deployment:
        self.import_bundle(serving_db, bundle_dir)
        datasets = self.dataset_ids()
        dashboards, charts = self.fix_filter_scopes()
        roles = self.configure_security(datasets, serving_db)
        return Deployment(dashboards=dashboards, charts=charts, datasets=datasets, roles=roles)


def pmo_role(collaborative_code: str) -> str:
    return f"{b.PMO} {collaborative_code}"


def _collaboratives_and_members(serving_db: Path) -> tuple[list[str], dict[str, list[str]]]:
    """Collaborative codes, and the trusts that are or were members of each (read-only, like Superset)."""
    con = duckdb.connect(str(serving_db), read_only=True)
    try:
        codes = [
            row[0] for row in con.execute("select collaborative_code from main.dim_collaborative order by 1").fetchall()
        ]
        members: dict[str, list[str]] = {}
        for code, org in con.execute(
            "select collaborative_code, coalesce(current_org_code, org_code) from main.bridge_collaborative_membership "
            "union select collaborative_code, org_code from main.bridge_collaborative_membership order by 1, 2"
        ).fetchall():
            members.setdefault(code, []).append(org)
    finally:
        con.close()
    return codes, members
