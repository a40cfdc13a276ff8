"""Interest routing (`REVERB_SCALING_ROUTING=interest`, docs.md "Scaling"): each event goes to its
channel's bucket channel `<name>:<n>`, and a node listens only to the buckets of the channels it has
subscribers of. Three nodes over one throw-away redis-server; the bus traffic each node hears is read
from its `/metrics` (`reverb_cluster_bus_messages_received_total`)."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from conftest import RECV_TIMEOUT, _get, channel_signature, unique, wait_until
from test_metrics import samples, scrape

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

BUCKETS = 4096


def bucket(app_id: str, channel: str, buckets: int = BUCKETS) -> int:
    """FNV-1a 64 of `app \\0 channel`, as every node computes it."""
    value = 0xCBF29CE484222325
    for byte in app_id.encode() + b"\x00" + channel.encode():
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value & (buckets - 1)


def bus_messages(node) -> float:
    status, _, text = scrape(node.host, node.port)
    assert status == 200, text
    return samples(text)["reverb_cluster_bus_messages_received_total{}"]


@pytest.fixture
def interest_cluster(reverb_server, redis):
    """`make(n)`: n nodes of one app in interest routing on their own control channel."""
    def make(count=3, **env):
        channel = unique("interest-")
        credentials = {"app_id": "778", "key": "interest-key", "secret": "interest-secret"}
        variables = {
            "REVERB_SCALING_ENABLED": "true", "REVERB_SCALING_CHANNEL": channel,
            "REVERB_SCALING_ROUTING": "interest", "REVERB_METRICS_ENABLED": "true",
            "REDIS_URL": f"redis://127.0.0.1:{redis.port}", **env,
        }
        nodes = [reverb_server(**credentials, env=variables, accept_client_events_from="all")
                 for _ in range(count)]
        wait_until(lambda: redis.numsub(channel) == count, timeout=10, message="every node on the control channel")
        for node in nodes:
            node.bus_channel = channel
        return nodes

    return make


def bucket_channel(node, channel: str) -> str:
    return f"{node.bus_channel}:{bucket(node.app_id, channel)}"


def test_events_reach_only_the_nodes_with_subscribers(interest_cluster, redis, ws_client):
    a, b, c = interest_cluster(3)
    orders, news = "orders-" + unique(), "news-" + unique()
    assert bucket(a.app_id, orders) != bucket(a.app_id, news)
    on_b = ws_client(b)
    on_b.subscribe(orders)
    on_c = ws_client(c)
    on_c.subscribe(news)
    wait_until(lambda: redis.numsub(bucket_channel(b, orders)) == 1, timeout=5, message="B on the orders bucket")
    wait_until(lambda: redis.numsub(bucket_channel(c, news)) == 1, timeout=5, message="C on the news bucket")
    before_b, before_c = bus_messages(b), bus_messages(c)
    client = a.pusher()
    for index in range(100):
        client.trigger(orders, "tick", {"i": index})
    for index in range(100):
        frame = json.loads(on_b.recv())
        assert frame["event"] == "tick" and json.loads(frame["data"]) == {"i": index}, frame
    on_b.expect_silence(0.3)
    on_c.expect_silence(0.1)
    heard_b, heard_c = bus_messages(b) - before_b, bus_messages(c) - before_c
    # B heard the 100 events; C only control traffic (heartbeats, occupancy: a handful).
    assert heard_b >= 100, heard_b
    assert heard_c < 20, f"C heard {heard_c} bus messages for a channel it has no subscriber of"
    # A multi-channel event is split per bucket: each subscriber gets it exactly once.
    client.trigger([orders, news], "both", {"x": 1})
    assert json.loads(on_b.recv())["channel"] == orders
    assert json.loads(on_c.recv())["channel"] == news
    on_b.expect_silence(0.3)
    on_c.expect_silence(0.1)


def test_whispers_presence_and_counts_cross_nodes(interest_cluster, ws_client):
    a, b, _ = interest_cluster(3)
    room = "presence-" + unique()
    joined = []
    for node, user in ((a, 1), (b, 2)):
        ws = ws_client(node)
        data = json.dumps({"user_id": user})
        ws.subscribe(room, auth=f"{node.key}:{channel_signature(node.secret, ws.socket_id, room, data)}",
                     channel_data=data)
        joined.append(ws)
    on_a, on_b = joined
    wait_until(lambda: _get(a, f"/apps/{a.app_id}/channels/{room}", {"info": "user_count"}).get("user_count") == 2,
               timeout=5, message="a cluster-wide user count on A")
    wait_until(lambda: _get(b, f"/apps/{b.app_id}/channels/{room}", {"info": "user_count"}).get("user_count") == 2,
               timeout=5, message="a cluster-wide user count on B")
    added = json.loads(on_a.recv())
    assert added["event"] == "pusher_internal:member_added" and json.loads(added["data"])["user_id"] == 2, added
    on_a.send_json({"event": "client-typing", "channel": room, "data": {"who": 1}})
    frame = json.loads(on_b.recv())
    if frame["event"] == "pusher_internal:member_added":
        # B's client subscribed before B's node had heard of user 1: it learns of them now.
        assert json.loads(frame["data"])["user_id"] == 1, frame
        frame = json.loads(on_b.recv())
    assert frame["event"] == "client-typing" and frame["channel"] == room and frame["user_id"] == 1, frame
    on_b.expect_silence(0.3)


def test_cache_channel_replays_an_event_published_before_any_subscriber(interest_cluster, ws_client):
    a, b, _ = interest_cluster(3)
    channel = "cache-" + unique()
    a.pusher().trigger(channel, "last", {"v": 9})
    time.sleep(0.3)  # over the bus to every node (cache events go on the control channel)
    ws = ws_client(b)
    ws.subscribe(channel)
    cached = json.loads(ws.recv())
    assert cached["event"] == "last" and json.loads(cached["data"]) == {"v": 9}, cached


def test_bucket_lingers_then_is_unsubscribed_and_comes_back(interest_cluster, redis, ws_client):
    a, b = interest_cluster(2)
    channel = "linger-" + unique()
    redis_channel = bucket_channel(b, channel)
    ws = ws_client(b)
    ws.subscribe(channel)
    wait_until(lambda: redis.numsub(redis_channel) == 1, timeout=5, message="bucket subscribed")
    ws.unsubscribe(channel)
    ws.ping_pong()
    time.sleep(1)
    assert redis.numsub(redis_channel) == 1, "the empty bucket lingers (5 s) before it goes"
    wait_until(lambda: redis.numsub(redis_channel) == 0, timeout=10, message="bucket unsubscribed after lingering")
    ws.subscribe(channel)
    wait_until(lambda: redis.numsub(redis_channel) == 1, timeout=5, message="bucket subscribed again")
    a.pusher().trigger(channel, "again", {})
    assert json.loads(ws.recv())["event"] == "again"


def test_buckets_are_subscribed_again_after_redis_restarts(interest_cluster, redis, ws_client):
    a, b = interest_cluster(2)
    channel = "restart-" + unique()
    redis_channel = bucket_channel(b, channel)
    ws = ws_client(b)
    ws.subscribe(channel)
    wait_until(lambda: redis.numsub(redis_channel) == 1, timeout=5, message="bucket subscribed")
    redis.stop()
    time.sleep(0.5)
    redis.start()
    wait_until(lambda: redis.numsub(redis_channel) == 1, timeout=15, message="bucket subscribed after the restart")
    wait_until(lambda: redis.numsub(a.bus_channel) == 2, timeout=15, message="control channel after the restart")

    def delivered() -> bool:
        a.pusher().trigger(channel, "after", {})
        try:
            return json.loads(ws.recv(timeout=0.5))["event"] == "after"
        except TimeoutError:
            return False
    wait_until(delivered, timeout=15, message="events across nodes again")
