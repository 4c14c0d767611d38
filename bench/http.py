"""HTTP latency and throughput of ``kb serve`` (gunicorn, its production server) under load, vs naive Whoosh.

For each server, on 127.0.0.1 only:

1. start it (``kb serve --index DIR --host 127.0.0.1 --port N --workers 2``; the naive baseline is
   a minimal Flask app under gunicorn with the same settings: sync workers, access log on) and
   time from process start to its first successful ``GET /api/search`` (target <= 1 s);
2. warm up: every URL of the query mix once per worker, one at a time;
3. load: ``wrk`` for ``--duration`` seconds with ``--concurrency`` open connections, cycling
   through the URLs (dev queries + the fixed mix, some with service/tag filters, per_page=10);
   requests/s, latency p50/p95/p99 (wrk's own histogram), socket errors and non-2xx answers;
4. memory per worker (VmRSS and PSS of the gunicorn workers, i.e. the master's children) before
   and after the load;
5. stop the server (SIGTERM to its process group, SIGKILL after 10 s), whatever happened.

The load generator runs on the same machine and takes CPU from the servers; that is part of the
figure.  Usage::

    python bench/http.py --index ./index [--duration 20] [--concurrency 16]

Needs ``wrk`` (``apt-get install -y wrk``).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # run as a script: import from the repository root, and never from bench/ itself (bench/http.py
    # would shadow the standard library's http package)
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != Path(_here)]
    sys.path.insert(0, str(Path(_here).parent))

import argparse
import http.client
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

from bench.common import (  # noqa: E402
    PYTHON, ROOT, add_common_args, add_index_args, indexes_for, report, drift_warning, index_format_problem, children, command_line, fmt_mb, fmt_ms, fmt_s, free_port,
    kill_group, load_queries, log, machine, percentiles, pss_kb, rss_kb, verdict, workspace,
)

HOST = "127.0.0.1"  # loopback only, always
TARGET_RPS = 300.0
TARGET_P99_MS = 100.0
TARGET_FIRST_SEARCH_S = 1.0
PROBE_QUERY = "vm wont start"

WRK_LUA = r"""
local paths = {
%(paths)s
}
local counter = 0
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  counter = (id or 0) * 17
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%%d,"duration_us":%%d,"bytes":%%d,"connect":%%d,"read":%%d,"write":%%d,"status":%%d,' ..
    '"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p95_us":%%d,"p99_us":%%d,"max_us":%%d,"mean_us":%%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def search_paths(per_page: int = 10) -> list[str]:
    return ["/api/search?" + urlencode(q.params(per_page)) for q in load_queries()]


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def worker_memory(master: int) -> dict:
    workers = children(master)
    rss = [rss_kb(p) for p in workers]
    pss = [pss_kb(p) for p in workers]
    return {
        "workers": len(workers),
        "master_rss_mb": (rss_kb(master) or 0) / 1024,
        "worker_rss_mb": [round((x or 0) / 1024, 1) for x in rss],
        "worker_pss_mb": [round((x or 0) / 1024, 1) for x in pss],
    }


