"""The parser on small, hand-written snippets: one test per oddity of the real corpus."""

from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup

from kb.articles import Skipped, load, load_all
from kb.parse import (
    Article,
    Document,
    ParseError,
    article_id_for,
    decode,
    inline_text,
    parse_bytes,
    parse_text,
    render_markdown,
)

PROPS = """<properties
    pageTitle="Page title"
    description="A description"
    service="Microsoft.Compute"
    resource="virtualMachines"
    resourceTags="windows, Linux,,  ,WindowsSQL"
    cloudEnvironments="public, Fairfax"
    selfHelpType="diagnostics"
    diagnosticScenario="booterror"
    articleId="ABC-123"
/>
"""

ARTICLE = PROPS + """
# The real title
<!--issueDescription-->
Your VM <!--$vmname-->[vmname]<!--/$vmname--> is not responding.
<!--/issueDescription-->

Some **intro** text with a [link](https://example.com/intro).

## **Recommended Steps**

1. Restart the VM
2. Check the `boot diagnostics` screenshot

## Recommended Documents

* [Troubleshoot RDP](https://docs.microsoft.com/rdp)
* [Boot errors](https://docs.microsoft.com/boot)
"""


def parse(text: str, path: str = "articles/folder/file.md") -> Article:
    return parse_text(text, path)


def test_full_article():
    a = parse(ARTICLE)
    assert a.title == "The real title"
    assert a.description == "A description"
    assert a.issue == "Your VM [vmname] is not responding."
    assert a.steps == ["Restart the VM", "Check the boot diagnostics screenshot"]
    assert a.documents == [
        Document("Troubleshoot RDP", "https://docs.microsoft.com/rdp"),
        Document("Boot errors", "https://docs.microsoft.com/boot"),
    ]
    assert "Some intro text with a link." in a.body
    assert "https://example.com" not in a.body
    assert a.service == "microsoft.compute"
    assert a.resource == "virtualMachines"
    assert a.tags == ["windows", "linux", "windowssql"]
    assert a.clouds == ["public", "fairfax"]
    assert a.type == "diagnostics"
    assert a.scenario == "booterror"
    assert a.article_id == "ABC-123"
    assert a.id == "folder~file"
    assert a.path == "articles/folder/file.md"
    assert a.warnings == []
    assert "<properties" not in a.markdown and "<!--" not in a.markdown


# --- bytes and encodings ----------------------------------------------------------------------


def test_crlf_is_the_same_as_lf():
    lf = parse_bytes(ARTICLE.encode(), "articles/a/b.md")
    crlf = parse_bytes(ARTICLE.replace("\n", "\r\n").encode(), "articles/a/b.md")
    for name in ("title", "description", "issue", "steps", "documents", "body", "tags", "markdown"):
        assert getattr(crlf, name) == getattr(lf, name), name
    assert "\r" not in crlf.body + crlf.markdown + "".join(crlf.properties.values())


def test_bom_is_dropped():
    a = parse_bytes(b"\xef\xbb\xbf" + ARTICLE.encode(), "articles/a/b.md")
    assert a.title == "The real title"
    assert a.properties["pagetitle"] == "Page title"
    assert "no-properties" not in a.warnings


def test_cp1252_bytes_are_decoded_and_counted():
    data = PROPS.encode() + b"\n# Caf\xe9 \x93quoted\x94\n\nIt\x92s broken.\n"
    a = parse_bytes(data, "articles/a/b.md")
    assert a.title == "Caf\u00e9 \u201cquoted\u201d"
    assert "It\u2019s broken." in a.body
    assert "not-utf8" in a.warnings


def test_stray_cp1252_byte_in_utf8_keeps_the_utf8():
    text, warns = decode("# Caf\u00e9 na\u00efve".encode() + b"\xa0end")
    assert text == "# Caf\u00e9 na\u00efve\u00a0end"
    assert warns == ["not-utf8"]


