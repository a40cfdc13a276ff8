"""The `reverb` command line (config.md §6): help and version, usage errors (exit 64), configuration
errors (exit 78), bind failures (exit 1), `reverb restart` through the restart file, `events:trigger`
end to end, and the working-directory sources (`.env`, `config/reverb.json`).

Every run is a real process; exit codes and messages are compared exactly.
"""

from __future__ import annotations

import json
import re
import socket
import time

import pytest

from conftest import compact, signed_http, subscribe_private, unique, wait_until

START = ("start", "--host", "127.0.0.1", "--port", "0")
CREDS = {"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s"}  # an environment app


def lines(text: str) -> list[str]:
    return text.splitlines()


def event_frame(event: str, data: str, channel: str) -> str:
    return compact({"event": event, "data": data, "channel": channel})


def app_env(server) -> dict:
    return {"REVERB_APP_ID": server.app_id, "REVERB_APP_KEY": server.key, "REVERB_APP_SECRET": server.secret}


def serving_line(app_id: str, key: str) -> str:
    return f"   INFO  Serving app {app_id} (key: {key})."


# --------------------------------------------------------------------------------------------------
# Help and version (§6)
# --------------------------------------------------------------------------------------------------


def test_top_level_help_lists_commands(reverb_cli):
    r = reverb_cli("--help")
    assert r.returncode == 0, r.stderr
    for word in ("start", "restart", "events:trigger", "--version", "--help"):
        assert word in r.stdout, f"{word!r} missing from `reverb --help`:\n{r.stdout}"


def test_start_help_lists_flags(reverb_cli):
    r = reverb_cli("start", "--help")
    assert r.returncode == 0, r.stderr
    for flag in ("--host", "--port", "--path", "--hostname", "--config", "--debug", "--version", "--help"):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", r.stdout), \
            f"{flag} missing from `reverb start --help`:\n{r.stdout}"


def test_restart_and_trigger_help_list_flags(reverb_cli):
    r = reverb_cli("restart", "--help")
    assert r.returncode == 0, r.stderr
    assert "--config" in r.stdout
    r = reverb_cli("events:trigger", "--help")
    assert r.returncode == 0, r.stderr
    for flag in ("--app-id", "--host", "--port", "--scheme", "--socket-id", "--info", "--timeout", "--config"):
        assert flag in r.stdout, f"{flag} missing from `reverb events:trigger --help`:\n{r.stdout}"


@pytest.mark.parametrize("argv", [("--version",), ("start", "--version"), ("restart", "--version"),
                                  ("events:trigger", "--version")])
def test_version(reverb_cli, argv):
    r = reverb_cli(*argv)
    assert (r.returncode, r.stdout) == (0, "swift-reverb 0.1.0\n"), r.stderr


# --------------------------------------------------------------------------------------------------
# Usage errors: exit 64 (§6.5)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [("start", "--bogus"), ("--bogus",), ("restart", "--bogus"),
                                  ("events:trigger", "ch", "ev", "--bogus")])
def test_unknown_flag_exits_64_naming_it(reverb_cli, argv):
    r = reverb_cli(*argv, timeout=10)
    assert r.returncode == 64, (r.returncode, r.stdout, r.stderr)
    assert "--bogus" in r.stderr, r.stderr
    assert "Starting" not in r.stdout


def test_unknown_subcommand_exits_64(reverb_cli):
    r = reverb_cli("frobnicate", timeout=10)
    assert r.returncode == 64, (r.returncode, r.stdout, r.stderr)
    assert "frobnicate" in r.stderr


def test_missing_argument_exits_64(reverb_cli):
    r = reverb_cli("events:trigger", timeout=10)
    assert r.returncode == 64, (r.returncode, r.stdout, r.stderr)
    assert "<channel>" in r.stderr


@pytest.mark.parametrize("argv", [("--port", "99999"), ("--port=99999",)])
def test_bad_port_flag_exits_64(reverb_cli, argv):
    r = reverb_cli("start", "--host", "127.0.0.1", *argv, timeout=10)
    assert r.returncode == 64, (r.returncode, r.stdout, r.stderr)
    assert '--port: "99999" is not a port number (0-65535).' in lines(r.stderr), r.stderr
    assert "Starting" not in r.stdout


