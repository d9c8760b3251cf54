"""RestartCloudPhone, StopCloudPhone, ResetCloudPhone, UpdateCloudPhoneProperty, ImportTraffic."""

import json

import pytest
from huaweicloudsdkcore.exceptions import exceptions

from cph_sdk import (
    JOB_SUCCEEDED,
    PHONE_RESETTING,
    PHONE_RESTARTING,
    PHONE_RUNNING,
    PHONE_STOPPED,
    PHONE_STOPPING,
    ImportTrafficRequest,
    ImportTrafficRequestBody,
    PhoneProperty,
    PropertyToUpdate,
    ResetCloudPhoneRequest,
    ResetCloudPhoneRequestBody,
    ResetPhoneProperty,
    RestartCloudPhoneRequest,
    RestartCloudPhoneRequestBody,
    ShowCloudPhoneDetailRequest,
    ShowJobRequest,
    StopCloudPhoneRequest,
    StopCloudPhoneRequestBody,
    UpdateCloudPhonePropertyRequest,
    UpdateCloudPhonePropertyRequestBody,
    assert_job_item_failed,
    assert_job_item_ok,
    expect_error,
    list_jobs_of,
    missing_id,
    phone_status,
    wait_jobs_succeeded,
    wait_phone_status,
)


def restart(client, phone_ids, prop=None, image_id=None):
    phones = [PhoneProperty(phone_id=p, _property=prop) for p in phone_ids]
    return client.restart_cloud_phone(
        RestartCloudPhoneRequest(body=RestartCloudPhoneRequestBody(image_id=image_id, phones=phones))
    )


def stop(client, phone_ids):
    return client.stop_cloud_phone(StopCloudPhoneRequest(body=StopCloudPhoneRequestBody(phone_ids=phone_ids)))


def reset(client, phone_ids, prop=None):
    phones = [ResetPhoneProperty(phone_id=p, _property=prop) for p in phone_ids]
    return client.reset_cloud_phone(ResetCloudPhoneRequest(body=ResetCloudPhoneRequestBody(phones=phones)))


def update_property(client, items):
    """items: [(phone_id, property_json_string, custom_property_or_None)]"""
    phones = [PropertyToUpdate(phone_id=p, _property=prop, custom_property=custom) for p, prop, custom in items]
    return client.update_cloud_phone_property(
        UpdateCloudPhonePropertyRequest(body=UpdateCloudPhonePropertyRequestBody(phones=phones))
    )


def import_traffic(client, traffic_type, phone_ids):
    return client.import_traffic(
        ImportTrafficRequest(body=ImportTrafficRequestBody(traffic_type=traffic_type, phone_ids=phone_ids))
    )


def detail(client, phone_id):
    return client.show_cloud_phone_detail(ShowCloudPhoneDetailRequest(phone_id=phone_id))


def properties(client, phone_id) -> dict:
    raw = detail(client, phone_id)._property
    return json.loads(raw) if raw else {}


def items_by_phone(resp):
    assert resp.request_id
    return {j.phone_id: j for j in resp.jobs}


# ---- RestartCloudPhone -------------------------------------------------------------------------


def test_restart_running_phone(client, phone_pool):
    (pid,) = phone_pool.take_ids(1)
    r = restart(client, [pid])
    items = items_by_phone(r)
    assert_job_item_ok(items[pid], "phone_id", pid)
    # The phone goes through "restarting" (4) back to "running" (2).
    seen = wait_until_after(client, pid, PHONE_RESTARTING, PHONE_RUNNING)
    jobs = wait_jobs_succeeded(client, r.request_id)
    assert [j.job_id for j in jobs] == [items[pid].job_id]
    assert jobs[0].phone_id == pid
    assert seen[-1] == PHONE_RUNNING


def wait_until_after(client, pid, transitional, final, timeout=30):
    """Waits until the phone has shown `transitional` and then `final`; returns the statuses seen."""
    seen = wait_phone_status(client, pid, transitional, timeout)
    seen += wait_phone_status(client, pid, final, timeout)[1:]
    assert transitional in seen and seen[-1] == final, seen
    return seen


def test_restart_stopped_phone_starts_it(client, phone_pool):
    (pid,) = phone_pool.take_ids(1)
    wait_jobs_succeeded(client, stop(client, [pid]).request_id)
    assert phone_status(client, pid) == PHONE_STOPPED
    r = restart(client, [pid])
    assert_job_item_ok(items_by_phone(r)[pid], "phone_id", pid)
    wait_until_after(client, pid, PHONE_RESTARTING, PHONE_RUNNING)
    wait_jobs_succeeded(client, r.request_id)


