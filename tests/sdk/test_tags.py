"""Tags of cloud phone servers: BatchCreateTags, BatchDeleteTags, ListResourceTags,
ListProjectTags and ListResourceInstances (reference 5.8)."""

from __future__ import annotations

import uuid

import pytest

from cph_sdk import (
    BatchCreateTagsRequest,
    BatchCreateTagsRequestBody,
    BatchDeleteTagsRequest,
    BatchDeleteTagsRequestBody,
    ListProjectTagsRequest,
    ListResourceInstancesRequest,
    ListResourceInstancesRequestBody,
    ListResourceTagsRequest,
    Match,
    ShowCloudPhoneServerDetailRequest,
    Tag,
    Tags,
    buy_running_servers,
    expect_error,
    missing_id,
    raw_request,
    unique,
)
from huaweicloudsdkcore.auth.credentials import BasicCredentials

RT = "cph-server"


def prefix() -> str:
    """A key prefix no other test uses (keys: letters, digits, '-' and '_')."""
    return f"k{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------------------------
# helpers


def create(client, server_id, tags, resource_type=RT, action="create"):
    body = BatchCreateTagsRequestBody(action=action, tags=[Tag(key=k, value=v) for k, v in tags])
    return client.batch_create_tags(
        BatchCreateTagsRequest(resource_type=resource_type, resource_id=server_id, body=body)
    )


def delete(client, server_id, tags, resource_type=RT, action="delete"):
    body = BatchDeleteTagsRequestBody(action=action, tags=[Tag(key=k, value=v) for k, v in tags])
    return client.batch_delete_tags(
        BatchDeleteTagsRequest(resource_type=resource_type, resource_id=server_id, body=body)
    )


def tags_of(client, server_id, resource_type=RT) -> dict[str, str]:
    r = client.list_resource_tags(ListResourceTagsRequest(resource_type=resource_type, resource_id=server_id))
    pairs = [(t.key, t.value) for t in r.tags or []]
    assert [k for k, _ in pairs] == sorted(k for k, _ in pairs), "tags are sorted by key"
    return dict(pairs)


def project_tags(client, resource_type=RT, **kw) -> dict[str, list[str]]:
    r = client.list_project_tags(ListProjectTagsRequest(resource_type=resource_type, **kw))
    return {t.key: t.values for t in r.tags or []}


def instances(client, resource_type=RT, **body):
    if "tags" in body and body["tags"] is not None:
        body["tags"] = [Tags(key=k, values=vs) for k, vs in body["tags"]]
    if "matches" in body and body["matches"] is not None:
        body["matches"] = [Match(key=k, value=v) for k, v in body["matches"]]
    body.setdefault("action", "filter")
    return client.list_resource_instances(
        ListResourceInstancesRequest(resource_type=resource_type, body=ListResourceInstancesRequestBody(**body))
    )


def instance_ids(client, **body) -> list[str]:
    return [r.resource_id for r in instances(client, **body).resources or []]


def clear(client, server_id):
    have = tags_of(client, server_id)
    if have:
        delete(client, server_id, list(have.items()))


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def servers(client, cph, offer):
    """Two servers of the default project, used only by this module: [(id, name), ...]."""
    ids = buy_running_servers(client, cph, 2, offer, server_name=unique("tag"))
    out = []
    for sid in ids:
        d = client.show_cloud_phone_server_detail(ShowCloudPhoneServerDetailRequest(server_id=sid))
        out.append((sid, d.server_name))
    return out


@pytest.fixture
def sid(client, servers):
    """The first server, with no tags at the start and the end of the test."""
    s = servers[0][0]
    clear(client, s)
    yield s
    clear(client, s)


@pytest.fixture
def sid2(client, servers):
    s = servers[1][0]
    clear(client, s)
    yield s
    clear(client, s)


# ---------------------------------------------------------------------------------------------
# BatchCreateTags / ListResourceTags / BatchDeleteTags


