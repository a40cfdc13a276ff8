"""Two `reverb start` nodes over a Sentinel deployment (issue 14): one primary, one replica, three
sentinels started by `scripts/start-redis-sentinel.sh` in the test's temporary directory.

The nodes get only `REDIS_SENTINELS` and `REDIS_SENTINEL_MASTER`: they ask the sentinels for the
primary. Killing the primary (SIGKILL) makes the sentinels promote the replica; the nodes must follow,
without exiting, and cross-node delivery must resume. The test prints the time from the kill until an
event sent after it crosses nodes, and how many of a steady stream (one event every 20 ms) were lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from types import SimpleNamespace

import pytest

from conftest import REPO_ROOT, _get, channel_signature, unique, wait_until

SCRIPT = REPO_ROOT / "scripts" / "start-redis-sentinel.sh"


def redis_cli(port: int, *args) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *map(str, args)], capture_output=True, text=True,
                          timeout=5).stdout.strip()


@pytest.fixture
def sentinel(tmp_path):
    directory = tmp_path / "sentinel"
    master = unique("master-")
    started = subprocess.run(["bash", str(SCRIPT), str(directory)], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "SENTINEL_MASTER": master})
    assert started.returncode == 0, f"start-redis-sentinel.sh failed: {started.stderr}"
    values = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    deployment = SimpleNamespace(
        directory=directory, master=master, sentinels=values["REDIS_SENTINELS"],
        primary_port=int(values["PRIMARY_PORT"]), replica_port=int(values["REPLICA_PORT"]),
        env={"REDIS_SENTINELS": values["REDIS_SENTINELS"], "REDIS_SENTINEL_MASTER": values["REDIS_SENTINEL_MASTER"]},
    )
    yield deployment
    subprocess.run(["bash", str(SCRIPT), "stop", str(directory)], timeout=30)


def test_two_nodes_over_sentinel_follow_a_killed_primary(reverb_server, ws_client, sentinel):
    channel = unique("cluster-")
    credentials = {"app_id": "778", "key": "sentinel-key", "secret": "sentinel-secret"}
    env = {"REVERB_SCALING_ENABLED": "true", "REVERB_SCALING_CHANNEL": channel, **sentinel.env}
    a = reverb_server(**credentials, env=env)
    b = reverb_server(**credentials, env=env)
    wait_until(lambda: redis_cli(sentinel.primary_port, "PUBSUB", "NUMSUB", channel).splitlines()[-1:] == ["2"],
               timeout=10, message="both nodes subscribed on the primary")

    # An event triggered on A reaches a subscriber on B; presence crosses nodes.
    listener = ws_client(b)
    listener.subscribe("ticks")
    data = '{"user_id":7,"user_info":{"name":"Ann"}}'
    member = ws_client(a)
    member.subscribe("presence-room", auth=f"{a.key}:{channel_signature(a.secret, member.socket_id, 'presence-room', data)}",
                     channel_data=data)
    wait_until(lambda: _get(a, f"/apps/{a.app_id}/channels/ticks", {"info": "subscription_count"})
               .get("subscription_count") == 1, timeout=10, message="node A to see B's subscriber")
    wait_until(lambda: _get(b, f"/apps/{b.app_id}/channels/presence-room/users") == {"users": [{"id": 7}]},
               timeout=10, message="node B to see A's member")
    a.pusher().trigger("ticks", "Tick", {"n": -1})
    assert json.loads(json.loads(listener.recv())["data"]) == {"n": -1}

    # A steady publisher on A (one event every 20 ms) and a reader on B.
    received: list[tuple[int, float]] = []
    stop = threading.Event()

    def read():
        while not stop.is_set():
            try:
                frame = listener.recv(timeout=0.2)
            except TimeoutError:
                continue
            received.append((json.loads(json.loads(frame)["data"])["n"], time.monotonic()))

    sent: list[float] = []
    client = a.pusher(timeout=10)

    def publish():
        while not stop.is_set():
            client.trigger("ticks", "Tick", {"n": len(sent)})
            sent.append(time.monotonic())
            time.sleep(0.02)

    reader = threading.Thread(target=read, daemon=True)
    publisher = threading.Thread(target=publish, daemon=True)
    reader.start()
    publisher.start()
    try:
        wait_until(lambda: len(received) >= 25, timeout=10, message="steady traffic across nodes")
        os.kill(int((sentinel.directory / "primary.pid").read_text()), signal.SIGKILL)
        killed_at = time.monotonic()
        sent_at_kill = len(sent)
        resumed = wait_until(lambda: next((t for n, t in received if n >= sent_at_kill), None), timeout=30,
                             message="cross-node delivery after the failover")
        time.sleep(1.0)  # one more second of traffic on the new primary
    finally:
        stop.set()
        publisher.join(15)
        reader.join(5)
    total = len(sent)
    # Whatever is still queued on A goes out now; then count.
    reader_left = []
    try:
        while True:
            reader_left.append(json.loads(json.loads(listener.recv(timeout=2))["data"])["n"])
    except TimeoutError:
        pass
    numbers = [n for n, _ in received] + reader_left
    lost = total - len(set(numbers))
    print(f"\nSentinel failover (SIGKILL of the primary, two nodes): cross-node delivery resumed "
          f"{resumed - killed_at:.2f} s after the kill; {lost} of {total} events lost "
          f"(one every 20 ms); {len(numbers) - len(set(numbers))} duplicates")
    assert numbers == sorted(numbers), "events from A arrived out of order"
    assert len(numbers) == len(set(numbers)), "an event arrived twice"
    # Lost: what node A wrote to the old primary before it saw the socket close (0 or 1 here; more when
    # the machine is loaded: the Swift client test once lost the first 640 ms). A broken queue or gate
    # loses the rest of the outage too, up to the resumption: so what is lost must start next to the
    # kill and stay within the outage's first half.
    missing = sorted(set(range(total)) - set(numbers))
    outage = sum(1 for t in sent if killed_at <= t < resumed)
    assert all(-25 <= n - sent_at_kill < max(25, outage // 2) for n in missing), \
        f"{lost} events lost ({[n - sent_at_kill for n in missing]} relative to the kill, outage {outage}): " \
        "more than those written to the primary as it died"

    # Both nodes follow the new primary: healthy, subscribed there, and delivery works both ways.
    assert a.running() and b.running()
    wait_until(lambda: redis_cli(sentinel.replica_port, "PUBSUB", "NUMSUB", channel).splitlines()[-1:] == ["2"],
               timeout=10, message="both nodes subscribed on the promoted replica")
    assert redis_cli(sentinel.replica_port, "ROLE").splitlines()[0] == "master"
    for node in (a, b):
        wait_until(lambda: node.up() == (200, b'{"health":"OK"}'), timeout=10, message="/up OK")
    back = ws_client(a)
    back.subscribe("replies")
    wait_until(lambda: _get(b, f"/apps/{b.app_id}/channels/replies", {"info": "subscription_count"})
               .get("subscription_count") == 1, timeout=10, message="node B to see A's subscriber")
    b.pusher().trigger("replies", "Reply", {"ok": True})
    assert json.loads(json.loads(back.recv())["data"]) == {"ok": True}
    assert _get(b, f"/apps/{b.app_id}/channels/presence-room/users") == {"users": [{"id": 7}]}
