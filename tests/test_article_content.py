"""Issue 12: what an article page and its JSON show: clean titles, steps as authored, payload
pages, placeholders, related articles.  Articles written for these tests (our own words) are
indexed beside the bundled sample."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from kb.index import build
from kb.parse import parse_text
from kb.titles import clean_title
from kb.web import create_app

STEPS_ARTICLE = """<properties
    pageTitle="Widget VM will not start"
    description="The widget VM stops at the boot screen."
    service="microsoft.compute"
    resource="virtualmachines"
    selfHelpType="diagnostics"
    cloudEnvironments="public"
    articleId="widget-boot-0001"
/>

# Widget VM will not start
<!--issueDescription-->
Your virtual machine <!--$vmname-->[vmname]<!--/$vmname--> stopped at the boot screen at <!--$startTime--> startTime <!--/$startTime-->.
<!--/issueDescription-->

Open the [Boot screenshot](data-blade:Microsoft_Azure_Compute.BootBlade.id.$resourceId;data-blade-uri:{$domain}/#@tenant.onmicrosoft.com/resource/{$resourceIdDecoded}/bootDiagnostics) to see where the VM stops, or the [Serial log](data-blade:Microsoft_Azure_Compute.SerialBlade) blade.

## **Recommended Steps**

1. Follow [the repair guide](https://example.com/repair#prepare) to build a rescue VM, then sign in to it

2. On the rescue VM, open the attached disk and find the `boot.log` file

    * If the disk letter is "F", look in `F:\\Logs`
    * If the file is missing, capture a [crash dump](https://example.com/dump) instead

3. Restart <!--$vmname-->[vmname]<!--/$vmname--> and check the screenshot again

## Recommended Documents

* [Widget boot troubleshooting](https://example.com/widget-boot)
"""

QUESTIONNAIRE = """<properties
    pageTitle="Widget scoping questions"
    description="Questions about a widget problem"
    service="microsoft.compute"
    selfHelpType="problemScopingQuestions"
    cloudEnvironments="public"
    articleId="widget-scoping-0001"
/>
# Widget scoping questions
---
{
  "$schema": "SelfHelpContent",
  "title": "Widget scoping questions",
  "fileAttachmentHint": "Attach a screenshot of the widget",
  "formElements": [
    {"id": "started", "order": 1, "controlType": "datetimepicker", "displayLabel": "When did the widget stop?", "required": true},
    {"id": "kind", "order": 2, "controlType": "dropdown", "displayLabel": "Which widget is affected?",
     "watermarkText": "Choose a widget",
     "dropdownOptions": [{"value": "a", "text": "Round widget"}, {"value": "b", "text": "Square widget"}]},
    {"id": "details", "order": 3, "controlType": "multilinetextbox", "displayLabel": "Describe the problem",
     "hints": [{"text": "What you did before it stopped"}, {"text": "Any error message"}]}
  ]
}
---
"""

TOPICS = """<properties
  pagetitle="SupportTopicDescriptions for 0a1b2c3d-1111-2222-3333-444455556666"
  description="SupportTopicDescriptions for 0a1b2c3d-1111-2222-3333-444455556666"
  selfhelptype="SupportTopicDescription"
  cloudenvironments="public"
  articleid="supporttopics_0a1b2c3d-1111-2222-3333-444455556666" />
# Support Topic Descriptions for 0a1b2c3d-1111-2222-3333-444455556666
---
{
  "$schema": "SelfHelpContent",
  "shortDescription": null,
  "supportTopics": [
    {"id": "9f9f9f9f-0000-1111-2222-333333333333", "longDescription": "",
     "shortDescription": "Widgets fail to sync between regions.", "searchTags": "sync;regions", "category": "Replication"},
    {"id": "8e8e8e8e-0000-1111-2222-333333333333", "longDescription": "Billing questions about widgets.",
     "shortDescription": "Unexpected widget charges", "searchTags": "billing", "category": "Billing"}
  ]
}
---
"""

EXTRA = {
    "microsoft.compute/widget-boot.md": STEPS_ARTICLE,
    "microsoft.compute/widget-scoping.md": QUESTIONNAIRE,
    "supportTopicDescriptions/supporttopics_widgets.md": TOPICS,
    "microsoft.compute/widget-template-title.md": STEPS_ARTICLE.replace(
        "# Widget VM will not start", "# <-- Widget VM stuck <Internal> -->").replace("widget-boot-0001", "widget-boot-0002"),
    "microsoft.compute/widget-quota.md": '<properties pageTitle="Widget quota" description="Widget quota." '
                                         'service="microsoft.compute" />\n# Widget quota\n\nRaise the widget quota '
                                         'in the portal.\n',
}
STEPS_ID = "microsoft.compute~widget-boot"
SCOPING_ID = "microsoft.compute~widget-scoping"
TOPICS_ID = "supportTopicDescriptions~supporttopics_widgets"


def build_sample_and_extra(root: Path, sample_dir: Path) -> Path:
    """The sample knowledge base plus the articles of :data:`EXTRA`, indexed under ``root``."""
    shutil.copytree(sample_dir, root / "articles")
    for rel, text in EXTRA.items():
        (root / "articles" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "articles" / rel).write_text(text)
    build(root / "articles", root / "index", full=True, workers=1)
    return root / "index"


@pytest.fixture(scope="module")
def index(tmp_path_factory, sample_dir):
    return build_sample_and_extra(tmp_path_factory.mktemp("content"), sample_dir)


@pytest.fixture(scope="module")
def client(index):
    app = create_app({"KB_INDEX": str(index), "TESTING": True})
    return app.test_client()


def soup_of(client, url: str) -> BeautifulSoup:
    r = client.get(url)
    assert r.status_code == 200, (url, r.status_code)
    return BeautifulSoup(r.get_data(as_text=True), "html.parser")


# --- (4) clean titles ---------------------------------------------------------------------------


@pytest.mark.parametrize(("candidates", "title"), [
    (("<-- SaaS offer-->",), "SaaS offer"),
    (("Diagnose VPN tunnels <Internal>",), "Diagnose VPN tunnels"),
    (("Title", "Reset a widget password"), "Reset a widget password"),
    (("This is the title of the article. It is not displayed in the portal.", "", "Widget quota"), "Widget quota"),
    (("configuration/compression", "configuration/compression"), "Configuration / compression"),
    (("Support Topic Descriptions for 0a1b2c3d-1111-2222-3333-444455556666",), "Support Topic Descriptions"),
])
def test_clean_title(candidates, title):
    assert clean_title(*candidates)[0] == title


def test_titles_are_cleaned_at_index_time_and_the_heading_kept(client):
    data = client.get("/api/articles/microsoft.compute~widget-template-title").get_json()
    assert data["title"] == "Widget VM stuck"
    assert data["heading"] == "<-- Widget VM stuck <Internal> -->"
    topics = client.get(f"/api/articles/{TOPICS_ID}").get_json()
    assert topics["title"] == "Support Topic Descriptions: Widgets fail to sync between regions."
    hits = client.get("/api/search?q=widget+stuck").get_json()["results"]
    assert all("<" not in r["title"] for r in hits)


def test_guid_file_name_is_no_title():
    a = parse_text("## Recommended Documents\n\n* [Widget guide](https://example.com/w)\n\nWidgets need care.",
                   "articles/x/3e964ae0-0333-4a85-97c0-c418dcb8825c.md")
    assert "3e964ae0" not in a.title and a.title


def test_card_hides_a_description_that_repeats_the_title(client):
    soup = soup_of(client, "/?q=widget+scoping+questions")
    card = next(c for c in soup.select(".card") if c.select_one(".card-title").get_text(strip=True) == "Widget scoping questions")
    summary = card.select_one(".card-summary")
    assert summary is not None and summary.get_text() == "Questions about a widget problem"
    # the description "Widget quota." repeats the title "Widget quota": no summary line
    soup = soup_of(client, "/?q=widget+quota")
    card = next(c for c in soup.select(".card") if c.select_one(".card-title").get_text(strip=True) == "Widget quota")
    assert card.select_one(".card-summary") is None


# --- (1) steps as authored --------------------------------------------------------------------


def test_steps_keep_their_markdown_links_and_sub_items():
    a = parse_text(STEPS_ARTICLE, "articles/microsoft.compute/widget-boot.md")
    assert len(a.steps) == len(a.steps_detail) == 3
    first, second, third = a.steps_detail
    assert first["markdown"].startswith("Follow [the repair guide](https://example.com/repair#prepare) to build")
    assert first["links"] == [{"title": "the repair guide", "url": "https://example.com/repair#prepare"}]
    assert first["text"] == "Follow the repair guide to build a rescue VM, then sign in to it"
    assert second["text"] == "On the rescue VM, open the attached disk and find the boot.log file"
    assert "`boot.log`" in second["markdown"]
    assert [i["text"] for i in second["items"]] == [
        'If the disk letter is "F", look in F:\\Logs', "If the file is missing, capture a crash dump instead"]
    assert second["items"][1]["links"] == [{"title": "crash dump", "url": "https://example.com/dump"}]
    # steps keeps its old shape: strings, sub-items joined
    assert a.steps[1].startswith("On the rescue VM") and "capture a crash dump instead" in a.steps[1]
    assert a.markdown.split("\n")[first["line"]].startswith("1. Follow")


def test_api_steps_stay_strings_and_steps_detail_is_documented(client):
    data = client.get(f"/api/articles/{STEPS_ID}").get_json()
    assert all(isinstance(s, str) for s in data["steps"])
    assert [d["text"] for d in data["steps_detail"]][0].startswith("Follow the repair guide")
    spec = client.get("/api/openapi.json").get_json()
    assert "steps_detail" in spec["components"]["schemas"]["Article"]["properties"]
    # 1.1 added steps_detail; later minor versions only add fields
    assert tuple(map(int, spec["info"]["x-api-version"].split("."))) >= (1, 1)


def test_article_page_shows_the_article_once_with_steps_numbered(client):
    soup = soup_of(client, f"/articles/{STEPS_ID}")
    steps = soup.select(".prose ol.steps > li")
    assert len(steps) == 3
    link = steps[0].find("a")
    assert (link.get_text(), link["href"]) == ("the repair guide", "https://example.com/repair#prepare")
    assert [li.get_text(" ", strip=True) for li in steps[1].select("ul > li")][1].startswith("If the file is missing")
    assert soup.get_text().count("Follow the repair guide") == 1  # shown once, not again collapsed
    assert not soup.find("details", class_="body-details")


def test_bulleted_steps_are_numbered():
    a = parse_text("# Fix widgets\n\n## Resolution\n\n* Restart the widget\n* Clear the [cache](https://example.com/c)\n",
                   "articles/x/bullets.md").to_dict()
    from kb.api import _article_html
    html = BeautifulSoup(_article_html(a), "html.parser")
    assert [li.get_text() for li in html.select("ol.steps > li")] == ["Restart the widget", "Clear the cache"]


# --- (2) questionnaire and support-topic pages ----------------------------------------------------


def test_questionnaire_page_shows_questions_options_and_hints(client):
    data = client.get(f"/api/articles/{SCOPING_ID}").get_json()
    assert [q["label"] for q in data["questions"]] == [
        "When did the widget stop?", "Which widget is affected?", "Describe the problem"]
    soup = soup_of(client, f"/articles/{SCOPING_ID}")
    questions = soup.select("ol.questions > li")
    assert [q.select_one(".question-label").get_text(" ", strip=True) for q in questions][0] == \
        "When did the widget stop? (required)"
    assert [li.get_text() for li in questions[1].select(".question-options li")] == ["Round widget", "Square widget"]
    assert [li.get_text() for li in questions[2].select(".question-hints li")] == [
        "What you did before it stopped", "Any error message"]
    assert "controlType" not in soup.get_text() and "datetimepicker" not in soup.get_text()


def test_support_topic_page_lists_its_topics(client):
    soup = soup_of(client, f"/articles/{TOPICS_ID}")
    topics = soup.select("ul.topics > li")
    assert [t.select_one(".topic-title").get_text(" ", strip=True) for t in topics] == [
        "Widgets fail to sync between regions. Replication", "Unexpected widget charges Billing"]
    assert "Billing questions about widgets." in topics[1].get_text()


def test_a_page_whose_payload_has_no_form_still_shows_its_text(tmp_path):
    a = parse_text('<properties pageTitle="Odd widget form" selfHelpType="problemScopingQuestions" />\n# Odd widget form\n'
                   '---\n{displayLabel: "Which widget broke?", broken: true,}\n---\n', "articles/x/odd.md").to_dict()
    assert not a["questions"] and "Which widget broke?" in a["body"]
    from flask import render_template
    app = create_app({"KB_INDEX": str(tmp_path), "TESTING": True})
    with app.test_request_context("/articles/x~odd"):
        page = render_template("article.html", article={**a, "html": "", "url": "/articles/x~odd",
                                                          "links": {"json": "/api/articles/x~odd"}}, back_url="/")
    assert "Which widget broke?" in BeautifulSoup(page, "html.parser").select_one(".article").get_text()


# --- (5) placeholders, portal links, copy and print -----------------------------------------------

VM_ID = "/subscriptions/0000-sub/resourceGroups/widgets-rg/providers/Microsoft.Compute/virtualMachines/web01"


def test_placeholders_are_listed_and_shown_as_placeholders(client):
    data = client.get(f"/api/articles/{STEPS_ID}").get_json()
    assert {(p["name"], p["label"]) for p in data["placeholders"]} == {("vmname", "[vmname]"), ("startTime", "[startTime]")}
    vm = next(p for p in data["placeholders"] if p["name"] == "vmname")
    assert set(vm["where"]) == {"issue", "steps"}
    assert "machine [vmname] stopped at the boot screen at [startTime]." in data["issue"]


def test_query_values_fill_placeholders_escaped_and_never_stored(client):
    data = client.get(f"/api/articles/{STEPS_ID}?vmname=web01&startTime=09:00").get_json()
    assert "machine web01 stopped at the boot screen at 09:00." in data["issue"]
    assert data["steps_detail"][2]["text"] == "Restart web01 and check the screenshot again"
    assert data["filled"] == ["startTime", "vmname"]
    hostile = "<img src=x onerror=alert(1)>*bold*"
    page = client.get(f"/articles/{STEPS_ID}", query_string={"vmname": hostile}).get_data(as_text=True)
    soup = BeautifulSoup(page, "html.parser")
    assert soup.find("img") is None and hostile in soup.select_one(".issue").get_text()
    assert hostile in soup.select_one(".prose ol.steps").get_text()  # markdown-escaped: text, not markup
    # never stored: the next request without values sees the placeholder again
    assert "[vmname]" in client.get(f"/api/articles/{STEPS_ID}").get_json()["issue"]


def test_resource_id_fills_names_and_resolves_portal_links(client):
    data = client.get(f"/api/articles/{STEPS_ID}", query_string={"resourceId": VM_ID}).get_json()
    assert "machine web01 stopped" in data["issue"]
    soup = BeautifulSoup(data["html"], "html.parser")
    shot = soup.find("a", string="Boot screenshot")
    assert shot["href"] == f"https://portal.azure.com/#@/resource{VM_ID}/bootDiagnostics"
    # a blade link that names no resource stays text, marked
    assert soup.find("a", string="Serial log") is None and "Serial log (opens in the Azure portal)" in soup.get_text()
    assert client.get(f"/api/articles/{STEPS_ID}?resourceId=not-a-resource").status_code == 400


def test_unresolved_portal_links_are_marked_text(client):
    soup = soup_of(client, f"/articles/{STEPS_ID}")
    prose = soup.select_one(".prose")
    assert prose.find("a", string="Boot screenshot") is None
    assert "Boot screenshot (opens in the Azure portal)" in prose.get_text()


# --- (6) related articles -------------------------------------------------------------------------


def test_related_articles_same_service_first_never_itself_or_its_copies(client):
    data = client.get(f"/api/articles/{STEPS_ID}/related").get_json()
    ids = [r["id"] for r in data["results"]]
    assert 1 <= len(ids) <= 5 and STEPS_ID not in ids
    services = [r["service"] for r in data["results"]]
    # same service first: no other service before the last microsoft.compute result
    if "microsoft.compute" in services:
        last = max(i for i, s in enumerate(services) if s == "microsoft.compute")
        assert all(s == "microsoft.compute" for s in services[: last + 1])
    assert client.get("/api/articles/no-such-article/related").status_code == 404


def test_related_leaves_out_copies(client):
    # the sample has the same SAS article for two clouds: copies of each other
    hits = client.get("/api/search?q=sas+token+expired").get_json()["results"]
    top = next(r for r in hits if r["copies"])
    ids = {r["id"] for r in client.get(f"/api/articles/{top['id']}/related").get_json()["results"]}
    assert top["id"] not in ids and not ids & {c["id"] for c in top["copies"]}


def test_article_page_lists_related_articles(client):
    soup = soup_of(client, f"/articles/{STEPS_ID}")
    links = soup.select("nav.related li a")
    api = client.get(f"/api/articles/{STEPS_ID}/related").get_json()["results"]
    assert [a["href"] for a in links] == [r["url"] for r in api]


# --- (7) clean snippets ---------------------------------------------------------------------------


def test_snippet_text_has_no_markdown_and_no_glued_headings():
    from kb.highlight import snippet_text
    text = snippet_text("Your VM [vmname] stopped.",
                        "Boot screen\n## **Recommended Steps**\n* Use **bold**, `code` and [a link](https://x.test)\n"
                        "| a | b |\n|---|---|\n1. Restart <br> it")
    assert text == ("Your VM [vmname] stopped. Boot screen · Recommended Steps · Use bold, code and a link · "
                    "a b · Restart it")


def test_result_snippets_read_cleanly(client):
    hits = client.get("/api/search?q=widget+boot+screen").get_json()["results"]
    widget = next(r for r in hits if r["id"] == STEPS_ID)
    assert "[vmname]" in widget["snippet"] and "<!--" not in widget["snippet"]
    assert "**" not in widget["snippet"] and "](" not in widget["snippet"]


def test_a_heading_with_markup_or_a_filled_placeholder_is_shown_once(client, tmp_path):
    from kb.api import _without_title
    md = "# Widget **<!--$ResourceName-->[ResourceName]<!--/$ResourceName-->** is `slow`\n\nText.\n"
    a = parse_text(md, "articles/x/slow.md")
    assert a.title == "Widget [ResourceName] is slow"
    assert _without_title(a.markdown, "Widget web01 is slow", a.heading).strip() == "Text."


def test_steps_of_an_issue_description_keep_their_links(tmp_path):
    md = ("# Widget sync stops\n<!--issueDescription-->\nSync stopped.\n\n## Steps\n\n"
          "1. Check the [sync status](https://example.com/sync)\n    * then retry\n<!--/issueDescription-->\n\nMore text.\n")
    a = parse_text(md, "articles/x/sync.md").to_dict()
    assert a["steps_detail"][0]["line"] is None
    from flask import render_template
    app = create_app({"KB_INDEX": str(tmp_path), "TESTING": True})
    with app.test_request_context("/articles/x~sync"):
        from kb.api import _article_html
        page = render_template("article.html", article={**a, "html": _article_html(a), "url": "/articles/x~sync",
                                                          "links": {"json": "/api/articles/x~sync"}}, back_url="/")
    steps = BeautifulSoup(page, "html.parser").select_one("#steps-heading").find_next("ol")
    assert steps.find("a")["href"] == "https://example.com/sync"
    assert [li.get_text(strip=True) for li in steps.select("ul li")] == ["then retry"]
