"""From what an agent typed to a Whoosh query.

Plain words (the common case: "vm stuck on starting windows") are searched with OR semantics and
coordination: every word may match in any text field (the best field counts, see
``FIELD_WEIGHTS``), articles matching more of the words rank first, and an extra word never
empties the results.  On top of that:

* words found together as a phrase (in the title, description or body) earn a boost;
* abbreviations and synonyms from the synonyms file (``kb/synonyms.txt``) are added as
  alternatives ("bsod" also finds "blue screen");
* a word that is in no article is treated as a typo: it is replaced by the closest words of the
  index's vocabulary, and the corrected query is offered as a suggestion ("Did you mean …").

Power users keep Whoosh's syntax: ``field:value``, ``"exact phrase"``, ``-exclude``, ``OR``.
Broken syntax (``title:(``, a lone ``AND``, unbalanced quotes) is searched as well as possible
and never raises.
"""

from __future__ import annotations

import re
from itertools import islice
from dataclasses import dataclass, field
from functools import lru_cache

from whoosh import qparser
from whoosh import query as wq
from whoosh.util.text import utf8decode

from .analysis import STOPWORDS, code_parts, text_analyzer
from .noise import strip_noise
from .scoring import Alternative, Word
from .synonyms import Synonyms

#: Queries longer than this are refused by the web API (and cut elsewhere).
MAX_QUERY_CHARS = 500
#: Distinct words of a query beyond this are ignored (a pasted message's first 32 words tell enough).
MAX_WORDS = 32
#: A wildcard, prefix or fuzzy term looks at this many index terms and keeps the most common few.
MAX_SCANNED = 5000
MAX_EXPANSIONS = 30

#: Weights of the text fields at query time (the best field of each word counts, plus a share
#: of the others).  Titles are written to be found; info-bubble text and descriptions are short
#: summaries; steps and body are long and mention many things in passing.
FIELD_WEIGHTS = {"title": 12.0, "info": 3.2, "description": 3.2, "issue": 1.2, "steps": 0.3, "body": 0.5}
COORDINATION = 0.9
SYNONYM_WEIGHT = 0.8
FUZZY_WEIGHT = 0.7
#: A code's parts, all matched, are nearly as good as the code itself.
PARTS_WEIGHT = 0.9

# Anything that only makes sense as Whoosh syntax sends the query through Whoosh's parser.
# A field needs one of the index's field names right before its value ("title:vpn"); "Error: 403"
# and "Trace ID: …" in a pasted log line are words.
SYNTAX_RE = re.compile(r"""\b(?i:title|info|description|issue|steps|body|service|tags?|type|cloud|resource|path|"""
                       r"""id|articleid):(?=\S)|["()*?~^]|(^|\s)[-+]\w|\b(OR|AND|NOT)\b""")

_analyzer = text_analyzer()
_WORD_RE = re.compile(r"\w+(?:[.\-/:']\w+)*")


@dataclass
class Parsed:
    """A parsed query: ``words`` for plain text (ranked by :mod:`kb.scoring`), or a Whoosh
    ``query`` for power-user syntax; neither for an empty query (browse everything)."""

    query: wq.Query | None = None
    words: list[Word] | None = None
    suggestion: str | None = None
    corrections: dict[str, str] = field(default_factory=dict)
    #: what the searcher should know about how the query was read ("only common words", …)
    notices: list[str] = field(default_factory=list)

    def highlight_terms(self) -> frozenset[str]:
        terms: set[str] = set()
        if self.words:
            for w in self.words:
                terms.add(w.text.lower())
                for alt in w.alternatives:
                    for position in alt.positions:
                        terms.update(position)
        if self.query is not None:
            for fieldname, text in self.query.iter_all_terms():
                if fieldname in FIELD_WEIGHTS:
                    terms.add(utf8decode(text)[0] if isinstance(text, bytes) else text)
        terms.update(self.corrections.values())
        return frozenset(terms)

    def phrase_pairs(self) -> list[tuple[str, str]]:
        """Consecutive typed words (their first terms) that earn a bonus when found side by side."""
        if not self.words:
            return []
        firsts = [w.alternatives[0].positions[0][0] for w in self.words if w.alternatives]
        return list(zip(firsts, firsts[1:]))


def analyze(text: str) -> list[list[str]]:
    """Analyzed terms of ``text`` grouped by position: ``[["0xc000021a", "c000021a"], ["error"]]``."""
    groups: dict[int, list[str]] = {}
    for t in _analyzer(text, positions=True):
        groups.setdefault(t.pos, [])
        if t.text not in groups[t.pos]:
            groups[t.pos].append(t.text)
    return [groups[p] for p in sorted(groups)]


