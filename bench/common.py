"""Shared pieces of the benchmarks: the corpus, the query mix, statistics, child processes, memory.

Everything here uses only the standard library (plus NumPy, a kb dependency, for percentiles).
The naive Whoosh baseline that every benchmark measures beside kb lives in :mod:`bench.naive`.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KB_SHARED", ROOT.parent / "shared"))
CORPUS_TAR = SHARED / "corpus" / "selfhelp-articles.tar.gz"
DEV_QUERIES = SHARED / "eval" / "dev-queries.json"
RESULTS_DIR = ROOT / "bench" / "results"  # git-ignored
PYTHON = sys.executable

# --------------------------------------------------------------------------------------------
# The fixed query mix: what agents type, one to eight words, across Azure services.  Written for
# the benchmark (the dev queries are loaded from ../shared at run time and never copied here).
# A few carry a service or tag filter, as the search page sends them after a facet click.
# --------------------------------------------------------------------------------------------

QUERY_MIX: list[dict] = [
    # one word
    {"q": "storage"},
    {"q": "rdp"},
    {"q": "timeout"},
    {"q": "quota"},
    {"q": "certificate"},
    {"q": "throttling"},
    {"q": "backup", "service": "microsoft.recoveryservices"},
    {"q": "kubernetes"},
    # two words
    {"q": "vm unreachable"},
    {"q": "disk full"},
    {"q": "ssl expired"},
    {"q": "dns resolution"},
    {"q": "slow queries"},
    {"q": "deployment failed"},
    {"q": "login loop"},
    {"q": "cosmos 429"},
    {"q": "ssh refused", "tag": "linux"},
    {"q": "billing overcharge"},
    # three words
    {"q": "function app cold"},
    {"q": "blob upload fails"},
    {"q": "vpn tunnel down"},
    {"q": "aks node notready"},
    {"q": "sql connection timeout"},
    {"q": "key vault forbidden"},
    {"q": "app gateway 502"},
    {"q": "redis cache latency"},
    {"q": "vm resize failed", "service": "microsoft.compute"},
    {"q": "password reset blocked"},
    # four words
    {"q": "cannot start stopped vm"},
    {"q": "webapp returns 503 error"},
    {"q": "storage account access denied"},
    {"q": "event grid delivery failing"},
    {"q": "logic app trigger skipped"},
    {"q": "front door routing wrong"},
    {"q": "cluster autoscaler not scaling", "service": "microsoft.containerservice"},
    {"q": "container registry pull unauthorized"},
    {"q": "nsg rule blocks traffic"},
    # five words
    {"q": "windows update stuck on vm"},
    {"q": "cant connect to sql managed instance"},
    {"q": "service bus messages going deadletter"},
    {"q": "high memory usage app service plan"},
    {"q": "expressroute circuit not provisioned bgp down"},
    {"q": "postgres flexible server high cpu", "service": "microsoft.dbforpostgresql"},
    {"q": "linux vm kernel panic boot", "tag": "linux"},
    # six words
    {"q": "data factory copy activity failing timeout"},
    {"q": "cosmos db request rate too large"},
    {"q": "azure files mount fails on windows"},
    {"q": "conditional access policy blocking user signin"},
    {"q": "load balancer health probe marks backend down"},
    {"q": "synapse spark pool session fails start"},
    # seven words
    {"q": "vm agent not ready after windows update"},
    {"q": "web app custom domain ssl binding failed"},
    {"q": "cannot delete resource group locked by policy"},
    {"q": "stream analytics job stopped with input errors"},
    {"q": "virtual network gateway point to site cert error"},
    # eight words
    {"q": "my vm is running but i cant ssh"},
    {"q": "storage firewall blocks function app reading blobs"},
    {"q": "sql database dtu maxed out queries timing out"},
    {"q": "backup failed snapshot extension timed out on vm"},
    {"q": "aks pods pending insufficient cpu on node pool"},
    {"q": "error 0x80070005 access denied when installing extension"},
    {"q": "AADSTS50105 user not assigned to application role"},
]


@dataclass(frozen=True)
class Query:
    """One benchmark query, as the API takes it."""

    q: str
    services: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    source: str = "mix"  # "dev" (../shared/eval/dev-queries.json) or "mix" (QUERY_MIX above)

    def params(self, per_page: int = 10) -> list[tuple[str, str]]:
        pairs = [("q", self.q)]
        pairs += [("service", s) for s in self.services]
        pairs += [("tag", t) for t in self.tags]
        pairs.append(("per_page", str(per_page)))
        return pairs


def load_queries(dev: bool = True, mix: bool = True) -> list[Query]:
    """The dev queries (with their service filters) followed by the fixed mix."""
    out: list[Query] = []
    if dev:
        if not DEV_QUERIES.exists():
            raise SystemExit(f"dev queries not found at {DEV_QUERIES} (set KB_SHARED to the shared folder)")
        for item in json.loads(DEV_QUERIES.read_text()):
            services = (item["service"].lower(),) if item.get("service") else ()
            out.append(Query(item["q"], services, (), "dev"))
    if mix:
        for item in QUERY_MIX:
            out.append(Query(item["q"], tuple(filter(None, [item.get("service")])),
                             tuple(filter(None, [item.get("tag")])), "mix"))
    return out


# -- corpus -------------------------------------------------------------------------------------


def corpus_dir(given: str | None, workdir: Path) -> Path:
    """The corpus's ``selfhelp/`` folder: ``given`` if set, else the tarball extracted into ``workdir``."""
    if given:
        path = Path(given).resolve()
        if not (path / "articles").is_dir():
            raise SystemExit(f"--corpus {path} has no articles/ folder (expected the extracted selfhelp/ folder)")
        return path
    if not CORPUS_TAR.exists():
        raise SystemExit(f"corpus tarball not found at {CORPUS_TAR} (set KB_SHARED or pass --corpus)")
    dest = workdir / "corpus"
    dest.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tarfile.open(CORPUS_TAR) as tar:
        tar.extractall(dest, filter="data")
    log(f"extracted {CORPUS_TAR.name} in {time.perf_counter() - started:.1f} s -> {dest / 'selfhelp'}")
    return dest / "selfhelp"


