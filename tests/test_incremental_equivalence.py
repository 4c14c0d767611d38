"""An index grown by incremental builds (files added, changed and deleted over several builds,
with Whoosh merging segments on the way) ranks like a full build of the same files."""

from __future__ import annotations

import random

import pytest
from whoosh import index as whoosh_index

from kb.generations import current_generation
from kb.index import build
from kb.search import SearchEngine

from test_index import write_article

WORDS = ("disk", "network", "timeout", "certificate", "login", "mfa", "quota", "restart", "dns", "firewall",
         "backup", "storage", "latency", "kernel", "driver", "memory", "cpu", "throttle", "sync", "token")
QUERIES = ("disk timeout", "certificate login", "dns firewall", "memory", "storage quota restart",
           "kernel driver", "AADSTS50076", "throttle sync token", "")


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def ranking(engine: SearchEngine, q: str) -> list[tuple[str, float]]:
    """(id, score) best first; equal scores by id, as their order follows internal document
    numbers, which differ between the two indexes."""
    results = engine.search(q, per_page=100)["results"]
    return sorted(((r["id"], r["score"]) for r in results), key=lambda r: (-(r[1] or 0), r[0]))


def test_incremental_builds_rank_like_a_full_build(tmp_path):
    rng = random.Random(7)
    root = tmp_path / "articles"
    live: set[str] = set()

    def put(i: int) -> None:
        rel = f"articles/svc{i % 5}/note-{i:03}.md"
        extra = " AADSTS50076" if i % 17 == 0 else ""
        write_article(root, rel, f"{text(rng, 3)} {i}", text(rng, rng.randint(5, 60)) + extra, desc=text(rng, 6))
        live.add(rel)

    for i in range(40):
        put(i)
    grown = tmp_path / "grown"
    build(root, grown, workers=1)
    next_id = 40
    modes = []
    for _step in range(9):
        for _ in range(rng.randint(1, 6)):  # new files
            put(next_id)
            next_id += 1
        for rel in rng.sample(sorted(live), 3):  # changed files
            put(int(rel[-6:-3]))
        for rel in rng.sample(sorted(live), 2):  # deleted files
            (root / rel).unlink()
            live.discard(rel)
        modes.append(build(root, grown, workers=1).mode)
    assert set(modes) == {"incremental"}
    segments = whoosh_index.open_dir(str(current_generation(grown)))
    with segments.reader() as reader:
        assert reader.has_deletions() or len(reader.leaf_readers()) > 1  # really grown, not rebuilt

    fresh = tmp_path / "fresh"
    build(root, fresh, workers=1, full=True)
    a, b = SearchEngine(grown), SearchEngine(fresh)
    assert a.search("")["total"] == b.search("")["total"] == len(live)
    for q in QUERIES:
        got, want = ranking(a, q), ranking(b, q)
        assert [i for i, _ in got] == [i for i, _ in want], q
        assert [s or 0 for _, s in got] == pytest.approx([s or 0 for _, s in want], rel=1e-5), q
        assert a.search(q)["facets"] == b.search(q)["facets"], q
