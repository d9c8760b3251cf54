"""Keyed access through each server's SSH gateway, with the stock OpenSSH client and stock adb:
the `ssh` access info, a tunnel to a phone's ADB daemon (shell, push, install through it), keys
of other servers, forbidden destinations and commands refused, key rotation with UpdateKeypair
(the old key stops working, its open sessions close, the new key works at SSH and at ADB), and
the audit trail of all of it."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from huaweicloudsdkcph.v1 import ShowCloudPhoneDetailRequest
from huaweicloudsdkecs.v2 import NovaCreateKeypairOption, NovaCreateKeypairRequest, NovaCreateKeypairRequestBody

from adb_tools import ADB, APK, APK_PACKAGE, StockAdb, free_port
from cph_sdk import buy_running_servers, server_phones, unique, wait_jobs_succeeded
from test_adb import android11  # noqa: F401  (fixture)
from test_keypairs import ecs_client, update

SSH = shutil.which("ssh")

pytestmark = [
    pytest.mark.filterwarnings("ignore:Method 'nova_:DeprecationWarning"),
    pytest.mark.skipif(ADB is None, reason="stock adb is not installed (apt-get install adb)"),
    pytest.mark.skipif(SSH is None, reason="the OpenSSH client is not installed (apt-get install openssh-client)"),
]


@dataclass
class Keypair:
    name: str
    pem: str
    path: Path


@dataclass
class SshInfo:
    host: str
    port: int
    phone_ip: str
    listen_port: int


def ssh_info(client, phone_id: str) -> SshInfo:
    d = client.show_cloud_phone_detail(ShowCloudPhoneDetailRequest(phone_id=phone_id))
    for a in d.access_infos or []:
        if a.type == "ssh":
            return SshInfo(a.server_ip, a.access_port, a.phone_ip, a.listen_port)
    raise AssertionError(f"phone {phone_id} has no ssh access info: {d.access_infos}")


def audit_until(cph, server_id: str, wanted, *, refused: bool = False, timeout: float = 15) -> list[dict]:
    """The server's audit events once `wanted(events)` holds. Events are written by a background
    writer shortly after they happen, so a check right after the client exits polls for them."""
    args = ["audit", "--server-id", server_id, "--limit", "500"] + (["--refused"] if refused else [])
    deadline = time.monotonic() + timeout
    while True:
        events = cph.admin(*args)["events"]
        if wanted(events):
            return events
        assert time.monotonic() < deadline, events
        time.sleep(0.3)


class Tunnel:
    """`ssh -N -L <local>:<target> -p <port> root@<host>` as a child process."""

    def __init__(self, key: Path, info: SshInfo, target: str, user: str = "root"):
        self.local = free_port()
        self.proc = subprocess.Popen(
            [
                SSH,
                "-N",
                "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes",
                "-o", "ExitOnForwardFailure=yes",
                "-o", "ConnectTimeout=10",
                "-o", "LogLevel=ERROR",
                "-i", str(key),
                "-p", str(info.port),
                "-L", f"127.0.0.1:{self.local}:{target}",
                f"{user}@{info.host}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_up(self, timeout: float = 20) -> bool:
        """True once the local end accepts connections; False if ssh exited first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.local), timeout=1):
                    return True
            except OSError:
                time.sleep(0.1)
        return False

    def exited(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def ssh_command(key: Path, info: SshInfo, *args: str, user: str = "root", extra=()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            SSH,
            "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "ConnectTimeout=10",
            *extra,
            "-i", str(key),
            "-p", str(info.port),
            f"{user}@{info.host}",
            *args,
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def keydir():
    d = Path(tempfile.mkdtemp(prefix="cph-ssh-keys-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def new_keypair(cph, keydir: Path) -> Keypair:
    ecs = ecs_client(cph.endpoint, cph.ak, cph.sk, cph.project_id)
    name = unique("sshkp").replace("-", "_")
    body = NovaCreateKeypairRequestBody(keypair=NovaCreateKeypairOption(name=name))
    kp = ecs.nova_create_keypair(NovaCreateKeypairRequest(body=body)).keypair
    path = keydir / name
    path.write_text(kp.private_key)
    path.chmod(0o600)
    return Keypair(name, kp.private_key, path)


@pytest.fixture(scope="module")
def kp1(cph, keydir):
    return new_keypair(cph, keydir)


@pytest.fixture(scope="module")
def servers(client, cph, android11, kp1, keydir):  # noqa: F811
    """Two running servers: one with kp1 (phones sorted by id), one with its own key pair."""
    mine = buy_running_servers(client, cph, 1, android11, keypair_name=kp1.name)[0]
    kp_other = new_keypair(cph, keydir)
    other = buy_running_servers(client, cph, 1, android11, keypair_name=kp_other.name)[0]
    phones = sorted(server_phones(client, mine), key=lambda p: p.phone_id)
    return mine, phones, other, kp_other


@pytest.fixture(scope="module")
def adb(kp1):
    a = StockAdb(kp1.pem)
    yield a
    a.close()


def test_a_tunnel_reaches_the_phones_adb_daemon(client, servers, kp1, adb):
    sid, phones, _, _ = servers
    p = phones[0]
    info = ssh_info(client, p.phone_id)
    assert info.host == "127.0.0.1" and info.listen_port == 5555
    assert info.phone_ip and info.port != 5555
    t = Tunnel(kp1.path, info, f"{info.phone_ip}:{info.listen_port}")
    try:
        assert t.wait_up(), t.proc.stderr.read() if t.proc.poll() is not None else "tunnel not up"
        serial = f"127.0.0.1:{t.local}"
        assert "connected" in adb.connect(serial)
        assert adb.wait_state(serial, "device") == "device"
        r = adb.run("-s", serial, "shell", "getprop ro.serialno; echo ok")
        assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r
        assert p.phone_id.startswith(r.stdout.split()[0])
        # push and pull a file through the tunnel
        data = os.urandom(2 * 1024 * 1024 + 17)
        src = Path(tempfile.mkdtemp()) / "blob.bin"
        src.write_bytes(data)
        assert adb.run("-s", serial, "push", str(src), "/data/local/tmp/blob.bin").returncode == 0
        md5 = adb.run("-s", serial, "shell", "md5sum /data/local/tmp/blob.bin").stdout.split()[0]
        assert md5 == hashlib.md5(data).hexdigest()
        # install an app through the tunnel
        r = adb.run("-s", serial, "install", str(APK), timeout=120)
        assert r.returncode == 0 and "Success" in r.stdout, r
        assert f"package:{APK_PACKAGE}" in adb.run("-s", serial, "shell", "pm list packages -3").stdout.split()
        adb.run("disconnect", serial)
    finally:
        t.close()


def test_another_servers_key_and_other_users_are_refused(client, servers, cph):
    sid, phones, other, kp_other = servers
    info = ssh_info(client, phones[0].phone_id)
    r = ssh_command(kp_other.path, info, "-N", extra=("-o", "ExitOnForwardFailure=yes"))
    assert r.returncode == 255 and "Permission denied" in r.stderr, r
    audit_until(cph, sid, lambda ev: any(e["kind"] == "ssh_login" and not e["accepted"] for e in ev), refused=True)


def test_wrong_user_exec_and_remote_forwarding_are_refused(client, servers, kp1, cph):
    sid, phones, _, _ = servers
    info = ssh_info(client, phones[0].phone_id)
    r = ssh_command(kp1.path, info, "-N", user="admin")
    assert r.returncode == 255 and "Permission denied" in r.stderr, r
    r = ssh_command(kp1.path, info, "id")
    assert r.returncode != 0 and "uid=" not in r.stdout, r
    r = ssh_command(kp1.path, info, "-N", extra=("-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:0:127.0.0.1:22"))
    assert r.returncode == 255, r

    def kinds(events):
        return {(e["kind"], e["detail"].split(":")[0]) for e in events}

    def both_refused(events):
        k = kinds(events)
        return (("ssh_refused", "exec") in k or ("ssh_refused", "shell") in k) and ("ssh_refused", "tcpip-forward") in k

    audit_until(cph, sid, both_refused, refused=True)


def recv_closed(port: int, timeout: float = 10) -> bool:
    """Connecting to the local end yields a connection the gateway closes at once."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        try:
            return s.recv(1) == b""
        except ConnectionResetError:
            return True


@pytest.mark.parametrize(
    "target",
    ["{other_phone_ip}:5555", "{phone_ip}:5556", "127.0.0.1:22", "{api_host}:{api_port}"],
)
def test_forbidden_destinations_are_refused_and_recorded(client, servers, kp1, cph, target):
    sid, phones, other, _ = servers
    info = ssh_info(client, phones[0].phone_id)
    other_ip = ssh_info(client, server_phones(client, other)[0].phone_id).phone_ip
    mine = {ssh_info(client, p.phone_id).phone_ip for p in phones}
    api_host, api_port = cph.endpoint.split("//")[1].split(":")
    dest = target.format(
        other_phone_ip=other_ip if other_ip not in mine else "10.255.255.254",
        phone_ip=info.phone_ip,
        api_host=api_host,
        api_port=api_port,
    )
    t = Tunnel(kp1.path, info, dest)
    try:
        assert t.wait_up()
        assert recv_closed(t.local)
    finally:
        t.close()
    audit_until(
        cph, sid, lambda ev: any(e["kind"] == "ssh_tunnel" and e["detail"].startswith(dest) for e in ev), refused=True
    )


def test_rotating_the_key_pair_closes_old_sessions_and_admits_the_new_key(client, servers, kp1, cph, keydir):
    sid, phones, _, _ = servers
    p = phones[1]
    info = ssh_info(client, p.phone_id)
    old = Tunnel(kp1.path, info, f"{info.phone_ip}:5555")
    try:
        assert old.wait_up()
        kp2 = new_keypair(cph, keydir)
        r = update(client, [(sid, kp2.name)])
        wait_jobs_succeeded(client, r.request_id, timeout=60)
        # The open session of the old key is closed by the gateway.
        assert old.exited(timeout=20) is not None, "the old key's session stayed open"
    finally:
        old.close()
    r = ssh_command(kp1.path, info, "-N")
    assert r.returncode == 255 and "Permission denied" in r.stderr, r
    new = Tunnel(kp2.path, info, f"{info.phone_ip}:5555")
    a2 = StockAdb(kp2.pem)
    try:
        assert new.wait_up()
        serial = f"127.0.0.1:{new.local}"
        assert "connected" in a2.connect(serial)
        # The phone accepts the new key pair's key over ADB too.
        assert a2.wait_state(serial, "device") == "device"
        assert a2.run("-s", serial, "shell", "echo rotated").stdout.strip() == "rotated"
    finally:
        a2.close()
        new.close()
    audit_until(cph, sid, lambda ev: any(e["kind"] == "ssh_session_closed" and e["detail"] == "revoked" for e in ev))


# ---------------------------------------------------------------------------------------------
# Ed25519 key pairs (keypair_algorithm = ed25519), on a server of their own: they open the SSH
# gateway; the phones' ADB endpoints accept only RSA 2048 keys (Android's key format), so adb
# through the tunnel stays unauthorized.

A_CNXN, A_AUTH = 0x4E584E43, 0x48545541


def adb_packet(command: int, arg0: int, arg1: int, payload: bytes) -> bytes:
    return (
        struct.pack("<6I", command, arg0, arg1, len(payload), sum(payload) & 0xFFFFFFFF, command ^ 0xFFFFFFFF)
        + payload
    )


def read_adb_packet(sock: socket.socket) -> tuple[int, int, bytes]:
    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            assert chunk, "the connection closed"
            buf += chunk
        return buf

    command, arg0, _, length, _, magic = struct.unpack("<6I", exactly(24))
    assert magic == command ^ 0xFFFFFFFF
    return command, arg0, exactly(length)


@pytest.fixture(scope="module")
def ed25519_cph():
    from conftest import BACKEND, KEEP, CphServer, create_database, drop_database

    base = Path(tempfile.mkdtemp(prefix="cph-ed25519-"))
    db_name = db_url = None
    if BACKEND == "postgres":
        db_name, db_url = create_database()
    srv = CphServer(base / "data", db_url, env={"CPH_KEYPAIR_ALGORITHM": "ed25519"})
    srv.data_dir.mkdir()
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        if not KEEP:
            if db_name:
                drop_database(db_name)
            shutil.rmtree(base, ignore_errors=True)


def test_ed25519_key_pairs_open_the_gateway_but_not_adb(ed25519_cph, keydir):
    from cph_sdk import load_offer, make_client

    srv = ed25519_cph
    client = make_client(srv.endpoint, srv.ak, srv.sk, srv.project_id)
    kp = new_keypair(srv, keydir)
    ecs = ecs_client(srv.endpoint, srv.ak, srv.sk, srv.project_id)
    from huaweicloudsdkecs.v2 import NovaShowKeypairRequest

    shown = ecs.nova_show_keypair(NovaShowKeypairRequest(keypair_name=kp.name)).keypair
    # The private key is OpenSSH's own format, which ssh-keygen reads back to the same public key.
    assert kp.pem.startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert kp.pem.endswith("-----END OPENSSH PRIVATE KEY-----\n")
    assert shown.public_key.startswith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5")
    r = subprocess.run(
        ["ssh-keygen", "-y", "-P", "", "-f", str(kp.path)], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == shown.public_key.strip()
    blob = base64.b64decode(shown.public_key.split()[1])
    md5 = hashlib.md5(blob).hexdigest()
    assert shown.fingerprint == ":".join(md5[i : i + 2] for i in range(0, 32, 2))

    offer = load_offer(client)
    sid = buy_running_servers(client, srv, 1, offer, keypair_name=kp.name)[0]
    p = sorted(server_phones(client, sid), key=lambda p: p.phone_id)[0]
    info = ssh_info(client, p.phone_id)
    t = Tunnel(kp.path, info, f"{info.phone_ip}:{info.listen_port}")
    stranger = StockAdb(None)  # adb keys are RSA: its own freshly generated ~/.android/adbkey
    try:
        assert t.wait_up(), t.proc.stderr.read() if t.proc.poll() is not None else "tunnel not up"
        # The phone's ADB daemon answers through the tunnel, with an AUTH challenge.
        with socket.create_connection(("127.0.0.1", t.local), timeout=10) as s:
            s.settimeout(10)
            s.sendall(adb_packet(A_CNXN, 0x01000001, 256 * 1024, b"host::\0"))
            command, arg0, token = read_adb_packet(s)
            assert (command, arg0, len(token)) == (A_AUTH, 1, 20)
        # Stock adb through the tunnel is left unauthorized: no RSA key the phone accepts.
        serial = f"127.0.0.1:{t.local}"
        stranger.connect(serial)
        assert stranger.wait_state(serial, "unauthorized", timeout=15) == "unauthorized"
        r = stranger.run("-s", serial, "shell", "echo hi")
        assert r.returncode != 0 and "unauthorized" in r.stderr
    finally:
        stranger.close()
        t.close()
    audit_until(srv, sid, lambda ev: any(e["kind"] == "ssh_login" and e["accepted"] for e in ev))
