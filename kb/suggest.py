"""Suggestions under the search box: article titles and error codes that match what is typed.

Per index generation a :class:`Suggester` keeps the words of every title in a sorted list, so
the titles whose words start with each typed word are a few binary searches and one set
intersection (the smallest word's titles first); error codes come from the index's own terms
(codes are indexed whole, lower-cased: ``aadsts50076``, see :mod:`kb.analysis`).  It is built
on the first suggestion a generation is asked for and dropped with the generation.
"""

from __future__ import annotations

import bisect
import re
import threading
import weakref

import numpy as np
from whoosh.util.text import utf8decode

from .query import MAX_SCANNED

#: Titles and codes listed at most.
MAX_TITLES = 8
MAX_CODES = 5
#: Titles looked at, at most, for one suggestion (a one-letter word starts thousands of titles).
MAX_CANDIDATES = 5000
#: Where codes are looked for: a code named only in a title is a code too.
CODE_FIELDS = ("title", "body")
_WORD_RE = re.compile(r"\w+")
#: What reads as a code: letters and digits mixed.  (Codes joined by "_" are indexed stemmed,
#: "error_disk_ful", so they cannot be shown as written.)
_CODE_RE = re.compile(r"(?=[a-z0-9]*[0-9])(?=[a-z0-9]*[a-z])[a-z0-9]{4,}")

_suggesters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_preparing: weakref.WeakSet = weakref.WeakSet()


def suggester(gen) -> Suggester:
    """The :class:`Suggester` of an open generation (built once, on first use)."""
    with _lock:
        found = _suggesters.get(gen)
        if found is None:
            found = _suggesters[gen] = Suggester(gen)
        return found


def prepare(gen) -> None:
    """Build, in a background thread, what the first keystrokes on a generation need: its
    :class:`Suggester` and the vocabulary prefix searches complete from (together about a second
    on the real corpus, which the first keystroke would otherwise wait for).  Once per generation."""
    with _lock:
        if gen in _suggesters or gen in _preparing:
            return
        _preparing.add(gen)

    def build() -> None:
        try:
            suggester(gen)
            gen.queries.completions("kb")  # builds the sorted vocabulary
        except Exception:  # noqa: BLE001 - a failed warm-up only means the first request builds it
            pass

    threading.Thread(target=build, name="kb-suggest-warmup", daemon=True).start()


class Suggester:
    """Titles by the words they hold, for one generation."""

    def __init__(self, gen) -> None:
        self.reader = gen.searcher.reader()
        titles: dict[str, int] = {}  # normalised title -> index (copies of an article are one title)
        self.titles: list[str] = []
        self.ids: list[str] = []
        self.services: list[str] = []
        by_word: dict[str, list[int]] = {}
        for docnum in np.flatnonzero(gen.alive):
            fields = gen.searcher.stored_fields(int(docnum))
            title = " ".join(str(fields.get("title") or "").split())
            key = title.lower()
            if not title or key in titles:
                continue
            n = titles[key] = len(self.titles)
            self.titles.append(title)
            self.ids.append(str(fields.get("id", "")))
            self.services.append(str(fields.get("service") or ""))
            for word in set(_WORD_RE.findall(key)):
                by_word.setdefault(word, []).append(n)
        self.lower = list(titles)
        self.words = sorted(by_word)
        self.postings = [np.array(by_word[w], dtype=np.int32) for w in self.words]
        # cumulative title counts: how many titles a word range holds, without reading it
        self.cum = np.concatenate([[0], np.cumsum([p.size for p in self.postings])])

    def _range(self, start: str) -> tuple[int, int]:
        lo = bisect.bisect_left(self.words, start)
        hi = bisect.bisect_left(self.words, start + "\U0010ffff")
        return lo, hi

    def titles_for(self, text: str, limit: int = MAX_TITLES) -> list[dict]:
        """Titles holding a word that starts with each typed word; those starting with what was
        typed first, then those holding it as typed, then the shortest."""
        typed = _WORD_RE.findall(text.lower())
        if not typed or len("".join(typed)) < 2:  # one letter starts a third of the titles
            return []
        ranges = sorted((self.cum[hi] - self.cum[lo], lo, hi) for lo, hi in map(self._range, typed))
        _size, lo, hi = ranges[0]
        if lo == hi:
            return []
        found = np.unique(np.concatenate(self.postings[lo:hi]))[:MAX_CANDIDATES]
        for _size, lo, hi in ranges[1:]:
            if lo == hi:
                return []
            if found.size == 0:
                break
            found = found[np.isin(found, np.concatenate(self.postings[lo:hi]))]
        phrase = " ".join(typed)

        def rank(n: int) -> tuple:
            title = self.lower[n]
            return (not title.startswith(phrase), phrase not in title, len(title), title)

        best = sorted(found.tolist(), key=rank)[:limit]
        return [{"kind": "title", "text": self.titles[n], "id": self.ids[n], "service": self.services[n],
                 "url": f"/articles/{self.ids[n]}"} for n in best]

    def codes_for(self, text: str, limit: int = MAX_CODES) -> list[dict]:
        """Error codes of the index (titles and bodies) starting with the last typed word (at
        least 3 characters, and holding a digit unless it is the only word: "aadsts", but not
        "starting wind"), the most common first."""
        typed = text.split()
        start = typed[-1].lower() if typed else ""
        if len(start) < 3:
            return []
        if len(typed) > 1 and not any(c.isdigit() for c in start):
            return []
        counts: dict[str, int] = {}
        scanned = 0
        for fieldname in CODE_FIELDS:
            if fieldname not in self.reader.indexed_field_names():
                continue
            for btext in self.reader.expand_prefix(fieldname, start):
                scanned += 1
                if scanned > MAX_SCANNED:
                    break
                term = utf8decode(btext)[0] if isinstance(btext, bytes) else btext
                if _CODE_RE.fullmatch(term):
                    # articles naming it: the larger of the two fields' counts (most have it in both)
                    counts[term] = max(counts.get(term, 0), self.reader.doc_frequency(fieldname, term))
        found = [(df, term) for term, df in counts.items()]
        found.sort(key=lambda item: (-item[0], item[1]))
        return [{"kind": "code", "text": shown_code(term), "count": df, "url": f"/?q={shown_code(term)}"}
                for df, term in found[:limit]]


def shown_code(term: str) -> str:
    """A code as it is usually written: ``0xC000021A``, ``AADSTS50076``
    (the index keeps codes lower-cased)."""
    if term.startswith("0x"):
        return "0x" + term[2:].upper()
    return term.upper()


def suggest(gen, text: str) -> dict:
    """Suggestions for what is being typed: ``{"query", "suggestions": [...]}``, codes first
    (a typed code is the surest way to its article), then titles."""
    s = suggester(gen)
    return {"query": text, "suggestions": [*s.codes_for(text), *s.titles_for(text)]}
