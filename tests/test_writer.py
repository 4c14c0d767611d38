"""kb's segment builder writes what Whoosh's own writer writes, and the analyzers' one-call
``positions()`` gives what their token streams give."""

from __future__ import annotations

import pickle

import pytest
from whoosh import index as whoosh_index
from whoosh.analysis import LowercaseFilter, RegexTokenizer

from kb import whooshcodec, writer
from kb.analysis import KbTokenizer, SpellingTokenizer
from kb.articles import Skipped, discover, load
from kb.documents import TEXT_FIELDS, article_document, make_schema

EDGE_TEXTS = [
    "",
    "the and of",  # stop words only
    "Error 0x80070005 AADSTS50076 ERROR_DISK_FULL Microsoft.Compute/virtualMachines",
    "run runs running runner Runs-running",  # parts that stem to the whole's stem, one position
    "Ünïcödé wörds, İstanbul ǅ ß ﬁle 日本語のテキスト",
    "don't can't it's O'Brien",
    "a-b-c-d-e-f-g-h " * 50,
]


def _documents(root, every: int = 1) -> list[dict]:
    docs = []
    for path in discover(root)[::every]:
        item = load(root, path)
        if not isinstance(item, Skipped):
            docs.append(article_document(item))
    return docs


def _whoosh_index(path, docs: list[dict]):
    ix = whoosh_index.create_in(str(path), make_schema())
    w = ix.writer(codec=writer.codec())
    for d in docs:
        w.add_document(**d)
    w.commit()
    return ix


def _kb_index(path, docs: list[dict], reverse: bool):
    ix = whoosh_index.create_in(str(path), make_schema())
    builder = writer.SegmentBuilder(ix.storage, ix.indexname, ix.schema, reverse=reverse)
    for d in reversed(docs) if reverse else docs:
        builder.add(d)
    segment = builder.finish()
    whoosh_index.TOC(ix.schema, [segment], 1).write(ix.storage, ix.indexname)
    return whoosh_index.open_dir(str(path))


def _stats(info) -> tuple:
    return (info.weight(), info.doc_frequency(), info.min_length(), info.max_length(), info.max_weight(),
            info.min_id(), info.max_id())


def assert_same_index(expected, actual) -> None:
    with expected.reader() as a, actual.reader() as b:
        assert a.doc_count_all() == b.doc_count_all()
        terms = list(a.all_terms())
        assert terms == list(b.all_terms())
        for field, term in terms:
            assert _stats(a.term_info(field, term)) == _stats(b.term_info(field, term)), (field, term)
            ma, mb = a.postings(field, term), b.postings(field, term)
            assert list(ma.items_as("weight")) == list(mb.items_as("weight")), (field, term)
            if a.schema[field].format.supports("positions"):
                ma, mb = a.postings(field, term), b.postings(field, term)
                assert list(ma.items_as("positions")) == list(mb.items_as("positions")), (field, term)
        for docnum in range(a.doc_count_all()):
            assert a.stored_fields(docnum) == b.stored_fields(docnum)
            for field in (*TEXT_FIELDS, "spell", "tag"):
                assert a.doc_field_length(docnum, field) == b.doc_field_length(docnum, field)
        for field in (*TEXT_FIELDS, "spell"):
            assert a.field_length(field) == b.field_length(field)
        ca, cb = a.column_reader("dupkey"), b.column_reader("dupkey")
        assert [ca[i] for i in range(a.doc_count_all())] == [cb[i] for i in range(b.doc_count_all())]


@pytest.mark.parametrize("reverse", [False, True])
def test_builder_writes_what_whoosh_writes(sample_dir, tmp_path, monkeypatch, reverse):
    monkeypatch.setattr(whooshcodec, "BLOCK_LIMIT", 4)  # many terms span several blocks
    docs = _documents(sample_dir)
    for i, text in enumerate(EDGE_TEXTS):
        docs.append({"id": f"edge-{i}", "path": f"edge/{i}.md", "title": text or "x", "body": text, "spell": text,
                     "tag": "a,b", "dupkey": f"d{i}"})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert_same_index(_whoosh_index(tmp_path / "a", docs), _kb_index(tmp_path / "b", docs, reverse))


