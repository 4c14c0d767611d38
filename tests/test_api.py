"""The JSON API: the search contract, disjunctive facets, articles, OpenAPI and bad input."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from kb.cli import cli
from kb.config import MAX_PAGE, MAX_PER_PAGE
from kb.index import build
from kb.query import MAX_QUERY_CHARS
from kb.web import SECURITY_HEADERS, create_app

RESULT_KEYS = {"id", "path", "title", "description", "service", "tags", "score", "snippet", "url"}


def search(client, **params) -> dict:
    res = client.get("/api/search", query_string=params)
    assert res.status_code == 200, res.get_json()
    return res.get_json()


def all_ids(client, **params) -> set[str]:
    data = search(client, per_page=MAX_PER_PAGE, **params)
    assert data["total"] <= MAX_PER_PAGE, "the sample is small enough for one page"
    return {r["id"] for r in data["results"]}


# -- the search contract ----------------------------------------------------------------------


def test_search_contract(client):
    data = search(client, q="vm not starting", per_page=5)
    assert {"query", "total", "page", "per_page", "results", "facets", "took_ms"} <= data.keys()
    assert data["query"] == "vm not starting"
    assert (data["page"], data["per_page"]) == (1, 5)
    assert data["total"] > 0 and 0 < len(data["results"]) <= 5
    assert isinstance(data["took_ms"], (int, float)) and data["took_ms"] >= 0
    for r in data["results"]:
        assert RESULT_KEYS <= r.keys()
        assert isinstance(r["tags"], list) and isinstance(r["score"], (int, float))
        assert r["url"] == f"/articles/{r['id']}" and r["api_url"] == f"/api/v1/articles/{r['id']}"
    scores = [r["score"] for r in data["results"]]
    assert scores == sorted(scores, reverse=True)
    assert set(data["facets"]) == {"service", "tag", "type", "cloud"}
    for values in data["facets"].values():
        for v in values:
            assert {"value", "count"} <= v.keys() and v["value"] and v["count"] >= 0


def test_empty_query_browses_everything_with_facets(client, app):
    data = search(client)
    assert data["total"] == app.extensions["kb_engine"].info()["articles"]
    assert data["facets"]["service"] and data["facets"]["tag"]
    assert all(r["score"] is None for r in data["results"])


def test_snippet_marks_matched_words(client):
    data = search(client, q="remote desktop")
    assert any("<mark" in r["snippet"] for r in data["results"])


@pytest.mark.parametrize("q", ["", "connect", "error", "vm windows"])
def test_every_facet_count_equals_the_filtered_total(client, q):
    data = search(client, q=q)
    for name in ("service", "tag"):
        for v in data["facets"][name]:
            assert search(client, q=q, **{name: v["value"]})["total"] == v["count"], (name, v)


def test_counts_are_disjunctive_while_a_value_is_selected(client):
    first = search(client)["facets"]["service"]
    chosen = first[0]["value"]
    data = search(client, service=chosen)
    # the service facet still counts every service, so switching or adding one is informed
    assert [(v["value"], v["count"]) for v in data["facets"]["service"]] == [(v["value"], v["count"]) for v in first]
    assert [v["value"] for v in data["facets"]["service"] if v["selected"]] == [chosen]
    # the tag facet counts within the selected service
    for v in data["facets"]["tag"]:
        assert search(client, service=chosen, tag=v["value"])["total"] == v["count"]
    # and the service counts within a selected tag
    tag = data["facets"]["tag"][0]["value"]
    both = search(client, service=chosen, tag=tag)
    for v in both["facets"]["service"]:
        assert search(client, tag=tag, service=v["value"])["total"] == v["count"]


def test_or_within_a_facet_and_across_facets(client):
    services = [v["value"] for v in search(client)["facets"]["service"][:2]]
    tags = [v["value"] for v in search(client)["facets"]["tag"][:2]]
    by_service = [all_ids(client, service=s) for s in services]
    by_tag = [all_ids(client, tag=t) for t in tags]
    assert all_ids(client, service=services) == by_service[0] | by_service[1]
    assert all_ids(client, tag=tags) == by_tag[0] | by_tag[1]
    assert all_ids(client, service=services, tag=tags) == (by_service[0] | by_service[1]) & (by_tag[0] | by_tag[1])
    assert all_ids(client, service=services[0], tag=tags[0]) == by_service[0] & by_tag[0]


def test_facet_values_are_case_insensitive(client):
    value = search(client)["facets"]["service"][0]["value"]
    assert search(client, service=value.upper())["total"] == search(client, service=value)["total"]


def test_pages_partition_the_results(client):
    everything = search(client, per_page=MAX_PER_PAGE)
    seen: list[str] = []
    page = 1
    while True:
        data = search(client, per_page=7, page=page)
        assert data["total"] == everything["total"]
        seen += [r["id"] for r in data["results"]]
        if data["links"]["next"] is None:
            break
        assert data["links"]["next"] == f"/api/search?per_page=7&page={page + 1}"
        page += 1
    assert page == everything["total"] // 7 + (1 if everything["total"] % 7 else 0) == data["pages"]
    assert seen == [r["id"] for r in everything["results"]]


def test_a_page_past_the_end_is_a_400_with_the_count(client):
    """Issue 13: a bot learns how many pages there are instead of paging through empty ones."""
    last = search(client, q="connect")
    res = client.get("/api/search", query_string={"q": "connect", "page": 50})
    body = res.get_json()
    assert res.status_code == 400 and body["code"] == "page_out_of_range" and body["parameter"] == "page"
    assert body["pages"] == last["pages"] and body["total_groups"] == last["total_groups"]
    assert f"past the last page, {last['pages']}" in body["message"]


def test_links_toggle_facet_values(client):
    data = search(client, q="connect")
    value = data["facets"]["service"][0]
    narrowed = client.get(value["toggle_url"]).get_json()
    assert narrowed["total"] == value["count"]
    assert narrowed["filters"] == [{"facet": "service", "value": value["value"], "label": value["label"],
                                    "remove_url": "/api/search?q=connect"}]
    again = next(v for v in narrowed["facets"]["service"] if v["value"] == value["value"])
    assert again["selected"] and again["toggle_url"] == "/api/search?q=connect"
    assert narrowed["links"]["html"].startswith("/?q=connect&service=")
    assert narrowed["links"]["clear_filters"] == "/api/search?q=connect"


@pytest.mark.corpus
def test_no_facet_value_is_empty(corpus_index):
    """In the real corpus many articles have no service; that empty value is no facet value."""
    client = create_app({"KB_INDEX": str(corpus_index), "TESTING": True}).test_client()
    data = search(client, q="vm")
    assert all(v["value"] for values in data["facets"].values() for v in values)
    for v in data["facets"]["service"][:5] + data["facets"]["tag"][:5]:
        key = "service" if v in data["facets"]["service"] else "tag"
        assert search(client, q="vm", **{key: v["value"]})["total"] == v["count"]


# -- articles ---------------------------------------------------------------------------------


def test_article_is_whole_structured_data(client):
    hit = search(client, q="remote desktop")["results"][0]
    res = client.get(hit["api_url"])
    assert res.status_code == 200
    a = res.get_json()
    assert a["id"] == hit["id"] and a["title"] == hit["title"] and a["path"] == hit["path"]
    assert isinstance(a["steps"], list) and a["steps"] and all(isinstance(s, str) for s in a["steps"])
    assert a["documents"] and all(d.keys() == {"title", "url"} for d in a["documents"])
    assert isinstance(a["properties"], dict) and a["properties"]
    for key in ("info", "description", "issue", "service", "resource", "tags", "clouds", "type", "article_id",
                "body", "html", "url", "links"):
        assert key in a
    assert a["links"] == {"html": hit["url"], "json": hit["api_url"]}
    assert a["html"].strip() and "<script" not in a["html"]


@pytest.mark.parametrize("article_id", [
    "nope", "..", "...", "%2e%2e", "..%2f..%2fetc%2fpasswd", "..%252f..%252fkb%252fweb.py",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "etc~passwd", "a" * 600, "%00", "%3Cscript%3E",
])
def test_unknown_or_traversing_article_ids_are_404(client, article_id):
    res = client.get(f"/api/articles/{article_id}")
    assert res.status_code == 404
    body = res.get_json()
    assert body["status"] == 404 and body["parameter"] == "id" and "no article" in body["message"]


def test_header_injection_in_an_id_is_a_plain_404(client):
    res = client.get("/api/articles/x%0d%0aSet-Cookie:a=b")
    assert res.status_code == 404 and res.get_json()["status"] == 404
    assert "Set-Cookie" not in res.headers


@pytest.mark.parametrize("path", ["/api/articles/../../etc/passwd", "/api/articles/..%2F..%2Fpyproject.toml",
                                  "/articles/../../etc/passwd", "/static/../kb/web.py", "/static/%2e%2e/web.py"])
def test_path_traversal_never_reads_files(client, path):
    res = client.get(path)
    assert res.status_code == 404
    assert b"root:" not in res.data and b"create_app" not in res.data


# -- bad input: one error shape, a 4xx and a message naming the parameter ---------------------

BAD = [
    ("page=0", "page", f"page must be an integer between 1 and {MAX_PAGE}"),
    ("page=abc", "page", "page must be an integer"),
    ("page=-1", "page", "page must be an integer"),
    ("page=1.5", "page", "page must be an integer"),
    ("page=1e9", "page", "page must be an integer"),
    (f"page={MAX_PAGE + 1}", "page", f"between 1 and {MAX_PAGE}"),
    ("page=999999999999", "page", "page must be an integer"),
    ("page=", "page", "page must be an integer"),
    ("page=1&page=2", "page", "page must be given at most once"),
    ("per_page=0", "per_page", f"per_page must be an integer between 1 and {MAX_PER_PAGE}"),
    ("per_page=1000", "per_page", f"per_page must be an integer between 1 and {MAX_PER_PAGE}"),
    ("per_page=-1", "per_page", "per_page must be an integer"),
    ("per_page=ten", "per_page", "per_page must be an integer"),
    ("per_page=10&per_page=20", "per_page", "per_page must be given at most once"),
    (f"q={'a' * (MAX_QUERY_CHARS + 1)}", "q", f"q must be at most {MAX_QUERY_CHARS} characters"),
    ("q=a&q=b", "q", "q must be given at most once"),
    ("perpage=10", "perpage", "unknown parameter 'perpage'"),
    ("services=x", "services", "unknown parameter 'services'"),
    ("service=" + "x" * 201, "service", "each service value must be at most 200 characters"),
    ("&".join(f"tag=t{i}" for i in range(21)), "tag", "tag may be given at most 20 times"),
]


@pytest.mark.parametrize("qs,parameter,message", BAD, ids=[b[0][:30] for b in BAD])
def test_bad_input_gets_the_error_shape(client, qs, parameter, message):
    res = client.get(f"/api/search?{qs}")
    assert res.status_code == 400
    assert res.content_type == "application/json"
    body = res.get_json()
    assert body.keys() == {"status", "error", "code", "message", "parameter"}
    assert body["status"] == 400 and body["error"] == "Bad Request"
    assert body["code"] == ("unknown_parameter" if "unknown parameter" in message else "invalid_parameter")
    assert body["parameter"] == parameter
    assert message in body["message"]


def test_the_longest_query_is_fine(client):
    assert client.get("/api/search", query_string={"q": "vm " * (MAX_QUERY_CHARS // 3)}).status_code == 200


def test_wrong_method_is_405_with_the_error_shape(client):
    res = client.post("/api/search")
    assert res.status_code == 405
    assert res.get_json()["status"] == 405
    assert "GET" in res.headers["Allow"]


def test_unknown_api_path_is_json_404(client):
    res = client.get("/api/nothing")
    assert res.status_code == 404 and res.get_json()["status"] == 404


HOSTILE = [
    "title:(", '"unbalanced', "AND", "OR", "NOT", "a AND", "AND OR NOT", "(((", ")))", "*", "?", "a*", "*a",
    "title:*", "[a TO z]", "{a TO}", "\\", ":", "::", "title:", "body:\"", "x^", "x^1e400", "x~", "x~99999",
    "\"a b\"~5", "-", "- -", "+", "!", "&&", "||", "<script>alert(1)</script>", "' OR 1=1 --", "${jndi:x}",
    "{{7*7}}", "%00", "\x00", "\x01\x02", "\u202e", "🙂" * 50, "ünïcödé", "𝔘𝔫𝔦", "id:../../etc/passwd",
    "tag:(a OR", "service:", "a" * MAX_QUERY_CHARS, "a " * (MAX_QUERY_CHARS // 2), "*" * 100, "te?t*a*b*c",
    "x:y:z", "title:\"vm\"^2~", "NOT vm", "-vm", "\n\t\r", "0x0000007B", "AADSTS50076", "\"\"", "''",
]


@pytest.mark.parametrize("q", HOSTILE, ids=[repr(h[:20]) for h in HOSTILE])
def test_hostile_queries_never_500(client, q):
    res = client.get("/api/search", query_string={"q": q, "service": q[:200], "tag": q[:200]})
    assert res.status_code == 200, res.data[:300]
    assert client.get("/api/search", query_string={"q": q}).status_code == 200
    assert client.get("/", query_string={"q": q}).status_code == 200


# -- OpenAPI, health, headers, CLI ------------------------------------------------------------


def _check(schema: dict, value, doc: dict, where: str = "$") -> None:
    """Just enough JSON Schema to hold responses to the documented required fields and types."""
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    kinds = schema.get("type")
    if kinds:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        py = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float),
              "boolean": bool, "null": type(None)}
        assert any(isinstance(value, py[k]) for k in kinds), f"{where}: {value!r} is not {kinds}"
    if isinstance(value, dict):
        for key in schema.get("required", []):
            assert key in value, f"{where}: missing {key}"
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                _check(sub, value[key], doc, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(schema["items"], item, doc, f"{where}[{i}]")


def test_openapi_describes_the_real_responses(client, app):
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    served = {r.rule.replace("<path:article_id>", "{id}").replace("<name>", "{name}") for r in app.url_map.iter_rules()}
    assert set(doc["paths"]) <= served
    ok = doc["paths"]["/api/v1/search"]["get"]["responses"]
    _check(ok["200"]["content"]["application/json"]["schema"], search(client, q="connect", service="microsoft.compute"), doc)
    hit = search(client, q="connect")["results"][0]
    art = doc["paths"]["/api/v1/articles/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    _check(art, client.get(hit["api_url"]).get_json(), doc)
    err = doc["components"]["schemas"]["Error"]
    _check(err, client.get("/api/search?page=0").get_json(), doc)
    _check(doc["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]["schema"],
           client.get("/healthz").get_json(), doc)
    params = {p["name"]: p for p in doc["paths"]["/api/v1/search"]["get"]["parameters"]}
    assert params["per_page"]["schema"]["maximum"] == MAX_PER_PAGE
    assert params["page"]["schema"]["maximum"] == MAX_PAGE
    assert params["q"]["schema"]["maxLength"] == MAX_QUERY_CHARS


def test_a_search_past_its_deadline_is_503_not_a_hung_worker(sample_index):
    app = create_app({"KB_INDEX": str(sample_index), "TESTING": True, "KB_SEARCH_TIMEOUT": 1e-6})
    res = app.test_client().get("/api/search?q=connect")
    assert res.status_code == 503
    body = res.get_json()
    assert body["parameter"] == "q" and "took longer than" in body["message"]


def test_healthz_reports_generation_and_count(client, app):
    body = client.get("/healthz").get_json()
    info = app.extensions["kb_engine"].info()
    assert body["status"] == "ok"
    assert body["generation"] == info["generation"] and body["articles"] == info["articles"] > 0


def test_no_index_is_503_not_500(tmp_path):
    client = create_app({"KB_INDEX": str(tmp_path / "none"), "TESTING": True}).test_client()
    for path in ("/healthz", "/api/search", "/api/articles/x"):
        res = client.get(path)
        assert res.status_code == 503 and res.get_json()["status"] == 503
    assert client.get("/").status_code == 503


@pytest.mark.parametrize("path", ["/api/search?q=vm", "/api/search?page=0", "/healthz", "/api/openapi.json",
                                  "/api/articles/nope"])
def test_security_headers_on_api_responses(client, path):
    res = client.get(path)
    for name, value in SECURITY_HEADERS.items():
        assert res.headers[name] == value


def test_cli_search_json_has_the_same_shape(client, sample_index):
    out = CliRunner().invoke(cli, ["search", "connect", "--json", "--index", str(sample_index), "--limit", "5"],
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    printed = json.loads(out.output)
    api = search(client, q="connect", per_page=5)
    for key in ("query", "total", "page", "per_page"):
        assert printed[key] == api[key]
    assert [r["id"] for r in printed["results"]] == [r["id"] for r in api["results"]]
    assert [{k: r[k] for k in RESULT_KEYS} for r in printed["results"]] == [{k: r[k] for k in RESULT_KEYS} for r in api["results"]]
    for name in ("service", "tag"):
        cli_counts = {v["value"]: v["count"] for v in printed["facets"][name] if v["value"]}
        assert cli_counts == {v["value"]: v["count"] for v in api["facets"][name]}


def test_the_app_follows_a_rebuilt_index(tmp_path, sample_dir):
    """One SearchEngine per app: a build that switches generations is served without a restart."""
    articles = tmp_path / "articles"
    shutil.copytree(sample_dir, articles)
    index = tmp_path / "index"
    build(articles, index, full=True, workers=1)
    client = create_app({"KB_INDEX": str(index), "TESTING": True}).test_client()
    before = client.get("/healthz").get_json()
    victim = search(client, q="connect")["results"][0]
    (articles / victim["path"]).unlink()
    build(articles, index, workers=1)
    after = client.get("/healthz").get_json()
    assert after["generation"] != before["generation"]
    assert after["articles"] == before["articles"] - 1
    assert client.get(victim["api_url"]).status_code == 404
    assert victim["id"] not in {r["id"] for r in search(client, q="connect", per_page=MAX_PER_PAGE)["results"]}
