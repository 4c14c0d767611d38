"""Index directories: generations, the ``CURRENT`` pointer, the build lock, leases, the format.

Layout of an index directory::

    index/
      CURRENT              name of the generation being served (replaced atomically)
      .build.lock          held by the one build that may run at a time
      gen-<time>-<rand>/   one complete Whoosh index per generation, plus manifest.json
                           (format, report) and sources.json (what each source file was)

A build (:mod:`kb.index`) writes a new generation next to the served one and, only when it has
committed, points ``CURRENT`` at it with an atomic rename.  A reader therefore never sees a
half-built index, and a build that fails or is killed leaves the served generation untouched.
Readers hold a shared ``flock`` on ``<generation>/.lease`` while they use it; a generation is
deleted only when its lease can be taken exclusively, that is, when nothing reads it any more.
Searching needs only this module of the build side, not the parser.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
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
#: The index format: the schema's version and a fingerprint of the code that decides what goes
#: into an index (parsing, analysis, documents).  A manifest with another format makes an
#: incremental build start afresh and a reader refuse the index, so a kb upgrade that extracts
#: articles differently can never serve a mix of old and new extraction.
SCHEMA_VERSION = 10
_EXTRACTION_MODULES = ("analysis", "articles", "documents", "htmltext", "index", "markdown", "parse", "payloads",
                       "properties", "shards", "whooshcodec", "writer")


def _fingerprint() -> str:
    digest = hashlib.sha1()
    here = Path(__file__).parent
    for name in _EXTRACTION_MODULES:
        try:
            digest.update((here / f"{name}.py").read_bytes())
        except OSError:
            digest.update(name.encode())  # no source (a frozen install): the version alone counts
    return digest.hexdigest()[:12]


FORMAT = f"{SCHEMA_VERSION}-{_fingerprint()}"

class BuildLocked(Exception):
    """Another ``kb index`` holds the build lock of this index directory."""


def current_generation(index_dir: str | os.PathLike) -> Path | None:
    """The generation directory being served, or None when no build has completed."""
    index_dir = Path(index_dir)
    try:
        name = (index_dir / CURRENT).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    gen = index_dir / name
    if not name or "/" in name or not (gen / MANIFEST).exists():
        return None
    return gen


def read_manifest(gen: Path) -> dict:
    return json.loads((gen / MANIFEST).read_text())


def read_sources(gen: Path) -> dict:
    """What the build of ``gen`` recorded of each source file ({} when nothing was recorded)."""
    try:
        return json.loads((gen / SOURCES).read_text())
    except (FileNotFoundError, ValueError):
        return {}


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
    name = time.strftime("gen-%Y%m%dT%H%M%S-", time.gmtime()) + secrets.token_hex(3)
    gen = index_dir / name
    gen.mkdir()
    (gen / LEASE).touch()
    return gen


def switch(index_dir: Path, gen: Path) -> None:
    """Point CURRENT at ``gen`` atomically (write a temporary file, fsync, rename)."""
    tmp = index_dir / f".{CURRENT}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        fh.write(gen.name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, index_dir / CURRENT)
    dfd = os.open(index_dir, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def collect_garbage(index_dir: str | os.PathLike) -> list[str]:
    """Remove generations that are neither current nor read by anyone (their lease is free).

    Only when no build runs (a generation being built is neither current nor leased); servers
    call this after they move to a new generation, builds after they switch.
    """
    index_dir = Path(index_dir)
    if len(list(index_dir.glob("gen-*"))) < 2:
        return []
    try:
        with BuildLock(index_dir):
            return sweep(index_dir)
    except (BuildLocked, FileNotFoundError):
        return []


def sweep(index_dir: Path) -> list[str]:
    cur = current_generation(index_dir)
    removed: list[str] = []
    for gen in sorted(index_dir.glob("gen-*")):
        if cur is not None and gen.name == cur.name or not gen.is_dir():
            continue
        lease = gen / LEASE
        try:
            fd = os.open(lease, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a reader still has it open
        try:
            shutil.rmtree(gen, ignore_errors=True)
            removed.append(gen.name)
        finally:
            os.close(fd)
    return removed
