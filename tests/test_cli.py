"""The kb command line through click's runner: same JSON as the API, clear errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kb.cli import cli
from kb.search import SearchEngine


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner, *args, env=None):
    return runner.invoke(cli, list(args), catch_exceptions=False, env=env)


def test_index_sample_by_default(runner, tmp_path):
    index_dir = tmp_path / "index"
    res = invoke(runner, "index", "--index", str(index_dir))
    assert res.exit_code == 0, res.output
    assert "full build: 42 articles indexed from 42 files" in res.output
    again = invoke(runner, "index", "--index", str(index_dir))
    assert "nothing changed: 42 articles indexed" in again.output


def test_index_json_report_and_env_var(runner, tmp_path, sample_dir):
    index_dir = tmp_path / "from-env"
    res = invoke(runner, "index", str(sample_dir), "--json", env={"KB_INDEX": str(index_dir)})
    report = json.loads(res.output)
    assert report["indexed"] == 42 and report["skipped"] == []
    assert SearchEngine(index_dir).search("")["total"] == 42


def test_index_names_skipped_files(runner, tmp_path):
    root = tmp_path / "articles"
    root.mkdir()
    (root / "good.md").write_text('<properties pageTitle="Good" service="x" />\n# Good\n\nSome text.\n')
    (root / "empty.md").write_bytes(b"")
    res = invoke(runner, "index", str(root), "--index", str(tmp_path / "index"))
    assert res.exit_code == 0
    assert "1 articles indexed from 2 files" in res.output
    assert "empty.md: empty" in res.output


@pytest.mark.parametrize("path", ["/no/such/dir", __file__])
def test_index_unusable_dir(runner, tmp_path, path):
    res = runner.invoke(cli, ["index", path, "--index", str(tmp_path / "i")])
    assert res.exit_code == 1
    assert res.output.count("\n") == 1 and "is not a directory" in res.output


def test_search_json_is_the_api_json(runner, sample_index):
    from kb.web import create_app

    res = invoke(runner, "search", "rdp", "--service", "microsoft.compute", "--index", str(sample_index),
                 "--json", "--limit", "3")
    data = json.loads(res.output)
    client = create_app({"KB_INDEX": str(sample_index)}).test_client()
    expected = client.get("/api/search?q=rdp&service=microsoft.compute&per_page=3").get_json()
    data.pop("took_ms"), expected.pop("took_ms")
    assert data == expected


def test_search_filters_and_text(runner, sample_index):
    res = invoke(runner, "search", "error", "--service", "microsoft.sql", "--tag", "authentication",
                 "--index", str(sample_index))
    assert res.exit_code == 0
    assert "results" in res.output.splitlines()[0]
    assert "microsoft.sql" in res.output


def test_search_type_and_cloud_filters_are_the_api_filters(runner, sample_index):
    from kb.web import create_app

    res = invoke(runner, "search", "vm", "--type", "diagnostics", "--cloud", "ussec", "--cloud", "(none)",
                 "--index", str(sample_index), "--json")
    data = json.loads(res.output)
    client = create_app({"KB_INDEX": str(sample_index)}).test_client()
    expected = client.get("/api/search?q=vm&type=diagnostics&cloud=ussec&cloud=%28none%29").get_json()
    data.pop("took_ms"), expected.pop("took_ms")
    assert data == expected and {f["facet"] for f in data["filters"]} == {"type", "cloud"}
    assert 0 < data["total"] < client.get("/api/search?q=vm").get_json()["total"]


def test_search_without_index(runner, tmp_path):
    res = runner.invoke(cli, ["search", "vm", "--index", str(tmp_path / "none")])
    assert res.exit_code == 1 and "run `kb index` first" in res.output


def test_search_rejects_bad_limit_and_long_query(runner, sample_index):
    assert runner.invoke(cli, ["search", "vm", "--limit", "0", "--index", str(sample_index)]).exit_code == 2
    res = runner.invoke(cli, ["search", "x" * 1000, "--index", str(sample_index)])
    assert res.exit_code == 2 and "QUERY" in res.output


def test_show(runner, sample_index):
    hit = SearchEngine(sample_index).search("login failed 18456")["results"][0]
    res = invoke(runner, "show", hit["id"], "--index", str(sample_index))
    assert hit["title"] in res.output and "Recommended steps:" in res.output
    data = json.loads(invoke(runner, "show", hit["id"], "--json", "--index", str(sample_index)).output)
    assert data["id"] == hit["id"] and data["steps"]
    missing = runner.invoke(cli, ["show", "nope", "--index", str(sample_index)])
    assert missing.exit_code == 1 and "no article with id 'nope'" in missing.output
    sneaky = runner.invoke(cli, ["show", "../../etc/passwd", "--index", str(sample_index)])
    assert sneaky.exit_code == 1 and "no article with id" in sneaky.output


def test_eval(runner, sample_index, tmp_path):
    queries = tmp_path / "q.json"
    queries.write_text(json.dumps([
        {"q": "AADSTS50076", "relevant": ["microsoft.aad/aadsts50076-mfa-required.md"], "kind": "error-code"},
        {"q": "blob throttled", "relevant": ["microsoft.storage/server-busy-503-throttling.md"], "kind": "symptom",
         "service": "microsoft.storage"},
    ]))
    data = json.loads(invoke(runner, "eval", str(queries), "--json", "--index", str(sample_index)).output)
    assert data["overall"]["n"] == 2
    assert data["overall"]["mrr@10"] == 1.0
    assert set(data["kinds"]) == {"error-code", "symptom"}


def test_python_dash_m(sample_index):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "kb", "search", "vpn", "--index", str(sample_index)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "vpn" in out.stdout.lower()
