"""Shared test set-up: the closed-catalog check (``tests/support/closed_catalog.py``)."""

pytest_plugins = ["tests.support.closed_catalog"]
