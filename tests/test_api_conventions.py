"""Bot-facing HTTP conventions of the JSON API: /api/v1/ paths and their aliases, ETags and 304s,
Cache-Control, compression, CORS, error codes, plain-text snippets with highlight offsets, and
warnings about facet values no article has and results past the paging limit."""

from __future__ import annotations

import gzip
import html
import json
import re
import shutil
import urllib.request

import pytest
from test_serve import Server, _opener

from kb.highlight import plain_snippet
from kb.index import build
from kb.web import create_app


def without_timing(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "took_ms"}


# -- /api/v1/ and the /api/ aliases ------------------------------------------------------------


def test_v1_search_answers_as_the_alias_does(client):
    v1 = client.get("/api/v1/search?q=vm").get_json()
    old = client.get("/api/search?q=vm").get_json()
    assert v1["results"] and v1["results"] == old["results"]
    # links (facet toggles, paging) lead on in the version asked for; the canonical JSON link is v1
    same = json.dumps(without_timing(v1)).replace('"/api/v1/search', '"/api/search')
    assert json.loads(same) | {"links": None} == without_timing(old) | {"links": None}
    assert v1["links"]["self"] == "/api/v1/search?q=vm" and old["links"]["self"] == "/api/search?q=vm"
    assert v1["links"]["json"] == old["links"]["json"] == "/api/v1/search?q=vm"
    assert all(r["api_url"] == f"/api/v1/articles/{r['id']}" for r in v1["results"])


def test_v1_article_and_openapi_answer_as_the_aliases_do(client):
    hit = client.get("/api/v1/search?q=vm").get_json()["results"][0]
    assert client.get(hit["api_url"]).get_json() == client.get(f"/api/articles/{hit['id']}").get_json()
    assert client.get("/api/v1/openapi.json").get_json() == client.get("/api/openapi.json").get_json()
    for path in ("/api/v1/articles/nope", "/api/articles/nope"):
        assert client.get(path).status_code == 404


def test_openapi_lists_the_v1_paths_and_names_the_aliases(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert set(doc["paths"]) == {"/api/v1/search", "/api/v1/articles/{id}", "/api/v1/articles/{id}/related",
                                 "/api/v1/facets/{name}", "/api/v1/openapi.json", "/api/v1/insights", "/healthz",
                                 "/readyz", "/api/v1/suggest"}
    assert "alias" in doc["info"]["description"] and "/api/search" in doc["info"]["description"]
    assert "304" in doc["paths"]["/api/v1/search"]["get"]["responses"]
    assert "code" in doc["components"]["schemas"]["Error"]["required"]
    assert {"snippet_text", "highlights"} <= set(doc["components"]["schemas"]["Result"]["required"])


# -- ETag, If-None-Match and Cache-Control ---------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/search?q=vm&service=microsoft.compute", "/api/search?q=vm",
                                  "/api/v1/articles/microsoft.compute~allocation-failed"])
def test_a_repeated_request_with_if_none_match_gets_304_without_a_body(client, path):
    first = client.get(path)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')  # weak: took_ms differs between otherwise equal answers
    assert first.headers["Cache-Control"] == "public, no-cache"
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag and again.headers["Cache-Control"] == "public, no-cache"
    # several validators, one of them current (and the strong form of it) also match
    assert client.get(path, headers={"If-None-Match": f'"other", {etag}'}).status_code == 304
    assert client.get(path, headers={"If-None-Match": etag[2:]}).status_code == 304
    stale = client.get(path, headers={"If-None-Match": 'W/"stale"'})
    assert stale.status_code == 200 and stale.get_json()


def test_the_etag_follows_the_normalised_request(client):
    def etag(qs: str) -> str:
        return client.get("/api/v1/search?" + qs).headers["ETag"]

    assert etag("q=vm") == etag("q=%20vm%20") == etag("q=vm&page=1&per_page=10") == etag("per_page=10&q=vm")
    assert etag("service=microsoft.compute&service=microsoft.network") == etag(
        "service=Microsoft.Compute&service=microsoft.network&service=microsoft.compute")
    assert len({etag("q=vm"), etag("q=vms"), etag("q=vm&page=2"), etag("q=vm&per_page=5"),
                etag("q=vm&tag=windows")}) == 5
    # the alias' links differ from v1's, so its answers are told apart too
    assert client.get("/api/search?q=vm").headers["ETag"] != etag("q=vm")


