"""The JSON API, and the request parsing and page data the HTML views share with it.

A search request becomes one dict (:func:`search_data`): the engine's answer plus facet
``toggle_url``\\ s, removable filters and paging links.  ``GET /api/v1/search`` returns it as JSON and
``GET /`` renders it with a template, so the two can never disagree.

Bot-facing HTTP conventions live here too: every endpoint under ``/api/v1/`` (the older ``/api/``
paths are aliases answering the same), weak ETags from the index generation and the normalised
request with ``If-None-Match`` answered by a bodiless 304, and a machine-readable ``code`` in
every JSON error (:func:`error_code`).
"""

from __future__ import annotations

import calendar
import hashlib
import math
import re
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from urllib.parse import quote_plus, urlencode

from flask import Blueprint, current_app, jsonify, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest, NotFound, ServiceUnavailable

from .analytics import note_search
from . import __version__
from .highlight import plain_snippet
from .markdown import inline_text
from .openapi import openapi_document
from .personalise import blade_links, personalise, request_values
from .render import render_article
from .query import MAX_QUERY_CHARS
from .search import FACETS, IndexDamaged, IndexMissing, SearchEngine, SearchTimeout
from .sync import read_status, with_liveness
from .whooshcodec import SegmentDamaged
from .suggest import suggest

#: The parameters of a search; each facet's values are selected by a parameter of its name.
SEARCH_PARAMS = ("q", *FACETS, "page", "per_page", "prefix")
#: Bounds on facet selections; no real request comes near them.
MAX_FACET_VALUES = 20
MAX_FACET_VALUE_CHARS = 200
#: What an article id can look like (see kb.parse.article_id_for); anything else is a 404 without
#: asking the engine.  Ids are looked up, never used as paths, so ".." can only be "not found".
ARTICLE_ID_RE = re.compile(r"[A-Za-z0-9._~-]{1,500}")
_INT_RE = re.compile(r"[0-9]{1,9}")
#: Control characters (C0, DEL, C1): never meaningful in a search, and NUL or ESC echoed into the
#: page title or the search box would be shown raw.  They read as spaces.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
#: Seconds a search may run before it is stopped with a 503 (setting KB_SEARCH_TIMEOUT).
SEARCH_TIMEOUT = 10.0
#: The versioned prefix of every API path; ``/api/...`` (the first, unversioned paths) stays an alias.
API_PREFIX = "/api/v1"
#: The ``code`` of a JSON error by HTTP status, when the exception does not name its own
#: (``error_code`` attribute): a bot branches on it instead of parsing messages.
ERROR_CODES = {
    400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
    414: "request_too_large", 431: "request_too_large", 500: "internal_error", 503: "unavailable",
}

bp = Blueprint("api", __name__)


def error_code(exc: object, status: int) -> str:
    """The machine-readable ``code`` of an error response (``invalid_parameter``, ``not_found``...)."""
    fallback = "client_error" if status < 500 else "server_error"
    return getattr(exc, "error_code", None) or ERROR_CODES.get(status) or fallback


class BadParameter(BadRequest):
    """A 400 whose message names the offending query-string parameter."""

    def __init__(self, parameter: str, message: str, error_code: str = "invalid_parameter"):
        super().__init__(message)
        self.parameter = parameter
        self.error_code = error_code


class UnknownArticle(NotFound):
    """A 404 for an article id that is not in the index."""

    parameter = "id"

    @classmethod
    def of(cls, article_id: str) -> UnknownArticle:
        shown = article_id if len(article_id) <= 100 else article_id[:100] + "…"
        return cls(f"no article with id {shown!r}")


class UnknownFacet(NotFound):
    """A 404 for a facet name kb does not have."""

    parameter = "name"


