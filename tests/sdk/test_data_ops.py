"""Data operations with real objects: upload with boto3 to the embedded object storage, then
InstallApk and PushFile through the official SDK, checked on the phones with stock adb."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from adb_tools import ADB, APK, APK_PACKAGE, wait_endpoint
from cph_sdk import ListJobsRequest, expect_error, wait_jobs, wait_jobs_succeeded
from test_adb import adb, android11, keypair, server, sh  # noqa: F401  (fixtures)
from test_commands import install_apk, push_file
from test_object_storage import bucket_name, s3_client

pytestmark = [
    pytest.mark.filterwarnings("ignore:Method 'nova_:DeprecationWarning"),
    pytest.mark.skipif(ADB is None, reason="stock adb is not installed (apt-get install adb)"),
]


@pytest.fixture(scope="module")
def bucket(cph):
    s3 = s3_client(cph, cph.ak, cph.sk)
    b = bucket_name()
    s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": cph.region})
    return s3, b


@pytest.fixture(scope="module")
def connected(server, adb, client):  # noqa: F811
    """Every phone of the module's server, connected through stock adb: [(phone_id, serial)]."""
    sid, phones = server
    out = []
    for p in phones:
        ep = wait_endpoint(client, p.phone_id)
        assert "connected" in adb.connect(ep.serial)
        assert adb.wait_state(ep.serial, "device") == "device"
        out.append((p.phone_id, ep.serial))
    return out


