"""Helpers of the phone suite: stock `adb` in an isolated environment, a server bought with a
key pair, the test APK."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from huaweicloudsdkcph.v1 import ShowCloudPhoneDetailRequest

REPO = Path(__file__).resolve().parents[2]
ADB = shutil.which("adb")
# scripts/test.sh fetches it (npm package io.appium.settings 8.0.10, apks/settings_apk-debug.apk).
APK = Path(os.environ.get("CPH_TEST_APK", REPO / "target" / "test-assets" / "settings_apk-debug.apk"))
APK_PACKAGE = "io.appium.settings"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StockAdb:
    """The stock `adb` client with its own server port, home directory and vendor keys, so it
    never touches the user's adb server or keys. `run` returns CompletedProcess (text)."""

    def __init__(self, key_pem: str | None):
        self.home = Path(tempfile.mkdtemp(prefix="cph-adb-home-"))
        self.port = free_port()
        self.env = {
            "HOME": str(self.home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ANDROID_ADB_SERVER_PORT": str(self.port),
            # No auto-probing of emulator ports on this host.
            "ADB_LOCAL_TRANSPORT_MAX_PORT": "5553",
        }
        if key_pem:
            key = self.home / "vendor.adb_key"
            key.write_text(key_pem)
            key.chmod(0o600)
            self.env["ADB_VENDOR_KEYS"] = str(key)

    def run(self, *args: str, input: bytes | str | None = None, timeout: float = 60, text: bool = True):
        assert ADB, "adb not installed"
        return subprocess.run(
            [ADB, *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=text,
            timeout=timeout,
        )

    def connect(self, serial: str, timeout: float = 20) -> str:
        """`adb connect`; returns its output once the device state is known."""
        r = self.run("connect", serial, timeout=timeout)
        return (r.stdout + r.stderr).strip()

    def state(self, serial: str) -> str | None:
        """The state `adb devices` shows for `serial` (device, unauthorized, offline), or None."""
        for line in self.run("devices").stdout.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2 and parts[0] == serial:
                return parts[1]
        return None

    def wait_state(self, serial: str, want: str, timeout: float = 20) -> str | None:
        deadline = time.monotonic() + timeout
        st = None
        while time.monotonic() < deadline:
            st = self.state(serial)
            if st == want:
                return st
            time.sleep(0.2)
        return st

    def close(self):
        try:
            self.run("kill-server", timeout=20)
        except Exception:
            pass
        shutil.rmtree(self.home, ignore_errors=True)


@dataclass
class Endpoint:
    phone_id: str
    host: str
    port: int

    @property
    def serial(self) -> str:
        return f"{self.host}:{self.port}"


def adb_endpoint(client, phone_id: str) -> Endpoint | None:
    """The phone's `adb` access info from ShowCloudPhoneDetail, if it has one."""
    d = client.show_cloud_phone_detail(ShowCloudPhoneDetailRequest(phone_id=phone_id))
    for a in d.access_infos or []:
        if a.type == "adb":
            return Endpoint(phone_id, a.server_ip, a.access_port)
    return None


def wait_endpoint(client, phone_id: str, timeout: float = 30) -> Endpoint:
    deadline = time.monotonic() + timeout
    while True:
        ep = adb_endpoint(client, phone_id)
        if ep:
            return ep
        if time.monotonic() > deadline:
            raise AssertionError(f"phone {phone_id} has no adb access info after {timeout}s")
        time.sleep(0.1)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False
