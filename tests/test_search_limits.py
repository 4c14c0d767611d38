"""What bounds a search's cost: wildcard budgets (per query and per worker), the cooperative
deadline, caches bounded in bytes, generation switches that leak nothing, and damaged segment
files that answer an error instead of killing the worker."""

from __future__ import annotations

import gc
import os
import random
import shutil
import string
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from pathlib import Path

import pytest
from whoosh import query as wq

from kb import query as kq
from kb.deadline import Deadline, SearchTimeout
from kb.index import build
from kb.search import IndexDamaged, SearchEngine
from kb.web import create_app

ARTICLE = """<properties pageTitle="{title}" description="{title}" service="microsoft.compute"
 resourceTags="windows" articleId="{n}" />

# {title}

{body}
"""


def _write_corpus(root: Path, count: int, words_per_article: int, seed: int = 7) -> None:
    """``count`` articles whose bodies hold many distinct words starting with "re" and "co"."""
    rnd = random.Random(seed)
    art = root / "articles" / "microsoft.compute"
    art.mkdir(parents=True)
    for n in range(count):
        words = ["re" + "".join(rnd.choice("abcdefghij") for _ in range(5)) for _ in range(words_per_article)]
        words += ["co" + "".join(rnd.choice("abcdefghij") for _ in range(5)) for _ in range(words_per_article)]
        body = " ".join(words) + " the virtual machine does not start"
        (art / f"article-{n}.md").write_text(ARTICLE.format(title=f"Restart problem {n}", n=n, body=body))


@pytest.fixture(scope="module")
def wide_index(tmp_path_factory) -> Path:
    """A small index whose vocabulary has thousands of words per two-letter prefix."""
    root = tmp_path_factory.mktemp("wide-corpus")
    _write_corpus(root, 40, 60)
    index_dir = tmp_path_factory.mktemp("wide-index")
    build(root, index_dir, full=True, workers=1)
    return index_dir


@pytest.fixture
def bucket(monkeypatch):
    """A full expansion bucket of this test's own (the process's one is shared by all tests)."""
    fresh = kq.ExpansionBucket()
    monkeypatch.setattr(kq, "BUCKET", fresh)
    return fresh


def _expanded_terms(q: wq.Query) -> list[wq.Term]:
    return [leaf for leaf in q.leaves() if isinstance(leaf, wq.Term)]


SIXTEEN = "aa* ae* ai* ao* au* ba* be* bi* bo* bu* ca* ce* ci* co* cu* re*"


@pytest.mark.parametrize("q", ["re*", "re* co*", SIXTEEN, "body:re*", "title:re* OR body:co*"])
def test_wildcards_share_one_budget_per_query(wide_index, bucket, q):
    engine = SearchEngine(wide_index, result_cache=0)
    gen = engine.generation()
    parsed = gen.queries.parse(q)
    assert parsed.query is not None
    terms = _expanded_terms(parsed.query)
    assert 0 < len(terms) <= kq.MAX_EXPANDED_TERMS
    postings = sum(gen.searcher.reader().doc_frequency(t.fieldname, t.text) for t in terms)
    assert postings <= kq.MAX_EXPANDED_POSTINGS
    res = engine.search(q)
    assert res["total"] > 0
    assert any("too many words" in w for w in res["warnings"])


def test_a_wildcard_that_fits_is_searched_whole(wide_index, bucket):
    engine = SearchEngine(wide_index, result_cache=0)
    res = engine.search("restart*")
    assert res["total"] == 40 and res["warnings"] == []


def test_a_worker_looping_wildcards_gets_degraded_answers_and_plain_searches_do_not(wide_index, monkeypatch):
    monkeypatch.setattr(kq, "BUCKET", kq.ExpansionBucket(capacity=100, refill=0))
    engine = SearchEngine(wide_index)
    plain = engine.search("virtual machine")
    answers = [engine.search(SIXTEEN, page=page) for page in range(1, 8)]
    busy = [a for a in answers if any("many wildcard searches" in w for w in a["warnings"])]
    assert busy, "an empty bucket must say that wildcards were cut"
    assert answers[-1] in busy
    # a degraded answer is not cached: it depends on the load of that moment
    gen = engine.generation()
    assert gen.results.get((SIXTEEN, (), (), 7, 10, 30)) is None
    # searches without wildcards take nothing from the bucket
    again = engine.search("virtual machine page", per_page=5)
    assert again["warnings"] == [] and again["total"] >= plain["total"]


