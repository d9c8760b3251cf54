"""Drives the embedded S3 endpoint with real clients: boto3 and Huawei's esdk-obs-python.

Usage: clients.py boto3 | obs-v2 | obs-v4 | raw | virtual

Environment: S3_ENDPOINT (http://127.0.0.1:PORT), S3_REGION, S3_AK1/S3_SK1 (project one),
S3_AK2/S3_SK2 (project two). Exits non-zero on the first failed check.
"""

import hashlib
import os
import sys
import tempfile

EP = os.environ["S3_ENDPOINT"]
REGION = os.environ["S3_REGION"]
AK1, SK1 = os.environ["S3_AK1"], os.environ["S3_SK1"]
AK2, SK2 = os.environ["S3_AK2"], os.environ["S3_SK2"]
MIB = 1 << 20


def md5(b):
    return hashlib.md5(b).hexdigest()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def multipart_etag(parts):
    return hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-%d" % len(parts)


# ---- boto3 --------------------------------------------------------------------------------------


def boto3_suite():
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import ClientError

    def client(ak, sk, signature_version="s3v4"):
        return boto3.client(
            "s3",
            endpoint_url=EP,
            aws_access_key_id=ak,
            aws_secret_access_key=sk,
            region_name=REGION,
            config=Config(
                signature_version=signature_version,
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1, "mode": "standard"},
            ),
        )

    def expect(fn, code, status):
        try:
            fn()
        except ClientError as e:
            got = (e.response["Error"].get("Code"), e.response["ResponseMetadata"]["HTTPStatusCode"])
            check(got == (code, status), "expected %s/%d, got %s" % (code, status, got))
            return
        raise AssertionError("expected %s, the call succeeded" % code)

    c1, c2 = client(AK1, SK1), client(AK2, SK2)
    b = "boto-bucket"
    c1.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION})
    expect(lambda: c1.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION}),
           "BucketAlreadyOwnedByYou", 409)
    expect(lambda: c2.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION}),
           "BucketAlreadyExists", 409)
    expect(lambda: c1.create_bucket(Bucket="other-region", CreateBucketConfiguration={"LocationConstraint": "xx-1"}),
           "InvalidLocationConstraint", 400)
    check(c1.get_bucket_location(Bucket=b)["LocationConstraint"] == REGION, "bucket location")
    c1.head_bucket(Bucket=b)
    print("ok boto3 buckets")

    # Put, get, ranged get, head.
    data = os.urandom(MIB + 123)
    r = c1.put_object(Bucket=b, Key="dir/a.bin", Body=data, ContentType="application/x-test",
                      Metadata={"origin": "unit-test"})
    check(r["ETag"] == '"%s"' % md5(data), "put etag %s" % r["ETag"])
    g = c1.get_object(Bucket=b, Key="dir/a.bin")
    check(g["Body"].read() == data, "get bytes")
    check(g["ETag"] == '"%s"' % md5(data), "get etag")
    check(g["ContentType"] == "application/x-test", "content type %s" % g["ContentType"])
    check(g["Metadata"] == {"origin": "unit-test"}, "metadata %s" % g["Metadata"])
    check(g["ContentLength"] == len(data), "content length")
    g = c1.get_object(Bucket=b, Key="dir/a.bin", Range="bytes=100-199")
    check(g["ResponseMetadata"]["HTTPStatusCode"] == 206, "ranged status")
    check(g["Body"].read() == data[100:200], "ranged bytes")
    check(g["ContentRange"] == "bytes 100-199/%d" % len(data), "content range %s" % g["ContentRange"])
    g = c1.get_object(Bucket=b, Key="dir/a.bin", Range="bytes=-10")
    check(g["Body"].read() == data[-10:], "suffix range")
    expect(lambda: c1.get_object(Bucket=b, Key="dir/a.bin", Range="bytes=%d-" % (len(data) + 5)), "InvalidRange", 416)
    h = c1.head_object(Bucket=b, Key="dir/a.bin")
    check(h["ContentLength"] == len(data) and h["ETag"] == '"%s"' % md5(data), "head")
    check(h["Metadata"] == {"origin": "unit-test"} and h["ContentType"] == "application/x-test", "head attrs")
    check(h["LastModified"] is not None, "last modified")
    expect(lambda: c1.get_object(Bucket=b, Key="missing"), "NoSuchKey", 404)
    expect(lambda: c1.get_object(Bucket="no-such-bucket", Key="k"), "NoSuchBucket", 404)
    expect(lambda: c1.get_object(Bucket=b, Key="dir/a.bin", IfMatch='"0000"'), "PreconditionFailed", 412)
    print("ok boto3 objects")

    # Listing: prefix, delimiter, pagination in key order, URL-encoded keys.
    keys = ["dir/b.txt", "dir/sub/c.txt", "dir/sub/d.txt", "top.txt", "weird key+%/\u00fc.txt", "z" * 300]
    for k in keys:
        c1.put_object(Bucket=b, Key=k, Body=k.encode())
    all_keys = sorted(keys + ["dir/a.bin"], key=lambda k: k.encode())
    r = c1.list_objects_v2(Bucket=b, Prefix="dir/", Delimiter="/")
    check([o["Key"] for o in r["Contents"]] == ["dir/a.bin", "dir/b.txt"], "v2 contents %s" % r.get("Contents"))
    check([p["Prefix"] for p in r["CommonPrefixes"]] == ["dir/sub/"], "v2 prefixes")
    check(r["KeyCount"] == 3 and not r["IsTruncated"], "v2 key count")
    pages = c1.get_paginator("list_objects_v2").paginate(Bucket=b, PaginationConfig={"PageSize": 2})
    listed = [o["Key"] for p in pages for o in p.get("Contents", [])]
    check(listed == all_keys, "v2 pagination %s" % listed)
    pages = c1.get_paginator("list_objects").paginate(Bucket=b, PaginationConfig={"PageSize": 2})
    listed = [o["Key"] for p in pages for o in p.get("Contents", [])]
    check(listed == all_keys, "v1 pagination %s" % listed)
    pages = c1.get_paginator("list_objects_v2").paginate(Bucket=b, Delimiter="/", PaginationConfig={"PageSize": 1})
    tops = [o["Key"] for p in pages for o in p.get("Contents", [])]
    pages = c1.get_paginator("list_objects_v2").paginate(Bucket=b, Delimiter="/", PaginationConfig={"PageSize": 1})
    prefixes = [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
    check(tops == ["top.txt", "z" * 300] and prefixes == ["dir/", "weird key+%/"], "delimited pages %s %s" % (tops, prefixes))
    check(c1.get_object(Bucket=b, Key=keys[4])["Body"].read() == keys[4].encode(), "weird key")
    print("ok boto3 listing")

    # Copy within the project, with and without new metadata.
    r = c1.copy_object(Bucket=b, Key="copy.bin", CopySource={"Bucket": b, "Key": "dir/a.bin"})
    check(r["CopyObjectResult"]["ETag"] == '"%s"' % md5(data), "copy etag")
    g = c1.get_object(Bucket=b, Key="copy.bin")
    check(g["Body"].read() == data and g["Metadata"] == {"origin": "unit-test"}, "copy bytes and metadata")
    c1.copy_object(Bucket=b, Key="copy.bin", CopySource={"Bucket": b, "Key": "copy.bin"},
                   MetadataDirective="REPLACE", Metadata={"k": "v"}, ContentType="text/plain")
    h = c1.head_object(Bucket=b, Key="copy.bin")
    check(h["Metadata"] == {"k": "v"} and h["ContentType"] == "text/plain", "replaced metadata %s" % h)
    expect(lambda: c1.copy_object(Bucket=b, Key="copy.bin", CopySource={"Bucket": b, "Key": "copy.bin"}),
           "InvalidRequest", 400)
    print("ok boto3 copy")

    # Multipart: 20 MiB in 5 MiB parts by hand, then through the transfer manager.
    parts = [os.urandom(5 * MIB) for _ in range(4)]
    up = c1.create_multipart_upload(Bucket=b, Key="big.bin", ContentType="application/x-tar")
    uid = up["UploadId"]
    etags = []
    for i, p in enumerate(parts, 1):
        r = c1.upload_part(Bucket=b, Key="big.bin", UploadId=uid, PartNumber=i, Body=p)
        check(r["ETag"] == '"%s"' % md5(p), "part etag")
        etags.append(r["ETag"])
    lp = c1.list_parts(Bucket=b, Key="big.bin", UploadId=uid)
    check([p["PartNumber"] for p in lp["Parts"]] == [1, 2, 3, 4], "list parts")
    check(all(p["Size"] == 5 * MIB for p in lp["Parts"]), "part sizes")
    expect(lambda: c1.complete_multipart_upload(
        Bucket=b, Key="big.bin", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"%s"' % ("0" * 32)}]}), "InvalidPart", 400)
    expect(lambda: c1.complete_multipart_upload(
        Bucket=b, Key="big.bin", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": etags[1]}, {"PartNumber": 1, "ETag": etags[0]}]}),
        "InvalidPartOrder", 400)
    r = c1.complete_multipart_upload(
        Bucket=b, Key="big.bin", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]})
    check(r["ETag"] == '"%s"' % multipart_etag(parts), "multipart etag %s" % r["ETag"])
    g = c1.get_object(Bucket=b, Key="big.bin")
    body = g["Body"].read()
    check(md5(body) == md5(b"".join(parts)) and len(body) == 20 * MIB, "multipart bytes")
    check(g["ContentType"] == "application/x-tar", "multipart content type")
    expect(lambda: c1.list_parts(Bucket=b, Key="big.bin", UploadId=uid), "NoSuchUpload", 404)
    up = c1.create_multipart_upload(Bucket=b, Key="aborted.bin")
    c1.upload_part(Bucket=b, Key="aborted.bin", UploadId=up["UploadId"], PartNumber=1, Body=b"x")
    c1.abort_multipart_upload(Bucket=b, Key="aborted.bin", UploadId=up["UploadId"])
    expect(lambda: c1.list_parts(Bucket=b, Key="aborted.bin", UploadId=up["UploadId"]), "NoSuchUpload", 404)
    expect(lambda: c1.head_object(Bucket=b, Key="aborted.bin"), "404", 404)
    # ListMultipartUploads: prefix, delimiter, pagination by key and upload id; ListParts pages.
    started = []
    for k in ["mp/a", "mp/a", "mp/b", "mp/sub/c", "mp/sub/d", "other"]:
        started.append((k, c1.create_multipart_upload(Bucket=b, Key=k)["UploadId"]))
    r = c1.list_multipart_uploads(Bucket=b)
    listed = [(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])]
    check(listed == sorted(started), "list uploads %s" % listed)
    check(not r["IsTruncated"] and r["MaxUploads"] == 1000, "list uploads flags %s" % r)
    r = c1.list_multipart_uploads(Bucket=b, Prefix="mp/", Delimiter="/")
    check([u["Key"] for u in r["Uploads"]] == ["mp/a", "mp/a", "mp/b"], "delimited uploads %s" % r["Uploads"])
    check([p["Prefix"] for p in r["CommonPrefixes"]] == ["mp/sub/"], "upload prefixes %s" % r.get("CommonPrefixes"))
    r = c1.list_multipart_uploads(Bucket=b, MaxUploads=2)
    check(r["IsTruncated"] and len(r["Uploads"]) == 2, "first upload page %s" % r)
    check((r["NextKeyMarker"], r["NextUploadIdMarker"]) == sorted(started)[1], "next markers %s" % r)
    r = c1.list_multipart_uploads(Bucket=b, MaxUploads=5000)
    check(r["MaxUploads"] == 1000, "max uploads capped %s" % r["MaxUploads"])
    pages = c1.get_paginator("list_multipart_uploads").paginate(Bucket=b, PaginationConfig={"PageSize": 1})
    paged = [(u["Key"], u["UploadId"]) for p in pages for u in p.get("Uploads", [])]
    check(paged == sorted(started), "paginated uploads %s" % paged)
    expect(lambda: c2.list_multipart_uploads(Bucket=b), "AccessDenied", 403)
    k0, u0 = started[0]
    for n in range(1, 6):
        c1.upload_part(Bucket=b, Key=k0, UploadId=u0, PartNumber=n, Body=b"p%d" % n)
    r = c1.list_parts(Bucket=b, Key=k0, UploadId=u0, MaxParts=2)
    check([p["PartNumber"] for p in r["Parts"]] == [1, 2] and r["IsTruncated"], "parts page %s" % r)
    check(r["NextPartNumberMarker"] == 2, "next part marker %s" % r)
    pages = c1.get_paginator("list_parts").paginate(Bucket=b, Key=k0, UploadId=u0, PaginationConfig={"PageSize": 2})
    check([p["PartNumber"] for page in pages for p in page["Parts"]] == [1, 2, 3, 4, 5], "paginated parts")
    for k, u in started:
        c1.abort_multipart_upload(Bucket=b, Key=k, UploadId=u)
    check(not c1.list_multipart_uploads(Bucket=b).get("Uploads"), "uploads left after aborts")
    print("ok boto3 upload listings")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "src"), os.path.join(tmp, "dst")
        blob = os.urandom(20 * MIB + 7)
        with open(src, "wb") as f:
            f.write(blob)
        cfg = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=2)
        c1.upload_file(src, b, "transfer.bin", Config=cfg)
        h = c1.head_object(Bucket=b, Key="transfer.bin")
        check(h["ETag"].strip('"').endswith("-5") and h["ContentLength"] == len(blob), "transfer etag %s" % h["ETag"])
        c1.download_file(b, "transfer.bin", dst, Config=cfg)
        with open(dst, "rb") as f:
            check(md5(f.read()) == md5(blob), "transfer bytes")
    print("ok boto3 multipart")

    # Tenancy and authentication.
    expect(lambda: c2.get_object(Bucket=b, Key="dir/a.bin"), "AccessDenied", 403)
    expect(lambda: c2.put_object(Bucket=b, Key="x", Body=b"x"), "AccessDenied", 403)
    expect(lambda: c2.list_objects_v2(Bucket=b), "AccessDenied", 403)
    expect(lambda: c2.delete_object(Bucket=b, Key="dir/a.bin"), "AccessDenied", 403)
    expect(lambda: c2.delete_bucket(Bucket=b), "AccessDenied", 403)
    expect(lambda: c2.head_bucket(Bucket=b), "403", 403)
    c2.create_bucket(Bucket="boto-two", CreateBucketConfiguration={"LocationConstraint": REGION})
    expect(lambda: c2.copy_object(Bucket="boto-two", Key="stolen", CopySource={"Bucket": b, "Key": "dir/a.bin"}),
           "AccessDenied", 403)
    check([x["Name"] for x in c1.list_buckets()["Buckets"]] == [b], "project one's buckets")
    check([x["Name"] for x in c2.list_buckets()["Buckets"]] == ["boto-two"], "project two's buckets")
    expect(lambda: client(AK1, "wrong-secret").list_buckets(), "SignatureDoesNotMatch", 403)
    expect(lambda: client(AK1, "wrong-secret").get_object(Bucket=b, Key="dir/a.bin"), "SignatureDoesNotMatch", 403)
    expect(lambda: client("NOSUCHKEY", SK1).list_buckets(), "InvalidAccessKeyId", 403)
    expect(lambda: client(AK1, SK1, UNSIGNED).get_object(Bucket=b, Key="dir/a.bin"), "AccessDenied", 403)
    expect(lambda: client(AK1, SK1, UNSIGNED).list_buckets(), "AccessDenied", 403)
    # SigV2 through boto3's legacy signer.
    v2 = client(AK1, SK1, "s3")
    check(v2.get_object(Bucket=b, Key="dir/b.txt")["Body"].read() == b"dir/b.txt", "sigv2 get")
    # Bucket requests: boto3 signs `/bucket/` and sends `/bucket`.
    r = v2.list_objects(Bucket=b, Prefix="dir/b")
    check([o["Key"] for o in r["Contents"]] == ["dir/b.txt"], "sigv2 bucket listing %s" % r.get("Contents"))
    v2.create_bucket(Bucket="boto-v2", CreateBucketConfiguration={"LocationConstraint": REGION})
    v2.head_bucket(Bucket="boto-v2")
    v2.delete_bucket(Bucket="boto-v2")
    expect(lambda: client(AK1, "wrong-secret", "s3").head_bucket(Bucket=b), "403", 403)
    expect(lambda: client(AK1, "wrong-secret", "s3").get_object(Bucket=b, Key="dir/b.txt"), "SignatureDoesNotMatch", 403)
    # The endpoint's own constant-time SigV2 check refuses it (with its message), not s3s.
    try:
        client(AK1, "wrong-secret", "s3").list_objects(Bucket=b)
        raise AssertionError("a wrong SigV2 signature was accepted")
    except ClientError as e:
        check(e.response["Error"]["Code"] == "SignatureDoesNotMatch", "sigv2 code %s" % e.response["Error"])
        check(e.response["Error"].get("Message", "").startswith("The request signature we calculated"),
              "sigv2 refused by the endpoint's check: %s" % e.response["Error"])
    print("ok boto3 auth")

    # Presigned URLs (v4 and v2).
    import requests
    for signer in (c1, v2):
        url = signer.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "dir/a.bin"}, ExpiresIn=300)
        r = requests.get(url, timeout=30)
        check(r.status_code == 200 and r.content == data, "presigned get %d" % r.status_code)
        r = requests.get(url.replace("dir/a.bin", "dir/b.txt"), timeout=30)
        check(r.status_code == 403, "tampered presigned url %d" % r.status_code)
    url = c1.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "presigned-put"}, ExpiresIn=300)
    r = requests.put(url, data=b"via presigned put", timeout=30)
    check(r.status_code == 200, "presigned put %d %s" % (r.status_code, r.text))
    check(c1.get_object(Bucket=b, Key="presigned-put")["Body"].read() == b"via presigned put", "presigned put bytes")
    print("ok boto3 presigned")

    # Delete: a non-empty bucket stays, DeleteObjects empties it.
    expect(lambda: c1.delete_bucket(Bucket=b), "BucketNotEmpty", 409)
    c1.delete_object(Bucket=b, Key="never-existed")
    while True:
        r = c1.list_objects_v2(Bucket=b, MaxKeys=3)
        objs = [{"Key": o["Key"]} for o in r.get("Contents", [])]
        if not objs:
            break
        d = c1.delete_objects(Bucket=b, Delete={"Objects": objs})
        check(len(d.get("Deleted", [])) == len(objs) and not d.get("Errors"), "delete objects %s" % d)
    c1.delete_bucket(Bucket=b)
    expect(lambda: c1.head_bucket(Bucket=b), "404", 404)
    c2.delete_bucket(Bucket="boto-two")
    print("ok boto3 delete")


