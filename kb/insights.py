"""Search insights for authors: the reports over the analytics store (:mod:`kb.analytics`).

:func:`report` builds one dict; the /insights page, ``GET /api/v1/insights`` and ``kb report``
(text, JSON, CSV) are renderings of it.  The engine, when given, adds what only the index knows:
article titles, articles never shown in any result, and for each query that found nothing the
words the index does not know, the synonyms-file line that would map them, and the nearest
articles.
"""

from __future__ import annotations

import csv
import io
import re
import time
from urllib.parse import quote_plus

from .analytics import Store, day_of

#: Rows per table.
LIMIT = 20
#: Searches a query needs before its open rate means anything.
MIN_SEARCHES_FOR_RATE = 3
#: Articles listed under "never shown" (the count covers them all).
NEVER_SHOWN_LISTED = 50
MAX_SINCE_DAYS = 3650
SINCE_RE = re.compile(r"([0-9]{1,5})([dh])")

TABLES = ("per_day", "top_queries", "zero_result_queries", "rarely_opened", "most_opened", "unhelpful",
          "never_shown")


class BadSince(ValueError):
    """A ``since`` that is not like 7d or 24h."""


def parse_since(text: str) -> int:
    """Seconds of a period like ``7d`` or ``24h`` (at most :data:`MAX_SINCE_DAYS` days)."""
    m = SINCE_RE.fullmatch((text or "").strip().lower())
    if not m:
        raise BadSince(f"since must be a number of days or hours like 7d or 24h, not {text!r}")
    seconds = int(m.group(1)) * (86400 if m.group(2) == "d" else 3600)
    if not 0 < seconds <= MAX_SINCE_DAYS * 86400:
        raise BadSince(f"since must be between 1h and {MAX_SINCE_DAYS}d")
    return seconds


def search_url(query: str) -> str:
    return "/?q=" + quote_plus(query)