@dataclass(frozen=True)
class SearchParams:
    """A validated search request; the state of the search page."""

    q: str = ""
    services: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    page: int = 1
    per_page: int = 10
    types: tuple[str, ...] = ()
    clouds: tuple[str, ...] = ()
    #: search as you type: the last word of ``q`` is the start of a word (``prefix=1``)
    prefix: bool = False

    def selected(self, facet: str) -> tuple[str, ...]:
        return getattr(self, _SELECTION_FIELDS[facet])

    def with_selected(self, facet: str, values: tuple[str, ...]) -> SearchParams:
        """The same search with ``facet`` narrowed to ``values``, back on page 1."""
        return replace(self, **{_SELECTION_FIELDS[facet]: values}, page=1)

    def toggled(self, facet: str, value: str) -> SearchParams:
        """The same search with ``value`` of ``facet`` selected, or no longer selected if it was."""
        chosen = self.selected(facet)
        return self.with_selected(facet, tuple(v for v in chosen if v != value) if value in chosen
                                  else (*chosen, value))

    def unfiltered(self) -> SearchParams:
        """The same search with no facet selected, back on page 1."""
        return replace(self, **dict.fromkeys(_SELECTION_FIELDS.values(), ()), page=1)

    def selections(self) -> dict[str, tuple[str, ...]]:
        """Per facet, its selected values (what the engine's ``selected`` takes)."""
        return {name: self.selected(name) for name in FACETS}

    def query_string(self, default_per_page: int) -> str:
        """The canonical query string of this state (defaults left out), '' when there is none.

        Built from cached encoded pieces: a search page carries dozens of these links.
        """
        parts: list[str] = []
        if self.q:
            parts.append("q=" + _encoded(self.q))
        for name in FACETS:
            parts += [f"{name}=" + _encoded(v) for v in self.selected(name)]
        if self.per_page != default_per_page:
            parts.append(f"per_page={self.per_page}")
        if self.page != 1:
            parts.append(f"page={self.page}")
        if self.prefix:
            parts.append("prefix=1")
        return "&".join(parts)


#: The SearchParams field holding each facet's selection.
_SELECTION_FIELDS = {"service": "services", "tag": "tags", "type": "types", "cloud": "clouds"}


@lru_cache(maxsize=4096)
def _encoded(value: str) -> str:
    """``value`` encoded for a query string, as urlencode would."""
    return quote_plus(value)


def _single(args: MultiDict, name: str) -> str | None:
    values = args.getlist(name)
    if len(values) > 1:
        raise BadParameter(name, f"{name} must be given at most once")
    return values[0] if values else None


def _int(args: MultiDict, name: str, default: int, high: int) -> int:
    raw = _single(args, name)
    if raw is None:
        return default
    message = f"{name} must be an integer between 1 and {high}"
    if not _INT_RE.fullmatch(raw.strip()):
        raise BadParameter(name, message)
    value = int(raw)
    if not 1 <= value <= high:
        raise BadParameter(name, message)
    return value


def _facet_values(args: MultiDict, name: str) -> tuple[str, ...]:
    values: dict[str, None] = {}
    for raw in args.getlist(name):
        value = _CONTROL_RE.sub(" ", raw).strip().lower()
        if len(value) > MAX_FACET_VALUE_CHARS:
            raise BadParameter(name, f"each {name} value must be at most {MAX_FACET_VALUE_CHARS} characters")
        if value:  # an empty value (service=) selects nothing
            values.setdefault(value, None)
    if len(values) > MAX_FACET_VALUES:
        raise BadParameter(name, f"{name} may be given at most {MAX_FACET_VALUES} times")
    return tuple(values)


