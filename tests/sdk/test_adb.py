"""Phones that stock ADB clients drive: a server bought with a key pair, its phones' `adb` access
info, and stock `adb`, `adb-shell` and `adbutils` against them; API commands that run through ADB
(RunShellCommand, RunSyncCommand, UninstallApk, property updates); lifecycle (stop, restart,
reset) as the clients see it."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from huaweicloudsdkcph.v1 import (
    PhoneProperty,
    PropertyToUpdate,
    ResetCloudPhoneRequest,
    ResetCloudPhoneRequestBody,
    ResetPhoneProperty,
    RestartCloudPhoneRequest,
    RestartCloudPhoneRequestBody,
    RunShellCommandRequest,
    RunShellCommandRequestBody,
    RunSyncCommandRequest,
    RunSyncCommandRequestBody,
    StopCloudPhoneRequest,
    StopCloudPhoneRequestBody,
    UninstallApkRequest,
    UninstallApkRequestBody,
    UpdateCloudPhonePropertyRequest,
    UpdateCloudPhonePropertyRequestBody,
)
from huaweicloudsdkecs.v2 import (
    NovaCreateKeypairOption,
    NovaCreateKeypairRequest,
    NovaCreateKeypairRequestBody,
)

from adb_tools import ADB, APK, APK_PACKAGE, StockAdb, free_port, port_open, wait_endpoint
from cph_sdk import (
    buy_running_servers,
    expect_error,
    missing_id,
    server_phones,
    unique,
    wait_jobs,
    wait_jobs_succeeded,
    wait_phone_status,
)
from test_keypairs import ecs_client

pytestmark = [
    pytest.mark.filterwarnings("ignore:Method 'nova_:DeprecationWarning"),
    pytest.mark.skipif(ADB is None, reason="stock adb is not installed (apt-get install adb)"),
]


@pytest.fixture(scope="module")
def keypair(cph):
    ecs = ecs_client(cph.endpoint, cph.ak, cph.sk, cph.project_id)
    name = unique("adbkp").replace("-", "_")
    opt = NovaCreateKeypairOption(name=name)
    kp = ecs.nova_create_keypair(NovaCreateKeypairRequest(body=NovaCreateKeypairRequestBody(keypair=opt))).keypair
    assert kp.private_key and "PRIVATE KEY" in kp.private_key
    return name, kp.private_key


@pytest.fixture(scope="module")
def android11(offer):
    """A purchasable phone model with an Android 11 image (the test APK needs SDK 26 or newer),
    fewest phones per server first."""
    cat = offer.catalog
    sm_names = {m.server_model_name for m in cat["server_models"]}
    images = [i for i in cat["images"] if i.os_name.startswith("AOSP11")]
    choices = sorted(
        (pm.phone_capacity, pm.phone_model_name, pm, img)
        for pm in cat["phone_models"]
        for img in images
        if pm.status == 1 and pm.server_model_name in sm_names and img.image_label == pm.image_label
    )
    assert choices, "the catalog has no phone model with an Android 11 image"
    _, _, pm, img = choices[0]
    return dataclasses.replace(
        offer,
        server_model_name=pm.server_model_name,
        phone_model_name=pm.phone_model_name,
        image_id=img.image_id,
        image_label=pm.image_label,
        phone_capacity=pm.phone_capacity,
        phone_model_version=pm.phone_model_version or 0,
    )


@pytest.fixture(scope="module")
def server(client, cph, android11, keypair):
    """A running server bought with the key pair; its phones (SDK models), sorted by id."""
    sid = buy_running_servers(client, cph, 1, android11, keypair_name=keypair[0])[0]
    phones = sorted(server_phones(client, sid), key=lambda p: p.phone_id)
    return sid, phones


@pytest.fixture(scope="module")
def adb(keypair):
    a = StockAdb(keypair[1])
    yield a
    a.close()


class Phones:
    """Hands each test its own phone of the module's server (tests change phones)."""

    def __init__(self, client, server):
        self.client, self.sid, self.free = client, server[0], list(server[1])

    def take(self):
        assert self.free, "the server has no phone left for this test; raise phone_capacity"
        p = self.free.pop(0)
        return p, wait_endpoint(self.client, p.phone_id)


@pytest.fixture(scope="module")
def phones(client, server):
    return Phones(client, server)


