"""Parse one self-help article (markdown with a ``<properties .../>`` block) into an :class:`Article`.

The real corpus is messy, so every step here is defensive: bytes are decoded with a fallback,
property names are matched case-insensitively (and close typos are mapped to the name they meant),
JSON payloads contribute their human-readable strings, and template placeholders such as
``<!--$vmname-->[vmname]<!--/$vmname-->`` become their placeholder text.  A file that cannot
yield an article raises :class:`ParseError` with a short reason; nothing else escapes.

Speed and safety: indexing only needs the *structure* of an article (headings, list items,
paragraphs, links), so instead of a full CommonMark parse this module walks the lines once and
strips inline markup with a few regular expressions (about 0.2 ms per article, a quarter of
what markdown-it and BeautifulSoup took).  Every pattern is written so that it cannot backtrack
quadratically (character classes exclude the character that starts the next match), and the work
per file is bounded: :data:`MAX_BYTES` read, :data:`MAX_MARKDOWN` characters structured, at most
:data:`MAX_ITEMS` steps and documents.  tests/test_hostile_parse.py times the worst cases found.
Full CommonMark (markdown-it + nh3) is only used by :func:`render_markdown`, for article pages.
"""

from __future__ import annotations

import codecs
import difflib
import hashlib
import html
import json
import operator
import re
from dataclasses import dataclass, field
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

#: Files larger than this are refused: no real article comes near it (the largest is ~85 KB),
#: and it bounds the work per file.
MAX_BYTES = 2_000_000
#: Text fields are cut to this many characters, so one pathological file cannot swamp the index.
MAX_TEXT = 200_000
#: At most this many steps and documents are kept per article.
MAX_ITEMS = 200
#: Longest article id; longer paths get a cut id plus a hash (see :func:`article_id_for`).
MAX_ID = 200
#: At most this many properties are read (real articles have about 15).
MAX_PROPERTIES = 100
#: At most this many ``---`` delimited blocks are tried as JSON (real articles have one).
MAX_JSON_BLOCKS = 20
#: Markdown beyond this many characters (after JSON payloads are cut out) is dropped before its
#: structure is read; the longest real article has ~18,000.
MAX_MARKDOWN = 2 * MAX_TEXT
#: render_markdown() shows longer markdown as plain text (the longest real article has ~18,000
#: characters): markdown-it spends ~15 us per character on inputs such as "[" * 100_000, and
#: nh3 is quadratic in nesting depth ("<div>" * 12_000 takes ~0.3 s).
MAX_RENDER = 60_000

#: Property names the parser knows, lower-cased.  Unknown names within a small edit distance of
#: one of these (``infoBubbleTest``, ``supportToicIds``) are read as the known name.
KNOWN_PROPERTIES = (
    "pagetitle", "description", "infobubbletext", "service", "resource", "resourcetags",
    "articleid", "selfhelptype", "cloudenvironments", "diagnosticscenario", "supporttopicids",
    "productpesids", "ownershipid", "authors", "ms.author", "displayorder", "schemaversion",
    "articletags", "disableclouds", "authoralias", "clientids", "category", "symptomid",
)

STEP_HEADINGS = re.compile(
    r"\b(recommended steps?|steps|resolution|mitigation|fix it yourself|solution|recommended actions?|"
    r"how to fix|troubleshooting steps|what you can do|next steps to resolve)\b",
    re.I,
)
DOC_HEADINGS = re.compile(
    r"\b(recommended documents?|documents?|documentation|useful links|more resources|resources|"
    r"additional (?:information|resources)|learn more|references?|related articles?|next steps)\b",
    re.I,
)

