"""The search app in real Chromium (Debian's package, driven by Playwright) against ``kb serve``.

Skips without Chromium on a laptop; fails under CI=true (see the chromium_path fixture).
"""

from __future__ import annotations

import re
import shutil
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from playwright.sync_api import Page, expect
from test_serve import Server
from test_web import HOSTILE_ARTICLE, HOSTILE_ID

from kb.index import build

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def site(tmp_path_factory, sample_dir):
    """``kb serve`` (gunicorn) on the sample knowledge base plus one hostile article."""
    root = tmp_path_factory.mktemp("site")
    shutil.copytree(sample_dir, root / "articles")
    (root / "articles" / "microsoft.hostile").mkdir()
    (root / "articles" / "microsoft.hostile" / "hostile-article.md").write_text(HOSTILE_ARTICLE)
    build(root / "articles", root / "index", full=True, workers=1)
    with Server("--index", str(root / "index"), "--workers", "2") as srv:
        yield srv


class Tab:
    """A page that records console errors and dialogs; any dialog is a failed XSS test."""

    def __init__(self, page: Page):
        self.page = page
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

        def dialog(d):
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)
        page.set_default_timeout(15_000)


@pytest.fixture
def tab(browser):
    context = browser.new_context(viewport=DESKTOP)
    yield Tab(context.new_page())
    context.close()


def total(page: Page) -> int:
    text = page.locator("#result-count").inner_text()
    m = re.search(r"([\d,]+) results?", text)
    return int(m.group(1).replace(",", "")) if m else 0


def facet_counts(page: Page, name: str) -> dict[str, int]:
    return page.eval_on_selector_all(
        f'li.facet-value[data-facet="{name}"]',
        "els => Object.fromEntries(els.map(e => [e.dataset.value, Number(e.dataset.count)]))")


def query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def test_search_filter_go_back_and_open_an_article(site, tab):
    page = tab.page
    page.goto(site.url + "/")
    assert page.evaluate("document.activeElement.id") == "q"  # focused on load
    page.keyboard.type("rdp cannot connect")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=rdp\+cannot\+connect"))
    expect(page.locator(".results .card").first).to_be_visible()
    before_total = total(page)
    before_tags = facet_counts(page, "tag")
    service = page.locator('li.facet-value[data-facet="service"]').first
    value, count = service.get_attribute("data-value"), int(service.get_attribute("data-count"))
    assert 0 < count < before_total
    page.evaluate("window.liveRegion = document.getElementById('result-count')")

    service.locator("label").click()
    page.wait_for_url(re.compile(r"service="))
    assert query(page) == {"q": ["rdp cannot connect"], "service": [value]}
    expect(page.locator(".chips .chip")).to_have_count(1)
    assert total(page) == count
    assert facet_counts(page, "tag") != before_tags
    # the live region is the same element with new text, so screen readers announce the count
    assert page.evaluate("window.liveRegion === document.getElementById('result-count')")
    # what the page shows is what the JSON twin says
    twin = page.locator("#json-link").get_attribute("href")
    status, data = site.json(twin)
    assert status == 200 and data["total"] == count
    assert facet_counts(page, "tag") == {v["value"]: v["count"] for v in data["facets"]["tag"]}
    assert facet_counts(page, "service") == {v["value"]: v["count"] for v in data["facets"]["service"]}

    page.go_back()
    expect(page.locator(".chips")).to_have_count(0)
    assert query(page) == {"q": ["rdp cannot connect"]}
    assert total(page) == before_total and facet_counts(page, "tag") == before_tags

    first = page.locator(".results .card-title a").first
    title = first.inner_text()
    first.click()
    page.wait_for_url(re.compile(r"/articles/"))
    assert page.locator("h1").inner_text() == title
    expect(page.locator("ol.steps > li").first).to_be_visible()
    page.locator("a.back-link").click()
    page.wait_for_url(re.compile(r"/\?q=rdp"))
    assert total(page) == before_total
    assert not tab.errors and not tab.dialogs


def test_deep_link_reproduces_the_page(site, tab):
    page = tab.page
    page.goto(site.url + "/?q=connect&service=microsoft.compute&tag=windows&per_page=5")
    assert page.locator("#q").input_value() == "connect"
    assert page.locator('input[name="service"][value="microsoft.compute"]').is_checked()
    assert page.locator('input[name="tag"][value="windows"]').is_checked()
    status, data = site.json("/api/search?q=connect&service=microsoft.compute&tag=windows&per_page=5")
    assert total(page) == data["total"]
    assert page.locator(".results .card-title a").all_inner_texts() == [r["title"] for r in data["results"]]