@pytest.fixture(scope="module")
def phone(phones, adb):
    """One phone shared by the read-mostly tests, connected through stock adb."""
    p, ep = phones.take()
    out = adb.connect(ep.serial)
    assert "connected" in out, out
    assert adb.wait_state(ep.serial, "device") == "device"
    return p, ep


def sh(adb, serial, command, **kw):
    return adb.run("-s", serial, "shell", command, **kw)


# ---------------------------------------------------------------------------------------------
# Access info and identity


def test_detail_lists_the_adb_endpoint(client, phone):
    p, ep = phone
    assert ep.host == "127.0.0.1"
    assert 1 <= ep.port <= 65535
    assert not 5555 <= ep.port <= 5585
    assert port_open(ep.host, ep.port)


def test_devices_l_shows_product_model_and_device(adb, phone, android11):
    p, ep = phone
    line = next(l for l in adb.run("devices", "-l").stdout.splitlines() if l.startswith(ep.serial))
    assert " device " in line, line
    # adb shows the banner's values with every character outside [A-Za-z0-9] as '_'
    shown = re.sub(r"[^A-Za-z0-9]", "_", android11.phone_model_name)
    assert f"model:{shown}" in line, line
    # appendix A.1 defaults of ro.product.name and ro.product.device
    assert "product:monbox" in line and "device:HWSTF" in line, line
    r = sh(adb, ep.serial, "getprop ro.product.model")
    assert r.stdout.strip() == android11.phone_model_name


def test_imei_and_build_properties(adb, phone, client):
    p, ep = phone
    r = sh(adb, ep.serial, "getprop")
    assert r.returncode == 0
    props = dict(re.findall(r"^\[([^\]]+)\]: \[([^\]]*)\]$", r.stdout, re.M))
    assert props["ro.build.version.sdk"].isdigit()
    assert props["ro.build.version.release"]
    assert p.imei in props.values() or any(v == p.imei for v in props.values())


# ---------------------------------------------------------------------------------------------
# Shell


def test_shell_separates_streams_and_keeps_the_exit_code(adb, phone):
    _, ep = phone
    r = sh(adb, ep.serial, "echo out; echo err >&2; exit 3")
    assert r.returncode == 3
    assert r.stdout == "out\n"
    assert r.stderr == "err\n"


def test_shell_reads_piped_stdin(adb, phone):
    _, ep = phone
    r = sh(adb, ep.serial, "cat", input="line one\nline two\n")
    assert r.returncode == 0
    assert r.stdout == "line one\nline two\n"
    r = sh(adb, ep.serial, "wc -l", input="a\nb\nc\n")
    assert r.stdout.strip() == "3"


def test_unknown_command_exits_127(adb, phone):
    _, ep = phone
    r = sh(adb, ep.serial, "definitely-not-a-command")
    assert r.returncode == 127
    assert "not found" in r.stderr


def test_shell_cannot_leave_the_sandbox(adb, phone):
    _, ep = phone
    marker = Path(tempfile.gettempdir()) / f"cph-escape-{os.getpid()}"
    marker.write_text("host secret")
    try:
        for cmd in (
            f"cat ../../../../../../..{marker}",
            f"cat {marker}",
            f"ln -s /../../../../..{marker.parent} /data/local/tmp/up && cat /data/local/tmp/up/{marker.name}",
        ):
            r = sh(adb, ep.serial, cmd)
            assert "host secret" not in r.stdout, cmd
            assert r.returncode != 0, cmd
        r = sh(adb, ep.serial, "echo x > /system/evil")
        assert r.returncode != 0
        assert "Read-only file system" in r.stderr
    finally:
        marker.unlink()


# ---------------------------------------------------------------------------------------------
# Port forwarding


