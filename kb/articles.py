"""Articles on disk: find the markdown files under an articles root and parse them, in parallel.

This is the first stage of kb's pipeline (articles -> parse -> index -> search -> web/cli).
"""

from __future__ import annotations

import hashlib
import ctypes
import os
import signal
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


def discover(root: str | os.PathLike) -> list[str]:
    """Relative paths (forward slashes, sorted) of every markdown file below ``root``.

    Symbolic links are not followed, so a link cannot pull files from outside the root; hidden
    files and folders (``.git``) are skipped, and so are unreadable folders.
    """
    found: list[str] = []
    stack = [(os.fspath(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:  # DirEntry caches the file type: no extra stat per file
            name = entry.name
            if name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, f"{prefix}{name}/"))
                elif name.lower().endswith(SUFFIX) and entry.is_file(follow_symlinks=False):
                    found.append(prefix + name)
            except OSError:
                continue
    found.sort()
    return found


def file_hash(path: str | os.PathLike) -> str | None:
    """The content hash kb records per source file (as ``Article.hash``), read in chunks; None
    when the file cannot be read.  Incremental builds compare it with the last build's."""
    digest = hashlib.sha1()
    try:
        with open(path, "rb") as fh:
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

    Files larger than :data:`kb.parse.MAX_BYTES` are not read past that size.
    """
    try:
        # os.path and a bounded read instead of pathlib: this runs once per file of the corpus
        with open(os.path.join(root, path), "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:  # refused unparsed, but hashed whole so updates see it change
            return Skipped(path, "too-large", f"more than {MAX_BYTES} bytes",
                           file_hash(os.path.join(root, path)) or "")
    except (OSError, ValueError) as exc:
        return Skipped(path, "unreadable", getattr(exc, "strerror", None) or type(exc).__name__)
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
