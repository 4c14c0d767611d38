"""Parse one self-help article (markdown with a ``<properties .../>`` block) into an :class:`Article`.

The real corpus is messy, so every step here is defensive: bytes are decoded with a fallback,
property names are matched case-insensitively (and close typos are mapped to the name they meant),
JSON payloads contribute their human-readable strings, and template placeholders such as
``<!--$vmname-->[vmname]<!--/$vmname-->`` become their placeholder text.  A file that cannot
yield an article raises :class:`ParseError` with a short reason; nothing else escapes.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import nh3
from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning
from markdown_it import MarkdownIt

import warnings

warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)

#: Files larger than this are refused: no real article comes near it, and it bounds the work per file.
MAX_BYTES = 2_000_000
#: Text fields are cut to this many characters, so one pathological file cannot swamp the index.
MAX_TEXT = 200_000

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

# JSON keys whose string values are meant for people; keys and machine values are left out.
JSON_TEXT_KEYS = re.compile(
    r"(label|text|title|description|hint|watermark|message|question|summary|content|"
    r"caption|placeholder|tooltip|balloon|name|displayname|recommendation|solution|impact|problem)",
    re.I,
)
JSON_MACHINE_KEYS = re.compile(r"^(\$schema|id|controltype|visibility|value|datatype|type|order|required)$", re.I)

# Attribute values may hold ">" inside quotes; an unclosed block runs to the end of the file.
PROPERTIES_RE = re.compile(r"""<properties\b((?:"[^"]*"|'[^']*'|[^>"'])*)(/?>|\Z)""", re.I | re.S)
PLACEHOLDER_RE = re.compile(r"<!--\s*\$([\w.-]+)\s*-->(.*?)<!--\s*/\s*\$\1\s*-->", re.S)
ISSUE_RE = re.compile(r"<!--\s*issueDescription\s*-->(.*?)(?:<!--\s*/\s*issueDescription\s*-->|\Z)", re.I | re.S)
JSON_BLOCK_RE = re.compile(r"^-{3,}[ \t]*\n(\s*[\[{].*?)\n-{3,}[ \t]*$", re.S | re.M)
INSIGHT_RE = re.compile(r"<insight\b.*?(?:</insight\s*>|\Z)", re.I | re.S)
COMMENT_RE = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
WS_RE = re.compile(r"[ \t\r\f\v\u00a0]+")
UNSAFE_ID_RE = re.compile(r"[^A-Za-z0-9._-]")

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
    #: The article's markdown with properties, issue description, placeholders and JSON payloads
    #: resolved; rendered (and sanitised) by :func:`render_markdown` when a page shows it.
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
        return asdict(self)


def article_id_for(path: str) -> str:
    """A unique, URL-safe and stable id for the article at ``path`` (relative, forward slashes).

    ``articles/a.b/c.md`` becomes ``a.b~c`` (the ``articles/`` prefix every corpus path carries is
    dropped); characters outside ``[A-Za-z0-9._-]`` become ``-`` and a short hash of the path then
    keeps the id unique.  The index refuses a second file with an id already taken.
    """
    stem = path[:-3] if path.lower().endswith(".md") else path
    if stem.startswith("articles/"):
        stem = stem[len("articles/"):]
    parts = stem.split("/")
    safe = [UNSAFE_ID_RE.sub("-", p) for p in parts]
    ident = "~".join(safe)
    if safe != parts:
        ident += "-" + hashlib.sha1(path.encode("utf-8")).hexdigest()[:8]
    return ident


def decode(data: bytes) -> tuple[str, list[str]]:
    """Decode file bytes: UTF-8 (BOM stripped), else Windows-1252, else Latin-1; CRLF becomes LF."""
    warns: list[str] = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        warns.append("not-utf8")
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    if "\x00" in text:
        warns.append("nul-bytes")
        text = text.replace("\x00", "")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, warns


@lru_cache(maxsize=256)
def _canonical_property(name: str) -> tuple[str, bool]:
    """Map a property name to its canonical lower-case form; the flag says a typo was corrected."""
    low = name.lower()
    if low in KNOWN_PROPERTIES or len(low) < 6:
        return low, False
    close = difflib.get_close_matches(low, KNOWN_PROPERTIES, n=1, cutoff=0.88)
    return (close[0], True) if close else (low, False)


def parse_properties(block: str) -> tuple[dict[str, str], list[str]]:
    """Read the attributes of a ``<properties .../>`` block with BeautifulSoup (values unescaped)."""
    warns: list[str] = []
    soup = BeautifulSoup(f"<properties {block}></properties>", "html.parser")
    tag = soup.find("properties")
    props: dict[str, str] = {}
    if tag is None:
        return props, ["properties-unreadable"]
    for name, value in tag.attrs.items():
        if isinstance(value, list):  # bs4 splits "class"-like attributes
            value = " ".join(value)
        canon, typo = _canonical_property(name)
        if typo:
            warns.append("property-typo")
        value = WS_RE.sub(" ", str(value)).strip()
        if canon not in props or not props[canon]:
            props[canon] = value
    return props, warns


def _split_list(value: str) -> list[str]:
    seen: dict[str, None] = {}
    for part in re.split(r"[,;]", value or ""):
        part = part.strip().lower()
        if part:
            seen.setdefault(part, None)
    return list(seen)


def json_strings(value, key: str = "") -> list[str]:
    """Human-readable strings of a JSON payload: labels, descriptions, hints; never keys or ids."""
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if JSON_MACHINE_KEYS.match(k):
                continue
            out.extend(json_strings(v, k))
    elif isinstance(value, list):
        for v in value:
            out.extend(json_strings(v, key))
    elif isinstance(value, str):
        v = value.strip()
        if v and JSON_TEXT_KEYS.search(key) and not v.startswith(("http://", "https://", "{", "$")):
            out.append(v)
    return out


def _clean(text: str) -> str:
    text = WS_RE.sub(" ", text)
    text = re.sub(r" *\n[ \n]*", "\n", text)
    return text.strip()[:MAX_TEXT]


def _html_text(html: str) -> str:
    """Readable text of an HTML fragment (scripts and styles dropped)."""
    if "<" not in html and "&" not in html:
        return html
    soup = BeautifulSoup(html, "html.parser")
    for bad in soup(["script", "style", "template"]):
        bad.decompose()
    return soup.get_text(" ")


def _inline_text(token) -> str:
    """Plain text of a markdown-it inline token."""
    parts: list[str] = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "html_inline":
            if child.content.lower().startswith("<br"):
                parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts)