def test_a_rebuilt_index_changes_the_etag(tmp_path, sample_dir):
    articles = tmp_path / "articles"
    shutil.copytree(sample_dir, articles)
    build(articles, tmp_path / "index", full=True, workers=1)
    client = create_app({"KB_INDEX": str(tmp_path / "index"), "TESTING": True}).test_client()
    first = client.get("/api/v1/search?q=connect")
    victim = first.get_json()["results"][0]
    (articles / victim["path"]).unlink()
    build(articles, tmp_path / "index", workers=1)
    again = client.get("/api/v1/search?q=connect", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 200
    assert victim["id"] not in {r["id"] for r in again.get_json()["results"]}
    assert again.headers["ETag"] != first.headers["ETag"]


def test_replicas_built_from_one_commit_share_etags(tmp_path, sample_dir):
    """Behind a balancer the next request may reach another replica: built from the same commit
    (kb sync records it), its answers carry the same validators, so a cache's 304 still holds."""
    commit = {"sha": "a" * 40, "time": "2026-12-01T10:00:00Z"}
    clients = []
    for n in (1, 2):
        build(sample_dir, tmp_path / f"index{n}", full=True, workers=1, commit_info=commit)
        clients.append(create_app({"KB_INDEX": str(tmp_path / f"index{n}"), "TESTING": True}).test_client())
    first = clients[0].get("/api/v1/search?q=connect")
    again = clients[1].get("/api/v1/search?q=connect", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    # another commit, or a build that names none, is another validator
    build(sample_dir, tmp_path / "index3", full=True, workers=1, commit_info={**commit, "sha": "b" * 40})
    build(sample_dir, tmp_path / "index4", full=True, workers=1)
    for n in (3, 4):
        other = create_app({"KB_INDEX": str(tmp_path / f"index{n}"), "TESTING": True}).test_client()
        assert other.get("/api/v1/search?q=connect").headers["ETag"] != first.headers["ETag"]


def test_edited_synonyms_change_the_etag(tmp_path, sample_index, monkeypatch):
    """The synonyms file is read when a server starts: after an edit and a restart the same
    generation answers differently, so its validators differ too."""
    rules = tmp_path / "synonyms.txt"
    monkeypatch.setenv("KB_SYNONYMS", str(rules))
    etags = []
    for text in ("connect, reach\n", "connect, reach, attach\n"):
        rules.write_text(text)
        app = create_app({"KB_INDEX": str(sample_index), "TESTING": True})
        etags.append(app.test_client().get("/api/v1/search?q=connect").headers["ETag"])
    assert etags[0] != etags[1]


def test_if_none_match_star_does_not_turn_a_404_into_a_304(client):
    assert client.get("/api/v1/articles/nope", headers={"If-None-Match": "*"}).status_code == 404


def test_cache_max_age_setting(sample_index):
    client = create_app({"KB_INDEX": str(sample_index), "TESTING": True, "KB_CACHE_MAX_AGE": 60}).test_client()
    assert client.get("/api/v1/search?q=vm").headers["Cache-Control"] == "public, max-age=60"


@pytest.mark.parametrize("path", ["/api/v1/search?page=0", "/api/v1/articles/nope", "/api/v1/nothing", "/nope"])
def test_errors_are_never_cached(client, path):
    res = client.get(path, headers={"If-None-Match": "*"})
    assert res.status_code >= 400
    assert res.headers["Cache-Control"] == "no-store" and "ETag" not in res.headers


# -- compression -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/search?q=vm", "/api/v1/articles/microsoft.compute~allocation-failed",
                                  "/api/v1/openapi.json", "/?q=vm"])
def test_gzip_when_the_client_accepts_it(client, path):
    plain = client.get(path)
    assert "Content-Encoding" not in plain.headers and "Accept-Encoding" in plain.headers["Vary"]
    packed = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert packed.status_code == 200
    assert packed.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed.headers["Vary"]
    assert len(packed.data) < len(plain.data)
    body = gzip.decompress(packed.data)
    if path.startswith("/api/"):
        assert without_timing(json.loads(body)) == without_timing(plain.get_json())
    else:
        took = re.compile(rb"in (&lt;1|\d+) ms")
        assert took.sub(b"", body) == took.sub(b"", plain.data)


def test_small_responses_and_errors_stay_uncompressed(client):
    for path in ("/api/v1/search?page=0", "/healthz"):
        res = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert "Content-Encoding" not in res.headers
        assert res.get_json()


