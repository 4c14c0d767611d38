"""The search layer on the bundled sample knowledge base: result shape, disjunctive facets,
query handling (synonyms, codes, typos, power syntax) and hostile input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb.query import MAX_QUERY_CHARS
from kb.search import SearchEngine
from kb.synonyms import Synonyms


@pytest.fixture(scope="module")
def engine(sample_index) -> SearchEngine:
    return SearchEngine(sample_index)


def paths(result: dict) -> list[str]:
    return [r["path"] for r in result["results"]]


def test_result_shape(engine):
    res = engine.search("rdp")
    assert set(res) >= {"total", "page", "per_page", "results", "facets", "took_ms", "suggestion", "query"}
    assert res["total"] > 0
    first = res["results"][0]
    assert set(first) >= {"id", "path", "title", "description", "service", "tags", "score", "snippet", "url"}
    assert first["url"] == f"/articles/{first['id']}"
    assert "<mark>" in first["snippet"]
    assert set(res["facets"]) == {"service", "tag", "type", "cloud"}


def test_empty_query_browses_everything(engine):
    res = engine.search("", per_page=100)
    assert res["total"] == engine.info()["articles"]
    # copies of one article are one result
    assert len(res["results"]) == res["total_groups"] == res["total"] - sum(len(r["copies"]) for r in res["results"])
    assert sum(f["count"] for f in res["facets"]["service"]) == res["total"]  # every sample article has a service


def test_known_facet_counts(engine):
    counts = {f["value"]: f["count"] for f in engine.search("")["facets"]["service"]}
    assert counts["microsoft.compute"] == 13
    assert counts["microsoft.storage"] == 6  # one article spells it Microsoft.Storage
    assert counts["microsoft.aad"] == 4
    tags = {f["value"]: f["count"] for f in engine.search("")["facets"]["tag"]}
    assert tags["windows"] == 8
    assert tags["linux"] == 5


@pytest.mark.parametrize("q", ["", "error", "connection timed out", "403"])
def test_every_facet_count_equals_the_filtered_total(engine, q):
    res = engine.search(q)
    for f in res["facets"]["service"]:
        assert engine.search(q, services=[f["value"]])["total"] == f["count"]
    for f in res["facets"]["tag"]:
        assert engine.search(q, tags=[f["value"]])["total"] == f["count"]


def test_or_within_a_facet_and_across_facets(engine):
    compute = engine.search("", services=["microsoft.compute"])["total"]
    storage = engine.search("", services=["microsoft.storage"])["total"]
    both = engine.search("", services=["microsoft.compute", "microsoft.storage"])
    assert both["total"] == compute + storage
    windows = engine.search("", services=["microsoft.compute"], tags=["windows"])
    assert 0 < windows["total"] < compute
    assert all(r["service"] == "microsoft.compute" and "windows" in r["tags"] for r in windows["results"])


def test_facet_counts_are_disjunctive(engine):
    res = engine.search("", services=["microsoft.compute"])
    services = {f["value"]: f for f in res["facets"]["service"]}
    # the service facet still counts the other services (what selecting them would add) ...
    assert services["microsoft.storage"]["count"] == 6
    assert services["microsoft.compute"]["selected"] is True
    # ... while the tag facet counts within the selection
    tags = {f["value"]: f["count"] for f in res["facets"]["tag"]}
    assert tags["windows"] == engine.search("", services=["microsoft.compute"], tags=["windows"])["total"]


def test_selected_unknown_value_is_listed_with_zero(engine):
    res = engine.search("", tags=["no-such-tag"])
    assert res["total"] == 0
    assert {"value": "no-such-tag", "label": "no-such-tag", "count": 0, "selected": True} in res["facets"]["tag"]


def test_pagination(engine):
    everything = paths(engine.search("", per_page=100))
    pages = [paths(engine.search("", page=p, per_page=10)) for p in range(1, 6)]
    assert [p for page in pages for p in page] == everything
    assert engine.search("", page=99)["results"] == []


def test_symptom_finds_article(engine):
    assert "stuck-getting-windows-ready" in paths(engine.search("vm stuck on getting windows ready"))[0]


@pytest.mark.parametrize(
    "q, expected",
    [
        ("0xC000021A", "stop-error-0xc000021a.md"),
        ("c000021a", "stop-error-0xc000021a.md"),
        ("AADSTS50076", "aadsts50076-mfa-required.md"),
        ("50076", "aadsts50076-mfa-required.md"),
    ],
)
def test_error_codes_whole_and_by_parts(engine, q, expected):
    assert paths(engine.search(q))[0].endswith(expected)


def test_abbreviation_synonyms(engine):
    # "bsod" is in no sample article; the synonyms file says it means a blue screen / stop error
    top = paths(engine.search("bsod"))[:3]
    assert any("stop-error" in p or "boot-device" in p for p in top)


def test_typo_is_corrected_and_suggested(engine):
    res = engine.search("ssh conection times out")
    assert res["suggestion"] == "ssh connection times out"
    assert paths(res)[0].endswith("ssh-connection-timed-out.md")
    assert engine.search("ssh connection times out")["suggestion"] is None


def test_power_syntax(engine):
    title_only = engine.search('title:"SAS token"')
    assert title_only["total"] == 2 and all("sas-token-expired" in p for p in paths(title_only))
    without = engine.search("sas -expired")
    assert all("sas-token-expired" not in p for p in paths(without))
    either = engine.search("kubernetes OR ssh")
    assert either["total"] >= engine.search("kubernetes")["total"]


def test_copies_are_one_result(engine):
    res = engine.search("sas token expired")
    lead = next(r for r in res["results"] if r["copies"])
    ids = [r["id"] for r in res["results"]]
    # a copy never takes a place of its own, and stays reachable from the result it repeats
    assert all(c["id"] not in ids for c in lead["copies"])
    assert all(engine.article(c["id"]) is not None for c in lead["copies"])
    assert res["total"] == res["total_groups"] + len(lead["copies"])


def test_a_query_of_stop_words_says_so(engine):
    res = engine.search("the of and")
    assert res["total"] == 0 and res["results"] == []
    assert res["warnings"] and "common words" in res["warnings"][0]


def test_syntax_only_filters_and_kb_ranks(engine):
    """Adding an exclusion that excludes nothing changes neither the hits nor their order."""
    plain = engine.search("storage 403", per_page=20)
    excluded = engine.search("storage 403 -zzzqqq", per_page=20)
    assert [(r["id"], r["score"]) for r in excluded["results"]] == [(r["id"], r["score"]) for r in plain["results"]]
    assert excluded["total"] <= plain["total"]


def test_pasted_noise_does_not_change_the_answer(engine):
    plain = engine.search("AADSTS50076")
    pasted = engine.search("2024-05-01T10:22:03.123Z ERROR AADSTS50076 Trace ID: 0b5a7c3e-1f2d-4c7e-9a8b-6d5e4f3a2b1c "
                           "Correlation ID: 4f1e8c2a-9b7d-4e6f-8a1b-2c3d4e5f6a7b https://login.contoso.example/x?y=1")
    assert paths(pasted)[0] == paths(plain)[0] and pasted["results"][0]["missing"] == []
    assert pasted["warnings"] == [] and pasted["suggestion"] is None


def test_an_unknown_code_falls_back_to_its_parts(engine):
    # "AADSTS99999" is in no article, but AADSTS is: results, not an empty page
    res = engine.search("AADSTS99999")
    assert res["total"] > 0 and res["total_all_words"] > 0
    assert "AADSTS" in res["results"][0]["title"] + res["results"][0]["description"]


def test_totals_tell_all_words_from_some(engine):
    res = engine.search("vm stuck starting windows zzzqqq")
    assert 0 < res["total_all_words"] < res["total"]
    assert all(set(r["missing"]) <= {"vm", "stuck", "starting", "windows"} for r in res["results"])
    assert any(r["missing"] for r in res["results"]) and not res["results"][0]["missing"]


def test_a_synonym_key_is_no_typo(engine):
    res = engine.search("bsod")
    assert res["suggestion"] is None and res["total"] > 0


@pytest.mark.parametrize(
    "q",
    ["title:(", '"unbalanced', "AND", "OR OR", "NOT", "-", "*", "?", "~", "a:b:c", "title:", "(((", ")))",
     "field:[a TO z]", "\x00", "<script>alert(1)</script>", "' OR 1=1 --", "🙂", "x" * MAX_QUERY_CHARS],
)
def test_hostile_queries_never_raise(engine, q):
    res = engine.search(q)
    assert res["total"] >= 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
       | st.lists(st.sampled_from(['title:', '"', '(', ')', 'AND', 'OR', 'NOT', '-', '*', '~2', '^3', 'tag:',
                                   'vm', 'error', '0x', ':', '[', ']', 'TO', '{', '}']), max_size=12).map(" ".join))
def test_random_queries_never_raise(engine, q):
    res = engine.search(q, per_page=5)
    assert res["total"] >= 0 and len(res["results"]) <= 5


def test_article(engine):
    hit = engine.search("login failed 18456")["results"][0]
    art = engine.article(hit["id"])
    assert art["title"] == hit["title"]
    assert isinstance(art["steps"], list) and art["steps"]
    assert all(set(d) == {"title", "url"} for d in art["documents"])
    assert art["properties"]["articleid"]
    assert engine.article("../../etc/passwd") is None
    assert engine.article("no-such-id") is None


def test_synonyms_file_format():
    syn = Synonyms.parse("""
        # comment
        bsod, blue screen, stop error
        rdp => remote desktop   # one way
    """)
    assert syn.expand(["bsod"], 0) == ["blue screen", "stop error"]
    assert syn.expand(["blue", "screen"], 0) == ["bsod", "stop error"]
    assert syn.expand(["rdp"], 0) == ["remote desktop"]
    assert syn.expand(["remote", "desktop"], 0) == []
    assert Synonyms.load().expand(["vnet"], 0)  # the bundled file loads
