"""Two `reverb start` nodes over a Redis Cluster (REDIS_CLUSTER, sharded pub/sub), in both routings.

A three-primary cluster with one replica each is started by scripts/start-redis-cluster.sh (free
loopback ports, cluster-node-timeout 1000 ms): one per module for the functional tests, one per
failover test (it kills a primary). The failover tests measure, with a steady publisher on node A and
a subscriber on node B, how long cross-node delivery stops and how many events are lost; the figures
are printed (pytest -s) and written to $REVERB_E2E_REPORT_DIR/cluster-failover-<routing>.json when set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import _get, channel_signature, compact, unique, wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("redis-cli") is None,
    reason="redis-server and redis-cli are needed")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "start-redis-cluster.sh"
CREDENTIALS = {"app_id": "778", "key": "rc-key", "secret": "rc-secret"}


class RedisCluster:
    def __init__(self, directory: Path):
        self.directory = directory
        out = subprocess.run([str(SCRIPT), "start", str(directory)], capture_output=True, text=True, timeout=90)
        assert out.returncode == 0, f"start-redis-cluster.sh failed: {out.stderr}"
        self.seeds = out.stdout.strip().split("=", 1)[1]
        self.ports = [int(p) for p in (directory / "ports").read_text().split()]
        self.killed: set[int] = set()

    def cli(self, port: int, *args: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                              timeout=5).stdout.strip()

    def live(self) -> list[int]:
        return [p for p in self.ports if p not in self.killed]

    def owner(self, key: str) -> int:
        """The port of the live primary serving `key`'s slot, as a live node's CLUSTER NODES says."""
        slot = int(self.cli(self.live()[0], "CLUSTER", "KEYSLOT", key))
        for port in self.live():
            for line in self.cli(port, "CLUSTER", "NODES").splitlines():
                fields = line.split()
                if "master" not in fields[2] or "fail" in fields[2]:
                    continue
                for item in fields[8:]:
                    if item.startswith("["):
                        continue
                    low, _, high = item.partition("-")
                    if int(low) <= slot <= int(high or low):
                        return int(fields[1].split(":")[1].split("@")[0])
        raise AssertionError(f"no primary serves slot {slot}")

    def shard_subscribers(self, channel: str) -> int:
        reply = self.cli(self.owner(channel), "PUBSUB", "SHARDNUMSUB", channel).splitlines()
        return int(reply[1]) if len(reply) == 2 else 0

    def kill(self, port: int):
        pid = int((self.directory / str(port) / "redis.pid").read_text())
        os.kill(pid, 9)
        self.killed.add(port)

    def stop(self):
        subprocess.run([str(SCRIPT), "stop", str(self.directory)], timeout=30)


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory):
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
def own_cluster(tmp_path):
    cluster = RedisCluster(tmp_path / "redis-cluster")
    yield cluster
    cluster.stop()


def bucket_channel(prefix: str, app: str, channel: str, buckets: int = 4096) -> str:
    """The Redis channel of `channel`'s events in interest routing (InterestTable.bucket: FNV-1a)."""
    value = 0xCBF29CE484222325
    for byte in app.encode() + b"\0" + channel.encode():
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{prefix}:{value & (buckets - 1)}"


def start_nodes(reverb_server, cluster: RedisCluster, routing: str, wait_subscribed: bool = True, **env):
    channel = unique("rc-")
    environment = {
        "REVERB_SCALING_ENABLED": "true",
        "REVERB_SCALING_CHANNEL": channel,
        "REVERB_SCALING_ROUTING": routing,
        "REDIS_CLUSTER": cluster.seeds,
        **env,
    }
    a = reverb_server(**CREDENTIALS, env=environment)
    b = reverb_server(**CREDENTIALS, env=environment)
    if wait_subscribed:
        wait_until(lambda: cluster.shard_subscribers(channel) == 2, timeout=15, message="both nodes subscribed")
    wait_until(lambda: _get(a, "/apps/778/connections") is not None and a.up()[0] == 200, timeout=5)
    a.bus_channel = b.bus_channel = channel
    return a, b


def users(node, channel: str):
    """`/channels/{channel}/users`, None while the node answers 404 (the channel not known there yet)."""
    try:
        return _get(node, f"/apps/778/channels/{channel}/users")
    except Exception as error:  # pusher.errors.PusherBadStatus
        if "404" in str(error):
            return None
        raise


