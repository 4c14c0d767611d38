"""Relevance of kb beside naive Whoosh on one query file, per split and per kind, in one run.

    python bench/relevance.py eval/queries.json --index KB_INDEX --naive NAIVE_INDEX [--json]

``KB_INDEX`` is a kb index of the real corpus (``kb index CORPUS/selfhelp --index KB_INDEX``),
``NAIVE_INDEX`` the naive baseline's (``python -m bench.naive build CORPUS/selfhelp NAIVE_INDEX``).
Both answer the same queries with the same metrics (:func:`kb.evaluate.evaluate`, top 10, the
query's ``service`` as a filter).  Ranking is changed only while looking at the ``tune`` half;
the ``test`` half says whether a change generalises.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# bench/ itself must not shadow the standard library (bench/http.py)
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.naive import NaiveSearch  # noqa: E402
from kb.evaluate import evaluate, load_queries  # noqa: E402
from kb.search import SearchEngine  # noqa: E402


def _rows(report: dict) -> dict[tuple[str, str], dict]:
    out = {("all", "overall"): report["overall"]}
    out.update({("all", k): v for k, v in report["kinds"].items()})
    for split, data in report.get("splits", {}).items():
        out[(split, "overall")] = data["overall"]
        out.update({(split, k): v for k, v in data["kinds"].items()})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("queries")
    ap.add_argument("--index", required=True, help="kb index of the corpus")
    ap.add_argument("--naive", help="naive Whoosh index of the same corpus (omit to skip it)")
    ap.add_argument("--split", help="only this split (tune or test)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--misses", action="store_true", help="list kb's queries whose first answer is not relevant")
    args = ap.parse_args(argv)
    queries = load_queries(args.queries)
    if args.split:
        queries = [q for q in queries if q.get("split") == args.split]
    kb = evaluate(SearchEngine(args.index, result_cache=0), queries)
    naive = evaluate(NaiveSearch(args.naive), queries) if args.naive else None
    if args.json:
        print(json.dumps({"kb": kb, "naive": naive}, indent=2))
        return 0
    kb_rows, naive_rows = _rows(kb), _rows(naive) if naive else {}
    print(f"{'split':<6}{'kind':<16}{'n':>4}{'kb MRR':>8}{'R@5':>7}{'naive MRR':>11}{'R@5':>7}{'diff':>8}")
    for key, row in kb_rows.items():
        nv = naive_rows.get(key)
        line = f"{key[0]:<6}{key[1]:<16}{row['n']:>4}{row['mrr@10']:>8.3f}{row['recall@5']:>7.3f}"
        if nv:
            line += f"{nv['mrr@10']:>11.3f}{nv['recall@5']:>7.3f}{row['mrr@10'] - nv['mrr@10']:>+8.3f}"
        print(line)
    if args.misses:
        for row in kb["queries"]:
            if row["rank"] != 1:
                print(f"  rank {row['rank'] or '-':>4}  {row['kind']:<14} {row['q'][:90]}  -> {row['top'][:1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
