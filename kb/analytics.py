"""Search analytics: what people search for, what they open and what they found unhelpful.

Recording is private and cheap.  Rows hold the query as typed (trimmed, capped), its normalised
form, the filters, page, totals and time taken, and where the search came from (page, api, cli);
never an IP address, user agent or cookie.  A request only appends to a bounded in-memory buffer;
one background OS thread per process writes the buffer in batches, so recording never slows or
fails a search.  When the store is unavailable the batch is dropped and counted in a warning.

Stores: SQLite in WAL mode (a file beside the index, safe for several gunicorn workers) or
PostgreSQL (``KB_ANALYTICS_URL=postgresql://...``) for several servers; both get the same schema,
created and migrated here.  The reports over it are in :mod:`kb.insights`.
"""

from __future__ import annotations

import atexit
import json
import logging
import re
import sqlite3
import threading
import time
import unicodedata
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

logger = logging.getLogger("kb.analytics")

#: Longest query kept (characters); the search box allows more, but no report needs it.
MAX_QUERY = 200
MAX_COMMENT = 500
MAX_FILTERS = 10
#: Result ids kept per search (its page's, copies too): enough for "articles never shown", bounded.
MAX_SHOWN = 50
#: Events held in memory per process while the writer is behind; past it they are dropped.
MAX_PENDING = 20_000
BATCH = 500
FLUSH_SECONDS = 0.5
SOURCES = ("page", "api", "cli")

_SPACE_RE = re.compile(r"\s+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]+")

#: Schema migrations, in order; the store records how many it has applied.  The DDL is the same
#: for SQLite and PostgreSQL (times are UTC epoch seconds, flags 0/1 integers).
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE IF NOT EXISTS kb_searches (
            ts DOUBLE PRECISION NOT NULL, day TEXT NOT NULL, query TEXT NOT NULL, norm TEXT NOT NULL,
            filters TEXT NOT NULL, page INTEGER NOT NULL, total INTEGER NOT NULL, zero INTEGER NOT NULL,
            took_ms DOUBLE PRECISION NOT NULL, source TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS kb_searches_ts ON kb_searches (ts)",
        """CREATE TABLE IF NOT EXISTS kb_opens (
            ts DOUBLE PRECISION NOT NULL, day TEXT NOT NULL, query TEXT NOT NULL, norm TEXT NOT NULL,
            article TEXT NOT NULL, position INTEGER NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS kb_opens_ts ON kb_opens (ts)",
        """CREATE TABLE IF NOT EXISTS kb_feedback (
            ts DOUBLE PRECISION NOT NULL, day TEXT NOT NULL, article TEXT NOT NULL, helpful INTEGER NOT NULL,
            comment TEXT NOT NULL, query TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS kb_feedback_ts ON kb_feedback (ts)",
        # how often each article was among the results shown, per day (bounded: days x articles)
        """CREATE TABLE IF NOT EXISTS kb_shown (
            day TEXT NOT NULL, article TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (day, article))""",
    ],
]

_INSERTS = {
    "search": "INSERT INTO kb_searches (ts, day, query, norm, filters, page, total, zero, took_ms, source) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "open": "INSERT INTO kb_opens (ts, day, query, norm, article, position) VALUES (?, ?, ?, ?, ?, ?)",
    "feedback": "INSERT INTO kb_feedback (ts, day, article, helpful, comment, query) VALUES (?, ?, ?, ?, ?, ?)",
}
_SHOWN_UPSERT = ("INSERT INTO kb_shown (day, article, n) VALUES (?, ?, ?) "
                 "ON CONFLICT (day, article) DO UPDATE SET n = kb_shown.n + excluded.n")
#: PostgreSQL's faster equivalents of the inserts above.
_COPIES = {kind: "COPY " + re.sub(r"INSERT INTO (\w+ \([^)]*\)).*", r"\1", sql) + " FROM STDIN"
           for kind, sql in _INSERTS.items()}
_SHOWN_UPSERT_PG = ("INSERT INTO kb_shown (day, article, n) SELECT * FROM unnest(%s::text[], %s::text[], %s::int[]) "
                    "ON CONFLICT (day, article) DO UPDATE SET n = kb_shown.n + excluded.n")
_PURGES = ("DELETE FROM kb_searches WHERE ts < ?", "DELETE FROM kb_opens WHERE ts < ?",
           "DELETE FROM kb_feedback WHERE ts < ?", "DELETE FROM kb_shown WHERE day < ?")


