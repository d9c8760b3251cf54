"""Bootstrap file, authentication, permissions, and the error format of the wire protocol."""

import os
import stat

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials

from cph_sdk import (
    ListCloudPhoneServersRequest,
    ListCloudPhonesRequest,
    buy_server,
    expect_error,
    make_client,
    raw_request,
    totals,
)
from conftest import BOOTSTRAP_KEYS


def test_bootstrap_file(cph):
    path = cph.data_dir / "bootstrap.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for k in BOOTSTRAP_KEYS:
        assert k in cph.bootstrap, k
        assert isinstance(cph.bootstrap[k], str), k
        # The embedded S3 endpoint is optional; every other value is set.
        assert cph.bootstrap[k], k
    assert cph.endpoint.startswith("http://127.0.0.1:")
    assert not cph.endpoint.endswith(":0")


def test_list_requests_succeed_with_request_id(client):
    r = client.list_cloud_phone_servers(ListCloudPhoneServersRequest())
    assert r.status_code == 200
    assert r.request_id
    assert isinstance(r.count, int)


def test_wrong_secret_key_is_rejected(cph):
    bad = make_client(cph.endpoint, cph.ak, cph.sk[:-1] + ("A" if cph.sk[-1] != "A" else "B"), cph.project_id)
    expect_error(lambda: bad.list_cloud_phone_servers(ListCloudPhoneServersRequest()), 401, code_prefix="APIGW")


def test_unknown_access_key_is_rejected(cph):
    bad = make_client(cph.endpoint, "UNKNOWNAK" + cph.ak[9:], cph.sk, cph.project_id)
    expect_error(lambda: bad.list_cloud_phones(ListCloudPhonesRequest()), 401, code_prefix="APIGW")


def test_wrong_secret_key_on_write_changes_nothing(cph, client, offer):
    before = totals(client)
    bad = make_client(cph.endpoint, cph.ak, ("y" if cph.sk[0] == "x" else "x") + cph.sk[1:], cph.project_id)
    expect_error(lambda: buy_server(bad, cph, offer=offer), 401, code_prefix="APIGW")
    assert totals(client) == before


def test_unsigned_request_is_rejected(cph):
    r = raw_request(cph.endpoint, "GET", f"/v1/{cph.project_id}/cloud-phone/servers")
    assert r.status_code == 401
    body = r.json()
    assert str(body["error_code"]).startswith("APIGW")
    assert body["error_msg"]
    assert r.headers.get("X-Request-Id")
    assert body["request_id"] == r.headers["X-Request-Id"]


def _assert_error_format(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) >= {"error_code", "error_msg", "request_id"}, body
    assert body["error_code"] and body["error_msg"]
    assert r.headers.get("X-Request-Id"), r.headers
    assert body["request_id"] == r.headers["X-Request-Id"]
    return body


def test_unknown_route_signed(cph):
    creds = BasicCredentials(cph.ak, cph.sk, cph.project_id)
    r = raw_request(cph.endpoint, "GET", f"/v1/{cph.project_id}/cloud-phone/no-such-thing", credentials=creds)
    _assert_error_format(r, 404)


def test_unknown_route_outside_the_api(cph):
    r = raw_request(cph.endpoint, "GET", "/no/such/route")
    _assert_error_format(r, 404)


def test_signed_raw_request_is_accepted(cph):
    """The raw-request helper signs like the SDK (so the 404 above is about the route)."""
    creds = BasicCredentials(cph.ak, cph.sk, cph.project_id)
    r = raw_request(cph.endpoint, "GET", f"/v1/{cph.project_id}/cloud-phone/servers", credentials=creds)
    assert r.status_code == 200, r.text
    assert r.json()["request_id"] == r.headers["X-Request-Id"]


def test_request_ids_are_unique(client):
    ids = {client.list_cloud_phones(ListCloudPhonesRequest(limit=1)).request_id for _ in range(5)}
    assert len(ids) == 5


@pytest.fixture(scope="module")
def list_only_client(cph):
    tenant = cph.create_tenant(("cph:servers:list",))
    return cph.client_for(tenant)


def test_permission_allows_granted_action(list_only_client):
    r = list_only_client.list_cloud_phone_servers(ListCloudPhoneServersRequest())
    assert r.count == 0


def test_permission_denies_purchase(cph, list_only_client, client, offer):
    other_before = list_only_client.list_cloud_phone_servers(ListCloudPhoneServersRequest()).count
    # The tenant's own network is unknown to this suite; the check must come first anyway.
    expect_error(lambda: buy_server(list_only_client, cph, offer=offer), 403, "CPS.0001")
    assert list_only_client.list_cloud_phone_servers(ListCloudPhoneServersRequest()).count == other_before


def test_permission_denies_ungranted_read(list_only_client):
    expect_error(lambda: list_only_client.list_cloud_phones(ListCloudPhonesRequest()), 403, "CPS.0001")


def test_project_id_of_another_tenant_is_refused(cph, other_tenant):
    """The bootstrap administrator's key used on another domain's project."""
    c = make_client(cph.endpoint, cph.ak, cph.sk, other_tenant.project_id)
    e = expect_error(lambda: c.list_cloud_phone_servers(ListCloudPhoneServersRequest()), 403)
    assert e.error_code == "CPS.0001" or str(e.error_code).startswith("APIGW"), e.error_code
