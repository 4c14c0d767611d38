"""Relevance on the real corpus (needs ../shared; fails instead of skipping under CI=true)."""

from __future__ import annotations

import pytest

import re
from pathlib import Path

from conftest import DEV_QUERIES, ROOT, need
from kb.evaluate import evaluate, load_queries
from kb.search import SearchEngine


@pytest.fixture(scope="module")
def engine(corpus_index) -> SearchEngine:
    return SearchEngine(corpus_index)


def top_paths(engine, q, n=3, **kw):
    return [r["path"] for r in engine.search(q, per_page=n, **kw)["results"]]


def test_acceptance_queries(engine):
    assert "articles/microsoft.compute.cantrdp.noboot/ossstartup-starting-windows.md" in top_paths(
        engine, "vm stuck on starting windows")
    assert "articles/microsoft.compute.cantrdp.noboot/windowsstoperror-bluescreen-generic.md" in top_paths(
        engine, "blue screen", services=["microsoft.compute"])


def test_dev_queries_meet_the_bar(engine):
    need(DEV_QUERIES.exists(), f"dev queries not found at {DEV_QUERIES}")
    report = evaluate(engine, load_queries(DEV_QUERIES))
    assert report["overall"]["mrr@10"] >= 0.85, report["kinds"]
    assert report["overall"]["recall@5"] >= 0.80, report["kinds"]


def test_our_eval_set_holds_on_the_half_never_tuned_on(engine):
    """eval/queries.json: ranking was changed only while looking at the tune half."""
    report = evaluate(engine, load_queries(ROOT / "eval" / "queries.json"))
    test = report["splits"]["test"]
    assert test["overall"]["n"] >= 100 and len(test["kinds"]) == 7
    # figures of the landed ranking, less a margin for harmless drift (README, "Relevance")
    assert test["overall"]["mrr@10"] >= 0.70, test
    assert test["overall"]["recall@5"] >= 0.55, test


def test_every_aadsts_code_the_corpus_documents_finds_something(engine, corpus_dir):
    """An agent pasting AADSTS<N> never meets an empty page when an article says "Error Code: N"."""
    codes = set()
    for path in Path(corpus_dir, "articles").rglob("*.md"):
        text = path.read_text(encoding="utf-8", errors="replace")
        codes.update(re.findall(r"Error Code:?\**:? *(\d+)", text, flags=re.I))
    assert len(codes) > 20
    empty = [c for c in sorted(codes) if engine.search(f"AADSTS{c}", per_page=1)["total"] == 0]
    assert not empty


def test_extra_words_never_empty_results(engine):
    base = engine.search("storage 403")["total"]
    assert base > 0
    assert engine.search("storage 403 please help asap zzzqqq")["total"] >= base


def test_typo_suggestion_on_corpus(engine):
    res = engine.search("blue scren")
    assert res["suggestion"] == "blue screen"
    assert "bluescreen" in res["results"][0]["path"]


def test_every_facet_count_matches_filtered_total(engine):
    res = engine.search("connection timeout")
    for name, param in (("service", "services"), ("tag", "tags")):
        for f in res["facets"][name][:8]:
            assert engine.search("connection timeout", **{param: [f["value"]]})["total"] == f["count"]


def _content(article: dict) -> tuple:
    norm = lambda text: " ".join(text.lower().split())  # noqa: E731
    return (norm(article["title"]), norm(article["description"]), norm(article["info"]), norm(article["issue"]),
            tuple(norm(s) for s in article["steps"]), norm(article["body"]))


@pytest.mark.parametrize("q", ["AADSTS50076 MFA", "vm stuck on starting windows", "kubernetes dns",
                               "storage 403", "backup failed", "sql database connection"])
def test_a_result_and_its_copies_say_the_same(engine, q):
    results = engine.search(q, per_page=20)["results"]
    grouped = [r for r in results if r["copies"]]
    for r in grouped:
        lead = _content(engine.article(r["id"]))
        assert all(_content(engine.article(c["id"])) == lead for c in r["copies"]), (q, r["id"])