def test_gzip_and_304_through_a_real_kb_serve(sample_index):
    with Server("--index", str(sample_index), "--workers", "1") as srv:
        url = srv.url + "/api/v1/search?q=vm"
        with _opener.open(urllib.request.Request(url, headers={"Accept-Encoding": "gzip"}), timeout=20) as res:
            assert res.status == 200 and res.headers["Content-Encoding"] == "gzip"
            assert "Accept-Encoding" in res.headers["Vary"]
            data = json.loads(gzip.decompress(res.read()))
            etag = res.headers["ETag"]
        status, _headers, body = srv.get("/api/search?q=vm")
        assert status == 200 and json.loads(body)["results"] == data["results"]
        request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
        with pytest.raises(urllib.error.HTTPError) as info:  # urllib reports a 304 as an error
            _opener.open(request, timeout=20)
        with info.value as res:
            assert res.code == 304 and res.read() == b"" and res.headers["ETag"] == etag


# -- CORS ------------------------------------------------------------------------------------


def test_no_cors_headers_unless_configured(client):
    res = client.get("/api/v1/search?q=vm", headers={"Origin": "https://bot.example"})
    assert not [h for h in res.headers.keys() if h.lower().startswith("access-control-")]
    pre = client.options("/api/v1/search", headers={"Origin": "https://bot.example",
                                                    "Access-Control-Request-Method": "GET"})
    assert not [h for h in pre.headers.keys() if h.lower().startswith("access-control-")]


def test_cors_for_the_configured_origins_on_api_paths_only(sample_index, monkeypatch):
    monkeypatch.setenv("KB_CORS_ORIGINS", "https://a.example, https://b.example")
    client = create_app({"KB_INDEX": str(sample_index), "TESTING": True}).test_client()
    res = client.get("/api/v1/search?q=vm", headers={"Origin": "https://b.example"})
    assert res.headers["Access-Control-Allow-Origin"] == "https://b.example"
    assert "Origin" in res.headers["Vary"] and "ETag" in res.headers["Access-Control-Expose-Headers"]
    # errors carry it too, so a page can read the error's code
    err = client.get("/api/v1/search?page=0", headers={"Origin": "https://a.example"})
    assert err.status_code == 400 and err.headers["Access-Control-Allow-Origin"] == "https://a.example"
    assert "Access-Control-Allow-Origin" not in client.get("/api/v1/search", headers={"Origin": "https://c.example"}).headers
    for path in ("/", "/healthz", "/articles/microsoft.compute~allocation-failed"):
        assert "Access-Control-Allow-Origin" not in client.get(path, headers={"Origin": "https://a.example"}).headers
    pre = client.options("/api/search", headers={"Origin": "https://a.example", "Access-Control-Request-Method": "GET",
                                                 "Access-Control-Request-Headers": "If-None-Match"})
    assert pre.status_code == 200
    assert pre.headers["Access-Control-Allow-Origin"] == "https://a.example"
    assert "GET" in pre.headers["Access-Control-Allow-Methods"] and "POST" not in pre.headers["Access-Control-Allow-Methods"]
    assert "if-none-match" in pre.headers["Access-Control-Allow-Headers"].lower()


def test_cors_for_any_origin(sample_index):
    client = create_app({"KB_INDEX": str(sample_index), "TESTING": True, "KB_CORS_ORIGINS": "*"}).test_client()
    res = client.get("/api/v1/articles/microsoft.compute~allocation-failed", headers={"Origin": "https://x.example"})
    assert res.headers["Access-Control-Allow-Origin"] == "*"


# -- error codes -------------------------------------------------------------------------------


ERRORS = [
    ("GET", "/api/v1/search?page=0", 400, "invalid_parameter", "page"),
    ("GET", "/api/search?per_page=x", 400, "invalid_parameter", "per_page"),
    ("GET", "/api/v1/search?perpage=5", 400, "unknown_parameter", "perpage"),
    ("GET", "/api/v1/search?q=a&q=b", 400, "invalid_parameter", "q"),
    ("GET", "/api/v1/articles/nope", 404, "not_found", "id"),
    ("GET", "/api/v1/nothing", 404, "not_found", None),
    ("POST", "/api/v1/search", 405, "method_not_allowed", None),
    ("DELETE", "/api/articles/x", 405, "method_not_allowed", None),
]


