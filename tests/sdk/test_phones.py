"""ListCloudPhones, ShowCloudPhoneDetail, UpdatePhoneName."""

import pytest

from cph_sdk import (
    PHONE_RUNNING,
    PHONE_STOPPED,
    ListCloudPhonesRequest,
    ShowCloudPhoneDetailRequest,
    StopCloudPhoneRequest,
    StopCloudPhoneRequestBody,
    UpdatePhoneNameRequest,
    UpdatePhoneNameRequestBody,
    expect_error,
    missing_id,
    server_phones,
    unique,
    wait_jobs_succeeded,
    wait_phone_status,
)


def show(client, phone_id):
    return client.show_cloud_phone_detail(ShowCloudPhoneDetailRequest(phone_id=phone_id))


def rename(client, phone_id, name):
    return client.update_phone_name(UpdatePhoneNameRequest(phone_id=phone_id, body=UpdatePhoneNameRequestBody(phone_name=name)))


# ---- ListCloudPhones ---------------------------------------------------------------------------


def test_list_phones_of_server(client, offer, shared_server):
    r = client.list_cloud_phones(ListCloudPhonesRequest(server_id=shared_server))
    assert r.request_id
    assert r.count == offer.phone_capacity
    assert len(r.phones) == offer.phone_capacity
    for p in r.phones:
        assert p.server_id == shared_server
        assert p.phone_id and p.phone_name
        assert p.phone_model_name == offer.phone_model_name
        assert p.image_id == offer.image_id
        assert isinstance(p.status, int)
        assert p.type == 0
        assert p.create_time
        assert p.metadata is not None and p.metadata.order_id


def test_list_phones_all_contains_server(client, offer, shared_server):
    r = client.list_cloud_phones(ListCloudPhonesRequest(limit=200))
    assert r.count >= offer.phone_capacity
    mine = [p for p in r.phones if p.server_id == shared_server]
    assert r.count > 200 or len(mine) == offer.phone_capacity


def test_list_phones_unknown_server(client):
    r = client.list_cloud_phones(ListCloudPhonesRequest(server_id=missing_id()))
    assert r.count == 0
    assert not r.phones


def test_list_phones_pagination(client, offer, shared_server):
    full = client.list_cloud_phones(ListCloudPhonesRequest(server_id=shared_server, limit=200))
    ids = [p.phone_id for p in full.phones]
    assert len(ids) == offer.phone_capacity
    page_size = 3
    pages = []
    for offset in range(0, len(ids), page_size):
        r = client.list_cloud_phones(ListCloudPhonesRequest(server_id=shared_server, offset=offset, limit=page_size))
        assert r.count == len(ids), "count is the total, not the page size"
        assert len(r.phones) == min(page_size, len(ids) - offset)
        pages += [p.phone_id for p in r.phones]
    assert pages == ids
    r = client.list_cloud_phones(ListCloudPhonesRequest(server_id=shared_server, offset=len(ids), limit=10))
    assert r.phones == [] or r.phones is None
    assert r.count == len(ids)


def test_list_phones_limit_bounds(client, shared_server):
    r = client.list_cloud_phones(ListCloudPhonesRequest(server_id=shared_server, limit=200))
    assert r.phones
    r = client.list_cloud_phones(ListCloudPhonesRequest(server_id=shared_server, limit=1))
    assert len(r.phones) == 1


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"limit": -1}, {"offset": -1}], ids=str)
def test_list_phones_bad_pagination(client, params):
    expect_error(lambda: client.list_cloud_phones(ListCloudPhonesRequest(**params)), 400, "CPS.0002")


def test_list_phones_bad_status(client):
    expect_error(lambda: client.list_cloud_phones(ListCloudPhonesRequest(status=5)), 400, "CPS.0010")


def test_list_phones_status_filter(client, phone_pool):
    stopped, running = phone_pool.take(2)
    sid = stopped.server_id
    r = client.stop_cloud_phone(StopCloudPhoneRequest(body=StopCloudPhoneRequestBody(phone_ids=[stopped.phone_id])))
    wait_jobs_succeeded(client, r.request_id)
    wait_phone_status(client, stopped.phone_id, PHONE_STOPPED)

    r = client.list_cloud_phones(ListCloudPhonesRequest(server_id=sid, status=PHONE_STOPPED))
    assert stopped.phone_id in [p.phone_id for p in r.phones]
    assert all(p.status == PHONE_STOPPED for p in r.phones)
    assert r.count == len(r.phones)

    r = client.list_cloud_phones(ListCloudPhonesRequest(server_id=sid, status=PHONE_RUNNING))
    ids = [p.phone_id for p in r.phones]
    assert running.phone_id in ids
    assert stopped.phone_id not in ids
    assert all(p.status == PHONE_RUNNING for p in r.phones)