# ---- virtual-hosted style ----------------------------------------------------------------------


def virtual_suite():
    """boto3 with `addressing_style=virtual` against an endpoint whose domain is `localhost`:
    requests go to `<bucket>.localhost:PORT`. Names under `localhost` are loopback (RFC 6761);
    the system resolver here may not know that, so this process resolves them itself."""
    import socket

    import boto3
    import requests
    from botocore.config import Config
    from botocore.exceptions import ClientError

    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    check(EP.startswith("http://localhost:"), "endpoint %s" % EP)

    def client(style, signature_version="s3v4", sk=SK1):
        return boto3.client(
            "s3", endpoint_url=EP, aws_access_key_id=AK1, aws_secret_access_key=sk, region_name=REGION,
            config=Config(signature_version=signature_version, s3={"addressing_style": style},
                          retries={"max_attempts": 1, "mode": "standard"}))

    vh, path = client("virtual"), client("path")
    b = "vhost-bucket"
    vh.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION})
    vh.put_object(Bucket=b, Key="dir/hello.txt", Body=b"hello virtual")
    # The same bucket through both styles.
    check(path.get_object(Bucket=b, Key="dir/hello.txt")["Body"].read() == b"hello virtual", "path get")
    check(vh.get_object(Bucket=b, Key="dir/hello.txt")["Body"].read() == b"hello virtual", "virtual get")
    check([o["Key"] for o in vh.list_objects_v2(Bucket=b)["Contents"]] == ["dir/hello.txt"], "virtual list")
    url = vh.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "dir/hello.txt"}, ExpiresIn=300)
    check(url.startswith("http://%s.localhost:" % b), "virtual presigned url %s" % url)
    r = requests.get(url, timeout=30)
    check(r.status_code == 200 and r.content == b"hello virtual", "virtual presigned get %d" % r.status_code)
    # SigV2 signs the bucket of the host in its canonical resource.
    v2 = client("virtual", "s3")
    check(v2.get_object(Bucket=b, Key="dir/hello.txt")["Body"].read() == b"hello virtual", "virtual sigv2 get")
    url = v2.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "dir/hello.txt"}, ExpiresIn=300)
    r = requests.get(url, timeout=30)
    check(r.status_code == 200 and r.content == b"hello virtual", "virtual sigv2 presigned get %d" % r.status_code)
    try:
        client("virtual", "s3", sk="wrong-secret").get_object(Bucket=b, Key="dir/hello.txt")
        raise AssertionError("a wrong virtual-hosted SigV2 signature was accepted")
    except ClientError as e:
        check(e.response["Error"]["Code"] == "SignatureDoesNotMatch", "virtual sigv2 wrong %s" % e.response)
    vh.delete_object(Bucket=b, Key="dir/hello.txt")
    vh.delete_bucket(Bucket=b)
    check(b not in [x["Name"] for x in path.list_buckets()["Buckets"]], "bucket deleted")
    print("ok virtual-hosted")


