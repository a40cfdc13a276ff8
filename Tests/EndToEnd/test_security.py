"""Security: replayed and cross-app HTTP signatures, stolen or mismatched channel auth, oversized auth,
messages and presence data, oversized HTTP heads, and floods of idle TCP / stalled TLS connections.

Each test asserts the spec'd outcome exactly (http-api.md §1, §2, §5; protocol.md §4.3, §5.1, §11, §12)
and that the server keeps serving everybody else afterwards.

The two 15 s idle cut-off tests (10,000 idle TCP connections; stalled TLS handshakes) share one
module-scoped fixture that opens both floods at once, so their waits overlap.
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import re
import resource
import selectors
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pusher
import pytest

from conftest import (
    WS,
    ReverbServer,
    channel_signature,
    compact,
    error_frame,
    hmac_hex,
    http_request,
    raw_established,
    signed_http,
    signed_query,
    subscribe_private,
    unique,
    wait_until,
)

UNAUTHORIZED = error_frame(4009, "Connection is unauthorized")
SIGNATURE_INVALID = b"Authentication signature invalid."
TOO_LARGE = (b"HTTP/1.1 413 Payload Too Large\r\n", b"Payload too large.")
QUERY = "protocol=7&client=js&version=8.4.0&flash=false"


def event_frame(event: str, data: str, channel: str) -> str:
    return compact({"event": event, "data": data, "channel": channel})


def events_body(channel: str, name: str = "Evt", data: str = "{}") -> bytes:
    return compact({"name": name, "data": data, "channel": channel}).encode()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def presence_cd(user_id, info=None) -> str:
    return compact({"user_id": user_id, "user_info": info})


def presence_subscribe(ws, server, channel: str, cd: str):
    """Subscribe with a correct signature; returns the first frame received."""
    auth = f"{server.key}:{channel_signature(server.secret, ws.socket_id, channel, cd)}"
    ws.send_json({"event": "pusher:subscribe", "data": {"auth": auth, "channel_data": cd, "channel": channel}})
    return ws.recv(timeout=20)


def occupied(server, channel: str) -> bool:
    status, _, body = signed_http(server, "GET", f"/apps/{server.app_id}/channels/{channel}")
    assert status == 200, body
    return json.loads(body)["occupied"]


def connections(server) -> int:
    status, _, body = signed_http(server, "GET", f"/apps/{server.app_id}/connections")
    assert status == 200, body
    return json.loads(body)["connections"]


def assert_bystander_served(server, ws, channel: str, name: str = "StillServed"):
    """An HTTP event still reaches a subscriber that had nothing to do with the attack."""
    status, _, body = signed_http(server, "POST", f"/apps/{server.app_id}/events", events_body(channel, name, "ok"))
    assert (status, body) == (200, b"{}")
    assert ws.recv() == event_frame(name, "ok", channel)
    server.assert_healthy()


# --------------------------------------------------------------------------------------------------
# 1. Replayed signed requests (http-api.md §2.1, §2.5: abs(now - ts) <= 600, else 401)
# --------------------------------------------------------------------------------------------------


def _start_of_a_second():
    """Sleeps until just after a wall-clock second begins, so the next few requests are checked in the
    same second they were signed in (a request signed 601 s ahead becomes valid one second later)."""
    time.sleep(1.0 - (time.time() % 1.0) + 0.01)


@pytest.mark.http_api
@pytest.mark.parametrize("offset", [-601, 601], ids=["601s-past", "601s-future"])
def test_signed_request_outside_timestamp_window_is_refused(server, ws_client, offset):
    ch = unique("replay-")
    ws = ws_client(server)
    ws.subscribe(ch)
    path = f"/apps/{server.app_id}/events"
    body = events_body(ch, "Replayed", "captured")
    _start_of_a_second()
    ts = int(time.time()) + offset
    url = f"{path}?{signed_query('POST', path, server.key, server.secret, body, timestamp=ts)}"
    replies = [http_request(server, "POST", url, body) for _ in range(2)]  # the captured request, replayed
    get_reply = signed_http(server, "GET", f"/apps/{server.app_id}/channels", timestamp=ts)
    after = int(time.time())
    assert after - (ts - offset) == 0, "the requests took longer than the second they had"
    expired = re.compile(rf"^Timestamp expired: {ts} is not within 600 s of server time {ts - offset}\.$")
    for status, headers, resp in replies:
        assert status == 401, (status, resp)
        assert expired.match(resp.decode()), resp
        assert headers.get("content-type") == "text/plain; charset=utf-8"
    status, _, resp = get_reply
    assert status == 401 and expired.match(resp.decode()), (status, resp)
    ws.expect_silence(0.4)  # nothing was delivered
    # Inside the window (a 2 s margin for the clock ticking between signing and checking): accepted.
    inside = int(time.time()) + (598 if offset > 0 else -598)
    status, _, resp = signed_http(server, "GET", f"/apps/{server.app_id}/channels", timestamp=inside)
    assert (status, resp) == (200, compact({"channels": {ch: {}}}).encode())
    # The same request re-signed with a fresh timestamp is accepted and delivered.
    status, _, resp = signed_http(server, "POST", path, body)
    assert (status, resp) == (200, b"{}")
    assert ws.recv() == event_frame("Replayed", "captured", ch)
    server.assert_healthy()


def _signed_with_raw_timestamp(method: str, path: str, key: str, secret: str, timestamp: str) -> str:
    """A query signed correctly over an arbitrary `auth_timestamp` text."""
    q = {"auth_key": key, "auth_timestamp": timestamp, "auth_version": "1.0"}
    to_sign = "&".join(f"{k}={v}" for k, v in sorted(q.items()))
    q["auth_signature"] = hmac_hex(secret, f"{method}\n{path}\n{to_sign}")
    return urllib.parse.urlencode(q)


@pytest.mark.http_api
@pytest.mark.parametrize("timestamp", ["", "abc", "1e9", "-1", "0", "99999999999999999999999999999999",
                                       "-99999999999999999999999999999999", " 1", "1.5", "0x10"])
def test_malformed_timestamps_are_refused(server, timestamp):
    """`auth_timestamp` must be decimal Unix seconds within 600 s: anything else is a 401 (the spec does
    not name the text for a non-decimal value, so any of the three §2.5 texts passes), never a crash or
    an overflow that wraps into the window."""
    path = f"/apps/{server.app_id}/channels"
    status, _, resp = http_request(server, "GET",
                                   f"{path}?{_signed_with_raw_timestamp('GET', path, server.key, server.secret, timestamp)}")
    assert status == 401, (timestamp, status, resp)
    assert resp in (SIGNATURE_INVALID, b"Authentication parameters missing.") or \
        resp.startswith(b"Timestamp expired: "), resp
    server.assert_healthy()


# --------------------------------------------------------------------------------------------------
# 2. Another app's secret (two apps on one server, config.md §3.3)
# --------------------------------------------------------------------------------------------------

APP_A = {"app_id": "520001", "key": "sec-key-a", "secret": "sec-secret-a"}
APP_B = {"app_id": "520002", "key": "sec-key-b", "secret": "sec-secret-b"}
APP_C_KEY = "sec-key-c"  # configured nowhere


@pytest.fixture
def two_apps(reverb_server, tmp_path):
    workdir = tmp_path / "two-apps"
    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "reverb.json").write_text(
        json.dumps({"apps": {"provider": "config", "apps": [APP_A, APP_B]}}))
    server = reverb_server(env={"REVERB_APP_ID": None, "REVERB_APP_KEY": None, "REVERB_APP_SECRET": None},
                           workdir=workdir)
    server.app_id, server.key, server.secret = APP_A["app_id"], APP_A["key"], APP_A["secret"]
    expected = [f"   INFO  Serving app {a['app_id']} (key: {a['key']})." for a in (APP_A, APP_B)]
    wait_until(lambda: all(line in server.stdout_lines for line in expected), message=f"{expected}")
    return server


def _cross_app_routes(app_id: str, ch: str, pres: str):
    """(method, path, body) for every signed `/apps/{id}/...` route of one app; each answers 200 with that
    app's own credentials once `ch` has a subscriber and `pres` a member (user 42)."""
    batch = compact({"batch": [{"name": "Batch", "channel": ch, "data": "b"}]}).encode()
    return [
        ("POST", f"/apps/{app_id}/events", events_body(ch, "Cross", "x")),
        ("POST", f"/apps/{app_id}/batch_events", batch),
        ("GET", f"/apps/{app_id}/channels", None),
        ("GET", f"/apps/{app_id}/channels/{ch}", None),
        ("GET", f"/apps/{app_id}/channels/{pres}/users", None),
        ("GET", f"/apps/{app_id}/connections", None),
        ("POST", f"/apps/{app_id}/users/42/terminate_connections", b"{}"),
    ]


