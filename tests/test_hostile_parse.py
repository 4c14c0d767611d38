"""Hostile input: whatever a file holds, parsing yields an Article or a counted reason, quickly.

Property-based tests (hypothesis) throw random bytes, markdown-ish text, truncated and
re-encoded articles at the parser; explicit cases aim at the patterns that make parsers slow
(deep nesting, unclosed constructs, long runs of one character).  Time bounds are on CPU time
of this process and generous, because the test machine is shared.
"""

from __future__ import annotations

import os
import re
import signal
import time
from contextlib import contextmanager

import pytest
from bs4 import BeautifulSoup
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb.articles import Skipped, load_all
from kb.parse import MAX_BYTES, MAX_ITEMS, MAX_TEXT, Article, ParseError, parse_bytes, parse_text, render_markdown

#: Every reason parse_bytes may give for refusing a file.
REASONS = {"empty", "binary", "too-large"}
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,199}")
#: CPU seconds one hostile file may take (real articles take well under a millisecond).
BUDGET = 2.0

SETTINGS = settings(
    max_examples=200,
    deadline=5000,  # milliseconds per example (each takes a few); generous for a shared machine
    database=None,  # keep the working tree clean
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SAMPLE = b"""<properties
    pageTitle="VM boot error"
    description="Virtual machine failed to boot &amp; hung."
    service="Microsoft.Compute"
    resourceTags="windows, linux"
    infoBubbleTest="Hover"
/>
# VM boot error
<!--issueDescription-->
Your VM <!--$vmname-->[vmname]<!--/$vmname--> is down.
<!--/issueDescription-->
---
{"formElements": [{"id": "a", "displayLabel": "When did it start?"}]}
---
## **Recommended Steps**

1. Restart [the VM](https://portal.example/vm)
   * nested `code`
2. <a href="https://docs.example">Read</a> the docs

## Recommended Documents

* [Troubleshoot](https://docs.example/troubleshoot)
<insight><symptomId>X</symptomId></insight>
"""

#: Pieces of the corpus' syntax, for building plausible nonsense.
FRAGMENTS = [
    "<properties ", 'pageTitle="T" ', "service='Microsoft.Web' ", 'resourceTags=",a,,B ,"', "/>", ">", '"', "'",
    "\n", "\n\n", "\r\n", "\t", "    ", "# ", "## Recommended Steps\n", "## Recommended Documents\n",
    "**Recommended Steps**\n", ":::Section Resolution:::\n", "1. ", "- ", "* ", "+ ", "> ", "```\n", "~~~", "---\n",
    "===\n", "{", "}", "[", "]", "(", ")", "![", "](", "[x](https://a.example)", "<a href='", "</a>", "<br>",
    "<div>", "</div>", "<script>", "</script>", "<insight>", "</insight>", "<!--", "-->", "<!--$vm-->", "<!--/$vm-->",
    "<!--issueDescription-->", "<!--/issueDescription-->", '{"displayLabel": "L", "id": "x"}', "&amp;", "&#",
    "\\", "`", "*", "_", "~~", "|", "|---|", "word ", "caf\u00e9 ", "\u00a0", "\ufeff", "\x00", "\u2028",
]


@contextmanager
def alarm(seconds: int):
    """Turn a hang into a failure instead of a stuck test run."""

    def _timeout(signum, frame):
        raise TimeoutError(f"parsing took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def check_article(a: Article) -> None:
    """Invariants every article holds, whatever its source."""
    assert ID_RE.fullmatch(a.id), a.id
    assert a.title.strip() and len(a.title) <= 500
    for text in (a.title, a.description, a.info, a.issue, a.body, *a.steps):
        assert isinstance(text, str) and "\r" not in text
        assert len(text) <= MAX_TEXT
    assert len(a.steps) <= MAX_ITEMS and len(a.documents) <= MAX_ITEMS
    assert all(d.url for d in a.documents)
    assert a.service == a.service.strip().lower()
    assert all(t and t == t.strip().lower() and "," not in t for t in a.tags)
    assert a.warnings == sorted(set(a.warnings))
    assert a.hash or a.hash == ""


def parse_or_reason(data: bytes, path: str = "articles/x/hostile.md") -> Article | str:
    """parse_bytes, with the only exception it may raise turned into its reason."""
    try:
        a = parse_bytes(data, path)
    except ParseError as exc:
        assert exc.reason in REASONS, exc.reason
        return exc.reason
    check_article(a)
    return a


# --- property-based ---------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    parse_or_reason(data)


@SETTINGS
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=80).map("".join))
def test_plausible_nonsense(text):
    parse_or_reason(text.encode("utf-8", "surrogatepass"))


