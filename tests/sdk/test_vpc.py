"""VPC v1 (CreateVpc, ListVpcs, ShowVpc, DeleteVpc, CreateSubnet, ListSubnets, ShowSubnet,
DeleteSubnet) through the official VPC SDK (huaweicloudsdkvpc, v2 module) on the same endpoint."""

from __future__ import annotations

import re
import uuid

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkvpc.v2 import (
    CreateSubnetOption,
    CreateSubnetRequest,
    CreateSubnetRequestBody,
    CreateVpcOption,
    CreateVpcRequest,
    CreateVpcRequestBody,
    DeleteSubnetRequest,
    DeleteVpcRequest,
    ListSubnetsRequest,
    ListVpcsRequest,
    ShowSubnetRequest,
    ShowVpcRequest,
    VpcClient,
)

from cph_sdk import buy_server, expect_error, raw_request, unique

VPC_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


class _VpcTime:
    """VPC v1 times on the wire are `YYYY-MM-DDThh:mm:ss` (no fraction, no zone). The SDK hands
    them over as strings, or as datetimes when python-dateutil is installed."""

    @staticmethod
    def match(v):
        import datetime

        if isinstance(v, datetime.datetime):
            return v.microsecond == 0
        return VPC_TIME_RE.match(v)


VPC_TIME = _VpcTime()


def vpc_client(endpoint: str, ak: str, sk: str, project_id: str) -> VpcClient:
    config = HttpConfig.get_default_config()
    config.timeout = (5, 60)
    config.retry_times = 0
    return (
        VpcClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(ak, sk, project_id))
        .with_endpoints([endpoint])
        .build()
    )


@pytest.fixture(scope="module")
def vpc(cph) -> VpcClient:
    return vpc_client(cph.endpoint, cph.ak, cph.sk, cph.project_id)


@pytest.fixture(scope="module")
def other_vpc(cph, other_tenant) -> VpcClient:
    t = other_tenant
    return vpc_client(cph.endpoint, t.access_key, t.secret_key, t.project_id)


def create_vpc(vpc: VpcClient, cidr: str, name: str | None = None, **kw):
    opt = CreateVpcOption(cidr=cidr, name=name if name is not None else unique("vpc"), **kw)
    return vpc.create_vpc(CreateVpcRequest(body=CreateVpcRequestBody(vpc=opt))).vpc


def create_subnet(vpc: VpcClient, vpc_id: str, cidr: str, gateway: str, name: str | None = None, **kw):
    opt = CreateSubnetOption(
        name=name if name is not None else unique("subnet"), cidr=cidr, vpc_id=vpc_id, gateway_ip=gateway, **kw
    )
    return vpc.create_subnet(CreateSubnetRequest(body=CreateSubnetRequestBody(subnet=opt))).subnet


def all_vpc_ids(vpc: VpcClient) -> list[str]:
    return [v.id for v in vpc.list_vpcs(ListVpcsRequest()).vpcs or []]


def random_16() -> str:
    """A /16 inside 10.0.0.0/8 that other tests are unlikely to use."""
    return f"10.{uuid.uuid4().int % 250 + 3}.0.0/16"


# ---------------------------------------------------------------------------------------------
# Default network


def test_default_vpc_and_subnet_are_ordinary_objects(vpc, cph):
    v = vpc.show_vpc(ShowVpcRequest(vpc_id=cph.default_vpc_id)).vpc
    assert v.id == cph.default_vpc_id
    assert v.cidr == "172.16.0.0/12"
    assert v.status == "OK"
    assert v.tenant_id == cph.project_id
    assert VPC_TIME.match(v.created_at), v.created_at
    assert cph.default_vpc_id in all_vpc_ids(vpc)
    s = vpc.show_subnet(ShowSubnetRequest(subnet_id=cph.default_subnet_id)).subnet
    assert s.vpc_id == cph.default_vpc_id
    assert s.cidr == "172.16.0.0/16"
    assert s.gateway_ip == "172.16.0.1"
    assert s.status == "ACTIVE"
    assert s.neutron_network_id == s.id
    listed = vpc.list_subnets(ListSubnetsRequest(vpc_id=cph.default_vpc_id)).subnets
    assert cph.default_subnet_id in [x.id for x in listed]