def test_keyboard_only(site, tab):
    page = tab.page
    page.goto(site.url + "/?q=error")
    page.locator("a.brand").focus()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    box = page.locator('li.facet-value[data-facet="tag"] input').first
    box_id = box.get_attribute("id")
    box.focus()
    page.keyboard.press("Space")
    page.wait_for_url(re.compile(r"tag="))
    # focus stays on the checkbox that was toggled, so the keyboard user keeps their place
    assert page.evaluate("document.activeElement.id") == box_id
    assert page.locator(f'[id="{box_id}"]').is_checked()
    page.keyboard.press("Space")
    page.wait_for_url(lambda url: "tag=" not in url)
    expect(page.locator(".chips")).to_have_count(0)


def test_pagination_and_back(site, tab):
    page = tab.page
    page.goto(site.url + "/")
    page.locator('.pagination a[rel="next"]').click()
    page.wait_for_url(re.compile(r"page=2"))
    assert page.locator("ol.results").get_attribute("start") == "11"
    page.go_back()
    expect(page.locator("ol.results")).to_have_attribute("start", "1")


def test_facet_filter_box_narrows_long_lists(site, tab):
    page = tab.page
    page.goto(site.url + "/")
    box = page.locator("#filter-tag")
    expect(box).to_be_visible()
    listed = facet_counts(page, "tag")
    box.fill("win")
    # the values come from the server (GET /api/v1/facets/tag), all of them, not only those listed
    expect(page.locator("#facet-list-tag")).to_have_attribute("data-search", "win")
    visible = page.locator('li.facet-value[data-facet="tag"]:visible')
    assert set(visible.evaluate_all("els => els.map(e => e.dataset.value)")) >= {v for v in listed if "win" in v}


def test_works_without_javascript(site, browser):
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(site.url + "/?q=connect")
        expect(page.locator("#filter-tag")).to_be_hidden()  # enhancement only
        value = page.locator('li.facet-value[data-facet="service"]').first.get_attribute("data-value")
        count = int(page.locator('li.facet-value[data-facet="service"]').first.get_attribute("data-count"))
        page.locator('li.facet-value[data-facet="service"] input').first.check()
        page.get_by_role("button", name="Apply filters").click()
        page.wait_for_url(re.compile(r"service="))
        assert query(page)["service"] == [value] and total(page) == count
        page.locator(".chips .chip").first.click()
        page.wait_for_url(lambda url: "service=" not in url)
    finally:
        context.close()


def test_hostile_article_runs_no_script(site, tab):
    page = tab.page
    page.goto(site.url + "/?q=hostile+widgets")
    link = page.locator(f'a[href^="/articles/{HOSTILE_ID}?"]')  # ?q=...&pos=N for the insights
    link.click()
    page.wait_for_url(re.compile(re.escape(HOSTILE_ID)))
    expect(page.locator(".prose")).to_contain_text("styled block")
    page.locator(".prose b").hover()
    page.locator(".prose div").click()
    # the neutered links do nothing when clicked (external links are left alone: loopback only)
    for a in page.locator('.prose a:not([href^="http"])').all():
        a.click()
    assert urlsplit(page.url).path.endswith(HOSTILE_ID)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator('a[href^="javascript:" i], [onerror], [onclick], [onload], iframe, object').count() == 0
    assert not tab.dialogs


def test_query_with_markup_runs_no_script(site, tab):
    page = tab.page
    hostile = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>"\'><svg onload=alert(3)>'
    page.goto(site.url + "/?" + urlencode({"q": hostile}))
    expect(page.locator("input[name=q]")).to_have_value(hostile)  # shown as typed, as text
    page.goto(site.url + "/api/search?" + urlencode({"q": hostile}))  # the JSON twin, opened directly
    page.goto(site.url + "/articles/" + quote(hostile, safe=""))  # as an article id: a 404 page
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert not tab.dialogs


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_layout_at_desktop_and_phone_widths(site, browser, viewport, tmp_path):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    tab = Tab(page)
    try:
        for url in ("/?q=vm+not+starting&service=microsoft.compute", "/articles/" + _first_article(site)):
            page.goto(site.url + url)
            page.wait_for_load_state("networkidle")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{url} scrolls sideways by {overflow}px at {viewport}"
            page.screenshot(path=str(tmp_path / f"{viewport['width']}-{len(url)}.png"), full_page=True)
        page.goto(site.url + "/?q=vm")
        sidebar = page.locator(".sidebar").bounding_box()
        results = page.locator(".results-col").bounding_box()
        if viewport is PHONE:
            assert sidebar["y"] < results["y"]  # the facets collapse above the results
            assert page.locator("#filters").get_attribute("open") is None
            page.locator(".filters-summary").click()
            expect(page.locator("#facets")).to_be_visible()
        else:
            assert sidebar["x"] < results["x"] and abs(sidebar["y"] - results["y"]) < 40
            expect(page.locator("#facets")).to_be_visible()
        assert not tab.errors, tab.errors  # includes any Content-Security-Policy violation
    finally:
        context.close()


def _first_article(site) -> str:
    return site.json("/api/search?q=vm+not+starting")[1]["results"][0]["id"]
