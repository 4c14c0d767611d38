"""``kb sync``: articles from a real git repository (a bare one in tmp_path), real processes."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kb.generations import current_generation, read_manifest
from kb.sync import parse_interval, read_status, redact, status_path
from kb.web import create_app

pytestmark = pytest.mark.skipif(shutil.which("git") is None and os.environ.get("CI") != "true",
                                reason="git is not installed")

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "kb tests", "GIT_AUTHOR_EMAIL": "kb@example.invalid",
           "GIT_COMMITTER_NAME": "kb tests", "GIT_COMMITTER_EMAIL": "kb@example.invalid",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True,
                          text=True, timeout=60).stdout


class Repo:
    """A bare repository (what kb sync follows) and a working clone that commits and pushes to it."""

    def __init__(self, root: Path, sample_dir: Path):
        self.bare = root / "articles.git"
        self.work = root / "work"
        git("init", "-q", "--bare", "-b", "main", str(self.bare))
        git("init", "-q", "-b", "main", str(self.work))
        git("remote", "add", "origin", str(self.bare), cwd=self.work)
        shutil.copytree(sample_dir, self.work / "articles")
        (self.work / "README.md").write_text("# The articles of the knowledge base\n")
        self.commit("the sample articles")

    def commit(self, message: str) -> str:
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.work)
        git("push", "-q", "origin", "HEAD:main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work).strip()

    def articles(self) -> list[Path]:
        return sorted((self.work / "articles").rglob("*.md"))


@pytest.fixture
def repo(tmp_path, sample_dir) -> Repo:
    return Repo(tmp_path, sample_dir)


def kb_sync(index: Path, *args: str, url: str | Path | None = None, timeout: float = 180):
    """``python -m kb sync --once``: (exit status, what it logged)."""
    done = subprocess.run([sys.executable, "-m", "kb", "sync", "--git", str(url), "--index", str(index),
                           "--subdir", "articles", "--once", *args],
                          capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def health(index: Path) -> tuple[int, dict]:
    res = create_app({"KB_INDEX": str(index), "TESTING": True, "KB_ANALYTICS": 0}).test_client().get("/healthz")
    return res.status_code, res.get_json()


def search_titles(index: Path, q: str) -> list[str]:
    client = create_app({"KB_INDEX": str(index), "TESTING": True, "KB_ANALYTICS": 0}).test_client()
    return [r["title"] for r in client.get("/api/v1/search", query_string={"q": q, "per_page": 50}).get_json()["results"]]


def title_of(path: Path) -> str:
    """The title kb shows: the article's first heading."""
    return re.search(r"^# (.+)$", path.read_text(), re.M).group(1).strip()


def retitle(path: Path, title: str) -> None:
    text = path.read_text()
    new = re.sub(r'pageTitle="[^"]*"', f'pageTitle="{title}"', text, count=1)
    new = re.sub(r"^# .+$", f"# {title}", new, count=1, flags=re.M)
    assert title_of(Path(path)) != title
    path.write_text(new)


def test_once_builds_and_the_manifest_and_healthz_name_the_commit(tmp_path, repo):
    index = tmp_path / "index"
    head = git("rev-parse", "HEAD", cwd=repo.work).strip()
    status, log = kb_sync(index, url=repo.bare)
    assert status == 0, log
    assert re.search(rf"kb sync: {head[:12]} \(.*\) full build gen-\S+: 42 articles", log), log
    gen = current_generation(index)
    commit = read_manifest(gen)["commit"]
    assert commit["sha"] == head and commit["time"].startswith(time.strftime("%Y-"))
    code, body = health(index)
    assert code == 200
    assert (body["commit"], body["commit_time"], body["generation"], body["articles"]) == \
        (head, commit["time"], gen.name, 42)
    assert 0 <= body["age_seconds"] < 600
    sync = body["sync"]
    assert (sync["ok"], sync["error"], sync["served"], sync["commit"]["sha"], sync["branch"]) == \
        (True, None, head, head, "main")
    assert sync["last_success"] == sync["last_attempt"]
    # the clone is beside the index, never inside it (sweeps delete what they do not know)
    assert (tmp_path / "index.articles" / "articles").is_dir() and status_path(index) == tmp_path / "index.sync.json"
    # nothing new: no new generation
    status, log = kb_sync(index, url=repo.bare)
    assert status == 0 and "up to date" in log and current_generation(index) == gen


