"""Helpers of the SDK end-to-end suite: clients, purchases, job and status polling, error checks.

Everything here talks to the server only through the official SDK (``huaweicloudsdkcph``), except
``raw_request``, which sends a hand-made (optionally SDK-signed) HTTP request.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pytest
import requests
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions import exceptions
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcph.v1 import *  # noqa: F401,F403  (the SDK's request/response models)
from huaweicloudsdkcph.v1 import (
    CphClient,
    CreateNet2CloudPhoneServerRequest,
    CreateNet2CloudPhoneServerRequestBody,
    CreateNet2CloudPhoneServerRequestBodyBandWidth,
    CreateNet2CloudPhoneServerRequestBodyExtendParam,
    CreateNet2CloudPhoneServerRequestBodyPhoneDataVolume,
    CreateNet2CloudPhoneServerRequestBodyPublicIp,
    CreateNet2CloudPhoneServerRequestBodyPublicIpEip,
    ListCloudPhoneImagesRequest,
    ListCloudPhoneModelsRequest,
    ListCloudPhoneServerModelsRequest,
    ListCloudPhoneServersRequest,
    ListCloudPhonesRequest,
    ListJobsRequest,
    Nic,
    Port,
    ShowCloudPhoneDetailRequest,
    ShowCloudPhoneServerDetailRequest,
)

# Phone status codes (API reference 5.3.1).
PHONE_CREATING, PHONE_RUNNING, PHONE_RESETTING, PHONE_RESTARTING = 1, 2, 3, 4
PHONE_STOPPING, PHONE_STOPPED = 7, 8
# Server status "running" (API reference 5.1.1).
SERVER_RUNNING = 5
# Job status codes (API reference 5.4.1).
JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED = 1, 2, -1


def unique(prefix: str = "t") -> str:
    """A short unique name made of letters, digits and '-' (valid as server and phone name)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def missing_id() -> str:
    """A well-formed id that names nothing."""
    return uuid.uuid4().hex


# ---------------------------------------------------------------------------------------------
# Clients


def make_client(endpoint: str, ak: str, sk: str, project_id: str) -> CphClient:
    config = HttpConfig.get_default_config()
    config.timeout = (5, 60)
    config.retry_times = 0
    return (
        CphClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(ak, sk, project_id))
        .with_endpoints([endpoint])
        .build()
    )


