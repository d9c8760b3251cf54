"""PushShareFiles, DeleteShareFiles (both POST .../phones/share-files, told apart by the body),
ListShareFiles, PushShareApps and DeleteShareApps (DELETE with a JSON body).

Every request is validated in full before anything is written and becomes one job per server;
servers bought without shared storage are refused per item. What the jobs do with real objects
and phones is tested in test_share_data.py; here the objects do not exist, so pushes end -1 with
CPS.0104, and lists, deletes and app removals meet an empty shared storage.
"""

import dataclasses

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials

from cph_sdk import (
    JOB_FAILED,
    CreateNet2CloudPhoneServerRequestBodyServerShareDataVolume,
    DeleteShareAppsRequest,
    DeleteShareAppsRequestBody,
    DeleteShareFilesRequest,
    DeleteShareFilesRequestBody,
    ListJobsRequest,
    ListShareFilesRequest,
    PushShareAppsRequest,
    PushShareAppsRequestBody,
    PushShareFilesRequest,
    PushShareFilesRequestBody,
    ShowCloudPhoneServerDetailRequest,
    ShowJobRequest,
    assert_job_item_failed,
    assert_job_item_ok,
    expect_error,
    missing_id,
    purchase_body,
    purchase_request,
    raw_request,
    wait_jobs,
    wait_jobs_succeeded,
    wait_server_running,
)

JOB_SUCCEEDED = 2
MISSING_OBJECT = "CPS.0104"

# ---- helpers --------------------------------------------------------------------------------


def push_share_files(client, server_ids, bucket_name="bucketa", object_path="my_apps/test.tar"):
    body = PushShareFilesRequestBody(bucket_name=bucket_name, object_path=object_path, server_ids=server_ids)
    return client.push_share_files(PushShareFilesRequest(body=body))


def delete_share_files(client, server_ids, file_paths=("/data/app", "/data/data/test.apk")):
    fp = list(file_paths) if file_paths is not None else None
    body = DeleteShareFilesRequestBody(server_ids=server_ids, file_paths=fp)
    return client.delete_share_files(DeleteShareFilesRequest(body=body))


def list_share_files(client, server_ids, path="/data/data", **kw):
    return client.list_share_files(ListShareFilesRequest(server_ids=server_ids, path=path, **kw))


def push_share_apps(
    client,
    server_ids,
    package_name="com.miniteck.miniworld",
    pre_install_app=None,
    bucket_name="bucket",
    object_path="my_apps/test.tar",
):
    body = PushShareAppsRequestBody(
        package_name=package_name,
        pre_install_app=pre_install_app,
        bucket_name=bucket_name,
        object_path=object_path,
        server_ids=server_ids,
    )
    return client.push_share_apps(PushShareAppsRequest(body=body))


def delete_share_apps(client, server_ids, package_name="com.miniteck.miniworld"):
    body = DeleteShareAppsRequestBody(package_name=package_name, server_ids=server_ids)
    return client.delete_share_apps(DeleteShareAppsRequest(body=body))


def assert_jobs_end(client, resp, expected_servers, code=None):
    """One job per server in `expected_servers`; each ends -1 with `code`, or succeeds when
    `code` is None."""
    items = {i.server_id: i for i in resp.jobs if i.job_id}
    assert sorted(items) == sorted(expected_servers)
    for sid in expected_servers:
        assert_job_item_ok(items[sid], "server_id", sid)
    jobs = wait_jobs(client, resp.request_id, timeout=60)
    assert sorted(j.job_id for j in jobs) == sorted(i.job_id for i in items.values())
    for j in jobs:
        if code is None:
            assert j.status == JOB_SUCCEEDED, (j.job_id, j.status, j.error_code, j.error_msg)
        else:
            assert j.status == JOB_FAILED, (j.job_id, j.status, j.error_code, j.error_msg)
            assert j.error_code == code, (j.job_id, j.error_code, j.error_msg)
        assert j.server_id in items and not j.phone_id
        assert j.begin_time and j.end_time
        shown = client.show_job(ShowJobRequest(job_id=j.job_id))
        assert shown.status == j.status and shown.error_code == j.error_code
    return jobs


