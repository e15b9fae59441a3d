"""DMARC (RFC 7489): the record, the organizational domain, report destinations, and
what the policy means for the declared senders.

``parse_record(text)`` never raises: problems are listed on the result. Tags of the
DMARCbis revision (``np``, ``psd``, ``t``) are understood; other unknown tags are
ignored, as RFC 7489 §6.3 requires. The organizational domain comes from the public
suffix list bundled with the ``publicsuffixlist`` package, so it works offline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from publicsuffixlist import PSLFILE, PublicSuffixList

from mailtrace.mailauth.tags import TagListError, parse_tags

POLICIES = ("none", "quarantine", "reject")
_MAILTO = re.compile(r"^mailto:([^!@\s]+@([^!\s]+?))(?:!\d+[kmgt]?)?$", re.IGNORECASE)


@cache
def _rules() -> dict[str, tuple[str, ...]]:
    """The rules of the list shipped inside the package (no network), by their last label,
    each as the list's own parser reads its line: the text before the first space."""
    by_label: dict[str, list[str]] = {}
    with open(PSLFILE, encoding="utf-8") as fh:
        for line in fh:
            rule = line.split(" ")[0].strip().lower()
            if rule and not rule.startswith("//"):
                by_label.setdefault(rule.rsplit(".", 1)[-1].lstrip("!"), []).append(rule)
    return {label: tuple(rules) for label, rules in by_label.items()}


def _idna(name: str) -> str | None:
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return None


@cache
def _psl(tld: str) -> PublicSuffixList:
    """The list, for names under ``tld``: only its rules that end in that label (in either
    form: Unicode, or IDNA's ``xn--``), with the IDNA form of each non-ASCII rule beside it,
    as the list's own parser adds them. No other rule can match such a name, and reading
    these few rather than all of them takes a millisecond, not a tenth of a second of every
    verify."""
    rules = list(_rules().get(tld, ()))
    if tld.startswith("xn--"):
        rules += [rule for label, group in _rules().items()
                  if not label.isascii() and _idna(label) == tld for rule in group]
    encoded = [("!" if rule.startswith("!") else "") + form for rule in rules
               if not rule.isascii() and (form := _idna(rule.lstrip("!"))) is not None]
    return PublicSuffixList(source=rules + encoded, accept_encoded_idn=False)