def test_restart_with_property(client, phone_pool):
    (pid,) = phone_pool.take_ids(1)
    r = restart(client, [pid], prop='{"com.cph.mainkeys":1, "disable.status.bar":1}')
    assert_job_item_ok(items_by_phone(r)[pid], "phone_id", pid)
    wait_jobs_succeeded(client, r.request_id)
    assert phone_status(client, pid) == PHONE_RUNNING
    props = properties(client, pid)
    assert props.get("com.cph.mainkeys") == 1
    assert props.get("disable.status.bar") == 1


def test_restart_batch_with_unknown_phone(client, phone_pool):
    a, b = phone_pool.take_ids(2)
    unknown = missing_id()
    r = restart(client, [a, unknown, b])
    assert [j.phone_id for j in r.jobs] == [a, unknown, b], "items keep the request's order"
    items = items_by_phone(r)
    assert_job_item_ok(items[a], "phone_id", a)
    assert_job_item_ok(items[b], "phone_id", b)
    assert_job_item_failed(items[unknown], "phone_id", unknown, "CPS.0004")
    jobs = wait_jobs_succeeded(client, r.request_id)
    assert sorted(j.phone_id for j in jobs) == sorted([a, b])
    assert {j.job_id for j in jobs} == {items[a].job_id, items[b].job_id}


def test_restart_with_invalid_property(client, phone_pool):
    (pid,) = phone_pool.take_ids(1)
    before = properties(client, pid)
    try:
        r = restart(client, [pid], prop='{"no.such.property":1}')
    except exceptions.ClientRequestException as e:
        assert e.status_code == 400 and e.error_code == "CPS.0163", (e.error_code, e.error_msg)
        assert e.request_id
    else:
        assert_job_item_failed(items_by_phone(r)[pid], "phone_id", pid, "CPS.0163")
    assert phone_status(client, pid) == PHONE_RUNNING
    assert properties(client, pid) == before


def test_restart_empty_list(client):
    e = expect_error(lambda: restart(client, []), 400)
    assert e.error_code.startswith("CPS.")


# ---- StopCloudPhone ----------------------------------------------------------------------------


def test_stop_phone(client, phone_pool):
    a, b = phone_pool.take_ids(2)
    r = stop(client, [a, b])
    items = items_by_phone(r)
    assert_job_item_ok(items[a], "phone_id", a)
    assert_job_item_ok(items[b], "phone_id", b)
    jobs = wait_jobs_succeeded(client, r.request_id)
    assert sorted(j.phone_id for j in jobs) == sorted([a, b])
    for pid in (a, b):
        assert phone_status(client, pid) == PHONE_STOPPED
    for j in jobs:
        shown = client.show_job(ShowJobRequest(job_id=j.job_id))
        assert shown.status == JOB_SUCCEEDED
        assert shown.phone_id == j.phone_id


def test_stop_stopped_phone(client, phone_pool):
    (pid,) = phone_pool.take_ids(1)
    wait_jobs_succeeded(client, stop(client, [pid]).request_id)
    r = stop(client, [pid])
    assert_job_item_failed(items_by_phone(r)[pid], "phone_id", pid, "CPS.0141")
    assert phone_status(client, pid) == PHONE_STOPPED


def test_stop_unknown_phone(client, phone_pool):
    (pid,) = phone_pool.take_ids(1)
    unknown = missing_id()
    r = stop(client, [unknown, pid])
    items = items_by_phone(r)
    assert_job_item_failed(items[unknown], "phone_id", unknown, "CPS.0004")
    assert_job_item_ok(items[pid], "phone_id", pid)
    wait_jobs_succeeded(client, r.request_id)


def test_stop_empty_list(client):
    expect_error(lambda: stop(client, []), 400, "CPS.0009")


# ---- ResetCloudPhone ---------------------------------------------------------------------------


def test_reset_phone(client, phone_pool):
    (pid,) = phone_pool.take_ids(1)
    wait_jobs_succeeded(client, restart(client, [pid], prop='{"com.cph.mainkeys":1}').request_id)
    assert properties(client, pid).get("com.cph.mainkeys") == 1
    r = reset(client, [pid])
    assert_job_item_ok(items_by_phone(r)[pid], "phone_id", pid)
    wait_until_after(client, pid, PHONE_RESETTING, PHONE_RUNNING)
    wait_jobs_succeeded(client, r.request_id)
    # A reset returns the phone to its factory state: the property set before is gone.
    assert properties(client, pid).get("com.cph.mainkeys", 0) == 0


