"""The HTML pages: rendered from the same dicts as the JSON, escaped, sanitised, accessible."""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from bs4 import BeautifulSoup

from kb.index import build
from kb.web import SECURITY_HEADERS, create_app, package_dir

#: An article written to attack the page: every way to smuggle script into HTML we could think of.
HOSTILE_ARTICLE = """<properties
    pageTitle="Hostile article"
    description="Description with <img src=x onerror=window.__xss=1> markup"
    infoBubbleText="Info with <script>window.__xss=2</script> inside"
    service="microsoft.hostile"
    resource="widgets"
    resourceTags="security, &quot;&gt;&lt;script&gt;window.__xss=3&lt;/script&gt;"
    articleId="hostile-0001"
    selfHelpType="generic"
    cloudEnvironments="public"
/>

# Hostile article

Widgets misbehave when <b onmouseover="window.__xss=4">hovered</b> by a hostile payload.

<script>window.__xss = 5; alert("xss")</script>

<img src="x" onerror="window.__xss=6">

<a href="javascript:window.__xss=7">a javascript link</a> and <a href=" JaVaScRiPt&#x3a;window.__xss=8">another</a>

<iframe src="javascript:window.__xss=9"></iframe>

<div onclick="window.__xss=10" style="background:url(javascript:window.__xss=11)">styled block</div>

<svg onload="window.__xss=12"><script>window.__xss=13</script></svg>

<form action="javascript:window.__xss=14"><button>go</button></form>

<object data="javascript:window.__xss=15"></object>

## **Recommended Steps**

1. Run <script>window.__xss=16</script> the widget repair
2. Open <a href="javascript:window.__xss=17">the hostile console</a>

## **Recommended Documents**

* <a href="javascript:window.__xss=18">Evil widget guide</a>
* <a href="data:text/html,<script>window.__xss=19</script>">Data widget guide</a>
* <a href="java&#x09;script:window.__xss=20">Tabbed widget guide</a>
* [Safe widget guide](https://learn.microsoft.com/azure/)
"""

HOSTILE_ID = "microsoft.hostile~hostile-article"


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory, sample_dir):
    """The sample knowledge base plus one hostile article."""
    root = tmp_path_factory.mktemp("hostile")
    articles = root / "articles"
    shutil.copytree(sample_dir, articles)
    (articles / "microsoft.hostile").mkdir()
    (articles / "microsoft.hostile" / "hostile-article.md").write_text(HOSTILE_ARTICLE)
    build(articles, root / "index", full=True, workers=1)
    return root / "index"


@pytest.fixture
def app(hostile_index):
    return create_app({"KB_INDEX": str(hostile_index), "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


def page(client, url: str, status: int = 200) -> BeautifulSoup:
    res = client.get(url)
    assert res.status_code == status, res.data[:500]
    assert res.content_type == "text/html; charset=utf-8"
    return BeautifulSoup(res.data, "html.parser")


def twin(client, soup: BeautifulSoup) -> dict:
    """The JSON twin a page advertises."""
    link = soup.find("link", rel="alternate", type="application/json")
    res = client.get(link["href"])
    assert res.status_code == 200
    return res.get_json()


def facet_counts(soup: BeautifulSoup, name: str) -> list[tuple[str, int, bool]]:
    return [(li["data-value"], int(li["data-count"]), li.find("input").has_attr("checked"))
            for li in soup.select(f'li.facet-value[data-facet="{name}"]')]


# -- the search page --------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/?q=connect", "/?q=connect&service=microsoft.compute",
                                 "/?service=microsoft.compute&service=microsoft.storage&tag=networking",
                                 "/?q=error&page=2", "/?tag=windows&per_page=5"])
