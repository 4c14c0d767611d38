"""Hostile load on a real-corpus index: wildcard floods over HTTP, and worker memory under random words.

``python bench/abuse.py wildcards --index DIR``: ``kb serve`` (2 workers, result cache off) on
``DIR``; two clients loop the sixteen-prefix wildcard query (varying ``page``) while a third sends
the normal query mix one request at a time.  Prints the latency percentiles of each, their
status codes, and whether the normal searches kept p95 under 1 s (the target) with no 5xx.

``python bench/abuse.py memory --index DIR``: in-process, 10,000 searches of 2 to 16 random words
of 10 to 20 letters, 10 or 100 results a page (each word is in no article: six postings-cache
misses and a typo-correction attempt each); prints
the process's RSS before and after (the target: less than 100 MB of growth).

Run them on a copy of an index built by this checkout (``kb index <corpus> --index DIR``).
"""

from __future__ import annotations

import sys
from pathlib import Path

# run as a script, bench/ comes first on sys.path and its http.py would hide the standard one
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse  # noqa: E402
import json
import os
import random
import string
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from bench.common import PYTHON, QUERY_MIX, free_port, kill_group, percentiles, rss_kb  # noqa: E402

SIXTEEN = "aa* ae* ai* ao* au* ba* be* bi* bo* bu* ca* ce* ci* co* cu* da*"


def _get(url: str, timeout: float = 60.0) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {}
    except (urllib.error.URLError, OSError):
        return 0, {}


def _client(base: str, paths, stop: threading.Event, out: list, think: float = 0.0) -> None:
    for path in paths:
        if stop.is_set():
            return
        t = time.perf_counter()
        status, body = _get(base + path)
        out.append(((time.perf_counter() - t) * 1000, status, bool(body.get("warnings"))))
        if think:
            time.sleep(think)


def _wildcard_paths(q: str):
    page = 0
    while True:
        page = page % 1000 + 1
        yield "/api/search?" + urllib.parse.urlencode({"q": q, "page": page})


def _normal_paths():
    while True:
        for item in QUERY_MIX:
            params = [("q", item["q"])] + [(k, v) for k, v in item.items() if k != "q"]
            yield "/api/search?" + urllib.parse.urlencode(params)


def _summary(name: str, samples: list) -> dict:
    stats = percentiles([s[0] for s in samples])
    codes: dict[int, int] = {}
    for _ms, status, _w in samples:
        codes[status] = codes.get(status, 0) + 1
    stats["status"] = codes
    stats["with_warnings"] = sum(1 for s in samples if s[2])
    print(f"{name:>10}: n={stats['n']} p50={stats['p50']:.0f} ms p95={stats['p95']:.0f} ms "
          f"max={stats['max']:.0f} ms status={codes} answers with warnings={stats['with_warnings']}")
    return stats


def wildcards(args) -> int:
    port = free_port()
    env = {"KB_RESULT_CACHE_MB": "0"}  # every request computes its search
    proc = subprocess.Popen([PYTHON, "-m", "kb", "serve", "--index", args.index, "--port", str(port),
                             "--workers", "2"], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while _get(base + "/healthz", 2)[0] != 200:
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit("kb serve did not start")
            time.sleep(0.2)
        status, first = _get(base + "/api/search?" + urllib.parse.urlencode({"q": args.query}))
        print(f"{args.query!r} alone: {status}, total {first.get('total')}, "
              f"warnings {first.get('warnings')}")
        stop = threading.Event()
        wild: list = []
        normal: list = []
        threads = [threading.Thread(target=_client, args=(base, _wildcard_paths(args.query), stop, wild)) for _ in range(2)]
        threads.append(threading.Thread(target=_client, args=(base, _normal_paths(), stop, normal, 0.05)))
        for t in threads:
            t.start()
        time.sleep(args.duration)
        stop.set()
        for t in threads:
            t.join()
        _summary("wildcard", wild)
        result = _summary("normal", normal)
        errors = sum(n for code, n in result["status"].items() if code != 200)
        ok = result["p95"] < 1000 and errors == 0 and all(s[1] < 500 for s in wild)
        print("PASS" if ok else "FAIL", "(normal searches p95 < 1 s, no errors; no 5xx for the wildcard clients)")
        return 0 if ok else 1
    finally:
        kill_group(proc)


def memory(args) -> int:
    from kb.search import SearchEngine

    engine = SearchEngine(args.index)
    engine.search("vm stuck on starting windows")
    # a warm worker: the usual queries have run, and a typo has built the spelling vocabulary
    # (once per generation, ~10 MB on the real corpus)
    for item in QUERY_MIX:
        engine.search(item["q"])
    engine.search("windos wont boot")
    rnd = random.Random(42)
    before = rss_kb(os.getpid())
    started = time.perf_counter()
    for n in range(args.queries):
        words = " ".join("".join(rnd.choice(string.ascii_lowercase) for _ in range(rnd.randint(10, 20)))
                         for _ in range(rnd.randint(2, 16)))
        engine.search(words, per_page=rnd.choice((10, 100)))
        if (n + 1) % 2000 == 0:
            print(f"after {n + 1} queries: RSS {rss_kb(os.getpid()) / 1024:.0f} MB", flush=True)
    after = rss_kb(os.getpid())
    gen = engine.generation()
    grown = (after - before) / 1024
    print(f"{args.queries} random-word queries in {time.perf_counter() - started:.1f} s: RSS {before / 1024:.0f} MB -> "
          f"{after / 1024:.0f} MB (+{grown:.0f} MB); caches by their own count: postings "
          f"{getattr(gen.stats, '_cached', 0) / 2**20:.1f} MB, answers {getattr(gen.results, 'held', 0) / 2**20:.1f} MB")
    print("PASS" if grown < 100 else "FAIL", "(RSS grows by less than 100 MB)")
    return 0 if grown < 100 else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    w = sub.add_parser("wildcards", help="two clients looping wildcard queries, one searching normally")
    w.add_argument("--index", required=True)
    w.add_argument("--duration", type=float, default=30.0)
    w.add_argument("--query", default=SIXTEEN, help="what the two wildcard clients loop (default: 16 prefixes)")
    m = sub.add_parser("memory", help="worker RSS over random-word queries")
    m.add_argument("--index", required=True)
    m.add_argument("--queries", type=int, default=10_000)
    args = p.parse_args(argv)
    return wildcards(args) if args.what == "wildcards" else memory(args)


if __name__ == "__main__":
    sys.exit(main())