def report(store: Store, since: str = "7d", *, engine=None, now: float | None = None, limit: int = LIMIT) -> dict:
    """The insights of the period ``since`` (like ``7d``) up to ``now``, as one dict."""
    now = time.time() if now is None else now
    start = now - parse_since(since)
    q = store.query

    totals_row = q("SELECT COUNT(*), COALESCE(SUM(zero), 0) FROM kb_searches WHERE ts >= ?", (start,))[0]
    searches, zero = int(totals_row[0]), int(totals_row[1])
    opens = int(q("SELECT COUNT(*) FROM kb_opens WHERE ts >= ?", (start,))[0][0])
    fb = q("SELECT COALESCE(SUM(helpful), 0), COUNT(*) FROM kb_feedback WHERE ts >= ?", (start,))[0]

    by_day = {d: (int(n), int(z)) for d, n, z in q(
        "SELECT day, COUNT(*), SUM(zero) FROM kb_searches WHERE ts >= ? GROUP BY day", (start,))}
    per_day = []
    day = start - start % 86400
    while day <= now:
        name = day_of(day)
        n, z = by_day.get(name, (0, 0))
        per_day.append({"day": name, "searches": n, "zero_result": z, "zero_share": _share(z, n)})
        day += 86400

    opens_by_norm = {norm: int(n) for norm, n in q(
        "SELECT norm, COUNT(*) FROM kb_opens WHERE ts >= ? GROUP BY norm", (start,))}
    top = [{"query": example, "norm": norm, "searches": int(n), "zero_result": int(z),
            "opens": opens_by_norm.get(norm, 0), "search_url": search_url(example)}
           for norm, example, n, z in q(
               "SELECT norm, MAX(query), COUNT(*), SUM(zero) FROM kb_searches WHERE ts >= ? AND norm <> '' "
               "GROUP BY norm ORDER BY COUNT(*) DESC, norm LIMIT ?", (start, limit))]

    zero_rows = [{"query": example, "norm": norm, "searches": int(n), "search_url": search_url(example)}
                 for norm, example, n in q(
                     "SELECT norm, MAX(query), COUNT(*) FROM kb_searches WHERE ts >= ? AND zero = 1 AND norm <> '' "
                     "GROUP BY norm ORDER BY COUNT(*) DESC, norm LIMIT ?", (start, limit))]
    for row in zero_rows:
        row.update(close_the_loop(engine, row["query"]))

    # Only the search page has result links to open, so only its searches count here.
    rarely = []
    for norm, example, n in q(
            "SELECT norm, MAX(query), COUNT(*) FROM kb_searches WHERE ts >= ? AND source = 'page' AND zero = 0 "
            "AND norm <> '' GROUP BY norm HAVING COUNT(*) >= ?", (start, MIN_SEARCHES_FOR_RATE)):
        opened = opens_by_norm.get(norm, 0)
        rarely.append({"query": example, "norm": norm, "searches": int(n), "opens": opened,
                       "open_rate": round(min(1.0, opened / int(n)), 3), "search_url": search_url(example)})
    rarely.sort(key=lambda r: (r["open_rate"], -r["searches"], r["norm"]))
    rarely = rarely[:limit]

    most_opened = [{"article": a, **_article(engine, a), "opens": int(n), "mean_position": round(float(p), 1)}
                   for a, n, p in q("SELECT article, COUNT(*), AVG(position) FROM kb_opens WHERE ts >= ? "
                                    "GROUP BY article ORDER BY COUNT(*) DESC, article LIMIT ?", (start, limit))]

    unhelpful = [{"article": a, **_article(engine, a), "not_helpful": int(no), "helpful": int(yes), "comments": []}
                 for a, no, yes in q(
                     "SELECT article, SUM(1 - helpful), SUM(helpful) FROM kb_feedback WHERE ts >= ? GROUP BY article "
                     "HAVING SUM(1 - helpful) > 0 ORDER BY SUM(1 - helpful) DESC, article LIMIT ?", (start, limit))]
    by_article = {row["article"]: row for row in unhelpful}
    if by_article:
        for a, d, comment, query in q(
                "SELECT article, day, comment, query FROM kb_feedback WHERE ts >= ? AND helpful = 0 "
                "AND comment <> '' ORDER BY ts DESC LIMIT 1000", (start,)):
            row = by_article.get(a)
            if row is not None and len(row["comments"]) < 5:
                row["comments"].append({"day": d, "comment": comment, "query": query})

    never_shown = None
    if engine is not None:
        shown = {a for (a,) in q("SELECT DISTINCT article FROM kb_shown WHERE day >= ?", (day_of(start),))}
        missing = [a for a in all_article_ids(engine) if a not in shown]
        never_shown = {"count": len(missing),
                       "articles": [{"article": a, **_article(engine, a)} for a in missing[:NEVER_SHOWN_LISTED]]}

    return {
        "period": {"since": since, "from": _iso(start), "until": _iso(now)},
        "totals": {"searches": searches, "zero_result": zero, "zero_share": _share(zero, searches),
                   "opens": opens, "helpful": int(fb[0]), "not_helpful": int(fb[1]) - int(fb[0])},
        "per_day": per_day,
        "top_queries": top,
        "zero_result_queries": zero_rows,
        "rarely_opened": rarely,
        "most_opened": most_opened,
        "unhelpful": unhelpful,
        "never_shown": never_shown,
    }


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _article(engine, article_id: str) -> dict:
    """Title and page of an article, as far as the index still has it."""
    found = None
    if engine is not None:
        try:
            found = engine.article(article_id)
        except Exception:  # noqa: BLE001 - a report still shows the id when the index is away
            found = None
    return {"title": found["title"] if found else None, "url": found["url"] if found else None}


def all_article_ids(engine) -> list[str]:
    """Ids of every live article of the engine's current generation, sorted."""
    from whoosh.util.text import utf8decode

    gen = engine.generation()
    reader = gen.searcher.reader()
    ids = []
    for btext in reader.lexicon("id"):
        article_id = utf8decode(btext)[0] if isinstance(btext, bytes) else btext
        docnum = gen.docnum(article_id)
        if docnum is not None and gen.alive[docnum]:
            ids.append(article_id)
    return sorted(ids)