def test_reset_with_property(client, phone_pool):
    (pid,) = phone_pool.take_ids(1)
    r = reset(client, [pid], prop='{"ro.permission.changed":1}')
    wait_jobs_succeeded(client, r.request_id)
    assert phone_status(client, pid) == PHONE_RUNNING
    assert properties(client, pid).get("ro.permission.changed") == 1


def test_reset_stopped_phone(client, phone_pool):
    (pid,) = phone_pool.take_ids(1)
    wait_jobs_succeeded(client, stop(client, [pid]).request_id)
    r = reset(client, [pid])
    assert_job_item_ok(items_by_phone(r)[pid], "phone_id", pid)
    wait_jobs_succeeded(client, r.request_id)
    assert phone_status(client, pid) == PHONE_RUNNING


def test_reset_unknown_phone(client):
    unknown = missing_id()
    r = reset(client, [unknown])
    assert_job_item_failed(items_by_phone(r)[unknown], "phone_id", unknown, "CPS.0004")
    expect_error(lambda: list_jobs_of(client, r.request_id), 404, "CPS.0050")


# ---- UpdateCloudPhoneProperty ------------------------------------------------------------------


def test_update_property(client, phone_pool):
    a, b = phone_pool.take_ids(2)
    r = update_property(client, [(a, '{"ro.permission.changed":1}', None), (b, '{"ro.install.auto":1}', None)])
    items = items_by_phone(r)
    assert_job_item_ok(items[a], "phone_id", a)
    assert_job_item_ok(items[b], "phone_id", b)
    wait_jobs_succeeded(client, r.request_id)
    assert properties(client, a).get("ro.permission.changed") == 1
    assert properties(client, b).get("ro.install.auto") == 1
    assert phone_status(client, a) == PHONE_RUNNING


def test_update_property_merges(client, phone_pool):
    (pid,) = phone_pool.take_ids(1)
    wait_jobs_succeeded(client, update_property(client, [(pid, '{"ro.permission.changed":1}', None)]).request_id)
    wait_jobs_succeeded(client, update_property(client, [(pid, '{"ro.install.auto":1}', None)]).request_id)
    props = properties(client, pid)
    assert props.get("ro.permission.changed") == 1
    assert props.get("ro.install.auto") == 1


def test_update_property_needing_restart(client, phone_pool):
    (pid,) = phone_pool.take_ids(1)
    r = update_property(client, [(pid, '{"com.cph.mainkeys":1}', None)])
    wait_jobs_succeeded(client, r.request_id)
    wait_phone_status(client, pid, PHONE_RUNNING)
    assert properties(client, pid).get("com.cph.mainkeys") == 1


def test_update_custom_property(client, phone_pool):
    (pid,) = phone_pool.take_ids(1)
    r = update_property(client, [(pid, '{"ro.install.auto":1}', {"my.key": "my value"})])
    wait_jobs_succeeded(client, r.request_id)
    d = detail(client, pid)
    assert (d.custom_property or {}).get("my.key") == "my value"


@pytest.mark.parametrize(
    "prop,code",
    [
        ('{"no.such.property":1}', "CPS.0163"),
        ('{"com.cph.mainkeys":7}', "CPS.0164"),
        ("not json", "CPS.0078"),
    ],
    ids=["unknown-key", "bad-value", "not-json"],
)
def test_update_property_invalid(client, phone_pool, prop, code):
    pid, other = phone_pool.take_ids(2)
    before = properties(client, pid)
    try:
        r = update_property(client, [(pid, prop, None), (other, '{"ro.install.auto":1}', None)])
    except exceptions.ClientRequestException as e:
        # Rejecting the whole request is fine too, but then with the item's code.
        assert e.status_code == 400 and e.error_code == code, (e.error_code, e.error_msg)
        assert e.request_id
    else:
        items = items_by_phone(r)
        assert_job_item_failed(items[pid], "phone_id", pid, code)
        assert_job_item_ok(items[other], "phone_id", other)
        jobs = wait_jobs_succeeded(client, r.request_id)
        assert [j.phone_id for j in jobs] == [other]
    assert properties(client, pid) == before


def test_update_property_unknown_phone(client):
    unknown = missing_id()
    r = update_property(client, [(unknown, '{"ro.install.auto":1}', None)])
    assert_job_item_failed(items_by_phone(r)[unknown], "phone_id", unknown, "CPS.0004")


# ---- ImportTraffic -----------------------------------------------------------------------------


