"""User authentication on one node (protocol.md §13): `pusher:signin`, `#server-to-user-` channels,
events to a user, termination of a user, watchlists and `user_authentication_timeout`, over raw
frames, the official Python SDK (pusher 3.3.4: `authenticate_user`, `send_to_user`,
`terminate_user_connections`) and the CLI. Frames are compared byte for byte.
"""

from __future__ import annotations

import json
import time

import pytest

from conftest import compact, error_frame, hmac_hex, signed_http, unique, wait_until

UNAUTHORIZED = error_frame(4009, "Connection is unauthorized")
INVALID = error_frame(4200, "Invalid message format")
WATCHLIST_LIMIT = error_frame(4302, "Watchlist limit exceeded. Only the first 100 user IDs are accepted.")
TIMEOUT = error_frame(4009, "Connection not authorized within timeout.")


def user_auth(server, socket_id: str, user_data: str, secret: str | None = None) -> str:
    """protocol.md §13.1: `key:` + HMAC-SHA256 hex of `socket_id::user::user_data`."""
    return f"{server.key}:{hmac_hex(secret or server.secret, f'{socket_id}::user::{user_data}')}"


def success_frame(user_data: str) -> str:
    return compact({"event": "pusher:signin_success", "data": compact({"user_data": user_data})})


def watchlist_frame(offline=(), online=()) -> str:
    events = [{"name": name, "user_ids": list(ids)} for name, ids in (("offline", offline), ("online", online)) if ids]
    return compact({"event": "pusher_internal:watchlist_events", "data": compact({"events": events})})


def send_signin(ws, server, user_data: str, auth: str | None = "sign", **extra):
    data = {"user_data": user_data, **extra}
    if auth == "sign":
        data["auth"] = user_auth(server, ws.socket_id, user_data)
    elif auth is not None:
        data["auth"] = auth
    ws.send_json({"event": "pusher:signin", "data": data})


def sign_in(ws, server, user_id: str, watchlist=None, **fields) -> str:
    """Signs `ws` in as `user_id` and checks the success frame; returns the user_data sent."""
    payload = {"id": user_id, **fields}
    if watchlist is not None:
        payload["watchlist"] = watchlist
    user_data = compact(payload)
    send_signin(ws, server, user_data)
    assert ws.recv() == success_frame(user_data)
    return user_data


def own_channel_frame(user_id: str) -> str:
    return compact({"event": "pusher_internal:subscription_succeeded", "data": "{}",
                    "channel": f"#server-to-user-{user_id}"})


def trigger(server, channel: str, name: str = "my-event", data: str = '{"n":1}', **extra):
    body = compact({"name": name, "data": data, "channel": channel, **extra}).encode()
    status, _, response = signed_http(server, "POST", f"/apps/{server.app_id}/events", body)
    assert (status, response) == (200, b"{}"), response


def test_signin_success_and_own_channel_exact_bytes(server, ws_client):
    ws = ws_client(server)
    user_data = '{"id":"12345","user_info":{"name":"Mr. Channels"}}'
    send_signin(ws, server, user_data)
    assert ws.recv() == success_frame(user_data)
    assert success_frame(user_data) == (
        '{"event":"pusher:signin_success","data":"{\\"user_data\\":\\"{\\\\\\"id\\\\\\":\\\\\\"12345\\\\\\",'
        '\\\\\\"user_info\\\\\\":{\\\\\\"name\\\\\\":\\\\\\"Mr. Channels\\\\\\"}}\\"}"}')
    ws.subscribe("#server-to-user-12345", auth=None)
    ws.ping_pong()


