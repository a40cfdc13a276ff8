"""Two `reverb start` nodes sharing one Redis (scaling.md §4, issue: multi-node scaling).

Each test starts its own throw-away redis-server on a free loopback port (so it can stop and restart
it) and two nodes with REVERB_SCALING_ENABLED=true and the same app credentials.
"""

from __future__ import annotations

import json
import shutil
import threading
import time

import pusher
import pysher
import pytest

# `Redis`, the `redis` fixture and `_get` live in conftest.py (shared with test_cluster_state.py).
from conftest import RECV_TIMEOUT, _get, channel_signature, unique, wait_until

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


@pytest.fixture
def cluster(reverb_server, redis):
    """Two nodes (a, b) of one app, subscribed to the same Redis channel, each aware of the other."""
    channel = unique("cluster-")

    def make(**options):
        credentials = {"app_id": "777", "key": "cluster-key", "secret": "cluster-secret"}
        env = {
            "REVERB_SCALING_ENABLED": "true",
            "REVERB_SCALING_CHANNEL": channel,
            "REDIS_URL": f"redis://127.0.0.1:{redis.port}",
            **options.pop("env", {}),
        }
        a = reverb_server(**credentials, env=env, **options)
        b = reverb_server(**credentials, env=env, **options)
        wait_until(lambda: redis.numsub(channel) == 2, timeout=10, message="both nodes subscribed")
        a.bus_channel = b.bus_channel = channel
        return a, b

    return make


def test_event_triggered_on_a_reaches_pysher_on_b(cluster):
    a, b = cluster()
    received = threading.Event()
    payloads = []
    client = pysher.Pusher(b.key, custom_host="127.0.0.1", port=b.port, secure=False, secret=b.secret)

    def on_connect(_):
        channel = client.subscribe("orders")
        channel.bind("NewOrder", lambda data: (payloads.append(data), received.set()))

    client.connection.bind("pusher:connection_established", on_connect)
    client.connect()
    try:
        wait_until(lambda: _get(a, f"/apps/{a.app_id}/channels/orders", {"info": "subscription_count"})
                   .get("subscription_count") == 1, timeout=10, message="node A to see B's subscriber")
        assert a.pusher().trigger("orders", "NewOrder", {"id": 42}) == {}
        assert received.wait(RECV_TIMEOUT), "pysher on node B never received the event"
        assert json.loads(payloads[0]) == {"id": 42}
        assert len(payloads) == 1
    finally:
        client.disconnect(timeout=3)


def test_counts_and_users_are_cluster_wide(cluster, ws_client):
    a, b = cluster()
    on_a = ws_client(a)
    on_b = ws_client(b)
    on_b2 = ws_client(b)
    on_a.subscribe("news")
    on_b.subscribe("news")
    data = '{"user_id":7,"user_info":{"name":"Ann"}}'
    for ws, node in ((on_a, a), (on_b2, b)):
        ws.subscribe("presence-room", auth=f"{node.key}:{channel_signature(node.secret, ws.socket_id, 'presence-room', data)}",
                     channel_data=data)
    wait_until(lambda: _get(a, f"/apps/{a.app_id}/connections")["connections"] == 3, timeout=10,
               message="3 connections counted from node A")
    assert _get(b, f"/apps/{b.app_id}/connections") == {"connections": 3}
    # Counts and members are replicated (scaling.md §4.6): visible on every node within a moment.
    wait_until(lambda: _get(a, f"/apps/{a.app_id}/channels/news", {"info": "subscription_count"}) == {
        "occupied": True, "subscription_count": 2}, timeout=5, message="both subscribers counted on node A")
    # One user on two nodes counts once (≠ Reverb).
    assert _get(a, f"/apps/{a.app_id}/channels", {"filter_by_prefix": "presence-", "info": "user_count"}) == {
        "channels": {"presence-room": {"user_count": 1}}}
    assert _get(b, f"/apps/{b.app_id}/channels/presence-room/users") == {"users": [{"id": 7}]}


