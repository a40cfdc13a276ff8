"""Cluster-wide state under faults: three `reverb start` nodes sharing one Redis (scaling.md §4).

Presence, occupancy and cache channels are replicated over the bus, so every node answers for the
whole cluster; these tests break the cluster on purpose and check that the replicated state stays the
truth:

  * exactly once    — 3,000 events, triggered round-robin on three nodes, reach 30 subscribers once each,
                      in order per origin;
  * presence        — members on three nodes see each other; one user on two nodes is announced and
                      removed once;
  * SIGKILL         — a dead node's members are removed on the survivors within 25 s (15 s peer lifetime);
  * SIGSTOP/SIGCONT — a frozen node is expired, then comes back with its members and its clients;
  * Redis restart   — every node reconnects and re-syncs; lost events are measured (printed, not asserted);
  * cache channels  — an event cached on one node is replayed to a subscriber on another;
  * bad bus input   — garbage, foreign apps, impersonation and a 10,000-message flood are harmless.

Each test starts its own redis-server (conftest.Redis) and nodes (conftest.reverb_server); the nodes'
ids are learnt from Redis' CLIENT LIST (`swift-reverb:<node>:subscriber`). Run with `-s` to see the
figures the tests print (`LOST during redis restart: ...`).
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from collections import Counter

import pytest
from pusher.errors import PusherBadStatus

from conftest import _get, channel_signature, compact, unique, wait_until

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

CREDENTIALS = {"app_id": "778", "key": "state-key", "secret": "state-secret"}
EXPIRY_DEADLINE = 25.0  # peer lifetime 15 s + 1 s expiry tick + heartbeat phase + a loaded CI machine
CONVERGE = 5.0  # replicated state visible on every node
FREEZE_SECONDS = 20.0
REDIS_DOWN_SECONDS = 5.0
FAKE_NODE = "00000000000000ff"


# --------------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def cluster3(reverb_server, redis):
    """Factory: `cluster3(count=3, **server_options)` -> [a, b, c], nodes of one app on one bus channel.

    Nodes start one after the other; each one's id (`node.node_id`) is the one new
    `swift-reverb:<id>:subscriber` connection in CLIENT LIST once it has subscribed.
    """
    channel = unique("cluster-state-")

    def make(count: int = 3, **options):
        env = {
            "REVERB_SCALING_ENABLED": "true",
            "REVERB_SCALING_CHANNEL": channel,
            "REDIS_URL": f"redis://127.0.0.1:{redis.port}",
            **options.pop("env", {}),
        }
        nodes = []
        for index in range(count):
            known = redis.node_ids()
            node = reverb_server(**CREDENTIALS, env=env, **options)
            wait_until(lambda: redis.numsub(channel) == index + 1, timeout=10,
                       message=f"node {index} to subscribe to {channel}")
            new = wait_until(lambda: redis.node_ids() - known, timeout=5, message=f"node {index}'s client name")
            assert len(new) == 1, new
            node.node_id = new.pop()
            node.bus_channel = channel
            node.label = "ABCDEFGH"[index]
            nodes.append(node)
        return nodes

    return make


def eventually(probe, check, timeout: float, what: str, interval: float = 0.05):
    """Polls `probe()` until `check(value)`; the failure shows the last value seen."""
    last = []

    def attempt():
        value = probe()
        last[:] = [value]
        return check(value)

    try:
        wait_until(attempt, timeout=timeout, interval=interval, message=what)
    except AssertionError as error:
        raise AssertionError(f"{error}; last seen: {last[0] if last else None!r}") from None
    return last[0]


def users(node, channel):
    """User ids (JSON types kept) of GET /channels/{channel}/users on `node`; None for 404 (unoccupied)."""
    try:
        body = _get(node, f"/apps/{node.app_id}/channels/{channel}/users")
    except PusherBadStatus as error:
        if str(error).startswith("404"):
            return None
        raise
    return [user["id"] for user in body["users"]]


def same_members(got, expected) -> bool:
    """Same user ids, same JSON types, any order (404 counts as no member)."""
    return Counter(map(json.dumps, got or [])) == Counter(map(json.dumps, expected))


def users_everywhere(nodes, channel):
    return {node.label: users(node, channel) for node in nodes}


def wait_members(nodes, channel, expected, timeout: float = CONVERGE, what: str = ""):
    eventually(lambda: users_everywhere(nodes, channel),
               lambda seen: all(same_members(ids, expected) for ids in seen.values()), timeout,
               what or f"/users of {channel} == {expected} on {[n.label for n in nodes]}")


def subscription_count(node, channel) -> int:
    return _get(node, f"/apps/{node.app_id}/channels/{channel}",
                {"info": "subscription_count"}).get("subscription_count", 0)


def user_count(node, channel) -> int:
    return _get(node, f"/apps/{node.app_id}/channels/{channel}", {"info": "user_count"}).get("user_count", 0)


def channel_names(node) -> set[str]:
    return set(_get(node, f"/apps/{node.app_id}/channels")["channels"])


def wait_counts(nodes, channel, expected: int, timeout: float = CONVERGE):
    eventually(lambda: {n.label: subscription_count(n, channel) for n in nodes},
               lambda seen: all(v == expected for v in seen.values()), timeout,
               f"subscription_count of {channel} == {expected} on every node")


def join(ws, node, channel: str, channel_data: str) -> dict:
    """Subscribes `ws` to a presence channel; returns the `presence` object of subscription_succeeded."""
    signature = channel_signature(node.secret, ws.socket_id, channel, channel_data)
    ws.send_json({"event": "pusher:subscribe",
                  "data": {"auth": f"{node.key}:{signature}", "channel_data": channel_data, "channel": channel}})
    frame = ws.recv()
    msg = json.loads(frame)
    assert msg.get("event") == "pusher_internal:subscription_succeeded" and msg.get("channel") == channel, frame
    return json.loads(msg["data"])["presence"]


def presence(members: list[tuple]) -> dict:
    """The expected `presence` object for [(user_id, user_info or None), ...] in first-join order."""
    return {"count": len(members), "ids": [uid for uid, _ in members],
            "hash": {str(uid): info for uid, info in members}}


def member_added(channel: str, channel_data: str) -> str:
    return compact({"event": "pusher_internal:member_added", "data": channel_data, "channel": channel})


def member_removed(channel: str, user_id) -> str:
    return compact({"event": "pusher_internal:member_removed", "data": compact({"user_id": user_id}),
                    "channel": channel})


def recv_until(ws, wanted, timeout: float = 10.0) -> list[str]:
    """Reads frames until `wanted(frame)` (or the frame itself when a string); returns the frames
    before it. Used where other frames may legitimately come first."""
    test = wanted if callable(wanted) else (lambda frame: frame == wanted)
    skipped = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {wanted!r} within {timeout}s; got {skipped[-20:]}")
        try:
            frame = ws.recv(timeout=remaining)
        except TimeoutError:
            continue
        if test(frame):
            return skipped
        skipped.append(frame)


def event_frame(channel: str, name: str, data: str) -> str:
    return compact({"event": name, "data": data, "channel": channel})


def assert_flows(origin, channel: str, receivers, timeout: float = 10.0):
    """An event triggered on `origin` reaches every (label, ws) in `receivers`."""
    name = unique("Flow")
    assert origin.pusher().trigger(channel, name, "x") == {}
    for label, ws in receivers:
        try:
            recv_until(ws, event_frame(channel, name, "x"), timeout)
        except AssertionError as error:
            raise AssertionError(f"event from node {origin.label} did not reach the subscriber on {label}: "
                                 f"{error}") from None


# --------------------------------------------------------------------------------------------------
# Exactly once
# --------------------------------------------------------------------------------------------------

SUBSCRIBERS_PER_NODE = 10
EVENTS_PER_ORIGIN = 1000
BATCH = 10


def test_every_subscriber_gets_every_event_exactly_once_in_order(cluster3, ws_client):
    """30 subscribers (10 per node) of one public channel; 1,000 events triggered on each of the
    three nodes (batches of 10, one thread per origin, so each origin's order is defined). Every
    subscriber receives each of the 3,000 events exactly once, and each origin's events in the order
    they were sent."""
    nodes = cluster3()
    channel = unique("once-")
    subscribers = []
    for node in nodes:
        for _ in range(SUBSCRIBERS_PER_NODE):
            ws = ws_client(node, max_queue=None)  # never pause reading: no slow-consumer close
            ws.subscribe(channel)
            subscribers.append((node.label, ws))
    total = len(subscribers)
    wait_counts(nodes, channel, total, timeout=10)

    expected = EVENTS_PER_ORIGIN * len(nodes)
    received: list[list[str]] = [[] for _ in subscribers]
    deadline = time.monotonic() + 60

    def drain(index, ws):
        frames = received[index]
        seen = 0
        try:
            while seen < expected:
                frame = ws.conn.recv(timeout=max(0.01, deadline - time.monotonic()))
                frames.append(frame)
                seen += frame.startswith('{"event":"Seq"')
            quiet_until = time.monotonic() + 0.5  # duplicates would arrive now
            while (remaining := quiet_until - time.monotonic()) > 0:
                frames.append(ws.conn.recv(timeout=remaining))
        except TimeoutError:
            pass

    readers = [threading.Thread(target=drain, args=(i, ws), daemon=True) for i, (_, ws) in enumerate(subscribers)]
    for reader in readers:
        reader.start()

    errors = []

    def fire(origin: int, node):
        client = node.pusher(timeout=10)
        try:
            for start in range(0, EVENTS_PER_ORIGIN, BATCH):
                client.trigger_batch([{"channel": channel, "name": "Seq", "data": f"{origin}:{seq}"}
                                      for seq in range(start, min(start + BATCH, EVENTS_PER_ORIGIN))])
        except Exception as error:  # reported below
            errors.append(f"trigger on node {node.label}: {error!r}")

    started = time.monotonic()
    triggers = [threading.Thread(target=fire, args=(i, node), daemon=True) for i, node in enumerate(nodes)]
    for thread in triggers:
        thread.start()
    for thread in triggers:
        thread.join(60)
    triggered = time.monotonic()
    for reader in readers:
        reader.join(max(0.1, deadline - time.monotonic()))
    delivered = time.monotonic()
    assert not errors, errors
    print(f"\nexactly once: {expected} events triggered in {triggered - started:.2f}s, "
          f"{expected * total} deliveries done {delivered - started:.2f}s after the first trigger")

    problems = []
    for index, (label, _) in enumerate(subscribers):
        per_origin = {origin: [] for origin in range(len(nodes))}
        other = []
        for frame in received[index]:
            msg = json.loads(frame)
            if msg.get("event") == "Seq" and msg.get("channel") == channel:
                origin, seq = map(int, msg["data"].split(":"))
                per_origin[origin].append(seq)
            else:
                other.append(frame)
        for origin, seqs in per_origin.items():
            if seqs == list(range(EVENTS_PER_ORIGIN)):
                continue
            counts = Counter(seqs)
            missing = EVENTS_PER_ORIGIN - len(counts)
            duplicates = sum(n - 1 for n in counts.values())
            disorder = sum(1 for x, y in zip(seqs, seqs[1:]) if y <= x)
            problems.append(f"subscriber {index} on {label}, events from {nodes[origin].label}: {len(seqs)} "
                            f"received, {missing} missing, {duplicates} duplicates, {disorder} out of order")
        if other:
            problems.append(f"subscriber {index} on {label}: unexpected frames {other[:3]}")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:30])


# --------------------------------------------------------------------------------------------------
# Presence across nodes
# --------------------------------------------------------------------------------------------------


def test_presence_is_cluster_wide_across_three_nodes(cluster3, ws_client):
    """Members joining on A, B and C see each other (member_added with the joiner's channel_data,
    never to the joiner itself); subscription_succeeded on any node lists every member of the cluster
    in first-join order. User 1 connected on A and on C is announced once and removed only when its
    last socket (on C) leaves; a 4th join lists all four."""
    a, b, c = nodes = cluster3()
    ch = unique("presence-room-")
    cd1 = '{"user_id":1,"user_info":{"name":"Ann"}}'
    cd2 = '{"user_id":"2","user_info":{"name":"Bob"}}'
    cd3 = '{"user_id":3}'
    cd4 = '{"user_id":4,"user_info":{"name":"Dee","tags":["x"]}}'
    ann, bob, dee = (1, {"name": "Ann"}), ("2", {"name": "Bob"}), (4, {"name": "Dee", "tags": ["x"]})
    three = (3, None)

    u1_a = ws_client(a)
    assert join(u1_a, a, ch, cd1) == presence([ann])
    wait_members([b, c], ch, [1])

    u2_b = ws_client(b)
    assert join(u2_b, b, ch, cd2) == presence([ann, bob])
    assert u1_a.recv() == member_added(ch, cd2)
    wait_members([c], ch, [1, "2"])

    u3_c = ws_client(c)
    assert join(u3_c, c, ch, cd3) == presence([ann, bob, three])
    assert u1_a.recv() == member_added(ch, cd3)
    assert u2_b.recv() == member_added(ch, cd3)

    # User 1 again, on C: not new to the cluster, so nobody is told.
    u1_c = ws_client(c)
    assert join(u1_c, c, ch, cd1) == presence([ann, bob, three])
    u1_a.expect_silence(0.5)
    u2_b.expect_silence(0.05)
    u3_c.expect_silence(0.05)
    wait_members(nodes, ch, [1, "2", 3])
    for node in nodes:
        assert user_count(node, ch) == 3

    u4_b = ws_client(b)
    assert join(u4_b, b, ch, cd4) == presence([ann, bob, three, dee])
    for ws in (u1_a, u2_b, u3_c, u1_c):
        assert ws.recv() == member_added(ch, cd4)

    # User 1 leaves A but is still on C: no member_removed.
    u1_a.close()
    u2_b.expect_silence(0.5)
    for ws in (u3_c, u4_b, u1_c):
        ws.expect_silence(0.05)
    wait_members(nodes, ch, [1, "2", 3, 4])
    # ...and its last socket leaves: removed once, everywhere, not to the leaver.
    u1_c.unsubscribe(ch)
    for ws in (u2_b, u3_c, u4_b):
        assert ws.recv() == member_removed(ch, 1)
    u1_c.expect_silence(0.2)
    u2_b.expect_silence(0.3)
    wait_members(nodes, ch, ["2", 3, 4])

    u3_c.close()
    for ws in (u2_b, u4_b):
        assert ws.recv() == member_removed(ch, 3)
    wait_members(nodes, ch, ["2", 4])
    for node in nodes:
        assert user_count(node, ch) == 2
        assert _get(node, f"/apps/{node.app_id}/channels", {"filter_by_prefix": "presence-", "info": "user_count"}) \
            == {"channels": {ch: {"user_count": 2}}}


# --------------------------------------------------------------------------------------------------
# A node dies (SIGKILL)
# --------------------------------------------------------------------------------------------------


def test_killed_node_members_and_subscribers_expire_on_survivors(cluster3, ws_client):
    """C is SIGKILLed (no node_leave). Within 25 s the survivors send member_removed for users only
    on C (user 3) and not for a user also connected on a survivor (user 4, on A and C); /users,
    user_count, /channels and subscription_count on A and B drop C's sockets."""
    a, b, c = nodes = cluster3()
    ch = unique("presence-kill-")
    only_c, shared = unique("only-c-"), unique("shared-")
    cd = {uid: compact({"user_id": uid}) for uid in (1, 2, 3, 4)}

    u1_a = ws_client(a)
    join(u1_a, a, ch, cd[1])
    wait_members([b, c], ch, [1])
    u2_b = ws_client(b)
    join(u2_b, b, ch, cd[2])
    assert u1_a.recv() == member_added(ch, cd[2])
    wait_members([c], ch, [1, 2])
    u3_c = ws_client(c)
    join(u3_c, c, ch, cd[3])
    u4_c = ws_client(c)
    join(u4_c, c, ch, cd[4])
    for ws in (u1_a, u2_b):
        assert ws.recv() == member_added(ch, cd[3])
        assert ws.recv() == member_added(ch, cd[4])
    assert u3_c.recv() == member_added(ch, cd[4])
    wait_members([a], ch, [1, 2, 3, 4])
    u4_a = ws_client(a)
    assert join(u4_a, a, ch, cd[4])["count"] == 4
    u1_a.expect_silence(0.3)  # user 4 is not new

    sub_only_c = ws_client(c)
    sub_only_c.subscribe(only_c)
    sub_shared_a, sub_shared_c = ws_client(a), ws_client(c)
    sub_shared_a.subscribe(shared)
    sub_shared_c.subscribe(shared)
    wait_counts(nodes, shared, 2)
    wait_counts(nodes, only_c, 1)

    c.proc.send_signal(signal.SIGKILL)
    c.proc.wait(5)
    c.terminated = True  # the fixture does not expect a clean exit from this one
    killed = time.monotonic()

    for ws in (u1_a, u4_a, u2_b):
        assert ws.recv(timeout=max(0.1, killed + EXPIRY_DEADLINE - time.monotonic())) == member_removed(ch, 3)
    print(f"\nSIGKILL: member_removed on the survivors {time.monotonic() - killed:.1f}s after the kill")
    u1_a.expect_silence(1.0)  # no member_removed for user 4, still on A
    u4_a.expect_silence(0.05)
    u2_b.expect_silence(0.05)

    survivors = [a, b]
    wait_members(survivors, ch, [1, 2, 4])
    for node in survivors:
        assert user_count(node, ch) == 3
    eventually(lambda: {n.label: channel_names(n) for n in survivors},
               lambda seen: all(names == {ch, shared} for names in seen.values()), CONVERGE,
               "/channels on A and B to drop the channel only C's client was in")
    wait_counts(survivors, shared, 1)
    for node in survivors:
        assert subscription_count(node, only_c) == 0
        node.assert_healthy()
    assert_flows(b, shared, [("A", sub_shared_a)])


# --------------------------------------------------------------------------------------------------
# A node freezes (SIGSTOP 20 s, SIGCONT)
# --------------------------------------------------------------------------------------------------


def test_frozen_node_is_expired_then_comes_back(cluster3, ws_client):
    """C is SIGSTOPped for 20 s: the others expire it (member_removed for its user), then after
    SIGCONT its user comes back with member_added, every node's /users is the full list again, and
    C's own clients kept their connections and get events triggered on A and B after it resumed."""
    a, b, c = nodes = cluster3()
    ch = unique("presence-freeze-")
    ticks = unique("ticks-")
    cd1, cd2, cd3 = '{"user_id":1}', '{"user_id":2}', '{"user_id":"three","user_info":{"frozen":true}}'

    u1_a = ws_client(a)
    join(u1_a, a, ch, cd1)
    wait_members([b, c], ch, [1])
    u2_b = ws_client(b)
    join(u2_b, b, ch, cd2)
    assert u1_a.recv() == member_added(ch, cd2)
    wait_members([c], ch, [1, 2])
    u3_c = ws_client(c)
    assert join(u3_c, c, ch, cd3)["count"] == 3
    assert u1_a.recv() == member_added(ch, cd3)
    assert u2_b.recv() == member_added(ch, cd3)
    tick_c = ws_client(c)
    tick_c.subscribe(ticks)
    wait_counts(nodes, ticks, 1)

    c.proc.send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        for ws in (u1_a, u2_b):
            assert ws.recv(timeout=max(0.1, stopped + EXPIRY_DEADLINE - time.monotonic())) == \
                member_removed(ch, "three")
        expired_after = time.monotonic() - stopped
        wait_members([a, b], ch, [1, 2])
        assert subscription_count(a, ticks) == 0 and subscription_count(b, ticks) == 0
        a.pusher().trigger(ticks, "DuringFreeze", "x")  # sits in C's Redis socket; reported below
        time.sleep(max(0.0, FREEZE_SECONDS - (time.monotonic() - stopped)))  # the fault lasts 20 s
    finally:
        c.proc.send_signal(signal.SIGCONT)
    resumed = time.monotonic()
    print(f"\nSIGSTOP: expired on the others {expired_after:.1f}s after the stop")

    for ws in (u1_a, u2_b):
        assert ws.recv(timeout=15) == member_added(ch, cd3)
    print(f"SIGCONT: member_added on the others {time.monotonic() - resumed:.1f}s after the resume")
    u1_a.expect_silence(0.3)
    u2_b.expect_silence(0.05)
    wait_members(nodes, ch, [1, 2, "three"], timeout=10)
    wait_counts(nodes, ticks, 1, timeout=10)
    c.assert_healthy()

    # C's clients are still connected and hear the others again.
    skipped = []
    for origin in (a, b):
        name = unique("AfterFreeze")
        origin.pusher().trigger(ticks, name, "x")
        skipped += recv_until(tick_c, event_frame(ticks, name, "x"), timeout=10)
    print("frozen node delivered the event published during the freeze:",
          event_frame(ticks, "DuringFreeze", "x") in skipped)
    u3_c.send('{"event":"pusher:ping","data":{}}')
    recv_until(u3_c, '{"event":"pusher:pong"}', timeout=5)  # presence frames from C's own re-sync may come first
    for node in nodes:
        node.assert_healthy()


# --------------------------------------------------------------------------------------------------
# Redis restarts
# --------------------------------------------------------------------------------------------------


def test_redis_restart_resyncs_presence_and_occupancy(cluster3, ws_client, redis):
    """Redis is killed for 5 s and restarted on the same port while presence and subscriptions change
    (user 2 leaves B, user 4 joins C, a new subscriber on B) and A triggers 10 events/s. Every node
    reconnects, /users, user_count and subscription_count converge to the truth on every node, and
    events flow between all nodes again; no node exits. The events lost by subscribers on B and C are
    printed (Redis pub/sub drops what a disconnected subscriber misses)."""
    a, b, c = nodes = cluster3(env={"REDIS_TIMEOUT": "1"})
    channel = a.bus_channel
    ch = unique("presence-redis-")
    ticks, late = unique("ticks-"), unique("late-")
    u1_a = ws_client(a)
    join(u1_a, a, ch, '{"user_id":1}')
    wait_members([b, c], ch, [1])
    u2_b = ws_client(b)
    join(u2_b, b, ch, '{"user_id":2}')
    wait_members([c], ch, [1, 2])
    u3_c = ws_client(c)
    join(u3_c, c, ch, '{"user_id":3}')
    wait_members(nodes, ch, [1, 2, 3])
    tick = {node.label: ws_client(node) for node in nodes}
    for ws in tick.values():
        ws.subscribe(ticks)
    wait_counts(nodes, ticks, 3)

    sent, errors, stop = [], [], threading.Event()

    def trigger_during_outage():
        client = a.pusher(timeout=5)
        n = 0
        next_at = time.monotonic()
        while not stop.is_set():
            try:
                client.trigger(ticks, "Outage", str(n))
                sent.append(str(n))
            except Exception as error:  # reported below
                errors.append(repr(error))
            n += 1
            next_at += 0.1
            stop.wait(max(0.0, next_at - time.monotonic()))

    redis.stop()
    down = time.monotonic()
    trigger = threading.Thread(target=trigger_during_outage, daemon=True)
    trigger.start()
    try:
        u2_b.close()  # user 2 leaves B while the bus is down
        u4_c = ws_client(c)
        join(u4_c, c, ch, '{"user_id":4}')  # user 4 joins C
        late_b = ws_client(b)
        late_b.subscribe(late)
        eventually(lambda: [node.up() for node in nodes],
                   lambda seen: all(s == (200, b'{"health":"DEGRADED","redis":"disconnected"}') for s in seen),
                   REDIS_DOWN_SECONDS, "every node to report DEGRADED")
        time.sleep(max(0.0, REDIS_DOWN_SECONDS - (time.monotonic() - down)))  # the outage lasts 5 s
        redis.start()
        restarted = time.monotonic()
        wait_until(lambda: redis.numsub(channel) == 3, timeout=20, interval=0.05,
                   message="all three nodes to subscribe again")
        eventually(lambda: [node.up() for node in nodes],
                   lambda seen: all(s == (200, b'{"health":"OK"}') for s in seen), 10, "every node healthy")
        recovered = time.monotonic()
    finally:
        stop.set()
        trigger.join(10)
    assert not errors, errors[:5]
    for node in nodes:
        assert node.running(), f"node {node.label} exited: {node.stderr_text()}"

    # The Outage events arrive (if at all) before this marker, which A publishes after them.
    marker = event_frame(ticks, "AfterRestart", "x")
    assert a.pusher().trigger(ticks, "AfterRestart", "x") == {}
    report = [f"\nredis down {restarted - down:.1f}s, all nodes resubscribed and healthy "
              f"{recovered - restarted:.1f}s after the restart; {len(sent)} events triggered on A meanwhile"]
    for label, ws in tick.items():
        frames = recv_until(ws, marker, timeout=10)
        got = [json.loads(f)["data"] for f in frames if json.loads(f).get("event") == "Outage"]
        assert len(got) == len(set(got)), f"duplicates on {label}"
        assert got == sorted(got, key=int), f"out of order on {label}"
        if label == "A":
            assert got == sent, "A's own subscriber must get every event (local delivery)"
        else:
            lost = [n for n in sent if n not in set(got)]
            report.append(f"LOST during redis restart: {len(lost)} of {len(sent)} on node {label}"
                          + (f" (seq {lost[0]}..{lost[-1]})" if lost else ""))
    print("\n".join(report))

    wait_members(nodes, ch, [1, 3, 4], timeout=15)
    for node in nodes:
        assert user_count(node, ch) == 3
    wait_counts(nodes, ticks, 3, timeout=10)
    wait_counts(nodes, late, 1, timeout=10)
    for origin in nodes:
        assert_flows(origin, ticks, [(label, ws) for label, ws in tick.items() if label != origin.label])
    for node in nodes:
        node.assert_healthy()


# --------------------------------------------------------------------------------------------------
# Cache channels
# --------------------------------------------------------------------------------------------------


def test_cache_channel_event_is_replayed_on_another_node(cluster3, ws_client):
    """An event triggered on A for a cache channel nobody subscribes to is replayed to a later
    subscriber on C (and B) right after subscription_succeeded; a newer event triggered on B
    replaces it on A."""
    a, b, c = cluster3()
    ch = unique("cache-prices-")
    miss = compact({"event": "pusher:cache_miss", "channel": ch})

    def first_frame_after_subscribe(node) -> str:
        ws = ws_client(node)
        ws.send_json({"event": "pusher:subscribe", "data": {"channel": ch}})
        assert json.loads(ws.recv())["event"] == "pusher_internal:subscription_succeeded"
        frame = ws.recv()
        ws.close()
        return frame

    assert a.pusher().trigger(ch, "Price", '{"eur":42}') == {}
    first = event_frame(ch, "Price", '{"eur":42}')
    for node in (c, b):
        replay = eventually(lambda: first_frame_after_subscribe(node), lambda frame: frame != miss, 10,
                            f"node {node.label} to replay the cached event", interval=0.1)
        assert replay == first

    assert b.pusher().trigger(ch, "Price", '{"eur":43}') == {}
    second = event_frame(ch, "Price", '{"eur":43}')
    replay = eventually(lambda: first_frame_after_subscribe(a), lambda frame: frame != first, 10,
                        "node A to replay the newer event", interval=0.1)
    assert replay == second


# --------------------------------------------------------------------------------------------------
# Bad input on the bus
# --------------------------------------------------------------------------------------------------


def test_bad_bus_input_is_harmless(cluster3, ws_client, redis):
    """Garbage, a sync_state for an unknown app, a presence_join impersonating node B (B re-announces
    its true state: the ghost is gone from /users everywhere within ~5 s) and a flood of 10,000
    presence_join from a fake node: no node crashes or turns unhealthy, real traffic still flows, and
    the fake node's node_leave clears its users on every node."""
    a, b, c = nodes = cluster3()
    channel = a.bus_channel
    app = a.app_id
    after = unique("after-bad-")
    listeners = {node.label: ws_client(node) for node in nodes}
    for ws in listeners.values():
        ws.subscribe(after)
    ghost_ch = unique("presence-x-")
    real = ws_client(b)
    join(real, b, ghost_ch, '{"user_id":"real"}')
    wait_members(nodes, ghost_ch, ["real"])
    wait_counts(nodes, after, 3)

    def all_nodes_processed_the_bus():
        """Events triggered on A and B after a raw PUBLISH reach every other node only once that node
        has read everything published before them (one subscriber connection, in order)."""
        assert_flows(a, after, [("B", listeners["B"]), ("C", listeners["C"])], timeout=20)
        assert_flows(b, after, [("A", listeners["A"])], timeout=20)

    # 1. Garbage and malformed messages.
    garbage = [
        b"", b"not json", b"\xff\xfe\x00", b"[1,2]", b"null", b'"string"', b"{", b'{"v":1}' * 3,
        b'{"type":"message","application":"x","payload":{}}',
        b'{"v":"1","type":"presence_join","node":"00000000000000aa"}',
        b'{"v":1,"type":"presence_join","node":12}',
        b'{"v":1,"type":"presence_join","node":"00000000000000aa","app":"' + app.encode() + b'"}',
        b'{"v":1,"type":"presence_join","node":"00000000000000aa","app":"' + app.encode() +
        b'","channel":"presence-g","user_id":{"x":1},"channel_data":7}',
        b'{"v":1,"type":"presence_leave","node":"00000000000000aa","app":"' + app.encode() +
        b'","channel":"' + ghost_ch.encode() + b'","user_id":"real"}',
        b'{"v":1,"type":"sync_state","node":"00000000000000aa","presence":"nope"}',
        b'{"v":1,"type":"sync_state","node":"00000000000000aa","presence":{"' + app.encode() + b'":[1,2]}}',
        b'{"v":1,"type":"sync_state","node":"00000000000000aa","presence":{"no-such-app":{"presence-x":'
        b'[{"user_id":"1","channel_data":"{\\"user_id\\":\\"1\\"}"}]}}}',
        b'{"v":9,"type":"sync_state","node":"00000000000000aa"}',
        b'{"v":1,"type":"node_leave","node":"' + b.node_id.encode() + b'x"}',
        b'{"v":1,"type":"nonsense","node":"00000000000000aa"}',
        b'{"v":1,"type":"sync_state","node":"00000000000000aa","presence":' + b'{"a":' * 5000 + b"1" +
        b"}" * 5001, b"[" * 100_000,  # deep nesting
        b'{"v":1,"type":"broadcast","node":"00000000000000aa","app":"' + app.encode() + b'","payload":' +
        json.dumps({"event": "Big", "channel": unique("nobody-"), "data": "x" * 200_000}).encode() + b"}",
    ]
    for payload in garbage:
        redis.publish(channel, payload)
    all_nodes_processed_the_bus()
    for node in nodes:
        node.assert_healthy()
    wait_members(nodes, ghost_ch, ["real"])  # the forged presence_leave for "real" did not stick
    real.ping_pong()

    # 2. A presence_join in B's name that B's state contradicts.
    redis.publish(channel, compact({"v": 1, "type": "presence_join", "node": b.node_id, "app": app,
                                    "channel": ghost_ch, "user_id": "ghost",
                                    "channel_data": '{"user_id":"ghost"}'}).encode())
    all_nodes_processed_the_bus()
    print("\nghost user listed right after the forged join:",
          {label: "ghost" in (ids or []) for label, ids in users_everywhere(nodes, ghost_ch).items()})
    wait_members(nodes, ghost_ch, ["real"], timeout=8, what="the ghost to vanish from /users on every node")

    # 3. A flood of presence_join from a fake node. Like a real node it also reports its subscriber
    # count (`occupancy`): without one the channel counts as unoccupied and /users says 404, so the
    # node_leave check below would prove nothing.
    flood_ch = unique("presence-flood-")
    flood = 10_000
    messages = [compact({"v": 1, "type": "occupancy", "node": FAKE_NODE, "app": app,
                         "channels": {flood_ch: flood}}).encode()]
    messages += [compact({"v": 1, "type": "presence_join", "node": FAKE_NODE, "app": app, "channel": flood_ch,
                          "user_id": f"u{i}", "channel_data": compact({"user_id": f"u{i}"})}).encode()
                 for i in range(flood)]
    started = time.monotonic()
    assert redis.publish_many(channel, messages) == len(messages)
    all_nodes_processed_the_bus()
    print(f"flood of {flood} presence_join published and processed by every node in "
          f"{time.monotonic() - started:.1f}s")
    for node in nodes:
        node.assert_healthy()
    eventually(lambda: {node.label: user_count(node, flood_ch) for node in nodes},
               lambda seen: all(n == flood for n in seen.values()), CONVERGE,
               f"the fake node's {flood} users to be listed on every node")

    redis.publish(channel, compact({"v": 1, "type": "node_leave", "node": FAKE_NODE}).encode())
    eventually(lambda: users_everywhere(nodes, flood_ch),
               lambda seen: all(not ids for ids in seen.values()), 10,
               "the fake node's users to be gone after its node_leave")
    all_nodes_processed_the_bus()
    wait_members(nodes, ghost_ch, ["real"])
    for node in nodes:
        node.assert_healthy()
