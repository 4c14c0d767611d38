"""In-process query latency: ``SearchEngine.search`` exactly as ``GET /api/search`` runs it, vs naive Whoosh.

The queries are the dev queries (``../shared/eval/dev-queries.json``, with their service filters)
plus the fixed mix of one- to eight-word symptom queries in :mod:`bench.common`; each is run as
the API runs it: page 1, 10 per page, both facets (service, tag) counted over all matches, OR
semantics.  Every variant runs in a fresh child process, so "cold" really is the first time:

* kb, first pass ("cold"): the first time each query's terms are read in that process;
* kb, warm: ``--passes`` more passes; per pass p50/p95/p99 over the queries, median over passes
  (the result cache is off in every kb variant: each search is computed);
* kb, no postings cache: ``SearchEngine(index, postings_cache=0)``, so every query
  decodes its postings from the index files (the strict reading of "uncached");
* kb's JSON API in-process (Flask test client, ``GET /api/search``): what a request costs above
  the search itself (parameter checks, facet links, JSON), without HTTP and gunicorn;
* naive Whoosh (same queries, same process layout): OR grouping with ``groupedby`` facets (cold
  first pass and warm), and for reference AND grouping with facets and OR without facets;
* cold process: a new interpreter importing the engine, opening the index and answering one query.

Usage::

    python bench/query.py --index ./index [--naive-index DIR] [--passes 5]

Without ``--index`` (or ``--naive-index``) the index is built first from the corpus.
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
import json
import time

from bench.common import (  # noqa: E402
    PYTHON, add_common_args, add_index_args, drift_warning, index_format_problem, indexes_for, report, command_line, fmt_ms, load_queries, log,
    machine, median,
    median_of, percentiles, run_child, verdict, workspace,
)

TARGET_P50_MS = 5.0
TARGET_P95_MS = 25.0
COLD_QUERY = "vm wont start after resize"


# -- children: one measured engine per fresh process ----------------------------------------------


def _time_pass(fn, queries) -> tuple[list[float], list[int]]:
    times, totals = [], []
    for q in queries:
        t = time.perf_counter()
        res = fn(q)
        times.append((time.perf_counter() - t) * 1000)
        totals.append(res["total"])
    return times, totals


def _passes(fn, queries, passes: int) -> dict:
    """A cold first pass, then ``passes`` warm ones."""
    cold, totals = _time_pass(fn, queries)
    warm_runs = [_time_pass(fn, queries)[0] for _ in range(passes)]
    per_query = [median(run[i] for run in warm_runs) for i in range(len(queries))]
    slowest = sorted(range(len(queries)), key=lambda i: -per_query[i])[:8]
    return {
        "cold": percentiles(cold),
        "warm": median_of([percentiles(r) for r in warm_runs]),
        "warm_passes": [percentiles(r) for r in warm_runs],
        "zero_results": sum(1 for t in totals if not t),
        "slowest_warm": [{"q": queries[i].q, "ms": round(per_query[i], 2), "cold_ms": round(cold[i], 2),
                          "total": totals[i]} for i in slowest],
        "cold_ms": [round(x, 3) for x in cold],
        "warm_ms": [round(x, 3) for x in per_query],
    }


def child_kb(index: str, passes: int, postings_cache: bool) -> dict:
    t0 = time.perf_counter()
    from kb.search import SearchEngine
    t1 = time.perf_counter()
    # the targets are for uncached searches: no answer is ever served from kb's result cache
    engine = SearchEngine(index, result_cache=0, postings_cache=None if postings_cache else 0)
    engine.generation()
    t2 = time.perf_counter()
    queries = load_queries()

    def fn(q):
        return engine.search(q.q, services=q.services, tags=q.tags, page=1, per_page=10)

    out = _passes(fn, queries, passes)
    out.update(import_s=t1 - t0, open_s=t2 - t1, queries=len(queries), postings_cache=postings_cache)
    return out


def child_api(index: str, passes: int) -> dict:
    """The whole JSON API in-process (Flask test client): parameter checks, search, links, JSON."""
    import re

    t0 = time.perf_counter()
    from kb.web import create_app
    t1 = time.perf_counter()
    # every request computes its search
    client = create_app({"KB_INDEX": index, "KB_RESULT_CACHE_MB": 0}).test_client()
    client.get("/healthz")
    t2 = time.perf_counter()
    queries = load_queries()
    total_re = re.compile(rb'"total":\s*(\d+)')

    def fn(q):
        resp = client.get("/api/search", query_string=q.params(10))
        if resp.status_code != 200:
            raise RuntimeError(f"GET /api/search {q} -> {resp.status_code}: {resp.get_data()[:300]!r}")
        m = total_re.search(resp.get_data())
        return {"total": int(m.group(1)) if m else 0}

    out = _passes(fn, queries, passes)
    out.update(import_s=t1 - t0, open_s=t2 - t1, queries=len(queries))
    return out


def child_naive(index: str, passes: int) -> dict:
    t0 = time.perf_counter()
    from bench.naive import NaiveSearch
    t1 = time.perf_counter()
    s = NaiveSearch(index)
    t2 = time.perf_counter()
    queries = load_queries()
    out = {"import_s": t1 - t0, "open_s": t2 - t1, "queries": len(queries)}
    out["or_facets"] = _passes(lambda q: s.search(q.q, q.services, q.tags, group="or", facets=True), queries, passes)
    for name, group, facets in (("and_facets", "and", True), ("or_nofacets", "or", False)):
        runs = [_time_pass(lambda q, g=group, f=facets: s.search(q.q, q.services, q.tags, group=g, facets=f),
                           queries)[0]
                for _ in range(passes)]
        out[name] = {"warm": median_of([percentiles(r) for r in runs])}
    return out


def child_cold(engine: str, index: str) -> dict:
    """A fresh interpreter: import, open, one query (each timed)."""
    t0 = time.perf_counter()
    if engine == "kb":
        from kb.search import SearchEngine
        t1 = time.perf_counter()
        e = SearchEngine(index)
        e.generation()
        t2 = time.perf_counter()
        e.search(COLD_QUERY, page=1, per_page=10)
    else:
        from bench.naive import NaiveSearch
        t1 = time.perf_counter()
        s = NaiveSearch(index)
        t2 = time.perf_counter()
        s.search(COLD_QUERY)
    t3 = time.perf_counter()
    return {"import_ms": (t1 - t0) * 1000, "open_ms": (t2 - t1) * 1000, "first_query_ms": (t3 - t2) * 1000}


# -- parent ----------------------------------------------------------------------------------------


def _child(argv: list[str], timeout: float) -> dict:
    res = run_child([PYTHON, "-m", "bench.query", *argv], timeout)
    if res.rc != 0:
        raise RuntimeError(f"query child {argv} failed (rc={res.rc}, timed out={res.timed_out}):\n{res.stderr[-3000:]}")
    out = res.json()
    out["process_s"] = res.wall_s
    out["max_rss_mb"] = res.max_rss_mb
    return out


def run(args, kb_index: str, naive_index: str | None) -> dict:
    result: dict = {"machine": machine(), "command": command_line(), "kb_index": kb_index,
                    "naive_index": naive_index, "passes": args.passes}
    qs = load_queries()
    result["queries"] = {"dev": sum(q.source == "dev" for q in qs), "mix": sum(q.source == "mix" for q in qs),
                         "filtered": sum(bool(q.services or q.tags) for q in qs)}
    t = args.timeout
    log(f"kb in-process, postings cache on: 1 cold + {args.passes} warm passes over {len(qs)} queries")
    result["kb"] = _child(["--child", "kb", "--index", kb_index, "--passes", str(args.passes)], t)
    _log_variant("kb", result["kb"])
    log("kb in-process, no postings cache (postings_cache=0)")
    result["kb_nocache"] = _child(["--child", "kb-nocache", "--index", kb_index, "--passes", str(args.passes)], t)
    _log_variant("kb, no postings cache", result["kb_nocache"])
    log("kb JSON API in-process (Flask test client, GET /api/search)")
    result["kb_api"] = _child(["--child", "kb-api", "--index", kb_index, "--passes", str(args.passes)], t)
    _log_variant("kb API", result["kb_api"])
    if naive_index:
        log(f"naive Whoosh in-process: 1 cold + {args.naive_passes} warm passes (OR+facets, AND+facets, OR only)")
        result["naive"] = _child(["--child", "naive", "--index", naive_index, "--passes", str(args.naive_passes)], t)
        _log_variant("naive OR+facets", result["naive"]["or_facets"])
    cold = {"kb": [], "naive": []}
    for _ in range(args.cold_runs):
        cold["kb"].append(_child(["--child", "cold-kb", "--index", kb_index], t))
        if naive_index:
            cold["naive"].append(_child(["--child", "cold-naive", "--index", naive_index], t))
    result["cold_process"] = {
        name: {k: median(r[k] for r in runs) for k in ("import_ms", "open_ms", "first_query_ms", "max_rss_mb")}
        | {"process_s": median(r["process_s"] for r in runs), "runs": len(runs)}
        for name, runs in cold.items() if runs
    }
    for name, c in result["cold_process"].items():
        log(f"cold process {name}: import {c['import_ms']:.0f} ms, open {c['open_ms']:.0f} ms, "
            f"first query {c['first_query_ms']:.0f} ms")
    stale = index_format_problem(kb_index)
    if stale:
        result.setdefault("warnings", []).append("WARNING: " + stale)
    drift = drift_warning(result["machine"])
    if drift:
        result.setdefault("warnings", []).append(drift)
    return result


def _log_variant(name: str, v: dict) -> None:
    w, c = v["warm"], v["cold"]
    log(f"  {name}: warm p50 {w['p50']:.1f} / p95 {w['p95']:.1f} / p99 {w['p99']:.1f} ms; "
        f"cold pass p50 {c['p50']:.1f} / p95 {c['p95']:.1f} / p99 {c['p99']:.1f} ms")


def _pct(d: dict | None) -> str:
    if not d:
        return "–"
    return f"p50 {fmt_ms(d['p50'])} / p95 {fmt_ms(d['p95'])} / p99 {fmt_ms(d['p99'])}"


def _verdict(d: dict) -> str:
    a, b = verdict(d["p50"], TARGET_P50_MS), verdict(d["p95"], TARGET_P95_MS)
    return "PASS" if a == b == "PASS" else "FAIL"


def summary_rows(r: dict) -> list[list[str]]:
    n = r.get("naive") or {}
    nq = r["queries"]["dev"] + r["queries"]["mix"]
    target = f"p50 <= {TARGET_P50_MS:.0f} ms, p95 <= {TARGET_P95_MS:.0f} ms"
    rows = [
        [f"query, in-process, warm (postings cache on), {nq} queries, median of {r['passes']} passes", target,
         _pct(r["kb"]["warm"]), (_pct(n["or_facets"]["warm"]) + " (OR + groupedby facets)") if n else "–",
         _verdict(r["kb"]["warm"])],
        ["query, in-process, no postings cache (every query decodes postings)", target,
         _pct(r["kb_nocache"]["warm"]), "–", _verdict(r["kb_nocache"]["warm"])],
        ["JSON API in-process (Flask test client: checks, search, links, JSON), warm", "–",
         _pct(r["kb_api"]["warm"]) if r.get("kb_api") else "–", "–", ""],
        ["query, in-process, first pass in a new process (cold)", "–", _pct(r["kb"]["cold"]),
         _pct((n.get("or_facets") or {}).get("cold")), ""],
    ]
    if n:
        rows.append(["naive reference: AND + facets / OR without facets, warm", "–", "–",
                     f"{_pct(n['and_facets']['warm'])} / {_pct(n['or_nofacets']['warm'])}", ""])
    cp = r.get("cold_process", {})
    if cp:
        def cold(name):
            c = cp.get(name)
            if not c:
                return "–"
            return (f"import {fmt_ms(c['import_ms'])} + open {fmt_ms(c['open_ms'])} + 1st query "
                    f"{fmt_ms(c['first_query_ms'])}")
        rows.append([f"cold process (median of {cp['kb']['runs']})", "–", cold("kb"), cold("naive"), ""])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    add_index_args(p)
    p.add_argument("--passes", type=int, default=5, help="warm passes over the queries (default 5)")
    p.add_argument("--naive-passes", type=int, default=3, help="warm passes of the naive baseline (default 3)")
    p.add_argument("--cold-runs", type=int, default=3, help="cold processes per engine (default 3)")
    p.add_argument("--timeout", type=float, default=900, help="seconds any one child may take")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        if args.child == "kb":
            out = child_kb(args.index, args.passes, True)
        elif args.child == "kb-nocache":
            out = child_kb(args.index, args.passes, False)
        elif args.child == "kb-api":
            out = child_api(args.index, args.passes)
        elif args.child == "naive":
            out = child_naive(args.index, args.passes)
        elif args.child in ("cold-kb", "cold-naive"):
            out = child_cold(args.child[5:], args.index)
        else:
            raise SystemExit(f"unknown child {args.child}")
        print(json.dumps(out))
        return 0

    with workspace(args.workdir, args.keep) as work:
        kb_index, naive_index = indexes_for(args, work)
        result = run(args, kb_index, naive_index)
    notes = (
        "\nslowest warm kb queries (postings cache on): "
        + "; ".join(f"{s['q']!r} {s['ms']:.1f} ms" for s in result["kb"]["slowest_warm"][:5]),
        "slowest kb queries without postings cache: "
        + "; ".join(f"{s['q']!r} {s['ms']:.1f} ms" for s in result["kb_nocache"]["slowest_warm"][:5]),
    )
    return report("query", result, args.json_out, summary_rows(result), notes)


if __name__ == "__main__":
    raise SystemExit(main())