def expect_rejected(client, call, status, code):
    """The call fails with `code` and its request left no job behind."""
    e = expect_error(call, status, code)
    expect_error(lambda: client.list_jobs(ListJobsRequest(request_id=e.request_id)), 404, "CPS.0050")
    return e


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def share_server(client, cph, offer):
    """A running server of a spec-2.0 phone model, bought with shared storage."""
    phone_models = [
        pm
        for pm in offer.catalog["phone_models"]
        if (pm.phone_model_version or 0) >= 1
        and pm.status == 1
        and any(i.image_label == pm.image_label for i in offer.catalog["images"])
    ]
    assert phone_models, "the catalog offers no spec 2.0 phone model"
    pm = min(phone_models, key=lambda m: (m.phone_capacity, m.phone_model_name))
    image = next(i for i in offer.catalog["images"] if i.image_label == pm.image_label)
    spec2 = dataclasses.replace(
        offer,
        server_model_name=pm.server_model_name,
        phone_model_name=pm.phone_model_name,
        image_id=image.image_id,
        phone_model_version=pm.phone_model_version,
    )
    req = purchase_request(purchase_body(spec2, cph.default_vpc_id, cph.default_subnet_id))
    req.body.server_share_data_volume = CreateNet2CloudPhoneServerRequestBodyServerShareDataVolume(
        volume_type="SSD", size=200
    )
    resp = client.create_net2_cloud_phone_server(req)
    wait_jobs_succeeded(client, resp.request_id, timeout=60)
    sid = resp.server_ids[0]
    wait_server_running(client, sid)
    detail = client.show_cloud_phone_server_detail(ShowCloudPhoneServerDetailRequest(server_id=sid))
    assert detail.share_volume_info and detail.share_volume_info.volume_type == "SSD"
    return sid


@pytest.fixture(scope="module")
def plain_server(shared_server):
    """A running server bought without shared storage."""
    return shared_server


# ---- accepted requests become one job per server ---------------------------------------------


def test_push_share_files(client, share_server, plain_server):
    unknown = missing_id()
    r = push_share_files(client, [share_server, plain_server, unknown])
    assert [i.server_id for i in r.jobs] == [share_server, plain_server, unknown]
    assert_job_item_failed(r.jobs[1], "server_id", plain_server, "CPS.0137")
    assert_job_item_failed(r.jobs[2], "server_id", unknown, "CPS.0097")
    assert_jobs_end(client, r, [share_server], MISSING_OBJECT)


def test_delete_share_files(client, share_server, plain_server):
    r = delete_share_files(client, [share_server, plain_server])
    assert_job_item_failed(r.jobs[1], "server_id", plain_server, "CPS.0137")
    assert_jobs_end(client, r, [share_server])


def test_delete_share_files_paths_with_spaces_and_equals(client, share_server):
    r = delete_share_files(client, [share_server], ["/data/my file=1.txt", "/cache/a_b-c"])
    assert_jobs_end(client, r, [share_server])


def test_list_share_files(client, share_server, plain_server):
    r = list_share_files(client, f"{share_server},{plain_server}", "/data/data", offset=0, limit=100)
    assert [i.server_id for i in r.jobs] == [share_server, plain_server]
    assert_job_item_failed(r.jobs[1], "server_id", plain_server, "CPS.0137")
    assert_jobs_end(client, r, [share_server], "CPS.0199")


def test_push_share_apps(client, share_server, plain_server):
    r = push_share_apps(client, [share_server, plain_server], pre_install_app=1)
    assert_job_item_failed(r.jobs[1], "server_id", plain_server, "CPS.0147")
    assert_jobs_end(client, r, [share_server], MISSING_OBJECT)


def test_push_share_apps_without_pre_install(client, share_server):
    r = push_share_apps(client, [share_server], pre_install_app=0)
    assert_jobs_end(client, r, [share_server], MISSING_OBJECT)


def test_delete_share_apps(client, share_server, plain_server):
    r = delete_share_apps(client, [share_server, plain_server])
    assert_job_item_failed(r.jobs[1], "server_id", plain_server, "CPS.0147")
    assert_jobs_end(client, r, [share_server], "CPS.0173")


def test_unknown_servers_only(client):
    ids = [missing_id(), missing_id()]
    r = push_share_apps(client, ids)
    for item, sid in zip(r.jobs, ids):
        assert_job_item_failed(item, "server_id", sid, "CPS.0097")
    expect_error(lambda: client.list_jobs(ListJobsRequest(request_id=r.request_id)), 404, "CPS.0050")


