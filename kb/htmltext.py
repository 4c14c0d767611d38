"""Raw HTML inside articles, read with BeautifulSoup: its readable text and its ``<a href>`` links.

markdown-it hands raw HTML over untouched (``html_block`` tokens, and ``html_inline`` tokens for
single tags inside a paragraph); this module reads it.  BeautifulSoup is only called for a
fragment that contains a tag, and only for the tags that matter to the index: block fragments
and ``<a href>`` tags.  Other single inline tags are classified by name without a parser.

Angle brackets in the corpus are often prose, not markup: ``<your-vm-name>`` is a placeholder
an engineer types over, ``<https://...>`` an autolink.  Only names HTML (and the corpus' widgets)
use are read as tags; any other ``<word`` is escaped first, so it stays in the text as written.
"""

from __future__ import annotations

import re
from functools import lru_cache

from bs4 import BeautifulSoup, NavigableString, Tag

#: Tags that separate text (a line break in the text they leave).
BLOCK_TAGS = frozenset(
    "address article aside blockquote br center dd details div dl dt figcaption figure footer form h1 h2 "
    "h3 h4 h5 h6 header hr iframe img li nav ol p pre section summary table tbody td tfoot th thead tr "
    "ul video source audio picture caption html body head main".split()
)
#: Tags whose markup simply goes (corpus widgets such as ``<symptomId>`` included).
INLINE_TAGS = frozenset(
    "a abbr b big cite code del dfn em font i input ins kbd label mark nobr q s samp small span strike "
    "strong sub sup tt u var wbr button select option textarea col colgroup title src symptomid insight "
    "executiontext noresulttext timeouttext maxinsightcount additionalinputsreq".split()
)
#: Elements whose content is not prose.
DROPPED_TAGS = ("script", "style", "template", "insight")
KNOWN_TAGS = BLOCK_TAGS | INLINE_TAGS | frozenset(DROPPED_TAGS)

TAG_NAME_RE = re.compile(r"<(/?)([A-Za-z][\w:.-]*)")  # [\w:.-]*: a name cannot be backtracked into
HAS_TAG_RE = re.compile(r"<[A-Za-z/]")


def _escape_unknown(m: re.Match) -> str:
    return m.group(0) if m.group(2).lower() in KNOWN_TAGS else "&lt;" + m.group(0)[1:]


def tag_kind(tag: str) -> str:
    """What a single inline tag (``<b>``, ``</a>``, ``<vm-name>``) means for the text.

    ``"a"`` (an anchor opens; read its href with :func:`href_of`), ``"/a"``, ``"block"`` (a
    break), ``"inline"`` (markup that goes) or ``""`` (not a tag: keep it as written).
    """
    m = TAG_NAME_RE.match(tag)
    if m is None:
        return ""
    name = m.group(2).lower()
    if name == "a":
        return "/a" if m.group(1) else "a"
    if name in BLOCK_TAGS:
        return "block"
    if name in INLINE_TAGS or name in DROPPED_TAGS:
        return "inline"
    return ""


@lru_cache(maxsize=4096)
def href_of(tag: str) -> str:
    """The ``href`` of one ``<a ...>`` tag, entities resolved; "" when it has none."""
    if "href" not in tag.lower():
        return ""
    a = BeautifulSoup(tag, "html.parser").find("a")
    href = a.get("href") if a is not None else None
    return href.strip() if isinstance(href, str) else ""


def read_html(fragment: str, links: bool) -> tuple[str, list[tuple[str, str]]]:
    """Readable text of an HTML fragment, and (with ``links``) its ``<a href>`` links.

    Returns ``(text, [(link text, href), ...])``.  Script, style, template and insight elements
    are dropped with their content; block tags become line breaks; with ``links``, the text of
    each link is left out of the returned text (it is the link's title).  A fragment without a
    tag is returned as it is, without calling BeautifulSoup.
    """
    if "<" not in fragment or HAS_TAG_RE.search(fragment) is None:
        return fragment, []
    if fragment.lstrip().startswith(("<?", "<!")):  # <?xml ...?>, <!DOCTYPE>: not prose
        return "", []
    soup = BeautifulSoup(TAG_NAME_RE.sub(_escape_unknown, fragment), "html.parser")
    for element in soup.find_all(DROPPED_TAGS):
        element.decompose()
    found: list[tuple[str, str]] = []
    if links:
        for a in soup.find_all("a", href=True):
            href = a.get("href")
            if isinstance(href, str) and href.strip():
                found.append((a.get_text(), href.strip()))
                a.decompose()
    # Depth first with an explicit stack: a break before and after each block element.
    out: list[str] = []
    stack = [(False, iter(soup.contents))]
    while stack:
        node = next(stack[-1][1], None)
        if node is None:
            if stack.pop()[0]:
                out.append("\n")
        elif type(node) is NavigableString:  # not a Comment, CData or Doctype
            out.append(node)
        elif isinstance(node, Tag):
            block = node.name in BLOCK_TAGS
            if block:
                out.append("\n")
            stack.append((block, iter(node.contents)))
    return "".join(out), found
