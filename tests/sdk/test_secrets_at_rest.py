"""Secret keys at rest: the store holds AK/SK secrets encrypted under the master key.

A server of its own: a key issued with `cph admin` is printed once, never listed, never stored in
clear (the SQLite file and its WAL, or the PostgreSQL column); the SDK and the S3 endpoint still
sign with it; a revoked key stops at once; a restart with the same key file (the default
`secrets.key`, or the same bytes given as `CPH_MASTER_KEY_FILE`) works, while another key file or
a missing one fails start-up with a clear message that shows no key material. Fixed bootstrap
credentials (`CPH_BOOTSTRAP_ACCESS_KEY` / `_SECRET_KEY`) keep working across restarts.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import boto3
import pytest
from botocore.client import Config

import conftest
from conftest import BACKEND, CPH_BIN, CphServer, create_database, drop_database
from cph_sdk import ListCloudPhoneServersRequest, expect_error, make_client


def _stored_secret_column(server: CphServer) -> list[str]:
    """Every `access_keys.secret_key` value as stored."""
    if server.database_url:
        r = subprocess.run(
            ["psql", "-X", "-A", "-t", "-d", server.database_url, "-c", "SELECT secret_key FROM access_keys"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return [line for line in r.stdout.splitlines() if line]
    import sqlite3

    c = sqlite3.connect(f"file:{server.data_dir / 'cph.db'}?mode=ro", uri=True, timeout=10)
    try:
        return [row[0] for row in c.execute("SELECT secret_key FROM access_keys")]
    finally:
        c.close()


def _sqlite_files_contain(server: CphServer, needle: str) -> list[str]:
    """The SQLite files (database, WAL, shared memory) whose bytes contain `needle`."""
    found = []
    for name in ("cph.db", "cph.db-wal", "cph.db-shm"):
        p = server.data_dir / name
        if p.exists() and needle.encode() in p.read_bytes():
            found.append(name)
    return found


def _admin(server: CphServer, *args: str, master_key_file: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [str(CPH_BIN), "admin", *server._store_args()]
    if master_key_file is not None:
        cmd += ["--master-key-file", str(master_key_file)]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60, env=conftest._server_env())


def _api_works(server: CphServer, ak: str, sk: str, project_id: str) -> None:
    client = make_client(server.endpoint, ak, sk, project_id)
    assert isinstance(client.list_cloud_phone_servers(ListCloudPhoneServersRequest()).servers, list)


def _s3_works(server: CphServer, ak: str, sk: str) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=server.s3_endpoint,
        aws_access_key_id=ak,
        aws_secret_access_key=sk,
        region_name=server.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    assert isinstance(s3.list_buckets()["Buckets"], list)


def _forget_endpoint(data_dir: Path) -> None:
    """Drops the previous run's endpoint from bootstrap.json, so that start() waits for the new
    process (the file keeps the administrator's password across runs)."""
    path = data_dir / "bootstrap.json"
    if path.exists():
        b = json.loads(path.read_text())
        b.pop("api_endpoint", None)
        path.write_text(json.dumps(b))


def _restart(server: CphServer) -> None:
    _forget_endpoint(server.data_dir)
    server.start()


def _start_fails(server: CphServer) -> str:
    """Starts `server`, which must exit before it is ready; returns its log."""
    _forget_endpoint(server.data_dir)
    with pytest.raises(RuntimeError) as e:
        server.start(timeout=60)
    server.stop()
    return str(e.value)


@pytest.fixture
def own_server():
    base = Path(tempfile.mkdtemp(prefix="cph-secrets-"))
    db_name, db_url = (None, None)
    if BACKEND == "postgres":
        db_name, db_url = create_database()
    (base / "data").mkdir()
    servers: list[CphServer] = []

    def make(env: dict | None = None) -> CphServer:
        s = CphServer(base / "data", db_url, env=env)
        servers.append(s)
        return s

    try:
        yield base, make
    finally:
        for s in servers:
            s.stop()
        if db_name:
            drop_database(db_name)
        shutil.rmtree(base, ignore_errors=True)


def test_issued_secrets_are_encrypted_at_rest_and_survive_restarts(own_server):
    base, make = own_server
    server = make()
    server.start()
    key_file = server.data_dir / "secrets.key"
    assert key_file.stat().st_size == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    tenant = server.create_tenant()
    assert len(tenant.secret_key) == 40
    boot_sk = server.sk

    # Stored sealed: never the secret, always the versioned form.
    column = _stored_secret_column(server)
    assert len(column) == 2
    assert all(v.startswith("v1:") for v in column), column
    assert not any(tenant.secret_key in v or boot_sk in v for v in column)
    if server.backend == "sqlite":
        for sk in (tenant.secret_key, boot_sk):
            assert _sqlite_files_contain(server, sk) == []

    # Listing shows no secret.
    listed = _admin(server, "key", "list", "--domain", tenant.domain, "--user", tenant.user)
    assert listed.returncode == 0, listed.stderr
    assert tenant.access_key in listed.stdout
    assert tenant.secret_key not in listed.stdout + listed.stderr

    # The SDK and the S3 endpoint still sign with the issued secret.
    _api_works(server, tenant.access_key, tenant.secret_key, tenant.project_id)
    _s3_works(server, tenant.access_key, tenant.secret_key)
    _api_works(server, server.ak, boot_sk, server.project_id)

    # A key revoked by `cph admin` (another process) stops working as soon as the server notices
    # the commit: within 0.1 s on SQLite (it polls the database's data version), when the
    # commit's notification arrives on PostgreSQL. The key was just used, so it is in the
    # server's credential cache; the revocation must retire it.
    second = server.admin("key", "create", "--domain", tenant.domain, "--user", tenant.user)
    _api_works(server, second["access_key"], second["secret_key"], tenant.project_id)
    server.admin("key", "revoke", second["access_key"])
    bad = make_client(server.endpoint, second["access_key"], second["secret_key"], tenant.project_id)
    deadline = time.monotonic() + 2
    while True:
        try:
            bad.list_cloud_phone_servers(ListCloudPhoneServersRequest())
        except Exception:
            break
        assert time.monotonic() < deadline, "a revoked access key kept working"
        time.sleep(0.05)
    expect_error(lambda: bad.list_cloud_phone_servers(ListCloudPhoneServersRequest()), 401, "APIGW.0301")

    # A restart with the key file of the data directory.
    server.stop()
    if server.backend == "sqlite":
        for sk in (tenant.secret_key, second["secret_key"], boot_sk):
            assert _sqlite_files_contain(server, sk) == []
    key = key_file.read_bytes()
    _restart(server)
    assert server.sk == boot_sk
    _api_works(server, tenant.access_key, tenant.secret_key, tenant.project_id)
    server.stop()

    # The same key given as a file elsewhere (as replicas do), here in hex form.
    shared = base / "shared.key"
    shared.write_text(key.hex() + "\n")
    os.chmod(shared, 0o600)
    key_file.unlink()
    same = make({"CPH_MASTER_KEY_FILE": str(shared)})
    _restart(same)
    assert not key_file.exists()
    _api_works(same, tenant.access_key, tenant.secret_key, tenant.project_id)
    _s3_works(same, tenant.access_key, tenant.secret_key)
    same.stop()

    # Another master key: start-up fails and says why, without key material.
    column = sorted(_stored_secret_column(server))
    other = base / "other.key"
    other_key = os.urandom(32)
    other.write_bytes(other_key)
    log = _start_fails(make({"CPH_MASTER_KEY_FILE": str(other)}))
    assert "wrong master key" in log, log
    assert str(other) in log
    for k in (key, other_key):
        assert k.hex() not in log
    # `cph admin` refuses it too.
    r = _admin(server, "key", "list", "--domain", tenant.domain, "--user", tenant.user, master_key_file=other)
    assert r.returncode != 0 and "wrong master key" in r.stderr, r.stderr
    # Nothing was rewritten.
    assert sorted(_stored_secret_column(server)) == column

    # A configured key file that does not exist is not created.
    missing = base / "missing.key"
    log = _start_fails(make({"CPH_MASTER_KEY_FILE": str(missing)}))
    assert "master key file" in log and str(missing) in log, log
    assert not missing.exists()

    # The default key file, absent now, would be a new key: refused as well.
    log = _start_fails(make())
    assert "wrong master key" in log, log

    # Back with the right key.
    key_file.write_bytes(key)
    os.chmod(key_file, 0o600)
    again = make()
    _restart(again)
    _api_works(again, tenant.access_key, tenant.secret_key, tenant.project_id)


def test_fixed_bootstrap_credentials_keep_working(own_server):
    _, make = own_server
    ak, sk = "AKFIXEDBOOTSTRAP0001", "FixedBootstrapSecret0123456789abcdefghij"
    env = {"CPH_BOOTSTRAP_ACCESS_KEY": ak, "CPH_BOOTSTRAP_SECRET_KEY": sk}
    server = make(env)
    server.start()
    assert (server.ak, server.sk) == (ak, sk)
    _api_works(server, ak, sk, server.project_id)
    _s3_works(server, ak, sk)
    column = _stored_secret_column(server)
    assert len(column) == 1 and column[0].startswith("v1:") and sk not in column[0]
    if server.backend == "sqlite":
        assert _sqlite_files_contain(server, sk) == []
    server.stop()
    # A restart with the same fixed credentials finds the stored key and accepts it.
    _restart(server)
    assert (server.ak, server.sk) == (ak, sk)
    _api_works(server, ak, sk, server.project_id)
    server.stop()
    # The same access key with another secret is refused at start-up.
    log = _start_fails(make({"CPH_BOOTSTRAP_ACCESS_KEY": ak, "CPH_BOOTSTRAP_SECRET_KEY": "x" * 40}))
    assert "already exists with another secret" in log, log
