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
