"""Shared fixtures for the swift-reverb end-to-end suite.

Every test starts its own `reverb start --host 127.0.0.1 --port 0` (a copy of the binary taken once
per session, so a rebuild in progress never runs half-written), reads the real port from the banner,
and on teardown sends SIGTERM and requires exit code 0 within 10 s (config.md §6.1).

Environment knobs:
  REVERB_BIN                   server binary (default: <repo>/.build/debug/reverb)
  REVERB_E2E_SHUTDOWN_TIMEOUT  seconds allowed for the graceful exit (default 10)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import queue
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_sync_connect

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / ".build" / "debug" / "reverb"
BANNER_RE = re.compile(r"^\s*INFO\s+Starting (?:secure )?server on (?P<host>[^\s:]+):(?P<port>\d+)")
SOCKET_ID_RE = re.compile(r"^[1-9][0-9]{0,9}\.[1-9][0-9]{0,9}$")
STARTUP_TIMEOUT = 20.0
SHUTDOWN_TIMEOUT = float(os.environ.get("REVERB_E2E_SHUTDOWN_TIMEOUT", "10"))
RECV_TIMEOUT = 5.0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under `make test` (`REVERB_TEST_NO_SKIPS`, set by scripts/test.sh, which installs redis-server,
    chromium and the rest) a skip means a broken set-up hiding a test: it is reported as a failure."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("REVERB_TEST_NO_SKIPS") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under make test, where nothing may be: {report.longrepr}"

# Option name -> environment variable (config.md §4.1, §4.3).
OPTION_ENV = {
    "ping_interval": "REVERB_APP_PING_INTERVAL",
    "activity_timeout": "REVERB_APP_ACTIVITY_TIMEOUT",
    "max_connections": "REVERB_APP_MAX_CONNECTIONS",
    "max_message_size": "REVERB_APP_MAX_MESSAGE_SIZE",
    "accept_client_events_from": "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM",
    "rate_limiting_enabled": "REVERB_APP_RATE_LIMITING_ENABLED",
    "rate_limit_max_attempts": "REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS",
    "rate_limit_decay_seconds": "REVERB_APP_RATE_LIMIT_DECAY_SECONDS",
    "rate_limit_terminate": "REVERB_APP_RATE_LIMIT_TERMINATE",
    "allowed_origins": "REVERB_APP_ALLOWED_ORIGINS",
    "max_request_size": "REVERB_MAX_REQUEST_SIZE",
    "path": "REVERB_SERVER_PATH",
}


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "http_api: needs the Pusher HTTP API (/apps/{id}/events, channels, users, terminate_connections)",
    )


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def unique(prefix: str = "") -> str:
    """A channel-name-safe unique string, so tests never share channel names."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def hmac_hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def channel_signature(secret: str, socket_id: str, channel: str, channel_data: str | None = None) -> str:
    """protocol.md §4.3: HMAC-SHA256 hex of `socket_id:channel[:channel_data]`."""
    subject = f"{socket_id}:{channel}"
    if channel_data:
        subject += f":{channel_data}"
    return hmac_hex(secret, subject)


def error_frame(code: int, message: str) -> str:
    """Exact bytes of a pusher:error frame (protocol.md §12)."""
    inner = json.dumps({"code": code, "message": message}, separators=(",", ":"))
    return json.dumps({"event": "pusher:error", "data": inner}, separators=(",", ":"))


def compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def wait_until(predicate, timeout: float = RECV_TIMEOUT, interval: float = 0.02, message: str = "condition"):
    """Poll with a deadline (never used to order events, only to bound a wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------


class ReverbServer:
    def __init__(self, binary: Path, workdir: Path, env_overrides: dict, args: list[str]):
        self.app_id = env_overrides.get("REVERB_APP_ID")
        self.key = env_overrides.get("REVERB_APP_KEY")
        self.secret = env_overrides.get("REVERB_APP_SECRET")
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.prefix = ""
        path = env_overrides.get("REVERB_SERVER_PATH", "")
        if "--path" in args:
            path = args[args.index("--path") + 1]
        if path.strip("/"):
            self.prefix = "/" + path.strip("/")
        self.workdir = workdir
        self.terminated = False
        self.stdout_lines: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REVERB_", "REDIS_", "APP_ENV"))}
        env["REVERB_RESTART_FILE"] = str(workdir / "restart")
        env.update({k: str(v) for k, v in env_overrides.items()})
        self.env = env
        self.stderr_path = workdir / "stderr.log"
        self._stderr = open(self.stderr_path, "wb")
        cmd = [str(binary), "start", "--host", self.host, "--port", "0", *args]
        # cwd = empty temp dir: no .env and no config/reverb.json get picked up.
        self.proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self._stderr, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self._wait_for_banner()

    def _read_stdout(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_banner(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise AssertionError(f"no banner within {STARTUP_TIMEOUT}s; stdout={self.stdout_lines} "
                                     f"stderr={self.stderr_text()}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(5)
                raise AssertionError(f"server exited ({self.proc.returncode}) before its banner; "
                                     f"stdout={self.stdout_lines} stderr={self.stderr_text()}")
            m = BANNER_RE.match(line)
            if m:
                self.port = int(m.group("port"))
                assert self.port > 0, line
                return

    def stderr_text(self) -> str:
        try:
            self._stderr.flush()
            return self.stderr_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    # ---- addresses -------------------------------------------------------------------------------
    def ws_url(self, key: str | None = None, query: str | None = "protocol=7&client=js&version=8.4.0&flash=false",
               prefix: str | None = None) -> str:
        prefix = self.prefix if prefix is None else prefix
        url = f"ws://{self.host}:{self.port}{prefix}/app/{key if key is not None else self.key}"
        if query is not None:
            url += "?" + query
        return url

    # ---- liveness --------------------------------------------------------------------------------
    def running(self) -> bool:
        return self.proc.poll() is None

    def up(self) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=RECV_TIMEOUT)
        try:
            conn.request("GET", f"{self.prefix}/up")
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def assert_healthy(self):
        assert self.running(), f"server process died (rc={self.proc.returncode}); stderr={self.stderr_text()}"
        status, body = self.up()
        assert (status, body) == (200, b'{"health":"OK"}')

    # ---- official Pusher SDK ---------------------------------------------------------------------
    def pusher(self, **kw):
        import pusher

        return pusher.Pusher(app_id=self.app_id, key=self.key, secret=self.secret, host=self.host,
                             port=self.port, ssl=False, timeout=kw.pop("timeout", 5), **kw)

    # ---- shutdown --------------------------------------------------------------------------------
    def terminate(self, timeout: float = SHUTDOWN_TIMEOUT) -> int | None:
        """SIGTERM, then wait; returns the exit code or None when it did not exit in time."""
        self.terminated = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def close_files(self):
        self._stderr.close()


@pytest.fixture(scope="session")
def reverb_binary(tmp_path_factory) -> Path:
    src = Path(os.environ.get("REVERB_BIN", DEFAULT_BIN))
    if not src.exists():
        pytest.exit(f"server binary {src} not found (build it, or set REVERB_BIN)", returncode=2)
    dst = tmp_path_factory.mktemp("bin") / "reverb"
    shutil.copy2(src, dst)
    return dst


@pytest.fixture
def reverb_server(reverb_binary, tmp_path):
    """Factory: `reverb_server(ping_interval=2, accept_client_events_from="all", env={...}, args=[...])`.

    Credentials default to a fresh app id/key/secret per server; option keywords map to the
    REVERB_* variables in OPTION_ENV; `env` adds raw variables (None removes one); `workdir` runs the
    server in an existing directory (prepared by the test) instead of a fresh empty one.
    """
    servers: list[ReverbServer] = []

    def start(*, app_id=None, key=None, secret=None, env=None, args=(), workdir=None, **options) -> ReverbServer:
        overrides = {
            "REVERB_APP_ID": app_id or str(100000 + len(servers)),
            "REVERB_APP_KEY": key or unique("key-"),
            "REVERB_APP_SECRET": secret or unique("secret-"),
        }
        for name, value in options.items():
            if name not in OPTION_ENV:
                raise TypeError(f"unknown server option {name}")
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, (list, tuple)):
                value = ",".join(value)
            overrides[OPTION_ENV[name]] = str(value)
        for k, v in (env or {}).items():
            if v is None:
                overrides.pop(k, None)
            else:
                overrides[k] = v
        if workdir is None:
            workdir = tmp_path / f"server{len(servers)}"
            workdir.mkdir()
        else:
            workdir = Path(workdir)  # prepared by the test (a .env, config/reverb.json, ...)
        server = ReverbServer(reverb_binary, workdir, overrides, list(args))
        servers.append(server)
        return server

    yield start

    problems = []
    for server in servers:
        if server.terminated:
            continue  # the test shut it down itself and checked the outcome
        if not server.running():
            problems.append(f"server on port {server.port} died during the test with exit code "
                            f"{server.proc.returncode}; stderr tail:\n{server.stderr_text()}")
            continue
        rc = server.terminate()
        if rc is None:
            server.kill()
            problems.append(f"server on port {server.port} did not exit within {SHUTDOWN_TIMEOUT}s of SIGTERM "
                            f"(graceful shutdown, config.md §6.1)")
        elif rc != 0:
            problems.append(f"server on port {server.port} exited with {rc} after SIGTERM, expected 0; "
                            f"stderr tail:\n{server.stderr_text()}")
    for server in servers:
        server.close_files()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def reverb_cli(reverb_binary, tmp_path):
    """Factory: `reverb_cli(*args, env={...}, cwd=None, input=None, timeout=20)` runs the binary to completion
    and returns the CompletedProcess (text mode). Same environment hygiene as the server fixture: no
    inherited REVERB_*/REDIS_*/APP_ENV; `env` adds variables (None removes one); `cwd` defaults to a fresh
    empty directory, so no .env or config/reverb.json is picked up."""
    counter = [0]

    def run(*args, env=None, cwd=None, input=None, timeout=20.0) -> subprocess.CompletedProcess:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("REVERB_", "REDIS_", "APP_ENV"))}
        full_env["REVERB_RESTART_FILE"] = str(tmp_path / "cli-restart")
        for k, v in (env or {}).items():
            if v is None:
                full_env.pop(k, None)
            else:
                full_env[k] = str(v)
        if cwd is None:
            counter[0] += 1
            cwd = tmp_path / f"cli{counter[0]}"
            cwd.mkdir()
        return subprocess.run([str(reverb_binary), *map(str, args)], cwd=cwd, env=full_env, input=input,
                              capture_output=True, text=True, timeout=timeout, stdin=None if input is not None
                              else subprocess.DEVNULL)

    return run


@pytest.fixture
def server(reverb_server) -> ReverbServer:
    """A server with default options."""
    return reverb_server()


# --------------------------------------------------------------------------------------------------
# WebSocket clients (websockets, sync API)
# --------------------------------------------------------------------------------------------------


class WS:
    """A `websockets` sync client with Pusher helpers. No automatic pings, no compression."""

    def __init__(self, url: str, expect_established: bool = True, **kw):
        kw.setdefault("ping_interval", None)
        kw.setdefault("compression", None)
        kw.setdefault("open_timeout", RECV_TIMEOUT)
        kw.setdefault("close_timeout", 2)
        kw.setdefault("max_size", 2**24)
        kw.setdefault("legacy", True)  # plain object instead of a context manager (websockets 17)
        self.conn = ws_sync_connect(url, **kw)
        self.socket_id: str | None = None
        self.established_frame: str | None = None
        if expect_established:
            frame = self.recv()
            self.established_frame = frame
            msg = json.loads(frame)
            assert msg["event"] == "pusher:connection_established", frame
            self.socket_id = json.loads(msg["data"])["socket_id"]

    # raw I/O
    def send(self, data):
        self.conn.send(data)

    def send_json(self, obj):
        self.conn.send(json.dumps(obj, separators=(",", ":")))

    def recv(self, timeout: float = RECV_TIMEOUT):
        return self.conn.recv(timeout=timeout)

    def recv_json(self, timeout: float = RECV_TIMEOUT):
        return json.loads(self.recv(timeout))

    def expect_silence(self, seconds: float = 0.4):
        try:
            frame = self.conn.recv(timeout=seconds)
        except TimeoutError:
            return
        raise AssertionError(f"expected no frame, got {frame!r}")

    def expect_closed(self, timeout: float = RECV_TIMEOUT):
        """Drain until the server's Close arrives; returns (code, reason, frames_before)."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"connection not closed within {timeout}s; frames={frames}")
            try:
                frames.append(self.conn.recv(timeout=remaining))
            except TimeoutError:
                continue
            except ConnectionClosed:
                rcvd = self.conn.protocol.close_rcvd
                if rcvd is None:
                    return None, None, frames
                return rcvd.code, rcvd.reason, frames

    def ping_pong(self):
        """Round trip a pusher:ping: proves the connection is usable and everything before it was sent."""
        self.send('{"event":"pusher:ping","data":{}}')
        assert self.recv() == '{"event":"pusher:pong"}'

    # pusher helpers
    def subscribe(self, channel: str, auth=None, channel_data=None, *, expect: str | None = "ok"):
        data = {"auth": auth if auth is not None else "", "channel": channel}
        if channel_data is not None:
            data["channel_data"] = channel_data
        self.send_json({"event": "pusher:subscribe", "data": data})
        if expect == "ok":
            frame = self.recv()
            msg = json.loads(frame)
            assert msg.get("event") == "pusher_internal:subscription_succeeded" and msg.get("channel") == channel, frame
            return frame
        return None

    def unsubscribe(self, channel: str):
        self.send_json({"event": "pusher:unsubscribe", "data": {"channel": channel}})

    def close(self, code: int = 1000, reason: str = ""):
        try:
            self.conn.close(code, reason)
        except Exception:
            pass


