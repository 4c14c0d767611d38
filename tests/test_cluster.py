"""Issue 15's acceptance, on real processes: deploy/local-cluster (nginx in front of three
``kb serve`` replicas, each with its own ``kb sync`` from one bare git repository, and PostgreSQL
for insights) on 127.0.0.1.

One cluster for the module, stopped with ``down`` at the end whatever happened.  Needs nginx, git
and PostgreSQL: skips without them on a laptop, fails under CI=true (.ci/run installs them).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from conftest import ROOT, need
from test_serve import Server

_spec = importlib.util.spec_from_file_location("bench_cluster", ROOT / "bench" / "cluster.py")
bench_cluster = sys.modules["bench_cluster"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
_spec.loader.exec_module(bench_cluster)

#: How long a pushed commit may take to reach every replica (issue 15: "within 60 s").
PROPAGATION_S = 60
QUERIES = ["vm wont start", "BSOD 0xc000021a", "storage 403", "rdp", "key vault access denied", "aks node not ready"]
ARTICLE = "microsoft.compute.vm.boot~vm-boot-applying-settings"
ARTICLE_PATH = "microsoft.compute.vm.boot/vm-boot-applying-settings.md"
GONE = "microsoft.compute.vm.boot~stop-error-0xc000021a"
GONE_PATH = "microsoft.compute.vm.boot/stop-error-0xc000021a.md"


def _tools() -> list[str]:
    needed = ["git", "runuser"] if os.geteuid() == 0 else ["git"]  # runuser: PostgreSQL as postgres
    missing = [t for t in needed if shutil.which(t) is None]
    if shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx"):
        missing.append("nginx (apt-get install nginx-light)")
    if not Path("/usr/lib/postgresql").is_dir() and shutil.which("initdb") is None:
        missing.append("PostgreSQL (apt-get install postgresql)")
    return missing


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = _tools()
    need(not missing, f"the local cluster needs {', '.join(missing)}")
    with bench_cluster.LocalCluster(tmp_path_factory.mktemp("cluster") / "state", "--every", "2s") as running:
        yield running


def _get(url: str, headers: dict | None = None) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=20) as res:
            return res.status, json.load(res)
    except urllib.error.HTTPError as err:
        with err:
            body = err.read()
        return err.code, json.loads(body) if body.startswith(b"{") else {}


def _search(base: str, q: str) -> dict:
    status, data = _get(f"{base}/api/search?" + urlencode({"q": q, "per_page": 20}))
    assert status == 200, data
    return data


def _answer(data: dict) -> dict:
    """What a search answered, without what is allowed to differ between two servers."""
    return {"total": data["total"], "results": [(r["id"], r["title"], r["path"]) for r in data["results"]],
            "facets": data.get("facets")}


def _git(articles: str, *args: str) -> str:
    return subprocess.run(["git", "-C", articles, *args], check=True, capture_output=True, text=True).stdout.strip()


def _every_replica(cluster, check, what: str) -> None:
    """Wait until ``check(replica_url)`` holds on every replica, queried directly."""
    deadline = time.monotonic() + PROPAGATION_S
    pending = cluster.replica_urls()
    while pending and time.monotonic() < deadline:
        pending = [url for url in pending if not check(url)]
        if pending:
            time.sleep(0.5)
    logs = "\n".join((Path(r["dir"]) / "sync.log").read_text(errors="replace")[-1500:] for r in cluster.cfg["replicas"])
    assert not pending, f"{what}: not on {pending} after {PROPAGATION_S} s\n{logs}"


def test_up_prints_the_url_and_the_articles_clone_last(cluster):
    last = cluster.output.strip().splitlines()[-2:]
    assert re.fullmatch(r"URL=http://127\.0\.0\.1:\d+", last[0]), cluster.output
    assert last[1] == f"ARTICLES={cluster.articles}" and Path(cluster.articles, ".git").is_dir()
    assert _get(cluster.url + "/readyz")[0] == 200
    assert len(cluster.replica_urls()) == 3


def test_searches_through_nginx_answer_as_a_single_replica(cluster, sample_index):
    with Server("--index", str(sample_index)) as single:
        for q in QUERIES:
            alone = _answer(_search(single.url, q))
            assert alone["total"] > 0, q
            assert _answer(_search(cluster.url, q)) == alone, q
            for replica in cluster.replica_urls():
                assert _answer(_search(replica, q)) == alone, (q, replica)


def test_searches_through_different_replicas_meet_in_one_report(cluster):
    # before the load test: its thousands of searches would push these out of the top 20
    marker = uuid.uuid4().hex[:10]
    queries = {f"vm wont start {marker} replica{n}": url for n, url in enumerate(cluster.replica_urls(), 1)}
    for q, replica in queries.items():
        _search(replica, q)
    wanted = {q.casefold() for q in queries}
    auth = {"Authorization": f"Bearer {cluster.cfg['token']}"}
    deadline = time.monotonic() + 30  # each worker writes its buffer every half second
    seen: set[str] = set()
    while time.monotonic() < deadline and seen != wanted:
        status, report = _get(cluster.url + "/api/v1/insights?since=1d", auth)
        assert status == 200, report
        seen = {row["norm"] for row in report["top_queries"]} & wanted
        time.sleep(0.5)
    assert seen == wanted


def test_no_failed_request_while_one_replica_is_killed_and_another_restarted(cluster):
    """8 clients for 30 s (bench/cluster.py runs the full 60 s): replica 1 SIGKILLed, replica 2
    restarted with SIGTERM, replica 1 started again, and the clients never see a failure."""
    result = bench_cluster.run_load(cluster.url, bench_cluster.search_paths(), 8, 30,
                                    bench_cluster.chaos(cluster, 30))
    assert [name for _at, name in result.events] == [e[1] for e in bench_cluster.chaos(cluster, 30)]
    assert dict(result.failures) == {}, (result.requests, result.events)
    assert result.requests > 100
    for replica in cluster.replica_urls():  # all three are back
        assert _get(replica + "/readyz")[0] == 200


def test_a_pushed_commit_reaches_every_replica_and_a_deletion_too(cluster):
    articles = cluster.articles
    title = f"Cluster sync check {uuid.uuid4().hex[:8]}"
    path = Path(articles, ARTICLE_PATH)
    text = path.read_text()
    text = re.sub(r'pageTitle="[^"]*"', f'pageTitle="{title}"', text, count=1)
    path.write_text(re.sub(r"^# .*$", f"# {title}", text, count=1, flags=re.M))
    _git(articles, "commit", "-qam", "Retitle an article")
    _git(articles, "push", "-q", "origin", "main")
    commit = _git(articles, "rev-parse", "HEAD")

    def retitled(base: str) -> bool:
        status, data = _get(f"{base}/api/articles/{quote(ARTICLE)}")
        return status == 200 and data.get("title") == title

    _every_replica(cluster, retitled, f"the title {title!r}")
    for replica in cluster.replica_urls():
        hits = _search(replica, title)["results"]
        assert hits and hits[0]["id"] == ARTICLE and hits[0]["title"] == title
        assert _get(replica + "/healthz")[1].get("commit") == commit

    _git(articles, "rm", "-q", GONE_PATH)
    _git(articles, "commit", "-qm", "Delete an article")
    _git(articles, "push", "-q", "origin", "main")
    _every_replica(cluster, lambda base: _get(f"{base}/api/articles/{quote(GONE)}")[0] == 404, f"{GONE} deleted")
    for replica in cluster.replica_urls():
        assert GONE not in {r["id"] for r in _search(replica, "0xc000021a stop code")["results"]}


def test_down_stops_everything_and_is_safe_twice(cluster):
    state = cluster.state
    pids = [int(p.read_text()) for p in state.rglob("*.pid") if p.read_text().strip().isdigit()]
    postmaster = Path(cluster.cfg["postgres"]["data"], "postmaster.pid")
    pids.append(int(postmaster.read_text().split()[0]))
    assert len(pids) >= 8  # nginx, 3 servers, 3 syncs, PostgreSQL
    assert "stopped" in cluster.down()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], pid
    assert not Path(cluster.cfg["postgres"]["dir"]).exists()
    assert "nothing running" in cluster.down()