def test_utf16_with_bom():
    a = parse_bytes(("# UTF-16 title\n\nHello world").encode("utf-16"), "articles/a/b.md")
    assert (a.title, a.body) == ("UTF-16 title", "Hello world")
    assert "utf16" in a.warnings


def test_nul_bytes_are_dropped_and_binary_refused():
    a = parse_bytes(b"# Ti\x00tle here\n\n" + b"text " * 10, "articles/a/b.md")
    assert a.title == "Title here" and "nul-bytes" in a.warnings
    with pytest.raises(ParseError) as err:
        parse_bytes(b"\x00\x01\x02\x03" * 100, "articles/a/b.md")
    assert err.value.reason == "binary"


@pytest.mark.parametrize(
    "data",
    [b"", b"   \n\r\n\t", b"\xef\xbb\xbf", b'<properties pageTitle="" service="x" />\n#\n', b"<!-- only a comment -->"],
)
def test_empty_files_have_a_reason(data):
    with pytest.raises(ParseError) as err:
        parse_bytes(data, "articles/a/b.md")
    assert err.value.reason == "empty"


def test_too_large(monkeypatch):
    import kb.parse

    monkeypatch.setattr(kb.parse, "MAX_BYTES", 100)
    with pytest.raises(ParseError) as err:
        parse_bytes(b"x" * 101, "articles/a/b.md")
    assert err.value.reason == "too-large"


# --- properties -------------------------------------------------------------------------------


def test_property_names_are_case_insensitive():
    a = parse('<properties PAGETITLE="T" pagetitle="ignored" SeRvIcE="Microsoft.DocumentDB" resourcetags="A"/>\ntext')
    assert a.properties == {"pagetitle": "T", "service": "Microsoft.DocumentDB", "resourcetags": "A"}
    assert a.service == "microsoft.documentdb"
    assert a.title == "T"  # no H1: pageTitle


def test_typo_in_property_name_is_mapped_and_counted():
    a = parse('<properties pageTitle="T" infoBubbleTest="Hover text" supportToicIds="1,2" />\n# H\ntext')
    assert a.info == "Hover text"
    assert a.properties["infobubbletext"] == "Hover text"
    assert a.properties["supporttopicids"] == "1,2"
    assert "property-typo" in a.warnings
    # names that are merely unknown are kept as they are, without a warning
    b = parse('<properties pageTitle="T" icmTeam="x" />\n# H\ntext')
    assert b.properties["icmteam"] == "x" and "property-typo" not in b.warnings


def test_property_values_are_unescaped():
    a = parse(
        '<properties pageTitle="Tom &amp; Jerry" description="Say &quot;hi&quot; &lt;b&gt; &#39;x&#39;"'
        " infoBubbleText='It&apos;s \"quoted\"' />\ntext"
    )
    assert a.title == "Tom & Jerry"
    assert a.description == "Say \"hi\" <b> 'x'"
    assert a.info == "It's \"quoted\""


def test_property_value_may_contain_gt_and_newlines():
    a = parse('<properties\n\tpageTitle="a > b"\n\tdescription="line one\n  line two" />\n# H\ntext')
    assert a.properties["pagetitle"] == "a > b"
    assert a.description == "line one line two"
    assert a.body == "text"


def test_missing_properties():
    a = parse("# Just markdown\n\nSome text.", "articles/x/no-props.md")
    assert (a.title, a.body, a.properties, a.service) == ("Just markdown", "Some text.", {}, "")
    assert "no-properties" in a.warnings


def test_unclosed_properties_end_at_the_first_blank_line():
    a = parse('<properties pageTitle="T"\n  service="Microsoft.Web"\n\n# Heading\n\nBody text.')
    assert a.service == "microsoft.web"
    assert a.title == "Heading" and a.body == "Body text."
    assert "properties-unclosed" in a.warnings


def test_stray_quote_in_properties():
    text = '<properties\n  pageTitle="T"\n  ms.author="someone\n  service="Microsoft.Web"\n/>\n\n# Heading\n\nBody.'
    a = parse(text)
    assert a.title == "Heading" and a.body == "Body."
    assert a.properties["pagetitle"] == "T"
    assert "properties-malformed" in a.warnings