@contextlib.contextmanager
def workspace(given: str | None = None, keep: bool = False):
    """A scratch directory for indexes and corpus copies, removed afterwards unless ``keep``."""
    if given:
        path = Path(given).resolve()
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="kb-bench-"))
    try:
        yield path
    finally:
        if keep:
            log(f"kept scratch directory {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def add_common_args(parser) -> None:
    parser.add_argument("--corpus", help="extracted selfhelp/ folder to use (default: extract the tarball "
                        "from ../shared/corpus into the scratch directory)")
    parser.add_argument("--workdir", help="scratch directory (default: a temporary one, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary scratch directory")
    parser.add_argument("--json", dest="json_out", help="also write the results as JSON to this file "
                        "(they are always saved under bench/results/)")


# -- statistics ---------------------------------------------------------------------------------


def percentiles(values_ms) -> dict:
    """p50/p95/p99/mean/max of a list of milliseconds (linear interpolation)."""
    a = np.asarray(list(values_ms), dtype=float)
    if not a.size:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {"n": int(a.size), "p50": float(p50), "p95": float(p95), "p99": float(p99),
            "mean": float(a.mean()), "max": float(a.max())}


def median_of(dicts: list[dict], keys=("p50", "p95", "p99", "mean", "max")) -> dict:
    """Per key, the median over repeated runs (the machine is shared: one run is not a figure)."""
    out = {k: float(np.median([d[k] for d in dicts if d.get(k) is not None])) for k in keys
           if any(d.get(k) is not None for d in dicts)}
    out["runs"] = len(dicts)
    if dicts and "n" in dicts[0]:
        out["n"] = dicts[0]["n"]
    return out


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


# -- processes and memory -----------------------------------------------------------------------


def _read_kb(path: str, key: str) -> int | None:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_kb(pid: int) -> int | None:
    """Resident set size of ``pid`` (VmRSS, KiB)."""
    return _read_kb(f"/proc/{pid}/status", "VmRSS:")


def pss_kb(pid: int) -> int | None:
    """Proportional set size of ``pid`` (KiB): pages shared with other processes count in part."""
    return _read_kb(f"/proc/{pid}/smaps_rollup", "Pss:")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/<pid>/task/*/children)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out.extend(int(x) for x in fh.read().split())
        except OSError:
            continue
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out


@dataclass
class ChildResult:
    argv: list[str]
    rc: int | None
    wall_s: float
    #: peak RSS of the largest single process of the child's tree (getrusage via wait4), MiB
    max_rss_mb: float | None
    #: peak of the summed RSS of the whole process tree, sampled every 50 ms, MiB
    peak_tree_rss_mb: float | None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False

    def json(self) -> dict:
        """The last line of stdout that parses as JSON (the child's report)."""
        for line in reversed(self.stdout.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    continue
        raise RuntimeError(f"no JSON report from {' '.join(self.argv)[:200]} (rc={self.rc}):\n"
                           f"{self.stdout[-2000:]}\n{self.stderr[-4000:]}")


def run_child(argv: list[str], timeout: float, cwd: Path = ROOT, env: dict | None = None) -> ChildResult:
    """Run ``argv`` to completion (killed after ``timeout`` s), measuring wall time and peak memory."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True)
        peak_tree = 0
        rc = None
        usage = None
        timed_out = False
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid == proc.pid:
                    rc = os.waitstatus_to_exitcode(status)
                    proc.returncode = rc
                    break
                total = sum(rss_kb(p) or 0 for p in tree(proc.pid))
                peak_tree = max(peak_tree, total)
                if time.perf_counter() - started > timeout:
                    timed_out = True
                    kill_group(proc)
                    break
                time.sleep(0.05)
        except BaseException:
            kill_group(proc)
            raise
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return ChildResult(
            argv=argv, rc=rc, wall_s=wall,
            max_rss_mb=(usage.ru_maxrss / 1024) if usage is not None and rc is not None else None,
            peak_tree_rss_mb=peak_tree / 1024 if peak_tree else None,
            stdout=out.read(), stderr=err.read(), timed_out=timed_out,
        )


def kill_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a child started with ``start_new_session=True`` and everything in its session.

    SIGTERM to its process group, then SIGKILL after ``grace`` seconds.  Only ever called on
    processes this benchmark started (their group id is their own pid).
    """
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- reporting ----------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def kb_digest() -> str:
    """A digest of kb's source: if it differs between the start and the end of a run, kb was being
    edited meanwhile and the figures mix versions."""
    import hashlib

    h = hashlib.sha1()
    for f in sorted((ROOT / "kb").rglob("*")):
        if f.is_file() and f.suffix in (".py", ".txt"):
            h.update(f.relative_to(ROOT).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def drift_warning(start: dict) -> str | None:
    """A warning when kb's source changed since ``start`` (a :func:`machine` dict) was taken."""
    now = kb_digest()
    if now != start.get("kb_digest"):
        return (f"WARNING: kb's source changed during this run (digest {start.get('kb_digest')} -> {now}); "
                "the figures mix kb versions, run again on a quiet tree")
    return None


def index_format_problem(index_dir: str | os.PathLike) -> str | None:
    """Why the kb index at ``index_dir`` cannot stand for the current kb code, or None when it can.

    kb opens an index written by an older format without complaint (or fails on its pickled
    schema), so a benchmark of a stale index would measure the wrong thing.
    """
    from kb.generations import FORMAT, current_generation, read_manifest

    gen = current_generation(index_dir)
    if gen is None:
        return f"{index_dir} holds no kb index (no CURRENT generation with a manifest)"
    fmt = read_manifest(gen).get("format")
    if fmt != FORMAT:
        return (f"the index in {index_dir} was built with kb index format {fmt}, but this kb writes format "
                f"{FORMAT}; rebuild it (kb index --full) or leave out --index to let the benchmark build one")
    return None


def machine() -> dict:
    """What the figures were measured on: they mean nothing without it."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "kb"], cwd=ROOT,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        rev, dirty = "", False
    import whoosh

    return {
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "whoosh": whoosh.versionstring(),
        "git": rev + ("+dirty kb/" if dirty else ""),
        "kb_digest": kb_digest(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def save(name: str, data: dict, extra_path: str | None = None) -> Path:
    """Write ``data`` to bench/results/<time>-<name>.json (and ``extra_path`` if given)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{time.strftime('%Y%m%dT%H%M%S')}-{name}.json"
    text = json.dumps(data, indent=2, default=_jsonable)
    path.write_text(text)
    if extra_path:
        Path(extra_path).write_text(text)
    return path


def _jsonable(o):
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "__dataclass_fields__"):
        return asdict(o)
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    raise TypeError(type(o).__name__)


def fmt_ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.1f} ms" if x < 100 else f"{x:.0f} ms"


def fmt_s(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f} s"


def fmt_mb(x: float | None) -> str:
    return "–" if x is None else f"{x:.0f} MiB"


def verdict(value: float | None, limit: float, higher_is_better: bool = False) -> str:
    if value is None:
        return "n/a"
    ok = value >= limit if higher_is_better else value <= limit
    return "PASS" if ok else "FAIL"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def command_line() -> str:
    """The command that produced these figures, for pasting beside them."""
    script = Path(sys.argv[0])
    try:
        shown = script.resolve().relative_to(ROOT)
    except ValueError:
        shown = script
    exe = PYTHON
    if str(shown).endswith("__main__.py"):
        return " ".join([exe, "-m", "bench", *sys.argv[1:]])
    return " ".join([exe, str(shown), *sys.argv[1:]])


@dataclass
class Timer:
    """``with Timer() as t: ...``; then ``t.s`` / ``t.ms``."""

    s: float = 0.0
    _t0: float = field(default=0.0, repr=False)

    def __enter__(self):
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.s = time.perf_counter() - self._t0

    @property
    def ms(self) -> float:
        return self.s * 1000


def add_index_args(parser) -> None:
    """The options naming the indexes a run measures (see :func:`indexes_for`)."""
    parser.add_argument("--index", help="kb index directory (default: build one from the corpus)")
    parser.add_argument("--naive-index", help="naive Whoosh index directory (default: build one from the corpus)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    parser.add_argument("--allow-stale-index", action="store_true",
                   help="measure --index even if it was built with another kb index format")


def indexes_for(args, work: Path) -> tuple[str, str | None]:
    """The kb and naive-Whoosh index directories a run measures (absolute paths), building any
    that ``--index`` / ``--naive-index`` did not name; refuses a stale ``--index``."""
    if args.index and not args.allow_stale_index:
        problem = index_format_problem(args.index)
        if problem:
            raise SystemExit(problem)
    # absolute paths: the measuring children run in the repository root
    kb_index = args.index and str(Path(args.index).resolve())
    naive_index = None if args.no_naive or not args.naive_index else str(Path(args.naive_index).resolve())
    if not kb_index or (not args.no_naive and not naive_index):
        from bench.build import kb_build, naive_build

        corpus = corpus_dir(args.corpus, work)
        if not kb_index:
            kb_index = str(work / "kb-index")
            log(f"building a kb index of {corpus} -> {kb_index}")
            kb_build(corpus, Path(kb_index), True, args.timeout)
        if not args.no_naive and not naive_index:
            naive_index = str(work / "naive-index")
            log(f"building a naive Whoosh index of {corpus} -> {naive_index}")
            naive_build(corpus, Path(naive_index), args.timeout)
    return str(Path(kb_index).resolve()), naive_index and str(Path(naive_index).resolve())


def report(name: str, result: dict, json_out: str | None, rows: list, notes: tuple[str, ...] = ()) -> int:
    """Save a run's results and print its table, notes, warnings and machine."""
    path = save(name, result, json_out)
    print(f"\n{result['command']}\n")
    print(table(["metric", "target", "kb", "naive Whoosh", ""], rows))
    for note in notes:
        print(note)
    for w in result.get("warnings", []):
        print(f"\n{w}")
    print(f"\nmachine: {json.dumps(result['machine'])}\nfull results: {path}")
    return 0
