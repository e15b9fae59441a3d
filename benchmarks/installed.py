"""mailtrace as a user installs it, for the benchmarks that time whole processes.

A checkout's development environment is not what a user runs: an editable install adds
an import hook to every start-up, and the test tools bring packages that others import
when present (httpx loads its command-line client's rich, click and pygments). The
benchmarks that time a whole process therefore run ``mailtrace`` from a virtual
environment of their own (``benchmarks/.venv-user``, ignored by git) where the checkout is
installed as README says (``pip install .``), refreshed on each run; ``--here`` runs this
interpreter's mailtrace instead.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(__file__).resolve().parent / ".venv-user"


def _pip(*args: str) -> None:
    subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", *args],
                   check=True, capture_output=True, text=True)


def python(here: bool = False) -> Path:
    """The interpreter whose mailtrace is timed: this one (``here``), or the user-like
    environment's, with the checkout (re)installed into it."""
    if here:
        return Path(sys.executable)
    exe = VENV / "bin" / "python"
    print(f"installing the checkout into {VENV} (pip install .) ...", flush=True)
    try:
        if not exe.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True,
                           capture_output=True, text=True)
        _pip(str(ROOT))  # the dependencies, as a user gets them
        _pip("--no-deps", "--force-reinstall", str(ROOT))  # this checkout's code
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"could not install the checkout: {(exc.stderr or '')[-500:]}"
                         " (or run with --here)") from None
    return exe


def command(interpreter: Path, *args: str) -> list[str]:
    return [str(interpreter), "-m", "mailtrace", *args]


def workdir(interpreter: Path) -> Path:
    """Where to start processes so that the installed mailtrace, not the checkout's, is
    imported (``python -m`` and ``-c`` put the working directory first on the path)."""
    return ROOT if interpreter == Path(sys.executable) else VENV