def test_the_bucket_refills_over_time():
    b = kq.ExpansionBucket(capacity=100, refill=1e9)
    assert b.take(100) == 100
    assert b.take(50) == 50  # refilled at once at this rate
    slow = kq.ExpansionBucket(capacity=100, refill=0)
    assert slow.take(70) == 70 and slow.take(70) == 30 and slow.take(1) == 0
    slow.give_back(10)
    assert slow.take(70) == 10


# -- deadline ---------------------------------------------------------------------------------


def test_deadline_counts_from_its_start():
    assert not Deadline(None).expired() and not Deadline(0).expired()
    with pytest.raises(SearchTimeout):
        Deadline(1e-9).check()


@pytest.mark.parametrize("q", ["rdp connection", "title:rdp OR body:disk*"])
def test_a_search_past_its_deadline_stops_in_any_thread(sample_index, q):
    engine = SearchEngine(sample_index, result_cache=0)
    engine.generation()
    outcome: list[BaseException | dict] = []

    def run() -> None:
        try:
            outcome.append(engine.search(q, timeout=1e-9))
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            outcome.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert isinstance(outcome[0], SearchTimeout)
    # nothing was left half done: the same engine answers the next search
    assert engine.search(q)["total"] > 0


def test_the_api_answers_503_past_the_deadline_from_a_thread(sample_index):
    app = create_app({"KB_INDEX": str(sample_index), "KB_SEARCH_TIMEOUT": 1e-9, "TESTING": True})
    statuses = []

    def run() -> None:
        with app.test_client() as client:
            r = client.get("/api/search?q=rdp+connection")
            statuses.append((r.status_code, r.get_json()["parameter"]))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert statuses == [(503, "q")]


# -- caches bounded in bytes --------------------------------------------------------------------


