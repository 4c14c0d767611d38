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

Power users keep Whoosh's syntax: ``field:value``, ``"exact phrase"``, ``-exclude``, ``OR``,
``prefix*``.  Broken syntax (``title:(``, a lone ``AND``, unbalanced quotes) is searched as well
as possible and never raises.  Wildcards are bounded: per query (all of its wildcards together)
and per worker process (:class:`ExpansionBucket`), so a client looping ``aa* ae* … da*`` gets
quick answers that say they were cut (``Parsed.warnings``) instead of holding every worker.
"""

from __future__ import annotations

import bisect
import fnmatch
import heapq
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from whoosh import qparser
from whoosh import query as wq
from whoosh.util.text import utf8decode

from .analysis import STOPWORDS, code_parts, text_analyzer
from .deadline import NEVER, Deadline, SearchTimeout
from .noise import strip_noise
from .scoring import Alternative, Word
from .synonyms import Synonyms
from .whooshcodec import multiterm_expansions

#: Queries longer than this are refused by the web API (and cut elsewhere).
MAX_QUERY_CHARS = 500
#: Distinct words of a query beyond this are ignored (a pasted message's first 32 words tell enough).
MAX_WORDS = 32
#: Wildcard, prefix and fuzzy terms of one query, all together (Whoosh's parser makes one per
#: field, six for a plain ``re*``), look at this many index terms, keep at most this many, and
#: keep only terms whose postings (what Whoosh reads to match and rank them) add up to at most
#: MAX_EXPANDED_POSTINGS.  Each pattern gets an even share of what the ones before it left.
#: (Whoosh matches and ranks an OR of expansions at roughly 30 us per posting: 8,000 postings
#: are a quarter of a second on the real corpus.)
MAX_SCANNED = 10_000
MAX_EXPANDED_TERMS = 24
MAX_EXPANDED_POSTINGS = 8_000
#: Per pattern (of one field), the most common terms kept.
MAX_EXPANSIONS = 30
#: Per worker process: postings that wildcard expansions may read, as a token bucket that holds
#: this many and refills this many a second.  A client looping wildcard queries empties it; its
#: answers then expand less (and say so) while plain searches, which take nothing from it, stay
#: fast.
EXPANSION_BUCKET = 16_000
EXPANSION_REFILL = 4_000
#: Typo corrections remembered per index generation.
CORRECTIONS_CACHE = 4096
#: Search as you type (``prefix``): the last word's completions kept at most (each read in every
#: text field, like a typed word); they share the wildcard budget above and :data:`BUCKET`.
MAX_COMPLETIONS = 8
#: A completion's weight: (its postings / the most common completion's) ** COMPLETION_POWER, at
#: least COMPLETION_MIN_WEIGHT (a rare completion has a high IDF and would otherwise win).
COMPLETION_POWER = 0.5
COMPLETION_MIN_WEIGHT = 0.05

#: Weights of the text fields at query time (the best field of each word counts, plus a share
#: of the others).  Titles are written to be found; info-bubble text and descriptions are short
#: summaries; steps and body are long and mention many things in passing.
FIELD_WEIGHTS = {"title": 12.0, "info": 3.2, "description": 3.2, "issue": 1.2, "steps": 0.3, "body": 0.5}
COORDINATION = 0.9
SYNONYM_WEIGHT = 0.8
FUZZY_WEIGHT = 0.7
#: A word that only this many articles' short fields hold (or none) may be a typo the knowledge base
#: shares ("postgress"); it is also searched as a close word RARE_RATIO times as common.
RARE_DF = 3
RARE_RATIO = 10
#: A code's parts, all matched, are nearly as good as the code itself.
PARTS_WEIGHT = 0.9

# Anything that only makes sense as Whoosh syntax sends the query through Whoosh's parser.
# A field needs one of the index's field names right before its value ("title:vpn"); "Error: 403"
# and "Trace ID: …" in a pasted log line are words.
SYNTAX_RE = re.compile(r"""\b(?i:title|info|description|issue|steps|body|service|tags?|type|cloud|resource|path|"""
                       r"""id|articleid):(?=\S)|["()*?~^]|(^|\s)[-+]\w|\b(OR|AND|NOT)\b""")

#: What people write around a problem in a message or a chat ("Hi team, since last Friday our …
#: any idea?"): greetings, politeness, time words, pronouns and question words.  Not a word of
#: it tells one article from another, yet in a long message each would count as much as the two
#: words that name the problem.  Ignored in queries only (the index keeps them), like stop words;
#: a query made only of them says so.
FILLER = frozenset("""
    hi hello hey dear greetings thanks thank thx ty please pls plz kindly regards cheers sorry
    team folks guys everyone anyone someone somebody anybody all good morning afternoon evening
    hope well fine great ok okay yes yeah
    we us our ours i i'm i've i'd we're we've we'd you're it's that's there's here there
    since yesterday today tonight tomorrow last next ago now currently recently lately earlier
    week weeks month months year years day days hour hours minute minutes night nights weekend
    monday tuesday wednesday thursday friday saturday sunday
    any some something anything everything nothing
    help need needs know let just also still even really very much many would could should
    do does did done doing what why how when where who which whether way ways idea ideas
    advise advice suggest suggestion assist assistance appreciate appreciated urgent asap
    """.split())
_SMALL_NUMBER = re.compile(r"\d{1,2}$")

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
    #: what the searcher should know about how the query was read: what was left out ("'re*'
    #: matches too many words: …"), a query of stop words only
    warnings: list[str] = field(default_factory=list)
    #: False when the answer depends on the load of the moment (a busy worker expanded less)
    cacheable: bool = True

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
        self._spell_df: dict[str, int] = {}
        self._vocab: tuple[list[str], list[int]] | None = None
        # per instance (an lru_cache on the method would keep every old generation alive)
        self._corrections: OrderedDict[str, str | None] = OrderedDict()
        self._corrections_lock = threading.Lock()

    # -- vocabulary --------------------------------------------------------------------------

    def known(self, term: str) -> bool:
        """Is the analyzed ``term`` in any text field of the index?"""
        return any(self.reader.doc_frequency(f, term) for f in FIELD_WEIGHTS)

    def _postings(self, term: str) -> int:
        """Postings of ``term`` over the text fields: what searching it reads."""
        return sum(self.reader.doc_frequency(f, term) for f in FIELD_WEIGHTS)

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
            self._spell_df = {w: df for bucket in buckets.values() for w, df in bucket}
            self._spell = buckets
        return self._spell

    def _vocabulary(self) -> tuple[list[str], list[int]]:
        """The spelling vocabulary sorted (for completions by prefix), with its doc counts."""
        if self._vocab is None:
            self._spelling()
            words = sorted(self._spell_df)
            self._vocab = (words, [self._spell_df[w] for w in words])
        return self._vocab

    def correct(self, word: str) -> str | None:
        """The most frequent vocabulary word within 1 (short words) or 2 edits of ``word``;
        the last :data:`CORRECTIONS_CACHE` answers are remembered."""
        with self._corrections_lock:
            if word in self._corrections:
                self._corrections.move_to_end(word)
                return self._corrections[word]
        fixed = self._correct(word)
        with self._corrections_lock:
            self._corrections[word] = fixed
            while len(self._corrections) > CORRECTIONS_CACHE:
                self._corrections.popitem(last=False)
        return fixed

    def _correct(self, word: str) -> str | None:
        from whoosh.support.levenshtein import damerau_levenshtein as distance

        word = word.lower()
        if len(word) < 4 or not word.isalpha():
            return None
        maxdist = 1 if len(word) < 7 else 2
        best: tuple[int, bool, int, str] | None = None
        for cand, df in self._spelling().get(word[0], ()):
            if abs(len(cand) - len(word)) > maxdist or cand == word:
                continue
            d = distance(word, cand, limit=maxdist)
            if d <= maxdist:
                # fewest edits; then a longer word (a typed word more often misses a letter than
                # has one too many: "realy" is "really" before it is "ready"); then the most common
                key = (d, len(cand) <= len(word), -df, cand)
                if best is None or key < best:
                    best = key
        return best[3] if best else None

    def rare_typo(self, word: str) -> str | None:
        """The correction of a word the index knows only from a few misspelt articles
        ("postgress", "listner"): a close word at least :data:`RARE_RATIO` times as common."""
        low = word.lower()
        if len(low) < 5 or not low.isalpha():
            return None
        self._spelling()
        df = self._spell_df.get(low, 0)
        if df > RARE_DF:
            return None
        fixed = self.correct(word)
        return fixed if fixed and self._spell_df.get(fixed, 0) >= max(1, df) * RARE_RATIO else None

    def _known_parts(self, code: str):
        """(part, its terms) for the parts of an unknown code that the index knows: each piece
        between delimiters (``Azure.RequestFailedException`` -> Azure, RequestFailedException)
        if it is known as a whole, else its camelCase parts."""
        pieces = [p for p in re.split(r"[._\-/:']+", code) if p]
        for piece in pieces if len(pieces) > 1 else [code]:
            terms = analyze(piece)
            if piece != code and terms and self.known(terms[0][0]):
                yield piece, terms
                continue
            for sub in code_parts(piece):
                if (sub_terms := analyze(sub)) and self.known(sub_terms[0][0]):
                    yield sub, sub_terms

    # -- parsing -----------------------------------------------------------------------------

    def parse(self, text: str, deadline: Deadline = NEVER, prefix: bool = False) -> Parsed:
        """Parse what the user typed; an empty query means "browse everything".

        With Whoosh syntax, Whoosh's parser decides which documents match and the query's
        positive words are ranked by kb's scorer like any plain query.  ``prefix`` (search as
        you type) reads the last plain word as the start of a word (see :meth:`completions`).
        """
        text = strip_noise((text or "")[:MAX_QUERY_CHARS])
        if not text:
            return Parsed()
        notes = None
        if SYNTAX_RE.search(text):
            notes = self._syntax(text, deadline)
            if notes is not None and notes.query is not None:
                parsed = self._plain(_positive_words(text), deadline)
                parsed.query = notes.query
                parsed.warnings = notes.warnings + parsed.warnings
                parsed.cacheable = notes.cacheable
                return parsed
            text = " ".join(_WORD_RE.findall(text))
            prefix = False  # syntax is typed on purpose; its words are whole
        parsed = self._plain(text, deadline, prefix)
        if notes is not None:  # wildcards that expanded to nothing: say why
            parsed.warnings, parsed.cacheable = notes.warnings + parsed.warnings, notes.cacheable
        return parsed

    def _syntax(self, text: str, deadline: Deadline) -> Parsed | None:
        """The Whoosh query of ``text`` (``query`` None when it holds no term), or None when
        its syntax is broken."""
        try:
            q = self._parser.parse(text)
            expander = _Expander(self.reader, q, deadline)
            q = q.accept(expander.bounded)
        except SearchTimeout:
            raise
        except Exception:  # noqa: BLE001 - broken syntax degrades to plain words
            return None
        if q is None or q is wq.NullQuery or not list(q.iter_all_terms()) and not isinstance(q, wq.Every):
            q = None
        return Parsed(query=q, warnings=expander.warnings(), cacheable=not expander.rationed)

    def _plain(self, text: str, deadline: Deadline = NEVER, prefix: bool = False) -> Parsed:
        """Plain words: each typed word, its typo correction and its synonyms as alternatives.

        A code the index does not know is searched as its parts (``AADSTS50055`` -> "aadsts",
        "50055"; ``RedisTimeoutException`` -> "redis", "timeout", "exception"), each a word of its
        own.  With ``prefix`` the last word is searched as its completions, never corrected.
        """
        typed = _WORD_RE.findall(text)
        partial = typed.pop() if prefix and typed else None
        # synonyms are matched on everything typed, stop words included ("out of space")
        lowered = [w.lower() for w in typed]
        words: list[Word] = []
        corrections: dict[str, str] = {}
        warnings: list[str] = []
        seen: set[str] = set()

        def add(word: str, alternatives: list[Alternative]) -> None:
            key = alternatives[0].positions[0][0] if alternatives and alternatives[0].positions else word.lower()
            if key not in seen and len(words) < MAX_WORDS:
                seen.add(key)
                words.append(Word(word, alternatives))

        for i, word in enumerate(typed):
            if lowered[i] in STOPWORDS or lowered[i] in FILLER or _SMALL_NUMBER.match(word):
                continue
            if len(words) >= MAX_WORDS:
                break
            deadline.check()  # a typo correction looks through part of the vocabulary
            positions = analyze(word)
            if not positions:
                continue
            expansions = [p for p in (analyze(e) for e in self.synonyms.expand(lowered, i)) if p]
            synonym_alts = [Alternative([g[:1] for g in p], SYNONYM_WEIGHT) for p in expansions]
            if any(self.known(g[0]) for g in positions):
                alternatives = code_alternatives(positions) + synonym_alts
                if not synonym_alts and (fixed := self.rare_typo(word)) and (fixed_positions := analyze(fixed)):
                    # also searched as the common word, without a "Did you mean": the word itself
                    # is a real one of the knowledge base, and its articles stay in the results
                    alternatives.append(Alternative(fixed_positions, FUZZY_WEIGHT))
                add(word, alternatives)
                continue
            parts = list(self._known_parts(word))
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
        cacheable = True
        if partial is not None:
            completions, notes, cacheable = self.completions(partial, deadline)
            if completions:
                add(partial, completions)
            warnings += notes
            typed.append(partial)
        if typed and not words:
            warnings.append("Only very common words were typed (" + ", ".join(dict.fromkeys(lowered))[:80]
                           + "); add a word that describes the problem.")
        suggestion = None
        if corrections:
            suggestion = " ".join(corrections.get(w, w) for w in typed)
        return Parsed(words=words, suggestion=suggestion, corrections=corrections, warnings=warnings,
                      cacheable=cacheable)


    def completions(self, start: str, deadline: Deadline = NEVER) -> tuple[list[Alternative], list[str], bool]:
        """The words of the index that begin with ``start`` (what is being typed) as alternatives
        of one word; what to tell the searcher about them; whether the answer may be cached.

        Candidates are unstemmed words (the spelling vocabulary, see :meth:`correct`; for a start
        holding a digit or ``_``, the codes of the ``body`` field), the most common first, each
        searched as the term it indexes under.  The typed start itself (when the index knows it) and the most common
        completion cost what a typed word costs; the others spend the wildcard budget: at most
        :data:`MAX_SCANNED` vocabulary entries looked at, :data:`MAX_COMPLETIONS` terms kept, and
        their postings (in every text field) within :data:`MAX_EXPANDED_POSTINGS` and what the
        process's :data:`BUCKET` grants, so as-you-type searches cannot flood a worker.  A rarer
        completion weighs less ("wind" is "windows" before it is "windowseventlogs").  A start of
        one character completes to nothing ("key v" searches "key").
        """
        low = start.lower()
        if len(low) < 2:
            return [], [], True
        candidates: list[tuple[int, str]] = []
        complete = True
        if any(c.isdigit() or c == "_" for c in low):
            # a code being typed: the codes of the body, which the spelling vocabulary leaves out
            source = self.reader.expand_prefix("body", low) if "body" in self.reader.indexed_field_names() else ()
            for scanned, btext in enumerate(source, 1):
                if scanned > MAX_SCANNED:
                    complete = False
                    break
                if not scanned % 256:
                    deadline.check()
                word = utf8decode(btext)[0] if isinstance(btext, bytes) else btext
                candidates.append((self.reader.doc_frequency("body", word), word))
        else:
            words, dfs = self._vocabulary()
            lo = bisect.bisect_left(words, low)
            hi = bisect.bisect_left(words, low + "\U0010ffff")
            if hi - lo > MAX_SCANNED:
                hi, complete = lo + MAX_SCANNED, False
            candidates = heapq.nlargest(MAX_COMPLETIONS * 4, zip(dfs[lo:hi], words[lo:hi]))
        own = analyze(start)
        kept: list[tuple[str, int]] = []  # (term, postings)
        seen: set[str] = set()
        if own and self.known(own[0][0]):
            seen.add(own[0][0])
        granted = BUCKET.take(MAX_EXPANDED_POSTINGS)
        used = 0
        for _df, word in sorted(candidates, reverse=True):
            if len(kept) >= min(MAX_COMPLETIONS, MAX_EXPANDED_TERMS):
                complete = False
                break
            terms = analyze(word)
            if not terms or terms[0][0] in seen:
                continue
            term = terms[0][0]
            seen.add(term)
            cost = self._postings(term)
            if not cost:
                continue
            if kept and cost > granted - used:  # the first completion is free, like a typed word
                complete = False
                continue
            used += cost if kept else 0
            kept.append((term, cost))
        BUCKET.give_back(granted - used)
        rationed = granted < MAX_EXPANDED_POSTINGS
        alts: list[Alternative] = []
        if own and own[0][0] in seen:
            kept.append((own[0][0], self._postings(own[0][0])))
        top = max((cost for _t, cost in kept), default=0)
        for term, cost in kept:
            weight = 1.0 if cost == top else max(COMPLETION_MIN_WEIGHT, (cost / top) ** COMPLETION_POWER)
            alts.append(Alternative([[term]], weight))
        if own and own[0][0] in seen:
            # a typed code is also searched as its parts, as when it is typed whole
            alts += [Alternative(a.positions, a.weight * alts[-1].weight) for a in code_alternatives(own)[1:]]
        notes = []
        if not complete and not kept:
            notes.append(f"'{start}' starts too many words; type more of it")
        if rationed:
            notes.append("many searches are running: words being typed were completed less than usual")
        return alts, notes, not rationed


def _positive_words(text: str) -> str:
    """The words a syntax query asks for, without operators, field names, exclusions or patterns."""
    text = re.sub(r"(^|\s)(-|NOT\s+)(\"[^\"]*\"|\S+)", " ", text)
    words = [w for w in re.split(r"\s+", text) if w and not re.search(r"[*?~]", w)]
    text = " ".join(re.sub(r"^\+|\w+:|\^[\d.]+", "", w) for w in words)
    return " ".join(w for w in _WORD_RE.findall(text) if w not in ("AND", "OR", "NOT"))


class ExpansionBucket:
    """A token bucket of postings that wildcard expansions may read in this process.

    One client looping expensive wildcard queries would otherwise hold a worker's CPU (and, with
    two such clients, every worker's); taking from a bucket that refills at a fixed rate caps the
    CPU that wildcards get, whoever sends them, while queries without wildcards never wait.
    """

    def __init__(self, capacity: int = EXPANSION_BUCKET, refill: float = EXPANSION_REFILL):
        self.capacity = capacity
        self.refill = refill
        self._level = float(capacity)
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self, wanted: int) -> int:
        """Up to ``wanted`` tokens, fewer (even none) when the bucket is low."""
        with self._lock:
            now = time.monotonic()
            self._level = min(self.capacity, self._level + (now - self._at) * self.refill)
            self._at = now
            granted = int(min(wanted, self._level))
            self._level -= granted
            return granted

    def give_back(self, unused: int) -> None:
        with self._lock:
            self._level = min(self.capacity, self._level + unused)


