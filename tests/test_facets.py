"""Facets that tell the truth (issue 13): "(none)", labels, merged twins, split composite values,
the type and cloud facets, ``facet_info`` and the facet value search endpoint.

A small corpus written here, with known counts, indexed once for the module; the Flask test client.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.facetlabels import FacetLabels
from kb.index import build
from kb.search import NONE, SearchEngine
from kb.web import create_app

#: (file, service, tags, type, clouds)
ARTICLES = [
    ("kv1", "microsoft.keyvault", "certificates", "generic", "public, fairfax"),
    ("kv2", "microsoft.keyvault", "", "diagnostics", "public"),
    ("aks1", "microsoft.containerservice", "kubernetes", "generic", "public"),
    ("aks2", "microsoft.containerservices", "kubernetes", "generic", "mooncake"),
    ("classic", "microsoft.classiccompute, microsoft.classicnetwork", "", "rca", "public"),
    ("none1", "", "", "generic", ""),
    ("none2", "", "certificates", "", "public"),
]
LABELS = """
[service]
microsoft.containerservices => microsoft.containerservice
microsoft.keyvault = Key Vault
microsoft.containerservice = Kubernetes Service (AKS)
[type]
generic = Troubleshooting
"""


def _article(name: str, service: str, tags: str, kind: str, clouds: str) -> str:
    props = {"pageTitle": f"Certificate renewal {name}", "description": f"How to renew a certificate ({name})",
             "service": service, "resourceTags": tags, "selfHelpType": kind, "cloudEnvironments": clouds,
             "articleId": f"id-{name}"}
    attrs = "\n".join(f'    {k}="{v}"' for k, v in props.items() if v)
    return f"<properties\n{attrs}\n/>\n\n# Certificate renewal {name}\n\nRenew the certificate in the portal.\n"


def write_articles(root) -> Path:
    """The test corpus under ``root/articles`` (its folder returned, for more articles)."""
    folder = root / "articles" / "microsoft.test"
    folder.mkdir(parents=True)
    for row in ARTICLES:
        (folder / f"{row[0]}.md").write_text(_article(*row))
    return folder


@pytest.fixture(scope="module")
def facet_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("facets")
    write_articles(root)
    build(root / "articles", root / "index", full=True, workers=1)
    (root / "labels.txt").write_text(LABELS)
    return root


@pytest.fixture
def client(facet_index, monkeypatch):
    monkeypatch.setenv("KB_FACET_LABELS", str(facet_index / "labels.txt"))
    app = create_app({"KB_INDEX": str(facet_index / "index"), "TESTING": True, "KB_ANALYTICS": 0})
    return app.test_client()


def search(client, **params) -> dict:
    res = client.get("/api/v1/search", query_string=params)
    assert res.status_code == 200, res.get_json()
    return res.get_json()


def values(data: dict, facet: str) -> dict[str, int]:
    return {v["value"]: v["count"] for v in data["facets"][facet]}


def test_none_value_counts_the_articles_without_a_value_and_filters_on_them(client):
    data = search(client)
    assert values(data, "service")[NONE] == 2 == data["facet_info"]["service"]["none_count"]
    assert values(data, "tag")[NONE] == 3
    assert values(data, "type")[NONE] == 1 and values(data, "cloud")[NONE] == 1
    none = search(client, service=NONE)
    assert none["total"] == 2 and {r["id"].split("~")[1] for r in none["results"]} == {"none1", "none2"}
    assert none["warnings"] == []  # "(none)" is a value, not an unknown one
    # OR with another value of the facet, AND with other facets; counts stay disjunctive
    both = search(client, service=[NONE, "microsoft.keyvault"])
    assert both["total"] == 4
    assert search(client, service=NONE, tag="certificates")["total"] == 1
    entry = next(v for v in none["facets"]["service"] if v["value"] == NONE)
    assert entry["selected"] and entry["count"] == 2
    assert client.get(entry["toggle_url"]).get_json()["total"] == 7


def test_labels_come_from_the_file_and_the_raw_value_stays(client):
    by_value = {v["value"]: v for v in search(client)["facets"]["service"]}
    assert by_value["microsoft.keyvault"]["label"] == "Key Vault"
    assert by_value["microsoft.classiccompute"]["label"] == "microsoft.classiccompute"  # no label: the value
    assert {v["value"]: v["label"] for v in search(client)["facets"]["type"]}["generic"] == "Troubleshooting"
    filtered = search(client, service="microsoft.keyvault")
    assert filtered["filters"][0]["label"] == "Key Vault"


def test_twins_are_one_entry_and_either_spelling_selects_both(client):
    service = values(search(client), "service")
    assert service["microsoft.containerservice"] == 2 and "microsoft.containerservices" not in service
    for spelling in ("microsoft.containerservice", "microsoft.containerservices"):
        data = search(client, service=spelling)
        assert data["total"] == 2 and data["warnings"] == []
        assert data["links"]["self"] == "/api/v1/search?service=microsoft.containerservice"


def test_composite_values_are_split_into_their_parts(client):
    service = values(search(client), "service")
    assert service["microsoft.classiccompute"] == 1 and service["microsoft.classicnetwork"] == 1
    assert not any("," in v for v in service)
    assert search(client, service="microsoft.classicnetwork")["total"] == 1


def test_type_and_cloud_facets_filter_and_count_disjunctively(client):
    data = search(client, type="generic")
    assert data["total"] == 4
    assert values(data, "type")["diagnostics"] == 1  # its own selection is ignored
    assert search(client, type=["generic", "diagnostics"])["total"] == 5
    cloud = search(client, cloud="fairfax")
    assert cloud["total"] == 1 and values(cloud, "cloud")["public"] == 5
    assert search(client, cloud="mooncake", type="generic")["total"] == 1


def test_facet_info_says_when_a_list_was_cut(facet_index, monkeypatch):
    monkeypatch.setenv("KB_FACET_LABELS", str(facet_index / "labels.txt"))
    app = create_app({"KB_INDEX": str(facet_index / "index"), "TESTING": True, "KB_ANALYTICS": 0,
                      "KB_FACET_LIMIT": 2})
    data = app.test_client().get("/api/v1/search").get_json()
    service = [v for v in data["facets"]["service"] if v["value"] != NONE]
    assert len(service) == 2
    assert data["facet_info"]["service"] == {"truncated": True, "other_values": 2, "none_count": 2}
    assert data["facet_info"]["type"]["truncated"] is True
    assert data["facet_info"]["cloud"] == {"truncated": True, "other_values": 1, "none_count": 1}


def test_facet_value_search_finds_values_by_raw_value_or_label_with_counts_for_the_query(client):
    for prefix in ("keyv", "KEY VAULT", "key vault", "vault"):
        res = client.get("/api/v1/facets/service", query_string={"q": "certificate", "prefix": prefix})
        assert res.status_code == 200
        found = res.get_json()["values"]
        assert [v["value"] for v in found] == ["microsoft.keyvault"], prefix
        assert found[0]["count"] == 2 and found[0]["label"] == "Key Vault"
    # the twin's raw spelling finds the entry it is merged into
    twins = client.get("/api/facets/service?prefix=containerservices").get_json()["values"]
    assert [v["value"] for v in twins] == ["microsoft.containerservice"]
    # counts follow the other facets' selections, not the facet's own
    narrowed = client.get("/api/v1/facets/service?prefix=microsoft&cloud=mooncake&service=microsoft.keyvault").get_json()
    assert {v["value"]: (v["count"], v["selected"]) for v in narrowed["values"]} == {
        "microsoft.containerservice": (1, False), "microsoft.keyvault": (0, True)}
    assert narrowed["values"][0]["toggle_url"] == "/?service=microsoft.keyvault&service=microsoft.containerservice&cloud=mooncake"


def test_facet_value_search_lists_everything_and_says_when_it_was_cut(client):
    everything = client.get("/api/v1/facets/service").get_json()
    assert [v["value"] for v in everything["values"]][-1] == NONE
    assert everything["total_values"] == 5 and not everything["truncated"]
    cut = client.get("/api/v1/facets/service?limit=2").get_json()
    assert len(cut["values"]) == 2 and cut["truncated"] and cut["total_values"] == 5
    assert [v["value"] for v in client.get("/api/v1/facets/tag?prefix=none").get_json()["values"]] == [NONE]


@pytest.mark.parametrize("url,status,parameter", [
    ("/api/v1/facets/nope", 404, "name"),
    ("/api/v1/facets/service?bogus=1", 400, "bogus"),
    ("/api/v1/facets/service?limit=0", 400, "limit"),
    ("/api/v1/facets/service?prefix=" + "x" * 201, 400, "prefix"),
    ("/api/v1/facets/service?prefix=a&prefix=b", 400, "prefix"),
])
def test_facet_value_search_refuses_bad_requests(client, url, status, parameter):
    res = client.get(url)
    assert res.status_code == status and res.get_json()["parameter"] == parameter


def test_search_page_lists_none_labels_and_the_facet_api(client):
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(client.get("/").data, "html.parser")
    none = soup.select_one('li.facet-value[data-facet="service"][data-value="(none)"]')
    assert none is not None and none["data-count"] == "2"
    kv = soup.select_one('li.facet-value[data-value="microsoft.keyvault"]')
    assert "Key Vault" in kv.get_text() and "microsoft.keyvault" in kv.get_text()
    assert {f["data-facet-name"] for f in soup.select("fieldset.facet")} == {"service", "tag", "type", "cloud"}
    assert soup.select_one("#facets")["data-facet-api"] == "/api/v1/facets/{name}"


def test_labels_file_format():
    labels = FacetLabels.parse("# comment\n[service]\na => b\nb => c\nb = Bee  # trailing\n=broken\n[tag]\nx = Ex\n")
    assert labels.canonical("service", "a") == "c" and labels.canonical("tag", "a") == "a"
    assert labels.label("service", "b") == "Bee" and labels.label("tag", "x") == "Ex"
    assert labels.label("service", "zzz") == "zzz"
    assert labels.twins_of("service", "c") == ["a", "b"]


def test_engine_uses_the_labels_it_is_given(facet_index):
    engine = SearchEngine(facet_index / "index", labels=FacetLabels.parse("[cloud]\npublic = Azure"))
    assert {v["value"]: v["label"] for v in engine.search("")["facets"]["cloud"]}["public"] == "Azure"