def test_search_page_agrees_with_its_json_twin(client, url):
    soup = page(client, url)
    data = twin(client, soup)
    assert urlsplit(soup.find("link", rel="alternate")["href"]).path == "/api/v1/search"
    assert soup.find(id="json-link")["href"] == data["links"]["json"]
    titles = [a.get_text(strip=True) for a in soup.select(".results .card-title a")]
    assert titles == [r["title"] for r in data["results"]]
    # the links also carry the query and position, for the search insights (kb/analytics.py)
    assert [urlsplit(a["href"]).path for a in soup.select(".results .card-title a")] == [r["url"] for r in data["results"]]
    for name in ("service", "tag"):
        assert facet_counts(soup, name) == [(v["value"], v["count"], v["selected"]) for v in data["facets"][name]]
    count = soup.find(id="result-count")
    assert count["aria-live"] == "polite" and count["role"] == "status"
    total_text = count.find("strong").get_text() if data["total"] else "0"
    assert int(total_text.replace(",", "")) == data["total"]
    assert re.search(r"in (<1|\d+) ms", count.get_text())


def test_facet_checkboxes_link_to_toggled_states(client):
    soup = page(client, "/?q=connect&service=microsoft.compute")
    data = twin(client, soup)
    for v in data["facets"]["service"]:
        box = soup.find("input", attrs={"name": "service", "value": v["value"]})
        assert box["data-toggle-url"] == v["toggle_url"].replace("/api/v1/search", "/") and box["form"] == "search-form"
        assert soup.find("label", attrs={"for": box["id"]}) is not None
    selected = soup.find("input", attrs={"name": "service", "value": "microsoft.compute"})
    assert selected.has_attr("checked")
    assert dict(parse_qsl(urlsplit(selected["data-toggle-url"]).query)) == {"q": "connect"}
    # the HTML toggle links stay on the HTML page, the JSON ones in the API
    assert all(urlsplit(b["data-toggle-url"]).path == "/" for b in soup.select("input[data-toggle-url]"))
    assert all(urlsplit(v["toggle_url"]).path == "/api/v1/search" for v in data["facets"]["tag"])


def test_each_facet_count_on_the_page_is_the_total_after_clicking_it(client):
    soup = page(client, "/?q=windows")
    for li in soup.select("li.facet-value"):
        after = page(client, li.find("input")["data-toggle-url"])
        assert int(after.find(id="result-count").find("strong").get_text().replace(",", "")) == int(li["data-count"])


def test_selected_filters_show_as_removable_chips(client):
    soup = page(client, "/?q=connect&service=microsoft.compute&tag=windows")
    chips = soup.select(".chips a.chip")
    assert [c.get_text(" ", strip=True).split(" ×")[0] for c in chips] == [
        "Service: Virtual Machines (Compute)", "Resource tag: windows"]
    assert dict(parse_qsl(urlsplit(chips[0]["href"]).query)) == {"q": "connect", "tag": "windows"}
    assert soup.select_one(".chips .chip-clear")["href"] == "/?q=connect"


def test_search_box_is_labelled_and_autofocused(client):
    soup = page(client, "/?q=rdp")
    box = soup.find("input", id="q")
    # autofocus only on the empty page: with a query shown it would scroll a page the agent
    # came back to to the top (issue 13)
    assert box["name"] == "q" and box["value"] == "rdp" and not box.has_attr("autofocus")
    assert page(client, "/").find("input", id="q").has_attr("autofocus")
    assert soup.find("label", attrs={"for": "q"}).get_text(strip=True)
    form = soup.find("form", id="search-form")
    assert form["method"] == "get" and form["action"] == "/" and form["role"] == "search"
    # without JavaScript the facet checkboxes are submitted by an Apply button
    assert soup.find("noscript").find("button", attrs={"form": "search-form"})
    for box in soup.select('input[type="search"]'):
        assert soup.find("label", attrs={"for": box["id"]}), box


def test_pagination(client):
    soup = page(client, "/?per_page=5")
    data = twin(client, soup)
    nav = soup.find("nav", attrs={"aria-label": "Pagination"})
    assert nav.find("a", attrs={"aria-current": "page"}).get_text(strip=True) == "1"
    assert nav.find("a", rel="next")["href"] == "/?per_page=5&page=2" == data["links"]["next"].replace("/api/v1/search", "/")
    assert soup.select_one(".results")["start"] == "1"
    second = page(client, "/?per_page=5&page=2")
    assert second.select_one(".results")["start"] == "6"
    assert second.find("a", rel="prev")["href"] == "/?per_page=5"
    assert second.find("input", attrs={"name": "per_page", "type": "hidden"})["value"] == "5"