#: The bucket of this process (each gunicorn worker has its own after the fork).
BUCKET = ExpansionBucket()


class _Expander:
    """Replaces a parsed query's wildcard, prefix and fuzzy terms by their most common expansions,
    within one budget for the whole query (:data:`MAX_SCANNED`, :data:`MAX_EXPANDED_TERMS`,
    :data:`MAX_EXPANDED_POSTINGS`) and what the worker's :data:`BUCKET` grants.

    Whoosh expands ``c*`` to every term starting with "c" in six fields and matches and scores
    them all (tens of seconds on the real corpus; sixteen 2-letter prefixes in one query, minutes).
    A pattern needs two literal characters before its first wildcard; each pattern then gets an
    even share of the budget left by the ones before it and keeps its most common terms that fit.
    """

    def __init__(self, reader, q: wq.Query, deadline: Deadline):
        self.reader = reader
        self.deadline = deadline
        self.patterns = sum(1 for leaf in q.leaves() if isinstance(leaf, wq.MultiTerm))
        self.scanned_left = MAX_SCANNED
        self.terms_left = MAX_EXPANDED_TERMS
        self.postings_left = 0
        self.rationed = False
        self.cut: dict[str, None] = {}
        if self.patterns:
            self.postings_left = BUCKET.take(MAX_EXPANDED_POSTINGS)
            self.rationed = self.postings_left < MAX_EXPANDED_POSTINGS

    def warnings(self) -> list[str]:
        out = []
        if self.cut:
            shown = ", ".join(repr(p) for p in self.cut)
            verb = "matches" if len(self.cut) == 1 else "match"
            out.append(f"{shown} {verb} too many words; only some of them were searched")
        if self.rationed:
            out.append("many wildcard searches are running: wildcards (*, ?) were expanded less than usual; "
                       "try again in a moment or type whole words")
        return out

    def bounded(self, node: wq.Query) -> wq.Query:
        if not isinstance(node, wq.MultiTerm):
            return node
        share = max(1, self.patterns)
        self.patterns -= 1
        try:
            return self._expand(node, share)
        finally:
            if not self.patterns:  # the last pattern: what nobody used goes back to the bucket
                BUCKET.give_back(self.postings_left)
                self.postings_left = 0

    def _expand(self, node: wq.MultiTerm, share: int) -> wq.Query:
        self.deadline.check()
        scan = self.scanned_left // share
        keep = min(MAX_EXPANSIONS, max(1, self.terms_left // share)) if self.terms_left > 0 else 0
        postings = self.postings_left // share
        field = node.fieldname
        if isinstance(node, (wq.Wildcard, wq.Prefix)):
            literal = re.split(r"[*?]", node.text, maxsplit=1)[0]
            if len(literal) < 2:
                return wq.Term(field, literal, boost=node.boost) if literal else wq.NullQuery
        if not keep or postings <= 0:  # nothing left to spend: don't even look
            self.cut[f"{node.text}*" if isinstance(node, wq.Prefix) else str(node.text)] = None
            return wq.NullQuery
        candidates, scanned, complete = self._candidates(node, scan)
        self.scanned_left -= scanned
        kept: list[str] = []
        used = 0
        # the most common terms first; one too common for what is left is skipped
        for df, term in sorted(((self.reader.doc_frequency(field, t), t) for t in candidates), reverse=True):
            if len(kept) >= keep:
                break
            if df <= postings - used:
                kept.append(term)
                used += df
        self.terms_left -= len(kept)
        self.postings_left -= used
        if not complete or len(kept) < len(candidates):
            self.cut[f"{node.text}*" if isinstance(node, wq.Prefix) else str(node.text)] = None
        if not kept:
            return wq.NullQuery
        return wq.Or([wq.Term(field, t) for t in kept], boost=node.boost)

    def _candidates(self, node: wq.MultiTerm, scan: int) -> tuple[list[str], int, bool]:
        """Up to ``scan`` index terms looked at: (the matching ones, how many were looked at,
        whether that was all of them)."""
        field = node.fieldname
        if isinstance(node, wq.Prefix):
            source, match = self.reader.expand_prefix(field, node.text), None
        elif isinstance(node, wq.Wildcard):
            literal = re.split(r"[*?]", node.text, maxsplit=1)[0]
            source = self.reader.expand_prefix(field, literal)
            match = re.compile(fnmatch.translate(node.text)).match
        else:  # fuzzy or regex terms (the parser makes none unless a plugin is added)
            source, match = multiterm_expansions(node, self.reader), None
        out: list[str] = []
        scanned = 0
        for btext in source:
            if scanned >= scan:
                return out, scanned, False
            scanned += 1
            if not scanned % 256:
                self.deadline.check()
            text = utf8decode(btext)[0] if isinstance(btext, bytes) else btext
            if match is None or match(text):
                out.append(text)
        return out, scanned, True
