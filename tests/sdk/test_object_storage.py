"""The embedded object storage as users reach it: `s3_endpoint` from bootstrap.json, signed with
the same AK/SK as the API, with boto3 and Huawei's OBS SDK (esdk-obs-python, signatures v2 and
v4, path style). Buckets belong to an account: another tenant is refused."""

from __future__ import annotations

import hashlib
import os

import boto3
import pytest
from botocore.client import Config
from botocore.exceptions import ClientError

from cph_sdk import unique


def s3_client(cph, ak, sk):
    return boto3.client(
        "s3",
        endpoint_url=cph.s3_endpoint,
        aws_access_key_id=ak,
        aws_secret_access_key=sk,
        region_name=cph.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def bucket_name() -> str:
    return unique("bkt").lower().replace("_", "-")[:60]


def test_bootstrap_reports_a_live_s3_endpoint(cph):
    assert cph.s3_endpoint.startswith("http://127.0.0.1:")
    s3 = s3_client(cph, cph.ak, cph.sk)
    assert isinstance(s3.list_buckets()["Buckets"], list)


def test_boto3_round_trip_with_the_api_keys(cph, tmp_path):
    s3 = s3_client(cph, cph.ak, cph.sk)
    b = bucket_name()
    s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": cph.region})
    data = os.urandom(3 * 1024 * 1024 + 11)
    s3.put_object(Bucket=b, Key="apps/demo.apk", Body=data)
    got = s3.get_object(Bucket=b, Key="apps/demo.apk")
    assert got["Body"].read() == data
    assert got["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    part = s3.get_object(Bucket=b, Key="apps/demo.apk", Range="bytes=10-19")["Body"].read()
    assert part == data[10:20]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=b, Prefix="apps/")["Contents"]]
    assert keys == ["apps/demo.apk"]
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * 1024 * 1024))
    s3.upload_file(str(big), b, "big.bin")  # multipart through the transfer manager
    back = tmp_path / "back.bin"
    s3.download_file(b, "big.bin", str(back))
    assert back.read_bytes() == big.read_bytes()


def test_another_account_is_refused_and_wrong_secrets_fail(cph):
    s3 = s3_client(cph, cph.ak, cph.sk)
    b = bucket_name()
    s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": cph.region})
    s3.put_object(Bucket=b, Key="secret.txt", Body=b"mine")
    t = cph.create_tenant()
    other = s3_client(cph, t.access_key, t.secret_key)
    with pytest.raises(ClientError) as e:
        other.get_object(Bucket=b, Key="secret.txt")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert b not in [x["Name"] for x in other.list_buckets()["Buckets"]]
    wrong = s3_client(cph, cph.ak, "x" * 40)
    with pytest.raises(ClientError) as e:
        wrong.list_buckets()
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


@pytest.mark.parametrize("signature", ["v2", "v4"])
def test_obs_sdk_round_trip(cph, signature):
    from obs import ObsClient

    obs = ObsClient(
        access_key_id=cph.ak,
        secret_access_key=cph.sk,
        server=cph.s3_endpoint,
        signature=signature,
        path_style=True,
        is_signature_negotiation=False,
    )
    try:
        b = bucket_name()
        r = obs.createBucket(b, location=cph.region)
        assert r.status < 300, r.errorMessage
        r = obs.putContent(b, "dir/hello.txt", "hello from obs")
        assert r.status < 300, r.errorMessage
        r = obs.getObject(b, "dir/hello.txt", loadStreamInMemory=True)
        assert r.status < 300 and r.body.buffer == b"hello from obs"
        r = obs.listObjects(b, prefix="dir/")
        assert [c.key for c in r.body.contents] == ["dir/hello.txt"]
    finally:
        obs.close()


