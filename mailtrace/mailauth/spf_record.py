"""SPF records without I/O: the RFC 7208 §12 grammar, and macro expansion (§7).

``parse_record(text)`` turns the text of one TXT record into a :class:`SpfRecord` or
raises :class:`SpfSyntaxError` with the offending term; it never does a DNS lookup
(unlike checkdmarc, which resolves while parsing), so it is testable on any input.
``expand(macro_string, env)`` expands macros for one evaluation.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote

#: Mechanisms that cost one of the 10 DNS-querying terms (RFC 7208 §4.6.4), with redirect.
LOOKUP_MECHANISMS = frozenset({"a", "mx", "ptr", "exists", "include"})
MECHANISMS = frozenset({"all", "ip4", "ip6", *LOOKUP_MECHANISMS})
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
_VERSION = re.compile(r"^v=spf1(?: |$)", re.IGNORECASE)
_MODIFIER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_MACRO = re.compile(r"%\{([A-Za-z])([0-9]*)(r?)([.+,/_=-]*)\}", re.IGNORECASE)
_CIDR4 = re.compile(r"^(0|[1-9][0-9]?)$")
_CIDR6 = re.compile(r"^(0|[1-9][0-9]{0,2})$")
_TOPLABEL = re.compile(
    r"^(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9])$"
)
_EXP_ONLY = frozenset("crt")
_LETTERS = frozenset("slodiphv") | _EXP_ONLY


class SpfSyntaxError(ValueError):
    """A record (or macro) that does not follow the RFC 7208 grammar: a permerror."""

    def __init__(self, message: str, term: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.term = term


@dataclass(frozen=True)
class Mechanism:
    qualifier: str  # "+", "-", "~", "?"
    name: str  # lowercase: all, include, a, mx, ptr, ip4, ip6, exists
    domain_spec: str | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    cidr4: int = 32
    cidr6: int = 128
    text: str = ""

    @property
    def result(self) -> str:
        return QUALIFIERS[self.qualifier]

    @property
    def costs_lookup(self) -> bool:
        return self.name in LOOKUP_MECHANISMS


@dataclass(frozen=True)
class Modifier:
    name: str  # lowercase
    value: str
    text: str = ""


@dataclass(frozen=True)
class SpfRecord:
    text: str
    mechanisms: tuple[Mechanism, ...] = ()
    redirect: str | None = None
    exp: str | None = None
    unknown: tuple[Modifier, ...] = field(default=())

    @property
    def lookup_terms(self) -> int:
        """Terms of this record alone that cost a DNS lookup (redirect included)."""
        return sum(m.costs_lookup for m in self.mechanisms) + (self.redirect is not None)

    @property
    def all(self) -> Mechanism | None:
        return next((m for m in self.mechanisms if m.name == "all"), None)


def is_spf(text: str) -> bool:
    """Is this TXT record an SPF record (RFC 7208 §4.5: "v=spf1" then a space or the end)?"""
    return bool(_VERSION.match(text))


@lru_cache(maxsize=4096)
def parse_record(text: str) -> SpfRecord:
    """Parse the text of one SPF record; raise :class:`SpfSyntaxError` if it is invalid.
    (A parsed record is immutable: the same text is parsed once, however many domains'
    records include it.)"""
    if not is_spf(text):
        raise SpfSyntaxError("not an SPF record (no v=spf1 version)")
    if not text.isascii() or any(not 0x20 <= ord(c) <= 0x7E for c in text):
        bad = next(c for c in text if not 0x20 <= ord(c) <= 0x7E)
        raise SpfSyntaxError(f"character {bad!r} (U+{ord(bad):04X}) is not allowed in SPF")
    mechanisms: list[Mechanism] = []
    modifiers: dict[str, Modifier] = {}
    unknown: list[Modifier] = []
    for term in text[6:].split(" "):
        if not term:
            continue
        mod = _modifier(term)
        if mod is not None:
            if mod.name in ("redirect", "exp"):
                if mod.name in modifiers:
                    raise SpfSyntaxError(f"modifier {mod.name}= appears twice", term)
                modifiers[mod.name] = mod
            else:
                unknown.append(mod)
            continue
        mechanisms.append(_mechanism(term))
    redirect = modifiers.get("redirect")
    exp = modifiers.get("exp")
    return SpfRecord(text, tuple(mechanisms), redirect.value if redirect else None,
                     exp.value if exp else None, tuple(unknown))


def _modifier(term: str) -> Modifier | None:
    name, sep, value = term.partition("=")
    if not sep or ":" in name or "/" in name:
        return None
    if not _MODIFIER_NAME.match(name):
        raise SpfSyntaxError(f"invalid modifier name {name!r}", term)
    name = name.lower()
    if name in ("redirect", "exp"):
        check_domain_spec(value, term)
    else:
        check_macro_string(value, term)
    return Modifier(name, value, term)


def parse_term(term: str) -> Mechanism:
    """One directive, e.g. ``include:spf.protection.outlook.com`` (raises SpfSyntaxError)."""
    if not term or " " in term or not term.isascii():
        raise SpfSyntaxError(f"{term!r} is not one SPF term", term)
    return _mechanism(term)


def _mechanism(term: str) -> Mechanism:
    qualifier = "+"
    body = term
    if body[0] in QUALIFIERS:
        qualifier, body = body[0], body[1:]
    match = re.match(r"^([A-Za-z0-9]+)", body)
    name = match.group(1).lower() if match else ""
    rest = body[len(name):]
    if name not in MECHANISMS:
        raise SpfSyntaxError(f"unknown mechanism {body.split(':')[0]!r}", term)
    if name == "all":
        if rest:
            raise SpfSyntaxError("'all' takes no argument", term)
        return Mechanism(qualifier, name, text=term)
    if name in ("ip4", "ip6"):
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"{name} needs an address", term)
        return Mechanism(qualifier, name, network=_network(name, rest[1:], term), text=term)
    if name in ("include", "exists"):
        if not rest.startswith(":") or len(rest) == 1:
            raise SpfSyntaxError(f"{name} needs a domain", term)
        check_domain_spec(rest[1:], term)
        return Mechanism(qualifier, name, rest[1:], text=term)
    # a, mx, ptr: [":" domain-spec] [dual-cidr] (ptr: no cidr)
    domain: str | None = None
    cidr = ""
    if rest.startswith(":"):
        spec = rest[1:]
        if name != "ptr":
            spec, cidr = _split_cidr(spec)
        if not spec:
            raise SpfSyntaxError(f"{name}: empty domain", term)
        check_domain_spec(spec, term)
        domain = spec
    elif rest.startswith("/") and name != "ptr":
        cidr = rest
    elif rest:
        raise SpfSyntaxError(f"unexpected {rest!r} after {name}", term)
    cidr4, cidr6 = _dual_cidr(cidr, term)
    return Mechanism(qualifier, name, domain, cidr4=cidr4, cidr6=cidr6, text=term)


def _split_cidr(spec: str) -> tuple[str, str]:
    """Split "domain/24//64" into the domain and its dual-cidr suffix."""
    match = re.search(r"(/[0-9]*)?(//[0-9]*)?$", spec)
    if match and match.group(0):
        return spec[: match.start()], match.group(0)
    return spec, ""


def _dual_cidr(cidr: str, term: str) -> tuple[int, int]:
    if not cidr:
        return 32, 128
    match = re.fullmatch(r"(?:/([0-9]+))?(?://([0-9]+))?", cidr)
    if not match:
        raise SpfSyntaxError(f"invalid CIDR length {cidr!r}", term)
    four, six = match.group(1), match.group(2)
    if four is not None and (not _CIDR4.match(four) or int(four) > 32):
        raise SpfSyntaxError(f"invalid IPv4 CIDR length /{four}", term)
    if six is not None and (not _CIDR6.match(six) or int(six) > 128):
        raise SpfSyntaxError(f"invalid IPv6 CIDR length //{six}", term)
    return (int(four) if four is not None else 32, int(six) if six is not None else 128)


def _network(kind: str, text: str, term: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    address, sep, length = text.partition("/")
    pattern = _CIDR4 if kind == "ip4" else _CIDR6
    top = 32 if kind == "ip4" else 128
    if sep and (not pattern.match(length) or int(length) > top):
        raise SpfSyntaxError(f"invalid CIDR length /{length}", term)
    try:
        ip = ipaddress.IPv4Address(address) if kind == "ip4" else ipaddress.IPv6Address(address)
    except ValueError:
        raise SpfSyntaxError(f"{address!r} is not an {kind} address", term) from None
    prefix = int(length) if sep else top
    net: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.ip_network(
        f"{ip}/{prefix}", strict=False
    )
    return net


# -- macro strings ------------------------------------------------------------------------------


def check_macro_string(text: str, term: str | None = None, *, exp: bool = False) -> None:
    """RFC 7208 §7.1 macro-string syntax; ``exp`` allows the letters c, r, t."""
    i = 0
    while i < len(text):
        c = text[i]
        if c != "%":
            if not 0x21 <= ord(c) <= 0x7E and not (exp and c == " "):
                raise SpfSyntaxError(f"character {c!r} not allowed in a macro string", term)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt in ("%", "_", "-"):
            i += 2
            continue
        match = _MACRO.match(text, i)
        if not match:
            raise SpfSyntaxError(f"invalid macro at {text[i:i + 12]!r}", term)
        letter = match.group(1).lower()
        if letter not in _LETTERS or (letter in _EXP_ONLY and not exp):
            raise SpfSyntaxError(f"macro letter {match.group(1)!r} not allowed here", term)
        if match.group(2) and int(match.group(2)) == 0:
            raise SpfSyntaxError("a macro may not keep 0 labels", term)
        i = match.end()


def check_domain_spec(text: str, term: str | None = None) -> None:
    """domain-spec = macro-string domain-end (RFC 7208 §7.1)."""
    if not text:
        raise SpfSyntaxError("empty domain", term)
    check_macro_string(text, term)
    if text.endswith("}") and _MACRO.search(text) and text[text.rfind("%{"):].endswith("}"):
        tail = text[text.rfind("%{"):]
        if _MACRO.fullmatch(tail):
            return  # domain-end = macro-expand
    labels = text.rstrip(".").split(".") if text.endswith(".") else text.split(".")
    if len(labels) < 2 or not _TOPLABEL.match(labels[-1]):
        raise SpfSyntaxError(f"{text!r} does not end in a valid top label", term)


@dataclass(frozen=True)
class MacroEnv:
    """What the macros of one check_host() call expand to (RFC 7208 §7.2)."""

    sender: str  # s: <local>@<domain>
    domain: str  # d: the current domain
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    helo: str
    validated: str = "unknown"  # p: filled in by the evaluator when used
    receiver: str = "unknown"
    timestamp: int = 0

    @property
    def local(self) -> str:
        return self.sender.rpartition("@")[0] or "postmaster"

    @property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2]

    def value(self, letter: str) -> str:
        ip = self.ip
        if letter == "s":
            return self.sender
        if letter == "l":
            return self.local
        if letter == "o":
            return self.sender_domain
        if letter == "d":
            return self.domain
        if letter == "i":
            if isinstance(ip, ipaddress.IPv4Address):
                return str(ip)
            return ".".join(ip.exploded.replace(":", ""))
        if letter == "p":
            return self.validated
        if letter == "v":
            return "in-addr" if isinstance(ip, ipaddress.IPv4Address) else "ip6"
        if letter == "h":
            return self.helo
        if letter == "c":
            return str(ip)
        if letter == "r":
            return self.receiver
        if letter == "t":
            return str(self.timestamp)
        raise SpfSyntaxError(f"unknown macro letter {letter!r}")


def uses_p_macro(text: str) -> bool:
    return any(m.group(1).lower() == "p" for m in _MACRO.finditer(text))


def has_macros(text: str) -> bool:
    return "%" in text


def expand(text: str, env: MacroEnv, *, exp: bool = False) -> str:
    """Expand a macro-string (RFC 7208 §7.3, §7.4); raises SpfSyntaxError."""
    check_macro_string(text, exp=exp)
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt in "%_-":
            out.append({"%": "%", "_": " ", "-": "%20"}[nxt])
            i += 2
            continue
        match = _MACRO.match(text, i)
        assert match is not None  # checked above
        letter, digits, reverse, delims = match.groups()
        value = env.value(letter.lower())
        parts = re.split("[" + re.escape(delims or ".") + "]", value)
        if reverse:
            parts.reverse()
        if digits:
            parts = parts[-int(digits):]
        piece = ".".join(parts)
        if letter.isupper():
            piece = quote(piece, safe="-._~")
        out.append(piece)
        i = match.end()
    return "".join(out)


def shorten(domain: str) -> str:
    """RFC 7208 §7.3: an expanded domain longer than 253 octets loses left labels."""
    domain = domain.rstrip(".")
    while len(domain) > 253 and "." in domain:
        domain = domain.split(".", 1)[1]
    return domain