def code_alternatives(positions: list[list[str]]) -> list[Alternative]:
    """A typed token as itself and, for codes, as all of its parts together.

    ``CRITICAL_PROCESS_DIED`` finds articles with the whole code, and articles that write
    "critical process died"; ``0xC000021A`` also finds ``C000021A``.
    """
    alts = [Alternative([g[:1] for g in positions])]
    parts = [t for g in positions for t in g[1:]]
    if parts:
        alts.append(Alternative([[t] for t in parts], PARTS_WEIGHT))
    return alts


class QueryBuilder:
    """Builds queries against one index generation (its vocabulary decides what is a typo)."""

    def __init__(self, searcher, synonyms: Synonyms | None = None):
        self.searcher = searcher
        self.reader = searcher.reader()
        self.synonyms = synonyms or Synonyms()
        self._parser = qparser.MultifieldParser(
            list(FIELD_WEIGHTS), searcher.schema, fieldboosts=FIELD_WEIGHTS,
            group=qparser.OrGroup.factory(COORDINATION),
        )
        # Ranges over free text expand to huge term lists; agents don't need them.
        self._parser.remove_plugin_class(qparser.RangePlugin)
        self._parser.remove_plugin_class(qparser.GtLtPlugin)
        self._parser.add_plugin(qparser.FieldAliasPlugin({"tag": ["tags"], "articleid": ["articleId"]}))
        # "-word" excludes and "+word" requires, as in every web search box
        self._parser.add_plugin(qparser.PlusMinusPlugin())
        self._spell: dict[str, list[tuple[str, int]]] | None = None

    # -- vocabulary --------------------------------------------------------------------------

    def known(self, term: str) -> bool:
        """Is the analyzed ``term`` in any text field of the index?"""
        return any(self.reader.doc_frequency(f, term) for f in FIELD_WEIGHTS)

    def _spelling(self) -> dict[str, list[tuple[str, int]]]:
        """Words of the ``spell`` field (unstemmed) bucketed by first letter, with doc counts."""
        if self._spell is None:
            buckets: dict[str, list[tuple[str, int]]] = {}
            # in a large knowledge base a word seen once may itself be a typo
            min_df = 2 if self.reader.doc_count() > 1000 else 1
            if "spell" in self.reader.indexed_field_names():
                for btext, info in self.reader.iter_field("spell"):
                    word = utf8decode(btext)[0] if isinstance(btext, bytes) else btext
                    if info.doc_frequency() >= min_df and word.isalpha():
                        buckets.setdefault(word[0], []).append((word, info.doc_frequency()))
            self._spell = buckets
        return self._spell

    @lru_cache(maxsize=4096)
    def correct(self, word: str) -> str | None:
        """The most frequent vocabulary word within 1 (short words) or 2 edits of ``word``."""
        from whoosh.support.levenshtein import damerau_levenshtein as distance

        word = word.lower()
        if len(word) < 4 or not word.isalpha():
            return None
        maxdist = 1 if len(word) < 7 else 2
        best: tuple[int, int, str] | None = None
        for cand, df in self._spelling().get(word[0], ()):
            if abs(len(cand) - len(word)) > maxdist or cand == word:
                continue
            d = distance(word, cand, limit=maxdist)
            if d <= maxdist:
                key = (d, -df, cand)
                if best is None or key < best:
                    best = key
        return best[2] if best else None

    # -- parsing -----------------------------------------------------------------------------

    def parse(self, text: str) -> Parsed:
        """Parse what the user typed; an empty query means "browse everything".

        With Whoosh syntax, Whoosh's parser decides which documents match and the query's
        positive words are ranked by kb's scorer like any plain query.
        """
        text = strip_noise((text or "")[:MAX_QUERY_CHARS])
        if not text:
            return Parsed()
        if SYNTAX_RE.search(text):
            q = self._syntax(text)
            if q is not None:
                parsed = self._plain(_positive_words(text))
                parsed.query = q
                return parsed
            text = " ".join(_WORD_RE.findall(text))
        return self._plain(text)

    def _syntax(self, text: str) -> wq.Query | None:
        try:
            q = self._parser.parse(text).accept(self._bounded)
        except Exception:  # noqa: BLE001 - broken syntax degrades to plain words
            return None
        if q is None or q is wq.NullQuery or not list(q.iter_all_terms()) and not isinstance(q, wq.Every):
            return None
        return q

    def _bounded(self, node: wq.Query) -> wq.Query:
        """Replace wildcard, prefix and fuzzy terms by their most frequent expansions.

        Whoosh expands ``c*`` to every term starting with "c" in six fields and scores them all
        (tens of seconds on the real corpus).  A pattern needs two literal characters before its
        first wildcard, and keeps at most :data:`MAX_EXPANSIONS` terms, the most common first.
        """
        if not isinstance(node, wq.MultiTerm):
            return node
        field = node.fieldname
        if isinstance(node, (wq.Wildcard, wq.Prefix)):
            literal = re.split(r"[*?]", node.text, maxsplit=1)[0]
            if len(literal) < 2:
                return wq.Term(field, literal, boost=node.boost) if literal else wq.NullQuery
        candidates = list(islice(node._btexts(self.reader), MAX_SCANNED))
        if not candidates:
            return wq.NullQuery
        candidates.sort(key=lambda t: -self.reader.doc_frequency(field, t))
        terms = [wq.Term(field, utf8decode(t)[0] if isinstance(t, bytes) else t) for t in candidates[:MAX_EXPANSIONS]]
        return wq.Or(terms, boost=node.boost)

    def _plain(self, text: str) -> Parsed:
        """Plain words: each typed word, its typo correction and its synonyms as alternatives.

        Pasted noise (ids, timestamps, URLs, addresses) is dropped first; a code the index does not
        know is searched as its parts (``AADSTS50055`` -> "aadsts", "50055"; ``RedisTimeoutException``
        -> "redis", "timeout", "exception"), each a word of its own.
        """
        typed = _WORD_RE.findall(text)
        # synonyms are matched on everything typed, stop words included ("out of space")
        lowered = [w.lower() for w in typed]
        words: list[Word] = []
        corrections: dict[str, str] = {}
        notices: list[str] = []
        seen: set[str] = set()

        def add(word: str, alternatives: list[Alternative]) -> None:
            key = alternatives[0].positions[0][0] if alternatives and alternatives[0].positions else word.lower()
            if key not in seen and len(words) < MAX_WORDS:
                seen.add(key)
                words.append(Word(word, alternatives))

        for i, word in enumerate(typed):
            if lowered[i] in STOPWORDS:
                continue
            positions = analyze(word)
            if not positions:
                continue
            expansions = [p for p in (analyze(e) for e in self.synonyms.expand(lowered, i)) if p]
            synonym_alts = [Alternative([g[:1] for g in p], SYNONYM_WEIGHT) for p in expansions]
            if any(self.known(g[0]) for g in positions):
                add(word, code_alternatives(positions) + synonym_alts)
                continue
            parts = [(p, terms) for p in code_parts(word) if (terms := analyze(p)) and self.known(terms[0][0])]
            if parts:
                # an unknown code: its known parts, each a word of its own
                for part, terms in parts:
                    add(part, [Alternative([g[:1] for g in terms])])
                if synonym_alts:
                    add(word, synonym_alts)
                continue
            alternatives = list(synonym_alts)
            if not synonym_alts:  # a synonym key ("bsod") is a word, not a typo
                fixed = self.correct(word)
                if fixed and (fixed_positions := analyze(fixed)):
                    corrections[word] = fixed
                    alternatives.append(Alternative(fixed_positions, FUZZY_WEIGHT))
            if not alternatives:
                # unknown everywhere: still a typed word that the results don't match
                alternatives.append(Alternative(positions))
            add(word, alternatives)
        if typed and not words:
            notices.append("Only very common words were typed (" + ", ".join(dict.fromkeys(lowered))[:80]
                           + "); add a word that describes the problem.")
        suggestion = None
        if corrections:
            suggestion = " ".join(corrections.get(w, w) for w in typed)
        return Parsed(words=words, suggestion=suggestion, corrections=corrections, notices=notices)


def _positive_words(text: str) -> str:
    """The words a syntax query asks for, without operators, field names, exclusions or patterns."""
    text = re.sub(r"(^|\s)(-|NOT\s+)(\"[^\"]*\"|\S+)", " ", text)
    words = [w for w in re.split(r"\s+", text) if w and not re.search(r"[*?~]", w)]
    text = " ".join(re.sub(r"^\+|\w+:|\^[\d.]+", "", w) for w in words)
    return " ".join(w for w in _WORD_RE.findall(text) if w not in ("AND", "OR", "NOT"))