def organizational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the registered domain under the public suffix (the domain itself
    when it is a public suffix, or unknown to the list)."""
    domain = domain.lower().rstrip(".")
    try:
        org = _psl(domain.rsplit(".", 1)[-1]).privatesuffix(domain)
    except Exception:
        org = None
    return str(org) if org else domain


@dataclass(frozen=True)
class ReportUri:
    uri: str
    address: str | None  # the mailbox of a mailto: URI
    domain: str | None


@dataclass(frozen=True)
class DmarcRecord:
    text: str
    policy: str | None = None  # p
    subdomain_policy: str | None = None  # sp (defaults to p)
    nonexistent_policy: str | None = None  # np (DMARCbis)
    pct: int = 100
    adkim: str = "r"
    aspf: str = "r"
    rua: tuple[ReportUri, ...] = ()
    ruf: tuple[ReportUri, ...] = ()
    testing: bool = False  # t=y (DMARCbis)
    tags: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return self.policy is not None and not self.problems

    def effective_policy(self, subdomain: bool) -> str:
        """The policy applied to failing mail (pct and t=y soften it to none-ish only
        for a share of mail; see :meth:`enforcing`)."""
        policy = self.subdomain_policy if subdomain and self.subdomain_policy else self.policy
        return policy or "none"

    def enforcing(self, subdomain: bool = False) -> bool:
        return self.effective_policy(subdomain) in ("quarantine", "reject") and self.pct > 0 \
            and not self.testing

    def as_json(self) -> dict[str, Any]:
        return {"record": self.text, "p": self.policy, "sp": self.subdomain_policy,
                "np": self.nonexistent_policy, "pct": self.pct, "adkim": self.adkim,
                "aspf": self.aspf, "rua": [u.uri for u in self.rua],
                "ruf": [u.uri for u in self.ruf], "t": "y" if self.testing else "n",
                "problems": list(self.problems)}


def is_dmarc(text: str) -> bool:
    return re.match(r"^\s*v\s*=\s*DMARC1\s*(;|$)", text) is not None


def _uris(value: str, tag: str, problems: list[str]) -> tuple[ReportUri, ...]:
    out = []
    for raw in value.split(","):
        uri = raw.strip()
        if not uri:
            continue
        match = _MAILTO.match(uri)
        if match:
            out.append(ReportUri(uri, match.group(1), match.group(2).lower().rstrip(".")))
        elif re.match(r"^[a-z][a-z0-9+.-]*:", uri, re.IGNORECASE):
            out.append(ReportUri(uri, None, None))  # another scheme: kept, not checked
        else:
            problems.append(f"{tag}: {uri!r} is not a URI")
    return tuple(out)


def _choice(tags: dict[str, str], tag: str, allowed: tuple[str, ...], default: str | None,
            problems: list[str]) -> str | None:
    if tag not in tags:
        return default
    value = tags[tag].lower()
    if value not in allowed:
        problems.append(f"{tag}={tags[tag]} (expected one of {', '.join(allowed)})")
        return default
    return value


def parse_record(text: str) -> DmarcRecord:
    problems: list[str] = []
    if not is_dmarc(text):
        return DmarcRecord(text, problems=("does not start with v=DMARC1",))
    if not text.isascii():
        problems.append("non-ASCII characters in the record")
    try:
        tags = {k.lower(): v for k, v in parse_tags(text).items()}
    except TagListError as exc:
        return DmarcRecord(text, problems=(str(exc),))
    policy = _choice(tags, "p", POLICIES, None, problems)
    if "p" not in tags:
        problems.append("no p= tag (RFC 7489 §6.3: required)")
    sp = _choice(tags, "sp", POLICIES, None, problems)
    np = _choice(tags, "np", POLICIES, None, problems)
    adkim = _choice(tags, "adkim", ("r", "s"), "r", problems) or "r"
    aspf = _choice(tags, "aspf", ("r", "s"), "r", problems) or "r"
    pct = 100
    if "pct" in tags:
        if tags["pct"].isdigit() and 0 <= int(tags["pct"]) <= 100:
            pct = int(tags["pct"])
        else:
            problems.append(f"pct={tags['pct']} (expected 0 to 100)")
    testing = _choice(tags, "t", ("y", "n"), "n", problems) == "y"
    rua = _uris(tags.get("rua", ""), "rua", problems)
    ruf = _uris(tags.get("ruf", ""), "ruf", problems)
    return DmarcRecord(text, policy, sp, np, pct, adkim, aspf, rua, ruf, testing, tags,
                       tuple(problems))


def external_destinations(domain: str, record: DmarcRecord) -> list[tuple[ReportUri, str]]:
    """(URI, the name to query) for report destinations outside the domain's organizational
    domain, which must authorize it (RFC 7489 §7.1):
    ``<domain>._report._dmarc.<destination domain>``."""
    org = organizational_domain(domain)
    out = []
    for uri in (*record.rua, *record.ruf):
        if uri.domain is None or organizational_domain(uri.domain) == org:
            continue
        out.append((uri, f"{domain}._report._dmarc.{uri.domain}"))
    return out


def aligned(policy_domain: str, identifier: str, mode: str) -> bool:
    """RFC 7489 §3.1: strict = the same domain; relaxed = the same organizational domain."""
    identifier = identifier.lower().rstrip(".")
    policy_domain = policy_domain.lower().rstrip(".")
    if mode == "s":
        return identifier == policy_domain
    return organizational_domain(identifier) == organizational_domain(policy_domain)
