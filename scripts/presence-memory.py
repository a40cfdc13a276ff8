"""RSS of a presence channel with N members of S bytes of channel_data each (single node).

Usage: .venv/bin/python scripts/presence-memory.py BINARY MEMBERS CHANNEL_DATA_BYTES PORT
Prints one JSON line: RSS before and after MEMBERS clients joined one presence channel. Each client
reads everything it is sent, so output buffers do not count.
"""
import asyncio, hashlib, hmac, json, os, subprocess, sys, time
import websockets

BIN, N, SIZE, PORT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
KEY, SECRET = "mem-key", "mem-secret"

def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])  # KiB

async def member(i, joined, done):
    ws = await websockets.connect(f"ws://127.0.0.1:{PORT}/app/{KEY}?protocol=7", max_size=2**28, ping_interval=None, compression=None)
    sid = json.loads(json.loads(await ws.recv())["data"])["socket_id"]
    info = "x" * max(0, SIZE - 40)
    cd = json.dumps({"user_id": i, "user_info": {"n": info}}, separators=(",", ":"))
    sig = hmac.new(SECRET.encode(), f"{sid}:presence-mem:{cd}".encode(), hashlib.sha256).hexdigest()
    await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "presence-mem", "auth": f"{KEY}:{sig}", "channel_data": cd}}))
    while True:
        m = json.loads(await ws.recv())
        if m["event"] == "pusher_internal:subscription_succeeded":
            break
    joined.set()
    async def drain():
        try:
            async for _ in ws:
                pass
        except Exception:
            pass
    asyncio.create_task(drain())
    await done.wait()
    return ws

async def main():
    env = dict(os.environ, REVERB_APP_ID="1", REVERB_APP_KEY=KEY, REVERB_APP_SECRET=SECRET, REVERB_APP_MAX_MESSAGE_SIZE="0")
    proc = subprocess.Popen([BIN, "start", "--host", "127.0.0.1", "--port", str(PORT)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    before = rss(proc.pid)
    done = asyncio.Event()
    tasks = []
    start = time.monotonic()
    for i in range(N):
        joined = asyncio.Event()
        tasks.append(asyncio.create_task(member(i, joined, done)))
        await joined.wait()
    took = time.monotonic() - start
    await asyncio.sleep(2)
    after = rss(proc.pid)
    print(json.dumps({"members": N, "channel_data_bytes": SIZE, "rss_before_kib": before, "rss_after_kib": after,
                      "delta_kib": after - before, "join_seconds": round(took, 2)}))
    done.set()
    proc.terminate(); proc.wait()

asyncio.run(main())