@pytest.mark.http_api
def test_other_apps_secret_is_refused_on_every_route(two_apps, ws_client):
    """On every `/apps/{id}/...` route of either app: the other app's secret with this app's key, the other
    app's complete credentials, the other app's key with this app's secret, and an unknown key are all
    `401 Authentication signature invalid.`; nothing is delivered and nobody is terminated."""
    server = two_apps
    apps = {"A": APP_A, "B": APP_B}
    watchers = {}
    for name, app in apps.items():
        ch, pres = unique(f"cross-{name}-"), unique(f"presence-cross-{name}-")
        ws = ws_client(server, key=app["key"])
        ws.subscribe(ch)
        auth_cd = presence_cd(42)
        auth = f"{app['key']}:{channel_signature(app['secret'], ws.socket_id, pres, auth_cd)}"
        ws.send_json({"event": "pusher:subscribe", "data": {"auth": auth, "channel_data": auth_cd, "channel": pres}})
        assert json.loads(ws.recv())["event"] == "pusher_internal:subscription_succeeded"
        watchers[name] = (ws, ch, pres)
    wrong = []
    for target, other in (("A", "B"), ("B", "A")):
        me, them = apps[target], apps[other]
        _, ch, pres = watchers[target]
        combos = [(me["key"], them["secret"]), (them["key"], them["secret"]), (them["key"], me["secret"]),
                  (APP_C_KEY, me["secret"]), (APP_C_KEY, them["secret"])]
        for method, path, body in _cross_app_routes(me["app_id"], ch, pres):
            for key, secret in combos:
                status, _, resp = signed_http(server, method, path, body, key=key, secret=secret)
                if (status, resp) != (401, SIGNATURE_INVALID):
                    wrong.append((method, path, key, secret, status, resp[:120]))
    assert wrong == [], wrong
    for ws, _, _ in watchers.values():
        ws.expect_silence(0.3)  # no refused event arrived, no refused terminate closed it
        ws.ping_pong()
    # Controls: each app's own credentials work on each route (terminate last: it closes the watcher).
    for name, app in apps.items():
        ws, ch, pres = watchers[name]
        for method, path, body in _cross_app_routes(app["app_id"], ch, pres):
            status, _, resp = signed_http(server, method, path, body, key=app["key"], secret=app["secret"])
            assert status == 200, (method, path, status, resp)
        assert ws.recv() == event_frame("Cross", "x", ch)
        assert ws.recv() == compact({"event": "Batch", "channel": ch, "data": "b"})
        assert ws.expect_closed()[:2] == (1008, "Connection terminated")
    server.assert_healthy()


@pytest.mark.http_api
def test_app_by_auth_key_terminate_is_scoped_to_that_app(two_apps, ws_client):
    """`POST /users/{id}/terminate_connections` finds its app by `auth_key` (http-api.md §3.7): A's key
    signed with B's secret is 401 and terminates nobody; B's own credentials terminate B's user 42 only,
    never A's user 42."""
    server = two_apps
    victims = {}
    for name, app in (("A", APP_A), ("B", APP_B)):
        ws = ws_client(server, key=app["key"])
        pres = unique(f"presence-term-{name}-")
        cd = presence_cd("42")
        auth = f"{app['key']}:{channel_signature(app['secret'], ws.socket_id, pres, cd)}"
        ws.send_json({"event": "pusher:subscribe", "data": {"auth": auth, "channel_data": cd, "channel": pres}})
        assert json.loads(ws.recv())["event"] == "pusher_internal:subscription_succeeded"
        victims[name] = ws
    path = "/users/42/terminate_connections"
    for key, secret in ((APP_A["key"], APP_B["secret"]), (APP_B["key"], APP_A["secret"]),
                        (APP_C_KEY, APP_A["secret"]), (APP_C_KEY, APP_B["secret"])):
        status, _, resp = signed_http(server, "POST", path, b"{}", key=key, secret=secret)
        assert (status, resp) == (401, SIGNATURE_INVALID), (key, secret, status, resp)
    victims["A"].ping_pong()
    victims["B"].ping_pong()
    status, _, resp = signed_http(server, "POST", path, b"{}", key=APP_B["key"], secret=APP_B["secret"])
    assert (status, resp) == (200, b"{}")
    assert victims["B"].expect_closed()[:2] == (1008, "Connection terminated")
    victims["A"].expect_silence(0.3)
    victims["A"].ping_pong()  # app A's user 42 is untouched
    server.assert_healthy()


