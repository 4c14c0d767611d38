"""Text analysis shared by indexing and querying.

Support queries are full of codes: ``0xC000021A``, ``AADSTS50076``, ``ERROR_DISK_FULL``,
``Microsoft.Compute/virtualMachines``.  The analyzer keeps such a code as one token *and* emits
its parts at the same position, so ``AADSTS50076``, ``50076`` and ``error disk full`` all find it.
Words are lower-cased, stop words dropped (positions renumbered so phrases still match across
them) and stemmed with Whoosh's Porter stemmer.

It is one tokenizer doing all of that in a single pass: indexing runs every word of the corpus
through it, and a chain of Whoosh filters costs several generator hops per word.
"""

from __future__ import annotations

import re
from functools import lru_cache

from whoosh.analysis import Token, Tokenizer
from whoosh.lang.porter import stem as porter_stem

#: A token is a run of word characters, optionally joined by ``. - / : '`` to more of them.
TOKEN_PATTERN = r"\w+(?:[.\-/:']\w+)*"

_DELIMS = re.compile(r"[._\-/:']+")
# camelCase and letter/digit boundaries: "virtualMachines" -> virtual|Machines,
# "AADSTS50076" -> AADSTS|50076, "VNetPeering" -> VNet|Peering, "HTTPServer" -> HTTP|Server
_CAMEL = re.compile(r"[A-Z]?[A-Z][a-z]+|[A-Z]+(?![a-z])|[a-z]+|\d+")
_HEX = re.compile(r"0x([0-9a-fA-F]+)$")

STOPWORDS = frozenset(
    """a an and are as at be but by for from has have i if in into is it its my of on or our so
    such that the their then there these they this to was we were will with you your me can""".split()
)


def code_parts(text: str) -> list[str]:
    """The parts a code token is also indexed under (empty for plain words).

    >>> code_parts("Microsoft.Compute/virtualMachines")
    ['Microsoft', 'Compute', 'virtualMachines', 'virtual', 'Machines']
    >>> code_parts("0xC000021A")
    ['C000021A']
    """
    if len(text) < 4 or text.isdigit() or (text.isalpha() and (text.islower() or text.isupper() or text.istitle())):
        return []
    hexm = _HEX.match(text)
    if hexm:
        return [hexm.group(1)]
    # "don't" -> "don", "t": contractions and possessives are not codes
    if "'" in text and not any(c.isdigit() for c in text):
        return []
    parts: list[str] = []
    pieces = [p for p in _DELIMS.split(text) if p]
    if len(pieces) > 1:
        parts.extend(pieces)
    for piece in pieces:
        sub = _CAMEL.findall(piece)
        if len(sub) > 1:
            parts.extend(sub)
    return [p for p in dict.fromkeys(parts) if p != text]


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Porter stem of a lower-case word (cached: the vocabulary is far smaller than the text)."""
    return porter_stem(word)


class KbTokenizer(Tokenizer):
    """Tokenize, split codes, lower-case, drop stop words and stem, in one pass."""

    #: Tokens whose terms are remembered per tokenizer by :meth:`positions` (indexing; the real
    #: corpus has about 200,000 distinct).  Queries only read the cache: typed tokens, untrusted
    #: and up to a query's length, never fill it.
    CACHE = 500_000

    def __init__(self, stoplist=STOPWORDS):
        self.regex = re.compile(TOKEN_PATTERN)
        self.stoplist = stoplist
        self._cache: dict[str, tuple[str, ...]] = {}

    def __eq__(self, other):
        return type(other) is type(self) and other.stoplist == self.stoplist

    def __getstate__(self):  # the schema, with its analyzers, is pickled into the index
        return {"stoplist": self.stoplist}

    def __setstate__(self, state):
        self.__init__(state["stoplist"])

    def terms(self, text: str, remember: bool = True) -> tuple[str, ...]:
        """The terms of one token: its stem, then the stems of its code parts; () for a stop word.
        With ``remember``, a token met for the first time is cached (up to :data:`CACHE`)."""
        found = self._cache.get(text)
        if found is None:
            low = text.lower()
            found = () if low in self.stoplist else (stem(low), *(stem(p.lower()) for p in code_parts(text)))
            if remember and len(self._cache) < self.CACHE:
                self._cache[text] = found
        return found

    def positions(self, value: str) -> dict[str, list[int]]:
        """Every term of ``value`` with its positions, in first-seen order: the tokens
        :meth:`__call__` yields, gathered as Whoosh's ``Positions`` format gathers them.

        The indexing path (:mod:`kb.writer`): one loop, no Token objects, and each distinct
        token analysed once.
        """
        found: dict[str, list[int]] = {}
        get = found.get
        cached = self._cache.get
        pos = -1
        for text in self.regex.findall(value):
            terms = cached(text)
            if terms is None:
                terms = self.terms(text)
            if not terms:
                continue
            pos += 1
            for term in terms:
                plist = get(term)
                if plist is None:
                    found[term] = [pos]
                else:
                    plist.append(pos)
        return found

    def __call__(self, value, positions=False, chars=False, keeporiginal=False, removestops=True,
                 start_pos=0, start_char=0, tokenize=True, mode="", **kwargs):
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        pos = start_pos - 1
        for m in self.regex.finditer(value):
            text = m.group()
            terms = self.terms(text, remember=False)
            if not terms:
                continue
            pos += 1
            t.boost = 1.0
            t.stopped = False
            if keeporiginal:
                t.original = text
            if positions:
                t.pos = pos
            parts = code_parts(text) if chars and len(terms) > 1 else ()
            for n, term in enumerate(terms):
                t.text = term
                if chars:
                    offset = max(text.find(parts[n - 1]), 0) if n else 0
                    t.startchar = start_char + m.start() + offset
                    t.endchar = t.startchar + (len(parts[n - 1]) if n else len(text))
                yield t


def text_analyzer():
    """The analyzer of every full-text field: codes kept whole and split, lower case, stemmed."""
    return KbTokenizer()


class SpellingTokenizer(Tokenizer):
    """Words of three or more letters, lower-cased and unstemmed, in one pass."""

    def __init__(self, expression: str = r"[^\W\d_]{3,}"):
        self.expression = expression
        self.regex = re.compile(expression)

    def __eq__(self, other):
        return type(other) is type(self) and other.expression == self.expression

    def positions(self, value: str) -> dict[str, list[int]]:
        """Every word with its positions, as :meth:`KbTokenizer.positions`."""
        found: dict[str, list[int]] = {}
        for pos, word in enumerate(self.regex.findall(value)):
            found.setdefault(word.lower(), []).append(pos)
        return found

    def __call__(self, value, positions=False, chars=False, keeporiginal=False, removestops=True,
                 start_pos=0, start_char=0, tokenize=True, mode="", **kwargs):
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        for pos, m in enumerate(self.regex.finditer(value), start_pos):
            t.text = m.group().lower()
            t.boost = 1.0
            t.stopped = False
            if keeporiginal:
                t.original = m.group()
            if positions:
                t.pos = pos
            if chars:
                t.startchar = start_char + m.start()
                t.endchar = start_char + m.end()
            yield t


def spelling_analyzer():
    """Plain lower-case words, unstemmed: the vocabulary that "Did you mean" draws from."""
    return SpellingTokenizer()
