"""The architecture, checked with the suite: every import points down the layers
(pyproject.toml's import-linter contracts), no import circle anywhere, no private name
imported across modules, and no probe that reads the environment or a secret."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.support.paths import ROOT

SOURCES = sorted((ROOT / "mailtrace").rglob("*.py"))


def _graph():  # type: ignore[no-untyped-def]
    grimp = pytest.importorskip("grimp", reason="import-linter not installed")
    return grimp.build_graph("mailtrace", exclude_type_checking_imports=True)


def test_the_import_contracts_hold():
    """pyproject.toml's contracts: the layers, and who may start the lab."""
    pytest.importorskip("importlinter", reason="import-linter not installed")
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_no_import_circle():
    from mailtrace.topology.digraph import DiGraph, find_cycle

    graph = _graph()
    edges = DiGraph()
    for module in sorted(graph.modules):
        edges.add_node(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            edges.add_edge(module, imported)
    assert find_cycle(edges) is None


def test_no_private_name_is_imported_across_modules():
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mailtrace"):
                found += [f"{path.relative_to(ROOT)}: {alias.name}" for alias in node.names
                          if alias.name.startswith("_")]
    assert found == []


def test_probes_never_read_the_environment_or_credentials():
    """The engine builds every client; a probe asks for its tier's and never sees where
    the credentials come from (names in code, docstrings aside)."""
    banned = {"environ", "getenv", "password", "secret", "username_env", "password_env",
              "principal_env", "secret_env", "token_env", "credentials"}
    offenders = []
    for path in sorted((ROOT / "probes").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = (node.id if isinstance(node, ast.Name)
                    else node.attr if isinstance(node, ast.Attribute) else None)
            if name in banned:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert offenders == []