# --------------------------------------------------------------------------------------------------
# 3. Channel auth for another socket, channel or channel_data (protocol.md §4.3)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["private-", "presence-"])
def test_channel_auth_stolen_from_another_socket_is_refused(server, ws_client, prefix):
    """The victim's valid auth (its socket id) replayed by the attacker: exact 4009, the attacker's
    socket stays open, no channel is created, and the victim can still subscribe with it."""
    ch = unique(prefix)
    cd = presence_cd(7, {"name": "victim"}) if prefix == "presence-" else None
    victim, attacker = ws_client(server), ws_client(server)
    stolen = f"{server.key}:{channel_signature(server.secret, victim.socket_id, ch, cd)}"
    attacker.subscribe(ch, auth=stolen, channel_data=cd, expect=None)
    assert attacker.recv() == UNAUTHORIZED
    attacker.ping_pong()
    assert not occupied(server, ch)
    victim.subscribe(ch, auth=stolen, channel_data=cd)  # still valid for its owner
    # A second try after the channel exists fails the same way, and the member sees nothing.
    attacker.subscribe(ch, auth=stolen, channel_data=cd, expect=None)
    assert attacker.recv() == UNAUTHORIZED
    victim.expect_silence(0.3)
    attacker.ping_pong()
    bystander = ws_client(server)
    pub = unique("bystander-")
    bystander.subscribe(pub)
    assert_bystander_served(server, bystander, pub)


@pytest.mark.parametrize("prefix", ["private-", "presence-", "private-encrypted-", "private-cache-"])
def test_channel_auth_for_another_channel_is_refused(server, ws_client, prefix):
    ws = ws_client(server)
    signed_for = unique(prefix)
    cd = presence_cd(1) if prefix == "presence-" else None
    auth = f"{server.key}:{channel_signature(server.secret, ws.socket_id, signed_for, cd)}"
    for other in [signed_for + "x", signed_for[:-1], prefix + signed_for[len(prefix):].upper(), "private-" + signed_for,
                  signed_for.replace(prefix, "presence-" if prefix != "presence-" else "private-", 1)]:
        ws.subscribe(other, auth=auth, channel_data=cd if other.startswith("presence-") else None, expect=None)
        assert ws.recv() == UNAUTHORIZED, other
        assert not occupied(server, other)
    ws.ping_pong()
    ws.subscribe(signed_for, auth=auth, channel_data=cd)  # the channel it was signed for still works
    server.assert_healthy()


def test_presence_auth_for_other_channel_data_is_refused(server, ws_client):
    """A signature over user 1's channel_data cannot carry user 2, another user_info, or the same JSON
    re-spaced (the signature covers the bytes as received); the present member sees no member_added."""
    ch = unique("presence-")
    member = ws_client(server)
    assert json.loads(presence_subscribe(member, server, ch, presence_cd(99)))["event"] == \
        "pusher_internal:subscription_succeeded"
    ws = ws_client(server)
    signed_cd = compact({"user_id": 1, "user_info": {"name": "Ann"}})
    auth = f"{server.key}:{channel_signature(server.secret, ws.socket_id, ch, signed_cd)}"
    for sent_cd in [compact({"user_id": 2, "user_info": {"name": "Ann"}}),
                    compact({"user_id": "1", "user_info": {"name": "Ann"}}),
                    compact({"user_id": 1, "user_info": {"name": "Admin"}}),
                    compact({"user_id": 1, "user_info": {"name": "Ann"}, "role": "admin"}),
                    json.dumps({"user_id": 1, "user_info": {"name": "Ann"}}),  # same JSON, other bytes
                    signed_cd + " "]:
        ws.subscribe(ch, auth=auth, channel_data=sent_cd, expect=None)
        assert ws.recv() == UNAUTHORIZED, sent_cd
    # No channel_data at all with a signature that covered one: refused too (4009 or, since presence
    # data is checked after the signature, never a subscription).
    ws.subscribe(ch, auth=auth, expect=None)
    assert ws.recv() == UNAUTHORIZED
    member.expect_silence(0.3)
    ws.ping_pong()
    ws.subscribe(ch, auth=auth, channel_data=signed_cd)
    assert member.recv() == compact({"event": "pusher_internal:member_added", "data": signed_cd, "channel": ch})
    server.assert_healthy()


def test_private_channel_data_cannot_be_added_after_signing(reverb_server, ws_client):
    """A private signature made without channel_data does not cover one added by the client: an
    attacker cannot give itself a `user_id` (used for whispers' user_id and for terminate, §7.2)."""
    server = reverb_server(accept_client_events_from="members")
    ch = unique("private-")
    peer = ws_client(server)
    subscribe_private(peer, server, ch)
    ws = ws_client(server)
    auth = f"{server.key}:{channel_signature(server.secret, ws.socket_id, ch)}"
    ws.subscribe(ch, auth=auth, channel_data=compact({"user_id": "admin"}), expect=None)
    assert ws.recv() == UNAUTHORIZED
    ws.subscribe(ch, auth=auth)
    ws.send_json({"event": "client-hi", "channel": ch, "data": {}})
    assert peer.recv() == compact({"event": "client-hi", "channel": ch, "data": {}})  # no user_id
    server.assert_healthy()


# --------------------------------------------------------------------------------------------------
# 4. Over-long auth strings and oversized messages (protocol.md §11)
# --------------------------------------------------------------------------------------------------


def _sized_subscribe(size: int, key: str, channel: str) -> str:
    base = compact({"event": "pusher:subscribe", "data": {"auth": f"{key}:", "channel": channel}})
    pad = size - len(base)
    assert pad >= 0
    msg = base.replace(f'"{key}:"', f'"{key}:' + "f" * pad + '"')
    assert len(msg) == size
    return msg


