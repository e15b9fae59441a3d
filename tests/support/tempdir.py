"""The test run leaves nothing in the temporary directory, as a pytest plugin.

The lab writes a CA's private keys and its stand-ins' credentials to temporary folders,
and must remove them however it stops. The run gets a private temporary folder (``TMPDIR``
for every process it starts, xdist workers and ``mailtrace`` commands included; pytest's
own ``tmp_path`` folders go there too). When every test passed, anything mailtrace left
in it fails the session, naming what was left; the folder is then removed. After a
failure it is kept, for a look.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_FOLDER = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # an xdist worker: it inherited the controller's TMPDIR
    folder = Path(tempfile.mkdtemp(prefix="mailtrace-tests-"))
    # As the system's temporary directory is: Postfix's own user must reach the instance a
    # test starts in here. What mailtrace and pytest make inside stays private to this user.
    folder.chmod(0o755)
    config.stash[_FOLDER] = folder
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)


def _left(folder: Path) -> list[str]:
    """What is left: pytest's own (emptied) per-user folder aside."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if not (p.name.startswith("pytest-of-") and p.is_dir()
                          and not any(p.iterdir())))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    folder = session.config.stash.get(_FOLDER, None)
    if folder is None or not folder.exists():
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if session.testsfailed or exitstatus not in (0, pytest.ExitCode.NO_TESTS_COLLECTED):
        if reporter is not None:
            reporter.write_line(f"temporary files of this run kept in {folder}")
        return
    left = _left(folder)
    if left:
        if reporter is not None:
            for line in ["", f"the tests left files in the temporary directory ({folder}):",
                         *left[:20]]:
                reporter.write_line(line, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    shutil.rmtree(folder, ignore_errors=True)
