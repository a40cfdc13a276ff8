# Sourced by the bench scripts: starts release swift-reverb nodes on free ports.
# Needs `reverb` (the binary), `workdir` (logs go there) and the array `pids` (each node is added).

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server NAME [VAR=value ...]: starts a node with that environment; sets server_pid and server_url.
start_server() {
    local name=$1
    shift
    env "$@" "$reverb" start --host 127.0.0.1 --port 0 >"$workdir/$name.log" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    local port=""
    for _ in $(seq 100); do
        port=$(sed -n 's/.*INFO  Starting server on 127\.0\.0\.1:\([0-9]*\)\..*/\1/p' "$workdir/$name.log" 2>/dev/null || true)
        [[ -n $port ]] && break
        sleep 0.1
    done
    if [[ -z $port ]]; then
        echo "reverb ($name) did not start:" >&2
        cat "$workdir/$name.log" >&2
        exit 1
    fi
    server_url="http://127.0.0.1:$port"
}