def test_overlong_auth_at_default_message_limit_is_4009(server, ws_client):
    """Default max_message_size 10,000: a subscribe of exactly 10,000 bytes, almost all of it `auth`,
    is processed (exact 4009, socket open); 10,001 bytes closes only that socket with 1009."""
    bystander = ws_client(server)
    pub = unique("bystander-")
    bystander.subscribe(pub)
    ws = ws_client(server)
    ch = unique("private-")
    ws.send(_sized_subscribe(10_000, server.key, ch))
    assert ws.recv() == UNAUTHORIZED
    ws.ping_pong()
    ws.send(_sized_subscribe(10_001, server.key, ch))
    code, reason, frames = ws.expect_closed()
    assert (code, reason, frames) == (1009, "Maximum message size exceeded", [])
    wait_until(lambda: connections(server) == 1, message="the closed socket to leave the connection count")
    assert_bystander_served(server, bystander, pub)


def test_hundred_kilobyte_auth_within_raised_limit_is_4009(reverb_server, ws_client):
    """With max_message_size 200,000: 100 KB auth strings (garbage, and a valid signature with 100 KB
    appended, with or without a colon) are refused with 4009; a prefix match is never enough. (A long
    *key* part before a valid signature passes: the key part is not checked, protocol.md §4.3.)"""
    server = reverb_server(max_message_size=200_000)
    ws = ws_client(server)
    ch = unique("private-")
    good = channel_signature(server.secret, ws.socket_id, ch)
    for auth in [f"{server.key}:" + "f" * 100_000, f"{server.key}:{good}" + "0" * 100_000,
                 f"{server.key}:{good}:" + "x" * 100_000, f"{good}:" + "x" * 100_000, "x" * 100_000,
                 f"{server.key}:" + "é" * 16_000]:  # \u00e9 escapes: 96 KB on the wire
        ws.subscribe(ch, auth=auth, expect=None)
        assert ws.recv() == UNAUTHORIZED, auth[:80]
    assert not occupied(server, ch)
    ws.ping_pong()
    ws.subscribe(ch, auth=f"{server.key}:{good}")
    server.assert_healthy()


def test_message_over_max_message_size_closes_with_1009(server, ws_client, raw_ws):
    """A 100 KB message at the default limit: Close 1009 `Maximum message size exceeded`, then TCP close;
    others keep receiving."""
    bystander = ws_client(server)
    pub = unique("bystander-")
    bystander.subscribe(pub)
    r = raw_ws(server)
    raw_established(r)
    r.send_text(_sized_subscribe(100_000, server.key, unique("private-")))
    code, reason, skipped = r.recv_close()
    assert (code, reason, skipped) == (1009, "Maximum message size exceeded", [])
    assert r.tcp_closed(timeout=3)
    assert_bystander_served(server, bystander, pub)


def test_unlimited_app_still_has_the_16_mib_ceiling(reverb_server, ws_client, raw_ws):
    """max_message_size 0: no app limit (a 200 KB auth gets its 4009), but a frame header announcing
    16 MiB + 1 bytes is refused from the header alone: Close 1009, without the server buffering it."""
    server = reverb_server(max_message_size=0)
    ws = ws_client(server)
    ws.subscribe(unique("private-"), auth=f"{server.key}:" + "a" * 200_000, expect=None)
    assert ws.recv() == UNAUTHORIZED
    ws.ping_pong()
    r = raw_ws(server)
    raw_established(r)
    before = rss_kib(server.proc.pid)
    r.sock.sendall(struct.pack("!BBQ", 0x81, 0x80 | 127, 16 * 1024 * 1024 + 1) + b"\x00\x00\x00\x00" + b"x" * 100)
    code, reason, _ = r.recv_close()
    assert (code, reason) == (1009, "Maximum message size exceeded")
    assert rss_kib(server.proc.pid) - before < 8 * 1024
    ws.ping_pong()
    server.assert_healthy()


# --------------------------------------------------------------------------------------------------
# 5. A 1 MB presence member (protocol.md §5.1, §5.3; config.md max_presence_member_size)
# --------------------------------------------------------------------------------------------------


def test_one_megabyte_presence_members_are_delivered_intact_and_memory_is_bounded(reverb_server, ws_client):
    server = reverb_server(max_message_size=2_000_000)
    ch = unique("presence-big-")
    watcher = ws_client(server)
    first = json.loads(presence_subscribe(watcher, server, ch, presence_cd("watcher")))
    assert first["event"] == "pusher_internal:subscription_succeeded"
    bystander = ws_client(server)
    pub = unique("bystander-")
    bystander.subscribe(pub)
    time.sleep(0.3)
    baseline = rss_kib(server.proc.pid)
    members = 3
    joiners = []
    for i in range(members):
        blob = f"{i}" + "x" * 1_000_000 + "\u00e9\"\\<>/"  # escapes and non-ASCII survive too
        cd = presence_cd(f"big-{i}", {"blob": blob})
        ws = ws_client(server)
        frame = json.loads(presence_subscribe(ws, server, ch, cd))
        assert frame["event"] == "pusher_internal:subscription_succeeded", str(frame)[:200]
        presence = json.loads(frame["data"])["presence"]
        assert presence["count"] == i + 2
        assert presence["hash"][f"big-{i}"] == {"blob": blob}
        added = watcher.recv(timeout=20)  # parsed: the value holds "/" and non-ASCII (protocol.md §0)
        assert json.loads(added) == {"event": "pusher_internal:member_added", "data": cd, "channel": ch}, added[:200]
        for earlier in joiners:  # earlier big members get the whole 1 MB member_added too
            assert json.loads(earlier.recv(timeout=20))["data"] == cd
        joiners.append(ws)
    time.sleep(0.3)
    grown_kib = rss_kib(server.proc.pid) - baseline
    per_member_mib = grown_kib / 1024 / members
    print(f"\nRSS: baseline {baseline} KiB, after {members} x 1 MB presence members +{grown_kib} KiB "
          f"= {per_member_mib:.2f} MiB per member")
    status, _, body = signed_http(server, "GET", f"/apps/{server.app_id}/channels/{ch}/users")
    assert (status, json.loads(body)) == (200, {"users": [{"id": "watcher"}] +
                                                [{"id": f"big-{i}"} for i in range(members)]})
    assert per_member_mib <= 10, f"RSS grew {per_member_mib:.2f} MiB per 1 MB member"
    for ws in joiners:
        ws.close()
    for i in range(members):
        assert watcher.recv(timeout=10) == compact({"event": "pusher_internal:member_removed",
                                                    "data": compact({"user_id": f"big-{i}"}), "channel": ch})
    time.sleep(0.3)
    print(f"RSS after the big members left: {rss_kib(server.proc.pid)} KiB")
    assert_bystander_served(server, bystander, pub)


