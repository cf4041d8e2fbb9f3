"""Superset on 127.0.0.1, in its own virtual environment, with its state in a folder outside git.

Superset 6.1 needs SQLAlchemy 1.4 and pandas < 2.2 (SPEC §11), so it lives in ``.venv-superset`` (created by
``make .venv-superset``), not in the pipeline's ``.venv``; this module only runs its commands. Its home folder
(``.superset/`` by default, gitignored) holds the metadata database, the SECRET_KEY generated on first start and
the admin password generated when ``SUPERSET_ADMIN_PASSWORD`` is not set, both readable by the owner only.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from orchestration.resources import REPO_ROOT

SUPERSET_VENV = Path(os.environ.get("COLLAB_SUPERSET_VENV") or REPO_ROOT / ".venv-superset")
SUPERSET_CONFIG = REPO_ROOT / "dashboards" / "superset_config.py"
DEFAULT_HOME = Path(os.environ.get("SUPERSET_HOME") or REPO_ROOT / ".superset")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8088
ADMIN_USERNAME = os.environ.get("SUPERSET_ADMIN_USERNAME") or "admin"


class SupersetNotInstalled(RuntimeError):
    pass


class SupersetStartError(RuntimeError):
    pass


def superset_executable(venv: Path = SUPERSET_VENV) -> Path:
    executable = venv / "bin" / "superset"
    if not executable.exists():
        raise SupersetNotInstalled(
            f"Superset is not installed ({executable} is missing). Run `make .venv-superset` (or `make dashboards`, "
            "which creates it): Superset 6.1.0 and duckdb-engine in their own virtual environment, from PyPI."
        )
    return executable


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


@dataclass(frozen=True)
class SupersetHome:
    """Superset's state for one deployment: metadata database, secrets, log."""

    path: Path = DEFAULT_HOME

    @property
    def secret_key_file(self) -> Path:
        return self.path / "secret_key.secret"

    @property
    def admin_password_file(self) -> Path:
        return self.path / "admin_password.secret"

    @property
    def metadata_db(self) -> Path:
        return self.path / "superset.db"

    @property
    def log_file(self) -> Path:
        return self.path / "superset.log"

    def ensure_secret_key(self) -> None:
        """SECRET_KEY signs sessions and encrypts stored secrets: from SUPERSET_SECRET_KEY, else generated once."""
        if not os.environ.get("SUPERSET_SECRET_KEY") and not self.secret_key_file.exists():
            _write_private(self.secret_key_file, secrets.token_urlsafe(48))

    def admin_password(self) -> tuple[str, bool]:
        """(password, generated now): SUPERSET_ADMIN_PASSWORD, else the one generated on the first start."""
        if os.environ.get("SUPERSET_ADMIN_PASSWORD"):
            return os.environ["SUPERSET_ADMIN_PASSWORD"], False
        if self.admin_password_file.exists():
            return self.admin_password_file.read_text().strip(), False
        password = secrets.token_urlsafe(16)
        _write_private(self.admin_password_file, password)
        return password, True

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "SUPERSET_HOME": str(self.path),
                "SUPERSET_CONFIG_PATH": str(SUPERSET_CONFIG),
                "FLASK_APP": "superset",
                "PYTHONUNBUFFERED": "1",
            }
        )
        # The pipeline's virtual environment must not leak into Superset's.
        env.pop("VIRTUAL_ENV", None)
        env.pop("PYTHONHOME", None)
        return env


def _superset(home: SupersetHome, *args: str, venv: Path = SUPERSET_VENV, check: bool = True) -> str:
    result = subprocess.run(
        [str(superset_executable(venv)), *args],
        env=home.environment(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    with home.log_file.open("a") as log:
        log.write(f"$ superset {' '.join(a if 'password' not in a else '***' for a in args)}\n{output}\n")
    if check and result.returncode != 0:
        raise SupersetStartError(f"`superset {args[0]}` failed (exit {result.returncode}); see {home.log_file}")
    return output


def initialise(home: SupersetHome, venv: Path = SUPERSET_VENV) -> tuple[str, bool]:
    """Create or upgrade the metadata database, sync Superset's built-in roles, and create the admin.

    Returns (admin password, whether it was generated now). Idempotent: a second call changes nothing, except
    that a password given in SUPERSET_ADMIN_PASSWORD replaces the admin's password.
    """
    home.path.mkdir(parents=True, exist_ok=True)
    home.ensure_secret_key()
    _superset(home, "db", "upgrade", venv=venv)
    _superset(home, "init", venv=venv)
    password, generated = home.admin_password()
    created = _superset(
        home,
        "fab",
        "create-admin",
        "--username",
        ADMIN_USERNAME,
        "--firstname",
        "Warehouse",
        "--lastname",
        "Admin",
        "--email",
        f"{ADMIN_USERNAME}@localhost",
        "--password",
        password,
        venv=venv,
    )
    if "already exists" in created and os.environ.get("SUPERSET_ADMIN_PASSWORD"):
        _superset(home, "fab", "reset-password", "--username", ADMIN_USERNAME, "--password", password, venv=venv)
    return password, generated


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class SupersetServer:
    """Superset's web server (gunicorn) on one host and port, started as its own process group."""

    def __init__(
        self,
        home: SupersetHome,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        workers: int = 2,
        threads: int = 4,
        venv: Path = SUPERSET_VENV,
    ) -> None:
        self.home, self.host, self.port = home, host, port
        self.workers, self.threads, self.venv = workers, threads, venv
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 180) -> SupersetServer:
        superset_executable(self.venv)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex((self.host, self.port)) == 0:
                raise SupersetStartError(
                    f"{self.host}:{self.port} is already in use: stop what is listening there or choose another port"
                )
        log = self.home.log_file.open("a")
        self.process = subprocess.Popen(
            [
                str(self.venv / "bin" / "gunicorn"),
                "--bind",
                f"{self.host}:{self.port}",
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
                "--worker-class",
                "gthread",
                "--timeout",
                "120",
                # gunicorn closes an idle connection after 2 s by default; a client that reuses it at that moment
                # gets "connection closed without response" (seen in the dashboard tests). Browsers keep theirs
                # open about a minute.
                "--keep-alive",
                "75",
                "--limit-request-line",
                "0",
                "--limit-request-field_size",
                "0",
                "superset.app:create_app()",
            ],
            env=self.home.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.wait_until_healthy(timeout)
        return self

    def wait_until_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise SupersetStartError(
                    f"Superset exited during start-up (exit {self.process.returncode}); see {self.home.log_file}"
                )
            try:
                if requests.get(f"{self.url}/health", timeout=5).text.strip() == "OK":
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise SupersetStartError(
            f"Superset did not answer on {self.url} within {timeout:.0f} s; see {self.home.log_file}"
        )

    def wait(self) -> int:
        assert self.process is not None
        return self.process.wait()

    def stop(self) -> None:
        """Stop gunicorn and its workers (the process group this object started, nothing else)."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass

    def __enter__(self) -> SupersetServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
