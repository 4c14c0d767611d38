"""Articles from git: keep a clone of the articles repository and index each commit it pulls.

``kb sync`` runs cycles: fetch the branch into a local clone (the git CLI, with timeouts and
never a password prompt), hard-reset the work tree to it, and when the checked-out commit is not
the one the served generation was built from, run the same incremental build as ``kb index``
with the commit recorded in the generation's manifest.  A failed fetch or build changes nothing
that is served (builds are atomic, :mod:`kb.generations`); each cycle writes one log line and
the status file beside the index (:func:`status_path`), which ``/healthz`` reports.

The clone lives beside the index (``<index>.articles``), never inside it: sweeps of an index
directory delete what they do not know.
"""

from __future__ import annotations

import calendar
import fcntl
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .generations import current_generation, load_manifest

#: Seconds a git command may take before the cycle gives up (a hung server, a dead network).
GIT_TIMEOUT = 300.0
#: How the ``--every`` option is written: ``30s``, ``5m``, ``1h`` or plain seconds.
_INTERVAL_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smh]?)\s*")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}

Log = Callable[[str], None]


class SyncError(Exception):
    """A cycle could not fetch the articles or index them; the served generation is unchanged."""


def parse_interval(text: str) -> float:
    """Seconds of an interval written ``30s``, ``5m``, ``1h`` or ``30`` (ValueError otherwise)."""
    match = _INTERVAL_RE.fullmatch(text or "")
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not an interval (30s, 5m, 1h or seconds)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def sibling(index_dir: str | os.PathLike, suffix: str) -> Path:
    """``<index><suffix>``: a path beside the index directory, never inside it."""
    index = Path(index_dir).resolve()
    return index.with_name(index.name + suffix)


def status_path(index_dir: str | os.PathLike) -> Path:
    """The sync status file of an index: ``<index>.sync.json``."""
    return sibling(index_dir, ".sync.json")


def read_status(index_dir: str | os.PathLike) -> dict | None:
    """The last status ``kb sync`` wrote for this index, or None (no sync, or an unreadable file)."""
    try:
        status = json.loads(status_path(index_dir).read_bytes())
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def with_liveness(status: dict | None) -> dict | None:
    """``status`` with ``running`` (its ``kb sync`` process is alive on this machine) and ``stale``
    (its last cycle began more than three intervals and a minute ago: a monitor should look)."""
    if status is None:
        return None
    pid = status.get("pid")
    running = False
    if isinstance(pid, int) and pid > 0:
        try:
            os.kill(pid, 0)
            running = True
        except PermissionError:  # alive, owned by another user
            running = True
        except OSError:
            running = False
    try:
        began = calendar.timegm(time.strptime(status["last_attempt"], "%Y-%m-%dT%H:%M:%SZ"))
        every = float(status.get("every_seconds") or 0)
        stale = time.time() - began > 3 * every + 60
    except (KeyError, TypeError, ValueError, OverflowError):
        stale = True
    return {**status, "running": running, "stale": stale}


def redact(url: str) -> str:
    """``url`` without a password or token (``https://user:token@host/`` -> ``https://host/``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _git(args: list[str], cwd: Path | None = None, timeout: float = GIT_TIMEOUT) -> str:
    """Run git; its stdout, or :class:`SyncError` with the last line of what it said."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "SSH_ASKPASS": "true",
           "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")}
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SyncError(f"git {args[0]} took longer than {timeout:g} s") from None
    except FileNotFoundError:
        raise SyncError("git is not installed (kb sync runs the git command)") from None
    if done.returncode != 0:
        said = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise SyncError(f"git {args[0]} failed: {said[-1].strip() if said else f'exit {done.returncode}'}")
    return done.stdout


