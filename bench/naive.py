"""The naive Whoosh 2.7.4 baseline the issue measured, rebuilt here so every run measures it too.

It is what one writes first with Whoosh, and nothing more: a regex reader of the
``<properties .../>`` block plus the markdown text, a schema with ``StemmingAnalyzer`` on four text
fields (title boosted), BM25F, ``MultifieldParser`` with ``OrGroup.factory(0.9)`` (or the default
AND grouping), and facets from ``searcher.search(q, limit=10, groupedby=["service", "tags"])``
with service as an ID field and tags as a comma-separated KEYWORD field.  One process,
``limitmb=256``.

It exists only to be measured beside kb in the same run; kb never imports it.

Also usable on its own::

    python -m bench.naive build CORPUS/selfhelp INDEX_DIR      # prints a JSON report
    python -m bench.naive search INDEX_DIR "vm wont start"
    NAIVE_INDEX=INDEX_DIR gunicorn 'bench.naive:create_app()'  # GET /api/search, GET /healthz
"""

from __future__ import annotations

import html
import json
import os
import re
import sys
import time
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh import qparser
from whoosh import query as wq
from whoosh.analysis import StemmingAnalyzer
from whoosh.fields import ID, KEYWORD, TEXT, Schema
from whoosh.scoring import BM25F

TEXT_FIELDS = ("title", "description", "info", "body")
TITLE_BOOST = 2.0
FACETS = ("service", "tags")
LIMITMB = 256

# -- parsing: a regex reader, as one writes it on day one ----------------------------------------

PROPS_RE = re.compile(r"<properties\b((?:\"[^\"]*\"|'[^']*'|[^<>\"'])*)>", re.I)
ATTR_RE = re.compile(r"([\w.:-]+)\s*=\s*\"([^\"]*)\"")
H1_RE = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)
COMMENT_RE = re.compile(r"<!--.*?-->", re.S)
TAG_RE = re.compile(r"<[^<>]+>")
IMAGE_RE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
LINK_RE = re.compile(r"\[([^\]]*)\]\([^)]*\)")
MARK_RE = re.compile(r"^[ \t]*(?:#{1,6}|[-*+]|\d+\.|>)[ \t]+|[*_`]{1,3}", re.M)


def parse_file(root: Path, rel: str) -> dict | None:
    """One article as a Whoosh document, or None when the file is unreadable or empty."""
    try:
        raw = (root / rel).read_bytes()
    except OSError:
        return None
    text = raw.decode("utf-8-sig", errors="replace").replace("\r\n", "\n")
    props: dict[str, str] = {}
    m = PROPS_RE.search(text)
    if m:
        props = {k.lower(): html.unescape(v) for k, v in ATTR_RE.findall(m.group(1))}
        text = text[m.end():]
    h1 = H1_RE.search(text)
    title = props.get("pagetitle") or (h1.group(1) if h1 else "") or Path(rel).stem
    body = COMMENT_RE.sub(" ", text)
    body = TAG_RE.sub(" ", body)
    body = IMAGE_RE.sub(r"\1", body)
    body = LINK_RE.sub(r"\1", body)
    body = MARK_RE.sub("", body)
    if not body.strip() and not props:
        return None
    return {
        "path": rel,
        "title": title.strip(),
        "description": props.get("description", ""),
        "info": props.get("infobubbletext", ""),
        "body": body,
        "service": props.get("service", "").strip().lower(),
        "tags": props.get("resourcetags", ""),
    }


