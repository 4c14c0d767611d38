"""Issue 13 through Flask's test client: prefix searches, suggestions, the page's edge states,
the landing page, and the markup the search page's keyboard use rests on."""

from __future__ import annotations

import os

import pytest
from bs4 import BeautifulSoup

from kb import query
from kb.index import build
from kb.search import SearchEngine
from kb.web import create_app


def html(client, url: str) -> BeautifulSoup:
    res = client.get(url)
    assert res.status_code == 200, res.data[:300]
    return BeautifulSoup(res.data, "html.parser")


def titles(data: dict) -> list[str]:
    return [r["title"] for r in data["results"]]


# -- item 1: search as you type ---------------------------------------------------------------


def test_prefix_reads_the_last_word_as_the_start_of_a_word(tmp_path):
    for name, title in [("a", "Redirect loop on sign-in"), ("b", "Loop of restarts after an update"),
                        ("c", "Sign-in page shows an error")]:
        path = tmp_path / "articles" / "microsoft.web" / f"{name}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'<properties\n    pageTitle="{title}"\n    service="microsoft.web"\n/>\n\n# {title}\n\n{title}.\n')
    build(tmp_path / "articles", tmp_path / "index", full=True, workers=1)
    client = create_app({"KB_INDEX": str(tmp_path / "index"), "TESTING": True, "KB_ANALYTICS": 0}).test_client()
    typing = client.get("/api/v1/search?q=loop+redi&prefix=1").get_json()
    assert titles(typing)[0] == "Redirect loop on sign-in" and typing["total_all_words"] == 1
    assert typing["results"][0]["missing"] == [] and typing["suggestion"] is None
    assert typing["links"]["self"].endswith("prefix=1")


def test_prefix_ignores_a_one_letter_last_word(client):
    """ "key v" searched "v" as a word and ranked junk; as a start it is nothing yet."""
    assert (client.get("/api/v1/search?q=ssh+p&prefix=1").get_json()["total"]
            == client.get("/api/v1/search?q=ssh").get_json()["total"])


@pytest.mark.parametrize("value", ["2", "yes", "true"])
def test_prefix_must_be_0_or_1(client, value):
    body = client.get(f"/api/v1/search?q=vm&prefix={value}").get_json()
    assert body["status"] == 400 and body["parameter"] == "prefix" and body["code"] == "invalid_parameter"


def test_completions_stay_within_the_wildcard_budget(sample_index):
    engine = SearchEngine(sample_index)
    builder = engine.generation().queries
    alts, notes, cacheable = builder.completions("s")
    assert alts == [] and cacheable  # one letter completes to nothing
    full, _notes, _ = builder.completions("st")
    assert 0 < len(full) <= query.MAX_COMPLETIONS + 2  # the typed start and its parts besides
    taken = query.BUCKET.take(10**9)  # another client emptied this worker's bucket
    try:
        rationed, notes, cacheable = builder.completions("st")
        # the most common completion is free, like a typed word; the others wait for the bucket
        assert len(rationed) < len(full) and not cacheable
        assert any("completed less than usual" in n for n in notes)
    finally:
        query.BUCKET.give_back(taken)
    engine.close()


# -- item 1: suggestions ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/suggest", "/api/v1/suggest"])
def test_suggest_lists_error_codes(client, path):
    data = client.get(f"{path}?q=aadsts5").get_json()
    codes = [s["text"] for s in data["suggestions"] if s["kind"] == "code"]
    assert "AADSTS50076" in codes and all(c.startswith("AADSTS5") for c in codes)
    both = [s["text"] for s in client.get(f"{path}?q=aadsts").get_json()["suggestions"] if s["kind"] == "code"]
    assert "AADSTS50076" in both and len(both) == 5  # the most common first, at most MAX_CODES
    assert "AADSTS700016" in [s["text"] for s in client.get(f"{path}?q=aadsts7").get_json()["suggestions"]]


def test_suggest_lists_titles_by_the_starts_of_their_words(client):
    data = client.get("/api/v1/suggest?q=ssh+perm").get_json()
    found = [s for s in data["suggestions"] if s["kind"] == "title"]
    assert found and "permission denied" in found[0]["text"].lower()
    assert found[0]["url"] == f"/articles/{found[0]['id']}"
    assert client.get("/api/v1/suggest?q=zzzzqq").get_json()["suggestions"] == []
    assert client.get("/api/v1/suggest?q=").get_json() == {"query": "", "suggestions": []}


@pytest.mark.parametrize("qs,parameter,code", [
    ("q=a&limit=3", "limit", "unknown_parameter"),
    ("q=" + "x" * 501, "q", "invalid_parameter"),
    ("q=a&q=b", "q", "invalid_parameter"),
])
def test_suggest_refuses_bad_parameters(client, qs, parameter, code):
    body = client.get(f"/api/v1/suggest?{qs}").get_json()
    assert body["status"] == 400 and body["parameter"] == parameter and body["code"] == code


