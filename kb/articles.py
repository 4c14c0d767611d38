"""Articles on disk: find the markdown files under an articles root and parse them, in parallel.

This is the first stage of kb's pipeline (articles -> parse -> index -> search -> web/cli).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .parse import Article, ParseError, parse_bytes

#: Files kb indexes; everything else in the tree (images, .gitignore) is left alone.
SUFFIX = ".md"


@dataclass
class Skipped:
    """A file that yielded no article, with a short reason (``empty``, ``unreadable``, …)."""

    path: str
    reason: str
    detail: str = ""
    hash: str = ""


def sample_root() -> Path:
    """The bundled sample knowledge base that ships inside the package."""
    return Path(str(resources.files("kb.sample") / "articles"))


def discover(root: str | os.PathLike) -> list[str]:
    """Relative paths (forward slashes, sorted) of every markdown file below ``root``.

    Symbolic links are not followed, so a link cannot pull files from outside the root.
    """
    root = Path(root)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.lower().endswith(SUFFIX) and not name.startswith("."):
                full = Path(dirpath) / name
                if full.is_symlink() or not full.is_file():
                    continue
                found.append(full.relative_to(root).as_posix())
    found.sort()
    return found


def load(root: str | os.PathLike, path: str) -> Article | Skipped:
    """Read and parse one file; never raises for what is in the file."""
    try:
        data = (Path(root) / path).read_bytes()
    except OSError as exc:
        return Skipped(path, "unreadable", exc.strerror or type(exc).__name__)
    digest = hashlib.sha1(data).hexdigest()
    try:
        return parse_bytes(data, path)
    except ParseError as exc:
        return Skipped(path, exc.reason, exc.detail, digest)
    except Exception as exc:  # noqa: BLE001 - a parser bug must cost one file, not the build
        return Skipped(path, "parser-error", f"{type(exc).__name__}: {exc}"[:200], digest)


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
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for batch in pool.map(_load_many, batches):
            yield from batch