def test_create_list_overwrite_delete(client, sid):
    r = create(client, sid, [("env", "dev"), ("team", "a b"), ("键", "值")])
    assert r.status_code == 204
    assert tags_of(client, sid) == {"env": "dev", "team": "a b", "键": "值"}
    # Setting a key again overwrites its value.
    assert create(client, sid, [("env", "prod")]).status_code == 204
    assert tags_of(client, sid) == {"env": "prod", "team": "a b", "键": "值"}
    # A delete removes only a tag with exactly that value; others are ignored.
    assert delete(client, sid, [("env", "dev"), ("team", "a b"), ("absent", "x")]).status_code == 204
    assert tags_of(client, sid) == {"env": "prod", "键": "值"}
    delete(client, sid, [("env", "prod"), ("键", "值")])
    assert tags_of(client, sid) == {}


def test_create_allowed_characters_and_lengths(client, sid):
    k127, v255 = "k" * 127, "v" * 255
    create(client, sid, [("a_.:=+-@ b", "x_.:=+-@ y"), (k127, v255), ("_SYS_upper", "ok")])
    assert tags_of(client, sid) == {"a_.:=+-@ b": "x_.:=+-@ y", k127: v255, "_SYS_upper": "ok"}


def test_create_204_has_no_body(cph, sid):
    creds = BasicCredentials(cph.ak, cph.sk, cph.project_id)
    r = raw_request(
        cph.endpoint,
        "POST",
        f"/v1/{cph.project_id}/{RT}/{sid}/tags/action",
        credentials=creds,
        body={"action": "create", "tags": [{"key": "raw", "value": "1"}]},
    )
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert r.headers.get("X-Request-Id")


def test_ten_tags_per_server(client, sid):
    create(client, sid, [(f"k{i}", "v") for i in range(10)])
    assert len(tags_of(client, sid)) == 10
    # Overwriting an existing key is fine at the limit.
    create(client, sid, [("k0", "changed")])
    # An eleventh key is refused, and nothing of that request is written.
    expect_error(lambda: create(client, sid, [("k1", "again"), ("k10", "v")]), 400, "CPS.0307")
    have = tags_of(client, sid)
    assert len(have) == 10 and have["k0"] == "changed" and have["k1"] == "v" and "k10" not in have


def test_more_than_ten_in_one_request(client, sid):
    expect_error(lambda: create(client, sid, [(f"k{i}", "v") for i in range(11)]), 400, "CPS.0307")
    expect_error(lambda: delete(client, sid, [(f"k{i}", "v") for i in range(11)]), 400, "CPS.0303")
    assert tags_of(client, sid) == {}


@pytest.mark.parametrize(
    "key",
    ["", " lead", "trail ", "a/b", "a*b", "a,b", "k" * 128],
)
def test_invalid_key(client, sid, key):
    for call in (create, delete):
        expect_error(lambda: call(client, sid, [("ok", "1"), (key, "v")]), 400, "CPS.0304")
    assert tags_of(client, sid) == {}


def test_reserved_key_prefix(client, sid):
    expect_error(lambda: create(client, sid, [("ok", "1"), ("_sys_x", "v")]), 400, "CPS.0306")
    expect_error(lambda: delete(client, sid, [("_sys_x", "v")]), 400, "CPS.0306")
    assert tags_of(client, sid) == {}


@pytest.mark.parametrize("value", ["", " lead", "trail ", "a/b", "a#b", "v" * 256])
def test_invalid_value(client, sid, value):
    for call in (create, delete):
        expect_error(lambda: call(client, sid, [("ok", "1"), ("k", value)]), 400, "CPS.0305")
    assert tags_of(client, sid) == {}


def test_missing_key_or_value(client, sid):
    for call in (client.batch_create_tags, client.batch_delete_tags):
        req_cls = BatchCreateTagsRequest if call == client.batch_create_tags else BatchDeleteTagsRequest
        body_cls = BatchCreateTagsRequestBody if call == client.batch_create_tags else BatchDeleteTagsRequestBody
        action = "create" if call == client.batch_create_tags else "delete"
        for tag, code in ((Tag(value="v"), "CPS.0304"), (Tag(key="k"), "CPS.0305")):
            expect_error(
                lambda: call(req_cls(resource_type=RT, resource_id=sid, body=body_cls(action=action, tags=[tag]))),
                400,
                code,
            )
    assert tags_of(client, sid) == {}