# ---- request validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw,code",
    [
        ({"bucket_name": None}, "CPS.0134"),
        ({"bucket_name": "BucketA"}, "CPS.0134"),
        ({"bucket_name": "ab"}, "CPS.0134"),
        ({"bucket_name": "a" * 64}, "CPS.0134"),
        ({"bucket_name": "bucket_a"}, "CPS.0134"),
        ({"object_path": None}, "CPS.0135"),
        ({"object_path": "my_apps/test.zip"}, "CPS.0135"),
        ({"object_path": "my apps/test.tar"}, "CPS.0135"),
        ({"object_path": "a" * 1021 + ".tar"}, "CPS.0135"),
    ],
)
def test_push_share_files_rules(client, share_server, kw, code):
    expect_rejected(client, lambda: push_share_files(client, [share_server], **kw), 400, code)


def test_push_share_files_accepts_documented_characters(client, share_server):
    r = push_share_files(client, [share_server], object_path="a+b#c=d/e-f_g.h.tar")
    assert_jobs_end(client, r, [share_server], MISSING_OBJECT)


@pytest.mark.parametrize("server_ids,code", [(None, "CPS.0095"), ([], "CPS.0095")])
def test_share_files_need_servers(client, server_ids, code):
    expect_rejected(client, lambda: push_share_files(client, server_ids), 400, code)
    expect_rejected(client, lambda: delete_share_files(client, server_ids), 400, code)


@pytest.mark.parametrize(
    "paths",
    [
        [],
        ["data/app"],
        ["/data/../etc/passwd"],
        ["/data/a+b"],
        ["/data/a*"],
        ["/data/ok", "/data/文件"],
        ["/" + "a" * 4096],
        ["/data"],
        ["/cache/"],
        ["/apps/com.example.app"],
        ["/system/build.prop"],
        ["/data/" + str(i) for i in range(101)],
    ],
)
def test_delete_share_files_paths(client, share_server, paths):
    expect_rejected(client, lambda: delete_share_files(client, [share_server], paths), 400, "CPS.0155")


def test_share_files_body_with_both_shapes(cph, share_server):
    creds = BasicCredentials(cph.ak, cph.sk, cph.project_id)
    path = f"/v1/{cph.project_id}/cloud-phone/phones/share-files"
    body = {"bucket_name": "bucketa", "object_path": "a.tar", "file_paths": ["/data/a"], "server_ids": [share_server]}
    r = raw_request(cph.endpoint, "POST", path, credentials=creds, body=body)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "CPS.0155", r.text


@pytest.mark.parametrize(
    "path",
    [None, "", "/", "//", "data/data", "/data//data", "/data/../etc", "/data/a b", "/data/*", "/数据"],
)
def test_list_share_files_path(client, share_server, path):
    expect_rejected(client, lambda: list_share_files(client, share_server, path), 400, "CPS.0199")


@pytest.mark.parametrize("kw", [{"limit": 0}, {"limit": 101}, {"offset": -1}])
def test_list_share_files_paging(client, share_server, kw):
    expect_rejected(client, lambda: list_share_files(client, share_server, **kw), 400, "CPS.0002")


@pytest.mark.parametrize("server_ids", [None, "", ",,"])
def test_list_share_files_needs_servers(client, server_ids):
    expect_rejected(client, lambda: list_share_files(client, server_ids), 400, "CPS.0095")


@pytest.mark.parametrize(
    "kw,code",
    [
        ({"package_name": None}, "CPS.0173"),
        ({"package_name": "miniworld"}, "CPS.0173"),
        ({"package_name": "1com.mini"}, "CPS.0173"),
        ({"package_name": "_com.mini"}, "CPS.0173"),
        ({"package_name": "com.mini."}, "CPS.0173"),
        ({"package_name": "com.mini-world"}, "CPS.0173"),
        ({"package_name": "a." + "b" * 127}, "CPS.0173"),
        ({"pre_install_app": 2}, "CPS.0148"),
        ({"pre_install_app": -1}, "CPS.0148"),
        ({"bucket_name": None}, "CPS.0134"),
        ({"bucket_name": "Bucket"}, "CPS.0134"),
        ({"object_path": None}, "CPS.0135"),
        ({"object_path": "apps/app.apk"}, "CPS.0135"),
    ],
)
def test_push_share_apps_rules(client, share_server, kw, code):
    expect_rejected(client, lambda: push_share_apps(client, [share_server], **kw), 400, code)


