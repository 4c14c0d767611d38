"""Articles on disk: find the markdown files under an articles root and parse them, in parallel.

This is the first stage of kb's pipeline (articles -> parse -> index -> search -> web/cli).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import signal
import stat
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from .parse import MAX_BYTES, Article, ParseError, parse_bytes

#: Files kb indexes; everything else in the tree (images, .gitignore) is left alone.
SUFFIX = ".md"


@dataclass
class Skipped:
    """A file that yielded no article, with a short reason (``empty``, ``unreadable``, …)."""

    path: str
    reason: str
    detail: str = ""
    hash: str = ""
    #: for ``duplicate-id``: the path that keeps the id
    owner: str = ""


def scan(root: str | os.PathLike) -> tuple[list[str], list[Skipped]]:
    """The markdown files below ``root`` (relative paths, forward slashes, sorted), and what
    looked like one but cannot be indexed, each with its reason.

    Symbolic links are not followed (``symlink``): a link could pull in files from outside the
    root, or loop.  Anything else named ``*.md`` that is not a regular file (a FIFO, a socket, a
    device) is ``not-a-file`` and is never opened, so a FIFO cannot hang a build.  A folder that
    cannot be listed is ``unreadable``.  Hidden files and folders (``.git``) are left alone.
    """
    found: list[str] = []
    skipped: list[Skipped] = []
    stack = [(os.fspath(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            if prefix:
                skipped.append(Skipped(prefix.rstrip("/"), "unreadable", f"folder: {exc.strerror}"))
            continue
        for entry in entries:  # DirEntry caches the file type: no extra stat per file
            name = entry.name
            if name.startswith("."):
                continue
            rel = prefix + name
            try:
                if entry.is_symlink():
                    if name.lower().endswith(SUFFIX) or entry.is_dir():
                        skipped.append(Skipped(rel, "symlink", "symbolic links are not followed"))
                elif entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, f"{rel}/"))
                elif name.lower().endswith(SUFFIX):
                    if entry.is_file(follow_symlinks=False):
                        found.append(rel)
                    else:
                        skipped.append(Skipped(rel, "not-a-file", "not a regular file (a FIFO, socket or device)"))
            except OSError as exc:
                skipped.append(Skipped(rel, "unreadable", exc.strerror or type(exc).__name__))
    found.sort()
    skipped.sort(key=lambda s: s.path)
    return found, skipped


def discover(root: str | os.PathLike) -> list[str]:
    """Relative paths (forward slashes, sorted) of every markdown file below ``root`` (see
    :func:`scan`, which also says what was left out and why)."""
    return scan(root)[0]


def display_path(path: str) -> str:
    """``path`` as printable text: bytes of a file name that are not UTF-8 (kept by Python as
    lone surrogates) are shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _open_regular(path: str) -> int:
    """A read descriptor of the regular file ``path``, never blocking: a FIFO put in place of a
    file after it was listed would otherwise hang the build.  Raises OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def file_hash(path: str | os.PathLike) -> str | None:
    """The content hash kb records per source file (as ``Article.hash``), read in chunks; None
    when the file cannot be read.  Incremental builds compare it with the last build's."""
    digest = hashlib.sha1()
    try:
        with open(_open_regular(os.fspath(path)), "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def file_stats(root: str | os.PathLike, paths: Iterable[str]) -> dict[str, list[int]]:
    """[size, modification time in ns] of each of ``paths`` below ``root`` that can be stat'ed."""
    out: dict[str, list[int]] = {}
    root = os.fspath(root)
    for p in paths:
        try:
            st = os.stat(os.path.join(root, p))
        except OSError:
            continue
        out[p] = [st.st_size, st.st_mtime_ns]
    return out


def load(root: str | os.PathLike, path: str) -> Article | Skipped:
    """Read and parse one file; never raises for what is in the file.

    Files larger than :data:`kb.parse.MAX_BYTES` are not read past that size.  A file that
    cannot be read is skipped with no hash, so the next incremental build tries it again.
    """
    full = os.path.join(root, path)
    try:
        # os.path and a bounded read instead of pathlib: this runs once per file of the corpus
        with open(_open_regular(full), "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:  # refused unparsed, but hashed whole so updates see it change
            return Skipped(path, "too-large", f"more than {MAX_BYTES} bytes", file_hash(full) or "")
    except (OSError, ValueError) as exc:
        return Skipped(path, "unreadable", getattr(exc, "strerror", None) or type(exc).__name__)
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        # The path is the article's shown source and its stored key; a lossy stand-in could
        # collide with another file's, so the file is left out until it is renamed.
        return Skipped(path, "bad-name", f"file name is not UTF-8: {display_path(path)}",
                       hashlib.sha1(data).hexdigest())
    try:
        return parse_bytes(data, path)
    except ParseError as exc:
        return Skipped(path, exc.reason, exc.detail, hashlib.sha1(data).hexdigest())
    except Exception as exc:  # noqa: BLE001 - a parser bug must cost one file, not the build
        detail = f"{type(exc).__name__}: {exc}"[:200]
        return Skipped(path, "parser-error", detail, hashlib.sha1(data).hexdigest())


def die_with_parent(parent: int) -> None:
    """Make a parser process exit when the build that started it dies, even by SIGKILL.

    Pool workers otherwise wait for work forever: each holds both ends of the task queue, so
    none ever sees it close.  Linux only (prctl PR_SET_PDEATHSIG); elsewhere a no-op.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the build died before prctl took effect
            os._exit(1)


def _load_many(args: tuple[str, list[str]]) -> list[Article | Skipped]:
    root, paths = args
    return [load(root, p) for p in paths]


def load_all(root: str | os.PathLike, paths: Iterable[str], workers: int | None = None) -> Iterator[Article | Skipped]:
    """Parse ``paths`` below ``root``, in order, using ``workers`` processes (default: CPU count).

    Small jobs are parsed in this process; starting workers costs more than they save.
    """
    paths = list(paths)
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if workers <= 1 or len(paths) < 200:
        for p in paths:
            yield load(root, p)
        return
    chunk = 64
    batches = [(str(root), paths[i : i + chunk]) for i in range(0, len(paths), chunk)]
    with ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        for batch in pool.map(_load_many, batches):
            yield from batch
