"""Pusher webhooks (http-api.md §8.1) as a receiver sees them: every request is checked with the
official `pusher` SDK's `validate_webhook`; occupancy with the 3 s delay and its cancellation, members,
client events, cache misses, retries after 500s, a dead receiver, and two nodes sending each occupancy
webhook once.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pusher
import pytest

from conftest import _get, channel_signature, free_port, unique, wait_until


APP_IDS = itertools.count(300000 + os.getpid() % 1000 * 100)


class Receiver:
    """A webhook endpoint on a free loopback port; `fail_first` requests answer 500."""

    def __init__(self, app_id: str, key: str, secret: str, fail_first: int = 0):
        self.client = pusher.Pusher(app_id=app_id, key=key, secret=secret)
        self.key = key
        self.bodies: list[dict] = []
        self.invalid: list[str] = []
        self.statuses: list[int] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    status = 500 if len(receiver.statuses) < receiver.fail_first else 200
                    receiver.statuses.append(status)
                    parsed = receiver.client.validate_webhook(
                        self.headers.get("X-Pusher-Key"), self.headers.get("X-Pusher-Signature"), body)
                    if parsed is None or self.headers.get("Content-Type") != "application/json":
                        receiver.invalid.append(f"{dict(self.headers)} {body!r}")
                    elif status == 200:
                        receiver.bodies.append(parsed)
                    receiver.last_headers = dict(self.headers)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/pusher/webhook?x=1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def events(self, channel: str | None = None) -> list[dict]:
        with self.lock:
            events = [event for body in self.bodies for event in body["events"]]
        return [e for e in events if channel is None or e.get("channel") == channel]

    def names(self, channel: str) -> list[str]:
        return [e["name"] for e in self.events(channel)]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        assert not self.invalid, f"requests the Pusher SDK rejected: {self.invalid}"


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(app_id, key, secret, **kw) -> Receiver:
        receiver = Receiver(app_id, key, secret, **kw)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


def hooked_server(reverb_server, receivers, events=None, fail_first=0, env=None, **options):
    credentials = {"app_id": str(next(APP_IDS)), "key": unique("key-"), "secret": unique("secret-")}
    receiver = receivers(credentials["app_id"], credentials["key"], credentials["secret"], fail_first=fail_first)
    hook_env = {"REVERB_APP_WEBHOOK_URL": receiver.url, **(env or {})}
    if events:
        hook_env["REVERB_APP_WEBHOOK_EVENTS"] = events
    server = reverb_server(**credentials, env=hook_env, **options)
    return server, receiver


def test_occupied_then_vacated_after_the_delay(reverb_server, receivers, ws_client):
    server, receiver = hooked_server(reverb_server, receivers)
    channel = unique("hooked-")
    ws = ws_client(server)
    ws.subscribe(channel)
    wait_until(lambda: receiver.names(channel) == ["channel_occupied"], timeout=5, message="channel_occupied")
    assert receiver.last_headers["X-Pusher-Key"] == server.key
    assert receiver.last_headers["User-Agent"].startswith("swift-reverb/")
    left = time.monotonic()
    ws.unsubscribe(channel)
    wait_until(lambda: receiver.names(channel) == ["channel_occupied", "channel_vacated"], timeout=8,
               message="channel_vacated")
    assert time.monotonic() - left >= 2.9, "channel_vacated came before the 3 s delay"


def test_a_return_within_the_delay_cancels_vacated_and_occupied(reverb_server, receivers, ws_client):
    server, receiver = hooked_server(reverb_server, receivers)
    channel, marker = unique("flap-"), unique("marker-")
    ws = ws_client(server)
    ws.subscribe(channel)
    wait_until(lambda: receiver.names(channel) == ["channel_occupied"], timeout=5, message="channel_occupied")
    ws.unsubscribe(channel)
    ws.subscribe(channel)
    # A later channel's vacancy, 3 s on, shows that the flapping channel's would have arrived by now.
    ws.subscribe(marker)
    ws.unsubscribe(marker)
    wait_until(lambda: "channel_vacated" in receiver.names(marker), timeout=8, message="marker vacated")
    assert receiver.names(channel) == ["channel_occupied"]


def test_members_client_events_and_cache_miss(reverb_server, receivers, ws_client):
    server, receiver = hooked_server(reverb_server, receivers, accept_client_events_from="members")
    presence, cache = unique("presence-room-"), unique("cache-")
    alice, alice2 = ws_client(server), ws_client(server)
    data = json.dumps({"user_id": "alice", "user_info": {"name": "A"}})
    for ws in (alice, alice2):
        ws.subscribe(presence, auth=f"{server.key}:{channel_signature(server.secret, ws.socket_id, presence, data)}",
                     channel_data=data)
    alice.send_json({"event": "client-typing", "channel": presence, "data": {"x": 1}})
    alice.subscribe(cache, expect=None)
    wait_until(lambda: "cache_miss" in receiver.names(cache), timeout=5, message="cache_miss")
    wait_until(lambda: "client_event" in receiver.names(presence), timeout=5, message="client_event")
    events = receiver.events(presence)
    assert events[0] == {"name": "channel_occupied", "channel": presence}
    assert events[1] == {"name": "member_added", "channel": presence, "user_id": "alice"}
    assert events[2] == {"name": "client_event", "channel": presence, "event": "client-typing", "data": '{"x":1}',
                         "socket_id": alice.socket_id, "user_id": "alice"}
    assert receiver.events(cache) == [{"name": "channel_occupied", "channel": cache},
                                      {"name": "cache_miss", "channel": cache}]
    alice.unsubscribe(presence)  # alice's second connection keeps her in
    alice2.unsubscribe(presence)
    wait_until(lambda: receiver.names(presence)[-2:] == ["member_removed", "channel_vacated"], timeout=8,
               message="member_removed then channel_vacated")
    assert receiver.names(presence).count("member_added") == 1
    assert receiver.events(presence)[-2] == {"name": "member_removed", "channel": presence, "user_id": "alice"}


def test_event_types_filter_what_is_sent(reverb_server, receivers, ws_client):
    server, receiver = hooked_server(reverb_server, receivers, events="channel_vacated")
    channel = unique("only-vacated-")
    ws = ws_client(server)
    ws.subscribe(channel)
    ws.unsubscribe(channel)
    wait_until(lambda: receiver.names(channel) == ["channel_vacated"], timeout=8, message="channel_vacated")


def test_a_receiver_answering_500_twice_gets_the_same_events_again(reverb_server, receivers, ws_client):
    server, receiver = hooked_server(reverb_server, receivers, fail_first=2)
    channel = unique("retried-")
    ws = ws_client(server)
    ws.subscribe(channel)
    # Retries after 1 s, then 2 s.
    wait_until(lambda: receiver.names(channel) == ["channel_occupied"], timeout=8, message="retried delivery")
    assert receiver.statuses[:3] == [500, 500, 200]


def test_a_dead_receiver_does_not_hurt_the_server(reverb_server, ws_client):
    port = free_port()
    server = reverb_server(env={"REVERB_APP_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook"})
    a, b = ws_client(server), ws_client(server)
    for i in range(20):
        channel = unique("dead-")
        a.subscribe(channel)
        b.subscribe(channel)
        a.send_json({"event": "client-x", "channel": channel, "data": {"i": i}})
        assert b.recv_json()["event"] == "client-x"
        a.unsubscribe(channel)
        b.unsubscribe(channel)
    server.assert_healthy()


def test_bad_webhook_settings_stop_start_up(reverb_cli):
    env = {"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s"}
    r = reverb_cli("start", "--port", "0", env=env | {"REVERB_APP_WEBHOOK_URL": "hooks.example.com"}, timeout=10)
    assert r.returncode == 78
    assert 'REVERB_APP_WEBHOOK_URL: "hooks.example.com" is not an http or https URL.' in r.stderr, r.stderr
    r = reverb_cli("start", "--port", "0", env=env | {"REVERB_APP_WEBHOOK_URL": "http://h/x",
                                                     "REVERB_APP_WEBHOOK_EVENTS": "channel_ocupied"}, timeout=10)
    assert r.returncode == 78
    assert ('REVERB_APP_WEBHOOK_EVENTS: "channel_ocupied" is not a webhook event type (channel_occupied, '
            'channel_vacated, member_added, member_removed, client_event, cache_miss, subscription_count).'
            in r.stderr), r.stderr


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_two_nodes_send_one_occupied_and_one_vacated(reverb_server, receivers, redis, ws_client):
    credentials = {"app_id": str(next(APP_IDS)), "key": unique("key-"), "secret": unique("secret-")}
    receiver = receivers(credentials["app_id"], credentials["key"], credentials["secret"])
    bus = unique("bus-")
    env = {"REVERB_SCALING_ENABLED": "true", "REVERB_SCALING_CHANNEL": bus,
           "REDIS_URL": f"redis://127.0.0.1:{redis.port}", "REVERB_APP_WEBHOOK_URL": receiver.url}
    a = reverb_server(**credentials, env=env)
    b = reverb_server(**credentials, env=env)
    wait_until(lambda: redis.numsub(bus) == 2, timeout=10, message="both nodes subscribed")
    on_a, on_b = ws_client(a), ws_client(b)
    # Each node has heard from the other (so both apply the owner rule to the same two nodes).
    probe_a, probe_b = unique("probe-"), unique("probe-")
    on_a.subscribe(probe_a)
    on_b.subscribe(probe_b)
    for node, probe in ((a, probe_b), (b, probe_a)):
        wait_until(lambda: _get(node, f"/apps/{node.app_id}/channels/{probe}", {"info": "subscription_count"})
                   .get("subscription_count") == 1, timeout=10, message="each node to see the other's subscriber")
    channels = [unique("both-") for _ in range(4)]
    for channel in channels:  # at (almost) the same time on both nodes
        on_a.subscribe(channel)
        on_b.subscribe(channel)
    for channel in channels:
        on_a.unsubscribe(channel)
        on_b.unsubscribe(channel)
    wait_until(lambda: all(receiver.names(c) == ["channel_occupied", "channel_vacated"] for c in channels),
               timeout=10, message="one occupied and one vacated per channel")
    # Nothing more arrives afterwards (a second node's copy would come within the same delay).
    time.sleep(1)
    assert all(receiver.names(c) == ["channel_occupied", "channel_vacated"] for c in channels), \
        {c: receiver.names(c) for c in channels}
