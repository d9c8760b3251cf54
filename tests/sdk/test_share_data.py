"""Shared storage and shared apps with real objects: tars uploaded with boto3, pushed with
PushShareFiles / PushShareApps through the official SDK, and checked on the server's phones with
stock adb. Every phone of a server sees its shared storage read-only at /mnt/shared."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import tarfile

import pytest

from adb_tools import ADB, APK, APK_PACKAGE, wait_endpoint
from cph_sdk import (
    CreateNet2CloudPhoneServerRequestBodyServerShareDataVolume,
    purchase_body,
    purchase_request,
    server_phones,
    wait_jobs,
    wait_jobs_succeeded,
    wait_server_running,
)
from test_adb import adb, keypair, sh  # noqa: F401  (fixtures)
from test_object_storage import bucket_name, s3_client
from test_share import delete_share_apps, delete_share_files, list_share_files, push_share_apps, push_share_files

pytestmark = [
    pytest.mark.filterwarnings("ignore:Method 'nova_:DeprecationWarning"),
    pytest.mark.skipif(ADB is None, reason="stock adb is not installed (apt-get install adb)"),
]

MOUNT = "/mnt/shared"


def tar_of(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def bucket(cph):
    s3 = s3_client(cph, cph.ak, cph.sk)
    b = bucket_name()
    s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": cph.region})
    return s3, b


@pytest.fixture(scope="module")
def share_server(client, cph, offer, keypair):  # noqa: F811
    """A running Android 11 server with shared storage, bought with the key pair:
    (server_id, [phone ids])."""
    cat = offer.catalog
    images = [i for i in cat["images"] if i.os_name.startswith("AOSP11")]
    choices = sorted(
        (pm.phone_capacity, pm.phone_model_name, pm, img)
        for pm in cat["phone_models"]
        for img in images
        if pm.status == 1 and (pm.phone_model_version or 0) >= 1 and img.image_label == pm.image_label
    )
    assert choices, "the catalog has no spec 2.0 phone model with an Android 11 image"
    _, _, pm, img = choices[0]
    o = dataclasses.replace(
        offer,
        server_model_name=pm.server_model_name,
        phone_model_name=pm.phone_model_name,
        image_id=img.image_id,
        image_label=pm.image_label,
        phone_capacity=pm.phone_capacity,
        phone_model_version=pm.phone_model_version,
    )
    req = purchase_request(purchase_body(o, cph.default_vpc_id, cph.default_subnet_id, keypair_name=keypair[0]))
    req.body.server_share_data_volume = CreateNet2CloudPhoneServerRequestBodyServerShareDataVolume(
        volume_type="SSD", size=200
    )
    resp = client.create_net2_cloud_phone_server(req)
    wait_jobs_succeeded(client, resp.request_id, timeout=60)
    sid = resp.server_ids[0]
    wait_server_running(client, sid)
    return sid, sorted(p.phone_id for p in server_phones(client, sid))


@pytest.fixture(scope="module")
def serials(client, share_server, adb):  # noqa: F811
    """Two phones of the server (first and last), connected through stock adb."""
    _, phones = share_server
    out = []
    for pid in (phones[0], phones[-1]):
        ep = wait_endpoint(client, pid)
        assert "connected" in adb.connect(ep.serial)
        assert adb.wait_state(ep.serial, "device") == "device"
        out.append(ep.serial)
    return out


def one_job(client, resp):
    (j,) = wait_jobs(client, resp.request_id, timeout=120)
    return j


def listing(client, sid, path, **kw):
    j = one_job(client, list_share_files(client, sid, path, **kw))
    assert j.status == 2, (j.error_code, j.error_msg, j.execute_msg)
    return json.loads(j.execute_msg)


def test_shared_files_reach_every_phone_read_only(client, bucket, share_server, serials, adb):  # noqa: F811
    s3, b = bucket
    sid, _ = share_server
    video = os.urandom(300 * 1024)
    s3.put_object(
        Bucket=b,
        Key="share/files.tar",
        Body=tar_of({"data/media/video.bin": video, "data/notes/a.txt": b"note", "cache/conf/c.txt": b"conf"}),
    )
    j = one_job(client, push_share_files(client, [sid], bucket_name=b, object_path="share/files.tar"))
    assert j.status == 2, (j.error_code, j.error_msg, j.execute_msg)
    assert "3 files" in j.execute_msg and MOUNT in j.execute_msg

    for serial in serials:
        r = sh(adb, serial, f"md5sum {MOUNT}/data/media/video.bin")
        assert r.stdout.split()[0] == hashlib.md5(video).hexdigest()
        assert sh(adb, serial, f"cat {MOUNT}/cache/conf/c.txt").stdout == "conf"
        # Read-only for the phones: neither writes nor removals get through.
        assert sh(adb, serial, f"touch {MOUNT}/data/mine.txt").returncode != 0
        assert sh(adb, serial, f"rm {MOUNT}/data/notes/a.txt").returncode != 0
        # The phone's own /data is not the shared one.
        assert sh(adb, serial, "ls /data/media/video.bin").returncode != 0

    top = listing(client, sid, "/data")
    assert top["total"] == 2 and not top["truncated"]
    assert [(f["name"], f["type"]) for f in top["files"]] == [("media", "directory"), ("notes", "directory")]
    media = listing(client, sid, "/data/media")
    assert [(f["name"], f["type"], f["size"]) for f in media["files"]] == [("video.bin", "file", len(video))]
    page = listing(client, sid, "/data", offset=1, limit=1)
    assert page["total"] == 2 and [f["name"] for f in page["files"]] == ["notes"]

    missing = one_job(client, list_share_files(client, sid, "/data/nothing-here"))
    assert missing.status == -1 and missing.error_code == "CPS.0199", missing
    not_dir = one_job(client, list_share_files(client, sid, "/data/notes/a.txt"))
    assert not_dir.status == -1 and not_dir.error_code == "CPS.0199", not_dir

    d = one_job(client, delete_share_files(client, [sid], ["/data/media/video.bin", "/data/gone.txt"]))
    assert d.status == 2, (d.error_code, d.error_msg)
    assert "deleted 1 of 2" in d.execute_msg and "/data/gone.txt" in d.execute_msg
    for serial in serials:
        assert sh(adb, serial, f"ls {MOUNT}/data/media/video.bin").returncode != 0
        assert sh(adb, serial, f"cat {MOUNT}/data/notes/a.txt").stdout == "note"


def test_a_share_tar_outside_data_and_cache_is_refused_as_a_whole(client, bucket, share_server, serials, adb):  # noqa: F811
    s3, b = bucket
    sid, _ = share_server
    s3.put_object(Bucket=b, Key="share/evil.tar", Body=tar_of({"data/first.txt": b"1", "system/evil": b"x"}))
    j = one_job(client, push_share_files(client, [sid], bucket_name=b, object_path="share/evil.tar"))
    assert j.status == -1 and j.error_code == "CPS.0260", j
    assert "system/evil" in j.execute_msg
    assert sh(adb, serials[0], f"ls {MOUNT}/data/first.txt").returncode != 0
    missing = one_job(client, push_share_files(client, [sid], bucket_name=b, object_path="share/none.tar"))
    assert missing.status == -1 and missing.error_code == "CPS.0104", missing


def installed(adb, serial) -> set[str]:  # noqa: F811
    return set(sh(adb, serial, "pm list packages -3").stdout.split())


def test_a_shared_app_is_pre_installed_on_every_phone_and_removed_again(client, bucket, share_server, serials, adb):  # noqa: F811
    s3, b = bucket
    sid, phones = share_server
    s3.put_object(Bucket=b, Key="apps/settings.tar", Body=tar_of({"settings/base.apk": APK.read_bytes()}))
    j = one_job(
        client,
        push_share_apps(client, [sid], package_name=APK_PACKAGE, pre_install_app=1, bucket_name=b, object_path="apps/settings.tar"),
    )
    assert j.status == 2, (j.error_code, j.error_msg, j.execute_msg)
    assert f"pre-installed on {len(phones)} phones" in j.execute_msg
    apk_path = f"{MOUNT}/apps/{APK_PACKAGE}/settings/base.apk"
    for serial in serials:
        assert f"package:{APK_PACKAGE}" in installed(adb, serial)
        assert sh(adb, serial, f"ls {apk_path}").returncode == 0
    apps = listing(client, sid, f"/apps/{APK_PACKAGE}")
    assert [f["name"] for f in apps["files"]] == ["settings"]

    d = one_job(client, delete_share_apps(client, [sid], APK_PACKAGE))
    assert d.status == 2, (d.error_code, d.error_msg, d.execute_msg)
    assert f"uninstalled from {len(phones)} phones" in d.execute_msg
    for serial in serials:
        assert f"package:{APK_PACKAGE}" not in installed(adb, serial)
        assert sh(adb, serial, f"ls {apk_path}").returncode != 0
    # Gone from the shared apps: a second delete has nothing to remove.
    again = one_job(client, delete_share_apps(client, [sid], APK_PACKAGE))
    assert again.status == -1 and again.error_code == "CPS.0173", again


def test_a_shared_app_without_pre_install_is_only_stored(client, bucket, share_server, serials, adb):  # noqa: F811
    s3, b = bucket
    sid, _ = share_server
    s3.put_object(Bucket=b, Key="apps/stored.tar", Body=tar_of({"base.apk": APK.read_bytes()}))
    j = one_job(
        client,
        push_share_apps(client, [sid], package_name=APK_PACKAGE, pre_install_app=0, bucket_name=b, object_path="apps/stored.tar"),
    )
    assert j.status == 2, (j.error_code, j.error_msg, j.execute_msg)
    for serial in serials:
        assert f"package:{APK_PACKAGE}" not in installed(adb, serial)
        assert sh(adb, serial, f"ls {MOUNT}/apps/{APK_PACKAGE}/base.apk").returncode == 0
    # Nothing was pre-installed, so removing it uninstalls nothing.
    d = one_job(client, delete_share_apps(client, [sid], APK_PACKAGE))
    assert d.status == 2 and "uninstalled from 0 phones" in d.execute_msg, d


def test_a_shared_app_that_is_not_the_named_package_is_not_installed(client, bucket, share_server, serials, adb):  # noqa: F811
    s3, b = bucket
    sid, _ = share_server
    s3.put_object(Bucket=b, Key="apps/misnamed.tar", Body=tar_of({"base.apk": APK.read_bytes()}))
    j = one_job(
        client,
        push_share_apps(client, [sid], package_name="com.example.other", pre_install_app=1, bucket_name=b, object_path="apps/misnamed.tar"),
    )
    assert j.status == -1 and j.error_code == "CPS.0260", j
    assert "does not match" in j.execute_msg, j.execute_msg
    for serial in serials:
        assert f"package:{APK_PACKAGE}" not in installed(adb, serial)
    # An archive without any APK is refused and leaves nothing behind.
    s3.put_object(Bucket=b, Key="apps/empty.tar", Body=tar_of({"readme.txt": b"no apk here"}))
    e = one_job(
        client,
        push_share_apps(client, [sid], package_name="com.example.empty", bucket_name=b, object_path="apps/empty.tar"),
    )
    assert e.status == -1 and e.error_code == "CPS.0260" and "0 .apk files" in e.execute_msg, e
    assert sh(adb, serials[0], f"ls {MOUNT}/apps/com.example.empty").returncode != 0
