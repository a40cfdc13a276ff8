"""Hostile and malformed input: each gets the spec'd answer, the process never crashes (`/up` still
answers), and innocent clients keep receiving everything sent to them."""

from __future__ import annotations

import json
import threading
import time

import pytest

from conftest import compact, error_frame, raw_established, subscribe_private, unique

INVALID_FORMAT = error_frame(4200, "Invalid message format")
UNAUTHORIZED = error_frame(4009, "Connection is unauthorized")

MALFORMED = [
    "",                                   # empty text message
    "{",                                  # truncated JSON
    "{\"event\":\"pusher:ping\"",          # truncated object
    "null", "true", "[]", "[\"x\"]", "1e999", "\"just a string\"",
    "{}",                                  # missing event
    '{"event":123}', '{"event":["pusher:ping"]}', '{"event":{}}', '{"event":true}',
    '{"event":"pusher:subscribe"}',                              # missing data/channel
    '{"event":"pusher:subscribe","data":"{\\"channel\\":5}"}',    # double-encoded, wrong type
    '{"event":"pusher:subscribe","data":{"channel":null}}',
    '{"event":"pusher:subscribe","data":{"channel":["a"]}}',
    '{"event":"pusher:subscribe","data":{"channel":"a b"}}',
    '{"event":"pusher:subscribe","data":{"channel":"' + "c" * 201 + '"}}',
    '{"event":"pusher:subscribe","data":{"channel":"x","auth":{}}}',
    '{"event":"pusher:subscribe","data":true}',
    '{"event":"pusher:unsubscribe","data":{"channel":1}}',
    '{"event":"pusher:unknown","data":{}}',
    '{"event":"client-x","data":{}}',                            # no channel
    '{"event":"client-x","channel":5,"data":{}}',
    '{"event":"client-x","channel":"c","data":"not json"}',
    '{"event":"client-x","channel":"c","data":true}',
    '{"event":"pusher:ping","data":1}',
    '{"event":"\\ud800"}',                                        # lone surrogate escape
    "\u00ff\u0000\u0001",                                         # valid UTF-8, not JSON
    '{"event":"pusher:ping"} trailing',
]


