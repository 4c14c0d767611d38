"""Index build benchmark: full build (wall time, peak RSS) and incremental updates, kb vs naive Whoosh.

Every build runs in a child process, so its peak memory is its own and nothing is cached from an
earlier run.  Steps:

1. copy the corpus into the scratch directory (the incremental steps modify the copy);
2. full build of kb, ``--runs`` times (``kb.index.build(..., full=True)``), then the naive
   baseline as many times; the medians are reported; kb's parse stage is also timed alone once
   (``kb.articles.load_all``), to split its build time into parsing and indexing;
3. incremental (``kb.index.build(..., full=False)``) on a copy of kb's last full index: nothing
   changed; 1 article changed (a sentence with a unique word appended); then 100 other articles;
   each changed article must then be found by its unique word;
4. the naive baseline's update of the same files (``update_document`` of the known paths; it has
   no change detection, so it is a lower bound on what Whoosh must do).

Usage::

    python bench/build.py [--runs 3] [--corpus /tmp/corpus/selfhelp]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # run as a script: import from the repository root, and never from bench/ itself (bench/http.py
    # would shadow the standard library's http package)
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != Path(_here)]
    sys.path.insert(0, str(Path(_here).parent))

import argparse
import json
import random
import shutil
import string

from bench.common import (  # noqa: E402
    PYTHON, add_common_args, command_line, corpus_dir, drift_warning, fmt_mb, fmt_s, log, machine, median,
    report, run_child, verdict, workspace,
)

TARGET_FULL_S = 12.0
TARGET_INCREMENTAL_1_S = 1.0

# Runs in a child: one kb build, timed inside (import, build) and reported as JSON.
KB_BUILD = r"""
import json, sys, time
t0 = time.perf_counter()
from kb.generations import FORMAT
from kb.index import build
t1 = time.perf_counter()
r = build(sys.argv[1], sys.argv[2], full=sys.argv[3] == "full")
t2 = time.perf_counter()
out = {"import_s": t1 - t0, "build_s": t2 - t1, "format": FORMAT, "mode": r.mode, "files": r.files, "indexed": r.indexed,
       "added": r.added, "changed": r.changed, "deleted": r.deleted, "unchanged": r.unchanged,
       "skipped": len(r.skipped)}
# optional: after an incremental build, each changed article must be found by its unique word
if len(sys.argv) > 4:
    from kb.search import SearchEngine
    expect = json.loads(open(sys.argv[4]).read())
    t3 = time.perf_counter()
    e = SearchEngine(sys.argv[2])
    e.generation()
    out["reopen_s"] = time.perf_counter() - t3
    found = top = 0
    for path, word in expect.items():
        res = e.search(word, per_page=10)
        paths = [x["path"] for x in res["results"]]
        found += path in paths
        top += bool(paths) and paths[0] == path
    out["verify"] = {"checked": len(expect), "found": found, "first": top}