# ---- esdk-obs-python ----------------------------------------------------------------------------


def obs_suite(signature):
    from obs import ObsClient

    def client(ak, sk):
        return ObsClient(access_key_id=ak, secret_access_key=sk, server=EP, signature=signature,
                         path_style=True, is_signature_negotiation=False, region=REGION)

    def ok(resp, what):
        check(resp.status < 300, "%s: %s %s %s" % (what, resp.status, resp.errorCode, resp.errorMessage))
        return resp

    def denied(resp, code, status, what):
        check((resp.status, resp.errorCode) == (status, code),
              "%s: expected %d %s, got %s %s" % (what, status, code, resp.status, resp.errorCode))

    c1, c2 = client(AK1, SK1), client(AK2, SK2)
    b = "obs-" + signature
    ok(c1.createBucket(b), "createBucket")
    ok(c1.headBucket(b), "headBucket")
    data = os.urandom(3 * MIB + 1)
    r = ok(c1.putContent(b, "apk/app.apk", content=data), "putContent")
    check(r.body.etag.strip('"') == md5(data), "obs etag %s" % r.body.etag)
    r = ok(c1.getObject(b, "apk/app.apk", loadStreamInMemory=True), "getObject")
    check(r.body.buffer == data, "obs get bytes")
    ok(c1.putContent(b, "apk/other.apk", content=b"other"), "putContent 2")
    ok(c1.putContent(b, "readme.txt", content=b"readme"), "putContent 3")
    r = ok(c1.listObjects(b, prefix="apk/"), "listObjects")
    check([c.key for c in r.body.contents] == ["apk/app.apk", "apk/other.apk"], "obs list %s" % r.body.contents)
    r = ok(c1.listObjects(b, delimiter="/"), "listObjects delimiter")
    check([c.key for c in r.body.contents] == ["readme.txt"], "obs delimited contents")
    check([p.prefix for p in r.body.commonPrefixs] == ["apk/"], "obs common prefixes")
    r = ok(c1.getObjectMetadata(b, "apk/app.apk"), "getObjectMetadata")
    check(int(r.body.contentLength) == len(data), "obs metadata length")
    r = ok(c1.copyObject(b, "apk/app.apk", b, "copy.apk"), "copyObject")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "big")
        blob = os.urandom(11 * MIB)
        with open(src, "wb") as f:
            f.write(blob)
        ok(c1.uploadFile(b, "big.tar", src, partSize=5 * MIB, taskNum=2), "uploadFile")
        r = ok(c1.getObject(b, "big.tar", loadStreamInMemory=True), "getObject big")
        check(md5(r.body.buffer) == md5(blob), "obs multipart bytes")
    denied(c2.getObject(b, "apk/app.apk", loadStreamInMemory=True), "AccessDenied", 403, "other project get")
    denied(c2.listObjects(b), "AccessDenied", 403, "other project list")
    denied(client(AK1, "wrong-secret").getObject(b, "apk/app.apk", loadStreamInMemory=True),
           "SignatureDoesNotMatch", 403, "wrong secret")
    for key in ["apk/app.apk", "apk/other.apk", "readme.txt", "copy.apk", "big.tar"]:
        ok(c1.deleteObject(b, key), "deleteObject")
    ok(c1.deleteBucket(b), "deleteBucket")
    check(c1.headBucket(b).status == 404, "bucket gone")
    c1.close()
    c2.close()
    print("ok obs " + signature)