@SETTINGS
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=2000))
def test_random_text(text):
    try:
        a = parse_text(text, "articles/x/text.md")
    except ParseError as exc:
        assert exc.reason == "empty"
    else:
        check_article(a)


@SETTINGS
@given(st.integers(min_value=0, max_value=len(SAMPLE)))
def test_truncated_article(cut):
    parse_or_reason(SAMPLE[:cut])


@SETTINGS
@given(st.integers(min_value=0, max_value=len(SAMPLE) - 1), st.binary(min_size=1, max_size=20))
def test_corrupted_article(pos, junk):
    parse_or_reason(SAMPLE[:pos] + junk + SAMPLE[pos:])


@SETTINGS
@given(
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "cp1252", "latin-1", "cp437", "koi8-r"]),
    st.booleans(),
)
def test_wrong_encodings(codec, crlf):
    text = SAMPLE.decode().replace("&amp;", "\u00e9\u00e8 \u201cq\u201d")
    if crlf:
        text = text.replace("\n", "\r\n")
    data = text.encode(codec, "replace")
    result = parse_or_reason(data)
    if codec in ("utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"):
        assert isinstance(result, Article) and result.title == "VM boot error"
        assert result.steps[0] == "Restart the VM nested code"


@SETTINGS
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))
def test_render_markdown_never_lets_script_through(text):
    html = render_markdown(text + "<script>alert(1)</script><img src=x onerror=alert(1)>[a](javascript:x)")
    soup = BeautifulSoup(html, "html.parser")
    assert soup.find("script") is None
    for tag in soup.find_all(True):
        assert not any(name.startswith("on") for name in tag.attrs)
        assert not str(tag.get("href", "")).lower().lstrip().startswith("javascript:")


def test_load_all_with_hostile_files(tmp_path):
    """Through the worker processes too: every file yields an Article or a Skipped with a reason."""
    files = {
        "random.md": os.urandom(5000),
        "empty.md": b"",
        "sample.md": SAMPLE,
        "cut.md": SAMPLE[:40],
        "nested.md": b"<div>" * 50_000,
        "quotes.md": b"> " * 100_000,
    }
    for i in range(250):  # enough files for load_all to use its process pool
        files[f"bulk/{i:03}.md"] = SAMPLE if i % 2 else os.urandom(300)
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(data)
    paths = sorted(files)
    with alarm(120):
        results = list(load_all(tmp_path, paths, workers=2))
    assert [r.path for r in results] == paths
    for r in results:
        if isinstance(r, Skipped):
            assert r.reason in REASONS | {"unreadable"}, r
        else:
            check_article(r)
    by_path = {r.path: r for r in results}
    assert isinstance(by_path["sample.md"], Article)
    assert by_path["empty.md"].reason == "empty"


# --- explicit adversarial cases ---------------------------------------------------------------

N = 600_000  # above kb.parse.MAX_MARKDOWN, so the cut-off is exercised too