def test_presence_member_size_limit_refuses_one_megabyte_member(reverb_server, ws_client):
    server = reverb_server(max_message_size=2_000_000, env={"REVERB_APP_MAX_PRESENCE_MEMBER_SIZE": "1024"})
    ch = unique("presence-limit-")
    watcher = ws_client(server)
    assert json.loads(presence_subscribe(watcher, server, ch, presence_cd("w")))["event"] == \
        "pusher_internal:subscription_succeeded"
    limit_error = error_frame(4100, "Presence member data size limit (1024 bytes) exceeded")
    ws = ws_client(server)
    big = presence_cd("big", {"blob": "x" * 1_000_000})
    assert presence_subscribe(ws, server, ch, big) == limit_error
    # the boundary: channel_data of exactly 1024 bytes joins, 1025 bytes does not
    base = presence_cd("edge", {"b": ""})
    exact = presence_cd("edge", {"b": "y" * (1024 - len(base))})
    over = presence_cd("edge", {"b": "y" * (1025 - len(base))})
    assert (len(exact), len(over)) == (1024, 1025)
    assert presence_subscribe(ws, server, ch, over) == limit_error
    watcher.expect_silence(0.3)  # no member event for a refused member
    ws.ping_pong()
    assert json.loads(presence_subscribe(ws, server, ch, exact))["event"] == "pusher_internal:subscription_succeeded"
    assert watcher.recv() == compact({"event": "pusher_internal:member_added", "data": exact, "channel": ch})
    server.assert_healthy()


# --------------------------------------------------------------------------------------------------
# 6. HTTP request line and header sizes (http-api.md §1 "Size", §5: 413 for line + headers + body)
# --------------------------------------------------------------------------------------------------


def raw_exchange(server, request: bytes, timeout: float = 10.0):
    """Sends `request` from a thread (the server may answer and close before it is all sent) while
    reading until the server closes; returns (reply bytes, closed_by_server)."""
    sock = socket.create_connection((server.host, server.port), timeout=timeout)

    def send():
        try:
            sock.sendall(request)
        except OSError:
            pass  # closed by the server after its answer: nothing beyond the limit is read

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    reply = b""
    closed = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            reply += chunk
    finally:
        sock.close()
        sender.join(5)
    return reply, closed


def assert_413_and_closed(reply: bytes, closed: bool, what: str):
    assert reply.startswith(TOO_LARGE[0]), (what, reply[:300])
    head, _, body = reply.partition(b"\r\n\r\n")
    assert body == TOO_LARGE[1], (what, reply[:300])
    assert b"\r\nConnection: close" in head, (what, head)
    assert b"\r\nContent-Type: text/plain; charset=utf-8" in head, (what, head)
    assert closed, f"{what}: connection left open after 413"


