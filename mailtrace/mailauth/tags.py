"""Tag-value lists, the shared syntax of DKIM key records (RFC 6376 §3.2), DMARC records
(RFC 7489 §6.3), MTA-STS and TLS-RPT records (RFC 8461 §3.1, RFC 8460 §3)."""

from __future__ import annotations

import re

_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class TagListError(ValueError):
    pass


def parse_tags(text: str, *, separator: str = ";") -> dict[str, str]:
    """``tag=value; tag=value`` → {tag: value}; tag names keep their case. Raises
    :class:`TagListError` on a malformed pair, an invalid name or a repeated tag."""
    tags: dict[str, str] = {}
    parts = text.split(separator)
    if parts and not parts[-1].strip():
        parts = parts[:-1]  # a trailing separator is allowed
    for part in parts:
        name, sep, value = part.partition("=")
        name = name.strip(" \t\r\n")
        if not sep:
            raise TagListError(f"{part.strip()!r} is not tag=value")
        if not _TAG.match(name):
            raise TagListError(f"{name!r} is not a valid tag name")
        if name in tags:
            raise TagListError(f"tag {name!r} appears twice")
        tags[name] = value.strip(" \t\r\n")
    return tags
