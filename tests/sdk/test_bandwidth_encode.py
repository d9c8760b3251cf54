"""ShowBandwidthDetail, UpdateBandwidth, ListEncodeServers and RestartEncodeServer."""

from __future__ import annotations

import re

import pytest

from cph_sdk import (
    JOB_SUCCEEDED,
    ListEncodeServersRequest,
    RestartEncodeServerRequest,
    RestartEncodeServerRequestBody,
    ShowBandwidthDetailRequest,
    UpdateBandwidthRequest,
    UpdateBandwidthRequestBody,
    assert_job_item_failed,
    assert_job_item_ok,
    buy_running_servers,
    buy_server,
    expect_error,
    missing_id,
    poll,
    raw_request,
    unique,
    wait_jobs_succeeded,
)

UTC_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
ES_RUNNING, ES_RESTARTING = 1, 3


def bandwidths(client, **kw) -> list:
    return client.show_bandwidth_detail(ShowBandwidthDetailRequest(**kw)).band_widths or []


def bandwidth(client, band_width_id: str):
    found = [b for b in bandwidths(client) if b.band_width_id == band_width_id]
    assert len(found) == 1, f"bandwidth {band_width_id} listed {len(found)} times"
    return found[0]


def resize(client, band_width_id: str, size):
    return client.update_bandwidth(
        UpdateBandwidthRequest(band_width_id=band_width_id, body=UpdateBandwidthRequestBody(band_width_size=size))
    )


@pytest.fixture(scope="module")
def server(client, cph, offer) -> str:
    """A running server with a dedicated 300 Mbit/s bandwidth."""
    return buy_running_servers(client, cph, 1, offer)[0]


@pytest.fixture(scope="module")
def shared(cph) -> str:
    """A shared bandwidth of the bootstrap project, created by the operator."""
    out = cph.admin("bandwidth", "create", "--project-id", cph.project_id, "--size", "100", unique("bw"))
    assert out["band_width_share_type"] == 1
    return out["band_width_id"]


# ---------------------------------------------------------------------------------------------
# Bandwidths


def test_purchase_creates_dedicated_bandwidth(client, server):
    b = [x for x in bandwidths(client) if x.band_width_name == f"bandwidth-{server[:8]}"]
    assert len(b) == 1
    b = b[0]
    assert b.band_width_size == 300
    assert b.band_width_share_type == 0
    assert b.band_width_charge_mode == 1
    assert UTC_Z.match(b.create_time) and UTC_Z.match(b.update_time)


def test_only_shared_bandwidth_can_be_resized(client, server):
    b = next(x for x in bandwidths(client) if x.band_width_name == f"bandwidth-{server[:8]}")
    expect_error(lambda: resize(client, b.band_width_id, 350), 400, "CPS.0160")
    assert bandwidth(client, b.band_width_id).band_width_size == 300


def test_resize_shared_bandwidth_in_steps(client, shared):
    b = bandwidth(client, shared)
    assert b.band_width_share_type == 1 and b.band_width_size == 100
    for size in (1, 299, 300, 350, 1000, 1500, 2000):
        r = resize(client, shared, size)
        assert r.request_id
        assert bandwidth(client, shared).band_width_size == size
    for size in (0, -5, 351, 999, 1200, 2100):
        expect_error(lambda: resize(client, shared, size), 400, "CPS.0036")
    assert bandwidth(client, shared).band_width_size == 2000


def test_update_bandwidth_errors(client, other_client, cph, shared):
    expect_error(lambda: resize(client, missing_id(), 100), 404, "CPS.0115")
    expect_error(lambda: resize(other_client, shared, 100), 404, "CPS.0115")
    expect_error(lambda: resize(client, shared, None), 400, "CPS.0036")
    from huaweicloudsdkcore.auth.credentials import BasicCredentials

    r = raw_request(
        cph.endpoint,
        "PUT",
        f"/v1/{cph.project_id}/cloud-phone/bandwidths/{shared}",
        credentials=BasicCredentials(cph.ak, cph.sk, cph.project_id),
        body={"band_width_size": "100"},
    )
    assert r.status_code == 400 and r.json()["error_code"] == "CPS.0036", r.text


def test_purchase_with_shared_bandwidth(client, cph, offer, shared):
    before = len(bandwidths(client))
    resp = buy_server(
        client,
        cph,
        1,
        offer,
        band_width={"band_width_share_type": 1, "band_width_id": shared, "band_width_size": None},
    )
    assert resp.server_ids
    # No new bandwidth: the server uses the shared one.
    assert len(bandwidths(client)) == before


