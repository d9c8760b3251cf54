"""Fixtures of the SDK end-to-end suite.

One `cph serve` process is started per test session, on a fresh data directory and, with
CPH_TEST_BACKEND=postgres, on a fresh PostgreSQL database (dropped again at the end).

Environment:
  CPH_TEST_BACKEND    sqlite (default) or postgres
  CPH_TEST_PG_URL     PostgreSQL server URL used to create the session's database
                      (default postgres://postgres@127.0.0.1:5432/postgres)
  CPH_BIN             the server binary (default <repo>/target/debug/cph)
  CPH_TEST_KEEP_DATA  set to 1 to keep the data directory (and database) after the session
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest

from cph_sdk import *  # noqa: F401,F403  (helpers, re-exported for the test modules)
from cph_sdk import (
    Offer,
    buy_running_servers,
    load_offer,
    make_client,
    server_phones,
    unique,
)

REPO = Path(__file__).resolve().parents[2]
BACKEND = os.environ.get("CPH_TEST_BACKEND", "sqlite")
PG_URL = os.environ.get("CPH_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
CPH_BIN = Path(os.environ.get("CPH_BIN", REPO / "target" / "debug" / "cph"))
KEEP = os.environ.get("CPH_TEST_KEEP_DATA") == "1"

# Virtual phone lifecycle durations: short, but long enough to observe the transitional states.
PHONE_DURATIONS = {
    "CPH_PHONE_BOOT_MS": os.environ.get("CPH_TEST_PHONE_BOOT_MS", "200"),
    "CPH_PHONE_STOP_MS": os.environ.get("CPH_TEST_PHONE_STOP_MS", "50"),
    "CPH_PHONE_RESET_MS": os.environ.get("CPH_TEST_PHONE_RESET_MS", "200"),
}

BOOTSTRAP_KEYS = (
    "api_endpoint",
    "s3_endpoint",
    "region",
    "domain_name",
    "user_name",
    "password",
    "access_key",
    "secret_key",
    "project_id",
    "default_vpc_id",
    "default_subnet_id",
)

_RUNNING: list["CphServer"] = []


def pytest_report_header(config):
    return [f"cph backend: {BACKEND}", f"cph binary: {CPH_BIN}"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Appends the tail of the server log to the report of every failing test."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for s in _RUNNING:
            rep.sections.append((f"cph server log, last lines ({s.log_path})", s.log_tail(60)))


# ---------------------------------------------------------------------------------------------
# PostgreSQL databases


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", PG_URL, "-c", sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _database_url(name: str) -> str:
    u = urllib.parse.urlsplit(PG_URL)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


def create_database() -> tuple[str, str]:
    name = f"cph_sdk_{secrets.token_hex(6)}"
    try:
        _psql(f'CREATE DATABASE "{name}"')
    except subprocess.CalledProcessError as e:
        pytest.exit(f"cannot create PostgreSQL database {name} on {PG_URL}: {e.stderr}", returncode=3)
    return name, _database_url(name)


def drop_database(name: str) -> None:
    try:
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except subprocess.CalledProcessError as e:
        print(f"warning: could not drop database {name}: {e.stderr}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# The server process


@dataclass
class Tenant:
    domain: str
    project: str
    project_id: str
    user: str
    access_key: str
    secret_key: str


class CphServer:
    """A running `cph serve` and the bootstrap administrator's credentials."""

    def __init__(self, data_dir: Path, database_url: str | None, env: dict | None = None):
        self.env_overrides = dict(env or {})
        self.data_dir = data_dir
        self.database_url = database_url
        self.backend = "postgres" if database_url else "sqlite"
        self.log_path = data_dir.parent / "cph-serve.log"
        self.proc: subprocess.Popen | None = None
        self.bootstrap: dict = {}

    # -- lifecycle --

    def _store_args(self) -> list[str]:
        args = ["--data-dir", str(self.data_dir)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        return args

    def start(self, timeout: float = 90) -> None:
        help_text = subprocess.run(
            [str(CPH_BIN), "serve", "--help"], capture_output=True, text=True, timeout=30
        ).stdout
        args = [str(CPH_BIN), "serve", "--listen", "127.0.0.1:0", *self._store_args()]
        if "--s3-listen" in help_text:
            args += ["--s3-listen", "127.0.0.1:0"]
        env = _server_env()
        env.update(PHONE_DURATIONS)
        env.update(self.env_overrides)
        env.setdefault("RUST_BACKTRACE", "1")
        log = open(self.log_path, "ab")
        log.write(f"$ {' '.join(args)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_die_with_parent,
        )
        log.close()
        path = self.data_dir / "bootstrap.json"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"cph serve exited with status {self.proc.returncode} before it was ready:\n{self.log_tail(80)}"
                )
            if path.exists():
                try:
                    self.bootstrap = json.loads(path.read_text())
                    if self.bootstrap.get("api_endpoint"):
                        break
                except (json.JSONDecodeError, OSError):
                    pass  # being written
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"cph serve wrote no {path} within {timeout}s:\n{self.log_tail(80)}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"warning: cph serve did not stop within {timeout}s of SIGTERM; killing it", file=sys.stderr)
            self.proc.kill()
            return self.proc.wait(10)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as e:
            return f"(no log: {e})"
        return "\n".join(text.splitlines()[-lines:])

    # -- bootstrap values --

    def __getattr__(self, name):
        # endpoint, ak, sk and the raw bootstrap keys (region, project_id, default_vpc_id, ...)
        aliases = {"endpoint": "api_endpoint", "ak": "access_key", "sk": "secret_key"}
        b = self.__dict__.get("bootstrap") or {}
        key = aliases.get(name, name)
        if key in b:
            return b[key]
        raise AttributeError(name)

    # -- administration --

    def admin(self, *args: str) -> dict | list | None:
        """Runs `cph admin <args>` on the same store; returns its JSON output."""
        cmd = [str(CPH_BIN), "admin", *self._store_args(), *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=_server_env())
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed with status {r.returncode}:\n{r.stdout}\n{r.stderr}")
        out = r.stdout.strip()
        if not out:
            return None
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            # Tolerate log lines around a single JSON document.
            start = min(i for i in (out.find("{"), out.find("[")) if i >= 0)
            return json.loads(out[start:])

    def create_tenant(self, actions: tuple[str, ...] = ("*",)) -> Tenant:
        """A new domain with one project and one user holding `actions` on that project, and an
        AK/SK pair for the user."""
        domain, project, user = unique("dom"), unique("prj"), unique("usr")
        self.admin("domain", "create", domain)
        p = self.admin("project", "create", "--domain", domain, project)
        self.admin("user", "create", "--domain", domain, user)
        k = self.admin("key", "create", "--domain", domain, "--user", user)
        for action in actions:
            self.admin("grant", "--domain", domain, "--user", user, "--project", project, action)
        return Tenant(
            domain=domain,
            project=project,
            project_id=_find(p, "project_id"),
            user=user,
            access_key=_find(k, "access_key"),
            secret_key=_find(k, "secret_key"),
        )

    def client_for(self, tenant: Tenant):
        return make_client(self.endpoint, tenant.access_key, tenant.secret_key, tenant.project_id)


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM the server if the test process dies, so
    an interrupted run leaves no server behind."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def _server_env() -> dict:
    """The environment for server processes: the caller's, minus any CPH_* setting that could
    point them elsewhere (the suite passes what it wants explicitly)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CPH_") or k == "CPH_LOG"}


def _find(obj, key: str):
    """The first value of `key` in a JSON document (searched depth-first)."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        children = obj.values()
    elif isinstance(obj, list):
        children = obj
    else:
        children = ()
    for c in children:
        try:
            return _find(c, key)
        except KeyError:
            pass
    raise KeyError(f"{key} not in {obj!r}")


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def cph():
    """The session's server. Attributes: endpoint, ak, sk, project_id, region, domain_name,
    user_name, default_vpc_id, default_subnet_id, s3_endpoint, bootstrap (dict), data_dir,
    database_url, backend, log_path; methods admin(*args), create_tenant(actions), client_for(t)."""
    if not CPH_BIN.exists():
        pytest.exit(f"server binary {CPH_BIN} not found; build it with: cargo build -p cph", returncode=3)
    tmp = Path(tempfile.mkdtemp(prefix=f"cph-sdk-{BACKEND}-"))
    db_name = db_url = None
    if BACKEND == "postgres":
        db_name, db_url = create_database()
    elif BACKEND != "sqlite":
        pytest.exit(f"unknown CPH_TEST_BACKEND {BACKEND!r} (sqlite or postgres)", returncode=3)
    # The suite calls RunSyncCommand far more often than the documented 6 calls per minute and
    # user; test_adb.py checks that limit on a server of its own.
    server = CphServer(tmp / "data", db_url, env={"CPH_SYNC_COMMANDS_PER_MINUTE": "0"})
    server.data_dir.mkdir()
    try:
        server.start()
        _RUNNING.append(server)
        yield server
    finally:
        if server in _RUNNING:
            _RUNNING.remove(server)
        server.stop()
        if KEEP:
            print(f"\nkept: data dir {server.data_dir}, log {server.log_path}, database {db_url}", file=sys.stderr)
        else:
            if db_name:
                drop_database(db_name)
            shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def client(cph):
    """An SDK client of the bootstrap administrator (all permissions on the default project)."""
    return make_client(cph.endpoint, cph.ak, cph.sk, cph.project_id)


