"""MTA-STS (RFC 8461) and SMTP TLS reporting (RFC 8460): the records, the policy, and
whether the policy's ``mx`` patterns cover every MX host.

Pure parsing and evaluation here; the policy is fetched over HTTPS by
:func:`mailtrace.clients.mta_sts.fetch_policy` (``requests``, certificate checked
against the name ``mta-sts.<domain>``, redirects refused as §3.3 requires).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mailtrace.core.evidence import Evidence, Observed
from mailtrace.core.findings import Finding
from mailtrace.mailauth.lookup import Answer
from mailtrace.mailauth.tags import TagListError, parse_tags

MAX_AGE_LIMIT = 31557600  # RFC 8461 §3.2: one year
MODES = ("enforce", "testing", "none")
_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")


@dataclass(frozen=True)
class Policy:
    version: str | None = None
    mode: str | None = None
    mx: tuple[str, ...] = ()
    max_age: int | None = None
    problems: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version, "mode": self.mode, "mx": list(self.mx),
                "max_age": self.max_age, "problems": list(self.problems)}


def parse_policy(text: str) -> Policy:
    """RFC 8461 §3.2: ``key: value`` lines (CRLF or LF); never raises."""
    problems: list[str] = []
    values: dict[str, list[str]] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            problems.append(f"line {line[:40]!r} is not key: value")
            continue
        values.setdefault(key.strip().lower(), []).append(value.strip())
    def first(key: str) -> str | None:
        found = values.get(key)
        return found[0] if found else None

    version = first("version")
    if version != "STSv1":
        problems.append(f"version: {version} (expected STSv1)")
    mode = first("mode")
    if mode not in MODES:
        problems.append(f"mode: {mode} (expected enforce, testing or none)")
    raw_age = first("max_age")
    max_age = None
    if raw_age is not None and raw_age.isdigit() and int(raw_age) <= MAX_AGE_LIMIT:
        max_age = int(raw_age)
    else:
        problems.append(f"max_age: {raw_age} (expected 0 to {MAX_AGE_LIMIT} seconds)")
    mx = tuple(p.lower().rstrip(".") for p in values.get("mx", []))
    if not mx and mode != "none":
        problems.append("no mx: line")
    return Policy(version, mode, mx, max_age, tuple(problems))


def mx_covered(host: str, patterns: tuple[str, ...]) -> bool:
    """RFC 8461 §4.1: a pattern matches the host exactly, or ``*.`` stands for exactly
    one leftmost label."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            label, _, rest = host.partition(".")
            if label and rest == pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def record_id(text: str) -> tuple[str | None, str | None]:
    """(id, problem) of an ``_mta-sts`` TXT record (RFC 8461 §3.1)."""
    try:
        tags = parse_tags(text)
    except TagListError as exc:
        return None, str(exc)
    if next(iter(tags), None) != "v" or tags["v"] != "STSv1":
        return None, "does not start with v=STSv1"
    ident = tags.get("id")
    if ident is None or not _ID.match(ident):
        return None, f"id={ident} (expected 1 to 32 letters or digits)"
    return ident, None


def tlsrpt_problem(text: str) -> str | None:
    try:
        tags = parse_tags(text)
    except TagListError as exc:
        return str(exc)
    if next(iter(tags), None) != "v" or tags["v"] != "TLSRPTv1":
        return "does not start with v=TLSRPTv1"
    uris = [u.strip() for u in tags.get("rua", "").split(",") if u.strip()]
    if not uris:
        return "no rua= destination"
    bad = [u for u in uris if not u.lower().startswith(("mailto:", "https:"))]
    return f"rua {', '.join(bad)} is neither mailto: nor https:" if bad else None


@dataclass(frozen=True)
class PolicyFetch:
    url: str
    status: int | None = None
    body: str | None = None
    content_type: str | None = None
    error: str | None = None  # connection, TLS or certificate failure, a redirect

    def evidence(self) -> Observed:
        return Observed({"url": self.url, "status": self.status,
                         "content_type": self.content_type, "error": self.error,
                         "body": (self.body or "")[:2000]})


