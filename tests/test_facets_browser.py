"""The facet sidebar in real Chromium against ``kb serve`` (issue 13): "(none)", the value search
and "Show more" on the real corpus, the Service facet without JavaScript, one tab stop per facet
group with arrow keys inside, and the phone's apply bar.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from unittest import mock

import pytest
from playwright.sync_api import expect
from test_browser import DESKTOP, PHONE, Tab, total
from test_facets import _article, write_articles
from test_serve import Server

from kb.index import build

pytestmark = pytest.mark.browser

#: A full index of the real corpus already built on this machine (read-only), else the session's.
REAL_INDEX = Path(os.environ.get("KB_REAL_INDEX", "/tmp/idx-main"))


def serve(index: Path) -> Server:
    with mock.patch.dict(os.environ, {"KB_ANALYTICS": "0"}):
        return Server("--index", str(index), "--workers", "1")


@pytest.fixture(scope="module")
def small_site(tmp_path_factory):
    """``kb serve`` over the facet test corpus plus enough articles for long lists."""
    root = tmp_path_factory.mktemp("facet-site")
    folder = write_articles(root)
    for n in range(12):  # twelve more services: the Service list is long enough for its filter box
        (folder / f"extra{n}.md").write_text(_article(f"extra{n}", f"microsoft.extra{n}", f"tag{n}", "generic", "public"))
    build(root / "articles", root / "index", full=True, workers=1)
    srv = serve(root / "index")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def real_site(request):
    """``kb serve`` over the real corpus: the prebuilt index, or one built from ../shared."""
    index = REAL_INDEX if (REAL_INDEX / "CURRENT").exists() else request.getfixturevalue("corpus_index")
    srv = serve(index)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def tab(browser):
    context = browser.new_context(viewport=DESKTOP)
    yield Tab(context.new_page())
    context.close()


def test_none_value_is_listed_and_filters(small_site, tab):
    page = tab.page
    page.goto(small_site.url + "/")
    none = page.locator('li.facet-value[data-facet="service"][data-value="(none)"]')
    expect(none).to_be_visible()
    count = int(none.get_attribute("data-count"))
    assert count == 2
    none.locator("label").click()
    page.wait_for_url(re.compile(r"service=%28none%29"))
    expect(page.locator(".chips .chip")).to_contain_text("(none)")
    assert total(page) == count
    assert not tab.errors


def test_value_search_and_show_more_find_keyvault_on_the_real_corpus(real_site, tab):
    page = tab.page
    page.goto(real_site.url + "/?q=vm")
    keyvault = page.locator('#facet-list-service li[data-value="microsoft.keyvault"]')
    expect(keyvault).to_have_count(0)  # not among the 30 largest for this query
    listed = page.locator("#facet-list-service li").count()
    expected = page.request.get(real_site.url + "/api/v1/search?q=vm&service=microsoft.keyvault").json()["total"]
    assert expected > 0
    for typed in ("keyv", "key vault"):
        page.locator("#filter-service").fill(typed)
        expect(page.locator("#facet-list-service")).to_have_attribute("data-search", typed)
        expect(keyvault).to_have_count(1)
        assert int(keyvault.get_attribute("data-count")) == expected
        expect(keyvault).to_contain_text("Key Vault")
    page.locator("#filter-service").fill("")
    expect(keyvault).to_have_count(0)
    more = page.locator('[data-facet-more="service"]')
    expect(more).to_be_visible()
    more.click()
    expect(keyvault).to_have_count(1)
    assert page.locator("#facet-list-service li").count() > listed
    expect(more).to_be_hidden()
    keyvault.locator("label").click()  # a value found this way filters like any other
    page.wait_for_url(re.compile(r"service=microsoft\.keyvault"))
    assert total(page) == expected
    assert not tab.errors


def test_a_value_search_survives_ticking_a_value_it_found(real_site, tab):
    """The sidebar is swapped after a tick; what was typed in its value search stays, searched."""
    page = tab.page
    page.goto(real_site.url + "/?q=vm")
    page.locator("#filter-service").fill("net")
    expect(page.locator("#facet-list-service")).to_have_attribute("data-search", "net")
    page.locator("#facet-list-service li label").first.click()
    page.wait_for_url(re.compile(r"service="))
    expect(page.locator("#filter-service")).to_have_value("net")
    expect(page.locator("#facet-list-service")).to_have_attribute("data-search", "net")
    assert not tab.errors


def test_show_more_without_javascript_lists_the_whole_facet(real_site, browser):
    """Without JavaScript "Show more" is a link: the page comes back with that facet whole, and
    a value found there filters through the form's Apply button."""
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(real_site.url + "/?q=vm")
        keyvault = page.locator('#facet-list-service li[data-value="microsoft.keyvault"]')
        expect(keyvault).to_have_count(0)
        listed = page.locator("#facet-list-service li").count()
        page.locator("[data-nojs-note] a").first.click()
        page.wait_for_url(re.compile(r"more=service"))
        assert page.locator("#facet-list-service li").count() > listed
        expect(page.locator('#facet-list-service li[data-value="(none)"]')).to_have_count(1)
        keyvault.locator("input").check()
        page.get_by_role("button", name="Apply filters").click()
        page.wait_for_url(re.compile(r"service=microsoft\.keyvault"))
        expected = page.request.get(real_site.url + "/api/v1/search?q=vm&service=microsoft.keyvault").json()["total"]
        assert total(page) == expected > 0
    finally:
        context.close()


