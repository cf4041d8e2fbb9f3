"""Superset on 127.0.0.1, in its own virtual environment, with its state in a folder outside git.

Superset 6.1 needs SQLAlchemy 1.4 and pandas < 2.2 (SPEC §11), so it lives in ``.venv-superset`` (created by
``make .venv-superset``), not in the pipeline's ``.venv``; this module only runs its commands. Its home folder
(``.superset/`` by default, gitignored) holds the metadata database, the SECRET_KEY generated on first start and
the admin password generated when ``SUPERSET_ADMIN_PASSWORD`` is not set.

Nothing secret is written where another local user could read it (issue 17): the home folder is 0700 and every
file in it 0600 (Superset's commands run with umask 077, and what is already there is chmod-ed at each start);
the admin password never appears on a command line (``/proc/PID/cmdline`` is readable by every local user) but
reaches Superset's own Python on stdin; and every line written to the log passes through ``Scrubber``, which
masks the value after any secret-bearing flag and every known secret value (admin password, SECRET_KEY, the
passwords the deployer gives users).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from orchestration.resources import REPO_ROOT

SUPERSET_VENV = Path(os.environ.get("COLLAB_SUPERSET_VENV") or REPO_ROOT / ".venv-superset")
SUPERSET_CONFIG = REPO_ROOT / "dashboards" / "superset_config.py"
DEFAULT_HOME = Path(os.environ.get("SUPERSET_HOME") or REPO_ROOT / ".superset")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8088
ADMIN_USERNAME = os.environ.get("SUPERSET_ADMIN_USERNAME") or "admin"
#: Files and folders Superset's commands create get no group or other bits.
PRIVATE_UMASK = 0o077
#: A command-line flag whose name contains one of these carries a secret in its value (``--password X``,
#: ``--secret-key=X``): the value is masked wherever a command line is logged.
SECRET_FLAG_WORDS = ("password", "passwd", "secret", "token", "key", "credential")
MASK = "***"


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


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _write_private(path: Path, text: str) -> None:
    _private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode applies only to a new file
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


def _is_secret_flag(argument: str) -> bool:
    return argument.startswith("-") and any(word in argument.lower() for word in SECRET_FLAG_WORDS)


def mask_command(args: Sequence[str]) -> str:
    """A command line fit for a log: the value of every secret-bearing flag masked, not just the flag's name
    (``--password X`` becomes ``--password ***``, ``--password=X`` becomes ``--password=***``)."""
    shown: list[str] = []
    hide_next = False
    for argument in args:
        if hide_next:
            shown.append(MASK)
            hide_next = False
            continue
        name, equals, _ = argument.partition("=")
        if _is_secret_flag(name):
            if equals:
                shown.append(f"{name}={MASK}")
            else:
                shown.append(argument)
                hide_next = True
        else:
            shown.append(argument)
    return " ".join(shown)


@dataclass
class Scrubber:
    """Known secret values, masked in any text before it is written to a log."""

    values: set[str] = field(default_factory=set)

    def add(self, *values: str | None) -> None:
        # Very short values would mask ordinary words; no secret made or accepted here is that short.
        self.values.update(v for v in values if v and len(v) >= 6)

    def __call__(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text


#: Each home's known secrets, by its resolved path.
_SCRUBBERS: dict[Path, Scrubber] = {}


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

    @property
    def scrubber(self) -> Scrubber:
        """The secret values to keep out of this home's log (one registry per home, for this process)."""
        return _SCRUBBERS.setdefault(self.path.resolve(), Scrubber())

    def protect(self, *values: str | None) -> None:
        """Register secret values (e.g. the passwords the deployer gives users) to be masked in this home's log."""
        self.scrubber.add(*values)

    def protect_known_secrets(self) -> None:
        """Register the SECRET_KEY and the admin password, from the environment or the secret files."""
        self.protect(os.environ.get("SUPERSET_SECRET_KEY"), os.environ.get("SUPERSET_ADMIN_PASSWORD"))
        for secret_file in (self.secret_key_file, self.admin_password_file):
            if secret_file.exists():
                self.protect(secret_file.read_text().strip())

    def secure(self) -> None:
        """The home 0700, every folder in it 0700 and every file 0600: also what an earlier version, or Superset
        before umask 077, left readable. Symbolic links are not followed."""
        _private_dir(self.path)
        for folder, folders, files in os.walk(self.path):
            for name in folders:
                path = Path(folder, name)
                if not path.is_symlink():
                    path.chmod(0o700)
            for name in files:
                path = Path(folder, name)
                if not path.is_symlink():
                    path.chmod(0o600)

    def open_log(self) -> int:
        """The log, opened for appending, created 0600 (and made 0600 if it was not)."""
        _private_dir(self.path)
        fd = os.open(self.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)
        return fd

    def scrub_log(self) -> None:
        """Mask the known secrets in what the log already holds (a log written before they were masked: until
        issue 17 the launcher wrote the admin password after ``--password``)."""
        if not self.log_file.exists():
            return
        text = self.log_file.read_text(errors="replace")
        scrubbed = self.scrubber(text)
        if scrubbed != text:
            _write_private(self.log_file.with_name(self.log_file.name + ".scrubbing"), scrubbed.removesuffix("\n"))
            os.replace(self.log_file.with_name(self.log_file.name + ".scrubbing"), self.log_file)

    def log(self, text: str) -> None:
        fd = self.open_log()
        with os.fdopen(fd, "a") as log:
            log.write(self.scrubber(text))

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


