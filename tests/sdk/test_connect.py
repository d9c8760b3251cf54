"""Phone connections: BatchShowPhoneConnectInfos hands out a relay address and a short-lived
ticket per phone; the connect relay (a WebSocket carrying raw ADB bytes) verifies the ticket
before upgrading and authenticates to the phone itself, so an ADB client without any key gets a
working session. Tickets are bound to their phone, single-use, and tamper-evident; refusals are
audited. Encode servers publish the SSH gateway and the relay, and both answer."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlencode

import pytest
import websockets.exceptions
import websockets.sync.client
from adb_shell.adb_device import AdbDevice
from adb_shell.transport.base_transport import BaseTransport
from huaweicloudsdkcph.v1 import (
    BatchShowPhoneConnectInfosRequest,
    ConnectionRequestBody,
    ListEncodeServersRequest,
)

from cph_sdk import expect_error, missing_id

CLIENT_TYPES = ["ANDROID", "WINDOWS", "H5_MOBILE", "H5_PC", "IOS"]


def connect_infos(client, phone_ids, client_type="H5_PC"):
    return client.batch_show_phone_connect_infos(
        BatchShowPhoneConnectInfosRequest(
            body=ConnectionRequestBody(phone_ids=phone_ids, client_type=client_type)
        )
    )


def relay_url(info, phone_id: str, **override) -> str:
    a = info.access_info
    q = {"phone_id": phone_id, "session_id": a.session_id, "timestamp": a.timestamp, "ticket": a.ticket}
    q.update(override)
    return f"ws://{a.access_ip}:{a.access_port}/v1/connect?{urlencode(q)}"


class WebSocketTransport(BaseTransport):
    """adb_shell transport over the relay: raw ADB bytes in binary WebSocket messages."""

    def __init__(self, url: str):
        self.url = url
        self.ws = None
        self.buf = b""

    def connect(self, transport_timeout_s):
        self.cm = websockets.sync.client.connect(self.url, open_timeout=transport_timeout_s or 10, max_size=None)
        self.ws = self.cm.__enter__()

    def close(self):
        if self.ws is not None:
            self.cm.__exit__(None, None, None)
            self.ws = None

    def bulk_read(self, numbytes, transport_timeout_s):
        while not self.buf:
            msg = self.ws.recv(timeout=transport_timeout_s or 10)
            assert isinstance(msg, bytes), msg
            self.buf += msg
        out, self.buf = self.buf[:numbytes], self.buf[numbytes:]
        return out

    def bulk_write(self, data, transport_timeout_s):
        self.ws.send(bytes(data))
        return len(data)


def refused(url: str) -> int:
    """The HTTP status of a refused upgrade (fails if the upgrade succeeds)."""
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        with websockets.sync.client.connect(url, open_timeout=10):
            pass
    return info.value.response.status_code


def keyless_shell(url: str, command: str) -> str:
    dev = AdbDevice(WebSocketTransport(url), default_transport_timeout_s=10)
    # No RSA key at all: the relay authenticates to the phone.
    assert dev.connect(rsa_keys=None, auth_timeout_s=5, transport_timeout_s=10)
    try:
        return dev.shell(command, transport_timeout_s=10, read_timeout_s=10)
    finally:
        dev.close()


def audit_events(cph, server_id: str, wanted, timeout: float = 15) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        events = cph.admin("audit", "--server-id", server_id, "--limit", "500")["events"]
        if wanted(events):
            return events
        assert time.monotonic() < deadline, events
        time.sleep(0.3)


@pytest.fixture(scope="module")
def phones(phone_pool):
    """Two running phones of one server of the bootstrap project."""
    return phone_pool.take(2)


def test_keyless_adb_session_through_the_relay(client, cph, phones):
    a = phones[0]
    r = connect_infos(client, [a.phone_id], "ANDROID")
    assert r.errors == [] and len(r.connect_infos) == 1
    info = r.connect_infos[0]
    assert info.phone_id == a.phone_id
    ai = info.access_info
    assert ai.access_ip and ai.intranet_ip and ai.access_port > 0
    assert len(ai.session_id) == 32 and ai.ticket and int(ai.timestamp) > 0
    out = keyless_shell(relay_url(info, a.phone_id), "echo relay-$((40+2))")
    assert out.strip() == "relay-42"
    events = audit_events(
        cph,
        a.server_id,
        lambda ev: any(e["kind"] == "connect_closed" and e["phone_id"] == a.phone_id for e in ev),
    )
    opened = [e for e in events if e["kind"] == "connect_session" and e["phone_id"] == a.phone_id]
    assert opened and opened[0]["accepted"] is True


def test_every_documented_client_type_gets_a_fresh_session(client, phones):
    sessions = set()
    for t in CLIENT_TYPES:
        r = connect_infos(client, [phones[0].phone_id], t)
        assert r.errors == [] and len(r.connect_infos) == 1
        sessions.add(r.connect_infos[0].access_info.session_id)
    assert len(sessions) == len(CLIENT_TYPES)


def test_ticket_is_bound_to_its_phone_and_single_use(client, cph, phones):
    a, b = phones
    info = connect_infos(client, [a.phone_id]).connect_infos[0]
    # Phone A's ticket does not open phone B.
    assert refused(relay_url(info, b.phone_id)) == 401
    # A tampered ticket, session or timestamp is refused.
    t = info.access_info.ticket
    flipped = t[:-1] + ("0" if t[-1] != "0" else "1")
    assert refused(relay_url(info, a.phone_id, ticket=flipped)) == 401
    assert refused(relay_url(info, a.phone_id, session_id=missing_id())) == 401
    assert refused(relay_url(info, a.phone_id, timestamp=str(int(info.access_info.timestamp) + 1))) == 401
    exp, tag = t.split(".", 1)
    assert refused(relay_url(info, a.phone_id, ticket=f"{int(exp) + 3_600_000}.{tag}")) == 401
    # None of those used the ticket up: it still works, once.
    assert keyless_shell(relay_url(info, a.phone_id), "echo once").strip() == "once"
    assert refused(relay_url(info, a.phone_id)) == 403
    events = audit_events(
        cph,
        a.server_id,
        lambda ev: sum(e["kind"] == "connect_refused" and e["phone_id"] in (a.phone_id, b.phone_id) for e in ev) >= 6,
    )
    refusals = [e for e in events if e["kind"] == "connect_refused"]
    assert all(e["accepted"] is False for e in refusals)
    assert any("used already" in e["detail"] for e in refusals)


def test_expired_ticket_is_refused(offer, tmp_path):
    """A server whose tickets live one second: a ticket used after that is refused."""
    from conftest import CphServer
    from cph_sdk import buy_running_servers, make_client, server_phones

    server = CphServer(tmp_path / "data", None, env={"CPH_CONNECT_TICKET_TTL_SECS": "1"})
    server.data_dir.mkdir()
    server.start()
    try:
        c = make_client(server.endpoint, server.ak, server.sk, server.project_id)
        sid = buy_running_servers(c, server, 1, offer)[0]
        phone = server_phones(c, sid)[0]
        info = connect_infos(c, [phone.phone_id]).connect_infos[0]
        time.sleep(2.2)
        assert refused(relay_url(info, phone.phone_id)) == 401
        fresh = connect_infos(c, [phone.phone_id]).connect_infos[0]
        assert keyless_shell(relay_url(fresh, phone.phone_id), "echo fresh").strip() == "fresh"
    finally:
        server.stop()


def test_request_errors(client, phones):
    ids = [missing_id() for _ in range(11)]
    expect_error(lambda: connect_infos(client, ids), 400, "CPS.0209")
    expect_error(lambda: connect_infos(client, [phones[0].phone_id], "LINUX"), 400, "CPS.0116")
    expect_error(lambda: connect_infos(client, [phones[0].phone_id], None), 400, "CPS.0116")
    expect_error(lambda: connect_infos(client, []), 400, "CPS.0009")
    expect_error(lambda: connect_infos(client, None), 400, "CPS.0009")


def test_per_phone_errors(client, other_client, phones):
    a = phones[0]
    unknown = missing_id()
    r = connect_infos(client, [a.phone_id, unknown, "bad id!", a.phone_id])
    assert [i.phone_id for i in r.connect_infos] == [a.phone_id]
    errors = {(e.phone_id, e.error_code) for e in r.errors}
    assert errors == {(unknown, "CPS.0005"), ("bad id!", "CPS.0004"), (a.phone_id, "CPS.0023")}
    assert all(e.error_msg for e in r.errors)
    # Another project's phone reads as not found.
    r = connect_infos(other_client, [a.phone_id])
    assert r.connect_infos == []
    assert [(e.phone_id, e.error_code) for e in r.errors] == [(a.phone_id, "CPS.0005")]


def test_encode_server_access_infos_answer(client, phones):
    server_id = phones[0].server_id
    es = client.list_encode_servers(ListEncodeServersRequest(server_id=server_id)).encode_servers
    assert len(es) == 1
    infos = {a.type: a for a in es[0].access_infos}
    assert set(infos) == {"ssh", "cph_h5_server"}
    for a in infos.values():
        assert a.access_ip == a.public_ip and a.intranet_ip == a.server_ip
        with socket.create_connection((a.server_ip, a.access_port), timeout=5) as s:
            if a.type == "ssh":
                s.settimeout(5)
                assert s.recv(64).startswith(b"SSH-2.0-")
    relay = infos["cph_h5_server"]
    # The relay refuses an upgrade without a ticket.
    assert refused(f"ws://{relay.server_ip}:{relay.access_port}/v1/connect") == 401


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(path, env: dict):
    from conftest import CphServer

    server = CphServer(path, None, env=env)
    server.data_dir.mkdir(parents=True)
    server.start()
    return server


def open_session(url: str, timeout: float = 15) -> AdbDevice:
    """A keyless ADB session through the relay, retried while the relay is full (a refusal for
    lack of a free session does not use the ticket up)."""
    deadline = time.monotonic() + timeout
    while True:
        dev = AdbDevice(WebSocketTransport(url), default_transport_timeout_s=10)
        try:
            assert dev.connect(rsa_keys=None, auth_timeout_s=5, transport_timeout_s=10)
            return dev
        except websockets.exceptions.InvalidStatus as e:
            if e.response.status_code != 503 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def tuned(offer, tmp_path_factory):
    """A server whose relay listens on a loopback port but is advertised as ws://localhost:<port>,
    allows one session at a time and closes sessions idle for 3 seconds."""
    from types import SimpleNamespace

    from cph_sdk import buy_running_servers, make_client, server_phones

    port = free_port()
    server = start_server(
        tmp_path_factory.mktemp("tuned-relay") / "data",
        {
            "CPH_CONNECT_LISTEN": f"127.0.0.1:{port}",
            "CPH_CONNECT_PUBLIC_URL": f"ws://localhost:{port}/",
            "CPH_CONNECT_MAX_SESSIONS": "1",
            "CPH_CONNECT_IDLE_TIMEOUT_SECS": "3",
        },
    )
    try:
        c = make_client(server.endpoint, server.ak, server.sk, server.project_id)
        sid = buy_running_servers(c, server, 1, offer)[0]
        phone = server_phones(c, sid)[0]
        yield SimpleNamespace(cph=server, client=c, server_id=sid, phone=phone, port=port)
    finally:
        server.stop()


def test_the_configured_public_url_is_advertised(tuned):
    info = connect_infos(tuned.client, [tuned.phone.phone_id]).connect_infos[0]
    ai = info.access_info
    assert (ai.access_ip, ai.intranet_ip, ai.access_port) == ("localhost", "localhost", tuned.port)
    # The advertised address reaches the relay.
    dev = open_session(relay_url(info, tuned.phone.phone_id))
    try:
        assert dev.shell("echo advertised", transport_timeout_s=10, read_timeout_s=10).strip() == "advertised"
    finally:
        dev.close()
    es = tuned.client.list_encode_servers(ListEncodeServersRequest(server_id=tuned.server_id)).encode_servers
    relay = {a.type: a for a in es[0].access_infos}["cph_h5_server"]
    assert (relay.access_ip, relay.public_ip, relay.server_ip) == ("localhost",) * 3
    assert relay.access_port == tuned.port == relay.listen_port


def test_a_session_beyond_the_maximum_is_refused_and_audited(tuned):
    phone_id = tuned.phone.phone_id
    first, second = (connect_infos(tuned.client, [phone_id]).connect_infos[0] for _ in range(2))
    dev = open_session(relay_url(first, phone_id))
    try:
        assert refused(relay_url(second, phone_id)) == 503
        # The first session is unaffected.
        assert dev.shell("echo first", transport_timeout_s=10, read_timeout_s=10).strip() == "first"
    finally:
        dev.close()
    # The refusal did not use the second ticket up: it opens once the slot is free.
    dev = open_session(relay_url(second, phone_id))
    try:
        assert dev.shell("echo second", transport_timeout_s=10, read_timeout_s=10).strip() == "second"
    finally:
        dev.close()
    session = second.access_info.session_id
    events = audit_events(
        tuned.cph,
        tuned.server_id,
        lambda ev: any(e["kind"] == "connect_refused" and session in e["detail"] for e in ev),
    )
    full = [e for e in events if e["kind"] == "connect_refused" and session in e["detail"]]
    assert full[0]["accepted"] is False and full[0]["phone_id"] == phone_id
    assert "no free session" in full[0]["detail"]


def test_an_idle_session_is_closed(tuned):
    phone_id = tuned.phone.phone_id
    info = connect_infos(tuned.client, [phone_id]).connect_infos[0]
    transport = WebSocketTransport(relay_url(info, phone_id))
    dev = AdbDevice(transport, default_transport_timeout_s=10)
    deadline = time.monotonic() + 15
    while True:  # the previous test's session may still hold the one slot for a moment
        try:
            assert dev.connect(rsa_keys=None, auth_timeout_s=5, transport_timeout_s=10)
            break
        except websockets.exceptions.InvalidStatus as e:
            assert e.response.status_code == 503 and time.monotonic() < deadline
            time.sleep(0.2)
    try:
        # Traffic keeps it open past the timeout...
        for _ in range(3):
            time.sleep(1.5)
            assert dev.shell("echo busy", transport_timeout_s=10, read_timeout_s=10).strip() == "busy"
        # ...silence closes it after about 3 s.
        quiet = time.monotonic()
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            transport.ws.recv(timeout=20)
        assert 2.5 <= time.monotonic() - quiet < 15
    finally:
        dev.close()
    session_events = audit_events(
        tuned.cph,
        tuned.server_id,
        lambda ev: any(e["kind"] == "connect_closed" and "idle too long" in e["detail"] for e in ev),
    )
    assert any(e["phone_id"] == phone_id for e in session_events if e["kind"] == "connect_closed")


def test_a_relay_bound_to_every_address_advertises_loopback(offer, tmp_path):
    from cph_sdk import buy_running_servers, make_client, server_phones

    server = start_server(tmp_path / "data", {"CPH_CONNECT_LISTEN": "0.0.0.0:0"})
    try:
        assert "connect_public_url" in server.log_tail(200)  # the start-up warning
        c = make_client(server.endpoint, server.ak, server.sk, server.project_id)
        phone = server_phones(c, buy_running_servers(c, server, 1, offer)[0])[0]
        info = connect_infos(c, [phone.phone_id]).connect_infos[0]
        assert info.access_info.access_ip == "127.0.0.1"
        assert keyless_shell(relay_url(info, phone.phone_id), "echo loopback").strip() == "loopback"
    finally:
        server.stop()


@pytest.mark.parametrize(
    "env, message",
    [
        ({"CPH_CONNECT_PUBLIC_URL": "http://relay.example.com"}, "ws:// or wss://"),
        ({"CPH_CONNECT_PUBLIC_URL": "wss://relay.example.com/?a=1"}, "query"),
        ({"CPH_CONNECT_MAX_SESSIONS": "0"}, "connect_max_sessions"),
        ({"CPH_CONNECT_IDLE_TIMEOUT_SECS": "0"}, "connect_idle_timeout_secs"),
    ],
)
def test_invalid_relay_settings_refuse_to_start(tmp_path, env, message):
    with pytest.raises(RuntimeError) as info:
        server = start_server(tmp_path / "data", env)
        server.stop()
    assert message in str(info.value)
