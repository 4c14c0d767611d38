"""A full build in parallel: every writer process parses articles and writes one Whoosh segment.

Parsing and indexing are both CPU-bound Python, so a full build runs them in one process per
core, each writing a segment of its own (:class:`kb.writer.SegmentBuilder`); the TOC that lists
the segments makes them one index.  No article crosses a process boundary.

Work is shared out as it goes, so that no process waits for another: the paths (sorted) are cut
into regions of about equal size, and two processes work on each region from its two ends in
chunks, until they meet.  The files of a region before the meeting point go to one segment and
those after it to the other, each numbered in path order, so the documents of the index follow
the sorted paths wherever the meeting point falls.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from whoosh import index as whoosh_index

from .abbreviations import definitions
from .articles import Skipped, die_with_parent, load
from .documents import article_document
from .writer import SegmentBuilder

#: Most writer processes (and segments) of a full build, whatever the CPU count: every segment
#: adds a little work to each query.
MAX_PROCESSES = 4
#: Files a process takes from its end of a region at a time.
CHUNK = 16
#: Builds smaller than this run in the calling process: starting processes would cost more.
MIN_PARALLEL = 200
#: The collector's thresholds while a segment is built: its full passes grow with the postings
#: kept in memory, and parsing makes garbage fast (the default thresholds cost a fifth of the
#: parse time).
GC_THRESHOLDS = (50_000, 50, 100)
#: Seconds of work a reverse segment builder leaves to its finish per document: writing stored
#: fields and columns (measured on the real corpus).
DEFERRED_PER_FILE = 80e-6
#: The work of one file as bytes of text, for cutting regions: parsing took about 0.3 ms per file
#: plus 0.1 ms per KB on the real corpus.
PER_FILE_BYTES = 3000

Progress = Callable[[int, int], None]


@dataclass
class Shard:
    """What one writer wrote: its segment (None when it indexed nothing) and what it found."""

    segment: object | None = None
    #: (path, article id) of each document, by document number
    docs: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: Counter = field(default_factory=Counter)
    hashes: dict[str, str] = field(default_factory=dict)
    #: abbreviations each article defines ("Azure Kubernetes Service (AKS)"), where it defines any
    definitions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def build_segments(articles_dir: Path, paths: list[str], gen: Path, workers: int | None = None,
                   progress: Progress | None = None, sizes: dict[str, int] | None = None) -> list[Shard]:
    """Parse ``paths`` (sorted) and write them as segments of the (empty) index in ``gen``;
    the shards come in path order.  ``sizes`` (path -> bytes) helps share out the work.  The
    caller writes the TOC."""
    workers = workers if workers is not None else (os.cpu_count() or 1)
    workers = min(workers, MAX_PROCESSES)
    workers -= workers % 2  # processes work in pairs
    if workers < 2 or len(paths) < MIN_PARALLEL:
        return [_write(str(articles_dir), str(gen), paths, progress=progress, total=len(paths))]
    return _run_parallel(articles_dir, paths, gen, workers, progress, sizes or {})


def _write(articles_dir: str, gen_dir: str, paths: Iterable[str], reverse: bool = False,
           progress: Progress | None = None, total: int = 0) -> Shard:
    """Parse ``paths`` and write them into one new segment, numbered in path order: the paths
    come in that order, or with ``reverse`` in the opposite one.  ``progress`` is called after
    each file with the count so far and ``total``."""
    thresholds = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        ix = whoosh_index.open_dir(gen_dir)
        builder = SegmentBuilder(ix.storage, ix.indexname, ix.schema, reverse)
        shard = Shard()
        try:
            _add_all(articles_dir, builder, shard, paths, progress, total)
        except BaseException:
            builder.discard()
            raise
        if reverse:
            shard.docs.reverse()  # by document number
        shard.skipped.sort(key=lambda s: s.path)
        shard.segment = builder.finish() if len(builder) else builder.discard()
        return shard
    finally:
        gc.set_threshold(*thresholds)


def _add_all(articles_dir: str, builder: SegmentBuilder, shard: Shard, paths: Iterable[str],
             progress: Progress | None, total: int) -> None:
    for n, path in enumerate(paths, 1):
        item = load(articles_dir, path)
        shard.hashes[path] = item.hash
        if isinstance(item, Skipped):
            shard.skipped.append(item)
        else:
            shard.warnings.update(item.warnings)
            found = definitions("\n".join((item.title, item.info, item.description, item.issue, *item.steps,
                                            item.body)))
            if found:
                shard.definitions[path] = found
            builder.add(article_document(item))
            shard.docs.append((item.path, item.id))
        if progress is not None:
            progress(n, total)


# -- the writer processes ----------------------------------------------------------------------

_state: dict = {}  # in a writer process: the paths, the shared claims and progress counter


def _init_process(parent: int, paths: list[str], claims, counter) -> None:
    die_with_parent(parent)
    # A writer process lives for one build: the collector's passes over the postings it keeps
    # cost more than the little cyclic garbage that parsing leaves (about 40 MB for half the
    # real corpus), which goes when the process ends.
    gc.disable()
    _state.update(paths=paths, claims=claims, counter=counter)


def _claimed(region: int, from_end: bool) -> Iterator[str]:
    """The paths this process takes from one end of ``region``, a chunk at a time, until the
    other process working on the region has taken the rest; from the end, in reverse order.

    The process at the end leaves the last files to the other one: it has the stored fields of
    its documents still to write (see :class:`kb.writer.SegmentBuilder`), so it stops once the
    files left would take it less time than that.
    """
    paths, claims, counter = _state["paths"], _state["claims"], _state["counter"]
    front, back = 2 * region, 2 * region + 1
    started = time.perf_counter()
    taken = 0
    while True:
        with claims.get_lock():
            lo, hi = claims[front], claims[back]
            if lo >= hi:
                return
            if from_end and taken:
                per_file = (time.perf_counter() - started) / taken
                if (hi - lo) * per_file <= taken * DEFERRED_PER_FILE:
                    return
            if from_end:
                lo = claims[back] = max(lo, hi - CHUNK)
            else:
                hi = claims[front] = min(hi, lo + CHUNK)
        yield from (reversed(paths[lo:hi]) if from_end else paths[lo:hi])
        taken += hi - lo
        with counter.get_lock():
            counter.value += hi - lo


def _write_claimed(articles_dir: str, gen_dir: str, region: int, from_end: bool) -> Shard:
    return _write(articles_dir, gen_dir, _claimed(region, from_end), reverse=from_end)


def _regions(paths: list[str], sizes: dict[str, int], count: int) -> list[tuple[int, int]]:
    """Cut ``paths`` into ``count`` runs (start, stop) of about equal work."""
    work = [sizes.get(p, 0) + PER_FILE_BYTES for p in paths]
    total = sum(work)
    bounds = [0]
    acc = 0
    for i, w in enumerate(work):
        if acc * count >= total * len(bounds) and len(bounds) < count:
            bounds.append(i)
        acc += w
    bounds.append(len(paths))
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def _run_parallel(articles_dir: Path, paths: list[str], gen: Path, workers: int,
                  progress: Progress | None, sizes: dict[str, int]) -> list[Shard]:
    regions = _regions(paths, sizes, workers // 2)  # a region per pair of processes
    claims = multiprocessing.Array("q", [x for region in regions for x in region])
    counter = multiprocessing.Value("q", 0)
    # (region, from its end?), in the path order of the segments they write
    tasks = [(r, from_end) for r in range(len(regions)) for from_end in (False, True)]
    with ProcessPoolExecutor(max_workers=len(tasks), initializer=_init_process,
                             initargs=(os.getpid(), paths, claims, counter)) as pool:
        futures = [pool.submit(_write_claimed, str(articles_dir), str(gen), r, from_end)
                   for r, from_end in tasks]
        pending = set(futures)
        shown = 0
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            if any(f.exception() is not None for f in done):
                for f in pending:
                    f.cancel()
                break
            if progress is not None and counter.value != shown:
                shown = counter.value
                progress(shown, len(paths))
        return [f.result() for f in futures]  # raises the first error of a writer