def test_doubled_quote_in_properties():
    a = parse('<properties\n  description="Text""\n  service="Microsoft.Intune"\n/>\n\n# Heading\n\nBody.')
    assert a.properties == {"description": "Text", "service": "Microsoft.Intune"}
    assert (a.title, a.body) == ("Heading", "Body.")
    assert "properties-malformed" in a.warnings


def test_resource_tags_are_split_trimmed_lowercased_and_deduplicated():
    a = parse('<properties resourceTags=" Windows ,linux,, ,WINDOWS;RedHat " />\ntext')
    assert a.tags == ["windows", "linux", "redhat"]
    assert parse('<properties resourceTags="" />\ntext').tags == []


def test_service_is_lowercased_and_trimmed():
    assert parse('<properties service="  Microsoft.DocumentDB " />\ntext').service == "microsoft.documentdb"


# --- title ------------------------------------------------------------------------------------


def test_title_prefers_the_first_h1_then_page_title_then_file_name():
    assert parse('<properties pageTitle="P" />\n## Not h1\n\n# First\n\n# Second').title == "First"
    assert parse('<properties pageTitle="P" />\n## Only h2\n\ntext').title == "P"
    a = parse("## Only h2\n\ntext", "articles/folder/my-file.md")
    assert a.title == "my-file" and "title-from-filename" in a.warnings


def test_setext_heading_and_closing_hashes():
    assert parse("Title here\n===\n\ntext").title == "Title here"
    assert parse("# About C# #\n\ntext").title == "About C#"
    assert parse("# **Bold** _title_\n\ntext").title == "Bold title"


def test_empty_h1_does_not_count():
    assert parse('<properties pageTitle="P" />\n#\n# Escalation\n\ntext').title == "Escalation"


# --- issue description and placeholders -------------------------------------------------------


def test_placeholders_become_their_text():
    a = parse("# T\n\nVM <!--$vmname-->[vmname]<!--/$vmname--> in <!-- $rg -->[rg]<!-- /$rg -->.")
    assert a.body == "VM [vmname] in [rg]."
    assert "[vmname]" in a.markdown and "<!--" not in a.markdown


def test_unclosed_placeholder():
    assert parse("# T\n\nVM <!--$vmname-->[vmname] is down").body == "VM [vmname] is down"


def test_issue_description_is_its_own_field():
    a = parse("# T\n\n<!--issueDescription-->\nThe **issue** text.\n<!--/issueDescription-->\n\nBody text.")
    assert a.issue == "The issue text."
    assert a.body == "Body text."


def test_issue_description_variants():
    # spaces in the markers, several sections, an unclosed one running to the end
    text = "# T\n<!-- issueDescription -->One.<!-- /issueDescription -->\nMiddle.\n<!--issueDescription-->\nTwo."
    a = parse(text)
    assert a.issue == "One.\nTwo."
    assert a.body == "Middle."


def test_steps_inside_the_issue_description_are_still_steps():
    a = parse("# T\n<!--issueDescription-->\nProblem.\n\n## Recommended Steps\n\n1. Do this\n<!--/issueDescription-->")
    assert a.steps == ["Do this"]
    assert a.issue.startswith("Problem.")


# --- steps ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "heading",
    [
        "## Recommended Steps",
        "## **Recommended steps**",
        "### Resolution",
        "## Mitigation:",
        "# Steps to resolve",
        "## Fix it yourself",
        "**Recommended Steps**",
        "#Recommended Steps",
        ":::Section Recommended solutions:::",
    ],
)
def test_steps_under_various_headings(heading):
    a = parse(f"# Title\n\n{heading}\n\n1. First step\n2. Second step\n\nAfter the list.")
    assert a.steps == ["First step", "Second step"]
    assert "After the list." in a.body
    assert "First step" not in a.body


def test_bullet_steps_nested_items_and_continuations():
    text = """# T

## Recommended Steps

- Step one
  continues here
    - nested a
    - nested b
- Step two

  with a second paragraph
\t* tab-nested item
- Step three
"""
    a = parse(text)
    assert a.steps == [
        "Step one continues here nested a nested b",
        "Step two with a second paragraph tab-nested item",
        "Step three",
    ]


