"""Clean article titles at index time: the heading authors wrote is not always a title.

The corpus' headings include template leftovers (``<-- SaaS offer-->``, "This is the title of the
article. It is not displayed ..."), ``<Internal>`` markers, generated names ("Support Topic
Descriptions for <GUID>"), lower-case folder paths ("tools/powershell") and the word "Title".
:func:`clean_title` strips the markers and, for a heading that names nothing a reader would
recognise, falls back to the next candidate (``pageTitle``, then the description).  The raw
heading stays in the article as ``heading``.
"""

from __future__ import annotations

import re

#: Comment markers, complete or half-written (``<!--``, ``<--``, ``-->``).
COMMENT_MARK_RE = re.compile(r"<!--|<--|-->")
INTERNAL_RE = re.compile(r"(?:<|&lt;)\s*internal\s*(?:>|&gt;)", re.I)
GUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: A folder or file name rather than words: lower case, no spaces ("tools/powershell", "wiredata-setup").
PATH_RE = re.compile(r"[a-z0-9][a-z0-9._/\\-]*")
#: Words templates put where a title goes.
TEMPLATE_RE = re.compile(r"(?:title|this is the title\b.*|insert title.*|article title.*|todo.*|tbd)", re.I | re.S)
#: "Support Topic Descriptions for <GUID>": a name generated from an id.
GENERATED_RE = re.compile(r"(.*?)\s*(?:for|of|:|-)?\s*" + GUID_RE.pattern + r"\s*$", re.S)


def strip_marks(text: str) -> str:
    """``text`` without comment markers, ``<Internal>`` and surplus spaces."""
    text = COMMENT_MARK_RE.sub(" ", text)
    text = INTERNAL_RE.sub(" ", text)
    return " ".join(text.split()).strip(" -:|")


def is_meaningless(title: str) -> bool:
    """True for a title that names nothing a reader would recognise: empty, a GUID or a name
    generated from one, a lower-case path, "Title" or a template sentence."""
    if not title or GUID_RE.search(title) or PATH_RE.fullmatch(title) or TEMPLATE_RE.fullmatch(title):
        return True
    return False


def humanise(path_like: str) -> str:
    """A lower-case path as words: ``configuration/compression`` -> ``Configuration / compression``."""
    words = re.sub(r"\s*[/\\]\s*", " / ", re.sub(r"[-_.]+", " ", path_like)).strip()
    return words[:1].upper() + words[1:]


def clean_title(*candidates: str) -> tuple[str, bool]:
    """The title to index and show, and whether it is a real one.

    The first of ``candidates`` (heading, ``pageTitle``, description, ...) that means something
    once its markers are stripped is real.  Failing that: a generated name without its GUID
    ("Support Topic Descriptions", not real: the caller adds what the article says first), a path
    as words (real enough), else "" (the caller has more to try).
    """
    stripped = [strip_marks(c) for c in candidates if c]
    for c in stripped:
        if not is_meaningless(c):
            return c, True
    for c in stripped:
        m = GENERATED_RE.fullmatch(c)
        if m and m.group(1).strip() and not GUID_RE.search(m.group(1)):
            return m.group(1).strip(), False
    for c in stripped:
        if PATH_RE.fullmatch(c) and not GUID_RE.search(c):
            return humanise(c), True
    return "", False
