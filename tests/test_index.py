"""Index builds: generations switch atomically, failures and kills leave the served index intact,
incremental updates touch only what changed, one build at a time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from whoosh import index as whoosh_index

from kb.generations import LOCK, BuildLocked, collect_garbage, current_generation
from kb.index import build

from conftest import paused_build
from kb.search import SearchEngine

ARTICLE = """<properties pageTitle="{title}" description="{desc}" service="microsoft.test" resourceTags="alpha, beta" articleId="{aid}" />

# {title}

{body}

## Recommended Steps

1. First step for {title}.
2. Second step.
"""


def write_article(root: Path, rel: str, title: str, body: str = "Body text.", desc: str = "A test article.") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ARTICLE.format(title=title, desc=desc, aid=rel.replace("/", "-"), body=body))
    return path


@pytest.fixture
def corpus(tmp_path) -> Path:
    root = tmp_path / "articles"
    for i in range(5):
        write_article(root, f"articles/group{i % 2}/article-{i}.md", f"Article number {i}", f"Content word{i} zebra")
    return root


def live_in_group(pgid: int) -> list[int]:
    """Processes of process group ``pgid`` that are not zombies."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] != "Z":  # fields 5 and 3 of stat: group, state
                out.append(int(entry))
    return out


def total(engine: SearchEngine, q: str = "") -> int:
    return engine.search(q)["total"]


def search_ids(engine: SearchEngine, q: str) -> list[tuple[str, float]]:
    return [(r["id"], r["score"]) for r in engine.search(q, per_page=50)["results"]]


def test_build_reports_and_switches(corpus, tmp_path):
    index_dir = tmp_path / "index"
    report = build(corpus, index_dir, workers=1)
    assert (report.mode, report.files, report.indexed, report.skipped) == ("full", 5, 5, [])
    gen = current_generation(index_dir)
    assert gen is not None and gen.name == report.generation
    manifest = json.loads((gen / "manifest.json").read_text())
    assert manifest["report"]["indexed"] == 5
    assert len(json.loads((gen / "sources.json").read_text())["hashes"]) == 5
    assert total(SearchEngine(index_dir), "zebra") == 5


def test_sample_knowledge_base_builds_clean(sample_index):
    engine = SearchEngine(sample_index)
    manifest = engine.generation().manifest
    assert manifest["report"]["skipped"] == []
    assert engine.search("")["total"] == manifest["report"]["indexed"] >= 40


def test_failed_build_leaves_served_index_intact(corpus, tmp_path):
    index_dir = tmp_path / "index"
    build(corpus, index_dir, workers=1)
    engine = SearchEngine(index_dir)
    before = engine.generation().name
    write_article(corpus, "articles/group0/new.md", "Brand new article", "unicorn")

    def explode(done: int, total: int) -> None:
        if done == 3:
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        build(corpus, index_dir, full=True, workers=1, progress=explode)
    assert current_generation(index_dir).name == before
    assert [p.name for p in index_dir.glob("gen-*")] == [before]  # the half-built one is gone
    assert total(engine, "zebra") == 5 and total(engine, "unicorn") == 0
    # and the next build works
    report = build(corpus, index_dir, workers=1)
    assert report.indexed == 6
    assert total(engine, "unicorn") == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_killed_build_leaves_served_index_intact(corpus, tmp_path, workers):
    index_dir = tmp_path / "index"
    build(corpus, index_dir, workers=1)
    before = current_generation(index_dir).name
    for i in range(300):
        write_article(corpus, f"articles/bulk/a{i}.md", f"Bulk article {i}", "filler text " * 50)
    script = textwrap.dedent(f"""
        import sys, time
        from kb.index import build
        def slow(done, total):
            if done >= 10:  # well into the build: say so, and stay there until killed
                print("building", flush=True)
                time.sleep(60)
        build({str(corpus)!r}, {str(index_dir)!r}, full=True, workers={workers}, progress=slow)
    """)
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            assert proc.stdout.readline().strip() == "building"
            os.kill(proc.pid, signal.SIGKILL)  # the build process only, not its parser processes
        finally:
            proc.wait(timeout=30)
    # its parser processes die with it (zombies waiting for init to reap them are dead)
    deadline = time.monotonic() + 10
    while live_in_group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_in_group(proc.pid) == [], "parser processes outlived the killed build"
    assert current_generation(index_dir).name == before
    assert total(SearchEngine(index_dir), "zebra") == 5
    # the lock died with the process: the next build runs, and sweeps the abandoned generation
    report = build(corpus, index_dir, workers=1)
    assert report.indexed == 305
    assert [p.name for p in index_dir.glob("gen-*")] == [report.generation]


