"""Data operations whose objects live in external object storage.

A second `cph serve` plays the external S3 endpoint: buckets are created and filled there with
boto3 and that server's own credentials. The server under test is configured with that endpoint
(a TOML file for buckets named per endpoint, environment variables for the default endpoint);
PushFile, InstallApk, BatchExportCloudPhoneData and BatchImportCloudPhoneData then run through
the official SDK against it, and the phones are checked with stock adb.

The external server logs every S3 request it serves (method, host, path, status), so tests
see how the server under test reached it: virtual-hosted style on `<bucket>.localhost`, one GET
of an object for all the phones of a server, signatures refused for wrong credentials.

In this module the fixtures `cph`, `client` and `offer` are those of the server under test, so
the phone fixtures of test_adb and test_data_ops buy and connect phones there.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import shutil
import socket
import tarfile
import tempfile
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

import conftest
from adb_tools import ADB, APK, APK_PACKAGE, wait_endpoint
from conftest import BACKEND, CphServer, create_database, drop_database
from cph_sdk import load_offer, make_client, unique, wait_jobs, wait_jobs_succeeded
from test_adb import adb, android11, keypair, server, sh  # noqa: F401  (fixtures)
from test_commands import install_apk, push_file
from test_data_ops import connected, tar_of  # noqa: F401  (fixture)
from test_object_storage import bucket_name, s3_client

pytestmark = [
    pytest.mark.filterwarnings("ignore:Method 'nova_:DeprecationWarning"),
    pytest.mark.skipif(ADB is None, reason="stock adb is not installed (apt-get install adb)"),
]

# A secret that only the configuration of the unreachable endpoint holds: it must never show in
# a job or in the server's log.
UNREACHABLE_SECRET = "unreachable-" + secrets.token_hex(16)
# A wrong secret key configured for a bucket of the external endpoint, and an access key that
# endpoint does not know.
WRONG_SECRET = "wrong-" + secrets.token_hex(16)
UNKNOWN_ACCESS_KEY = "AKNOSUCHKEY" + secrets.token_hex(6).upper()

ANSI = re.compile(r"\x1b\[[0-9;]*m")
ACCESS = re.compile(r"method=(\S+) host=(\S+) path=(\S+) status=(\d+)")


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class External:
    """The external object storage: another `cph serve`'s embedded S3 endpoint, with buckets
    created by its bootstrap administrator."""

    def __init__(self, base: Path):
        # Its S3 endpoint logs every request (method, host, path, status) and serves
        # virtual-hosted requests under `localhost` (`<bucket>.localhost:PORT`).
        env = {"CPH_LOG": "info,cph_s3::access=debug", "CPH_S3_DOMAIN": "localhost"}
        self.server = CphServer(base / "data", None, env=env)
        self.server.data_dir.mkdir(parents=True)
        self.server.start()
        conftest._RUNNING.append(self.server)
        self.port = int(self.server.s3_endpoint.rsplit(":", 1)[1])
        self.s3 = s3_client(self.server, self.server.ak, self.server.sk)
        self.named = self.bucket()  # configured by name, every account
        self.listed = self.bucket()  # configured by name, the administrator's account listed
        self.unlisted = self.bucket()  # configured by name, another account only
        self.fallback = self.bucket()  # not configured: reached through the default endpoint
        self.wrong_secret = self.bucket()  # configured with a wrong secret key
        self.unknown_key = self.bucket()  # configured with an access key the endpoint does not know
        self.vhost = self.bucket()  # configured on http://localhost:PORT, virtual-hosted style

    def access_log(self) -> list[tuple[str, str, str, int]]:
        """The S3 requests the endpoint served: (method, host, path, status)."""
        out = []
        for line in self.server.log_path.read_text(errors="replace").splitlines():
            line = ANSI.sub("", line)
            if "cph_s3::access" in line and (m := ACCESS.search(line)):
                out.append((m.group(1), m.group(2), m.group(3), int(m.group(4))))
        return out

    def gets(self, path: str) -> list[tuple[str, str, str, int]]:
        return [e for e in self.access_log() if e[0] == "GET" and e[2] == path]

    def bucket(self) -> str:
        b = bucket_name()
        self.s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": self.server.region})
        return b

    def stop(self):
        if self.server in conftest._RUNNING:
            conftest._RUNNING.remove(self.server)
        self.server.stop()


def config_toml(ext: External, admin_domain: str, unreachable: str) -> str:
    """`[[objects.external]]` entries (TOML strings and arrays written as JSON, which TOML
    accepts for these values)."""
    s = ext.server

    def entry(endpoint, bucket, domains, ak=s.ak, sk=s.sk, extra=""):
        q = json.dumps
        return (
            "[[objects.external]]\n"
            f"endpoint = {q(endpoint)}\n"
            f"region = {q(s.region)}\n"
            f"access_key = {q(ak)}\n"
            f"secret_key = {q(sk)}\n"
            f"buckets = {q([bucket])}\n"
            f"domains = {q(domains)}\n"
            f"{extra}\n"
        )

    return "".join(
        [
            entry(s.s3_endpoint, ext.named, ["*"]),
            entry(s.s3_endpoint, ext.listed, [admin_domain, "0" * 32]),
            entry(s.s3_endpoint, ext.unlisted, ["f" * 32]),
            entry(s.s3_endpoint, ext.wrong_secret, ["*"], sk=WRONG_SECRET),
            entry(s.s3_endpoint, ext.unknown_key, ["*"], ak=UNKNOWN_ACCESS_KEY),
            entry(f"http://localhost:{ext.port}", ext.vhost, ["*"], extra="virtual_hosted = true\n"),
            entry(
                unreachable,
                "unreachable-bucket",
                ["*"],
                ak="AKUNREACHABLE",
                sk=UNREACHABLE_SECRET,
                extra="connect_timeout_secs = 3\nread_timeout_secs = 5\n",
            ),
        ]
    )


@pytest.fixture(scope="module")
def external():
    base = Path(tempfile.mkdtemp(prefix="cph-external-"))
    ext = External(base)
    try:
        yield ext
    finally:
        ext.stop()
        if not conftest.KEEP:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def unreachable_host() -> str:
    return f"127.0.0.1:{closed_port()}"


@pytest.fixture(scope="module")
def cph(external, unreachable_host):
    """The server under test, configured with the external endpoint: four buckets by name in
    a TOML file, and the same endpoint as the default through CPH_OBJECTS_DEFAULT_*."""
    base = Path(tempfile.mkdtemp(prefix=f"cph-external-main-{BACKEND}-"))
    db_name = db_url = None
    if BACKEND == "postgres":
        db_name, db_url = create_database()
    s = external.server
    env = {
        "CPH_SYNC_COMMANDS_PER_MINUTE": "0",
        "CPH_OBJECTS_DEFAULT_ENDPOINT": s.s3_endpoint,
        "CPH_OBJECTS_DEFAULT_REGION": s.region,
        "CPH_OBJECTS_DEFAULT_ACCESS_KEY": s.ak,
        "CPH_OBJECTS_DEFAULT_SECRET_KEY": s.sk,
        "CPH_OBJECTS_DEFAULT_DOMAINS": "*",
    }
    server = CphServer(base / "data", db_url, env=env)
    server.data_dir.mkdir()
    try:
        # A first start creates the administrator's account, whose id the configuration lists.
        server.start()
        domains = server.admin("domain", "list")
        admin_domain = next(d["domain_id"] for d in domains if d["name"] == server.domain_name)
        server.stop()
        config = base / "cph.toml"
        config.write_text(config_toml(external, admin_domain, f"http://{unreachable_host}"))
        server.env_overrides["CPH_CONFIG"] = str(config)
        (server.data_dir / "bootstrap.json").unlink()  # start() waits for the new one
        server.start()
        conftest._RUNNING.append(server)
        yield server
    finally:
        if server in conftest._RUNNING:
            conftest._RUNNING.remove(server)
        server.stop()
        if not conftest.KEEP:
            if db_name:
                drop_database(db_name)
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def client(cph):
    return make_client(cph.endpoint, cph.ak, cph.sk, cph.project_id)


@pytest.fixture(scope="module")
def offer(client):
    return load_offer(client)


def export_to(client, pid, bucket, key, include):
    from huaweicloudsdkcph.v1 import (
        BatchExportCloudPhoneDataRequest,
        BatchExportCloudPhoneDataRequestBody,
        StorageInfo,
    )

    info = StorageInfo(phone_id=pid, include_files=include, bucket_name=bucket, object_path=key)
    body = BatchExportCloudPhoneDataRequestBody(storage_infos=[info])
    return client.batch_export_cloud_phone_data(BatchExportCloudPhoneDataRequest(body=body))


def import_from(client, pid, bucket, key):
    from huaweicloudsdkcph.v1 import (
        BatchImportCloudPhoneDataRequest,
        BatchImportCloudPhoneDataRequestBody,
        RestoreInfo,
    )

    body = BatchImportCloudPhoneDataRequestBody(
        restore_infos=[RestoreInfo(phone_id=pid, bucket_name=bucket, object_path=key)]
    )
    return client.batch_import_cloud_phone_data(BatchImportCloudPhoneDataRequest(body=body))


def test_push_file_unpacks_a_tar_from_an_external_bucket(client, external, connected, adb):  # noqa: F811
    payload = os.urandom(3 * 1024 * 1024 + 17)
    key = "files/bundle.tar"
    external.s3.put_object(
        Bucket=external.named,
        Key=key,
        Body=tar_of({"data/local/tmp/ext/payload.bin": payload, "sdcard/Download/ext.txt": b"from afar"}),
    )
    pid, serial = connected[0]
    r = push_file(client, f"obs://{external.named}/{key}", phone_ids=[pid])
    (j,) = wait_jobs_succeeded(client, r.request_id, timeout=120)
    assert "2 files" in j.execute_msg
    assert sh(adb, serial, "cat /sdcard/Download/ext.txt").stdout == "from afar"
    md5 = sh(adb, serial, "md5sum /data/local/tmp/ext/payload.bin").stdout.split()[0]
    assert md5 == hashlib.md5(payload).hexdigest()


def test_install_apk_from_the_default_endpoint(client, cph, external, connected, adb):  # noqa: F811
    # The bucket is configured nowhere by name and the server under test has no such bucket:
    # the default endpoint (from the environment) serves it.
    assert external.fallback not in [b["Name"] for b in s3_client(cph, cph.ak, cph.sk).list_buckets()["Buckets"]]
    external.s3.upload_file(str(APK), external.fallback, "apps/settings.apk")
    pid, serial = connected[1]
    r = install_apk(client, f"-r obs://{external.fallback}/apps/settings.apk", phone_ids=[pid])
    (j,) = wait_jobs_succeeded(client, r.request_id, timeout=120)
    assert "Success" in j.execute_msg
    assert f"package:{APK_PACKAGE}" in sh(adb, serial, "pm list packages -3").stdout.split()


def test_install_apk_from_a_bucket_that_lists_the_account(client, external, connected, adb):  # noqa: F811
    external.s3.upload_file(str(APK), external.listed, "settings.apk")
    pid, serial = connected[2]
    r = install_apk(client, f"obs://{external.listed}/settings.apk", phone_ids=[pid], command="install-multiple")
    wait_jobs_succeeded(client, r.request_id, timeout=120)
    assert f"package:{APK_PACKAGE}" in sh(adb, serial, "pm list packages -3").stdout.split()


def test_export_to_an_external_bucket_and_restore_after_a_reset(client, cph, external, connected, adb, tmp_path):  # noqa: F811
    from huaweicloudsdkcph.v1 import ResetCloudPhoneRequest, ResetCloudPhoneRequestBody, ResetPhoneProperty

    pid, serial = connected[3]
    data = os.urandom(2 * 1024 * 1024 + 5)
    (tmp_path / "keep.bin").write_bytes(data)
    assert adb.run("-s", serial, "push", str(tmp_path / "keep.bin"), "/data/local/tmp/xbackup/keep.bin").returncode == 0
    key = f"backups/{unique('phone')}.tar"
    r = export_to(client, pid, external.named, key, ["/data/local/tmp/xbackup"])
    (j,) = wait_jobs_succeeded(client, r.request_id, timeout=120)
    assert f"obs://{external.named}/{key}" in j.execute_msg
    # The archive is on the external endpoint, not in the embedded store of the server under test.
    body = external.s3.get_object(Bucket=external.named, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as t:
        assert t.extractfile("data/local/tmp/xbackup/keep.bin").read() == data
    assert external.named not in [b["Name"] for b in s3_client(cph, cph.ak, cph.sk).list_buckets()["Buckets"]]

    r = client.reset_cloud_phone(
        ResetCloudPhoneRequest(body=ResetCloudPhoneRequestBody(phones=[ResetPhoneProperty(phone_id=pid)]))
    )
    wait_jobs_succeeded(client, r.request_id, timeout=60)
    serial = wait_endpoint(client, pid).serial
    adb.connect(serial)
    assert adb.wait_state(serial, "device") == "device"
    assert sh(adb, serial, "ls /data/local/tmp/xbackup/keep.bin").returncode != 0
    r = import_from(client, pid, external.named, key)
    wait_jobs_succeeded(client, r.request_id, timeout=120)
    got = sh(adb, serial, "sha256sum /data/local/tmp/xbackup/keep.bin").stdout.split()[0]
    assert got == hashlib.sha256(data).hexdigest()


def test_a_large_export_streams_to_the_external_endpoint_in_parts(client, external, connected, adb, tmp_path):  # noqa: F811
    pid, serial = connected[4]
    size = 80 * 1024 * 1024 + 123  # above the 64 MiB threshold of multipart uploads
    big, digest = tmp_path / "big.bin", hashlib.sha256()
    with open(big, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            f.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    assert adb.run("-s", serial, "push", str(big), "/data/local/tmp/large/big.bin", timeout=240).returncode == 0
    big.unlink()
    key = f"backups/{unique('large')}.tar"
    r = export_to(client, pid, external.named, key, ["/data/local/tmp/large"])
    wait_jobs_succeeded(client, r.request_id, timeout=280)
    head = external.s3.head_object(Bucket=external.named, Key=key)
    assert head["ContentLength"] > size
    etag = head["ETag"].strip('"')
    assert "-" in etag and int(etag.rsplit("-", 1)[1]) >= 2, f"not a multipart upload: {etag}"
    # Read the archive back as a stream and check the file inside it.
    body = external.s3.get_object(Bucket=external.named, Key=key)["Body"]
    back = hashlib.sha256()
    with tarfile.open(fileobj=body, mode="r|") as t:
        for m in t:
            if m.name == "data/local/tmp/large/big.bin":
                assert m.size == size
                f = t.extractfile(m)
                while chunk := f.read(1 << 20):
                    back.update(chunk)
    assert back.hexdigest() == digest.hexdigest()


def test_missing_external_objects_and_buckets_are_cps_0104(client, external, connected):
    pid, _ = connected[4]
    for url in (
        f"obs://{external.named}/files/missing.tar",  # a configured bucket without the object
        f"obs://{bucket_name()}/files/any.tar",  # no bucket anywhere (the default endpoint has none)
    ):
        r = push_file(client, url, phone_ids=[pid])
        (j,) = wait_jobs(client, r.request_id, timeout=60)
        assert j.status == -1 and j.error_code == "CPS.0104", (url, j)
        assert url in j.error_msg


def test_a_bucket_whose_endpoint_does_not_list_the_account_reads_as_missing(client, external, connected, adb):  # noqa: F811
    external.s3.put_object(Bucket=external.unlisted, Key="x.tar", Body=tar_of({"data/local/tmp/unlisted.txt": b"no"}))
    pid, serial = connected[5]
    r = push_file(client, f"obs://{external.unlisted}/x.tar", phone_ids=[pid])
    (j,) = wait_jobs(client, r.request_id, timeout=60)
    assert j.status == -1 and j.error_code == "CPS.0104", j
    assert sh(adb, serial, "ls /data/local/tmp/unlisted.txt").returncode != 0
    # Nor can an export write there.
    r = export_to(client, pid, external.unlisted, "stolen.tar", ["/data/local/tmp"])
    (j,) = wait_jobs(client, r.request_id, timeout=60)
    assert j.status == -1 and j.error_code == "CPS.0103", j
    assert "stolen.tar" not in [o["Key"] for o in external.s3.list_objects_v2(Bucket=external.unlisted).get("Contents", [])]


def test_an_unreachable_endpoint_fails_the_job_naming_its_host_only(client, cph, external, connected, unreachable_host):
    pid, _ = connected[6]
    r = push_file(client, "obs://unreachable-bucket/files/any.tar", phone_ids=[pid])
    (j,) = wait_jobs(client, r.request_id, timeout=90)
    assert j.status == -1 and j.error_code == "CPS.0003", j
    assert unreachable_host in j.error_msg and "unreachable" in j.error_msg, j.error_msg
    r = export_to(client, pid, "unreachable-bucket", "backup.tar", ["/data/local/tmp"])
    (k,) = wait_jobs(client, r.request_id, timeout=90)
    assert k.status == -1 and k.error_code == "CPS.0103", k
    assert unreachable_host in k.error_msg, k.error_msg
    # No credential of any configured endpoint shows in a job or in the server's log.
    log = cph.log_path.read_text(errors="replace")
    for text in (j.error_msg, j.execute_msg or "", k.error_msg, k.execute_msg or "", log):
        for secret in (UNREACHABLE_SECRET, external.server.sk):
            assert secret not in text


@pytest.mark.parametrize("which", ["wrong_secret", "unknown_key"])
def test_an_endpoint_that_refuses_the_credentials_fails_the_job_naming_it(client, cph, external, connected, which):
    bucket = getattr(external, which)
    external.s3.put_object(Bucket=bucket, Key="x.tar", Body=tar_of({"data/local/tmp/refused.txt": b"no"}))
    host = f"127.0.0.1:{external.port}"
    pid, _ = connected[6]
    r = push_file(client, f"obs://{bucket}/x.tar", phone_ids=[pid])
    (j,) = wait_jobs(client, r.request_id, timeout=60)
    assert j.status == -1 and j.error_code == "CPS.0003", j
    assert host in j.error_msg and "refused the configured credentials" in j.error_msg, j.error_msg
    assert f"obs://{bucket}/x.tar" in j.error_msg, j.error_msg
    r = export_to(client, pid, bucket, "refused.tar", ["/data/local/tmp"])
    (k,) = wait_jobs(client, r.request_id, timeout=60)
    assert k.status == -1 and k.error_code == "CPS.0103", k
    assert host in k.error_msg and "refused the configured credentials" in k.error_msg, k.error_msg
    assert "refused.tar" not in [o["Key"] for o in external.s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    # The endpoint refused the signatures; no secret shows in a job or in the server's log.
    statuses = {e[3] for e in external.access_log() if e[2].startswith(f"/{bucket}")}
    assert 403 in statuses, statuses
    log = cph.log_path.read_text(errors="replace")
    for text in (j.error_msg, j.execute_msg or "", k.error_msg, k.execute_msg or "", log):
        for secret in (WRONG_SECRET, external.server.sk):
            assert secret not in text


@pytest.fixture
def localhost_names(monkeypatch):
    """Names under `localhost` are loopback (RFC 6761); the system resolver may not know
    `<bucket>.localhost`, so this process resolves them itself."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_virtual_hosted_endpoint_serves_push_file(client, external, connected, adb, localhost_names):  # noqa: F811
    s = external.server
    vs3 = boto3.client(
        "s3",
        endpoint_url=f"http://localhost:{external.port}",
        aws_access_key_id=s.ak,
        aws_secret_access_key=s.sk,
        region_name=s.region,
        config=Config(s3={"addressing_style": "virtual"}, retries={"max_attempts": 1}),
    )
    key = f"vh/{unique('bundle')}.tar"
    vs3.put_object(Bucket=external.vhost, Key=key, Body=tar_of({"data/local/tmp/vh/v.txt": b"virtual"}))
    vhost = f"{external.vhost}.localhost:{external.port}"
    # boto3 wrote it virtual-hosted style: the bucket in the host, the key alone in the path.
    assert ("PUT", vhost, f"/{key}", 200) in external.access_log()
    pid, serial = connected[2]
    r = push_file(client, f"obs://{external.vhost}/{key}", phone_ids=[pid])
    wait_jobs_succeeded(client, r.request_id, timeout=120)
    assert sh(adb, serial, "cat /data/local/tmp/vh/v.txt").stdout == "virtual"
    # The server under test read it virtual-hosted style as well, never path style.
    assert ("GET", vhost, f"/{key}", 200) in external.access_log()
    assert not external.gets(f"/{external.vhost}/{key}")


def test_an_object_is_fetched_once_for_all_phones_of_a_server(client, external, server, connected, adb):  # noqa: F811
    sid, _ = server
    assert len(connected) >= 3
    key = f"fanout/{unique('tar')}.tar"
    payload = os.urandom(4 * 1024 * 1024 + 3)
    external.s3.put_object(Bucket=external.named, Key=key, Body=tar_of({"data/local/tmp/fanout/p.bin": payload}))
    path = f"/{external.named}/{key}"
    assert external.gets(path) == []
    r = push_file(client, f"obs://{external.named}/{key}", server_ids=[sid])
    jobs = wait_jobs_succeeded(client, r.request_id, timeout=180)
    assert len(jobs) == len(connected)
    for _, serial in connected:
        md5 = sh(adb, serial, "md5sum /data/local/tmp/fanout/p.bin").stdout.split()[0]
        assert md5 == hashlib.md5(payload).hexdigest()
    # One GET of the object served every phone of the server.
    gets = external.gets(path)
    assert [g[3] for g in gets] == [200], gets
