"""The web app: the app factory, the HTML pages, security headers and error pages.

The HTML views render the same dicts the JSON API returns (see :mod:`kb.api`); templates and
static files load from the installed ``kb.templates`` and ``kb.static`` packages.
"""

from __future__ import annotations

from dataclasses import replace
from importlib import metadata, resources
from pathlib import Path
from urllib.parse import quote_plus, urlsplit

import nh3
from flask import Blueprint, Flask, abort, current_app, jsonify, render_template, request
from flask_compress import Compress
from flask_cors import CORS
from markupsafe import Markup, escape
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, InternalServerError

from . import __version__, analytics, config as kbconfig
from .api import BadParameter, SearchParams, article_data, engine as search_engine, error_code, parse_search_args
from .api import FACETS, facet_values_data, related_data, search_data
from .api import bp as api_bp
from .insights_web import bp as insights_bp
from .insights_web import note_open, recorder
from .landing import landing
from .suggest import prepare as prepare_suggestions
from .query import MAX_QUERY_CHARS
from .render import render_step, steps_as_text
from .properties import split_list
from .search import NONE, SearchEngine

#: Every response carries these.  The CSP allows no inline script or style at all, so article
#: HTML that slipped past the sanitiser still could not run; pages use static files only.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        # Images only from kb itself: an article's <img src="https://..."> could otherwise tell a
        # third party who reads which article, and when.
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # Same-origin pages still get the full referrer: the article page uses it to link back to
    # the search that led there.
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}

FACET_LABELS = {"service": "Service", "tag": "Resource tag", "type": "Article type", "cloud": "Cloud"}
#: How a result card names an article's type (the ``selfHelpType`` property); others show none.
TYPE_LABELS = {
    "generic": "Troubleshooting", "resource": "Troubleshooting", "tsg_content": "Troubleshooting guide",
    "diagnostics": "Diagnostic", "rca": "Root cause analysis", "problemscopingquestions": "Questionnaire",
    "tsg_questions": "Questionnaire", "supporttopicdescription": "Support topics",
    "advisorrecommendationmetadata": "Advisor recommendation", "servicehealthinsights": "Health event",
    "tsg_description": "Guide overview", "apollo": "Solution", "diagnoseandsolve": "Diagnose and solve",
}
SAFE_SCHEMES = {"http", "https", "mailto"}
#: What /static/ serves: the stylesheet and the script, not the package's other files.
STATIC_SUFFIXES = (".css", ".js")

pages = Blueprint("pages", __name__)


def create_app(config: dict | None = None) -> Flask:
    """Create the kb web app; ``config`` overrides the settings of :mod:`kb.config`."""
    app = Flask(
        __name__,
        template_folder=package_dir("kb.templates"),
        static_folder=package_dir("kb.static"),
        static_url_path="/static",
    )
    # Flask's own view serves every file of the folder (``__init__.py`` too); this one only assets.
    app.view_functions["static"] = _static_asset
    app.config.update(kbconfig.defaults())
    app.config.update(config or {})
    app.json.sort_keys = False  # keep the documented field order
    # One engine per app: it keeps one open searcher and moves to a new index generation by itself.
    app.extensions["kb_engine"] = SearchEngine(
        app.config["KB_INDEX"], result_cache=int(float(app.config["KB_RESULT_CACHE_MB"]) * 2**20),
        postings_cache=int(float(app.config["KB_POSTINGS_CACHE_MB"]) * 2**20))
    # Searches, opened results and votes for the insights (None when KB_ANALYTICS=0); its
    # writer thread starts with the first event, so after gunicorn's fork.
    app.extensions["kb_analytics"] = analytics.recorder_for(app.config, app.logger)
    app.register_blueprint(api_bp)
    app.register_blueprint(insights_bp)
    app.register_blueprint(pages)
    app.register_error_handler(HTTPException, _http_error)
    app.after_request(_security_headers)
    _compress(app)
    _cors(app)
    app.jinja_env.filters["snippet"] = snippet_html
    app.jinja_env.filters["safe_url"] = safe_url
    app.jinja_env.filters["wbr"] = break_after_dots
    app.jinja_env.filters["steps_text"] = steps_as_text
    app.jinja_env.filters["step_html"] = render_step
    app.jinja_env.filters["facet_label"] = _facet_label
    app.jinja_env.globals.update(version=__version__, facet_labels=FACET_LABELS, type_labels=TYPE_LABELS, max_query_chars=MAX_QUERY_CHARS)
    return app


def _compress(app: Flask) -> None:
    """Compress JSON and HTML for clients that accept it (gzip, or br/zstd when preferred),
    with ``Vary: Accept-Encoding``; bodies under 500 bytes and errors stay as they are."""
    app.config.setdefault("COMPRESS_MIMETYPES", ["application/json", "text/html"])
    app.config.setdefault("COMPRESS_MIN_SIZE", 500)
    Compress(app)


