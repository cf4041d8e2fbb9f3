"""``collab-benefits dashboards``: Superset with the four dashboards, reading the serving database read-only."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from orchestration.dashboards import bundle as b
from orchestration.dashboards.deploy import Deployer, DeployError, pmo_role
from orchestration.dashboards.server import (
    ADMIN_USERNAME,
    DEFAULT_HOST,
    DEFAULT_PORT,
    SupersetHome,
    SupersetNotInstalled,
    SupersetServer,
    SupersetStartError,
    initialise,
    superset_executable,
)


def serve_dashboards(
    serving_db: Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    home: SupersetHome | None = None,
    serve: bool = True,
) -> int:
    """Initialise Superset, start it, import the dashboards and (unless ``serve`` is false) keep serving until
    interrupted. Returns the exit code: 0 done, 1 Superset failed, 2 something to set up first."""
    home = home or SupersetHome()
    if not serving_db.exists():
        print(f"collab-benefits dashboards: no serving database at {serving_db}: run `make run` first")
        return 2
    try:
        superset_executable()
    except SupersetNotInstalled as error:
        print(f"collab-benefits dashboards: {error}")
        return 2
    print(f"Superset's home (metadata database, generated secrets, log): {home.path}")
    server = SupersetServer(home, host=host, port=port)

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C, or a plain kill, stops Superset too: it runs in its own process group and would outlive us. (SIGINT is
    # set explicitly because a shell starting us in the background hands it down ignored.)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        password, generated = initialise(home)
        print(f"Starting Superset on {server.url} ...")
        server.start()
        deployment = Deployer(server.url, ADMIN_USERNAME, password, protect=home.protect).deploy(serving_db)
    except (SupersetStartError, DeployError) as error:
        server.stop()
        print(f"collab-benefits dashboards: {error}")
        return 1
    except BaseException:
        server.stop()
        raise

    print(f"\nDashboards, reading {serving_db} read-only:")
    for dashboard in b.DASHBOARDS:
        print(f"  {dashboard.title:<18} {server.url}/superset/dashboard/{dashboard.slug}/")
    print(f"Log in as {ADMIN_USERNAME!r}; password: ", end="")
    if os.environ.get("SUPERSET_ADMIN_PASSWORD"):
        print("the one in SUPERSET_ADMIN_PASSWORD")
    elif generated:
        print(password)
        print(f"  (generated now and shown only this once; kept in {home.admin_password_file}, readable by you only)")
    else:
        print(f"in {home.admin_password_file} (generated on the first start)")
    codes = sorted(role for role in deployment.roles if role.startswith(b.PMO + " "))
    print(
        f"Roles for your users (Settings > List Users): {b.ICB_ANALYST!r}, {b.EVALUATOR!r}, and one PMO role per "
        f"collaborative ({', '.join(codes)}), e.g. {pmo_role('SLP')!r} sees only SLP. SQL Lab is for Admin only."
    )
    if not serve:
        server.stop()
        return 0
    print("Serving until interrupted (Ctrl-C stops Superset).")
    try:
        return server.wait()
    except KeyboardInterrupt:
        print("\nStopping Superset.")
        return 0
    finally:
        server.stop()