def test_import_traffic(client, phone_pool):
    a, b = phone_pool.take_ids(2)
    r = import_traffic(client, "routing", [a, b])
    items = items_by_phone(r)
    assert_job_item_ok(items[a], "phone_id", a)
    assert_job_item_ok(items[b], "phone_id", b)
    wait_jobs_succeeded(client, r.request_id)
    assert detail(client, a).traffic_type == "routing"
    assert detail(client, b).traffic_type == "routing"
    wait_jobs_succeeded(client, import_traffic(client, "direct", [a]).request_id)
    assert detail(client, a).traffic_type == "direct"
    assert detail(client, b).traffic_type == "routing"


def test_import_traffic_too_many_phones(client, shared_server):
    ids = [missing_id() for _ in range(101)]
    expect_error(lambda: import_traffic(client, "routing", ids), 400, "CPS.0209")


def test_import_traffic_100_phones_is_the_limit(client):
    ids = [missing_id() for _ in range(100)]
    r = import_traffic(client, "routing", ids)
    assert len(r.jobs) == 100
    assert all(j.error_code == "CPS.0004" and not j.job_id for j in r.jobs)


@pytest.mark.parametrize("tt", ["bogus", ""])
def test_import_traffic_bad_type(client, shared_server, tt):
    expect_error(lambda: import_traffic(client, tt, [missing_id()]), 400, "CPS.0207")


def test_import_traffic_unknown_phone(client, phone_pool):
    (pid,) = phone_pool.take_ids(1)
    unknown = missing_id()
    r = import_traffic(client, "routing", [pid, unknown])
    items = items_by_phone(r)
    assert_job_item_ok(items[pid], "phone_id", pid)
    assert_job_item_failed(items[unknown], "phone_id", unknown, "CPS.0004")
    wait_jobs_succeeded(client, r.request_id)


# ---- images and serialisation ------------------------------------------------------------------


def same_label_images(offer):
    return [i.image_id for i in offer.catalog["images"] if i.image_label == offer.image_label]


def test_restart_with_new_image(client, offer, phone_pool):
    others = [i for i in same_label_images(offer) if i != offer.image_id]
    if not others:
        pytest.skip("the catalog has a single image for the phone model's label")
    (pid,) = phone_pool.take_ids(1)
    r = restart(client, [pid], image_id=others[0])
    assert_job_item_ok(items_by_phone(r)[pid], "phone_id", pid)
    wait_jobs_succeeded(client, r.request_id)
    assert detail(client, pid).image_id == others[0]


def test_reset_with_new_image(client, offer, phone_pool):
    others = [i for i in same_label_images(offer) if i != offer.image_id]
    if not others:
        pytest.skip("the catalog has a single image for the phone model's label")
    (pid,) = phone_pool.take_ids(1)
    r = client.reset_cloud_phone(
        ResetCloudPhoneRequest(
            body=ResetCloudPhoneRequestBody(image_id=others[-1], phones=[ResetPhoneProperty(phone_id=pid)])
        )
    )
    wait_jobs_succeeded(client, r.request_id)
    assert detail(client, pid).image_id == others[-1]


def test_restart_with_image_of_another_label(client, offer, phone_pool):
    (pid,) = phone_pool.take_ids(1)
    try:
        r = restart(client, [pid], image_id=offer.mismatched_image_id)
    except exceptions.ClientRequestException as e:
        assert e.status_code == 400 and e.error_code == "CPS.0222", (e.error_code, e.error_msg)
    else:
        assert_job_item_failed(items_by_phone(r)[pid], "phone_id", pid, "CPS.0222")
    assert detail(client, pid).image_id == offer.image_id
    assert phone_status(client, pid) == PHONE_RUNNING


def test_restart_with_unknown_image(client, offer, phone_pool):
    (pid,) = phone_pool.take_ids(1)
    expect_error(lambda: restart(client, [pid], image_id="0" * 32), 400, "CPS.0030")
    assert detail(client, pid).image_id == offer.image_id


def test_jobs_of_one_phone_run_one_after_another(client, phone_pool):
    """A stop queued behind a restart of the same phone runs after it: the phone ends stopped."""
    (pid,) = phone_pool.take_ids(1)
    first = restart(client, [pid])
    second = stop(client, [pid])
    seen = wait_phone_status(client, pid, PHONE_STOPPED)
    (j1,) = wait_jobs_succeeded(client, first.request_id)
    (j2,) = wait_jobs_succeeded(client, second.request_id)
    assert j1.end_time <= j2.end_time, (j1, j2)
    assert PHONE_RESTARTING in seen, seen
    assert PHONE_STOPPING not in seen[: seen.index(PHONE_RESTARTING)], seen
    assert phone_status(client, pid) == PHONE_STOPPED