def test_overlong_request_line_gets_413_and_close(server, ws_client):
    """The spec has no 414: the request line counts towards max_request_size (10,000 bytes), so an
    over-long URL is `413 Payload too large.` and the connection is closed."""
    bystander = ws_client(server)
    pub = unique("bystander-")
    bystander.subscribe(pub)
    for what, target in [("20 KB /up query", "/up?" + "a" * 20_000),
                         ("20 KB path", "/" + "p" * 20_000),
                         ("1 MB signed API URL", f"/apps/{server.app_id}/channels?filter_by_prefix=" + "b" * 1_000_000),
                         ("64 KB channel name", f"/apps/{server.app_id}/channels/" + "c" * 65_536)]:
        reply, closed = raw_exchange(server, f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert_413_and_closed(reply, closed, what)
    # just under the limit: an ordinary answer on a kept-alive connection
    target = "/up?" + "a" * (10_000 - 200)
    reply, closed = raw_exchange(server, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and reply.endswith(b'{"health":"OK"}'), reply[:300]
    assert_bystander_served(server, bystander, pub)


def test_oversized_header_block_gets_413_and_close(server, ws_client):
    bystander = ws_client(server)
    pub = unique("bystander-")
    bystander.subscribe(pub)
    head = "GET /up HTTP/1.1\r\nHost: x\r\n"
    for what, headers in [("one 20 KB header", "X-Big: " + "b" * 20_000 + "\r\n"),
                          ("3,000 small headers", "".join(f"X-H{i}: v\r\n" for i in range(3000))),
                          ("one 1 MB header", "X-Huge: " + "h" * 1_000_000 + "\r\n"),
                          ("a 20 KB header name", "X-" + "n" * 20_000 + ": v\r\n"),
                          ("20 KB of folded continuation lines", "X-Fold: a\r\n" + " b\r\n" * 5000)]:
        reply, closed = raw_exchange(server, (head + headers + "\r\n").encode())
        if what.startswith("20 KB of folded"):
            # obsolete line folding may be refused as unparseable before the limit is reached
            assert reply.startswith((TOO_LARGE[0], b"HTTP/1.1 400 Bad Request\r\n")) and closed, (what, reply[:200])
            continue
        assert_413_and_closed(reply, closed, what)
    # A keep-alive connection: a good request is answered, then an oversized one gets 413 and close.
    good = b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n"
    bad = (head + "X-Big: " + "b" * 20_000 + "\r\n\r\n").encode()
    reply, closed = raw_exchange(server, good + bad)
    first, _, rest = reply.partition(b'{"health":"OK"}')
    assert first.startswith(b"HTTP/1.1 200 OK\r\n"), reply[:300]
    assert_413_and_closed(rest, closed, "pipelined oversized request")
    assert_bystander_served(server, bystander, pub)


def _upgrade_request(path: str, extra: str = "") -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode()


def test_websocket_upgrade_with_huge_headers_gets_413_and_is_not_upgraded(server, ws_client):
    """The upgrade request is an HTTP request like any other: over max_request_size it is `413 Payload
    too large.` and closed, never a 101; just under the limit it upgrades normally."""
    bystander = ws_client(server)
    pub = unique("bystander-")
    bystander.subscribe(pub)
    path = f"/app/{server.key}?{QUERY}"
    for what, request in [("20 KB header", _upgrade_request(path, "X-Big: " + "c" * 20_000 + "\r\n")),
                          ("1 MB header", _upgrade_request(path, "X-Huge: " + "c" * 1_000_000 + "\r\n")),
                          ("2,000 cookies", _upgrade_request(path, "".join(f"Cookie: c{i}=v\r\n" for i in range(2000)))),
                          ("20 KB query", _upgrade_request(path + "&x=" + "q" * 20_000)),
                          ("20 KB Sec-WebSocket-Protocol", _upgrade_request(path, "Sec-WebSocket-Protocol: " +
                                                                            ",".join(["p"] * 10_000) + "\r\n"))]:
        reply, closed = raw_exchange(server, request)
        assert b"101 Switching Protocols" not in reply, what
        assert_413_and_closed(reply, closed, what)
    # 9 KB of headers: still within the limit, a normal upgrade
    ws = WS(server.ws_url(), additional_headers={"X-Filler": "f" * 9000})
    try:
        ws.ping_pong()
    finally:
        ws.close()
    assert connections(server) == 1
    assert_bystander_served(server, bystander, pub)


# --------------------------------------------------------------------------------------------------
# 7 + 8. Floods of idle TCP connections and stalled TLS handshakes (http-api.md §1: an idle connection,
# and one whose request is still incomplete 15 s after its first byte, is closed, without a response).
# One module-scoped fixture opens both floods at once, so the two 15 s waits overlap; what has to
# happen "while they are open" (a normal client is served) is probed inside it and checked by the tests.
# --------------------------------------------------------------------------------------------------

IDLE_CUTOFF = 15.0  # http-api.md §1
CLOSE_DEADLINE = 30.0  # every flood socket must be closed within this long after its own opening
EARLY_SLACK = 0.5


def _raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _start_module_server(binary: Path, workdir: Path, extra_env: dict | None = None) -> ReverbServer:
    workdir.mkdir(parents=True, exist_ok=True)
    env = {"REVERB_APP_ID": "530001", "REVERB_APP_KEY": unique("key-"), "REVERB_APP_SECRET": unique("secret-")}
    env.update(extra_env or {})
    return ReverbServer(binary, workdir, env, [])


def _open_plain_flood(server: ReverbServer, count: int) -> tuple[list[socket.socket], list[float]]:
    """`count` connected TCP sockets that never send a byte, and when each was opened; waits until the
    server has accepted them all (its fd count), in batches that stay below the listen backlog."""
    baseline = open_fds(server.proc.pid)
    socks: list[socket.socket] = []
    opened: list[float] = []
    batch = 500
    for start in range(0, count, batch):
        pending = []
        for _ in range(min(batch, count - start)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex((server.host, server.port))
            assert err in (0, errno.EINPROGRESS), os.strerror(err)
            pending.append(s)
            opened.append(time.monotonic())
        sel = selectors.DefaultSelector()
        for s in pending:
            sel.register(s, selectors.EVENT_WRITE)
        deadline = time.monotonic() + 20
        left = len(pending)
        while left:
            assert time.monotonic() < deadline, f"{left} connects did not complete"
            for key, _ in sel.select(timeout=1):
                err = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                assert err == 0, os.strerror(err)
                sel.unregister(key.fileobj)
                left -= 1
        sel.close()
        socks.extend(pending)
        wait_until(lambda: open_fds(server.proc.pid) >= baseline + len(socks) - 300, timeout=20,
                   interval=0.05, message=f"server to accept {len(socks)} connections")
    wait_until(lambda: open_fds(server.proc.pid) >= baseline + count, timeout=20, interval=0.05,
               message=f"server to accept all {count} connections")
    return socks, opened


class EOFWatcher(threading.Thread):
    """Watches sockets with one selector until each reads EOF (or RST), or until CLOSE_DEADLINE after
    the last one was opened; records, per socket, the seconds from its opening to its close and the
    bytes it received (discarded)."""

    def __init__(self, socks: list[socket.socket], opened: list[float]):
        super().__init__(daemon=True)
        assert len(socks) == len(opened)
        self.socks, self.opened = socks, opened
        self.deadline = max(opened) + CLOSE_DEADLINE
        self.closed_after: dict[int, float] = {}
        self.received: dict[int, int] = {}
        self.last_data_after: dict[int, float] = {}
        self.error: BaseException | None = None

    def run(self):
        try:
            sel = selectors.DefaultSelector()
            for i, s in enumerate(self.socks):
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, i)
            while len(self.closed_after) < len(self.socks):
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    break
                for key, _ in sel.select(timeout=min(0.5, remaining)):
                    i = key.data
                    try:
                        chunk = key.fileobj.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:  # ECONNRESET
                        chunk = b""
                    if chunk:
                        self.received[i] = self.received.get(i, 0) + len(chunk)
                        self.last_data_after[i] = time.monotonic() - self.opened[i]
                        continue
                    self.closed_after[i] = time.monotonic() - self.opened[i]
                    sel.unregister(key.fileobj)
            sel.close()
        except BaseException as e:  # surfaced by the tests
            self.error = e

    def wait(self):
        self.join(max(0.0, self.deadline - time.monotonic()) + 5)
        assert not self.is_alive(), "watcher thread stuck"
        assert self.error is None, repr(self.error)

    def summary(self, indices=None) -> str:
        indices = range(len(self.socks)) if indices is None else indices
        times = sorted(self.closed_after[i] for i in indices if i in self.closed_after)
        text = f"{len(times)}/{len(indices)} closed"
        if times:
            text += (f", {times[0]:.2f} s (first) / {times[len(times) // 2]:.2f} s (median) / "
                     f"{times[-1]:.2f} s (last) after opening")
        got = sum(1 for i in indices if i in self.received)
        return text + (f", {got} received bytes" if got else "")


class Dripper(threading.Thread):
    """Feeds each socket the next byte of `payload` every `interval` seconds (the first at once) until
    the server closes it, the payload runs out, or `stop` is set: a sender that is never complete."""

    def __init__(self, socks: list[socket.socket], payload: bytes, interval: float = 1.0):
        super().__init__(daemon=True)
        self.socks, self.payload, self.interval = socks, payload, interval
        self.stop = threading.Event()
        self.sent = [0] * len(socks)

    def run(self):
        alive = set(range(len(self.socks)))
        end = time.monotonic() + CLOSE_DEADLINE + 5
        while alive and not self.stop.is_set() and time.monotonic() < end:
            for i in list(alive):
                pos = self.sent[i]
                if pos >= len(self.payload):
                    alive.discard(i)
                    continue
                try:
                    if self.socks[i].send(self.payload[pos:pos + 1]) == 1:
                        self.sent[i] += 1
                except BlockingIOError:
                    pass
                except OSError:  # the server closed it
                    alive.discard(i)
            self.stop.wait(self.interval)


def _client_hello() -> bytes:
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert hello[:1] == b"\x16" and len(hello) > 100, hello[:10]
    return hello


def _tls_handshake_then_idle(server: ReverbServer, ctx: ssl.SSLContext) -> socket.socket:
    """A raw socket over which a full TLS handshake was done (through memory BIOs), then nothing: an idle
    HTTPS connection that never sends its request. The raw socket stays watchable for EOF."""
    raw = socket.create_connection((server.host, server.port), timeout=10)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            data = outgoing.read()
            if data:
                raw.sendall(data)
            chunk = raw.recv(65536)
            assert chunk, "server closed during the TLS handshake"
            incoming.write(chunk)
    data = outgoing.read()
    if data:
        raw.sendall(data)  # the client Finished
    return raw


def _tls_context(cert: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = True
    return ctx


def _https_up(server: ReverbServer, cert: Path):
    conn = http.client.HTTPSConnection(server.host, server.port, context=_tls_context(cert), timeout=10)
    try:
        conn.request("GET", "/up")
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _plain_probe(server: ReverbServer) -> dict:
    """A normal client connects, subscribes and receives an HTTP event; `/up` answers."""
    result = {}
    try:
        ws = WS(server.ws_url(), open_timeout=10)
        try:
            result["channel"] = ch = unique("during-flood-")
            ws.subscribe(ch)
            assert server.pusher(timeout=10).trigger(ch, "DuringFlood", "alive") == {}
            result["event"] = ws.recv(timeout=10)
        finally:
            ws.close()
        result["up"] = server.up()
    except BaseException as e:
        result["error"] = repr(e)
    return result


def _tls_probe(server: ReverbServer, cert: Path) -> dict:
    """wss connect + subscribe + an event published over https through the SDK; https `/up`."""
    result = {}
    try:
        ws = WS(f"wss://{server.host}:{server.port}/app/{server.key}?{QUERY}", ssl=_tls_context(cert),
                open_timeout=10)
        try:
            result["channel"] = ch = unique("tls-during-stall-")
            ws.subscribe(ch)
            sdk = pusher.Pusher(app_id=server.app_id, key=server.key, secret=server.secret, host=server.host,
                                port=server.port, ssl=True, timeout=10)
            sdk._pusher_client.http.options["verify"] = str(cert)
            assert sdk.trigger(ch, "DuringStall", "alive") == {}
            result["event"] = ws.recv(timeout=10)
        finally:
            ws.close()
        result["up"] = _https_up(server, cert)
    except BaseException as e:
        result["error"] = repr(e)
    return result


class Floods:
    """What the `floods` fixture opened, probed and is watching."""


@pytest.fixture(scope="module")
def floods(reverb_binary, tmp_path_factory):
    f = Floods()
    f.nofile = _raise_nofile()
    base = tmp_path_factory.mktemp("floods")
    servers: list[ReverbServer] = []
    all_socks: list[socket.socket] = []
    drippers: list[Dripper] = []
    try:
        # --- item 8: a TLS server and stalled handshakes ---------------------------------------------
        f.tls_skip = None if shutil.which("openssl") else "needs the openssl CLI"
        if not f.tls_skip:
            f.cert, key = base / "cert.pem", base / "key.pem"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                            "-out", str(f.cert), "-days", "1", "-subj", "/CN=localhost",
                            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                           check=True, capture_output=True, timeout=60)
            f.tls = _start_module_server(reverb_binary, base / "tls",
                                         {"REVERB_TLS_CERT": str(f.cert), "REVERB_TLS_KEY": str(key)})
            servers.append(f.tls)
            time.sleep(0.2)
            f.tls_fd_baseline = open_fds(f.tls.proc.pid)
            hello = _client_hello()
            socks, opened, kinds = [], [], {}

            def add(kind, sock):
                kinds.setdefault(kind, []).append(len(socks))
                socks.append(sock)
                opened.append(time.monotonic())

            for _ in range(200):
                add("silent", socket.create_connection((f.tls.host, f.tls.port), timeout=10))
            for i in range(50):
                s = socket.create_connection((f.tls.host, f.tls.port), timeout=10)
                s.sendall(hello[:len(hello) // 2] if i % 2 else hello[:5])  # half a hello / a record header
                add("half ClientHello", s)
            drip = [socket.create_connection((f.tls.host, f.tls.port), timeout=10) for _ in range(20)]
            for s in drip:
                add("ClientHello dripped 1 byte/s", s)
            drippers.append(Dripper(drip, hello))
            drippers[-1].start()
            ctx = _tls_context(f.cert)
            for _ in range(50):
                add("handshake done, no request", _tls_handshake_then_idle(f.tls, ctx))
            f.tls_socks, f.tls_kinds = socks, kinds
            all_socks.extend(socks)
            f.tls_watcher = EOFWatcher(socks, opened)
            f.tls_watcher.start()
            f.tls_probe = _tls_probe(f.tls, f.cert)
            f.tls_closed_at_probe = len(f.tls_watcher.closed_after)
        # --- item 7: a plain server and 10,000 idle TCP connections, plus drip-fed requests ----------
        f.plain = _start_module_server(reverb_binary, base / "plain")
        servers.append(f.plain)
        time.sleep(0.2)
        f.fd_baseline = open_fds(f.plain.proc.pid)
        f.count = min(10_000, f.nofile - 1000)
        t0 = time.monotonic()
        idle, opened = _open_plain_flood(f.plain, f.count)
        f.open_seconds = time.monotonic() - t0
        all_socks.extend(idle)
        drip = [socket.create_connection((f.plain.host, f.plain.port), timeout=10) for _ in range(20)]
        drip_opened = [time.monotonic()] * len(drip)
        all_socks.extend(drip)
        drippers.append(Dripper(drip, b"POST /apps/530001/events HTTP/1.1\r\nHost: x\r\nX-Drip: " + b"d" * 200))
        drippers[-1].start()
        f.plain_kinds = {"idle": range(0, f.count), "request dripped 1 byte/s": range(f.count, f.count + 20)}
        f.fd_peak = open_fds(f.plain.proc.pid)
        f.plain_watcher = EOFWatcher(idle + drip, opened + drip_opened)
        f.plain_watcher.start()
        f.plain_probe = _plain_probe(f.plain)
        f.plain_closed_at_probe = len(f.plain_watcher.closed_after)
        yield f
    finally:
        for d in drippers:
            d.stop.set()
            d.join(5)
        for s in all_socks:
            try:
                s.close()
            except OSError:
                pass
        problems = []
        for server in servers:
            if not server.running():
                problems.append(f"server on port {server.port} died (rc={server.proc.returncode}): "
                                f"{server.stderr_text()}")
            else:
                rc = server.terminate()
                if rc is None:
                    server.kill()
                if rc != 0:
                    problems.append(f"server on port {server.port} exited with {rc} after SIGTERM")
            server.close_files()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


def _assert_serving(server: ReverbServer):
    server.assert_healthy()
    ws = WS(server.ws_url())
    try:
        ch = unique("after-flood-")
        ws.subscribe(ch)
        assert server.pusher().trigger(ch, "AfterFlood", "ok") == {}
        assert ws.recv() == event_frame("AfterFlood", "ok", ch)
    finally:
        ws.close()


def test_ten_thousand_idle_tcp_connections_are_cut_off(floods):
    """10,000 TCP connections that never send a byte (and 20 that drip a request head forever): while
    they are open a normal client connects, subscribes and gets an event, and /up answers; each is
    closed by the server 15 s after it opened, without a response; the server's fds return to the
    baseline."""
    f = floods
    w = f.plain_watcher
    print(f"\nidle flood: {f.count} connections (RLIMIT_NOFILE {f.nofile}), opened and accepted in "
          f"{f.open_seconds:.2f} s; server fds: baseline {f.fd_baseline}, with the flood {f.fd_peak}")
    assert f.count == 10_000 or f.count == f.nofile - 1000
    assert f.fd_peak >= f.fd_baseline + f.count + 20
    probe = f.plain_probe
    assert "error" not in probe, probe
    assert probe["event"] == event_frame("DuringFlood", "alive", probe["channel"])
    assert probe["up"] == (200, b'{"health":"OK"}')
    assert f.plain_closed_at_probe == 0, "flood sockets were closed before the probe was done"
    w.wait()
    for kind, idx in f.plain_kinds.items():
        print(f"idle flood, {kind}: {w.summary(idx)}")
    assert len(w.closed_after) == len(w.socks), \
        f"not every connection was closed within {CLOSE_DEADLINE} s of opening: {w.summary()}"
    early = {i: t for i, t in w.closed_after.items() if t < IDLE_CUTOFF - EARLY_SLACK}
    assert not early, f"{len(early)} closed before the 15 s cut-off, e.g. {sorted(early.values())[:3]}"
    assert w.received == {}, f"{len(w.received)} connections got bytes without having sent a request"
    fds = wait_until(lambda: (n := open_fds(f.plain.proc.pid)) <= f.fd_baseline + 10 and n, timeout=10,
                     message="server fds back near the baseline")
    print(f"idle flood: server fds after the cut-off {fds} (baseline {f.fd_baseline})")
    _assert_serving(f.plain)


def test_stalled_tls_handshakes_are_cut_off(floods):
    """200 TLS connections that send nothing, 50 that send half a ClientHello (or only a record header),
    20 that drip the ClientHello a byte a second, and 50 that finish the handshake but send no request:
    meanwhile wss and https clients are served; every stalled one is closed within 30 s of opening."""
    f = floods
    if f.tls_skip:
        pytest.skip(f.tls_skip)
    w = f.tls_watcher
    probe = f.tls_probe
    assert "error" not in probe, probe
    assert probe["event"] == event_frame("DuringStall", "alive", probe["channel"])
    assert probe["up"] == (200, b'{"health":"OK"}')
    assert f.tls_closed_at_probe == 0, "stalled handshakes were closed before the probe was done"
    w.wait()
    print()
    for kind, idx in f.tls_kinds.items():
        print(f"TLS, {kind}: {w.summary(idx)}")
    assert len(w.closed_after) == len(w.socks), \
        f"stalled TLS connections still open {CLOSE_DEADLINE} s after opening: {w.summary()}"
    no_reply = [i for kind, idx in f.tls_kinds.items() if kind != "handshake done, no request" for i in idx]
    assert not [i for i in no_reply if i in w.received], "a stalled handshake got bytes back"
    idle_https = f.tls_kinds["handshake done, no request"]
    early = [w.closed_after[i] for i in idle_https if w.closed_after[i] < IDLE_CUTOFF - EARLY_SLACK]
    assert not early, f"idle HTTPS connections closed before the 15 s cut-off: {early[:3]}"
    # The server's last TLS record to an idle HTTPS connection (its close_notify) comes at the 15 s cut-off.
    last = sorted(w.last_data_after.get(i, 0.0) for i in idle_https)
    print(f"TLS, handshake done, no request: last record from the server {last[0]:.2f}-{last[-1]:.2f} s after "
          f"the handshake, TCP closed {min(w.closed_after[i] for i in idle_https):.2f}-"
          f"{max(w.closed_after[i] for i in idle_https):.2f} s after it")
    fds = wait_until(lambda: (n := open_fds(f.tls.proc.pid)) <= f.tls_fd_baseline + 10 and n, timeout=10,
                     message="TLS server fds back near the baseline")
    print(f"TLS server fds: baseline {f.tls_fd_baseline}, after the cut-off {fds}")
    assert f.tls.running()
    assert _https_up(f.tls, f.cert) == (200, b'{"health":"OK"}')