def _inline_links(token, base_html: bool = False) -> list[Document]:
    docs: list[Document] = []
    current: list | None = None
    href = ""
    for child in token.children or ():
        if child.type == "link_open":
            href = child.attrGet("href") or ""
            current = []
        elif child.type == "link_close" and current is not None:
            docs.append(Document(title=" ".join("".join(current).split()), url=href))
            current = None
        elif current is not None and child.type in ("text", "code_inline"):
            current.append(child.content)
        elif child.type == "html_inline" and child.content.lower().startswith("<a "):
            a = BeautifulSoup(child.content + "</a>", "html.parser").find("a")
            if a is not None and a.get("href"):
                href = str(a.get("href"))
                current = []
    return docs


def _html_links(html: str) -> list[Document]:
    soup = BeautifulSoup(html, "html.parser")
    return [
        Document(title=" ".join(a.get_text(" ").split()) or str(a["href"]), url=str(a["href"]))
        for a in soup.find_all("a", href=True)
    ]


def render_markdown(markdown: str) -> str:
    """Article markdown as sanitised HTML: no scripts, event handlers or ``javascript:`` URLs."""
    return nh3.clean(_md.render(markdown), link_rel="noopener noreferrer nofollow")


def _structure(markdown: str) -> tuple[str, list[str], list[Document], list[str]]:
    """Walk markdown-it tokens: first H1, steps and documents sections, and the remaining text."""
    tokens = _md.parse(markdown)
    title = ""
    steps: list[str] = []
    documents: list[Document] = []
    rest: list[str] = []
    section = ""  # "steps" | "docs" | ""
    depth = 0  # list nesting depth
    item_parts: list[str] | None = None
    in_heading: str | None = None
    for tok in tokens:
        t = tok.type
        if t == "heading_open":
            in_heading = tok.tag
            continue
        if t == "heading_close":
            in_heading = None
            continue
        if in_heading and t == "inline":
            text = " ".join(_inline_text(tok).split()).strip("*_ :")
            if in_heading == "h1" and not title:
                title = text
                continue
            if STEP_HEADINGS.search(text) and not DOC_HEADINGS.search(text):
                section = "steps"
            elif DOC_HEADINGS.search(text):
                section = "docs"
            else:
                section = ""
            rest.append(text)
            continue
        if t in ("bullet_list_open", "ordered_list_open"):
            depth += 1
            continue
        if t in ("bullet_list_close", "ordered_list_close"):
            depth -= 1
            continue
        if t == "list_item_open" and depth == 1:
            item_parts = []
            continue
        if t == "list_item_close" and depth == 1 and item_parts is not None:
            text = " ".join(" ".join(item_parts).split())
            if section == "steps" and text:
                steps.append(text)
            elif text and section != "docs":
                rest.append(text)
            item_parts = None
            continue
        if t == "inline":
            if section == "docs":
                documents.extend(_inline_links(tok))
            text = _inline_text(tok)
            if item_parts is not None:
                item_parts.append(text)
            elif section != "docs":
                rest.append(text)
            continue
        if t in ("html_block", "code_block", "fence"):
            text = _html_text(tok.content) if t == "html_block" else tok.content
            if section == "docs" and t == "html_block":
                documents.extend(_html_links(tok.content))
            if item_parts is not None:
                item_parts.append(text)
            elif section != "docs":
                rest.append(text)
    return title, steps, documents, rest