# ---------------------------------------------------------------------------------------------
# VPCs


def test_create_show_list_delete_vpc(vpc, cph):
    name = unique("vpc")
    v = create_vpc(vpc, "192.168.0.0/16", name=name, description="test network")
    assert v.name == name
    assert v.cidr == "192.168.0.0/16"
    assert v.description == "test network"
    assert v.status == "OK"
    assert v.enterprise_project_id == "0"
    assert v.tenant_id == cph.project_id
    assert v.routes == []
    assert VPC_TIME.match(v.created_at) and VPC_TIME.match(v.updated_at)
    uuid.UUID(v.id)
    shown = vpc.show_vpc(ShowVpcRequest(vpc_id=v.id)).vpc
    assert (shown.id, shown.name, shown.cidr) == (v.id, name, "192.168.0.0/16")
    assert vpc.list_vpcs(ListVpcsRequest(id=v.id)).vpcs[0].name == name
    vpc.delete_vpc(DeleteVpcRequest(vpc_id=v.id))
    expect_error(lambda: vpc.show_vpc(ShowVpcRequest(vpc_id=v.id)), 404, "CPS.0236")
    assert v.id not in all_vpc_ids(vpc)
    expect_error(lambda: vpc.delete_vpc(DeleteVpcRequest(vpc_id=v.id)), 404, "CPS.0236")


@pytest.mark.parametrize(
    "cidr",
    [
        "8.8.0.0/16",  # not private
        "10.0.0.0/7",  # wider than the private range
        "172.16.0.0/11",
        "192.168.0.0/15",
        "10.0.0.0/29",  # narrower than /28
        "10.0.0.1/16",  # host bits set
        "10.0.0.0",  # no mask
        "10.0.0.0/33",
        "vpc",
        "",
    ],
)
def test_vpc_cidr_rules(vpc, cidr):
    before = all_vpc_ids(vpc)
    expect_error(lambda: create_vpc(vpc, cidr), 400, "CPS.0197")
    assert all_vpc_ids(vpc) == before


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "172.31.255.240/28", "192.168.7.0/24"])
def test_vpc_cidr_edges_accepted(vpc, cidr):
    v = create_vpc(vpc, cidr)
    assert v.cidr == cidr
    vpc.delete_vpc(DeleteVpcRequest(vpc_id=v.id))


def test_vpc_name_and_description_rules(vpc):
    before = all_vpc_ids(vpc)
    expect_error(lambda: create_vpc(vpc, "10.1.0.0/16", name="bad name"), 400, "VPC.0101")
    expect_error(lambda: create_vpc(vpc, "10.1.0.0/16", name="x" * 65), 400, "VPC.0101")
    expect_error(lambda: create_vpc(vpc, "10.1.0.0/16", description="<b>"), 400, "VPC.0101")
    expect_error(lambda: create_vpc(vpc, "10.1.0.0/16", enterprise_project_id="nope"), 400, "CPS.0316")
    expect_error(lambda: create_vpc(vpc, "10.1.0.0/16", tags=["no-separator"]), 400, "VPC.0101")
    assert all_vpc_ids(vpc) == before
    # Chinese characters and dots are allowed; a name is unique in the project.
    name = "网络." + unique("v")
    v = create_vpc(vpc, "10.1.0.0/16", name=name, tags=["env*test"])
    assert v.name == name
    expect_error(lambda: create_vpc(vpc, "10.2.0.0/16", name=name), 400, "VPC.0115")
    # An empty name may repeat.
    a = create_vpc(vpc, "10.3.0.0/16", name="")
    b = create_vpc(vpc, "10.4.0.0/16", name="")
    for x in (v, a, b):
        vpc.delete_vpc(DeleteVpcRequest(vpc_id=x.id))


