"""Several apps on one server (config.md §3.3): a config file with two apps, no environment app.
Apps are isolated: channels, events, HTTP API credentials and WebSocket keys never cross.
"""

from __future__ import annotations

import json

import pusher
import pytest

from conftest import channel_signature, compact, error_frame, signed_http, subscribe_private, unique, wait_until

APP_A = {"app_id": "410001", "key": "key-app-a", "secret": "secret-app-a"}
APP_B = {"app_id": "410002", "key": "key-app-b", "secret": "secret-app-b"}
NO_ENV_APP = {"REVERB_APP_ID": None, "REVERB_APP_KEY": None, "REVERB_APP_SECRET": None}


def event_frame(event: str, data: str, channel: str) -> str:
    return compact({"event": event, "data": data, "channel": channel})


@pytest.fixture
def two_apps(reverb_server, tmp_path):
    cfg = tmp_path / "two-apps.json"
    cfg.write_text(json.dumps({"apps": {"provider": "config", "apps": [APP_A, APP_B]}}))
    server = reverb_server(env=NO_ENV_APP, args=["--config", str(cfg)])
    # The fixture's default identity is app A.
    server.app_id, server.key, server.secret = APP_A["app_id"], APP_A["key"], APP_A["secret"]
    expected = [f"   INFO  Serving app {a['app_id']} (key: {a['key']})." for a in (APP_A, APP_B)]
    wait_until(lambda: all(line in server.stdout_lines for line in expected),
               message=f"{expected} in {server.stdout_lines}")
    return server


def sdk(server, app) -> pusher.Pusher:
    return pusher.Pusher(app_id=app["app_id"], key=app["key"], secret=app["secret"], host=server.host,
                         port=server.port, ssl=False, timeout=5)


def events_body(channel: str, name: str = "Evt", data: str = "{}") -> bytes:
    return compact({"name": name, "data": data, "channel": channel}).encode()


def test_events_do_not_cross_apps(two_apps, ws_client):
    ch = unique("shared-")
    a = ws_client(two_apps, key=APP_A["key"])
    b = ws_client(two_apps, key=APP_B["key"])
    a.subscribe(ch)
    b.subscribe(ch)
    assert sdk(two_apps, APP_B).trigger(ch, "ForB", "only-b") == {}
    assert b.recv() == event_frame("ForB", "only-b", ch)
    a.expect_silence(0.5)
    assert sdk(two_apps, APP_A).trigger(ch, "ForA", "only-a") == {}
    assert a.recv() == event_frame("ForA", "only-a", ch)
    b.expect_silence(0.5)


def test_client_events_do_not_cross_apps(reverb_server, ws_client, tmp_path):
    cfg = tmp_path / "whisper.json"
    apps = [dict(APP_A, accept_client_events_from="all"), dict(APP_B, accept_client_events_from="all")]
    cfg.write_text(json.dumps({"apps": {"apps": apps}}))
    server = reverb_server(env=NO_ENV_APP, args=["--config", str(cfg)])
    ch = unique("private-whisper-")
    server.key, server.secret = APP_A["key"], APP_A["secret"]
    a1, a2 = ws_client(server, key=APP_A["key"]), ws_client(server, key=APP_A["key"])
    subscribe_private(a1, server, ch)
    subscribe_private(a2, server, ch)
    server.key, server.secret = APP_B["key"], APP_B["secret"]
    b = ws_client(server, key=APP_B["key"])
    subscribe_private(b, server, ch)
    a1.send_json({"event": "client-typing", "channel": ch, "data": {"who": "a1"}})
    frame = json.loads(a2.recv())
    assert (frame["event"], frame["channel"]) == ("client-typing", ch), frame
    b.expect_silence(0.5)


def test_channels_listing_is_per_app(two_apps, ws_client):
    ch = unique("only-a-")
    a = ws_client(two_apps, key=APP_A["key"])
    a.subscribe(ch)
    assert ch in sdk(two_apps, APP_A).channels_info()["channels"]
    assert sdk(two_apps, APP_B).channels_info() == {"channels": {}}


def test_other_apps_credentials_refused(two_apps, ws_client):
    """B's key and secret signing a call to A's id: 401, and nothing is delivered."""
    ch = unique("cross-")
    a = ws_client(two_apps, key=APP_A["key"])
    a.subscribe(ch)
    path = f"/apps/{APP_A['app_id']}/events"
    status, _, body = signed_http(two_apps, "POST", path, events_body(ch), key=APP_B["key"], secret=APP_B["secret"])
    assert (status, body) == (401, b"Authentication signature invalid.")
    a.expect_silence(0.4)
    # control: A's own credentials work on the same request
    status, _, body = signed_http(two_apps, "POST", path, events_body(ch), key=APP_A["key"], secret=APP_A["secret"])
    assert (status, body) == (200, b"{}")
    assert a.recv() == event_frame("Evt", "{}", ch)


@pytest.mark.parametrize("key,secret", [(APP_B["key"], APP_A["secret"]), (APP_A["key"], APP_B["secret"])],
                         ids=["B-key-A-secret", "A-key-B-secret"])
def test_mixed_credentials_refused(two_apps, key, secret):
    path = f"/apps/{APP_A['app_id']}/events"
    status, _, body = signed_http(two_apps, "POST", path, events_body(unique("mixed-")), key=key, secret=secret)
    assert (status, body) == (401, b"Authentication signature invalid.")


def test_private_channel_auth_signed_by_other_app_refused(two_apps, ws_client):
    ch = unique("private-cross-")
    a = ws_client(two_apps, key=APP_A["key"])
    auth = f"{APP_A['key']}:{channel_signature(APP_B['secret'], a.socket_id, ch)}"
    a.subscribe(ch, auth=auth, expect=None)
    assert a.recv() == error_frame(4009, "Connection is unauthorized")


def test_unknown_key_gets_4001(two_apps, ws_client):
    ws = ws_client(two_apps, key="key-app-c", expect_established=False)
    code, reason, frames = ws.expect_closed()
    assert frames == [error_frame(4001, "Application does not exist")]
    assert (code, reason) == (4001, "Application does not exist")


def test_each_key_connects(two_apps, ws_client):
    for app in (APP_A, APP_B):
        ws = ws_client(two_apps, key=app["key"])
        ws.ping_pong()


def test_trigger_cli_needs_app_id_with_two_apps(two_apps, ws_client, reverb_cli):
    cfg = two_apps.workdir / ".." / "two-apps.json"
    r = reverb_cli("events:trigger", "ch", "ev", "--port", two_apps.port, "--config", cfg.resolve())
    assert r.returncode == 64, (r.returncode, r.stdout, r.stderr)
    assert "Several apps are configured (410001, 410002): pass --app-id." in r.stderr.splitlines(), r.stderr
    r = reverb_cli("events:trigger", "ch", "ev", "--port", two_apps.port, "--config", cfg.resolve(),
                   "--app-id", "999")
    assert r.returncode == 64, (r.returncode, r.stdout, r.stderr)
    assert '--app-id: "999" matches no configured app (configured: 410001, 410002).' in r.stderr.splitlines(), \
        r.stderr
    ch = unique("cli-b-")
    a = ws_client(two_apps, key=APP_A["key"])
    b = ws_client(two_apps, key=APP_B["key"])
    a.subscribe(ch)
    b.subscribe(ch)
    r = reverb_cli("events:trigger", ch, "ViaCli", '{"x":1}', "--port", two_apps.port, "--config", cfg.resolve(),
                   "--app-id", APP_B["app_id"])
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert b.recv() == event_frame("ViaCli", '{"x":1}', ch)
    a.expect_silence(0.4)
