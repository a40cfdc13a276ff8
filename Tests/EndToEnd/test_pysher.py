"""The real pysher 1.0.8 client against swift-reverb.

pysher runs its own thread. Its `subscribe()` creates the Channel object only after sending, so a
fast reply could be dropped before `bind()`; each client therefore also records every channel event
it receives (wrapping `connection.event_handler`), and tests wait on threading primitives with
timeouts, never on bare sleeps. Server-side events go through the official `pusher` SDK, i.e. the
HTTP API: those tests are marked `http_api`.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import pysher
import pytest

from conftest import SOCKET_ID_RE, unique

TIMEOUT = 5.0


class Recorder:
    """Thread-safe list of (event, data, channel) with waiting."""

    def __init__(self):
        self.items: list[tuple] = []
        self.cond = threading.Condition()

    def add(self, item):
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait_for(self, predicate, timeout=TIMEOUT, what="event"):
        with self.cond:
            ok = self.cond.wait_for(lambda: any(predicate(i) for i in self.items), timeout)
            assert ok, f"timed out waiting for {what}; got {self.items}"
            return next(i for i in self.items if predicate(i))

    def matching(self, predicate):
        with self.cond:
            return [i for i in self.items if predicate(i)]


class PysherClient:
    def __init__(self, server, secret=None, user_data=None):
        self.pusher = pysher.Pusher(server.key, secret=secret if secret is not None else server.secret,
                                    custom_host=server.host, port=server.port, secure=False,
                                    user_data=user_data, log_level=logging.WARNING, reconnect_interval=1)
        self.channel_events = Recorder()
        self.connection_events = Recorder()
        self.established = threading.Event()
        conn = self.pusher.connection
        original = conn.event_handler

        def handler(event, data, channel):
            self.channel_events.add((event, data, channel))
            original(event, data, channel)

        conn.event_handler = handler
        conn.bind("pusher:connection_established", lambda data: (self.connection_events.add(("established", data)),
                                                                 self.established.set()))
        conn.bind("pusher:error", lambda data: self.connection_events.add(("error", data)))

    def connect(self):
        self.pusher.connect()
        assert self.established.wait(TIMEOUT), "pysher never got pusher:connection_established"
        return self

    @property
    def socket_id(self):
        return self.pusher.connection.socket_id

    def subscribe(self, channel):
        ch = self.pusher.subscribe(channel)
        self.channel_events.wait_for(lambda e: e[0] == "pusher_internal:subscription_succeeded" and e[2] == channel,
                                     what=f"subscription_succeeded on {channel}")
        return ch

    def wait_event(self, event, channel, timeout=TIMEOUT):
        return self.channel_events.wait_for(lambda e: e[0] == event and e[2] == channel, timeout,
                                            what=f"{event} on {channel}")

    def errors(self):
        return [json.loads(d) for kind, d in self.connection_events.matching(lambda e: e[0] == "error")]

    def disconnect(self):
        try:
            self.pusher.disconnect(timeout=0.3)  # daemon thread; no need to wait for websocket-client
        except Exception:
            pass


@pytest.fixture
def pysher_client():
    clients = []

    def make(server, **kw):
        c = PysherClient(server, **kw)
        clients.append(c)
        return c.connect()

    yield make
    for c in clients:
        c.disconnect()


def test_connect(server, pysher_client):
    c = pysher_client(server)
    assert SOCKET_ID_RE.match(c.socket_id)
    assert c.pusher.connection.state == "connected"
    _, data = c.connection_events.wait_for(lambda e: e[0] == "established")
    assert json.loads(data)["activity_timeout"] == 30


def test_public_subscribe(server, pysher_client):
    c = pysher_client(server)
    ch = unique("public-")
    c.subscribe(ch)
    _, data, _ = c.wait_event("pusher_internal:subscription_succeeded", ch)
    assert data == "{}"
    assert c.errors() == []


def test_private_subscribe_signed_locally(server, pysher_client):
    c = pysher_client(server)
    ch = unique("private-orders.")
    c.subscribe(ch)
    assert c.errors() == []


def test_private_subscribe_wrong_secret_is_refused(server, pysher_client):
    c = pysher_client(server, secret="not-the-secret")
    ch = unique("private-")
    c.pusher.subscribe(ch)
    c.connection_events.wait_for(lambda e: e[0] == "error", what="pusher:error")
    assert c.errors() == [{"code": 4009, "message": "Connection is unauthorized"}]
    assert c.channel_events.matching(lambda e: e[2] == ch) == []


def test_presence_members(server, pysher_client):
    ch = unique("presence-room.")
    ann_data = {"user_id": 1, "user_info": {"name": "Ann"}}
    bob_data = {"user_id": "bob", "user_info": {"name": "Bob"}}
    ann = pysher_client(server, user_data=ann_data)
    ann.subscribe(ch)
    _, data, _ = ann.wait_event("pusher_internal:subscription_succeeded", ch)
    assert json.loads(data) == {"presence": {"count": 1, "ids": [1], "hash": {"1": {"name": "Ann"}}}}
    bob = pysher_client(server, user_data=bob_data)
    bob.subscribe(ch)
    _, data, _ = bob.wait_event("pusher_internal:subscription_succeeded", ch)
    assert json.loads(data) == {"presence": {"count": 2, "ids": [1, "bob"],
                                             "hash": {"1": {"name": "Ann"}, "bob": {"name": "Bob"}}}}
    # member_added carries pysher's channel_data bytes exactly (json.dumps with spaces)
    _, data, _ = ann.wait_event("pusher_internal:member_added", ch)
    assert data == json.dumps(bob_data)
    assert bob.channel_events.matching(lambda e: e[0] == "pusher_internal:member_added") == []
    bob.disconnect()
    _, data, _ = ann.wait_event("pusher_internal:member_removed", ch)
    assert data == '{"user_id":"bob"}'


@pytest.mark.parametrize("prefix", ["private-", "presence-"])
def test_client_events_between_two_pysher_clients(reverb_server, pysher_client, prefix):
    server = reverb_server(accept_client_events_from="members")
    ch = unique(prefix + "chat.")
    a = pysher_client(server, user_data={"user_id": 11, "user_info": {"name": "A"}})
    b = pysher_client(server, user_data={"user_id": 22, "user_info": {"name": "B"}})
    chan_a = a.subscribe(ch)
    chan_b = b.subscribe(ch)
    got = threading.Event()
    received = []
    chan_b.bind("client-typing", lambda data: (received.append(data), got.set()))
    for i in range(5):
        chan_a.trigger("client-typing", {"name": "a", "i": i})
    assert got.wait(TIMEOUT)
    b.channel_events.wait_for(lambda e: e[0] == "client-typing" and e[1] == {"name": "a", "i": 4})
    assert [d["i"] for d in received] == [0, 1, 2, 3, 4]
    # the sender never receives its own whisper; prove it by a round trip from b afterwards
    chan_b.trigger("client-reply", {"ok": True})
    a.wait_event("client-reply", ch)
    assert a.channel_events.matching(lambda e: e[0] == "client-typing") == []
    assert a.errors() == [] and b.errors() == []


def test_client_event_user_id_on_presence(reverb_server, ws_client, pysher_client):
    """pysher drops top-level keys other than data, so check user_id with a raw observer."""
    server = reverb_server(accept_client_events_from="members")
    ch = unique("presence-chat.")
    a = pysher_client(server, user_data={"user_id": 11})
    chan_a = a.subscribe(ch)
    from conftest import channel_signature
    obs = ws_client(server)
    cd = '{"user_id":99}'
    obs.send_json({"event": "pusher:subscribe", "data": {
        "auth": f"{server.key}:{channel_signature(server.secret, obs.socket_id, ch, cd)}",
        "channel_data": cd, "channel": ch}})
    assert json.loads(obs.recv())["event"] == "pusher_internal:subscription_succeeded"
    chan_a.trigger("client-typing", {"x": 1})
    assert obs.recv() == '{"event":"client-typing","channel":"' + ch + '","data":{"x":1},"user_id":11}'


def test_client_event_from_non_member_is_refused(reverb_server, pysher_client):
    server = reverb_server(accept_client_events_from="members")
    ch = unique("private-")
    a = pysher_client(server)
    b = pysher_client(server)
    b.subscribe(ch)
    a.pusher.connection.send_event("client-sneaky", {"x": 1}, channel_name=ch)
    a.connection_events.wait_for(lambda e: e[0] == "error", what="4009")
    assert a.errors() == [{"code": 4009, "message": "The client is not a member of the specified channel."}]
    assert b.channel_events.matching(lambda e: e[0] == "client-sneaky") == []


# ------------------------------------------------------------------------------------------------
# Server-triggered events: need the HTTP API
# ------------------------------------------------------------------------------------------------


@pytest.mark.http_api
def test_public_channel_receives_sdk_event(server, pysher_client):
    c = pysher_client(server)
    ch = unique("news.")
    chan = c.subscribe(ch)
    got, received = threading.Event(), []
    chan.bind("App\\Events\\NewsPublished", lambda data: (received.append(data), got.set()))
    assert server.pusher().trigger(ch, "App\\Events\\NewsPublished", {"title": "hello"}) == {}
    assert got.wait(TIMEOUT)
    assert received == ['{"title": "hello"}']  # the SDK's string, unchanged


@pytest.mark.http_api
def test_private_and_presence_channels_receive_sdk_event(server, pysher_client):
    c = pysher_client(server, user_data={"user_id": 5})
    priv, pres = unique("private-"), unique("presence-")
    c.subscribe(priv)
    c.subscribe(pres)
    server.pusher().trigger([priv, pres], "evt", "plain text")
    assert c.wait_event("evt", priv)[1] == "plain text"
    assert c.wait_event("evt", pres)[1] == "plain text"


@pytest.mark.http_api
def test_socket_id_exclusion_with_pysher(server, pysher_client):
    ch = unique("room.")
    a, b = pysher_client(server), pysher_client(server)
    a.subscribe(ch)
    b.subscribe(ch)
    sdk = server.pusher()
    sdk.trigger(ch, "first", "1", socket_id=a.socket_id)
    sdk.trigger(ch, "second", "2")
    b.wait_event("first", ch)
    b.wait_event("second", ch)
    a.wait_event("second", ch)
    assert a.channel_events.matching(lambda e: e[0] == "first") == []


@pytest.mark.http_api
def test_unsubscribed_pysher_gets_nothing(server, pysher_client):
    ch = unique("room.")
    a, b = pysher_client(server), pysher_client(server)
    a.subscribe(ch)
    b.subscribe(ch)
    a.pusher.unsubscribe(ch)
    sdk = server.pusher()
    # wait until the server has processed the unsubscribe: subscription_count drops to 1
    deadline = time.monotonic() + TIMEOUT
    while sdk.channel_info(ch, ["subscription_count"]).get("subscription_count") != 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    sdk.trigger(ch, "after", "x")
    b.wait_event("after", ch)
    assert a.channel_events.matching(lambda e: e[0] == "after") == []
