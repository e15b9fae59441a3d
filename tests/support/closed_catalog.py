"""The runtime half of the closed-catalog check, as a pytest plugin.

Every Finding announces itself with the audit event ``mailtrace.finding`` (PEP 578); the
hook below records each tag and the arguments it was given. After a full run (every test
file collected, nothing deselected, nothing failed) the session fails if a declared tag
was never emitted by any test, or if a tag's message names an argument no emission ever
carried.
"""

from __future__ import annotations

import string
import sys
from pathlib import Path
from typing import Any

import pytest

from mailtrace.core import catalog

EMITTED: dict[str, set[str]] = {}
_DESELECTED: list[Any] = []


def _listen(event: str, args: tuple[Any, ...]) -> None:
    if event == "mailtrace.finding":
        tag, names = args
        EMITTED.setdefault(tag, set()).update(names)


sys.addaudithook(_listen)


def pytest_deselected(items: list[Any]) -> None:
    _DESELECTED.extend(items)


def _full_run(session: pytest.Session) -> bool:
    tests = Path(__file__).resolve().parents[1]
    every_file = {p.resolve() for p in tests.rglob("test_*.py")}
    collected = {Path(str(item.path)).resolve() for item in session.items}
    return not _DESELECTED and every_file <= collected and session.testsfailed == 0


def problems(emitted: dict[str, set[str]]) -> list[str]:
    found = []
    for tag, info in catalog.load().items():
        if tag not in emitted:
            found.append(f"{tag}: declared in probes/catalog/ but no test emits it")
            continue
        fields = {f for _, f, _, _ in string.Formatter().parse(info.message) if f}
        unknown = fields - emitted[tag]
        if unknown:
            found.append(f"{tag}: message names {sorted(unknown)}, never passed as args")
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _full_run(session):
        return
    found = problems(EMITTED)
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for line in ["", "closed catalog check failed:", *found]:
            if reporter is not None:
                reporter.write_line(line, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