@pytest.mark.parametrize("message, expected", [
    ({"event": "pusher:signin"}, INVALID),
    ({"event": "pusher:signin", "data": []}, INVALID),
    ({"event": "pusher:signin", "data": {"user_data": {"id": "1"}}}, INVALID),
    ({"event": "pusher:signin", "data": {"user_data": "{}", "auth": "x"}}, INVALID),
    ({"event": "pusher:signin", "data": {"user_data": '{"id":12345}', "auth": "x"}}, INVALID),
    ({"event": "pusher:signin", "data": {"user_data": '{"id":""}', "auth": "x"}}, INVALID),
    ({"event": "pusher:signin", "data": {"user_data": "not json", "auth": "x"}}, INVALID),
    ({"event": "pusher:signin", "data": {"user_data": '{"id":"1"}', "auth": 5}}, INVALID),
    ({"event": "pusher:signin", "data": {"user_data": '{"id":"1"}'}}, UNAUTHORIZED),
    ({"event": "pusher:signin", "data": {"user_data": '{"id":"1"}', "auth": None}}, UNAUTHORIZED),
    ({"event": "pusher:signin", "data": {"user_data": '{"id":"1"}', "auth": ""}}, UNAUTHORIZED),
    ({"event": "pusher:signin", "data": {"user_data": '{"id":"1"}', "auth": "key:" + "0" * 64}}, UNAUTHORIZED),
])
def test_signin_failures_exact_frames_socket_stays_usable(server, ws_client, message, expected):
    ws = ws_client(server)
    ws.send_json(message)
    assert ws.recv() == expected
    ws.ping_pong()
    # Nothing changed: not signed in.
    ws.subscribe("#server-to-user-1", expect=None)
    assert ws.recv() == UNAUTHORIZED


def test_signature_rules(server, ws_client):
    ws = ws_client(server)
    user_data = '{"id":"7"}'
    signature = user_auth(server, ws.socket_id, user_data).split(":", 1)[1]
    for auth in (f"key:{signature.upper()}",                                    # uppercase hex
                 user_auth(server, "1.1", user_data),                            # another socket
                 user_auth(server, ws.socket_id, user_data, secret="other-secret"),  # another app
                 user_auth(server, ws.socket_id, '{"id": "7"}')):                # other bytes
        send_signin(ws, server, user_data, auth=auth)
        assert ws.recv() == UNAUTHORIZED
    send_signin(ws, server, user_data, auth=f"wrong-key:{signature}")  # key part unchecked
    assert ws.recv() == success_frame(user_data)


def test_signin_on_a_socket_of_another_app(reverb_server, ws_client, tmp_path):
    apps = [{"app_id": "510001", "key": "key-a", "secret": "secret-a"},
            {"app_id": "510002", "key": "key-b", "secret": "secret-b"}]
    cfg = tmp_path / "apps.json"
    cfg.write_text(json.dumps({"apps": {"provider": "config", "apps": apps}}))
    server = reverb_server(env={"REVERB_APP_ID": None, "REVERB_APP_KEY": None, "REVERB_APP_SECRET": None},
                           args=["--config", str(cfg)])
    server.app_id, server.key, server.secret = "510001", "key-a", "secret-a"
    on_b = ws_client(server, key="key-b")
    user_data = '{"id":"42"}'
    # Signed by app A's endpoint, sent on a socket of app B.
    send_signin(on_b, server, user_data, auth=user_auth(server, on_b.socket_id, user_data))
    assert on_b.recv() == UNAUTHORIZED
    send_signin(on_b, server, user_data, auth=user_auth(server, on_b.socket_id, user_data, secret="secret-b"))
    assert on_b.recv() == success_frame(user_data)
    on_b.subscribe("#server-to-user-42")
    # Sending to user 42 of app A reaches nobody of app B.
    trigger(server, "#server-to-user-42")
    on_b.expect_silence(0.3)


def test_own_and_foreign_user_channels(server, ws_client):
    ws = ws_client(server)
    ws.subscribe("#server-to-user-42", expect=None)
    assert ws.recv() == UNAUTHORIZED, "not signed in"
    sign_in(ws, server, "42")
    for foreign in ("#server-to-user-43", "#server-to-user-", "#server-to-user-42 ", "#server-to-user-4"):
        ws.subscribe(foreign, expect=None)
        assert ws.recv() == UNAUTHORIZED, foreign
    ws.subscribe("#other-42", expect=None)
    assert ws.recv() == INVALID
    assert ws.subscribe("#server-to-user-42", auth="ignored") == own_channel_frame("42")
    # Re-subscribing is fine; client events on it are refused in every mode.
    assert ws.subscribe("#server-to-user-42") == own_channel_frame("42")
    ws.send_json({"event": "client-x", "channel": "#server-to-user-42", "data": {}})
    assert ws.recv() == UNAUTHORIZED
    # Listed by no /channels query, but answered by /channels/{name}.
    status, _, body = signed_http(server, "GET", f"/apps/{server.app_id}/channels")
    assert (status, body) == (200, b'{"channels":{}}')
    status, _, body = signed_http(server, "GET", f"/apps/{server.app_id}/channels",
                                  params={"filter_by_prefix": "#server-to-user-"})
    assert (status, body) == (200, b'{"channels":{}}')
    status, _, body = signed_http(server, "GET", f"/apps/{server.app_id}/channels/%23server-to-user-42",
                                  params={"info": "subscription_count"})
    assert (status, body) == (200, b'{"occupied":true,"subscription_count":1}')