def run_wrk(base: str, paths: list[str], work: Path, duration: float, concurrency: int, threads: int) -> dict:
    script = work / "paths.lua"
    script.write_text(WRK_LUA % {"paths": ",\n".join(json.dumps(p) for p in paths)})
    argv = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{int(duration)}s", "--timeout", "5s", "-s", str(script),
            base]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            r = json.loads(line)
            secs = r["duration_us"] / 1e6
            return {
                "argv": argv, "requests": r["requests"], "seconds": secs,
                "rps": r["requests"] / secs if secs else 0.0,
                "p50_ms": r["p50_us"] / 1000, "p90_ms": r["p90_us"] / 1000, "p95_ms": r["p95_us"] / 1000,
                "p99_ms": r["p99_us"] / 1000, "max_ms": r["max_us"] / 1000, "mean_ms": r["mean_us"] / 1000,
                "errors": {k: r[k] for k in ("connect", "read", "write", "timeout")},
                "non_2xx": r["status"], "mb_per_s": r["bytes"] / 2**20 / secs if secs else 0.0,
            }
    raise RuntimeError(f"wrk gave no report (rc={proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def bench_server(name: str, argv: list[str], env: dict, port: int, work: Path, args) -> dict:
    """Start one server, time its first search, load it, measure its workers; always stop it."""
    base = f"http://{HOST}:{port}"
    paths = search_paths()
    logfile = work / f"{name}-server.log"
    out: dict = {"name": name, "argv": argv, "log": str(logfile)}
    with open(logfile, "wb") as logfh:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=logfh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            probe = f"{base}/api/search?" + urlencode({"q": PROBE_QUERY, "per_page": 10})
            deadline = started + args.startup_timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} server exited with {proc.returncode} before answering; "
                                       f"see {logfile}:\n{logfile.read_text()[-3000:]}")
                try:
                    status, _ = _get(probe, timeout=5)
                    if status == 200:
                        out["first_search_s"] = time.perf_counter() - started
                        break
                except (urllib.error.URLError, http.client.HTTPException, OSError):
                    pass  # not listening yet, or not answering yet
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{name} server gave no search answer within {args.startup_timeout} s; "
                                       f"see {logfile}")
                time.sleep(0.02)
            status, body = _get(f"{base}/healthz")
            out["healthz"] = json.loads(body) if status == 200 else {"status": status}
            log(f"{name}: first search {out['first_search_s']:.2f} s after start; healthz {out['healthz']}")

            # warm-up: each URL once per worker (the workers share the load between them)
            # (timed: one request at a time is the latency without any queueing)
            t = time.perf_counter()
            bad = 0
            seq_ms: list[float] = []
            for _ in range(args.workers):
                for pth in paths:
                    t1 = time.perf_counter()
                    try:
                        status, _ = _get(base + pth, timeout=30)
                    except (urllib.error.URLError, http.client.HTTPException, OSError):
                        status = -1
                    seq_ms.append((time.perf_counter() - t1) * 1000)
                    bad += status != 200
                    if time.perf_counter() - t > args.warmup_limit:
                        break
            out["warmup"] = {"seconds": time.perf_counter() - t, "non_200": bad,
                             "sequential": percentiles(seq_ms[len(paths):] or seq_ms)}
            out["memory_before"] = worker_memory(proc.pid)
            log(f"{name}: warm-up {out['warmup']['seconds']:.1f} s ({bad} non-200); workers RSS "
                f"{out['memory_before']['worker_rss_mb']} MiB")

            log(f"{name}: wrk -c{args.concurrency} -d{args.duration:g}s over {len(paths)} URLs")
            out["load"] = run_wrk(base, paths, work, args.duration, args.concurrency, args.threads)
            out["memory_after"] = worker_memory(proc.pid)
            ld = out["load"]
            log(f"{name}: {ld['rps']:.0f} req/s, p50 {ld['p50_ms']:.1f} / p95 {ld['p95_ms']:.1f} / "
                f"p99 {ld['p99_ms']:.1f} ms, non-2xx {ld['non_2xx']}, errors {ld['errors']}; workers RSS "
                f"{out['memory_after']['worker_rss_mb']} MiB")
            out["alive_after_load"] = proc.poll() is None
        finally:
            kill_group(proc)
    text = logfile.read_text(errors="replace")
    out["server_log_errors"] = [ln for ln in text.splitlines() if "[ERROR]" in ln or "Traceback" in ln][:20]
    return out


def run(args, kb_index: str, naive_index: str | None, work: Path) -> dict:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    result: dict = {"machine": machine(), "command": command_line(), "kb_index": kb_index,
                    "naive_index": naive_index, "duration_s": args.duration, "concurrency": args.concurrency,
                    "workers": args.workers, "urls": len(search_paths())}
    env = dict(os.environ)
    env.pop("KB_INDEX", None)
    if args.no_result_cache:
        env["KB_RESULT_CACHE_MB"] = "0"  # every request computes its search
    result["result_cache"] = not args.no_result_cache
    port = free_port()
    result["kb"] = bench_server(
        "kb", [PYTHON, "-m", "kb", "serve", "--index", kb_index, "--host", HOST, "--port", str(port),
               "--workers", str(args.workers)], env, port, work, args)
    if naive_index:
        port = free_port()
        nenv = dict(env, NAIVE_INDEX=naive_index)
        result["naive"] = bench_server(
            "naive", [PYTHON, "-m", "gunicorn", "--bind", f"{HOST}:{port}", "--workers", str(args.workers),
                      "--worker-class", "sync", "--timeout", "30", "--graceful-timeout", "10",
                      "--access-logfile", "-", "--error-logfile", "-", "--log-level", "info",
                      "--no-control-socket", "--name", "kb-bench-naive", "bench.naive:create_app()"],
            nenv, port, work, args)
    stale = index_format_problem(kb_index)
    if stale:
        result.setdefault("warnings", []).append("WARNING: " + stale)
    drift = drift_warning(result["machine"])
    if drift:
        result.setdefault("warnings", []).append(drift)
    return result


