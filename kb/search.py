"""Search: the one small interface the web app and the CLI talk to.

:class:`SearchEngine` answers two questions, ``search`` and ``article``, with plain dicts whose shape
is the JSON API's (see ``kb/openapi.py``).  Nothing outside this module knows it is Whoosh, so
another engine could serve the same API by providing these methods.

Per index generation it keeps one open searcher, the BM25F statistics of :mod:`kb.scoring`, and
facet ordinals as arrays (service per document; (document, tag) pairs), so facet counts are one
``bincount`` over the matched documents.  It watches ``CURRENT`` and moves to a new generation on
the next request after a build switches it, without a restart.

A search may carry a deadline (:class:`kb.deadline.Deadline`), checked between the steps of the
work, in any thread; past it the search raises :class:`SearchTimeout`.  Index files are read
without memory maps (:func:`kb.whooshcodec.open_index`): a damaged or truncated segment makes
searches of that generation raise :class:`IndexDamaged` instead of killing the process.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
from whoosh import query as wq

from .abbreviations import read_abbreviations
from .deadline import NEVER, Deadline, SearchTimeout
from .facetlabels import FacetLabels
from .generations import CURRENT, FORMAT, LEASE, collect_garbage, load_manifest, outdated, readable, served_generation
from .highlight import Marker
from .query import FIELD_WEIGHTS, Parsed, QueryBuilder
from .scoring import POSTINGS_CACHE_BYTES, FieldStats, Scored, read_postings, score_words
from .synonyms import Synonyms
from .whooshcodec import SegmentDamaged, open_index, segment_file_sizes

__all__ = ["IndexDamaged", "IndexMissing", "SearchEngine", "SearchTimeout"]

logger = logging.getLogger("kb")

FACETS = ("service", "tag", "type", "cloud")
#: The facet value standing for "no value" (articles without a service, a tag...): listed with a
#: count like any value and selectable (``service=(none)``).  No real value has parentheses.
NONE = "(none)"
NONE_LABEL = "(none)"
#: Facet values listed per facet by default (selected values are always listed).
FACET_LIMIT = 30
#: Bytes of answers kept per generation (agents repeat queries; bots retry them): each answer is
#: kept as its JSON, and costs its length plus its key.
RESULT_CACHE_BYTES = 16 * 1024 * 1024
#: Article types that answer no question themselves, and how far they are ranked down unless the
#: query names them: questionnaires that scope a support case, lists of support topics, advisor
#: and health-event metadata.  Measured on the tune half of eval/queries.json.
TYPE_PRIOR = dict.fromkeys(("problemscopingquestions", "tsg_questions", "supporttopicdescription",
                            "advisorrecommendationmetadata", "servicehealthinsights"), 0.5)
#: Stems of query words that ask for those kinds of article ("scoping questions", "advisor").
TYPE_WORDS = frozenset({"question", "questionnair", "scope", "advisor", "recommend", "topic", "insight"})
#: Each earlier result with the same title scales a result's score by this (near-copies of one
#: article for other clouds give way to other articles), over the first results plus this many.
DIVERSITY_PENALTY = 0.6
DIVERSITY_WINDOW = 30
#: Score of a document matched by Whoosh syntax alone (e.g. ``service:x``): after every scored one.
MIN_SCORE = np.float32(1e-6)


class IndexMissing(Exception):
    """No usable index exists in the index directory (none built yet, or an unreadable format)."""


class GenerationGone(Exception):
    """The generation was removed by a sweep before it could be opened."""


class IndexDamaged(IndexMissing):
    """A file of the served generation is damaged (truncated, overwritten): rebuild the index."""

    @classmethod
    def of(cls, exc: SegmentDamaged) -> IndexDamaged:
        """What a damaged segment means to whoever asked: rebuild the index."""
        return cls(f"{exc}; rebuild the index with `kb index --full`")


class Facet:
    """One facet's values as ordinals: ``docs[i]`` carries value ``values[ords[i]]``.

    A stored value listing several (``"microsoft.classiccompute, microsoft.classicnetwork"``, from
    an index built before kb split them) counts as each of its parts, and a twin value of the
    labels file (:mod:`kb.facetlabels`) as the value it names.  :data:`NONE` stands for the
    documents without any value.
    """

    def __init__(self, reader, name: str, n: int, labels: FacetLabels | None = None):
        labels = labels or FacetLabels()
        self.name = name
        self.values: list[str] = []
        self.index: dict[str, int] = {}
        #: every raw value seen, and the value it is counted as
        self.raw: dict[str, str] = {}
        docs: list[np.ndarray] = []
        ords: list[np.ndarray] = []
        if name in reader.indexed_field_names():
            for term in reader.lexicon(name):
                value = term.decode("utf-8") if isinstance(term, bytes) else term
                ids = read_postings(reader, name, value)[0].astype(np.int64)  # deleted ones included
                for part in _parts(value):
                    canon = labels.canonical(name, part)
                    self.raw[part] = canon
                    if canon not in self.index:
                        self.index[canon] = len(self.values)
                        self.values.append(canon)
                    docs.append(ids)
                    ords.append(np.full(ids.size, self.index[canon], dtype=np.int64))
        docs_all = np.concatenate(docs) if docs else np.empty(0, np.int64)
        ords_all = np.concatenate(ords) if ords else np.empty(0, np.int64)
        if len(docs) > len(self.values):  # a merged twin or part: count each (doc, value) once
            pairs = np.unique(docs_all * max(1, len(self.values)) + ords_all)
            docs_all, ords_all = pairs // max(1, len(self.values)), pairs % max(1, len(self.values))
        self.docs, self.ords = docs_all, ords_all
        self.n = n
        #: documents holding any value of this facet (the others are its NONE value)
        self.has = np.zeros(n, dtype=bool)
        self.has[self.docs] = True
        self.labels = [labels.label(name, v) for v in self.values]
        # what a typed filter is matched against: the value, its label, the twins merged into it
        self._keys = [" ".join((v, labels.label(name, v), *labels.twins_of(name, v))).lower() for v in self.values]
        self._labels = labels

    def knows(self, value: str) -> bool:
        """Whether selecting ``value`` can match anything (NONE always may)."""
        return value == NONE or value in self.index or value in self.raw

    def selection(self, values: list[str]) -> np.ndarray | None:
        """Documents carrying any of ``values`` (None when nothing is selected)."""
        if not values:
            return None
        wanted = [self.index[v] for v in values if v in self.index]
        mask = np.zeros(self.n, dtype=bool)
        if wanted:
            mask[self.docs[np.isin(self.ords, wanted)]] = True
        if NONE in values:
            mask |= ~self.has
        return mask

    def _counts(self, base: np.ndarray) -> np.ndarray:
        """Per value, how many of the ``base`` documents carry it."""
        return np.bincount(self.ords[base[self.docs]], minlength=len(self.values))

    def _item(self, i: int, count: int, selected: list[str]) -> dict:
        value = self.values[i]
        return {"value": value, "label": self.labels[i], "count": count, "selected": value in selected}

    def _none_item(self, base: np.ndarray, selected: list[str]) -> dict:
        count = int((base & ~self.has).sum())
        return {"value": NONE, "label": NONE_LABEL, "count": count, "selected": NONE in selected}

    def counts(self, base: np.ndarray, selected: list[str], limit: int = FACET_LIMIT) -> tuple[list[dict], dict]:
        """Value counts among the ``base`` documents, largest first, selected values always listed,
        then :data:`NONE` (when some ``base`` document has no value, or it is selected); and what
        was left out: ``{"truncated", "other_values", "none_count"}``."""
        counts = self._counts(base)
        order = np.lexsort((np.arange(len(self.values)), -counts))
        nonzero = int((counts > 0).sum())
        listed = [self._item(i, int(counts[i]), selected) for i in order[:limit] if counts[i] > 0]
        names = {item["value"] for item in listed}
        for v in selected:
            if v not in names and v != NONE:
                listed.append({"value": v, "label": self._labels.label(self.name, v),
                               "count": int(counts[self.index[v]]) if v in self.index else 0, "selected": True})
        shown = sum(1 for item in listed if item["count"] > 0)
        none = self._none_item(base, selected)
        if none["count"] or none["selected"]:
            listed.append(none)
        info = {"truncated": nonzero > shown, "other_values": nonzero - shown, "none_count": none["count"]}
        return listed, info

    def matching(self, base: np.ndarray, prefix: str, selected: list[str], limit: int) -> tuple[list[dict], int]:
        """The values whose raw value, label or merged twins contain ``prefix`` (any case; spaces
        optional: "key vault" finds ``microsoft.keyvault``), with their counts among ``base``,
        largest first; at most ``limit`` of them, and how many matched in all.  Values no ``base``
        document has are left out unless selected; :data:`NONE` is listed when it matches."""
        needle = " ".join(prefix.lower().split())
        squeezed = needle.replace(" ", "")
        counts = self._counts(base)
        hits = [i for i, key in enumerate(self._keys)
                if (counts[i] > 0 or self.values[i] in selected)
                and (not needle or needle in key or squeezed in key.replace(" ", ""))]
        hits.sort(key=lambda i: (-counts[i], i))
        out = [self._item(i, int(counts[i]), selected) for i in hits[:limit]]
        found = len(hits)
        if not needle or needle in NONE or needle in NONE_LABEL.lower():
            none = self._none_item(base, selected)
            if none["count"] or none["selected"]:
                found += 1
                if len(out) < limit:
                    out.append(none)
        return out, found


def _parts(value: str) -> list[str]:
    """The values a stored facet term stands for: itself, or the parts of "a, b"."""
    if "," not in value:
        return [value]
    return [p for p in dict.fromkeys(p.strip() for p in value.split(",")) if p] or [value]


class Generation:
    """One open index generation: searcher, scoring statistics, facets and a reader's lease."""

    def __init__(self, path: Path, synonyms: Synonyms, result_cache: int = 0, warning: str = "",
                 postings_cache: int = POSTINGS_CACHE_BYTES, labels: FacetLabels | None = None):
        self.path = path
        self.name = path.name
        # A shared lease tells sweeps this generation is in use (see kb.generations.sweep).
        try:
            self._lease = os.open(path / LEASE, os.O_RDONLY)
        except FileNotFoundError:
            raise GenerationGone(path.name) from None
        try:
            fcntl.flock(self._lease, fcntl.LOCK_SH)
            # A sweep may have removed it between our reading CURRENT and taking the lease (the
            # lease we hold is then an unlinked file): the caller looks again.
            if os.fstat(self._lease).st_nlink == 0:
                raise GenerationGone(path.name)
            manifest = load_manifest(path)
            if manifest is None:
                raise GenerationGone(path.name)
            self.manifest = manifest
            #: what /healthz and the log should say about this generation (empty: all is well)
            self.warnings: list[str] = [warning] if warning else []
            if not readable(manifest):
                raise IndexMissing(
                    f"the index in {path.parent} was built by another version of kb (format "
                    f"{manifest.get('format')}, this kb reads {FORMAT}); rebuild it with `kb index`"
                )
            if outdated(manifest):
                # same layout, older extraction: serve it until a rebuild replaces it, not 503
                self.warnings.append(
                    f"the index in {path.parent} was built by another version of kb (format "
                    f"{manifest.get('format')}, this kb writes {FORMAT}); searches use it until it is "
                    f"rebuilt: kb index {manifest.get('source', 'ARTICLES_DIR')} --index {path.parent}")
            for message in self.warnings:
                logger.warning("kb: %s", message)
        except BaseException:
            os.close(self._lease)
            raise
        try:
            self.sizes = segment_file_sizes(path)
            self.ix = open_index(path)
            self.searcher = self.ix.searcher()
            reader = self.searcher.reader()
            self.stats = FieldStats(reader, FIELD_WEIGHTS)
        except SegmentDamaged as exc:
            self.close()
            raise IndexDamaged.of(exc) from None
        self.stats.cache_bytes = postings_cache
        self.alive = self.stats.alive
        self.doc_count = int(self.alive.sum())
        self.facets = {name: Facet(reader, name, self.stats.n, labels) for name in FACETS}
        self.queries = QueryBuilder(self.searcher, synonyms.with_abbreviations(read_abbreviations(path)))
        # answers to repeated searches; a new generation starts with an empty cache
        self.results = _ByteLRU(result_cache)
        self.copies = _copy_groups(reader, self.stats.n)
        # the copy that leads its group on a tie: the public cloud's
        self.preferred = np.zeros(self.stats.n, dtype=bool)
        public = read_postings(reader, "cloud", "public")[0] if "cloud" in reader.indexed_field_names() else []
        self.preferred[public] = True
        self._prior = np.ones(self.stats.n, dtype=np.float32)
        if "type" in reader.indexed_field_names():
            for kind, factor in TYPE_PRIOR.items():
                self._prior[read_postings(reader, "type", kind)[0]] = factor
        self._no_prior = np.ones(self.stats.n, dtype=np.float32)
        self._title_keys: dict[int, str] = {}
        # each document's service, as an ordinal of the service facet (-1: none)
        service = self.facets["service"]
        self.service_of = np.full(self.stats.n, -1, dtype=np.int64)
        self.service_of[service.docs] = service.ords
        self._articles = None
        self._articles_lock = threading.Lock()

    def title_key(self, docnum: int) -> str:
        """A document's title, normalised (case, spaces); remembered, as every search asks again."""
        key = self._title_keys.get(docnum)
        if key is None:
            key = " ".join(self.searcher.stored_fields(docnum).get("title", "").lower().split())
            self._title_keys[docnum] = key  # at most one entry per document of the generation
        return key

    def prior(self, parsed: Parsed) -> np.ndarray:
        """Per document, how much its article type counts as evidence for this query."""
        asks = parsed.words and any(t in TYPE_WORDS for w in parsed.words for a in w.alternatives
                                    for p in a.positions for t in p)
        return self._no_prior if asks else self._prior

    def check_files(self) -> None:
        """Raise :class:`IndexDamaged` when a file of this generation changed size since it was
        opened (Whoosh never rewrites one: it was truncated or overwritten)."""
        try:
            now = segment_file_sizes(self.path)
        except OSError:
            now = {}
        changed = sorted(name for name, size in self.sizes.items() if now.get(name) != size)
        if changed:
            raise IndexDamaged(f"index file {changed[0]} of {self.name} changed after it was opened "
                               "(truncated?); rebuild the index with `kb index --full`")

    def docnum(self, article_id: str) -> int | None:
        return self.searcher.document_number(id=article_id)

    def article_data(self, docnum: int) -> bytes:
        """The article page's data (JSON) of a document; its column is opened on first use."""
        with self._articles_lock:
            if self._articles is None:
                self._articles = self.searcher.reader().column_reader("article")
        return self._articles[docnum]

    def close(self) -> None:
        """Close the searcher and release the lease; a second call does nothing (the lease's
        descriptor number may belong to another file by then)."""
        searcher, self.searcher = getattr(self, "searcher", None), None
        lease, self._lease = getattr(self, "_lease", -1), -1
        try:
            if searcher is not None:
                searcher.close()
        finally:
            if lease >= 0:
                try:
                    os.close(lease)  # releases the shared lease
                except OSError:
                    pass

    def __del__(self):  # the last request still using an old generation closes it
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