# JSON keys whose string values are meant for people (matched at the end of the key, so
# ``displayLabel``, ``watermarkText``, ``infoBalloonText`` and ``longDescription`` qualify while
# ``textProperty``, ``bladeName`` and ``recommendationTypeId`` do not).
JSON_TEXT_KEYS = re.compile(
    r"(label|text|title|description|hint|message|question|summary|content|caption|placeholder|"
    r"tooltip|benefits|tip|implication|tags|info|linkname\d*|offeringname|displayname|category)$",
    re.I,
)
#: Keys that end like text keys but hold machine values.
JSON_MACHINE_KEYS = frozenset({"querytext", "textproperty", "texttemplate"})
GUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# --- patterns: each is linear-time on any input (see the module docstring) -------------------
PROPERTIES_START_RE = re.compile(r"<properties\b", re.I)
# Attribute values may hold ">" inside quotes; "<" outside quotes ends a block that was not closed.
PROPERTIES_BODY_RE = re.compile(r"""(?:"[^"]*"|'[^']*'|[^<>"'])*>""")
# An unclosed block ends at the first blank line, heading or tag.
PROPERTIES_END_RE = re.compile(r"\n[ \t]*(?:\n|#|<)")
PROPERTIES_CLOSE_LINE_RE = re.compile(r"\n[ \t]*/?>[ \t]*(?=\n|\Z)")
SINGLE_QUOTED_RE = re.compile(r"=[ \t\n]*'")
ATTR_RE = re.compile(r"""([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'<>]+)))?""")
PLACEHOLDER_MARK_RE = re.compile(r"<!--[ \t]*(?:/[ \t]*)?\$[\w.-]*[ \t]*-->")
ISSUE_OPEN_RE = re.compile(r"<!--[ \t]*issueDescription[ \t]*-->", re.I)
ISSUE_CLOSE_RE = re.compile(r"<!--[ \t]*/[ \t]*issueDescription[ \t]*-->", re.I)
ELEMENT_OPEN_RE = re.compile(r"<(script|style|template|insight)(?![\w-])[^<>]*>", re.I)
COMMENT_RE = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
DASHES_RE = re.compile(r"-{3,}[ \t]*$")
JSON_START_RE = re.compile(r"^-{3,}[ \t]*\n[ \t\n]*[\[{]", re.M)
# "key": "value" or key: "value", for payloads json rejects; (?<!...) starts keys only at word starts
JSON_PAIR_RE = re.compile(
    r'(?:"((?:[^"\\\n]|\\.)*)"|(?<![\w$])([A-Za-z_$][\w$]*))[ \t]*:[ \t]*"((?:[^"\\\n]|\\.)*)"'
)