def test_flag_error_beats_config_error_and_all_are_reported(reverb_cli):
    """§6.1: every problem is printed; exit 64 when one of them is in a flag."""
    r = reverb_cli("start", "--host", "127.0.0.1", "--port", "99999",
                   env=CREDS | {"REVERB_APP_PING_INTERVAL": "abc"}, timeout=10)
    assert r.returncode == 64, (r.returncode, r.stdout, r.stderr)
    err = lines(r.stderr)
    assert '--port: "99999" is not a port number (0-65535).' in err, r.stderr
    assert 'REVERB_APP_PING_INTERVAL: "abc" is not an integer >= 1.' in err, r.stderr


def test_missing_config_flag_file_exits_64(reverb_cli):
    r = reverb_cli(*START, "--config", "prod.json", timeout=10)
    assert r.returncode == 64, (r.returncode, r.stdout, r.stderr)
    assert '--config: "prod.json" does not exist.' in lines(r.stderr), r.stderr


# --------------------------------------------------------------------------------------------------
# Configuration errors: exit 78 (§6.5, §7)
# --------------------------------------------------------------------------------------------------


def test_bad_port_env_exits_78(reverb_cli):
    r = reverb_cli("start", "--host", "127.0.0.1", env={"REVERB_SERVER_PORT": "80a"}, timeout=10)
    assert r.returncode == 78, (r.returncode, r.stdout, r.stderr)
    assert 'REVERB_SERVER_PORT: "80a" is not a port number (0-65535).' in lines(r.stderr), r.stderr
    assert "Starting" not in r.stdout


