"""The one interface every bounce reader has.

A reader knows one family of bounces (one MTA's or service's wording). ``claims`` is its
cheap test on the header fields alone (the sender, the subject, a vendor field); ``read``
reads the notification and returns the recipients it finds, or nothing when the message
is not of its family. Readers are tried in a fixed order, those whose header test matches
first (:mod:`mailtrace.intake.readers`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.mail import Mail


@dataclass
class Found:
    """What a reader read: the recipients and the server that wrote the report."""

    recipients: list[RecipientStatus]
    reporting_mta: str | None = None
    notes: list[str] = field(default_factory=list)
    format: str | None = None  # a more precise name than the reader's, when it knows one


@dataclass(frozen=True)
class Reader:
    name: str
    claims: Callable[[Mail], bool]
    read: Callable[[Mail], Found | None]


def sender_matches(pattern: str) -> Callable[[Mail], bool]:
    """A header test on the From field (case-insensitive search)."""
    compiled = re.compile(pattern, re.IGNORECASE)
    return lambda mail: bool(compiled.search(mail.sender))


def subject_matches(pattern: str) -> Callable[[Mail], bool]:
    """A header test on the Subject field (case-insensitive search)."""
    compiled = re.compile(pattern, re.IGNORECASE)
    return lambda mail: bool(compiled.search(mail.subject))


def never(mail: Mail) -> bool:
    """For readers found by their body's wording only."""
    return False
