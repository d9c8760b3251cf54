"""ListCloudPhoneServerModels, ListCloudPhoneModels, ListCloudPhoneImages."""

from cph_sdk import (
    ListCloudPhoneImagesRequest,
    ListCloudPhoneModelsRequest,
    ListCloudPhoneServerModelsRequest,
)


def test_server_models(client):
    r = client.list_cloud_phone_server_models(ListCloudPhoneServerModelsRequest())
    assert r.status_code == 200
    assert r.request_id
    names = [m.server_model_name for m in r.server_models]
    assert "physical.rx1.xlarge" in names
    assert len(names) == len(set(names))
    for m in r.server_models:
        assert m.server_model_name.startswith("physical.")
        assert isinstance(m.cpu, int) and m.cpu > 0
        assert isinstance(m.memory, int) and m.memory > 0
        assert m.product_type in (0, 1)
        assert m.extend_spec is not None


def test_server_models_filter_by_product_type(client):
    everything = client.list_cloud_phone_server_models(ListCloudPhoneServerModelsRequest()).server_models
    for pt in (0, 1):
        r = client.list_cloud_phone_server_models(ListCloudPhoneServerModelsRequest(product_type=pt))
        assert {m.server_model_name for m in r.server_models} == {
            m.server_model_name for m in everything if m.product_type == pt
        }


def test_phone_models(client):
    servers = {m.server_model_name for m in client.list_cloud_phone_server_models(ListCloudPhoneServerModelsRequest()).server_models}
    r = client.list_cloud_phone_models(ListCloudPhoneModelsRequest())
    assert r.request_id
    assert r.phone_models
    names = [m.phone_model_name for m in r.phone_models]
    assert "rx1.cp.c60.d10.e1v1" in names
    for m in r.phone_models:
        assert m.server_model_name in servers, m.phone_model_name
        assert isinstance(m.phone_capacity, int) and m.phone_capacity > 0
        assert m.image_label
        assert m.status in (0, 1)


def test_phone_models_filter_by_status(client):
    everything = client.list_cloud_phone_models(ListCloudPhoneModelsRequest()).phone_models
    r = client.list_cloud_phone_models(ListCloudPhoneModelsRequest(status=1))
    assert {m.phone_model_name for m in r.phone_models} == {m.phone_model_name for m in everything if m.status == 1}


def test_phone_images(client):
    r = client.list_cloud_phone_images(ListCloudPhoneImagesRequest())
    assert r.request_id
    assert r.phone_images
    ids = [i.image_id for i in r.phone_images]
    assert len(ids) == len(set(ids))
    labels = {m.image_label for m in client.list_cloud_phone_models(ListCloudPhoneModelsRequest()).phone_models}
    for img in r.phone_images:
        assert img.image_id and img.image_name and img.os_type
        assert img.is_public in (0, 1)
    # Every phone model can be bought with at least one image.
    assert labels <= {i.image_label for i in r.phone_images}


def test_offer_is_consistent(offer):
    """The purchase choice of the suite follows the catalog's rules."""
    pm = next(m for m in offer.catalog["phone_models"] if m.phone_model_name == offer.phone_model_name)
    img = next(i for i in offer.catalog["images"] if i.image_id == offer.image_id)
    assert pm.server_model_name == offer.server_model_name
    assert img.image_label == pm.image_label
