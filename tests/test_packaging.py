"""An installed mailtrace (not only a checkout) carries its probes, catalog, lab zones
and example topologies."""

from __future__ import annotations

import tomllib
from importlib import metadata, resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_every_source_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("mailtrace", "probes")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert found <= listed
    assert "mailtrace.topologies" in listed


def test_installed_distribution_carries_its_data():
    # An in-tree build leaves mailtrace.egg-info in the checkout, first on sys.path:
    # look for the copy installed in a site-packages (a venv's may sit inside the checkout).
    installed = [
        d for d in metadata.distributions(name="mailtrace")
        if "site-packages" in Path(str(d.locate_file(""))).parts
    ]
    if not installed:
        pytest.skip("mailtrace is not installed from a wheel (pip install .)")
    dist = installed[0]
    files = {str(f) for f in dist.files or []}
    if not any(f.endswith("catalog/dns.yaml") for f in files):
        pytest.skip("an editable install: data files stay in the checkout")
    for needed in ("probes/catalog/dns.yaml", "probes/catalog/engine.yaml",
                   "mailtrace/lab/zones/contoso.com.zone",
                   "mailtrace/topologies/contoso-proofpoint-exo.yaml",
                   "mailtrace/topologies/fabrikam-essentials-exo.yaml",
                   "mailtrace/topologies/northwind-exo-direct.yaml", "mailtrace/py.typed"):
        assert needed in files, needed


def test_catalog_and_zones_load_as_package_resources():
    assert resources.files("probes").joinpath("catalog", "dns.yaml").is_file()
    assert resources.files("mailtrace.lab").joinpath("zones", "com.zone").is_file()
