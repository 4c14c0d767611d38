"""Issue 12 in real Chromium against ``kb serve``: copy-steps, placeholder filling with and
without JavaScript, the print view and a questionnaire page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from test_article_content import SCOPING_ID, STEPS_ID, VM_ID, build_sample_and_extra
from test_browser import DESKTOP, Tab
from test_serve import Server


pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory, sample_dir):
    index = build_sample_and_extra(tmp_path_factory.mktemp("articles-site"), sample_dir)
    with Server("--index", str(index), "--workers", "1") as srv:
        yield srv


def new_tab(browser, **options) -> Tab:
    context = browser.new_context(viewport=DESKTOP, **options)
    return Tab(context.new_page())


def test_copy_steps_copies_numbered_steps_with_filled_values(site, browser):
    tab = new_tab(browser, permissions=["clipboard-read", "clipboard-write"])
    page = tab.page
    page.goto(f"{site.url}/articles/{STEPS_ID}?vmname=web01")
    page.get_by_role("button", name="Copy steps", exact=True).click()
    expect(page.locator(".copy-status")).to_have_text("Steps copied.")
    text = page.evaluate("navigator.clipboard.readText()")
    lines = text.split("\n")
    assert lines[0] == "1. Follow the repair guide to build a rescue VM, then sign in to it"
    assert lines[2] == '   - If the disk letter is "F", look in F:\\Logs'
    assert lines[-1] == "3. Restart web01 and check the screenshot again"
    page.get_by_role("button", name="Copy steps as markdown").click()
    md = page.evaluate("navigator.clipboard.readText()")
    assert md.startswith("1. Follow [the repair guide](https://example.com/repair#prepare)")
    page.get_by_role("button", name="Copy link").click()
    assert page.evaluate("navigator.clipboard.readText()") == page.url
    assert not tab.errors and not tab.dialogs
    page.context.close()


@pytest.mark.parametrize("javascript", [True, False])
def test_placeholder_form_fills_the_article(site, browser, javascript):
    tab = new_tab(browser, java_script_enabled=javascript)
    page = tab.page
    page.goto(f"{site.url}/articles/{STEPS_ID}")
    expect(page.locator(".issue")).to_contain_text("machine [vmname] stopped")
    page.locator(".fill-values > summary").click()
    page.get_by_label("vmname").fill("web<01>")
    page.get_by_label("Resource ID").fill(VM_ID)
    page.get_by_role("button", name="Fill in").click()
    page.wait_for_url("**vmname=web*")
    expect(page.locator(".issue")).to_contain_text("machine web<01> stopped")
    shot = page.locator(".prose a", has_text="Boot screenshot")
    assert shot.get_attribute("href") == f"https://portal.azure.com/#@/resource{VM_ID}/bootDiagnostics"
    assert page.locator(".article-tools").is_visible() == javascript
    assert not tab.errors and not tab.dialogs
    page.context.close()


def test_print_view_is_the_article_alone_with_link_addresses(site, browser):
    tab = new_tab(browser)
    page = tab.page
    page.goto(f"{site.url}/articles/{STEPS_ID}")
    page.emulate_media(media="print")
    for hidden in (".site-header", ".site-footer", ".article-meta", ".article-tools", ".hero", ".crumbs"):
        assert not page.locator(hidden).is_visible(), hidden
    expect(page.locator("#article-title")).to_be_visible()
    after = page.evaluate("""() => getComputedStyle(
        document.querySelector('.prose a[href^="https://example.com/repair"]'), '::after').content""")
    assert "https://example.com/repair#prepare" in after
    assert len(page.pdf()) > 1000  # it prints
    page.context.close()


def test_questionnaire_page_shows_its_questions(site, browser):
    tab = new_tab(browser)
    page = tab.page
    page.goto(f"{site.url}/articles/{SCOPING_ID}")
    questions = page.locator("ol.questions > li")
    expect(questions).to_have_count(3)
    expect(questions.nth(1)).to_contain_text("Which widget is affected?")
    expect(questions.nth(1).locator(".question-options li")).to_have_text(["Round widget", "Square widget"])
    expect(questions.nth(2).locator(".question-hints li").first).to_have_text("What you did before it stopped")
    assert not tab.errors
    page.context.close()
