"""The OpenAPI 3.1 description of kb's JSON API, served at ``/api/openapi.json``.

Limits come from the app's settings so the document never disagrees with the validation.
"""

from __future__ import annotations

from . import __version__

#: The version of the JSON's shape. 1.1: articles gained steps_detail, heading, questions,
#: topics, placeholders (and filled); /api/articles/{id}/related is new; steps is still a list
#: of strings.
API_VERSION = "1.1"

_STR = {"type": "string"}
_NULLABLE_STR = {"type": ["string", "null"]}
_STR_LIST = {"type": "array", "items": _STR}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict:
    text = {400: "A parameter is malformed or unknown; `parameter` names it.",
            404: "No such article.", 405: "Only GET is allowed.",
            503: "No index has been built yet, or the search ran past its deadline (`parameter` is q)."}
    return {str(s): _json(_ref("Error"), text[s]) for s in statuses}


def openapi_document(*, max_page: int, max_per_page: int, default_per_page: int, max_query_chars: int) -> dict:
    """The OpenAPI document for an app with these limits."""
    facet_value = {
        "type": "object",
        "required": ["value", "count", "selected", "toggle_url"],
        "properties": {
            "value": _STR,
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
            "required": ["status", "error", "message", "parameter"],
            "properties": {
                "status": {"type": "integer", "example": 400},
                "error": {"type": "string", "example": "Bad Request"},
                "message": {"type": "string", "example": f"per_page must be an integer between 1 and {max_per_page}"},
                "parameter": {**_NULLABLE_STR, "description": "The parameter at fault, if any."},
            },
        },
        "FacetValue": facet_value,
        "Result": {
            "type": "object",
            "required": ["id", "path", "title", "description", "info", "service", "tags", "type", "score",
                         "snippet", "url", "api_url", "copies"],
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
                    "required": ["service", "tag"],
                    "properties": {"service": {"type": "array", "items": _ref("FacetValue")},
                                   "tag": {"type": "array", "items": _ref("FacetValue")}},
                },
                "filters": {
                    "type": "array",
                    "items": {"type": "object", "required": ["facet", "value", "remove_url"],
                              "properties": {"facet": _STR, "value": _STR, "remove_url": _STR}},
                },
                "suggestion": {**_NULLABLE_STR, "description": "A corrected query (\"Did you mean\")."},
                "warnings": {"type": "array", "items": _STR,
                             "description": "How the query was read: what was left out (a wildcard matching too "
                                            "many words), a query of common words only."},
                "took_ms": {"type": "number"},
                "links": {
                    "type": "object",
                    "required": ["self", "html", "json", "first", "prev", "next", "clear_filters"],
                    "properties": {k: _NULLABLE_STR for k in
                                   ("self", "html", "json", "first", "prev", "next", "clear_filters")},
                },
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
        "Health": {
            "type": "object",
            "required": ["status", "generation", "articles", "warnings"],
            "properties": {"status": {"const": "ok"}, "generation": _STR,
                           "articles": {"type": "integer"}, "built_at": _NULLABLE_STR,
                           "warnings": {"type": "array",
                                        "description": "Problems with the served index, e.g. an outdated format."}},
        },
    }

    def facet_param(name: str, what: str) -> dict:
        return {"name": name, "in": "query", "style": "form", "explode": True,
                "description": f"Only articles with this {what} (lower-cased). Repeat for OR; different "
                               "facets combine with AND.",
                "schema": {"type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": 200}}}

    search_params = [
        {"name": "q", "in": "query", "description": "The symptom or error to look for; empty browses everything. "
                                                      "Whoosh syntax (field:value, \"phrase\", -word) is accepted "
                                                      "and broken syntax is searched as plain words.",
         "schema": {"type": "string", "maxLength": max_query_chars}},
        facet_param("service", "service"),
        facet_param("tag", "resource tag"),
        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": max_page, "default": 1}},
        {"name": "per_page", "in": "query",
         "schema": {"type": "integer", "minimum": 1, "maximum": max_per_page, "default": default_per_page}},
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
                           "naming the parameter. Every HTML page has a JSON twin here.",
        },
        "paths": {
            "/api/search": {"get": {
                "operationId": "search", "summary": "Search articles", "parameters": search_params,
                "responses": {"200": _json(_ref("SearchResponse"), "One page of results with facet counts."),
                              **_errors(400, 405, 503)},
            }},
            "/api/articles/{id}": {"get": {
                "operationId": "getArticle", "summary": "One whole article",
                "description": "Any of the article's `placeholders` may be given a value by its name "
                               "(`?vmname=web01`): the article comes back with it filled in (never stored).",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": _STR,
                                "description": "The article id, as in a search result."},
                               {"name": "resourceId", "in": "query", "required": False,
                                "schema": {"type": "string", "maxLength": 1000},
                                "description": "An Azure resource ID: fills the name, resource group and "
                                               "subscription placeholders it implies and turns portal links "
                                               "into portal URLs for that resource."}],
                "responses": {"200": _json(_ref("Article"), "The article."), **_errors(400, 404, 405, 503)},
            }},
            "/api/articles/{id}/related": {"get": {
                "operationId": "getRelatedArticles", "summary": "Up to 5 related articles",
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
            "/api/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document",
                "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
            }},
            "/healthz": {"get": {
                "operationId": "health", "summary": "Liveness and the index generation being served",
                "responses": {"200": _json(_ref("Health"), "Serving."), **_errors(503)},
            }},
        },
        "components": {"schemas": schemas},
    }