def test_malformed_vpc_bodies(vpc, cph):
    creds = BasicCredentials(cph.ak, cph.sk, cph.project_id)
    path = f"/v1/{cph.project_id}/vpcs"
    for body, code in [
        ({}, "VPC.0101"),
        ({"vpc": {"cidr": "10.9.0.0/16", "name": 5}}, "VPC.0101"),
        ({"vpc": "x"}, "VPC.0101"),
    ]:
        r = raw_request(cph.endpoint, "POST", path, credentials=creds, body=body)
        assert r.status_code == 400, r.text
        assert r.json()["error_code"] == code, r.text
        assert r.headers.get("X-Request-Id")


def test_list_vpcs_pages_with_marker(vpc):
    made = [create_vpc(vpc, f"10.{60 + i}.0.0/16") for i in range(3)]
    try:
        ids = all_vpc_ids(vpc)
        pos = [ids.index(v.id) for v in made]
        first = vpc.list_vpcs(ListVpcsRequest(limit=1)).vpcs
        assert len(first) == 1 and first[0].id == ids[0]
        after = vpc.list_vpcs(ListVpcsRequest(marker=made[0].id, limit=2)).vpcs
        assert [v.id for v in after] == ids[pos[0] + 1 : pos[0] + 3]
        expect_error(lambda: vpc.list_vpcs(ListVpcsRequest(limit=0)), 400, "CPS.0002")
        expect_error(lambda: vpc.list_vpcs(ListVpcsRequest(marker=str(uuid.uuid4()))), 400, "CPS.0002")
    finally:
        for v in made:
            vpc.delete_vpc(DeleteVpcRequest(vpc_id=v.id))


# ---------------------------------------------------------------------------------------------
# Subnets


@pytest.fixture
def net(vpc):
    """A fresh VPC 10.x.0.0/16, deleted with its remaining subnets afterwards."""
    v = create_vpc(vpc, random_16())
    yield v
    for s in vpc.list_subnets(ListSubnetsRequest(vpc_id=v.id)).subnets or []:
        vpc.delete_subnet(DeleteSubnetRequest(vpc_id=v.id, subnet_id=s.id))
    vpc.delete_vpc(DeleteVpcRequest(vpc_id=v.id))


def prefix(v) -> str:
    """'10.x' of a 10.x.0.0/16 VPC."""
    return ".".join(v.cidr.split(".")[:2])


def test_create_show_list_delete_subnet(vpc, net, cph):
    p = prefix(net)
    s = create_subnet(
        vpc, net.id, f"{p}.1.0/24", f"{p}.1.1", primary_dns="100.125.1.250", secondary_dns="8.8.8.8"
    )
    assert s.vpc_id == net.id
    assert s.cidr == f"{p}.1.0/24"
    assert s.gateway_ip == f"{p}.1.1"
    assert s.status == "ACTIVE"
    assert s.dhcp_enable is True
    assert s.ipv6_enable is False
    assert s.primary_dns == "100.125.1.250" and s.secondary_dns == "8.8.8.8"
    assert s.dns_list == ["100.125.1.250", "8.8.8.8"]
    assert s.neutron_network_id == s.id and s.neutron_subnet_id and s.neutron_subnet_id != s.id
    assert s.tenant_id == cph.project_id
    assert s.available_ip_address_count == 253
    assert VPC_TIME.match(s.created_at)
    shown = vpc.show_subnet(ShowSubnetRequest(subnet_id=s.id)).subnet
    assert (shown.id, shown.cidr, shown.neutron_subnet_id) == (s.id, s.cidr, s.neutron_subnet_id)
    listed = vpc.list_subnets(ListSubnetsRequest(vpc_id=net.id)).subnets
    assert [x.id for x in listed] == [s.id]
    # Subnets of all VPCs without a filter.
    assert s.id in [x.id for x in vpc.list_subnets(ListSubnetsRequest()).subnets]
    vpc.delete_subnet(DeleteSubnetRequest(vpc_id=net.id, subnet_id=s.id))
    expect_error(lambda: vpc.show_subnet(ShowSubnetRequest(subnet_id=s.id)), 404, "CPS.0229")
    expect_error(
        lambda: vpc.delete_subnet(DeleteSubnetRequest(vpc_id=net.id, subnet_id=s.id)), 404, "CPS.0229"
    )


