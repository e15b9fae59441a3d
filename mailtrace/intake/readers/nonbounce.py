"""Messages that come back to a sender but are not bounces, recognized as what they are.

- A feedback report (ARF, RFC 5965 §2): ``multipart/report; report-type=feedback-report``
  with a ``message/feedback-report`` part; also the providers' own complaint forms that
  predate or wrap ARF: Microsoft's JMRP (the complained-of message carries
  ``X-HmXmrOriginalRecipient``) and Amazon SES's ``"notificationType":"Complaint"``.
- A read receipt (a message disposition notification, RFC 8098 §3: ``multipart/report;
  report-type=disposition-notification``).
- An automatic reply (RFC 3834 §5: ``Auto-Submitted: auto-replied``; also the
  ``X-Autoreply``/``X-Autorespond`` fields and the subjects vacation responders write),
  told apart from a bounce only when nothing in it reports a delivery status, since
  bounces are auto-replied too (Exim sets the same field).
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import NotABounce
from mailtrace.intake.readers.mail import FEEDBACK_TYPE, Mail

FEEDBACK = ("a spam complaint (a feedback report, RFC 5965), not a bounce: the recipient "
            "or their provider reported the message as abuse; no delivery failed")
RECEIPT = ("a read receipt (a message disposition notification, RFC 8098), not a bounce: "
           "the message was delivered and the recipient's mail program reports what was "
           "done with it")
AUTO_REPLY = ("an automatic reply such as an out-of-office message (RFC 3834), not a "
              "bounce: the message was delivered and the recipient's mailbox answered")

_AUTO_SUBJECT = re.compile(
    r"^[ \t]*(?:auto(?:matic)?[ -]?(?:reply|response|antwort)|auto:|out of (?:the )?office"
    r"|away (?:from|until)|on vacation|vacation|abwesenheit|absence|r[ée]ponse automatique"
    r"|risposta automatica|respuesta autom[áa]tica|i am (?:out|away)|autoreply"
    r"|automatische antwort|resposta autom[áa]tica|自動(?:返信|応答)|自动回复"
    r"|\[auto(?:reply|-reply)\])", re.I)
_BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery|mailerdaemon", re.I)


def check_feedback(mail: Mail) -> None:
    """Raise :class:`NotABounce` for an ARF feedback report (RFC 5965 §2) or a read receipt
    (RFC 8098 §3): their content type says so, whatever else they carry."""
    ctype = mail.header("content-type").lower().replace('"', "")
    if "report-type=feedback-report" in ctype or FEEDBACK_TYPE in mail.content_types:
        raise NotABounce(f"this is {FEEDBACK}", "feedback")
    if ("report-type=disposition-notification" in ctype
            or "message/disposition-notification" in mail.content_types):
        raise NotABounce(f"this is {RECEIPT}", "receipt")


def check_other(mail: Mail) -> None:
    """Raise :class:`NotABounce` for a provider's own complaint form or an automatic
    reply; asked only of a message in which no reader found a delivery status."""
    if (re.search(r"(?im)^X-HmXmrOriginalRecipient:", mail.raw)
            or re.search(r'"notificationType"\s*:\s*"Complaint"', mail.notification)):
        raise NotABounce(f"this is {FEEDBACK}", "feedback")
    if _BOUNCE_SENDER.search(mail.sender) or mail.header("x-failed-recipients"):
        return
    auto = mail.header("auto-submitted").lower()
    if (auto.startswith("auto-replied") or mail.header("x-autoreply")
            or mail.header("x-autorespond") or mail.header("x-autoresponder")
            or "auto_reply" in mail.header("precedence").lower()
            or mail.header("x-apple-action").lower() == "vacation"
            or _AUTO_SUBJECT.search(mail.subject)):
        raise NotABounce(f"this is {AUTO_REPLY}", "auto-reply")