def event_frame(channel: str, event: str, data: str) -> str:
    return compact({"event": event, "data": data, "channel": channel})


@pytest.mark.parametrize("routing", ["broadcast", "interest"])
def test_events_queries_presence_and_termination_across_nodes(reverb_server, shared_cluster, ws_client, routing):
    a, b = start_nodes(reverb_server, shared_cluster, routing, REVERB_METRICS_ENABLED="true")

    # Events both ways, on channels whose buckets land on every primary (in interest routing).
    names, owners = [], set()
    for n in range(200):
        owner = shared_cluster.owner(bucket_channel(a.bus_channel, "778", f"orders-{n}"))
        if owner not in owners:
            owners.add(owner)
            names.append(f"orders-{n}")
        if len(owners) == 3:
            break
    assert len(owners) == 3
    listeners = {}
    for name in names:
        ws = ws_client(b)
        ws.subscribe(name)
        listeners[name] = ws
    wait_until(lambda: _get(a, "/apps/778/channels", {"info": "subscription_count"})["channels"].keys()
               >= set(listeners), timeout=10, message="node A to see B's subscribers")
    if routing == "interest":
        # Node B's bucket subscriptions live on three different primaries.
        for name in names:
            bucket = bucket_channel(a.bus_channel, "778", name)
            wait_until(lambda: shared_cluster.shard_subscribers(bucket) >= 1, timeout=10,
                       message=f"{bucket} subscribed on its primary")
    for n, name in enumerate(listeners):
        a.pusher().trigger(name, "Ping", {"n": n})
    for n, (name, ws) in enumerate(listeners.items()):
        assert ws.recv() == event_frame(name, "Ping", f'{{"n": {n}}}')
    back = ws_client(a)
    back.subscribe("replies")
    wait_until(lambda: "replies" in _get(b, "/apps/778/channels")["channels"], timeout=10,
               message="node B to see A's subscriber")
    b.pusher().trigger("replies", "Pong", {"ok": True})
    assert back.recv() == event_frame("replies", "Pong", '{"ok": true}')

    # A /channels query answered from both nodes.
    assert _get(a, f"/apps/778/channels/{names[0]}", {"info": "subscription_count"}) == {
        "occupied": True, "subscription_count": 1}

    # Presence members across nodes.
    room = unique("presence-room-")
    ann, bob = '{"user_id":1,"user_info":{"name":"Ann"}}', '{"user_id":"2"}'
    on_a, on_b = ws_client(a), ws_client(b)
    on_a.subscribe(room, auth=f"{a.key}:{channel_signature(a.secret, on_a.socket_id, room, ann)}", channel_data=ann)
    wait_until(lambda: users(b, room) == {"users": [{"id": 1}]}, timeout=10,
               message="node B to list Ann")
    on_b.subscribe(room, auth=f"{b.key}:{channel_signature(b.secret, on_b.socket_id, room, bob)}", channel_data=bob)
    assert on_a.recv() == compact({"event": "pusher_internal:member_added", "data": bob, "channel": room})
    wait_until(lambda: users(a, room) == {"users": [{"id": 1}, {"id": "2"}]},
               timeout=10, message="node A to list both members")

    # A user terminated on A loses its connection on B.
    a.pusher().terminate_user_connections("2")
    code, reason, _ = on_b.expect_closed()
    assert (code, reason) == (1008, "Connection terminated")
    assert a.running() and b.running()
    a.assert_healthy()

    # /metrics: one gauge per shard connection, each up, labelled with the shard's primary.
    with urllib.request.urlopen(f"http://{a.host}:{a.port}/metrics", timeout=5) as response:
        text = response.read().decode()
    shards = re.findall(r'reverb_redis_shard_connected\{([^}]*)\} (\S+)', text)
    roles = {re.search(r'role="(\w+)"', labels).group(1) for labels, _ in shards}
    assert roles == {"publisher", "subscriber"}, text
    assert all(value == "1.0" or value == "1" for _, value in shards), shards
    primaries = {f"127.0.0.1:{port}" for port in shared_cluster.ports}
    assert {re.search(r'shard="([^"]+)"', labels).group(1) for labels, _ in shards} <= primaries


