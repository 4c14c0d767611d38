"""Issue 12 on the real corpus, through the web app: clean titles, questionnaire pages, steps,
placeholders and related articles.  Skips without ../shared (fails under CI=true)."""

from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup

from kb.web import create_app

pytestmark = pytest.mark.corpus

KNOWN = "microsoft.compute.cantrdp.noboot~ossstartup-starting-windows"
GUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@pytest.fixture(scope="module")
def app(corpus_index):
    return create_app({"KB_INDEX": str(corpus_index), "TESTING": True})


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def stored(app) -> list[dict]:
    """The stored fields of every indexed article."""
    gen = app.extensions["kb_engine"].generation()
    return list(gen.searcher.reader().all_stored_fields())


def test_no_indexed_title_keeps_markers_or_is_a_guid(stored):
    assert len(stored) > 15_000
    for doc in stored:
        title = doc["title"]
        assert not re.search(r"<--|-->|<internal>", title, re.I), (doc["id"], title)
        assert not GUID_RE.fullmatch(title.strip()), doc["id"]


def test_every_questionnaire_page_shows_its_questions(client, stored):
    ids = [d["id"] for d in stored if d.get("type") == "problemscopingquestions"]
    assert len(ids) > 2000
    for article_id in ids:
        data = client.get(f"/api/articles/{article_id}").get_json()
        text = " ".join(BeautifulSoup(client.get(f"/articles/{article_id}").data, "html.parser")
                        .select_one(".article").get_text().split())
        wanted = [q["label"] for q in data["questions"]] or [data["body"].split("\n")[0]]
        for label in wanted:
            assert " ".join(label.split()) in text, (article_id, label)


def test_known_article_steps_through_the_api(client):
    data = client.get(f"/api/articles/{KNOWN}").get_json()
    first, second = data["steps_detail"][:2]
    assert any("repair-windows-vm-using-azure-virtual-machine-repair-commands" in x["url"] for x in first["links"])
    assert len(second["items"]) == 2
    page = BeautifulSoup(client.get(f"/articles/{KNOWN}").data, "html.parser")
    step1 = page.select(".prose ol.steps > li")[0]
    assert "repair-windows-vm-using-azure-virtual-machine-repair-commands" in step1.find("a")["href"]


def test_known_article_placeholders_and_portal_links(client):
    data = client.get(f"/api/articles/{KNOWN}").get_json()
    assert "vmname" in [p["name"] for p in data["placeholders"]]
    filled = client.get(f"/api/articles/{KNOWN}?vmname=web01").get_json()
    assert "your virtual machine (VM) web01 is in" in filled["issue"]
    vm = "/subscriptions/0000/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/web01"
    data = client.get(f"/api/articles/{KNOWN}", query_string={"resourceId": vm}).get_json()
    link = BeautifulSoup(data["html"], "html.parser").find("a", string="Boot Diagnostics Screenshot")
    assert link["href"] == f"https://portal.azure.com/#@/resource{vm}/bootDiagnostics"
    assert "(VM) web01 is in" in data["issue"]


def test_related_answers_for_every_article_never_itself_or_a_copy(app, client, stored):
    """Every article has an answer; none lists the article or a copy of it (same dupkey)."""
    import time

    engine = app.extensions["kb_engine"]
    gen = engine.generation()
    took = []
    for doc in stored:
        start = time.perf_counter()
        results = engine.related(doc["id"])
        took.append(time.perf_counter() - start)
        assert results is not None and len(results) <= 5
        mine = gen.docnum(doc["id"])
        group = gen.copies[mine]
        for r in results:
            other = gen.docnum(r["id"])
            assert other != mine and (group < 0 or gen.copies[other] != group), (doc["id"], r["id"])
    took.sort()
    # the 20 ms target is measured in bench/; here only a generous bound for a noisy machine
    assert took[int(len(took) * 0.95)] < 0.2
    assert client.get(f"/api/articles/{KNOWN}/related").status_code == 200


def test_snippet_sources_hold_no_markdown(stored):
    """Issue 12: snippets are readable text (no emphasis marks, links, tags or comments)."""
    for doc in stored:
        text = doc.get("snippet_source", "")
        assert not re.search(r"\*\*|\]\(|<br\b|<!--", text), (doc["id"], text[:200])
