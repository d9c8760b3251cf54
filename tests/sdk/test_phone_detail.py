"""ShowCloudPhoneDetail shows the phone's data volume as bought with its server."""

from cph_sdk import ShowCloudPhoneDetailRequest, buy_running_servers, server_phones


def detail(client, phone_id):
    return client.show_cloud_phone_detail(ShowCloudPhoneDetailRequest(phone_id=phone_id))


def test_phone_detail_shows_the_bought_data_volume(client, cph, offer):
    sid = buy_running_servers(client, cph, 1, offer, phone_data_volume={"volume_type": "GPSSD", "size": 128})[0]
    d = detail(client, server_phones(client, sid)[0].phone_id)
    assert d.phone_data_volume is not None
    assert (d.phone_data_volume.volume_type, d.phone_data_volume.volume_size) == ("GPSSD", 128)


def test_phone_detail_without_data_volume(client, cph, offer):
    sid = buy_running_servers(client, cph, 1, offer, phone_data_volume=None)[0]
    assert detail(client, server_phones(client, sid)[0].phone_id).phone_data_volume is None
