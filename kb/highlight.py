"""Result snippets: the query's words found in stored text and marked, HTML-escaped."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from markupsafe import escape

#: Characters of text a snippet shows.
SNIPPET_CHARS = 240

_SPACE = re.compile(r"\s+")


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


class _MarkedText(HTMLParser):
    """Collects a snippet's text and the character spans of its ``<mark>`` elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # &amp; &lt; &#39; ... arrive as the characters
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[list[int]] = []
        self._open: int | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "mark" and self._open is None:  # a nested <mark> stays inside the outer span
            self._open = self.length

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark":
            self._close()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        self.length += len(data)

    def _close(self) -> None:
        if self._open is not None and self.length > self._open:
            self.spans.append([self._open, self.length])
        self._open = None


def plain_snippet(snippet: str) -> tuple[str, list[list[int]]]:
    """A snippet (escaped HTML with ``<mark>``) as plain text and its highlights.

    Highlights are ``[start, end]`` offsets into the text, in Unicode code points (Python string
    indices; a JavaScript client counting UTF-16 units must adjust past astral characters), so
    ``text[start:end]`` is a marked word.  Any other markup is dropped, its text kept; an
    unclosed ``<mark>`` runs to the end.
    """
    parser = _MarkedText()
    parser.feed(snippet or "")
    parser.close()
    parser._close()
    return "".join(parser.parts), parser.spans
