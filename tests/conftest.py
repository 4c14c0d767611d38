"""Shared fixtures: the bundled sample index (built once per session) and the real corpus.

Tests that need ``../shared`` or Chromium skip with a reason on a developer's machine and fail
instead when ``CI=true``, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from kb.config import sample_root
from kb.index import build
from kb.web import create_app

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KB_SHARED", ROOT.parent / "shared"))
CORPUS_TAR = SHARED / "corpus" / "selfhelp-articles.tar.gz"
DEV_QUERIES = SHARED / "eval" / "dev-queries.json"
IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, reason: str) -> None:
    """Skip (or, under CI=true, fail) unless ``condition`` holds."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return sample_root()


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory, sample_dir) -> Path:
    """An index of the bundled sample knowledge base; read-only for tests."""
    index_dir = tmp_path_factory.mktemp("sample-index")
    build(sample_dir, index_dir, full=True, workers=1)
    return index_dir


@pytest.fixture
def app(sample_index):
    """The web app over the sample index (test files with another index override it)."""
    return create_app({"KB_INDEX": str(sample_index), "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    """The real corpus, extracted once per session; its ``selfhelp/`` folder."""
    need(CORPUS_TAR.exists(), f"real corpus not found at {CORPUS_TAR}")
    dest = tmp_path_factory.mktemp("corpus")
    with tarfile.open(CORPUS_TAR) as tar:
        tar.extractall(dest, filter="data")
    return dest / "selfhelp"


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory, corpus_dir) -> Path:
    """A full index of the real corpus, built once per session; read-only for tests."""
    index_dir = tmp_path_factory.mktemp("corpus-index")
    build(corpus_dir, index_dir, full=True)
    return index_dir


@pytest.fixture
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    need(path is not None, "Chromium is not installed (apt-get install chromium)")
    return path


@contextmanager
def paused_build(articles: Path, index_dir: Path):
    """A full build of ``articles`` into ``index_dir`` in a thread, held after its first article
    until the block ends (then it finishes)."""
    started, release = threading.Event(), threading.Event()

    def slow(done: int, total: int) -> None:
        started.set()
        release.wait(timeout=30)

    runner = threading.Thread(target=build, args=(articles, index_dir),
                              kwargs={"full": True, "workers": 1, "progress": slow})
    runner.start()
    try:
        assert started.wait(timeout=30)
        yield
    finally:
        release.set()
        runner.join(timeout=60)


#: How the browser tests start the system Chromium.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright  # only the browser tests need it

    with sync_playwright() as pw:
        yield pw


@pytest.fixture
def browser(playwright, chromium_path):
    """The system Chromium (never a downloaded one), headless."""
    chromium = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, timeout=60_000)
    yield chromium
    chromium.close()