def parse_text(text: str, path: str, warnings_: list[str] | None = None) -> Article:
    """Parse the decoded text of the article at ``path`` (relative to the articles root)."""
    warns = list(warnings_ or [])
    props: dict[str, str] = {}
    m = PROPERTIES_RE.search(text)
    if m:
        if not m.group(2):
            warns.append("properties-unclosed")
        props, pw = parse_properties(m.group(1).rstrip().rstrip("/"))
        warns += pw
        text = text[: m.start()] + text[m.end():]
    else:
        warns.append("no-properties")

    # Placeholders become their visible text; insight widgets are machine configuration.
    text = PLACEHOLDER_RE.sub(lambda mm: mm.group(2), text)
    text = INSIGHT_RE.sub("", text)

    issue = ""
    im = ISSUE_RE.search(text)
    if im:
        issue = _clean(" ".join(_structure(COMMENT_RE.sub("", im.group(1)))[3]))
        text = text[: im.start()] + text[im.end():]

    json_texts: list[str] = []

    def _json(mm: re.Match) -> str:
        try:
            payload = json.loads(mm.group(1))
        except (ValueError, RecursionError):
            return mm.group(0)
        json_texts.extend(json_strings(payload))
        return "\n"

    text, njson = JSON_BLOCK_RE.subn(_json, text)
    if json_texts:
        warns.append("json-payload")

    text = COMMENT_RE.sub("", text)
    try:
        h1, steps, documents, rest = _structure(text)
    except RecursionError:
        raise ParseError("too-deeply-nested") from None

    title = h1 or props.get("pagetitle", "") or path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if not h1 and not props.get("pagetitle"):
        warns.append("title-from-filename")
    body = _clean("\n".join([*rest, *json_texts]))
    description = props.get("description", "")
    if not (body or steps or description or issue or props.get("infobubbletext")):
        raise ParseError("empty", "no readable text")

    tags = _split_list(props.get("resourcetags", ""))
    return Article(
        id=article_id_for(path),
        path=path,
        title=_clean(title)[:500],
        description=_clean(description),
        info=_clean(props.get("infobubbletext", "")),
        issue=issue,
        steps=[s[:5000] for s in steps[:200]],
        documents=[d for d in documents[:200] if d.url][:200],
        body=body,
        markdown=text.strip()[: MAX_TEXT * 2],
        properties=props,
        article_id=props.get("articleid", ""),
        service=props.get("service", "").strip().lower(),
        resource=props.get("resource", "").strip(),
        tags=tags,
        clouds=_split_list(props.get("cloudenvironments", "")),
        type=props.get("selfhelptype", "").strip(),
        scenario=props.get("diagnosticscenario", "").strip(),
        warnings=sorted(set(warns)),
    )


def parse_bytes(data: bytes, path: str) -> Article:
    """Parse raw file bytes; raises :class:`ParseError` for files that cannot be articles."""
    if len(data) > MAX_BYTES:
        raise ParseError("too-large", f"{len(data)} bytes > {MAX_BYTES}")
    if not data.strip():
        raise ParseError("empty", "file is empty")
    if data.count(b"\x00") > len(data) // 10:
        raise ParseError("binary", "looks like a binary file")
    text, warns = decode(data)
    article = parse_text(text, path, warns)
    article.hash = hashlib.sha1(data).hexdigest()
    return article
