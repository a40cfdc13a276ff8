"""`/metrics` (http-api.md §8.2) scraped after known traffic: exact counter values, the bearer token,
the listener of its own and the prefix."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

from conftest import free_port, unique, wait_until


def scrape(host: str, port: int, path: str = "/metrics", token: str | None = None) -> tuple[int, dict, str]:
    request = urllib.request.Request(f"http://{host}:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def samples(text: str) -> dict[str, float]:
    """`name{labels}` → value, labels sorted, for exact comparisons."""
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        labels = ",".join(sorted(re.findall(r'[a-z_]+="[^"]*"', labels or "")))
        values[f"{name}{{{labels}}}"] = float(value)
    return values


def test_counters_after_known_traffic(reverb_server, ws_client):
    server = reverb_server(env={"REVERB_METRICS_ENABLED": "true"}, accept_client_events_from="all")
    status, headers, text = scrape(server.host, server.port)
    assert status == 200 and headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    app = f'app_id="{server.app_id}",port="{server.port}"'
    before = samples(text)
    assert before[f"reverb_connected{{{app}}}"] == 0
    assert before[f"reverb_new_connections_total{{{app}}}"] == 0
    assert "# TYPE reverb_ws_messages_sent_total counter" in text
    assert "# HELP reverb_connected " in text

    channel = unique("metered-")
    a, b = ws_client(server), ws_client(server)  # 2 × connection_established
    a.subscribe(channel)  # 1 received, 1 sent
    b.subscribe(channel)  # 1 received, 1 sent
    whisper = '{"event":"client-x","channel":"%s","data":{}}' % channel
    a.send(whisper)  # 1 received; b gets 1
    b.recv_json()
    assert server.pusher().trigger(channel, "ev", {"n": 1}) == {}  # a and b get 1 each
    a.recv_json()
    b.recv_json()
    b.close()
    wait_until(lambda: samples(scrape(server.host, server.port)[2])[f"reverb_connected{{{app}}}"] == 1,
               message="the closed connection to be counted")
    after = samples(scrape(server.host, server.port)[2])
    assert after[f"reverb_new_connections_total{{{app}}}"] == 2
    assert after[f"reverb_new_disconnections_total{{{app}}}"] == 1
    assert after[f"reverb_ws_messages_received_total{{{app}}}"] == 3
    assert after[f"reverb_ws_messages_sent_total{{{app}}}"] == 2 + 2 + 1 + 2
    subscribe = '{"event":"pusher:subscribe","data":{"auth":"","channel":"%s"}}' % channel
    assert after[f"reverb_socket_received_bytes{{{app}}}"] == 2 * len(subscribe) + len(whisper)
    assert after[f"reverb_http_calls_received_total{{{app}}}"] == 1
    assert after[f'reverb_channels{{app_id="{server.app_id}"}}'] == 1
    assert after['reverb_http_requests_total{route="/apps/{appId}/events",status="200"}'] == 1
    assert after['reverb_http_requests_total{route="/app/{key}",status="101"}'] == 2
    assert after['reverb_http_request_duration_seconds_count{route="/apps/{appId}/events"}'] == 1
    assert after["reverb_cluster_nodes{}"] == 1
    assert after["process_resident_memory_bytes{}"] > 1_000_000
    assert after["process_open_fds{}"] > 3


def test_pusher_errors_by_code(reverb_server, ws_client):
    server = reverb_server(env={"REVERB_METRICS_ENABLED": "true"})
    ws = ws_client(server)
    ws.subscribe("private-x", auth="bad:sig", expect=None)
    assert ws.recv_json()["event"] == "pusher:error"
    after = samples(scrape(server.host, server.port)[2])
    assert after[f'reverb_pusher_errors_total{{app_id="{server.app_id}",code="4009"}}'] == 1


def test_token_port_and_prefix(reverb_server):
    port = free_port()
    server = reverb_server(env={"REVERB_METRICS_ENABLED": "true", "REVERB_METRICS_TOKEN": "s3cret",
                                "REVERB_METRICS_PORT": str(port), "REVERB_METRICS_PREFIX": "swift_"})
    assert scrape(server.host, server.port)[0] == 404  # not on the main port any more
    status, _, body = scrape("127.0.0.1", port)
    assert (status, body) == (401, "Unauthorized.")
    assert scrape("127.0.0.1", port, token="wrong")[0] == 401
    status, _, text = scrape("127.0.0.1", port, token="s3cret")
    assert status == 200
    assert f'swift_connected{{app_id="{server.app_id}",port="{server.port}"}} 0' in text
    assert "reverb_connected" not in text and "process_cpu_seconds_total" in text
    assert scrape("127.0.0.1", port, path="/up", token="s3cret")[0] == 404


def test_off_by_default_and_bad_values_stop_start_up(reverb_server, reverb_cli):
    server = reverb_server()
    assert scrape(server.host, server.port)[0] == 404
    env = {"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s", "REVERB_METRICS_PORT": "-1"}
    r = reverb_cli("start", "--port", "0", env=env, timeout=10)
    assert r.returncode == 78
    assert 'REVERB_METRICS_PORT: "-1" is not a port number (1-65535).' in r.stderr, r.stderr