def parse_search_args(args: MultiDict, config, *, strict: bool) -> SearchParams:
    """Validate a search query string; raises :class:`BadParameter`.

    ``strict`` (the JSON API) also refuses parameters it does not know, so a bot's typo
    (``perpage=``) fails loudly instead of being ignored; the HTML page ignores them, so a
    shared link carrying tracking parameters still opens.
    """
    if strict:
        refuse_unknown(args, SEARCH_PARAMS)
    q = _query(args)
    # a twin value of the labels file is selected as the value it is merged into
    chosen = engine().selected(**{name: _facet_values(args, name) for name in FACETS})
    return SearchParams(
        q=q,
        page=_int(args, "page", 1, config["KB_MAX_PAGE"]),
        per_page=_int(args, "per_page", config["KB_PER_PAGE"], config["KB_MAX_PER_PAGE"]),
        **{_SELECTION_FIELDS[name]: tuple(values) for name, values in chosen.items()},
        prefix=_flag(args, "prefix"),
    )


def refuse_unknown(args: MultiDict, known: tuple[str, ...]) -> None:
    """A 400 ``unknown_parameter`` naming the first parameter of ``args`` not in ``known``: a
    bot's typo (``perpage=``) fails loudly instead of being ignored."""
    for name in args:
        if name not in known:
            shown = name if len(name) <= 40 else name[:40] + "…"
            raise BadParameter(name[:100], f"unknown parameter {shown!r}; expected "
                                           f"{'one of ' if len(known) > 1 else ''}{', '.join(known)}",
                               "unknown_parameter")


def _query(args: MultiDict) -> str:
    """The ``q`` of ``args``: at most MAX_QUERY_CHARS (a 400 otherwise), control characters as
    spaces, trimmed."""
    q = _single(args, "q") or ""
    if len(q) > MAX_QUERY_CHARS:
        raise BadParameter("q", f"q must be at most {MAX_QUERY_CHARS} characters")
    return _CONTROL_RE.sub(" ", q).strip()


def _flag(args: MultiDict, name: str) -> bool:
    raw = _single(args, name)
    if raw is None or raw.strip() in ("", "0"):
        return False
    if raw.strip() == "1":
        return True
    raise BadParameter(name, f"{name} must be 0 or 1")


def engine() -> SearchEngine:
    """The app's one SearchEngine (it reopens the index by itself when a build switches it)."""
    return current_app.extensions["kb_engine"]


class TooSlow(ServiceUnavailable):
    """A 503 for a search stopped at its deadline; ``q`` is what made it slow."""

    parameter = "q"
    error_code = "too_slow"


class IndexUnavailable(ServiceUnavailable):
    """A 503 for no index to serve (``index_missing``) or a damaged one (``index_damaged``)."""

    def __init__(self, message: str, error_code: str):
        super().__init__(message)
        self.error_code = error_code


def _run(method, *args, **kwargs):
    """Call the engine (or what reads its generation, as suggestions do): a missing or damaged
    index and a search past its deadline (the engine checks it, kb.deadline) become 503s."""
    seconds = current_app.config.get("KB_SEARCH_TIMEOUT", SEARCH_TIMEOUT)
    try:
        return method(*args, **kwargs)
    except SegmentDamaged as exc:  # read outside the engine's own checks (related, suggestions)
        raise IndexUnavailable(str(IndexDamaged.of(exc)), "index_damaged") from None
    except IndexMissing as exc:
        code = "index_damaged" if isinstance(exc, IndexDamaged) else "index_missing"
        raise IndexUnavailable(str(exc), code) from None
    except SearchTimeout:
        raise TooSlow(f"the search took longer than {seconds:g} s and was stopped; "
                      "try fewer words or leave out wildcards (*, ?)") from None


def _url(path: str, params: SearchParams, default_per_page: int) -> str:
    qs = params.query_string(default_per_page)
    return f"{path}?{qs}" if qs else path


