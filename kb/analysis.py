"""Text analysis shared by indexing and querying.

Support queries are full of codes: ``0xC000021A``, ``AADSTS50076``, ``ERROR_DISK_FULL``,
``Microsoft.Compute/virtualMachines``.  The tokenizer keeps such a code as one token *and* emits
its parts at the same position, so ``AADSTS50076``, ``50076`` and ``error disk full`` all find it.
"""

from __future__ import annotations

import re

from whoosh.analysis import Filter, LowercaseFilter, RegexTokenizer, StemFilter

#: A token is a run of word characters, optionally joined by ``. - / : '`` to more of them.
TOKEN_PATTERN = r"\w+(?:[.\-/:']\w+)*"

_DELIMS = re.compile(r"[._\-/:']+")
# camelCase and letter/digit boundaries: "virtualMachines" -> virtual|Machines, "AADSTS50076" -> AADSTS|50076
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
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
    hexm = _HEX.match(text)
    if hexm:
        return [hexm.group(1)]
    parts: list[str] = []
    pieces = [p for p in _DELIMS.split(text) if p]
    if len(pieces) > 1:
        parts.extend(pieces)
    for piece in pieces:
        sub = _CAMEL.findall(piece)
        if len(sub) > 1:
            parts.extend(sub)
    # "don't" -> "don", "t": possessives and contractions are not codes
    if "'" in text and not any(c.isdigit() for c in text):
        return []
    return [p for p in dict.fromkeys(parts) if p != text]


class CodePartsFilter(Filter):
    """Drop stop words, then emit every token followed by its :func:`code_parts` at the same position.

    Positions are renumbered here (not in Whoosh's StopFilter) so that parts share their code's
    position while phrases still match across removed stop words.
    """

    def __init__(self, stoplist=STOPWORDS):
        self.stoplist = stoplist

    def __call__(self, tokens):
        pos = -1
        for t in tokens:
            text = t.text
            if text.lower() in self.stoplist:
                continue
            pos += 1
            if t.positions:
                t.pos = pos
            yield t
            if len(text) < 4 or text.isalpha() and text.islower() or text.isdigit():
                continue
            parts = code_parts(text)
            if not parts:
                continue
            start = getattr(t, "startchar", None)
            for part in parts:
                t.text = part
                if start is not None and t.chars:
                    offset = text.find(part)
                    t.startchar = start + max(offset, 0)
                    t.endchar = t.startchar + len(part)
                yield t
            t.text = text


def text_analyzer():
    """The analyzer of every full-text field: codes kept whole and split, lower case, stemmed."""
    return (
        RegexTokenizer(TOKEN_PATTERN)
        | CodePartsFilter()
        | LowercaseFilter()
        | StemFilter(cachesize=100_000)
    )


def spelling_analyzer():
    """Plain lower-case words, unstemmed: the vocabulary that "Did you mean" draws from."""
    return RegexTokenizer(r"[^\W\d_]{3,}") | LowercaseFilter()
