"""Ranking of plain symptom queries: BM25F over Whoosh's postings, vectorised with NumPy.

Whoosh stores the index; this module scores it.  Whoosh's own OR over six fields walks every
posting through Python matcher objects (tens of milliseconds for a hurried symptom query) and its
coordination bonus counts field-term pairs, not words.  Here each query word becomes one dense
vector of BM25F scores over all documents (true BM25F: term frequencies of the fields are weighted
and length-normalised, then saturated once), and the words are combined with a coordination
factor (articles matching more of the query's information rank first).

Per generation we keep field-length norms and the document masks; postings are read block by
block straight from Whoosh's W3 codec (:mod:`kb.whooshcodec`) into arrays.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .deadline import Deadline
from .whooshcodec import deleted_docs, field_lengths, segment_postings

#: BM25F parameters.  b per field: titles and summaries are short and of similar length, so
#: length matters less there than in bodies.
K1 = 1.5
B = {"title": 0.3, "info": 0.5, "description": 0.5, "issue": 0.7, "steps": 0.75, "body": 0.75}
#: How strongly matching more of the typed words wins: score *= (IDF share matched) ** COORD_POWER.
#: (Measured on the tune half of eval/queries.json: 1.5 over 2.0 helps long messages, costs nothing
#: on short queries.)
COORD_POWER = 1.5
#: Each word's score is also scaled by its IDF to this power: the rarer words of a long message
#: or a pasted error say what it is about, the common ones only where.
WORD_IDF_POWER = 0.5
#: Short human summaries: an article whose title, info-bubble text or description holds the
#: typed words is about them, not just mentioning them in a long body.
SHORT_FIELDS = ("title", "info", "description")
#: score *= 1 + COVERAGE_BONUS * (share of typed words found in the short fields)
COVERAGE_BONUS = 1.5


@dataclass
class Alternative:
    """One way a typed word can match: a sequence of positions (all required), each a list of
    interchangeable terms (the first full weight, the others ``PART_WEIGHT``)."""

    positions: list[list[str]]
    weight: float = 1.0


@dataclass
class Word:
    text: str
    alternatives: list[Alternative]


PART_WEIGHT = 0.5
#: Bytes of decoded postings kept per generation (arrays, keys and bookkeeping all counted).
POSTINGS_CACHE_BYTES = 32 * 1024 * 1024
#: What a cache entry costs besides its term and arrays (the key tuple and the OrderedDict's
#: link), and what an ndarray costs besides its data; tracemalloc measures ~150 bytes a miss.
_ENTRY_OVERHEAD = 160
_ARRAY_OVERHEAD = 112
_NOTHING = (np.empty(0, np.int32), np.empty(0, np.float32))  # one shared answer for every miss
for _a in _NOTHING:
    _a.flags.writeable = False


class FieldStats:
    """Per-generation arrays: which documents are alive and each field's length norm."""

    def __init__(self, reader, fields: dict[str, float]):
        self.reader = reader
        self.fields = fields
        self.n = reader.doc_count_all()
        self.alive = np.ones(self.n, dtype=bool)
        for segreader, base in reader.leaf_readers():
            self.alive[deleted_docs(segreader) + base] = False
        alive_ids = np.flatnonzero(self.alive)
        self.live = alive_ids.size
        self.norms: dict[str, np.ndarray] = {}
        for f in fields:
            lengths = np.concatenate([field_lengths(seg, f) for seg, _base in reader.leaf_readers()] or [np.zeros(0)])
            avg = float(lengths[self.alive].mean()) if alive_ids.size else 1.0
            b = B.get(f, 0.75)
            self.norms[f] = (1.0 - b + b * lengths / max(avg, 1.0)).astype(np.float32)
        self._cache: OrderedDict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cached = 0  # bytes
        self.cache_bytes = POSTINGS_CACHE_BYTES
        self._lock = threading.Lock()

    def postings(self, field: str, term: str) -> tuple[np.ndarray, np.ndarray]:
        """Document numbers and term frequencies of ``term`` in ``field`` (deleted documents included).

        Decoded postings are kept in a per-generation LRU bounded by ``cache_bytes``
        (:data:`POSTINGS_CACHE_BYTES`): decoding Whoosh's pickled blocks costs far more than
        scoring them, and the words agents type repeat all day.  Misses are kept too (a typed
        word is looked up in six fields), and cost their key and bookkeeping.
        """
        key = (field, term)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        found = read_postings(self.reader, field, term)
        if not found[0].size:
            found = _NOTHING
        with self._lock:
            if key not in self._cache:
                self._cache[key] = found
                self._cached += _entry_bytes(key, found)
                while self._cached > self.cache_bytes and self._cache:
                    old_key, old = self._cache.popitem(last=False)
                    self._cached -= _entry_bytes(old_key, old)
        return found

    def term_tf(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Weighted, length-normalised frequency of ``term`` over all fields (dense), and the mask
        of documents that have it in a short field; None when no document has it."""
        acc = None
        short = None
        for f, weight in self.fields.items():
            ids, freqs = self.postings(f, term)
            if not ids.size:
                continue
            if acc is None:
                acc = np.zeros(self.n, dtype=np.float32)
                short = np.zeros(self.n, dtype=bool)
            # a term's postings in one field hold each document once, so plain fancy indexing adds
            acc[ids] += weight * freqs / self.norms[f][ids]
            if f in SHORT_FIELDS:
                short[ids] = True
        return None if acc is None else (acc, short)

    def score_term(self, term: str) -> tuple[np.ndarray, np.ndarray, float] | None:
        """BM25F score of one term over all documents (dense), its short-field mask and its IDF,
        or None when no live document has it."""
        found = self.term_tf(term)
        if found is None:
            return None
        tf, short = found
        tf *= self.alive
        df = int(np.count_nonzero(tf))
        if not df:
            return None
        # live documents only: deleted ones (until a merge drops them) must not raise every idf
        idf = float(np.log(1.0 + (self.live - df + 0.5) / (df + 0.5)))
        return (idf * tf * (K1 + 1.0) / (tf + K1)).astype(np.float32), short, idf


def _entry_bytes(key: tuple[str, str], found: tuple[np.ndarray, np.ndarray]) -> int:
    """What one postings-cache entry holds in memory (the shared miss answer costs nothing)."""
    size = _ENTRY_OVERHEAD + sys.getsizeof(key[1])
    if found is not _NOTHING:
        size += found[0].nbytes + found[1].nbytes + 2 * _ARRAY_OVERHEAD
    return size


def read_postings(reader, field: str, term: str) -> tuple[np.ndarray, np.ndarray]:
    """Document numbers and weights of ``term`` in ``field`` over all segments of ``reader``
    (deleted documents included: callers mask them)."""
    ids_parts: list[np.ndarray] = []
    w_parts: list[np.ndarray] = []
    for segreader, base in reader.leaf_readers():
        found = segment_postings(segreader, field, term)
        if found is not None and found[0].size:
            ids_parts.append(found[0] + base)
            w_parts.append(found[1])
    if not ids_parts:
        return np.empty(0, np.int32), np.empty(0, np.float32)
    if len(ids_parts) == 1:
        return ids_parts[0], w_parts[0]
    return np.concatenate(ids_parts), np.concatenate(w_parts)


@dataclass
class Scored:
    """Scores of every document for a list of typed words, and what each document matched."""

    scores: np.ndarray
    #: documents matching at least one word
    matched: np.ndarray
    #: documents matching every word that some document matches
    all_words: np.ndarray
    #: (typed word, documents matching it) per word that some document matches
    word_masks: list[tuple[str, np.ndarray]]


def score_words(stats: FieldStats, words: list[Word], deadline: Deadline | None = None) -> Scored:
    """Scores of all documents for the typed words.

    Each word scores the best of its alternatives (the word itself, a typo correction, a synonym,
    a code's parts); a multi-word alternative ("blue screen") needs all of its words and scores
    their sum.  The sum over words is scaled by the share of the query's information a document
    matches: each word counts by its IDF, so an article matching the two rare words of a long
    message beats one matching its five common ones ("since", "production", "yesterday").  It is
    raised by the (IDF-weighted) share of words the short fields hold.  Words no document has carry
    no information and count for nothing.  ``deadline`` is checked before each term.
    """
    n = stats.n
    total = np.zeros(n, dtype=np.float32)
    matched_info = np.zeros(n, dtype=np.float32)
    short_info = np.zeros(n, dtype=np.float32)
    cache: dict[str, tuple[np.ndarray, np.ndarray, float] | None] = {}

    def term_score(t: str):
        if t not in cache:
            if deadline is not None:
                deadline.check()
            cache[t] = stats.score_term(t)
        return cache[t]

    info_total = 0.0
    masks: list[tuple[str, np.ndarray]] = []
    for word in words:
        best = None
        best_short = None
        word_idf = 0.0
        for alt in word.alternatives:
            alt_score = None
            alt_short = None
            alt_idf = 0.0
            for position in alt.positions:
                pos_score = None
                pos_short = None
                pos_idf = 0.0
                for j, term in enumerate(position):
                    found = term_score(term)
                    if found is None:
                        continue
                    s, short, idf = found
                    s = s if j == 0 else s * PART_WEIGHT
                    pos_idf = max(pos_idf, idf)
                    if pos_score is None:
                        pos_score, pos_short = s, short
                    else:
                        pos_score, pos_short = np.maximum(pos_score, s), pos_short | short
                if pos_score is None:
                    alt_score = None
                    break
                alt_idf = max(alt_idf, pos_idf)
                if alt_score is None:
                    alt_score, alt_short = pos_score.copy(), pos_short
                else:
                    # every position must match: keep the sum only where both are present
                    both = (alt_score > 0) & (pos_score > 0)
                    alt_score = np.where(both, alt_score + pos_score, 0)
                    alt_short = alt_short & pos_short
            if alt_score is None:
                continue
            alt_score = alt_score * alt.weight
            word_idf = max(word_idf, alt_idf * alt.weight)
            if best is None:
                best, best_short = alt_score, alt_short
            else:
                best, best_short = np.maximum(best, alt_score), best_short | alt_short
        if best is None:
            continue  # no document has this word: it tells nothing apart
        hit = best > 0
        if not hit.any():
            continue
        info_total += word_idf
        total += best * word_idf ** WORD_IDF_POWER if WORD_IDF_POWER else best
        matched_info += word_idf * hit
        short_info += word_idf * (best_short & hit)
        masks.append((word.text, hit))
    if not masks:
        none = np.zeros(n, dtype=bool)
        return Scored(total, none, none, [])
    matched = matched_info > 0
    all_words = np.logical_and.reduce([m for _w, m in masks])
    total *= (matched_info / info_total) ** COORD_POWER
    total *= 1.0 + COVERAGE_BONUS * (short_info / info_total)
    return Scored(total, matched, all_words, masks)