def test_list_phones_name_filter(client, phone_pool):
    (phone,) = phone_pool.take(1)
    name = unique("needle")
    rename(client, phone.phone_id, name)
    r = client.list_cloud_phones(ListCloudPhonesRequest(phone_name=name))
    assert [p.phone_id for p in r.phones] == [phone.phone_id]
    assert r.count == 1
    # Fuzzy: a part of the name finds it too.
    r = client.list_cloud_phones(ListCloudPhonesRequest(phone_name=name[2:-2]))
    assert phone.phone_id in [p.phone_id for p in r.phones]
    r = client.list_cloud_phones(ListCloudPhonesRequest(phone_name=unique("nothing")))
    assert r.count == 0


def test_list_phones_combined_filters(client, phone_pool):
    (phone,) = phone_pool.take(1)
    name = unique("combo")
    rename(client, phone.phone_id, name)
    r = client.list_cloud_phones(ListCloudPhonesRequest(phone_name=name, server_id=phone.server_id, status=PHONE_RUNNING))
    assert [p.phone_id for p in r.phones] == [phone.phone_id]
    r = client.list_cloud_phones(ListCloudPhonesRequest(phone_name=name, server_id=missing_id()))
    assert r.count == 0


# ---- ShowCloudPhoneDetail ------------------------------------------------------------------------


def test_show_phone(client, offer, shared_server):
    listed = server_phones(client, shared_server)[0]
    d = show(client, listed.phone_id)
    assert d.request_id
    assert d.phone_id == listed.phone_id
    assert d.phone_name == listed.phone_name
    assert d.server_id == shared_server
    assert d.phone_model_name == offer.phone_model_name
    assert d.image_id == offer.image_id
    assert d.status == listed.status
    assert d.metadata is not None and d.metadata.order_id
    assert d.create_time
    assert d.traffic_type in ("direct", "routing")
    assert isinstance(d.access_infos, list)
    if d._property:
        import json

        assert isinstance(json.loads(d._property), dict)


def test_show_unknown_phone(client):
    expect_error(lambda: show(client, missing_id()), 404, "CPS.0005")


# ---- UpdatePhoneName ---------------------------------------------------------------------------


def test_update_phone_name(client, phone_pool):
    (phone,) = phone_pool.take(1)
    name = unique("phone")
    r = rename(client, phone.phone_id, name)
    assert r.status_code == 200
    assert r.request_id
    assert show(client, phone.phone_id).phone_name == name
    # Renaming a phone to its own name is no conflict.
    rename(client, phone.phone_id, name)
    # Chinese characters, digits, '-' and '_' are allowed.
    name = "手机_" + unique("x")
    rename(client, phone.phone_id, name)
    assert show(client, phone.phone_id).phone_name == name


@pytest.mark.parametrize(
    "bad", ["bad name", "", "x" * 61, "a/b", "name!", "点.点"], ids=["space", "empty", "61-chars", "slash", "bang", "dot"]
)
def test_update_phone_name_invalid(client, shared_server, bad):
    phone = server_phones(client, shared_server)[1]
    expect_error(lambda: rename(client, phone.phone_id, bad), 400, "CPS.0025")
    assert show(client, phone.phone_id).phone_name == phone.phone_name


def test_update_phone_name_duplicate(client, phone_pool):
    a, b = phone_pool.take(2)
    assert a.server_id == b.server_id
    name = unique("dup")
    rename(client, a.phone_id, name)
    expect_error(lambda: rename(client, b.phone_id, name), 400, "CPS.0026")
    assert show(client, b.phone_id).phone_name == b.phone_name


def test_update_phone_name_unknown(client):
    expect_error(lambda: rename(client, missing_id(), "fine-name"), 404, "CPS.0005")


def test_list_phones_newest_first(client, phone_pool):
    phone_pool.take(1)  # at least one server bought
    r = client.list_cloud_phones(ListCloudPhonesRequest(limit=200))
    times = [p.create_time for p in r.phones]
    assert times == sorted(times, reverse=True)