def search_data(params: SearchParams, base: str) -> dict:
    """The search dict of ``params``: what /api/search returns and the search page renders.

    Links (facet ``toggle_url``\\ s, filter ``remove_url``\\ s, paging) point at ``base``, the
    endpoint being rendered, so a bot stays in the JSON API and a browser on the HTML page.
    """
    default_pp = current_app.config["KB_PER_PAGE"]
    data = _run(engine().search, params.q, services=params.services, tags=params.tags,
                types=params.types, clouds=params.clouds, page=params.page, per_page=params.per_page,
                facet_limit=current_app.config["KB_FACET_LIMIT"],
                timeout=current_app.config.get("KB_SEARCH_TIMEOUT", SEARCH_TIMEOUT), prefix=params.prefix)

    def url(p: SearchParams, path: str = base) -> str:
        return _url(path, p, default_pp)

    facets: dict[str, list[dict]] = {}
    for name in FACETS:
        values = []
        for item in data["facets"].get(name, []):
            # Articles without a service index an empty value; it cannot be selected, so it is
            # no facet value (its count could never equal a filtered total).
            if not item["value"]:
                continue
            values.append({**item, "toggle_url": url(params.toggled(name, item["value"]))})
        facets[name] = values
    data["facets"] = facets

    labels = engine().labels
    data["filters"] = [
        {"facet": name, "value": value, "label": labels.label(name, value),
         "remove_url": url(params.with_selected(name, tuple(v for v in params.selected(name) if v != value)))}
        for name in FACETS for value in params.selected(name)
    ]
    for result in data["results"]:
        result["api_url"] = f"{API_PREFIX}/articles/{result['id']}"
        result["snippet_text"], result["highlights"] = plain_snippet(result.get("snippet", ""))

    # pages list results with copies folded into one
    last = max(1, min(math.ceil(data["total_groups"] / params.per_page), current_app.config["KB_MAX_PAGE"]))
    data["pages"] = last
    data["warnings"] = [*data.get("warnings", []), *_request_warnings(params, data, last, api=base != "/")]
    data["links"] = {
        "self": url(params),
        "html": url(params, "/"),
        "json": url(params, f"{API_PREFIX}/search"),
        "first": url(replace(params, page=1)),
        # from a page past the end, "prev" leads back to the last page that has results
        "prev": url(replace(params, page=min(params.page - 1, last))) if params.page > 1 else None,
        "next": url(replace(params, page=params.page + 1)) if params.page < last else None,
        "clear_filters": url(params.unfiltered()) if data["filters"] else None,
        # a facet's value search for this state: replace {name} by service, tag, type or cloud
        "facet_values": _url(f"{API_PREFIX}/facets/{{name}}", replace(params, page=1, per_page=default_pp, prefix=False),
                             default_pp),
        # "Did you mean": the same search (filters kept) with the corrected words
        "suggestion": url(replace(params, q=data["suggestion"], page=1, prefix=False)) if data["suggestion"] else None,
    }
    return data


class PageOutOfRange(BadParameter):
    """A 400 for a page past the last one; the error body says how many pages and results there are."""

    def __init__(self, page: int, pages: int, total_groups: int):
        super().__init__("page", f"page {page} is past the last page, {pages} ({total_groups} "
                                 f"{'result' if total_groups == 1 else 'results'})", "page_out_of_range")
        self.extra = {"pages": pages, "total_groups": total_groups}


def article_data(article_id: str, args: MultiDict | None = None) -> dict:
    """The whole article with its body rendered to sanitised HTML; raises NotFound.

    ``args`` (the request's query string) may fill the article's placeholders
    (``?vmname=web01``) and name a ``resourceId`` (see :mod:`kb.personalise`); never stored.
    """
    found = _run(engine().article, article_id) if ARTICLE_ID_RE.fullmatch(article_id) else None
    if found is None:
        raise UnknownArticle.of(article_id)
    if args:
        found = _personalised(found, args)
    found["html"] = _article_html(found)
    found["links"] = {"html": found["url"], "json": f"{API_PREFIX}/articles/{found['id']}"}
    return found


def related_data(article_id: str, limit: int = 5) -> list[dict]:
    """Articles like ``article_id`` as search results (see SearchEngine.related); raises NotFound."""
    found = _run(engine().related, article_id, limit) if ARTICLE_ID_RE.fullmatch(article_id) else None
    if found is None:
        raise UnknownArticle.of(article_id)
    for result in found:
        result["api_url"] = f"{API_PREFIX}/articles/{result['id']}"
    return found