@dataclass
class Syncer:
    """One articles repository synced into one index."""

    url: str
    index_dir: Path
    branch: str = "main"
    clone_dir: Path | None = None
    subdir: str = ""
    allow_empty: bool = False
    every: float = 30.0
    log: Log = print

    def __post_init__(self) -> None:
        self.index_dir = Path(self.index_dir).resolve()
        self.clone_dir = Path(self.clone_dir).resolve() if self.clone_dir else sibling(self.index_dir, ".articles")
        if self.clone_dir == self.index_dir or self.index_dir in self.clone_dir.parents:
            raise ValueError(f"the clone {self.clone_dir} must not be inside the index directory "
                             f"{self.index_dir} (its sweeps delete what they do not know)")
        self.status: dict = read_status(self.index_dir) or {}

    def lock(self) -> None:
        """Hold the clone for this process's lifetime: a second ``kb sync`` on the same clone
        would reset it under the first one's build.  :class:`SyncError` when another holds it."""
        path = self.clone_dir.with_name(self.clone_dir.name + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # kept open: the lock lasts as long as the process
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise SyncError(f"another kb sync (pid {holder}) is using the clone {self.clone_dir}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_handle = handle

    @property
    def articles_dir(self) -> Path:
        return self.clone_dir / self.subdir if self.subdir else self.clone_dir

    def update_clone(self) -> dict:
        """Fetch the branch and make the work tree exactly its commit; ``{"sha", "time"}``."""
        clone = self.clone_dir
        if not (clone / ".git").is_dir():
            if clone.is_dir() and any(clone.iterdir()):
                # the reset and clean below would delete whatever is there
                raise SyncError(f"{clone} is not a git clone and not empty; kb sync leaves it alone "
                                f"(give --clone a new or empty directory)")
            clone.mkdir(parents=True, exist_ok=True)
            _git(["init", "-q", str(clone)])
        remotes = _git(["remote"], cwd=clone).split()
        _git(["remote", "set-url" if "origin" in remotes else "add", "origin", self.url], cwd=clone)
        ref = f"refs/remotes/origin/{self.branch}"
        _git(["fetch", "-q", "--no-tags", "--depth=1", "origin", f"+refs/heads/{self.branch}:{ref}"], cwd=clone)
        # a hard reset and a clean: what the branch holds, nothing left over from an older commit
        _git(["reset", "-q", "--hard", ref], cwd=clone)
        _git(["clean", "-q", "-ffdx"], cwd=clone)
        sha, when = _git(["log", "-1", "--format=%H %cI", ref], cwd=clone).split()
        return {"sha": sha, "time": when}

    def served_commit(self) -> str | None:
        """The commit sha the served generation was built from (None: no complete generation, or
        one not built by ``kb sync``)."""
        gen = current_generation(self.index_dir)
        manifest = load_manifest(gen) if gen is not None else None
        commit = (manifest or {}).get("commit")
        return commit.get("sha") if isinstance(commit, dict) else None

    def cycle(self) -> bool:
        """One fetch (and build when the commit changed); True when the index reflects the branch."""
        from .generations import BuildLocked
        from .index import EmptySource, build

        started = time.monotonic()
        self.status.update(url=redact(self.url), branch=self.branch, clone=str(self.clone_dir),
                           every_seconds=self.every, pid=os.getpid(), last_attempt=_now())
        try:
            commit = self.update_clone()
            self.status["commit"] = commit
            if not self.articles_dir.is_dir():
                raise SyncError(f"{self.subdir!r} is not a directory of commit {commit['sha'][:12]}")
            if self.served_commit() == commit["sha"]:
                what = "up to date"
            else:
                report = build(self.articles_dir, self.index_dir, allow_empty=self.allow_empty, commit_info=commit)
                what = (f"{report.mode} build {report.generation}: {report.indexed} articles "
                        f"(added {report.added}, changed {report.changed}, deleted {report.deleted})")
        except (SyncError, BuildLocked, EmptySource) as exc:
            return self._failed(str(exc), started)
        except Exception as exc:  # noqa: BLE001 - a full disk, a dead parser: the build left nothing
            # served behind it, and a daemon that exits on one bad cycle would never try again
            return self._failed(f"the build failed: {exc!r}" if not isinstance(exc, OSError)
                                else f"the build failed: {exc}", started)
        self.status.update(ok=True, error=None, last_success=self.status["last_attempt"], served=commit["sha"])
        self._write_status()
        self.log(f"kb sync: {commit['sha'][:12]} ({commit['time']}) {what} in {time.monotonic() - started:.1f} s")
        return True

    def _failed(self, message: str, started: float) -> bool:
        message = message.replace(self.url, redact(self.url))  # git may quote the URL, token and all
        self.status.update(ok=False, error=message,
                           last_error={"at": self.status["last_attempt"], "message": message},
                           served=self.served_commit())
        self._write_status()
        self.log(f"kb sync: failed after {time.monotonic() - started:.1f} s, still serving "
                 f"{self.served_commit() or 'no commit'}: {message}")
        return False

    def _write_status(self) -> None:
        """Replace the status file atomically (readers see the old or the new one, whole)."""
        path = status_path(self.index_dir)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(self.status, indent=1) + "\n")
            os.replace(tmp, path)
        except OSError as exc:
            self.log(f"kb sync: could not write {path}: {exc}")

    def run(self, stop: threading.Event) -> None:
        """Cycle every :attr:`every` seconds until ``stop`` is set (checked between cycles)."""
        while not stop.is_set():
            begun = time.monotonic()
            self.cycle()
            stop.wait(max(0.0, self.every - (time.monotonic() - begun)))


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the loop ends after the cycle under way (a build
    interrupted by a harder kill leaves nothing served damaged either)."""
    stop = threading.Event()

    def handler(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
