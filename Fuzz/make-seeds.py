#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into Fuzz/<target>/corpus/ (see Fuzz/README.md).

Seeds are hand-made valid and near-valid inputs, mostly from ../shared/spec. Run it from anywhere;
it replaces the files it writes and leaves others alone.
"""
import hashlib
import hmac
import os

ROOT = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    directory = os.path.join(ROOT, target, "corpus")
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


# FuzzClientMessage: one client message per file (protocol.md §2, §4, §7, and the refusals of §15).
client_messages = {
    "ping": '{"event":"pusher:ping","data":{}}',
    "ping-empty-string": '{"event":"pusher:ping","data":""}',
    "pong": '{"event":"pusher:pong","data":{}}',
    "subscribe-public": '{"event":"pusher:subscribe","data":{"auth":"","channel":"test-channel"}}',
    "subscribe-private": '{"event":"pusher:subscribe","data":{"auth":"reverb-key:0a1b","channel":"private-orders.1"}}',
    "subscribe-presence": '{"event":"pusher:subscribe","data":{"auth":"reverb-key:0a1b","channel_data":'
    '"{\\"user_id\\":1,\\"user_info\\":{\\"name\\":\\"Test User\\"}}","channel":"presence-test-channel"}}',
    "subscribe-string-data": '{"event":"pusher:subscribe","data":"{\\"channel\\":\\"x\\"}"}',
    "unsubscribe": '{"event":"pusher:unsubscribe","data":{"channel":"test-channel"}}',
    "client-event": '{"event":"client-typing","data":{"name":"bob"},"channel":"presence-chat.1"}',
    "client-event-string-data": '{"event":"client-x","channel":"c","data":"{\\"a\\":{}}"}',
    "client-event-no-channel": '{"event":"client-x"}',
    "other-event": '{"event":"foo","channel":"x"}',
    "bad-data-string": '{"event":"client-x","channel":"c","data":"abc"}',
    "unknown-pusher": '{"event":"pusher:foo"}',
    "array": '["x"]',
    "number-event": '{"event":123}',
    "escapes": '{"event":"client-\\u00e9\\ud83d\\ude00","channel":"c\\/d","data":[1.5e3,-0,true,null,"\\t"]}',
    "duplicate-keys": '{"event":"pusher:ping","event":"pusher:pong","data":{"a":1,"a":2}}',
    "deep": "[" * 40 + "]" * 40,
    "bad-utf8": b'{"event":"client-x","channel":"\xc3\x28","data":{}}',
    "truncated": '{"event":"pusher:subscribe","data":{"channel":"te',
    "signin": '{"event":"pusher:signin","data":{"auth":"278d425bdf160c739803:abe963eb4a43a3393065608e9b0a2b9a57fb808546d6'
    'cdfe9b62511684afb82f","user_data":"{\\"id\\":\\"12345\\",\\"watchlist\\":[\\"a\\",\\"b\\"]}"}}',
    "signin-null-auth": '{"event":"pusher:signin","data":{"auth":null,"user_data":"{}"}}',
    "subscribe-server-to-user": '{"event":"pusher:subscribe","data":{"auth":"","channel":"#server-to-user-12345"}}',
}
for name, text in client_messages.items():
    write("FuzzClientMessage", name, text)


# FuzzWebSocketFrames: a script (see the harness). Byte 0: app options; then ops.
def ws_text(text, conn=0):
    payload = text.encode() if isinstance(text, str) else text
    if len(payload) < 0xFF:
        length = bytes([len(payload)])
    else:
        length = bytes([0xFF, len(payload) >> 8, len(payload) & 0xFF])
    return bytes([0x03 | conn << 7]) + length + payload + b"\x00"


def ws_frame(header, payload=b"", conn=0, masked=True):
    op = 0x00 | conn << 7 | (0 if masked else 0x10)
    return bytes([op, header, len(payload)]) + payload + b"\x00"


def ws_signed(prefix_index, suffix, user=None, conn=0):
    out = bytes([0x06 | conn << 7, prefix_index, len(suffix)]) + suffix
    if prefix_index in (1, 3):
        out += bytes([1, len(user)]) + user
    return out


def ws_vocab(message_index, channel_index=0, conn=0):
    return bytes([0x0D | conn << 7, channel_index, message_index])


PING = b'{"event":"pusher:ping","data":{}}'
MASKED_PING = b"\x81" + bytes([0x80 | len(PING)]) + b"\x37\xfa\x21\x3d" + bytes(
    b ^ m for b, m in zip(PING, b"\x37\xfa\x21\x3d" * 16))

ws_seeds = {
    "ping-pong": b"\x00" + ws_text('{"event":"pusher:ping","data":{}}') + ws_frame(0x89, b"hi"),
    "subscribe-and-whisper": b"\x02"
    + ws_vocab(3)
    + ws_vocab(3, conn=1)
    + ws_text('{"event":"client-typing","channel":"chat","data":{"name":"bob"}}')
    + bytes([0x0A, 0, 5]) + b"hello" + b"\x00",
    "presence": b"\x00" + ws_signed(1, b"room", b"7") + ws_signed(1, b"room", b"8", conn=1) + bytes([0x0B, 1]),
    "private-cache": b"\x00" + ws_signed(2, b"x") + bytes([0x0A, 1, 3]) + b"abc" + b"\x00" + ws_signed(2, b"x", conn=1),
    "close-normal": b"\x00" + ws_frame(0x88, b"\x03\xe8bye") + ws_text('{"event":"pusher:ping"}'),
    "close-bad-code": b"\x00" + ws_frame(0x88, b"\x03\xecx"),
    "close-one-byte": b"\x00" + ws_frame(0x88, b"\x03"),
    "unmasked": b"\x00" + ws_frame(0x81, b'{"event":"pusher:ping"}', masked=False),
    "fragments": b"\x00" + bytes([0x07, 1, len(PING)]) + PING,
    "continuation-alone": b"\x00" + ws_frame(0x80, b"x"),
    "too-large": b"\x01" + ws_text("{" + '"a":1,' * 60 + '"event":"pusher:ping"}'),
    "keepalive": b"\x00" + bytes([0x08, 240, 0x08, 240, 0x08, 240]),
    "slow-consumer": b"\x00" + ws_vocab(3) + bytes([0x09]) + bytes([0x0A, 0, 1]) + b"x\x00" + bytes([0x08, 24]),
    "rate-limit": b"\x18" + ws_vocab(0) * 6,
    "raw-split": b"\x00" + b"".join(bytes([0x05, len(part)]) + part for part in (MASKED_PING[:3], MASKED_PING[3:9], MASKED_PING[9:])),
    "invalid-utf8": b"\x00" + ws_text(b'{"event":"client-x","channel":"\xc3\x28"}'),
    "reserved-opcode": b"\x00" + ws_frame(0x83, b"") + ws_frame(0xC1, b"x"),
    "disconnect": b"\x00" + ws_vocab(2) + bytes([0x0C]),
}
for name, data in ws_seeds.items():
    write("FuzzWebSocketFrames", name, data)


# FuzzHTTPRequest. Parts mode: byte 0 even (method = (b>>1)%4: GET POST HEAD PUT; prefix = (b>>3)%3),
# then "URI\nBODY". Pipeline mode: byte 0 odd (bit 1: server path "ws"), chunk sizes ending in 0, bytes.
def signed_uri(method, path, body=b"", params=(), secret="secret", timestamp=1_700_000_000):
    items = list(params) + [("auth_key", "key"), ("auth_timestamp", str(timestamp)), ("auth_version", "1.0")]
    if body:
        items.append(("body_md5", hashlib.md5(body).hexdigest()))
    canonical = "&".join(f"{k.lower()}={v}" for k, v in sorted(items, key=lambda kv: kv[0].lower().encode()))
    signature = hmac.new(secret.encode(), f"{method}\n{path}\n{canonical}".encode(), hashlib.sha256).hexdigest()
    return path + "?" + "&".join(f"{k}={v}" for k, v in items) + "&auth_signature=" + signature


event_body = b'{"name":"NewEvent","channel":"test-channel","data":"{\\"some\\":\\"data\\"}"}'
batch_body = b'{"batch":[{"name":"a","channel":"c1","data":"{}"},{"name":"b","channels":["c2","c3"],"data":"x"}]}'
http_parts = {
    "events": (2, "/apps/1/events?auth_key=key&auth_timestamp=1700000000&auth_version=1.0&auth_signature=00", event_body),
    "events-other-secret": (2, signed_uri("POST", "/apps/1/events", event_body, secret="other"), event_body),
    "batch": (2, signed_uri("POST", "/apps/1/batch_events", batch_body, secret="other"), batch_body),
    "channels": (0, "/apps/1/channels?filter_by_prefix=presence-&info=user_count&auth_key=key", b""),
    "channel": (0, "/apps/1/channels/presence-room?info=user_count,subscription_count", b""),
    "users": (0, "/apps/1/channels/presence-room/users", b""),
    "connections": (0, "/apps/1/connections?auth_key=key&auth_timestamp=1700000000", b""),
    "terminate": (2, "/apps/1/users/42/terminate_connections", b""),
    "terminate-by-key": (2, "/users/42/terminate_connections?auth_key=key&auth_signature=x&auth_timestamp=1", b""),
    "prefixed": (10, "/ws/apps/1/events?auth_key=key", event_body),
    "percent": (0, "/apps/%31/channels/private-%E2%9C%93?a%5B%5D=1&a[]=2&b=%zz&c+d=e+f", b""),
    "up": (0, "/up", b""),
    "websocket": (0, "/app/key?protocol=7&client=js&version=8.4.0", b""),
    "head": (4, "/up?x", b""),
}
for name, (mode, uri, body) in http_parts.items():
    write("FuzzHTTPRequest", "parts-" + name, bytes([mode]) + uri.encode() + b"\n" + body)

pipeline = {
    "up-keepalive": (1, [], b"GET /up HTTP/1.1\r\nHost: x\r\n\r\nHEAD /up HTTP/1.1\r\nHost: x\r\n\r\n"),
    "pipelined-close": (1, [7], b"GET /up HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                        b"HEAD /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    "chunked-event": (1, [20, 3], b"POST " + signed_uri("POST", "/apps/1/events", event_body).encode()
                      + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      + b"%x\r\n" % len(event_body) + event_body + b"\r\n0\r\n\r\n"),
    "expect-continue": (1, [], b"POST /apps/1/events HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                        b"Content-Length: 2\r\n\r\n{}"),
    "too-large": (1, [], b"POST /apps/1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n"),
    "bad-request": (1, [], b"GET /up HTTP/1.1\r\nHost x\r\n\r\n"),
    "http10": (1, [], b"GET /up HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /up HTTP/1.0\r\n\r\n"),
    "method-not-allowed": (1, [], b"DELETE /apps/1/events HTTP/1.1\r\nHost: x\r\n\r\n"),
    "upgrade": (1, [9], b"GET /app/key?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                b"\x81\x97\x37\xfa\x21\x3d" + bytes(b ^ m for b, m in zip(b'{"event":"pusher:ping"}', b"\x37\xfa\x21\x3d" * 6))),
    "upgrade-refused": (1, [], b"GET /app/key HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"),
    "prefixed": (3, [], b"GET /ws/up HTTP/1.1\r\nHost: x\r\n\r\nGET /up HTTP/1.1\r\nHost: x\r\n\r\n"),
}
for name, (mode, sizes, data) in pipeline.items():
    write("FuzzHTTPRequest", "pipeline-" + name, bytes([mode] + sizes + [0]) + data)


# FuzzClusterEnvelope: header byte (message age), then bus messages separated by NUL (scaling.md §4).
bus = {
    "broadcast": '{"v":1,"type":"broadcast","node":"9f2c4e1a7b3d5f60","app":"1","socket_id":"1234.5678",'
    '"payload":{"event":"NewEvent","channels":["a","b"],"data":"{\\"some\\":\\"data\\"}"}}',
    "broadcast-one": '{"v":1,"type":"broadcast","node":"9f2c4e1a7b3d5f60","app":"1",'
    '"payload":{"event":"E","data":"x","channel":"cache-news"}}',
    "terminate-user": '{"v":1,"type":"terminate_user","node":"9f2c4e1a7b3d5f60","app":"1","user_id":"42"}',
    "query": '{"v":1,"type":"query","node":"9f2c4e1a7b3d5f60","app":"1","id":"5b1f0c9e2d7a4c88","kind":"channels",'
    '"prefix":"presence-","names":null}',
    "query-reply": '{"v":1,"type":"query_reply","node":"0c7d2b9e4f1a3856","app":"1","id":"5b1f0c9e2d7a4c88",'
    '"to":"9f2c4e1a7b3d5f60","result":{"channels":{"presence-room":2,"chat":1}}}',
    "presence-join": '{"v":1,"type":"presence_join","node":"9f2c4e1a7b3d5f60","app":"1","channel":"presence-room",'
    '"user_id":"1","channel_data":"{\\"user_id\\":1,\\"user_info\\":{\\"name\\":\\"Ann\\"}}"}',
    "presence-leave": '{"v":1,"type":"presence_leave","node":"9f2c4e1a7b3d5f60","app":"1","channel":"presence-room",'
    '"user_id":"1"}',
    "sync-request": '{"v":1,"type":"sync_request","node":"9f2c4e1a7b3d5f60"}',
    "sync-state": '{"v":1,"type":"sync_state","node":"0c7d2b9e4f1a3856","presence":{"1":{"presence-room":'
    '[{"user_id":"1","channel_data":"{\\"user_id\\":1}"}]}},"occupancy":{"1":{"presence-room":1,"news":2}}}',
    "occupancy": '{"v":1,"type":"occupancy","node":"0c7d2b9e4f1a3856","app":"1","channels":{"chat":3,"news":0}}',
    "heartbeat": '{"v":1,"type":"heartbeat","node":"9f2c4e1a7b3d5f60","host":"web-1","pid":4711,'
    '"started_at":1700000000,"version":"0.1.0"}',
    "node-leave": '{"v":1,"type":"node_leave","node":"9f2c4e1a7b3d5f60"}',
    "reverb-format": '{"type":"message","application":"x","payload":{}}',
    "version-2": '{"v":2,"type":"heartbeat","node":"a"}',
}
for name, text in bus.items():
    write("FuzzClusterEnvelope", name, b"\x00" + text.encode())
write(
    "FuzzClusterEnvelope",
    "session",
    b"\x00" + b"\x00".join(bus[k].encode() for k in ["heartbeat", "presence-join", "occupancy", "sync-state", "broadcast"]),
)
write("FuzzClusterEnvelope", "stale-session", b"\x03" + bus["presence-join"].encode() + b"\x00" + bus["occupancy"].encode())


# FuzzRESP: chunk sizes ending in 0, then replies as Redis sends them.
resp = {
    "status": b"+OK\r\n+PONG\r\n",
    "error": b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    "integer": b":1\r\n:-9223372036854775808\r\n",
    "bulk": b"$5\r\nhello\r\n$0\r\n\r\n$-1\r\n",
    "nil-array": b"*-1\r\n*0\r\n",
    "subscribe": b"*3\r\n$9\r\nsubscribe\r\n$6\r\nreverb\r\n:1\r\n",
    "message": b"*3\r\n$7\r\nmessage\r\n$6\r\nreverb\r\n$16\r\n{\"v\":1,\"type\":1}\r\n",
    "xread": b"*1\r\n*2\r\n$6\r\nreverb\r\n*1\r\n*2\r\n$15\r\n1700000000000-0\r\n*6\r\n$1\r\no\r\n$4\r\nnode\r\n"
    b"$1\r\nq\r\n$1\r\n7\r\n$1\r\nm\r\n$2\r\n{}\r\n",
    "nested": b"*2\r\n*1\r\n:1\r\n*2\r\n+a\r\n-b\r\n",
    "bad-type": b"+OK\r\n!oops\r\n",
    "bad-length": b"$abc\r\nxyz\r\n",
    "resp3": b"%1\r\n+a\r\n:1\r\n_\r\n#t\r\n,1.5\r\n",
    "partial": b"*2\r\n$3\r\nfoo\r\n",
}
for name, data in resp.items():
    write("FuzzRESP", name, b"\x03\x01\x07\x00" + data)
write("FuzzRESP", "bytewise", b"\x00" + resp["xread"])


# FuzzDotEnv: .env files (config.md §2).
dotenv = {
    "examples": "REVERB_APP_KEY=abc123\nREVERB_HOST=\"localhost\"\nREDIS_PASSWORD='p@ss#1 $x'\n"
    "VITE_REVERB_HOST=\"${REVERB_HOST}\"\nMSG=\"a\\nb\"\nexport REVERB_SERVER_PORT=8080 # local\n",
    "comment-value": "REDIS_PASSWORD=p@ss#1\n# comment\n\n  # indented comment\n",
    "multiline": "CERT=\"-----BEGIN-----\nabc\ndef\n-----END-----\"\nNEXT=1\n",
    "crlf": "A=1\r\nB=2\rC=3\r\n",
    "unset": "NAME_ONLY\nEMPTY=\nQUOTED_NAME=\"x\"\n\"Q.NAME\"=y\n",
    "interpolation": "BASE=/srv\nPATH_A=${BASE}/a\nPATH_B=\"${HOME}/b\"\nLITERAL='${BASE}'\nUNKNOWN=${NOPE}\n"
    "EMPTY_ENV=${EMPTY}\nDOLLAR=$BASE\n",
    "escapes": "E=\"\\t\\f\\v\\\\\\\"\\$x\"\n",
    "error-whitespace": "REVERB_APP_ID=1 2\n",
    "error-escape": "A=\"\\q\"\n",
    "error-unclosed": "A=\"open\nB=1\n",
    "error-after-quote": "A='x' y\n",
    "error-name": "1-A=x\n",
    "unicode": "NAME=\"caf\u00e9 \u2603\"\n\u00e9t\u00e9=ok\n",
}
for name, text in dotenv.items():
    write("FuzzDotEnv", name, text)


# FuzzConfigFile: byte 0 % 3: 0 config file, 1 .env, 2 .env NUL config file (config.md §3-§7).
development = open(os.path.join(ROOT, "..", "config", "reverb.json"), "rb").read()
config = {
    "development": (0, development),
    "empty-object": (0, b"{}"),
    "not-object": (0, b"[1,2]"),
    "syntax-error": (0, b'{"servers":{"reverb":{"port":8080,}}}'),
    "two-apps": (0, b'{"apps":{"apps":[{"key":"a","secret":"s","app_id":"1"},{"key":"b","secret":"t","app_id":2,'
                 b'"max_connections":"10","allowed_origins":[],"rate_limiting":{"enabled":"yes","max_attempts":0}}]}}'),
    "duplicate-app": (0, b'{"apps":{"apps":[{"key":"a","secret":"s","app_id":"1"},{"key":"a","secret":"s","app_id":"1"}]}}'),
    "scaling": (0, b'{"servers":{"reverb":{"port":"8081","path":"ws","scaling":{"enabled":true,"transport":"streams",'
                b'"server":{"url":"rediss://:pw@cache.local:6390/2?timeout=5","tls":{"verify_peer":false}}}}},'
                b'"apps":{"apps":[{"key":"k","secret":"s","app_id":"1"}]}}'),
    "tls": (0, b'{"servers":{"reverb":{"options":{"tls":{"local_cert":"c.pem","local_pk":"k.pem"}},"hostname":"h",'
            b'"max_request_size":100}},"apps":{"apps":[{"key":"k","secret":"s","app_id":"1"}]}}'),
    "unknown-keys": (0, b'{"typo":1,"servers":{"reverb":{"prot":1}},"apps":{"provider":"db","apps":[]}}'),
    "env-app": (1, b"REVERB_APP_ID=1\nREVERB_APP_KEY=k\nREVERB_APP_SECRET=s\nREVERB_SERVER_PORT=80a\n"
                b"REVERB_APP_PING_INTERVAL=abc\nREVERB_SCALING_ENABLED=maybe\n"),
    "env-incomplete": (1, b"REVERB_APP_ID=1\nREVERB_APP_KEY=k\n"),
    "env-redis": (1, b"REVERB_APP_ID=1\nREVERB_APP_KEY=k\nREVERB_APP_SECRET=s\nREVERB_SCALING_ENABLED=true\n"
                  b"REDIS_URL=redis://cache.local:99999\nREDIS_TIMEOUT=0.5\n"),
    "env-and-file": (2, b"REVERB_APP_ID=123456\nREVERB_APP_SECRET=other\nREVERB_APP_ACCEPT_CLIENT_EVENTS_FROM=everyone\x00"
                     + development),
    "env-syntax-error": (2, b"A=1 2\x00{}"),
}
for name, (mode, data) in config.items():
    write("FuzzConfigFile", name, bytes([mode]) + data)


# FuzzRedisTopology: byte 0 picks the reader (0 RESP replies, 1 error text, 2 +switch-master), then its input.
def bulk(text):
    data = text.encode() if isinstance(text, str) else text
    return b"$%d\r\n%s\r\n" % (len(data), data)


def array(*items):
    return b"*%d\r\n" % len(items) + b"".join(items)


def shard_node(ip, port, role, health="online", tls_port=None):
    fields = [bulk("id"), bulk("07c37dfeb235213a872192d90877d0cd55635b91"), bulk("port"), b":%d\r\n" % port,
              bulk("ip"), bulk(ip), bulk("endpoint"), bulk(ip), bulk("role"), bulk(role),
              bulk("replication-offset"), b":72156\r\n", bulk("health"), bulk(health)]
    if tls_port is not None:
        fields += [bulk("tls-port"), b":%d\r\n" % tls_port]
    return array(*fields)


def shard(low, high, *nodes):
    return array(bulk("slots"), array(b":%d\r\n" % low, b":%d\r\n" % high), bulk("nodes"), array(*nodes))


topology = {
    "shards-three": array(
        shard(0, 5460, shard_node("127.0.0.1", 7000, "master"), shard_node("127.0.0.1", 7003, "replica")),
        shard(5461, 10922, shard_node("127.0.0.1", 7001, "master", tls_port=17001)),
        shard(10923, 16383, shard_node("127.0.0.1", 7002, "master", "failed"),
              shard_node("127.0.0.1", 7005, "master"))),
    "shards-no-endpoint": array(shard(0, 16383, shard_node("?", 7000, "master"))),
    "shards-bad-range": array(shard(16383, 20000, shard_node("10.0.0.1", 7000, "master"))),
    "slots-three": array(
        array(b":0\r\n", b":5460\r\n", array(bulk("127.0.0.1"), b":7000\r\n", bulk("e7d1eec")),
              array(bulk("127.0.0.1"), b":7003\r\n", bulk("d2f0a1"))),
        array(b":5461\r\n", b":10922\r\n", array(bulk(""), b":7001\r\n", bulk("aa"))),
        array(b":10923\r\n", b":16383\r\n", array(bulk("127.0.0.1"), b":7000\r\n", bulk("e7d1eec")))),
    "slots-negative": array(array(b":-1\r\n", b":5\r\n", array(bulk("127.0.0.1"), b":7000\r\n"))),
    "sentinel-address": array(bulk("127.0.0.1"), bulk("6380")) + b"*-1\r\n",
    "role": array(bulk("master"), b":3129659\r\n", array(array(bulk("127.0.0.1"), bulk("9001"), bulk("3129242"))))
    + array(bulk("sentinel"), array(bulk("mymaster"))),
}
for name, data in topology.items():
    write("FuzzRedisTopology", name, b"\x00" + data)
for name, text in {
    "moved": "MOVED 3999 127.0.0.1:6381", "ask": "ASK 3999 127.0.0.1:6381", "moved-ipv6": "MOVED 1 [::1]:7000",
    "moved-no-host": "MOVED 12182 :7002", "clusterdown": "CLUSTERDOWN The cluster is down",
    "tryagain": "TRYAGAIN Multiple keys request during rehashing of slot", "other": "ERR unknown command",
}.items():
    write("FuzzRedisTopology", "redirect-" + name, b"\x01" + text.encode())
write("FuzzRedisTopology", "switch-master", b"\x02mymaster 127.0.0.1 6379 127.0.0.1 6380")
write("FuzzRedisTopology", "switch-master-bad-port", b"\x02mymaster 127.0.0.1 6379 127.0.0.1 99999")


# FuzzDashboard: per request two control bytes and a text line (see the harness). Byte 1: route (bits 0-2:
# page, login, session, overview, channels, channel, events, stream), method (3-4), cookie (5-7: none, app 1,
# app 2, all, expired, changed byte, text as Cookie, last login). Byte 2: right CSRF (0), app (1-2: 1, 2, 9,
# text), text as body (3), login form (4-5: app 1, password, wrong secret, unknown app).
def dash(route, method=0, cookie=0, csrf=True, app=0, use_text=False, form=0, text=b""):
    first = route | method << 3 | cookie << 5
    second = int(csrf) | app << 1 | int(use_text) << 3 | form << 4
    return bytes([first, second]) + (text.encode() if isinstance(text, str) else text) + b"\n"


dashboard_scripts = {
    "no-session-everywhere": b"".join(dash(r) for r in range(8)),
    "app-session-everywhere": b"".join(dash(r, cookie=1, app=a) for r in range(8) for a in range(3)),
    "password-session-everywhere": b"".join(dash(r, cookie=3, app=a) for r in range(8) for a in range(3)),
    "login-then-use": dash(1, method=2, form=0) + dash(2, cookie=7) + dash(6, method=0, cookie=7, app=0),
    "password-login": dash(1, method=2, form=1) + dash(3, cookie=7, app=2) + dash(7, cookie=7, app=1),
    "rate-limit": b"".join(dash(1, method=2, form=2) for _ in range(6)) + dash(1, method=2, form=0),
    "wrong-csrf": dash(6, cookie=1, csrf=False, text="not-the-token") + dash(6, cookie=1, csrf=False),
    "expired-and-changed": dash(2, cookie=4) + dash(2, cookie=5, text="\x05Z") + dash(2, cookie=5, text="\x30"),
    "made-up-cookie": dash(2, cookie=6, text="reverb_dashboard=1.1800000000.00.*.00") + dash(0, cookie=6, text=";;="),
    "text-login-form": dash(1, method=2, use_text=True, text="app_id=2&secret=secret2&app_id=1"),
    "event-bodies": dash(6, cookie=2, app=1, use_text=True, text='{"name":"x","channels":["a","b"],"data":"1"}')
    + dash(6, cookie=3, app=0, use_text=True, text="{") + dash(6, cookie=3, app=3, use_text=True, text="1"),
    "channel-names": dash(5, cookie=3, use_text=True, text="presence-chat.1") + dash(5, cookie=1, use_text=True,
                                                                                      text="cache-x/../y")
    + dash(4, cookie=1, use_text=True, text="private-"),
    "text-app-ids": dash(4, cookie=3, app=3, text="1") + dash(3, cookie=1, app=3, text="") + dash(7, cookie=2, app=3,
                                                                                                  text="%2"),
}
for name, data in dashboard_scripts.items():
    write("FuzzDashboard", name, data)


# FuzzRedisURL: URL, then optional lines host, port, username, password, database, timeout, scheme,
# connect_timeout, verify_peer, verify_peer_name, peer_name (scaling.md §6, table of §6.5), then
# REDIS_CLUSTER, REDIS_SENTINELS, REDIS_SENTINEL_MASTER, REDIS_SENTINEL_PASSWORD.
redis_urls = {
    "nothing": "",
    "host-port": "\nredis.internal\n6380\n\nsecret\n2",
    "username": "\n\n\nreverb\ns3cret",
    "scheme-tls": "\ncache.example.com\n\n\n\n\n\ntls",
    "userinfo": "redis://u:p%40ss@10.0.0.5:6380/4",
    "rediss": "rediss://:pw@cache.local",
    "query-database": "redis://cache.local:6379/1?database=7",
    "query-db": "redis://cache.local?db=3",
    "url-scheme-wins": "redis://cache.local\n\n\n\n\n\n\ntls",
    "tls-long": "tls://h:asdfqwer1234asdf@ec2-111-1-1-1.compute-1.amazonaws.com:111",
    "ipv6": "redis://[::1]:6380",
    "plus": "redis://cache.local?password=a+b%2Bc",
    "scheme-relative": "//:pw@cache.local:6390\n\n\n\n\n\n\ntls",
    "unix": "unix:///var/run/redis/redis.sock?database=1&password=pw",
    "socket-host": "\n/var/run/redis/redis.sock",
    "bad-scheme": "http://cache.local",
    "bad-port": "redis://cache.local:99999",
    "bad-database": "redis://cache.local/abc",
    "verify-peer": "rediss://cache.local\n\n\n\n\n\n\n\n\nfalse\nno\npeer.local",
    "timeouts": "redis://cache.local?timeout=5&connect_timeout=0.25&unknown=1",
    "cluster": "\n" * 12 + "127.0.0.1:7000, 127.0.0.1:7001,[::1]:7002,cache.local",
    "cluster-and-url": "redis://cache.local" + "\n" * 12 + "127.0.0.1:7000",
    "cluster-bad-port": "\n" * 12 + "127.0.0.1:70000,:7001,[::1",
    "sentinels": "\n" * 13 + "10.0.0.1:26379,10.0.0.2\nprimary\nsentinel-secret",
    "cluster-and-sentinels": "\n" * 12 + "127.0.0.1:7000\n10.0.0.1:26379",
    "sentinel-master-alone": "\n" * 14 + "primary",
}
for name, text in redis_urls.items():
    write("FuzzRedisURL", name, text)


# libFuzzer dictionaries: tokens each parser looks for, in Fuzz/dictionaries/<target>.dict.
def write_dict(target, tokens):
    directory = os.path.join(ROOT, "dictionaries")
    os.makedirs(directory, exist_ok=True)

    def escape(token):
        if isinstance(token, str):
            token = token.encode()
        return "".join(chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else "\\x%02x" % b for b in token)

    with open(os.path.join(directory, target + ".dict"), "w") as f:
        for token in sorted(set(tokens), key=lambda t: (t.encode() if isinstance(t, str) else t)):
            f.write('"%s"\n' % escape(token))


def source_strings(path, pattern):
    import re

    with open(os.path.join(ROOT, "..", path)) as f:
        return re.findall(pattern, f.read())


json_tokens = ["{", "}", "[", "]", ":", ",", '"', "\\u", "\\\"", "true", "false", "null", "-0", "1e3", "\\ud83d\\ude00"]
pusher_tokens = json_tokens + [
    '"event"', '"data"', '"channel"', '"auth"', '"channel_data"', '"user_id"', '"user_info"',
    "pusher:subscribe", "pusher:unsubscribe", "pusher:ping", "pusher:pong", "pusher:connection_established",
    "client-", "private-", "presence-", "private-cache-", "presence-cache-", "private-encrypted-", "cache-",
    "pusher:signin", '"user_data"', '"watchlist"', '"id"', "#server-to-user-",
]
write_dict("FuzzClientMessage", pusher_tokens)
write_dict("FuzzWebSocketFrames", pusher_tokens + [b"\x81", b"\x88", b"\x89", b"\x8a", b"\x80", b"\x01", b"\x03\xe8"])
write_dict("FuzzHTTPRequest", json_tokens + [
    "GET ", "POST ", "HEAD ", " HTTP/1.1\r\n", " HTTP/1.0\r\n", "\r\n", "\r\n\r\n", "Host: ", "Content-Length: ",
    "Transfer-Encoding: chunked", "Connection: close", "Connection: keep-alive", "Expect: 100-continue",
    "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13", "Origin: ", "/apps/1/", "/app/key", "/up", "events", "batch_events", "channels",
    "users", "connections", "terminate_connections", "?", "&", "=", "%", "%2F", "+", "[]",
    "auth_key=key", "auth_timestamp=1700000000", "auth_version=1.0", "auth_signature=", "body_md5=",
    "info=", "filter_by_prefix=", "user_count", "subscription_count", '"name"', '"channel"', '"channels"',
    '"data"', '"socket_id"', '"batch"', '"info"',
])
write_dict("FuzzClusterEnvelope", json_tokens + [b"\x00"] + ['"%s"' % t for t in [
    "v", "type", "node", "app", "payload", "socket_id", "user_id", "channel", "channels", "channel_data", "id",
    "kind", "prefix", "names", "users", "to", "result", "host", "pid", "started_at", "version", "presence",
    "occupancy", "broadcast", "terminate_user", "query", "query_reply", "presence_join", "presence_leave",
    "sync_request", "sync_state", "heartbeat", "node_leave", "connections", "message", "9f2c4e1a7b3d5f60",
]] + ["presence-", "cache-"])
write_dict("FuzzRESP", ["\r\n", "+", "-", ":", "$", "*", "$-1", "*-1", "%", "~", "_", "#t", ",", "(", "=", ">", "|",
                        "message", "subscribe", "o", "q", "m", "1700000000000-0"])
write_dict("FuzzDotEnv", ["=", '"', "'", "\\", "\\n", "\\\"", "\\$", "${", "}", "#", " ", "\t", "\n", "\r\n", "\r",
                          "export ", "${HOME}", "${EMPTY}", "${SPACED}", "=\""])
config_keys = source_strings("Sources/Reverb/Config/ConfigFileSchema.swift", r'"([a-z_]+)"')
config_keys += source_strings("Sources/Reverb/Config/ConfigurationBuilder+apps.swift", r'value\("([a-z_]+)"')
env_names = []
for path in ["Sources/Reverb/Config/ConfigurationBuilder.swift", "Sources/Reverb/Config/ConfigurationBuilder+apps.swift",
             "Sources/Reverb/Config/ConfigurationBuilder+values.swift"]:
    env_names += source_strings(path, r'"((?:REVERB|REDIS)_[A-Z_]+)"')
write_dict("FuzzConfigFile", json_tokens + ['"%s"' % k for k in config_keys] + [n + "=" for n in env_names]
           + [b"\x00", "\n", "true", "yes", "streams", "pubsub", "redis://", "rediss://", "99999999999999999999"])
write_dict("FuzzDashboard", ["\n", "app_id=", "secret=", "password=", "&", "=", "%", "+", "1", "2", "secret1", "secret2",
                             "dashboard-password", "reverb_dashboard=", "; ", "1.", ".*.", ".a31.", "presence-", "cache-",
                             "private-", '{"name":"', '","channel":"', '","data":"', '"}'])
write_dict("FuzzRedisTopology", ["\r\n", "*", "$", ":", "+", "-", "$-1", "*-1", "slots", "nodes", "port", "tls-port",
                                 "ip", "endpoint", "role", "health", "master", "replica", "slave", "sentinel",
                                 "online", "failed", "loading", "?", "MOVED ", "ASK ", "CLUSTERDOWN", "TRYAGAIN",
                                 "[::1]", ":6379", "16383", "16384", "mymaster ", "127.0.0.1 ", "65535"])
write_dict("FuzzRedisURL", ["redis://", "rediss://", "tcp://", "tls://", "unix://", "//", "@", ":", "/", "?", "&", "=",
                            "[", "]", "%", "+", "#", "\n", "database=", "db=", "username=", "password=", "timeout=",
                            "connect_timeout=", "true", "false", "tls", "unix", "65535", "0.5", ",", "[::1]:7000",
                            "127.0.0.1:26379", "mymaster"])