def test_a_commit_changing_a_title_is_served_and_a_deleted_article_disappears(tmp_path, repo):
    index = tmp_path / "index"
    assert kb_sync(index, url=repo.bare)[0] == 0
    first, second = repo.articles()[:2]
    retitle(first, "Quokka gateway refuses every handshake")
    gone_title = title_of(second)
    assert gone_title in search_titles(index, gone_title)
    second.unlink()
    head = repo.commit("a new title, an article deleted")
    status, log = kb_sync(index, url=repo.bare)
    assert status == 0, log
    assert "incremental build" in log and "changed 1, deleted 1" in log, log
    assert search_titles(index, "quokka handshake")[0] == "Quokka gateway refuses every handshake"
    assert gone_title not in search_titles(index, gone_title)
    code, body = health(index)
    assert (code, body["commit"], body["articles"]) == (200, head, 41)


def test_a_commit_outside_the_articles_is_recorded_without_reindexing_them(tmp_path, repo):
    index = tmp_path / "index"
    assert kb_sync(index, url=repo.bare)[0] == 0
    (repo.work / "README.md").write_text("# Changed, but not an article\n")
    head = repo.commit("readme only")
    status, log = kb_sync(index, url=repo.bare)
    assert status == 0 and "changed 0, deleted 0" in log, log
    assert health(index)[1]["commit"] == head


def test_a_broken_remote_leaves_the_served_generation_and_says_why(tmp_path, repo):
    index = tmp_path / "index"
    assert kb_sync(index, url=repo.bare)[0] == 0
    gen, served = current_generation(index), health(index)[1]["commit"]
    status, log = kb_sync(index, url=tmp_path / "no-such-repository.git")
    assert status == 1
    assert re.search(r"kb sync: failed after [\d.]+ s, still serving [0-9a-f]{40}: git fetch failed: .+", log), log
    assert current_generation(index) == gen
    code, body = health(index)
    assert (code, body["commit"]) == (200, served)
    sync = body["sync"]
    assert sync["ok"] is False and sync["error"].startswith("git fetch failed") and sync["served"] == served
    assert sync["last_error"] == {"at": sync["last_attempt"], "message": sync["error"]}
    # a working remote again: the error is cleared, the last one is kept
    assert kb_sync(index, url=repo.bare)[0] == 0
    sync = health(index)[1]["sync"]
    assert sync["ok"] is True and sync["error"] is None and sync["last_error"]["message"].startswith("git fetch")


def test_no_clone_at_all_is_an_error_not_a_crash(tmp_path):
    index = tmp_path / "index"
    status, log = kb_sync(index, url="http://bot:s3cret@127.0.0.1:9/nothing.git")
    assert status == 1 and "failed" in log and "Traceback" not in log, log
    assert current_generation(index) is None
    assert read_status(index)["ok"] is False and read_status(index)["url"] == "http://127.0.0.1:9/nothing.git"
    assert "s3cret" not in log and "s3cret" not in status_path(index).read_text()
    assert health(index)[0] == 503  # no complete generation: a balancer sends it nothing


def test_a_commit_emptying_the_articles_is_refused_unless_allow_empty(tmp_path, repo):
    index = tmp_path / "index"
    assert kb_sync(index, url=repo.bare)[0] == 0
    gen, served = current_generation(index), health(index)[1]["commit"]
    for article in repo.articles():
        article.unlink()
    (repo.work / "articles" / ".keep").write_text("")
    head = repo.commit("every article deleted")
    status, log = kb_sync(index, url=repo.bare)
    assert status == 1 and "holds no markdown file" in log and "--allow-empty" in log, log
    assert current_generation(index) == gen
    code, body = health(index)
    assert (code, body["commit"], body["articles"]) == (200, served, 42)
    assert body["sync"]["ok"] is False and "no markdown file" in body["sync"]["error"]
    assert body["sync"]["commit"]["sha"] == head  # fetched, but not served
    status, log = kb_sync(index, "--allow-empty", url=repo.bare)
    assert status == 0, log
    assert health(index)[1]["articles"] == 0


