"""Where things are in the checkout, for every test folder."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
TOPOLOGIES = ROOT / "topologies"
