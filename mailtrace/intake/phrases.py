"""Well-known failure phrases and the RFC 3463 code each one means, for bounces that give
no code at all (Exchange 2003, Lotus Notes, qmail, mobile carriers, and many reports that
quote only ``550 User unknown``).

The phrases are the wordings the common MTAs write for each RFC 3463 condition (their
sources' message tables: Exim ``deliver.c``/``route.c``, qmail's ``qmail-remote``,
Postfix ``smtp_proto.c``, Sendmail's ``usersmtp.c``, Exchange's NDR texts); the code is
the condition's RFC 3463 code, under the class the report gives (5 failed, 4 delayed).
A code found this way is marked *inferred* wherever it is shown.
"""

from __future__ import annotations

import re

_MAX = 4000


def _p(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


#: (pattern, subject.detail), first match wins: the specific conditions before the
#: general ones ("mailbox full" before "mailbox unavailable").
PHRASES: tuple[tuple[re.Pattern[str], str], ...] = (
    # X.4.6 routing loop (RFC 3463 §3.5)
    (_p(r"mail(?:ing)? loop|loops back to myself|too many (?:hops|\"?received)"
        r"|hop count exceeded|maximum hop count|routing loop"), "4.6"),
    # X.2.2 mailbox full
    (_p(r"mailbox (?:is )?full|over ?quota|quota (?:exceeded|exceed|full)|exceeded (?:the )?"
        r"(?:storage|quota|mailbox)|mailbox (?:size )?limit|insufficient (?:disk )?space"
        r"|disk quota|mailfolder is full|user(?:'s)? (?:mailbox|disk) (?:is )?full"
        r"|number of messages in recipient's mailbox exceeded|mailbox has exceeded"
        r"|too many messages in (?:this|the) mailbox|is over (?:its|the) (?:storage )?limit"),
     "2.2"),
    # X.3.4 / X.2.3 message too big
    (_p(r"message (?:is )?too (?:big|large)|message size exceeds|exceeds (?:the )?"
        r"(?:maximum|message) size|size limit|message length exceeds"), "3.4"),
    # X.1.6 moved
    (_p(r"has moved|no longer (?:valid|available|in use|at this)|address has changed"),
     "1.6"),
    # X.2.1 disabled / suspended
    (_p(r"account (?:is )?(?:disabled|suspended|inactive|deactivated|locked|expired)"
        r"|mailbox (?:is )?(?:disabled|suspended|inactive|not active|unavailable)"
        r"|user (?:is )?(?:disabled|suspended|inactive)|deactivated|suspended"
        r"|not accepting (?:any )?mail|is disabled"), "2.1"),
    # X.1.1 bad destination mailbox
    (_p(r"user unknown|unknown user|no such (?:user|mailbox|recipient|address|person)"
        r"|(?:user|mailbox|recipient|address)(?: \S+)? (?:does not|doesn't) exist"
        r"|unknown (?:recipient|mailbox|local[- ]part|address)|invalid (?:recipient|mailbox|user"
        r"|address)|recipient (?:not found|unknown|rejected|invalid)|user not found"
        r"|mailbox not found|not (?:a )?valid (?:mailbox|user|recipient|address)"
        r"|addressee unknown|no mailbox here|not listed in|is not a known user"
        r"|unrouteable address|bad destination mailbox|could not be found"
        r"|email account (?:that )?you tried to reach does not exist|doesn't have a "
        r"|(?:user|recipient) (?:is )?not (?:local|here|known)|no account by that name"
        r"|undeliverable address|unknown or illegal|recipient name is not recognized"), "1.1"),
    # X.1.2 / X.4.4 the destination domain does not resolve
    (_p(r"host (?:or domain name )?(?:not found|unknown)|host \S{1,255} not found"
        r"|domain (?:not found|does not exist"
        r"|doesn'?t exist"
        r"|name not found)|unknown (?:host|domain)|no (?:mx|mail exchanger|such domain)"
        r"|name service error|name or service not known|nxdomain|unresolvable"
        r"|all host address lookups failed|mx records point to non-existent hosts"
        r"|unroutable domain|domain (?:is )?(?:invalid|not resolvable)|dns error"),
     "4.4"),
    # X.7.1 refused on policy: relay, block lists, spam, content
    (_p(r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited)|not permitted to "
        r"relay|relay not allowed|we do not relay|blacklist|blocklist|black list|block list"
        r"|listed (?:in|at|on)|spamhaus|spamcop|\brbl\b|\bdnsbl\b|blocked|spam|virus"
        r"|rejected (?:by|for) (?:policy|content)|content (?:rejected|filter)|policy"
        r"|not authori[sz]ed|access denied|refused|rejected"), "7.1"),
    # X.4.7 expired
    (_p(r"expired|retry time(?:out)? (?:not reached|exceeded)|too long in (?:the )?queue"
        r"|been in the queue too long|giving up|gave up|(?:could )?not (?:be )?delivered within"
        r"|delivery time"), "4.7"),
    # X.4.1 / X.4.2 no answer, bad connection
    (_p(r"connection (?:timed out|refused|reset|lost|closed)|timed out|timeout"
        r"|no route to host|network is unreachable|couldn't connect|could not connect"
        r"|unable to connect|can't connect|cannot connect|failed to connect"
        r"|socket error|lost connection|no answer"), "4.1"),
)


def infer(text: str, klass: str) -> str | None:
    """The RFC 3463 code a text's wording means, in the given class (``5`` or ``4``);
    None when no known phrase is there."""
    sample = text[:_MAX]
    for pattern, rest in PHRASES:
        if pattern.search(sample):
            return f"{klass}.{rest}"
    return None
