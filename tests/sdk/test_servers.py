"""CreateNet2CloudPhoneServer, ListCloudPhoneServers, ShowCloudPhoneServerDetail, UpdateServerName,
RestartCloudPhoneServer."""

import socket
import threading
import time

import pytest
from huaweicloudsdkecs.v2 import (
    NovaCreateKeypairOption,
    NovaCreateKeypairRequest,
    NovaCreateKeypairRequestBody,
)

from adb_tools import ADB, StockAdb, wait_endpoint
from cph_sdk import (
    JOB_SUCCEEDED,
    PHONE_RUNNING,
    SERVER_RUNNING,
    ListCloudPhoneServersRequest,
    ListCloudPhonesRequest,
    RestartCloudPhoneServerRequest,
    RestartCloudPhoneServerRequestBody,
    ShowCloudPhoneDetailRequest,
    ShowCloudPhoneServerDetailRequest,
    ShowJobRequest,
    UpdateServerNameRequest,
    UpdateServerNameRequestBody,
    buy_running_servers,
    buy_server,
    expect_error,
    list_jobs_of,
    missing_id,
    server_phones,
    unique,
    wait_jobs_succeeded,
    wait_server_running,
)
from test_keypairs import ecs_client


@pytest.fixture(scope="module")
def purchase(client, cph, offer):
    """Two servers bought in one request, waited for."""
    name = unique("buy")
    before = client.list_cloud_phone_servers(ListCloudPhoneServersRequest(limit=1)).count
    resp = buy_server(client, cph, count=2, offer=offer, server_name=name)
    jobs = wait_jobs_succeeded(client, resp.request_id, timeout=60)
    names = [wait_server_running(client, sid).server_name for sid in resp.server_ids]
    return {"resp": resp, "jobs": jobs, "name": name, "names": names, "before": before}


def test_purchase_response(purchase):
    resp = purchase["resp"]
    assert resp.status_code == 200
    assert resp.request_id
    assert resp.order_id
    assert resp.product_id
    assert len(resp.server_ids) == 2
    assert len(set(resp.server_ids)) == 2


def test_purchase_jobs(client, purchase):
    resp, jobs = purchase["resp"], purchase["jobs"]
    assert {j.server_id for j in jobs} == set(resp.server_ids)
    for j in jobs:
        assert j.status == JOB_SUCCEEDED
        assert j.job_id and j.begin_time and j.end_time
        shown = client.show_job(ShowJobRequest(job_id=j.job_id))
        assert shown.job_id == j.job_id
        assert shown.status == JOB_SUCCEEDED
        assert shown.server_id == j.server_id


def test_batch_purchase_numbers_server_names(purchase):
    # "server-1" bought twice is named server-1-0001 and server-1-0002 (API reference 5.1.3).
    assert sorted(purchase["names"]) == [f"{purchase['name']}-0001", f"{purchase['name']}-0002"]


def test_purchase_counts(client, purchase):
    after = client.list_cloud_phone_servers(ListCloudPhoneServersRequest(limit=1)).count
    assert after >= purchase["before"] + 2


def test_purchased_server_detail(client, cph, offer, purchase):
    resp = purchase["resp"]
    for sid in resp.server_ids:
        d = client.show_cloud_phone_server_detail(ShowCloudPhoneServerDetailRequest(server_id=sid))
        assert d.request_id
        assert d.server_id == sid
        assert d.status == SERVER_RUNNING
        assert d.server_model_name == offer.server_model_name
        assert d.phone_model_name == offer.phone_model_name
        assert d.vpc_id == cph.default_vpc_id
        assert d.subnet_id == cph.default_subnet_id
        assert d.server_name.startswith(purchase["name"])
        assert d.metadata is not None
        assert d.metadata.order_id == resp.order_id
        assert d.metadata.product_id == resp.product_id
        assert d.metadata.charging_mode == 0
        assert d.addresses, "a server has at least its private address"
        assert all(a.server_ip for a in d.addresses)
        assert d.create_time


def test_purchased_phones(client, offer, purchase):
    for sid in purchase["resp"].server_ids:
        phones = server_phones(client, sid)
        assert len(phones) == offer.phone_capacity
        assert len({p.phone_id for p in phones}) == offer.phone_capacity
        assert len({p.phone_name for p in phones}) == offer.phone_capacity
        for p in phones:
            assert p.server_id == sid
            assert p.status == PHONE_RUNNING
            assert p.phone_model_name == offer.phone_model_name
            assert p.image_id == offer.image_id