def test_all_config_problems_reported_together(reverb_cli):
    r = reverb_cli("start", "--host", "127.0.0.1",
                   env=CREDS | {"REVERB_SERVER_PORT": "80a", "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "everyone"},
                   timeout=10)
    assert r.returncode == 78, (r.returncode, r.stdout, r.stderr)
    err = lines(r.stderr)
    assert 'REVERB_SERVER_PORT: "80a" is not a port number (0-65535).' in err, r.stderr
    assert 'REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM: "everyone" must be all, members or none.' in err, r.stderr


def test_malformed_config_file_exits_78_with_position(reverb_cli, tmp_path):
    cwd = tmp_path / "badconfig"
    (cwd / "config").mkdir(parents=True)
    # Line 3, column 3: `"apps"` where `,` or `}` is expected.
    (cwd / "config" / "reverb.json").write_text('{\n  "servers": {"reverb": {"port": 0}}\n  "apps": {}\n}\n')
    r = reverb_cli(*START, cwd=cwd, timeout=10)
    assert r.returncode == 78, (r.returncode, r.stdout, r.stderr)
    err = lines(r.stderr)
    located = [line for line in err if line.startswith("config/reverb.json:")]
    assert located, f"no `config/reverb.json:LINE:COL: ...` line in stderr:\n{r.stderr}"
    assert 'config/reverb.json:3:3: expected "," or "}".' in err, r.stderr


def test_dotenv_syntax_error_exits_78(reverb_cli, tmp_path):
    cwd = tmp_path / "badenv"
    cwd.mkdir()
    (cwd / ".env").write_text("# local settings\nREVERB_APP_KEY=abc\nREVERB_APP_ID=1 2\n")
    r = reverb_cli(*START, cwd=cwd, timeout=10)
    assert r.returncode == 78, (r.returncode, r.stdout, r.stderr)
    assert any(line.startswith(".env:3: unexpected whitespace in value") for line in lines(r.stderr)), r.stderr


# --------------------------------------------------------------------------------------------------
# Bind failure: exit 1 (§6.1)
# --------------------------------------------------------------------------------------------------


def test_busy_port_exits_1(reverb_cli):
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        r = reverb_cli("start", "--host", "127.0.0.1", "--port", port,
                       env=CREDS, timeout=15)
    finally:
        blocker.close()
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert f"Cannot listen on 127.0.0.1:{port}: Address already in use." in lines(r.stderr), r.stderr
    assert "Starting" not in r.stdout


# --------------------------------------------------------------------------------------------------
# reverb restart (§6.2)
# --------------------------------------------------------------------------------------------------


def test_restart_stops_running_server(reverb_server, reverb_cli, ws_client):
    server = reverb_server()
    restart_file = server.workdir / "restart"
    assert server.env["REVERB_RESTART_FILE"] == str(restart_file)
    ws = ws_client(server)
    time.sleep(0.2)  # let the server take its startup reading of the (absent) file
    before = time.time()
    r = reverb_cli("restart", env={"REVERB_RESTART_FILE": restart_file})
    assert (r.returncode, r.stdout) == (0, "   INFO  Broadcasting Reverb restart signal.\n"), r.stderr
    content = restart_file.read_text()
    m = re.fullmatch(r"(\d+)\.(\d+)\n", content)
    assert m, f"restart file content {content!r}, expected `<unix seconds>.<nanoseconds>\\n`"
    assert abs(int(m.group(1)) - before) < 5, content
    try:
        rc = server.proc.wait(8)
    except Exception:
        rc = None
    server.terminated = rc is not None
    assert rc == 0, f"server did not exit 0 within 8 s of `reverb restart` (rc={rc}); stdout={server.stdout_lines}"
    wait_until(lambda: server._reader.join(2) or not server._reader.is_alive(), message="stdout closed")
    assert f"   INFO  Stopping server on 127.0.0.1:{server.port}." in server.stdout_lines, server.stdout_lines
    # clients are disconnected, not left hanging
    code, _, _ = ws.expect_closed(timeout=3)
    assert code in (1001, None), code


def test_restart_with_other_file_does_not_stop_server(reverb_server, reverb_cli, tmp_path):
    server = reverb_server()
    r = reverb_cli("restart", env={"REVERB_RESTART_FILE": tmp_path / "someone-else.restart"})
    assert r.returncode == 0, r.stderr
    time.sleep(6)  # longer than one poll interval
    server.assert_healthy()


@pytest.mark.parametrize("where", ["parent-is-a-file", "parent-missing"])
def test_restart_unwritable_path_exits_1(reverb_cli, tmp_path, where):
    if where == "parent-is-a-file":
        not_a_dir = tmp_path / "plainfile"
        not_a_dir.write_text("x")
        target = not_a_dir / "restart"  # parent is a regular file: cannot be created
    else:
        target = tmp_path / "no-such-dir" / "restart"
    r = reverb_cli("restart", env={"REVERB_RESTART_FILE": target})
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    err = lines(r.stderr)
    prefix = f'Cannot write restart signal to "{target}": '
    matching = [line for line in err if line.startswith(prefix)]
    assert matching, f"expected a line starting with {prefix!r}; stderr={r.stderr!r}"
    line = matching[0]
    reason = line[len(prefix):]
    assert reason.endswith(".") and len(reason) > 1, line
    assert not reason.endswith(".."), f"doubled full stop in {line!r} (format is `<reason>.`)"
    assert "Broadcasting" not in r.stdout


# --------------------------------------------------------------------------------------------------
# events:trigger (§6.4)
# --------------------------------------------------------------------------------------------------


def test_trigger_delivers_exact_frame(server, ws_client, reverb_cli):
    ch = unique("orders.")
    ws = ws_client(server)
    ws.subscribe(ch)
    r = reverb_cli("events:trigger", ch, "App\\Events\\NewOrder", '{"id":42}', "--port", server.port,
                   env=app_env(server))
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.strip() == "{}", r.stdout
    assert ws.recv() == event_frame("App\\Events\\NewOrder", '{"id":42}', ch)


def test_trigger_default_data_is_empty_object(server, ws_client, reverb_cli):
    ch = unique("default-data-")
    ws = ws_client(server)
    ws.subscribe(ch)
    r = reverb_cli("events:trigger", ch, "Ping", "--port", server.port, env=app_env(server))
    assert r.returncode == 0, r.stderr
    assert ws.recv() == event_frame("Ping", "{}", ch)


def test_trigger_data_from_stdin(server, ws_client, reverb_cli):
    ch = unique("stdin-")
    ws = ws_client(server)
    ws.subscribe(ch)
    r = reverb_cli("events:trigger", ch, "FromStdin", "-", "--port", server.port, env=app_env(server),
                   input='{"a": [1, 2]}')
    assert r.returncode == 0, r.stderr
    frame = json.loads(ws.recv())
    assert (frame["event"], frame["channel"]) == ("FromStdin", ch), frame
    assert json.loads(frame["data"]) == {"a": [1, 2]}, frame


def test_trigger_wrong_secret_exits_1(server, ws_client, reverb_cli):
    ch = unique("secret-")
    ws = ws_client(server)
    ws.subscribe(ch)
    env = app_env(server) | {"REVERB_APP_SECRET": "not-the-secret"}
    r = reverb_cli("events:trigger", ch, "Nope", '{}', "--port", server.port, env=env)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert lines(r.stderr) == ["HTTP 401: Authentication signature invalid."], r.stderr
    assert r.stdout == ""
    ws.expect_silence(0.4)


def test_trigger_unreachable_exits_1(reverb_cli):
    # Bound but not listening, and held for the whole test: connections are refused, and no other
    # process can take the port meanwhile.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        r = reverb_cli("events:trigger", "ch", "ev", '{}', "--port", port, "--timeout", "3",
                       env=CREDS)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    err = lines(r.stderr)
    assert len(err) == 1 and err[0].startswith(f"Could not reach http://127.0.0.1:{port}: "), r.stderr
    assert err[0].endswith(".") and not err[0].endswith(".."), err[0]


