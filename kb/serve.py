"""Running the web app: gunicorn in production, Flask's development server behind ``--debug``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gunicorn.app.base import BaseApplication

from .config import sample_root
from .generations import current_generation, has_index_files, outdated, read_manifest, readable, served_generation
from .search import IndexMissing
from .web import create_app

if TYPE_CHECKING:
    from .index import BuildReport

Echo = Callable[[str], None]


def _print(message: str) -> None:
    print(message, flush=True)  # stdout is often a pipe (tests, process managers)


class IndexUnusable(Exception):
    """The index directory holds index files but no generation this kb can serve."""


def ensure_index(index_dir: str | os.PathLike) -> BuildReport | None:
    """Index the bundled sample knowledge base into ``index_dir`` if it holds no index files at
    all, or if it serves the sample built by another version of kb.

    Returns the build report, or None when a usable index (or someone else's) already existed.
    Raises :class:`IndexUnusable` when the directory holds index files but no complete
    generation this kb can read: the sample is never built over someone's index (that build's
    sweep would delete it).
    """
    from .index import build  # the parser and writer, only when there is something to build

    if not has_index_files(index_dir):
        return build(sample_root(), index_dir, full=True)
    gen, _warning = served_generation(index_dir)
    if gen is None:
        raise IndexUnusable(
            f"{index_dir} holds index files but no complete generation this kb can serve; "
            f"rebuild it with `kb index ARTICLES_DIR --index {index_dir}` (nothing was changed)")
    manifest = read_manifest(gen)
    if (gen == current_generation(index_dir) and outdated(manifest)
            and manifest.get("source") == str(sample_root().resolve())):
        return build(sample_root(), index_dir, full=True)
    return None


def indexed_count(index_dir: str | os.PathLike) -> int | None:
    """Articles in the served generation, from its manifest (no need to open the index)."""
    gen, _warning = served_generation(index_dir)
    if gen is None:
        return None
    return read_manifest(gen).get("report", {}).get("indexed")


def url_for_bind(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class KbServer(BaseApplication):
    """gunicorn, configured in code: each worker builds its own app after the fork.

    Nothing is preloaded, so no worker shares the master's open index files.
    """

    def __init__(self, index_dir: str, options: dict, echo: Echo):
        self.index_dir = index_dir
        self.options = options
        self.echo = echo
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if "http_parser" in self.cfg.settings:
            # the Python parser is the one kb.worker bounds (an optional C parser would not be)
            self.cfg.set("http_parser", "python")
        if "control_socket_disable" in self.cfg.settings:
            # gunicorn >= 24 opens a control socket at one fixed per-user path by default; two kb
            # servers would fight over it, and kb has no use for it.
            self.cfg.set("control_socket_disable", True)
        self.cfg.set("when_ready", self._when_ready)

    def load(self):
        app = create_app({"KB_INDEX": self.index_dir})
        engine = app.extensions["kb_engine"]
        # each worker opens a new generation in the background as soon as a build switches to it
        engine.start_watching(0.5)
        try:  # open the index now, in the worker, so the first request does not wait for it
            engine.generation()
        except IndexMissing:
            pass  # requests answer 503 until an index is built
        except Exception:  # noqa: BLE001 - a worker that cannot boot would take the server down
            app.logger.exception("could not open the index in %s; requests will fail until it is rebuilt",
                                 self.index_dir)
        return app

    def _when_ready(self, server) -> None:
        # Printed once the sockets are bound, so the port is the real one even for --port 0.
        for listener in server.LISTENERS:
            host, port = listener.sock.getsockname()[:2]
            self.echo(f"kb: serving {indexed_count(self.index_dir)} articles at {url_for_bind(host, port)}"
                      f" (index {self.index_dir}, {self.options['workers']} workers; Ctrl+C stops)")


def serve(index_dir: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 5000, workers: int = 2,
          debug: bool = False, echo: Echo = _print) -> None:
    """Serve the search page and JSON API for ``index_dir`` until interrupted.

    When the directory has no index yet, the bundled sample knowledge base is indexed first, so
    ``kb serve`` works right after install.
    """
    index_dir = str(Path(index_dir).resolve())
    report = ensure_index(index_dir)
    if report is not None:
        echo(f"kb: no index in {index_dir}; indexed the bundled sample knowledge base "
             f"({report.indexed} articles from {sample_root()}).")
    gen, warning = served_generation(index_dir)
    if warning:
        echo(f"kb: warning: {warning}")
    manifest = read_manifest(gen) if gen is not None else {}
    if gen is not None and outdated(manifest):
        how = "it is served until it is rebuilt" if readable(manifest) else "searches answer 503 until it is rebuilt"
        echo(f"kb: warning: the index in {index_dir} was built by another version of kb; {how}: "
             f"kb index {manifest.get('source', 'ARTICLES_DIR')} --index {index_dir}")
    if debug:
        echo(f"kb: development server with the debugger at {url_for_bind(host, port)} (never use it in production)")
        create_app({"KB_INDEX": index_dir}).run(host=host, port=port, debug=True, use_reloader=False)
        return
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    options = {
        "bind": bind,
        "workers": workers,
        # gevent workers (kb/worker.py): each connection is a greenlet, so clients that send their
        # request slowly cost nothing; the sync workers they used to hold starved everyone else.
        "worker_class": "kb.worker.KbWorker",
        "worker_connections": 1000,
        # With gevent, keepalive also bounds the time to receive each request head (seconds).
        "keepalive": 5,
        # 0 hands the request line to kb.worker.BoundedRequest, which bounds it at 64 KiB (gunicorn
        # itself stops at 8,190 bytes, below inputs the app should answer: a 20,000 character q).
        "limit_request_line": 0,
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "kb",
    }
    KbServer(index_dir, options, echo).run()
