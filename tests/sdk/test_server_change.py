"""ChangeCloudPhoneServerModel (5.1.12) and ChangeCloudPhoneServer (5.1.6) through the SDK.

A model change moves a server to another model of its generation under a new order; its phones
restart on the new phone model. A server change keeps the server's name, id, zone and billing
and recreates its phones (new ids) on the new phone model and image.
"""

from __future__ import annotations

from typing import Any

import pytest

from cph_sdk import (
    JOB_SUCCEEDED,
    PHONE_RUNNING,
    SERVER_RUNNING,
    ChangeCloudPhoneServerModelRequest,
    ChangeCloudPhoneServerModelRequestBody,
    ChangeCloudPhoneServerModelRequestBodyExtendParam,
    ChangeCloudPhoneServerRequest,
    ChangeCloudPhoneServerRequestBody,
    ChangeCloudPhoneServerRequestBodyBandWidth,
    ChangeCloudPhoneServerRequestBodyExtendParam,
    ChangeCloudPhoneServerRequestBodyPhoneDataVolume,
    ChangeCloudPhoneServerRequestBodyPublicIp,
    CreateNet2CloudPhoneServerRequestBodyPublicIpEip,
    Nic,
    PhoneProperty,
    Port,
    RestartCloudPhoneRequest,
    RestartCloudPhoneRequestBody,
    ShowCloudPhoneDetailRequest,
    ShowCloudPhoneServerDetailRequest,
    assert_job_item_failed,
    buy_running_servers,
    expect_error,
    missing_id,
    server_phones,
    wait_jobs_succeeded,
    wait_server_running,
)

# Two models of the rx1 generation with phone models of 60 phones each, and a 30-phone model.
RX1 = "physical.rx1.xlarge"
RX1_PHONE = "rx1.cp.c60.d10.e1v1"
RX1_SMALL_PHONE = "rc1.plus"
RX1_CG = "physical.rx1.xlarge.cg"
RX1_CG_PHONE = "rx1.cg.c60.d10.e1v1"
# Another generation.
RX2 = "physical.rx2.32xlarge.4"
RX2_PHONE = "rc2.pro"


def image_of(offer, label: str, os_name: str | None = None) -> str:
    images = [i for i in offer.catalog["images"] if i.image_label == label]
    if os_name is not None:
        images = [i for i in images if i.os_name == os_name]
    assert images, f"the catalog has no image labelled {label} ({os_name})"
    return images[0].image_id


def detail(client, server_id: str):
    return client.show_cloud_phone_server_detail(ShowCloudPhoneServerDetailRequest(server_id=server_id))


def buy_rx1(client, cph, offer) -> str:
    return buy_running_servers(
        client,
        cph,
        1,
        offer,
        server_model_name=RX1,
        phone_model_name=RX1_PHONE,
        image_id=image_of(offer, "cloud_phone", "AOSP7.1.1"),
    )[0]


# ---------------------------------------------------------------------------------------------
# ChangeCloudPhoneServerModel


def change_model(client, **body):
    kw = {k: v for k, v in body.items() if v is not None}
    if "extend_param" in kw:
        kw["extend_param"] = ChangeCloudPhoneServerModelRequestBodyExtendParam(**kw["extend_param"])
    return client.change_cloud_phone_server_model(
        ChangeCloudPhoneServerModelRequest(body=ChangeCloudPhoneServerModelRequestBody(**kw))
    )


@pytest.fixture(scope="module")
def model_server(client, cph, offer) -> str:
    """A running rx1 server reserved for the model-change tests."""
    return buy_rx1(client, cph, offer)


