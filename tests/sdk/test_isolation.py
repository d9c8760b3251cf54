"""A tenant never sees, changes or uses another tenant's resources."""

import pytest

from cph_sdk import (
    PHONE_RUNNING,
    ImportTrafficRequest,
    ImportTrafficRequestBody,
    ListCloudPhoneServersRequest,
    ListCloudPhonesRequest,
    ListJobsRequest,
    PhoneProperty,
    RestartCloudPhoneRequest,
    RestartCloudPhoneRequestBody,
    RestartCloudPhoneServerRequest,
    RestartCloudPhoneServerRequestBody,
    ShowCloudPhoneDetailRequest,
    ShowCloudPhoneServerDetailRequest,
    ShowJobRequest,
    StopCloudPhoneRequest,
    StopCloudPhoneRequestBody,
    UpdatePhoneNameRequest,
    UpdatePhoneNameRequestBody,
    UpdateServerNameRequest,
    UpdateServerNameRequestBody,
    assert_job_item_failed,
    buy_server,
    expect_error,
    server_phones,
    totals,
    wait_jobs_succeeded,
)


@pytest.fixture(scope="module")
def victim(client, shared_server, phone_pool):
    """A server, one of its phones and a finished job of the bootstrap tenant."""
    (phone,) = phone_pool.take(1)
    r = client.import_traffic(
        ImportTrafficRequest(body=ImportTrafficRequestBody(traffic_type="direct", phone_ids=[phone.phone_id]))
    )
    wait_jobs_succeeded(client, r.request_id)
    return {
        "server_id": phone.server_id,
        "phone": phone,
        "request_id": r.request_id,
        "job_id": r.jobs[0].job_id,
    }


def test_other_tenant_lists_nothing(other_client, victim):
    assert other_client.list_cloud_phone_servers(ListCloudPhoneServersRequest()).count == 0
    assert other_client.list_cloud_phones(ListCloudPhonesRequest()).count == 0
    r = other_client.list_cloud_phones(ListCloudPhonesRequest(server_id=victim["server_id"]))
    assert r.count == 0 and not r.phones
    r = other_client.list_cloud_phone_servers(ListCloudPhoneServersRequest(server_id=victim["server_id"]))
    assert r.count == 0 and not r.servers


def test_other_tenant_cannot_show(other_client, victim):
    expect_error(
        lambda: other_client.show_cloud_phone_server_detail(ShowCloudPhoneServerDetailRequest(server_id=victim["server_id"])),
        404,
        "CPS.0015",
    )
    expect_error(
        lambda: other_client.show_cloud_phone_detail(ShowCloudPhoneDetailRequest(phone_id=victim["phone"].phone_id)),
        404,
        "CPS.0005",
    )


def test_other_tenant_cannot_see_jobs(other_client, victim):
    expect_error(lambda: other_client.list_jobs(ListJobsRequest(request_id=victim["request_id"])), 404, "CPS.0050")
    expect_error(lambda: other_client.show_job(ShowJobRequest(job_id=victim["job_id"])), 404, "CPS.0011")


def test_other_tenant_cannot_restart_or_stop_phone(client, other_client, victim):
    pid = victim["phone"].phone_id
    r = other_client.restart_cloud_phone(
        RestartCloudPhoneRequest(body=RestartCloudPhoneRequestBody(phones=[PhoneProperty(phone_id=pid)]))
    )
    assert_job_item_failed(r.jobs[0], "phone_id", pid, "CPS.0004")
    r = other_client.stop_cloud_phone(StopCloudPhoneRequest(body=StopCloudPhoneRequestBody(phone_ids=[pid])))
    assert_job_item_failed(r.jobs[0], "phone_id", pid, "CPS.0004")
    r = other_client.import_traffic(
        ImportTrafficRequest(body=ImportTrafficRequestBody(traffic_type="routing", phone_ids=[pid]))
    )
    assert_job_item_failed(r.jobs[0], "phone_id", pid, "CPS.0004")
    d = client.show_cloud_phone_detail(ShowCloudPhoneDetailRequest(phone_id=pid))
    assert d.status == PHONE_RUNNING
    assert d.traffic_type == "direct"


def test_other_tenant_cannot_rename(client, other_client, victim):
    pid, sid = victim["phone"].phone_id, victim["server_id"]
    expect_error(
        lambda: other_client.update_phone_name(
            UpdatePhoneNameRequest(phone_id=pid, body=UpdatePhoneNameRequestBody(phone_name="stolen"))
        ),
        404,
        "CPS.0005",
    )
    expect_error(
        lambda: other_client.update_server_name(
            UpdateServerNameRequest(server_id=sid, body=UpdateServerNameRequestBody(server_name="stolen"))
        ),
        404,
        "CPS.0015",
    )
    assert client.show_cloud_phone_detail(ShowCloudPhoneDetailRequest(phone_id=pid)).phone_name != "stolen"
    assert client.show_cloud_phone_server_detail(ShowCloudPhoneServerDetailRequest(server_id=sid)).server_name != "stolen"


def test_other_tenant_cannot_restart_server(other_client, victim):
    sid = victim["server_id"]
    r = other_client.restart_cloud_phone_server(
        RestartCloudPhoneServerRequest(body=RestartCloudPhoneServerRequestBody(server_ids=[sid]))
    )
    assert r.jobs[0].server_id == sid
    assert r.jobs[0].error_code and not r.jobs[0].job_id


def test_other_tenant_cannot_use_foreign_vpc(cph, client, other_client, offer):
    """Buying in one's own project with another project's VPC and subnet fails and writes nothing."""
    mine = totals(client)
    theirs = totals(other_client)
    expect_error(lambda: buy_server(other_client, cph, offer=offer), 400, "CPS.0223")
    assert totals(client) == mine
    assert totals(other_client) == theirs


def test_owner_still_sees_everything(client, victim):
    pid, sid = victim["phone"].phone_id, victim["server_id"]
    assert pid in [p.phone_id for p in server_phones(client, sid)]
    assert client.list_jobs(ListJobsRequest(request_id=victim["request_id"])).jobs
