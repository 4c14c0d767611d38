"""The OpenAPI 3.1 description of kb's JSON API, served at ``/api/v1/openapi.json``.

Limits come from the app's settings so the document never disagrees with the validation.
"""

from __future__ import annotations

from . import __version__
from .search import FACETS as FACET_NAMES

#: The version of the JSON's shape. 1.1: articles gained steps_detail, heading, questions,
#: topics, placeholders (and filled); /api/articles/{id}/related is new; steps is still a list
#: of strings.  1.2: facets type and cloud, a "(none)" value per facet, labels, facet_info,
#: /api/v1/facets/{name} (issue 13).
API_VERSION = "1.2"

_STR = {"type": "string"}
_NULLABLE_STR = {"type": ["string", "null"]}
_STR_LIST = {"type": "array", "items": _STR}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int, **texts: str) -> dict:
    text = {400: "A parameter is malformed (code `invalid_parameter`) or unknown (`unknown_parameter`); "
                 "`parameter` names it.",
            404: "No such article (`not_found`).", 405: "Only GET is allowed (`method_not_allowed`).",
            503: "No index has been built yet (`index_missing`) or it is damaged (`index_damaged`), or the "
                 "search ran past its deadline (`too_slow`, `parameter` is q).",
            **{int(k[1:]): v for k, v in texts.items()}}  # _404="..." overrides a text
    return {str(s): _json(_ref("Error"), text[s]) for s in statuses}


#: Headers of a cacheable answer (search, article).
_CACHE_HEADERS = {
    "ETag": {"description": "Weak validator: the index generation and the normalised request. Send it back "
                            "in If-None-Match to get a 304 while nothing changed.", "schema": _STR},
    "Cache-Control": {"description": "`public, no-cache` (revalidate each time) unless the server sets "
                                     "KB_CACHE_MAX_AGE.", "schema": _STR},
}
#: The conditional-request header of a cacheable answer.
_IF_NONE_MATCH = {"name": "If-None-Match", "in": "header", "required": False, "schema": _STR,
                  "description": "An ETag of an earlier answer (or several, comma-separated): a 304 "
                                 "without a body while it still holds."}
_NOT_MODIFIED = {"304": {"description": "Not Modified: the If-None-Match validator still holds; no body.",
                         "headers": _CACHE_HEADERS}}


def _ok(schema: dict, description: str) -> dict:
    return {**_json(schema, description), "headers": _CACHE_HEADERS}