def test_invalid_tag_lists(client, sid):
    expect_error(lambda: create(client, sid, []), 400, "CPS.0303")
    expect_error(lambda: delete(client, sid, []), 400, "CPS.0303")
    expect_error(
        lambda: client.batch_create_tags(
            BatchCreateTagsRequest(resource_type=RT, resource_id=sid, body=BatchCreateTagsRequestBody(action="create"))
        ),
        400,
        "CPS.0303",
    )
    # A key named twice in one request.
    expect_error(lambda: create(client, sid, [("a", "1"), ("a", "2")]), 400, "CPS.0303")
    expect_error(lambda: delete(client, sid, [("a", "1"), ("a", "2")]), 400, "CPS.0303")
    assert tags_of(client, sid) == {}


def test_invalid_action(client, sid):
    expect_error(lambda: create(client, sid, [("a", "1")], action="update"), 400, "CPS.0047")
    expect_error(lambda: delete(client, sid, [("a", "1")], action="Create"), 400, "CPS.0047")
    expect_error(lambda: create(client, sid, [("a", "1")], action=None), 400, "CPS.0047")
    assert tags_of(client, sid) == {}


def test_invalid_resource_type(client, sid):
    expect_error(lambda: create(client, sid, [("a", "1")], resource_type="cph-phone"), 400, "CPS.0300")
    expect_error(lambda: delete(client, sid, [("a", "1")], resource_type="ecs"), 400, "CPS.0300")
    expect_error(lambda: tags_of(client, sid, resource_type="cph-phone"), 400, "CPS.0300")
    expect_error(lambda: project_tags(client, resource_type="ecs"), 400, "CPS.0300")
    expect_error(lambda: instances(client, resource_type="ecs"), 400, "CPS.0300")
    assert tags_of(client, sid) == {}


def test_unknown_and_malformed_resource(client):
    gone = missing_id()
    expect_error(lambda: create(client, gone, [("a", "1")]), 404, "CPS.0302")
    expect_error(lambda: delete(client, gone, [("a", "1")]), 404, "CPS.0302")
    expect_error(lambda: tags_of(client, gone), 404, "CPS.0302")
    bad = "bad!id"
    expect_error(lambda: create(client, bad, [("a", "1")]), 400, "CPS.0301")
    expect_error(lambda: tags_of(client, bad), 400, "CPS.0301")


def test_wrong_json_types(cph, sid):
    creds = BasicCredentials(cph.ak, cph.sk, cph.project_id)
    path = f"/v1/{cph.project_id}/{RT}/{sid}/tags/action"
    for body in ({"action": "create", "tags": "env=dev"}, {"action": "create", "tags": [{"key": 1, "value": "v"}]}):
        r = raw_request(cph.endpoint, "POST", path, credentials=creds, body=body)
        assert r.status_code == 400, r.text
        assert r.json()["error_code"] == "CPS.0303"
    r = raw_request(cph.endpoint, "POST", path, credentials=creds, body={"action": 1, "tags": []})
    assert r.status_code == 400 and r.json()["error_code"] == "CPS.0047"
    # ListResourceInstances: offset and limit are strings; each part has its own code.
    path = f"/v1/{cph.project_id}/{RT}/resource_instances/action"
    for body, code in (
        ({"action": "filter", "offset": 5}, "CPS.0002"),
        ({"action": "filter", "limit": 10}, "CPS.0002"),
        ({"action": "filter", "tags": [{"key": "k", "values": "v"}]}, "CPS.0315"),
        ({"action": "filter", "tags": {"key": "k"}}, "CPS.0303"),
        ({"action": "filter", "matches": "resource_name"}, "CPS.0311"),
        ({"action": "filter", "matches": [{"key": 1, "value": "x"}]}, "CPS.0313"),
        ({"action": "filter", "matches": [{"key": "resource_name", "value": 1}]}, "CPS.0314"),
        ({"action": "filter", "without_any_tag": "yes"}, "CPS.0303"),
    ):
        r = raw_request(cph.endpoint, "POST", path, credentials=creds, body=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error_code"] == code, (body, r.text)
    r = raw_request(cph.endpoint, "POST", path, credentials=creds, body={"action": "filter", "offset": "0", "limit": "1"})
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"resources", "total_count"}


# ---------------------------------------------------------------------------------------------
# ListProjectTags


