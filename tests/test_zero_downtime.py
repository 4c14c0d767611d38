"""Zero-downtime reindexing: a real ``kb serve --workers 2`` keeps answering while it is rebuilt.

Client threads search a copy of the sample knowledge base the whole time while it is reindexed
in full, updated incrementally (an article changed, one deleted, one added) and rebuilt by a build
that is SIGKILLed half-way.  No response may fail or come back empty, every worker must serve each
new generation within 2 s of the switch, search must follow the changes, and generations nobody
reads any more must go.  ``bench/reindex_load.py`` is the same on the real corpus, under more load.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import pytest

from kb.generations import collect_garbage, current_generation
from kb.index import build

from test_serve import Server

SWITCH_LIMIT = 2.0
CLIENTS = 8
#: Queries with results in the sample knowledge base, some narrowed by a facet.
QUERIES = [
    {"q": "connect"}, {"q": "vm stuck on starting windows"}, {"q": "AADSTS50076"},
    {"q": "rdp", "service": "microsoft.compute"}, {"q": "disk"}, {"q": "storage 403"},
    {"q": "mfa", "tag": "mfa"}, {"q": "boot"},
]
#: Articles generated into the copy so that a full build uses parser processes and takes long
#: enough to be killed half-way.
BULK = 400


class Load:
    """Client threads with keep-alive connections, each response checked."""

    def __init__(self, port: int, paths: list[str]):
        self.port, self.paths = port, paths
        self.ok = 0
        self.failures: Counter = Counter()
        self.examples: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(CLIENTS)]
        for t in self._threads:
            t.start()

    def _run(self, i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        n = i
        while not self._stop.is_set():
            path = self.paths[n % len(self.paths)]
            n += 1
            kind = None
            try:
                conn.request("GET", path)
                res = conn.getresponse()
                body = res.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                kind, body = f"connection {type(exc).__name__}", b""
            else:
                if res.status != 200:
                    kind = f"status {res.status}"
                else:
                    try:
                        data = json.loads(body)
                        if not data["total"] or not data["results"]:
                            kind = "empty"
                    except (ValueError, KeyError):
                        kind = "invalid json"
            with self._lock:
                if kind is None:
                    self.ok += 1
                else:
                    self.failures[kind] += 1
                    if len(self.examples) < 5:
                        self.examples.append(f"{kind}: {path} {body[:200]!r}")
        conn.close()  # kept alive by the server between requests

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(20)


def get(port: int, path: str) -> tuple[int, dict]:
    """One request on a new connection, so either worker may take it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", path)
        res = conn.getresponse()
        return res.status, json.loads(res.read())
    finally:
        conn.close()


def worker_generations(master: int) -> dict[int, set[str]]:
    """Per gunicorn worker, the generations it reads (whose lease it holds open)."""
    out: dict[int, set[str]] = {}
    for task in os.listdir(f"/proc/{master}/task"):
        for pid in Path(f"/proc/{master}/task/{task}/children").read_text().split():
            gens = set()
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    with contextlib.suppress(OSError):
                        target = os.readlink(f"/proc/{pid}/fd/{fd}")
                        if target.endswith("/.lease"):
                            gens.add(Path(target).parent.name)
            out[int(pid)] = gens
    return out


def switch_seconds(port: int, master: int, index: Path) -> float:
    """Seconds from CURRENT's switch until every worker serves the generation it names."""
    current = (index / "CURRENT").read_text().strip()
    switched_at = os.stat(index / "CURRENT").st_mtime
    streak, streak_at, leases_at = 0, 0.0, None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        workers = worker_generations(master)
        if leases_at is None and len(workers) == 2 and all(current in g for g in workers.values()):
            leases_at = time.time()
        sent = time.time()
        if get(port, "/healthz")[1].get("generation") == current:
            streak, streak_at = streak + 1, streak_at if streak else sent
        else:
            streak = 0
        if leases_at is not None and streak >= 6:
            # the later of: both workers hold the new generation, the first of 6 answers in a row naming it
            return max(leases_at, streak_at) - switched_at
        time.sleep(0.02)
    raise AssertionError(f"the workers never served {current}: {worker_generations(master)}")


def found(port: int, q: str, article_id: str) -> bool:
    """Whether a search for ``q`` finds the article, asked on enough new connections to reach both workers."""
    answers = {article_id in [r["id"] for r in get(port, "/api/search?" + urlencode({"q": q, "per_page": 50}))[1]["results"]]
               for _ in range(6)}
    assert len(answers) == 1, f"the workers disagree about {q!r}"
    return answers.pop()


def write_bulk(articles: Path, n: int) -> None:
    folder = articles / "zz.bulk"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"bulk-{i}.md").write_text(textwrap.dedent(f"""\
            <properties pageTitle="Bulk article {i}" description="Generated for the reindex test."
                service="zz.bulk" resource="things" resourceTags="bulk" articleId="bulk-{i}" />

            # Bulk article {i}

            Filler paragraph number {i} about nothing in particular. """) + "lorem ipsum dolor " * 60 + "\n")


