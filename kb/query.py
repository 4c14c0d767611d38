"""From what an agent typed to a Whoosh query.

Plain words are searched with OR semantics and coordination (articles matching more of the words
rank first; an extra word never empties the results).  Power users keep Whoosh's syntax:
``field:value``, ``"exact phrase"``, ``-exclude``, ``OR``.  Broken syntax (``title:(``, a lone
``AND``, unbalanced quotes) is searched as well as possible and never raises.
"""

from __future__ import annotations

from dataclasses import dataclass

from whoosh import qparser
from whoosh import query as wq

from .index import TEXT_FIELDS

#: Queries longer than this are refused by the web API (and cut by the CLI).
MAX_QUERY_CHARS = 500

#: Field names a user may write before a colon, mapped to schema fields.
FIELD_ALIASES = {
    "title": ["title"], "info": ["info"], "description": ["description"], "issue": ["issue"],
    "steps": ["steps"], "body": ["body"], "service": ["service"], "tag": ["tag"], "tags": ["tag"],
    "resource": ["resource"], "cloud": ["cloud"], "type": ["type"], "articleid": ["articleid"],
    "path": ["path"], "id": ["id"],
}


@dataclass
class Parsed:
    query: wq.Query | None
    suggestion: str | None = None

    def highlight_terms(self) -> frozenset[str]:
        if self.query is None:
            return frozenset()
        terms = set()
        for fieldname, text in self.query.iter_all_terms():
            if fieldname in TEXT_FIELDS:
                terms.add(text.decode("utf-8") if isinstance(text, bytes) else text)
        return frozenset(terms)


def _parser(schema) -> qparser.QueryParser:
    p = qparser.MultifieldParser(list(TEXT_FIELDS), schema, group=qparser.OrGroup.factory(0.9))
    # Ranges and plain wildcards over free text expand to huge term lists; agents don't need them.
    p.remove_plugin_class(qparser.RangePlugin)
    p.remove_plugin_class(qparser.GtLtPlugin)
    return p


def parse(text: str, searcher) -> Parsed:
    """Parse ``text`` against the searcher's schema; an empty query means "browse everything"."""
    text = (text or "")[:MAX_QUERY_CHARS].strip()
    if not text:
        return Parsed(None)
    parser = _parser(searcher.schema)
    try:
        q = parser.parse(text)
    except Exception:  # noqa: BLE001 - syntax errors degrade to plain words
        q = None
    if q is None or q is wq.NullQuery:
        words = "".join(c if c.isalnum() else " " for c in text)
        try:
            q = parser.parse(words)
        except Exception:  # noqa: BLE001
            return Parsed(wq.NullQuery)
    return Parsed(q)
