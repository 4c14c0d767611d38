"""The structure of an article's markdown, read from markdown-it's token stream.

:func:`read_structure` parses the markdown once with markdown-it (CommonMark, raw HTML, tables,
strikethrough) and walks the tokens: the first H1 is the title, list items under a steps heading
are steps, links under a documents heading are documents, everything else is body text.  Nothing
is rendered for indexing.  Raw HTML goes to :mod:`kb.htmltext` (BeautifulSoup).

Speed: markdown-it's inline parser is the expensive half of a parse, and most paragraphs of the
corpus are plain words.  So the core ``inline`` rule is off, and each inline token is parsed
(``md.inline.parse``, with the references the block parse found) only when its source holds a
character that can start inline markup; plain text is taken as it is.  The corpus also uses two
conventions CommonMark does not know, kept from the articles' own tooling: ``#Heading`` without
the space, and ``:::Section Name:::`` lines; a bold paragraph of its own ("**Recommended Steps**")
works as a heading too, and a link broken after its ``]`` (``[text]`` newline ``(url)``) is
joined before parsing.

Bounds: the caller cuts markdown at :data:`kb.parse.MAX_MARKDOWN` characters (markdown-it takes
about 10 us per character of pathological input such as ``"[" * 50_000``), markdown-it caps
nesting at 20 levels, and at most :data:`MAX_ITEMS` steps and documents are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import SimpleNamespace

from markdown_it import MarkdownIt, helpers
from markdown_it.common.utils import unescapeAll
from markdown_it.helpers import parseLinkDestination
from markdown_it.helpers.parse_link_destination import _Result as _DestinationResult

from .htmltext import href_of, read_html, tag_kind

#: At most this many steps and documents are kept per article.
MAX_ITEMS = 200

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
#: What can start inline markup: emphasis, a code span, an escape (or a backslash line break), an
#: entity, a tag or autolink, strikethrough, "_" not inside a word (snake_case is not emphasis),
#: and the "](" or "][" of a link.  A bare "[vmname]" is text unless the article defines references.
INLINE_MARKUP_RE = re.compile(
    r"[*`]|\\[!-/:-@\[-`{-~\n]|&(?:#|[A-Za-z][A-Za-z0-9]*;)|<[A-Za-z/!?]|~~|\]\(|\]\["
    r"|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])"
)
LOOSE_ATX_RE = re.compile(r"(#{1,6})(?=[^#\s])")  # "#Heading": not CommonMark, but meant as one
SECTION_MARK_RE = re.compile(r":::(.*):::[ \t]*$")
BOLD_LINE_RE = re.compile(r"(\*\*|__)([^*_\n]{1,150})\1[ \t]*(?::[ \t]*)?")
CORPUS_HEADING_RE = re.compile(r"(?:^|\n)[ \t]*(?:#|:::)")
# "[text]" at a line's end and "(url)" on the next: CommonMark reads no link, the authors meant one
# (about 200 files of the corpus).
BROKEN_LINK_RE = re.compile(r"\]\n[ \t]*\(")


def _same(url: str) -> str:
    return url


_DESTINATION_RUN_RE = re.compile(r"[^\x00-\x20\x7f\\()]*")


def _link_destination(string: str, pos: int, maximum: int):
    """markdown-it's parseLinkDestination, with a fast path for the common case.

    The library reads a destination one character at a time, a tenth of the parse time of the
    corpus.  A destination without ``<``, backslashes or parentheses ends at the first space,
    control character or ``)``; such a run is found with one regular expression and gives the
    same result.  Anything else is left to the library.
    """
    if pos < maximum and string[pos] != "<":
        end = _DESTINATION_RUN_RE.match(string, pos, maximum).end()
        if end > pos and (end == maximum or string[end] not in "\\("):
            result = _DestinationResult()
            result.ok, result.pos, result.str = True, end, unescapeAll(string[pos:end])
            return result
    return parseLinkDestination(string, pos, maximum)


# Rules that cannot match a text without a given string: a table needs "|", a reference
# definition "]:", emphasis "*" or "_" ...  A parser without them gives the same tokens, sooner:
# markdown-it tries every block rule at every line (and as a terminator of every paragraph line),
# and every inline rule wherever plain text stops.  One parser per set of rules, cached.
_BLOCK_NEEDS = (
    ("table", ("|",)), ("reference", ("]:",)), ("blockquote", (">",)), ("fence", ("```", "~~~")),
    ("html_block", ("<",)), ("heading", ("#",)),
)
#: inline rule -> the characters it can start at
_INLINE_NEEDS = (
    ("escape", ("\\",)), ("backticks", ("`",)), ("strikethrough", ("~",)), ("emphasis", ("*", "_")),
    ("link", ("[",)), ("image", ("!",)), ("autolink", ("<",)), ("html_inline", ("<",)), ("entity", ("&",)),
)
_inline_off: dict[tuple[bool, ...], tuple[str, ...]] = {}
_parsers: dict[tuple[tuple[str, ...], tuple[str, ...]], MarkdownIt] = {}


def _unused(rules, text: str) -> tuple[str, ...]:
    return tuple(rule for rule, needs in rules if not any(n in text for n in needs))


def _parser(block_off: tuple[str, ...] = (), inline_off: tuple[str, ...] = ()) -> MarkdownIt:
    """The indexing parser without the given block and inline rules."""
    md = _parsers.get((block_off, inline_off))
    if md is None:
        md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
        # "inline" off: inline tokens are parsed on demand (see the module docstring)
        md.disable(["inline", "text_join", "linkify", *block_off])
        if inline_off:
            md.inline.ruler.disable(list(inline_off))
        # Indexing keeps every destination as written (markdown-it has already resolved escapes
        # and entities): no percent-encoding, no refusal of unknown schemes; nothing here reaches
        # a browser.
        md.validateLink = lambda url: True
        md.normalizeLink = _same
        md.normalizeLinkText = _same
        md.helpers = SimpleNamespace(
            parseLinkLabel=helpers.parseLinkLabel,
            parseLinkDestination=_link_destination,
            parseLinkTitle=helpers.parseLinkTitle,
        )
        _parsers[(block_off, inline_off)] = md
    return md




def one_line(s: str) -> str:
    return " ".join(s.split())


@dataclass
class Doc:
    title: str
    url: str


def _walk_inline(tokens, out: list[str], outside: list[str] | None, docs: list[Doc]) -> None:
    """Text of inline tokens into ``out`` (and, outside links, ``outside``); links into ``docs``."""
    opened: list[tuple[int, str]] = []  # (position in out, href) of open links
    for t in tokens:
        typ = t.type
        if typ == "text" or typ == "text_special" or typ == "code_inline":
            out.append(t.content)
            if outside is not None and not opened:
                outside.append(t.content)
        elif typ == "softbreak" or typ == "hardbreak":
            out.append("\n")
            if outside is not None:
                outside.append("\n")
        elif typ == "link_open":
            opened.append((len(out), t.attrs.get("href", "")))
        elif typ == "link_close":
            if opened:
                start, href = opened.pop()
                docs.append(Doc(one_line("".join(out[start:])) or href, href))
        elif typ == "image":
            _walk_inline(t.children or (), out, None if opened else outside, [])
        elif typ == "html_inline":
            kind = tag_kind(t.content)
            if kind == "a":
                opened.append((len(out), href_of(t.content)))
            elif kind == "/a":
                if opened:
                    start, href = opened.pop()
                    if href:
                        docs.append(Doc(one_line("".join(out[start:])) or href, href))
            elif kind == "block":
                out.append(" ")
                if outside is not None:
                    outside.append(" ")
            elif not kind and not t.content.startswith(("<!--", "<?", "<!")):  # <your-vm-name>
                out.append(t.content)
                if outside is not None and not opened:
                    outside.append(t.content)


def inline(src: str, env: dict | None = None, links: bool = False) -> tuple[str, list[Doc], str]:
    """Plain text of a run of inline markdown, its links, and its text outside the links.

    Links become their text, markup and known HTML tags go, code spans keep their content as
    written (``SELECT * FROM <table>``).  ``env`` carries the reference definitions of the block
    parse.  The text outside links is only computed with ``links`` (else it is the whole text).
    """
    if INLINE_MARKUP_RE.search(src) is None and not (env and "[" in src and env.get("references")):
        return src, [], src
    # the key is cheaper than _unused() on each of the ~80,000 runs of the corpus
    key = ("\\" in src, "`" in src, "~" in src, "*" in src or "_" in src, "[" in src, "!" in src, "<" in src,
           "&" in src)
    off = _inline_off.get(key)
    if off is None:
        off = _inline_off[key] = _unused(_INLINE_NEEDS, src)
    md = _parser(inline_off=off)
    tokens = md.inline.parse(src, md, env if env is not None else {}, [])
    out: list[str] = []
    outside: list[str] | None = [] if links else None
    docs: list[Doc] = []
    _walk_inline(tokens, out, outside, docs)
    text = "".join(out)
    return text, [d for d in docs if d.url], ("".join(outside) if outside is not None else text)


def inline_text(s: str) -> str:
    """Plain text of a run of inline markdown: links become their text, markup and tags go."""
    return inline(s)[0]


def _html_block(src: str, env: dict, links: bool) -> tuple[str, list[Doc], str]:
    """Text, links and text outside links of a raw HTML block (markdown in its text is read too)."""
    text, anchors = read_html(src, links)
    text, docs, rest = inline(text, env, links)
    return text, [Doc(one_line(inline(t, env)[0]) or u, u) for t, u in anchors] + docs, rest


def _section_of(heading: str) -> str:
    heading = heading[:300]
    if STEP_HEADINGS.search(heading) and not DOC_HEADINGS.search(heading):
        return "steps"
    if DOC_HEADINGS.search(heading):
        return "docs"
    return ""


@dataclass
class Structure:
    title: str = ""
    steps: list[str] = field(default_factory=list)
    documents: list[Doc] = field(default_factory=list)
    rest: list[str] = field(default_factory=list)
    #: indexes into ``rest`` of top-level numbered items outside any steps or documents section;
    #: they become the steps of an article that has no steps section.
    numbered: list[int] = field(default_factory=list)
    has_steps_section: bool = False
    #: one per step, in order: see :func:`step_detail`
    step_details: list[dict] = field(default_factory=list)
    #: one per entry of ``numbered``
    numbered_details: list[dict] = field(default_factory=list)


@dataclass
class _Item:
    """A list item being read: its own texts and links, its sub-items, its source lines."""

    start: int
    end: int
    own_end: int = -1  # the line its first nested list starts at
    texts: list[str] = field(default_factory=list)
    docs: list[Doc] = field(default_factory=list)
    children: list[dict] = field(default_factory=list)


LIST_MARKER_RE = re.compile(r"[ \t]*(?:[*+-]|[0-9]{1,9}[.)])[ \t]?")


def _item_markdown(lines: list[str], start: int, end: int) -> str:
    """The markdown of a list item's own lines, its list marker and indentation removed."""
    own = lines[start:end]
    if not own:
        return ""
    first = LIST_MARKER_RE.sub("", own[0], count=1)
    rest = [x.strip() for x in own[1:]]
    return "\n".join([first.strip(), *rest]).strip()