# ---- raw HTTP -----------------------------------------------------------------------------------


def raw_suite():
    import requests

    r = requests.head(EP + "/?apiversion", timeout=10)
    check(r.status_code == 200, "HEAD /?apiversion: %d" % r.status_code)
    check("x-obs-api" not in {k.lower() for k in r.headers}, "x-obs-api advertised")
    r = requests.head(EP + "/some-bucket?apiversion", timeout=10)
    check(r.status_code == 200 and "x-obs-api" not in {k.lower() for k in r.headers}, "bucket probe")
    r = requests.get(EP + "/", timeout=10)
    check(r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, "unsigned list buckets: %s" % r.text)
    r = requests.put(EP + "/raw-bucket", timeout=10)
    check(r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, "unsigned create bucket")
    # Browser-form uploads are not offered: refused before the form is read.
    r = requests.post(EP + "/some-bucket", files={"file": ("f", b"x")}, data={"key": "k"}, timeout=10)
    check(r.status_code == 501 and "NotImplemented" in r.text, "form upload: %d %s" % (r.status_code, r.text))
    # A SigV2 header signature with a stale date is refused before its signature is checked.
    r = requests.get(EP + "/", headers={"Authorization": "AWS %s:AAAA" % AK1,
                                       "Date": "Tue, 15 Nov 1994 08:12:31 GMT"}, timeout=10)
    check(r.status_code == 403 and "RequestTimeTooSkewed" in r.text, "stale v2 date: %s" % r.text)
    print("ok raw")


if __name__ == "__main__":
    suite = sys.argv[1]
    if suite == "boto3":
        boto3_suite()
    elif suite == "obs-v2":
        obs_suite("v2")
    elif suite == "obs-v4":
        obs_suite("v4")
    elif suite == "raw":
        raw_suite()
    elif suite == "virtual":
        virtual_suite()
    else:
        sys.exit("unknown suite " + suite)