@pytest.mark.parametrize("method,path,status,code,parameter", ERRORS, ids=[e[1] for e in ERRORS])
def test_every_error_has_a_code(client, method, path, status, code, parameter):
    res = client.open(path, method=method)
    body = res.get_json()
    assert res.status_code == status
    assert body == {"status": status, "error": body["error"], "code": code, "message": body["message"],
                    "parameter": parameter}


def test_too_slow_and_index_missing_codes(sample_index, tmp_path):
    slow = create_app({"KB_INDEX": str(sample_index), "TESTING": True, "KB_SEARCH_TIMEOUT": 1e-6}).test_client()
    body = slow.get("/api/v1/search?q=connect").get_json()
    assert (body["status"], body["code"], body["parameter"]) == (503, "too_slow", "q")
    empty = create_app({"KB_INDEX": str(tmp_path / "none"), "TESTING": True}).test_client()
    for path in ("/api/v1/search?q=vm", "/api/v1/articles/x", "/healthz"):
        body = empty.get(path).get_json()
        assert (body["status"], body["code"]) == (503, "index_missing"), path


# -- snippets as plain text with highlight offsets ----------------------------------------------


@pytest.mark.parametrize("q", ["remote desktop", "vm not starting", "AADSTS50076", "disk", "c++ & <b>"])
def test_highlights_point_at_the_marked_words(client, q):
    data = client.get("/api/v1/search", query_string={"q": q}).get_json()
    for r in data["results"]:
        marked = [html.unescape(m) for m in re.findall(r"<mark>(.*?)</mark>", r["snippet"])]
        assert [r["snippet_text"][a:b] for a, b in r["highlights"]] == marked
        assert r["snippet_text"] == html.unescape(re.sub(r"</?mark>", "", r["snippet"]))
    if q == "remote desktop":
        assert any(r["highlights"] for r in data["results"])


def test_plain_snippet_reads_entities_and_odd_markup():
    assert plain_snippet("a <mark>VM</mark> &amp; <mark>b&lt;c</mark> &#39;é&#x27;") == (
        "a VM & b<c 'é'", [[2, 4], [7, 10]])
    assert plain_snippet("<mark>🙂 ünï</mark> x") == ("🙂 ünï x", [[0, 5]])
    assert plain_snippet("x <b>y</b> <mark>z") == ("x y z", [[4, 5]])  # an unclosed mark runs to the end
    assert plain_snippet("<mark></mark>a") == ("a", [])
    assert plain_snippet('<MARK class="hit">a</MARK> <mark>b<mark>c</mark>d') == ("a bcd", [[0, 1], [2, 4]])
    assert plain_snippet("1 < 2 <3 &gt; x&y") == ("1 < 2 <3 > x&y", [])
    assert plain_snippet("") == ("", [])


# -- warnings ----------------------------------------------------------------------------------


def test_an_unknown_service_or_tag_gives_a_warning(client):
    res = client.get("/api/v1/search?q=vm&service=no.such.service&tag=nosuchtag")
    assert res.status_code == 200
    data = res.get_json()
    assert data["total"] == 0
    assert any("service 'no.such.service'" in w for w in data["warnings"])
    assert any("tag 'nosuchtag'" in w for w in data["warnings"])
    known = client.get("/api/v1/search?q=vm&service=microsoft.compute&service=microsoft.keyvault").get_json()
    assert not any("no article has" in w for w in known["warnings"])
    page = client.get("/?q=vm&service=no.such.service").data.decode()
    assert "no article has service &#39;no.such.service&#39;" in page


def test_results_past_the_paging_limit_are_noted(sample_index):
    client = create_app({"KB_INDEX": str(sample_index), "TESTING": True, "KB_MAX_PAGE": 2}).test_client()
    data = client.get("/api/v1/search?per_page=3").get_json()
    assert data["total_groups"] > 6 and data["pages"] == 2
    notes = [w for w in data["warnings"] if "can be paged to" in w]
    assert notes == [f"only the first 6 of {data['total_groups']} results can be paged to (page at most 2); "
                     "narrow the search (service, tag, more words) or raise per_page to reach the rest"]
    assert not [w for w in client.get("/api/v1/search?per_page=100").get_json()["warnings"] if "paged" in w]
    # the page says it once the last page is reached, not on the first
    assert "can be paged to" not in client.get("/?per_page=3").data.decode()
    assert "can be paged to" in client.get("/?per_page=3&page=2").data.decode()