def _personalised(article: dict, args: MultiDict) -> dict:
    """``article`` with the request's placeholder values filled in (a 400 for a bad resourceId)."""
    try:
        by_label, resource = request_values({k: args.get(k, "") for k in args}, article.get("placeholders", []))
    except ValueError:
        raise BadParameter("resourceId", "resourceId must be an Azure resource ID "
                                         "(/subscriptions/…/resourceGroups/…/providers/…)") from None
    return personalise(article, by_label, resource)


def _article_html(article: dict) -> str:
    """The article's markdown as page HTML, its steps lists numbered (see render_article), its
    unresolved portal links as text marked "opens in the Azure portal"."""
    markdown = article.get("markdown", "")
    body = _without_title(markdown, article.get("title", ""), article.get("heading"))
    skipped = markdown[: len(markdown) - len(body)].count("\n")
    body = blade_links(body, None, True)
    lines = [d["line"] - skipped for d in article.get("steps_detail", ()) if d.get("line") is not None]
    return render_article(body, lines)


def _request_warnings(params: SearchParams, data: dict, last: int, *, api: bool) -> list[str]:
    """What the engine's warnings cannot say: selected facet values no article has, and results
    past the last page a request may ask for (on the HTML page only once it is reached)."""
    out = []
    facets = _run(engine().generation).facets
    for name in FACETS:
        for value in params.selected(name):
            if not facets[name].knows(value):
                out.append(f"no article has {name} {value!r}; that value matches nothing")
    reachable = current_app.config["KB_MAX_PAGE"] * params.per_page
    if data["total_groups"] > reachable and (api or params.page >= last):
        out.append(f"only the first {reachable} of {data['total_groups']} results can be paged to "
                   f"(page at most {current_app.config['KB_MAX_PAGE']}); narrow the search (service, tag, "
                   "more words) or raise per_page to reach the rest")
    return out


def _etag(*parts: str) -> str:
    """A validator of an API answer: the served articles and rules (SearchEngine.validator), the
    settings that shape answers and the normalised request (``parts``).  Weak, because ``took_ms`` differs between two answers that
    are otherwise the same (and a compressed body is the same answer as well)."""
    gen = _run(engine().validator)
    cfg = current_app.config
    key = "\0".join([__version__, gen, *(str(cfg[k]) for k in ("KB_PER_PAGE", "KB_MAX_PAGE", "KB_FACET_LIMIT")),
                     *parts])
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def _cache_headers(response, etag: str):
    """``response`` with its ETag and Cache-Control (setting KB_CACHE_MAX_AGE): by default
    caches may keep an answer but must revalidate it, which costs a 304 without a search, so a
    rebuilt index is seen at once."""
    response.set_etag(etag, weak=True)
    max_age = int(current_app.config["KB_CACHE_MAX_AGE"])
    response.headers["Cache-Control"] = f"public, max-age={max_age}" if max_age > 0 else "public, no-cache"
    return response


def _not_modified(etag: str):
    """A bodiless 304 when the request's If-None-Match holds ``etag`` (weak comparison, as
    RFC 9110 asks for If-None-Match), else None.  ``*`` is left to the full answer: it must not
    turn a 404 into a 304."""
    wanted = request.if_none_match
    if wanted and not wanted.star_tag and wanted.contains_weak(etag):
        return _cache_headers(current_app.response_class(status=304), etag)
    return None


def _api_base() -> str:
    """The API prefix of this request: ``/api/v1``, or ``/api`` on an alias."""
    return API_PREFIX if request.path.startswith(API_PREFIX + "/") else "/api"


_H1_RE = re.compile(r"\A\s*#[ \t]+(.*)\n?")


