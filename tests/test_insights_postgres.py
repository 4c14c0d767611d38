"""The PostgreSQL store of the search insights, against real throwaway PostgreSQL servers.

Each test module starts its own cluster (initdb + pg_ctl, as the postgres user when run as root)
on a free port on 127.0.0.1, so one test can stop it mid-run.  Skips without PostgreSQL's
binaries on a laptop; fails under CI=true (.ci/run installs them).
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
from click.testing import CliRunner
from conftest import need
from test_insights import NOTHING, _load, load_queries
from test_serve import Server

from kb import analytics, insights
from kb.cli import cli
from kb.search import SearchEngine


def _pg_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """A throwaway PostgreSQL cluster; :attr:`url` is its DSN (user kb, trust authentication)."""

    def __init__(self):
        self.bin = _pg_bin()
        self.dir = tempfile.mkdtemp(prefix="kb-pg-")
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data = os.path.join(self.dir, "data")
        self.port = _free_port()
        self.url = f"postgresql://kb@127.0.0.1:{self.port}/postgres"
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "kb", "-E", "UTF8", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, os.path.join(self.bin, tool), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def start(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-w", "-t", "60", "-l", os.path.join(self.dir, "log"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def close(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def pg():
    need(_pg_bin() is not None, "PostgreSQL is not installed (apt-get install postgresql)")
    cluster = PgCluster()
    yield cluster
    cluster.close()


@pytest.fixture
def fresh(pg):
    """The cluster with empty analytics tables."""
    store = analytics.Store(pg.url)
    store.conn.execute("DROP TABLE IF EXISTS kb_searches, kb_opens, kb_feedback, kb_shown, kb_analytics_meta")
    store.conn.commit()
    store.close()
    return pg


def _events(now: float, ids: list[str]) -> list[tuple[str, tuple]]:
    day = analytics.day_of(now)
    ev = []
    for i, (q, total) in enumerate([("VM stuck", 5), ("vm stuck", 5), ("vm stuck", 5), (NOTHING, 0), ("screan", 0)]):
        ev.append(("search", (now - i, day, q, analytics.normalise(q), "{}", 1, total, int(total == 0), 2.5, "page")))
    ev += [("shown", (day, tuple(ids[:4]))), ("shown", (day, tuple(ids[2:5]))),
           ("open", (now, day, "vm stuck", "vm stuck", ids[0], 1)),
           ("feedback", (now, day, ids[0], 0, "out of date", "vm stuck")),
           ("feedback", (now, day, ids[0], 1, "", ""))]
    return ev


def test_postgres_and_sqlite_give_the_same_report(fresh, tmp_path, sample_index):
    """The same rows in both stores: the same report, table for table."""
    engine = SearchEngine(sample_index)
    now = time.time()
    events = _events(now, insights.all_article_ids(engine))
    reports = []
    for target in (fresh.url, str(tmp_path / "a.sqlite")):
        store = analytics.Store(target)
        store.write(events)
        store.write(events[-3:])  # upserts of kb_shown add up
        reports.append(insights.report(store, "7d", engine=engine, now=now + 1))
        store.close()
    engine.close()
    assert reports[0] == reports[1]
    assert reports[0]["totals"]["searches"] == 5 and reports[0]["unhelpful"][0]["not_helpful"] == 2


def test_schema_migrates_once_with_several_processes_at_once(fresh):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: analytics.Store(fresh.url), range(4)))
    assert stores[0].query("SELECT value FROM kb_analytics_meta") == [(str(len(analytics.MIGRATIONS)),)]
    for s in stores:
        s.close()


def test_a_store_that_is_down_is_a_store_error(pg):
    with pytest.raises(analytics.StoreError) as err:
        analytics.Store(f"postgresql://kb:pw@127.0.0.1:{_free_port()}/postgres", connect_timeout=1)
    assert "pw" not in str(err.value) and "kb:***@" in str(err.value)


def _report(sample_index, url: str) -> dict:
    result = CliRunner(env={"KB_ANALYTICS_URL": url}).invoke(
        cli, ["report", "--json", "--index", str(sample_index)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_thousand_searches_over_two_workers_into_postgres(fresh, sample_index, monkeypatch):
    monkeypatch.setenv("KB_ANALYTICS_URL", fresh.url)
    queries, zero = load_queries()
    with Server("--index", str(sample_index), "--workers", "2") as server:
        assert set(_load(server, queries)) == {200}
    data = _report(sample_index, fresh.url)
    assert data["totals"]["searches"] == 1000
    assert {r["query"]: r["searches"] for r in data["zero_result_queries"]} == zero


def test_postgres_stopped_mid_run(fresh, sample_index, monkeypatch):
    """Every search still answers; the searches recorded before the stop are reported, and the
    log says how many were dropped after it."""
    monkeypatch.setenv("KB_ANALYTICS_URL", fresh.url)
    queries, _zero = load_queries()
    first, second = queries[:500], queries[500:]
    with Server("--index", str(sample_index), "--workers", "2") as server:
        assert set(_load(server, first)) == {200}
        deadline = time.monotonic() + 30
        while _count(fresh.url) < 500 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _count(fresh.url) == 500
        fresh.stop("fast")
        try:
            started = time.perf_counter()
            assert set(_load(server, second)) == {200}
            slow = time.perf_counter() - started
        finally:
            server.stop()
            fresh.start()
        log = server.output
    dropped = sum(int(n) for n in re.findall(r"kb analytics: (\d+) events dropped in all", log))
    assert dropped == 500, log[-3000:]
    assert "kb analytics: dropped" in log
    assert _report(sample_index, fresh.url)["totals"]["searches"] == 500
    assert slow < 60  # generous: the searches never waited for the store


def _count(url: str) -> int:
    store = analytics.Store(url)
    try:
        return int(store.query("SELECT COUNT(*) FROM kb_searches")[0][0])
    finally:
        store.close()