def killed_build(articles: Path, index: Path, whole_group: bool) -> subprocess.Popen:
    """A full build in its own session with parser processes, slowed down and SIGKILLed half-way."""
    script = textwrap.dedent(f"""
        import time
        from kb.index import build
        def slow(done, total):
            if done >= 50:  # well into the build: say so, and stay there until killed
                print("halfway", flush=True)
                time.sleep(60)
        build({str(articles)!r}, {str(index)!r}, full=True, workers=2, progress=slow)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout.readline().strip() == "halfway"
    if whole_group:
        os.killpg(proc.pid, signal.SIGKILL)  # the build and its parser processes
    else:
        os.kill(proc.pid, signal.SIGKILL)  # `kill -9 PID`: the parser processes are left behind
    proc.wait(10)
    proc.stdout.close()
    return proc


def kb_index(articles: Path, index: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kb", "index", str(articles), "--index", str(index), *extra],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def kb(tmp_path, sample_dir):
    articles = tmp_path / "kb"
    shutil.copytree(sample_dir, articles)
    write_bulk(articles, BULK)
    index = tmp_path / "index"
    build(articles, index, full=True, workers=1)
    return articles, index


def test_reindexing_under_load_loses_no_search(kb):
    articles, index = kb
    killed = None
    with Server("--index", str(index), "--workers", "2") as srv:
        port = int(srv.url.rsplit(":", 1)[1])
        master = srv.proc.pid
        paths = ["/api/search?" + urlencode({**q, "per_page": 10}) for q in QUERIES]
        for p in paths:  # every query has results before the load starts
            assert get(port, p)[1]["total"] > 0, p
        load = Load(port, paths)
        try:
            first = current_generation(index).name
            # a full reindex
            assert kb_index(articles, index, "--full").returncode == 0
            assert switch_seconds(port, master, index) <= SWITCH_LIMIT

            # change one article, delete one, add one; an incremental reindex
            changed = articles / "microsoft.aad/aadsts50076-mfa-required.md"
            changed.write_text(changed.read_text() + "\nThe zyxwarble marker.\n")
            deleted = next(p for p in sorted((articles / "microsoft.compute.vm.boot").glob("*.md")))
            deleted_id = f"microsoft.compute.vm.boot~{deleted.stem}"
            assert get(port, f"/api/articles/{deleted_id}")[0] == 200
            deleted.unlink()
            added = articles / "microsoft.aad/added-qworpflange.md"
            added.write_text(changed.read_text().replace("zyxwarble", "qworpflange"))
            out = kb_index(articles, index)
            assert out.returncode == 0 and "changed 1, deleted 1" in out.stdout and "added 1" in out.stdout, out.stdout
            assert switch_seconds(port, master, index) <= SWITCH_LIMIT
            assert found(port, "zyxwarble", "microsoft.aad~aadsts50076-mfa-required")
            assert found(port, "qworpflange", "microsoft.aad~added-qworpflange")
            assert get(port, f"/api/articles/{deleted_id}")[0] == 404
            assert not found(port, deleted.stem.replace("-", " "), deleted_id)

            # a full build SIGKILLed half-way leaves the served index as it was
            serving = current_generation(index).name
            killed = killed_build(articles, index, whole_group=True)
            assert current_generation(index).name == serving
            assert get(port, "/healthz")[1]["generation"] == serving

            # ... and the next build works
            changed.write_text(changed.read_text() + "\nThe blorptangle marker.\n")
            out = kb_index(articles, index)
            assert out.returncode == 0, out.stdout + out.stderr
            assert switch_seconds(port, master, index) <= SWITCH_LIMIT
            assert found(port, "blorptangle", "microsoft.aad~aadsts50076-mfa-required")
            time.sleep(1)  # keep the load on the last generation for a moment
        finally:
            load.stop()
            if killed is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(killed.pid, signal.SIGKILL)
        assert not load.failures, (load.failures, load.examples)
        assert load.ok > 100

        # old generations go once nobody reads them: the workers have let go of all but the served
        # one, so the next sweep (every build runs one) leaves only it
        served = current_generation(index).name
        assert served != first
        deadline = time.monotonic() + 5
        while any(g != {served} for g in worker_generations(master).values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(g == {served} for g in worker_generations(master).values()), worker_generations(master)
        collect_garbage(index)
        assert [p.name for p in index.glob("gen-*")] == [served]


def test_sigkill_of_the_build_process_alone_does_not_block_the_next_build(kb):
    articles, index = kb
    serving = current_generation(index).name
    killed = killed_build(articles, index, whole_group=False)
    try:
        assert current_generation(index).name == serving
        out = kb_index(articles, index, "--full")
        assert out.returncode == 0, out.stdout + out.stderr
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(killed.pid, signal.SIGKILL)  # the parser processes left behind, if any