def _without_title(markdown: str, title: str, heading: str | None = None) -> str:
    """The markdown minus its leading ``# Title`` line, which the page shows as its heading
    (``heading``: the H1 as written, when the title shown is a cleaned one)."""
    m = _H1_RE.match(markdown)
    if m and heading is not None and not m.group(1).strip(" #"):
        return markdown[m.end():]  # an empty "# " line
    shown = " ".join(m.group(1).strip(" #*_").split()) if m else None
    # the heading as the parser read it (markup gone) is what ``heading`` holds
    read = inline_text(m.group(1).rstrip(" #")) if m and heading else ""
    if m and (shown == " ".join(title.split())
              or (heading and " ".join(heading.split()) in (shown, " ".join(read.split()).strip("*_ :")))):
        return markdown[m.end():]
    return markdown


# -- routes -----------------------------------------------------------------------------------


@bp.get(f"{API_PREFIX}/search")
@bp.get("/api/search")
def api_search():
    """Search articles; the JSON twin of the search page."""
    params = parse_search_args(request.args, current_app.config, strict=True)
    base = _api_base() + "/search"  # links lead on in the API version asked for
    etag = _etag(base, params.query_string(current_app.config["KB_PER_PAGE"]))
    not_modified = _not_modified(etag)
    if not_modified is not None:
        return not_modified
    data = search_data(params, base)
    if params.page > data["pages"]:
        raise PageOutOfRange(params.page, data["pages"], data["total_groups"])
    if not params.prefix:  # a keystroke of a search being typed is not a search (as on the page)
        note_search(current_app.extensions.get("kb_analytics"), params, data, "api")
    return _cache_headers(jsonify(data), etag)


# -- facet value search (issue 13: a facet's filter box and "Show more" ask the server) ----------

#: The parameters of a facet value search, besides the facet selections.
FACET_SEARCH_PARAMS = ("q", *FACETS, "prefix", "limit")
#: Most values one facet value search lists (the real corpus has about 140 services).
MAX_FACET_SEARCH_LIMIT = 1000


def facet_values_data(name: str, args: MultiDict) -> dict:
    """The values of facet ``name`` matching ``prefix`` with their counts for the search of
    ``args`` (see SearchEngine.facet_values), each with the ``toggle_url`` of the search page."""
    if name not in FACETS:
        raise UnknownFacet(f"no facet {name[:40]!r}; the facets are {', '.join(FACETS)}")
    refuse_unknown(args, FACET_SEARCH_PARAMS)
    prefix = _CONTROL_RE.sub(" ", _single(args, "prefix") or "").strip()
    if len(prefix) > MAX_FACET_VALUE_CHARS:
        raise BadParameter("prefix", f"prefix must be at most {MAX_FACET_VALUE_CHARS} characters")
    limit = _int(args, "limit", 100, MAX_FACET_SEARCH_LIMIT)
    # here ``prefix`` is the typed facet value, not the search's as-you-type flag
    search_args = [(k, v) for k, v in args.items(multi=True) if k in SEARCH_PARAMS and k != "prefix"]
    params = parse_search_args(MultiDict(search_args), current_app.config, strict=False)
    data = _run(engine().facet_values, name, params.q, params.selections(), prefix, limit,
                timeout=current_app.config.get("KB_SEARCH_TIMEOUT", SEARCH_TIMEOUT))
    for item in data["values"]:
        item["toggle_url"] = _url("/", params.toggled(name, item["value"]), current_app.config["KB_PER_PAGE"])
    return data


def _conditional(etag: str, produce):
    """A bodiless 304 when the client holds ``etag``, else the JSON of ``produce()`` with its
    validator and cache headers."""
    not_modified = _not_modified(etag)
    if not_modified is not None:
        return not_modified
    return _cache_headers(jsonify(produce()), etag)


@bp.get(f"{API_PREFIX}/facets/<name>")
@bp.get("/api/facets/<name>")
def api_facet_values(name: str):
    """A facet's values matching ``prefix`` (value or label), with disjunctive counts for a search."""
    return _conditional(_etag("facets", name, urlencode(sorted(request.args.items(multi=True)))),
                        lambda: facet_values_data(name, request.args))


