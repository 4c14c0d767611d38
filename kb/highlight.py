"""Result snippets: the query's words found in stored text and marked, HTML-escaped."""

from __future__ import annotations

import html
import re

from markupsafe import escape

#: Characters of text a snippet shows.
SNIPPET_CHARS = 240

_SPACE = re.compile(r"\s+")
#: Markdown a line of stored text can still hold (from JSON payload strings, code, tables): line
#: starts (headings, bullets, numbers, quotes), links, emphasis, code marks and tags.
_LINE_START = re.compile(r"^\s*(?:#{1,6}\s*|[*+-]\s+|[0-9]{1,3}[.)]\s+|>\s*)+")
_LINK = re.compile(r"!?\[([^\[\]\n]*)\]\((?:[^()\n]|\([^()\n]*\))*(?:\)|$)")
#: the end of a link whose text began on an earlier line
_LINK_TAIL = re.compile(r"\]\([^()\s]*\)")
_EMPHASIS = re.compile(r"\*\*|__|(?<![\w*])\*(?=\S)|(?<=\S)\*(?![\w*])|`+|~~")
_TAG = re.compile(r"</?[A-Za-z][\w-]*(?:\s[^<>]*)?/?(?:>|$)|<br\W{0,3}>")
_RULE = re.compile(r"^[\s|:=*_-]*$")
_SENTENCE_END = ".!?:;…)»\"'"


def snippet_text(*texts: str) -> str:
    """Stored text made readable for snippets: markdown syntax and tags gone, table bars as
    spaces, and a line that does not end a sentence (a heading) kept apart from the next with
    " · " instead of being glued to it.  Placeholders stay as they read (``[vmname]``)."""
    out: list[str] = []
    for text in texts:
        for line in text.split("\n"):
            if _RULE.match(line):  # blank, a table rule or a line of dashes
                continue
            line = _LINE_START.sub("", line)
            line = _LINK_TAIL.sub("", _LINK.sub(r"\1", line))
            line = _TAG.sub(" ", line)
            line = _EMPHASIS.sub("", line).replace("|", " ")
            line = " ".join(line.split())
            if not line:
                continue
            if out and out[-1][-1] not in _SENTENCE_END:
                out.append(" · ")
            elif out:
                out.append(" ")
            out.append(line)
    return "".join(out)


class Marker:
    """Finds the query's words in stored text and marks them, for result snippets.

    Matching is by prefix on word starts (a stem such as ``window`` or ``configur`` is a prefix
    of the words it came from) plus the words as typed, all in one regular expression: a few
    microseconds a result instead of re-analysing each text.
    """

    def __init__(self, terms: frozenset[str]):
        words = sorted({t for t in terms if len(t) >= 2}, key=len, reverse=True)
        self.regex = (
            re.compile(r"(?<![\w])(?:" + "|".join(re.escape(w) for w in words) + r")[\w'-]*", re.I)
            if words else None
        )

    def snippet(self, source: str, fallback: str) -> str:
        """The best window of ``source`` (most distinct words marked), HTML-escaped; else ``fallback``."""
        text = _SPACE.sub(" ", source).strip()
        if self.regex is not None and text:
            spans = [(m.start(), m.end(), m.group(0).lower()) for m in self.regex.finditer(text)]
            if spans:
                # slide a window of SNIPPET_CHARS from match to match, counting its distinct words
                best, best_count = 0, -1
                in_window: dict[str, int] = {}
                ahead = 0
                for i, (start, _end, word) in enumerate(spans):
                    while ahead < len(spans) and spans[ahead][0] < start + SNIPPET_CHARS:
                        w = spans[ahead][2]
                        in_window[w] = in_window.get(w, 0) + 1
                        ahead += 1
                    if len(in_window) > best_count:
                        best, best_count = i, len(in_window)
                    in_window[word] -= 1
                    if not in_window[word]:
                        del in_window[word]
                start = spans[best][0]
                # start at a word boundary a little before the first match
                lead = text.rfind(" ", 0, max(0, start - 40))
                lo = 0 if lead < 0 or start < 60 else lead + 1
                hi = min(len(text), lo + SNIPPET_CHARS)
                if hi < len(text):
                    cut = text.rfind(" ", lo, hi)
                    hi = cut if cut > lo else hi
                out: list[str] = ["… " if lo > 0 else ""]
                pos = lo
                for s0, e0, _w in spans:
                    if s0 < lo or e0 > hi:
                        continue
                    out.append(str(escape(text[pos:s0])))
                    out.append("<mark>" + str(escape(text[s0:e0])) + "</mark>")
                    pos = e0
                out.append(str(escape(text[pos:hi])))
                out.append(" …" if hi < len(text) else "")
                return "".join(out)
        text = _SPACE.sub(" ", fallback or text).strip()
        if len(text) > SNIPPET_CHARS:
            text = text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
        return str(escape(text))


#: A start or end tag in a snippet; the text between tags is escaped, so a tag is all a "<" can begin.
_SNIPPET_TAG = re.compile(r"<(/?)([A-Za-z][\w-]*)[^>]*>")


def plain_snippet(snippet: str) -> tuple[str, list[list[int]]]:
    """A snippet (escaped HTML with ``<mark>``) as plain text and its highlights.

    Highlights are ``[start, end]`` offsets into the text, in Unicode code points (Python string
    indices; a JavaScript client counting UTF-16 units must adjust past astral characters), so
    ``text[start:end]`` is a marked word.  Entities are decoded by the HTML5 rules
    (:func:`html.unescape`), any other tag is dropped with its text kept, a ``<mark>`` inside
    another starts no span of its own, and an unclosed one runs to the end.  A tokenizer rather than
    :class:`html.parser.HTMLParser`: a third of its time, for ten snippets a search.
    """
    parts: list[str] = []
    spans: list[list[int]] = []
    length, opened, pos = 0, None, 0
    for m in _SNIPPET_TAG.finditer(snippet or ""):
        text = html.unescape(snippet[pos:m.start()])
        parts.append(text)
        length += len(text)
        pos = m.end()
        if m.group(2).lower() != "mark":
            continue
        if not m.group(1):
            opened = length if opened is None else opened
        elif opened is not None:
            if length > opened:
                spans.append([opened, length])
            opened = None
    text = html.unescape((snippet or "")[pos:])
    parts.append(text)
    length += len(text)
    if opened is not None and length > opened:
        spans.append([opened, length])
    return "".join(parts), spans