def test_trigger_invalid_json_data_exits_64(server, ws_client, reverb_cli):
    ch = unique("oops-")
    ws = ws_client(server)
    ws.subscribe(ch)
    r = reverb_cli("events:trigger", ch, "Bad", "{oops", "--port", server.port, env=app_env(server))
    assert r.returncode == 64, (r.returncode, r.stdout, r.stderr)
    assert 'DATA: "{oops" is not valid JSON.' in lines(r.stderr), r.stderr
    ws.expect_silence(0.4)


def test_trigger_bad_scheme_exits_64(reverb_cli):
    r = reverb_cli("events:trigger", "ch", "ev", "--scheme", "ftp",
                   env=CREDS)
    assert r.returncode == 64, (r.returncode, r.stdout, r.stderr)
    assert '--scheme: "ftp" must be http or https.' in lines(r.stderr), r.stderr


def test_trigger_comma_separated_channels(server, ws_client, reverb_cli):
    chans = [unique("multi-a-"), unique("multi-b-"), unique("multi-c-")]
    clients = []
    for ch in chans:
        ws = ws_client(server)
        ws.subscribe(ch)
        clients.append(ws)
    r = reverb_cli("events:trigger", ",".join(chans), "Fanout", '{"n":1}', "--port", server.port,
                   env=app_env(server))
    assert r.returncode == 0, r.stderr
    for ws, ch in zip(clients, chans):
        assert ws.recv() == event_frame("Fanout", '{"n":1}', ch)
        ws.expect_silence(0.2)


def test_trigger_socket_id_excludes_sender(server, ws_client, reverb_cli):
    ch = unique("exclude-")
    a, b = ws_client(server), ws_client(server)
    a.subscribe(ch)
    b.subscribe(ch)
    r = reverb_cli("events:trigger", ch, "Excluded", '{}', "--port", server.port, "--socket-id", a.socket_id,
                   env=app_env(server))
    assert r.returncode == 0, r.stderr
    assert b.recv() == event_frame("Excluded", "{}", ch)
    a.expect_silence(0.4)


def test_trigger_info_prints_response_body(server, ws_client, reverb_cli):
    ch = unique("info-")
    ws = ws_client(server)
    ws.subscribe(ch)
    r = reverb_cli("events:trigger", ch, "Info", '{}', "--port", server.port, "--info", "subscription_count",
                   env=app_env(server))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"channels": {ch: {"subscription_count": 1}}}, r.stdout
    assert ws.recv() == event_frame("Info", "{}", ch)


def test_trigger_reads_target_port_from_server_config(server, ws_client, reverb_cli):
    """Without --port and without REVERB_HOST, the target is the server host/port from the same sources."""
    ch = unique("cfgport-")
    ws = ws_client(server)
    ws.subscribe(ch)
    env = app_env(server) | {"REVERB_SERVER_PORT": str(server.port), "REVERB_SERVER_HOST": "0.0.0.0"}
    r = reverb_cli("events:trigger", ch, "Targeted", env=env)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert ws.recv() == event_frame("Targeted", "{}", ch)


