"""Parse one self-help article (markdown with a ``<properties .../>`` block) into an :class:`Article`.

The parse stage, from file bytes to an :class:`Article`, in the order it runs:

1. decoding (here): UTF-8 with a Windows-1252 fallback for stray bytes, UTF-16 by its BOM;
2. the properties block (:mod:`kb.properties`: a pre-pass isolates it, BeautifulSoup reads it);
3. machine content cut out of the text (:mod:`kb.payloads`): placeholders, scripts and widgets,
   issue descriptions, JSON payloads (their human strings are kept), comments;
4. the markdown's structure (:mod:`kb.markdown`: markdown-it's token stream, raw HTML read by
   BeautifulSoup in :mod:`kb.htmltext`): title, steps, documents, body text.

Article pages render the markdown this stage keeps with :func:`render_markdown` (:mod:`kb.render`).

A file that cannot yield an article raises :class:`ParseError` with a short reason; nothing else
escapes.  The work per file is bounded: :data:`MAX_BYTES` read, :data:`MAX_MARKDOWN` characters
structured, at most :data:`MAX_ITEMS` steps and documents; tests/test_hostile_parse.py times the
worst cases found.  The public names of the stage are importable from here.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from dataclasses import dataclass, field

from .markdown import BROKEN_LINK_RE, MAX_ITEMS, inline_text, one_line, read_structure
from .payloads import (
    MAX_JSON_BLOCKS,
    drop_comments,
    drop_elements,
    drop_placeholder_marks,
    json_strings,
    readable_payload,
    split_issue,
    split_json,
)
from .properties import KNOWN_PROPERTIES, MAX_PROPERTIES, parse_properties, split_list, split_properties
from .personalise import bracket_placeholders, placeholder_list
from .render import MAX_RENDER, render_markdown
from .titles import GUID_RE, clean_title, is_meaningless, strip_marks

__all__ = [
    "MAX_BYTES", "MAX_TEXT", "MAX_ITEMS", "MAX_ID", "MAX_PROPERTIES", "MAX_JSON_BLOCKS", "MAX_MARKDOWN",
    "MAX_RENDER", "KNOWN_PROPERTIES", "Article", "Document", "ParseError", "article_id_for", "decode",
    "inline_text", "json_strings", "parse_bytes", "parse_properties", "parse_text", "render_markdown",
]

#: Files larger than this are refused: no real article comes near it (the largest is ~85 KB),
#: and it bounds the work per file.
MAX_BYTES = 2_000_000
#: Text fields are cut to this many characters, so one pathological file cannot swamp the index.
MAX_TEXT = 200_000
#: Longest article id; longer paths get a cut id plus a hash (see :func:`article_id_for`).
MAX_ID = 200
#: Markdown beyond this many characters (after JSON payloads are cut out) is dropped before its
#: structure is read: the longest real article has ~18,000, and markdown-it spends up to ~10 us
#: per character on pathological input ("[" * 50_000), so this bounds a file to well under 1 s.
MAX_MARKDOWN = 50_000

UNSAFE_ID_RE = re.compile(r"[^A-Za-z0-9._-]")


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
    #: the article's first H1 as written (its text), before :func:`kb.titles.clean_title`
    heading: str = ""
    info: str = ""
    issue: str = ""
    steps: list[str] = field(default_factory=list)
    #: the steps as authored, one dict per entry of ``steps`` (see :func:`kb.markdown.step_detail`):
    #: text, markdown, links, nested items, and the line of ``markdown`` each starts at
    steps_detail: list[dict] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    #: a questionnaire's questions and a support-topic page's topics, read from its JSON payload
    #: (see :func:`kb.payloads.readable_payload`)
    questions: list[dict] = field(default_factory=list)
    topics: list[dict] = field(default_factory=list)
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
    #: the reader's own values the article names: name, label (as it reads: "[vmname]"), and
    #: the fields it occurs in (see :mod:`kb.personalise`)
    placeholders: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The same as ``dataclasses.asdict(self)``, written out: asdict's generic deep copy took
        more time than parsing when the index stored every article."""
        return {
            "id": self.id,
            "path": self.path,
            "title": self.title,
            "description": self.description,
            "heading": self.heading,
            "info": self.info,
            "issue": self.issue,
            "steps": list(self.steps),
            "steps_detail": list(self.steps_detail),
            "documents": [{"title": d.title, "url": d.url} for d in self.documents],
            "questions": list(self.questions),
            "topics": list(self.topics),
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
            "placeholders": [dict(p) for p in self.placeholders],
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


# --- the article ------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Whitespace collapsed within lines, blank lines dropped, length capped."""
    if "\n" not in text:
        return " ".join(text.split())[:MAX_TEXT]
    return "\n".join(filter(None, (" ".join(line.split()) for line in text.split("\n"))))[:MAX_TEXT]


def parse_text(text: str, path: str, warnings_: list[str] | None = None) -> Article:
    """Parse the decoded text of the article at ``path`` (relative to the articles root)."""
    warns = list(warnings_ or [])
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.startswith("\ufeff"):
        text = text[1:]
    block, text, problem = split_properties(text)
    if problem:
        warns.append(problem)
    props, pw = parse_properties(block) if block else ({}, [])
    warns += pw

    # Placeholders become their visible text; script, style and insight widgets are not prose.
    # placeholders stay as their labels in brackets ("[vmname]"), listed in ``placeholders``
    text, placeholder_pairs = bracket_placeholders(text)
    text = drop_elements(drop_placeholder_marks(text))
    issue_texts, text = split_issue(text)
    payloads: list = []
    text, json_texts, jw = split_json(text, payloads)
    questions: list[dict] = []
    topics: list[dict] = []
    for value in payloads:
        readable = readable_payload(value)
        questions += readable["questions"]
        topics += readable["topics"]
    warns += jw
    text = drop_comments(text)
    if len(text) > MAX_MARKDOWN:
        cut = text.rfind("\n", 0, MAX_MARKDOWN)
        text = text[: cut if cut > 0 else MAX_MARKDOWN]
        warns.append("truncated")

    # the markdown kept is the markdown read: step lines (steps_detail) point into it
    if "]\n" in text:
        text = BROKEN_LINK_RE.sub("](", text)
    text = text.strip()
    parts = read_structure(text)
    issue_rest: list[str] = []
    budget = MAX_MARKDOWN
    for chunk in issue_texts:
        chunk = chunk[:budget]
        budget -= len(chunk)
        ip = read_structure(drop_comments(chunk))
        issue_rest += [x for x in (ip.title, *ip.rest) if x]
        parts.steps += ip.steps
        # lines of an issue section are not lines of the markdown kept
        parts.step_details += [{**d, "line": None} for d in ip.step_details]
        parts.documents += ip.documents
    steps = parts.steps
    details = parts.step_details
    rest = parts.rest
    if not parts.has_steps_section and not steps and parts.numbered:
        # "Numbered lists are steps" when the article has no steps heading at all.
        numbered = set(parts.numbered)
        steps = [one_line(rest[i]) for i in parts.numbered]
        details = parts.numbered_details
        rest = [x for i, x in enumerate(rest) if i not in numbered]

    h1 = parts.title
    title, real = clean_title(h1, props.get("pagetitle", ""), props.get("description", ""))
    if not title:
        title = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        warns.append("title-from-filename")
        real = not GUID_RE.search(title)
    if not real:
        # "Support Topic Descriptions for <GUID>", a GUID file name: name it by what it says first
        said = next((one_line(inline_text(t)) for t in (*json_texts, *issue_texts, *rest) if t.strip()
                     and not is_meaningless(strip_marks(one_line(inline_text(t))))), "")
        said = said if len(said) <= 100 else said[:100].rsplit(" ", 1)[0] + "…"
        title = (title if not GUID_RE.search(title) else "") + (": " if said and not GUID_RE.search(title) else "") + said if said else title
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
    article = Article(
        id=article_id_for(path),
        path=path,
        title=_clean(title)[:500],
        heading=_clean(h1)[:500],
        description=_clean(description),
        info=_clean(props.get("infobubbletext", "")),
        issue=issue,
        steps=[s[:5000] for s in steps[:MAX_ITEMS]],
        steps_detail=details[:MAX_ITEMS],
        documents=documents[:MAX_ITEMS],
        questions=questions[:MAX_ITEMS],
        topics=topics[:MAX_ITEMS],
        body=body,
        markdown=text,
        properties=props,
        article_id=props.get("articleid", ""),
        service=props.get("service", "").strip().lower(),
        resource=props.get("resource", "").strip(),
        tags=split_list(props.get("resourcetags", "")),
        clouds=split_list(props.get("cloudenvironments", "")),
        type=props.get("selfhelptype", "").strip(),
        scenario=props.get("diagnosticscenario", "").strip(),
        warnings=sorted(set(warns)),
    )
    if placeholder_pairs:
        fields = {"title": article.title, "issue": article.issue, "steps": "\n".join(article.steps),
                  "body": article.body}
        article.placeholders = placeholder_list(placeholder_pairs, fields)
    return article

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