def test_numbered_list_is_steps_when_there_is_no_steps_section():
    a = parse("# T\n\nDo this:\n\n1. First\n2. Second\n\n- a bullet is not a step\n")
    assert a.steps == ["First", "Second"]
    assert "a bullet is not a step" in a.body and "First" not in a.body


def test_numbered_list_outside_a_steps_section_is_body_when_there_is_one():
    a = parse("# T\n\n## Background\n\n1. Fact one\n\n## Recommended Steps\n\n1. Real step\n")
    assert a.steps == ["Real step"]
    assert "Fact one" in a.body


def test_paragraph_in_steps_section_is_body():
    a = parse("# T\n\n## Recommended Steps\n\nIntro paragraph.\n\n1. Step\n")
    assert a.steps == ["Step"] and "Intro paragraph." in a.body


def test_fenced_code_in_a_step_and_outside():
    text = (
        "# T\n\n## Recommended Steps\n\n1. Run:\n   ```\n   az vm restart\n   ```\n2. Done\n\n"
        "```\n# not a heading\n```\n"
    )
    a = parse(text)
    assert a.steps == ["Run: az vm restart", "Done"]
    assert "# not a heading" in a.body


def test_steps_keep_code_spans_and_entities():
    a = parse("# T\n\n## Recommended Steps\n\n1. Run `SELECT * FROM <table>` &amp; wait\n")
    assert a.steps == ["Run SELECT * FROM <table> & wait"]


# --- documents --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "heading",
    ["## Recommended Documents", "## **Recommended documents**", "### Learn more", "## Useful links",
     "**Recommended Documents**", "## Next steps", "#Reccommended Documents", "## References"],
)
def test_documents_under_various_headings(heading):
    a = parse(f"# T\n\n{heading}\n\n- [First doc](https://a.example/1)\n- [Second](https://a.example/2 \"title\")\n")
    assert a.documents == [Document("First doc", "https://a.example/1"), Document("Second", "https://a.example/2")]


def test_raw_html_links_in_documents():
    text = """# T

## Recommended Documents

<ul>
  <li><a href="https://a.example/1" target="_blank">First <b>doc</b></a></li>
  <li><a href='https://a.example/2?x=1&amp;y=2'>Second</a></li>
  <li><a name="anchor">not a link</a></li>
</ul>
See <https://a.example/3>.
"""
    a = parse(text)
    assert a.documents == [
        Document("First doc", "https://a.example/1"),
        Document("Second", "https://a.example/2?x=1&y=2"),
        Document("https://a.example/3", "https://a.example/3"),
    ]


def test_document_links_keep_order_and_odd_urls():
    text = (
        "# T\n\n## Recommended Documents\n\n"
        "- [Wiki](https://en.wikipedia.org/wiki/Trim_(computing)) and <a href=\"https://b.example\">HTML</a>\n"
        "- [Blade](data-blade:Microsoft_Azure_Compute.Blade;data-blade-uri:{$domain}/x)\n"
        "- [Relative](../other/article.md)\n"
        "- [Escaped](https://c.example/?a\\_b=1)\n"
        "- [Split line]\n  (https://d.example)\n"
        "- [[Nested]](https://e.example)\n"
        "- [![icon](icon.png) With image](https://f.example)\n"
        "- Plain text, no link\n"
    )
    a = parse(text)
    assert [d.url for d in a.documents] == [
        "https://en.wikipedia.org/wiki/Trim_(computing)",
        "https://b.example",
        "data-blade:Microsoft_Azure_Compute.Blade;data-blade-uri:{$domain}/x",
        "../other/article.md",
        "https://c.example/?a_b=1",
        "https://d.example",
        "https://e.example",
        "https://f.example",
    ]
    assert a.documents[6].title == "[Nested]"
    assert a.documents[7].title == "icon With image"
    assert "Plain text, no link" in a.body
    assert "https://" not in a.body