def test_builder_writes_what_whoosh_writes_on_the_real_corpus(corpus_dir, tmp_path):
    docs = _documents(corpus_dir, every=50)  # ~300 real articles, of all the corpus' shapes
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert_same_index(_whoosh_index(tmp_path / "a", docs), _kb_index(tmp_path / "b", docs, reverse=False))


def _gathered(tokens) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for t in tokens:
        found.setdefault(t.text, []).append(t.pos)
    return found


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_positions_are_the_token_stream(text):
    assert KbTokenizer().positions(text) == _gathered(KbTokenizer()(text, positions=True))
    whoosh_spelling = RegexTokenizer(r"[^\W\d_]{3,}") | LowercaseFilter()  # what it replaced
    assert SpellingTokenizer().positions(text) == _gathered(whoosh_spelling(text, positions=True))
    assert _gathered(SpellingTokenizer()(text, positions=True)) == _gathered(whoosh_spelling(text, positions=True))


def test_code_parts_keep_their_offsets():
    text = "see AADSTS50076 now"
    tokens = [(t.text, t.startchar, t.endchar) for t in KbTokenizer()(text, chars=True)]
    assert tokens == [("see", 0, 3), ("aadsts50076", 4, 15), ("aadst", 4, 10), ("50076", 10, 15), ("now", 16, 19)]


def test_query_analysis_does_not_fill_the_tokenizer_cache():
    tok = KbTokenizer()
    list(tok("typed query words AADSTS50076 " + "x" * 400, positions=True))
    assert tok._cache == {}
    tok.positions("indexed words")
    assert set(tok._cache) == {"indexed", "words"}


def test_tokenizer_cache_is_not_pickled_into_the_index():
    tok = KbTokenizer()
    tok.positions("warm the cache with some words")
    copy = pickle.loads(pickle.dumps(tok))
    assert copy == tok and copy._cache == {}
    assert copy.positions("some words") == tok.positions("some words")


@pytest.mark.parametrize("codec", ["kb", "whoosh-default"])
def test_scoring_reads_postings_as_whoosh_does(sample_dir, tmp_path, monkeypatch, codec):
    """kb.scoring reads W3 posting blocks itself: the same documents and weights as Whoosh's
    matcher, for kb's segments and for Whoosh's own (zlib blocks of 128, as an older kb wrote)."""
    from whoosh.codec.whoosh3 import W3Codec
    from whoosh.matching import FilterMatcher

    from kb.whooshcodec import segment_postings as _segment_postings

    monkeypatch.setattr(whooshcodec, "BLOCK_LIMIT", 8)
    docs = _documents(sample_dir)
    if codec == "kb":
        ix = _kb_index(tmp_path, docs, reverse=False)
    else:
        ix = whoosh_index.create_in(str(tmp_path), make_schema())
        w = ix.writer(codec=W3Codec(blocklimit=8))
        for d in docs:
            w.add_document(**d)
        w.commit()
    with ix.reader() as r:
        seg = r.leaf_readers()[0][0] if hasattr(r, "leaf_readers") and r.leaf_readers() else r
        checked = 0
        for field, term in r.all_terms():
            m = seg.postings(field, term)
            m = m.child if isinstance(m, FilterMatcher) else m
            expected = list(m.items_as("weight"))
            ids, weights = _segment_postings(seg, field, seg.schema[field].from_bytes(term))
            assert list(zip(ids.tolist(), weights.tolist())) == expected, (field, term)
            checked += 1
        assert checked > 1000
        assert _segment_postings(seg, "body", "nosuchwordanywhere") is None