def test_streams_transport_appends_on_the_stream_keys_owner(reverb_server, shared_cluster, ws_client):
    """REVERB_SCALING_TRANSPORT=streams over a cluster: XADD/XREAD on the primary owning the stream key."""
    a, b = start_nodes(reverb_server, shared_cluster, "broadcast", wait_subscribed=False,
                       REVERB_SCALING_TRANSPORT="streams")
    listener = ws_client(b)
    listener.subscribe("orders")
    wait_until(lambda: "orders" in _get(a, "/apps/778/channels")["channels"], timeout=15,
               message="node A to see B's subscriber over the stream")
    a.pusher().trigger("orders", "Placed", {"id": 1})
    assert listener.recv() == event_frame("orders", "Placed", '{"id": 1}')
    owner = shared_cluster.owner(a.bus_channel)
    assert int(shared_cluster.cli(owner, "XLEN", a.bus_channel)) >= 1
    assert a.running() and b.running()


@pytest.mark.parametrize("routing", ["broadcast", "interest"])
def test_primary_failover_resumes_cross_node_delivery(reverb_server, own_cluster, ws_client, routing):
    """Kill the primary serving the events' Redis channel while A publishes 50 events/s to a subscriber
    on B: the cluster promotes its replica, both nodes follow, delivery resumes; count what was lost."""
    a, b = start_nodes(reverb_server, own_cluster, routing, REDIS_TIMEOUT="2")
    listener = ws_client(b)
    listener.subscribe("ticks")
    wait_until(lambda: "ticks" in _get(a, "/apps/778/channels")["channels"], timeout=10,
               message="node A to see B's subscriber")
    redis_channel = a.bus_channel if routing == "broadcast" else bucket_channel(a.bus_channel, "778", "ticks")
    victim = own_cluster.owner(redis_channel)

    sent: dict[int, float] = {}
    received: dict[int, float] = {}
    stop = threading.Event()

    def publish():
        client = a.pusher()
        n = 0
        while not stop.is_set():
            sent[n] = time.monotonic()
            client.trigger("ticks", "Tick", {"n": n})
            n += 1
            time.sleep(0.02)

    def listen():
        while not stop.is_set() or len(received) < len(sent):
            try:
                frame = json.loads(listener.recv(timeout=0.5))
            except Exception:
                if stop.is_set():
                    return
                continue
            if frame.get("event") == "Tick":
                received[json.loads(frame["data"])["n"]] = time.monotonic()

    threads = [threading.Thread(target=publish, daemon=True), threading.Thread(target=listen, daemon=True)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(received) >= 25, timeout=10, message="steady delivery before the kill")
    killed_at = time.monotonic()
    own_cluster.kill(victim)
    # Resumed: an event sent after the kill arrives.
    wait_until(lambda: any(sent[n] > killed_at for n in list(received)), timeout=30,
               message="cross-node delivery to resume after the failover")
    resumed_at = min(received[n] for n in list(received) if sent[n] > killed_at)
    promoted = own_cluster.owner(redis_channel)
    time.sleep(2)  # steady traffic on the new primary
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    total = len(sent)
    lost = sorted(set(sent) - set(received))
    report = {
        "routing": routing,
        "killed_primary": victim,
        "promoted_primary": promoted,
        "events_sent": total,
        "events_lost": len(lost),
        "lost_window_s": round(sent[lost[-1]] - sent[lost[0]], 3) if lost else 0,
        "resume_after_kill_s": round(resumed_at - killed_at, 3),
        "duplicates": 0,
    }
    print(f"\nRedis Cluster failover ({routing}): {json.dumps(report)}")
    if os.environ.get("REVERB_E2E_REPORT_DIR"):
        Path(os.environ["REVERB_E2E_REPORT_DIR"], f"cluster-failover-{routing}.json").write_text(json.dumps(report))
    assert promoted != victim
    assert a.running() and b.running(), "no node exits"
    # Everything sent after the cluster settled arrived; losses are confined to the failover window.
    assert all(n in received for n in sent if sent[n] > resumed_at + 1.0)
    assert all(sent[n] < resumed_at for n in lost)
    wait_until(lambda: a.up() == (200, b'{"health":"OK"}') and b.up() == (200, b'{"health":"OK"}'), timeout=15,
               message="both nodes healthy again")
    # The other direction works on the new topology too.
    back = ws_client(a)
    back.subscribe("after")
    wait_until(lambda: "after" in _get(b, "/apps/778/channels")["channels"], timeout=10, message="B sees A's subscriber")
    b.pusher().trigger("after", "Done", {})
    assert back.recv() == event_frame("after", "Done", "{}")