def test_links_elsewhere_are_not_documents():
    a = parse(
        "# T\n\nSee [this](https://a.example) page.\n\n## Recommended Steps\n\n1. Open [portal](https://p.example)\n"
    )
    assert a.documents == []
    assert a.steps == ["Open portal"]
    assert "See this page." in a.body


# --- body -------------------------------------------------------------------------------------


def test_json_payload_strings_are_in_body_but_keys_are_not():
    text = """# Scoping questions
---
{
  "$schema": "SelfHelpContent",
  "title": "Scoping title",
  "formElements": [
    {
      "id": "problem_start_time",
      "controlType": "datetimepicker",
      "displayLabel": "When did the problem start?",
      "watermarkText": "Pick a time",
      "infoBalloonText": "<a href='https://x.example'>Learn</a> more",
      "required": true,
      "dropdownOptions": [{"value": "opt_yes", "text": "Yes, always"}],
      "hints": [{"text": "Include the error code"}]
    }
  ],
  "searchTags": "quota, limits",
  "bladeName": "MachineBlade",
  "recommendationTypeId": "96d733d8-6d43-4340-ba9a-c7bbdef18f62"
}
---
Text after.
"""
    a = parse(text)
    for human in ("Scoping title", "When did the problem start?", "Pick a time", "Learn more", "Yes, always",
                  "Include the error code", "quota, limits", "Text after."):
        assert human in a.body, human
    for machine in ("displayLabel", "controlType", "datetimepicker", "problem_start_time", "opt_yes",
                    "$schema", "SelfHelpContent", "MachineBlade", "96d733d8", "https://x.example", "{", "---"):
        assert machine not in a.body, machine
    assert "json-payload" in a.warnings
    assert '"displayLabel"' not in a.markdown


def test_invalid_json_payload_is_read_leniently():
    text = '# T\n---\n{\n  "displayLabel": "Tab\tinside",\n  visibility: "x == y",\n  "text": "Trailing",\n}\n---\n'
    a = parse(text)
    assert "Tab inside" in a.body and "Trailing" in a.body
    assert "visibility" not in a.body and "x == y" not in a.body
    assert {"json-payload", "json-invalid"} <= set(a.warnings)


def test_thematic_breaks_are_not_json():
    a = parse("# T\n\nAbove\n\n---\n\nBelow\n\n---\n")
    assert a.body == "Above\nBelow"


def test_markup_is_removed_from_body():
    text = (
        "# T\n\nA **bold**, *italic*, ~~struck~~ and `code` word.<br>Next&nbsp;line &amp; more.\n\n"
        "> quoted text\n\n| Col A | Col B |\n|---|:---:|\n| a1 | b1 |\n\n<div><span>in html</span></div>\n\n"
        "Wildcard *.contoso.com and snake_case and _rid stay.\n\n"
        "<your-resource-group> is a placeholder.\n"
    )
    body = parse(text).body
    assert "A bold, italic, struck and code word. Next line & more." in body
    assert "quoted text" in body
    assert "Col A Col B" in body and "a1 b1" in body and "---" not in body
    assert "in html" in body and "<div>" not in body and "<span>" not in body
    assert "Wildcard *.contoso.com and snake_case and _rid stay." in body
    assert "<your-resource-group> is a placeholder." in body


def test_insight_blocks_and_scripts_are_dropped():
    text = """# T

:::Section Insights:::

<insight>
    <executionText>We are running checks.</executionText>
    <symptomId>SomeSymptom</symptomId>
</insight>

<script>alert("x")</script><style>p {}</style>
Visible text.
"""
    a = parse(text)
    assert a.body == "Insights\nVisible text."
    assert "SomeSymptom" not in a.markdown and "alert" not in a.markdown


def test_headings_other_than_the_title_are_body():
    a = parse("# T\n\n## Cause\n\nBecause.\n\n### Details\ntext")
    assert a.body == "Cause\nBecause.\nDetails\ntext"


# --- identity ---------------------------------------------------------------------------------


