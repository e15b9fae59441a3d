"""Which code explains a recipient's failure, when a bounce carries several.

A report can name a recipient's outcome in several places: the DSN ``Status`` field (the
reporting server's summary, RFC 3464 §2.3.4), the enhanced code in the remote server's
reply quoted in ``Diagnostic-Code`` (§2.3.6) or in the human-readable text, and a
wrapper's own code around a reply it quotes (Amazon SES: ``5.1.0 - Unknown address error
550-'5.7.1 ...'``). They disagree often enough to matter: a report's ``Status: 5.1.1`` over
a remote ``550 5.7.1 IP address blacklisted`` sends the admin after a mailbox that exists.

Every code found is kept, with where it came from; the one chosen is the most specific
one that explains the failure (RFC 3463 §3: subject and detail refine the class):

1. a code whose class agrees with the remote server's reply code beats one that does not
   (RFC 3463 §2: the class says the same thing as the reply's first digit);
2. a code that says *why* beats the ones that only say *when* or *that*: ``X.4.7``
   (expired; RFC 3463 §3.5: "the code for the actual problem found when delivery was
   attempted should be returned rather than this code"), ``X.0.0`` and ``X.Y.0``
   (§3.1: "used for all errors for which only the class of the error is known");
3. the remote server's own words beat the reporting server's summary, and a reply a
   wrapper quotes beats the wrapper's code;
4. among equals, the first one found.

Bounces without any code get one inferred from the text (:mod:`mailtrace.intake.phrases`)
or, failing that, the class alone (``5.0.0``/``4.0.0``, RFC 3463 §3.1), marked inferred.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailtrace.intake.phrases import infer

#: An enhanced status code (RFC 3463 §2: class.subject.detail; subjects 0-7), with the
#: SMTP reply code before it when there is one (``550-5.7.1``, ``550 5.7.1``).
_CODE = re.compile(
    r"(?<![\d.A-Za-z])(?:([245]\d\d)[ -]{1,2}['\"]?(?:#\s?)?)?\(?#?"
    r"([245])\.([0-7])\.(\d{1,3})(?!\d|\.\d)"
)
_REPLY = re.compile(r"(?<![\d.#A-Za-z-])([245][0-5]\d)(?=[ -]|$)")
_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_MAX = 4000

#: Where a code was read, most trusted first for the same specificity.
SOURCES = ("reply", "diagnostic", "text", "status", "phrase", "class")


@dataclass(frozen=True)
class Code:
    """One code a report gives for a recipient, and where it was read."""

    code: str
    source: str  # status | diagnostic | text | reply | phrase | class (see SOURCES)
    reply: str | None = None  # the SMTP reply code it came with
    inferred: bool = False

    @property
    def klass(self) -> str:
        return self.code[0]

    @property
    def specificity(self) -> int:
        """0 for ``X.0.0`` (class only), 1 for ``X.Y.0`` / ``X.0.Z``, 2 otherwise."""
        _, subject, detail = self.code.split(".")
        return (subject != "0") + (detail != "0")

    @property
    def says_why(self) -> bool:
        """False for the codes that say only *when* (expired) or *that* (class only)."""
        return self.specificity == 2 and self.code[1:] != ".4.7"

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "source": self.source}
        if self.reply:
            out["reply"] = self.reply
        if self.inferred:
            out["inferred"] = True
        return out


def codes_in(text: str, source: str) -> list[Code]:
    """Every enhanced status code in a text, in order; a code right after a reply code
    (``550 5.7.1``) is that server's reply (source ``reply``)."""
    masked = _IPV4.sub("#.#.#.#", text[:_MAX])
    out = []
    for m in _CODE.finditer(masked):
        code = f"{m.group(2)}.{m.group(3)}.{m.group(4)}"
        reply = m.group(1)
        out.append(Code(code, "reply" if reply and source != "status" else source, reply))
    return out


def reply_in(text: str) -> str | None:
    """The SMTP reply code a text quotes (RFC 5321 §4.2: three digits, then space or
    hyphen), the last one when a dialogue shows several."""
    masked = _IPV4.sub("#.#.#.#", text[:_MAX])
    found = [m.group(1) for m in _REPLY.finditer(masked) if m.group(1)[0] in "45"]
    return found[-1] if found else None


def candidates(status: str | None, diagnostic: str, text: str, action: str | None
               ) -> list[Code]:
    """Every code a recipient's record gives, in the order they are read."""
    found: list[Code] = []
    if status:
        found += [Code(c.code, "status") for c in codes_in(status, "status")[:1]]
    found += codes_in(diagnostic, "diagnostic")
    if text and text != diagnostic:
        found += codes_in(text, "text")
    if not found:
        words = f"{diagnostic} {text}"
        reply = reply_in(words)
        klass = reply[0] if reply else "4" if (action or "").lower() == "delayed" else "5"
        guess = infer(words, klass)
        if guess is not None:
            found.append(Code(guess, "phrase", reply, inferred=True))
        elif (action or "").lower() in ("failed", "delayed") or reply:
            found.append(Code(f"{klass}.0.0", "class", reply, inferred=True))
    return _unique(found)


def _unique(codes: list[Code]) -> list[Code]:
    seen: dict[str, int] = {}
    out: list[Code] = []
    for c in codes:
        at = seen.get(c.code)
        if at is None:
            seen[c.code] = len(out)
            out.append(c)
        elif SOURCES.index(c.source) < SOURCES.index(out[at].source):
            out[at] = Code(c.code, c.source, c.reply or out[at].reply, c.inferred)
    return out


def choose(codes: list[Code], reply: str | None = None) -> Code | None:
    """The code that explains the failure (see the module's rules)."""
    if not codes:
        return None
    reply = reply or next((c.reply for c in codes if c.reply), None)

    def rank(item: tuple[int, Code]) -> tuple[int, int, int, int, int]:
        at, c = item
        agrees = reply is None or c.klass == reply[0]
        return (agrees, not c.inferred, c.says_why, c.specificity,
                -SOURCES.index(c.source) * 1000 - at)

    return max(enumerate(codes), key=rank)[1]