def test_push_share_apps_server_count(client, share_server):
    expect_rejected(client, lambda: push_share_apps(client, []), 400, "CPS.0095")
    expect_rejected(client, lambda: push_share_apps(client, None), 400, "CPS.0095")
    twenty_one = [share_server] + [missing_id() for _ in range(20)]
    expect_rejected(client, lambda: push_share_apps(client, twenty_one), 400, "CPS.0096")
    twenty = [share_server] + [missing_id() for _ in range(19)]
    r = push_share_apps(client, twenty)
    assert len(r.jobs) == 20
    assert_jobs_end(client, r, [share_server], MISSING_OBJECT)


def test_pre_install_app_must_be_an_integer(cph, share_server):
    creds = BasicCredentials(cph.ak, cph.sk, cph.project_id)
    path = f"/v1/{cph.project_id}/cloud-phone/phones/share-apps"
    body = {
        "package_name": "com.a.b",
        "pre_install_app": "1",
        "bucket_name": "bucket",
        "object_path": "a.tar",
        "server_ids": [share_server],
    }
    r = raw_request(cph.endpoint, "POST", path, credentials=creds, body=body)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "CPS.0148", r.text


@pytest.mark.parametrize(
    "kw,code",
    [
        ({"package_name": None}, "CPS.0173"),
        ({"package_name": "nodot"}, "CPS.0173"),
        ({"package_name": "a." + "b" * 127}, "CPS.0173"),
        ({"server_ids": []}, "CPS.0095"),
    ],
)
def test_delete_share_apps_rules(client, share_server, kw, code):
    args = {"server_ids": [share_server]}
    args.update(kw)
    expect_rejected(client, lambda: delete_share_apps(client, **args), 400, code)


def test_delete_share_apps_longest_package(client, share_server):
    r = delete_share_apps(client, [share_server], "a." + "b" * 126)
    assert_jobs_end(client, r, [share_server], "CPS.0173")


# ---- authorization per operation -------------------------------------------------------------


def test_push_and_delete_share_files_need_their_own_actions(cph):
    pusher = cph.client_for(cph.create_tenant(("cph:servers:pushShareFiles",)))
    deleter = cph.client_for(cph.create_tenant(("cph:servers:deleteShareFiles",)))
    ids = [missing_id()]
    r = push_share_files(pusher, ids)
    assert_job_item_failed(r.jobs[0], "server_id", ids[0], "CPS.0097")
    expect_error(lambda: delete_share_files(pusher, ids), 403, "CPS.0001")
    r = delete_share_files(deleter, ids)
    assert_job_item_failed(r.jobs[0], "server_id", ids[0], "CPS.0097")
    expect_error(lambda: push_share_files(deleter, ids), 403, "CPS.0001")
    for c in (pusher, deleter):
        expect_error(lambda: list_share_files(c, ids[0]), 403, "CPS.0001")
        expect_error(lambda: push_share_apps(c, ids), 403, "CPS.0001")
        expect_error(lambda: delete_share_apps(c, ids), 403, "CPS.0001")


# ---- tenants never reach each other's servers ---------------------------------------------------


def test_other_project_cannot_share_to_our_servers(client, other_client, share_server):
    for call in (
        lambda: push_share_files(other_client, [share_server]),
        lambda: delete_share_files(other_client, [share_server]),
        lambda: list_share_files(other_client, share_server),
        lambda: push_share_apps(other_client, [share_server]),
        lambda: delete_share_apps(other_client, [share_server]),
    ):
        r = call()
        assert_job_item_failed(r.jobs[0], "server_id", share_server, "CPS.0097")
        expect_error(lambda: other_client.list_jobs(ListJobsRequest(request_id=r.request_id)), 404, "CPS.0050")
    ours = push_share_files(client, [share_server])
    wait_jobs(client, ours.request_id)
    expect_error(lambda: other_client.list_jobs(ListJobsRequest(request_id=ours.request_id)), 404, "CPS.0050")
    expect_error(lambda: other_client.show_job(ShowJobRequest(job_id=ours.jobs[0].job_id)), 404, "CPS.0011")
