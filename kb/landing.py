"""What the search page shows before anything is typed, instead of arbitrary articles.

In order of preference: the articles most opened from searches (the search insights, when
recording has data), else the articles whose files changed last (the build's ``sources.json``),
grouped by service; when every file has the same time (a fresh checkout) neither says anything,
so the services with the most articles are listed to browse by.
"""

from __future__ import annotations

import logging
import threading
import time

from . import analytics
from .generations import read_sources
from .whooshcodec import SegmentDamaged

#: Articles listed at most, and per service.
MAX_ARTICLES = 24
PER_SERVICE = 5
#: Days of opened results that count, and seconds a landing is reused before it is asked again.
OPENED_DAYS = 30
TTL = 60.0

logger = logging.getLogger("kb")
_cache: dict[tuple, tuple[float, dict]] = {}
_lock = threading.Lock()


def landing(gen, config) -> dict:
    """``{"kind": "most_opened" | "recent" | "services", "groups": [{"service", "articles"}]}``
    for the generation ``gen`` (for ``services`` the page lists its service facet); reused for
    :data:`TTL` seconds."""
    key = (gen.name, analytics.store_target(config) if config.get("KB_ANALYTICS") else "")
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
        if hit and now - hit[0] < TTL:
            return hit[1]
    try:
        found = _most_opened(gen, config) or _recent(gen) or _services(gen)
    except SegmentDamaged as exc:
        # the page still shows what the search could read; /healthz and searches say "rebuild"
        logger.warning("kb: landing page left out: %s", exc)
        return _services(gen)
    with _lock:
        _cache.clear()  # one generation and store at a time
        _cache[key] = (now, found)
    return found


def _article(gen, article_id: str) -> dict | None:
    docnum = gen.docnum(article_id)
    return None if docnum is None else _listed(gen.searcher.stored_fields(docnum))


def _listed(fields: dict) -> dict:
    """What the landing page lists of an article, from its stored fields."""
    article_id = fields.get("id", "")
    return {"id": article_id, "title": fields.get("title") or article_id, "url": f"/articles/{article_id}",
            "service": fields.get("service") or ""}


def _grouped(kind: str, articles: list[dict]) -> dict:
    groups: dict[str, list[dict]] = {}
    for a in articles:
        group = groups.setdefault(a["service"], [])
        if len(group) < PER_SERVICE:
            group.append(a)
    return {"kind": kind, "groups": [{"service": s, "articles": g} for s, g in groups.items()]}


def _most_opened(gen, config) -> dict | None:
    if not analytics.enabled(config):
        return None
    try:
        store = analytics.Store(analytics.store_target(config))
    except analytics.StoreError as exc:
        logger.warning("kb: landing page without insights: %s", exc)
        return None
    try:
        rows = store.query("SELECT article, COUNT(*) FROM kb_opens WHERE ts >= ? GROUP BY article "
                           "ORDER BY COUNT(*) DESC, article LIMIT ?", (time.time() - OPENED_DAYS * 86400, MAX_ARTICLES))
    except Exception as exc:  # noqa: BLE001 - the landing page never fails for the insights
        logger.warning("kb: landing page without insights: %s", exc)
        return None
    finally:
        store.close()
    articles = []
    for article_id, opens in rows:
        found = _article(gen, article_id)
        if found:
            articles.append({**found, "opens": int(opens)})
    return _grouped("most_opened", articles) if articles else None


def _recent(gen) -> dict | None:
    stats = read_sources(gen.path).get("stats")
    if not isinstance(stats, dict):
        return None
    times = {path: st[1] for path, st in stats.items() if isinstance(st, list) and len(st) > 1}
    if len(set(times.values())) < 2:
        return None  # every file has one time: "recent" would be arbitrary
    articles = []
    reader = gen.searcher.reader()
    for path in sorted(times, key=lambda p: (-times[p], p)):
        docnum = reader.first_id("path", path) if "path" in reader.indexed_field_names() else None
        if docnum is None or not gen.alive[docnum]:
            continue
        found = _listed(gen.searcher.stored_fields(docnum))
        articles.append({**found, "changed": time.strftime("%Y-%m-%d", time.gmtime(times[path] / 1e9))})
        if len(articles) >= MAX_ARTICLES:
            break
    return _grouped("recent", articles) if articles else None


def _services(gen) -> dict:
    # the page lists the service facet of browsing everything (its counts and links) itself
    return {"kind": "services", "groups": []}
