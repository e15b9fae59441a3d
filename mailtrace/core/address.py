"""Mail addresses that reach a wire: checked once, so nothing can inject a command.

A recipient or a probe sender is refused unless it is ``local@domain`` in ASCII with no
CR, LF, NUL, space or angle bracket (RFC 5321 §4.1.2 "Mailbox", dot-atom local parts).
"""

from __future__ import annotations

import re

_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}$"
)


def check_domain(domain: str) -> str:
    """A mail domain, lowercased without a trailing dot; ValueError when invalid."""
    domain = domain.lower().removesuffix(".")
    if not domain.isascii() or not _DOMAIN.fullmatch(domain):
        raise ValueError(f"invalid domain {domain!r}")
    return domain


def check_mailbox(address: str) -> str:
    """``local@domain`` (the domain lowercased); ValueError naming what is wrong."""
    if not address.isascii() or any(c in address for c in "\r\n\0 <>"):
        raise ValueError(f"invalid address {address!r}: expected local@domain in ASCII")
    local, sep, domain = address.rpartition("@")
    if not sep or not _LOCAL.fullmatch(local) or local.startswith(".") or ".." in local:
        raise ValueError(f"invalid address {address!r}: expected local@domain")
    try:
        return f"{local}@{check_domain(domain)}"
    except ValueError:
        raise ValueError(f"invalid address {address!r}: its domain is not valid") from None


def check_sender(text: str) -> str:
    """A sender to follow (``--from``): an address, or a whole domain as ``@domain``
    (``fabrikam.example`` and ``@fabrikam.example`` both mean the domain)."""
    text = text.strip()
    if "@" in text.lstrip("@"):
        return check_mailbox(text)
    return "@" + check_domain(text.lstrip("@"))


def check_text(text: str, what: str, limit: int = 998) -> str:
    """A search key (a Message-ID, a subject part): printable, one line, bounded (RFC 5322
    §2.1.1), so it can neither inject a header nor a filter."""
    if not text.strip() or len(text) > limit or any(
            ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError(f"{what}: expected one line of printable text (no CR, LF or other "
                         f"control characters), at most {limit} characters")
    return text.strip()
