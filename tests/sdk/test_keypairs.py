"""Nova key pairs (NovaCreateKeypair, NovaListKeypairs, NovaShowKeypair, NovaDeleteKeypair) through
the official ECS SDK (huaweicloudsdkecs, v2 module), and the CPH operation UpdateKeypair."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkecs.v2 import (
    EcsClient,
    NovaCreateKeypairOption,
    NovaCreateKeypairRequest,
    NovaCreateKeypairRequestBody,
    NovaDeleteKeypairRequest,
    NovaListKeypairsRequest,
    NovaShowKeypairRequest,
)

from cph_sdk import (
    JOB_SUCCEEDED,
    ListEncodeServersRequest,
    ServerKeypair,
    ShowCloudPhoneServerDetailRequest,
    UpdateKeypairRequest,
    UpdateKeypairRequestBody,
    assert_job_item_failed,
    assert_job_item_ok,
    buy_running_servers,
    expect_error,
    missing_id,
    raw_request,
    unique,
    wait_jobs_succeeded,
)

# The SDK marks the Nova calls deprecated (in favour of ECS's own key pair API); they still work.
pytestmark = pytest.mark.filterwarnings("ignore:Method 'nova_:DeprecationWarning")

MD5_FP = re.compile(r"^([0-9a-f]{2}:){15}[0-9a-f]{2}$")
NOVA_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$")
# Used when ssh-keygen is not installed.
FIXED_ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl fixed@test"


def ecs_client(endpoint: str, ak: str, sk: str, project_id: str) -> EcsClient:
    config = HttpConfig.get_default_config()
    config.timeout = (5, 60)
    config.retry_times = 0
    return (
        EcsClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(ak, sk, project_id))
        .with_endpoints([endpoint])
        .build()
    )


@pytest.fixture(scope="module")
def ecs(cph) -> EcsClient:
    return ecs_client(cph.endpoint, cph.ak, cph.sk, cph.project_id)


@pytest.fixture(scope="module")
def other_ecs(cph, other_tenant) -> EcsClient:
    t = other_tenant
    return ecs_client(cph.endpoint, t.access_key, t.secret_key, t.project_id)


def kp_name(prefix: str = "kp") -> str:
    return unique(prefix).replace("-", "_")


def create(ecs: EcsClient, name: str, public_key: str | None = None, **kw):
    opt = NovaCreateKeypairOption(name=name, public_key=public_key, **kw)
    return ecs.nova_create_keypair(NovaCreateKeypairRequest(body=NovaCreateKeypairRequestBody(keypair=opt))).keypair


def md5_of(public_key: str) -> str:
    blob = base64.b64decode(public_key.split()[1])
    return ":".join(f"{b:02x}" for b in hashlib.md5(blob).digest())


def names(ecs: EcsClient, **kw) -> list[str]:
    return [k.keypair.name for k in ecs.nova_list_keypairs(NovaListKeypairsRequest(**kw)).keypairs or []]


def new_ed25519() -> str:
    """A fresh OpenSSH ed25519 public key (ssh-keygen), or a fixed one without ssh-keygen."""
    if not shutil.which("ssh-keygen"):
        return FIXED_ED25519
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "k")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "t@test", "-f", path], check=True)
        with open(path + ".pub") as f:
            return f.read().strip()


# ---------------------------------------------------------------------------------------------
# Nova registry


def test_generate_key_pair_returns_private_key_once(ecs, cph):
    name = kp_name()
    k = create(ecs, name)
    assert k.name == name
    assert k.type == "ssh"
    assert k.user_id
    assert k.public_key.startswith("ssh-rsa ")
    assert k.private_key.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert MD5_FP.match(k.fingerprint), k.fingerprint
    assert k.fingerprint == md5_of(k.public_key)
    if shutil.which("ssh-keygen"):
        # The private key is the one behind the public key, and OpenSSH agrees on the fingerprint.
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "id")
            with open(path, "w") as f:
                f.write(k.private_key)
            os.chmod(path, 0o600)
            pub = subprocess.run(["ssh-keygen", "-y", "-f", path], capture_output=True, text=True, check=True)
            assert pub.stdout.split()[:2] == k.public_key.split()[:2]
            with open(path + ".pub", "w") as f:
                f.write(k.public_key + "\n")
            fp = subprocess.run(
                ["ssh-keygen", "-l", "-E", "md5", "-f", path + ".pub"], capture_output=True, text=True, check=True
            )
            assert f"MD5:{k.fingerprint}" in fp.stdout
            bits = int(fp.stdout.split()[0])
            assert bits == 2048
    # Shown later without the private key, and never again with it.
    shown = ecs.nova_show_keypair(NovaShowKeypairRequest(keypair_name=name)).keypair
    assert shown.public_key == k.public_key
    assert shown.fingerprint == k.fingerprint
    assert shown.deleted is False
    assert isinstance(shown.id, int) and shown.id > 0
    assert shown.user_id == k.user_id
    assert not hasattr(shown, "private_key") or shown.private_key is None
    r = raw_request(
        cph.endpoint,
        "GET",
        f"/v2.1/{cph.project_id}/os-keypairs/{name}",
        credentials=BasicCredentials(cph.ak, cph.sk, cph.project_id),
    )
    assert r.status_code == 200
    assert "private_key" not in r.text and "PRIVATE KEY" not in r.text
    assert NOVA_TIME.match(r.json()["keypair"]["created_at"]), r.text


def test_import_public_key(ecs):
    name = kp_name()
    pk = new_ed25519()
    k = create(ecs, name, public_key=pk)
    assert k.public_key == pk
    assert k.private_key is None
    assert k.fingerprint == md5_of(pk)
    assert k.type == "ssh"
    assert name in names(ecs)


def test_list_show_delete_and_pages(ecs):
    made = sorted(kp_name("page") for _ in range(3))
    for n in made:
        create(ecs, n, public_key=new_ed25519())
    listed = names(ecs)
    assert listed == sorted(listed), "key pairs are listed by name"
    assert set(made) <= set(listed)
    after = names(ecs, marker=made[0], limit=2)
    i = listed.index(made[0])
    assert after == listed[i + 1 : i + 3]
    assert len(names(ecs, limit=1)) == 1
    expect_error(lambda: ecs.nova_list_keypairs(NovaListKeypairsRequest(limit=0)), 400, "400")
    expect_error(lambda: ecs.nova_list_keypairs(NovaListKeypairsRequest(marker=kp_name("none"))), 400, "400")
    ecs.nova_delete_keypair(NovaDeleteKeypairRequest(keypair_name=made[1]))
    assert made[1] not in names(ecs)
    expect_error(lambda: ecs.nova_show_keypair(NovaShowKeypairRequest(keypair_name=made[1])), 404, "404")
    expect_error(lambda: ecs.nova_delete_keypair(NovaDeleteKeypairRequest(keypair_name=made[1])), 404, "404")
    # The name is free again.
    create(ecs, made[1])


def test_duplicate_name_conflicts(ecs):
    name = kp_name()
    first = create(ecs, name)
    e = expect_error(lambda: create(ecs, name), 409, "409")
    assert name in e.error_msg
    e = expect_error(lambda: create(ecs, name, public_key=new_ed25519()), 409, "409")
    shown = ecs.nova_show_keypair(NovaShowKeypairRequest(keypair_name=name)).keypair
    assert shown.fingerprint == first.fingerprint


@pytest.mark.parametrize(
    "kw",
    [
        {"name": ""},
        {"name": "has space"},
        {"name": "dot.ted"},
        {"name": "k" * 65},
        {"public_key": "ssh-rsa"},
        {"public_key": "ssh-rsa not-base64!"},
        {"public_key": FIXED_ED25519.replace("ssh-ed25519", "ssh-rsa", 1)},
        {"public_key": "-----BEGIN CERTIFICATE-----"},
        {"type": "x509"},
        {"type": "pgp"},
        {"user_id": "someone-else"},
    ],
)
def test_invalid_create_requests(ecs, kw):
    name = kw.pop("name", kp_name("bad"))
    before = names(ecs)
    expect_error(lambda: create(ecs, name, **kw), 400, "400")
    assert names(ecs) == before


def test_malformed_body(cph):
    r = raw_request(
        cph.endpoint,
        "POST",
        f"/v2.1/{cph.project_id}/os-keypairs",
        credentials=BasicCredentials(cph.ak, cph.sk, cph.project_id),
        body={"keypair": {"name": 5}},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "400"


def test_key_pairs_are_project_scoped(ecs, other_ecs):
    name = kp_name()
    create(ecs, name)
    assert name not in names(other_ecs)
    expect_error(lambda: other_ecs.nova_show_keypair(NovaShowKeypairRequest(keypair_name=name)), 404, "404")
    expect_error(lambda: other_ecs.nova_delete_keypair(NovaDeleteKeypairRequest(keypair_name=name)), 404, "404")
    # The same name may exist in another project.
    theirs = create(other_ecs, name)
    assert theirs.name == name
    assert ecs.nova_show_keypair(NovaShowKeypairRequest(keypair_name=name)).keypair.fingerprint != theirs.fingerprint


# ---------------------------------------------------------------------------------------------
# UpdateKeypair


def update(client, pairs: list[tuple[str, str]]):
    body = UpdateKeypairRequestBody(servers=[ServerKeypair(server_id=s, keypair_name=k) for s, k in pairs])
    return client.update_keypair(UpdateKeypairRequest(body=body))


def server_keypair(client, server_id: str) -> str:
    return client.show_cloud_phone_server_detail(ShowCloudPhoneServerDetailRequest(server_id=server_id)).keypair_name


@pytest.fixture(scope="module")
def keyed_server(client, cph, offer, ecs):
    """A running server bought with a key pair."""
    first = kp_name("first")
    create(ecs, first)
    sid = buy_running_servers(client, cph, 1, offer, keypair_name=first)[0]
    return sid, first


def test_purchase_records_key_pair(client, keyed_server):
    sid, first = keyed_server
    assert server_keypair(client, sid) == first
    es = client.list_encode_servers(ListEncodeServersRequest(server_id=sid)).encode_servers
    assert [e.keypair_name for e in es] == [first]


def test_rotate_key_pair(client, ecs, keyed_server):
    sid, _ = keyed_server
    second = kp_name("second")
    create(ecs, second, public_key=new_ed25519())
    resp = update(client, [(sid, second)])
    assert len(resp.jobs) == 1
    assert_job_item_ok(resp.jobs[0], "server_id", sid)
    jobs = wait_jobs_succeeded(client, resp.request_id)
    assert [(j.server_id, j.status) for j in jobs] == [(sid, JOB_SUCCEEDED)]
    assert server_keypair(client, sid) == second
    es = client.list_encode_servers(ListEncodeServersRequest(server_id=sid)).encode_servers
    assert [e.keypair_name for e in es] == [second]


def test_update_keypair_items(client, ecs, keyed_server):
    sid, _ = keyed_server
    third = kp_name("third")
    create(ecs, third)
    unknown = missing_id()
    resp = update(client, [(unknown, third), (sid, third), (sid, third)])
    by_id = {j.server_id: j for j in resp.jobs}
    assert len(resp.jobs) == 2, resp.jobs
    assert_job_item_failed(by_id[unknown], "server_id", unknown, "CPS.0097")
    assert_job_item_ok(by_id[sid], "server_id", sid)
    wait_jobs_succeeded(client, resp.request_id)
    assert server_keypair(client, sid) == third


def test_update_keypair_request_errors(client, other_client, ecs, keyed_server):
    sid, _ = keyed_server
    before = server_keypair(client, sid)
    expect_error(lambda: update(client, [(sid, kp_name("missing"))]), 400, "CPS.0067")
    expect_error(lambda: update(client, [(sid, "")]), 400, "CPS.0068")
    expect_error(lambda: update(client, []), 400, "CPS.0094")
    expect_error(lambda: update(client, [("x" * 33, before)]), 400, "CPS.0094")
    expect_error(lambda: update(client, [("bad id!", before)]), 400, "CPS.0094")
    # One bad key pair fails the whole request: nothing changes.
    good = kp_name("good")
    create(ecs, good)
    expect_error(lambda: update(client, [(sid, good), (sid, kp_name("absent"))]), 400, "CPS.0067")
    assert server_keypair(client, sid) == before
    # A key pair of another project does not exist here; the server of another project neither.
    expect_error(lambda: update(other_client, [(sid, good)]), 400, "CPS.0067")


def test_key_pair_actions_are_authorized(cph):
    t = cph.create_tenant(("ecs:serverKeypairs:list",))
    c = ecs_client(cph.endpoint, t.access_key, t.secret_key, t.project_id)
    assert names(c) == []
    expect_error(lambda: create(c, kp_name()), 403)
    assert names(c) == []
