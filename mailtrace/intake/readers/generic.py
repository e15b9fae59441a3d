"""The last resort: a bounce whose wording no reader knows.

It is read only when the message looks like a bounce (sent by a mailer daemon or
postmaster, a failure subject, an ``X-Failed-Recipients`` field) and its text says a
delivery failed, and only for the shapes every text bounce shares (RFC 3464 §1's
"human-readable" part): a recipient's address on a line of its own, or leading a line
with its reason (``address: reason``, ``address ... reason``, ``address (reason)``,
``Recipient: address``), the reason under it; else a sentence naming it ("could not be
delivered to <address>"); else the addresses of the ``X-Failed-Recipients`` field, with
the report's text as the reason. The address of the server that wrote the bounce is
never a recipient.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, never
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, addresses_in, blocks, clean, statuses

_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery|mailerdaemon|bounce", re.I)
_SUBJECT = re.compile(
    r"undeliver|undelivered|returned mail|delivery (?:status|failure|failed|notification"
    r"|problem|error)|failure notice|mail delivery|could not be delivered|non[- ]?delivery"
    r"|bounce|rejected|failed delivery|delivery has failed|mail system error", re.I)
_FAILURE = re.compile(
    r"could not be delivered|undeliverable|not be delivered|delivery (?:has )?failed"
    r"|failed permanently|permanent (?:error|failure)|unable to deliver|was not delivered"
    r"|couldn't be delivered|returned to sender|following address(?:es)? failed"
    r"|delivery (?:to the following|error|problem)|could not deliver|has not (?:yet )?been "
    r"delivered|has been delayed|did not reach|rejected|failed to deliver|delivery failure"
    r"|errors? (?:has )?(?:occurred|delivering|sending|while)|not delivered|undelivered"
    r"|could not be sent|wasn't delivered|couldn't be delivered", re.I)
_HEADER_LINE = re.compile(r"^[ \t]*(?:From|Reply-To|Sender|Return-Path|Received|Message-Id|"
                          r"Date|Subject|Cc|Bcc|Errors-To|X-[\w-]+)\s*:", re.I)
_LEADING = re.compile(
    rf"^[ \t]*(?:[*>-]{{1,3}}\s*)?(?:(?:Recipient|Failed recipient|Original recipient|Rcpt to|To|"
    rf"Address|Recipient address)\s*:\s*)?\"?<?({ADDR})>?\"?"
    rf"(?:\s*|\s*:\s+\S.*|\s*:\s*|\s*\.\.\.?\s*.*|\s+--?\s+.*|\s+[\[(].*[\])]\s*)$", re.I)
#: An address in angle brackets opening a line, whatever follows ("<a@b>  delivery
#: failed; will not continue trying").
_BRACKETED = re.compile(rf"^[ \t]*(?:[*>-]{{1,3}}\s*)?<({ADDR})>(?:\s|:|$)")
_SENTENCE = re.compile(
    rf"\b(?:deliver|sen[dt]|transmit|forward)\w{{0,5}}(?: \w{{1,12}}){{0,3}} to:?\s*<?({ADDR})>?",
    re.I)


def looks_like_a_bounce(mail: Mail) -> bool:
    return bool(_SENDER.search(mail.sender) or _SUBJECT.search(mail.subject)
                or mail.header("x-failed-recipients"))


def _own(mail: Mail) -> set[str]:
    """The addresses of the server that wrote the bounce: never its recipients. (The
    bounce's To, the original sender, may be a recipient too: a message to oneself.)"""
    fields = " ".join(mail.header(n) for n in ("from", "sender", "reply-to"))
    return {a.lower() for a in addresses_in(fields)}


def _read(mail: Mail) -> Found | None:
    if not looks_like_a_bounce(mail) or not _FAILURE.search(
            mail.notification[:20000] + " " + mail.subject):
        return None
    own = _own(mail)

    def anchor(line: str) -> str | None:
        if _HEADER_LINE.match(line):
            return None
        found = _LEADING.match(line) or _BRACKETED.match(line)
        if found is None or found.group(1).lower() in own:
            return None
        return found.group(1)

    action = "delayed" if re.search(r"delayed|not yet been delivered|will (?:be )?retr",
                                    mail.notification[:5000], re.I) else "failed"
    found = blocks(mail.lines, anchor, paragraph=True)
    if found:
        return Found(statuses(found, action))
    text = clean(mail.notification)[:1000]
    named = [m.group(1) for line in mail.lines if (m := _SENTENCE.search(line))
             and m.group(1).lower() not in own]
    failed = named or addresses_in(mail.header("x-failed-recipients"))
    recipients = [RecipientStatus(a, action, None, text, None, None)
                  for a in dict.fromkeys(failed)]
    return Found(recipients) if recipients else None


READER = Reader("text", never, _read)
