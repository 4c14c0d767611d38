"""Relevance measurement: MRR@10 and recall@5 of a query file, overall and per kind.

A query file is a JSON list of ``{"q", "relevant": [paths], "kind", "service"?, "split"?}``; a
query's ``service`` is applied as a facet filter, exactly as ``GET /api/search?service=`` would.
Queries carrying a ``split`` (``tune`` or ``test``) are also summarised per split, so the gap
between the half that ranking was tuned on and the half it was not is always in view.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Protocol


class Searcher(Protocol):
    def search(self, q: str, services=(), tags=(), page: int = 1, per_page: int = 10) -> dict: ...


def load_queries(path: str | Path) -> list[dict]:
    data = json.loads(Path(path).read_text())
    if not isinstance(data, list) or not all(isinstance(q, dict) and "q" in q and "relevant" in q for q in data):
        raise ValueError("expected a JSON list of objects with 'q' and 'relevant'")
    return data


def _summary(xs: list[tuple[float, float]], k_mrr: int, k_recall: int) -> dict:
    return {
        "n": len(xs),
        f"mrr@{k_mrr}": round(sum(r for r, _ in xs) / len(xs), 4) if xs else 0.0,
        f"recall@{k_recall}": round(sum(c for _, c in xs) / len(xs), 4) if xs else 0.0,
    }


def evaluate(engine: Searcher, queries: list[dict], k_mrr: int = 10, k_recall: int = 5) -> dict:
    """Run every query (top ``k_mrr``) and return overall, per-kind and per-split metrics plus
    per-query ranks.  ``engine`` is anything with kb's ``search`` signature."""
    per_kind: dict[str, list[tuple[float, float]]] = defaultdict(list)
    per_split: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
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
        if item.get("split"):
            per_split[item["split"]][kind].append((rr, recall))
        rows.append({"q": item["q"], "kind": kind, "split": item.get("split"), "rank": rank, "recall": recall,
                     "top": paths[:3]})
    everything = [x for xs in per_kind.values() for x in xs]
    report = {
        "overall": _summary(everything, k_mrr, k_recall),
        "kinds": {kind: _summary(xs, k_mrr, k_recall) for kind, xs in sorted(per_kind.items())},
        "queries": rows,
    }
    if per_split:
        report["splits"] = {
            split: {
                "overall": _summary([x for xs in kinds.values() for x in xs], k_mrr, k_recall),
                "kinds": {kind: _summary(xs, k_mrr, k_recall) for kind, xs in sorted(kinds.items())},
            }
            for split, kinds in sorted(per_split.items())
        }
    return report


def table(report: dict, k_mrr: int = 10, k_recall: int = 5) -> list[str]:
    """The report as text lines: per kind; with splits, one column pair per split and the gap."""
    mrr, rec = f"mrr@{k_mrr}", f"recall@{k_recall}"
    splits = report.get("splits")
    if not splits:
        lines = [f"{'kind':<18}{'n':>4}{'MRR@10':>9}{'recall@5':>10}"]
        for kind, row in [("overall", report["overall"]), *report["kinds"].items()]:
            lines.append(f"{kind:<18}{row['n']:>4}{row[mrr]:>9.3f}{row[rec]:>10.3f}")
        return lines
    # the tuned-on half first; the gap is test minus tune
    names = sorted(splits, key=lambda s: (s != "tune", s))
    head = f"{'kind':<16}" + "".join(f"{s + ' n':>8}{'MRR':>7}{'R@5':>7}" for s in names)
    if len(names) == 2:
        head += f"{names[1] + '-' + names[0]:>11}"
    lines = [head]
    kinds = ["overall", *sorted({k for s in names for k in splits[s]["kinds"]})]
    for kind in kinds:
        line = f"{kind:<16}"
        vals = []
        for s in names:
            row = splits[s]["overall"] if kind == "overall" else splits[s]["kinds"].get(kind)
            if row is None:
                line += f"{'-':>8}{'-':>7}{'-':>7}"
                vals.append(None)
            else:
                line += f"{row['n']:>8}{row[mrr]:>7.3f}{row[rec]:>7.3f}"
                vals.append(row[mrr])
        if len(names) == 2 and None not in vals:
            line += f"{vals[1] - vals[0]:>+11.3f}"
        lines.append(line)
    return lines