class Signer:
    def __init__(self, server: ReverbServer):
        self.server = server

    def auth(self, socket_id: str, channel: str, channel_data: str | None = None) -> str:
        return f"{self.server.key}:{channel_signature(self.server.secret, socket_id, channel, channel_data)}"


@pytest.fixture
def ws_client():
    """Factory: ws_client(server, key=None, query=..., prefix=None, expect_established=True, **connect_kw)."""
    clients: list[WS] = []

    def make(server: ReverbServer, key=None, query="protocol=7&client=js&version=8.4.0&flash=false",
             prefix=None, expect_established=True, **kw) -> WS:
        client = WS(server.ws_url(key=key, query=query, prefix=prefix), expect_established=expect_established, **kw)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


def subscribe_private(ws: WS, server: ReverbServer, channel: str, channel_data: str | None = None) -> str:
    auth = f"{server.key}:{channel_signature(server.secret, ws.socket_id, channel, channel_data)}"
    return ws.subscribe(channel, auth=auth, channel_data=channel_data)


# --------------------------------------------------------------------------------------------------
# A raw socket WebSocket client, for frames `websockets` refuses to produce
# --------------------------------------------------------------------------------------------------


class RawWS:
    def __init__(self, host: str, port: int, path: str, headers: dict | None = None, upgrade: bool = True,
                 timeout: float = RECV_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.key = base64.b64encode(os.urandom(16)).decode()
        hdrs = {"Host": f"{host}:{port}"}
        if upgrade:
            hdrs.update({"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": self.key,
                         "Sec-WebSocket-Version": "13"})
        for k, v in (headers or {}).items():
            if v is None:
                hdrs.pop(k, None)
            else:
                hdrs[k] = v
        self.request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        self.sock.sendall(self.request.encode())
        self.status, self.headers, self.head = self._read_head()

    def _read_head(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed before a response head; got {self.buf!r}")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        return status, headers, head.decode("latin-1")

    def header(self, name: str):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def read_body(self) -> bytes:
        length = int(self.header("Content-Length") or 0)
        while len(self.buf) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        body, self.buf = self.buf[:length], self.buf[length:]
        return body

    # frames
    @staticmethod
    def build_frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            head = struct.pack("!BBQ", b0, mbit | 127, n)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            return head + key + payload
        return head + payload

    def send_frame(self, opcode: int, payload: bytes | str, **kw):
        if isinstance(payload, str):
            payload = payload.encode()
        self.sock.sendall(self.build_frame(opcode, payload, **kw))

    def send_text(self, text: str):
        self.send_frame(0x1, text.encode())

    def _fill(self, n: int, timeout: float):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError
            if not chunk:
                raise EOFError(f"TCP closed; buffered {self.buf!r}")
            self.buf += chunk

    def recv_frame(self, timeout: float = RECV_TIMEOUT):
        """Returns (fin, opcode, payload). Server frames must be unmasked."""
        self._fill(2, timeout)
        b0, b1 = self.buf[0], self.buf[1]
        assert not (b1 & 0x80), "server frame is masked"
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._fill(4, timeout)
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._fill(10, timeout)
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
        self._fill(off + n, timeout)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_text(self, timeout: float = RECV_TIMEOUT) -> str:
        fin, op, payload = self.recv_frame(timeout)
        assert (fin, op) == (True, 0x1), (fin, op, payload)
        return payload.decode()

    def recv_close(self, timeout: float = RECV_TIMEOUT):
        """Skip data frames until a Close; returns (code, reason, skipped_frames)."""
        skipped = []
        while True:
            fin, op, payload = self.recv_frame(timeout)
            if op == 0x8:
                if len(payload) >= 2:
                    return struct.unpack("!H", payload[:2])[0], payload[2:].decode(errors="replace"), skipped
                return None, "", skipped
            skipped.append((op, payload))

    def tcp_closed(self, timeout: float = 3.0) -> bool:
        """True if the server closes TCP within timeout (discarding anything else it sends)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not chunk:
                return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


@pytest.fixture
def raw_ws():
    """Factory: raw_ws(server, path=None, headers=None, upgrade=True) -> RawWS (handshake already read)."""
    sockets: list[RawWS] = []

    def make(server: ReverbServer, path: str | None = None, headers=None, upgrade=True) -> RawWS:
        r = RawWS(server.host, server.port, path or f"{server.prefix}/app/{server.key}?protocol=7", headers, upgrade)
        sockets.append(r)
        return r

    yield make
    for s in sockets:
        s.close()


def raw_established(r: RawWS) -> str:
    assert r.status == 101, r.head
    frame = r.recv_text()
    msg = json.loads(frame)
    assert msg["event"] == "pusher:connection_established", frame
    return json.loads(msg["data"])["socket_id"]


# --------------------------------------------------------------------------------------------------
# Signed HTTP API requests without the SDK (for the error cases)
# --------------------------------------------------------------------------------------------------


def signed_query(method: str, path: str, key: str, secret: str, body: bytes = b"", params: dict | None = None,
                 timestamp: int | None = None) -> str:
    q = dict(params or {})
    q["auth_key"] = key
    q["auth_timestamp"] = str(int(time.time()) if timestamp is None else timestamp)
    q["auth_version"] = "1.0"
    if body:
        q["body_md5"] = hashlib.md5(body).hexdigest()
    to_sign = "&".join(f"{k.lower()}={v}" for k, v in sorted(q.items(), key=lambda kv: kv[0].lower()))
    q["auth_signature"] = hmac_hex(secret, f"{method}\n{path}\n{to_sign}")
    return urllib.parse.urlencode(q)


def http_request(server: ReverbServer, method: str, path: str, body: bytes | None = None, headers=None,
                 timeout: float = RECV_TIMEOUT):
    """Plain http.client request; returns (status, headers dict (lowercased), body bytes)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def signed_http(server: ReverbServer, method: str, path: str, body: bytes | None = None, *, secret=None, key=None,
                timestamp=None, params=None):
    """Signed request to `path` (without prefix handling: pass the full path)."""
    q = signed_query(method, path, key or server.key, secret or server.secret, body or b"", params, timestamp)
    return http_request(server, method, f"{path}?{q}", body)


# --------------------------------------------------------------------------------------------------
# Scaling: a throw-away redis-server and signed GETs through the official SDK
# --------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resp_command(*args) -> bytes:
    """One Redis command in RESP (an array of bulk strings)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif not isinstance(arg, bytes):
            arg = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class Redis:
    """A redis-server on a free loopback port, no persistence; stop()/start() reuse the port (and the
    directory, so `extra_args=("--appendonly", "yes")` makes the data survive a stop()/start()).

    redis-server cannot listen on port 0 and report the port, so the port is picked first; a start
    counts only once the server answering on it is ours (`INFO server`'s process_id is our child's
    pid), and a first start whose port was taken meanwhile tries another port."""

    def __init__(self, workdir, extra_args=()):
        self.workdir = workdir
        self.extra_args = [str(arg) for arg in extra_args]  # after the defaults: later ones win
        self.proc = None
        for attempt in range(5):
            self.port = free_port()
            try:
                self.start()
                return
            except AssertionError:
                self.stop()
                if attempt == 4:
                    raise

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def ours() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode} (port {self.port} taken?)")
            return self.ping() and self._process_id() == self.proc.pid
        wait_until(ours, timeout=10, message=f"our redis-server to answer on port {self.port}")

    def _process_id(self) -> int | None:
        try:
            info = self.command("INFO", "server").decode(errors="replace")
        except (OSError, AssertionError):
            return None
        match = re.search(r"^process_id:(\d+)", info, re.M)
        return int(match.group(1)) if match else None

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def publish(self, channel: str, payload: bytes):
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(resp_command("PUBLISH", channel, payload))
            assert s.recv(64).startswith(b":"), "PUBLISH failed"

    def publish_many(self, channel: str, payloads, timeout: float = 30.0) -> int:
        """Pipelines one PUBLISH per payload on one socket, then reads every reply; returns the count."""
        payloads = list(payloads)
        blob = b"".join(resp_command("PUBLISH", channel, p) for p in payloads)
        expected = len(payloads)
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            sender = threading.Thread(target=s.sendall, args=(blob,), daemon=True)
            sender.start()  # send and read at once, so neither side's buffers stall the other
            replies = b""
            while replies.count(b"\r\n") < expected:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                replies += chunk
            sender.join(timeout)
        lines = replies.split(b"\r\n")[:expected]
        assert len(lines) == expected and all(line.startswith(b":") for line in lines), "pipelined PUBLISH failed"
        return expected

    def command(self, *args) -> bytes:
        """Runs one command; returns the reply's payload (bulk string, simple string or integer text)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(resp_command(*args))
            buf = b""
            while b"\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise AssertionError(f"redis closed during {args}")
                buf += chunk
            head, _, rest = buf.partition(b"\r\n")
            if head[:1] == b"$":
                n = int(head[1:])
                if n < 0:
                    return b""
                while len(rest) < n + 2:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    rest += chunk
                return rest[:n]
            if head[:1] == b"-":
                raise AssertionError(f"redis error for {args}: {head!r}")
            return head[1:]

    def numsub(self, channel: str) -> int:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(f"PUBSUB NUMSUB {channel}\r\n".encode())
            reply = s.recv(256).split(b"\r\n")
            return int(reply[3][1:])

    def client_names(self) -> list[str]:
        """The `name=` of every connection in CLIENT LIST (empty names left out)."""
        names = []
        for line in self.command("CLIENT", "LIST").decode(errors="replace").splitlines():
            for field in line.split(" "):
                if field.startswith("name=") and len(field) > 5:
                    names.append(field[5:])
        return names

    def client_id(self, name: str) -> str | None:
        """The CLIENT LIST `id=` of the connection named `name`, None when there is none."""
        for line in self.command("CLIENT", "LIST").decode(errors="replace").splitlines():
            fields = dict(field.split("=", 1) for field in line.split(" ") if "=" in field)
            if fields.get("name") == name:
                return fields.get("id")
        return None

    def node_ids(self, role: str = "subscriber") -> set[str]:
        """swift-reverb node ids whose `swift-reverb:<id>:<role>` connection is open."""
        ids = set()
        for name in self.client_names():
            parts = name.split(":")
            if len(parts) == 3 and parts[0] == "swift-reverb" and parts[2] == role:
                ids.add(parts[1])
        return ids


@pytest.fixture
def redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = Redis(tmp_path)
    yield server
    server.stop()


def _get(node, path: str, params: dict | None = None):
    """A signed GET through the official Pusher SDK; returns the decoded JSON (raises on non-2xx)."""
    client = node.pusher()
    from pusher.http import Request

    request = Request(client._pusher_client, "GET", path, params or {})
    return client._pusher_client.http.send_request(request)