def openapi_document(*, max_page: int, max_per_page: int, default_per_page: int, max_query_chars: int) -> dict:
    """The OpenAPI document for an app with these limits."""
    facet_value = {
        "type": "object",
        "required": ["value", "label", "count", "selected", "toggle_url"],
        "properties": {
            "value": {"type": "string", "description": "The raw value, as a filter parameter takes it; `(none)` "
                                                      "stands for the articles without a value."},
            "label": {"type": "string", "description": "How the value reads (from the facet labels file; the raw "
                                                      "value when it has no label)."},
            "count": {"type": "integer", "minimum": 0,
                      "description": "Results this search would have with the value selected "
                                     "(disjunctive: the facet's own selection is ignored)."},
            "selected": {"type": "boolean"},
            "toggle_url": {"type": "string", "description": "This search with the value toggled, on page 1."},
        },
    }
    schemas = {
        "Error": {
            "type": "object",
            "required": ["status", "error", "code", "message", "parameter"],
            "properties": {
                "status": {"type": "integer", "example": 400},
                "error": {"type": "string", "example": "Bad Request"},
                "code": {"type": "string", "example": "invalid_parameter",
                         "description": "Machine-readable: invalid_parameter, unknown_parameter, not_found, "
                                        "method_not_allowed, too_slow, index_missing, index_damaged, "
                                        "request_too_large, page_out_of_range, bad_request, internal_error, "
                                        "unavailable."},
                "message": {"type": "string", "example": f"per_page must be an integer between 1 and {max_per_page}"},
                "parameter": {**_NULLABLE_STR, "description": "The parameter at fault, if any."},
                # issue 13: a page past the end says where the end is
                "pages": {"type": "integer", "description": "With `page_out_of_range` only: the last page."},
                "total_groups": {"type": "integer",
                                 "description": "With `page_out_of_range` only: the results there are."},
            },
        },
        "FacetValue": facet_value,
        "Result": {
            "type": "object",
            "required": ["id", "path", "title", "description", "info", "service", "tags", "type", "score",
                         "snippet", "snippet_text", "highlights", "url", "api_url", "copies"],
            "properties": {
                "id": _STR,
                "path": {"type": "string", "description": "Source file, relative to the articles root."},
                "title": _STR,
                "description": _STR,
                "info": {"type": "string", "description": "The info-bubble text."},
                "service": _STR,
                "tags": _STR_LIST,
                "score": {"type": ["number", "null"], "description": "Relevance; null when browsing without a query."},
                "snippet": {"type": "string", "description": "HTML-escaped excerpt; matched words in <mark>."},
                "snippet_text": {"type": "string", "description": "The snippet as plain text (no markup, no "
                                                                  "entities)."},
                "highlights": {"type": "array",
                               "description": "[start, end] offsets of the matched words in snippet_text, in "
                                              "Unicode code points (not UTF-16 units), in order.",
                               "items": {"type": "array", "items": {"type": "integer", "minimum": 0},
                                         "minItems": 2, "maxItems": 2}},
                "url": {"type": "string", "description": "The article's HTML page."},
                "api_url": {"type": "string", "description": "The article's JSON."},
                "type": {"type": "string", "description": "The article's type (selfHelpType, lower case)."},
                "copies": {
                    "type": "array",
                    "description": "The same article (same title and text) in other folders or for other clouds; "
                                   "a result stands for all of them.",
                    "items": {"type": "object", "required": ["id", "path", "url"],
                              "properties": {"id": _STR, "path": _STR, "url": _STR}},
                },
                "missing": {**_STR_LIST, "description": "Searched words this article does not hold (queries of "
                                                        "two or more words)."},
            },
        },
        "SearchResponse": {
            "type": "object",
            "required": ["query", "total", "total_all_words", "total_groups", "page", "per_page", "pages",
                         "results", "facets", "filters", "suggestion", "warnings", "took_ms", "links"],
            "properties": {
                "query": _STR,
                "total": {"type": "integer", "minimum": 0, "description": "Articles that match (any word)."},
                "total_all_words": {"type": "integer", "minimum": 0,
                                    "description": "Articles holding every searched word; the rest match some."},
                "total_groups": {"type": "integer", "minimum": 0,
                                 "description": "Results once copies of one article are one: what pages list."},
                "page": {"type": "integer", "minimum": 1},
                "per_page": {"type": "integer", "minimum": 1},
                "pages": {"type": "integer", "minimum": 1},
                "results": {"type": "array", "items": _ref("Result")},
                "facets": {
                    "type": "object",
                    "description": "Per facet, its most frequent values (KB_FACET_LIMIT), the selected ones, then "
                                   "`(none)` when some result has no value.",
                    "required": list(FACET_NAMES),
                    "properties": {name: {"type": "array", "items": _ref("FacetValue")} for name in FACET_NAMES},
                },
                "facet_info": {
                    "type": "object",
                    "description": "Per facet, what its list in `facets` left out (added in API 1.2).",
                    "required": list(FACET_NAMES),
                    "properties": {name: _ref("FacetInfo") for name in FACET_NAMES},
                },
                "filters": {
                    "type": "array",
                    "items": {"type": "object", "required": ["facet", "value", "label", "remove_url"],
                              "properties": {"facet": _STR, "value": _STR, "label": _STR, "remove_url": _STR}},
                },
                "suggestion": {**_NULLABLE_STR, "description": "A corrected query (\"Did you mean\")."},
                "warnings": {"type": "array", "items": _STR,
                             "description": "How the query was read: what was left out (a wildcard matching too "
                                            "many words), a query of common words only, a service or tag "
                                            "value no article has, results past the last page a request may "
                                            "ask for."},
                "took_ms": {"type": "number"},
                "links": {
                    "type": "object",
                    "required": ["self", "html", "json", "first", "prev", "next", "clear_filters", "facet_values",
                                 "suggestion"],
                    "description": "`suggestion`: the \"Did you mean\" search with the filters kept (null without one).",
                    "properties": {**{k: _NULLABLE_STR for k in
                                      ("self", "html", "json", "first", "prev", "next", "clear_filters", "suggestion")},
                                   "facet_values": {"type": "string", "description": "The facet value search of "
                                                    "this search: replace {name} by a facet's name."}},
                },
            },
        },
        "FacetInfo": {
            "type": "object",
            "required": ["truncated", "other_values", "none_count"],
            "properties": {
                "truncated": {"type": "boolean", "description": "Some values with results were left out of the list."},
                "other_values": {"type": "integer", "minimum": 0,
                                 "description": "How many: ask /api/v1/facets/{name} for them."},
                "none_count": {"type": "integer", "minimum": 0,
                               "description": "Articles without a value (the `(none)` entry's count)."},
            },
        },
        "FacetValues": {
            "type": "object",
            "required": ["facet", "query", "prefix", "values", "total_values", "truncated", "took_ms"],
            "properties": {
                "facet": _STR, "query": _STR, "prefix": _STR,
                "values": {"type": "array", "items": _ref("FacetValue"),
                           "description": "Largest count first; `toggle_url`s lead to the search page."},
                "total_values": {"type": "integer", "minimum": 0, "description": "Values that matched in all."},
                "truncated": {"type": "boolean", "description": "More matched than `limit` allowed."},
                "took_ms": {"type": "number"},
            },
        },
        "Document": {"type": "object", "required": ["title", "url"], "properties": {"title": _STR, "url": _STR}},
        "Step": {
            "type": "object",
            "description": "A step as authored.",
            "required": ["text", "markdown", "links", "items"],
            "properties": {
                "text": {"type": "string", "description": "Its own plain text (sub-items apart)."},
                "markdown": {"type": "string", "description": "Its own markdown: links, code and emphasis kept."},
                "links": {"type": "array", "items": _ref("Document")},
                "items": {"type": "array", "items": _ref("Step"), "description": "Its sub-items, in order."},
                "line": {"type": ["integer", "null"],
                         "description": "The line of `markdown` (the article's) the step starts at; null for "
                                        "sub-items and steps of the issue description."},
            },
        },
        "Article": {
            "type": "object",
            "required": ["id", "path", "title", "description", "info", "issue", "steps", "documents", "body",
                         "markdown", "html", "properties", "article_id", "service", "resource", "tags",
                         "clouds", "type", "url", "links"],
            "properties": {
                "id": _STR, "path": _STR, "title": _STR, "description": _STR,
                "info": {"type": "string", "description": "The info-bubble text."},
                "issue": {"type": "string", "description": "The issue description."},
                "heading": {"type": "string", "description": "The article's first heading as written; "
                                                             "`title` is cleaned (no comment markers, "
                                                             "<Internal>, GUIDs or template text)."},
                "steps": {**_STR_LIST, "description": "Recommended steps, in order, as plain text (sub-items "
                                                      "joined): unchanged for existing clients; see steps_detail."},
                "steps_detail": {"type": "array", "items": _ref("Step"),
                                 "description": "The same steps as authored (added in API 1.1, one per entry of "
                                                "`steps`): markdown, links and nested sub-items."},
                "documents": {"type": "array", "items": _ref("Document")},
                "questions": {"type": "array", "description": "A questionnaire's questions, in form order "
                                                                "(from its JSON payload; added in API 1.1).",
                              "items": {"type": "object", "properties": {
                                  "label": _STR, "kind": _STR, "required": {"type": "boolean"},
                                  "options": _STR_LIST, "hints": _STR_LIST, "example": _STR, "info": _STR}}},
                "topics": {"type": "array", "description": "A support-topic page's topics (added in API 1.1).",
                           "items": {"type": "object", "properties": {
                               "title": _STR, "description": _STR, "category": _STR, "tags": _STR_LIST}}},
                "placeholders": {"type": "array", "description": "Values the article names that a request "
                                                                 "may fill (added in API 1.1).",
                                 "items": {"type": "object", "required": ["name", "label", "where"], "properties": {
                                     "name": {"type": "string", "description": "The query parameter that fills it."},
                                     "label": {"type": "string", "description": "How it reads unfilled: [vmname]."},
                                     "where": {**_STR_LIST, "description": "Fields it occurs in."}}}},
                "filled": {**_STR_LIST, "description": "Placeholders this response has filled (present only "
                                                       "when the request gave values)."},
                "body": {"type": "string", "description": "Plain text of the article body."},
                "markdown": _STR,
                "html": {"type": "string", "description": "The body rendered and sanitised (no scripts, "
                                                          "event handlers or javascript: URLs)."},
                "properties": {"type": "object", "additionalProperties": _STR,
                               "description": "Every attribute of the article's <properties> block."},
                "article_id": _STR, "service": _STR, "resource": _STR, "tags": _STR_LIST,
                "clouds": _STR_LIST, "type": _STR, "scenario": _STR, "hash": _STR, "url": _STR,
                "links": {"type": "object", "properties": {"html": _STR, "json": _STR}},
            },
        },
        "Insights": {
            "type": "object",
            "description": "The search insights of a period; the tables of the /insights page.",
            "required": ["period", "totals", "per_day", "top_queries", "zero_result_queries", "rarely_opened",
                         "most_opened", "unhelpful", "never_shown"],
            "properties": {
                "period": {"type": "object", "properties": {"since": _STR, "from": _STR, "until": _STR}},
                "totals": {"type": "object"},
                "per_day": {"type": "array", "items": {"type": "object"}},
                "top_queries": {"type": "array", "items": {"type": "object"}},
                "zero_result_queries": {"type": "array", "items": {"type": "object"},
                                        "description": "With the words the index does not know, the synonyms-file "
                                                       "lines that would map them, and the nearest articles."},
                "rarely_opened": {"type": "array", "items": {"type": "object"}},
                "most_opened": {"type": "array", "items": {"type": "object"}},
                "unhelpful": {"type": "array", "items": {"type": "object"}},
                "never_shown": {"type": ["object", "null"]},
            },
        },
        # issue 13: suggestions under the search box
        "Suggestions": {
            "type": "object",
            "required": ["query", "suggestions"],
            "properties": {
                "query": {"type": "string", "description": "What was typed, spaces collapsed."},
                "suggestions": {"type": "array", "description": "Error codes first (at most 5, the most "
                                "common first), then article titles (at most 8; those starting with what was "
                                "typed first).", "items": {
                    "type": "object", "required": ["kind", "text", "url"],
                    "properties": {
                        "kind": {"enum": ["code", "title"]},
                        "text": {"type": "string", "description": "The code as usually written (AADSTS50076) "
                                                                  "or the article's title."},
                        "url": {"type": "string", "description": "A code's search page, or a title's article page."},
                        "id": {"type": "string", "description": "Titles: the article id."},
                        "service": {"type": "string", "description": "Titles: the article's service."},
                        "count": {"type": "integer", "description": "Codes: articles naming it."}}}},
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "generation", "articles", "warnings"],
            "properties": {"status": {"const": "ok"}, "generation": _STR,
                           "articles": {"type": "integer"}, "built_at": _NULLABLE_STR,
                           "warnings": {"type": "array",
                                        "description": "Problems with the served index, e.g. an outdated format."},
                           # -- replica health (kb sync) --
                           "commit": {**_NULLABLE_STR, "description": "The articles' git commit the served "
                                      "generation was built from (kb sync); null when not built from git."},
                           "commit_time": {**_NULLABLE_STR, "description": "That commit's time (ISO 8601)."},
                           "age_seconds": {"type": ["integer", "null"],
                                           "description": "Seconds since the served generation was built."},
                           "sync": {"oneOf": [{"type": "null"}, _ref("SyncStatus")],
                                    "description": "The last cycle of kb sync for this index; null without it."}},
        },
        "SyncStatus": {
            "type": "object",
            "description": "What kb sync wrote after its last cycle (<index>.sync.json).",
            "properties": {"ok": {"type": "boolean", "description": "Whether the last cycle fetched and indexed."},
                           "error": {**_NULLABLE_STR, "description": "Why the last cycle failed (null: it did not)."},
                           "last_attempt": _STR, "last_success": _NULLABLE_STR,
                           "last_error": {"type": ["object", "null"]},
                           "url": _STR, "branch": _STR,
                           "commit": {"type": ["object", "null"], "description": "The fetched commit: sha, time."},
                           "served": {**_NULLABLE_STR, "description": "The commit of the served generation."},
                           "running": {"type": "boolean", "description": "Whether that kb sync process is alive."},
                           "stale": {"type": "boolean", "description": "Its last cycle began more than three "
                                     "intervals and a minute ago: the sync has stopped or hangs."}},
        },
        "Ready": {
            "type": "object",
            "required": ["status", "generation", "articles"],
            "properties": {"status": {"const": "ready"}, "generation": _STR, "articles": {"type": "integer"}},
        },
    }

    def facet_param(name: str, what: str) -> dict:
        return {"name": name, "in": "query", "style": "form", "explode": True,
                "description": f"Only articles with this {what} (lower-cased); `(none)`: those without one. "
                               "Repeat for OR; different facets combine with AND.",
                "schema": {"type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": 200}}}

    search_params = [
        {"name": "q", "in": "query", "description": "The symptom or error to look for; empty browses everything. "
                                                      "Whoosh syntax (field:value, \"phrase\", -word) is accepted "
                                                      "and broken syntax is searched as plain words.",
         "schema": {"type": "string", "maxLength": max_query_chars}},
        facet_param("service", "service"),
        facet_param("tag", "resource tag"),
        facet_param("type", "article type (selfHelpType)"),
        facet_param("cloud", "cloud (cloudEnvironments: public, fairfax, mooncake...)"),
        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": max_page, "default": 1}},
        {"name": "per_page", "in": "query",
         "schema": {"type": "integer", "minimum": 1, "maximum": max_per_page, "default": default_per_page}},
        {"name": "prefix", "in": "query", "schema": {"type": "integer", "enum": [0, 1], "default": 0},
         "description": "1: search as you type; the last word of q is the start of a word and is searched as "
                        "the most common words it begins (within the wildcard budget; one letter: none yet). "
                        "Such keystroke searches are not recorded for the search insights: send the "
                        "search the user settles on without it."},
        _IF_NONE_MATCH,
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kb: support knowledge base search",
            "version": __version__,
            # the shape of the JSON: additions bump the minor number, a changed field the major
            "x-api-version": API_VERSION,
            "description": "Search support troubleshooting articles by symptom, narrowed by service and resource "
                           "tag facets. Unknown or repeated parameters are refused with a 400 and an Error "
                           "naming the parameter. Every HTML page has a JSON twin here. Every /api/v1/ path is "
                           "also served without the version (/api/search, /api/articles/{id}, /api/openapi.json) "
                           "as an alias answering the same. JSON and HTML are compressed for clients that send "
                           "Accept-Encoding (gzip, br, zstd). CORS, when the server enables it (KB_CORS_ORIGINS), "
                           "covers the /api/ paths.",
        },
        "paths": {
            "/api/v1/search": {"get": {
                "operationId": "search", "summary": "Search articles (alias: /api/search)", "parameters": search_params,
                "responses": {"200": _ok(_ref("SearchResponse"), "One page of results with facet counts."),
                              **_NOT_MODIFIED,
                              **_errors(400, 405, 503, _400="A parameter is malformed (code `invalid_parameter`) "
                                        "or unknown (`unknown_parameter`), `parameter` naming it; or `page` is past "
                                        "the last page (`page_out_of_range`, with `pages` and `total_groups`).")},
            }},
            "/api/v1/suggest": {"get": {
                "operationId": "suggest", "summary": "Suggestions for what is being typed (alias: /api/suggest)",
                "description": "Error codes of the index starting with the last word typed, and article titles "
                               "whose words start with each typed word; a few milliseconds.",
                "parameters": [{"name": "q", "in": "query", "schema": {"type": "string", "maxLength": max_query_chars},
                                "description": "What has been typed so far."}, _IF_NONE_MATCH],
                "responses": {"200": _ok(_ref("Suggestions"), "The suggestions, codes first."), **_NOT_MODIFIED,
                              **_errors(400, 405, 503)},
            }},
            "/api/v1/facets/{name}": {"get": {
                "operationId": "facetValues", "summary": "Search a facet's values (alias: /api/facets/{name})",
                "description": "The values of one facet whose raw value or label contains `prefix` (any case; "
                               "`key vault` finds microsoft.keyvault), with their disjunctive counts for the "
                               "search given by q and the facet parameters; an empty prefix lists them all "
                               "(what \"Show more\" shows). Added in API 1.2.",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "enum": list(FACET_NAMES)}},
                    {"name": "prefix", "in": "query", "schema": {"type": "string", "maxLength": 200},
                     "description": "What was typed in the facet's filter box."},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000,
                                                                "default": 100}},
                    *(p for p in search_params if p["name"] not in ("page", "per_page", "prefix")),
                ],
                "responses": {"200": _ok(_ref("FacetValues"), "The matching values."), **_NOT_MODIFIED,
                              **_errors(400, 404, 405, 503, _404="No such facet (`not_found`).")},
            }},
            "/api/v1/articles/{id}": {"get": {
                "operationId": "getArticle", "summary": "One whole article (alias: /api/articles/{id})",
                "description": "Any of the article's `placeholders` may be given a value by its name "
                               "(`?vmname=web01`): the article comes back with it filled in (never stored).",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": _STR,
                                "description": "The article id, as in a search result."},
                               {"name": "resourceId", "in": "query", "required": False,
                                "schema": {"type": "string", "maxLength": 1000},
                                "description": "An Azure resource ID: fills the name, resource group and "
                                               "subscription placeholders it implies and turns portal links "
                                               "into portal URLs for that resource."}, _IF_NONE_MATCH],
                "responses": {"200": _ok(_ref("Article"), "The article."), **_NOT_MODIFIED,
                              **_errors(400, 404, 405, 503)},
            }},
            "/api/v1/articles/{id}/related": {"get": {
                "operationId": "getRelatedArticles",
                "summary": "Up to 5 related articles (alias: /api/articles/{id}/related)",
                "description": "Articles about the same problem, by kb's own ranking of this article's title "
                               "and description words: the same service first; the article itself and its "
                               "copies are never listed (added in API 1.1).",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": _STR,
                                "description": "The article id, as in a search result."}],
                "responses": {"200": _json({"type": "object", "required": ["id", "results"],
                                            "properties": {"id": _STR, "results": {"type": "array", "maxItems": 5,
                                                                                   "items": _ref("Result")}}},
                                           "The related articles, best first."),
                              **_errors(404, 405, 503)},
            }},
            "/api/v1/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document",
                "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
            }},
            "/api/v1/insights": {"get": {
                "operationId": "insights", "summary": "Search insights for authors (needs KB_INSIGHTS_TOKEN)",
                "security": [{"token": []}],
                "parameters": [{"name": "since", "in": "query", "description": "The period: days or hours (7d, 24h).",
                                "schema": {"type": "string", "pattern": "^[0-9]{1,5}[dh]$", "default": "7d"}}],
                "responses": {"200": _json(_ref("Insights"), "The insights of the period."),
                              **_errors(400, 401, 404, 405, 503,
                                        _401="The token is missing or wrong.",
                                        _404="Insights are off: KB_INSIGHTS_TOKEN is not set.")},
            }},
            "/healthz": {"get": {
                "operationId": "health", "summary": "Liveness and the index generation being served",
                "responses": {"200": _json(_ref("Health"), "Serving a complete generation."),
                              **_errors(503, _503="No complete generation to serve (none built, or damaged).")},
            }},
            "/readyz": {"get": {
                "operationId": "ready", "summary": "Readiness for a load balancer: send searches or not",
                "responses": {"200": _json(_ref("Ready"), "Ready for searches."),
                              **_errors(503, _503="No index to serve yet (`index_missing`), a damaged one (`index_damaged`), "
                                                  "or the replica is stopping (`stopping`).")},
            }},
        },
        "components": {"schemas": schemas, "securitySchemes": {
            "token": {"type": "http", "scheme": "bearer", "description": "KB_INSIGHTS_TOKEN (also as the "
                      "password of HTTP Basic authentication)."}}},
    }