def test_project_tags(client, sid, sid2):
    p = prefix()
    create(client, sid, [(f"{p}-env", "dev"), (f"{p}-team", "a")])
    create(client, sid2, [(f"{p}-env", "prod"), (f"{p}-team", "a")])
    mine = {k: v for k, v in project_tags(client).items() if k.startswith(p)}
    assert mine == {f"{p}-env": ["dev", "prod"], f"{p}-team": ["a"]}
    # A deleted tag's value disappears from the project's tags.
    delete(client, sid2, [(f"{p}-env", "prod")])
    assert project_tags(client)[f"{p}-env"] == ["dev"]


def test_project_tags_paging(client, sid):
    p = prefix()
    create(client, sid, [(f"{p}-{i}", "v") for i in range(3)])
    full = client.list_project_tags(ListProjectTagsRequest(resource_type=RT))
    keys = [t.key for t in full.tags]
    assert keys == sorted(keys)
    assert full.total_count == len(keys) >= 3
    page = client.list_project_tags(ListProjectTagsRequest(resource_type=RT, offset=1, limit=2))
    assert [t.key for t in page.tags] == keys[1:3]
    assert page.total_count == full.total_count
    for kw in ({"limit": 0}, {"limit": 101}, {"offset": -1}):
        expect_error(lambda: client.list_project_tags(ListProjectTagsRequest(resource_type=RT, **kw)), 400, "CPS.0002")


# ---------------------------------------------------------------------------------------------
# ListResourceInstances


def test_instances_filter_and_count(client, servers, sid, sid2):
    p = prefix()
    env, team = f"{p}-env", f"{p}-team"
    create(client, sid, [(env, "dev"), (team, "a")])
    create(client, sid2, [(env, "prod")])
    # Values of one key are OR-ed.
    assert sorted(instance_ids(client, tags=[(env, ["dev", "prod"])])) == sorted([sid, sid2])
    assert instance_ids(client, tags=[(env, ["prod"])]) == [sid2]
    # An empty value list means any value.
    assert sorted(instance_ids(client, tags=[(env, [])])) == sorted([sid, sid2])
    # Keys are AND-ed.
    assert instance_ids(client, tags=[(env, []), (team, ["a"])]) == [sid]
    assert instance_ids(client, tags=[(env, ["prod"]), (team, [])]) == []
    # The resource carries its tags and name.
    r = instances(client, tags=[(team, [])])
    assert r.total_count == 1
    (res,) = r.resources
    assert res.resource_id == sid and res.resource_name == servers[0][1]
    assert sorted((t.key, t.value) for t in res.tags) == [(env, "dev"), (team, "a")]
    # count: the total only.
    c = instances(client, action="count", tags=[(env, [])])
    assert c.total_count == 2 and not c.resources
    # count ignores offset and limit.
    assert instances(client, action="count", tags=[(env, [])], offset="x", limit="0").total_count == 2


def test_instances_matches_and_without_any_tag(client, servers, sid, sid2):
    p = prefix()
    create(client, sid, [(f"{p}-a", "1")])
    name1, name2 = servers[0][1], servers[1][1]
    # Exact match on the name.
    assert instance_ids(client, matches=[("resource_name", name2)]) == [sid2]
    assert instance_ids(client, matches=[("resource_name", name2[:-1])]) == []
    assert instance_ids(client, matches=[("resource_name", name1)], tags=[(f"{p}-a", ["1"])]) == [sid]
    assert instance_ids(client, matches=[("resource_name", name2)], tags=[(f"{p}-a", [])]) == []
    # Without any tag: untagged servers only; the tags filter is then ignored.
    untagged = instance_ids(client, without_any_tag=True)
    assert sid2 in untagged and sid not in untagged
    assert instance_ids(client, without_any_tag=True, matches=[("resource_name", name2)], tags=[(f"{p}-a", [])]) == [
        sid2
    ]
    assert instances(client, action="count", without_any_tag=True, matches=[("resource_name", name1)]).total_count == 0


def test_instances_paging(client, sid, sid2):
    p = prefix()
    create(client, sid, [(p, "x")])
    create(client, sid2, [(p, "x")])
    both = instance_ids(client, tags=[(p, [])])
    assert sorted(both) == sorted([sid, sid2])
    r = instances(client, tags=[(p, [])], offset="1", limit="1")
    assert [x.resource_id for x in r.resources] == both[1:] and r.total_count == 2
    assert instance_ids(client, tags=[(p, [])], offset="0", limit="1") == both[:1]
    assert instance_ids(client, tags=[(p, [])], offset="5") == []
    for offset, limit in (("-1", None), ("x", None), (None, "0"), (None, "1001"), (None, "-1"), (None, "ten")):
        expect_error(lambda: instances(client, offset=offset, limit=limit), 400, "CPS.0002")
    assert instances(client, limit="1000").total_count >= 2


