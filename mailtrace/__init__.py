"""mailtrace: localize a mail-flow fault to one tier of a declared topology, with evidence."""

#: The distribution's name on the package index. The import package and the command are
#: ``mailtrace``; an unrelated project already holds the name ``mailtrace`` on PyPI.
DISTRIBUTION = "mailtrace-diagnostics"


def version() -> str:
    """The installed distribution's version (``mailtrace --version``)."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # a checkout run without installing
        return "unknown (not installed)"