def close_the_loop(engine, query: str) -> dict:
    """For a query that found nothing: the words the index does not know, the synonyms-file
    lines that would map them to a close word it knows, and the articles nearest to it."""
    out: dict = {"unknown_words": [], "synonym_lines": [], "nearest": []}
    if engine is None:
        return out
    from .query import analyze

    try:
        gen = engine.generation()
    except Exception:  # noqa: BLE001 - no index: the table still lists the query
        return out
    fixed_words = []
    for raw in query.split():
        word = raw.strip("\"'+-()*?").lower()
        groups = analyze(word) if word else []
        terms = [t for g in groups for t in g]
        if terms and not any(gen.queries.known(t) for t in terms):
            out["unknown_words"].append(word)
            correction = gen.queries.correct(word)
            if correction:
                out["synonym_lines"].append(f"{word} => {correction}")
                fixed_words.append(correction)
                continue
        fixed_words.append(raw)
    try:
        nearest = engine.search(" ".join(fixed_words), per_page=3)["results"]
    except Exception:  # noqa: BLE001 - a slow or broken query has no nearest articles
        nearest = []
    out["nearest"] = [{"article": r["id"], "title": r["title"], "url": r["url"]} for r in nearest]
    return out


# -- renderings ---------------------------------------------------------------------------------


def _table_rows(data: dict, name: str) -> tuple[list[str], list[list]]:
    """Header and rows of one table of the report, flattened for text and CSV."""
    if name == "per_day":
        return ["day", "searches", "zero_result", "zero_share"], [
            [r["day"], r["searches"], r["zero_result"], r["zero_share"]] for r in data["per_day"]]
    if name == "top_queries":
        return ["query", "searches", "zero_result", "opens"], [
            [r["query"], r["searches"], r["zero_result"], r["opens"]] for r in data["top_queries"]]
    if name == "zero_result_queries":
        return ["query", "searches", "unknown_words", "synonym_lines", "nearest"], [
            [r["query"], r["searches"], " ".join(r["unknown_words"]), "; ".join(r["synonym_lines"]),
             "; ".join(n["article"] for n in r["nearest"])] for r in data["zero_result_queries"]]
    if name == "rarely_opened":
        return ["query", "searches", "opens", "open_rate"], [
            [r["query"], r["searches"], r["opens"], r["open_rate"]] for r in data["rarely_opened"]]
    if name == "most_opened":
        return ["article", "title", "opens", "mean_position"], [
            [r["article"], r["title"] or "", r["opens"], r["mean_position"]] for r in data["most_opened"]]
    if name == "unhelpful":
        return ["article", "title", "not_helpful", "helpful", "comments"], [
            [r["article"], r["title"] or "", r["not_helpful"], r["helpful"],
             " | ".join(c["comment"] for c in r["comments"])] for r in data["unhelpful"]]
    if name == "never_shown":
        rows = (data["never_shown"] or {}).get("articles", [])
        return ["article", "title"], [[r["article"], r["title"] or ""] for r in rows]
    raise KeyError(name)


def to_csv(data: dict) -> str:
    """Every table as CSV, each preceded by a ``# name`` line."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for name in TABLES:
        header, rows = _table_rows(data, name)
        buf.write(f"# {name}\n")
        writer.writerow(header)
        writer.writerows(rows)
        buf.write("\n")
    return buf.getvalue()


def to_text(data: dict) -> str:
    """Every table as aligned text, for ``kb report``."""
    t = data["totals"]
    lines = [f"Search insights {data['period']['from']} .. {data['period']['until']} (since {data['period']['since']})",
             f"{t['searches']} searches, {t['zero_result']} found nothing ({t['zero_share']:.1%}), "
             f"{t['opens']} results opened, {t['helpful']} helpful / {t['not_helpful']} not helpful votes"]
    if data["never_shown"] is not None:
        lines.append(f"{data['never_shown']['count']} articles never appeared in any result")
    for name in TABLES:
        header, rows = _table_rows(data, name)
        lines += ["", name.replace("_", " ").capitalize()]
        if not rows:
            lines.append("  (none)")
            continue
        percent = [h.endswith(("share", "rate")) for h in header]
        cells = [[str(c) for c in header]] + [[_short(c, p) for c, p in zip(row, percent, strict=True)] for row in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        for row in cells:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _short(value, percent: bool = False, limit: int = 60) -> str:
    text = f"{value:.1%}" if percent else str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"