def test_the_postings_cache_is_bounded_in_bytes_and_counts_them_honestly(sample_index):
    engine = SearchEngine(sample_index, postings_cache=300_000)
    stats = engine.generation().stats
    rnd = random.Random(3)
    words = ["".join(rnd.choice(string.ascii_lowercase) for _ in range(14)) for _ in range(2000)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for w in words[:400]:
            stats.term_tf(w)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown <= stats._cached * 1.1, "the cache's own count must not understate what it holds"
    for w in words:
        stats.term_tf(w)
    for w in ("window", "disk", "error", "storage", "network", "account"):
        stats.term_tf(w)
    assert 0 < stats._cached <= 300_000


def test_the_result_cache_is_bounded_in_bytes(sample_index):
    engine = SearchEngine(sample_index, result_cache=100_000)
    for n in range(60):
        engine.search(f"error {n}", per_page=100)
    gen = engine.generation()
    assert 0 < gen.results.held <= 100_000


def test_a_cached_answer_equals_a_computed_one(sample_index):
    cached = SearchEngine(sample_index)
    fresh = SearchEngine(sample_index, result_cache=0)
    for q in ("rdp", "blue screen", "title:vpn"):
        first = cached.search(q)
        first.pop("took_ms")
        first["results"].append("changed by a caller")
        again = cached.search(q)
        computed = fresh.search(q)
        again.pop("took_ms")
        computed.pop("took_ms")
        assert again == computed


# -- generation switches --------------------------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _mapped(under: Path) -> list[str]:
    with open("/proc/self/maps") as f:
        return [line.strip() for line in f if str(under) in line or "(deleted)" in line and ".seg" in line]


def test_generation_switches_release_files_and_mappings(tmp_path, sample_dir):
    corpus = tmp_path / "corpus" / "articles"
    shutil.copytree(sample_dir, tmp_path / "all")
    corpus.mkdir(parents=True)
    for md in sorted((tmp_path / "all").rglob("*.md"))[:6]:
        shutil.copy(md, corpus / md.name)
    index_dir = tmp_path / "index"
    build(corpus.parent, index_dir, full=True, workers=1)
    engine = SearchEngine(index_dir)
    levels = []
    for switch in range(10):
        # words in no article: typo corrections run (and were cached on the QueryBuilder)
        engine.search(f"conection windos probleem{switch}")
        build(corpus.parent, index_dir, full=True, workers=1)
        gen = engine.generation()
        engine.search(f"rdpp diskk {switch}")
        assert gen is engine.generation()
        levels.append((_open_fds(), len(_mapped(index_dir))))
    assert levels[-1][0] <= levels[0][0], levels
    assert all(mapped == 0 for _fds, mapped in levels), _mapped(index_dir)
    assert not [m for m in _mapped(index_dir) if "(deleted)" in m]
    # the old generations were let go, so the builds could delete them
    assert len([p for p in index_dir.iterdir() if p.name.startswith("gen-")]) <= 2


# -- damaged segment files ----------------------------------------------------------------------------


def _truncate_a_segment(index_dir: Path) -> Path:
    gen = next(p for p in index_dir.iterdir() if p.name.startswith("gen-"))
    seg = max(gen.glob("*.seg"), key=lambda p: p.stat().st_size)
    with open(seg, "r+b") as f:
        f.truncate(seg.stat().st_size // 3)
    return seg


def test_a_truncated_segment_while_served_answers_errors_not_a_crash(tmp_path, sample_index):
    """In a child process, as a worker would: the old code died of SIGBUS here."""
    index_dir = tmp_path / "index"
    shutil.copytree(sample_index, index_dir)
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_search_limits import _truncate_a_segment
        from kb.search import IndexDamaged, SearchEngine
        from kb.web import create_app
        app = create_app({{"KB_INDEX": {str(index_dir)!r}, "KB_RESULT_CACHE_MB": 0, "TESTING": True}})
        client = app.test_client()
        assert client.get("/api/search?q=rdp").status_code == 200
        assert client.get("/healthz").status_code == 200
        _truncate_a_segment(Path({str(index_dir)!r}))
        out = {{}}
        for path in ("/api/search?q=disk+error", "/api/search?q=title:vpn*", "/healthz",
                     "/api/articles/microsoft.compute~rdp-connection-failed",
                     "/api/articles/microsoft.compute~rdp-connection-failed/related",
                     "/articles/microsoft.compute~rdp-connection-failed",
                     "/api/v1/facets/service?q=disk+error", "/api/v1/suggest?q=disk", "/"):
            r = client.get(path)
            out[path] = [r.status_code, (r.get_json(silent=True) or {{}}).get("message", "")]
        print(json.dumps(out))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    import json

    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["/healthz"][0] == 503 and "rebuild" in out["/healthz"][1]
    for path, (status, _message) in out.items():
        assert status in (200, 404, 503), (path, status)
    assert out["/api/search?q=disk+error"][0] == 503


def test_a_truncated_segment_is_refused_at_open(tmp_path, sample_index):
    index_dir = tmp_path / "index"
    shutil.copytree(sample_index, index_dir)
    _truncate_a_segment(index_dir)
    with pytest.raises(IndexDamaged, match="rebuild"):
        SearchEngine(index_dir).search("rdp")
    client = create_app({"KB_INDEX": str(index_dir), "TESTING": True}).test_client()
    for path in ("/healthz", "/api/search?q=rdp"):
        r = client.get(path)
        assert r.status_code == 503 and "rebuild" in r.get_json()["message"]


def test_kb_serve_answers_503_for_a_segment_truncated_while_it_serves(tmp_path, sample_index):
    """The real server, 2 gunicorn workers: no 500 and no dead worker, and /healthz tells."""
    from test_serve import Server

    index_dir = tmp_path / "index"
    shutil.copytree(sample_index, index_dir)
    with Server("--index", str(index_dir), "--workers", "2") as srv:
        for _ in range(4):  # both workers open the generation
            assert srv.json("/api/search?q=rdp")[0] == 200
        _truncate_a_segment(index_dir)
        statuses = [srv.get(path)[0] for path in ("/api/search?q=disk+error", "/api/search?q=title:vpn*",
                                                  "/", "/api/articles/nosuch", "/healthz") for _ in range(3)]
        health, body = srv.json("/healthz")
        out = srv.output
    assert 500 not in statuses, statuses
    assert health == 503 and "rebuild" in body["message"]
    assert "SIGBUS" not in out and "Worker (pid" not in out, out
