"""An installed mailtrace (not only a checkout) carries its probes, catalog, lab zones
and example topologies."""

from __future__ import annotations

import tomllib
from importlib import metadata, resources
from pathlib import Path

import pytest

from mailtrace import DISTRIBUTION, version
from tests.support.paths import ROOT


def test_every_source_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "mailtrace").rglob("__init__.py")}
    # the probes live at the top of the repository and install as mailtrace.probes
    found |= {".".join(("mailtrace", *p.parent.relative_to(ROOT).parts))
              for p in (ROOT / "probes").rglob("__init__.py")}
    assert found <= listed
    assert "mailtrace.topologies" in listed
    assert all(name.split(".")[0] == "mailtrace" for name in listed)  # no other top level


def test_the_checkout_imports_the_probes_where_the_wheel_installs_them():
    link = ROOT / "mailtrace" / "probes"
    assert link.is_symlink() and link.resolve() == (ROOT / "probes").resolve()


def test_installed_distribution_carries_its_data():
    # An in-tree build leaves mailtrace.egg-info in the checkout, first on sys.path:
    # look for the copy installed in a site-packages (a venv's may sit inside the checkout).
    installed = [
        d for d in metadata.distributions(name=DISTRIBUTION)
        if "site-packages" in Path(str(d.locate_file(""))).parts
    ]
    if not installed:
        pytest.skip("mailtrace is not installed from a wheel (pip install .)")
    dist = installed[0]
    files = {str(f) for f in dist.files or []}
    if not any(f.endswith("catalog/dns.yaml") for f in files):
        pytest.skip("an editable install: data files stay in the checkout")
    for needed in ("mailtrace/probes/catalog/dns.yaml", "mailtrace/probes/catalog/engine.yaml",
                   "mailtrace/probes/dns/mx.py",
                   "mailtrace/lab/zones/contoso.com.zone",
                   "mailtrace/topologies/contoso-proofpoint-exo.yaml",
                   "mailtrace/topologies/fabrikam-essentials-exo.yaml",
                   "mailtrace/topologies/northwind-exo-direct.yaml", "mailtrace/py.typed"):
        assert needed in files, needed


def test_catalog_and_zones_load_as_package_resources():
    assert resources.files("mailtrace.probes").joinpath("catalog", "dns.yaml").is_file()
    assert resources.files("mailtrace.lab").joinpath("zones", "com.zone").is_file()


def test_the_version_is_looked_up_under_the_distributions_own_name():
    """`mailtrace` on the package index is another project: the lookup must use ours."""
    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    assert DISTRIBUTION == name == "mailtrace-diagnostics"
    assert version() == metadata.version(name)