@pytest.mark.parametrize("frame", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_text_gets_4200_and_connection_survives(server, ws_client, frame):
    ws = ws_client(server)
    ws.send(frame)
    assert ws.recv() == INVALID_FORMAT
    ws.ping_pong()


def test_deeply_nested_json_does_not_crash(server, ws_client):
    ws = ws_client(server)
    depth = 4000
    ws.send("[" * depth + "]" * depth)  # 8000 bytes, below the default limit
    assert ws.recv() == INVALID_FORMAT
    ws.send('{"event":"pusher:ping","data":' + "[" * 4900 + "]" * 4900 + "}")
    assert ws.recv() in (INVALID_FORMAT, '{"event":"pusher:pong"}')
    ws.ping_pong()
    server.assert_healthy()


def test_binary_frames_handled_like_text(server, ws_client):
    ws = ws_client(server)
    ws.send(b'{"event":"pusher:ping","data":{}}')
    assert ws.recv() == '{"event":"pusher:pong"}'  # server replies with text frames only
    ws.send(b"\x00\xff\xfe garbage")
    assert ws.recv() == INVALID_FORMAT
    ch = unique("bin-")
    ws.send(compact({"event": "pusher:subscribe", "data": {"channel": ch}}).encode())
    assert ws.recv() == compact({"event": "pusher_internal:subscription_succeeded", "data": "{}", "channel": ch})


def test_forged_auth_variants(server, ws_client):
    ws = ws_client(server)
    ch = unique("private-")
    for auth in ["x", ":", f"{server.key}:" + "0" * 64, f"{server.key}:" + "g" * 64, " " * 10, "a" * 5000,
                 f"{server.key}:{server.secret}"]:
        ws.send_json({"event": "pusher:subscribe", "data": {"auth": auth, "channel": ch}})
        assert ws.recv() == UNAUTHORIZED
    ws.ping_pong()
    server.assert_healthy()


def test_oversized_frame_closes_only_that_client(reverb_server, ws_client):
    server = reverb_server(max_message_size=2000)
    bystander = ws_client(server)
    ch = unique("test-")
    bystander.subscribe(ch)
    big = ws_client(server)
    big.send('{"event":"pusher:ping","data":"' + "x" * 100_000 + '"}')
    code, reason, _ = big.expect_closed()
    assert (code, reason) == (1009, "Maximum message size exceeded")
    bystander.ping_pong()
    server.assert_healthy()


def test_huge_declared_length_is_refused_without_buffering(reverb_server, raw_ws):
    server = reverb_server(max_message_size=1000)
    r = raw_ws(server)
    raw_established(r)
    # header announcing 2^40 bytes, then only a few: the server must decide from the header
    import struct
    r.sock.sendall(struct.pack("!BBQ", 0x81, 0x80 | 127, 2**40) + b"\x00\x00\x00\x00" + b"x" * 10)
    code, reason, _ = r.recv_close()
    assert (code, reason) == (1009, "Maximum message size exceeded")
    server.assert_healthy()


def test_invalid_utf8_and_unmasked_do_not_affect_others(server, ws_client, raw_ws):
    bystander = ws_client(server)
    for kw, payload, expected in [({}, b"\xc3\x28", 1007), ({"mask": False}, b"{}", 1002)]:
        r = raw_ws(server)
        raw_established(r)
        r.send_frame(0x1, payload, **kw)
        assert r.recv_close()[0] == expected
    bystander.ping_pong()
    server.assert_healthy()


def test_garbage_before_handshake(server):
    import socket
    for junk in [b"\x00" * 100, b"GET\r\n\r\n", b"HELLO WORLD\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"]:
        s = socket.create_connection((server.host, server.port), timeout=5)
        s.sendall(junk)
        s.shutdown(socket.SHUT_WR)
        try:
            s.recv(4096)
        except OSError:
            pass
        s.close()
    server.assert_healthy()


def _garbage(i: int):
    kinds = [
        "not json {", "[]", "{}", '{"event":42}', '{"event":"pusher:nope"}',
        '{"event":"pusher:subscribe","data":{"channel":"bad name"}}',
        '{"event":"client-x","channel":"c","data":"zz"}', b"\xff\xfe binary", b"[1,2,3]",
    ]
    return kinds[i % len(kinds)]


def _flood_and_whisper(server, ws_client, n_garbage: int, n_whispers: int):
    ch = unique("private-flood.")
    observer = ws_client(server)
    subscribe_private(observer, server, ch)
    whisperer = ws_client(server)
    subscribe_private(whisperer, server, ch)
    flooder = ws_client(server, max_queue=None)

    errors = {"count": 0, "other": []}

    def read_flood():
        while errors["count"] + len(errors["other"]) < n_garbage:
            frame = flooder.recv(timeout=30)
            if frame == INVALID_FORMAT:
                errors["count"] += 1
            else:
                errors["other"].append(frame)

    reader = threading.Thread(target=read_flood, daemon=True)
    reader.start()

    def send_flood():
        for i in range(n_garbage):
            flooder.send(_garbage(i))

    sender = threading.Thread(target=send_flood, daemon=True)
    sender.start()
    for i in range(n_whispers):
        whisperer.send(compact({"event": "client-n", "channel": ch, "data": {"i": i}}))
    received = []
    for _ in range(n_whispers):
        received.append(json.loads(observer.recv(timeout=30))["data"]["i"])
    sender.join(60)
    reader.join(60)
    assert not sender.is_alive() and not reader.is_alive(), "flood did not finish"
    assert received == list(range(n_whispers))
    assert errors["other"] == [] and errors["count"] == n_garbage
    observer.expect_silence(0.2)
    return observer, flooder, ch


def test_ten_thousand_garbage_frames(server, ws_client):
    observer, flooder, _ = _flood_and_whisper(server, ws_client, 10_000, 300)
    flooder.ping_pong()
    observer.ping_pong()
    server.assert_healthy()


@pytest.mark.http_api
def test_garbage_flood_does_not_starve_http_events(server, ws_client):
    ch = unique("flood-http.")
    observer = ws_client(server)
    observer.subscribe(ch)
    flooder = ws_client(server)
    done = threading.Event()
    count = {"n": 0}

    def flood():
        for i in range(10_000):
            flooder.send(_garbage(i))
        done.set()

    def drain():
        while count["n"] < 10_000:
            assert flooder.recv(timeout=30) == INVALID_FORMAT
            count["n"] += 1

    threads = [threading.Thread(target=flood, daemon=True), threading.Thread(target=drain, daemon=True)]
    for t in threads:
        t.start()
    sdk = server.pusher()
    for i in range(100):
        assert sdk.trigger(ch, "tick", str(i)) == {}
    got = [observer.recv_json(timeout=30)["data"] for _ in range(100)]
    for t in threads:
        t.join(60)
    assert got == [str(i) for i in range(100)]
    assert count["n"] == 10_000
    server.assert_healthy()


def _reset(sock):
    import socket
    import struct

    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_connection_reset_between_http_requests_is_harmless(server):
    """A client that resets its keep-alive connection after a response must not take the server down."""
    import socket

    for _ in range(3):
        sock = socket.create_connection((server.host, server.port), timeout=5)
        sock.sendall(f"GET {server.prefix}/up HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        reply = b""
        while b'{"health":"OK"}' not in reply:
            chunk = sock.recv(4096)
            assert chunk, reply
            reply += chunk
        _reset(sock)
    # A reset in the middle of a request head, too.
    sock = socket.create_connection((server.host, server.port), timeout=5)
    sock.sendall(b"POST /apps/1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n")
    _reset(sock)
    server.assert_healthy()


def test_garbage_request_gets_400_and_server_survives(server):
    import socket

    sock = socket.create_connection((server.host, server.port), timeout=5)
    sock.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage that is not HTTP\r\n\r\n")
    reply = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    sock.close()
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n"), reply
    assert reply.endswith(b"Bad request."), reply
    server.assert_healthy()


def test_slow_consumer_is_closed_while_others_keep_receiving(reverb_server, ws_client, raw_ws):
    """A subscriber that stops reading is cut off after the grace period (protocol.md §1.5: Close 4100,
    which it cannot read) instead of being buffered without bound, and a reading subscriber of the
    same channel receives every event meanwhile."""
    import socket

    from conftest import signed_http

    server = reverb_server(max_request_size=20000)
    channel = unique("firehose-")
    slow = raw_ws(server)
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw_established(slow)
    slow.send_text(compact({"event": "pusher:subscribe", "data": {"channel": channel}}))
    assert json.loads(slow.recv_text())["event"] == "pusher_internal:subscription_succeeded"
    reader = ws_client(server)
    reader.subscribe(channel)

    def connections() -> int:
        status, _, body = signed_http(server, "GET", f"/apps/{server.app_id}/connections")
        assert status == 200, body
        return json.loads(body)["connections"]

    assert connections() == 2
    sdk = server.pusher(timeout=10)
    payload = "x" * 9000
    sent = received = 0
    deadline = time.monotonic() + 40
    # The slow socket never reads again: publish until the server has dropped it.
    while connections() == 2:
        assert time.monotonic() < deadline, "the server never closed the slow consumer"
        for _ in range(20):
            sdk.trigger(channel, "Big", payload)
            sent += 1
        while True:
            try:
                frame = reader.recv(timeout=0.05)
            except TimeoutError:
                break
            assert '"event":"Big"' in frame
            received += 1
    while received < sent:
        assert '"event":"Big"' in reader.recv(timeout=5)
        received += 1
    assert received == sent
    # The server has closed its side; the FIN waits in the kernel behind megabytes the slow client
    # never reads, so the client end cannot be checked here without reading it all.
    assert connections() == 1
    server.assert_healthy()


def test_slow_consumer_that_reads_again_sees_close_4100(reverb_server, raw_ws):
    """The 4100 Close reaches a slow consumer that starts reading again: it is written behind what
    the server had already queued, and TCP is closed only after it (protocol.md §1.5), so pusher-js
    sees 4100 and backs off instead of an abnormal 1006."""
    from conftest import signed_http

    server = reverb_server(max_request_size=20000)
    channel = unique("firehose-")
    slow = raw_ws(server)  # default socket buffers: it simply stops reading for a while
    raw_established(slow)
    slow.send_text(compact({"event": "pusher:subscribe", "data": {"channel": channel}}))
    assert json.loads(slow.recv_text())["event"] == "pusher_internal:subscription_succeeded"

    def connections() -> int:
        status, _, body = signed_http(server, "GET", f"/apps/{server.app_id}/connections")
        assert status == 200, body
        return json.loads(body)["connections"]

    sdk = server.pusher(timeout=10)
    deadline = time.monotonic() + 60
    while connections() == 1:
        assert time.monotonic() < deadline, "the server never closed the slow consumer"
        for _ in range(20):
            sdk.trigger(channel, "Big", "x" * 9000)
    # The server gave up on it; reading now drains what was queued, then the Close.
    code, reason, skipped = slow.recv_close(timeout=10)
    assert (code, reason) == (4100, "Over capacity")
    assert skipped and all(op == 0x1 and b'"event":"Big"' in payload for op, payload in skipped)
    assert slow.tcp_closed(timeout=3)
    server.assert_healthy()


def test_ping_flood_without_reading_is_bounded_and_cut_off(server, ws_client, raw_ws):
    """A client that floods pings and never reads the pongs cannot make the server queue replies
    without bound: it stops being read, then is closed after the slow-consumer grace period."""
    import socket

    def rss_kib() -> int:
        with open(f"/proc/{server.proc.pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))

    listener = ws_client(server)
    channel = unique("calm-")
    listener.subscribe(channel)
    flood = raw_ws(server)
    flood.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    assert flood.status == 101
    ping = flood.build_frame(0x1, b'{"event":"pusher:ping","data":{}}') * 1000
    flood.sock.setblocking(False)
    before = rss_kib()
    closed = False
    deadline = time.monotonic() + 20
    pending = memoryview(ping)
    while time.monotonic() < deadline:
        try:
            sent = flood.sock.send(pending)
            # Whole frames only: resume exactly where the kernel stopped taking bytes.
            pending = pending[sent:] if sent < len(pending) else memoryview(ping)
        except BlockingIOError:
            time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
    assert closed, "the flooding client was never cut off"
    assert rss_kib() - before < 64 * 1024, "the server buffered the flood's replies"
    server.pusher().trigger(channel, "Still", {"ok": True})
    assert listener.recv() == '{"event":"Still","data":"{\\"ok\\": true}","channel":"' + channel + '"}'
    server.assert_healthy()