def discover(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.md") if p.is_file())


def schema() -> Schema:
    ana = StemmingAnalyzer()
    return Schema(
        path=ID(stored=True, unique=True),
        title=TEXT(analyzer=ana, stored=True, field_boost=TITLE_BOOST),
        description=TEXT(analyzer=ana, stored=True),
        info=TEXT(analyzer=ana, stored=True),
        body=TEXT(analyzer=ana),
        service=ID(stored=True),
        tags=KEYWORD(stored=True, commas=True, lowercase=True),
    )


def build(root: str | os.PathLike, index_dir: str | os.PathLike, procs: int = 1) -> dict:
    """Parse every article, then index them all in one writer; returns timings in seconds."""
    root = Path(root)
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    docs = [d for d in (parse_file(root, rel) for rel in discover(root)) if d is not None]
    t1 = time.perf_counter()
    ix = whoosh_index.create_in(str(index_dir), schema())
    writer = ix.writer(limitmb=LIMITMB, procs=procs) if procs > 1 else ix.writer(limitmb=LIMITMB)
    for d in docs:
        writer.add_document(**d)
    writer.commit()
    t2 = time.perf_counter()
    return {"docs": len(docs), "parse_s": t1 - t0, "index_s": t2 - t1, "total_s": t2 - t0}


def update(root: str | os.PathLike, index_dir: str | os.PathLike, paths: list[str]) -> dict:
    """Re-index the given (known) changed files with ``update_document``; no change detection."""
    root = Path(root)
    t0 = time.perf_counter()
    ix = whoosh_index.open_dir(str(index_dir))
    writer = ix.writer(limitmb=LIMITMB)
    n = 0
    for rel in paths:
        d = parse_file(root, rel)
        if d is None:
            writer.delete_by_term("path", rel)
        else:
            writer.update_document(**d)
            n += 1
    writer.commit()
    return {"docs": n, "total_s": time.perf_counter() - t0}


# -- searching ---------------------------------------------------------------------------------


class NaiveSearch:
    """One open searcher, BM25F, the MultifieldParser over the four text fields."""

    def __init__(self, index_dir: str | os.PathLike):
        self.ix = whoosh_index.open_dir(str(index_dir))
        self.searcher = self.ix.searcher(weighting=BM25F())
        self.parsers = {
            "or": qparser.MultifieldParser(list(TEXT_FIELDS), self.ix.schema, group=qparser.OrGroup.factory(0.9)),
            "and": qparser.MultifieldParser(list(TEXT_FIELDS), self.ix.schema),
        }

    def search(self, q: str, services=(), tags=(), page: int = 1, per_page: int = 10,
               group: str = "or", facets: bool = True) -> dict:
        started = time.perf_counter()
        query = self.parsers[group].parse(q) if q.strip() else wq.Every()
        filters = []
        if services:
            filters.append(wq.Or([wq.Term("service", s.lower()) for s in services]))
        if tags:
            filters.append(wq.Or([wq.Term("tags", t.lower()) for t in tags]))
        flt = wq.And(filters) if filters else None
        res = self.searcher.search(query, limit=page * per_page, filter=flt,
                                   groupedby=list(FACETS) if facets else None)
        out_facets = {}
        if facets:
            # groupedby collected every match, so the exact total is free
            total = len(res)
            for name in FACETS:
                groups = res.groups(name)
                counts = sorted(((k, len(v)) for k, v in groups.items()), key=lambda kv: (-kv[1], str(kv[0])))
                out_facets[name] = [{"value": k, "count": c} for k, c in counts[:30]]
        else:
            # an exact len() would run the whole query again; the plain top-10 search doesn't
            total = res.estimated_length()
        hits = res[(page - 1) * per_page:page * per_page]
        results = [{"path": hit["path"], "title": hit.get("title", ""), "description": hit.get("description", ""),
                    "service": hit.get("service", ""), "score": round(hit.score, 4)} for hit in hits]
        return {"query": q, "total": total, "page": page, "per_page": per_page, "results": results,
                "facets": out_facets, "took_ms": round((time.perf_counter() - started) * 1000, 2)}


# -- a minimal Flask app, served by gunicorn like kb -------------------------------------------


def create_app():
    from flask import Flask, jsonify, request

    app = Flask("naive")
    index_dir = os.environ["NAIVE_INDEX"]
    state: dict[str, NaiveSearch] = {}

    def engine() -> NaiveSearch:  # opened in each worker after the fork, on first use
        if "e" not in state:
            state["e"] = NaiveSearch(index_dir)
        return state["e"]

    @app.get("/api/search")
    def api_search():
        a = request.args
        return jsonify(engine().search(a.get("q", ""), a.getlist("service"), a.getlist("tag"),
                                       int(a.get("page", 1)), int(a.get("per_page", 10))))

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok", "articles": engine().searcher.doc_count()})

    return app


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "build":
        t0 = time.perf_counter()
        report = build(argv[1], argv[2], procs=int(argv[3]) if len(argv) > 3 else 1)
        report["process_s"] = time.perf_counter() - t0
        print(json.dumps(report))
        return 0
    if len(argv) >= 3 and argv[0] == "update":
        print(json.dumps(update(argv[1], argv[2], argv[3:])))
        return 0
    if len(argv) >= 3 and argv[0] == "search":
        print(json.dumps(NaiveSearch(argv[1]).search(" ".join(argv[2:])), indent=2))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
