"""An article's markdown as safe HTML, for its page (indexing never renders: see kb.markdown)."""

from __future__ import annotations

import html
from collections.abc import Iterable

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

from .personalise import blade_links

#: render_markdown() shows longer markdown as plain text (the longest real article has ~18,000
#: characters): markdown-it spends ~15 us per character on inputs such as "[" * 100_000, and
#: nh3 is quadratic in nesting depth ("<div>" * 12_000 takes ~0.3 s).
MAX_RENDER = 60_000

# Full CommonMark with markdown-it's own link checks, then nh3.
_md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


#: What nh3 keeps, plus the class that marks an article's steps list.
_ATTRIBUTES = {**nh3.ALLOWED_ATTRIBUTES, "ol": {*nh3.ALLOWED_ATTRIBUTES.get("ol", ()), "class"}}


def render_article(markdown: str, step_lines: Iterable[int] = ()) -> str:
    """Like :func:`render_markdown`, with the lists holding the article's steps numbered.

    ``step_lines``: the lines of ``markdown`` where steps start (``steps_detail[].line``).  The
    list around each becomes an ``<ol class="steps">`` (authors often bulleted them), so the
    page shows the article once, steps numbered, links live and sub-items nested.
    """
    starts = set(step_lines)
    if len(markdown) > MAX_RENDER or not starts:
        return render_markdown(markdown)
    tokens = _md.parse(markdown)
    open_lists: list[int] = []  # token indexes of the open lists
    marked: set[int] = set()
    for i, tok in enumerate(tokens):
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            open_lists.append(i)
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            j = open_lists.pop() if open_lists else -1
            if j in marked:
                tok.tag = "ol"
        elif tok.type == "list_item_open" and open_lists and tok.map and tok.map[0] in starts:
            j = open_lists[-1]
            if j not in marked:
                marked.add(j)
                tokens[j].tag = "ol"
                tokens[j].attrSet("class", "steps")
    html_out = _md.renderer.render(tokens, _md.options, {})
    return nh3.clean(html_out, link_rel="noopener noreferrer nofollow", attributes=_ATTRIBUTES)


def render_markdown(markdown: str) -> str:
    """Article markdown as sanitised HTML: no scripts, event handlers or ``javascript:`` URLs.

    Relative links are kept; ``data-blade:`` links (a portal-only scheme) lose their ``href``
    but keep their text, as nh3 allows only known-safe URL schemes.  Markdown longer than
    :data:`MAX_RENDER` is shown as escaped, preformatted text instead of being parsed.
    """
    if len(markdown) > MAX_RENDER:
        return "<pre>" + html.escape(markdown[:MAX_RENDER]) + "</pre>"
    return nh3.clean(_md.render(markdown), link_rel="noopener noreferrer nofollow")


def steps_as_text(steps: list[dict], markdown: bool = False) -> str:
    """An article's steps (``steps_detail``) as a numbered list to paste: plain text, or
    markdown with links kept; sub-items indented under their step."""
    lines: list[str] = []

    def add(items: list[dict], depth: int) -> None:
        for n, item in enumerate(items, 1):
            text = item.get("markdown" if markdown else "text", "") or item.get("text", "")
            marker = f"{n}." if depth == 0 else "-"
            pad = "   " * depth
            lines.append(f"{pad}{marker} " + text.replace("\n", "\n" + pad + "   "))
            add(item.get("items", []), depth + 1)

    add(steps, 0)
    return "\n".join(lines)


def render_step(step: dict) -> Markup:
    """One step of ``steps_detail`` (its own markdown, then its sub-items) as sanitised HTML, for
    steps the article's markdown does not hold (those of an issue description)."""
    own = render_markdown(blade_links(step.get("markdown") or step.get("text", ""), None, True))
    items = "".join(f"<li>{render_step(i)}</li>" for i in step.get("items", ()))
    return Markup(own + (f"<ul>{items}</ul>" if items else ""))
