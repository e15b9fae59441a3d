"""Shared test set-up: the closed-catalog check (``tests/support/closed_catalog.py``) and
a private temporary folder that must be left empty (``tests/support/tempdir.py``)."""

pytest_plugins = ["tests.support.closed_catalog", "tests.support.tempdir"]