def test_list_servers_contains_purchase(client, purchase):
    r = client.list_cloud_phone_servers(ListCloudPhoneServersRequest(limit=100))
    assert r.request_id
    listed = {s.server_id: s for s in r.servers}
    for sid in purchase["resp"].server_ids:
        assert sid in listed
        assert listed[sid].status == SERVER_RUNNING
        assert listed[sid].metadata.order_id == purchase["resp"].order_id


def test_list_servers_filters(client, purchase):
    sid = purchase["resp"].server_ids[0]
    r = client.list_cloud_phone_servers(ListCloudPhoneServersRequest(server_id=sid))
    assert r.count == 1 and [s.server_id for s in r.servers] == [sid]
    r = client.list_cloud_phone_servers(ListCloudPhoneServersRequest(server_name=purchase["name"]))
    assert sorted(s.server_id for s in r.servers) == sorted(purchase["resp"].server_ids)
    assert r.count == 2
    r = client.list_cloud_phone_servers(ListCloudPhoneServersRequest(server_id=missing_id()))
    assert r.count == 0 and not r.servers


def test_list_servers_pagination(client, purchase):
    full = client.list_cloud_phone_servers(ListCloudPhoneServersRequest(limit=100))
    assert full.count >= 2
    ids = [s.server_id for s in full.servers]
    pages = []
    for offset in range(0, len(ids)):
        r = client.list_cloud_phone_servers(ListCloudPhoneServersRequest(offset=offset, limit=1))
        assert r.count == full.count
        pages += [s.server_id for s in r.servers]
    assert pages == ids
    for bad in (0, 101):
        expect_error(lambda: client.list_cloud_phone_servers(ListCloudPhoneServersRequest(limit=bad)), 400, "CPS.0002")


def test_show_unknown_server(client):
    expect_error(
        lambda: client.show_cloud_phone_server_detail(ShowCloudPhoneServerDetailRequest(server_id=missing_id())),
        404,
        "CPS.0015",
    )


def test_update_server_name(client, purchase):
    sid = purchase["resp"].server_ids[0]
    new = unique("renamed")
    r = client.update_server_name(UpdateServerNameRequest(server_id=sid, body=UpdateServerNameRequestBody(server_name=new)))
    assert r.status_code == 200
    assert r.request_id
    d = client.show_cloud_phone_server_detail(ShowCloudPhoneServerDetailRequest(server_id=sid))
    assert d.server_name == new
    r = client.list_cloud_phone_servers(ListCloudPhoneServersRequest(server_name=new))
    assert [s.server_id for s in r.servers] == [sid]


def test_update_server_name_chinese(client, purchase):
    sid = purchase["resp"].server_ids[1]
    new = "服务器-" + unique("x")[-6:]
    client.update_server_name(UpdateServerNameRequest(server_id=sid, body=UpdateServerNameRequestBody(server_name=new)))
    d = client.show_cloud_phone_server_detail(ShowCloudPhoneServerDetailRequest(server_id=sid))
    assert d.server_name == new


@pytest.mark.parametrize("bad", ["bad name", "a/b", "", "x" * 61, "name!"], ids=["space", "slash", "empty", "61-chars", "bang"])
def test_update_server_name_invalid(client, purchase, bad):
    sid = purchase["resp"].server_ids[0]
    before = client.show_cloud_phone_server_detail(ShowCloudPhoneServerDetailRequest(server_id=sid)).server_name
    expect_error(
        lambda: client.update_server_name(UpdateServerNameRequest(server_id=sid, body=UpdateServerNameRequestBody(server_name=bad))),
        400,
        "CPS.0087",
    )
    assert client.show_cloud_phone_server_detail(ShowCloudPhoneServerDetailRequest(server_id=sid)).server_name == before


def test_update_unknown_server_name(client):
    expect_error(
        lambda: client.update_server_name(
            UpdateServerNameRequest(server_id=missing_id(), body=UpdateServerNameRequestBody(server_name="fine-name"))
        ),
        404,
        "CPS.0015",
    )


def test_restart_server(client, purchase):
    sid = purchase["resp"].server_ids[1]
    phone_ids = sorted(p.phone_id for p in server_phones(client, sid))
    r = client.restart_cloud_phone_server(
        RestartCloudPhoneServerRequest(body=RestartCloudPhoneServerRequestBody(server_ids=[sid]))
    )
    assert r.request_id
    assert len(r.jobs) == 1
    assert r.jobs[0].server_id == sid
    assert r.jobs[0].job_id and not r.jobs[0].error_code
    jobs = wait_jobs_succeeded(client, r.request_id, timeout=60)
    assert r.jobs[0].job_id in {j.job_id for j in jobs}
    d = wait_server_running(client, sid)
    assert d.status == SERVER_RUNNING
    after = server_phones(client, sid)
    assert sorted(p.phone_id for p in after) == phone_ids
    assert all(p.status == PHONE_RUNNING for p in after)


