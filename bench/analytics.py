"""Search latency of ``kb serve`` with search insights recording on vs off, in the same run.

Two servers on the same index (``kb serve --workers 2`` each, 127.0.0.1): one with
``KB_ANALYTICS=0``, one recording into a fresh SQLite file (or ``--store postgresql://...``).
Many short rounds alternate which server goes first (so both see the same noise from whatever
else runs on the machine); each round sends ``--requests`` searches of the query mix (``/api/search``, per_page=10) from ``--concurrency`` keep-alive clients.  Prints p50/p95 of
each and the ratio of the p50s (target: on <= 1.10 x off), and checks that the recording server
recorded every search it answered.  Usage::

    python bench/analytics.py --index /tmp/idx-main [--requests 250] [--concurrency 8] [--rounds 24]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != Path(_here)]
    sys.path.insert(0, str(Path(_here).parent))

import argparse
import http.client
import os
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import numpy as np

from bench.common import PYTHON, QUERY_MIX, free_port, kill_group, log  # noqa: E402

TARGET_RATIO = 1.10


def start(index: str, env: dict) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([PYTHON, "-m", "kb", "serve", "--index", index, "--port", str(port), "--workers", "2"],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    kill_group(proc)
    raise SystemExit("kb serve did not start")


def urls() -> list[str]:
    return ["/api/search?" + urlencode({**q, "per_page": 10}) for q in QUERY_MIX]


def load(port: int, paths: list[str], n: int, concurrency: int) -> list[float]:
    """Latencies (ms) of ``n`` GETs cycling through ``paths``, over keep-alive connections."""
    lock = threading.Lock()
    counter = iter(range(n))
    out: list[float] = []

    def client(_):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            started = time.perf_counter()
            conn.request("GET", paths[i % len(paths)])
            res = conn.getresponse()
            res.read()
            mine.append((time.perf_counter() - started) * 1000)
            if res.status != 200:
                raise SystemExit(f"HTTP {res.status} for {paths[i % len(paths)]}")
        conn.close()
        with lock:
            out.extend(mine)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(client, range(concurrency)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", required=True, help="An index directory (only read).")
    parser.add_argument("--requests", type=int, default=250, help="Searches per server per round.")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=24,
                        help="Rounds; short ones, alternating, so both servers see the same noise of a shared machine.")
    parser.add_argument("--store", default="", help="postgresql://... to record there instead of SQLite.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kb-bench-analytics-") as work:
        db = os.path.join(work, "analytics.sqlite")
        on_env = {"KB_ANALYTICS": "1", **({"KB_ANALYTICS_URL": args.store} if args.store else {"KB_ANALYTICS_DB": db})}
        servers = {"off": start(args.index, {"KB_ANALYTICS": "0"}), "on": start(args.index, on_env)}
        try:
            paths = urls()
            for _name, (_proc, port) in servers.items():  # warm up: every URL per worker
                load(port, paths, len(paths) * 4, 2)
            lat: dict[str, list[float]] = {"off": [], "on": []}
            for r in range(args.rounds):
                order = ("off", "on") if r % 2 == 0 else ("on", "off")
                for name in order:
                    lat[name] += load(servers[name][1], paths, args.requests, args.concurrency)
                if (r + 1) % 6 == 0:
                    log(f"round {r + 1}: p50 off {np.percentile(lat['off'], 50):.2f} ms, "
                    f"on {np.percentile(lat['on'], 50):.2f} ms")
        finally:
            for proc, _port in servers.values():
                kill_group(proc)  # SIGTERM: the workers write what is pending before they exit
        recorded = None
        if not args.store:
            import sqlite3

            with sqlite3.connect(db) as conn:
                recorded = conn.execute("SELECT COUNT(*) FROM kb_searches").fetchone()[0]
    p = {name: (float(np.percentile(v, 50)), float(np.percentile(v, 95))) for name, v in lat.items()}
    ratio = p["on"][0] / p["off"][0]
    sent = args.rounds * args.requests + len(paths) * 4
    print(f"\nsearch latency, {args.rounds} x {args.requests} requests each, {args.concurrency} clients, "
          f"2 workers per server, index {args.index}")
    print(f"  recording off: p50 {p['off'][0]:.2f} ms  p95 {p['off'][1]:.2f} ms")
    print(f"  recording on:  p50 {p['on'][0]:.2f} ms  p95 {p['on'][1]:.2f} ms  "
          f"({'PostgreSQL' if args.store else 'SQLite'} store)")
    print(f"  p50 on/off: {ratio:.3f} (target <= {TARGET_RATIO}) {'PASS' if ratio <= TARGET_RATIO else 'FAIL'}")
    if recorded is not None:
        print(f"  searches recorded: {recorded} of {sent} sent {'PASS' if recorded == sent else 'FAIL'}")
    return 0 if ratio <= TARGET_RATIO and recorded in (None, sent) else 1


if __name__ == "__main__":
    raise SystemExit(main())