# --------------------------------------------------------------------------------------------------
# Working-directory sources: .env (§2) and config/reverb.json (§3)
# --------------------------------------------------------------------------------------------------

NO_ENV_APP = {"REVERB_APP_ID": None, "REVERB_APP_KEY": None, "REVERB_APP_SECRET": None}


def test_dotenv_in_working_directory(reverb_server, ws_client, tmp_path):
    cwd = tmp_path / "dotenv"
    cwd.mkdir()
    (cwd / ".env").write_text(
        "# Laravel-style .env\n"
        "APP_NAME=Laravel\n"
        "\n"
        "export REVERB_APP_ID=777001\n"
        "REVERB_APP_KEY=envkey # the key\n"
        'REVERB_APP_SECRET="s3cr#t ${APP_NAME}"   # quoted: the # is part of the value\n'
        "REVERB_APP_ACTIVITY_TIMEOUT=17\n"
        "VITE_REVERB_APP_KEY=\"${REVERB_APP_KEY}\"\n"
    )
    server = reverb_server(workdir=cwd, env=NO_ENV_APP)
    server.app_id, server.key, server.secret = "777001", "envkey", "s3cr#t Laravel"
    wait_until(lambda: serving_line("777001", "envkey") in server.stdout_lines,
               message=f"{serving_line('777001', 'envkey')!r} in {server.stdout_lines}")
    assert not any("s3cr" in line for line in server.stdout_lines), server.stdout_lines
    ws = ws_client(server)
    assert json.loads(json.loads(ws.established_frame)["data"])["activity_timeout"] == 17, ws.established_frame
    # the secret, with its `#` and interpolation, signs a private channel and an HTTP API call
    ch = unique("private-env-")
    subscribe_private(ws, server, ch)
    body = compact({"name": "E", "data": "{}", "channel": ch}).encode()
    status, _, reply = signed_http(server, "POST", "/apps/777001/events", body)
    assert (status, reply) == (200, b"{}")
    assert ws.recv() == event_frame("E", "{}", ch)


def test_process_environment_beats_dotenv(reverb_server, ws_client, tmp_path):
    cwd = tmp_path / "dotenv-precedence"
    cwd.mkdir()
    (cwd / ".env").write_text("REVERB_APP_ACTIVITY_TIMEOUT=17\nREVERB_APP_PING_INTERVAL=5\n")
    server = reverb_server(workdir=cwd, activity_timeout=23)
    ws = ws_client(server)
    assert json.loads(json.loads(ws.established_frame)["data"])["activity_timeout"] == 23, ws.established_frame


def test_config_file_in_working_directory_with_two_apps(reverb_server, ws_client, tmp_path):
    cwd = tmp_path / "cfg"
    (cwd / "config").mkdir(parents=True)
    apps = [
        {"app_id": "310001", "key": "cfg-key-one", "secret": "cfg-secret-one", "activity_timeout": 41},
        {"app_id": 310002, "key": "cfg-key-two", "secret": "cfg-secret-two"},  # numeric id -> "310002"
    ]
    (cwd / "config" / "reverb.json").write_text(json.dumps({"apps": {"provider": "config", "apps": apps}}))
    server = reverb_server(workdir=cwd, env=NO_ENV_APP)
    expected = [serving_line("310001", "cfg-key-one"), serving_line("310002", "cfg-key-two")]
    wait_until(lambda: all(line in server.stdout_lines for line in expected),
               message=f"{expected} in {server.stdout_lines}")
    serving = [line for line in server.stdout_lines if "Serving app" in line]
    assert serving == expected, server.stdout_lines
    assert not any("cfg-secret" in line for line in server.stdout_lines)
    one = ws_client(server, key="cfg-key-one")
    two = ws_client(server, key="cfg-key-two")
    assert json.loads(json.loads(one.established_frame)["data"])["activity_timeout"] == 41
    assert json.loads(json.loads(two.established_frame)["data"])["activity_timeout"] == 30
