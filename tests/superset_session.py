"""One real Superset for the whole test session (the ``superset`` fixture, registered by conftest.py).

Superset from .venv-superset on a free port with a temporary home, the bundle deployed over the pipeline's
serving database, and one user per audience. ``tests/test_dashboards.py`` (the dashboards work) and
``tests/test_dashboards_security.py`` (they hold against someone trying) share it: one start per session.
"""

from __future__ import annotations

import os
import time

import pytest

from orchestration.dashboards import bundle as b
from orchestration.dashboards.deploy import Deployer, pmo_role
from orchestration.dashboards.server import (
    ADMIN_USERNAME,
    SUPERSET_VENV,
    SupersetHome,
    SupersetServer,
    free_port,
    initialise,
)

PMO_CODE = "SLP"
PMO_USER, PMO_PASSWORD = "pmo_slp_test", "pmo-slp-Test-password-1"
#: One user for each of the other audiences: (username, password, role).
AUDIENCE_USERS = {
    b.ICB_ANALYST: ("icb_analyst_test", "icb-analyst-Test-password-2", b.ICB_ANALYST),
    b.EVALUATOR: ("evaluator_test", "evaluator-Test-password-3", b.EVALUATOR),
}


def log_tail(home: SupersetHome) -> str:
    return home.log_file.read_text(errors="replace")[-4000:] if home.log_file.exists() else "(no log)"


@pytest.fixture(scope="session")
def superset(bundled_run, tmp_path_factory):
    """Superset from .venv-superset on a free port with a temporary home, the bundle deployed."""
    if not (SUPERSET_VENV / "bin" / "superset").exists():
        pytest.fail(
            f"{SUPERSET_VENV} is missing: run `make .venv-superset` (`make test` creates it) to install Superset "
            "6.1.0 and duckdb-engine in their own virtual environment"
        )
    assert bundled_run.serving_db.exists(), "the pipeline did not publish a serving database"
    home = SupersetHome(tmp_path_factory.mktemp("superset-home"))
    started = time.monotonic()
    saved = os.environ.pop("SUPERSET_ADMIN_PASSWORD", None), os.environ.pop("SUPERSET_SECRET_KEY", None)
    try:
        password, generated = initialise(home)
        assert generated and home.admin_password_file.exists() and home.secret_key_file.exists()
        assert oct(home.secret_key_file.stat().st_mode & 0o777) == "0o600"
        server = SupersetServer(home, port=free_port(), workers=2, threads=4)
        server.start()
    except Exception as error:
        pytest.fail(f"Superset did not start: {error}\n{log_tail(home)}")
    finally:
        for name, value in zip(("SUPERSET_ADMIN_PASSWORD", "SUPERSET_SECRET_KEY"), saved, strict=True):
            if value is not None:
                os.environ[name] = value
    try:
        deployer = Deployer(server.url, ADMIN_USERNAME, password, protect=home.protect)
        deployment = deployer.deploy(bundled_run.serving_db)
        deployer.ensure_user(PMO_USER, PMO_PASSWORD, [pmo_role(PMO_CODE)], "Programme", "Office")
        for username, user_password, role in AUDIENCE_USERS.values():
            deployer.ensure_user(username, user_password, [role], role.split()[0], "Tester")
        print(f"Superset initialised, started and deployed in {time.monotonic() - started:.0f} s at {server.url}")
        yield {
            "server": server,
            "home": home,
            "password": password,
            "deployer": deployer,
            "deployment": deployment,
            "serving_db": bundled_run.serving_db,
        }
    finally:
        server.stop()