def test_instances_validation(client):
    expect_error(lambda: instances(client, action="list"), 400, "CPS.0047")
    expect_error(lambda: instances(client, action=None), 400, "CPS.0047")
    expect_error(lambda: instances(client, tags=[(f"k{i}", []) for i in range(11)]), 400, "CPS.0309")
    expect_error(lambda: instances(client, tags=[("k", [str(i) for i in range(11)])]), 400, "CPS.0310")
    expect_error(lambda: instances(client, tags=[("", [])]), 400, "CPS.0304")
    expect_error(lambda: instances(client, tags=[("k" * 128, [])]), 400, "CPS.0304")
    expect_error(lambda: instances(client, tags=[("k", ["v" * 256])]), 400, "CPS.0305")
    expect_error(lambda: instances(client, tags=[("k", ["1", "1"])]), 400, "CPS.0315")
    expect_error(lambda: instances(client, tags=[("k", []), ("k", ["1"])]), 400, "CPS.0303")
    missing_values = ListResourceInstancesRequestBody(action="filter", tags=[Tags(key="k")])
    expect_error(
        lambda: client.list_resource_instances(ListResourceInstancesRequest(resource_type=RT, body=missing_values)),
        400,
        "CPS.0315",
    )
    expect_error(lambda: instances(client, matches=[("server_name", "x")]), 400, "CPS.0313")
    expect_error(lambda: instances(client, matches=[("resource_name", "")]), 400, "CPS.0314")
    expect_error(lambda: instances(client, matches=[("resource_name", "n" * 256)]), 400, "CPS.0314")
    expect_error(lambda: instances(client, matches=[("resource_name", "a"), ("resource_name", "b")]), 400, "CPS.0311")
    no_value = ListResourceInstancesRequestBody(action="filter", matches=[Match(key="resource_name")])
    expect_error(
        lambda: client.list_resource_instances(ListResourceInstancesRequest(resource_type=RT, body=no_value)),
        400,
        "CPS.0312",
    )
    # Limits are inclusive.
    instances(client, tags=[(f"k{i}", [str(j) for j in range(10)]) for i in range(10)])


# ---------------------------------------------------------------------------------------------
# Other projects and permissions


def test_other_project_cannot_see_or_touch_tags(client, other_client, sid):
    p = prefix()
    create(client, sid, [(p, "secret")])
    gone = missing_id()
    # Another project's server answers exactly like a server that does not exist.
    for target in (sid, gone):
        e1 = expect_error(lambda: tags_of(other_client, target), 404, "CPS.0302")
        e2 = expect_error(lambda: create(other_client, target, [(p, "stolen")]), 404, "CPS.0302")
        e3 = expect_error(lambda: delete(other_client, target, [(p, "secret")]), 404, "CPS.0302")
        assert {e1.error_msg, e2.error_msg, e3.error_msg} == {"The resource_id is not found."}
    assert tags_of(client, sid) == {p: "secret"}
    # Its lists hold nothing of ours.
    assert p not in project_tags(other_client)
    assert instance_ids(other_client, tags=[(p, [])]) == []
    assert sid not in instance_ids(other_client)
    assert instances(other_client, action="count", matches=[("resource_name", "x")]).total_count == 0
    assert instance_ids(client, tags=[(p, [])]) == [sid]


def test_create_and_delete_are_authorized_separately(cph, client, sid):
    t = cph.create_tenant(("cph:resourceTags:create", "cph:resourceTags:list"))
    c = cph.client_for(t)
    # Allowed to create: gets as far as the (absent, foreign) resource.
    expect_error(lambda: create(c, sid, [("a", "1")]), 404, "CPS.0302")
    expect_error(lambda: tags_of(c, sid), 404, "CPS.0302")
    # Not allowed to delete, list project tags or list instances.
    expect_error(lambda: delete(c, sid, [("a", "1")]), 403, "CPS.0001")
    expect_error(lambda: project_tags(c), 403, "CPS.0001")
    expect_error(lambda: instances(c), 403, "CPS.0001")