ATX_RE = re.compile(r"(#{1,6})(?:[ \t]+|$)")
LOOSE_ATX_RE = re.compile(r"(#{1,6})(?=[^#\s])")  # "#Heading": not CommonMark, but meant as one
SECTION_MARK_RE = re.compile(r":::(.*):::[ \t]*$")
LIST_RE = re.compile(r"(?:[-*+]|(\d{1,9})[.)])(?:[ \t]+|$)")
HR_RE = re.compile(r"(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
SETEXT_RE = re.compile(r"(?:=+|-+)[ \t]*$")
FENCE_RE = re.compile(r"`{3,}|~{3,}")
TABLE_SEP_RE = re.compile(r"\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?$")  # on rstripped lines
QUOTE_RE = re.compile(r"(?:[ \t]*>)+[ \t]?")

TAG_RE = re.compile(r"<(/?)([A-Za-z][\w:-]*)(?![\w:-])([^<>]*)>")  # (?!...): no backtracking into the name
# [text](url "title"): the destination may hold one level of balanced parentheses; CommonMark
# allows whitespace inside the parentheses, and authors often break the line after "]".
_LINK_TAIL = (
    r"(?:[ \t]*\n[ \t]*)?\([ \t\n]*"  # "(" maybe on the next line
    r"([^()\s]*(?:\([^()\s]*\)[^()\s]*)*)"  # the destination
    r"""(?:[ \t\n]+(?:"[^"\n]*"|'[^'\n]*'))?[ \t\n]*\)"""  # an optional title
)
_LINK_TEXT = r"\[((?:[^\[\]]|\[[^\[\]]*\])*)\]"  # one level of nested brackets: [[GitHub]](url)
IMAGE_RE = re.compile("!" + _LINK_TEXT + _LINK_TAIL)
LINK_RE = re.compile(_LINK_TEXT + _LINK_TAIL)
ANY_LINK_RE = re.compile("!?" + _LINK_TEXT + _LINK_TAIL)
CODE_SPAN_RE = re.compile(r"(?<!`)(`+)([^`]+)\1(?!`)")
CODE_MARK_RE = re.compile("\ue000(\\d+)\ue001")
REF_LINK_RE = re.compile(r"\[([^\[\]]+)\]\[[^\[\]]*\]")
AUTOLINK_RE = re.compile(r"<((?:https?|ftp|mailto):[^<>\s]*)>", re.I)
A_TAG_RE = re.compile(r"<a\b([^<>]*)>|</a[ \t]*>", re.I)
HREF_RE = re.compile(r"""\bhref[ \t]*=[ \t]*(?:"([^"]*)"|'([^']*)'|([^\s"'<>]+))""", re.I)
# Emphasis is removed only where it is paired, so "*.contoso.com" and "_rid" keep their marks.
# The content classes exclude the delimiter, which keeps the patterns linear; nested emphasis
# ("*a **b** c*") is resolved by applying them twice.
STAR_RE = re.compile(r"(?<!\\)(\*{1,3})(?=[^\s*])((?:[^*\n]*?[^\s*\\])?)\1")
UNDERSCORE_RE = re.compile(
    r"(?<![\w\\])(_{1,3})(?=[^\s_])((?:(?:[^_\n]|(?<=[A-Za-z0-9])_(?=[A-Za-z0-9]))*?[^\s_\\])?)\1(?!\w)"
)
STRIKE_RE = re.compile(r"~~(?=[^\s~])((?:[^~\n]*?[^\s~])?)~~")
BOLD_LINE_RE = re.compile(r"(\*\*|__)([^*_\n]{1,150})\1[ \t]*(?::[ \t]*)?")
ESCAPE_RE = re.compile(r"\\([!-/:-@\[-`{-~])")
UNSAFE_ID_RE = re.compile(r"[^A-Za-z0-9._-]")

#: HTML (and corpus-specific) tags whose markup is dropped from text; other "<words>" such as
#: ``<your-vm-name>`` are placeholders in prose and are kept as written.
BLOCK_TAGS = frozenset(
    "address article aside blockquote br center dd details div dl dt figcaption figure footer form h1 h2 "
    "h3 h4 h5 h6 header hr iframe img li nav ol p pre section summary table tbody td tfoot th thead tr "
    "ul video source audio picture caption".split()
)
INLINE_TAGS = frozenset(
    "a abbr b big cite code del dfn em font i input ins kbd label mark nobr q s samp small span strike "
    "strong sub sup tt u var wbr button select option textarea col colgroup title src symptomid insight "
    "executiontext noresulttext timeouttext maxinsightcount additionalinputsreq".split()
)

_md = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")


class ParseError(Exception):
    """A file that cannot become an article; ``reason`` is a short, countable label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class Document:
    title: str
    url: str


@dataclass
class Article:
    """Everything kb knows about one article, extracted once at index time."""

    id: str
    path: str
    title: str
    description: str = ""
    info: str = ""
    issue: str = ""
    steps: list[str] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    body: str = ""
    #: The article's markdown without its properties, issue description (see ``issue``), JSON
    #: payloads, comments, scripts and insight widgets, placeholders resolved, at most
    #: MAX_MARKDOWN characters; rendered and sanitised by :func:`render_markdown` for a page.
    markdown: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    article_id: str = ""
    service: str = ""
    resource: str = ""
    tags: list[str] = field(default_factory=list)
    clouds: list[str] = field(default_factory=list)
    type: str = ""
    scenario: str = ""
    hash: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The same as ``dataclasses.asdict(self)``, written out: asdict's generic deep copy took
        more time than parsing when the index stored every article."""
        return {
            "id": self.id,
            "path": self.path,
            "title": self.title,
            "description": self.description,
            "info": self.info,
            "issue": self.issue,
            "steps": list(self.steps),
            "documents": [{"title": d.title, "url": d.url} for d in self.documents],
            "body": self.body,
            "markdown": self.markdown,
            "properties": dict(self.properties),
            "article_id": self.article_id,
            "service": self.service,
            "resource": self.resource,
            "tags": list(self.tags),
            "clouds": list(self.clouds),
            "type": self.type,
            "scenario": self.scenario,
            "hash": self.hash,
            "warnings": list(self.warnings),
        }


def article_id_for(path: str) -> str:
    """A unique, URL-safe and stable id for the article at ``path`` (relative, forward slashes).

    ``articles/a.b/c.md`` becomes ``a.b~c`` (the ``articles/`` prefix every corpus path carries is
    dropped).  When that is not a clean id - characters outside ``[A-Za-z0-9._-]`` (they become
    ``-``), a first character that is not a letter or digit, or more than :data:`MAX_ID` characters
    - the id is cut and a short hash of the whole path keeps it unique.  The index refuses a second
    file with an id already taken.
    """
    # Only the exact suffix is dropped, so "a.md" and "a.MD" (two files on Linux) keep distinct ids.
    stem = path[:-3] if path.endswith(".md") else path
    if stem.startswith("articles/"):
        stem = stem[len("articles/"):]
    parts = stem.split("/")
    safe = [UNSAFE_ID_RE.sub("-", p) for p in parts]
    ident = "~".join(safe)
    if safe != parts or not ident[:1].isalnum() or not ident.isascii() or len(ident) > MAX_ID:
        digest = hashlib.sha1(path.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        ident = f"{ident.lstrip('.~_-')[: MAX_ID - 9] or 'x'}-{digest}"
    return ident


# --- decoding ---------------------------------------------------------------------------------


def _cp1252_fallback(exc: UnicodeError):
    """Decode the bytes UTF-8 rejects as Windows-1252 (Latin-1 for its five unused bytes)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    return "".join(bytes([b]).decode("cp1252", "replace") if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
                   else chr(b) for b in bad), exc.end


codecs.register_error("kb-cp1252", _cp1252_fallback)


def decode(data: bytes) -> tuple[str, list[str]]:
    """Decode file bytes: UTF-8 (BOM stripped); bytes that are not UTF-8 are read as Windows-1252.

    A file that mixes the two (a UTF-8 article with one pasted ``\\xa0``) keeps its UTF-8 text
    intact.  A UTF-16 file (by its BOM) is decoded as such.  CRLF and lone CR become LF; NUL
    characters are dropped.
    """
    warns: list[str] = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        warns.append("utf16")
        text = data.decode("utf-16", "replace")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            warns.append("not-utf8")
            bad = data.decode("utf-8", "replace").count("\ufffd")
            # The error handler runs in Python once per bad byte: fine for a few stray bytes in a
            # UTF-8 article, too slow for a file that is not UTF-8 at all.
            text = data.decode("utf-8", "kb-cp1252") if bad <= 256 else data.decode("cp1252", "replace")
    if "\x00" in text:
        warns.append("nul-bytes")
        text = text.replace("\x00", "")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.startswith("\ufeff"):  # a second BOM
        text = text[1:]
    return text, warns


# --- properties -------------------------------------------------------------------------------


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


def parse_properties(block: str) -> tuple[dict[str, str], list[str]]:
    """Read the attributes of a ``<properties .../>`` block (names lower-cased, values unescaped)."""
    warns: list[str] = []
    props: dict[str, str] = {}
    for n, (name, dq, sq, bare) in enumerate(ATTR_RE.findall(block)):
        if n == MAX_PROPERTIES:
            warns.append("properties-truncated")
            break
        value = dq or sq or bare
        canon = _KNOWN_LOWER.get(name)
        if canon is None:
            canon, typo = _canonical_property(name)
            if typo:
                warns.append("property-typo")
        if "&" in value:
            value = html.unescape(value)
        value = " ".join(value.split())
        if not props.get(canon):
            props[canon] = value
    return props, warns


def _split_properties(text: str) -> tuple[str, str, str]:
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


def _split_list(value: str) -> list[str]:
    """Comma- (or semicolon-) separated values, trimmed, lower-cased, empties and repeats dropped."""
    seen: dict[str, None] = {}
    for part in value.replace(";", ",").split(","):
        part = part.strip().lower()
        if part:
            seen.setdefault(part, None)
    return list(seen)


# --- removing machine content -----------------------------------------------------------------


def _drop_elements(text: str) -> str:
    """Remove ``<script>``, ``<style>``, ``<template>`` and ``<insight>`` elements with their content.

    An opening tag that is never closed is removed alone: a stray ``<script>`` in prose must not
    take the rest of the article with it.  Linear: each search starts where the previous one
    ended, and a closing tag found missing once is not looked for again.
    """
    out: list[str] = []
    pos = 0
    unclosed: set[str] = set()
    while True:
        m = ELEMENT_OPEN_RE.search(text, pos)
        if m is None:
            break
        out.append(text[pos:m.start()])
        name = m.group(1).lower()
        close = None if name in unclosed else re.compile(rf"</{name}[ \t]*>", re.I).search(text, m.end())
        if close is None:
            unclosed.add(name)
            pos = m.end()
        else:
            pos = close.end()
        out.append("\n")
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def _split_issue(text: str) -> tuple[list[str], str]:
    """Cut the ``<!--issueDescription-->`` sections out of ``text``: (their texts, the rest)."""
    issues: list[str] = []
    out: list[str] = []
    pos = 0
    while True:
        m = ISSUE_OPEN_RE.search(text, pos)
        if m is None:
            break
        out.append(text[pos:m.start()])
        close = ISSUE_CLOSE_RE.search(text, m.end())
        end = close.start() if close else len(text)
        issues.append(text[m.end():end])
        pos = close.end() if close else len(text)
    if not issues:
        return [], text
    out.append(text[pos:])
    return issues, "".join(out)


_TEXT_KEY_CACHE: dict[str, bool] = {}


def _json_key_is_text(key: str) -> bool:
    found = _TEXT_KEY_CACHE.get(key)
    if found is None:
        found = bool(JSON_TEXT_KEYS.search(key)) and key.lower() not in JSON_MACHINE_KEYS
        if len(_TEXT_KEY_CACHE) < 10_000:
            _TEXT_KEY_CACHE[key] = found
    return found


def _json_value_is_text(value: str) -> bool:
    return bool(value) and not value.startswith(("http://", "https://", "{", "$", "/")) and not (
        len(value) == 36 and GUID_RE.fullmatch(value)
    )


def _walk_json(value, is_text: bool, out: list[str]) -> None:
    if type(value) is dict:
        for k, v in value.items():
            t = _json_key_is_text(k)
            if type(v) is str:
                if t:
                    v = v.strip()
                    if _json_value_is_text(v):
                        out.append(v)
            elif type(v) in (dict, list):
                _walk_json(v, t, out)
    elif type(value) is list:
        for v in value:
            if type(v) is str:
                if is_text:
                    v = v.strip()
                    if _json_value_is_text(v):
                        out.append(v)
            elif type(v) in (dict, list):
                _walk_json(v, is_text, out)


def json_strings(value, key: str = "") -> list[str]:
    """Human-readable strings of a JSON payload: labels, descriptions, hints; never keys or ids.

    Raises RecursionError for payloads nested deeper than Python's recursion limit.
    """
    out: list[str] = []
    if type(value) is str:
        _walk_json([value], _json_key_is_text(key), out)
    else:
        _walk_json(value, _json_key_is_text(key), out)
    return out


def _lenient_json_strings(payload: str) -> list[str]:
    """Strings of a payload ``json`` rejects (unquoted keys, trailing commas), pair by pair."""
    out: list[str] = []
    size = 0
    for m in JSON_PAIR_RE.finditer(payload):
        if size > MAX_TEXT or len(out) > 10_000:  # the body is cut there anyway
            break
        key = m.group(1) if m.group(1) is not None else m.group(2)
        if not _json_key_is_text(key):
            continue
        value = m.group(3)
        if "\\" in value:
            try:
                value = json.loads(f'"{value}"', strict=False)
            except ValueError:
                pass
        value = value.strip()
        if _json_value_is_text(value):
            out.append(value)
            size += len(value)
    return out


def _split_json(text: str) -> tuple[str, list[str], list[str]]:
    """Cut JSON payloads (``---`` line, ``{`` or ``[`` ..., ``---`` line) out of ``text``.

    Returns the text without them, their human-readable strings, and warnings.  A payload that
    ``json`` rejects is read leniently; one that yields nothing at all stays in the text.
    """
    if "---" not in text or not JSON_START_RE.search(text):
        return text, [], []
    lines = text.split("\n")
    dashes = [i for i, line in enumerate(lines) if line.startswith("---") and DASHES_RE.match(line)]
    if not dashes:
        return text, [], []
    strings: list[str] = []
    warns: list[str] = []
    drop: list[tuple[int, int]] = []  # line ranges [start, end) to remove
    k = attempts = 0
    while k < len(dashes) and attempts < MAX_JSON_BLOCKS:
        i = dashes[k]
        first = i + 1
        while first < len(lines) and not lines[first].strip():
            first += 1
        if first >= len(lines) or not lines[first].lstrip().startswith(("{", "[")):
            k += 1
            continue
        j = dashes[k + 1] if k + 1 < len(dashes) else len(lines)
        payload = "\n".join(lines[i + 1:j])
        attempts += 1
        try:
            found = json_strings(json.loads(payload, strict=False))
        except (ValueError, RecursionError):
            found = _lenient_json_strings(payload)
            warns.append("json-invalid")
            if not found:
                k += 1
                continue
        strings.extend(found)
        drop.append((i, min(j + 1, len(lines))))
        k += 2
    if not drop:
        return text, [], warns
    kept: list[str] = []
    pos = 0
    for a, b in drop:
        kept.extend(lines[pos:a])
        kept.append("")
        pos = b
    kept.extend(lines[pos:])
    return "\n".join(kept), strings, ["json-payload", *warns]


# --- inline markup ----------------------------------------------------------------------------


def _tag(m: re.Match) -> str:
    name = m.group(2).lower()
    if name in BLOCK_TAGS:
        return " "
    if name in INLINE_TAGS:
        return ""
    return m.group(0)


_G1 = operator.methodcaller("group", 1)  # C-level replacement callables: cheaper than r"\1"
_G2 = operator.methodcaller("group", 2)


def inline_text(s: str) -> str:
    """Plain text of a run of inline markdown: links become their text, markup and tags go.

    Code spans keep their content as written (``SELECT * FROM <table>``).
    """
    code: list[str] = []
    if "`" in s:
        def _stash(m: re.Match) -> str:
            code.append(m.group(2))
            return f"\ue000{len(code) - 1}\ue001"

        s = CODE_SPAN_RE.sub(_stash, s)
        s = s.replace("`", "")
    if "<" in s:
        s = TAG_RE.sub(_tag, s)
        if "<" in s:
            s = AUTOLINK_RE.sub(_G1, s)
    if "[" in s:
        s = ANY_LINK_RE.sub(_G1, s)
        if "][" in s:
            s = REF_LINK_RE.sub(_G1, s)
    if "*" in s:
        s = STAR_RE.sub(_G2, s)
        if "*" in s:
            s = STAR_RE.sub(_G2, s)
    if "_" in s:
        s = UNDERSCORE_RE.sub(_G2, s)
        if "_" in s:
            s = UNDERSCORE_RE.sub(_G2, s)
    if "~~" in s:
        s = STRIKE_RE.sub(_G1, s)
    if "\\" in s:
        s = ESCAPE_RE.sub(_G1, s)
    if "&" in s:
        s = html.unescape(s)
    if code:
        s = CODE_MARK_RE.sub(lambda m: code[int(m.group(1))] if int(m.group(1)) < len(code) else "", s)
    return s


def _one_line(s: str) -> str:
    return " ".join(s.split())


def _url(url: str) -> str:
    """A link destination as written, with markdown escapes and HTML entities resolved."""
    url = url.strip()
    if "\\" in url:
        url = ESCAPE_RE.sub(r"\1", url)
    if "&" in url:
        url = html.unescape(url)
    return url


def _links(s: str) -> tuple[list[Document], str]:
    """Links of a markdown/HTML fragment as documents, and the fragment's text without them."""
    found: list[tuple[int, Document]] = []
    spans: list[tuple[int, int]] = []
    if "![" in s:
        s = IMAGE_RE.sub(_G1, s)
    if "[" in s:
        for m in LINK_RE.finditer(s):
            url = _url(m.group(2))
            found.append((m.start(), Document(_one_line(inline_text(m.group(1))) or url, url)))
            spans.append(m.span())
    if "<" in s:
        opened: re.Match | None = None
        for m in A_TAG_RE.finditer(s):
            if m.group(1) is not None:  # <a ...>
                opened = m if HREF_RE.search(m.group(1)) else None
            elif opened is not None:  # </a> closing an <a href>
                h = HREF_RE.search(opened.group(1))
                url = _url(next(g for g in h.groups() if g is not None))
                title = _one_line(inline_text(s[opened.end():m.start()]))
                found.append((opened.start(), Document(title or url, url)))
                spans.append((opened.start(), m.end()))
                opened = None
        for m in AUTOLINK_RE.finditer(s):
            found.append((m.start(), Document(m.group(1), m.group(1))))
            spans.append(m.span())
    if not spans:
        return [], inline_text(s)
    spans.sort()
    rest, pos = [], 0
    for a, b in spans:
        if a >= pos:
            rest.append(s[pos:a])
            pos = b
    rest.append(s[pos:])
    found.sort(key=lambda x: x[0])
    return [d for _, d in found if d.url], inline_text(" ".join(rest))


# --- block structure --------------------------------------------------------------------------


#: First characters of lines that may carry block structure; other lines are plain text.
_STRUCTURE_CHARS = frozenset("#`~:=-*_|+0123456789")


def _atx_text(s: str) -> str:
    """Heading text without its optional closing ``#`` run (``# C#`` keeps its ``#``)."""
    s = s.rstrip()
    bare = s.rstrip("#")
    if bare != s and (not bare or bare[-1] in " \t"):
        return bare.rstrip()
    return s


def _section_of(heading: str) -> str:
    heading = heading[:300]
    if STEP_HEADINGS.search(heading) and not DOC_HEADINGS.search(heading):
        return "steps"
    if DOC_HEADINGS.search(heading):
        return "docs"
    return ""


@dataclass
class _Parts:
    title: str = ""
    steps: list[str] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    rest: list[str] = field(default_factory=list)
    #: indexes into ``rest`` of top-level numbered items outside any steps or documents section;
    #: they become the steps of an article that has no steps section.
    numbered: list[int] = field(default_factory=list)
    has_steps_section: bool = False


def _structure(text: str) -> _Parts:
    """One pass over the lines: first H1, steps and documents sections, and the remaining text.

    Understands the subset of CommonMark the corpus uses: ATX and setext headings, nested bullet
    and numbered lists (by indentation), fenced code, block quotes, tables, thematic breaks and
    ``:::Section Name:::`` markers; HTML is treated as inline text.
    """
    parts = _Parts()
    section = ""
    block: list[str] = []
    kind = ""  # "para" | "item" | "code"
    item_numbered = False
    content_col = -1  # content column of the current top-level list item; -1 outside lists
    after_blank = False
    fence = ""

    def flush() -> None:
        nonlocal block, kind
        if not block:
            kind = ""
            return
        if kind == "para" and len(block) == 1 and block[0][:2] in ("**", "__") and len(block[0]) < 200:
            m = BOLD_LINE_RE.fullmatch(block[0].rstrip())
            pseudo = _section_of(m.group(2)) if m else ""
            if pseudo and (not section or (section, pseudo) == ("steps", "docs")):
                # "**Recommended Documents**" on a line of its own works as a heading, unless a
                # real heading already opened a section ("**Common Issues and Resolution Steps**"
                # under "## Recommended Documents" introduces documents, not steps)
                block = []
                heading(6, m.group(2))
                return
        raw = "\n".join(block)
        block = []
        if kind == "code":
            parts.rest.append(raw)
        elif section == "docs":
            docs, remainder = _links(raw)
            if len(parts.documents) < MAX_ITEMS:
                parts.documents.extend(docs)
            if remainder.strip():
                parts.rest.append(remainder)
        elif kind == "item" and section == "steps":
            step = _one_line(inline_text(raw))
            if step and len(parts.steps) < MAX_ITEMS:
                parts.steps.append(step)
        else:
            plain = inline_text(raw)
            if plain.strip():
                if kind == "item" and item_numbered and not section:
                    parts.numbered.append(len(parts.rest))
                parts.rest.append(plain)
        kind = ""

    def heading(level: int, raw: str, strict: bool = True) -> None:
        nonlocal section, content_col
        flush()
        content_col = -1
        text = _one_line(inline_text(raw)).strip("*_ :")
        if level == 1 and strict and not parts.title and text:
            parts.title = text
            return
        section = _section_of(text)
        if section == "steps":
            parts.has_steps_section = True
        if text:
            parts.rest.append(text)

    for line in text.split("\n"):
        s = line.lstrip(" \t")
        if fence:
            if s.startswith(fence) and not s.strip(fence[0] + " \t"):
                fence = ""
                if kind == "code":
                    flush()
            else:
                block.append(line)
            continue
        if not s:
            after_blank = True
            if kind != "item":
                flush()
            continue
        c = s[0]
        ind = len(line) - len(s)
        if ind and "\t" in line[:ind]:
            ind = len(line[:ind].expandtabs(4))
        if c == ">":
            s = QUOTE_RE.sub("", s, count=1).lstrip(" \t")
            ind = 0
            if not s:
                after_blank = True
                if kind != "item":
                    flush()
                continue
            c = s[0]
        in_list = content_col >= 0
        if c in _STRUCTURE_CHARS and (ind < 4 or (in_list and ind >= content_col)):
            # Lines with structure.  Inside a list item, its own content column counts as margin.
            if c == "#":
                m = ATX_RE.match(s)
                if m and ind < 4:
                    heading(len(m.group(1)), _atx_text(s[m.end():]))
                    after_blank = False
                    continue
                m = LOOSE_ATX_RE.match(s)
                if m and ind < 4:
                    heading(len(m.group(1)), _atx_text(s[m.end():]), strict=False)
                    after_blank = False
                    continue
            elif c in "`~":
                m = FENCE_RE.match(s)
                if m and (c == "~" or "`" not in s[m.end():]):
                    fence = m.group(0)
                    if not in_list or (after_blank and ind < content_col):
                        flush()
                        content_col = -1
                        kind = "code"
                    after_blank = False
                    continue
            elif c == ":" and s.startswith(":::"):
                m = SECTION_MARK_RE.match(s)
                if m:
                    name = m.group(1).strip()
                    heading(2, name[8:] if name[:8].lower() == "section " else name)
                    after_blank = False
                    continue
            if c in "=-" and kind == "para" and not after_blank and ind < 4 and SETEXT_RE.match(s):
                raw = "\n".join(block)
                block = []
                heading(1 if c == "=" else 2, raw)
                continue
            if c in "*-_" and HR_RE.match(s):
                flush()
                content_col = -1
                after_blank = False
                continue
            if c == "|" and "-" in s and TABLE_SEP_RE.match(s.rstrip()):
                continue
            if c in "-*+" or c.isdigit():
                m = LIST_RE.match(s)
                if m:
                    if not in_list or ind < content_col:
                        # a new top-level item
                        flush()
                        rest_of_line = s[m.end():]
                        marker = len(m.group(0).rstrip(" \t"))
                        # CommonMark: content starts after 1-4 spaces; 5 or more mean indented code
                        width = m.end() if rest_of_line and m.end() - marker <= 4 else marker + 1
                        content_col = ind + width
                        kind = "item"
                        item_numbered = m.group(1) is not None
                        block.append(rest_of_line)
                    else:
                        block.append(s[m.end():])
                    after_blank = False
                    continue
        if c == "|":  # a table row: cells become words
            s = s.replace("|", " ")
        # Plain text: a paragraph line, or the continuation of a list item.
        if in_list and (not after_blank or ind >= content_col):
            block.append(s)
        else:
            if in_list or kind not in ("para", ""):
                flush()
                content_col = -1
            elif after_blank:
                flush()
            kind = "para"
            block.append(s)
        after_blank = False
    flush()
    return parts


# --- the article ------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Whitespace collapsed within lines, blank lines dropped, length capped."""
    if "\n" not in text:
        return " ".join(text.split())[:MAX_TEXT]
    return "\n".join(filter(None, (" ".join(line.split()) for line in text.split("\n"))))[:MAX_TEXT]


def render_markdown(markdown: str) -> str:
    """Article markdown as sanitised HTML: no scripts, event handlers or ``javascript:`` URLs.

    Relative links are kept; ``data-blade:`` links (a portal-only scheme) lose their ``href``
    but keep their text, as nh3 allows only known-safe URL schemes.  Markdown longer than
    :data:`MAX_RENDER` is shown as escaped, preformatted text instead of being parsed.
    """
    if len(markdown) > MAX_RENDER:
        return "<pre>" + html.escape(markdown[:MAX_RENDER]) + "</pre>"
    return nh3.clean(_md.render(markdown), link_rel="noopener noreferrer nofollow")


def parse_text(text: str, path: str, warnings_: list[str] | None = None) -> Article:
    """Parse the decoded text of the article at ``path`` (relative to the articles root)."""
    warns = list(warnings_ or [])
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.startswith("\ufeff"):
        text = text[1:]
    block, text, problem = _split_properties(text)
    if problem:
        warns.append(problem)
    props, pw = parse_properties(block) if block else ({}, [])
    warns += pw

    # Placeholders become their visible text; script, style and insight widgets are not prose.
    if "<!--" in text:
        text = PLACEHOLDER_MARK_RE.sub("", text)
    if "<" in text:
        text = _drop_elements(text)
    issue_texts, text = _split_issue(text) if "<!--" in text else ([], text)
    text, json_texts, jw = _split_json(text)
    warns += jw
    if "<!--" in text:
        text = COMMENT_RE.sub("", text)
    if len(text) > MAX_MARKDOWN:
        cut = text.rfind("\n", 0, MAX_MARKDOWN)
        text = text[: cut if cut > 0 else MAX_MARKDOWN]
        warns.append("truncated")

    parts = _structure(text)
    issue_rest: list[str] = []
    budget = MAX_MARKDOWN
    for chunk in issue_texts:
        chunk = chunk[:budget]
        budget -= len(chunk)
        ip = _structure(COMMENT_RE.sub("", chunk))
        issue_rest += [x for x in (ip.title, *ip.rest) if x]
        parts.steps += ip.steps
        parts.documents += ip.documents
    steps = parts.steps
    rest = parts.rest
    if not parts.has_steps_section and not steps and parts.numbered:
        # "Numbered lists are steps" when the article has no steps heading at all.
        numbered = set(parts.numbered)
        steps = [_one_line(rest[i]) for i in parts.numbered]
        rest = [x for i, x in enumerate(rest) if i not in numbered]

    h1 = parts.title
    title = h1 or props.get("pagetitle", "") or path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if not h1 and not props.get("pagetitle"):
        warns.append("title-from-filename")
    body = _clean("\n".join([*rest, *(inline_text(t) for t in json_texts)]))
    issue = _clean("\n".join(issue_rest))
    description = props.get("description", "")
    if not (body or steps or description or issue or props.get("infobubbletext")):
        raise ParseError("empty", "no readable text")

    seen_docs: set[tuple[str, str]] = set()
    documents: list[Document] = []
    for d in parts.documents:
        if (d.title, d.url) not in seen_docs:
            seen_docs.add((d.title, d.url))
            documents.append(Document(d.title[:500], d.url[:2000]))
    return Article(
        id=article_id_for(path),
        path=path,
        title=_clean(title)[:500],
        description=_clean(description),
        info=_clean(props.get("infobubbletext", "")),
        issue=issue,
        steps=[s[:5000] for s in steps[:MAX_ITEMS]],
        documents=documents[:MAX_ITEMS],
        body=body,
        markdown=text.strip(),
        properties=props,
        article_id=props.get("articleid", ""),
        service=props.get("service", "").strip().lower(),
        resource=props.get("resource", "").strip(),
        tags=_split_list(props.get("resourcetags", "")),
        clouds=_split_list(props.get("cloudenvironments", "")),
        type=props.get("selfhelptype", "").strip(),
        scenario=props.get("diagnosticscenario", "").strip(),
        warnings=sorted(set(warns)),
    )


#: Bytes that occur in text files; a file whose first 64 KB are more than 5% other control
#: bytes (NUL, BEL, ...) is binary.
_TEXT_BYTES = bytes(range(32, 256)) + b"\t\n\r\f\v\x1b"


def _looks_binary(data: bytes) -> bool:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 text is mostly NUL bytes
        return False
    sample = data[:65536]
    return len(sample.translate(None, _TEXT_BYTES)) > len(sample) // 20


def parse_bytes(data: bytes, path: str) -> Article:
    """Parse raw file bytes; raises :class:`ParseError` for files that cannot be articles."""
    if len(data) > MAX_BYTES:
        raise ParseError("too-large", f"{len(data)} bytes > {MAX_BYTES}")
    if not data.strip():
        raise ParseError("empty", "file is empty")
    if _looks_binary(data):
        raise ParseError("binary", "looks like a binary file")
    text, warns = decode(data)
    article = parse_text(text, path, warns)
    article.hash = hashlib.sha1(data).hexdigest()
    return article