def test_suggest_revalidates_with_an_etag(client):
    first = client.get("/api/v1/suggest?q=vm")
    again = client.get("/api/v1/suggest?q=vm", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


# -- item 2: keeping the place ----------------------------------------------------------------


def test_no_autofocus_when_a_query_is_shown(client):
    assert not html(client, "/?q=rdp").find("input", id="q").has_attr("autofocus")
    assert html(client, "/").find("input", id="q").has_attr("autofocus")


def test_result_links_carry_the_query_even_without_recording(sample_index):
    client = create_app({"KB_INDEX": str(sample_index), "TESTING": True, "KB_ANALYTICS": 0}).test_client()
    link = html(client, "/?q=rdp").select_one("a.result-link")["href"]
    assert link.endswith("?q=rdp")
    assert html(client, link).find("input", id="q")["value"] == "rdp"


# -- item 4: keyboard -------------------------------------------------------------------------


def test_results_come_before_the_filters_in_dom_order(client):
    soup = html(client, "/?q=connect")
    order = [el.name for el in soup.select("#content > section.results-col, #content > aside.sidebar")]
    assert order == ["section", "aside"]
    skip = soup.select("a.skip-link")
    assert skip[0]["href"] == "#results" and skip[0].get_text() == "Skip to results"
    assert soup.find(id="results")["tabindex"] == "-1"


# -- item 5: edge states ----------------------------------------------------------------------


def test_did_you_mean_keeps_the_filters(client):
    data = client.get("/api/v1/search?q=firewal+rule&service=microsoft.sql").get_json()
    assert data["suggestion"] == "firewall rule"
    assert data["links"]["suggestion"] == "/api/v1/search?q=firewall+rule&service=microsoft.sql"
    soup = html(client, "/?q=firewal+rule&service=microsoft.sql")
    assert soup.select_one(".suggestion a")["href"] == "/?q=firewall+rule&service=microsoft.sql"


def test_past_the_end_and_bad_pages_keep_the_query(client):
    res = client.get("/api/v1/search?q=connect&page=9")
    assert res.status_code == 400 and res.get_json()["code"] == "page_out_of_range"
    soup = html(client, "/?q=connect&page=9")
    assert "There is no page 9" in soup.select_one(".page-note").get_text()
    assert soup.find("input", id="q")["value"] == "connect" and soup.select(".result")
    soup = html(client, "/?q=connect&per_page=0&service=microsoft.network")
    assert "per_page must be an integer" in soup.select_one(".page-note").get_text()
    # the filter is kept (its chip shows the service's label from kb/facet_labels.txt)
    chips = soup.select(".chips .chip")
    assert len(chips) == 1 and "service=microsoft.network" not in chips[0]["href"]
    assert soup.find("input", attrs={"name": "service", "value": "microsoft.network"}).has_attr("checked")


def _corpus(root, times: list[int]):
    """Articles in two services whose files have the given modification times."""
    for n, mtime in enumerate(times):
        service = "microsoft.web" if n % 2 else "microsoft.sql"
        path = root / service / f"article-{n}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'<properties\n    pageTitle="Landing article {n}"\n    service="{service}"\n/>\n\n'
                        f"# Landing article {n}\n\nText of article {n} about a timeout.\n")
        os.utime(path, (mtime, mtime))


def _landing(tmp_path, times, render: bool = True, **config):
    _corpus(tmp_path / "articles", times)
    build(tmp_path / "articles", tmp_path / "index", full=True, workers=1)
    app = create_app({"KB_INDEX": str(tmp_path / "index"), "TESTING": True, **config})
    return app, html(app.test_client(), "/") if render else None


def test_landing_lists_recently_changed_articles_by_service(tmp_path):
    _app, soup = _landing(tmp_path, [1_600_000_000 + n * 1000 for n in range(6)], KB_ANALYTICS=0)
    welcome = soup.select_one(".welcome")
    assert welcome.select_one(".welcome-heading").get_text() == "Recently changed articles"
    groups = {g.select_one(".welcome-service").get_text(): [a.get_text() for a in g.select("a")]
              for g in welcome.select(".welcome-group")}
    # grouped under the services' labels (kb/facet_labels.txt)
    assert groups == {"App Service (Web Apps)": ["Landing article 5", "Landing article 3", "Landing article 1"],
                      "SQL Database": ["Landing article 4", "Landing article 2", "Landing article 0"]}


def test_landing_lists_services_when_files_tell_no_time(tmp_path):
    _app, soup = _landing(tmp_path, [1_600_000_000] * 4, KB_ANALYTICS=0)
    assert soup.select_one(".welcome-heading").get_text() == "Browse by service"
    links = [a["href"] for a in soup.select(".welcome-services a")]
    assert sorted(links) == ["/?service=microsoft.sql", "/?service=microsoft.web"]


def test_landing_lists_the_most_opened_articles(tmp_path):
    app, _soup = _landing(tmp_path, [1_600_000_000] * 4, render=False, KB_ANALYTICS=1,
                          KB_ANALYTICS_DB=str(tmp_path / "insights.sqlite"))
    client = app.test_client()
    ids = [r["id"] for r in client.get("/api/v1/search?q=landing").get_json()["results"]]
    for n, article in enumerate([ids[2], ids[2], ids[1]]):
        client.get(f"/articles/{article}?q=landing&pos={n + 1}")
    assert app.extensions["kb_analytics"].flush()
    soup = html(client, "/")
    assert soup.select_one(".welcome-heading").get_text() == "Most opened articles"
    opened = [a["href"] for a in soup.select(".welcome-group a")]
    assert opened[0] == f"/articles/{ids[2]}" and f"/articles/{ids[1]}" in opened and len(opened) == 2
    assert not html(client, "/?q=landing").select(".welcome")  # only before anything is typed