class SearchEngine:
    """Search an index directory; safe to share between threads."""

    def __init__(self, index_dir: str | os.PathLike, synonyms: Synonyms | None = None,
                 result_cache: int | None = None, postings_cache: int | None = None,
                 labels: FacetLabels | None = None):
        """``result_cache`` and ``postings_cache``: bytes of answers and of decoded postings kept
        per generation (0: none); ``labels``: facet labels and twins (default: the labels file)."""
        self.index_dir = Path(index_dir)
        self.result_cache = RESULT_CACHE_BYTES if result_cache is None else result_cache
        self.postings_cache = POSTINGS_CACHE_BYTES if postings_cache is None else postings_cache
        self.synonyms = synonyms if synonyms is not None else Synonyms.load()
        self.labels = labels if labels is not None else FacetLabels.load()
        self._lock = threading.Lock()
        self._gen: Generation | None = None
        self._stamp: tuple[int, int] | None = None
        self._watcher: threading.Thread | None = None
        self._closed = threading.Event()
        # the query-time rules in force: an edited synonyms or labels file changes answers
        rules = repr((sorted(self.synonyms.rules.items()), sorted(self.labels.labels.items()),
                      sorted(self.labels.twins.items())))
        self._rules_digest = hashlib.blake2b(rules.encode(), digest_size=8).hexdigest()

    # -- generations -----------------------------------------------------------------------

    def validator(self) -> str:
        """What this engine's answers depend on, for HTTP validators (ETags): the served articles
        and the rules in force.  The articles are named by their commit when ``kb sync`` built
        the generation (with its format), so replicas that each built one commit give the same
        validator and a balancer's caches revalidate across them; else by the generation."""
        gen = self.generation()
        commit = gen.manifest.get("commit")
        sha = commit.get("sha") if isinstance(commit, dict) else None
        served = f"commit:{sha}:{gen.manifest.get('format')}" if sha else gen.name
        return f"{served}:{self._rules_digest}"

    def generation(self) -> Generation:
        """The current generation, reopened when ``CURRENT`` has changed since the last call."""
        try:
            st = os.stat(self.index_dir / CURRENT)
            stamp = (st.st_ino, st.st_mtime_ns)
        except OSError:
            stamp = None
        gen = self._gen
        if gen is not None and stamp == self._stamp:
            return gen
        # Opening a generation takes a moment; while one thread does it, the others keep
        # answering from the generation they have instead of queueing behind it.
        if not self._lock.acquire(blocking=gen is None):
            return gen
        try:
            if self._gen is not None and stamp == self._stamp:
                return self._gen
            for _attempt in range(5):
                path, warning = served_generation(self.index_dir)
                if path is None:
                    if self._gen is not None:
                        return self._gen  # keep serving what we have
                    raise IndexMissing(f"no index in {self.index_dir}; run `kb index` first")
                if self._gen is not None and path.name == self._gen.name:
                    break
                try:
                    self._gen = Generation(path, self.synonyms, self.result_cache, warning, self.postings_cache,
                                           self.labels)
                    break
                except GenerationGone:
                    continue  # swept between CURRENT and its lease: CURRENT names a newer one now
                except Exception:
                    if self._gen is None:
                        raise
                    return self._gen  # a generation that won't open: keep serving, retry later
            else:
                if self._gen is None:
                    raise IndexMissing(f"the index in {self.index_dir} is being replaced; try again")
                return self._gen
            self._stamp = stamp
            return self._gen
        finally:
            self._lock.release()

    def start_watching(self, interval: float = 0.5) -> None:
        """Open each new generation in a background thread as soon as a build switches to it,
        so no request waits for it to open.  Call it in the process that serves (after a fork)."""
        if self._watcher is not None and self._watcher.is_alive():
            return

        def watch() -> None:
            while not self._closed.wait(interval):
                try:
                    self.generation()
                    # the generation this process let go of may now be unread by every process
                    collect_garbage(self.index_dir)
                except Exception:  # noqa: BLE001 - no index yet, or one being replaced: retry
                    pass

        self._watcher = threading.Thread(target=watch, name="kb-index-watcher", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        """Stop watching and let the open generation go."""
        self._closed.set()
        self._gen = None

    def info(self) -> dict:
        """The served generation and its article count; :class:`IndexDamaged` when one of its
        files was damaged since it was opened."""
        gen = self.generation()
        gen.check_files()
        return {"generation": gen.name, "articles": gen.doc_count, "built_at": gen.manifest.get("built_at"),
                "warnings": list(gen.warnings)}

    # -- search ------------------------------------------------------------------------------

    def search(
        self,
        q: str = "",
        services: tuple[str, ...] | list[str] = (),
        tags: tuple[str, ...] | list[str] = (),
        page: int = 1,
        per_page: int = 10,
        facet_limit: int = FACET_LIMIT,
        timeout: float | None = None,
        types: tuple[str, ...] | list[str] = (),
        clouds: tuple[str, ...] | list[str] = (),
        prefix: bool = False,
    ) -> dict:
        """Search for ``q`` within the selected facet values.

        Several values of one facet combine with OR, different facets with AND.  Facet counts are
        disjunctive: a facet's counts ignore that facet's own selection, so each says how many
        results selecting that value would give.  Copies of one article (same title and text,
        e.g. one per cloud) are one result, listing the others under ``copies``; ``total`` counts
        articles, ``total_groups`` results, ``total_all_words`` the articles holding every word.
        ``warnings`` says what was left out (a wildcard that matches too many words).  Past
        ``timeout`` seconds (None or 0: no limit) it raises :class:`SearchTimeout`.  Each facet
        (service, tag, type, cloud) lists :data:`NONE` for the articles without a value, which
        may be selected like a value; ``facet_info`` says per facet what its list left out.
        ``prefix`` (search as you type) reads the last word as the start of a word.
        """
        started = time.perf_counter()
        deadline = Deadline(timeout)
        gen = self.generation()
        selected = self.selected(service=services, tag=tags, type=types, cloud=clouds)
        key = (q, *(tuple(selected[name]) for name in FACETS), page, per_page, facet_limit, prefix)
        cached = gen.results.get(key)
        if cached is not None:
            out = json.loads(cached)  # a copy of its own for every caller (the web layer adds links)
        else:
            try:
                out, cacheable = self._search(gen, q, selected, page, per_page, facet_limit, deadline, prefix)
            except SegmentDamaged as exc:
                raise IndexDamaged.of(exc) from None
            if cacheable and gen.results.limit > 0:
                gen.results.put(key, json.dumps(out, separators=(",", ":")).encode())
        out["took_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return out

    def selected(self, **values) -> dict[str, list[str]]:
        """Per facet, the selected values normalised (lower case, trimmed, repeats dropped) and
        each twin of the labels file replaced by the value it is merged into."""
        return {name: list(dict.fromkeys(self.labels.canonical(name, v) for v in _norm_values(values.get(name))))
                for name in FACETS}

    def facet_values(self, name: str, q: str = "", selected: dict[str, list[str]] | None = None,
                     prefix: str = "", limit: int = 100, timeout: float | None = None) -> dict:
        """The values of facet ``name`` whose value or label contains ``prefix`` (all of them when
        it is empty), with their disjunctive counts for the search ``q`` within ``selected``
        (the other facets' selections narrow the counts, this facet's own does not): what a
        facet's filter box and "Show more" list.  At most ``limit`` values, largest first;
        ``total_values`` says how many matched."""
        started = time.perf_counter()
        deadline = Deadline(timeout)
        gen = self.generation()
        chosen = self.selected(**(selected or {}))
        try:
            parsed = gen.queries.parse(q, deadline)
            _scored, matched = self._match(gen, parsed, deadline)
            base = self._facet_bases(gen, matched, chosen)[0][name]
            values, found = gen.facets[name].matching(base, prefix, chosen[name], limit)
        except SegmentDamaged as exc:
            raise IndexDamaged.of(exc) from None
        return {"facet": name, "query": q, "prefix": prefix, "values": values, "total_values": found,
                "truncated": found > len(values), "took_ms": round((time.perf_counter() - started) * 1000, 2)}

    @staticmethod
    def _facet_bases(gen: Generation, matched: np.ndarray,
                     selected: dict[str, list[str]]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Per facet, the documents its counts are taken over (``matched`` narrowed by every other
        facet's selection: counts are disjunctive), and the documents of the answer (all of them)."""
        masks = {name: gen.facets[name].selection(values) for name, values in selected.items()}
        final = matched.copy()
        for m in masks.values():
            if m is not None:
                final &= m
        bases = {}
        for name in FACETS:
            base = matched
            for other, m in masks.items():
                if other != name and m is not None:
                    base = base & m
            bases[name] = base
        return bases, final

    def _search(self, gen: Generation, q: str, selected: dict[str, list[str]], page: int, per_page: int,
                facet_limit: int, deadline: Deadline = NEVER, prefix: bool = False) -> tuple[dict, bool]:
        """The answer, and whether it may be cached (not when the load of the moment shaped it)."""
        parsed = gen.queries.parse(q, deadline, prefix)
        scored, matched = self._match(gen, parsed, deadline)
        bases, final = self._facet_bases(gen, matched, selected)
        total = int(final.sum())

        facets, facet_info = {}, {}
        for name in FACETS:
            facets[name], facet_info[name] = gen.facets[name].counts(bases[name], selected[name], facet_limit)

        start = (page - 1) * per_page
        results: list[dict] = []
        groups = 0
        if total:
            ranked, groups = self._ranked(gen, parsed, scored, final, start + per_page, deadline)
            marker = Marker(parsed.highlight_terms())
            for docnum, score, copies in ranked[start:]:
                deadline.check()
                result = _result(gen, docnum, score, marker, copies)
                if scored is not None and len(scored.word_masks) > 1:
                    result["missing"] = [w for w, m in scored.word_masks if not m[docnum]]
                results.append(result)
        answer = {
            "query": q,
            "total": total,
            # articles holding every searched word (the rest match only some of them)
            "total_all_words": int((scored.all_words & final).sum()) if scored is not None else total,
            # results once copies of one article are folded into one (what the pages list)
            "total_groups": groups,
            "page": page,
            "per_page": per_page,
            "results": results,
            "facets": facets,
            # per facet: whether its list was cut at the limit, how many values it left out, and
            # how many articles have no value (its NONE entry)
            "facet_info": facet_info,
            "suggestion": parsed.suggestion,
            "warnings": parsed.warnings,
        }
        return answer, parsed.cacheable

    @staticmethod
    def _match(gen: Generation, parsed: Parsed, deadline: Deadline = NEVER) -> tuple[Scored | None, np.ndarray]:
        """kb's scores of the typed words (None when browsing) and the mask of matching documents.

        Whoosh syntax only decides which documents match (required, excluded, phrase, field); the
        words of the query are scored by kb's ranker either way, with synonyms, code parts and
        typo alternatives, so adding ``-zzz`` to a query never reorders its results.
        """
        scored = score_words(gen.stats, parsed.words, deadline) if parsed.words is not None else None
        if parsed.query is None:
            if scored is None:  # empty query: browse everything
                return None, gen.alive.copy()
            return scored, scored.matched & gen.alive
        # a typed word of the syntax query matches what it matches in a plain query (its synonyms,
        # code parts and typo alternatives included)
        by_term: dict[str, np.ndarray] = {}
        if scored is not None and parsed.words:
            masks = dict(scored.word_masks)
            for word in parsed.words:
                if word.text in masks:
                    for alt in word.alternatives:
                        for position in alt.positions:
                            for term in position:
                                by_term.setdefault(term, masks[word.text])
        return scored, _syntax_mask(gen, parsed.query, by_term, deadline) & gen.alive

    @staticmethod
    def _ranked(gen: Generation, parsed: Parsed, scored: Scored | None, final: np.ndarray, limit: int,
                deadline: Deadline = NEVER) -> tuple[list[tuple[int, float | None, list[int]]], int]:
        """The best ``limit`` results as (docnum, score, docnums of its copies), best first, and
        how many results (copies folded) there are in all.

        Copies of one article (same title and text, one per cloud) are one result, led by the best
        of them (the public cloud's on a tie).  Articles of a kind that answers no question
        (questionnaires, support-topic lists, advisor metadata) are ranked down unless the query
        asks for them, and an article repeating the title of a better one (a near-copy for another
        cloud) gives way to the next article.  The order is one total order, whatever the page.
        """
        cand = np.flatnonzero(final)
        if scored is not None:
            own = scored.scores[cand] * gen.prior(parsed)[cand]
            own = np.where(own > 0, own, MIN_SCORE)  # matched by syntax alone: after every scored one
        else:
            own = np.zeros(cand.size, dtype=np.float32)
        group = gen.copies[cand]
        grouped = group >= 0
        group = np.where(grouped, group, cand)
        # one entry per group: its best member (ties: the group's preferred head, then docnum)
        order = np.lexsort((cand, ~gen.preferred[cand], -own, group))
        first = np.ones(order.size, dtype=bool)
        first[1:] = group[order][1:] != group[order][:-1]
        heads = order[first]
        groups = int(heads.size)
        h_cand, h_own = cand[heads], own[heads]
        if scored is None:
            top = np.argsort(h_cand, kind="stable")[:limit]  # browsing: document order
        else:
            window = min(h_cand.size, limit + DIVERSITY_WINDOW)
            top = np.argpartition(-h_own, window - 1)[:window] if window < h_cand.size else np.arange(h_cand.size)
            top = top[np.lexsort((h_cand[top], -h_own[top]))]
            top = _diversify(gen, h_cand, h_own, top)[:limit]
        members: dict[int, list[int]] = {}
        if grouped.any():
            wanted = set(group[heads[top]].tolist())
            for i in order[~first]:
                g = int(group[i])
                if g in wanted:
                    members.setdefault(g, []).append(int(cand[i]))
        out = []
        for i in top:
            d = int(h_cand[i])
            score = float(h_own[i]) if scored is not None else None
            out.append((d, score, members.get(int(gen.copies[d]), []) if gen.copies[d] >= 0 else []))
        return out, groups

    # -- articles ------------------------------------------------------------------------------

    def article(self, article_id: str) -> dict | None:
        """The whole article as stored at index time, or None for an unknown id."""
        if not isinstance(article_id, str) or not article_id or len(article_id) > 1000:
            return None
        gen = self.generation()
        try:
            docnum = gen.docnum(article_id)
            if docnum is None:
                return None
            data = json.loads(gen.article_data(docnum))
        except SegmentDamaged as exc:
            raise IndexDamaged.of(exc) from None
        data.pop("warnings", None)
        data["url"] = article_url(data["id"])
        return data

    def related(self, article_id: str, limit: int = 5) -> list[dict] | None:
        """Up to ``limit`` articles like ``article_id`` (None for an unknown id), as search results.

        The article's title, description and info words are scored by kb's own ranker, as a
        search for them would be; the article and its copies are left out, copies of a result
        fold into it, and articles of the same service come first.  Cached per generation.
        """
        if not isinstance(article_id, str) or not article_id or len(article_id) > 1000:
            return None
        gen = self.generation()
        docnum = gen.docnum(article_id)
        if docnum is None:
            return None
        key = ("related", article_id, limit)
        cached = gen.results.get(key)
        if cached is not None:
            return json.loads(cached)
        f = gen.searcher.stored_fields(docnum)
        text = " ".join((f.get("title", ""), f.get("description", ""))).lower()
        # plain words only (no query syntax), each once, at most 10: bounds the work per page
        words = dict.fromkeys(w for w in "".join(c if c.isalnum() else " " for c in text).split() if len(w) > 1)
        parsed = gen.queries.parse(" ".join(list(words)[:10]))
        out: list[dict] = []
        if parsed.words:
            scored, matched = self._match(gen, parsed)
            final = matched & gen.alive
            group = gen.copies[docnum]
            final[docnum] = False
            if group >= 0:
                final &= gen.copies != group
            if scored is not None and final.sum() > 400:
                # only the best-scored few hundred can make the list: rank those alone
                best = np.where(final, scored.scores, 0)
                final &= best >= np.partition(best, -400)[-400]
            ranked, _ = self._ranked(gen, parsed, scored, final, limit * 3)
            own = gen.service_of[docnum]
            if own >= 0:  # same service first, each part in score order
                ranked.sort(key=lambda r: gen.service_of[r[0]] != own)
            marker = Marker(frozenset())
            out = [_result(gen, d, score, marker, copies) for d, score, copies in ranked[:limit]]
        if gen.results.limit > 0:
            gen.results.put(key, json.dumps(out, separators=(",", ":")).encode())
        return out


class _ByteLRU:
    """A thread-safe LRU map of bytes values, bounded by the bytes it holds."""

    #: a key tuple of short strings and its OrderedDict link, roughly
    ENTRY_OVERHEAD = 500

    def __init__(self, limit: int):
        self.limit = limit
        self.held = 0
        self._data: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def cost(cls, key: tuple, value: bytes) -> int:
        return cls.ENTRY_OVERHEAD + len(value) + len(key[0])

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: tuple, value: bytes) -> None:
        size = self.cost(key, value)
        if size > self.limit:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.held -= self.cost(key, old)
            self._data[key] = value
            self.held += size
            while self.held > self.limit:
                k, v = self._data.popitem(last=False)
                self.held -= self.cost(k, v)


def _checked(items, deadline: Deadline, every: int = 256):
    """``items``, with ``deadline`` checked every ``every`` of them."""
    for i, item in enumerate(items):
        if not i % every:
            deadline.check()
        yield item


def article_url(article_id: str) -> str:
    return f"/articles/{article_id}"


def _norm_values(values) -> list[str]:
    out: dict[str, None] = {}
    for v in values or ():
        v = str(v).strip().lower()
        if v:
            out.setdefault(v, None)
    return list(out)


def _copy_groups(reader, n: int) -> np.ndarray:
    """Per document, the lowest docnum of its copies (same title and text), or -1 when unique."""
    keys = list(reader.column_reader("dupkey")) if reader.has_column("dupkey") else []
    first: dict = {}
    out = np.full(n, -1, dtype=np.int64)
    for d, key in enumerate(keys):
        if not key:
            continue
        head = first.setdefault(key, d)
        if head != d:
            out[d] = head
            out[head] = head
    return out


def _syntax_mask(gen: Generation, node: wq.Query, by_term: dict[str, np.ndarray],
                 deadline: Deadline = NEVER) -> np.ndarray:
    """The documents a Whoosh query matches, with each full-text term of a typed word standing for
    that word's plain-query matches (``by_term``) and Whoosh matching the rest (phrases, fields,
    patterns)."""

    def mask(q: wq.Query) -> np.ndarray:
        if isinstance(q, wq.AndNot):
            return mask(q.a) & ~mask(q.b)
        if isinstance(q, wq.Not):
            return ~mask(q.query)
        if isinstance(q, wq.Require):
            return mask(q.a) & mask(q.b)
        if isinstance(q, wq.AndMaybe):
            return mask(q.a)
        if isinstance(q, wq.And) and q.subqueries:
            return np.logical_and.reduce([mask(c) for c in q.subqueries])
        if isinstance(q, wq.Or) and q.subqueries:
            return np.logical_or.reduce([mask(c) for c in q.subqueries])
        if isinstance(q, wq.Term) and q.fieldname in FIELD_WEIGHTS and q.text in by_term:
            return by_term[q.text]
        out = np.zeros(gen.stats.n, dtype=bool)
        out[np.fromiter(_checked(gen.searcher.docs_for_query(q), deadline), dtype=np.int64)] = True
        return out

    return mask(node)


def _diversify(gen: Generation, docs: np.ndarray, scores: np.ndarray, top: np.ndarray) -> np.ndarray:
    """``top`` (indexes into docs/scores, best first) re-ordered after scaling the score of each
    result by :data:`DIVERSITY_PENALTY` for every better result with the same title."""
    seen: dict[str, int] = {}
    adjusted = np.empty(top.size, dtype=np.float64)
    for k, i in enumerate(top):
        title = gen.title_key(int(docs[i]))
        repeats = seen.get(title, 0)
        seen[title] = repeats + 1
        adjusted[k] = float(scores[i]) * DIVERSITY_PENALTY ** repeats
    return top[np.argsort(-adjusted, kind="stable")]


def _result(gen: Generation, docnum: int, score: float | None, marker: Marker, copies: list[int]) -> dict:
    f = gen.searcher.stored_fields(docnum)
    return {
        "id": f["id"],
        "path": f["path"],
        "title": f.get("title", ""),
        "description": f.get("description", ""),
        "info": f.get("info", ""),
        "service": f.get("service", ""),
        "tags": [t for t in f.get("tag", "").split(",") if t],
        "type": f.get("type", ""),
        "score": round(score, 4) if score is not None else None,
        "snippet": marker.snippet(f.get("snippet_source", ""), f.get("info") or f.get("description", "")),
        "url": article_url(f["id"]),
        # the same article (same title and text) in other folders or for other clouds
        "copies": [_copy(gen, d) for d in copies],
    }


def _copy(gen: Generation, docnum: int) -> dict:
    f = gen.searcher.stored_fields(docnum)
    return {"id": f["id"], "path": f["path"], "url": article_url(f["id"])}