# -- cleaning -----------------------------------------------------------------------------------


def clean_text(text: str, limit: int) -> str:
    """``text`` without control characters, whitespace collapsed, trimmed and capped."""
    return _SPACE_RE.sub(" ", _CONTROL_RE.sub(" ", str(text or ""))).strip()[:limit]


def normalise(query: str) -> str:
    """The form queries are grouped by: NFKC, case-folded, single spaces, capped."""
    return clean_text(unicodedata.normalize("NFKC", query or "").casefold(), MAX_QUERY)


def day_of(ts: float) -> str:
    """The UTC day (YYYY-MM-DD) of epoch seconds ``ts``."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


# -- stores -------------------------------------------------------------------------------------


def describe(target: str) -> str:
    """A store target fit for a log line: a URL's password masked."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", target)


def _wal(conn: sqlite3.Connection, seconds: float = 10.0) -> None:
    """Put a SQLite database in WAL mode.  Switching a new database to WAL takes its exclusive
    lock without SQLite's busy handler, so several workers opening it at once get "database is
    locked" at once (15 of 300 tries with 8 threads): retry for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


class StoreError(Exception):
    """The analytics store could not be opened or written."""


class Store:
    """One connection to the analytics database, SQLite or PostgreSQL, with kb's schema.

    Not shared between threads: the writer thread and each report open their own.
    """

    def __init__(self, target: str, *, connect_timeout: float = 3.0):
        self.target = target
        self.postgres = target.startswith(("postgresql://", "postgres://"))
        try:
            if self.postgres:
                import psycopg  # only deployments with a PostgreSQL store need the driver

                self.conn = psycopg.connect(target, connect_timeout=max(1, int(connect_timeout)))
            else:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below)
                self.conn = sqlite3.connect(target, timeout=10.0, isolation_level=None,
                                            check_same_thread=False)
                _wal(self.conn)
                self.conn.execute("PRAGMA synchronous=NORMAL")
            self.migrate()
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - any driver error means "unavailable"
            raise StoreError(f"analytics store {self.describe()} unavailable: {exc}") from exc

    def describe(self) -> str:
        """The store's target without a password."""
        return describe(self.target)

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.postgres else statement

    def _begin(self) -> None:
        if not self.postgres:
            # IMMEDIATE takes the write lock now: two workers migrating wait for each other
            self.conn.execute("BEGIN IMMEDIATE")

    def migrate(self) -> None:
        """Create the schema or bring it up to date; several processes may call it at once."""
        self._begin()
        try:
            cur = self.conn.cursor()
            if self.postgres:
                # one migrating process at a time, released at commit
                cur.execute("SELECT pg_advisory_xact_lock(7014142)")
            cur.execute("CREATE TABLE IF NOT EXISTS kb_analytics_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            cur.execute(self._sql("SELECT value FROM kb_analytics_meta WHERE key = ?"), ("schema",))
            row = cur.fetchone()
            version = int(row[0]) if row else 0
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    cur.execute(statement)
            if version != len(MIGRATIONS):
                cur.execute(self._sql("DELETE FROM kb_analytics_meta WHERE key = ?"), ("schema",))
                cur.execute(self._sql("INSERT INTO kb_analytics_meta (key, value) VALUES (?, ?)"),
                            ("schema", str(len(MIGRATIONS))))
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise

    def write(self, events: Sequence[tuple[str, tuple]]) -> None:
        """Write ``events`` ((kind, row) pairs, see :class:`Recorder`) in one transaction."""
        by_kind: dict[str, list[tuple]] = {}
        shown: dict[tuple[str, str], int] = {}
        for kind, row in events:
            if kind == "shown":
                day, ids = row
                for article in ids:
                    shown[(day, article)] = shown.get((day, article), 0) + 1
            else:
                by_kind.setdefault(kind, []).append(row)
        self._begin()
        try:
            cur = self.conn.cursor()
            # sorted: two writers upserting the same rows take their locks in one order
            counts = sorted(shown.items())
            if self.postgres:
                # COPY and one array upsert: a few round trips per batch instead of one per row
                # (each is a wake-up of this thread, which the searches' thread would feel)
                for kind, rows in by_kind.items():
                    with cur.copy(_COPIES[kind]) as copy:
                        for row in rows:
                            copy.write_row(row)
                if counts:
                    cur.execute(_SHOWN_UPSERT_PG, ([d for (d, _a), _n in counts], [a for (_d, a), _n in counts],
                                                   [n for _k, n in counts]))
            else:
                for kind, rows in by_kind.items():
                    cur.executemany(_INSERTS[kind], rows)
                if counts:
                    cur.executemany(_SHOWN_UPSERT, [(d, a, n) for (d, a), n in counts])
            self.conn.commit()
        except BaseException:
            try:
                self.conn.rollback()
            except Exception:  # noqa: BLE001 - the connection may be gone; the error below says why
                pass
            raise

    def purge(self, days: float, now: float | None = None) -> None:
        """Delete rows older than ``days`` days."""
        cutoff = (now if now is not None else time.time()) - days * 86400
        self._begin()
        try:
            cur = self.conn.cursor()
            for statement in _PURGES:
                cur.execute(self._sql(statement), (day_of(cutoff) if "day <" in statement else cutoff,))
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise

    def query(self, statement: str, params: Iterable = ()) -> list[tuple]:
        """Rows of a read-only ``statement`` written with ``?`` placeholders."""
        cur = self.conn.cursor()
        cur.execute(self._sql(statement), tuple(params))
        rows = cur.fetchall()
        if self.postgres:
            self.conn.rollback()  # end the read transaction psycopg opened
        return rows

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass


def store_target(config) -> str:
    """Where analytics go: ``KB_ANALYTICS_URL`` (PostgreSQL), ``KB_ANALYTICS_DB``, else a SQLite
    file beside the index (``<index>.analytics.sqlite``; inside it a build's sweep could remove it)."""
    url = str(config.get("KB_ANALYTICS_URL") or "")
    if url:
        return url
    db = str(config.get("KB_ANALYTICS_DB") or "")
    if db:
        return db
    index = Path(str(config.get("KB_INDEX") or "index")).absolute()
    return str(index.with_name(index.name + ".analytics.sqlite"))


# -- recording ----------------------------------------------------------------------------------


class Recorder:
    """A bounded buffer of events and the thread that writes them to a :class:`Store` in batches.

    ``record_*`` never block on the store and never raise: when the buffer is full, or a batch
    cannot be written, the events are dropped and :attr:`dropped` counts them (logged as a warning
    at most every ``warn_every`` seconds, and at exit).
    """

    def __init__(self, open_store: Callable[[], Store], *, days: float = 90, max_pending: int = MAX_PENDING,
                 batch: int = BATCH, flush_seconds: float = FLUSH_SECONDS, warn_every: float = 10.0,
                 idle_seconds: float = 30.0, log: logging.Logger | None = None):
        self._open_store = open_store
        self.days = days
        self.max_pending = max_pending
        self.batch = batch
        self.flush_seconds = flush_seconds
        self.warn_every = warn_every
        self.idle_seconds = idle_seconds
        self.log = log or logger
        self.written = 0
        self.dropped = 0
        self._reported_dropped = 0
        self._last_warning = 0.0
        self._pending: list[tuple[str, tuple]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._busy = 0  # events taken by the writer and not yet written or dropped
        self._thread: threading.Thread | None = None
        self._closed = False
        self._store: Store | None = None
        self._purged_at = 0.0

    # -- the request side --

    def record_search(self, *, query: str, filters: dict, page: int, total: int, took_ms: float,
                      source: str, shown: Sequence[str] = (), now: float | None = None) -> None:
        """Record one search (``shown``: the ids of the results on its page)."""
        ts = time.time() if now is None else now
        day = day_of(ts)
        q = clean_text(query, MAX_QUERY)
        flat = {k: [clean_text(v, 200) for v in vs][:MAX_FILTERS] for k, vs in filters.items() if vs}
        self._add(("search", (ts, day, q, normalise(q), json.dumps(flat, sort_keys=True), int(page), int(total),
                              int(total == 0), float(took_ms), source if source in SOURCES else "api")),
                  ("shown", (day, tuple(shown[:MAX_SHOWN]))) if shown else None)

    def record_open(self, *, query: str, article: str, position: int, now: float | None = None) -> None:
        """Record a result opened from a results page."""
        ts = time.time() if now is None else now
        q = clean_text(query, MAX_QUERY)
        self._add(("open", (ts, day_of(ts), q, normalise(q), article, int(position))))

    def record_feedback(self, *, article: str, helpful: bool, comment: str = "", query: str = "",
                        now: float | None = None) -> None:
        """Record a "Was this helpful?" answer (the comment is cleaned and capped)."""
        ts = time.time() if now is None else now
        self._add(("feedback", (ts, day_of(ts), article, int(bool(helpful)), clean_text(comment, MAX_COMMENT),
                                clean_text(query, MAX_QUERY))))

    def _add(self, *events) -> None:
        events = [e for e in events if e is not None]
        with self._lock:
            if self._closed or len(self._pending) + len(events) > self.max_pending:
                self.dropped += sum(1 for kind, _ in events if kind != "shown")
                return
            self._pending.extend(events)
            if self._thread is None and not self._closed:
                self._start()
            if len(self._pending) >= self.batch:
                self._wake.set()

    # -- the writer side --

    def _start(self) -> None:
        # started on first use: after gunicorn's fork, in the worker that records
        self._thread = threading.Thread(target=self._run, name="kb-analytics", daemon=True)
        self._thread.start()
        _live.add(self)

    def _run(self) -> None:
        idle_since = time.monotonic()
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            with self._lock:
                events, self._pending = self._pending, []
                self._busy = len(events)
                closing = self._closed
                if not events and not closing and time.monotonic() - idle_since > self.idle_seconds:
                    # an idle process (or a test's app) keeps no thread; the next event starts one
                    self._thread = None
                    store, self._store = self._store, None
                    break
            if events:
                idle_since = time.monotonic()
            for start in range(0, len(events), self.batch):
                self._write(events[start:start + self.batch])
            with self._lock:
                self._busy = 0
                self._idle.notify_all()
            self._warn_dropped()
            if closing:
                store, self._store = self._store, None
                break
        if store is not None:
            store.close()

    def _write(self, events: list[tuple[str, tuple]]) -> None:
        count = sum(1 for kind, _ in events if kind != "shown")
        try:
            if self._store is None:
                self._store = self._open_store()
            now = time.time()
            if self.days and now - self._purged_at > 3600:
                self._purged_at = now
                self._store.purge(self.days, now)
            self._store.write(events)
            self.written += count
        except Exception as exc:  # noqa: BLE001 - recording must never take the app down
            if self._store is not None:
                self._store.close()
                self._store = None  # reconnect on the next batch
            with self._lock:
                self.dropped += count
            self._warn_dropped(exc, force=self._reported_dropped == 0)

    def _warn_dropped(self, exc: Exception | None = None, force: bool = False) -> None:
        new = self.dropped - self._reported_dropped
        if new <= 0 or not (force or time.monotonic() - self._last_warning >= self.warn_every):
            return
        self._last_warning = time.monotonic()
        self._reported_dropped = self.dropped
        why = f": {exc}" if exc is not None else ""
        self.log.warning("kb analytics: dropped %d events (%d in all; %d written)%s",
                         new, self.dropped, self.written, why)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything recorded so far was written or dropped; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._thread is None:
                return True
            self._wake.set()
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.05))
                self._wake.set()
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is pending, stop the writer and say how many events were dropped."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._wake.set()
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            lost, self._pending = len([e for e in self._pending if e[0] != "shown"]), []
            self.dropped += lost
        if self.dropped:
            self.log.warning("kb analytics: %d events dropped in all (%d written)", self.dropped, self.written)


