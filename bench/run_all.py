"""Run every benchmark (build, query, http) on the real corpus and print one summary table.

The indexes of the build benchmark's last full builds are reused by the query and HTTP benchmarks,
so the corpus is parsed as few times as possible.  The table is markdown, ready for the README's
performance section, and is printed with the exact command and the machine it ran on.

Usage::

    python bench/run_all.py            # or: python -m bench
    python -m bench --runs 1 --passes 3 --duration 10   # quicker, noisier
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
import shutil
import time

from bench import build as build_bench  # noqa: E402
from bench import http as http_bench  # noqa: E402
from bench import query as query_bench  # noqa: E402
from bench.common import (  # noqa: E402
    add_common_args, command_line, corpus_dir, drift_warning, index_format_problem, log, machine, save, table,
    workspace,
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--index", help="kb index for the query/http benchmarks (default: the build benchmark's)")
    p.add_argument("--naive-index", help="naive index for the query/http benchmarks (default: the build benchmark's)")
    p.add_argument("--skip", action="append", default=[], choices=["build", "query", "http"],
                   help="leave out a benchmark (repeatable)")
    p.add_argument("--no-naive", action="store_true", help="leave out the naive baseline everywhere")
    p.add_argument("--allow-stale-index", action="store_true",
                   help="measure --index even if it was built with another kb index format")
    # build
    p.add_argument("--runs", type=int, default=3, help="full builds per engine (default 3)")
    p.add_argument("--naive-runs", type=int, default=None, help="naive full builds (default: --runs)")
    p.add_argument("--no-incremental", action="store_true")
    # query
    p.add_argument("--passes", type=int, default=5, help="warm query passes (default 5)")
    p.add_argument("--naive-passes", type=int, default=3, help="warm passes of the naive baseline (default 3)")
    p.add_argument("--cold-runs", type=int, default=3, help="cold processes per engine (default 3)")
    # http
    p.add_argument("--duration", type=float, default=20, help="seconds of HTTP load per server (default 20)")
    p.add_argument("--concurrency", type=int, default=16, help="open connections (default 16)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--no-result-cache", action="store_true", help="serve kb with KB_RESULT_CACHE_MB=0")
    p.add_argument("--startup-timeout", type=float, default=60)
    p.add_argument("--warmup-limit", type=float, default=120)
    p.add_argument("--timeout", type=float, default=900, help="seconds any one build or child may take")
    args = p.parse_args(argv)
    if args.no_naive:
        args.naive_runs = 0
    if "http" not in args.skip and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk), or pass --skip http")

    if args.index and not args.allow_stale_index:
        problem = index_format_problem(args.index)
        if problem:
            raise SystemExit(problem)
    started = time.perf_counter()
    out: dict = {"machine": machine(), "command": command_line()}
    rows: list[list[str]] = []
    with workspace(args.workdir, args.keep) as work:
        corpus = None
        # absolute paths: the measuring children run in the repository root
        kb_index = args.index and str(Path(args.index).resolve())
        naive_index = None if args.no_naive or not args.naive_index else str(Path(args.naive_index).resolve())
        if "build" not in args.skip:
            corpus = corpus_dir(args.corpus, work)
            out["build"] = build_bench.run(args, corpus, work)
            rows += build_bench.summary_rows(out["build"])
            kb_index = kb_index or out["build"]["kb_index"]
            if not args.no_naive:
                naive_index = naive_index or out["build"]["naive_index"]
        if {"query", "http"} - set(args.skip):
            if not kb_index or (not args.no_naive and not naive_index):
                corpus = corpus or corpus_dir(args.corpus, work)
                if not kb_index:
                    kb_index = str(work / "kb-index")
                    log(f"building a kb index -> {kb_index}")
                    build_bench.kb_build(corpus, Path(kb_index), True, args.timeout)
                if not args.no_naive and not naive_index:
                    naive_index = str(work / "naive-index")
                    log(f"building a naive Whoosh index -> {naive_index}")
                    build_bench.naive_build(corpus, Path(naive_index), args.timeout)
        if "query" not in args.skip:
            out["query"] = query_bench.run(args, kb_index, naive_index)
            rows += query_bench.summary_rows(out["query"])
        if "http" not in args.skip:
            out["http"] = http_bench.run(args, str(Path(kb_index).resolve()),
                                         naive_index and str(Path(naive_index).resolve()), work)
            rows += http_bench.summary_rows(out["http"])
    out["seconds"] = time.perf_counter() - started
    # each part's own "source changed" warning is covered by the one over the whole run
    warnings = [w for part in ("build", "query", "http") for w in out.get(part, {}).get("warnings", [])
                if not w.startswith("WARNING: kb's source changed")]
    drift = drift_warning(out["machine"])
    if drift:
        warnings.append(drift)
    out["warnings"] = list(dict.fromkeys(warnings))
    path = save("all", out, args.json_out)
    m = out["machine"]
    print(f"\nMeasured {time.strftime('%Y-%m-%d')} on {m['cpus']} CPUs (load average at start "
          f"{', '.join(map(str, m['loadavg_at_start']))}), Python {m['python']}, Whoosh {m['whoosh']}, "
          f"kb {m['git']}, the real corpus; naive Whoosh measured in the same run:\n")
    print(f"    {out['command']}\n")
    print(table(["metric", "target", "kb", "naive Whoosh", ""], rows))
    for w in out["warnings"]:
        print(f"\n{w}")
    print(f"\nfull results: {path} ({out['seconds']:.0f} s)")
    print(json.dumps({"machine": m}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