def test_socket_id_exclusion_and_whispers_cross_nodes(cluster, ws_client):
    a, b = cluster(accept_client_events_from="all")
    sender = ws_client(b)
    listener = ws_client(a)
    sender.subscribe("chat")
    listener.subscribe("chat")
    wait_until(lambda: _get(a, f"/apps/{a.app_id}/channels/chat", {"info": "subscription_count"})
               .get("subscription_count") == 2, timeout=10, message="both subscribers visible")
    a.pusher().trigger("chat", "Hello", {"n": 1}, socket_id=sender.socket_id)
    assert listener.recv() == '{"event":"Hello","data":"{\\"n\\": 1}","channel":"chat"}'
    sender.expect_silence(0.5)
    sender.send('{"event":"client-typing","channel":"chat","data":{"who":"b"}}')
    assert listener.recv() == '{"event":"client-typing","channel":"chat","data":{"who":"b"}}'
    sender.expect_silence(0.3)


def test_terminate_on_a_closes_connection_on_b(cluster, ws_client):
    a, b = cluster()
    victim = ws_client(b)
    data = '{"user_id":"42"}'
    victim.subscribe("presence-x", auth=f"{b.key}:{channel_signature(b.secret, victim.socket_id, 'presence-x', data)}",
                     channel_data=data)
    wait_until(lambda: _get(a, f"/apps/{a.app_id}/connections")["connections"] == 1, timeout=10,
               message="node A sees the connection on B")
    a.pusher().terminate_user_connections("42")
    code, reason, _ = victim.expect_closed()
    assert (code, reason) == (1008, "Connection terminated")


def test_redis_outage_keeps_local_service_and_recovers(cluster, ws_client, redis):
    a, b = cluster(env={"REDIS_TIMEOUT": "1"})
    local = ws_client(a)
    remote = ws_client(b)
    local.subscribe("ticks")
    remote.subscribe("ticks")
    wait_until(lambda: _get(a, f"/apps/{a.app_id}/channels/ticks", {"info": "subscription_count"})
               .get("subscription_count") == 2, timeout=10, message="both subscribers visible")

    redis.stop()
    # Local clients are still served while Redis is away.
    a.pusher().trigger("ticks", "Tick", {"n": 1})
    assert local.recv() == '{"event":"Tick","data":"{\\"n\\": 1}","channel":"ticks"}'
    wait_until(lambda: a.up() == (200, b'{"health":"DEGRADED","redis":"disconnected"}'), timeout=10,
               message="node A to report DEGRADED")
    for n in (2, 3):
        a.pusher().trigger("ticks", "Tick", {"n": n})
        assert local.recv() == f'{{"event":"Tick","data":"{{\\"n\\": {n}}}","channel":"ticks"}}'
    assert a.running() and b.running()

    redis.start()
    wait_until(lambda: a.up() == (200, b'{"health":"OK"}') and b.up() == (200, b'{"health":"OK"}'), timeout=15,
               message="both nodes healthy again")
    # Cross-node delivery resumes (publishes queued during the outage may arrive first).
    a.pusher().trigger("ticks", "After", {"n": 4})
    expected = '{"event":"After","data":"{\\"n\\": 4}","channel":"ticks"}'
    seen = []
    while expected not in seen:
        seen.append(remote.recv(timeout=10))
    assert all('"Tick"' in frame for frame in seen[:-1]), seen
    assert a.running() and b.running()


def test_garbage_on_the_bus_is_harmless(cluster, ws_client, redis):
    """Non-JSON, Reverb-format, future-version and malformed messages on the cluster channel are
    dropped; both nodes keep running and keep relaying (scaling.md §4.9)."""
    a, b = cluster()
    listener = ws_client(b)
    listener.subscribe("after-garbage")
    for payload in [b"not json", b"[1,2]", b'{"type":"message","application":"x","payload":{}}',
                    b'{"v":2,"type":"broadcast","node":"ffff","app":"777","payload":{}}',
                    b'{"v":1,"type":"broadcast","node":"ffff","app":"777"}',
                    b'{"v":1,"type":"broadcast","node":"ffff","app":"unknown","payload":{"event":"x","channel":"y"}}',
                    b'{"v":1,"type":"nonsense","node":"ffff"}', b"\xff\xfe"]:
        redis.publish(a.bus_channel, payload)
    wait_until(lambda: _get(a, f"/apps/{a.app_id}/channels/after-garbage", {"info": "subscription_count"})
               .get("subscription_count") == 1, timeout=10, message="node A to see B's subscriber")
    a.pusher().trigger("after-garbage", "Fine", {})
    assert listener.recv() == '{"event":"Fine","data":"{}","channel":"after-garbage"}'
    assert a.running() and b.running()
    a.assert_healthy()
    b.assert_healthy()
