"""ListCloudPhones answers repeated queries from a cache of rendered pages on SQLite; every change
must show in the very next answer."""

from cph_sdk import (
    ListCloudPhonesRequest,
    PhoneProperty,
    RestartCloudPhoneRequest,
    RestartCloudPhoneRequestBody,
    UpdatePhoneNameRequest,
    UpdatePhoneNameRequestBody,
    unique,
    wait_jobs_succeeded,
)


def listed(client, server_id):
    r = client.list_cloud_phones(ListCloudPhonesRequest(server_id=server_id, limit=200))
    return {p.phone_id: p for p in r.phones}, r.count


def test_repeated_list_sees_every_change(client, phone_pool):
    phone = phone_pool.take(1)[0]
    sid = phone.server_id
    first, count = listed(client, sid)
    again, _ = listed(client, sid)  # served from the cache
    assert {k: (v.phone_name, v.status) for k, v in first.items()} == {
        k: (v.phone_name, v.status) for k, v in again.items()
    }

    name = unique("ph")[:60]
    client.update_phone_name(
        UpdatePhoneNameRequest(phone_id=phone.phone_id, body=UpdatePhoneNameRequestBody(phone_name=name))
    )
    now, count2 = listed(client, sid)
    assert now[phone.phone_id].phone_name == name
    assert count2 == count

    r = client.restart_cloud_phone(
        RestartCloudPhoneRequest(body=RestartCloudPhoneRequestBody(phones=[PhoneProperty(phone_id=phone.phone_id)]))
    )
    wait_jobs_succeeded(client, r.request_id)
    after, _ = listed(client, sid)
    assert after[phone.phone_id].status == 2
    assert after[phone.phone_id].update_time >= now[phone.phone_id].update_time
