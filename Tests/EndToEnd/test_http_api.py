"""The Pusher HTTP API (http-api.md) through the official `pusher` 3.3.4 SDK, asserted on what connected
WebSocket clients receive or on the SDK's parsed replies; signing and limit errors with raw requests.

Every test here depends on the HTTP API routes (marker `http_api`).
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pusher
import pytest

from conftest import channel_signature, compact, http_request, signed_http, unique

pytestmark = pytest.mark.http_api


def event_frame(event: str, data: str, channel: str) -> str:
    return compact({"event": event, "data": data, "channel": channel})


def batch_frame(event: str, channel: str, data: str) -> str:
    return compact({"event": event, "channel": channel, "data": data})


def presence_join(ws, server, ch, user_id, info=None):
    cd = compact({"user_id": user_id, "user_info": info} if info is not None else {"user_id": user_id})
    ws.send_json({"event": "pusher:subscribe", "data": {
        "auth": f"{server.key}:{channel_signature(server.secret, ws.socket_id, ch, cd)}",
        "channel_data": cd, "channel": ch}})
    frame = json.loads(ws.recv())
    assert frame["event"] == "pusher_internal:subscription_succeeded", frame
    return cd


# --------------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------------


def test_trigger_one_channel_exact_frame(server, ws_client):
    ch = unique("test-channel.")
    a, b = ws_client(server), ws_client(server)
    a.subscribe(ch)
    b.subscribe(ch)
    reply = server.pusher().trigger(ch, "App\\Events\\TestEvent", {"foo": "bar"})
    assert reply == {}
    expected = event_frame("App\\Events\\TestEvent", '{"foo": "bar"}', ch)  # the SDK's json.dumps string
    assert a.recv() == expected
    assert b.recv() == expected


def test_trigger_several_channels_and_duplicates(server, ws_client):
    chans = [unique("multi-") for _ in range(3)]
    clients = []
    for ch in chans:
        ws = ws_client(server)
        ws.subscribe(ch)
        clients.append(ws)
    server.pusher().trigger(chans + [chans[0]], "NewEvent", "payload")
    for ws, ch in zip(clients, chans):
        assert ws.recv() == event_frame("NewEvent", "payload", ch)
    clients[0].expect_silence(0.3)  # listed twice, delivered once


def test_trigger_batch(server, ws_client):
    c1, c2 = unique("batch-"), unique("batch-")
    a, b = ws_client(server), ws_client(server)
    a.subscribe(c1)
    b.subscribe(c2)
    reply = server.pusher().trigger_batch([
        {"channel": c1, "name": "NewEvent", "data": {"some": "data"}},
        {"channel": c2, "name": "Other", "data": "text"},
        {"channel": c1, "name": "Second", "data": "2"},
    ])
    assert reply == {"batch": {}}
    assert a.recv() == batch_frame("NewEvent", c1, '{"some": "data"}')
    assert a.recv() == batch_frame("Second", c1, "2")
    assert b.recv() == batch_frame("Other", c2, "text")


def test_socket_id_exclusion(server, ws_client):
    ch = unique("excl-")
    a, b = ws_client(server), ws_client(server)
    a.subscribe(ch)
    b.subscribe(ch)
    sdk = server.pusher()
    sdk.trigger(ch, "skip-a", "1", socket_id=a.socket_id)
    sdk.trigger_batch([{"channel": ch, "name": "skip-b", "data": "2", "socket_id": b.socket_id}])
    assert b.recv() == event_frame("skip-a", "1", ch)
    assert a.recv() == batch_frame("skip-b", ch, "2")
    a.expect_silence(0.2)
    b.expect_silence(0.2)


def test_cache_channel_event_replayed_and_cache_info(server, ws_client):
    ch = unique("cache-test-channel.")
    sdk = server.pusher()
    sdk.trigger(ch, "App\\Events\\TestEvent", '{"foo":"bar"}')  # nobody subscribed: still stored
    ws = ws_client(server)
    ws.send_json({"event": "pusher:subscribe", "data": {"channel": ch}})
    assert ws.recv() == compact({"event": "pusher_internal:subscription_succeeded", "data": "{}", "channel": ch})
    assert ws.recv() == event_frame("App\\Events\\TestEvent", '{"foo":"bar"}', ch)
    info = sdk.channel_info(ch, ["cache"])
    assert info == {"occupied": True, "cache": {"event": "App\\Events\\TestEvent", "data": '{"foo":"bar"}',
                                                "channel": ch, "ttl": 1800}}


def test_events_info_attributes(server, ws_client):
    pres, pub = unique("presence-info."), unique("info-")
    a = ws_client(server)
    presence_join(a, server, pres, 1)
    a.subscribe(pub)
    status, _, body = signed_http(server, "POST", f"/apps/{server.app_id}/events", compact({
        "name": "NewEvent", "channels": [pres, pub], "data": '{"some":"data"}',
        "info": "user_count,subscription_count"}).encode())
    assert status == 200
    assert body == compact({"channels": {pres: {"user_count": 1}, pub: {"subscription_count": 1}}}).encode()


# --------------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------------


def test_channel_info(server, ws_client):
    ch = unique("info-")
    sdk = server.pusher()
    assert sdk.channel_info(ch) == {"occupied": False}
    a, b = ws_client(server), ws_client(server)
    a.subscribe(ch)
    b.subscribe(ch)
    assert sdk.channel_info(ch, ["subscription_count", "user_count"]) == {"occupied": True, "subscription_count": 2}
    assert sdk.channel_info(ch) == {"occupied": True}
    pres = unique("presence-")
    presence_join(a, server, pres, 1)
    presence_join(b, server, pres, 1)
    assert sdk.channel_info(pres, ["subscription_count", "user_count"]) == {"occupied": True, "user_count": 1}


def test_channels_info_prefix_and_user_count(server, ws_client):
    sdk = server.pusher()
    assert sdk.channels_info() == {"channels": {}}
    tag = unique()
    pub = f"test-{tag}"
    pres = f"presence-{tag}"
    ws = ws_client(server)
    ws.subscribe(pub)
    presence_join(ws, server, pres, "u1")
    other = ws_client(server)
    presence_join(other, server, pres, "u2")
    assert sdk.channels_info() == {"channels": {pub: {}, pres: {}}}
    assert sdk.channels_info(prefix_filter="presence-", attributes=["user_count"]) == \
        {"channels": {pres: {"user_count": 2}}}
    assert sdk.channels_info(prefix_filter="test-") == {"channels": {pub: {}}}
    # failed subscriptions create nothing
    ws.send_json({"event": "pusher:subscribe", "data": {"auth": "x:y", "channel": f"private-{tag}"}})
    ws.recv()
    assert f"private-{tag}" not in sdk.channels_info()["channels"]


def test_users_info(server, ws_client):
    ch = unique("presence-users.")
    sdk = server.pusher()
    a, b, c = ws_client(server), ws_client(server), ws_client(server)
    presence_join(a, server, ch, 1)
    presence_join(b, server, ch, "b")
    presence_join(c, server, ch, "1")  # same user as 1
    assert sdk.users_info(ch) == {"users": [{"id": 1}, {"id": "b"}]}
    pub = unique("pub-")
    ws_client(server).subscribe(pub)
    with pytest.raises(pusher.errors.PusherBadRequest):
        sdk.users_info(pub)  # 400 {}
    status, _, body = signed_http(server, "GET", f"/apps/{server.app_id}/channels/{unique('presence-')}/users")
    assert (status, body) == (404, b"{}")


def test_connections_count(server, ws_client):
    status, _, body = signed_http(server, "GET", f"/apps/{server.app_id}/connections")
    assert (status, body) == (200, b'{"connections":0}')
    ws_client(server)
    ws_client(server).subscribe(unique("c-"))
    status, _, body = signed_http(server, "GET", f"/apps/{server.app_id}/connections")
    assert (status, body) == (200, b'{"connections":2}')


def test_terminate_user_connections(server, ws_client):
    ch = unique("presence-term.")
    victim1, victim2, peer = ws_client(server), ws_client(server), ws_client(server)
    presence_join(peer, server, ch, "peer")
    presence_join(victim1, server, ch, 42)
    assert json.loads(peer.recv())["event"] == "pusher_internal:member_added"
    victim2_ch = unique("private-")
    cd = '{"user_id":"42"}'
    victim2.send_json({"event": "pusher:subscribe", "data": {
        "auth": f"{server.key}:{channel_signature(server.secret, victim2.socket_id, victim2_ch, cd)}",
        "channel_data": cd, "channel": victim2_ch}})
    victim2.recv()
    bystander = ws_client(server)
    bystander.subscribe(unique("pub-"))
    assert server.pusher().terminate_user_connections("42") == {}
    for v in (victim1, victim2):
        code, reason, _ = v.expect_closed()
        assert (code, reason) == (1008, "Connection terminated")
    assert peer.recv() == compact({"event": "pusher_internal:member_removed", "data": '{"user_id":42}',
                                   "channel": ch})
    peer.ping_pong()
    bystander.ping_pong()


def test_terminate_via_apps_path(server, ws_client):
    ch = unique("presence-")
    v = ws_client(server)
    presence_join(v, server, ch, "7")
    status, _, body = signed_http(server, "POST", f"/apps/{server.app_id}/users/7/terminate_connections", b"{}")
    assert (status, body) == (200, b"{}")
    assert v.expect_closed()[:2] == (1008, "Connection terminated")


# --------------------------------------------------------------------------------------------------
# Signing and errors
# --------------------------------------------------------------------------------------------------


def test_wrong_secret_401(server):
    sdk = pusher.Pusher(app_id=server.app_id, key=server.key, secret="wrong", host=server.host, port=server.port,
                        ssl=False)
    with pytest.raises(pusher.errors.PusherBadAuth) as exc:
        sdk.trigger(unique("c-"), "e", "d")
    assert str(exc.value) == "Authentication signature invalid."
    status, headers, body = signed_http(server, "POST", f"/apps/{server.app_id}/events",
                                        b'{"name":"e","channel":"c","data":"d"}', secret="wrong")
    assert (status, body) == (401, b"Authentication signature invalid.")
    assert headers.get("content-type") == "text/plain; charset=utf-8"


def test_wrong_auth_key_401(server):
    status, _, body = signed_http(server, "GET", f"/apps/{server.app_id}/channels", key="other-key")
    assert (status, body) == (401, b"Authentication signature invalid.")


def test_missing_auth_params_401(server):
    status, _, body = http_request(server, "GET", f"/apps/{server.app_id}/channels")
    assert (status, body) == (401, b"Authentication parameters missing.")


def test_expired_timestamp_401(server):
    ts = int(time.time()) - 700
    status, _, body = signed_http(server, "GET", f"/apps/{server.app_id}/channels", timestamp=ts)
    assert status == 401
    text = body.decode()
    assert text.startswith(f"Timestamp expired: {ts} is not within 600 s of server time "), text
    ok_status, _, _ = signed_http(server, "GET", f"/apps/{server.app_id}/channels", timestamp=int(time.time()) - 500)
    assert ok_status == 200


def test_unknown_app_404(server):
    status, _, body = signed_http(server, "POST", "/apps/nope/events", b'{"name":"e","channel":"c","data":"d"}')
    assert (status, body) == (404, b"No matching application for ID [nope].")


def test_request_too_large_413(reverb_server):
    server = reverb_server(max_request_size=2000)
    body = compact({"name": "e", "channel": "c", "data": "x" * 3000}).encode()
    status, _, resp = signed_http(server, "POST", f"/apps/{server.app_id}/events", body)
    assert (status, resp) == (413, b"Payload too large.")
    server.assert_healthy()


@pytest.mark.parametrize("body", [b"not json", b"[]", b'"s"', b"", b"{"])
def test_invalid_json_body_400(server, body):
    status, _, resp = signed_http(server, "POST", f"/apps/{server.app_id}/events", body)
    assert (status, resp) == (400, b"Invalid JSON body.")


def test_too_many_channels_400(server):
    chans = [f"c{i}" for i in range(101)]
    body = compact({"name": "e", "channels": chans, "data": "d"}).encode()
    status, _, resp = signed_http(server, "POST", f"/apps/{server.app_id}/events", body)
    assert (status, resp) == (400, b"Too many channels: at most 100 per event.")
    body = compact({"name": "e", "channels": chans[:100], "data": "d"}).encode()
    status, _, resp = signed_http(server, "POST", f"/apps/{server.app_id}/events", body)
    assert (status, resp) == (200, b"{}")


def test_validation_422(server):
    status, headers, resp = signed_http(server, "POST", f"/apps/{server.app_id}/events", b'{"name":"e","channel":"c"}')
    assert (status, resp) == (422, b'{"data":["The data field is required."]}')
    assert headers.get("content-type") == "application/json"


def test_routes_404_405(server):
    assert http_request(server, "GET", "/nope")[::2] == (404, b"Not found.")
    status, headers, body = http_request(server, "GET", f"/apps/{server.app_id}/events")
    assert (status, body) == (405, b"Method not allowed.")
    assert headers.get("allow") == "POST"


def test_up(server):
    status, headers, body = http_request(server, "GET", "/up")
    assert (status, body) == (200, b'{"health":"OK"}')
    assert headers.get("content-type") == "application/json"


def test_slow_loris_is_cut_off_while_others_are_served(server, ws_client):
    ch = unique("loris-")
    ws = ws_client(server)
    ws.subscribe(ch)
    loris = socket.create_connection((server.host, server.port), timeout=25)
    loris.sendall(f"POST /apps/{server.app_id}/events HTTP/1.1\r\nHost: x\r\nContent-Le".encode())
    t0 = time.monotonic()
    result = {}

    def wait_close():
        data = b""
        try:
            while True:
                chunk = loris.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError as e:
            result["error"] = repr(e)
        result["data"] = data
        result["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=wait_close, daemon=True)
    t.start()
    sdk = server.pusher()
    for i in range(20):  # others are served meanwhile
        assert sdk.trigger(ch, "tick", str(i)) == {}
        assert ws.recv() == event_frame("tick", str(i), ch)
    server.assert_healthy()
    t.join(22)
    loris.close()
    assert not t.is_alive(), "slow-loris connection still open after 22 s"
    assert "error" not in result or "reset" in result["error"].lower(), result
    assert result["data"] == b"", f"incomplete request got a response: {result['data'][:200]!r}"
    assert 10 <= result["elapsed"] <= 20, result["elapsed"]


def test_one_megabyte_body_is_refused_while_reading(server):
    """A 1 MB body gets 413 from its declared length, before the body is buffered, and the server
    keeps serving."""
    body = b'{"name":"e","channel":"c","data":"' + b"x" * (1024 * 1024) + b'"}'
    sock = socket.create_connection((server.host, server.port), timeout=5)
    head = (f"POST /apps/{server.app_id}/events?auth_key={server.key}&auth_timestamp=1&auth_signature=0 HTTP/1.1\r\n"
            f"Host: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    sock.sendall(head)
    reply = b""
    while b"\r\n\r\n" not in reply or not reply.endswith(b"Payload too large."):
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    assert reply.startswith(b"HTTP/1.1 413 Payload Too Large\r\n"), reply
    assert reply.endswith(b"Payload too large."), reply
    try:
        sock.sendall(body)
    except OSError:
        pass  # the server closed the connection: nothing beyond the limit is read
    sock.close()
    server.assert_healthy()


def test_batch_of_101_events_is_refused(server):
    batch = [{"name": "e", "channel": f"c{i}", "data": "d"} for i in range(101)]
    status, _, resp = signed_http(server, "POST", f"/apps/{server.app_id}/batch_events", compact({"batch": batch}).encode())
    assert (status, resp) == (400, b"Too many events: at most 100 per batch.")


def test_body_md5_mismatch_is_refused(server):
    """The signature covers md5(body): a body changed after signing fails."""
    from conftest import signed_query

    signed_body = b'{"name":"e","channel":"c","data":"d"}'
    sent_body = b'{"name":"e","channel":"c","data":"tampered"}'
    path = f"/apps/{server.app_id}/events"
    query = signed_query("POST", path, server.key, server.secret, signed_body)
    status, _, resp = http_request(server, "POST", f"{path}?{query}", sent_body)
    assert (status, resp) == (401, b"Authentication signature invalid.")


@pytest.mark.parametrize("channel,valid", [("..%2F..%2Fetc%2Fpasswd", False), ("%2E%2E", True), ("a%00b", False)])
def test_path_traversal_in_channel_name_is_inert(server, channel, valid):
    """Encoded slashes and dots stay inside one path segment: the channel named that way is simply
    unoccupied; an event to it is refused as an invalid channel name unless the name is valid
    (`..` is: dots are in Pusher's charset)."""
    status, _, resp = signed_http(server, "GET", f"/apps/{server.app_id}/channels/{channel}")
    assert (status, resp) == (200, b'{"occupied":false}')
    name = channel.replace("%2F", "/").replace("%2E", ".").replace("%00", "\x00")
    body = compact({"name": "e", "channel": name, "data": "d"}).encode()
    status, _, resp = signed_http(server, "POST", f"/apps/{server.app_id}/events", body)
    if valid:
        assert (status, resp) == (200, b"{}")
    else:
        assert status == 400 and resp.startswith(b"Invalid channel name: "), resp
    server.assert_healthy()
