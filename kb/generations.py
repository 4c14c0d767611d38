"""Index directories: generations, the ``CURRENT`` pointer, the build lock, leases, the format.

Layout of an index directory::

    index/
      CURRENT              name of the generation being served (replaced atomically)
      .build.lock          held by the one build that may run at a time
      gen-<time>-<rand>/   one complete Whoosh index per generation, plus manifest.json
                           (format, report) and sources.json (what each source file was)
      .building-<...>/     the generation a build is writing (renamed to gen-* when complete)

A build (:mod:`kb.index`) writes a new generation in a ``.building-*`` directory, fsyncs it,
renames it to ``gen-*`` and only then points ``CURRENT`` at it with an atomic rename.  A reader
therefore never sees a half-built index, a sweep never sees a generation under construction, and
a build that fails or is killed leaves the served generation untouched.  Readers hold a shared
``flock`` on ``<generation>/.lease`` while they use it; a generation is deleted only when its
lease can be taken exclusively, that is, when nothing reads it any more.  Searching needs only
this module of the build side, not the parser.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import shutil
import threading
import time
from pathlib import Path

CURRENT = "CURRENT"
LOCK = ".build.lock"
LEASE = ".lease"
MANIFEST = "manifest.json"
#: Per source file: content hash, [size, mtime_ns], skip reason; what incremental builds compare.
#: Apart from the manifest, which every reader opening a generation reads.
SOURCES = "sources.json"
#: Prefix of a generation being written, and of one being deleted; neither is ever served.
BUILDING = ".building-"
TRASH = ".trash-"
#: A sweep by a server removes the ``.building-*`` directory of a dead build only once it is
#: this old (seconds), so servers rarely touch the build lock (a build removes them at its start).
STALE_BUILD_SECONDS = 600
#: The layout of the index: the schema, what each field holds, the segment codec.  Bump it by
#: hand when the query side could not read an index of the previous layout.
SCHEMA_VERSION = 10
#: What the parser and analyzer extract from an article.  Bump it by hand whenever a change to
#: parsing, analysis or the document of an article changes what goes into an index;
#: tests/test_extraction.py fails until it is (its golden digest records this version).  An
#: index of another extraction version is still served, with a warning, until it is rebuilt;
#: an incremental build of it rebuilds it in full.
EXTRACTION_VERSION = 5
#: The format recorded in every manifest.  Indexes of the fingerprint era read "10-<hex>": their
#: schema part still matches, so they are served (outdated) until rebuilt.
FORMAT = f"{SCHEMA_VERSION}-x{EXTRACTION_VERSION}"


def schema_of(fmt: object) -> str:
    """The schema part of a manifest's format ("" when there is none)."""
    return fmt.split("-", 1)[0] if isinstance(fmt, str) else ""


def readable(manifest: dict) -> bool:
    """Whether this kb can serve an index of ``manifest``'s format: same schema version (its
    extraction may be outdated, see :func:`outdated`)."""
    return schema_of(manifest.get("format")) == str(SCHEMA_VERSION)


def outdated(manifest: dict) -> bool:
    """Whether the index was extracted by another version of kb (still readable or not)."""
    return manifest.get("format") != FORMAT


class BuildLocked(Exception):
    """Another ``kb index`` holds the build lock of this index directory."""


