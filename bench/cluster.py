"""Searches through the local cluster (deploy/local-cluster) while replicas die and restart.

``deploy/local-cluster up`` (nginx, three ``kb serve`` replicas with their ``kb sync``, PostgreSQL),
then ``--clients`` threads search through nginx for ``--duration`` seconds over keep-alive
connections while, at fixed shares of the run, replica 1's ``kb serve`` is killed with SIGKILL
(its whole process group: master and workers, as when a machine dies), replica 2 is restarted with
SIGTERM (``local-cluster restart 2``: it finishes its in-flight requests, then starts again on the
same port and index) and replica 1 is started again.  Every answer other than a 200 with a JSON
body, and every connection error, counts as a failure at the client.  Then ``down``.  Usage::

    python bench/cluster.py [--duration 60] [--clients 8] [--articles DIR] [--workers 1]

tests/test_cluster.py drives the same :class:`LocalCluster` and :func:`run_load` for 30 s.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # run as a script or loaded by path (the tests): import from the repository root, never from
    # bench/ itself (bench/http.py would shadow the standard library's http package)
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != Path(_here)]
    sys.path.insert(0, str(Path(_here).parent))

import argparse
import http.client
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from bench.common import PYTHON, ROOT, command_line, fmt_ms, load_queries, log, machine, percentiles, save, table

SCRIPT = ROOT / "deploy" / "local-cluster"


class LocalCluster:
    """``deploy/local-cluster`` driven from Python, with its state in ``state``; ``down`` runs on
    leaving the ``with`` block whatever happened."""

    def __init__(self, state: Path, *up_args: str, python: str = PYTHON, timeout: float = 600):
        self.state = Path(state)
        self.up_args = up_args
        self.python = python
        self.timeout = timeout
        self.url = self.articles = ""
        self.cfg: dict = {}
        self.output = ""

    def script(self, *args: str, timeout: float | None = None) -> str:
        result = subprocess.run([self.python, str(SCRIPT), "--dir", str(self.state), *args], capture_output=True,
                                text=True, timeout=timeout or self.timeout)
        if result.returncode != 0:
            raise RuntimeError(f"local-cluster {' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def up(self) -> None:
        self.output = self.script("up", *self.up_args)
        last = self.output.strip().splitlines()[-2:]
        self.url = last[0].removeprefix("URL=")
        self.articles = last[1].removeprefix("ARTICLES=")
        self.cfg = json.loads((self.state / "cluster.json").read_text())

    def down(self) -> str:
        return self.script("down", timeout=180)

    def replica_urls(self) -> list[str]:
        return [r["url"] for r in self.cfg["replicas"]]

    def serve_pid(self, n: int) -> int:
        return int((self.state / f"replica-{n}" / "serve.pid").read_text())

    def kill(self, n: int, sig: int = signal.SIGKILL) -> None:
        """Signal replica ``n``'s ``kb serve`` process group (master and workers)."""
        os.killpg(self.serve_pid(n), sig)

    def restart(self, n: int) -> None:
        self.script("restart", str(n), timeout=180)

    def __enter__(self) -> LocalCluster:
        try:
            self.up()
        except BaseException:
            self.down()  # `up` cleans up after itself; this covers a timeout of the script itself
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.down()


@dataclass
class LoadResult:
    """What the clients saw: one latency per request, and every failure with what it was."""

    duration: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)
    events: list[tuple[float, str]] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + sum(self.failures.values())


def search_paths(per_page: int = 10) -> list[str]:
    """The fixed query mix of the benchmarks, as API paths."""
    return ["/api/search?" + urlencode(q.params(per_page)) for q in load_queries(dev=False)]


