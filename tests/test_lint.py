"""ruff with pyflakes and flake8-bugbear over the code (configuration in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess

from conftest import ROOT, need


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff")
    need(ruff is not None, "ruff is not installed (pip install '.[test]')")
    done = subprocess.run([ruff, "check", "--no-cache", "kb", "tests", "bench"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