def test_bandwidth_pages(client, other_client, shared):
    every = bandwidths(client)
    assert shared in [b.band_width_id for b in every]
    assert len(every) >= 2
    assert [b.band_width_id for b in bandwidths(client, offset=1, limit=1)] == [every[1].band_width_id]
    for kw in ({"limit": 0}, {"limit": 101}, {"offset": -1}):
        expect_error(lambda: bandwidths(client, **kw), 400, "CPS.0002")
    assert shared not in [b.band_width_id for b in bandwidths(other_client)]


# ---------------------------------------------------------------------------------------------
# Encode servers


def encode_servers(client, **kw) -> list:
    return client.list_encode_servers(ListEncodeServersRequest(**kw)).encode_servers or []


def test_list_encode_servers(client, other_client, server):
    es = encode_servers(client, server_id=server)
    assert len(es) == 1
    e = es[0]
    assert e.server_id == server
    assert e.encode_server_id and len(e.encode_server_id) == 32
    assert e.encode_server_name
    assert e.encode_server_ip
    assert e.type == 1
    assert e.status == ES_RUNNING
    # The server's SSH gateway and the connect relay (test_connect.py checks that they answer).
    assert sorted(a.type for a in e.access_infos) == ["cph_h5_server", "ssh"]
    assert e.encode_server_id in [x.encode_server_id for x in encode_servers(client, type=1, status=1)]
    assert not [x for x in encode_servers(client, type=0) if x.server_id == server]
    assert not [x for x in encode_servers(client, status=2) if x.server_id == server]
    assert encode_servers(client, server_id=missing_id()) == []
    assert encode_servers(other_client, server_id=server) == []
    assert len(encode_servers(client, limit=1)) == 1


def test_encode_server_is_creating_until_its_server_is_created(client, cph, offer):
    resp = buy_server(client, cph, 1, offer)
    sid = resp.server_ids[0]
    # Phones take at least one boot time to come up: the encode server is still being created.
    assert [e.status for e in encode_servers(client, server_id=sid)] == [0]
    wait_jobs_succeeded(client, resp.request_id, timeout=60)
    assert [e.status for e in encode_servers(client, server_id=sid)] == [ES_RUNNING]


@pytest.mark.parametrize(
    "kw, code",
    [
        ({"type": 2}, "CPS.0116"),
        ({"status": 9}, "CPS.0010"),
        ({"limit": 0}, "CPS.0002"),
        ({"limit": 101}, "CPS.0002"),
        ({"offset": -1}, "CPS.0002"),
        ({"server_id": "bad id!"}, "CPS.0016"),
    ],
)
def test_list_encode_servers_filters_checked(client, kw, code):
    expect_error(lambda: encode_servers(client, **kw), 400, code)


def restart(client, ids):
    return client.restart_encode_server(
        RestartEncodeServerRequest(body=RestartEncodeServerRequestBody(encode_server_ids=ids))
    )


def test_restart_encode_server(client, server):
    es_id = encode_servers(client, server_id=server)[0].encode_server_id
    unknown = missing_id()
    resp = restart(client, [es_id, unknown, "bad id!"])
    assert len(resp.jobs) == 3
    by_id = {j.encode_server_id: j for j in resp.jobs}
    assert_job_item_ok(by_id[es_id], "encode_server_id", es_id)
    assert_job_item_failed(by_id[unknown], "encode_server_id", unknown, "CPS.0123")
    assert_job_item_failed(by_id["bad id!"], "encode_server_id", "bad id!", "CPS.0121")
    seen: list[int] = []

    def status():
        s = encode_servers(client, server_id=server)[0].status
        if not seen or seen[-1] != s:
            seen.append(s)
        return s

    poll("the encode server to restart", status, lambda s: ES_RESTARTING in seen and s == ES_RUNNING, 30, 0.01)
    jobs = wait_jobs_succeeded(client, resp.request_id)
    assert [(j.server_id, j.status) for j in jobs] == [(server, JOB_SUCCEEDED)]
    assert seen[-2:] == [ES_RESTARTING, ES_RUNNING], seen


def test_restart_encode_server_request_errors(client, other_client, server):
    expect_error(lambda: restart(client, []), 400, "CPS.0122")
    expect_error(lambda: restart(client, None), 400, "CPS.0122")
    expect_error(lambda: restart(client, [missing_id() for _ in range(101)]), 400, "CPS.0122")
    es_id = encode_servers(client, server_id=server)[0].encode_server_id
    resp = restart(other_client, [es_id])
    assert_job_item_failed(resp.jobs[0], "encode_server_id", es_id, "CPS.0123")

