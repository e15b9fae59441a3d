"""DragonFly Mail Agent (dma): "This is the DragonFly Mail Agent v0.13 at host.", then
"There was an error delivering your mail to <address>." and the remote server's reply
introduced by "host [ip] did not like our RCPT TO:" (dma's ``net.c``), before "Message
headers follow." or "Original message follows.".
"""

from __future__ import annotations

import re

from mailtrace.intake.readers.base import Found, Reader, never
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, Block, clean, span, statuses

_START = re.compile(r"This is the DragonFly Mail Agent", re.I)
_TO = re.compile(rf"There was an error delivering your mail to <?({ADDR})>?", re.I)


def _read(mail: Mail) -> Found | None:
    if not _START.search(mail.notification[:3000]):
        return None
    lines = span(mail.lines, _START)
    found: list[Block] = []
    for line in lines:
        if match := _TO.search(line):
            found.append(Block(match.group(1), []))
        elif found and line.strip():
            found[-1].lines.append(line.strip())
    for b in found:
        b.lines = [clean(" ".join(b.lines))]
    return Found(statuses(found, "failed")) if found else None


READER = Reader("dragonfly", never, _read)
