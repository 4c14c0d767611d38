"""The extraction golden digest: what the parser and analyzer make of the bundled sample articles.

The index format names an extraction version (kb.generations.EXTRACTION_VERSION) instead of
hashing kb's source, so a comment or a refactoring needs no rebuild.  The price is that a change
to what is extracted must bump the version by hand; this test catches the changes that do not.

Regenerate after bumping the version:  python tests/test_extraction.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from kb.articles import Skipped, discover, load
from kb.config import sample_root
from kb.documents import article_document, make_schema
from kb.generations import EXTRACTION_VERSION

GOLDEN = Path(__file__).parent / "golden" / "extraction.json"
REGENERATE = "python tests/test_extraction.py"


def _digest(value: object) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True, ensure_ascii=False, default=repr).encode()).hexdigest()[:16]


def extraction() -> dict:
    """Per sample file: its id and title, and a digest of each field of its document as the index
    receives it (the analyzed terms with their positions for indexed fields, the value for stored
    ones)."""
    schema = make_schema()
    root = sample_root()
    articles = {}
    for path in discover(root):
        item = load(root, path)
        if isinstance(item, Skipped):
            articles[path] = {"skipped": item.reason}
            continue
        doc = article_document(item)
        fields = {}
        for name, value in sorted(doc.items()):
            field = schema[name]
            entry = {"value": _digest(value if not isinstance(value, bytes) else value.decode())}
            if field.indexed:
                terms = [(t.decode("utf-8", "replace") if isinstance(t, bytes) else t, freq, weight, repr(vs))
                         for t, freq, weight, vs in field.index(value)]
                entry["terms"] = _digest(terms)
            fields[name] = entry
        articles[path] = {"id": item.id, "title": item.title, "fields": fields}
    return {"extraction_version": EXTRACTION_VERSION, "articles": articles}


def _what_changed(now: dict, then: dict) -> str:
    fields = {*now.get("fields", {}), *then.get("fields", {})}
    names = sorted(f for f in fields if now.get("fields", {}).get(f) != then.get("fields", {}).get(f))
    return ", ".join(names) or "id, title or skip"


def test_extraction_matches_the_golden_digest():
    golden = json.loads(GOLDEN.read_text())
    now = extraction()
    if golden["extraction_version"] != EXTRACTION_VERSION:
        raise AssertionError(f"EXTRACTION_VERSION is {EXTRACTION_VERSION} but {GOLDEN.name} was made for "
                             f"{golden['extraction_version']}: regenerate it with `{REGENERATE}`")
    changed = [f"{path}: {_what_changed(now['articles'].get(path, {}), golden['articles'].get(path, {}))}"
               for path in sorted(set(now["articles"]) | set(golden["articles"]))
               if now["articles"].get(path) != golden["articles"].get(path)]
    assert not changed, (
        f"extraction changed: bump EXTRACTION_VERSION in kb/generations.py and regenerate with `{REGENERATE}` "
        f"(indexes of the old version are then served with a warning until rebuilt). Changed: "
        + "; ".join(changed[:10]))


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(extraction(), indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"wrote {GOLDEN} for extraction version {EXTRACTION_VERSION}")
