"""Search: the one small interface the web app and the CLI talk to.

:class:`SearchEngine` answers two questions, ``search`` and ``article``, with plain dicts whose shape
is the JSON API's (see ``kb/openapi.py``).  Nothing outside this module knows it is Whoosh, so
another engine could serve the same API by providing these methods.

Per index generation it keeps one open searcher and, for each facet value, a bitmask of the
documents carrying it (Python ints), so facet counts are an AND and a popcount per value instead
of a pass over every hit.  It watches ``CURRENT`` and moves to a new generation on the next
request after a build switches it, without a restart.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from whoosh import highlight
from whoosh import index as whoosh_index
from whoosh.query import Query

from . import query as kbquery
from .index import CURRENT, LEASE, current_generation, read_manifest

FACETS = ("service", "tag")
#: Facet values listed per facet (selected values are always listed).
FACET_LIMIT = 30
SNIPPET_CHARS = 240


class IndexMissing(Exception):
    """No completed index exists in the index directory."""


def _mask(ids) -> int:
    """A bitmask (Python int) with the bits of ``ids`` set."""
    ids = list(ids)
    if not ids:
        return 0
    buf = bytearray(max(ids) // 8 + 1)
    for i in ids:
        buf[i >> 3] |= 1 << (i & 7)
    return int.from_bytes(buf, "little")


def _bits(mask: int, skip: int = 0, limit: int | None = None) -> list[int]:
    """Document numbers of the set bits of ``mask``, in order, after skipping ``skip`` of them."""
    out: list[int] = []
    data = mask.to_bytes((mask.bit_length() + 7) // 8, "little")
    seen = 0
    for byte_no, byte in enumerate(data):
        if not byte:
            continue
        base = byte_no * 8
        for bit in range(8):
            if byte >> bit & 1:
                if seen >= skip:
                    out.append(base + bit)
                    if limit is not None and len(out) >= limit:
                        return out
                seen += 1
    return out


class Generation:
    """One open index generation: its searcher, facet bitmasks and a reader's lease."""

    def __init__(self, path: Path):
        self.path = path
        self.name = path.name
        # A shared lease tells builders this generation is in use (see kb.index.collect_garbage).
        self._lease = os.open(path / LEASE, os.O_RDONLY)
        fcntl.flock(self._lease, fcntl.LOCK_SH)
        self.manifest = read_manifest(path)
        self.ix = whoosh_index.open_dir(str(path))
        self.searcher = self.ix.searcher()
        reader = self.searcher.reader()
        self.doc_count = reader.doc_count()
        self.all = _mask(reader.all_doc_ids())
        self.facets: dict[str, dict[str, int]] = {}
        for name in FACETS:
            values: dict[str, int] = {}
            if name in reader.indexed_field_names():
                for term in reader.lexicon(name):
                    value = term.decode("utf-8") if isinstance(term, bytes) else term
                    values[value] = _mask(reader.postings(name, term).all_ids()) & self.all
            self.facets[name] = values

    def docnum(self, article_id: str) -> int | None:
        return self.searcher.document_number(id=article_id)

    def close(self) -> None:
        try:
            self.searcher.close()
        finally:
            try:
                os.close(self._lease)  # releases the shared lease
            except OSError:
                pass

    def __del__(self):  # the last request using an old generation closes it
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


@dataclass
class _Stamp:
    ino: int
    mtime_ns: int