def test_change_model_rejects_invalid_requests(client, model_server):
    before = detail(client, model_server)
    phones_before = sorted(p.phone_id for p in server_phones(client, model_server))
    valid = {"server_id": model_server, "server_model_name": RX1_CG, "phone_model_name": RX1_CG_PHONE}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**valid, "server_id": None}, 400, "CPS.0016"),
        ({**valid, "server_id": "not/an id"}, 400, "CPS.0016"),
        ({**valid, "server_id": missing_id()}, 404, "CPS.0015"),
        ({**valid, "server_model_name": None}, 400, "CPS.0088"),
        ({**valid, "server_model_name": "physical.nope.xlarge"}, 400, "CPS.0246"),
        ({**valid, "phone_model_name": None}, 400, "CPS.0027"),
        ({**valid, "phone_model_name": "nope.c1"}, 400, "CPS.0028"),
        # A phone model of another server model than the target.
        ({**valid, "phone_model_name": RX1_PHONE}, 400, "CPS.0157"),
        # The model the server already has.
        ({**valid, "server_model_name": RX1, "phone_model_name": RX1_PHONE}, 400, "CPS.0250"),
        # Another generation.
        ({**valid, "server_model_name": RX2, "phone_model_name": RX2_PHONE}, 400, "CPS.0247"),
        ({**valid, "extend_param": {"is_auto_pay": 7}}, 400, "CPS.0060"),
    ]
    for body, status, code in cases:
        expect_error(lambda: change_model(client, **body), status, code)
    after = detail(client, model_server)
    assert after.server_model_name == RX1
    assert after.phone_model_name == RX1_PHONE
    assert after.metadata.order_id == before.metadata.order_id
    assert after.status == SERVER_RUNNING
    phones = server_phones(client, model_server)
    assert sorted(p.phone_id for p in phones) == phones_before
    assert all(p.status == PHONE_RUNNING and p.phone_model_name == RX1_PHONE for p in phones)


def test_change_model_needs_a_free_host_of_the_new_model(client, cph, model_server):
    cph.admin("capacity", "set", RX1_CG, "0")
    try:
        expect_error(
            lambda: change_model(
                client, server_id=model_server, server_model_name=RX1_CG, phone_model_name=RX1_CG_PHONE
            ),
            400,
            "CPS.0066",
        )
    finally:
        cph.admin("capacity", "set", RX1_CG, "100")
    assert detail(client, model_server).server_model_name == RX1


def test_change_model(client, offer, model_server):
    before = detail(client, model_server)
    phones_before = {p.phone_id: p for p in server_phones(client, model_server)}
    resp = change_model(
        client,
        server_id=model_server,
        server_model_name=RX1_CG,
        phone_model_name=RX1_CG_PHONE,
        extend_param={"is_auto_pay": 1},
    )
    assert resp.request_id
    assert resp.order_id and resp.order_id != before.metadata.order_id
    assert resp.product_id
    # One change at a time.
    expect_error(
        lambda: change_model(client, server_id=model_server, server_model_name=RX1_CG, phone_model_name=RX1_CG_PHONE),
        400,
        "CPS.1102",
    )
    jobs = wait_jobs_succeeded(client, resp.request_id, timeout=60)
    assert [j.server_id for j in jobs] == [model_server]
    assert jobs[0].status == JOB_SUCCEEDED

    after = wait_server_running(client, model_server)
    assert after.server_model_name == RX1_CG
    assert after.phone_model_name == RX1_CG_PHONE
    assert after.metadata.order_id == resp.order_id
    assert after.metadata.product_id == resp.product_id
    assert after.server_name == before.server_name
    # The phones stay (same ids) and now run the new phone model with the image of its label
    # that has the same OS.
    game_image = image_of(offer, "cloud_game", "AOSP7.1.1")
    phones = server_phones(client, model_server)
    assert sorted(p.phone_id for p in phones) == sorted(phones_before)
    for p in phones:
        assert p.status == PHONE_RUNNING
        assert p.phone_model_name == RX1_CG_PHONE
        assert p.image_id == game_image
    # Now it is the model it has.
    expect_error(
        lambda: change_model(client, server_id=model_server, server_model_name=RX1_CG, phone_model_name=RX1_CG_PHONE),
        400,
        "CPS.0250",
    )


def test_change_model_of_another_tenants_server_is_not_found(other_client, model_server):
    expect_error(
        lambda: change_model(
            other_client, server_id=model_server, server_model_name=RX1_CG, phone_model_name=RX1_CG_PHONE
        ),
        404,
        "CPS.0015",
    )


# ---------------------------------------------------------------------------------------------
# ChangeCloudPhoneServer