def test_zero_results_page_helps(client):
    soup = page(client, "/?q=windows&service=microsoft.keyvault&tag=linux")
    text = soup.find(id="results").get_text(" ", strip=True)
    assert "No articles match" in text and "Remove a filter" in text and "Check the spelling" in text
    clear = soup.find(id="results").find("a", string="search all articles")
    assert clear["href"] == "/?q=windows"
    assert soup.find(id="result-count").get_text(strip=True).startswith("No results")


def test_page_past_the_end_shows_the_last_page(client):
    """Issue 13: not "page 40 of 2" and no results, but the last page with a note."""
    soup = page(client, "/?q=connect&page=40")
    assert "There is no page 40" in soup.select_one(".page-note").get_text()
    assert soup.select(".result") and "page 2 of 2" in soup.find(id="result-count").get_text()


def test_the_query_is_escaped_everywhere(client):
    evil = '"><script>window.__xss=1</script><img src=x onerror=alert(1)>'
    res = client.get("/", query_string={"q": evil, "service": evil, "tag": "<b>x</b>"})
    assert res.status_code == 200
    assert b"<script>window" not in res.data and b"<img src=x" not in res.data and b"<b>x</b>" not in res.data
    soup = BeautifulSoup(res.data, "html.parser")
    assert soup.find("input", id="q")["value"] == evil
    assert_no_active_content(soup)


@pytest.mark.parametrize("qs,message", [
    ("page=0", "page must be an integer between 1 and"),
    ("page=abc", "page must be an integer"),
    ("per_page=1000", "per_page must be an integer between 1 and"),
    ("q=" + "x" * 501, "The search was cut to its first 500 characters"),
    ("page=1&page=2", "page must be given at most once"),
])
def test_bad_parameters_keep_the_search_with_a_note(client, qs, message):
    """Issue 13: the page never drops the query for a bad parameter; it says what it left out."""
    long_q = qs.startswith("q=")
    soup = page(client, f"/?{qs}" if long_q else f"/?q=rdp&{qs}")
    assert message in " ".join(n.get_text() for n in soup.select(".page-note"))
    assert soup.find("input", id="q")["value"] == ("x" * 500 if long_q else "rdp")


def test_unknown_parameters_are_ignored_by_the_page(client):
    """A shared link carrying tracking parameters still opens (the JSON API refuses them)."""
    assert client.get("/?q=rdp&utm_source=mail").status_code == 200
    assert client.get("/api/search?q=rdp&utm_source=mail").status_code == 400


# -- the article page -------------------------------------------------------------------------


def test_article_page_shows_the_whole_article(client):
    soup = page(client, "/?q=remote+desktop")
    href = soup.select_one(".results .card-title a")["href"]
    art = page(client, href)
    data = twin(client, art)
    assert art.find("h1").get_text(strip=True) == data["title"]
    if data["info"]:
        assert data["info"] in art.find(class_="info-bubble").get_text()
    # the article is shown once: its steps numbered where they stand, its documents live links
    steps = art.select("ol.steps > li")
    assert ["".join(li.get_text().split()) for li in steps] == ["".join(s.split()) for s in data["steps"]]
    links = {(a.get_text(" ", strip=True), a["href"]) for a in art.select(".article a[href]")}
    assert {(d["title"], d["url"]) for d in data["documents"]} <= links
    assert not art.find("details", class_="body-details")
    meta = art.find("dl", class_="meta-list").get_text(" ", strip=True)
    for value in (data["service"], data["path"], data["article_id"], *data["tags"]):
        assert value in meta
    assert art.select_one(".prose").get_text(strip=True)
    assert art.find("a", class_="back-link")["href"] == "/"


