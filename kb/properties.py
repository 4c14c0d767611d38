"""The ``<properties .../>`` block at the top of an article: find it, read its attributes.

Finding the block is a small pre-pass of our own, because the corpus has blocks that no HTML
parser reads well on its own: a stray quote (``ms.author="scotro``) that would swallow the rest of
the file, a doubled quote (``description="Text""``), a block that is never closed.  The pre-pass
cuts out the attribute text (and says what was wrong with it); BeautifulSoup then reads the
attributes, with the entity decoding, quoting rules and duplicate handling of a real HTML parser.
Property names are matched case-insensitively, and close typos of a known name
(``infoBubbleTest``, ``supportToicIds``) are read as that name.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

from bs4 import BeautifulSoup
from bs4.builder import HTMLParserTreeBuilder

#: At most this many properties are read (real articles have about 15).
MAX_PROPERTIES = 100

#: Property names the parser knows, lower-cased.  Unknown names within a small edit distance of
#: one of these (``infoBubbleTest``, ``supportToicIds``) are read as the known name.
KNOWN_PROPERTIES = (
    "pagetitle", "description", "infobubbletext", "service", "resource", "resourcetags",
    "articleid", "selfhelptype", "cloudenvironments", "diagnosticscenario", "supporttopicids",
    "productpesids", "ownershipid", "authors", "ms.author", "displayorder", "schemaversion",
    "articletags", "disableclouds", "authoralias", "clientids", "category", "symptomid",
)

# Each pattern is linear-time on any input (tests/test_hostile_parse.py).
PROPERTIES_START_RE = re.compile(r"<properties\b", re.I)
# Attribute values may hold ">" inside quotes; "<" outside quotes ends a block that was not closed.
PROPERTIES_BODY_RE = re.compile(r"""(?:"[^"]*"|'[^']*'|[^<>"'])*>""")
# An unclosed block ends at the first blank line, heading or tag.
PROPERTIES_END_RE = re.compile(r"\n[ \t]*(?:\n|#|<)")
PROPERTIES_CLOSE_LINE_RE = re.compile(r"\n[ \t]*/?>[ \t]*(?=\n|\Z)")
SINGLE_QUOTED_RE = re.compile(r"=[ \t\n]*'")
# What html.parser takes for an attribute name but is debris of a broken quote ('"', 'x"').
BAD_NAME_RE = re.compile(r"""["'<=]""")


def split_properties(text: str) -> tuple[str, str, str]:
    """Find the properties block: (its attribute text, the text without it, a warning or "").

    The warning is ``no-properties``, ``properties-malformed`` (a stray quote: the block ends at
    a ``/>`` line) or ``properties-unclosed`` (no end before the first blank line, heading or
    tag: the block ends there).
    """
    m = PROPERTIES_START_RE.search(text)
    if m is None:
        return "", text, "no-properties"
    start, after = m.start(), m.end()
    # Fast path: the first ">" closes the block when no quote is left open before it.
    close = text.find(">", after)
    if close >= 0:
        attrs = text[after:close]
        if "<" not in attrs and attrs.count('"') % 2 == 0 and ("'" not in attrs or not SINGLE_QUOTED_RE.search(attrs)):
            return attrs.rstrip().rstrip("/"), text[:start] + text[close + 1:], ""
    # Otherwise the block ends before its first blank line, heading or tag ...
    stop = PROPERTIES_END_RE.search(text, after)
    end = stop.start() if stop else len(text)
    # ... at the first ">" outside quotes ('>' may sit inside a quoted value) ...
    body = PROPERTIES_BODY_RE.match(text, after, end)
    if body is not None:
        return text[after:body.end() - 1].rstrip().rstrip("/"), text[:start] + text[body.end():], ""
    # ... or, when a stray quote (ms.author="scotro) upsets the count, at a line that is just "/>".
    close_line = PROPERTIES_CLOSE_LINE_RE.search(text, after, end + 1)
    if close_line is not None:
        return text[after:close_line.start()], text[:start] + text[close_line.end():], "properties-malformed"
    return text[after:end], text[:start] + text[end:], "properties-unclosed"


#: Exact spellings seen so far that need no typo check (a fast path for the common case).
_KNOWN_LOWER: dict[str, str] = {}


@lru_cache(maxsize=1024)
def _canonical_property(name: str) -> tuple[str, bool]:
    """Map a property name to its canonical lower-case form; the flag says a typo was corrected."""
    low = name.lower()
    if low in KNOWN_PROPERTIES or len(low) < 6 or len(low) > 40:
        if len(_KNOWN_LOWER) < 10_000:
            _KNOWN_LOWER[name] = low
        return low, False
    close = difflib.get_close_matches(low, KNOWN_PROPERTIES, n=1, cutoff=0.88)
    return (close[0], True) if close else (low, False)


def _keep_first_value(attrs: dict[str, str], name: str, value: str) -> None:
    """A repeated attribute (``PAGETITLE="T" pagetitle="x"``) keeps its first non-empty value."""
    if not attrs.get(name):
        attrs[name] = value


#: One tree builder for every block: building a new one per call was a third of the cost.
_BUILDER = HTMLParserTreeBuilder(multi_valued_attributes=None, on_duplicate_attribute=_keep_first_value)


def parse_properties(block: str) -> tuple[dict[str, str], list[str]]:
    """Read the attributes of a ``<properties .../>`` block (names lower-cased, values unescaped).

    ``block`` is the attribute text that :func:`split_properties` cut out.
    """
    warns: list[str] = []
    # "<" cannot occur in an attribute name; one left over from a broken block must not open a tag.
    soup = BeautifulSoup("<properties " + block.replace("<", "&lt;") + ">", builder=_BUILDER)
    tag = soup.contents[0] if soup.contents else None
    props: dict[str, str] = {}
    for n, (name, value) in enumerate((getattr(tag, "attrs", None) or {}).items()):
        if n == MAX_PROPERTIES:
            warns.append("properties-truncated")
            break
        if BAD_NAME_RE.search(name):
            continue
        canon = _KNOWN_LOWER.get(name)
        if canon is None:
            canon, typo = _canonical_property(name)
            if typo:
                warns.append("property-typo")
        value = " ".join((value or "").split())
        if not props.get(canon):
            props[canon] = value
    return props, warns


def split_list(value: str) -> list[str]:
    """Comma- (or semicolon-) separated values, trimmed, lower-cased, empties and repeats dropped."""
    seen: dict[str, None] = {}
    for part in value.replace(";", ",").split(","):
        part = part.strip().lower()
        if part:
            seen.setdefault(part, None)
    return list(seen)
