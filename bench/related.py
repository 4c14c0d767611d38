"""In-process latency of related articles: ``SearchEngine.related`` as ``GET /api/articles/<id>/related``
and every article page run it, over every article of an index (or a random sample of them).

The result cache is off, so each answer is computed; a warm-up pass over other articles first
fills the postings cache as a serving process would have it.  Target: p95 under 20 ms.

Usage::

    python bench/related.py --index ./index [--sample 3000] [--seed 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != Path(_here)]
    sys.path.insert(0, str(Path(_here).parent))

import argparse
import random
import time

from bench.common import percentiles  # noqa: E402
from kb.search import SearchEngine  # noqa: E402

TARGET_P95_MS = 20.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", required=True, help="a built kb index directory")
    parser.add_argument("--sample", type=int, default=3000, help="articles to time (0: all)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    engine = SearchEngine(args.index, result_cache=0)
    ids = [f["id"] for f in engine.generation().searcher.reader().all_stored_fields()]
    rng = random.Random(args.seed)
    rng.shuffle(ids)
    warm, timed = ids[:500], ids[500:]
    if args.sample:
        timed = timed[: args.sample]
    for i in warm:
        engine.related(i)
    took = []
    for i in timed:
        start = time.perf_counter()
        engine.related(i)
        took.append((time.perf_counter() - start) * 1000)
    p = percentiles(took)
    verdict = "PASS" if p["p95"] <= TARGET_P95_MS else "FAIL"
    print(f"related articles, {len(timed)} articles: p50 {p['p50']:.2f} ms, p95 {p['p95']:.2f} ms "
          f"({verdict}, target {TARGET_P95_MS:g} ms), p99 {p['p99']:.2f} ms, max {p['max']:.2f} ms")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