def test_back_link_returns_to_the_search_that_led_there(client):
    soup = page(client, "/?q=rdp&service=microsoft.compute")
    href = soup.select_one(".results .card-title a")["href"]
    res = client.get(href, headers={"Referer": "http://localhost/?q=rdp&service=microsoft.compute"})
    back = BeautifulSoup(res.data, "html.parser").find("a", class_="back-link")
    assert back["href"] == "/?q=rdp&service=microsoft.compute"
    assert "Back to results" in back.get_text()
    # a foreign referrer is never linked
    res = client.get(href, headers={"Referer": "http://evil.example/?q=rdp"})
    assert BeautifulSoup(res.data, "html.parser").find("a", class_="back-link")["href"] == "/"


def assert_no_active_content(soup: BeautifulSoup) -> None:
    """No script but ours, no event handler, no javascript:/data: URL, no inline style."""
    for script in soup.find_all("script"):
        assert script.get("src", "").startswith("/static/") and not script.string, script
    assert not soup.find_all(["iframe", "object", "embed", "style", "svg", "math", "base"])
    for tag in soup.find_all(True):
        for attr, value in tag.attrs.items():
            assert not attr.lower().startswith("on"), tag
            assert attr.lower() != "style", tag
            if attr.lower() in ("href", "src", "action", "data", "formaction", "xlink:href"):
                cleaned = "".join(ch for ch in str(value) if ch > " ").lower()
                assert not cleaned.startswith(("javascript:", "data:text", "vbscript:")), tag
    # kb's own forms only: the search box and an article's "Was this helpful?" (kb/insights_web.py)
    assert [f.get("id") for f in soup.find_all("form")] in (["search-form"], ["search-form", "feedback-form"])


def test_hostile_article_is_sanitised(client):
    res = client.get(f"/articles/{HOSTILE_ID}")
    assert res.status_code == 200
    soup = BeautifulSoup(res.data, "html.parser")
    assert_no_active_content(soup)
    prose = soup.select_one(".prose")
    assert "styled block" in prose.get_text() and "Widgets misbehave" in prose.get_text()
    # unsafe links keep their text, without a link (in the article, or in the documents list)
    for title in ("Evil widget guide", "Data widget guide", "Tabbed widget guide"):
        assert title in soup.select_one(".article").get_text()
        assert all(not a.get("href") for a in soup.select(".article a") if a.get_text(strip=True) == title)
    assert soup.find("a", string="Safe widget guide")["href"] == "https://learn.microsoft.com/azure/"
    # the description and info are shown as text, never as markup
    assert "<img src=x onerror=window.__xss=1>" in soup.find(class_="lead").get_text()
    assert soup.find(class_="info-bubble").find("script") is None


def test_hostile_article_in_results_is_escaped(client):
    soup = page(client, "/?q=hostile+widgets")
    assert urlsplit(soup.select_one(".results .card-title a")["href"]).path == f"/articles/{HOSTILE_ID}"
    assert_no_active_content(soup)


def test_unknown_article_is_a_friendly_404(client):
    soup = page(client, "/articles/..%2f..%2fetc%2fpasswd", status=404)
    assert soup.find("h1").get_text(strip=True) == "Not Found"
    assert "no article with id" in soup.find(class_="error-message").get_text()


# -- errors, headers and assets ---------------------------------------------------------------


def test_unknown_page_and_wrong_method_are_friendly(client):
    soup = page(client, "/no/such/page", status=404)
    assert soup.find("a", string="Back to search")
    res = client.post("/")
    assert res.status_code == 405 and "GET" in res.headers["Allow"]
    assert b"Method Not Allowed" in res.data and res.content_type.startswith("text/html")


def test_a_crash_shows_no_traceback(hostile_index):
    app = create_app({"KB_INDEX": str(hostile_index)})  # not TESTING: errors are handled, not raised

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail /etc/kb.conf")

    @app.get("/api/boom")
    def api_boom():
        raise RuntimeError("secret detail /etc/kb.conf")

    client = app.test_client()
    res = client.get("/boom")
    assert res.status_code == 500 and b"Something went wrong" in res.data
    assert b"secret" not in res.data and b"Traceback" not in res.data
    assert res.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    res = client.get("/api/boom")
    assert res.status_code == 500 and res.get_json() == {
        "status": 500, "error": "Internal Server Error", "code": "internal_error",
        "message": "Something went wrong on our side. Please try again.", "parameter": None}