@dataclass(frozen=True)
class MtaStsCheck:
    domain: str
    record: Answer  # _mta-sts.<domain> TXT
    tlsrpt: Answer  # _smtp._tls.<domain> TXT
    mx_hosts: tuple[str, ...] = ()
    fetch: PolicyFetch | None = None
    expected_mode: str | None = None
    extra: list[Evidence] = field(default_factory=list)

    def evaluate(self) -> list[Finding]:
        return evaluate(self)


def evaluate(check: MtaStsCheck) -> list[Finding]:
    domain = check.domain
    findings: list[Finding] = []
    findings.extend(_tlsrpt(check))
    rec = check.record
    if rec.status == "error":
        return [*findings, Finding("AUTH_LOOKUP_FAILED", {
            "name": rec.name.rstrip("."), "type": "TXT", "error": rec.error or ""},
            [rec.evidence()])]
    records = [t for t in rec.data if t.startswith("v=STSv1")]
    if not records:
        if check.expected_mode not in (None, "none"):
            findings.append(Finding("MTASTS_MISSING", {"domain": domain,
                                                       "expected": check.expected_mode},
                                    [rec.evidence()]))
        return findings
    ident, problem = record_id(records[0]) if len(records) == 1 else (
        None, f"{len(records)} records")
    if problem:
        findings.append(Finding("MTASTS_RECORD_INVALID", {"domain": domain,
                                                          "problem": problem},
                                [rec.evidence()]))
    fetch = check.fetch
    if fetch is None:
        return findings
    ev = [rec.evidence(), fetch.evidence()]
    if fetch.error or fetch.status != 200 or fetch.body is None:
        findings.append(Finding("MTASTS_POLICY_UNREACHABLE", {
            "domain": domain, "url": fetch.url,
            "error": fetch.error or f"HTTP {fetch.status}"}, ev))
        return findings
    policy = parse_policy(fetch.body)
    ctype = (fetch.content_type or "").split(";")[0].strip().lower()
    problems = list(policy.problems)
    if ctype != "text/plain":
        problems.append(f"Content-Type {fetch.content_type} (expected text/plain)")
    ev.append(Observed({"policy": policy.as_json()}))
    if problems:
        findings.append(Finding("MTASTS_POLICY_INVALID", {"domain": domain,
                                                          "problem": "; ".join(problems)}, ev))
    uncovered = [h for h in check.mx_hosts if not mx_covered(h, policy.mx)]
    if uncovered and policy.mode in ("enforce", "testing"):
        findings.append(Finding("MTASTS_MX_NOT_COVERED", {
            "domain": domain, "hosts": ", ".join(uncovered), "mode": policy.mode,
            "patterns": ", ".join(policy.mx)}, ev))
    if check.expected_mode and policy.mode != check.expected_mode:
        findings.append(Finding("MTASTS_MODE_DIFFERS", {"domain": domain,
                                                        "found": policy.mode or "(none)",
                                                        "expected": check.expected_mode}, ev))
    if not problems and not uncovered:
        findings.append(Finding("MTASTS_OK", {"domain": domain, "mode": policy.mode,
                                              "id": ident or ""}, ev))
    return findings


def _tlsrpt(check: MtaStsCheck) -> list[Finding]:
    rec = check.tlsrpt
    if rec.status == "error":
        return []
    records = [t for t in rec.data if t.startswith("v=TLSRPTv1")]
    if not records:
        return [Finding("TLSRPT_MISSING", {"domain": check.domain}, [rec.evidence()])]
    problem = tlsrpt_problem(records[0]) if len(records) == 1 else f"{len(records)} records"
    if problem:
        return [Finding("TLSRPT_INVALID", {"domain": check.domain, "problem": problem},
                        [rec.evidence()])]
    return [Finding("TLSRPT_OK", {"domain": check.domain}, [rec.evidence()])]