def tar_of(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_install_an_uploaded_apk_on_every_phone_of_a_server(client, bucket, server, connected, adb):  # noqa: F811
    s3, b = bucket
    s3.upload_file(str(APK), b, "apps/settings.apk")
    sid, _ = server
    r = install_apk(client, f"-r obs://{b}/apps/settings.apk", server_ids=[sid])
    jobs = wait_jobs_succeeded(client, r.request_id, timeout=120)
    assert len(jobs) == len(connected)
    assert all("Success" in j.execute_msg for j in jobs)
    for _, serial in connected:
        assert f"package:{APK_PACKAGE}" in sh(adb, serial, "pm list packages -3").stdout.split()
    # install-multiple with the same object as the base APK
    pid, serial = connected[0]
    assert adb.run("-s", serial, "uninstall", APK_PACKAGE).returncode == 0
    r = install_apk(client, f"obs://{b}/apps/settings.apk", phone_ids=[pid], command="install-multiple")
    wait_jobs_succeeded(client, r.request_id, timeout=60)
    assert f"package:{APK_PACKAGE}" in sh(adb, serial, "pm list packages").stdout.split()


def test_an_object_that_is_not_an_apk_fails_the_install(client, bucket, connected):
    s3, b = bucket
    s3.put_object(Bucket=b, Key="apps/broken.apk", Body=b"PK\x03\x04 not really a zip" * 50)
    pid, _ = connected[1]
    r = install_apk(client, f"obs://{b}/apps/broken.apk", phone_ids=[pid])
    (j,) = wait_jobs(client, r.request_id)
    assert j.status == -1 and j.error_code == "CPS.0260"
    assert "INSTALL_FAILED_INVALID_APK" in j.execute_msg


def test_push_file_unpacks_a_tar_under_the_phone_root(client, bucket, connected, adb):
    s3, b = bucket
    payload = os.urandom(256 * 1024)
    s3.put_object(
        Bucket=b,
        Key="files/bundle.tar",
        Body=tar_of({"data/local/tmp/bundle/a.bin": payload, "sdcard/Download/readme.txt": b"hello"}),
    )
    pid, serial = connected[2]
    r = push_file(client, f"obs://{b}/files/bundle.tar", phone_ids=[pid])
    (j,) = wait_jobs_succeeded(client, r.request_id, timeout=60)
    assert "2 files" in j.execute_msg
    assert sh(adb, serial, "cat /sdcard/Download/readme.txt").stdout == "hello"
    md5 = sh(adb, serial, "md5sum /data/local/tmp/bundle/a.bin").stdout.split()[0]
    import hashlib

    assert md5 == hashlib.md5(payload).hexdigest()


def test_a_hostile_tar_is_refused_as_a_whole(client, bucket, connected, adb):
    s3, b = bucket
    s3.put_object(
        Bucket=b,
        Key="files/evil.tar",
        Body=tar_of({"data/local/tmp/first.txt": b"first", "../../escape.txt": b"evil"}),
    )
    pid, serial = connected[3]
    r = push_file(client, f"obs://{b}/files/evil.tar", phone_ids=[pid])
    (j,) = wait_jobs(client, r.request_id)
    assert j.status == -1 and j.error_code == "CPS.0260", j
    assert "../../escape.txt" in j.execute_msg
    # Refused as a whole: not even the harmless first entry was written.
    assert sh(adb, serial, "ls /data/local/tmp/first.txt").returncode != 0


def test_objects_of_another_account_read_as_missing(cph, client, connected):
    t = cph.create_tenant()
    s3 = s3_client(cph, t.access_key, t.secret_key)
    b = bucket_name()
    s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": cph.region})
    s3.upload_file(str(APK), b, "theirs.apk")
    pid, _ = connected[4]
    r = install_apk(client, f"obs://{b}/theirs.apk", phone_ids=[pid])
    (j,) = wait_jobs(client, r.request_id)
    assert j.status == -1 and j.error_code == "CPS.0104"


def export(client, pid, bucket, key, include):
    from huaweicloudsdkcph.v1 import (
        BatchExportCloudPhoneDataRequest,
        BatchExportCloudPhoneDataRequestBody,
        StorageInfo,
    )

    info = StorageInfo(phone_id=pid, include_files=include, bucket_name=bucket, object_path=key)
    body = BatchExportCloudPhoneDataRequestBody(storage_infos=[info])
    return client.batch_export_cloud_phone_data(BatchExportCloudPhoneDataRequest(body=body))


def restore(client, items):
    from huaweicloudsdkcph.v1 import (
        BatchImportCloudPhoneDataRequest,
        BatchImportCloudPhoneDataRequestBody,
        RestoreInfo,
    )

    infos = [RestoreInfo(phone_id=pid, bucket_name=b, object_path=key) for pid, b, key in items]
    body = BatchImportCloudPhoneDataRequestBody(restore_infos=infos)
    return client.batch_import_cloud_phone_data(BatchImportCloudPhoneDataRequest(body=body))


def test_only_objects_an_export_wrote_can_be_imported(cph, client, bucket, connected, adb):
    s3, b = bucket
    (pid, serial), (other_pid, other_serial) = connected[4], connected[3]
    marker = "/data/local/tmp/registered/marker.txt"
    sh(adb, serial, f"mkdir -p /data/local/tmp/registered && echo exported > {marker}")
    r = export(client, pid, b, "registered/phone.tar", ["/data/local/tmp/registered"])
    wait_jobs_succeeded(client, r.request_id, timeout=60)
    sh(adb, serial, f"echo changed > {marker}")
    # A tar put into the bucket by hand, never written by an export, is refused ...
    s3.put_object(Bucket=b, Key="handmade/phone.tar", Body=tar_of({"data/local/tmp/handmade.txt": b"x"}))
    # ... as is an exported path asked for in another bucket, or an exported path next to an
    # unregistered one: the request is refused as a whole and no phone gets a job.
    other_bucket = bucket_name()
    s3.create_bucket(Bucket=other_bucket, CreateBucketConfiguration={"LocationConstraint": cph.region})
    exported = s3.get_object(Bucket=b, Key="registered/phone.tar")["Body"].read()
    s3.put_object(Bucket=other_bucket, Key="registered/phone.tar", Body=exported)
    for items in (
        [(pid, b, "handmade/phone.tar")],
        [(pid, other_bucket, "registered/phone.tar")],
        [(pid, b, "registered/phone.tar"), (other_pid, b, "handmade/phone.tar")],
    ):
        e = expect_error(lambda: restore(client, items), 400, "CPS.0172")
        assert "object_path is unregistered" in e.error_msg
        expect_error(lambda: client.list_jobs(ListJobsRequest(request_id=e.request_id)), 404, "CPS.0050")
    assert sh(adb, serial, f"cat {marker}").stdout.strip() == "changed"
    assert sh(adb, serial, "ls /data/local/tmp/handmade.txt").returncode != 0
    assert sh(adb, other_serial, "ls /data/local/tmp/handmade.txt").returncode != 0
    # The registered object restores.
    r = restore(client, [(pid, b, "registered/phone.tar")])
    wait_jobs_succeeded(client, r.request_id, timeout=60)
    assert sh(adb, serial, f"cat {marker}").stdout.strip() == "exported"
    # A registered object that was deleted since fails in its job, as a missing object.
    s3.delete_object(Bucket=b, Key="registered/phone.tar")
    r = restore(client, [(pid, b, "registered/phone.tar")])
    (j,) = wait_jobs(client, r.request_id)
    assert j.status == -1 and j.error_code == "CPS.0104", j


def test_export_reset_import_gives_back_byte_identical_files(client, bucket, connected, adb, tmp_path):
    from huaweicloudsdkcph.v1 import (
        BatchExportCloudPhoneDataRequest,
        BatchExportCloudPhoneDataRequestBody,
        BatchImportCloudPhoneDataRequest,
        BatchImportCloudPhoneDataRequestBody,
        ResetCloudPhoneRequest,
        ResetCloudPhoneRequestBody,
        ResetPhoneProperty,
        RestoreInfo,
        StorageInfo,
    )

    s3, b = bucket
    pid, serial = connected[5]
    data = os.urandom(700 * 1024)
    (tmp_path / "keep.bin").write_bytes(data)
    (tmp_path / "skip.bin").write_bytes(b"excluded")
    assert adb.run("-s", serial, "push", str(tmp_path / "keep.bin"), "/data/local/tmp/backup/keep.bin").returncode == 0
    assert adb.run("-s", serial, "push", str(tmp_path / "skip.bin"), "/data/local/tmp/backup/skip.bin").returncode == 0
    before = sh(adb, serial, "sha256sum /data/local/tmp/backup/keep.bin").stdout.split()[0]
    info = StorageInfo(
        phone_id=pid,
        include_files=["/data/local/tmp/backup"],
        exclude_files=["/data/local/tmp/backup/skip.bin"],
        bucket_name=b,
        object_path="backups/phone.tar",
    )
    body = BatchExportCloudPhoneDataRequestBody(storage_infos=[info])
    r = client.batch_export_cloud_phone_data(BatchExportCloudPhoneDataRequest(body=body))
    (j,) = wait_jobs_succeeded(client, r.request_id, timeout=60)
    assert "obs://" in j.execute_msg
    names = tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=b, Key="backups/phone.tar")["Body"].read())).getnames()
    assert "data/local/tmp/backup/keep.bin" in names and "data/local/tmp/backup/skip.bin" not in names
    # A reset wipes the phone's data ...
    r = client.reset_cloud_phone(
        ResetCloudPhoneRequest(body=ResetCloudPhoneRequestBody(phones=[ResetPhoneProperty(phone_id=pid)]))
    )
    wait_jobs_succeeded(client, r.request_id, timeout=60)
    serial = wait_endpoint(client, pid).serial
    adb.connect(serial)
    assert adb.wait_state(serial, "device") == "device"
    assert sh(adb, serial, "ls /data/local/tmp/backup/keep.bin").returncode != 0
    # ... and the import restores it byte for byte.
    body = BatchImportCloudPhoneDataRequestBody(
        restore_infos=[RestoreInfo(phone_id=pid, bucket_name=b, object_path="backups/phone.tar")]
    )
    r = client.batch_import_cloud_phone_data(BatchImportCloudPhoneDataRequest(body=body))
    wait_jobs_succeeded(client, r.request_id, timeout=60)
    assert sh(adb, serial, "sha256sum /data/local/tmp/backup/keep.bin").stdout.split()[0] == before
    assert sh(adb, serial, "ls /data/local/tmp/backup/skip.bin").returncode != 0


def test_an_import_outside_data_and_cache_is_refused(client, bucket, connected, adb):
    from huaweicloudsdkcph.v1 import (
        BatchImportCloudPhoneDataRequest,
        BatchImportCloudPhoneDataRequestBody,
        RestoreInfo,
    )

    s3, b = bucket
    pid, serial = connected[6]
    # Only exported objects can be restored: export first, then replace the archive with one
    # that reaches outside /data and /cache.
    r = export(client, pid, b, "backups/bad.tar", ["/data/local/tmp"])
    wait_jobs_succeeded(client, r.request_id, timeout=60)
    s3.put_object(Bucket=b, Key="backups/bad.tar", Body=tar_of({"data/ok.txt": b"ok", "system/evil": b"x"}))
    body = BatchImportCloudPhoneDataRequestBody(
        restore_infos=[RestoreInfo(phone_id=pid, bucket_name=b, object_path="backups/bad.tar")]
    )
    r = client.batch_import_cloud_phone_data(BatchImportCloudPhoneDataRequest(body=body))
    (j,) = wait_jobs(client, r.request_id)
    assert j.status == -1 and j.error_code == "CPS.0260" and "system/evil" in j.execute_msg
    assert sh(adb, serial, "ls /data/ok.txt").returncode != 0