def test_client_events_on_user_channel_refused_in_all_mode(reverb_server, ws_client):
    server = reverb_server(accept_client_events_from="all")
    ws, other = ws_client(server), ws_client(server)
    sign_in(ws, server, "9")
    ws.subscribe("#server-to-user-9")
    for sender in (ws, other):
        sender.send_json({"event": "client-x", "channel": "#server-to-user-9", "data": {}})
        assert sender.recv() == UNAUTHORIZED
    ws.expect_silence(0.3)


def test_user_event_reaches_every_socket_of_the_user_and_nobody_else(server, ws_client):
    s1, s2, s3, s4 = (ws_client(server) for _ in range(4))
    for ws in (s1, s2):
        sign_in(ws, server, "42")
        ws.subscribe("#server-to-user-42")
    sign_in(s3, server, "43")
    s3.subscribe("#server-to-user-43")
    frame = compact({"event": "my-event", "data": '{"n":1}', "channel": "#server-to-user-42"})
    trigger(server, "#server-to-user-42")
    assert s1.recv() == frame and s2.recv() == frame
    # socket_id exclusion, and batch order.
    trigger(server, "#server-to-user-42", socket_id=s1.socket_id)
    assert s2.recv() == frame
    body = compact({"batch": [{"name": "b", "channel": "#server-to-user-42", "data": "x"}]}).encode()
    status, _, _ = signed_http(server, "POST", f"/apps/{server.app_id}/batch_events", body)
    assert status == 200
    batch = compact({"event": "b", "channel": "#server-to-user-42", "data": "x"})
    assert s1.recv() == batch and s2.recv() == batch
    for ws in (s3, s4):
        ws.expect_silence(0.3)
    s1.expect_silence(0.1)


def test_terminate_closes_every_socket_signed_in_as_the_user(server, ws_client):
    s1, s2, s3 = (ws_client(server) for _ in range(3))
    sign_in(s1, server, "42")
    sign_in(s2, server, "42")
    sign_in(s3, server, "43")
    status, _, body = signed_http(server, "POST", f"/apps/{server.app_id}/users/42/terminate_connections", b"{}")
    assert (status, body) == (200, b"{}")
    for ws in (s1, s2):
        code, reason, frames = ws.expect_closed()
        assert (code, reason, frames) == (1008, "Connection terminated", [])
    s3.ping_pong()


def test_official_sdk_authenticate_send_and_terminate(server, ws_client):
    client = server.pusher()
    ws, other = ws_client(server), ws_client(server)
    auth = client.authenticate_user(ws.socket_id, {"id": "sdk-1", "user_info": {"name": "Ann"}})
    # The SDK's json.dumps leaves spaces in user_data: echoed as received.
    assert auth["user_data"] == '{"id": "sdk-1", "user_info": {"name": "Ann"}}'
    ws.send_json({"event": "pusher:signin", "data": auth})
    assert ws.recv() == success_frame(auth["user_data"])
    ws.subscribe("#server-to-user-sdk-1")
    client.send_to_user("sdk-1", "greeting", {"hello": "world"})
    assert ws.recv() == compact({"event": "greeting", "data": '{"hello": "world"}',
                                 "channel": "#server-to-user-sdk-1"})
    other.expect_silence(0.2)
    client.terminate_user_connections("sdk-1")  # POST /users/sdk-1/terminate_connections
    assert ws.expect_closed()[:2] == (1008, "Connection terminated")
    other.ping_pong()


def test_cli_trigger_to_a_user(server, ws_client, reverb_cli):
    ws = ws_client(server)
    sign_in(ws, server, "42")
    ws.subscribe("#server-to-user-42")
    env = {"REVERB_APP_ID": server.app_id, "REVERB_APP_KEY": server.key, "REVERB_APP_SECRET": server.secret}
    r = reverb_cli("events:trigger", "#server-to-user-42", "my-event", '{"n":1}', "--port", server.port, env=env)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert ws.recv() == compact({"event": "my-event", "data": '{"n":1}', "channel": "#server-to-user-42"})