def summary_rows(r: dict) -> list[list[str]]:
    k, n = r["kb"], r.get("naive")

    def load(s):
        ld = s["load"]
        warm_bad = s["warmup"]["non_200"]
        return (f"{ld['rps']:.0f} req/s; p50 {fmt_ms(ld['p50_ms'])} / p95 {fmt_ms(ld['p95_ms'])} / "
                f"p99 {fmt_ms(ld['p99_ms'])}; {ld['non_2xx']} non-2xx, "
                f"{sum(ld['errors'].values())} socket errors"
                + (f" (+{warm_bad} failed in the warm-up)" if warm_bad else ""))

    def mem(s):
        m = s["memory_after"]
        return (f"RSS {', '.join(fmt_mb(x) for x in m['worker_rss_mb'])} "
                f"(PSS {', '.join(fmt_mb(x) for x in m['worker_pss_mb'])})")

    def seq(s):
        w = s["warmup"]["sequential"]
        return f"p50 {fmt_ms(w['p50'])} / p95 {fmt_ms(w['p95'])} / p99 {fmt_ms(w['p99'])}"

    ld = k["load"]
    ok = (verdict(ld["rps"], TARGET_RPS, True) == "PASS" and verdict(ld["p99_ms"], TARGET_P99_MS) == "PASS"
          and ld["non_2xx"] == 0 and not sum(ld["errors"].values()) and not k["warmup"]["non_200"])
    return [
        ["`kb serve` first search after start", f"<= {TARGET_FIRST_SEARCH_S:.0f} s", fmt_s(k["first_search_s"]),
         fmt_s(n["first_search_s"]) if n else "–", verdict(k["first_search_s"], TARGET_FIRST_SEARCH_S)],
        [f"HTTP load: {r['workers']} workers, wrk {r['concurrency']} connections, {r['duration_s']:g} s, "
         f"{r['urls']} URLs", f">= {TARGET_RPS:.0f} req/s, p99 <= {TARGET_P99_MS:.0f} ms, no errors",
         load(k), load(n) if n else "–", "PASS" if ok else "FAIL"],
        ["HTTP latency, one request at a time (second warm-up pass)", "–", seq(k), seq(n) if n else "–", ""],
        ["memory per worker after load", "–", mem(k), mem(n) if n else "–", ""],
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    add_index_args(p)
    p.add_argument("--duration", type=float, default=20, help="seconds of load per server (default 20)")
    p.add_argument("--concurrency", type=int, default=16, help="open connections (default 16)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: leave the CPUs to the server)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--no-result-cache", action="store_true",
                   help="serve kb with KB_RESULT_CACHE_MB=0, so no answer comes from its result cache")
    p.add_argument("--startup-timeout", type=float, default=60, help="seconds to wait for the first answer")
    p.add_argument("--warmup-limit", type=float, default=120, help="seconds the warm-up may take at most")
    p.add_argument("--timeout", type=float, default=900, help="seconds an index build may take")
    args = p.parse_args(argv)
    if not 1 <= args.duration <= 600:
        raise SystemExit("--duration must be between 1 and 600 seconds")

    with workspace(args.workdir, args.keep) as work:
        kb_index, naive_index = indexes_for(args, work)
        result = run(args, kb_index, naive_index, work)
    return report("http", result, args.json_out, summary_rows(result))


if __name__ == "__main__":
    raise SystemExit(main())