URL_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,199}")


@pytest.mark.parametrize(
    "path",
    [
        "articles/microsoft.compute/vm.md",
        "articles/Microsoft.Storage-Blob-AAD-TSG/content--8.md",
        "articles/with space/and#hash?.md",
        "articles/caf\u00e9/na\u00efve.md",
        "articles/-dash/_under.md",
        "articles/a~b/c.md",
        "articles/" + "long" * 100 + ".md",
        "includes/sample-include.md",
        "top.md",
        "articles/UPPER.MD",
    ],
)
def test_ids_are_url_safe_and_stable(path):
    ident = article_id_for(path)
    assert URL_SAFE_ID.fullmatch(ident), ident
    assert article_id_for(path) == ident
    assert parse("# T\n\ntext", path).id == ident


def test_ids_are_unique_for_paths_that_look_alike():
    paths = [
        "articles/a/b.md", "articles/a~b.md", "articles/a-b.md", "articles/a b.md", "articles/a?b.md",
        "articles/a/b.MD", "articles/A/b.md", "articles/a.b.md", "articles/a/b/c.md", "articles/a~b/c.md",
        "articles/a/b~c.md", "articles/" + "x" * 300 + "1.md", "articles/" + "x" * 300 + "2.md",
    ]
    ids = [article_id_for(p) for p in paths]
    assert len(set(ids)) == len(ids), ids


def test_readable_ids_for_ordinary_paths():
    assert article_id_for("articles/microsoft.compute.cantrdp.noboot/ossstartup-starting-windows.md") == (
        "microsoft.compute.cantrdp.noboot~ossstartup-starting-windows"
    )


# --- loading files ----------------------------------------------------------------------------


def test_load_gives_an_article_or_a_counted_reason(tmp_path):
    (tmp_path / "good.md").write_text("# Good\n\ntext")
    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "binary.md").write_bytes(bytes(range(32)) * 10)
    results = list(load_all(tmp_path, ["good.md", "empty.md", "binary.md", "missing.md"], workers=1))
    assert isinstance(results[0], Article) and results[0].title == "Good"
    assert [(r.path, r.reason) for r in results[1:]] == [
        ("empty.md", "empty"), ("binary.md", "binary"), ("missing.md", "unreadable")
    ]
    assert all(isinstance(r, Skipped) for r in results[1:])
    assert results[1].hash  # a skipped file still has a content hash for incremental builds


def test_load_refuses_huge_files_unread(tmp_path, monkeypatch):
    import hashlib

    import kb.articles

    monkeypatch.setattr(kb.articles, "MAX_BYTES", 1000)
    data = b"# Big\n" + b"x" * 5000
    (tmp_path / "big.md").write_bytes(data)
    result = load(tmp_path, "big.md")
    assert isinstance(result, Skipped) and result.reason == "too-large"
    assert result.hash == hashlib.sha1(data).hexdigest()


def test_inline_text_is_plain():
    assert inline_text("[a](b) ![c](d.png) <b>e</b> **f** \\*g\\* &lt;h&gt;") == "a c e f *g* <h>"


# --- rendering --------------------------------------------------------------------------------


HOSTILE_MARKDOWN = [
    "<script>alert(1)</script>",
    "<SCRIPT src=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    "[x](javascript:alert(1))",
    "[x](<javascript:alert(1)>)",
    "![x](javascript:alert(1))",
    "<svg onload=alert(1)><circle/></svg>",
    '<iframe src="https://evil.example"></iframe>',
    '<div onclick="alert(1)" style="background:url(javascript:alert(1))">x</div>',
    "<scr<script>ipt>alert(1)</script>",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<form action="javascript:alert(1)"><button>go</button></form>',
    "<details open ontoggle=alert(1)>",
    "[x](vbscript:msgbox(1)) [y](data:text/html;base64,PHNjcmlwdD4=)",
]