def _cors(app: Flask) -> None:
    """CORS for the JSON API only, and only for the origins of KB_CORS_ORIGINS (off when empty).

    Preflight OPTIONS requests are answered; ETag is exposed so a page can revalidate.
    """
    origins = [o.strip() for o in str(app.config.get("KB_CORS_ORIGINS") or "").split(",") if o.strip()]
    if not origins:
        return
    anyone = "*" in origins
    CORS(app, resources={r"/api/*": {"origins": "*" if anyone else origins}}, send_wildcard=anyone,
         methods=["GET", "HEAD", "OPTIONS"], expose_headers=["ETag"], max_age=600, supports_credentials=False)


def package_dir(package: str) -> str:
    """The directory of one of kb's installed data packages (``kb.templates``, ``kb.static``).

    ``kb.templates`` exists only in an installed kb (pyproject maps the top-level templates/ to
    it).  When a source checkout's ``kb/`` shadows the installed package (``python -m pytest``
    from the repository after ``pip install .``), import cannot find it, so ask the installed
    distribution where its files are.
    """
    try:
        return str(resources.files(package))
    except ModuleNotFoundError:
        pass
    # A build can leave kb.egg-info in the checkout too, so look at every kb distribution found.
    for dist in metadata.distributions(name="kb"):
        path = Path(str(dist.locate_file(package.replace(".", "/"))))
        if path.is_dir():
            return str(path)
    raise RuntimeError(f"{package} not found: install kb (pip install -e .) to serve it")


# -- pages ------------------------------------------------------------------------------------


def _facet_label(value: str, facet: str = "service") -> str:
    """The label of a facet value as the facets show it (kb/facet_labels.txt), for badges and
    headings; each part of a composite value ("a,b") labelled, the raw value where none is set."""
    labels = current_app.extensions["kb_engine"].labels
    return ", ".join(labels.label(facet, part) for part in split_list(str(value))) or str(value)


def _static_asset(filename: str):
    """The CSS and JavaScript of kb.static; anything else there (``__init__.py``) is a 404."""
    if "/" in filename or not filename.endswith(STATIC_SUFFIXES):
        abort(404)
    return current_app.send_static_file(filename)


@pages.get("/")
def search_page():
    """The search page: query, facets, results; state in the query string."""
    params, notes = _page_params(request.args)
    data = search_data(params, "/")
    if params.page > data["pages"]:
        # past the last page: show the last one and say so (the JSON API answers 400)
        notes.append(f"There is no page {params.page}; the last page, {data['pages']}, is shown.")
        params = replace(params, page=data["pages"])
        data = search_data(params, "/")
    # The page's script marks the searches it makes as the agent types (and Enter on a search it
    # has already had recorded once the typing settled) "X-KB-Record: no": one search, one event.
    if request.headers.get("X-KB-Record") != "no":
        analytics.note_search(recorder(), params, data, "page")
    if recorder() is not None:
        # the result link carries the query and position, so an opened result is recorded
        # without a script: /articles/ID?q=...&pos=N
        first = (data["page"] - 1) * data["per_page"]
        for n, result in enumerate(data["results"], first + 1):
            result["open_url"] = f"{result['url']}?q={quote_plus(params.q)}&pos={n}"
    else:
        for result in data["results"]:  # the article page's search box still gets the query
            result["open_url"] = f"{result['url']}?q={quote_plus(params.q)}" if params.q else None
    if data["total"] == 0 and data["filters"]:
        # "Drop a filter" help: how many results the query has with no filters at all.
        unfiltered = search_data(params.unfiltered(), "/")
        data["unfiltered_total"] = unfiltered["total"]
    _expand_facet(data, params, request.args.get("more", ""))
    prepare_suggestions(search_engine().generation())  # for the keystrokes to come
    welcome = None
    if not params.q and not data["filters"] and params.page == 1:
        welcome = landing(search_engine().generation(), current_app.config)
    return render_template("search.html", data=data, params=params, page_links=_page_links(data),
                           notes=notes, welcome=welcome)


#: Most values a facet lists when it is shown whole (the real corpus has about 140 services).
MORE_LIMIT = 1000


def _expand_facet(data: dict, params: SearchParams, more: str) -> None:
    """Without JavaScript "Show more" is a link, ``?…&more=service``: that facet is listed whole
    (its values as the facet value search gives them, ``(none)`` kept).  Each cut list gets its
    ``more_url``."""
    base = params.query_string(current_app.config["KB_PER_PAGE"])
    for name, info in data.get("facet_info", {}).items():
        if info.get("truncated"):
            info["more_url"] = f"/?{base}&more={name}" if base else f"/?more={name}"
    if more not in FACETS or not data["facet_info"].get(more, {}).get("truncated"):
        return
    args = MultiDict([("q", params.q), *((name, v) for name in FACETS for v in params.selected(name)),
                      ("limit", str(MORE_LIMIT))])
    whole = facet_values_data(more, args)
    none = [v for v in data["facets"][more] if v["value"] == NONE]
    listed = {v["value"] for v in whole["values"]}
    data["facets"][more] = whole["values"] + [v for v in none if v["value"] not in listed]
    data["facet_info"][more].update(truncated=whole["truncated"], other_values=max(0, whole["total_values"] - len(listed)))
    if not whole["truncated"]:
        data["facet_info"][more].pop("more_url", None)