def change_body(cph, phone_model_name: str, image_id: str, **overrides) -> dict:
    """A valid ChangeCloudPhoneServer body as plain data; an override of None drops the field."""
    body: dict[str, Any] = {
        "phone_model_name": phone_model_name,
        "image_id": image_id,
        "tenant_vpc_id": cph.default_vpc_id,
        "nics": [{"subnet_id": cph.default_subnet_id}],
        "public_ip": {"eip": {"type": "5_bgp"}},
        "band_width": {"band_width_share_type": 0, "band_width_charge_mode": 1, "band_width_size": 300},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def change_server(client, server_id: str, body: dict):
    kw = dict(body)
    if "property" in kw:
        kw["_property"] = kw.pop("property")
    if "extend_param" in kw:
        kw["extend_param"] = ChangeCloudPhoneServerRequestBodyExtendParam(**kw["extend_param"])
    if "band_width" in kw:
        kw["band_width"] = ChangeCloudPhoneServerRequestBodyBandWidth(**kw["band_width"])
    if "public_ip" in kw:
        pip = dict(kw["public_ip"])
        if "eip" in pip:
            pip["eip"] = CreateNet2CloudPhoneServerRequestBodyPublicIpEip(**pip["eip"])
        kw["public_ip"] = ChangeCloudPhoneServerRequestBodyPublicIp(**pip)
    if "nics" in kw:
        kw["nics"] = [Nic(**n) for n in kw["nics"]]
    if "ports" in kw:
        kw["ports"] = [Port(**p) for p in kw["ports"]]
    if "phone_data_volume" in kw:
        kw["phone_data_volume"] = ChangeCloudPhoneServerRequestBodyPhoneDataVolume(**kw["phone_data_volume"])
    return client.change_cloud_phone_server(
        ChangeCloudPhoneServerRequest(server_id=server_id, body=ChangeCloudPhoneServerRequestBody(**kw))
    )


@pytest.fixture(scope="module")
def switch_server(client, cph, offer) -> str:
    """A running rx1 server reserved for the server-change tests."""
    return buy_rx1(client, cph, offer)


def test_change_server_rejects_invalid_requests(client, cph, offer, switch_server):
    phone_image = image_of(offer, "cloud_phone", "AOSP7.1.1")
    game_image = image_of(offer, "cloud_game")
    phones_before = sorted(p.phone_id for p in server_phones(client, switch_server))

    def body(**o):
        return change_body(cph, o.pop("phone_model_name", RX1_PHONE), o.pop("image_id", phone_image), **o)

    cases: list[tuple[str, dict, int, str]] = [
        (missing_id(), body(), 404, "CPS.0015"),
        ("x" * 65, body(), 400, "CPS.0016"),
        (switch_server, body(phone_model_name=None), 400, "CPS.0027"),
        (switch_server, body(phone_model_name="nope.c1"), 400, "CPS.0028"),
        # A phone model of another server model.
        (switch_server, body(phone_model_name=RX1_CG_PHONE, image_id=game_image), 400, "CPS.0157"),
        (switch_server, body(image_id=None), 400, "CPS.0029"),
        (switch_server, body(image_id="0" * 32), 400, "CPS.0030"),
        (switch_server, body(image_id=game_image), 400, "CPS.0222"),
        (switch_server, body(keypair_name="no-such-keypair"), 400, "CPS.0067"),
        (switch_server, body(ports=[{"name": "adb", "listen_port": 20000, "internet_accessible": "true"}]), 400, "CPS.0038"),
        (switch_server, body(ports=[{"name": "web", "listen_port": 80, "internet_accessible": "true"}]), 400, "CPS.0040"),
        (switch_server, body(tenant_vpc_id=None), 400, "CPS.0223"),
        (switch_server, body(nics=None), 400, "CPS.0226"),
        (switch_server, body(nics=[{"subnet_id": missing_id()}]), 400, "CPS.0224"),
        (switch_server, body(public_ip=None), 400, "CPS.0238"),
        (switch_server, body(public_ip={"eip": {"type": "5_nope"}}), 400, "CPS.0239"),
        (switch_server, body(band_width=None), 400, "CPS.0031"),
        (switch_server, body(band_width={"band_width_share_type": 0, "band_width_charge_mode": 1}), 400, "CPS.0036"),
        (switch_server, body(phone_data_volume={"volume_type": "HDD", "size": 64}), 400, "CPS.0321"),
        (switch_server, body(property='{"no.such.property": "1"}'), 400, "CPS.0163"),
        (switch_server, body(property="not json"), 400, "CPS.0078"),
        (switch_server, body(availability_zone="elsewhere-1a"), 400, "CPS.0211"),
        (switch_server, body(extend_param={"enterprise_project_id": "e" * 65}), 400, "CPS.0316"),
    ]
    for sid, b, status, code in cases:
        expect_error(lambda: change_server(client, sid, b), status, code)
    d = detail(client, switch_server)
    assert d.status == SERVER_RUNNING
    assert d.phone_model_name == RX1_PHONE
    phones = server_phones(client, switch_server)
    assert sorted(p.phone_id for p in phones) == phones_before
    assert all(p.status == PHONE_RUNNING for p in phones)


def test_change_server_recreates_phones(client, cph, offer, switch_server):
    before = detail(client, switch_server)
    old = {p.phone_id: p for p in server_phones(client, switch_server)}
    image = image_of(offer, "cloud_phone")
    resp = change_server(
        client,
        switch_server,
        change_body(
            cph,
            RX1_SMALL_PHONE,
            image,
            property='{"ro.product.manufacturer":"CphChange"}',
            ports=[{"name": "web", "listen_port": 20000, "internet_accessible": "true"}],
            phone_data_volume={"volume_type": "SSD", "size": 64},
            band_width={"band_width_share_type": 0, "band_width_charge_mode": 0, "band_width_size": 200},
        ),
    )
    assert resp.request_id
    assert resp.server_id == switch_server
    assert resp.job_id

    # The old phones are gone at once: operations on them fail per item.
    gone = next(iter(old))
    r = client.restart_cloud_phone(
        RestartCloudPhoneRequest(body=RestartCloudPhoneRequestBody(phones=[PhoneProperty(phone_id=gone)]))
    )
    assert_job_item_failed(r.jobs[0], "phone_id", gone, "CPS.0004")
    expect_error(lambda: client.show_cloud_phone_detail(ShowCloudPhoneDetailRequest(phone_id=gone)), 404, "CPS.0005")

    jobs = wait_jobs_succeeded(client, resp.request_id, timeout=60)
    assert [j.job_id for j in jobs] == [resp.job_id]
    assert jobs[0].server_id == switch_server

    after = wait_server_running(client, switch_server)
    # Name, id, zone, model and billing stay; the phone model changes.
    assert after.server_id == switch_server
    assert after.server_name == before.server_name
    assert after.availability_zone == before.availability_zone
    assert after.server_model_name == RX1
    assert after.metadata.order_id == before.metadata.order_id
    assert after.phone_model_name == RX1_SMALL_PHONE

    phones = server_phones(client, switch_server)
    assert len(phones) == 30, "rc1.plus runs 30 phones per server"
    assert not {p.phone_id for p in phones} & set(old)
    for p in phones:
        assert p.status == PHONE_RUNNING
        assert p.phone_model_name == RX1_SMALL_PHONE
        assert p.image_id == image
    one = client.show_cloud_phone_detail(ShowCloudPhoneDetailRequest(phone_id=phones[0].phone_id))
    assert "CphChange" in one._property
    assert one.imei and one.imei not in {p.imei for p in old.values()}

    # A 30-phone server cannot change to a model whose phone models run 60.
    expect_error(
        lambda: change_model(client, server_id=switch_server, server_model_name=RX1_CG, phone_model_name=RX1_CG_PHONE),
        400,
        "CPS.0257",
    )


def test_change_server_while_changing_is_refused(client, cph, offer, switch_server):
    wait_server_running(client, switch_server)
    image = image_of(offer, "cloud_phone")
    resp = change_server(client, switch_server, change_body(cph, RX1_PHONE, image))
    # The server is being switched until the job ends.
    expect_error(lambda: change_server(client, switch_server, change_body(cph, RX1_PHONE, image)), 400, "CPS.1102")
    wait_jobs_succeeded(client, resp.request_id, timeout=60)
    wait_server_running(client, switch_server)
    phones = server_phones(client, switch_server)
    assert len(phones) == 60
    assert all(p.phone_model_name == RX1_PHONE and p.status == PHONE_RUNNING for p in phones)


def test_change_server_of_another_tenant_is_not_found(other_client, cph, offer, switch_server):
    body = change_body(cph, RX1_PHONE, image_of(offer, "cloud_phone"))
    expect_error(lambda: change_server(other_client, switch_server, body), 404, "CPS.0015")
