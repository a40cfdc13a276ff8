"""Bus traffic per node in `broadcast` vs `interest` routing (docs.md "Scaling", "Interest routing").

Four nodes over one redis-server; `CHANNELS` channels with one subscriber each, spread round-robin over
the nodes; `EVENTS` events triggered round-robin on the nodes (through `batch_events`). Every subscriber
must get exactly its events; each node's `reverb_cluster_bus_messages_received_total` and
`..._received_bytes_total` say what Redis sent it. In interest routing a node hears the events of its
own channels and of the other channels that share their buckets, so the share falls towards
1/nodes as the buckets outnumber the channels.

The same test is the benchmark: `scripts/bench-interest.sh` runs it with 10,000 channels and events on
the release binary (INTEREST_CHANNELS, INTEREST_EVENTS, INTEREST_BUCKETS) and prints the figures."""

from __future__ import annotations

import asyncio
import json
import os
import shutil

import pytest

from conftest import unique, wait_until
from test_cluster_interest import bucket
from test_metrics import samples, scrape

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

NODES = 4
CHANNELS = int(os.environ.get("INTEREST_CHANNELS", "1000"))
EVENTS = int(os.environ.get("INTEREST_EVENTS", "1000"))
BUCKETS = int(os.environ.get("INTEREST_BUCKETS", "4096"))


def bus(node) -> tuple[float, float]:
    status, _, text = scrape(node.host, node.port)
    assert status == 200, text
    values = samples(text)
    return (values["reverb_cluster_bus_messages_received_total{}"],
            values["reverb_cluster_bus_received_bytes_total{}"])


async def subscribe_all(nodes, names):
    from websockets.asyncio.client import connect

    sockets = []
    semaphore = asyncio.Semaphore(200)

    async def one(index, name):
        node = nodes[index % len(nodes)]
        async with semaphore:
            ws = await connect(f"ws://127.0.0.1:{node.port}/app/{node.key}?protocol=7", ping_interval=None,
                               compression=None, max_queue=None)
            established = json.loads(await ws.recv())
            assert established["event"] == "pusher:connection_established", established
            await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": name}}))
            ok = json.loads(await ws.recv())
            assert ok["event"] == "pusher_internal:subscription_succeeded", ok
        return ws

    sockets = await asyncio.gather(*(one(index, name) for index, name in enumerate(names)))
    return sockets


async def collect(sockets, expected_each, timeout):
    counts = [0] * len(sockets)

    async def drain(index, ws):
        while counts[index] < expected_each:
            frame = json.loads(await ws.recv())
            if frame["event"] == "tick":
                counts[index] += 1
        try:  # and nothing more
            extra = await asyncio.wait_for(ws.recv(), timeout=0.2)
            counts[index] += 1000 * (json.loads(extra)["event"] == "tick")
        except asyncio.TimeoutError:
            pass

    await asyncio.wait_for(asyncio.gather(*(drain(i, ws) for i, ws in enumerate(sockets))), timeout)
    return counts


def run(make_nodes, routing):
    nodes = make_nodes(routing)
    names = [f"traffic-{routing}-{index}" for index in range(CHANNELS)]
    loop = asyncio.new_event_loop()
    try:
        sockets = loop.run_until_complete(subscribe_all(nodes, names))
        # The buckets are subscribed within milliseconds of the first subscriber (a missed event would
        # fail the exactly-once check below).
        loop.run_until_complete(asyncio.sleep(0.5))
        before = [bus(node) for node in nodes]
        per_channel = EVENTS // CHANNELS
        batch = []
        sent = 0
        for index in range(per_channel * CHANNELS):
            batch.append({"channel": names[index % CHANNELS], "name": "tick", "data": json.dumps({"i": index})})
            if len(batch) == 10:
                nodes[sent % NODES].pusher().trigger_batch(batch)
                sent += 1
                batch = []
        if batch:
            nodes[sent % NODES].pusher().trigger_batch(batch)
        counts = loop.run_until_complete(collect(sockets, per_channel, timeout=120))
        after = [bus(node) for node in nodes]
        for ws in sockets:
            loop.run_until_complete(ws.close())
    finally:
        loop.close()
    wrong = [(names[i], count) for i, count in enumerate(counts) if count != per_channel]
    assert not wrong, f"{len(wrong)} subscribers did not get exactly {per_channel} events: {wrong[:5]}"
    heard = [(a[0] - b[0], a[1] - b[1]) for a, b in zip(after, before)]
    print(f"\n{routing}: {CHANNELS} channels, {per_channel * CHANNELS} events, buckets {BUCKETS}")
    for index, (messages, size) in enumerate(heard):
        print(f"  node {index}: {messages:.0f} bus messages, {size / 1024:.0f} KiB")
    return nodes, names, heard


@pytest.fixture
def four_nodes(reverb_server, redis):
    def make(routing):
        channel = unique("traffic-bus-")
        env = {
            "REVERB_SCALING_ENABLED": "true", "REVERB_SCALING_CHANNEL": channel,
            "REVERB_SCALING_ROUTING": routing, "REVERB_SCALING_BUCKETS": str(BUCKETS),
            "REVERB_METRICS_ENABLED": "true", "REDIS_URL": f"redis://127.0.0.1:{redis.port}",
            "REVERB_APP_MAX_CONNECTIONS": "", "REVERB_APP_RATE_LIMITING_ENABLED": "false",
        }
        nodes = [reverb_server(app_id="779", key="traffic-key", secret="traffic-secret", env=env)
                 for _ in range(NODES)]
        wait_until(lambda: redis.numsub(channel) == NODES, timeout=10, message="every node on the bus")
        return nodes

    return make


def test_each_node_hears_only_its_buckets_and_every_subscriber_gets_its_events_once(four_nodes):
    _, _, broadcast = run(four_nodes, "broadcast")
    nodes, names, interest = run(four_nodes, "interest")
    events = (EVENTS // CHANNELS) * CHANNELS
    # Broadcast: every node hears every event (a batch item is a bus message of its own, its own
    # node's included), plus control traffic.
    for messages, _ in broadcast:
        assert messages >= events, broadcast
    # Interest: a node hears the events of its own channels and of those sharing their buckets,
    # never those of buckets none of its channels fall in.
    for index, (messages, _) in enumerate(interest):
        own = {bucket("779", name, BUCKETS) for i, name in enumerate(names) if i % NODES == index}
        reachable = sum(1 for i in range(events) if bucket("779", names[i % CHANNELS], BUCKETS) in own)
        own_events = sum(1 for i in range(events) if (i % CHANNELS) % NODES == index)
        assert own_events <= messages <= reachable + 100, (index, messages, own_events, reachable)  # + control
    total_broadcast = sum(size for _, size in broadcast)
    total_interest = sum(size for _, size in interest)
    print(f"  bus bytes, all nodes: broadcast {total_broadcast / 1024:.0f} KiB, interest {total_interest / 1024:.0f} KiB,"
          f" ratio {total_broadcast / max(total_interest, 1):.2f}")
    assert total_interest < total_broadcast
