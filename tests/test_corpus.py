"""The parser on the whole real corpus (../shared): counts, invariants and a few known files.

Skips without ../shared; fails instead under CI=true (see conftest.need).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from kb.articles import Skipped, discover, load_all
from kb.parse import Article, Document

pytestmark = pytest.mark.corpus

#: What the web API accepts as an article id (kb.api.ARTICLE_ID_RE).
ARTICLE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,499}")


@pytest.fixture(scope="module")
def parsed(corpus_dir) -> dict[str, Article | Skipped]:
    """Every file of the corpus, parsed once with worker processes, by path."""
    paths = discover(corpus_dir)
    results = list(load_all(corpus_dir, paths, workers=2))
    assert [r.path for r in results] == paths  # in order, one result per file
    return {r.path: r for r in results}


@pytest.fixture(scope="module")
def articles(parsed) -> list[Article]:
    return [r for r in parsed.values() if isinstance(r, Article)]


def test_every_file_is_an_article_or_a_reason(parsed, articles):
    assert len(parsed) >= 15_500
    assert len(articles) >= 15_500
    skipped = [r for r in parsed.values() if isinstance(r, Skipped)]
    assert all(s.reason and s.hash for s in skipped)
    reasons = Counter(s.reason for s in skipped)
    assert "parser-error" not in reasons, [s for s in skipped if s.reason == "parser-error"][:3]
    # the corpus has a few files whose text is nothing but properties and an empty "#"
    assert set(reasons) <= {"empty"} and reasons["empty"] <= 10


def test_titles_services_and_facets(articles):
    assert all(a.title.strip() for a in articles)
    with_service = [a for a in articles if a.service]
    assert len(with_service) >= 11_000
    assert all(a.service == a.service.strip().lower() for a in articles)
    assert 50 <= len({a.service for a in with_service}) <= 400
    for a in articles:
        assert all(t and t == t.strip().lower() for t in a.tags), a.path
        assert all(c and c == c.strip().lower() for c in a.clouds), a.path
    assert sum(1 for a in articles if a.tags) >= 2_000
    assert sum(1 for a in articles if a.type) >= 15_000


def test_ids_are_unique_and_url_safe(articles):
    ids = [a.id for a in articles]
    assert len(set(ids)) == len(ids)
    assert all(ARTICLE_ID_RE.fullmatch(i) for i in ids)
    assert all(a.path.startswith(("articles/", "includes/")) and "\\" not in a.path for a in articles)
    # articleIds repeat across copies of an article (one per cloud), so they are not the identity
    article_ids = Counter(a.article_id.lower() for a in articles if a.article_id)
    assert article_ids.most_common(1)[0][1] > 1


def test_structure_is_found(articles):
    assert sum(1 for a in articles if a.steps) >= 5_000
    assert sum(1 for a in articles if a.documents) >= 7_500
    assert sum(1 for a in articles if a.issue) >= 2_800
    assert sum(1 for a in articles if a.info) >= 2_500
    assert all(d.url for a in articles for d in a.documents)


def test_messy_input_is_cleaned(articles):
    warnings = Counter(w for a in articles for w in a.warnings)
    assert warnings["not-utf8"] == 3
    assert warnings["json-payload"] >= 2_800
    assert 1 <= warnings["property-typo"] <= 100
    for a in articles:
        text = "\n".join([a.title, a.description, a.info, a.issue, a.body, a.markdown, *a.steps])
        assert "\r" not in text and "\ufeff" not in text, a.path
        assert "<!--$" not in a.markdown and "<!--" not in a.body, a.path
        assert "<properties" not in a.markdown.lower(), a.path
        assert '"displayLabel"' not in a.body and '"controlType"' not in a.body, a.path


def test_known_article(parsed):
    a = parsed["articles/microsoft.compute.cantrdp.noboot/ossstartup-starting-windows.md"]
    assert isinstance(a, Article)
    assert a.id == "microsoft.compute.cantrdp.noboot~ossstartup-starting-windows"
    assert a.title == "VM boot error: Starting Windows"
    assert a.service == "microsoft.compute"
    assert a.resource == "virtualmachines"
    assert a.tags == ["windows"]
    assert a.clouds == ["public", "fairfax", "usnat", "ussec"]
    assert (a.type, a.scenario, a.article_id) == ("diagnostics", "booterror", "OSStartUp-STARTING_WINDOWS")
    assert a.info == "The VM is hung on the 'Starting Windows' screen and is unresponsive."
    assert a.issue.startswith("We have investigated and determined that your virtual machine (VM) [vmname] is in")
    assert len(a.steps) == 3
    assert a.steps[0].startswith("Use steps 1-3 of the VM Repair Commands to prepare a new Repair VM")
    assert "locate the memory.dmp file If the driver letter" in a.steps[1]  # nested items join their step
    rdp = "https://docs.microsoft.com/azure/virtual-machines/troubleshooting/rdp"
    assert Document("Troubleshoot RDP Issues", rdp) in a.documents
    assert a.body.startswith("You can use the Boot Diagnostics Screenshot to see the current state of your VM.")
    assert "data-blade" not in a.body and "**" not in a.body


def test_known_json_payload_article(parsed):
    a = parsed["articles/problemscopingques.devices.iothubs/problemscopingques-registry.md"]
    assert isinstance(a, Article)
    assert a.title == "Device identity registry issues"
    assert "When did the problem start?" in a.body
    assert "Example: 429001 ThrottlingException" in a.body
    for key_or_id in ("displayLabel", "watermarkText", "problem_start_time", "datetimepicker", "SelfHelpContent"):
        assert key_or_id not in a.body
    assert "json-payload" in a.warnings


def test_known_odd_files(parsed):
    typo = parsed["articles/microsoft.media/mediaservices-lva-onboarding-getting-started.md"]
    assert typo.info == "Onboarding and getting started" and "property-typo" in typo.warnings
    cp1252 = parsed["articles/problemscopingques.sqlvm/v2-problemscopingques-clusteringtechnologies.md"]
    assert "I\u2019m not sure" in cp1252.body and "not-utf8" in cp1252.warnings
    # a stray quote in the properties (ms.author="scotro) must not lose the others
    quote = parsed["articles/microsoft.classiccompute/classiccompute-myvmrestartedunexpectedly-mooncake.md"]
    assert (quote.service, quote.tags, quote.title) == (
        "microsoft.classiccompute", ["windows", "windowssql"], "My VM restarted unexpectedly"
    )
    doubled = parsed["articles/microsoft.intune/intuneservice-setupconditionalaccess-appbasedconditionalaccess.md"]
    assert doubled.service == "microsoft.intune" and len(doubled.properties) < 20  # description="...""
    assert "properties-malformed" in doubled.warnings
    assert "Recommended steps" in doubled.body


def test_titles_are_clean(articles):
    """Issue 12: no title keeps comment markers, <Internal>, a GUID or a template sentence."""
    guid = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
    for a in articles:
        assert not re.search(r"<--|-->|<internal>", a.title, re.I), (a.path, a.title)
        assert not guid.search(a.title), (a.path, a.title)
        assert a.title != "Title" and not a.title.startswith("This is the title of the article"), a.path
    saas = [a for a in articles if a.heading == "<-- SaaS offer-->"]
    assert saas and all(a.title == "SaaS offer" for a in saas)


def test_known_article_steps_as_authored(parsed):
    """Issue 12: step 1 carries its link, step 2 its two sub-items."""
    a = parsed["articles/microsoft.compute.cantrdp.noboot/ossstartup-starting-windows.md"]
    first, second, _third = a.steps_detail
    assert any("repair-windows-vm-using-azure-virtual-machine-repair-commands" in link["url"] for link in first["links"])
    assert len(second["items"]) == 2
    assert all(len(a.steps_detail) == len(a.steps) for a in parsed.values() if isinstance(a, Article))