print(json.dumps(out))
"""

# Runs in a child: kb's parse stage alone (discover + parse every file, as build() does it).
KB_PARSE = r"""
import json, sys, time
from kb.articles import discover, load_all
t0 = time.perf_counter()
paths = discover(sys.argv[1])
t1 = time.perf_counter()
n = sum(1 for _ in load_all(sys.argv[1], paths))
t2 = time.perf_counter()
print(json.dumps({"discover_s": t1 - t0, "parse_s": t2 - t1, "files": n}))
"""

NAIVE_VERIFY = r"""
import json, sys
from bench.naive import NaiveSearch
s = NaiveSearch(sys.argv[1])
expect = json.loads(open(sys.argv[2]).read())
found = sum(path in [x["path"] for x in s.search(word)["results"]] for path, word in expect.items())
print(json.dumps({"checked": len(expect), "found": found}))
"""


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def kb_build(corpus: Path, index_dir: Path, full: bool, timeout: float, verify: Path | None = None) -> dict:
    argv = [PYTHON, "-c", KB_BUILD, str(corpus), str(index_dir), "full" if full else "incremental"]
    if verify is not None:
        argv.append(str(verify))
    res = run_child(argv, timeout)
    if res.rc != 0:
        raise RuntimeError(f"kb build failed (rc={res.rc}, timed out={res.timed_out}):\n{res.stderr[-3000:]}")
    out = res.json()
    out.update(process_s=res.wall_s, max_rss_mb=res.max_rss_mb, peak_tree_rss_mb=res.peak_tree_rss_mb)
    return out


def naive_build(corpus: Path, index_dir: Path, timeout: float) -> dict:
    res = run_child([PYTHON, "-m", "bench.naive", "build", str(corpus), str(index_dir)], timeout)
    if res.rc != 0:
        raise RuntimeError(f"naive build failed (rc={res.rc}):\n{res.stderr[-3000:]}")
    out = res.json()
    out.update(process_s=res.wall_s, max_rss_mb=res.max_rss_mb, peak_tree_rss_mb=res.peak_tree_rss_mb)
    return out


def naive_update(corpus: Path, index_dir: Path, paths: list[str], timeout: float, verify: Path) -> dict:
    res = run_child([PYTHON, "-m", "bench.naive", "update", str(corpus), str(index_dir), *paths], timeout)
    if res.rc != 0:
        raise RuntimeError(f"naive update failed (rc={res.rc}):\n{res.stderr[-3000:]}")
    out = res.json()
    out.update(process_s=res.wall_s, max_rss_mb=res.max_rss_mb)
    check = run_child([PYTHON, "-c", NAIVE_VERIFY, str(index_dir), str(verify)], timeout)
    out["verify"] = check.json() if check.rc == 0 else {"error": check.stderr[-500:]}
    return out


def modify(corpus: Path, paths: list[str], rng: random.Random) -> dict[str, str]:
    """Append a sentence with a unique made-up word to each file; returns path -> word."""
    words: dict[str, str] = {}
    for rel in paths:
        word = "kbbench" + "".join(rng.choice(string.ascii_lowercase) for _ in range(8))
        with open(corpus / rel, "ab") as fh:
            fh.write(f"\n\nBenchmark note: the {word} gadget was recalibrated.\n".encode())
        words[rel] = word
    return words


def pick_articles(corpus: Path, index_dir: Path, n: int, rng: random.Random, exclude: set[str]) -> list[str]:
    """``n`` articles that the index holds (not skipped), chosen reproducibly."""
    gen = index_dir / (index_dir / "CURRENT").read_text().strip()
    sources = json.loads((gen / "sources.json").read_text())
    candidates = sorted(p for p in sources["hashes"] if p not in sources.get("skipped", {})
                        and p.startswith("articles/") and p not in exclude)
    return rng.sample(candidates, n)


def run(args, corpus: Path, work: Path) -> dict:
    runs = args.runs
    naive_runs = args.naive_runs if args.naive_runs is not None else runs
    timeout = args.timeout
    src = work / "corpus-copy"
    if src.exists():
        shutil.rmtree(src)
    log(f"copying the corpus to {src}")
    shutil.copytree(corpus, src, symlinks=True)
    result: dict = {"machine": machine(), "command": command_line(), "corpus": str(corpus), "runs": runs}

    # -- full builds ---------------------------------------------------------------------------
    def full_builds(name: str, n: int, build, describe) -> tuple[list[dict], Path | None]:
        """``n`` full builds into fresh directories; keeps only the last index (the others are
        removed as soon as the next one exists)."""
        out: list[dict] = []
        kept: Path | None = None
        for i in range(n):
            index_dir = work / f"{name}-full-{i}"
            shutil.rmtree(index_dir, ignore_errors=True)
            log(f"{'kb' if name == 'kb' else 'naive Whoosh'} full build {i + 1}/{n} -> {index_dir}")
            r = build(index_dir)
            r["index_mb"] = dir_mb(index_dir)
            log("  " + describe(r))
            out.append(r)
            if kept is not None:
                shutil.rmtree(kept, ignore_errors=True)
            kept = index_dir
        return out, kept

    kb_runs, kb_index = full_builds(
        "kb", runs, lambda d: kb_build(src, d, True, timeout),
        lambda r: (f"{r['process_s']:.1f} s process, build() {r['build_s']:.1f} s, {r['indexed']} articles, "
                   f"peak RSS {fmt_mb(r['max_rss_mb'])} (tree {fmt_mb(r['peak_tree_rss_mb'])})"))
    naive_runs_out, naive_index = full_builds(
        "naive", naive_runs, lambda d: naive_build(src, d, timeout),
        lambda r: (f"{r['process_s']:.1f} s process (parse {r['parse_s']:.1f} s + index {r['index_s']:.1f} s), "
                   f"peak RSS {fmt_mb(r['max_rss_mb'])}"))
    kb_parse = None
    if runs:
        log("kb parse stage alone (discover + parse, no indexing)")
        res = run_child([PYTHON, "-c", KB_PARSE, str(src)], timeout)
        kb_parse = res.json() if res.rc == 0 else {"error": res.stderr[-1000:]}
        log(f"  {kb_parse.get('parse_s', float('nan')):.1f} s")
    result["full"] = {
        "kb": {"runs": kb_runs,
               "median_build_s": median(r["build_s"] for r in kb_runs),
               "median_process_s": median(r["process_s"] for r in kb_runs),
               "max_peak_rss_mb": max((r["max_rss_mb"] or 0) for r in kb_runs) if kb_runs else None,
               "max_peak_tree_rss_mb": max((r["peak_tree_rss_mb"] or 0) for r in kb_runs) if kb_runs else None,
               "index_mb": kb_runs[-1]["index_mb"] if kb_runs else None,
               "parse_only": kb_parse},
        "naive": {"runs": naive_runs_out,
                  "median_total_s": median(r["total_s"] for r in naive_runs_out),
                  "median_parse_s": median(r["parse_s"] for r in naive_runs_out),
                  "median_index_s": median(r["index_s"] for r in naive_runs_out),
                  "median_process_s": median(r["process_s"] for r in naive_runs_out),
                  "max_peak_rss_mb": max((r["max_rss_mb"] or 0) for r in naive_runs_out) if naive_runs_out else None,
                  "index_mb": naive_runs_out[-1]["index_mb"] if naive_runs_out else None},
    }
    result["kb_index"] = str(kb_index) if kb_index else None
    result["naive_index"] = str(naive_index) if naive_index else None

    # -- incremental -----------------------------------------------------------------------------
    if not args.no_incremental and kb_index is not None:
        rng = random.Random(20261121)
        inc = work / "kb-incremental"
        shutil.rmtree(inc, ignore_errors=True)
        shutil.copytree(kb_index, inc)
        naive_inc = None
        if naive_index is not None:
            naive_inc = work / "naive-incremental"
            shutil.rmtree(naive_inc, ignore_errors=True)
            shutil.copytree(naive_index, naive_inc)
        steps = {}
        log("kb incremental, nothing changed")
        steps["unchanged"] = {"kb": kb_build(src, inc, False, timeout)}
        _expect_mode(result, "nothing changed", steps["unchanged"]["kb"], "unchanged")
        used: set[str] = set()
        for n in (1, 100):
            paths = pick_articles(src, inc, n, rng, used)
            used.update(paths)
            words = modify(src, paths, rng)
            expect = work / f"expect-{n}.json"
            expect.write_text(json.dumps(words))
            log(f"kb incremental, {n} article(s) changed")
            step = {"kb": kb_build(src, inc, False, timeout, verify=expect), "paths": paths[:5]}
            k = step["kb"]
            _expect_mode(result, f"{n} changed", k, "incremental")
            log(f"  build() {k['build_s']:.2f} s ({k['process_s']:.2f} s process), mode {k['mode']}, "
                f"changed {k['changed']}; found {k['verify']['found']}/{k['verify']['checked']} by their new word; "
                f"reopen {k['reopen_s']:.2f} s")
            if naive_inc is not None:
                log(f"naive update_document of the same {n} file(s)")
                step["naive"] = naive_update(src, naive_inc, paths, timeout, expect)
                log(f"  {step['naive']['total_s']:.2f} s ({step['naive']['process_s']:.2f} s process); "
                    f"found {step['naive']['verify'].get('found')}/{n}")
            steps[f"changed_{n}"] = step
        result["incremental"] = steps
    drift = drift_warning(result["machine"])
    if drift:
        result.setdefault("warnings", []).append(drift)
    return result


def _expect_mode(result: dict, step: str, report: dict, mode: str) -> None:
    """An incremental step that did something else (e.g. a full rebuild because kb's index format
    changed under the benchmark) is not the figure it claims to be: say so."""
    if report["mode"] != mode:
        msg = (f"WARNING: incremental step '{step}' ran as mode {report['mode']!r}, not {mode!r} "
               f"(kb index format now {report.get('format')}); its time is not an incremental update")
        log(msg)
        result.setdefault("warnings", []).append(msg)


def summary_rows(r: dict) -> list[list[str]]:
    """Rows of the summary table: metric, target, kb, naive Whoosh, verdict."""
    rows = []
    f = r.get("full")
    if f:
        k, n = f["kb"], f["naive"]
        naive_txt = (f"{fmt_s(n['median_total_s'])} ({fmt_s(n['median_parse_s'])} parse + "
                     f"{fmt_s(n['median_index_s'])} index)") if n["runs"] else "–"
        rows.append([f"full build, wall (median of {r['runs']})", f"<= {TARGET_FULL_S:.0f} s",
                     f"{fmt_s(k['median_build_s'])} (process {fmt_s(k['median_process_s'])})", naive_txt,
                     verdict(k["median_build_s"], TARGET_FULL_S)])
        kp = k.get("parse_only") or {}
        if kp.get("parse_s") is not None:
            rows.append(["  of which parsing (kb: parse stage alone, 1 run)", "–", fmt_s(kp["parse_s"]),
                         fmt_s(n["median_parse_s"]) if n["runs"] else "–", ""])
        rows.append(["full build, peak RSS (largest process / whole tree)", "–",
                     f"{fmt_mb(k['max_peak_rss_mb'])} / {fmt_mb(k['max_peak_tree_rss_mb'])}",
                     fmt_mb(n["max_peak_rss_mb"]), ""])
        rows.append(["index size on disk", "–", fmt_mb(k["index_mb"]), fmt_mb(n["index_mb"]), ""])
    inc = r.get("incremental")
    if inc:
        u = inc["unchanged"]["kb"]
        rows.append(["incremental, nothing changed", "–", f"{fmt_s(u['build_s'])} (process {fmt_s(u['process_s'])})"
                     + ("" if u["mode"] == "unchanged" else f" (ran as {u['mode']}!)"), "–", ""])
        for n, target in ((1, TARGET_INCREMENTAL_1_S), (100, None)):
            step = inc.get(f"changed_{n}")
            if not step:
                continue
            k = step["kb"]
            nv = step.get("naive")
            v = k["verify"]
            if k["mode"] != "incremental":
                v = dict(v, found=f"{v['found']} (ran as {k['mode']}!)")
            rows.append([f"incremental, {n} changed article{'s' if n > 1 else ''}",
                         f"<= {target:.0f} s" if target else "–",
                         f"{fmt_s(k['build_s'])} (process {fmt_s(k['process_s'])}); found {v['found']}/{v['checked']}",
                         (f"{fmt_s(nv['total_s'])} (process {fmt_s(nv['process_s'])}); "
                          f"found {nv['verify'].get('found')}/{n}") if nv else "–",
                         verdict(k["build_s"], target) + ("" if v["found"] == v["checked"] else " (NOT FOUND)")
                         if target else ("" if v["found"] == v["checked"] else "NOT FOUND")])
            if n == 1:
                rows.append(["search engine reopen after an update (new generation)", "–", fmt_s(k["reopen_s"]),
                             "–", ""])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--runs", type=int, default=3, help="full builds of each engine (default 3; median reported)")
    p.add_argument("--naive-runs", type=int, default=None, help="full builds of the naive baseline (default: --runs)")
    p.add_argument("--no-incremental", action="store_true", help="skip the incremental steps")
    p.add_argument("--timeout", type=float, default=900, help="seconds any one build may take (default 900)")
    args = p.parse_args(argv)
    with workspace(args.workdir, args.keep) as work:
        corpus = corpus_dir(args.corpus, work)
        result = run(args, corpus, work)
    return report("build", result, args.json_out, summary_rows(result))


if __name__ == "__main__":
    raise SystemExit(main())
