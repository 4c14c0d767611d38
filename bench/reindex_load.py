"""Zero-downtime reindexing under load: ``kb serve`` answers 32 clients while the index is rebuilt.

On a copy of the real corpus: build an index, start ``kb serve --workers 2`` on 127.0.0.1, and
run keep-alive HTTP clients (threads, ``http.client``) cycling the symptom queries of
``bench/common.py`` (all with results) for ``--duration`` seconds.  Meanwhile, in sequence:

1. a full reindex (``kb index DIR --full --index IDX``);
2. change 1 article (a unique word appended), delete 1, add 1, and an incremental ``kb index``;
3. a full reindex SIGKILLed half-way (``--kill-after`` seconds after its generation appears);
   only its main process is killed, as ``kill -9 PID`` would;
4. another change and an incremental ``kb index``, which must succeed.

Every response must be a 200 with JSON, ``total`` > 0 and ``results`` non-empty; anything else
(and any connection error) is a failure.  After each build the script polls until every worker
serves the new generation (the workers' open generation leases in /proc, and /healthz answering
it several times in a row) and checks that search follows the change.  Report: requests,
failures by kind, p50/p95/p99 overall and during builds, switch times, generations left on disk.

Usage::

    python bench/reindex_load.py [--clients 32] [--duration 60] [--corpus DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != Path(_here)]
    sys.path.insert(0, str(Path(_here).parent))

import argparse
import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from urllib.parse import urlencode

from bench.common import (  # noqa: E402
    PYTHON, ROOT, add_common_args, children, command_line, corpus_dir, drift_warning, fmt_ms, free_port,
    kill_group, load_queries, log, machine, percentiles, save, table, workspace,
)

SWITCH_LIMIT_S = 2.0
#: Consecutive /healthz answers naming the new generation before a switch counts as done.
HEALTHZ_STREAK = 8


# -- the load -------------------------------------------------------------------------------------


class Load:
    """``clients`` threads, each with one keep-alive connection, cycling ``paths`` until stopped."""

    def __init__(self, port: int, paths: list[str], clients: int, timeout: float = 10.0):
        self.port, self.paths, self.clients, self.timeout = port, paths, clients, timeout
        self.samples: list[tuple[float, float]] = []  # (start, latency ms), monotonic clock
        self.failures: Counter = Counter()
        self.examples: list[dict] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]

    def start(self) -> None:
        self.started = time.monotonic()
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
        self.stopped = time.monotonic()

    def _fail(self, kind: str, path: str, detail: str) -> None:
        with self._lock:
            self.failures[kind] += 1
            if len(self.examples) < 20:
                self.examples.append({"t": round(time.monotonic() - self.started, 3), "kind": kind,
                                      "path": path, "detail": detail[:300]})

    def _run(self, i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        n = i * 7
        while not self._stop.is_set():
            path = self.paths[n % len(self.paths)]
            n += 1
            t0 = time.monotonic()
            try:
                conn.request("GET", path)
                res = conn.getresponse()
                body = res.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()  # the next request opens a new connection
                self._fail("connection", path, f"{type(exc).__name__}: {exc}")
                continue
            ms = (time.monotonic() - t0) * 1000
            if res.status != 200:
                self._fail(f"status {res.status}", path, body.decode("utf-8", "replace"))
            else:
                try:
                    data = json.loads(body)
                except ValueError:
                    self._fail("invalid json", path, body.decode("utf-8", "replace"))
                else:
                    if not data.get("total") or not data.get("results"):
                        self._fail("empty", path, f"total={data.get('total')}")
            with self._lock:
                self.samples.append((t0, ms))

    @property
    def requests(self) -> int:
        return len(self.samples)


# -- the server -----------------------------------------------------------------------------------


def start_server(index: Path, port: int, log_path: Path, workers: int, startup_timeout: float) -> subprocess.Popen:
    out = open(log_path, "w")
    proc = subprocess.Popen(
        [PYTHON, "-m", "kb", "serve", "--index", str(index), "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)],
        cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    out.close()
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kb serve exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if get(port, "/healthz")[0] == 200 and len(children(proc.pid)) >= workers:
                return proc
        time.sleep(0.1)
    kill_group(proc)
    raise SystemExit(f"kb serve did not answer within {startup_timeout} s:\n{log_path.read_text()[-3000:]}")


def get(port: int, path: str, timeout: float = 10) -> tuple[int, dict | None]:
    """One request on a new connection (so either worker may answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        res = conn.getresponse()
        body = res.read()
    finally:
        conn.close()
    try:
        return res.status, json.loads(body)
    except ValueError:
        return res.status, None


def worker_leases(master: int) -> dict[int, set[str]]:
    """Per gunicorn worker, the generations whose lease it holds open (what it reads)."""
    out: dict[int, set[str]] = {}
    for pid in children(master):
        gens: set[str] = set()
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.endswith("/.lease"):
                        gens.add(Path(target).parent.name)
        out[pid] = gens
    return out


def wait_switch(port: int, master: int, index: Path, limit: float) -> dict:
    """Poll until every worker serves the generation CURRENT names; seconds since CURRENT changed."""
    current = (index / "CURRENT").read_text().strip()
    switched_at = os.stat(index / "CURRENT").st_mtime
    deadline = time.monotonic() + limit
    streak, answers = 0, Counter()
    leases_at = streak_at = None  # wall-clock times: all workers hold the lease; the streak began
    while time.monotonic() < deadline:
        leases = worker_leases(master)
        if leases_at is None and leases and all(current in g for g in leases.values()):
            leases_at = time.time()
        sent = time.time()
        try:
            status, health = get(port, "/healthz", timeout=5)
        except (OSError, http.client.HTTPException):
            status, health = 0, None
        gen = (health or {}).get("generation") if status == 200 else None
        answers[gen] += 1
        if gen == current:
            streak, streak_at = streak + 1, streak_at if streak else sent
        else:
            streak, streak_at = 0, None
        if leases_at is not None and streak >= HEALTHZ_STREAK:
            # switched by the later of: every worker holds the new generation, and the first of the
            # unbroken run of /healthz answers naming it was sent (a /healthz under load queues
            # behind the clients' requests, so the run's end would overstate the switch)
            done = max(leases_at, streak_at)
            return {"generation": current, "seconds": round(done - switched_at, 3), "switched": True,
                    "workers": len(leases), "confirmed_after_s": round(time.time() - switched_at, 3)}
        time.sleep(0.02)
    return {"generation": current, "seconds": round(time.time() - switched_at, 3), "switched": False,
            "healthz_answers": {str(k): v for k, v in answers.items()}}


# -- the corpus changes ---------------------------------------------------------------------------


def article_id(rel: str) -> str:
    """The id kb gives ``articles/a.b/c.md``: ``a.b~c``."""
    p = Path(rel)
    return f"{p.parent.name}~{p.stem}"


def search_ids(port: int, q: str, per_page: int = 20) -> tuple[int, list[str]]:
    status, data = get(port, "/api/search?" + urlencode({"q": q, "per_page": per_page}))
    return status, [r["id"] for r in (data or {}).get("results", [])]


def follows(port: int, checks: list[tuple[str, str, str]], rounds: int = 6) -> dict:
    """``(kind, id, word)`` checks, each asked ``rounds`` times on new connections (both workers)."""
    out = {}
    for kind, aid, word in checks:
        ok = True
        for _ in range(rounds):
            if kind in ("changed", "added"):
                status, ids = search_ids(port, word)
                ok &= status == 200 and aid in ids
                ok &= get(port, f"/api/articles/{aid}")[0] == 200
            else:  # deleted: the article is gone and no search finds it
                status, ids = search_ids(port, word)
                ok &= status == 200 and aid not in ids
                ok &= get(port, f"/api/articles/{aid}")[0] == 404
        out[f"{kind} {aid}"] = ok
    return out


def pick_articles(articles: Path, n: int) -> list[str]:
    """``n`` article paths (relative to the corpus root) from different services, reproducibly."""
    picked: list[str] = []
    for service in sorted((articles / "articles").iterdir()):
        files = sorted(service.glob("*.md"))
        if service.is_dir() and files and files[0].stat().st_size > 500:
            picked.append(files[0].relative_to(articles).as_posix())
        if len(picked) == n:
            break
    return picked


# -- builds ---------------------------------------------------------------------------------------


def kb_index(articles: Path, index: Path, full: bool, log_path: Path) -> subprocess.Popen:
    """``kb index`` in its own session, output to ``log_path`` (a pipe would stay open as long as any
    process of a killed build lives)."""
    argv = [PYTHON, "-m", "kb", "index", str(articles), "--index", str(index), *(["--full"] if full else [])]
    with open(log_path, "w") as out:
        return subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def session_members(sid: int) -> list[int]:
    """Live processes still in session ``sid`` (a build started with start_new_session: its own id).

    Zombies are dead already (they only wait for init to reap them) and are not counted.
    """
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                if int(fields[3]) == sid and fields[0] != "Z":  # fields 6 and 3 of stat: session, state
                    out.append(int(entry))
    return out


def kill_session(sid: int) -> None:
    """SIGKILL what is left of a build this script started (its session/process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, signal.SIGKILL)


# -- the run --------------------------------------------------------------------------------------


def run(args, work: Path) -> dict:
    src = corpus_dir(args.corpus, work)
    articles = work / "selfhelp"
    if src != articles:
        log(f"copying {src} -> {articles}")
        shutil.copytree(src, articles)
    index = work / "index"
    log("initial full build")
    t0 = time.monotonic()
    first = subprocess.run([PYTHON, "-m", "kb", "index", str(articles), "--full", "--index", str(index)],
                           cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
    if first.returncode != 0:
        raise SystemExit(f"initial build failed:\n{first.stdout}\n{first.stderr}")
    log(f"initial build in {time.monotonic() - t0:.1f} s")

    port = free_port()
    server = start_server(index, port, work / "server.log", args.workers, args.startup_timeout)
    result: dict = {"clients": args.clients, "duration_target_s": args.duration, "workers": args.workers,
                    "builds": [], "checks": {}, "problems": []}
    builds: list[tuple[float, float]] = []
    killed_sessions: list[int] = []
    load = None
    try:
        paths = []
        for q in load_queries(dev=False):
            path = "/api/search?" + urlencode(q.params(10))
            status, data = get(port, path)
            if status == 200 and data and data["total"] > 0 and data["results"]:
                paths.append(path)
        result["queries"] = len(paths)
        log(f"{len(paths)} queries with results; {args.clients} clients for {args.duration:.0f} s on port {port}")
        load = Load(port, paths, args.clients)
        load.start()

        def build_step(name: str, full: bool, kill_after: float | None = None) -> dict:
            before = {p.name for p in index.glob("gen-*")}
            log_path = work / f"build-{len(builds)}.log"
            proc = kb_index(articles, index, full, log_path)
            started = time.monotonic()
            step: dict = {"step": name, "full": full}
            try:
                if kill_after is None:
                    proc.wait(timeout=args.timeout)
                else:
                    while time.monotonic() - started < args.timeout and proc.poll() is None:
                        if {p.name for p in index.glob("gen-*")} - before:
                            break
                        time.sleep(0.05)
                    time.sleep(kill_after)
                    if proc.poll() is not None:
                        step["problem"] = "the build finished before it could be killed; raise --kill-after's margin"
                    killed_sessions.append(proc.pid)  # whatever survives is cleaned up at the end
                    os.kill(proc.pid, signal.SIGKILL)  # the main process only, like `kill -9 PID`
                    proc.wait(timeout=30)
                    time.sleep(1.0)
                    step["sid"] = proc.pid
                    step["orphan_pids"] = session_members(proc.pid)
                    step["orphans_after_kill"] = len(step["orphan_pids"])
            finally:
                if proc.poll() is None:
                    kill_session(proc.pid)
                    proc.wait(10)
            ended = time.monotonic()
            builds.append((started, ended))
            step.update(rc=proc.returncode, seconds=round(ended - started, 2),
                        output=log_path.read_text(errors="replace")[-600:])
            log(f"{name}: rc={proc.returncode} in {ended - started:.1f} s")
            return step

        current_before = (index / "CURRENT").read_text().strip()
        # 1. full reindex
        step = build_step("full reindex", True)
        step["switch"] = wait_switch(port, server.pid, index, 10)
        result["builds"].append(step)

        # 2. change, delete, add; incremental
        changed, deleted, template = pick_articles(articles, 3)
        word1 = "zq" + secrets.token_hex(5)
        with open(articles / changed, "a", encoding="utf-8") as fh:
            fh.write(f"\n\nReindex load marker {word1}.\n")
        deleted_word = word1 + "gone"  # the deleted article carries no marker; check its id is gone
        deleted_title_q = (articles / deleted).read_text(encoding="utf-8", errors="replace")
        deleted_q = next((ln.lstrip("# ").strip() for ln in deleted_title_q.splitlines() if ln.startswith("# ")),
                         deleted_word)
        (articles / deleted).unlink()
        added = Path(template).with_name(f"zz-reindex-load-{secrets.token_hex(3)}.md").as_posix()
        word2 = "zq" + secrets.token_hex(5)
        text = (articles / template).read_text(encoding="utf-8", errors="replace")
        (articles / added).write_text(text.replace("# ", f"# Added {word2} ", 1) + f"\n\nAdded marker {word2}.\n",
                                      encoding="utf-8")
        step = build_step("incremental: 1 changed, 1 deleted, 1 added", False)
        step["switch"] = wait_switch(port, server.pid, index, 10)
        step["follows"] = follows(port, [("changed", article_id(changed), word1),
                                         ("deleted", article_id(deleted), deleted_q),
                                         ("added", article_id(added), word2)])
        result["builds"].append(step)

        # 3. a full reindex killed half-way
        serving = (index / "CURRENT").read_text().strip()
        step = build_step("full reindex, SIGKILLed", True, kill_after=args.kill_after)
        step["current_unchanged"] = (index / "CURRENT").read_text().strip() == serving
        step["health_after_kill"] = get(port, "/healthz")[1]
        result["builds"].append(step)

        # 4. another change; the next incremental build must work
        word3 = "zq" + secrets.token_hex(5)
        with open(articles / changed, "a", encoding="utf-8") as fh:
            fh.write(f"\n\nSecond marker {word3}.\n")
        step = build_step("incremental after the kill", False)
        if step["rc"] != 0:
            result["problems"].append(
                f"the incremental build after the SIGKILL failed (rc={step['rc']}): {step['output'].strip()[-300:]}"
                f" -- {result['builds'][-1].get('orphans_after_kill')} parser workers of the killed build were "
                "still alive; they inherited .build.lock's flock")
            # clean up what is left of the killed build (processes this script started) and retry
            for sid in killed_sessions:
                kill_session(sid)
            time.sleep(0.5)
            step["retry"] = True
            step_retry = build_step("incremental after the kill (retry, orphans killed)", False)
            step["retry_rc"] = step_retry["rc"]
        step["switch"] = wait_switch(port, server.pid, index, 10)
        step["follows"] = follows(port, [("changed", article_id(changed), word3)])
        result["builds"].append(step)

        remaining = args.duration - (time.monotonic() - load.started)
        if remaining > 0:
            log(f"builds done; load continues for {remaining:.0f} s")
            time.sleep(remaining)
        load.stop()
        # generations: the workers drop an old generation when they switch; one that nobody reads
        # any more is removed by the next build's sweep (collect_garbage)
        time.sleep(1.0)
        result["leases_at_end"] = {str(k): sorted(v) for k, v in worker_leases(server.pid).items()}
        result["generations_at_end"] = sorted(p.name for p in index.glob("gen-*"))
        from kb.generations import collect_garbage

        result["swept_at_end"] = collect_garbage(index)
        result["generations_after_sweep"] = sorted(p.name for p in index.glob("gen-*"))
        result["initial_generation"] = current_before
    finally:
        if load is not None and not load._stop.is_set():
            load.stop()
        kill_group(server)
        for sid in killed_sessions:  # whatever is left of the killed build
            kill_session(sid)
    result["server_errors"] = [ln for ln in (work / "server.log").read_text(errors="replace").splitlines()
                               if "Traceback" in ln or "[ERROR]" in ln or "CRITICAL" in ln][:20]

    # figures
    lat = [ms for _, ms in load.samples]
    during = [ms for t, ms in load.samples if any(a <= t <= b for a, b in builds)]
    result["requests"] = load.requests
    result["load_seconds"] = round(load.stopped - load.started, 1)
    result["failures"] = dict(load.failures)
    result["failure_examples"] = load.examples
    result["empties"] = load.failures.get("empty", 0)
    result["latency_ms"] = percentiles(lat)
    result["latency_during_builds_ms"] = percentiles(during)
    result["requests_per_s"] = round(load.requests / max(1e-9, load.stopped - load.started), 1)
    return result


def verdicts(r: dict) -> list[str]:
    """What failed, one line each (empty: everything passed)."""
    bad = list(r["problems"])
    if sum(r["failures"].values()):
        bad.append(f"{sum(r['failures'].values())} failed responses: {r['failures']}")
    for b in r["builds"]:
        if "SIGKILL" in b["step"]:
            if not b.get("current_unchanged"):
                bad.append("the killed build changed CURRENT")
            if b.get("problem"):
                bad.append(b["problem"])
            continue
        if b["rc"] != 0 and not b.get("retry"):
            bad.append(f"{b['step']}: rc={b['rc']}")
        sw = b.get("switch", {})
        if not sw.get("switched") or sw.get("seconds", 99) > SWITCH_LIMIT_S:
            bad.append(f"{b['step']}: workers switched {'in ' + str(sw.get('seconds')) + ' s' if sw.get('switched') else 'never'}")
        for what, ok in b.get("follows", {}).items():
            if not ok:
                bad.append(f"{b['step']}: search did not follow {what}")
    if len(r["generations_after_sweep"]) != 1:
        bad.append(f"generations left after the sweep: {r['generations_after_sweep']}")
    if r["server_errors"]:
        bad.append(f"server log errors: {r['server_errors'][:3]}")
    return bad


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    p.add_argument("--duration", type=float, default=60, help="seconds of load at least (default 60); it "
                   "runs on until the build sequence is done")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--kill-after", type=float, default=6.0,
                   help="seconds after the killed build's generation appears before SIGKILL (default 6)")
    p.add_argument("--startup-timeout", type=float, default=60)
    p.add_argument("--timeout", type=float, default=900, help="seconds any one build may take (default 900)")
    args = p.parse_args(argv)
    if not 1 <= args.clients <= 256 or not 1 <= args.duration <= 600:
        raise SystemExit("--clients must be 1..256 and --duration 1..600")
    out = {"machine": machine(), "command": command_line()}
    with workspace(args.workdir, args.keep) as work:
        out["reindex_load"] = r = run(args, work)
    bad = verdicts(r)
    out["verdict"] = "PASS" if not bad else "FAIL"
    out["failed"] = bad
    drift = drift_warning(out["machine"])
    path = save("reindex-load", out, args.json_out)

    lt, ld = r["latency_ms"], r["latency_during_builds_ms"]
    rows = [
        ["requests", f"{r['requests']} in {r['load_seconds']} s ({r['requests_per_s']}/s), {r['clients']} clients"],
        ["failed responses", f"{sum(r['failures'].values())} {r['failures'] or ''}"],
        ["empty responses", str(r["empties"])],
        ["latency, all", f"p50 {fmt_ms(lt['p50'])} / p95 {fmt_ms(lt['p95'])} / p99 {fmt_ms(lt['p99'])} / max {fmt_ms(lt['max'])}"],
        ["latency, during builds", f"p50 {fmt_ms(ld['p50'])} / p95 {fmt_ms(ld['p95'])} / p99 {fmt_ms(ld['p99'])} ({ld['n']} requests)"],
    ]
    for b in r["builds"]:
        sw = b.get("switch")
        shown = f"rc {b['rc']}, {b['seconds']} s"
        if sw:
            shown += f"; every worker on the new generation {sw['seconds']} s after the switch" if sw["switched"] \
                else "; workers did NOT switch"
        if "orphans_after_kill" in b:
            shown += f"; CURRENT unchanged: {b['current_unchanged']}; processes of the killed build left: {b['orphans_after_kill']}"
        if b.get("follows"):
            shown += "; search follows: " + ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in b["follows"].items())
        rows.append([b["step"], shown])
    rows.append(["generations on disk at the end", f"{len(r['generations_at_end'])} before the sweep, "
                 f"{len(r['generations_after_sweep'])} after (removed {len(r['swept_at_end'])})"])
    m = out["machine"]
    print(f"\nMeasured {time.strftime('%Y-%m-%d')} on {m['cpus']} CPUs (load average at start "
          f"{', '.join(map(str, m['loadavg_at_start']))}), kb {m['git']}, the real corpus:\n")
    print(f"    {out['command']}\n")
    print(table(["reindex under load", "measured"], rows))
    print(f"\n{out['verdict']}" + "".join(f"\n  - {b}" for b in bad))
    if drift:
        print(f"\n{drift}")
    print(f"\nfull results: {path}")
    return 0 if not bad else 1


if __name__ == "__main__":
    raise SystemExit(main())