#: name -> a function making the input (built when its test runs, not at collection).
CASES = {
    "blockquotes": lambda: b"> " * N + b"x",
    "blockquote-staircase": lambda: b"".join(b"> " * i + b"x\n" for i in range(1, 800)),
    "nested-divs": lambda: b"<div>" * 50_000 + b"text" + b"</div>" * 50_000,
    "unclosed-divs": lambda: b"<div>" * (N // 5),
    "nested-lists": lambda: b"".join(b" " * i + b"- x\n" for i in range(1_000)),
    "nested-numbered": lambda: b"".join(b"   " * i + b"1. x\n" for i in range(700)),
    "open-brackets": lambda: b"[" * N,
    "bracket-parens": lambda: b"](" * (N // 2),
    "open-links": lambda: b"[a](" * (N // 4),
    "open-images": lambda: b"![a](" * (N // 5),
    "link-spaces": lambda: b"[a](b" + b" " * N + b"x",
    "stars": lambda: b"*a " * (N // 3),
    "star-runs": lambda: b"*" * N,
    "underscores": lambda: b"_a " * (N // 3),
    "intraword-underscores": lambda: b"_" + b"a_" * (N // 2),
    "backticks": lambda: b"`" * N,
    "backtick-run-then-text": lambda: b"`" * 10_000 + b"a" * N,
    "backtick-pairs": lambda: b"``a " * (N // 4),
    "lt": lambda: b"<" * N,
    "long-tag-name": lambda: b"<" + b"a" * N,
    "open-tags": lambda: b"<a " * (N // 3),
    "open-hrefs": lambda: b"## Recommended Documents\n" + b"<a href='" * (N // 9),
    "open-anchors": lambda: b"## Recommended Documents\n" + b"<a href='x'>" * (N // 12),
    "open-comments": lambda: b"<!--" * (N // 4),
    "comment-spaces": lambda: b"<!--" + b" " * N,
    "open-placeholders": lambda: b"<!--$x-->" * (N // 9),
    "placeholder-spaces": lambda: b"<!--" + b" " * N + b"/x",
    "open-issues": lambda: b"<!--issueDescription-->" * (N // 23),
    "unclosed-issue": lambda: b"<!--issueDescription-->\n" + b"*a _b_ [c](d) " * (N // 14),
    "many-properties-starts": lambda: b"<properties " * (N // 12) + b'"',
    "unclosed-property-quote": lambda: b'<properties a="' + b"x" * N,
    "many-attributes": lambda: b"<properties " + b"".join(b'n%d="v" ' % i for i in range(N // 12)) + b"/>\n# T\nx",
    "many-typo-attributes": lambda: (
        b"<properties " + b"".join(b'pagetitlx%d="v" ' % i for i in range(N // 16)) + b"/>\nx"
    ),
    "json-starts": lambda: b"---\n{\n" * (N // 6),
    "json-deep-arrays": lambda: b"---\n" + b"[" * (N // 2) + b"\n---\n",
    "json-deep-objects": lambda: b"---\n" + b'{"a":' * (N // 5) + b"\n---\n",
    "json-lenient-pairs": lambda: b"---\n{" + b'text: "x", ' * (N // 11) + b"\n---\n",
    "json-unclosed-string": lambda: b'---\n{"text": "' + b"x" * N,
    "hashes": lambda: b"# " * (N // 2),
    "hash-run": lambda: b"#" * N,
    "closing-hashes": lambda: b"# a" + b" #" * (N // 2),
    "section-markers": lambda: b":::" * (N // 3),
    "section-spaces": lambda: b":::" + b" " * N + b"x",
    "bold-line-spaces": lambda: b"**Recommended Steps**" + b" " * N + b"x",
    "many-steps": lambda: b"## Steps\n" + b"1. x\n" * (N // 5),
    "many-documents": lambda: b"## Recommended Documents\n" + b"- [a](b)\n" * (N // 9),
    "many-headings": lambda: b"## Recommended Steps\n## Recommended Documents\n" * (N // 44),
    "table-separator-spaces": lambda: b"|-" + b" " * N + b"x",
    "table": lambda: b"|a|b|\n|-|-|\n" + b"|x|y|\n" * (N // 6),
    "hr-spaces": lambda: b"* * " * (N // 4) + b"x",
    "setext": lambda: b"a\n" + b"=" * N,
    "unclosed-fence": lambda: b"```\n" + b"x\n" * (N // 2),
    "fences": lambda: b"```\n" * (N // 4),
    "scripts": lambda: b"<script>" * (N // 8),
    "insights": lambda: b"<insight" * (N // 8),
    "entities": lambda: b"&amp;" * (N // 5),
    "ampersands": lambda: b"&" * N,
    "backslashes": lambda: b"\\" * N,
    "tildes": lambda: b"~~a" * (N // 3),
    "reference-links": lambda: b"[a][b]" * (N // 6),
    "autolinks": lambda: b"<http://x" * (N // 9),
    "one-long-line": lambda: b"a" * MAX_BYTES,
    "random-printable": lambda: bytes(b % 95 + 32 for b in os.urandom(MAX_BYTES)),
    "random-bytes": lambda: os.urandom(MAX_BYTES),
    "carriage-returns": lambda: b"\r" * N,
    "nul-bytes": lambda: b"a\x00" * (N // 2),
    "cp1252": lambda: b"# Caf\xe9\n\x93quoted\x94 \x81 text\n" * (N // 30),
    "utf16": lambda: ("# T\n" + "x " * N).encode("utf-16"),
    "too-large": lambda: b"x" * (MAX_BYTES + 1),
}


@pytest.mark.parametrize("name", list(CASES))
def test_adversarial_input_is_bounded(name):
    data = CASES[name]()
    with alarm(60):
        started = time.process_time()
        result = parse_or_reason(data)
        elapsed = time.process_time() - started
    assert elapsed < BUDGET, f"{name}: {elapsed:.2f} s of CPU for {len(data)} bytes"
    if name == "too-large":
        assert result == "too-large"
    if name in ("random-bytes", "nul-bytes"):
        assert result == "binary"


@pytest.mark.parametrize(
    "markdown",
    [
        "> " * 10_000 + "x",
        "<div>" * 12_000,
        "".join(" " * i + "- x\n" for i in range(300)),
        "[" * 50_000,
        "*a " * 30_000,
        "|a|\n|-|\n" + "|x|\n" * 10_000,
        "<div>" * 50_000 + "<script>alert(1)</script>",  # over MAX_RENDER: shown as text
    ],
    ids=["blockquotes", "divs", "nested-list", "brackets", "emphasis", "table", "huge"],
)
def test_render_markdown_is_bounded(markdown):
    with alarm(60):
        started = time.process_time()
        html = render_markdown(markdown)
        elapsed = time.process_time() - started
    assert elapsed < BUDGET, f"{elapsed:.2f} s of CPU"
    assert "<script" not in html


# --- the parse stage's shortcuts give markdown-it's own results ---------------------------------

#: Pieces that exercise link destinations and the block and inline rules the parser may drop.
MARKUP = [
    "[a](", "](", "(", ")", "\\", "\\)", "\\(", "<", ">", " ", "\n", "\t", "\x01", "\x7f", "https://x.example/p",
    "&amp;", "é", "|", "]:", "```", "~~~", "~~", "#", "*", "_", "`", "!", "[", "]", "- ", "1. ", "> ", "---", "===",
    "<div>", "</div>", "<b>", "word",
]


@SETTINGS
@given(st.lists(st.sampled_from(MARKUP), max_size=30).map("".join), st.integers(min_value=0, max_value=5))
def test_link_destination_fast_path_matches_markdown_it(text, start):
    from markdown_it.helpers import parseLinkDestination

    from kb.markdown import _link_destination

    start = min(start, len(text))
    ours, theirs = _link_destination(text, start, len(text)), parseLinkDestination(text, start, len(text))
    assert (ours.ok, ours.pos, ours.str) == (theirs.ok, theirs.pos, theirs.str)


@SETTINGS
@given(st.lists(st.sampled_from(MARKUP), max_size=40).map("".join))
def test_parsers_without_unusable_rules_give_the_same_tokens(text):
    from kb.markdown import _BLOCK_NEEDS, _INLINE_NEEDS, _parser, _unused

    def tokens(md, src):
        env: dict = {}
        out = []
        for t in md.parse(src, env):
            out.append((t.type, t.tag, t.content, t.markup))
            if t.type == "inline":
                inline_md = _parser(inline_off=_unused(_INLINE_NEEDS, t.content)) if md is not full else full
                out += [(c.type, c.content, tuple(sorted(c.attrs.items()))) for c in
                        inline_md.inline.parse(t.content, inline_md, env, [])]
        return out

    full = _parser()
    assert tokens(_parser(_unused(_BLOCK_NEEDS, text)), text) == tokens(full, text)