def _client(url: str, paths: list[str], offset: int, deadline: float, result: LoadResult,
            lock: threading.Lock) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    i = offset
    while time.monotonic() < deadline:
        path = paths[i % len(paths)]
        i += 1
        started = time.perf_counter()
        try:
            conn.request("GET", path)
            res = conn.getresponse()
            body = res.read()
            outcome = None if res.status == 200 and body.startswith(b"{") else f"HTTP {res.status}"
        except (OSError, http.client.HTTPException) as exc:
            outcome = type(exc).__name__
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        took = (time.perf_counter() - started) * 1000
        with lock:
            if outcome is None:
                result.latencies_ms.append(took)
            else:
                result.failures[outcome] += 1
    conn.close()


def run_load(url: str, paths: list[str], clients: int, duration: float,
             events: list[tuple[float, str, Callable[[], None]]] = ()) -> LoadResult:
    """``clients`` threads searching ``url`` for ``duration`` seconds; each event ``(at, name,
    action)`` runs in this thread ``at`` seconds into the run (actions may block)."""
    result, lock = LoadResult(), threading.Lock()
    start = time.monotonic()
    deadline = start + duration
    threads = [threading.Thread(target=_client, args=(url, paths, k * 7, deadline, result, lock), daemon=True)
               for k in range(clients)]
    for t in threads:
        t.start()
    try:
        for at, name, action in sorted(events, key=lambda e: e[0]):
            time.sleep(max(0.0, start + at - time.monotonic()))
            action()
            result.events.append((round(time.monotonic() - start, 2), name))
    finally:
        for t in threads:
            t.join(duration + 120)
    result.duration = time.monotonic() - start
    return result


def chaos(cluster: LocalCluster, duration: float) -> list[tuple[float, str, Callable[[], None]]]:
    """Replica 1 SIGKILLed at a quarter of the run, replica 2 restarted with SIGTERM at half of it,
    replica 1 started again at 70%; each event is logged with the time it finished."""
    return [
        (duration * 0.25, "replica 1 killed (SIGKILL)", lambda: cluster.kill(1)),
        (duration * 0.5, "replica 2 restarted (SIGTERM, ready again)", lambda: cluster.restart(2)),
        (duration * 0.7, "replica 1 started again (ready)", lambda: cluster.restart(1)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--articles", help="articles to seed the cluster with (default: kb's bundled sample)")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers per replica")
    parser.add_argument("--no-chaos", action="store_true", help="no kill and no restart: the cluster's throughput")
    parser.add_argument("--json", dest="json_out", help="also write the full results here")
    args = parser.parse_args()
    up_args = ["--workers", str(args.workers)] + (["--articles", args.articles] if args.articles else [])
    paths = search_paths()
    with tempfile.TemporaryDirectory(prefix="kb-bench-cluster-") as tmp:
        log("starting the local cluster")
        with LocalCluster(Path(tmp) / "state", *up_args) as cluster:
            log(f"cluster up at {cluster.url}; warming up")
            run_load(cluster.url, paths, 1, 3)
            log(f"{args.clients} clients for {args.duration:.0f} s")
            result = run_load(cluster.url, paths, args.clients, args.duration,
                              [] if args.no_chaos else chaos(cluster, args.duration))
    stats = percentiles(result.latencies_ms)
    failures = sum(result.failures.values())
    data = {"command": command_line(), "machine": machine(), "requests": result.requests, "failures": failures,
            "failure_kinds": dict(result.failures), "events": result.events, "duration_s": result.duration,
            "rps": result.requests / result.duration, "latency_ms": stats}
    path = save("cluster", data, args.json_out)
    print(f"\n{data['command']}\n")
    print(table(["requests", "failed", "req/s", "p50", "p95", "p99"],
                [[f"{result.requests:,}", f"**{failures}**", f"{data['rps']:,.0f}", fmt_ms(stats["p50"]),
                  fmt_ms(stats["p95"]), fmt_ms(stats["p99"])]]))
    for at, name in result.events:
        print(f"- {at:5.1f} s: {name}")
    if result.failures:
        print(f"\nfailures: {dict(result.failures)}")
    print(f"\nmachine: {json.dumps(data['machine'])}\nfull results: {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
