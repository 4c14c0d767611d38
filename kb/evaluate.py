"""Relevance measurement: MRR@10 and recall@5 of a query file, overall and per kind.

A query file is a JSON list of ``{"q", "relevant": [paths], "kind", "service"?}``; a query's
``service`` is applied as a facet filter, exactly as ``GET /api/search?service=`` would.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from .search import SearchEngine


def load_queries(path: str | Path) -> list[dict]:
    data = json.loads(Path(path).read_text())
    if not isinstance(data, list) or not all(isinstance(q, dict) and "q" in q and "relevant" in q for q in data):
        raise ValueError("expected a JSON list of objects with 'q' and 'relevant'")
    return data


def evaluate(engine: SearchEngine, queries: list[dict], k_mrr: int = 10, k_recall: int = 5) -> dict:
    """Run every query (top ``k_mrr``) and return overall and per-kind metrics plus per-query ranks."""
    per_kind: dict[str, list[tuple[float, float]]] = defaultdict(list)
    rows = []
    for item in queries:
        services = [item["service"]] if item.get("service") else []
        res = engine.search(item["q"], services=services, per_page=k_mrr)
        paths = [r["path"] for r in res["results"]]
        relevant = set(item["relevant"])
        rank = next((i for i, p in enumerate(paths, 1) if p in relevant), None)
        rr = 1.0 / rank if rank else 0.0
        recall = len(relevant & set(paths[:k_recall])) / len(relevant) if relevant else 0.0
        kind = item.get("kind", "all")
        per_kind[kind].append((rr, recall))
        rows.append({"q": item["q"], "kind": kind, "rank": rank, "recall": recall, "top": paths[:3]})
    everything = [x for xs in per_kind.values() for x in xs]

    def summary(xs):
        return {
            "n": len(xs),
            f"mrr@{k_mrr}": round(sum(r for r, _ in xs) / len(xs), 4) if xs else 0.0,
            f"recall@{k_recall}": round(sum(c for _, c in xs) / len(xs), 4) if xs else 0.0,
        }

    return {
        "overall": summary(everything),
        "kinds": {kind: summary(xs) for kind, xs in sorted(per_kind.items())},
        "queries": rows,
    }