def test_service_facet_is_visible_without_javascript(small_site, browser):
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(small_site.url + "/")
        listing = page.locator("#facet-list-service")
        box = listing.bounding_box()
        assert box is not None and box["width"] > 150 and box["height"] > 100
        first = page.locator("#facet-list-service li .facet-name").first
        expect(first).to_be_visible()
        assert first.bounding_box()["width"] > 50
        expect(page.locator("#filter-service")).to_be_hidden()
        expect(page.locator('[data-facet-more="service"]')).to_be_hidden()
    finally:
        context.close()


def test_one_tab_stop_per_facet_group_and_arrow_keys_inside(small_site, tab):
    page = tab.page
    page.goto(small_site.url + "/")
    page.locator("#filter-service").focus()
    stops = []
    for _ in range(12):
        page.keyboard.press("Tab")
        stops.append(page.evaluate("""() => { const e = document.activeElement;
            const g = e.closest('fieldset.facet'); return [g ? g.dataset.facetName : null, e.id]; }"""))
    in_groups = [s for s in stops if s[0] is not None and s[1].startswith("facet-")]
    groups = [g for g, _ in in_groups]
    # each group's checkboxes are one stop: no group shows up twice in a row
    assert groups[:3] == ["service", "tag", "type"] or groups[:2] == ["service", "tag"], stops
    assert all(a != b for a, b in zip(groups, groups[1:])), stops
    first = page.locator("#facet-list-service input").first
    first.focus()
    page.keyboard.press("ArrowDown")
    second_id = page.locator("#facet-list-service input").nth(1).get_attribute("id")
    assert page.evaluate("document.activeElement.id") == second_id
    page.keyboard.press("End")
    last_id = page.locator("#facet-list-service input").last.get_attribute("id")
    assert page.evaluate("document.activeElement.id") == last_id
    page.keyboard.press("Home")
    page.keyboard.press("ArrowDown")
    # the group's tab stop follows the focus
    assert page.locator(f'[id="{second_id}"]').get_attribute("tabindex") == "0"
    assert page.locator("#facet-list-service input").first.get_attribute("tabindex") == "-1"
    page.keyboard.press("Space")
    page.wait_for_url(re.compile(r"service="))
    assert page.evaluate("document.activeElement.id") == second_id
    assert not tab.errors


def test_phone_apply_bar_shows_the_count_closes_the_panel_and_shows_the_results(small_site, browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(small_site.url + "/")
        filters = page.locator("#filters")
        if not filters.evaluate("d => d.open"):
            page.locator(".filters-summary").click()
        bar = page.locator("[data-apply-filters]")
        value = page.locator('#facet-list-service li[data-value="microsoft.keyvault"]')
        value.locator("label").click()
        page.wait_for_url(re.compile(r"service=microsoft\.keyvault"))
        expect(bar).to_be_visible()
        expect(bar).to_have_text(re.compile(r"Show 2 results"))
        box = bar.bounding_box()
        assert box is not None and box["y"] + box["height"] <= PHONE["height"] + 1  # on screen
        assert filters.evaluate("d => d.open")
        bar.click()
        assert not filters.evaluate("d => d.open")
        expect(page.locator(".results .card").first).to_be_in_viewport()
        top = page.locator(".results .card").first.bounding_box()["y"]
        assert 0 <= top < PHONE["height"]
    finally:
        context.close()