def _run(home: SupersetHome, command: Sequence[str], shown: str, stdin: str | None = None, check: bool = True) -> str:
    """Run one of Superset's commands with umask 077; log its (masked) command line and its scrubbed output."""
    result = subprocess.run(
        list(command),
        env=home.environment(),
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        umask=PRIVATE_UMASK,
    )
    output = result.stdout + result.stderr
    home.log(f"$ {shown}\n{output}\n")
    if check and result.returncode != 0:
        raise SupersetStartError(f"`{shown}` failed (exit {result.returncode}); see {home.log_file}")
    return home.scrubber(output)


def _superset(home: SupersetHome, *args: str, venv: Path = SUPERSET_VENV, check: bool = True) -> str:
    return _run(home, [str(superset_executable(venv)), *args], f"superset {mask_command(args)}", check=check)


#: Creates the admin, or resets its password, inside Superset's app context. The password arrives on stdin: it is
#: never on a command line (``fab create-admin --password X`` would put it in /proc/PID/cmdline for every local
#: user to read, and in any log of the command).
_ADMIN_SNIPPET = """
import sys
from superset.app import create_app

username, first_name, last_name, email, reset = sys.argv[1:6]
password = sys.stdin.read()
if not password:
    sys.exit("no password on stdin")
app = create_app()
with app.app_context():
    sm = app.appbuilder.sm
    user = sm.find_user(username=username)
    if user is None:
        if not sm.add_user(username, first_name, last_name, email, sm.find_role(sm.auth_role_admin), password=password):
            sys.exit(f"the admin {username!r} could not be created")
        print(f"admin {username!r} created")
    elif reset == "reset":
        sm.reset_password(user.id, password)
        print(f"admin {username!r}: password reset")
    else:
        print(f"admin {username!r} already exists: password unchanged")
"""


def ensure_admin(home: SupersetHome, password: str, reset: bool, venv: Path = SUPERSET_VENV) -> str:
    """Create the admin with ``password`` (given to Superset's Python on stdin), or, when it exists and ``reset``,
    set its password. Returns what the snippet printed."""
    superset_executable(venv)
    args = [ADMIN_USERNAME, "Warehouse", "Admin", f"{ADMIN_USERNAME}@localhost", "reset" if reset else "keep"]
    return _run(
        home,
        [str(venv / "bin" / "python"), "-c", _ADMIN_SNIPPET, *args],
        f"python -c <create the admin, or reset its password; password on stdin> {' '.join(args)}",
        stdin=password,
    )


def initialise(home: SupersetHome, venv: Path = SUPERSET_VENV) -> tuple[str, bool]:
    """Create or upgrade the metadata database, sync Superset's built-in roles, and create the admin.

    Returns (admin password, whether it was generated now). Idempotent: a second call changes nothing, except
    that a password given in SUPERSET_ADMIN_PASSWORD replaces the admin's password.
    """
    home.secure()
    home.ensure_secret_key()
    password, generated = home.admin_password()
    home.protect_known_secrets()
    home.scrub_log()
    _superset(home, "db", "upgrade", venv=venv)
    _superset(home, "init", venv=venv)
    ensure_admin(home, password, reset=bool(os.environ.get("SUPERSET_ADMIN_PASSWORD")), venv=venv)
    home.secure()
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
        self._pump: threading.Thread | None = None

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
        self.home.secure()
        self.home.protect_known_secrets()
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
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            umask=PRIVATE_UMASK,
        )
        # Superset's output reaches the log through the scrubber, line by line, not straight from gunicorn.
        self._pump = threading.Thread(
            target=_pump_lines, args=(self.process.stdout, self.home), name="superset-log", daemon=True
        )
        self._pump.start()
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
        finally:
            if self._pump is not None:
                self._pump.join(timeout=10)

    def __enter__(self) -> SupersetServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pump_lines(stream: Iterable[bytes], home: SupersetHome) -> None:
    """Copy Superset's output into its log, each line scrubbed of known secrets, until Superset closes it."""
    fd = home.open_log()
    try:
        for line in stream:
            os.write(fd, home.scrubber(line.decode("utf-8", errors="replace")).encode())
    except (OSError, ValueError) as error:  # the log went away: say so once, keep Superset's pipe drained
        print(f"Superset's log stopped: {error}", file=sys.stderr)
        for _ in stream:
            pass
    finally:
        os.close(fd)