def load_manifest(gen: Path) -> dict | None:
    """The manifest of ``gen``, or None when it has none or one that is not a JSON object (a
    generation without a valid manifest is not complete)."""
    try:
        manifest = json.loads((gen / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("format"), str) else None


def read_manifest(gen: Path) -> dict:
    """The manifest of ``gen`` ({} when it is missing or unreadable)."""
    return load_manifest(gen) or {}


def read_sources(gen: Path) -> dict:
    """What the build of ``gen`` recorded of each source file ({} when nothing was recorded)."""
    try:
        sources = json.loads((gen / SOURCES).read_text())
    except (OSError, ValueError):
        return {}
    return sources if isinstance(sources, dict) else {}


def current_generation(index_dir: str | os.PathLike) -> Path | None:
    """The generation ``CURRENT`` names, or None when it names no complete generation (no build
    has completed, or ``CURRENT`` or the manifest is missing or damaged)."""
    index_dir = Path(index_dir)
    try:
        name = (index_dir / CURRENT).read_text(errors="replace").strip()
    except OSError:
        return None
    if not name.startswith("gen-") or "/" in name or "\x00" in name:
        return None
    gen = index_dir / name
    return gen if load_manifest(gen) is not None else None


def complete_generations(index_dir: str | os.PathLike) -> list[Path]:
    """Every complete generation of ``index_dir`` (a ``gen-*`` directory with a valid manifest),
    newest first."""
    found = []
    for gen in Path(index_dir).glob("gen-*"):
        manifest = load_manifest(gen)
        if manifest is not None:
            try:
                found.append((os.stat(gen / MANIFEST).st_mtime_ns, gen.name, gen))
            except OSError:
                continue
    return [gen for *_key, gen in sorted(found, reverse=True)]


def served_generation(index_dir: str | os.PathLike) -> tuple[Path | None, str]:
    """The generation to serve and a warning ("" when none).

    That is the one ``CURRENT`` names; when ``CURRENT`` is missing or damaged, or names a
    generation without a valid manifest, the newest complete generation this kb can read (one of
    its own format first), with a warning: never nothing while a usable generation exists.
    """
    gen = current_generation(index_dir)
    if gen is not None:
        return gen, ""
    usable = [(m, g) for g in complete_generations(index_dir) if readable(m := load_manifest(g) or {})]
    if not usable:
        return None, ""
    gen = next((g for m, g in usable if not outdated(m)), usable[0][1])
    return gen, (f"{Path(index_dir) / CURRENT} names no complete generation; serving the newest "
                 f"complete one, {gen.name} (run `kb index` to repair it)")


def has_index_files(index_dir: str | os.PathLike) -> bool:
    """Whether ``index_dir`` holds anything of a kb index (``CURRENT``, generations, a build)."""
    index_dir = Path(index_dir)
    if (index_dir / CURRENT).exists():
        return True
    return any(True for pattern in ("gen-*", f"{BUILDING}*") for _ in index_dir.glob(pattern))


class BuildLock:
    """The one-build-at-a-time lock of an index directory.

    A POSIX record lock (``lockf``), not ``flock``: the parser processes a build forks must not
    inherit it, or a build killed with SIGKILL would leave them holding it and refuse every later
    build.  POSIX locks die with the process that took them.  (Within one process, closing any
    descriptor of the lock file drops the lock, so only this class opens it.)
    """

    # POSIX locks do not exclude threads of one process: this does (a sweep in a server's watcher
    # thread must never run beside a build in the same process).
    _in_process: dict[str, threading.Lock] = {}
    _registry = threading.Lock()

    def __init__(self, index_dir: Path):
        self.path = index_dir / LOCK
        self.fd: int | None = None
        with self._registry:
            self._thread_lock = self._in_process.setdefault(str(self.path.resolve()), threading.Lock())

    def __enter__(self):
        if not self._thread_lock.acquire(blocking=False):
            raise BuildLocked(f"another kb index is already building {self.path.parent}")
        try:
            self._lock_file()
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def _lock_file(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self.fd)
            self.fd = None
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise BuildLocked(f"another kb index is already building {self.path.parent}") from None
            raise

    def __exit__(self, *exc):
        try:
            if self.fd is not None:
                os.close(self.fd)  # closing releases the lock
                self.fd = None
        finally:
            self._thread_lock.release()


def new_generation(index_dir: Path) -> Path:
    """A new, empty generation directory under construction: ``.building-gen-<time>-<rand>``.

    Only :func:`commit` makes it a ``gen-*`` directory; until then sweeps do not see it.
    """
    name = time.strftime("gen-%Y%m%dT%H%M%S-", time.gmtime()) + secrets.token_hex(3)
    gen = index_dir / f"{BUILDING}{name}"
    gen.mkdir()
    (gen / LEASE).touch()
    return gen


def fsync_path(path: Path) -> None:
    """fsync a file or a directory."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(index_dir: Path, building: Path) -> Path:
    """Make the generation built in ``building`` durable and serve it: fsync its files and
    directory, rename it to its ``gen-*`` name, and switch ``CURRENT`` to it.

    The build holds a shared lease on it from the rename until ``CURRENT`` names it, so a
    server's sweep (which takes no build lock) cannot remove it in between.
    """
    for f in building.iterdir():
        if f.is_file():
            fsync_path(f)
    fsync_path(building)
    gen = index_dir / building.name[len(BUILDING):]
    lease = os.open(building / LEASE, os.O_RDONLY)
    try:
        fcntl.flock(lease, fcntl.LOCK_SH)
        os.rename(building, gen)
        fsync_path(index_dir)
        switch(index_dir, gen)
    finally:
        os.close(lease)
    return gen


def switch(index_dir: Path, gen: Path) -> None:
    """Point CURRENT at ``gen`` atomically (write a temporary file, fsync, rename)."""
    tmp = index_dir / f".{CURRENT}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        fh.write(gen.name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, index_dir / CURRENT)
    fsync_path(index_dir)


def collect_garbage(index_dir: str | os.PathLike) -> list[str]:
    """Remove generations that are neither current nor read by anyone (their lease is free),
    and the directories of builds that died long ago.

    Servers call this after they move to a new generation.  It takes no build lock (a build's
    generation is invisible to it until ``CURRENT`` names it), except to remove a dead build's
    directory that is :data:`STALE_BUILD_SECONDS` old, which is rare.
    """
    index_dir = Path(index_dir)
    removed = sweep(index_dir)
    cutoff = time.time() - STALE_BUILD_SECONDS
    stale = [d for d in index_dir.glob(f"{BUILDING}*") if _mtime(d) < cutoff]
    if stale:
        try:
            with BuildLock(index_dir):  # no build runs, so none of them is being written
                removed += remove_builds(index_dir)
        except (BuildLocked, OSError):
            pass
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")


def remove_builds(index_dir: Path) -> list[str]:
    """Remove the directories of dead builds and half-deleted generations.  The caller holds the
    build lock, so no build is writing any of them."""
    removed = []
    for d in [*index_dir.glob(f"{BUILDING}*"), *index_dir.glob(f"{TRASH}*")]:
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d.name)
    return removed


def sweep(index_dir: Path) -> list[str]:
    """Remove every ``gen-*`` generation that ``CURRENT`` does not name and nobody reads.

    Nothing is removed while ``CURRENT`` names no complete generation: which one is meant to be
    served is then unknown, and the real index must not go because ``CURRENT`` was damaged.  A
    generation is removed only under its exclusive lease, after checking that ``CURRENT`` still
    does not name it (a build may have switched meanwhile); it is first renamed out of sight, so
    a reader that resolved it before finds it gone, not half-deleted.
    """
    if current_generation(index_dir) is None:
        return []
    removed: list[str] = []
    for gen in sorted(index_dir.glob("gen-*")):
        cur = current_generation(index_dir)
        if cur is None or gen.name == cur.name or not gen.is_dir():
            continue
        try:
            fd = os.open(gen / LEASE, os.O_RDONLY)  # never created here: it could land in a dir being removed
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a reader still has it open
        try:
            cur = current_generation(index_dir)
            if os.fstat(fd).st_nlink == 0 or cur is None or cur.name == gen.name:
                continue  # another sweep removed it, or a build has just switched to it
            trash = index_dir / f"{TRASH}{gen.name}-{secrets.token_hex(3)}"
            try:
                os.rename(gen, trash)
            except OSError:
                continue
            shutil.rmtree(trash, ignore_errors=True)
            removed.append(gen.name)
        finally:
            os.close(fd)
    for trash in index_dir.glob(f"{TRASH}*"):  # left by a sweep that died: nobody can read them
        shutil.rmtree(trash, ignore_errors=True)
    return removed
