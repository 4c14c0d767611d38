"""Index directories under damage and races: a broken CURRENT, a missing or garbled manifest,
sweeps beside builds and readers, an index of an older extraction, an empty articles folder, a
disk that cannot be written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli import cli
from kb.generations import (
    BUILDING, CURRENT, FORMAT, MANIFEST, STALE_BUILD_SECONDS, collect_garbage, current_generation,
    served_generation, sweep,
)
from kb.index import EmptySource, build
from kb.search import Generation, GenerationGone, SearchEngine
from kb.serve import IndexUnusable, ensure_index
from kb.synonyms import Synonyms

from test_index import write_article
from conftest import paused_build


@pytest.fixture
def corpus(tmp_path) -> Path:
    root = tmp_path / "articles"
    for i in range(7):
        write_article(root, f"articles/g/a{i}.md", f"Real article {i}", f"realword content{i}")
    return root


@pytest.fixture
def two_generations(corpus, tmp_path) -> tuple[Path, str, str]:
    """An index directory with two complete generations kept (the older one leased while the
    newer is built), CURRENT naming the newer: (dir, older, newer)."""
    index_dir = tmp_path / "index"
    build(corpus, index_dir, workers=1)
    reader = SearchEngine(index_dir)
    older = reader.generation().name
    write_article(corpus, "articles/g/extra.md", "Extra article", "extraword")
    newer = build(corpus, index_dir, workers=1).generation
    reader.close()
    return index_dir, older, newer


def damage(index_dir: Path, how: str) -> None:
    gen = current_generation(index_dir)
    if how == "garbage":
        (index_dir / CURRENT).write_text("garbage\n")
    elif how == "missing":
        (index_dir / CURRENT).unlink()
    elif how == "empty":
        (index_dir / CURRENT).write_text("")
    elif how == "no-manifest":
        (gen / MANIFEST).unlink()
    elif how == "bad-manifest":
        (gen / MANIFEST).write_text("{not json")


DAMAGE = ["garbage", "missing", "empty", "no-manifest", "bad-manifest"]


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_current_serves_the_newest_complete_generation(two_generations, how):
    index_dir, older, newer = two_generations
    damage(index_dir, how)
    expected = older if how in ("no-manifest", "bad-manifest") else newer
    gen, warning = served_generation(index_dir)
    assert gen.name == expected and "names no complete generation" in warning
    assert ensure_index(index_dir) is None  # no sample build
    engine = SearchEngine(index_dir)
    assert engine.search("realword")["total"] == 7
    assert engine.info()["warnings"] == [warning]
    # sweeps never delete anything while CURRENT is damaged: which one is meant is unknown
    assert collect_garbage(index_dir) == [] and sweep(index_dir) == []
    assert {older, newer} <= {p.name for p in index_dir.glob("gen-*")}


@pytest.mark.parametrize("how", ["garbage", "missing", "no-manifest"])
def test_a_damaged_current_with_no_complete_generation_is_refused(corpus, tmp_path, how):
    index_dir = tmp_path / "index"
    gen = build(corpus, index_dir, workers=1).generation
    damage(index_dir, how)
    if how != "no-manifest":
        (index_dir / gen / MANIFEST).unlink()
    with pytest.raises(IndexUnusable, match="no complete generation"):
        ensure_index(index_dir)
    assert (index_dir / gen).is_dir()  # the real generation is still there
    out = CliRunner().invoke(cli, ["serve", "--index", str(index_dir), "--port", "0"])
    assert out.exit_code == 1
    assert out.output.count("\n") == 1 and "no complete generation" in out.output
    assert (index_dir / gen).is_dir()


def test_kb_index_repairs_a_damaged_current_incrementally(two_generations, corpus):
    index_dir, older, newer = two_generations
    damage(index_dir, "garbage")
    report = build(corpus, index_dir, workers=1)
    assert report.mode == "incremental" and report.indexed == 8
    assert current_generation(index_dir).name == report.generation
    assert SearchEngine(index_dir).search("extraword")["total"] == 1


def test_serve_with_a_garbage_current_keeps_the_real_index(two_generations):
    """`echo garbage > DIR/CURRENT; kb serve --index DIR` used to build the 42-article sample into
    DIR, whose sweep deleted the real generation."""
    from test_serve import Server

    index_dir, older, newer = two_generations
    damage(index_dir, "garbage")
    with Server("--index", str(index_dir), "--workers", "1") as srv:
        status, health = srv.json("/healthz")
        assert status == 200 and health["generation"] == newer and health["articles"] == 8
        status, data = srv.json("/api/search?q=realword")
        assert status == 200 and data["total"] == 7
        assert "names no complete generation" in srv.output and "sample" not in srv.output
    assert {older, newer} <= {p.name for p in index_dir.glob("gen-*")}
    assert (index_dir / CURRENT).read_text() == "garbage\n"  # left for `kb index` to repair


def test_the_sample_is_built_only_into_a_directory_without_index_files(tmp_path):
    (tmp_path / "empty").mkdir()
    assert ensure_index(tmp_path / "empty").indexed == 42
    assert ensure_index(tmp_path / "nonexistent").indexed == 42
    only_current = tmp_path / "only-current"
    only_current.mkdir()
    (only_current / CURRENT).write_text("gen-20240101T000000-abcdef\n")
    with pytest.raises(IndexUnusable):
        ensure_index(only_current)


def test_an_older_extraction_is_served_with_a_warning_until_rebuilt(corpus, tmp_path):
    index_dir = tmp_path / "index"
    build(corpus, index_dir, workers=1)
    manifest_path = current_generation(index_dir) / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["format"] = FORMAT.split("-")[0] + "-0123456789ab"  # same schema, as the fingerprint era wrote
    manifest_path.write_text(json.dumps(manifest))
    engine = SearchEngine(index_dir)
    assert engine.search("realword")["total"] == 7  # not a 503
    [warning] = engine.info()["warnings"]
    assert "built by another version of kb" in warning and "kb index" in warning
    report = build(corpus, index_dir, workers=1)  # incremental by default: rebuilt in full
    assert report.mode == "full"
    assert engine.search("realword")["total"] == 7 and engine.info()["warnings"] == []


def test_a_reader_that_loses_the_race_with_a_sweep_moves_on(two_generations):
    """CURRENT read, then the generation swept before the reader takes its lease."""
    index_dir, older, newer = two_generations
    doomed = index_dir / older
    assert (doomed / ".lease").exists()
    with pytest.raises(GenerationGone):
        gone = index_dir / "gen-19990101T000000-000000"
        Generation(gone, Synonyms.load())
    # lease opened, then the sweep removed the directory: the lease is an unlinked file
    fd = os.open(doomed / ".lease", os.O_RDONLY)
    try:
        assert sweep(index_dir) == [older]  # our bare descriptor holds no lock
    finally:
        os.close(fd)
    with pytest.raises(GenerationGone):
        Generation(doomed, Synonyms.load())
    # the engine resolves again and serves the current generation
    engine = SearchEngine(index_dir)
    assert engine.info()["generation"] == newer


def test_sweeps_take_no_build_lock_and_spare_a_build_in_progress(corpus, tmp_path):
    """Builds are no longer refused because a server sweeps, and a server's sweep never touches
    the generation being built (it is a .building-* directory until committed)."""
    import threading

    index_dir = tmp_path / "index"
    build(corpus, index_dir, workers=1)
    with paused_build(corpus, index_dir):
        [building] = index_dir.glob(f"{BUILDING}*")
        old = time.time() - 2 * STALE_BUILD_SECONDS
        os.utime(building, (old, old))  # even an old-looking one: its build holds the lock
        assert collect_garbage(index_dir) == []
        assert building.is_dir()
    assert current_generation(index_dir) is not None and not building.exists()
    # a server sweeping all the time never makes a build fail
    stop = threading.Event()

    def sweeper() -> None:
        while not stop.is_set():
            collect_garbage(index_dir)

    thread = threading.Thread(target=sweeper)
    thread.start()
    try:
        for i in range(15):
            write_article(corpus, f"articles/g/loop{i}.md", f"Loop {i}", "loopword")
            build(corpus, index_dir, workers=1)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert SearchEngine(index_dir).search("loopword")["total"] == 15


def test_a_dead_builds_directory_is_removed(corpus, tmp_path):
    index_dir = tmp_path / "index"
    build(corpus, index_dir, workers=1)
    dead = index_dir / f"{BUILDING}gen-20200101T000000-dead00"
    dead.mkdir()
    (dead / "_MAIN_1.toc").write_text("half written")
    assert collect_garbage(index_dir) == [] and dead.exists()  # recent: might be a live build
    old = time.time() - 2 * STALE_BUILD_SECONDS
    os.utime(dead, (old, old))
    assert collect_garbage(index_dir) == [dead.name] and not dead.exists()
    dead.mkdir()
    build(corpus, index_dir, workers=1, full=True)  # a build removes them at once
    assert not dead.exists()


def test_an_empty_articles_folder_does_not_wipe_the_index(corpus, tmp_path):
    index_dir = tmp_path / "index"
    build(corpus, index_dir, workers=1)
    served = current_generation(index_dir).name
    unmounted = tmp_path / "share"
    unmounted.mkdir()
    with pytest.raises(EmptySource, match="holds no markdown file"):
        build(unmounted, index_dir, workers=1)
    out = CliRunner().invoke(cli, ["index", str(unmounted), "--index", str(index_dir)])
    assert out.exit_code == 1 and "--allow-empty" in out.output and "Traceback" not in out.output
    assert current_generation(index_dir).name == served
    assert SearchEngine(index_dir).search("realword")["total"] == 7
    out = CliRunner().invoke(cli, ["index", str(unmounted), "--index", str(index_dir), "--allow-empty"],
                             catch_exceptions=False)
    assert out.exit_code == 0 and SearchEngine(index_dir).search("")["total"] == 0


def test_an_index_that_cannot_be_written_is_one_line(corpus, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = CliRunner().invoke(cli, ["index", str(corpus), "--index", str(blocker / "index")])
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert out.output.startswith("Error: could not write the index in") and out.output.count("\n") == 1


def test_a_full_disk_leaves_the_served_index_and_says_so(corpus, tmp_path):
    """A real ENOSPC: the index on a 1 MiB tmpfs (needs root and mount; skipped otherwise)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        index_dir = mnt / "index"
        build(corpus, index_dir, workers=1)
        served = current_generation(index_dir).name
        free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
        (mnt / "filler").write_bytes(b"x" * max(free - 8192, 0))  # leave 8 KiB: less than a generation
        # in a process of its own, as run by hand (Whoosh's column writer leaves a file open when
        # its close fails, which pytest would report as a warning of this process)
        out = subprocess.run([sys.executable, "-m", "kb", "index", str(corpus), "--index", str(index_dir), "--full",
                              "--workers", "1"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        assert out.stderr.startswith("Error: could not write the index") and "No space left" in out.stderr
        assert out.stderr.count("\n") == 1
        assert current_generation(index_dir).name == served
        assert not list(index_dir.glob(f"{BUILDING}*"))
        assert SearchEngine(index_dir).search("realword")["total"] == 7
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