def test_user_authentication_timeout(reverb_server, ws_client):
    server = reverb_server(env={"REVERB_APP_USER_AUTHENTICATION_TIMEOUT": "1"})
    opened = time.monotonic()
    idle, failed, signed = ws_client(server), ws_client(server), ws_client(server)
    failed.subscribe(unique("private-"), auth="bad", expect=None)  # neither a private subscription ...
    assert failed.recv() == UNAUTHORIZED
    send_signin(failed, server, '{"id":"1"}', auth="bad")  # ... nor a failed sign-in stops the clock
    assert failed.recv() == UNAUTHORIZED
    sign_in(signed, server, "1")
    for ws in (idle, failed):
        code, reason, frames = ws.expect_closed(timeout=4)
        assert (code, reason, frames) == (4009, "Connection not authorized within timeout.", [TIMEOUT])
    elapsed = time.monotonic() - opened
    assert 0.9 <= elapsed <= 3.0, elapsed
    signed.ping_pong()


def test_watchlist_initial_state_then_online_offline(server, ws_client):
    u1 = ws_client(server)
    sign_in(u1, server, "u1")
    watcher = ws_client(server)
    user_data = sign_in(watcher, server, "w", watchlist=["u3", "u1", 7, "", "u1", "u2", "w"])
    assert watcher.recv() == watchlist_frame(offline=["u3", "u2"], online=["u1", "w"])
    assert json.loads(user_data)["watchlist"][2] == 7  # other entries ignored, the string echoed as sent
    first, second = ws_client(server), ws_client(server)
    sign_in(first, server, "u2")
    assert watcher.recv() == watchlist_frame(online=["u2"])
    sign_in(second, server, "u2")  # a further socket of an online user changes nothing
    watcher.expect_silence(0.3)
    first.close()
    watcher.expect_silence(0.3)
    second.close()
    assert watcher.recv() == watchlist_frame(offline=["u2"])
    u1.close()
    assert watcher.recv() == watchlist_frame(offline=["u1"])
    # Signing in again as the same user replaces the watchlist and repeats the frames.
    user_data = compact({"id": "w", "watchlist": ["u1", "u9"]})
    send_signin(watcher, server, user_data)
    assert watcher.recv() == success_frame(user_data)
    assert watcher.recv() == watchlist_frame(offline=["u1", "u9"])
    again = ws_client(server)
    sign_in(again, server, "u2")  # no longer watched
    watcher.expect_silence(0.3)
    sign_in(ws_client(server), server, "u9")
    assert watcher.recv() == watchlist_frame(online=["u9"])


def test_signin_twice_same_id_again_other_id_refused(server, ws_client):
    ws = ws_client(server)
    sign_in(ws, server, "a")
    sign_in(ws, server, "a", user_info={"name": "new"})
    send_signin(ws, server, '{"id":"b"}')
    assert ws.recv() == UNAUTHORIZED
    ws.subscribe("#server-to-user-b", expect=None)
    assert ws.recv() == UNAUTHORIZED
    ws.subscribe("#server-to-user-a")
    # Still one socket of user a: terminating a closes it, b matches nothing.
    status, _, _ = signed_http(server, "POST", f"/apps/{server.app_id}/users/b/terminate_connections", b"{}")
    assert status == 200
    ws.ping_pong()


def test_watchlist_of_10000_ids(reverb_server, ws_client):
    server = reverb_server(max_message_size=0)
    ws = ws_client(server)
    ids = [f"user-{i}" for i in range(10_000)]
    sign_in(ws, server, "w", watchlist=ids)
    assert ws.recv() == WATCHLIST_LIMIT
    assert ws.recv() == watchlist_frame(offline=ids[:100])
    sign_in(ws_client(server), server, "user-99")
    assert ws.recv() == watchlist_frame(online=["user-99"])
    sign_in(ws_client(server), server, "user-100")  # beyond the first 100: not watched
    ws.expect_silence(0.3)


def test_one_megabyte_user_data(reverb_server, ws_client):
    big = reverb_server(max_message_size=0)
    ws = ws_client(big)
    user_data = compact({"id": "big", "user_info": {"blob": "x" * 1_000_000}})
    send_signin(ws, big, user_data)
    reply = json.loads(ws.recv())
    assert reply["event"] == "pusher:signin_success"
    assert json.loads(reply["data"])["user_data"] == user_data
    ws.subscribe("#server-to-user-big")
    # Over the default message limit the socket is closed with 1009, as any large message.
    small = ws_client(reverb_server())
    send_signin(small, big, user_data, auth="x")
    assert small.expect_closed()[:2] == (1009, "Maximum message size exceeded")