@pytest.mark.parametrize("url", ["/", "/?q=rdp", f"/articles/{HOSTILE_ID}", "/nope", "/?page=0",
                                 "/static/kb.css", "/static/kb.js"])
def test_security_headers_on_every_response(client, url):
    with client.get(url) as res:
        headers = res.headers
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value
    csp = headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp


@pytest.mark.parametrize("url", ["/", "/?q=connect&service=microsoft.compute", f"/articles/{HOSTILE_ID}", "/nope"])
def test_pages_have_no_inline_script_or_style(client, url):
    soup = BeautifulSoup(client.get(url).data, "html.parser")
    scripts = [s["src"].split("?")[0] for s in soup.find_all("script")]
    assert "/static/kb.js" in scripts and set(scripts) <= {"/static/kb.js", "/static/facets.js"}
    assert soup.find("link", rel="stylesheet")["href"].startswith("/static/kb.css")
    assert_no_active_content(soup)


def test_templates_and_static_files_come_from_the_installed_package(client, app):
    assert app.template_folder == package_dir("kb.templates")
    assert Path(app.template_folder, "search.html").is_file()
    assert app.static_folder == str(resources.files("kb.static"))
    for name, kind in (("kb.css", "text/css"), ("kb.js", "text/javascript")):
        with client.get(f"/static/{name}") as res:
            assert res.status_code == 200 and res.content_type.startswith(kind)


def test_the_page_tells_all_words_from_some_and_what_a_card_lacks(client):
    html = client.get("/?q=vm+stuck+starting+windows+zzzqqq").get_data(as_text=True)
    data = client.get("/api/search?q=vm+stuck+starting+windows+zzzqqq").get_json()
    soup = BeautifulSoup(html, "html.parser")
    count = soup.select_one("#result-count").get_text(" ", strip=True)
    partly = data["total"] - data["total_all_words"]
    assert f"{data['total_all_words']} match all words, {partly} partly" in count
    lacking = [r for r in data["results"] if r["missing"]]
    cards = soup.select("li.result")
    assert lacking and len(cards) == len(data["results"])
    for card, r in zip(cards, data["results"]):
        missing = card.select_one(".card-missing")
        assert (missing is not None) == bool(r["missing"])
        if missing is not None:
            assert [s.get_text() for s in missing.select("s")] == r["missing"]


def test_copies_of_an_article_are_one_card_linking_the_others(client):
    data = client.get("/api/search?q=sas+token+expired").get_json()
    lead = next(r for r in data["results"] if r["copies"])
    soup = BeautifulSoup(client.get("/?q=sas+token+expired").get_data(as_text=True), "html.parser")
    # the title links the article with the query and position it was found at (search insights)
    card = next(c for c in soup.select("li.result")
                if urlsplit(c.select_one(".card-title a")["href"]).path == lead["url"])
    assert [a["href"] for a in card.select(".card-copies a")] == [c["url"] for c in lead["copies"]]
    assert card.select_one(".badge-type") is not None


def test_a_query_of_common_words_explains_itself(client):
    soup = BeautifulSoup(client.get("/?q=the+of").get_data(as_text=True), "html.parser")
    assert "common words" in soup.select_one(".notice").get_text()


def test_cards_and_article_pages_show_service_labels(client):
    """The facets say "Virtual Machines (Compute)"; the cards and article pages say the same."""
    soup = BeautifulSoup(client.get("/?q=rdp&service=microsoft.compute").data, "html.parser")
    badges = {b.get_text(" ", strip=True) for b in soup.select(".card .badge-service")}
    assert badges == {"Service: Virtual Machines (Compute)"}
    link = soup.select_one(".card-title a")["href"].split("?")[0]
    article = BeautifulSoup(client.get(link).data, "html.parser")
    assert article.select_one(".eyebrow").get_text() == "Virtual Machines (Compute)"
    badge = article.select_one("a.badge-service")
    assert badge.get_text() == "Virtual Machines (Compute)" and badge["title"] == "microsoft.compute"
    assert "service=microsoft.compute" in badge["href"]