def raw_request(
    endpoint: str,
    method: str,
    path: str,
    *,
    credentials: BasicCredentials | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """Sends one HTTP request with `requests`; signed with the SDK's own signer when
    `credentials` are given (SDK-HMAC-SHA256, as the SDK would sign it)."""
    scheme, host = endpoint.split("://", 1)
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    data = "" if body is None else json.dumps(body)
    url = f"{endpoint}{path}"
    if credentials is not None:
        req = SdkRequest(
            method=method,
            schema=scheme,
            host=host,
            resource_path=path,
            query_params=[],
            header_params=hdrs,
            body=data,
        )
        req = credentials.sign_request(req)
        hdrs = dict(req.header_params)
    return requests.request(method, url, headers=hdrs, data=data.encode(), timeout=30)


# ---------------------------------------------------------------------------------------------
# Errors


def expect_error(call: Callable[[], Any], status: int, code: str | None = None, *, code_prefix: str | None = None):
    """Runs `call`, which must fail with a ClientRequestException of HTTP `status` and error
    `code` (or an error code starting with `code_prefix`); the exception must carry the request
    id (the SDK reads it from X-Request-Id). Returns the exception."""
    with pytest.raises(exceptions.ClientRequestException) as info:
        call()
    e = info.value
    what = f"got HTTP {e.status_code} {e.error_code}: {e.error_msg} (request_id={e.request_id})"
    assert e.status_code == status, what
    if code is not None:
        assert e.error_code == code, what
    if code_prefix is not None:
        assert str(e.error_code).startswith(code_prefix), what
    assert e.error_msg, what
    assert e.request_id, f"error without X-Request-Id: {what}"
    return e


def assert_job_item_ok(item, id_attr: str, expected_id: str):
    assert getattr(item, id_attr) == expected_id
    assert item.job_id, f"no job_id for {expected_id}: {item.error_code} {item.error_msg}"
    assert not item.error_code, f"{expected_id}: {item.error_code} {item.error_msg}"


def assert_job_item_failed(item, id_attr: str, expected_id: str, code: str):
    assert getattr(item, id_attr) == expected_id
    assert item.error_code == code, f"{expected_id}: {item.error_code} {item.error_msg}"
    assert item.error_msg
    assert not item.job_id, f"{expected_id} failed with {code} but has job {item.job_id}"


# ---------------------------------------------------------------------------------------------
# Polling


def poll(what: str, fn: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 30, interval: float = 0.05):
    """Calls `fn` until `done(result)`; returns the last result. Fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        r = fn()
        if done(r):
            return r
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}; last value: {r!r}")
        time.sleep(interval)


def list_jobs_of(client: CphClient, request_id: str) -> list:
    jobs: list = []
    offset = 0
    while True:
        r = client.list_jobs(ListJobsRequest(request_id=request_id, offset=offset, limit=100))
        page = r.jobs or []
        jobs.extend(page)
        if len(page) < 100:
            return jobs
        offset += len(page)


def wait_jobs(client: CphClient, request_id: str, timeout: float = 30) -> list:
    """Polls ListJobs until every job of `request_id` has ended (status 2 or -1); returns them."""
    return poll(
        f"the jobs of request {request_id}",
        lambda: list_jobs_of(client, request_id),
        lambda jobs: bool(jobs) and all(j.status in (JOB_SUCCEEDED, JOB_FAILED) for j in jobs),
        timeout,
    )


def wait_jobs_succeeded(client: CphClient, request_id: str, timeout: float = 30) -> list:
    jobs = wait_jobs(client, request_id, timeout)
    bad = [(j.job_id, j.status, j.error_code, j.error_msg) for j in jobs if j.status != JOB_SUCCEEDED]
    assert not bad, f"jobs of {request_id} failed: {bad}"
    return jobs


def phone_status(client: CphClient, phone_id: str) -> int:
    return client.show_cloud_phone_detail(ShowCloudPhoneDetailRequest(phone_id=phone_id)).status


def wait_phone_status(client: CphClient, phone_id: str, status: int, timeout: float = 30) -> list[int]:
    """Polls the phone until it has `status`; returns every distinct status seen, in order."""
    seen: list[int] = []

    def step():
        s = phone_status(client, phone_id)
        if not seen or seen[-1] != s:
            seen.append(s)
        return s

    poll(f"phone {phone_id} to reach status {status}", step, lambda s: s == status, timeout, interval=0.01)
    return seen


def server_phones(client: CphClient, server_id: str) -> list:
    r = client.list_cloud_phones(ListCloudPhonesRequest(server_id=server_id, limit=200))
    return r.phones or []


def wait_server_running(client: CphClient, server_id: str, timeout: float = 60):
    """Polls until the server has status 5 and all its phones status 2; returns the server detail."""
    poll(
        f"server {server_id} to run",
        lambda: client.show_cloud_phone_server_detail(ShowCloudPhoneServerDetailRequest(server_id=server_id)).status,
        lambda s: s == SERVER_RUNNING,
        timeout,
    )
    poll(
        f"the phones of server {server_id} to run",
        lambda: server_phones(client, server_id),
        lambda phones: bool(phones) and all(p.status == PHONE_RUNNING for p in phones),
        timeout,
    )
    return client.show_cloud_phone_server_detail(ShowCloudPhoneServerDetailRequest(server_id=server_id))


# ---------------------------------------------------------------------------------------------
# Catalog and purchases


@dataclass
class Offer:
    """A server model, one of its phone models and a matching image, as the catalog lists them."""

    server_model_name: str
    phone_model_name: str
    image_id: str
    image_label: str
    phone_capacity: int
    phone_model_version: int
    # For negative tests:
    foreign_phone_model_name: str  # a phone model of another server model
    mismatched_image_id: str  # an image whose label differs from the phone model's
    catalog: dict = field(repr=False, default_factory=dict)


def load_offer(client: CphClient) -> Offer:
    server_models = client.list_cloud_phone_server_models(ListCloudPhoneServerModelsRequest()).server_models or []
    phone_models = client.list_cloud_phone_models(ListCloudPhoneModelsRequest()).phone_models or []
    images = client.list_cloud_phone_images(ListCloudPhoneImagesRequest()).phone_images or []
    sm_names = {m.server_model_name for m in server_models}
    by_label: dict[str, list] = {}
    for img in images:
        by_label.setdefault(img.image_label, []).append(img)
    candidates = [
        pm
        for pm in phone_models
        if pm.status == 1 and pm.server_model_name in sm_names and by_label.get(pm.image_label) and pm.phone_capacity
    ]
    assert candidates, "the catalog offers no purchasable phone model"
    # Fewest phones per server keeps purchases cheap; spec 1.0 models need no data volume.
    candidates.sort(key=lambda pm: (pm.phone_model_version or 0, pm.phone_capacity, pm.phone_model_name))
    pm = candidates[0]
    image = by_label[pm.image_label][0]
    foreign = next(p for p in phone_models if p.server_model_name != pm.server_model_name)
    mismatched = next(i for i in images if i.image_label != pm.image_label)
    return Offer(
        server_model_name=pm.server_model_name,
        phone_model_name=pm.phone_model_name,
        image_id=image.image_id,
        image_label=pm.image_label,
        phone_capacity=pm.phone_capacity,
        phone_model_version=pm.phone_model_version or 0,
        foreign_phone_model_name=foreign.phone_model_name,
        mismatched_image_id=mismatched.image_id,
        catalog={"server_models": server_models, "phone_models": phone_models, "images": images},
    )


def purchase_body(offer: Offer, vpc_id: str, subnet_id: str, count: int = 1, **overrides) -> dict:
    """A valid CreateNet2CloudPhoneServer body as plain data. `overrides` replace top-level
    fields; for the dict-valued fields (extend_param, band_width, public_ip) they are merged."""
    body: dict[str, Any] = {
        "server_name": unique("srv"),
        "server_model_name": offer.server_model_name,
        "phone_model_name": offer.phone_model_name,
        "image_id": offer.image_id,
        "count": count,
        "tenant_vpc_id": vpc_id,
        "nics": [{"subnet_id": subnet_id}],
        "public_ip": {"eip": {"type": "5_bgp"}},
        "band_width": {"band_width_share_type": 0, "band_width_charge_mode": 1, "band_width_size": 300},
        "extend_param": {"charging_mode": 0, "period_type": 2, "period_num": 1},
    }
    if offer.phone_model_version >= 1:
        body["phone_data_volume"] = {"volume_type": "SSD", "size": 64}
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(body.get(k), dict):
            body[k] = {**body[k], **v}
        else:
            body[k] = v
    return body


def purchase_request(body: dict) -> CreateNet2CloudPhoneServerRequest:
    """Turns plain purchase data into the SDK's request models."""
    kw = {k: v for k, v in body.items() if v is not None}
    if "extend_param" in kw:
        kw["extend_param"] = CreateNet2CloudPhoneServerRequestBodyExtendParam(**kw["extend_param"])
    if "band_width" in kw:
        kw["band_width"] = CreateNet2CloudPhoneServerRequestBodyBandWidth(**kw["band_width"])
    if "public_ip" in kw:
        pip = dict(kw["public_ip"])
        if "eip" in pip:
            pip["eip"] = CreateNet2CloudPhoneServerRequestBodyPublicIpEip(**pip["eip"])
        kw["public_ip"] = CreateNet2CloudPhoneServerRequestBodyPublicIp(**pip)
    if "nics" in kw:
        kw["nics"] = [Nic(**n) for n in kw["nics"]]
    if "ports" in kw:
        kw["ports"] = [Port(**p) for p in kw["ports"]]
    if "phone_data_volume" in kw:
        kw["phone_data_volume"] = CreateNet2CloudPhoneServerRequestBodyPhoneDataVolume(**kw["phone_data_volume"])
    return CreateNet2CloudPhoneServerRequest(body=CreateNet2CloudPhoneServerRequestBody(**kw))


def buy_server(client: CphClient, cph, count: int = 1, offer: Offer | None = None, **overrides):
    """Calls CreateNet2CloudPhoneServer with a valid body (see `purchase_body`) for the default
    VPC and subnet of `cph`; returns the SDK response (request_id, order_id, product_id, server_ids)."""
    offer = offer or load_offer(client)
    body = purchase_body(offer, cph.default_vpc_id, cph.default_subnet_id, count, **overrides)
    return client.create_net2_cloud_phone_server(purchase_request(body))


def buy_running_servers(client: CphClient, cph, count: int = 1, offer: Offer | None = None, **overrides) -> list[str]:
    """Buys `count` servers, waits for their creation jobs and for all their phones to run."""
    resp = buy_server(client, cph, count, offer, **overrides)
    assert resp.server_ids and len(resp.server_ids) == count, resp
    wait_jobs_succeeded(client, resp.request_id, timeout=60)
    for sid in resp.server_ids:
        wait_server_running(client, sid)
    return list(resp.server_ids)


def totals(client: CphClient) -> tuple[int, int]:
    """(number of servers, number of phones) the caller's project holds."""
    s = client.list_cloud_phone_servers(ListCloudPhoneServersRequest(limit=1)).count
    p = client.list_cloud_phones(ListCloudPhonesRequest(limit=1)).count
    return s, p


def ids_of(items: Iterable, attr: str) -> list[str]:
    return [getattr(i, attr) for i in items]
