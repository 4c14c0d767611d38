"""An article's markdown as safe HTML, for its page (indexing never renders: see kb.markdown)."""

from __future__ import annotations

import html

import nh3
from markdown_it import MarkdownIt

#: render_markdown() shows longer markdown as plain text (the longest real article has ~18,000
#: characters): markdown-it spends ~15 us per character on inputs such as "[" * 100_000, and
#: nh3 is quadratic in nesting depth ("<div>" * 12_000 takes ~0.3 s).
MAX_RENDER = 60_000

# Full CommonMark with markdown-it's own link checks, then nh3.
_md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def render_markdown(markdown: str) -> str:
    """Article markdown as sanitised HTML: no scripts, event handlers or ``javascript:`` URLs.

    Relative links are kept; ``data-blade:`` links (a portal-only scheme) lose their ``href``
    but keep their text, as nh3 allows only known-safe URL schemes.  Markdown longer than
    :data:`MAX_RENDER` is shown as escaped, preformatted text instead of being parsed.
    """
    if len(markdown) > MAX_RENDER:
        return "<pre>" + html.escape(markdown[:MAX_RENDER]) + "</pre>"
    return nh3.clean(_md.render(markdown), link_rel="noopener noreferrer nofollow")
