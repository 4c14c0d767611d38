"""Slow clients against ``kb serve``: do they starve normal searches?

Opens ``--connections`` connections that each send a request head one header line every
``--interval`` seconds (a slowloris; a connection the server drops is reopened, so that many stay
open throughout), and meanwhile sends a normal search every 0.2 s on fresh connections, timing
each answer.  Prints the latency of the normal searches and how many failed or took over 1 s.

    python bench/slow_clients.py --index DIR [--workers 2] [--connections 50] [--seconds 30]
    python bench/slow_clients.py --url http://127.0.0.1:5000/     # a server already running
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # run as a script: never import from bench/ itself (bench/http.py would shadow the standard
    # library's http package)
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != _here]

import argparse
import http.client
import re
import socket
import subprocess
import threading
import time
from urllib.parse import urlsplit


def slow_client(host: str, port: int, stop: threading.Event, interval: float, opened: list) -> None:
    """Hold one slow connection open until ``stop``, reopening it when the server drops it."""
    while not stop.is_set():
        try:
            with socket.create_connection((host, port), timeout=5) as sock:
                opened.append(1)
                sock.sendall(b"GET /?q=slow HTTP/1.1\r\nHost: localhost\r\n")
                n = 0
                while not stop.wait(interval):
                    sock.sendall(b"X-Slow-%d: 1\r\n" % n)
                    n += 1
        except OSError:
            stop.wait(0.05)  # dropped by the server (as it should): come back


def probe(host: str, port: int, stop: threading.Event, latencies: list, failures: list) -> None:
    """A normal search every 0.2 s until ``stop``."""
    while not stop.wait(0.2):
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", "/api/search?q=vm+stuck+on+starting+windows")
            res = conn.getresponse()
            res.read()
            conn.close()
            if res.status != 200:
                failures.append(f"status {res.status}")
        except OSError as exc:
            failures.append(repr(exc))
        latencies.append(time.perf_counter() - started)


def run(url: str, connections: int, seconds: float, interval: float = 2.0) -> dict:
    """Hold ``connections`` slow clients for ``seconds`` against ``url``; time normal searches."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port
    stop = threading.Event()
    latencies: list[float] = []
    failures: list[str] = []
    opened: list[int] = []
    threads = [threading.Thread(target=slow_client, args=(host, port, stop, interval, opened), daemon=True)
               for _ in range(connections)]
    for t in threads:
        t.start()
    time.sleep(min(1.0, seconds / 4))  # let the slow clients connect first
    prober = threading.Thread(target=probe, args=(host, port, stop, latencies, failures), daemon=True)
    prober.start()
    time.sleep(seconds)
    stop.set()
    prober.join(15)
    for t in threads:
        t.join(10)
    latencies.sort()
    return {
        "searches": len(latencies),
        "failed": len(failures),
        "failures": failures[:5],
        "over_1s": sum(1 for x in latencies if x > 1.0),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1) if latencies else None,
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "slow_connections_opened": len(opened),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", help="index directory to serve with `kb serve` (started and stopped here)")
    ap.add_argument("--url", help="a server already running instead")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between header lines")
    args = ap.parse_args()
    if not args.url and not args.index:
        ap.error("give --index or --url")
    proc = None
    url = args.url
    if not url:
        proc = subprocess.Popen([sys.executable, "-m", "kb", "serve", "--index", args.index, "--port", "0",
                                 "--workers", str(args.workers)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            m = re.search(r"kb: serving \d+ articles at (http://\S+/)", line)
            if m:
                url = m.group(1)
                break
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
    try:
        result = run(url, args.connections, args.seconds, args.interval)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
    print(f"{args.connections} slow connections for {args.seconds:g} s against {url}:")
    for key, value in result.items():
        print(f"  {key}: {value}")
    ok = result["failed"] == 0 and result["over_1s"] == 0 and result["searches"] > 0
    print("PASS: every normal search answered within 1 s" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
