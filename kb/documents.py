"""What kb puts into its Whoosh index: the schema, and the document made of one article.

The third stage of the pipeline (articles -> parse -> documents -> index -> search -> web/cli).
"""

from __future__ import annotations

import hashlib
import json

from whoosh.columns import CompressedBytesColumn
from whoosh.fields import COLUMN, ID, KEYWORD, STORED, TEXT, Schema

from .analysis import spelling_analyzer, text_analyzer
from .highlight import snippet_text
from .parse import Article
from .properties import split_list

#: Characters of body text kept for result snippets; bounds highlighting work per hit.
SNIPPET_SOURCE_CHARS = 1500

#: The full-text fields.  Their weights live with the query side (kb.query.FIELD_WEIGHTS), not
#: in the index: Whoosh's field_boost would bake them into the postings and every weight change
#: would need a rebuild.
TEXT_FIELDS = ("title", "info", "description", "issue", "steps", "body")



def make_schema() -> Schema:
    """The documented schema of a kb index (see README, "Index schema")."""
    ana = text_analyzer()
    return Schema(
        # identity
        id=ID(stored=True, unique=True),
        path=ID(stored=True),
        articleid=ID(stored=True),
        # full text, BM25F-weighted
        title=TEXT(analyzer=ana, stored=True),
        info=TEXT(analyzer=ana, stored=True),
        description=TEXT(analyzer=ana, stored=True),
        issue=TEXT(analyzer=ana),
        steps=TEXT(analyzer=ana),
        body=TEXT(analyzer=ana),
        # unstemmed words of the short fields: the vocabulary typo corrections are drawn from
        spell=TEXT(analyzer=spelling_analyzer(), phrase=False),
        # facets and filters (lower-cased values)
        # a KEYWORD: the rare article naming two services ("a, b") is filed under each
        service=KEYWORD(stored=True, commas=True, lowercase=True, scorable=False),
        tag=KEYWORD(stored=True, commas=True, lowercase=True, scorable=False),
        resource=ID(stored=True),
        cloud=KEYWORD(commas=True, lowercase=True),
        type=ID(stored=True),
        # for results and article pages, so serving never rereads source files
        snippet_source=STORED,
        # the article page's data, apart from the stored fields every result reads
        article=COLUMN(CompressedBytesColumn(level=1)),
        hash=STORED,
        # copies of one article (same title and text, e.g. one per cloud) share this key
        dupkey=ID(sortable=True),
    )


def copy_key(a: Article) -> str:
    """What copies of one article (one per cloud or folder) share: a hash of their normalised
    content (title, description, info-bubble text, issue, steps, body; case and spacing ignored).
    Articles that share a title but say something else are not copies."""
    parts = (a.title, a.description, a.info, a.issue, *a.steps, a.body)
    text = "\x00".join(" ".join(p.lower().split()) for p in parts)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def article_document(a: Article) -> dict:
    """The Whoosh document of one article (empty values left out: no facet value "")."""
    # readable text: no markdown syntax, headings kept apart from the text that follows them
    snippet_source = snippet_text(a.issue[:SNIPPET_SOURCE_CHARS * 2], a.body[:SNIPPET_SOURCE_CHARS * 2])[:SNIPPET_SOURCE_CHARS]
    doc = {
        "id": a.id,
        "path": a.path,
        "articleid": a.article_id.lower(),
        "title": a.title,
        "info": a.info,
        "description": a.description,
        "issue": a.issue,
        "steps": "\n".join(a.steps),
        # the titles of recommended documents are readable text too ("Azure Kubernetes Service ...")
        "body": "\n".join([a.body, *(d.title for d in a.documents)]),
        "service": ",".join(split_list(a.service)),
        "tag": ",".join(a.tags),
        "resource": a.resource.lower(),
        "cloud": ",".join(a.clouds),
        "type": a.type.lower(),
        "snippet_source": snippet_source,
        "article": json.dumps(a.to_dict(), ensure_ascii=False).encode("utf-8"),
        "hash": a.hash,
        "spell": "\n".join((a.title, a.info, a.description, a.issue)),
        "dupkey": copy_key(a),
    }
    return {k: v for k, v in doc.items() if v != ""}