def test_restart_server_batch_with_unknown_id(client, purchase):
    sid = purchase["resp"].server_ids[0]
    unknown = missing_id()
    r = client.restart_cloud_phone_server(
        RestartCloudPhoneServerRequest(body=RestartCloudPhoneServerRequestBody(server_ids=[sid, unknown]))
    )
    items = {j.server_id: j for j in r.jobs}
    assert items[sid].job_id and not items[sid].error_code
    assert items[unknown].error_code and not items[unknown].job_id
    jobs = list_jobs_of(client, r.request_id)
    assert [j.server_id for j in jobs] == [sid]
    wait_jobs_succeeded(client, r.request_id, timeout=60)
    wait_server_running(client, sid)
    # Phones of a restarted server are back and listed as running.
    r = client.list_cloud_phones(ListCloudPhonesRequest(server_id=sid, status=PHONE_RUNNING))
    assert r.count == len(server_phones(client, sid))


def test_server_detail_lists_its_bandwidth(client, purchase):
    d = client.show_cloud_phone_server_detail(
        ShowCloudPhoneServerDetailRequest(server_id=purchase["resp"].server_ids[0])
    )
    assert d.band_widths, d
    bw = d.band_widths[0]
    assert bw.band_width_id
    assert (bw.band_width_size, bw.band_width_charge_mode, bw.band_width_share_type) == (300, 1, 0)


def _read_port(host: str, port: int, timeout: float = 5) -> bytes:
    """Connects to host:port and reads until the other side closes."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        out = b""
        while chunk := s.recv(4096):
            out += chunk
        return out


@pytest.mark.filterwarnings("ignore:Method 'nova_:DeprecationWarning")
@pytest.mark.skipif(ADB is None, reason="stock adb is not installed (apt-get install adb)")
def test_phone_detail_lists_port_access(client, cph, offer):
    """Each port bought with a server is an access info of its phones, and its host address
    reaches `nc -l` inside the phone."""
    ecs = ecs_client(cph.endpoint, cph.ak, cph.sk, cph.project_id)
    kp_name = unique("portkp").replace("-", "_")
    kp = ecs.nova_create_keypair(
        NovaCreateKeypairRequest(body=NovaCreateKeypairRequestBody(keypair=NovaCreateKeypairOption(name=kp_name)))
    ).keypair
    ports = [
        {"name": "web", "listen_port": 20000, "internet_accessible": "true"},
        {"name": "api", "listen_port": 20001, "internet_accessible": "false"},
    ]
    sid = buy_running_servers(client, cph, 1, offer, ports=ports, keypair_name=kp_name)[0]
    phone = server_phones(client, sid)[0]
    ep = wait_endpoint(client, phone.phone_id)
    d = client.show_cloud_phone_detail(ShowCloudPhoneDetailRequest(phone_id=phone.phone_id))
    adb_info = next(a for a in d.access_infos if a.type == "adb")
    by_port = {a.listen_port: a for a in d.access_infos or [] if a.type not in ("adb", "ssh")}
    assert set(by_port) == {20000, 20001}, d.access_infos
    web, api = by_port[20000], by_port[20001]
    assert (web.type, api.type) == ("web", "api")
    for a in (web, api):
        assert a.phone_ip == a.device_ip == adb_info.phone_ip != ""
        assert a.server_ip == a.intranet_ip == ep.host
        assert a.access_port and a.access_port not in (ep.port, 20000, 20001)
    assert web.public_ip == web.access_ip == ep.host
    assert api.public_ip == api.access_ip == ""
    assert web.access_port != api.access_port

    # Nothing listens on the phone's port yet: the connection is closed at once.
    assert _read_port(api.server_ip, api.access_port) == b""

    adb = StockAdb(kp.private_key)
    try:
        assert "connected" in adb.connect(ep.serial)
        assert adb.wait_state(ep.serial, "device") == "device"
        result = {}

        def serve():
            result["r"] = adb.run("-s", ep.serial, "shell", "echo hello-from-phone | nc -l -p 20000", timeout=60)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        got, deadline = b"", time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            got = _read_port(web.server_ip, web.access_port)
            if not got:
                time.sleep(0.1)
        assert got == b"hello-from-phone\n"
        t.join(timeout=30)
        assert not t.is_alive(), "nc did not exit after its connection ended"
        assert result["r"].returncode == 0, result["r"]
        # nc accepted its one connection and stopped listening.
        assert _read_port(web.server_ip, web.access_port) == b""
    finally:
        adb.close()
