"""CreateNet2CloudPhoneServer: every rejected purchase answers the documented error code and
writes nothing (no server, no phone, no job)."""

import pytest

from cph_sdk import (
    ListJobsRequest,
    buy_server,
    expect_error,
    totals,
)

GOOD_PORT = {"name": "web", "listen_port": 20000, "internet_accessible": "true"}

CASES = {
    # id: (overrides, expected error code)
    "count-0": ({"count": 0}, "CPS.0024"),
    "count-11": ({"count": 11}, "CPS.0024"),
    "count-negative": ({"count": -1}, "CPS.0024"),
    "server-name-space": ({"server_name": "bad name"}, "CPS.0087"),
    "server-name-symbol": ({"server_name": "bad$name"}, "CPS.0087"),
    "server-name-empty": ({"server_name": ""}, "CPS.0087"),
    "server-name-too-long": ({"server_name": "s" * 65}, "CPS.0087"),
    "port-name-adb": ({"ports": [{"name": "adb", "listen_port": 20000, "internet_accessible": "true"}]}, "CPS.0038"),
    "port-name-vnc": ({"ports": [{"name": "vnc", "listen_port": 20000, "internet_accessible": "false"}]}, "CPS.0038"),
    "port-9999": ({"ports": [{"name": "web", "listen_port": 9999, "internet_accessible": "true"}]}, "CPS.0040"),
    "port-50001": ({"ports": [{"name": "web", "listen_port": 50001, "internet_accessible": "true"}]}, "CPS.0040"),
    "port-duplicate": (
        {
            "ports": [
                GOOD_PORT,
                {"name": "api", "listen_port": 20000, "internet_accessible": "false"},
            ]
        },
        "CPS.0041",
    ),
    "period-month-10": ({"extend_param": {"period_type": 2, "period_num": 10}}, "CPS.0058"),
    "period-month-0": ({"extend_param": {"period_type": 2, "period_num": 0}}, "CPS.0058"),
    "period-year-11": ({"extend_param": {"period_type": 3, "period_num": 11}}, "CPS.0058"),
    "unknown-keypair": ({"keypair_name": "no-such-keypair"}, "CPS.0067"),
}


@pytest.mark.parametrize("overrides,code", list(CASES.values()), ids=list(CASES))
def test_rejected_purchase(client, cph, offer, overrides, code):
    before = totals(client)
    e = expect_error(lambda: buy_server(client, cph, offer=offer, **overrides), 400, code)
    assert totals(client) == before
    # The rejected request left no job behind.
    expect_error(lambda: client.list_jobs(ListJobsRequest(request_id=e.request_id)), 404, "CPS.0050")


def test_phone_model_of_another_server_model(client, cph, offer):
    before = totals(client)
    expect_error(
        lambda: buy_server(client, cph, offer=offer, phone_model_name=offer.foreign_phone_model_name),
        400,
        "CPS.0157",
    )
    assert totals(client) == before


def test_image_label_mismatch(client, cph, offer):
    before = totals(client)
    expect_error(lambda: buy_server(client, cph, offer=offer, image_id=offer.mismatched_image_id), 400, "CPS.0222")
    assert totals(client) == before


def test_unknown_phone_model(client, cph, offer):
    before = totals(client)
    expect_error(lambda: buy_server(client, cph, offer=offer, phone_model_name="no.such.model"), 400, "CPS.0028")
    assert totals(client) == before


def test_unknown_server_model(client, cph, offer):
    before = totals(client)
    expect_error(lambda: buy_server(client, cph, offer=offer, server_model_name="physical.none"), 400, "CPS.0089")
    assert totals(client) == before


def test_unknown_image(client, cph, offer):
    before = totals(client)
    expect_error(lambda: buy_server(client, cph, offer=offer, image_id="0" * 32), 400, "CPS.0030")
    assert totals(client) == before


def test_unknown_vpc(client, cph, offer):
    before = totals(client)
    expect_error(lambda: buy_server(client, cph, offer=offer, tenant_vpc_id="0" * 32), 400, "CPS.0223")
    assert totals(client) == before


def test_valid_ports_are_accepted(client, cph, offer):
    """The control case for the port errors: legal ports buy a server."""
    before_servers, before_phones = totals(client)
    ports = [GOOD_PORT, {"name": "api", "listen_port": 50000, "internet_accessible": "TRUE"}]
    resp = buy_server(client, cph, offer=offer, ports=ports)
    assert len(resp.server_ids) == 1
    assert totals(client) == (before_servers + 1, before_phones + offer.phone_capacity)
