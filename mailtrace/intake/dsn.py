"""Delivery status notifications: per-recipient outcome from a bounce, whatever its form.

The records below are what every reader in :mod:`mailtrace.intake.readers` produces: the
RFC 3464 report's fields when there is one (``message/delivery-status``, §2; RFC 6533's
``message/global-delivery-status``), and the human-readable text the sender's server
wrote, read by the reader of its family (Exim, qmail, Gmail, Exchange...). Nothing raises
on broken input: a part that cannot be read is skipped, and a message that reports no
delivery status is a :class:`NotABounce`, which says what the message is instead (a spam
complaint, an out-of-office reply) when it can.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailtrace.intake.message import EvidenceError

MAX_RECIPIENTS = 500


class NotABounce(EvidenceError):
    """The message reports no delivery status; ``kind`` says what it is instead:
    ``feedback`` (an ARF spam complaint, RFC 5965), ``auto-reply`` (RFC 3834),
    ``receipt`` (a read receipt, RFC 8098) or ``unknown``."""

    def __init__(self, message: str, kind: str = "unknown") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class RecipientStatus:
    address: str | None
    action: str | None
    status: str | None  # the report's Status field (RFC 3464 §2.3.4), as written
    diagnostic: str  # the Diagnostic-Code (§2.3.6), or the reason the text gives
    reporting_mta: str | None
    remote_mta: str | None
    original_recipient: str | None = None
    last_attempt: str | None = None
    #: The human-readable part's own words about this recipient, when they add to the
    #: diagnostic (the text of a report whose machine-readable part is terse).
    text: str = ""
    command: str | None = None  # the SMTP command the remote server answered


@dataclass(frozen=True)
class OriginalMessage:
    """The message that bounced, as the bounce returns it (its ``message/rfc822`` or
    ``text/rfc822-headers`` part, RFC 3462 §1 and RFC 3464 §2, or the copy a text bounce
    quotes): the keys that find it again in the gateway's log and the message trace."""

    message_id: str | None = None  # with its angle brackets (RFC 5322 §3.6.4)
    sender: str | None = None  # the address of its From field (RFC 5322 §3.6.2)
    subject: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"message_id": self.message_id, "from": self.sender, "subject": self.subject}


@dataclass
class DeliveryReport:
    format: str  # the reader that read it: rfc3464, postfix, exim, exchange-online...
    reporting_mta: str | None
    recipients: list[RecipientStatus]
    subject: str | None = None
    notes: list[str] = field(default_factory=list)
    #: The bounced message's keys, when the bounce returns its header section.
    original: OriginalMessage | None = None
