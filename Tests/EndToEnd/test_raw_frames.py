"""Exact frames over real sockets (protocol.md, §15 checklist), using the `websockets` client.

Frames are compared as exact strings unless a value holds `/` or non-ASCII (protocol.md §0).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time

import pytest

from conftest import (
    SOCKET_ID_RE,
    RawWS,
    channel_signature,
    compact,
    error_frame,
    raw_established,
    subscribe_private,
    unique,
)

INVALID_FORMAT = error_frame(4200, "Invalid message format")
UNAUTHORIZED = error_frame(4009, "Connection is unauthorized")
NOT_MEMBER = error_frame(4009, "The client is not a member of the specified channel.")
NO_CLIENT_EVENTS = error_frame(4301, "The app does not have client messaging enabled.")
RATE_LIMITED = error_frame(4301, "Rate limit exceeded")


def succeeded(channel: str) -> str:
    return compact({"event": "pusher_internal:subscription_succeeded", "data": "{}", "channel": channel})


# --------------------------------------------------------------------------------------------------
# §1 connection
# --------------------------------------------------------------------------------------------------

ESTABLISHED_RE = re.compile(
    r'^\{"event":"pusher:connection_established","data":"\{\\"socket_id\\":\\"([1-9][0-9]{0,9}\.[1-9][0-9]{0,9})\\",'
    r'\\"activity_timeout\\":(\d+)\}"\}$'
)


@pytest.mark.parametrize("query", [None, "protocol=7&client=js&version=8.4.0&flash=false",
                                   "client=pysher&version=1.0.8&protocol=6", "x=%zz"])
def test_connection_established_exact_shape(reverb_server, ws_client, query):
    server = reverb_server(activity_timeout=7)
    ws = ws_client(server, query=query)
    m = ESTABLISHED_RE.match(ws.established_frame)
    assert m, ws.established_frame
    assert SOCKET_ID_RE.match(m.group(1))
    assert m.group(2) == "7"


def test_activity_timeout_default_and_socket_ids_unique(server, ws_client):
    ids = set()
    for _ in range(5):
        ws = ws_client(server)
        m = ESTABLISHED_RE.match(ws.established_frame)
        assert m and m.group(2) == "30", ws.established_frame
        ids.add(m.group(1))
    assert len(ids) == 5


def test_client_sent_connection_established_is_answered_with_same_frame(server, ws_client):
    ws = ws_client(server)
    ws.send('{"event":"pusher:connection_established","data":{}}')
    assert ws.recv() == ws.established_frame


def test_handshake_headers(server, raw_ws):
    r = raw_ws(server, headers={"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"})
    assert r.status == 101, r.head
    expected_accept = base64.b64encode(
        hashlib.sha1((r.key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    assert r.header("Sec-WebSocket-Accept") == expected_accept
    assert r.header("X-Powered-By") == "swift-reverb"
    assert r.header("Sec-WebSocket-Extensions") is None
    assert r.header("Sec-WebSocket-Protocol") is None
    names = [k.lower() for k, _ in r.headers]
    assert names[:4] == ["upgrade", "connection", "sec-websocket-accept", "x-powered-by"], r.head
    raw_established(r)


@pytest.mark.parametrize("headers,status", [
    ({"Upgrade": None}, 426),
    ({"Sec-WebSocket-Version": "8"}, 426),
    ({"Sec-WebSocket-Key": "not-base64-of-16"}, 400),
    ({"Connection": "keep-alive"}, 400),
])
def test_handshake_refusals(server, raw_ws, headers, status):
    r = raw_ws(server, headers=headers)
    assert r.status == status, r.head
    if status == 426:
        assert r.header("Sec-WebSocket-Version") == "13"
    assert r.tcp_closed(), "server keeps the refused handshake open"


def test_path_prefix(reverb_server, ws_client, raw_ws):
    server = reverb_server(path="ws")
    assert server.prefix == "/ws"
    ws = ws_client(server)  # /ws/app/{key}
    ws.ping_pong()
    r = raw_ws(server, path=f"/app/{server.key}")
    assert r.status == 404, r.head


def test_unknown_app_key_4001(server, ws_client):
    ws = ws_client(server, key="no-such-key", expect_established=False)
    code, reason, frames = ws.expect_closed()
    assert frames == [error_frame(4001, "Application does not exist")]
    assert (code, reason) == (4001, "Application does not exist")


def test_app_key_matched_exactly(server, ws_client):
    ws = ws_client(server, key=server.key.upper(), expect_established=False)
    code, _, frames = ws.expect_closed()
    assert frames == [error_frame(4001, "Application does not exist")] and code == 4001


def test_max_connections_4004(reverb_server, ws_client):
    server = reverb_server(max_connections=1)
    first = ws_client(server)  # never subscribes
    second = ws_client(server, expect_established=False)
    code, reason, frames = second.expect_closed()
    assert frames == [error_frame(4004, "Application is over connection quota")]
    assert (code, reason) == (4004, "Application is over connection quota")
    first.close()
    # after the first one closes, a new one connects (poll: the server may need a moment)
    deadline = time.monotonic() + 5
    while True:
        third = ws_client(server, expect_established=False)
        msg = json.loads(third.recv())
        if msg["event"] == "pusher:connection_established":
            break
        assert time.monotonic() < deadline, "quota never freed after the first socket closed"
        time.sleep(0.05)


@pytest.mark.parametrize("allowed,origin,ok", [
    ("laravel.com", "http://laravel.com", True),
    ("laravel.com", "https://laravel.com:8443", True),
    ("laravel.com", "http://sub.laravel.com", False),
    ("laravel.com", "http://localhost", False),
    ("laravel.com", None, False),
    ("*.laravel.com", "http://laravel.com", False),
    ("localhost,*.localhost", "http://sub.localhost", True),
    ("*", None, True),
])
def test_allowed_origins(reverb_server, ws_client, allowed, origin, ok):
    server = reverb_server(allowed_origins=allowed)
    kw = {"origin": origin} if origin else {}
    ws = ws_client(server, expect_established=False, **kw)
    if ok:
        assert json.loads(ws.recv())["event"] == "pusher:connection_established"
    else:
        code, reason, frames = ws.expect_closed()
        assert frames == [error_frame(4009, "Origin not allowed")]
        assert (code, reason) == (4009, "Origin not allowed")


# --------------------------------------------------------------------------------------------------
# §2 ping / pong and 4200
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("frame", ['{"event":"pusher:ping","data":{}}', '{"event":"pusher:ping","data":""}',
                                   '{"event":"pusher:ping"}', '{"event":"pusher:ping","data":null}'])
def test_ping_pong_exact(server, ws_client, frame):
    ws = ws_client(server)
    ws.send(frame)
    assert ws.recv() == '{"event":"pusher:pong"}'


def test_pusher_pong_from_client_is_silent(server, ws_client):
    ws = ws_client(server)
    ws.send('{"event":"pusher:pong","data":{}}')
    ws.expect_silence()


def test_ping_control_frame_payload_echoed(server, ws_client):
    ws = ws_client(server)
    pong = ws.conn.ping(b"abc")
    assert pong.wait(5), "no pong for ping 'abc'"


def test_ping_control_frame_exact_pong_raw(server, raw_ws):
    r = raw_ws(server)
    raw_established(r)
    r.send_frame(0x9, b"abc")
    assert r.recv_frame() == (True, 0xA, b"abc")


@pytest.mark.parametrize("frame", [
    "not json", "[\"x\"]", "{}", '{"event":123}', '{"event":null}', '{"event":"pusher:foo"}',
    '{"event":"pusher:signin","data":{"auth":"x","user_data":"{}"}}', '"string"', "42",
    '{"event":"pusher:subscribe","data":{}}', '{"event":"pusher:subscribe","data":5}',
    '{"event":"pusher:subscribe","data":{"channel":5}}', '{"event":"pusher:unsubscribe","data":{}}',
    '{"event":"pusher:ping","data":5}', '{"event":"pusher:ping","data":"abc"}',
])
def test_invalid_message_format_4200(server, ws_client, frame):
    ws = ws_client(server)
    ws.send(frame)
    assert ws.recv() == INVALID_FORMAT
    ws.ping_pong()


# --------------------------------------------------------------------------------------------------
# §3–§4 subscriptions
# --------------------------------------------------------------------------------------------------


def test_public_subscribe_exact(server, ws_client):
    ws = ws_client(server)
    ch = unique("test-channel.")
    ws.send(compact({"event": "pusher:subscribe", "data": {"auth": "", "channel": ch}}))
    assert ws.recv() == succeeded(ch)
    ch2 = unique("test-channel.")
    ws.send(compact({"event": "pusher:subscribe", "data": compact({"channel": ch2})}))  # JSON-string data
    assert ws.recv() == succeeded(ch2)


def test_channel_names(server, ws_client):
    ws = ws_client(server)
    for bad in ["", "a b", "#x", "ü", "a" * 201, "a/b"]:
        ws.send_json({"event": "pusher:subscribe", "data": {"channel": bad}})
        assert ws.recv() == INVALID_FORMAT, bad
    name = "x" * 200
    ws.send_json({"event": "pusher:subscribe", "data": {"channel": name}})
    assert ws.recv() == succeeded(name)
    odd = "-_=@,.;AZaz09"
    ws.send_json({"event": "pusher:subscribe", "data": {"channel": odd}})
    assert ws.recv() == succeeded(odd)


def test_dashless_prefixes_are_public(server, ws_client):
    ws = ws_client(server)
    for ch in (unique("privatefoo"), unique("cached-x"), unique("presencex")):
        ws.send_json({"event": "pusher:subscribe", "data": {"channel": ch}})
        assert ws.recv() == succeeded(ch)
    ws.expect_silence()  # no pusher:cache_miss


@pytest.mark.parametrize("prefix", ["private-", "private-cache-", "private-encrypted-", "private-encrypted-cache-"])
def test_private_subscribe_signed(server, ws_client, prefix):
    ws = ws_client(server)
    ch = unique(prefix)
    sig = channel_signature(server.secret, ws.socket_id, ch)
    ws.send_json({"event": "pusher:subscribe", "data": {"auth": f"{server.key}:{sig}", "channel": ch}})
    assert ws.recv() == succeeded(ch)
    if "cache-" in prefix:
        assert ws.recv() == compact({"event": "pusher:cache_miss", "channel": ch})
    # the key part is not checked
    ch2 = unique(prefix)
    sig2 = channel_signature(server.secret, ws.socket_id, ch2)
    ws.send_json({"event": "pusher:subscribe", "data": {"auth": f"app-key:{sig2}", "channel": ch2}})
    assert ws.recv() == succeeded(ch2)


@pytest.mark.parametrize("prefix", ["private-", "private-cache-", "presence-", "presence-cache-",
                                    "private-encrypted-", "private-encrypted-cache-"])
def test_forged_or_missing_auth_4009(server, ws_client, prefix):
    ws = ws_client(server)
    ch = unique(prefix)
    cd = '{"user_id":1}' if prefix.startswith("presence-") else None
    good = channel_signature(server.secret, ws.socket_id, ch, cd)
    forged = channel_signature("wrong-secret", ws.socket_id, ch, cd)
    other_socket = channel_signature(server.secret, "1234.1234", ch, cd)
    for auth in [f"{server.key}:{forged}", f"{server.key}:{other_socket}", f"{server.key}:{good.upper()}",
                 "", None, "missing", f"{server.key}:", good[:-1]]:
        data = {"channel": ch}
        if auth != "missing":
            data["auth"] = auth
        if cd:
            data["channel_data"] = cd
        ws.send_json({"event": "pusher:subscribe", "data": data})
        assert ws.recv() == UNAUTHORIZED, auth
    ws.ping_pong()
    # The whole signature without a key part also passes (the part after the first ':' or the whole string).
    data = {"auth": good, "channel": ch}
    if cd:
        data["channel_data"] = cd
    ws.send_json({"event": "pusher:subscribe", "data": data})
    assert json.loads(ws.recv())["event"] == "pusher_internal:subscription_succeeded"


def test_signature_test_vector_from_spec():
    assert channel_signature("7ad3773142a6692b25b8", "1234.1234", "private-foobar") == \
        "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
    assert channel_signature("7ad3773142a6692b25b8", "1234.1234", "presence-foobar",
                             '{"user_id":10,"user_info":{"name":"Mr. Channels"}}') == \
        "31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"


@pytest.mark.parametrize("channel_data", ["Hello", {"user_id": 1}, 5])
def test_bad_channel_data_4200(server, ws_client, channel_data):
    ws = ws_client(server)
    ch = unique("private-")
    cd_for_sig = channel_data if isinstance(channel_data, str) else None
    sig = channel_signature(server.secret, ws.socket_id, ch, cd_for_sig)
    ws.send_json({"event": "pusher:subscribe",
                  "data": {"auth": f"{server.key}:{sig}", "channel": ch, "channel_data": channel_data}})
    assert ws.recv() == INVALID_FORMAT


def test_auth_array_4200(server, ws_client):
    ws = ws_client(server)
    ws.send_json({"event": "pusher:subscribe", "data": {"auth": [], "channel": unique("private-")}})
    assert ws.recv() == INVALID_FORMAT


def test_unsubscribe_is_silent(server, ws_client):
    ws = ws_client(server)
    ch = unique("test-")
    ws.subscribe(ch)
    ws.unsubscribe(ch)
    ws.unsubscribe(unique("never-subscribed-"))
    ws.expect_silence()
    ws.ping_pong()


def test_resubscribe_sends_succeeded_again(server, ws_client):
    ws = ws_client(server)
    ch = unique("test-")
    assert ws.subscribe(ch) == succeeded(ch)
    assert ws.subscribe(ch) == succeeded(ch)


# --------------------------------------------------------------------------------------------------
# §5 presence
# --------------------------------------------------------------------------------------------------


def presence_sub(ws, server, ch, channel_data: str):
    sig = channel_signature(server.secret, ws.socket_id, ch, channel_data)
    ws.send_json({"event": "pusher:subscribe",
                  "data": {"auth": f"{server.key}:{sig}", "channel_data": channel_data, "channel": ch}})


def test_presence_exact_frames(server, ws_client):
    ch = unique("presence-test-channel.")
    a = ws_client(server)
    cd_a = '{"user_id":1,"user_info":{"name":"Test User"}}'
    presence_sub(a, server, ch, cd_a)
    assert a.recv() == compact({"event": "pusher_internal:subscription_succeeded",
                                "data": '{"presence":{"count":1,"ids":[1],"hash":{"1":{"name":"Test User"}}}}',
                                "channel": ch})
    b = ws_client(server)
    cd_b = '{"user_id":"abc"}'  # no user_info -> null
    presence_sub(b, server, ch, cd_b)
    assert b.recv() == compact({"event": "pusher_internal:subscription_succeeded",
                                "data": '{"presence":{"count":2,"ids":[1,"abc"],"hash":{"1":{"name":"Test User"},"abc":null}}}',
                                "channel": ch})
    assert a.recv() == compact({"event": "pusher_internal:member_added", "data": cd_b, "channel": ch})
    # member_added carries the channel_data bytes as received (spaces, extra keys kept)
    c = ws_client(server)
    cd_c = '{"user_id": 3, "user_info": {"name": "Spaced"}, "extra": true}'
    presence_sub(c, server, ch, cd_c)
    assert json.loads(json.loads(c.recv())["data"])["presence"]["count"] == 3
    expected_added = compact({"event": "pusher_internal:member_added", "data": cd_c, "channel": ch})
    assert a.recv() == expected_added
    assert b.recv() == expected_added
    # member_removed: c unsubscribes, b closes its socket
    c.unsubscribe(ch)
    removed_3 = compact({"event": "pusher_internal:member_removed", "data": '{"user_id":3}', "channel": ch})
    assert a.recv() == removed_3 and b.recv() == removed_3
    c.expect_silence(0.2)
    b.close()
    assert a.recv() == compact({"event": "pusher_internal:member_removed", "data": '{"user_id":"abc"}', "channel": ch})
    a.expect_silence(0.2)


def test_presence_same_user_two_sockets(server, ws_client):
    ch = unique("presence-")
    a = ws_client(server)
    presence_sub(a, server, ch, '{"user_id":"1","user_info":{"n":1}}')
    a.recv()
    b = ws_client(server)
    presence_sub(b, server, ch, '{"user_id":1,"user_info":{"n":2}}')  # 1 and "1" are one user
    data = json.loads(json.loads(b.recv())["data"])
    assert data["presence"]["count"] == 1 and data["presence"]["ids"] == ["1"], data
    a.expect_silence(0.3)  # no member_added
    b.close()
    a.expect_silence(0.3)  # user still has a's socket: no member_removed
    observer = ws_client(server)
    presence_sub(observer, server, ch, '{"user_id":"01"}')  # "01" is another user
    data = json.loads(json.loads(observer.recv())["data"])
    assert data["presence"]["count"] == 2, data
    assert a.recv() == compact({"event": "pusher_internal:member_added", "data": '{"user_id":"01"}', "channel": ch})
    a.close()
    assert observer.recv() == compact({"event": "pusher_internal:member_removed", "data": '{"user_id":"1"}',
                                       "channel": ch})


@pytest.mark.parametrize("channel_data", [None, '{"user_info":{}}', '{"user_id":null}', '{"user_id":""}',
                                          '{"user_id":1.5}', '{"user_id":true}', '{"user_id":[1]}'])
def test_presence_without_valid_user_id_4200(server, ws_client, channel_data):
    ws = ws_client(server)
    ch = unique("presence-")
    sig = channel_signature(server.secret, ws.socket_id, ch, channel_data)
    data = {"auth": f"{server.key}:{sig}", "channel": ch}
    if channel_data is not None:
        data["channel_data"] = channel_data
    ws.send_json({"event": "pusher:subscribe", "data": data})
    assert ws.recv() == INVALID_FORMAT


def test_presence_null_auth_4009(server, ws_client):
    ws = ws_client(server)
    ws.send_json({"event": "pusher:subscribe",
                  "data": {"auth": None, "channel": unique("presence-"), "channel_data": '{"user_id":1}'}})
    assert ws.recv() == UNAUTHORIZED


# --------------------------------------------------------------------------------------------------
# §7 client events
# --------------------------------------------------------------------------------------------------


def test_whisper_members_mode_exact(reverb_server, ws_client):
    server = reverb_server(accept_client_events_from="members")
    ch = unique("presence-chat.")
    a, b = ws_client(server), ws_client(server)
    presence_sub(a, server, ch, '{"user_id":1}')
    a.recv()
    presence_sub(b, server, ch, '{"user_id":2}')
    b.recv()
    a.recv()  # member_added
    a.send(compact({"event": "client-typing", "data": {"name": "bob"}, "channel": ch, "user_id": 99,
                    "socket_id": "1.1", "channels": ["x"]}))
    assert b.recv() == compact({"event": "client-typing", "channel": ch, "data": {"name": "bob"}, "user_id": 1})
    a.expect_silence(0.3)
    # JSON-string data arrives parsed, values preserved
    b.send('{"event":"client-x","data":"{\\"a\\":{},\\"n\\":1.0}","channel":"' + ch + '"}')
    assert a.recv() == '{"event":"client-x","channel":"' + ch + '","data":{"a":{},"n":1.0},"user_id":2}'
    # no data -> null
    b.send(compact({"event": "client-y", "channel": ch}))
    assert a.recv() == compact({"event": "client-y", "channel": ch, "data": None, "user_id": 2})


def test_whisper_public_channel_no_user_id(server, ws_client):
    ch = unique("test-channel.")
    a, b = ws_client(server), ws_client(server)
    a.send_json({"event": "pusher:subscribe", "data": {"channel": ch, "channel_data": '{"user_id":7}'}})
    assert a.recv() == succeeded(ch)
    b.subscribe(ch)
    a.send(compact({"event": "client-start-typing", "data": {"id": 123, "name": "Joe Dixon"}, "channel": ch}))
    assert b.recv() == compact({"event": "client-start-typing", "channel": ch,
                                "data": {"id": 123, "name": "Joe Dixon"}})


def test_whisper_from_non_member_4009(server, ws_client):
    ch = unique("private-")
    a, b = ws_client(server), ws_client(server)
    subscribe_private(b, server, ch)
    a.send(compact({"event": "client-x", "data": {}, "channel": ch}))
    assert a.recv() == NOT_MEMBER
    b.expect_silence(0.3)


def test_whisper_mode_none_4301(reverb_server, ws_client):
    server = reverb_server(accept_client_events_from="none")
    ch = unique("private-")
    a = ws_client(server)
    subscribe_private(a, server, ch)
    a.send(compact({"event": "client-x", "data": {}, "channel": ch}))
    assert a.recv() == NO_CLIENT_EVENTS


def test_whisper_mode_all(reverb_server, ws_client):
    server = reverb_server(accept_client_events_from="all")
    ch = unique("private-")
    a, b = ws_client(server), ws_client(server)
    subscribe_private(b, server, ch)
    a.send(compact({"event": "client-x", "data": {"k": 1}, "channel": ch, "user_id": 5, "channels": [unique()]}))
    assert b.recv() == compact({"event": "client-x", "channel": ch, "data": {"k": 1}})


def test_whisper_edge_cases(server, ws_client):
    ch = unique("test-")
    a, b = ws_client(server), ws_client(server)
    a.subscribe(ch)
    b.subscribe(ch)
    a.send(compact({"event": "foo", "channel": ch}))  # not client- -> ignored
    a.send(compact({"event": "client-x"}))  # no channel -> 4200
    assert a.recv() == INVALID_FORMAT
    a.send(compact({"event": "client-x", "channel": ch, "data": "abc"}))
    assert a.recv() == INVALID_FORMAT
    a.send(compact({"event": "client-x", "channel": ch, "data": 5}))
    assert a.recv() == INVALID_FORMAT
    b.expect_silence(0.3)


# --------------------------------------------------------------------------------------------------
# §8 cache channels
# --------------------------------------------------------------------------------------------------


def test_cache_miss_exact(server, ws_client):
    ws = ws_client(server)
    ch = unique("cache-test-channel.")
    ws.send_json({"event": "pusher:subscribe", "data": {"channel": ch}})
    assert ws.recv() == succeeded(ch)
    assert ws.recv() == compact({"event": "pusher:cache_miss", "channel": ch})


def test_cache_channel_replays_last_client_event(server, ws_client):
    ch = unique("cache-")
    a = ws_client(server)
    a.send_json({"event": "pusher:subscribe", "data": {"channel": ch}})
    a.recv(), a.recv()
    a.send(compact({"event": "client-one", "channel": ch, "data": {"n": 1}}))
    a.send(compact({"event": "client-two", "channel": ch, "data": {"n": 2}}))
    a.ping_pong()
    b = ws_client(server)
    b.send_json({"event": "pusher:subscribe", "data": {"channel": ch}})
    assert b.recv() == succeeded(ch)
    assert b.recv() == compact({"event": "client-two", "channel": ch, "data": {"n": 2}})


# --------------------------------------------------------------------------------------------------
# §9 keep-alive, §10 rate limit
# --------------------------------------------------------------------------------------------------


# ping_interval 2 where a client answers: a sweep prunes what the one before pinged, so an answer has one
# interval to arrive, and 1 s was missed on a loaded CI machine.
def test_idle_ping_then_4201_prune_and_member_removed(reverb_server, ws_client):
    server = reverb_server(ping_interval=2)
    ch = unique("presence-")
    idle = ws_client(server)
    presence_sub(idle, server, ch, '{"user_id":"idle"}')
    idle.recv()
    watcher = ws_client(server)
    # A control-frame ping switches the watcher to control-frame pings (§9), which the websockets
    # client answers by itself, so only `idle` goes unanswered.
    assert watcher.conn.ping(b"w").wait(5)
    presence_sub(watcher, server, ch, '{"user_id":"watcher"}')
    watcher.recv()
    assert idle.recv() == compact({"event": "pusher_internal:member_added", "data": '{"user_id":"watcher"}',
                                   "channel": ch})
    assert idle.recv(timeout=6) == '{"event":"pusher:ping"}'
    code, reason, frames = idle.expect_closed(timeout=6)
    assert frames == [error_frame(4201, "Pong reply not received in time")]
    assert (code, reason) == (4201, "Pong reply not received in time")
    assert watcher.recv(timeout=6) == compact({"event": "pusher_internal:member_removed",
                                               "data": '{"user_id":"idle"}', "channel": ch})
    watcher.ping_pong()


def test_ping_frame_after_client_control_frame(reverb_server, raw_ws):
    server = reverb_server(ping_interval=2)
    r = raw_ws(server)
    raw_established(r)
    r.send_frame(0x9, b"x")
    assert r.recv_frame() == (True, 0xA, b"x")
    assert r.recv_frame(timeout=6) == (True, 0x9, b"")  # control-frame ping now, not pusher:ping


def test_unsubscribed_socket_is_pinged_and_activity_resets(reverb_server, ws_client):
    server = reverb_server(ping_interval=2)
    ws = ws_client(server)
    # keep sending garbage (activity) for ~2.5 s: no ping may arrive meanwhile
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        ws.send("garbage")
        assert ws.recv() == INVALID_FORMAT
        time.sleep(0.1)
    assert ws.recv(timeout=6) == '{"event":"pusher:ping"}'
    ws.send('{"event":"pusher:pong","data":{}}')
    ws.ping_pong()


def test_rate_limit(reverb_server, ws_client):
    server = reverb_server(rate_limiting_enabled=True, rate_limit_max_attempts=3, rate_limit_decay_seconds=1)
    ws = ws_client(server)
    t0 = time.monotonic()
    for _ in range(3):
        ws.send('{"event":"pusher:ping","data":{}}')
    ch = unique("test-")
    ws.send_json({"event": "pusher:subscribe", "data": {"channel": ch}})  # 4th: refused, not processed
    for _ in range(3):
        assert ws.recv() == '{"event":"pusher:pong"}'
    assert ws.recv() == RATE_LIMITED
    assert time.monotonic() - t0 < 0.9, "test too slow to be meaningful"
    time.sleep(max(0.0, 1.15 - (time.monotonic() - t0)))  # wait for the window to end
    ws.send('{"event":"pusher:ping","data":{}}')
    assert ws.recv() == '{"event":"pusher:pong"}'


def test_rate_limit_terminate(reverb_server, ws_client):
    server = reverb_server(rate_limiting_enabled=True, rate_limit_max_attempts=2, rate_limit_decay_seconds=5,
                           rate_limit_terminate=True)
    ws = ws_client(server)
    for _ in range(3):
        ws.send('{"event":"pusher:ping","data":{}}')
    code, reason, frames = ws.expect_closed()
    assert frames == ['{"event":"pusher:pong"}', '{"event":"pusher:pong"}', RATE_LIMITED]
    assert (code, reason) == (1008, "Rate limit exceeded")


# --------------------------------------------------------------------------------------------------
# §11 sizes, Close handling
# --------------------------------------------------------------------------------------------------


def _sized_ping(size: int) -> str:
    base = '{"event":"pusher:ping","data":{"p":""}}'
    frame = base.replace('""', '"' + "x" * (size - len(base)) + '"')
    assert len(frame) == size
    return frame


def test_max_message_size_boundary_1009(reverb_server, ws_client):
    server = reverb_server(max_message_size=1000)
    ws = ws_client(server)
    ws.send(_sized_ping(1000))
    assert ws.recv() == '{"event":"pusher:pong"}'
    ws.send(_sized_ping(1001))
    code, reason, frames = ws.expect_closed()
    assert frames == []
    assert (code, reason) == (1009, "Maximum message size exceeded")


def test_max_message_size_fragmented_1009(reverb_server, raw_ws):
    server = reverb_server(max_message_size=1000)
    r = raw_ws(server)
    raw_established(r)
    msg = _sized_ping(1001).encode()
    r.send_frame(0x1, msg[:600], fin=False)
    r.send_frame(0x0, msg[600:], fin=True)
    code, reason, _ = r.recv_close()
    assert (code, reason) == (1009, "Maximum message size exceeded")
    assert r.tcp_closed()


def test_fragmented_message_reassembled_with_interleaved_ping(server, raw_ws):
    r = raw_ws(server)
    raw_established(r)
    msg = b'{"event":"pusher:ping","data":{}}'
    r.send_frame(0x1, msg[:10], fin=False)
    r.send_frame(0x9, b"mid")
    r.send_frame(0x0, msg[10:20], fin=False)
    r.send_frame(0x0, msg[20:], fin=True)
    assert r.recv_frame() == (True, 0xA, b"mid")
    assert r.recv_text() == '{"event":"pusher:pong"}'


@pytest.mark.parametrize("code,reason", [(4000, "bye"), (1000, ""), (3001, "x" * 50)])
def test_client_close_echoed(server, raw_ws, code, reason):
    r = raw_ws(server)
    raw_established(r)
    r.send_frame(0x8, code.to_bytes(2, "big") + reason.encode())
    assert r.recv_close()[:2] == (code, reason)
    assert r.tcp_closed()


def test_empty_client_close_answered_1000(server, raw_ws):
    r = raw_ws(server)
    raw_established(r)
    r.send_frame(0x8, b"")
    fin, op, payload = r.recv_frame()
    assert (op, payload) == (0x8, b"\x03\xe8")
    assert r.tcp_closed()


def test_client_close_via_websockets(server, ws_client):
    ws = ws_client(server)
    ws.conn.close(4000, "bye")
    rcvd = ws.conn.protocol.close_rcvd
    assert rcvd is not None and (rcvd.code, rcvd.reason) == (4000, "bye")


@pytest.mark.parametrize("name,frame_kw,payload,expected", [
    ("unmasked", {"mask": False}, b'{"event":"pusher:ping"}', 1002),
    ("rsv1", {"rsv": 4}, b'{"event":"pusher:ping"}', 1002),
    ("opcode3", {"opcode": 3}, b"x", 1002),
    ("continuation-first", {"opcode": 0}, b"x", 1002),
    ("invalid-utf8", {}, b'{"event":"\xff"}', 1007),
    ("big-control", {"opcode": 9}, b"x" * 126, 1002),
    ("fragmented-control", {"opcode": 9, "fin": False}, b"x", 1002),
    ("close-1-byte", {"opcode": 8}, b"\x03", 1002),
    ("close-bad-code", {"opcode": 8}, b"\x03\xed", 1002),  # 1005
    ("close-invalid-utf8-reason", {"opcode": 8}, b"\x0f\xa0\xff", 1007),
])
def test_protocol_violations(server, raw_ws, name, frame_kw, payload, expected):
    r = raw_ws(server)
    raw_established(r)
    kw = dict(frame_kw)
    opcode = kw.pop("opcode", 1)
    r.send_frame(opcode, payload, **kw)
    code, _, _ = r.recv_close()
    assert code == expected, name
    assert r.tcp_closed()
    server.assert_healthy()


def test_new_data_frame_inside_fragmented_message_1002(server, raw_ws):
    r = raw_ws(server)
    raw_established(r)
    r.send_frame(0x1, b'{"ev', fin=False)
    r.send_frame(0x1, b'{"event":"pusher:ping"}')
    assert r.recv_close()[0] == 1002


def test_frames_in_handshake_packet_are_processed(server):
    import socket as so
    s = so.create_connection((server.host, server.port), timeout=5)
    try:
        key = base64.b64encode(b"0123456789abcdef").decode()
        req = (f"GET /app/{server.key} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
        s.sendall(req + RawWS.build_frame(0x1, b'{"event":"pusher:ping","data":{}}'))
        r = RawWS.__new__(RawWS)
        r.sock, r.buf = s, b""
        status, _, head = r._read_head()
        assert status == 101, head
        assert json.loads(r.recv_text())["event"] == "pusher:connection_established"
        assert r.recv_text() == '{"event":"pusher:pong"}'
    finally:
        s.close()


def test_graceful_shutdown_closes_clients_1001(reverb_server, ws_client):
    server = reverb_server()
    ws = ws_client(server)
    ws.subscribe(unique("test-"))
    rc_holder = {}
    import threading
    t = threading.Thread(target=lambda: rc_holder.setdefault("rc", server.terminate()))
    t.start()
    code, reason, frames = ws.expect_closed(timeout=10)
    t.join(12)
    assert (code, reason) == (1001, "Server shutting down")
    assert rc_holder.get("rc") == 0
    assert "   INFO  Gracefully terminating connections." in server.stdout_lines


def test_sigterm_right_after_banner_exits_0(reverb_binary, tmp_path):
    """config.md §6.1: SIGTERM exits 0. The banner means "serving", so a signal arriving just after it
    must already take the graceful path (not the default action, exit -15)."""
    from conftest import ReverbServer
    codes = []
    for i in range(5):
        workdir = tmp_path / f"s{i}"
        workdir.mkdir()
        s = ReverbServer(reverb_binary, workdir, {"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k",
                                                  "REVERB_APP_SECRET": "s"}, [])
        rc = s.terminate()
        if rc is None:
            s.kill()
        s.close_files()
        codes.append(rc)
    assert codes == [0] * 5