class SearchEngine:
    """Search an index directory; safe to share between threads."""

    def __init__(self, index_dir: str | os.PathLike):
        self.index_dir = Path(index_dir)
        self._lock = threading.Lock()
        self._gen: Generation | None = None
        self._stamp: _Stamp | None = None

    # -- generations -----------------------------------------------------------------------

    def generation(self) -> Generation:
        """The current generation, reopened when ``CURRENT`` has changed since the last call."""
        try:
            st = os.stat(self.index_dir / CURRENT)
            stamp = _Stamp(st.st_ino, st.st_mtime_ns)
        except OSError:
            stamp = None
        gen = self._gen
        if gen is not None and stamp == self._stamp:
            return gen
        with self._lock:
            if self._gen is not None and stamp == self._stamp:
                return self._gen
            path = current_generation(self.index_dir)
            if path is None:
                if self._gen is not None:
                    return self._gen  # keep serving what we have
                raise IndexMissing(f"no index in {self.index_dir}; run `kb index` first")
            if self._gen is None or path.name != self._gen.name:
                self._gen = Generation(path)
            self._stamp = stamp
            return self._gen

    def info(self) -> dict:
        gen = self.generation()
        return {
            "generation": gen.name,
            "articles": gen.doc_count,
            "built_at": gen.manifest.get("built_at"),
        }

    # -- search ------------------------------------------------------------------------------

    def search(
        self,
        q: str = "",
        services: tuple[str, ...] | list[str] = (),
        tags: tuple[str, ...] | list[str] = (),
        page: int = 1,
        per_page: int = 10,
    ) -> dict:
        """Search for ``q`` within the selected facet values.

        Several values of one facet combine with OR, different facets with AND.  Facet counts are
        disjunctive: a facet's counts ignore that facet's own selection, so they say how many
        results selecting each value would give.
        """
        started = time.perf_counter()
        gen = self.generation()
        services = _norm_values(services)
        tags = _norm_values(tags)
        parsed = kbquery.parse(q, gen.searcher)
        if parsed.query is None:
            matched = gen.all
        else:
            matched = _mask(parsed.query.matcher(gen.searcher).all_ids()) & gen.all if gen.doc_count else 0
        selected = {"service": services, "tag": tags}
        masks = {name: self._selection(gen, name, values) for name, values in selected.items()}
        final = matched
        for m in masks.values():
            if m is not None:
                final &= m
        total = final.bit_count()

        facets = {}
        for name in FACETS:
            base = matched
            for other, m in masks.items():
                if other != name and m is not None:
                    base &= m
            facets[name] = _facet_counts(gen.facets[name], base, selected[name])

        start = (page - 1) * per_page
        results: list[dict] = []
        if start < total:
            if parsed.query is None:
                docnums = _bits(final, start, per_page)
                hits = [(d, None) for d in docnums]
            else:
                hits = self._ranked(gen, parsed.query, final, start + per_page)[start:]
            terms = parsed.highlight_terms()
            for docnum, score in hits:
                results.append(_result(gen, docnum, score, terms))
        return {
            "query": q,
            "total": total,
            "page": page,
            "per_page": per_page,
            "results": results,
            "facets": facets,
            "suggestion": parsed.suggestion,
            "took_ms": round((time.perf_counter() - started) * 1000, 2),
        }

    @staticmethod
    def _selection(gen: Generation, name: str, values: list[str]) -> int | None:
        if not values:
            return None
        m = 0
        for v in values:
            m |= gen.facets[name].get(v, 0)
        return m

    @staticmethod
    def _ranked(gen: Generation, q: Query, allowed: int, limit: int) -> list[tuple[int, float]]:
        allow = None if allowed == gen.all else set(_bits(allowed))
        res = gen.searcher.search(q, limit=limit, filter=allow)
        return [(hit.docnum, hit.score) for hit in res]

    # -- articles ------------------------------------------------------------------------------

    def article(self, article_id: str) -> dict | None:
        """The whole article as stored at index time, or None for an unknown id."""
        if not isinstance(article_id, str) or not article_id or len(article_id) > 1000:
            return None
        gen = self.generation()
        docnum = gen.docnum(article_id)
        if docnum is None:
            return None
        data = json.loads(gen.searcher.stored_fields(docnum)["article"])
        data.pop("warnings", None)
        data["url"] = article_url(data["id"])
        return data


def article_url(article_id: str) -> str:
    return f"/articles/{article_id}"


def _norm_values(values) -> list[str]:
    out: dict[str, None] = {}
    for v in values or ():
        v = str(v).strip().lower()
        if v:
            out.setdefault(v, None)
    return list(out)


def _facet_counts(values: dict[str, int], base: int, selected: list[str]) -> list[dict]:
    counts = [(v, (base & m).bit_count()) for v, m in values.items()]
    listed = sorted((c for c in counts if c[1] > 0), key=lambda c: (-c[1], c[0]))[:FACET_LIMIT]
    names = {v for v, _ in listed}
    for v in selected:
        if v not in names:
            listed.append((v, (base & values.get(v, 0)).bit_count()))
    return [{"value": v, "count": n, "selected": v in selected} for v, n in listed]


_formatter = highlight.HtmlFormatter(tagname="mark", between=" … ")
_fragmenter = highlight.ContextFragmenter(maxchars=SNIPPET_CHARS, surround=60)


def _result(gen: Generation, docnum: int, score: float | None, terms: frozenset[str]) -> dict:
    f = gen.searcher.stored_fields(docnum)
    return {
        "id": f["id"],
        "path": f["path"],
        "title": f.get("title", ""),
        "description": f.get("description", ""),
        "info": f.get("info", ""),
        "service": f.get("service", ""),
        "tags": [t for t in f.get("tag", "").split(",") if t],
        "score": round(score, 4) if score is not None else None,
        "snippet": _snippet(gen, f, terms),
        "url": article_url(f["id"]),
    }


def _snippet(gen: Generation, fields: dict, terms: frozenset[str]) -> str:
    """A short, HTML-escaped excerpt with the matched words in ``<mark>``."""
    from markupsafe import escape

    analyzer = gen.ix.schema["body"].analyzer
    if terms:
        for source in (fields.get("snippet_source", ""), fields.get("description", "")):
            if source:
                frag = highlight.highlight(source, terms, analyzer, _fragmenter, _formatter, top=2)
                if frag:
                    return frag
    text = fields.get("info") or fields.get("description") or fields.get("snippet_source", "")
    text = " ".join(text.split())
    if len(text) > SNIPPET_CHARS:
        text = text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
    return str(escape(text))
