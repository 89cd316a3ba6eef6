#!/usr/bin/env python3
"""Log line to alert, in the embedded demo: the 99th percentile latency.

Starts `watchhouse demo` (release build, embedded SQLite, its simulator running), then for N
fresh sources sends a 10-port scan as RFC 5424 UFW lines over UDP to Riverside's collector, one
source every INTERVAL seconds, and polls the hub's API every 25 ms for the `port_scan` alert
about each source. Latency: from sending the line that crosses the threshold to the alert being
readable over HTTP. Prints the distribution.

    bench/alert-latency.py [N] [INTERVAL]      (defaults: 200 sources, 0.2 s apart)
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
interval = float(sys.argv[2]) if len(sys.argv) > 2 else 0.2
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=root, check=True)
exe = os.path.join(root, "target", "release", "watchhouse")
work = tempfile.mkdtemp()
creds_path = os.path.join(work, "creds.json")
demo = subprocess.Popen(
    [exe, "demo", "--data-dir", os.path.join(work, "data"), "--listen", "127.0.0.1:0",
     "--credentials-file", creds_path],
    stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "demo.err"), "w"))
try:
    for _ in range(200):
        if os.path.exists(creds_path) and os.path.getsize(creds_path) > 0:
            break
        time.sleep(0.1)
    creds = json.load(open(creds_path))
    url = creds["url"]
    col = creds["collectors"][0]
    member = col["member_id"]
    host, port = col["udp"].rsplit(":", 1)
    target = col["target"]
    out = subprocess.run([exe, "admin", "--data-dir", os.path.join(work, "data"), "api-token", "create",
                          "--email", "analyst@watchhouse.example", "--name", "bench"],
                         capture_output=True, text=True, check=True).stdout
    token = out.split(": ", 1)[1].split()[0]

    sent = {}      # source -> time the crossing line was sent
    seen = {}      # source -> time the alert was first read
    done = threading.Event()

    def poll():
        req = urllib.request.Request(f"{url}/api/v1/members/{member}/alerts?limit=1000",
                                     headers={"Authorization": f"Bearer {token}"})
        while not done.is_set():
            t = time.monotonic()
            alerts = json.load(urllib.request.urlopen(req))["alerts"]
            for a in alerts:
                ip = a["subject_ip"]
                if a["kind"] == "port_scan" and ip in sent and ip not in seen:
                    seen[ip] = t
            time.sleep(0.025)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(n):
        src = f"45.33.{100 + i // 250}.{1 + i % 250}"
        for p in range(10):
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%03dZ" % (int(time.time() * 1000) % 1000)
            line = (f"<4>1 {ts} fw-riverside kernel - - - [UFW BLOCK] IN=eth0 OUT= "
                    f"MAC=00:00:00:00:00:00:00:00:00:00:00:00:08:00 SRC={src} DST={target} LEN=44 TOS=0x00 "
                    f"PREC=0x00 TTL=49 ID={i} PROTO=TCP SPT=40000 DPT={1000 + p} WINDOW=1024 RES=0x00 SYN URGP=0")
            sock.sendto(line.encode(), (host, int(port)))
        sent[src] = time.monotonic()
        time.sleep(interval)
    deadline = time.monotonic() + 30
    while len(seen) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    done.set()
    lat = sorted(seen[s] - sent[s] for s in seen)
    missing = n - len(lat)
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
    print(f"sources: {n}, alerts read: {len(lat)}, missing after 30 s: {missing}")
    print(f"latency (s): min {lat[0]:.3f}  median {pct(0.5):.3f}  p90 {pct(0.9):.3f}  "
          f"p99 {pct(0.99):.3f}  max {lat[-1]:.3f}")
    sys.exit(1 if missing else 0)
finally:
    demo.terminate()
    demo.wait()
