"""User authentication across two nodes over a real redis-server (protocol.md §13, docs.md "Scaling":
`user_join`, `user_leave`, `sync_state` `users`): events to a user, watchlists and termination reach
every node; a node that leaves takes its users offline.
"""

from __future__ import annotations

import json
import shutil
import signal
import time

import pytest

from conftest import compact, signed_http, unique, wait_until
from test_user_auth import own_channel_frame, sign_in, trigger, watchlist_frame

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


@pytest.fixture
def nodes(reverb_server, redis):
    """Two nodes of one app on one Redis channel, each having heard the other."""
    channel = unique("users-")
    env = {"REVERB_SCALING_ENABLED": "true", "REVERB_SCALING_CHANNEL": channel,
           "REDIS_URL": f"redis://127.0.0.1:{redis.port}"}
    credentials = {"app_id": "778", "key": "users-key", "secret": "users-secret"}
    a = reverb_server(**credentials, env=env)
    b = reverb_server(**credentials, env=env)
    wait_until(lambda: redis.numsub(channel) == 2, timeout=10, message="both nodes subscribed")
    return a, b


def wait_for_user_on(node, ws_client, user_id: str):
    """Until `node` sees `user_id` online: a fresh watcher there gets it in its initial state."""
    def seen():
        probe = ws_client(node)
        sign_in(probe, node, unique("probe-"), watchlist=[user_id])
        frame = probe.recv()
        probe.close()
        return frame == watchlist_frame(online=[user_id])
    wait_until(seen, timeout=10, message=f"{user_id} online on node {node.port}")


def test_user_event_sent_on_a_reaches_the_users_sockets_on_both_nodes(nodes, ws_client):
    a, b = nodes
    on_a, on_b, stranger = ws_client(a), ws_client(b), ws_client(b)
    for ws, node in ((on_a, a), (on_b, b)):
        sign_in(ws, node, "42")
        assert ws.subscribe("#server-to-user-42") == own_channel_frame("42")
    sign_in(stranger, b, "43")
    stranger.subscribe("#server-to-user-43")
    # B's subscription is known on A once A counts it (occupancy replication).
    wait_until(lambda: json.loads(signed_http(a, "GET", f"/apps/{a.app_id}/channels/%23server-to-user-42",
                                              params={"info": "subscription_count"})[2])
               .get("subscription_count") == 2, timeout=10, message="A to count both user sockets")
    trigger(a, "#server-to-user-42")
    frame = compact({"event": "my-event", "data": '{"n":1}', "channel": "#server-to-user-42"})
    assert on_a.recv() == frame
    assert on_b.recv() == frame
    # socket_id exclusion crosses nodes too.
    trigger(a, "#server-to-user-42", socket_id=on_b.socket_id)
    assert on_a.recv() == frame
    on_b.expect_silence(0.3)
    stranger.expect_silence(0.1)


def test_watchlist_across_nodes(nodes, ws_client):
    a, b = nodes
    watcher = ws_client(a)
    sign_in(watcher, a, "w", watchlist=["u1", "u2"])
    assert watcher.recv() == watchlist_frame(offline=["u1", "u2"])
    u1_first, u1_second = ws_client(b), ws_client(b)
    sign_in(u1_first, b, "u1")
    assert watcher.recv(timeout=10) == watchlist_frame(online=["u1"])
    sign_in(u1_second, b, "u1")
    # u1 also on A: still one online event in all, and one offline when the last of the three goes.
    u1_on_a = ws_client(a)
    sign_in(u1_on_a, a, "u1")
    watcher.expect_silence(0.3)
    # The initial state on B counts A's users: a watcher on B sees w and u1 online, u2 offline.
    wait_for_user_on(b, ws_client, "w")
    other = ws_client(b)
    sign_in(other, b, "v", watchlist=["u2", "w", "u1"])
    assert other.recv() == watchlist_frame(offline=["u2"], online=["w", "u1"])
    u1_first.close()
    u1_on_a.close()
    watcher.expect_silence(0.3)
    u1_second.close()
    assert watcher.recv(timeout=10) == watchlist_frame(offline=["u1"])
    assert other.recv(timeout=10) == watchlist_frame(offline=["u1"])
    # w leaves A: the watcher on B hears it.
    watcher.close()
    assert other.recv(timeout=10) == watchlist_frame(offline=["w"])


def test_terminate_on_a_closes_the_users_sockets_on_b(nodes, ws_client):
    a, b = nodes
    on_b, other = ws_client(b), ws_client(b)
    sign_in(on_b, b, "42")
    sign_in(other, b, "43")
    on_a = ws_client(a)
    sign_in(on_a, a, "42")
    client = a.pusher()
    client.terminate_user_connections("42")
    assert on_a.expect_closed()[:2] == (1008, "Connection terminated")
    assert on_b.expect_closed(timeout=10)[:2] == (1008, "Connection terminated")
    other.ping_pong()


def test_node_leaving_takes_its_users_offline(nodes, ws_client):
    a, b = nodes
    watcher = ws_client(a)
    sign_in(watcher, a, "w", watchlist=["u1"])
    assert watcher.recv() == watchlist_frame(offline=["u1"])
    u1 = ws_client(b)
    sign_in(u1, b, "u1")
    assert watcher.recv(timeout=10) == watchlist_frame(online=["u1"])
    assert b.terminate() == 0  # graceful: node_leave, then its clients are closed without per-user leaves
    assert watcher.recv(timeout=10) == watchlist_frame(offline=["u1"])
    watcher.expect_silence(0.5)


def test_a_node_joining_later_learns_the_signed_in_users(reverb_server, redis, ws_client):
    channel = unique("users-late-")
    env = {"REVERB_SCALING_ENABLED": "true", "REVERB_SCALING_CHANNEL": channel,
           "REDIS_URL": f"redis://127.0.0.1:{redis.port}"}
    credentials = {"app_id": "779", "key": "late-key", "secret": "late-secret"}
    a = reverb_server(**credentials, env=env)
    u1 = ws_client(a)
    sign_in(u1, a, "u1")
    b = reverb_server(**credentials, env=env)
    wait_until(lambda: redis.numsub(channel) == 2, timeout=10, message="both nodes subscribed")
    # B asks for everyone's state at start-up (sync_request); A's sync_state lists u1.
    wait_for_user_on(b, ws_client, "u1")


def test_killed_node_takes_its_users_offline_after_expiry(nodes, ws_client):
    """No node_leave: A expires B after 15 s of silence and its users go offline for A's watchers."""
    a, b = nodes
    watcher = ws_client(a)
    sign_in(watcher, a, "w", watchlist=["u1", "u2"])
    assert watcher.recv() == watchlist_frame(offline=["u1", "u2"])
    u1 = ws_client(b)
    sign_in(u1, b, "u1")
    assert watcher.recv(timeout=10) == watchlist_frame(online=["u1"])
    u2_on_a = ws_client(a)
    sign_in(u2_on_a, a, "u2")
    assert watcher.recv() == watchlist_frame(online=["u2"])
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(5)
    b.terminated = True  # the fixture does not expect a clean exit from this one
    killed = time.monotonic()
    assert watcher.recv(timeout=25) == watchlist_frame(offline=["u1"])
    elapsed = time.monotonic() - killed
    assert 14 <= elapsed <= 22, elapsed
    watcher.expect_silence(0.3)  # u2, signed in on A, stays online
    u2_on_a.ping_pong()