#: Recorders with a running writer, flushed when the process exits (a gunicorn worker stopping).
_live: weakref.WeakSet[Recorder] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for recorder in list(_live):
        recorder.close(timeout=5.0)


def enabled(config) -> bool:
    """Whether the settings record insights (``KB_ANALYTICS``, on unless 0)."""
    return bool(int(config.get("KB_ANALYTICS", 1)))


def recorder_for(config, log: logging.Logger | None = None) -> Recorder | None:
    """The recorder the settings ask for, or None when ``KB_ANALYTICS`` is 0."""
    if not enabled(config):
        return None
    target = store_target(config)
    return Recorder(lambda: Store(target), days=float(config.get("KB_ANALYTICS_DAYS", 90)), log=log)


def note_search(recorder: Recorder | None, params, data: dict, source: str) -> None:
    """Record a search answered for ``params`` (a :class:`kb.api.SearchParams`); the bare search
    page (no query, no filter) is a visit, not a search."""
    if recorder is None or not (params.q or params.services or params.tags):
        return
    shown = []
    for r in data.get("results", []):
        shown.append(r["id"])
        shown += [c["id"] for c in r.get("copies", ()) if isinstance(c, dict) and "id" in c]
    recorder.record_search(query=params.q, filters={"service": list(params.services), "tag": list(params.tags)},
                           page=params.page, total=int(data.get("total", 0)), took_ms=float(data.get("took_ms", 0.0)),
                           source=source, shown=shown)