def _page_params(args) -> tuple[SearchParams, list[str]]:
    """The page's search parameters; a bad one is left out with a note (the HTML page never
    answers 400 and drops the query: the JSON API does).  A ``q`` too long is cut."""
    args = MultiDict(args)
    notes: list[str] = []
    for _ in range(len(args) + 1):
        try:
            return parse_search_args(args, current_app.config, strict=False), notes
        except BadParameter as exc:
            name = exc.parameter
            if name == "q":
                given = args.getlist("q") or [""]
                args.setlist("q", [given[0][:MAX_QUERY_CHARS]])
                notes.append("Only the first q was searched." if len(given) > 1 else
                             f"The search was cut to its first {MAX_QUERY_CHARS} characters.")
            else:
                args.poplist(name)
                notes.append(f"{exc.description}; it was left out.")
    return SearchParams(per_page=current_app.config["KB_PER_PAGE"]), notes


@pages.get("/articles/<path:article_id>")
def article_page(article_id: str):
    """One article, rendered from the same dict as /api/articles/<id>."""
    article = article_data(article_id, request.args)
    note_open(article["id"])
    return render_template("article.html", article=article, back_url=_back_url(),
                           feedback=recorder() is not None, thanks=request.args.get("feedback") == "thanks",
                           from_query=request.args.get("q", "")[:MAX_QUERY_CHARS], related=related_data(article["id"]))


def _back_url() -> str:
    """The search results that led here (same-origin referrer), else the search home."""
    ref = request.referrer
    if ref:
        try:
            parts = urlsplit(ref)
        except ValueError:  # a malformed header ("http://[::1") is no referrer
            return "/"
        if parts.netloc == request.host and parts.path == "/":
            return "/?" + parts.query if parts.query else "/"
    return "/"


def _page_links(data: dict) -> list[dict]:
    """Numbered pagination: first, last and a window around the current page, gaps as None."""
    last, cur = data["pages"], data["page"]
    wanted = sorted({1, last, *range(max(1, cur - 2), min(last, cur + 2) + 1)})
    out: list[dict] = []
    prev = 0
    self_url = data["links"]["first"]
    for n in wanted:
        if n - prev > 1:
            out.append({"gap": True})
        out.append({"number": n, "current": n == cur, "url": _with_page(self_url, n)})
        prev = n
    return out


def _with_page(first_url: str, page: int) -> str:
    if page == 1:
        return first_url
    sep = "&" if "?" in first_url else "?"
    return f"{first_url}{sep}page={page}"


# -- filters ----------------------------------------------------------------------------------


def snippet_html(snippet: str) -> Markup:
    """A result snippet as markup: the engine escapes it; re-sanitising keeps only ``<mark>``."""
    return Markup(nh3.clean(snippet or "", tags={"mark"}, attributes={"mark": {"class"}}))


def break_after_dots(value: str) -> Markup:
    """Escaped ``value`` with line-break opportunities after dots (microsoft.<wbr>recoveryservices)."""
    return Markup(str(escape(value)).replace(".", ".<wbr>"))


def safe_url(url: str) -> str | None:
    """``url`` if a browser may follow it (http, https, mailto or relative), else None."""
    # Browsers ignore control characters and whitespace inside a scheme ("java\tscript:").
    cleaned = "".join(ch for ch in str(url or "") if ch > " ")
    if not cleaned:
        return None
    try:
        scheme = urlsplit(cleaned).scheme.lower()
    except ValueError:
        return None
    return url if not scheme or scheme in SAFE_SCHEMES else None


# -- errors and headers -----------------------------------------------------------------------


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz", "/readyz")


def _http_error(exc: HTTPException):
    """One error shape for the API, a friendly page elsewhere; never a traceback."""
    status = exc.code or 500
    if isinstance(exc, InternalServerError):
        message = "Something went wrong on our side. Please try again."
        if exc.original_exception is not None:
            current_app.logger.error("unhandled error on %s", request.path, exc_info=exc.original_exception)
    else:
        message = exc.description or exc.name
    parameter = getattr(exc, "parameter", None)
    headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "www-authenticate")}
    headers["Cache-Control"] = "no-store"  # an error is never reused: the next try may succeed
    if _wants_json():
        body = {"status": status, "error": exc.name, "code": error_code(exc, status), "message": message,
                "parameter": parameter, **getattr(exc, "extra", {})}
        return jsonify(body), status, headers
    return render_template("error.html", status=status, title=exc.name, message=message), status, headers


def _security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if "Location" in response.headers:
        response.headers["Location"] = relative_location(response.headers["Location"])
    return response


def relative_location(location: str) -> str:
    """``location`` as a path on this site: redirects never name a host.

    Werkzeug builds the URL of its redirects (``//api//search`` -> ``/api/search``) from the
    request's Host header, which the client chose; the path alone is all a redirect here needs.
    A single leading slash keeps it from being read as ``//other-host/...``.
    """
    try:
        parts = urlsplit(location)
    except ValueError:
        return "/"
    path = "/" + parts.path.lstrip("/\\")
    return f"{path}?{parts.query}" if parts.query else path

