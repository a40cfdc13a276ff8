"""TLS (config.md §4.1 `options.tls`, REVERB_TLS_CERT / REVERB_TLS_KEY): one port serves wss:// and
https://. A self-signed certificate for localhost / 127.0.0.1 is generated per test with `openssl`.
"""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
import subprocess
import time

import pytest

from conftest import RECV_TIMEOUT, WS, compact, unique, wait_until

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

QUERY = "protocol=7&client=js&version=8.4.0&flash=false"


@pytest.fixture
def cert_pair(tmp_path):
    """(cert.pem, key.pem): self-signed, CN=localhost, SAN localhost + 127.0.0.1."""
    d = tmp_path / "tls"
    d.mkdir()
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def client_context(cert) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def wss(server, ctx, key=None) -> WS:
    url = f"wss://{server.host}:{server.port}{server.prefix}/app/{key or server.key}?{QUERY}"
    return WS(url, ssl=ctx)


def https_get(server, ctx, path):
    conn = http.client.HTTPSConnection(server.host, server.port, context=ctx, timeout=RECV_TIMEOUT)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def crash_summary(server) -> str:
    try:
        err = server.stderr_path.read_text(errors="replace")
    except OSError:
        return ""
    fatal = [line for line in err.splitlines() if "Fatal error" in line or "Program crashed" in line]
    return "\n".join(fatal) if fatal else err[-800:]


def assert_clean_exit(server):
    """SIGTERM now and require exit 0 (config.md §6.1), surfacing a crash's first stderr lines."""
    rc = server.terminate()
    if rc is None:
        server.kill()
    assert rc == 0, f"exit code {rc} after SIGTERM, expected 0; {crash_summary(server)}"


@pytest.fixture
def tls_server(reverb_server, cert_pair):
    cert, key = cert_pair
    server = reverb_server(env={"REVERB_TLS_CERT": str(cert), "REVERB_TLS_KEY": str(key)})
    server.cert = cert
    return server


def test_banner_says_secure(tls_server):
    banner = f"   INFO  Starting secure server on 127.0.0.1:{tls_server.port}."
    assert banner in tls_server.stdout_lines, tls_server.stdout_lines
    wait_until(lambda: f"   INFO  Serving app {tls_server.app_id} (key: {tls_server.key})." in tls_server.stdout_lines,
               message="Serving app line")


def test_wss_connect_and_subscribe(tls_server):
    ctx = client_context(tls_server.cert)
    ws = wss(tls_server, ctx)
    try:
        established = json.loads(ws.established_frame)
        assert established["event"] == "pusher:connection_established"
        assert json.loads(established["data"])["activity_timeout"] == 30
        ch = unique("tls-")
        assert ws.subscribe(ch) == compact({"event": "pusher_internal:subscription_succeeded", "data": "{}",
                                            "channel": ch})
        ws.ping_pong()
    finally:
        ws.close()


def test_https_up(tls_server):
    ctx = client_context(tls_server.cert)
    assert https_get(tls_server, ctx, "/up") == (200, b'{"health":"OK"}')
    time.sleep(0.5)
    assert tls_server.running(), f"server died after an HTTPS request: {crash_summary(tls_server)}"
    assert https_get(tls_server, ctx, "/up") == (200, b'{"health":"OK"}')  # a second connection
    assert_clean_exit(tls_server)


def test_plain_http_is_not_served_on_tls_port(tls_server):
    """The TLS port does not answer cleartext HTTP with a normal response."""
    conn = http.client.HTTPConnection(tls_server.host, tls_server.port, timeout=3)
    try:
        conn.request("GET", "/up")
        resp = conn.getresponse()
        outcome = (resp.status, resp.read())
    except (OSError, http.client.HTTPException):
        outcome = None
    finally:
        conn.close()
    assert outcome != (200, b'{"health":"OK"}'), outcome
    # the server survives the failed handshake
    time.sleep(0.5)
    assert tls_server.running(), f"server died: {crash_summary(tls_server)}"
    ctx = client_context(tls_server.cert)
    assert https_get(tls_server, ctx, "/up") == (200, b'{"health":"OK"}')
    assert_clean_exit(tls_server)


def test_pusher_sdk_over_https_reaches_wss_client(tls_server):
    import pusher

    ctx = client_context(tls_server.cert)
    ws = wss(tls_server, ctx)
    try:
        ch = unique("tls-sdk-")
        ws.subscribe(ch)
        sdk = pusher.Pusher(app_id=tls_server.app_id, key=tls_server.key, secret=tls_server.secret,
                            host=tls_server.host, port=tls_server.port, ssl=True, timeout=5)
        sdk._pusher_client.http.options["verify"] = str(tls_server.cert)  # trust our self-signed cert
        assert sdk.trigger(ch, "SecureEvent", {"ok": True}) == {}
        assert ws.recv() == compact({"event": "SecureEvent", "data": '{"ok": true}', "channel": ch})
    finally:
        ws.close()


def test_cert_file_holding_the_key(reverb_server, cert_pair, tmp_path):
    """`local_cert` may also hold the key (REVERB_TLS_CERT alone)."""
    cert, key = cert_pair
    combined = tmp_path / "combined.pem"
    combined.write_text(cert.read_text() + key.read_text())
    server = reverb_server(env={"REVERB_TLS_CERT": str(combined)})
    assert f"   INFO  Starting secure server on 127.0.0.1:{server.port}." in server.stdout_lines
    assert https_get(server, client_context(cert), "/up") == (200, b'{"health":"OK"}')
    assert_clean_exit(server)


def test_unreadable_cert_fails_start(reverb_cli, cert_pair, tmp_path):
    _, key = cert_pair
    cwd = tmp_path / "missing-cert"
    cwd.mkdir()
    r = reverb_cli("start", "--host", "127.0.0.1", "--port", "0", cwd=cwd, timeout=15,
                   env={"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s",
                        "REVERB_TLS_CERT": "cert.pem", "REVERB_TLS_KEY": str(key)})
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "cert.pem" in r.stderr, r.stderr
    assert "Starting" not in r.stdout
    # config.md §6.5 / §7: configuration error, exact wording
    assert r.returncode == 78, (r.returncode, r.stderr)
    assert 'REVERB_TLS_CERT: cannot read "cert.pem": No such file or directory.' in r.stderr.splitlines(), r.stderr


def test_garbage_cert_fails_start(reverb_cli, cert_pair, tmp_path):
    _, key = cert_pair
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    r = reverb_cli("start", "--host", "127.0.0.1", "--port", "0", timeout=15,
                   env={"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s",
                        "REVERB_TLS_CERT": str(bogus), "REVERB_TLS_KEY": str(key)})
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "Starting" not in r.stdout
    assert "bogus.pem" in r.stderr or "REVERB_TLS_CERT" in r.stderr, r.stderr