def test_subnet_cidr_rules(vpc, net):
    p = prefix(net)
    base = create_subnet(vpc, net.id, f"{p}.8.0/22", f"{p}.8.1")
    cases = [
        (f"{p}.20.0/29", f"{p}.20.1", "CPS.0191"),  # mask longer than /28
        (f"{p}.20.1/24", f"{p}.20.2", "CPS.0191"),  # host bits set
        ("10.255.255.0/24", "10.255.255.1", "CPS.0191"),  # outside the VPC
        (f"{p}.9.0/24", f"{p}.9.1", "CPS.0194"),  # inside the existing /22
        (f"{p}.0.0/16", f"{p}.0.1", "CPS.0194"),  # contains the existing /22
        (f"{p}.30.0/24", f"{p}.31.1", "CPS.0227"),  # gateway outside the subnet
        (f"{p}.30.0/24", f"{p}.30.0", "CPS.0227"),  # gateway = network address
        (f"{p}.30.0/24", f"{p}.30.255", "CPS.0227"),  # gateway = broadcast
        (f"{p}.30.0/24", "gateway", "CPS.0227"),
    ]
    for cidr, gw, code in cases:
        expect_error(lambda: create_subnet(vpc, net.id, cidr, gw), 400, code)
    assert [s.id for s in vpc.list_subnets(ListSubnetsRequest(vpc_id=net.id)).subnets] == [base.id]
    # Adjacent, non-overlapping blocks and the /28 edge are fine.
    a = create_subnet(vpc, net.id, f"{p}.12.0/24", f"{p}.12.1")
    b = create_subnet(vpc, net.id, f"{p}.13.16/28", f"{p}.13.17")
    assert b.available_ip_address_count == 13
    ids = [s.id for s in vpc.list_subnets(ListSubnetsRequest(vpc_id=net.id)).subnets]
    assert ids == [base.id, a.id, b.id]
    # Marker pages within the VPC.
    page = vpc.list_subnets(ListSubnetsRequest(vpc_id=net.id, marker=base.id, limit=1)).subnets
    assert [s.id for s in page] == [a.id]


def test_subnet_parameter_rules(vpc, net):
    p = prefix(net)
    cidr, gw = f"{p}.40.0/24", f"{p}.40.1"
    expect_error(lambda: create_subnet(vpc, net.id, cidr, gw, name=""), 400, "VPC.0201")
    expect_error(lambda: create_subnet(vpc, net.id, cidr, gw, name="a b"), 400, "VPC.0201")
    expect_error(lambda: create_subnet(vpc, net.id, cidr, gw, description="a>b"), 400, "VPC.0201")
    expect_error(lambda: create_subnet(vpc, net.id, cidr, gw, primary_dns="dns"), 400, "VPC.0201")
    expect_error(lambda: create_subnet(vpc, net.id, cidr, gw, ipv6_enable=True), 400, "CPS.0319")
    expect_error(lambda: create_subnet(vpc, net.id, cidr, gw, availability_zone="nowhere-9z"), 400, "CPS.0211")
    expect_error(lambda: create_subnet(vpc, str(uuid.uuid4()), cidr, gw), 404, "CPS.0236")
    expect_error(lambda: create_subnet(vpc, "", cidr, gw), 400, "CPS.0223")
    assert not vpc.list_subnets(ListSubnetsRequest(vpc_id=net.id)).subnets
    s = create_subnet(vpc, net.id, cidr, gw, dhcp_enable=False, dns_list=["1.1.1.1"])
    assert s.dhcp_enable is False
    assert s.primary_dns == "1.1.1.1" and s.dns_list == ["1.1.1.1"]