def _connect_when_listening(port: int, greeting: bytes, timeout: float = 20) -> socket.socket:
    """Connects to the local end of a forward until the phone accepts (the adb server closes
    the connection at once while nothing listens on the phone), sending `greeting` each time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            s.sendall(greeting)
            s.settimeout(1)
            if s.recv(1) == b"":
                s.close()
                time.sleep(0.1)
                continue
            raise AssertionError("the phone spoke first")
        except socket.timeout:
            s.settimeout(20)
            return s
        except ConnectionError:
            s.close()
            time.sleep(0.1)
    raise AssertionError("the phone never accepted the forwarded connection")


def test_forward_reaches_nc_in_the_phone_and_back(adb, phone):
    """`adb forward tcp:L tcp:8080` while `adb shell nc -l -p 8080` runs: what the host sends
    through L is nc's output, and nc's input comes back through L."""
    _, ep = phone
    local = free_port()
    r = adb.run("-s", ep.serial, "forward", f"tcp:{local}", "tcp:8080")
    assert r.returncode == 0, r.stderr
    try:
        assert f"{ep.serial} tcp:{local} tcp:8080" in adb.run("forward", "--list").stdout
        # Nothing listens on the phone's port: the forwarded connection is closed at once.
        with socket.create_connection(("127.0.0.1", local), timeout=10) as s:
            s.settimeout(10)
            try:
                assert s.recv(16) == b""
            except ConnectionResetError:
                pass

        nc = subprocess.Popen(
            [ADB, "-s", ep.serial, "shell", "nc -l -p 8080"],
            env=adb.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            conn = _connect_when_listening(local, b"hello through the forward\n")
            with conn:
                nc.stdin.write(b"reply from the phone\n")
                nc.stdin.flush()
                got = b""
                while not got.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    assert chunk, f"closed early after {got!r}"
                    got += chunk
                assert got == b"reply from the phone\n"
            # The host closed its end; with its input ended too, nc exits.
            nc.stdin.close()
            assert nc.wait(timeout=30) == 0, nc.stderr.read()
            assert nc.stdout.read() == b"hello through the forward\n"
        finally:
            if nc.poll() is None:
                nc.kill()
                nc.wait()

        r = adb.run("-s", ep.serial, "forward", "--remove", f"tcp:{local}")
        assert r.returncode == 0, r.stderr
        assert f"tcp:{local}" not in adb.run("forward", "--list").stdout
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", local), timeout=5).close()
    finally:
        adb.run("-s", ep.serial, "forward", "--remove-all")


def test_reverse_is_refused(adb, phone):
    _, ep = phone
    r = adb.run("-s", ep.serial, "reverse", f"tcp:{free_port()}", "tcp:8080", timeout=30)
    assert r.returncode != 0
    r = adb.run("-s", ep.serial, "reverse", "--list", timeout=30)
    assert r.returncode != 0
    # The connection is unharmed.
    assert sh(adb, ep.serial, "echo still here").stdout == "still here\n"


# ---------------------------------------------------------------------------------------------
# Files


def test_push_pull_one_mebibyte_byte_identical(adb, phone, tmp_path):
    _, ep = phone
    data = os.urandom(1024 * 1024)
    src, back = tmp_path / "random.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    r = adb.run("-s", ep.serial, "push", str(src), "/sdcard/Download/random.bin", timeout=120)
    assert r.returncode == 0, r.stderr
    r = adb.run("-s", ep.serial, "pull", "/sdcard/Download/random.bin", str(back), timeout=120)
    assert r.returncode == 0, r.stderr
    assert back.read_bytes() == data
    r = sh(adb, ep.serial, "md5sum /data/media/0/Download/random.bin")
    assert r.stdout.split()[0] == hashlib.md5(data).hexdigest()
    r = sh(adb, ep.serial, "ls -l /sdcard/Download/random.bin")
    assert str(len(data)) in r.stdout
    ls = adb.run("-s", ep.serial, "ls", "/sdcard/Download")
    assert "random.bin" in ls.stdout


def test_pull_of_a_missing_file_fails(adb, phone, tmp_path):
    _, ep = phone
    r = adb.run("-s", ep.serial, "pull", "/sdcard/nope.bin", str(tmp_path / "x"))
    assert r.returncode != 0
    assert "No such file" in (r.stdout + r.stderr)


def test_push_into_system_is_refused(adb, phone, tmp_path):
    _, ep = phone
    f = tmp_path / "f"
    f.write_text("x")
    r = adb.run("-s", ep.serial, "push", str(f), "/system/f")
    assert r.returncode != 0


# ---------------------------------------------------------------------------------------------
# Packages


def test_install_reinstall_list_dump_uninstall_real_apk(adb, phone):
    from androguard.core.apk import APK as AndroguardApk

    _, ep = phone
    want = AndroguardApk(str(APK))
    assert want.get_package() == APK_PACKAGE
    r = adb.run("-s", ep.serial, "install", str(APK), timeout=120)
    assert r.returncode == 0 and "Success" in r.stdout, r.stdout + r.stderr
    r = adb.run("-s", ep.serial, "install", "-r", str(APK), timeout=120)
    assert r.returncode == 0 and "Success" in r.stdout, r.stdout + r.stderr
    assert f"package:{APK_PACKAGE}" in sh(adb, ep.serial, "pm list packages -3").stdout.split()
    assert f"package:{APK_PACKAGE}" not in sh(adb, ep.serial, "pm list packages -s").stdout.split()
    path = sh(adb, ep.serial, f"pm path {APK_PACKAGE}").stdout.strip()
    assert re.fullmatch(rf"package:/data/app/{re.escape(APK_PACKAGE)}-[^/]+/base\.apk", path), path
    dump = sh(adb, ep.serial, f"dumpsys package {APK_PACKAGE}").stdout
    assert f"versionCode={want.get_androidversion_code()}" in dump, dump
    assert f"versionName={want.get_androidversion_name()}" in dump, dump
    # The stored APK is the one pushed.
    apk_path = path.removeprefix("package:")
    md5 = sh(adb, ep.serial, f"md5sum {apk_path}").stdout.split()[0]
    assert md5 == hashlib.md5(APK.read_bytes()).hexdigest()
    assert sh(adb, ep.serial, f"ls -d /data/data/{APK_PACKAGE}").returncode == 0
    r = adb.run("-s", ep.serial, "uninstall", APK_PACKAGE)
    assert r.returncode == 0 and "Success" in r.stdout, r.stdout + r.stderr
    assert f"package:{APK_PACKAGE}" not in sh(adb, ep.serial, "pm list packages").stdout.split()
    r = adb.run("-s", ep.serial, "uninstall", APK_PACKAGE)
    assert "Failure" in r.stdout + r.stderr


def test_install_multiple(adb, phone):
    _, ep = phone
    r = adb.run("-s", ep.serial, "install-multiple", str(APK), timeout=120)
    assert r.returncode == 0 and "Success" in r.stdout, r.stdout + r.stderr
    assert f"package:{APK_PACKAGE}" in sh(adb, ep.serial, "pm list packages").stdout.split()
    assert adb.run("-s", ep.serial, "uninstall", APK_PACKAGE).returncode == 0


def test_a_file_that_is_not_an_apk_is_refused(adb, phone, tmp_path):
    _, ep = phone
    bad = tmp_path / "bad.apk"
    bad.write_bytes(b"not a zip at all" * 100)
    r = adb.run("-s", ep.serial, "install", str(bad), timeout=60)
    assert r.returncode != 0
    assert "INSTALL_FAILED_INVALID_APK" in r.stdout + r.stderr


def test_system_packages_come_with_the_image(adb, phone):
    _, ep = phone
    system = sh(adb, ep.serial, "pm list packages -s").stdout.split()
    assert "package:com.android.settings" in system
    path = sh(adb, ep.serial, "pm path com.android.settings").stdout.strip()
    assert path.startswith("package:/system/")


# ---------------------------------------------------------------------------------------------
# Keys


def test_a_foreign_key_is_left_unauthorized(phone):
    _, ep = phone
    stranger = StockAdb(None)  # only its own freshly generated ~/.android/adbkey
    try:
        stranger.connect(ep.serial)
        assert stranger.wait_state(ep.serial, "unauthorized", timeout=15) == "unauthorized"
        r = stranger.run("-s", ep.serial, "shell", "echo hi")
        assert r.returncode != 0 and "unauthorized" in r.stderr
        # Still unauthorized a moment later: no reconnect storm turning it offline.
        time.sleep(2)
        assert stranger.state(ep.serial) == "unauthorized"
    finally:
        stranger.close()


# ---------------------------------------------------------------------------------------------
# Python clients


def test_adb_shell_client_talks_to_the_phone_directly(phone, keypair, tmp_path):
    from adb_shell.adb_device import AdbDeviceTcp
    from adb_shell.auth.sign_pythonrsa import PythonRSASigner

    from cryptography.hazmat.primitives import serialization

    _, ep = phone
    # The key pair's private key is PKCS#1; adb-shell's signer reads PKCS#8.
    key = serialization.load_pem_private_key(keypair[1].encode(), password=None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    signer = PythonRSASigner("cph-test", pkcs8)
    dev = AdbDeviceTcp(ep.host, ep.port, default_transport_timeout_s=20)
    assert dev.connect(rsa_keys=[signer], auth_timeout_s=10)
    try:
        assert dev.shell("echo hello").strip() == "hello"
        data = os.urandom(300 * 1024 + 17)
        src, back = tmp_path / "s.bin", tmp_path / "b.bin"
        src.write_bytes(data)
        dev.push(str(src), "/data/local/tmp/s.bin")
        dev.pull("/data/local/tmp/s.bin", str(back))
        assert back.read_bytes() == data
        mode, size, _mtime = dev.stat("/data/local/tmp/s.bin")
        assert size == len(data) and mode & 0o170000 == 0o100000
        names = [bytes(e.filename).decode() for e in dev.list("/data/local/tmp")]
        assert "s.bin" in names
    finally:
        dev.close()


def test_adbutils_through_the_adb_server(adb, phone, tmp_path):
    import adbutils

    _, ep = phone
    c = adbutils.AdbClient(host="127.0.0.1", port=adb.port)
    d = c.device(serial=ep.serial)
    assert d.shell("getprop ro.product.device").strip() == "HWSTF"
    r = d.shell2("echo out; echo err >&2; exit 4", v2=True)
    assert (r.returncode, r.stdout, r.stderr) == (4, "out\n", "err\n")
    data = os.urandom(64 * 1024 + 3)
    src = tmp_path / "u.bin"
    src.write_bytes(data)
    d.sync.push(str(src), "/data/local/tmp/u.bin")
    assert d.sync.read_bytes("/data/local/tmp/u.bin") == data
    d.install(str(APK), nolaunch=True, silent=True)
    assert APK_PACKAGE in d.list_packages()
    d.uninstall(APK_PACKAGE)
    assert APK_PACKAGE not in d.list_packages()


# ---------------------------------------------------------------------------------------------
# API commands through ADB


def run_shell(client, content, phone_ids):
    body = RunShellCommandRequestBody(command="shell", content=content, phone_ids=phone_ids)
    return client.run_shell_command(RunShellCommandRequest(body=body))


def run_sync(client, content, phone_ids=None, server_ids=None):
    body = RunSyncCommandRequestBody(command="shell", content=content, phone_ids=phone_ids, server_ids=server_ids)
    return client.run_sync_command(RunSyncCommandRequest(body=body))


def test_run_shell_command_output_is_the_jobs_execute_msg(client, phone, android11):
    p, _ = phone
    r = run_shell(client, "getprop ro.product.model", [p.phone_id])
    jobs = wait_jobs_succeeded(client, r.request_id)
    assert jobs[0].execute_msg.strip() == android11.phone_model_name
    r = run_shell(client, "ls /data/nothing-here", [p.phone_id])
    (job,) = wait_jobs(client, r.request_id)
    assert job.status == -1
    assert job.error_code == "CPS.0260"
    assert "No such file or directory" in job.execute_msg


def test_run_shell_command_output_is_cut_at_1024_bytes(client, phone):
    p, _ = phone
    r = run_shell(client, "cat /system/build.prop /system/build.prop /system/build.prop", [p.phone_id])
    (job,) = wait_jobs_succeeded(client, r.request_id)
    assert 0 < len(job.execute_msg.encode()) <= 1024


def test_run_sync_command_on_all_phones_of_a_server(client, server, android11):
    sid, all_phones = server
    r = run_sync(client, "getprop ro.product.model", server_ids=[sid])
    assert len(r.jobs) == len(all_phones)
    for j in r.jobs:
        assert j.status == 2, j
        assert j.execute_msg.strip() == android11.phone_model_name


def test_uninstall_apk_runs_pm_uninstall(client, adb, phone):
    p, ep = phone
    r = adb.run("-s", ep.serial, "install", str(APK), timeout=120)
    assert "Success" in r.stdout, r.stdout + r.stderr
    body = UninstallApkRequestBody(command="uninstall", content=APK_PACKAGE, phone_ids=[p.phone_id])
    r = client.uninstall_apk(UninstallApkRequest(body=body))
    wait_jobs_succeeded(client, r.request_id)
    assert f"package:{APK_PACKAGE}" not in sh(adb, ep.serial, "pm list packages").stdout.split()
    # Uninstalling what is not installed fails the job honestly.
    r = client.uninstall_apk(UninstallApkRequest(body=body))
    (job,) = wait_jobs(client, r.request_id)
    assert job.status == -1 and job.error_code == "CPS.0260"


def test_property_updates_show_in_getprop(client, adb, phone):
    p, ep = phone
    body = UpdateCloudPhonePropertyRequestBody(
        phones=[PropertyToUpdate(phone_id=p.phone_id, _property='{"gsm.operator.alpha":"CPHTEST"}')]
    )
    r = client.update_cloud_phone_property(UpdateCloudPhonePropertyRequest(body=body))
    wait_jobs_succeeded(client, r.request_id)
    assert sh(adb, ep.serial, "getprop gsm.operator.alpha").stdout.strip() == "CPHTEST"


# ---------------------------------------------------------------------------------------------
# Lifecycle as clients see it


def test_stop_closes_the_endpoint_and_restart_brings_it_back(client, phones, adb):
    p, ep = phones.take()
    r = client.stop_cloud_phone(StopCloudPhoneRequest(body=StopCloudPhoneRequestBody(phone_ids=[p.phone_id])))
    wait_jobs_succeeded(client, r.request_id)
    assert not port_open(ep.host, ep.port)
    body = RestartCloudPhoneRequestBody(phones=[PhoneProperty(phone_id=p.phone_id)])
    r = client.restart_cloud_phone(RestartCloudPhoneRequest(body=body))
    wait_jobs_succeeded(client, r.request_id)
    ep2 = wait_endpoint(client, p.phone_id)
    assert ep2.port == ep.port, "a phone keeps its port across restarts"
    assert "connected" in adb.connect(ep2.serial)
    assert adb.wait_state(ep2.serial, "device") == "device"
    assert sh(adb, ep2.serial, "echo back").stdout == "back\n"


def test_reset_restores_the_image(client, phones, adb, tmp_path):
    p, ep = phones.take()
    assert "connected" in adb.connect(ep.serial)
    assert adb.wait_state(ep.serial, "device") == "device"
    assert "Success" in adb.run("-s", ep.serial, "install", str(APK), timeout=120).stdout
    f = tmp_path / "keep.txt"
    f.write_text("user data")
    assert adb.run("-s", ep.serial, "push", str(f), "/sdcard/keep.txt").returncode == 0
    body = ResetCloudPhoneRequestBody(phones=[ResetPhoneProperty(phone_id=p.phone_id)])
    r = client.reset_cloud_phone(ResetCloudPhoneRequest(body=body))
    wait_jobs_succeeded(client, r.request_id, timeout=60)
    ep = wait_endpoint(client, p.phone_id)
    adb.connect(ep.serial)
    assert adb.wait_state(ep.serial, "device") == "device"
    assert f"package:{APK_PACKAGE}" not in sh(adb, ep.serial, "pm list packages").stdout.split()
    assert sh(adb, ep.serial, "ls /sdcard/keep.txt").returncode != 0
    assert "package:com.android.settings" in sh(adb, ep.serial, "pm list packages -s").stdout.split()


def test_adb_reboot_drops_and_restores_the_connection(phones, adb):
    p, ep = phones.take()
    adb.connect(ep.serial)
    assert adb.wait_state(ep.serial, "device") == "device"
    adb.run("-s", ep.serial, "reboot", timeout=30)
    r = adb.run("-s", ep.serial, "wait-for-device", timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        adb.connect(ep.serial)
        if adb.state(ep.serial) == "device" and sh(adb, ep.serial, "echo up").stdout == "up\n":
            break
        time.sleep(0.3)
    else:
        pytest.fail(f"the phone did not come back after adb reboot: {r.stdout}{r.stderr}")


# ---------------------------------------------------------------------------------------------
# RunSyncCommand's rate limit (documented: 6 calls per minute and user), on a server of its own
# because the session server lifts the limit for the rest of the suite.


def test_run_sync_command_is_limited_to_six_calls_per_minute(tmp_path):
    from conftest import CphServer
    from cph_sdk import make_client

    srv = CphServer(tmp_path / "data", None)
    srv.data_dir.mkdir()
    srv.start()
    try:
        c = make_client(srv.endpoint, srv.ak, srv.sk, srv.project_id)
        for _ in range(6):
            r = run_sync(c, "getprop ro.product.model", phone_ids=[missing_id()])
            assert r.jobs[0].status == -1
        expect_error(lambda: run_sync(c, "getprop ro.product.model", phone_ids=[missing_id()]), 400, "CPS.0042")
        # Invalid requests are refused before they count.
        expect_error(lambda: run_sync(c, "echo $HOME", phone_ids=[missing_id()]), 400, "CPS.0118")
    finally:
        srv.stop()


def test_an_image_change_on_restart_changes_the_build_and_system_packages(client, phones, adb, android11):
    p, ep = phones.take()
    images = [i for i in android11.catalog["images"] if i.image_label == android11.image_label]
    other = next(i for i in images if i.os_name.startswith("AOSP9"))
    adb.connect(ep.serial)
    assert adb.wait_state(ep.serial, "device") == "device"
    assert sh(adb, ep.serial, "getprop ro.build.version.release").stdout.strip() == "11"
    body = RestartCloudPhoneRequestBody(image_id=other.image_id, phones=[PhoneProperty(phone_id=p.phone_id)])
    r = client.restart_cloud_phone(RestartCloudPhoneRequest(body=body))
    wait_jobs_succeeded(client, r.request_id, timeout=60)
    ep = wait_endpoint(client, p.phone_id)
    adb.connect(ep.serial)
    assert adb.wait_state(ep.serial, "device") == "device"
    assert sh(adb, ep.serial, "getprop ro.build.version.release").stdout.strip() == "9"
    assert sh(adb, ep.serial, "getprop ro.build.version.sdk").stdout.strip() == "28"
    dump = sh(adb, ep.serial, "dumpsys package com.android.settings").stdout
    assert "versionName=9" in dump, dump


def test_phones_whose_endpoint_cannot_come_back_are_reported_abnormal(tmp_path, offer):
    """After a restart of the service, a phone that should run but whose endpoint cannot open
    (here: the only allowed port is taken) shows status -7 instead of pretending to run."""
    import socket

    from conftest import CphServer
    from cph_sdk import make_client, phone_status

    srv = CphServer(tmp_path / "data", None)
    srv.data_dir.mkdir()
    srv.start()
    try:
        c = make_client(srv.endpoint, srv.ak, srv.sk, srv.project_id)
        sid = buy_running_servers(c, srv, 1, offer)[0]
        ids = [p.phone_id for p in server_phones(c, sid)]
        assert all(wait_endpoint(c, pid) for pid in ids)
        srv.stop()
        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", 0))
            blocker.listen()
            port = blocker.getsockname()[1]
            srv.env_overrides["CPH_PHONE_PORTS"] = f"{port}-{port}"
            (srv.data_dir / "bootstrap.json").unlink()  # start() waits for the new one
            srv.start()
            c = make_client(srv.endpoint, srv.ak, srv.sk, srv.project_id)
            assert {phone_status(c, pid) for pid in ids} == {-7}
    finally:
        srv.stop()


def test_shell_without_a_command_reads_a_script_from_stdin(adb, phone):
    _, ep = phone
    r = adb.run("-s", ep.serial, "shell", input="cd /sdcard\necho here=$(pwd)\nexit 5\n")
    assert r.returncode == 5
    assert r.stdout == "here=/sdcard\n", r.stdout


def test_sync_paths_stay_inside_the_phone(adb, phone, tmp_path):
    _, ep = phone
    name = f"cph-sync-escape-{os.getpid()}"
    f = tmp_path / "f"
    f.write_text("pushed")
    r = adb.run("-s", ep.serial, "push", str(f), f"/../../../../../../tmp/{name}")
    assert r.returncode == 0, r.stderr
    assert not (Path("/tmp") / name).exists()
    assert sh(adb, ep.serial, f"cat /tmp/{name}").stdout == "pushed"


def test_run_sync_command_gives_each_phone_two_seconds(client, phone):
    p, _ = phone
    started = time.monotonic()
    r = run_sync(client, "sleep 5", phone_ids=[p.phone_id])
    (j,) = r.jobs
    assert j.status == -1 and j.error_code == "CPS.0054", j
    assert time.monotonic() - started < 5