@pytest.fixture(scope="session")
def offer(client) -> Offer:
    """The catalog choice used for purchases (see cph_sdk.load_offer)."""
    return load_offer(client)


@pytest.fixture(scope="session")
def other_tenant(cph) -> Tenant:
    return cph.create_tenant(("*",))


@pytest.fixture(scope="session")
def other_client(cph, other_tenant):
    """A client of another domain and project, with all permissions on its own project."""
    return cph.client_for(other_tenant)


class PhonePool:
    """Hands out running phones of servers bought for the session, each phone to one test only.
    Buys another server when the bought ones are used up."""

    def __init__(self, client, cph, offer):
        self.client, self.cph, self.offer = client, cph, offer
        self.server_ids: list[str] = []
        self._free: list = []

    def _refill(self):
        sid = buy_running_servers(self.client, self.cph, 1, self.offer)[0]
        self.server_ids.append(sid)
        phones = sorted(server_phones(self.client, sid), key=lambda p: p.phone_id)
        self._free.extend(phones)

    def take(self, n: int = 1) -> list:
        """`n` running phones (SDK `Phone` models), all on one server."""
        if n > self.offer.phone_capacity:
            raise ValueError(f"a server has only {self.offer.phone_capacity} phones")
        if len(self._free) < n:
            self._free = []
            self._refill()
        taken, self._free = self._free[:n], self._free[n:]
        return taken

    def take_ids(self, n: int = 1) -> list[str]:
        return [p.phone_id for p in self.take(n)]


@pytest.fixture(scope="session")
def phone_pool(client, cph, offer) -> PhonePool:
    return PhonePool(client, cph, offer)


@pytest.fixture(scope="session")
def shared_server(client, phone_pool) -> str:
    """The id of a running server of the bootstrap project, shared by read-mostly tests."""
    if not phone_pool.server_ids:
        phone_pool._refill()
    return phone_pool.server_ids[0]