def step_detail(item: _Item, lines: list[str], line: int | None = None) -> dict:
    """A step (or sub-item) as authored: ``text`` (its own plain text, sub-items apart),
    ``markdown`` (its own source, links and code kept), ``links`` (``title``, ``url``),
    ``items`` (its sub-items, the same shape) and ``line`` (where it starts in the markdown that
    was read, for a top-level step; else None)."""
    own_end = item.own_end if item.own_end >= 0 else item.end
    return {
        "text": one_line(" ".join(item.texts))[:5000],
        "markdown": _item_markdown(lines, item.start, own_end)[:5000],
        "links": [{"title": d.title[:500], "url": d.url[:2000]} for d in item.docs[:MAX_ITEMS]],
        "items": item.children[:MAX_ITEMS],
        "line": line,
    }


def read_structure(text: str) -> Structure:
    """First H1, steps and documents sections, and the remaining text of an article's markdown."""
    parts = Structure()
    env: dict = {}
    section = ""
    # the top-level list item being read: its texts, texts outside links, links; numbered?
    item_depth = 0
    item_texts: list[str] = []
    item_rest: list[str] = []
    item_docs: list[Doc] = []
    item_numbered = False
    ordered: list[bool] = []  # the open lists, innermost last: numbered?
    items: list[_Item] = []  # the open list items, innermost last
    lines: list[str] = []
    heading_level = 0
    row: list[str] | None = None  # cells of the table row being read

    def add_docs(docs: list[Doc]) -> None:
        if len(parts.documents) < MAX_ITEMS:
            parts.documents.extend(docs)

    def block(text: str, docs: list[Doc], rest: str) -> None:
        """One block outside lists: a paragraph, table row, HTML or code block."""
        if section == "docs":
            add_docs(docs)
            text = rest
        if text.strip():
            parts.rest.append(text)

    def piece(text: str, docs: list[Doc], rest: str) -> None:
        """A piece of text with its links: part of the list item being read, else a block."""
        if item_depth:
            item_texts.append(text)
            item_rest.append(rest)
            item_docs.extend(docs)
            if items:
                items[-1].texts.append(text)
                items[-1].docs.extend(docs)
        else:
            block(text, docs, rest)

    def heading(level: int, src: str, strict: bool = True) -> None:
        nonlocal section
        text = one_line(inline(src, env)[0]).strip("*_ :")
        if level == 1 and strict and not parts.title and text:
            parts.title = text
            return
        section = _section_of(text)
        if section == "steps":
            parts.has_steps_section = True
        if text:
            parts.rest.append(text)

    def paragraph(src: str) -> None:
        if src[:2] in ("**", "__") and len(src) < 200 and "\n" not in src:
            m = BOLD_LINE_RE.fullmatch(src.rstrip())
            pseudo = _section_of(m.group(2)) if m else ""
            if pseudo and (not section or (section, pseudo) == ("steps", "docs")):
                # "**Recommended Documents**" on a line of its own works as a heading, unless a
                # real heading already opened a section ("**Common Issues and Resolution Steps**"
                # under "## Recommended Documents" introduces documents, not steps)
                heading(6, m.group(2))
                return
        block(*inline(src, env, section == "docs"))

    def corpus_lines(src: str) -> None:
        """A paragraph that may hold "#Heading" or ":::Section Name:::" lines."""
        run: list[str] = []
        for line in src.split("\n"):
            s = line.strip()
            m = LOOSE_ATX_RE.match(s) if s[:1] == "#" else None
            mark = SECTION_MARK_RE.match(s) if s[:3] == ":::" else None
            if m is None and mark is None:
                run.append(line)
                continue
            if run:
                paragraph("\n".join(run))
                run = []
            if m is not None:
                heading(len(m.group(1)), s[m.end():].rstrip("# \t") or s[m.end():], strict=False)
            else:
                name = mark.group(1).strip()
                heading(2, name[8:] if name[:8].lower() == "section " else name)
        if run:
            paragraph("\n".join(run))

    def end_item(top: _Item | None) -> None:
        nonlocal item_texts, item_rest, item_docs
        texts, rest, docs = item_texts, item_rest, item_docs
        item_texts, item_rest, item_docs = [], [], []
        if section == "docs":
            add_docs(docs)
            remainder = "\n".join(rest)
            if remainder.strip():
                parts.rest.append(remainder)
        elif section == "steps":
            step = one_line(" ".join(texts))
            if step and len(parts.steps) < MAX_ITEMS:
                parts.steps.append(step)
                parts.step_details.append(step_detail(top, lines, top.start) if top else
                                          {"text": step, "markdown": step, "links": [], "items": [], "line": None})
        else:
            plain = "\n".join(texts)
            if plain.strip():
                if item_numbered and not section:
                    parts.numbered.append(len(parts.rest))
                    parts.numbered_details.append(step_detail(top, lines, top.start) if top else
                                                  {"text": one_line(plain), "markdown": plain, "links": [],
                                                   "items": [], "line": None})
                parts.rest.append(plain)

    if "]\n" in text:
        text = BROKEN_LINK_RE.sub("](", text)
    lines = text.split("\n")
    for tok in _parser(_unused(_BLOCK_NEEDS, text)).parse(text, env):
        typ = tok.type
        if typ == "inline":
            src = tok.content
            if row is not None:
                row.append(src)
            elif item_depth:  # a heading inside a list item is part of the item
                piece(*inline(src, env, section == "docs"))
            elif heading_level:
                heading(heading_level, src)
            elif CORPUS_HEADING_RE.search(src):
                corpus_lines(src)
            else:
                paragraph(src)
        elif typ == "heading_open":
            heading_level = int(tok.tag[1:])
        elif typ == "heading_close":
            heading_level = 0
        elif typ == "list_item_open":
            if not item_depth:
                item_numbered = bool(ordered and ordered[-1])
            item_depth += 1
            start, end = tok.map if tok.map else (0, 0)
            items.append(_Item(start, end))
        elif typ == "list_item_close":
            item_depth -= 1
            done = items.pop() if items else None
            if done is not None and items and len(items[-1].children) < MAX_ITEMS:
                items[-1].children.append(step_detail(done, lines))
            if not item_depth:
                end_item(done)
        elif typ == "bullet_list_open" or typ == "ordered_list_open":
            ordered.append(typ == "ordered_list_open")
            if items and items[-1].own_end < 0 and tok.map:
                items[-1].own_end = tok.map[0]
        elif typ == "bullet_list_close" or typ == "ordered_list_close":
            if ordered:
                ordered.pop()
        elif typ == "fence" or typ == "code_block":
            if item_depth:
                item_texts.append(tok.content)
                item_rest.append(tok.content)
                if items:
                    items[-1].texts.append(tok.content)
            elif tok.content.strip():
                parts.rest.append(tok.content)
        elif typ == "html_block":
            piece(*_html_block(tok.content, env, section == "docs"))
        elif typ == "tr_open":
            row = []
        elif typ == "tr_close" and row is not None:
            # a table row is a line of words (and, under a documents heading, of links)
            cells = [inline(c, env, section == "docs") for c in row]
            row = None
            texts = " ".join(c[0] for c in cells)
            rests = " ".join(c[2] for c in cells)
            piece(texts, [d for c in cells for d in c[1]], rests)
    return parts