def test_the_clone_may_not_be_inside_the_index(tmp_path, repo):
    status, log = kb_sync(tmp_path / "index", "--clone", str(tmp_path / "index" / "articles"), url=repo.bare)
    assert status == 2 and "must not be inside the index directory" in log, log


def test_a_directory_that_is_not_a_clone_is_left_alone(tmp_path, repo):
    mine = tmp_path / "my-articles"
    mine.mkdir()
    (mine / "notes.md").write_text("# Mine\n")
    status, log = kb_sync(tmp_path / "index", "--clone", str(mine), url=repo.bare)
    assert status == 1 and "is not a git clone and not empty" in log, log
    assert [p.name for p in mine.iterdir()] == ["notes.md"]


def test_a_looping_sync_picks_up_a_pushed_commit_and_stops_on_sigterm(tmp_path, repo):
    index = tmp_path / "index"
    proc = subprocess.Popen([sys.executable, "-m", "kb", "sync", "--git", str(repo.bare), "--index", str(index),
                             "--subdir", "articles", "--every", "1s"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = git("rev-parse", "HEAD", cwd=repo.work).strip()
        wait_for(lambda: (read_status(index) or {}).get("served") == first, proc)
        # one more cycle with nothing new (the "up to date" line) before the push
        built = read_status(index)["last_attempt"]
        wait_for(lambda: (read_status(index) or {}).get("last_attempt") != built, proc)
        retitle(repo.articles()[0], "Wombat tunnel drops after ninety seconds")
        head = repo.commit("a new title")
        wait_for(lambda: (read_status(index) or {}).get("served") == head, proc)
        assert search_titles(index, "wombat tunnel")[0] == "Wombat tunnel drops after ninety seconds"
        sync = health(index)[1]["sync"]
        assert (sync["running"], sync["stale"]) == (True, False), sync
        # a second kb sync on the same clone would reset it under the first one's build
        status, log = kb_sync(index, url=repo.bare)
        assert status == 1 and f"another kb sync (pid {proc.pid})" in log, log
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert health(index)[1]["sync"]["running"] is False  # a monitor sees the sync has gone
    lines = out.splitlines()
    assert all(line.startswith("kb sync: ") for line in lines), out
    assert any("up to date" in line for line in lines) and sum("build" in line for line in lines) == 2, out


def wait_for(condition, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "kb sync did not get there"
        time.sleep(0.2)


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("5m", 300), ("1h", 3600), ("45", 45), ("0.5s", 0.5)])
def test_intervals(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5s", "5 minutes", "1d", "s"])
def test_bad_intervals(text):
    with pytest.raises(ValueError):
        parse_interval(text)


def test_a_bad_interval_is_a_usage_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "kb", "sync", "--git", "x", "--index", str(tmp_path / "i"),
                           "--every", "soon"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--every" in done.stderr


def test_an_old_status_is_stale():
    from kb.sync import with_liveness

    old = {"pid": 0, "every_seconds": 30, "last_attempt": "2026-01-01T00:00:00Z"}
    assert with_liveness(old) == {**old, "running": False, "stale": True}
    now = {**old, "last_attempt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    assert with_liveness(now)["stale"] is False and with_liveness(None) is None


def test_credentials_never_reach_the_status():
    assert redact("https://bot:s3cret@git.example.com/kb/articles.git") == "https://git.example.com/kb/articles.git"
    assert redact("/srv/articles.git") == "/srv/articles.git"
    assert json.dumps(redact("ssh://git@host/x.git")) == '"ssh://host/x.git"'
