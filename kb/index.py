"""Builds: a full build into a new generation, or an incremental one that applies only what
changed to a copy of the served generation (generations themselves: :mod:`kb.generations`)."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh.writing import MERGE_SMALL

from .abbreviations import write_abbreviations
from .articles import Skipped, file_hash, file_stats, scan
from .documents import make_schema
from .generations import (
    BUILDING, FORMAT, LEASE, MANIFEST, SOURCES, BuildLock, commit, current_generation, load_manifest, new_generation,
    read_sources, remove_builds, served_generation, sweep,
)
from .shards import Shard, build_segments
from .writer import codec as writer_codec


@dataclass
class BuildReport:
    """What a build did, for the CLI summary and ``manifest.json``."""

    generation: str = ""
    mode: str = "full"  # "full" | "incremental" | "unchanged"
    files: int = 0
    indexed: int = 0
    added: int = 0
    changed: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    warnings: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    #: path -> abbreviations the file defines (kept in sources.json, not in the summary)
    definitions: dict[str, list] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "generation": self.generation,
            "mode": self.mode,
            "files": self.files,
            "indexed": self.indexed,
            "added": self.added,
            "changed": self.changed,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "skipped": [{"path": s.path, "reason": s.reason, "detail": s.detail} for s in self.skipped],
            "warnings": dict(sorted(self.warnings.items())),
            "seconds": round(self.seconds, 3),
        }


Progress = Callable[[int, int], None]
#: Files modified less than this long before the last build started are hashed again even when
#: their size and modification time are unchanged (nanoseconds; FAT's timestamps step by 2 s).
RACY_NS = 3_000_000_000


def _build_full(articles_dir: Path, paths: list[str], stats: dict[str, list[int]], gen: Path,
                report: BuildReport, progress: Progress | None, workers: int | None) -> dict[str, str]:
    """Write every article into the new generation ``gen``; returns path -> hash."""
    schema = make_schema()
    ix = whoosh_index.create_in(str(gen), schema)
    shards = build_segments(articles_dir, paths, gen, workers, progress, _sizes(stats))
    hashes: dict[str, str] = {}
    segments = _adopt(shards, report, hashes, lambda ident: None)
    whoosh_index.TOC(schema, segments, 1).write(ix.storage, ix.indexname)
    whoosh_index.clean_files(ix.storage, ix.indexname, 1, segments)  # the empty index's TOC
    shutil.rmtree(gen / f"{ix.indexname}.tmp", ignore_errors=True)  # the writers' scratch folder
    return hashes


def _sizes(stats: dict[str, list[int]]) -> dict[str, int]:
    return {p: st[0] for p, st in stats.items()}


def _adopt(shards: list[Shard], report: BuildReport, hashes: dict[str, str],
           holder: Callable[[str], str | None], incumbents: frozenset[str] = frozenset()) -> list:
    """Count the shards' articles, skips and warnings into ``report`` and ``hashes``; returns
    their segments.  A document whose id is taken - by an earlier path of the shards, or per
    ``holder`` (id -> path) by an article already in the index - is deleted and reported as a
    ``duplicate-id`` skip: the first path keeps the id, except that a path which held its id
    in the previous generation (``incumbents``, changed files) keeps it, so an id never moves to
    another file while its file is still there."""
    taken: dict[str, str] = {}
    for shard in shards:
        hashes.update(shard.hashes)
        report.definitions.update(shard.definitions)
        report.skipped += shard.skipped
        report.warnings.update(shard.warnings)
    docs = [(path not in incumbents, path, docnum, ident, shard)
            for shard in shards for docnum, (path, ident) in enumerate(shard.docs)]
    docs.sort(key=lambda d: d[:2])  # incumbents first, then path order
    for _new, path, docnum, ident, shard in docs:
        owner = taken.get(ident) or holder(ident)
        if owner is not None:
            shard.segment.delete_document(docnum)
            report.skipped.append(Skipped(path, "duplicate-id", f"id {ident!r} is taken by {owner}", hashes[path],
                                          owner=owner))
        else:
            taken[ident] = path
            report.indexed += 1
    report.skipped.sort(key=lambda s: s.path)
    return [shard.segment for shard in shards if shard.segment is not None]


class EmptySource(Exception):
    """The articles directory holds no markdown file while the served index holds articles (an
    unmounted share, a wrong path): building would empty the index."""


def build(
    articles_dir: str | os.PathLike,
    index_dir: str | os.PathLike,
    *,
    full: bool = False,
    progress: Progress | None = None,
    workers: int | None = None,
    allow_empty: bool = False,
    commit_info: dict | None = None,
) -> BuildReport:
    """Index every article under ``articles_dir`` into a new generation of ``index_dir``.

    Unless ``full`` is set, an existing generation built from the same directory with the same
    format is reused: only added, changed (by content hash) and deleted files are touched.
    Raises :class:`BuildLocked` when another build is running, and :class:`EmptySource` when
    ``articles_dir`` has no markdown file but the served index has articles, unless
    ``allow_empty``.  Any other failure (a full disk, a read-only directory) raises and leaves
    the served generation as it was.  ``commit_info`` (``{"sha", "time"}`` of the articles'
    git commit, from ``kb sync``) is recorded in the manifest as ``commit``; a build whose commit
    differs from the served one's writes a new generation even when no article changed, so the
    served generation always names the commit it reflects.
    """
    started = time.perf_counter()
    started_ns = time.time_ns()
    articles_dir = Path(articles_dir).resolve()
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    report = BuildReport()
    with BuildLock(index_dir):
        remove_builds(index_dir)  # left by builds that died: we hold the lock, none is running
        paths, unlisted = scan(articles_dir)
        stats = file_stats(articles_dir, paths)
        report.files = len(paths) + len(unlisted)
        # a damaged CURRENT still leaves the newest complete generation to build on
        prev, _warning = served_generation(index_dir)
        prev_manifest = load_manifest(prev) if prev is not None else None
        if not paths and not allow_empty and prev_manifest is not None \
                and prev_manifest.get("report", {}).get("indexed", 0) > 0:
            raise EmptySource(
                f"{articles_dir} holds no markdown file, but the index in {index_dir} has "
                f"{prev_manifest['report']['indexed']} articles; nothing was changed (is the share mounted? "
                f"--allow-empty empties the index)")
        incremental = (
            not full
            and prev_manifest is not None
            and prev_manifest.get("format") == FORMAT
            and prev_manifest.get("source") == str(articles_dir)
        )
        if incremental:
            prev_sources = read_sources(prev)
            unchanged, todo, gone = _changes(articles_dir, prev_sources, paths, stats, report)
            if not todo and not gone and prev == current_generation(index_dir) \
                    and prev_manifest.get("commit") == commit_info:
                # nothing to do: keep serving the current generation (servers need not reopen it)
                report.skipped = sorted(report.skipped + unlisted, key=lambda s: s.path)
                report.mode = "unchanged"
                report.generation = prev.name
                report.seconds = time.perf_counter() - started
                return report
        building = new_generation(index_dir)
        try:
            if incremental:
                hashes = _build_incremental(articles_dir, prev, prev_sources, building, unchanged, todo, gone,
                                            stats, report, progress, workers)
            else:
                hashes = _build_full(articles_dir, paths, stats, building, report, progress, workers)
                report.added = report.indexed
            if incremental:  # what unchanged files define, from the previous build's record
                for path, found in prev_sources.get("definitions", {}).items():
                    if path in unchanged and path not in report.definitions:
                        report.definitions[path] = found
            write_abbreviations(building, report.definitions)
            report.skipped = sorted(report.skipped + unlisted, key=lambda s: s.path)
            report.generation = building.name[len(BUILDING):]
            report.seconds = time.perf_counter() - started
            sources = {
                "hashes": hashes,
                "stats": stats,
                "started_ns": started_ns,
                "skipped": {s.path: [s.reason, s.detail] for s in report.skipped},
                # who keeps the id each duplicate-id file was refused: it is tried again when they go
                "owners": {s.path: s.owner for s in report.skipped if s.owner},
                # abbreviations each file defines: an incremental build recounts them without rereading
                "definitions": report.definitions,
            }
            (building / SOURCES).write_text(json.dumps(sources))
            manifest = {
                "format": FORMAT,
                "source": str(articles_dir),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "report": report.to_dict(),
            }
            if commit_info is not None:
                manifest["commit"] = commit_info
            (building / MANIFEST).write_text(json.dumps(manifest))
            commit(index_dir, building)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        sweep(index_dir)
    return report


def _changes(articles_dir: Path, prev_sources: dict, paths: list[str], stats: dict[str, list[int]],
             report: BuildReport) -> tuple[dict[str, str], list[str], list[str]]:
    """Compare the files with the previous build's hashes: (unchanged path -> hash, files to
    parse, files gone).  Unchanged files are counted in ``report`` as indexed or skipped.

    A file is hashed again unless its size and modification time are those the last build saw
    and it was last modified well before that build started (a change within the timestamp's
    granularity could keep both), as make and git decide.  A file the last build could not read
    (no hash recorded) is always tried again, and a file refused as ``duplicate-id`` is parsed
    again when the file that kept its id goes or changes, so it can take the id over.
    """
    old_hashes: dict[str, str] = prev_sources.get("hashes", {})
    old_stats: dict[str, list[int]] = prev_sources.get("stats", {})
    settled_before = prev_sources.get("started_ns", 0) - RACY_NS
    old_skipped: dict[str, list[str]] = prev_sources.get("skipped", {})
    hashes: dict[str, str] = {}
    todo: list[str] = []
    kept: list[str] = []
    root = str(articles_dir)
    for p in paths:
        h = old_hashes.get(p)
        st = stats.get(p)
        if not h or st is None or old_stats.get(p) != st or st[1] >= settled_before:
            h = file_hash(os.path.join(root, p))
        if h is not None and old_hashes.get(p) == h and h:
            hashes[p] = h
            kept.append(p)
        elif h is None and old_hashes.get(p) == "" and p in old_skipped:
            hashes[p] = ""  # still unreadable: still skipped, and tried again next time
            kept.append(p)
        else:
            todo.append(p)
    current = set(paths)
    gone = [p for p in old_hashes if p not in current]
    # duplicate-id files whose id keeper leaves or changes: parsed again with it
    owners: dict[str, str] = prev_sources.get("owners", {})
    leaving = {*gone, *todo}
    for p in kept:
        if owners.get(p) in leaving:
            todo.append(p)
            del hashes[p]
    todo.sort()
    requeued = set(todo)
    for p in kept:
        if p in requeued:
            continue
        if p in old_skipped:
            reason, detail = old_skipped[p][:2]
            report.skipped.append(Skipped(p, reason, detail, hashes[p], owner=owners.get(p, "")))
        else:
            report.unchanged += 1
    report.deleted = sum(1 for p in gone if p not in old_skipped)
    report.changed = sum(1 for p in todo if p in old_hashes)
    report.added = len(todo) - report.changed
    report.indexed = report.unchanged
    return hashes, todo, gone


def _build_incremental(articles_dir: Path, prev: Path, prev_sources: dict, gen: Path, hashes: dict[str, str],
                       todo: list[str], gone: list[str], stats: dict[str, list[int]], report: BuildReport,
                       progress: Progress | None, workers: int | None) -> dict[str, str]:
    """Copy the previous generation and apply only the differences to it; returns path -> hash.

    The copy is made of hard links: Whoosh never rewrites a segment file once written (a commit
    writes new segments and a new TOC), so both generations can share them safely.  Deleted and
    changed files leave the index through Whoosh's writer; added and changed ones are written
    into new segments as in a full build, and the writer's commit lists them.
    """
    for f in prev.iterdir():
        if f.is_file() and f.name not in (MANIFEST, SOURCES, LEASE) and not f.name.endswith(".lock"):
            os.link(f, gen / f.name)
    old_hashes: dict[str, str] = prev_sources.get("hashes", {})
    ix = whoosh_index.open_dir(str(gen))
    writer = ix.writer(limitmb=128, codec=writer_codec())
    try:
        old_skipped = prev_sources.get("skipped", {})
        # what leaves the index: files gone or changed that were in it (skipped ones never were)
        leaving = {p for p in (*gone, *todo) if p in old_hashes and p not in old_skipped}
        with writer.searcher() as searcher:  # one reader for all (Whoosh opens one per call)
            # a changed file is deleted and re-added; one that no longer parses just leaves search
            for p in leaving:
                writer.delete_by_term("path", p, searcher=searcher)
            shards = build_segments(articles_dir, todo, gen, workers, progress, _sizes(stats))

            def holder(ident: str) -> str | None:
                stored = searcher.document(id=ident)
                return None if stored is None or stored["path"] in leaving else stored["path"]

            new_segments = _adopt(shards, report, hashes, holder, frozenset(leaving))
    except BaseException:
        writer.cancel()
        raise
    writer.commit(mergetype=lambda w, segments: MERGE_SMALL(w, segments) + new_segments)
    shutil.rmtree(gen / f"{ix.indexname}.tmp", ignore_errors=True)
    report.mode = "incremental"
    return hashes
