"""checkdmarc in a virtual environment of its own, for the benchmarks that time it.

checkdmarc is not a dependency of mailtrace, not even an optional one: the benchmarks
that compare against it install it here, beside them (``benchmarks/.venv-checkdmarc``,
ignored by git), once, with pip, and run it as a separate process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

VENV = Path(__file__).resolve().parent / ".venv-checkdmarc"
REQUIREMENT = "checkdmarc>=5"


def python() -> Path | None:
    """The interpreter of checkdmarc's environment, made on first use; None (with the
    reason printed) when it cannot be made, e.g. with no package index reachable."""
    exe = VENV / "bin" / "python"
    if exe.exists() and _has_checkdmarc(exe):
        return exe
    print(f"installing {REQUIREMENT} into {VENV} (once) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True,
                       capture_output=True, text=True)
        subprocess.run([str(exe), "-m", "pip", "install", "-q", REQUIREMENT], check=True,
                       capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        print(f"checkdmarc could not be installed: {(exc.stderr or '').strip()[-300:]}")
        return None
    return exe if _has_checkdmarc(exe) else None


def _has_checkdmarc(exe: Path) -> bool:
    done = subprocess.run([str(exe), "-c", "import checkdmarc"], capture_output=True,
                          check=False)
    return done.returncode == 0


def version(exe: Path) -> str:
    done = subprocess.run([str(exe), "-c", "import checkdmarc; print(checkdmarc.__version__)"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"
