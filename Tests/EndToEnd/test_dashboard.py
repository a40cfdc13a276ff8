"""The dashboard's HTTP surface (docs.md "Dashboard"): off by default, nothing without a session,
logins (app id + secret, or the dashboard password), per-app scope, CSRF, the login rate limit, and
the debug console across two nodes over Redis. The browser test is test_dashboard_browser.py.
"""

from __future__ import annotations

import http.client
import json
import shutil
import threading
import time
import urllib.parse

import pytest

from conftest import RECV_TIMEOUT, compact, signed_http, unique, wait_until

APP_A = {"app_id": "510001", "key": "key-dash-a", "secret": "secret-dash-a"}
APP_B = {"app_id": "510002", "key": "key-dash-b", "secret": "secret-dash-b"}
PASSWORD = "operator-password"
NO_ENV_APP = {"REVERB_APP_ID": None, "REVERB_APP_KEY": None, "REVERB_APP_SECRET": None}


def request(server, method, path, body=None, headers=None, cookie=None):
    """(status, headers lowercased, body bytes); `path` is below `{prefix}/dashboard`."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=RECV_TIMEOUT)
    try:
        hdrs = dict(headers or {})
        if cookie:
            hdrs["Cookie"] = f"reverb_dashboard={cookie}"
        conn.request(method, f"{server.prefix}/dashboard{path}", body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def log_in(server, **fields):
    """POSTs the login form; returns (status, cookie value or None, headers)."""
    body = urllib.parse.urlencode(fields)
    status, headers, _ = request(server, "POST", "/login", body,
                                 {"Content-Type": "application/x-www-form-urlencoded"})
    cookie = None
    if "set-cookie" in headers:
        cookie = headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    return status, cookie, headers


def session_of(server, cookie):
    status, _, body = request(server, "GET", "/api/session", cookie=cookie)
    assert status == 200, body
    return json.loads(body)


def post_event(server, cookie, app_id, csrf, body):
    headers = {"Content-Type": "application/json"}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    return request(server, "POST", f"/api/apps/{app_id}/events", compact(body), headers, cookie=cookie)


@pytest.fixture
def dashboard(reverb_server, tmp_path):
    """A server with the dashboard on, two apps (A and B) and the dashboard password."""
    cfg = tmp_path / "dash-apps.json"
    cfg.write_text(json.dumps({"apps": {"provider": "config", "apps": [APP_A, APP_B]}}))
    server = reverb_server(env={**NO_ENV_APP, "REVERB_DASHBOARD_ENABLED": "true",
                                "REVERB_DASHBOARD_PASSWORD": PASSWORD}, args=["--config", str(cfg)])
    server.app_id, server.key, server.secret = APP_A["app_id"], APP_A["key"], APP_A["secret"]
    return server


def routes(app_id):
    """Every dashboard route but the login form: (method, path)."""
    return [
        ("GET", ""), ("GET", "/assets/dashboard.js"), ("GET", "/assets/dashboard.css"), ("GET", "/api/session"),
        ("GET", "/api/overview"), ("GET", f"/api/apps/{app_id}/channels"),
        ("GET", f"/api/apps/{app_id}/channels/some-channel"), ("GET", "/api/stream"),
        ("POST", f"/api/apps/{app_id}/events"), ("POST", "/logout"),
    ]


def test_off_by_default(server):
    for method, path in routes(server.app_id) + [("GET", "/login")]:
        status, _, _ = request(server, method, path)
        assert status == 404, (method, path)


def test_nothing_without_a_session(dashboard):
    for method, path in routes(APP_A["app_id"]):
        status, headers, body = request(dashboard, method, path, compact({"name": "x", "channel": "c", "data": "{}"})
                                        if method == "POST" else None)
        if path == "":
            assert (status, headers["location"]) == (303, "/dashboard/login"), (method, path)
        else:
            assert status == 401, (method, path, status, body)
            assert json.loads(body) == {"error": "Log in to the dashboard first."}
        assert b"csrf" not in body
    # A forged or tampered cookie is no session either.
    status, cookie, _ = log_in(dashboard, app_id=APP_A["app_id"], secret=APP_A["secret"])
    assert status == 303 and cookie
    parts = cookie.split(".")
    for forged in [cookie[:-1] + ("0" if cookie[-1] != "0" else "1"),
                   ".".join(parts[:3] + ["*"] + parts[4:]),  # widened to every app, same MAC
                   ".".join([parts[0], str(int(parts[1]) + 3600)] + parts[2:]),  # extended
                   "garbage"]:
        assert request(dashboard, "GET", "/api/session", cookie=forged)[0] == 401, forged


def test_every_route_accepts_a_session(dashboard):
    status, cookie, headers = log_in(dashboard, app_id=APP_A["app_id"], secret=APP_A["secret"])
    assert (status, headers["location"]) == (303, "/dashboard")
    set_cookie = headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/dashboard", "Max-Age="):
        assert attribute in set_cookie
    session = session_of(dashboard, cookie)
    assert session["scope"] == "app" and session["apps"] == [APP_A["app_id"]]
    csrf = session["csrf_token"]
    for method, path in routes(APP_A["app_id"]):
        if path == "/api/stream" or method == "POST":
            continue
        status, headers, body = request(dashboard, method, path, cookie=cookie)
        assert status == 200, (method, path, status, body)
        assert "default-src 'none'" in headers["content-security-policy"]
    # The page refers only to this server.
    _, _, page = request(dashboard, "GET", "", cookie=cookie)
    assert b"http://" not in page and b"https://" not in page
    # The stream: Server-Sent Events, first an overview with its history.
    conn = http.client.HTTPConnection(dashboard.host, dashboard.port, timeout=RECV_TIMEOUT)
    conn.request("GET", "/dashboard/api/stream", headers={"Cookie": f"reverb_dashboard={cookie}"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("content-type").startswith("text/event-stream")
    assert resp.readline() == b"retry: 2000\n"
    assert resp.readline() == b"\n"
    assert resp.readline() == b"event: overview\n"
    overview = json.loads(resp.readline()[len(b"data: "):])
    assert overview["app"] == APP_A["app_id"] and "history" in overview
    conn.close()
    # A state-changing request needs the CSRF token.
    event = {"name": "dash-event", "channel": unique("dash-"), "data": "{}"}
    assert post_event(dashboard, cookie, APP_A["app_id"], None, event)[0] == 403
    assert post_event(dashboard, cookie, APP_A["app_id"], "0" * 64, event)[0] == 403
    assert post_event(dashboard, cookie, APP_A["app_id"], csrf, event)[:3:2] == (200, b"{}")
    # Validation is the HTTP API's.
    status, _, body = post_event(dashboard, cookie, APP_A["app_id"], csrf, {"name": "x", "data": "{}"})
    assert status == 422 and b"The channels field is required when channel is not present." in body
    # Logging out clears the cookie.
    status, headers, _ = request(dashboard, "POST", "/logout", headers={"X-CSRF-Token": csrf}, cookie=cookie)
    assert status == 200 and "reverb_dashboard=;" in headers["set-cookie"] and "Max-Age=0" in headers["set-cookie"]


def test_wrong_credentials_do_not_log_in(dashboard):
    for fields in [{"app_id": APP_A["app_id"], "secret": "wrong"},
                   {"app_id": APP_A["app_id"], "secret": APP_B["secret"]},  # another app's secret
                   {"app_id": "no-such-app", "secret": APP_A["secret"]},
                   {"app_id": APP_A["app_id"], "secret": ""},
                   {"password": "not-the-password"}]:
        status, cookie, _ = log_in(dashboard, **fields)
        assert (status, cookie) == (401, None), fields


def test_failed_logins_are_rate_limited_per_address(dashboard):
    for _ in range(5):
        assert log_in(dashboard, app_id=APP_A["app_id"], secret="wrong")[0] == 401
    status, cookie, headers = log_in(dashboard, app_id=APP_A["app_id"], secret=APP_A["secret"])
    assert (status, cookie) == (429, None)
    assert 1 <= int(headers["retry-after"]) <= 60


def test_an_app_session_sees_only_its_app(dashboard):
    _, cookie, _ = log_in(dashboard, app_id=APP_A["app_id"], secret=APP_A["secret"])
    csrf = session_of(dashboard, cookie)["csrf_token"]
    b = APP_B["app_id"]
    for method, path in [("GET", f"/api/apps/{b}/channels"), ("GET", f"/api/apps/{b}/channels/c"),
                         ("GET", f"/api/overview?app={b}"), ("GET", f"/api/stream?app={b}")]:
        status, _, body = request(dashboard, method, path, cookie=cookie)
        assert (status, json.loads(body)) == (403, {"error": f"This session cannot see app {b}."}), path
    status, _, _ = post_event(dashboard, cookie, b, csrf, {"name": "x", "channel": "c", "data": "{}"})
    assert status == 403
    # An unknown app looks the same as a hidden one.
    assert request(dashboard, "GET", "/api/apps/nope/channels", cookie=cookie)[0] == 403


def test_the_password_sees_every_app(dashboard, ws_client):
    status, cookie, _ = log_in(dashboard, password=PASSWORD)
    assert status == 303 and cookie
    session = session_of(dashboard, cookie)
    assert session["scope"] == "all" and session["apps"] == [APP_A["app_id"], APP_B["app_id"]]
    channel = unique("presence-dash-")
    client = ws_client(dashboard, key=APP_B["key"])
    from conftest import channel_signature
    data = compact({"user_id": "u1", "user_info": {"name": "Ann"}})
    client.subscribe(channel, auth=f"{APP_B['key']}:" + channel_signature(APP_B["secret"], client.socket_id, channel,
                                                                           data), channel_data=data)
    status, _, body = request(dashboard, "GET", f"/api/apps/{APP_B['app_id']}/channels?prefix=presence-",
                              cookie=cookie)
    assert status == 200
    assert json.loads(body)["channels"] == [{"name": channel, "subscribers": 1, "kind": "presence"}]
    status, _, body = request(dashboard, "GET", f"/api/apps/{APP_B['app_id']}/channels/{channel}", cookie=cookie)
    assert json.loads(body)["members"] == ["u1"]
    # A cache channel shows its cached event.
    cache = unique("cache-dash-")
    csrf = session["csrf_token"]
    assert post_event(dashboard, cookie, APP_B["app_id"], csrf, {"name": "Cached", "channel": cache,
                                                                 "data": "{\"n\":1}"})[0] == 200
    client.subscribe(cache, expect=None)
    wait_until(lambda: json.loads(request(dashboard, "GET", f"/api/apps/{APP_B['app_id']}/channels/{cache}",
                                          cookie=cookie)[2]).get("subscribers") == 1, message="cache subscriber")
    detail = json.loads(request(dashboard, "GET", f"/api/apps/{APP_B['app_id']}/channels/{cache}", cookie=cookie)[2])
    assert detail["cached_event"] == {"event": "Cached", "data": "{\"n\":1}", "channel": cache}
    # Neither app's view counts the dashboard: only the WebSocket client.
    assert signed_http(dashboard, "GET", f"/apps/{APP_A['app_id']}/connections")[2] == b'{"connections":0}'


# --------------------------------------------------------------------------------------------------
# Two nodes: the console on A shows what happens on B, over the bus
# --------------------------------------------------------------------------------------------------


class EventStream:
    """Reads a dashboard stream in a thread; `wait_for(kind, predicate)` on parsed events."""

    def __init__(self, server, cookie, app_id):
        self.conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        self.conn.request("GET", f"/dashboard/api/stream?app={app_id}",
                          headers={"Cookie": f"reverb_dashboard={cookie}"})
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        self.events: list[tuple[str, object]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        name = None
        try:
            for raw in iter(self.resp.readline, b""):
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name:
                    with self.cond:
                        self.events.append((name, json.loads(line[6:])))
                        self.cond.notify_all()
        except (OSError, ValueError, AttributeError):  # closed by the test
            pass

    def wait_for(self, name, predicate, timeout=10.0):
        def found():
            for kind, value in self.events:
                if kind == name and predicate(value):
                    return value
            return None

        with self.cond:
            assert self.cond.wait_for(lambda: found() is not None, timeout), \
                f"no {name} matching within {timeout}s; got {self.events[-5:]}"
            return found()

    def close(self):
        self.conn.close()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_the_console_shows_every_node(reverb_server, redis, ws_client):
    bus = unique("dash-cluster-")
    env = {"REVERB_SCALING_ENABLED": "true", "REVERB_SCALING_CHANNEL": bus,
           "REDIS_URL": f"redis://127.0.0.1:{redis.port}", "REVERB_DASHBOARD_ENABLED": "true"}
    credentials = {"app_id": "520001", "key": "dash-cluster-key", "secret": "dash-cluster-secret"}
    a = reverb_server(**credentials, env=env)
    b = reverb_server(**credentials, env=env)
    wait_until(lambda: redis.numsub(bus) == 2, timeout=10, message="both nodes subscribed")
    _, cookie, _ = log_in(a, app_id=a.app_id, secret=a.secret)
    stream = EventStream(a, cookie, a.app_id)
    try:
        # The overview lists both nodes, B's links up, once A's console announced itself.
        overview = stream.wait_for("overview", lambda o: len(o["nodes"]) == 2)
        peer = next(n for n in overview["nodes"] if not n["self"])
        assert peer["publisher"] is True and peer["subscriber"] is True and peer["connections"] == 0
        channel = unique("on-b-")
        client = ws_client(b)
        client.subscribe(channel)
        seen = stream.wait_for("debug", lambda events: any(e["kind"] == "subscribed" and e["channels"] == [channel]
                                                           for e in events))
        event = next(e for e in seen if e["kind"] == "subscribed")
        assert event["socket_id"] == client.socket_id and event["node"] == peer["id"]
        stream.wait_for("overview", lambda o: any(not n["self"] and n["connections"] == 1 for n in o["nodes"]))
    finally:
        stream.close()


def test_shutdown_ends_open_streams(reverb_server):
    server = reverb_server(env={"REVERB_DASHBOARD_ENABLED": "true"})
    _, cookie, _ = log_in(server, app_id=server.app_id, secret=server.secret)
    stream = EventStream(server, cookie, server.app_id)
    try:
        stream.wait_for("overview", lambda o: True)
        started = time.monotonic()
        assert server.terminate() == 0
        assert time.monotonic() - started < 5
    finally:
        stream.close()
