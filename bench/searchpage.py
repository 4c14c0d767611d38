"""Search as you type (issue 13): in-process latency of ``/api/v1/suggest``'s work and of prefix
searches over what an agent types keystroke by keystroke, and optionally, in real Chromium
against ``kb serve``, the time from the last keystroke of "starting wind" to its results.

Targets: suggestions p95 under 5 ms; the typed text's results on screen within 500 ms.

Usage::

    python bench/searchpage.py --index ./index [--browser]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != Path(_here)]
    sys.path.insert(0, str(Path(_here).parent))

import argparse
import os
import re
import shutil
import subprocess
import time

from bench.common import percentiles  # noqa: E402
from kb.search import SearchEngine  # noqa: E402
from kb.suggest import suggest  # noqa: E402

TARGET_SUGGEST_P95_MS = 5.0
TARGET_SHOWN_MS = 500.0
#: What agents type; every prefix of each (from 2 characters) is one keystroke's request.
TYPED = ["starting windows", "aadsts50076", "key vault access denied", "vm stuck on getting windows ready",
         "0xc000021a", "storage account 403", "rdp internal error", "sql login failed 18456",
         "aks node not ready", "app service 502"]


def keystrokes() -> list[str]:
    return [text[:n] for text in TYPED for n in range(2, len(text) + 1) if not text[:n].endswith(" ")]


def in_process(index: str) -> int:
    engine = SearchEngine(index, result_cache=0)
    gen = engine.generation()
    started = time.perf_counter()
    suggest(gen, "warm")  # builds the title words once per generation
    gen.queries.completions("warm")  # and the sorted vocabulary (kb.suggest.prepare does both)
    print(f"suggester and vocabulary built in {(time.perf_counter() - started) * 1000:.0f} ms "
          "(once per index generation and worker, in the background from the first page view)")
    texts = keystrokes()
    took_s, took_q = [], []
    for text in texts:
        t = time.perf_counter()
        suggest(gen, text)
        took_s.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        engine.search(text, prefix=True)
        took_q.append((time.perf_counter() - t) * 1000)
        time.sleep(0.05)  # an agent's pace: the wildcard bucket refills as it would
    s, q = percentiles(took_s), percentiles(took_q)
    verdict = "PASS" if s["p95"] <= TARGET_SUGGEST_P95_MS else "FAIL"
    print(f"suggest, {len(texts)} keystrokes: p50 {s['p50']:.2f} ms, p95 {s['p95']:.2f} ms ({verdict}, "
          f"target {TARGET_SUGGEST_P95_MS:g} ms), max {s['max']:.2f} ms")
    print(f"prefix search, {len(texts)} keystrokes: p50 {q['p50']:.2f} ms, p95 {q['p95']:.2f} ms, max {q['max']:.2f} ms")
    return 0 if verdict == "PASS" else 1


def in_browser(index: str, runs: int = 5, warmup: int = 3) -> int:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    proc = subprocess.Popen([sys.executable, "-m", "kb", "serve", "--index", index, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, "KB_ANALYTICS": "0", "PYTHONUNBUFFERED": "1"})
    try:
        url = None
        for line in proc.stdout:
            m = re.search(r"(http://127\.0\.0\.1:\d+)", line)
            if m:
                url = m.group(1)
                break
        assert url, "kb serve did not start"
        shown = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            for run in range(warmup + runs):
                page.goto(url + "/")
                box = page.locator("#q")
                box.click()
                box.press_sequentially("starting wind", delay=80)  # a quick typist
                t = time.perf_counter()
                # (a locator, not wait_for_function: kb's CSP forbids evaluating strings)
                page.locator("#result-count", has_text="starting wind").wait_for()
                if run >= warmup:  # the first runs meet workers that are still opening the index
                    shown.append((time.perf_counter() - t) * 1000)
                first = page.locator(".results .card-title").first.inner_text()
            browser.close()
        p = percentiles(shown)
        verdict = "PASS" if p["max"] <= TARGET_SHOWN_MS else "FAIL"
        print(f"'starting wind' typed, results shown after the last keystroke: p50 {p['p50']:.0f} ms, "
              f"max {p['max']:.0f} ms over {runs} runs after {warmup} warm-up runs ({verdict}, target {TARGET_SHOWN_MS:g} ms; "
              f"includes the {150} ms debounce); first result: {first!r}")
        return 0 if verdict == "PASS" else 1
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", required=True, help="a built kb index directory")
    parser.add_argument("--browser", action="store_true", help="also time typing in Chromium against kb serve")
    args = parser.parse_args(argv)
    status = in_process(args.index)
    if args.browser:
        status |= in_browser(args.index)
    return status


if __name__ == "__main__":
    sys.exit(main())
