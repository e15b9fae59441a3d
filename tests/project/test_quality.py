"""The house checks run with the suite, so CI enforces them: ruff and mypy --strict."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.paths import ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_ruff_clean():
    pytest.importorskip("ruff", reason="ruff not installed (pip install ruff)")
    done = _run("ruff", "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_clean():
    pytest.importorskip("mypy", reason="mypy not installed (pip install mypy)")
    done = _run("mypy")
    assert done.returncode == 0, done.stdout + done.stderr