@bp.get(f"{API_PREFIX}/articles/<path:article_id>")
@bp.get("/api/articles/<path:article_id>")
def api_article(article_id: str):
    """One whole article as structured data; placeholder values may be given (see kb.personalise)."""
    # the placeholder values shape the answer, so they are part of its validator
    return _conditional(_etag("article", article_id, urlencode(sorted(request.args.items(multi=True)))),
                        lambda: article_data(article_id, request.args))


@bp.get(f"{API_PREFIX}/articles/<path:article_id>/related")
@bp.get("/api/articles/<path:article_id>/related")
def api_related(article_id: str):
    """Up to 5 articles like this one: same service first, copies left out."""
    return jsonify({"id": article_id, "results": related_data(article_id)})


# -- suggestions (search as you type) ---------------------------------------------------------


@bp.get(f"{API_PREFIX}/suggest")
@bp.get("/api/suggest")
def api_suggest():
    """Article titles and error codes matching what is being typed (see kb.suggest)."""
    refuse_unknown(request.args, ("q",))
    q = " ".join(_query(request.args).split())
    return _conditional(_etag("suggest", q), lambda: _run(lambda: suggest(engine().generation(), q)))


@bp.get(f"{API_PREFIX}/openapi.json")
@bp.get("/api/openapi.json")
def api_openapi():
    """The OpenAPI 3 description of this API."""
    cfg = current_app.config
    return jsonify(openapi_document(max_page=cfg["KB_MAX_PAGE"], max_per_page=cfg["KB_MAX_PER_PAGE"],
                                    default_per_page=cfg["KB_PER_PAGE"], max_query_chars=MAX_QUERY_CHARS))


# -- replica health, for load balancers -------------------------------------------------------


class NotReady(ServiceUnavailable):
    """A 503 from /readyz while this replica is stopping: a balancer sends it nothing more."""

    error_code = "stopping"


#: A health answer is about this moment: no cache (nor a balancer's) may keep it.
_NO_STORE = {"Cache-Control": "no-store"}


@bp.get("/healthz")
def healthz():
    """The index being served: 200 only with a complete generation, with the articles' commit it
    was built from (``kb sync``), its age, any warnings (``warnings`` is always a list) and the
    last sync status (``sync``: None without ``kb sync``); 503 in the error shape otherwise."""
    eng = engine()
    info = _run(eng.info)
    gen = eng.generation()
    manifest = gen.manifest if gen.name == info["generation"] else {}
    commit = manifest.get("commit") if isinstance(manifest.get("commit"), dict) else {}
    return jsonify({"status": "ok", **info, "warnings": list(info.get("warnings", [])),
                    "commit": commit.get("sha"), "commit_time": commit.get("time"),
                    "age_seconds": _age_seconds(info.get("built_at")),
                    "sync": with_liveness(read_status(current_app.config["KB_INDEX"]))}), 200, _NO_STORE


@bp.get("/readyz")
def readyz():
    """Readiness: 200 once this replica can answer searches; 503 while it has no index to serve
    (starting, never built, damaged) and once it is stopping (finishing its last requests)."""
    if current_app.extensions.get("kb_stopping"):  # set by kb.worker on SIGTERM
        raise NotReady("this replica is stopping; it finishes the requests it has and takes no more")
    info = _run(engine().info)
    return jsonify({"status": "ready", "generation": info["generation"], "articles": info["articles"]}), 200, _NO_STORE


def _age_seconds(built_at: object) -> int | None:
    """Seconds since a manifest's ``built_at`` (None when it has none)."""
    try:
        return max(0, int(time.time() - calendar.timegm(time.strptime(str(built_at), "%Y-%m-%dT%H:%M:%SZ"))))
    except ValueError:
        return None
