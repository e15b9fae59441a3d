"""Shared test set-up, and the runtime half of the closed-catalog check.

Every Finding built while the suite runs is recorded. After a full run (every test file
collected, nothing deselected) the session fails if a declared tag was never emitted by
any test, or if a tag's message names an argument no emission ever carried.
"""

from __future__ import annotations

import string
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # builders.py, labrun.py

from mailtrace import catalog
from mailtrace.findings import Finding

EMITTED: dict[str, set[str]] = {}
_DESELECTED: list[Any] = []
_init = Finding.__init__


def _recording_init(self: Finding, *args: Any, **kwargs: Any) -> None:
    _init(self, *args, **kwargs)
    EMITTED.setdefault(self.tag, set()).update(self.args)


Finding.__init__ = _recording_init  # type: ignore[method-assign]


def pytest_deselected(items: list[Any]) -> None:
    _DESELECTED.extend(items)


def _full_run(session: pytest.Session) -> bool:
    tests = Path(__file__).parent
    every_file = {p.resolve() for p in tests.rglob("test_*.py")}
    collected = {Path(str(item.path)).resolve() for item in session.items}
    return not _DESELECTED and every_file <= collected and session.testsfailed == 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _full_run(session):
        return
    problems = []
    for tag, info in catalog.load().items():
        if tag not in EMITTED:
            problems.append(f"{tag}: declared in probes/catalog/ but no test emits it")
            continue
        fields = {f for _, f, _, _ in string.Formatter().parse(info.message) if f}
        unknown = fields - EMITTED[tag]
        if unknown:
            problems.append(f"{tag}: message names {sorted(unknown)}, never passed as args")
    if problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for line in ["", "closed catalog check failed:", *problems]:
            if reporter is not None:
                reporter.write_line(line, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