def assert_safe_html(html: str) -> None:
    soup = BeautifulSoup(html, "html.parser")
    assert soup.find(["script", "iframe", "svg", "math", "form", "style", "object", "embed"]) is None, html
    for tag in soup.find_all(True):
        for name, value in tag.attrs.items():
            assert not name.lower().startswith("on"), html
            assert name.lower() != "style", html
            values = value if isinstance(value, list) else [value]
            for v in values:
                compact = re.sub(r"[\s\x00-\x1f]", "", v).lower()
                assert not compact.startswith(("javascript:", "vbscript:", "data:")), html


@pytest.mark.parametrize("markdown", HOSTILE_MARKDOWN)
def test_render_markdown_is_sanitised(markdown):
    assert_safe_html(render_markdown(markdown))


def test_render_markdown_keeps_ordinary_links_and_survives_odd_ones():
    html = render_markdown(
        "# T\n\n[docs](https://docs.example/a) [rel](../b.md) "
        "[blade](data-blade:Microsoft_Azure_Compute.Blade;data-blade-uri:{$domain}/x)"
    )
    soup = BeautifulSoup(html, "html.parser")
    links = {a.get_text(): a.get("href") for a in soup.find_all("a")}
    assert links == {"docs": "https://docs.example/a", "rel": "../b.md", "blade": None}
    assert all("noopener" in a["rel"] for a in soup.find_all("a"))


def test_article_markdown_renders_safely():
    a = parse(ARTICLE + '\n<a href="javascript:alert(1)" onclick="x()">bad</a>\n<script>alert(1)</script>\n')
    html = render_markdown(a.markdown)
    assert_safe_html(html)
    assert "Restart the VM" in html and "[vmname]" not in html  # the issue has its own field


def test_render_markdown_caps_huge_input():
    html = render_markdown("<div>" * 30_000 + "<script>x</script>")
    assert html.startswith("<pre>") and "<div>" not in html and "<script>" not in html


def test_to_dict_matches_asdict():
    import dataclasses

    a = parse(ARTICLE)
    a.hash = "abc"
    assert a.to_dict() == dataclasses.asdict(a)
    assert list(a.to_dict()) == [f.name for f in dataclasses.fields(Article)]


# --- markdown-it and BeautifulSoup details ----------------------------------------------------


def test_heading_inside_a_list_item_stays_in_the_item():
    text = (
        "# T\n\n## Recommended Documents\n\n* [First](https://a.example/1)\n\n  ### A sub-heading\n\n"
        "  More about it.\n\n* [Second](https://a.example/2)\n"
    )
    a = parse(text)
    assert [d.url for d in a.documents] == ["https://a.example/1", "https://a.example/2"]
    assert "A sub-heading" in a.body and "More about it." in a.body


def test_html_blocks_keep_prose_placeholders_and_markdown():
    text = (
        "# T\n\n<div><p>First</p>second <vm-name> and **bold** text</div>\n\n"
        "<table><tr><td>cell one</td><td>cell two</td></tr></table>\n"
    )
    body = parse(text).body
    assert "First\nsecond <vm-name> and bold text" in body
    assert "cell one" in body and "cell two" in body and "<td>" not in body


def test_links_in_html_blocks_are_documents_in_order():
    text = (
        "# T\n\n## Recommended Documents\n\n<ul>\n<li><a href=\"https://a.example/1\">One</a></li>\n"
        "<li>[Two](https://a.example/2)</li>\n</ul>\n"
    )
    assert parse(text).documents == [
        Document("One", "https://a.example/1"), Document("Two", "https://a.example/2")
    ]


def test_reference_links_and_bare_brackets():
    a = parse("# T\n\nSee [the docs][d] for [vmname].\n\n[d]: https://d.example\n")
    assert a.body == "See the docs for [vmname]."


def test_list_item_without_a_blank_line_before_it():
    # CommonMark: only "1." may interrupt a paragraph; "2." continues it (as the page shows it)
    a = parse("# T\n\n## Recommended Steps\n\nIntro.\n2. Not a list\n\n1. Real step\n")
    assert a.steps == ["Real step"]
    assert "Intro.\nNot a list" not in a.steps and "2. Not a list" in a.body