def test_incremental_update_touches_only_changes(corpus, tmp_path):
    index_dir = tmp_path / "index"
    build(corpus, index_dir, workers=1)
    engine = SearchEngine(index_dir)

    write_article(corpus, "articles/group1/article-1.md", "Article number 1", "now about giraffes")
    (corpus / "articles/group0/article-2.md").unlink()
    write_article(corpus, "articles/group2/added.md", "An added article", "about penguins")
    report = build(corpus, index_dir, workers=1)
    assert (report.mode, report.added, report.changed, report.deleted, report.unchanged) == ("incremental", 1, 1, 1, 3)
    assert report.indexed == 5
    assert total(engine, "giraffes") == 1
    assert total(engine, "penguins") == 1
    assert total(engine, "word2") == 0  # the deleted article left search
    assert total(engine, "word1") == 0  # the changed article's old text too
    assert total(engine) == 5

    report = build(corpus, index_dir, workers=1)
    assert report.mode == "unchanged" and report.indexed == 5
    report = build(corpus, index_dir, workers=1, full=True)
    assert report.mode == "full" and report.indexed == 5
    assert total(engine, "giraffes") == 1


def test_second_build_is_refused_while_one_runs(corpus, tmp_path):
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    # another process holds the build lock, as a running `kb index` does
    holder = textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({str(index_dir / LOCK)!r}, os.O_RDWR | os.O_CREAT)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        sys.stdin.read()
    """)
    with subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True) as proc:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(BuildLocked, match="already building"):
            build(corpus, index_dir, workers=1)
        assert collect_garbage(index_dir) == []  # no sweeping while a build runs
        proc.stdin.close()
        proc.wait(timeout=30)
    assert build(corpus, index_dir, workers=1).indexed == 5


def test_old_generations_removed_only_when_unread(corpus, tmp_path):
    index_dir = tmp_path / "index"
    build(corpus, index_dir, workers=1)
    engine = SearchEngine(index_dir)
    first = engine.generation().name  # the engine holds a lease on it
    build(corpus, index_dir, workers=1, full=True)
    assert (index_dir / first).exists()  # still read by the engine
    assert engine.generation().name != first  # the engine moves on without a restart
    import gc

    gc.collect()
    collect_garbage(index_dir)
    assert not (index_dir / first).exists()


def test_unusable_inputs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    report = build(empty, tmp_path / "index", workers=1)
    assert report.indexed == 0
    assert SearchEngine(tmp_path / "index").search("anything")["total"] == 0


def test_index_of_another_format_is_refused_then_rebuilt(corpus, tmp_path):
    from kb.search import IndexMissing

    index_dir = tmp_path / "index"
    build(corpus, index_dir, workers=1)
    gen = current_generation(index_dir)
    manifest = json.loads((gen / "manifest.json").read_text())
    manifest["format"] = "0-older"  # as written by another version of kb
    (gen / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMissing, match="rebuild it with `kb index`"):
        SearchEngine(index_dir).search("zebra")
    report = build(corpus, index_dir, workers=1)  # incremental by default, but it cannot be
    assert report.mode == "full" and report.indexed == 5
    assert total(SearchEngine(index_dir), "zebra") == 5


def test_one_process_cannot_sweep_or_build_beside_its_own_build(corpus, tmp_path):
    """A server's watcher thread sweeping, or a second thread building, while a build runs: the
    generation being built is invisible to sweeps (a .building-* directory) until it is served."""
    index_dir = tmp_path / "index"
    build(corpus, index_dir, workers=1)
    with paused_build(corpus, index_dir):
        building = {p.name for p in index_dir.glob(".building-gen-*")}
        assert len(building) == 1
        assert collect_garbage(index_dir) == []
        with pytest.raises(BuildLocked):
            build(corpus, index_dir, workers=1)
        assert building <= {p.name for p in index_dir.glob(".building-*")}  # the build's files are untouched
    assert ".building-" + current_generation(index_dir).name in building


def test_parallel_build_is_the_single_process_build(tmp_path):
    """Two writer processes, one segment each, meeting in the middle: the documents still follow
    the sorted paths, and a file whose id is taken in the other segment is refused."""
    root = tmp_path / "articles"
    write_article(root, "a/x.md", "First owner of the id", "ownerword")  # the first path
    for i in range(260):
        write_article(root, f"a0/bulk/n{i:03}.md", f"Bulk note {i}", f"filler{i} text " * (i % 7 + 1))
    write_article(root, "articles/a/x.md", "Second claimant of the id", "claimantword")  # the last path
    single, double = tmp_path / "single", tmp_path / "double"
    one = build(root, single, workers=1)
    two = build(root, double, workers=2)
    assert one.indexed == two.indexed == 261
    for report in (one, two):
        assert [(s.path, s.reason) for s in report.skipped] == [("articles/a/x.md", "duplicate-id")]
        assert "a/x.md" in report.skipped[0].detail
    readers = [whoosh_index.open_dir(str(current_generation(d))).reader() for d in (single, double)]
    try:
        assert len(readers[1].leaf_readers()) == 2 and len(readers[0].leaf_readers()) == 1
        alive = [[r.stored_fields(n)["path"] for n in r.all_doc_ids()] for r in readers]
        assert alive[0] == alive[1] == sorted(alive[0])
    finally:
        for r in readers:
            r.close()
    engine = SearchEngine(double)
    assert total(engine, "claimantword") == 0 and total(engine, "ownerword") == 1
    assert engine.article("a~x")["title"] == "First owner of the id"
    for q in ("bulk note", "filler7", "text"):
        assert search_ids(SearchEngine(single), q) == search_ids(engine, q)


def test_incremental_build_trusts_size_and_time_only_when_settled(corpus, tmp_path, monkeypatch):
    """Unchanged files are not read again (same size and modification time as the last build saw,
    last modified well before it); a same-size edit in the same instant as the build is caught."""
    import kb.index

    index_dir = tmp_path / "index"
    files = sorted(corpus.rglob("*.md"))
    hour_ago = time.time_ns() - 3600 * 10**9
    for f in files:
        os.utime(f, ns=(hour_ago, hour_ago))
    fresh = write_article(corpus, "articles/group0/fresh.md", "Fresh article", "alphaword")
    build(corpus, index_dir, workers=1)

    hashed: list[str] = []
    real_hash = kb.index.file_hash
    monkeypatch.setattr(kb.index, "file_hash", lambda p: hashed.append(os.path.basename(p)) or real_hash(p))
    # the same size, and the modification time put back: only the racy guard can see this edit
    st = fresh.stat()
    fresh.write_text(fresh.read_text().replace("alphaword", "omegaword"))
    os.utime(fresh, ns=(st.st_atime_ns, st.st_mtime_ns))
    report = build(corpus, index_dir, workers=1)
    assert hashed == ["fresh.md"]  # the settled files were not read
    assert (report.mode, report.changed, report.unchanged) == ("incremental", 1, 5)
    assert total(SearchEngine(index_dir), "omegaword") == 1


def test_incremental_build_refuses_an_id_taken_by_an_indexed_article(corpus, tmp_path):
    index_dir = tmp_path / "index"
    write_article(corpus, "group9/x.md", "Original holder", "holderword")  # id group9~x
    build(corpus, index_dir, workers=1)
    write_article(corpus, "articles/group9/x.md", "Late claimant", "claimantword")  # the same id
    report = build(corpus, index_dir, workers=1)
    assert report.mode == "incremental"
    assert [(s.path, s.reason) for s in report.skipped] == [("articles/group9/x.md", "duplicate-id")]
    engine = SearchEngine(index_dir)
    assert engine.article("group9~x")["title"] == "Original holder"
    assert total(engine, "claimantword") == 0
    # when the holder goes, a full build gives the id to the other file
    (corpus / "group9" / "x.md").unlink()
    assert build(corpus, index_dir, workers=1, full=True).skipped == []
    assert SearchEngine(index_dir).article("group9~x")["title"] == "Late claimant"


def test_a_duplicate_id_loser_takes_the_id_when_its_keeper_goes(corpus, tmp_path):
    index_dir = tmp_path / "index"
    write_article(corpus, "group9/x.md", "Original holder", "holderword")  # id group9~x
    write_article(corpus, "zz/group9/x.md", "Unrelated", "other")  # a different id
    build(corpus, index_dir, workers=1)
    write_article(corpus, "articles/group9/x.md", "Late claimant", "claimantword")  # the same id
    assert [s.reason for s in build(corpus, index_dir, workers=1).skipped] == ["duplicate-id"]
    # the keeper changes but keeps the id: the claimant is still refused
    write_article(corpus, "group9/x.md", "Original holder, edited", "holderword")
    report = build(corpus, index_dir, workers=1)
    assert [(s.path, s.reason) for s in report.skipped] == [("articles/group9/x.md", "duplicate-id")]
    assert SearchEngine(index_dir).article("group9~x")["title"] == "Original holder, edited"
    # the keeper goes: an incremental build gives the id to the claimant
    (corpus / "group9" / "x.md").unlink()
    report = build(corpus, index_dir, workers=1)
    assert report.mode == "incremental" and report.skipped == []
    engine = SearchEngine(index_dir)
    assert engine.article("group9~x")["title"] == "Late claimant"
    assert total(engine, "claimantword") == 1 and total(engine, "holderword") == 0


def test_a_file_unreadable_during_a_build_is_read_by_the_next(corpus, tmp_path):
    """A file removed between listing and reading (as root, chmod cannot make a file unreadable)
    and put back with its old size and time, as `cp -p` does: its content was never recorded,
    so the next incremental build reads it."""
    index_dir = tmp_path / "index"
    build(corpus, index_dir, workers=1)
    victim = write_article(corpus, "articles/group0/zz-late.md", "Late article", "lateword")
    hour_ago = time.time_ns() - 3600 * 10**9  # settled: its size and time are trusted
    os.utime(victim, ns=(hour_ago, hour_ago))
    saved = tmp_path / "saved.md"
    shutil.copy2(victim, saved)

    def remove_it(done: int, total: int) -> None:
        if victim.exists():  # after the first file is read, before the last one is
            victim.unlink()

    report = build(corpus, index_dir, workers=1, full=True, progress=remove_it)
    assert [(s.path, s.reason) for s in report.skipped] == [("articles/group0/zz-late.md", "unreadable")]
    shutil.copy2(saved, victim)  # cp -p: same size and modification time as when it was listed
    report = build(corpus, index_dir, workers=1)
    assert report.skipped == [] and report.mode == "incremental"
    assert total(SearchEngine(index_dir), "lateword") == 1


def test_every_skipped_file_is_listed_and_a_fifo_never_hangs(corpus, tmp_path):
    """The acceptance corpus: a file name that is not UTF-8, a FIFO, symbolic links and a file
    that cannot be read all build, each listed in the skipped summary with its reason."""
    from click.testing import CliRunner

    from kb.cli import cli

    bad_name = os.fsdecode(b"articles/group0/caf\xe9-\xff.md")
    (corpus / bad_name).write_text(ARTICLE.format(title="Latin-1 name", desc="d", aid="x", body="latinword"))
    os.mkfifo(corpus / "articles/group0/pipe.md")
    (corpus / "articles/group0/link.md").symlink_to(corpus / "articles/group0/article-0.md")
    (corpus / "articles/linked-folder").symlink_to(corpus / "articles/group1")
    index_dir = tmp_path / "index"
    report = build(corpus, index_dir, workers=1)
    assert {(s.path, s.reason) for s in report.skipped} == {
        (bad_name, "bad-name"),
        ("articles/group0/pipe.md", "not-a-file"),
        ("articles/group0/link.md", "symlink"),
        ("articles/linked-folder", "symlink"),
    }
    assert report.indexed == 5
    # incremental builds keep listing them, and the CLI prints them all, the bad name escaped
    out = CliRunner().invoke(cli, ["index", str(corpus), "--index", str(index_dir)], catch_exceptions=False)
    assert out.exit_code == 0
    for shown in ("caf\\xe9-\\xff.md: bad-name", "pipe.md: not-a-file", "link.md: symlink", "linked-folder: symlink"):
        assert shown in out.output
    out = CliRunner().invoke(cli, ["index", str(corpus), "--index", str(index_dir), "--json"], catch_exceptions=False)
    assert len(json.loads(out.output)["skipped"]) == 4
    # a parallel build of the same corpus says the same
    for i in range(250):
        write_article(corpus, f"articles/bulk/n{i}.md", f"Bulk {i}", "bulkword")
    report = build(corpus, tmp_path / "parallel", workers=2, full=True)
    assert len(report.skipped) == 4 and report.indexed == 255
