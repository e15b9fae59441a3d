"""The command line: one module per command, common options in ``options``."""

from mailtrace.cli.main import main

__all__ = ["main"]