def test_multipart_uploads_and_parts_are_listed_in_pages(cph):
    s3 = s3_client(cph, cph.ak, cph.sk)
    b = bucket_name()
    s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": cph.region})
    started = []
    for key in ["apps/a.apk", "apps/a.apk", "apps/b.apk", "apps/old/c.apk", "data.tar"]:
        started.append((key, s3.create_multipart_upload(Bucket=b, Key=key)["UploadId"]))
    r = s3.list_multipart_uploads(Bucket=b)
    assert [(u["Key"], u["UploadId"]) for u in r["Uploads"]] == sorted(started)
    assert r["IsTruncated"] is False and r["MaxUploads"] == 1000
    # The two uploads of one key are listed in the order they were started.
    assert [u for k, u in sorted(started) if k == "apps/a.apk"] == [started[0][1], started[1][1]]
    r = s3.list_multipart_uploads(Bucket=b, Prefix="apps/", Delimiter="/")
    assert [u["Key"] for u in r["Uploads"]] == ["apps/a.apk", "apps/a.apk", "apps/b.apk"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["apps/old/"]
    # Pages of two: markers name the last key and upload id.
    r = s3.list_multipart_uploads(Bucket=b, MaxUploads=2)
    assert r["IsTruncated"] is True and len(r["Uploads"]) == 2
    assert (r["NextKeyMarker"], r["NextUploadIdMarker"]) == sorted(started)[1]
    r = s3.list_multipart_uploads(
        Bucket=b, MaxUploads=2, KeyMarker=r["NextKeyMarker"], UploadIdMarker=r["NextUploadIdMarker"]
    )
    assert [(u["Key"], u["UploadId"]) for u in r["Uploads"]] == sorted(started)[2:4]
    assert s3.list_multipart_uploads(Bucket=b, MaxUploads=100000)["MaxUploads"] == 1000
    pages = s3.get_paginator("list_multipart_uploads").paginate(Bucket=b, PaginationConfig={"PageSize": 1})
    assert [(u["Key"], u["UploadId"]) for p in pages for u in p.get("Uploads", [])] == sorted(started)
    # ListParts pages through the parts of one upload.
    key, uid = started[0]
    for n in range(1, 5):
        s3.upload_part(Bucket=b, Key=key, UploadId=uid, PartNumber=n, Body=b"part %d" % n)
    r = s3.list_parts(Bucket=b, Key=key, UploadId=uid, MaxParts=3)
    assert [p["PartNumber"] for p in r["Parts"]] == [1, 2, 3] and r["IsTruncated"] is True
    r = s3.list_parts(Bucket=b, Key=key, UploadId=uid, PartNumberMarker=r["NextPartNumberMarker"])
    assert [p["PartNumber"] for p in r["Parts"]] == [4] and r["IsTruncated"] is False
    # Another account sees none of them; aborted uploads leave the listing.
    t = cph.create_tenant()
    with pytest.raises(ClientError) as e:
        s3_client(cph, t.access_key, t.secret_key).list_multipart_uploads(Bucket=b)
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    for key, uid in started:
        s3.abort_multipart_upload(Bucket=b, Key=key, UploadId=uid)
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=b)


def test_sigv2_signatures_are_checked_by_the_endpoint(cph):
    def v2(sk):
        return boto3.client(
            "s3",
            endpoint_url=cph.s3_endpoint,
            aws_access_key_id=cph.ak,
            aws_secret_access_key=sk,
            region_name=cph.region,
            config=Config(signature_version="s3", s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    b = bucket_name()
    right = v2(cph.sk)
    right.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": cph.region})
    right.put_object(Bucket=b, Key="v2.txt", Body=b"signed with v2")
    assert right.get_object(Bucket=b, Key="v2.txt")["Body"].read() == b"signed with v2"
    assert [o["Key"] for o in right.list_objects(Bucket=b)["Contents"]] == ["v2.txt"]
    with pytest.raises(ClientError) as e:
        v2(cph.sk[:-1] + ("x" if cph.sk[-1] != "x" else "y")).get_object(Bucket=b, Key="v2.txt")
    err = e.value.response["Error"]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err["Code"] == "SignatureDoesNotMatch"
    # The endpoint's constant-time check refused it (s3s's own comparison sends no message).
    assert err.get("Message", "").startswith("The request signature we calculated does not match"), err
