"""The runtime half of the closed-catalog check, as a pytest plugin.

Every Finding announces itself with the audit event ``mailtrace.finding`` (PEP 578); the
hook below records each tag and the arguments it was given. After a full run (every test
file collected, nothing deselected, nothing failed) the session fails if a declared tag
was never emitted by any test, or if a tag's message names an argument no emission ever
carried.

With pytest-xdist the tests run in several processes: each worker sends what it heard,
and whether it collected every test file, to the controller (``workeroutput``), which
judges the union.
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
#: From each finished xdist worker: did it collect every test file, deselecting nothing?
_WORKERS_FULL: list[bool] = []


def _listen(event: str, args: tuple[Any, ...]) -> None:
    if event == "mailtrace.finding":
        tag, names = args
        EMITTED.setdefault(tag, set()).update(names)


sys.addaudithook(_listen)


def pytest_deselected(items: list[Any]) -> None:
    _DESELECTED.extend(items)


def _collected_everything(session: pytest.Session) -> bool:
    tests = Path(__file__).resolve().parents[1]
    every_file = {p.resolve() for p in tests.rglob("test_*.py")}
    collected = {Path(str(item.path)).resolve() for item in session.items}
    return not _DESELECTED and every_file <= collected


def _distributed(config: pytest.Config) -> bool:
    """Is this the controller of xdist workers (the tests run elsewhere)?"""
    return config.pluginmanager.hasplugin("dsession")


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


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist, in the controller: a worker finished; take what it heard."""
    output = getattr(node, "workeroutput", {})
    for tag, names in output.get("mailtrace_emitted", {}).items():
        EMITTED.setdefault(tag, set()).update(names)
    _WORKERS_FULL.append(error is None and bool(output.get("mailtrace_full")))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller judges
        workeroutput["mailtrace_emitted"] = {tag: sorted(n) for tag, n in EMITTED.items()}
        workeroutput["mailtrace_full"] = _collected_everything(session)
        return
    if _distributed(config):
        full = bool(_WORKERS_FULL) and all(_WORKERS_FULL)
    else:
        full = _collected_everything(session)
    if not full or session.testsfailed:
        return
    found = problems(EMITTED)
    if found:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        for line in ["", "closed catalog check failed:", *found]:
            if reporter is not None:
                reporter.write_line(line, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