def test_vpc_with_subnets_cannot_be_deleted(vpc, net):
    p = prefix(net)
    s = create_subnet(vpc, net.id, f"{p}.50.0/24", f"{p}.50.1")
    expect_error(lambda: vpc.delete_vpc(DeleteVpcRequest(vpc_id=net.id)), 409, "VPC.0104")
    assert vpc.show_vpc(ShowVpcRequest(vpc_id=net.id)).vpc.id == net.id
    other = create_vpc(vpc, "192.168.100.0/24")
    try:
        # The subnet is not one of that VPC's.
        expect_error(
            lambda: vpc.delete_subnet(DeleteSubnetRequest(vpc_id=other.id, subnet_id=s.id)), 400, "CPS.0228"
        )
    finally:
        vpc.delete_vpc(DeleteVpcRequest(vpc_id=other.id))
    vpc.delete_subnet(DeleteSubnetRequest(vpc_id=net.id, subnet_id=s.id))


def test_subnet_in_use_by_servers_cannot_be_deleted(vpc, client, cph, offer):
    v = create_vpc(vpc, "192.168.0.0/16")
    s = create_subnet(vpc, v.id, "192.168.10.0/24", "192.168.10.1")
    resp = buy_server(client, cph, 1, offer, tenant_vpc_id=v.id, nics=[{"subnet_id": s.id}])
    assert resp.server_ids
    expect_error(
        lambda: vpc.delete_subnet(DeleteSubnetRequest(vpc_id=v.id, subnet_id=s.id)), 409, "VPC.0209"
    )
    expect_error(lambda: vpc.delete_vpc(DeleteVpcRequest(vpc_id=v.id)), 409, "VPC.0104")
    shown = vpc.show_subnet(ShowSubnetRequest(subnet_id=s.id)).subnet
    assert shown.available_ip_address_count == 252
    # The default subnet holds the session's servers too, once any were bought there.
    buy_server(client, cph, 1, offer)
    expect_error(
        lambda: vpc.delete_subnet(
            DeleteSubnetRequest(vpc_id=cph.default_vpc_id, subnet_id=cph.default_subnet_id)
        ),
        409,
        "VPC.0209",
    )


def test_vpcs_are_project_scoped(vpc, other_vpc, cph):
    v = create_vpc(vpc, "192.168.200.0/24")
    try:
        assert v.id not in all_vpc_ids(other_vpc)
        assert cph.default_vpc_id not in all_vpc_ids(other_vpc)
        expect_error(lambda: other_vpc.show_vpc(ShowVpcRequest(vpc_id=v.id)), 404, "CPS.0236")
        expect_error(lambda: other_vpc.delete_vpc(DeleteVpcRequest(vpc_id=v.id)), 404, "CPS.0236")
        expect_error(
            lambda: other_vpc.show_subnet(ShowSubnetRequest(subnet_id=cph.default_subnet_id)), 404, "CPS.0229"
        )
        expect_error(
            lambda: create_subnet(other_vpc, v.id, "192.168.200.0/25", "192.168.200.1"), 404, "CPS.0236"
        )
        # The other project's own default network is separate.
        theirs = all_vpc_ids(other_vpc)
        assert theirs and not set(theirs) & set(all_vpc_ids(vpc))
    finally:
        vpc.delete_vpc(DeleteVpcRequest(vpc_id=v.id))


def test_vpc_actions_are_authorized(cph):
    t = cph.create_tenant(("vpc:vpcs:list",))
    c = vpc_client(cph.endpoint, t.access_key, t.secret_key, t.project_id)
    assert len(all_vpc_ids(c)) == 1  # the project's default VPC
    expect_error(lambda: create_vpc(c, "10.0.0.0/16"), 403)
    expect_error(lambda: c.list_subnets(ListSubnetsRequest()), 403)
    assert len(all_vpc_ids(c)) == 1
