"""A message's headers as evidence: hops by tier, who vouched for what, gateway bypass.

Hops are attributed to tiers from the newest one back (the admin holds the delivered
message, so the last hops are the topology's mailbox tier): a hop stays in the topology
while its receiving host maps to the same tier or one upstream of it in the flow. The
sender's side (its own servers, another tenant's Exchange Online) is left unattributed,
even when its hosts match a vendor pattern.

Authentication-Results (RFC 8601) count only from writers the topology declares, which is
DomainDetective's ``TrustedAuthServIds`` idea made automatic by the topology, and only when
written after the message entered that writer's tier (an MTA prepends its trace fields,
RFC 5321 §4.4).

Vendor verdicts are trusted by who wrote them, not by position: Exchange Online does not
prepend its block (X-Forefront-Antispam-Report, X-Microsoft-Antispam-Mailbox-Delivery,
X-MS-Exchange-Organization-*): it sits below the original From/To/Subject, after the
Received chain (reference/graph-exo.md, "Where Exchange Online writes its headers"), and
Message Header Analyzer reads it by name. So the tenant's verdict is the inbound one
(``DIR:INB``) of a message whose Received chain reaches the tenant's inbound host, whose
``X-MS-Exchange-CrossTenant-Id`` (when the topology knows the tenant's id) is the tenant's
own; a copy above it, or one of another tenant or direction, is the sender's and could be
forged — it is flagged, with the reason. Proofpoint's X-Proofpoint-Spam-Details likewise:
the gateway's when the chain passes through it, the lowest copy if there are several.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

from mailtrace.core.evidence import Observed
from mailtrace.core.findings import Finding
from mailtrace.intake.received import Hop, delays, hops, strip_comments
from mailtrace.intake.tiers import EXO_OUTBOUND, HostMap, normalize_host
from mailtrace.topology.model import ExchangeOnlineTier

SLOW_HOP_SECONDS = 300.0
MAX_FIELD = 2048  # characters of one verdict field read: real ones are a few hundred
SKEW_TOLERANCE = 2.0
SMART_SEARCH_WINDOW = timedelta(hours=1)

_KNOWN_FIELDS = {
    "received", "from", "to", "subject", "date", "message-id", "return-path",
    "authentication-results", "delivered-to", "mime-version", "x-forefront-antispam-report",
    "x-proofpoint-spam-details", "x-proofpoint-guid", "arc-authentication-results",
}
_AUTH_METHODS = ("spf", "dkim", "dmarc", "compauth")

#: Every tag this module can emit (the catalog declares each one).
TAGS: frozenset[str] = frozenset({
    "HDR_NO_RECEIVED", "HDR_RECEIVED_UNREADABLE", "HDR_HOP_SLOW", "HDR_CLOCK_SKEW",
    "HDR_HOST_CLOCK_SKEW", "HDR_EXO_INBOX_OVERRIDE",
    "HDR_GATEWAY_PASSED", "HDR_GATEWAY_BYPASSED", "HDR_AUTH_RESULTS", "HDR_AUTH_FAILED",
    "HDR_AUTH_UNTRUSTED", "HDR_HEADER_UNTRUSTED", "HDR_EXO_FILTER_VERDICT", "HDR_EXO_JUNKED",
    "HDR_EXO_FILTERING_SKIPPED", "HDR_PROOFPOINT_VERDICT", "HDR_PROOFPOINT_FLAGGED",
    "HDR_PROOFPOINT_TRACE",
})
_JUNK_CATS = {"SPM", "HSPM", "PHSH", "HPHSH", "HPHISH", "MALW", "BULK", "SPOOF", "DIMP",
              "GIMP", "UIMP", "OSPM", "AMP", "SAP", "INTOS"}
_JUNK_SFV = {"SPM", "SKS", "BLK", "SKB"}


@dataclass(frozen=True)
class AuthResults:
    position: int
    writer: str | None  # authserv-id as written; None when the writer left it out
    results: dict[str, str]
    details: dict[str, str]
    tier: str | None
    trusted: bool
    why: str


@dataclass
class HeaderAnalysis:
    hops: list[Hop]
    tiers: list[str | None]
    delays: list[float | None]
    auth: list[AuthResults]
    exchange_online: dict[str, str] | None
    proofpoint: dict[str, str | None] | None
    bypassed_gateway: bool
    findings: list[Finding] = field(default_factory=list)


def check_is_header_set(fields: list[tuple[str, str]]) -> bool:
    return any(name.lower() in _KNOWN_FIELDS for name, _ in fields)


# --- hops ------------------------------------------------------------------------------------

def attribute_hops(chain: list[Hop], hosts: HostMap) -> list[str | None]:
    mapped = [hosts.tier_of(h.by_host) for h in chain]
    tiers: list[str | None] = [None] * len(chain)
    start = next((i for i in range(len(chain) - 1, -1, -1) if mapped[i] is not None), None)
    if start is None:
        return tiers
    current = mapped[start]
    for i in range(start, -1, -1):
        tier = mapped[i]
        if tier is None or current is None:
            break
        if tier != current and not hosts.upstream(tier, current):
            break
        tiers[i] = current = tier
        client = chain[i].from_rdns or normalize_host(chain[i].from_host) or ""
        if EXO_OUTBOUND.search(client):
            break  # handed over by another tenant: what came before is the sender's
    return tiers


def _entries(chain: list[Hop], tiers: list[str | None]) -> dict[str, int]:
    """Header position of the Received field where mail entered each tier."""
    entry: dict[str, int] = {}
    for hop, tier in zip(chain, tiers, strict=True):
        if tier is not None and tier not in entry:
            entry[tier] = hop.position
    return entry


def _holder(position: int, chain: list[Hop], tiers: list[str | None]) -> str | None:
    """The tier that held the message when the field at ``position`` was written: that of
    the newest hop whose Received field sits below it."""
    below = [(hop.position, tier) for hop, tier in zip(chain, tiers, strict=True)
             if hop.position > position]
    return min(below)[1] if below else None


# --- Authentication-Results ---------------------------------------------------------------

def parse_auth_results(value: str) -> tuple[str | None, dict[str, str], dict[str, str]]:
    """(authserv-id, method → result, details) of one Authentication-Results field."""
    text, _ = strip_comments(re.sub(r"\s+", " ", value[:MAX_FIELD]))
    parts = [p.strip() for p in text.split(";")]
    writer: str | None = None
    if parts and parts[0] and "=" not in parts[0].split()[0]:
        writer = parts[0].split()[0]
        parts = parts[1:]
    results: dict[str, str] = {}
    details: dict[str, str] = {}
    for part in parts:
        found = re.match(r"([A-Za-z0-9_.-]+)(?:/\d+)?\s*=\s*([A-Za-z0-9_.-]+)", part)
        if not found:
            continue
        method, result = found.group(1).lower(), found.group(2).lower()
        if method in _AUTH_METHODS:
            results[method] = f"{results[method]},{result}" if method in results else result
        for key, prop in re.findall(r"(reason|action|[a-z]+\.[a-z-]+)\s*=\s*([^\s;]+)",
                                    part[found.end():], re.I):
            details.setdefault(f"{method}.{key.lower()}", prop)
    return writer, results, details


def _auth(fields: list[tuple[str, str]], chain: list[Hop], tiers: list[str | None],
          hosts: HostMap) -> list[AuthResults]:
    entry = _entries(chain, tiers)
    out = []
    for position, (name, value) in enumerate(fields):
        if name.lower() != "authentication-results":
            continue
        writer, results, details = parse_auth_results(value)
        if writer is not None:
            tier = hosts.authserv_tier(writer)
        else:
            tier = _holder(position, chain, tiers)
        if hosts.topology is None:
            trusted, why = False, "no --topology: no writer is trusted"
        elif tier is None:
            trusted = False
            why = (f"{writer} is not a host of the topology" if writer
                   else "no authserv-id, and written outside the topology")
        elif tier not in entry:
            trusted, why = False, f"{tier} is not in this message's Received chain"
        elif position > entry[tier]:
            trusted, why = False, f"written before the message reached {tier} (forgeable)"
        else:
            trusted, why = True, f"written by {tier} after the message reached it"
        out.append(AuthResults(position, writer, results, details, tier, trusted, why))
    return out


def _auth_findings(auth: list[AuthResults]) -> list[Finding]:
    found = []
    for a in auth:
        writer = a.writer or "(no authserv-id)"
        evidence = [Observed({"writer": writer, "tier": a.tier, "trusted": a.trusted,
                              "why": a.why, **a.results, **a.details})]
        if not a.trusted:
            found.append(Finding("HDR_AUTH_UNTRUSTED", {"writer": writer, "why": a.why},
                                 evidence))
            continue
        args = {"writer": writer, "tier": a.tier,
                **{m: a.results.get(m, "none") for m in _AUTH_METHODS}}
        found.append(Finding("HDR_AUTH_RESULTS", args, evidence, about=a.tier))
        failed = [f"{m}={a.results[m]}" for m in ("dmarc", "compauth")
                  if a.results.get(m, "").split(",")[0] in ("fail", "softfail", "permerror")]
        if failed:
            found.append(Finding("HDR_AUTH_FAILED",
                                 {"writer": writer, "tier": a.tier, "failed": ", ".join(failed)},
                                 evidence, about=a.tier))
    return found


# --- vendor headers ---------------------------------------------------------------------------

def _topmost(fields: list[tuple[str, str]], name: str) -> tuple[int, str] | None:
    for position, (field_name, value) in enumerate(fields):
        if field_name.lower() == name:
            return position, re.sub(r"\s+", " ", value[:MAX_FIELD]).strip()
    return None


def _fields(fields: list[tuple[str, str]], name: str) -> list[tuple[int, str]]:
    """Every occurrence of a field, top to bottom, whitespace folded and bounded."""
    return [(position, re.sub(r"\s+", " ", value[:MAX_FIELD]).strip())
            for position, (field_name, value) in enumerate(fields)
            if field_name.lower() == name]


def _last(fields: list[tuple[str, str]], name: str) -> str | None:
    found = _fields(fields, name)
    return found[-1][1] if found else None


def _reaches(kind: str, hosts: HostMap, entry: dict[str, int]) -> tuple[str | None, str | None]:
    """(the tier of this kind the Received chain reaches, or None with why not)."""
    tier = hosts.of_kind(kind)
    if tier is None:
        return None, f"the topology has no {kind} tier"
    if tier not in entry:
        return None, (f"the Received chain does not reach {tier}: not written by it "
                      "(forgeable)")
    return tier, None


_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def _tenant_id(hosts: HostMap) -> str | None:
    """The tenant's id, when the topology declares it (its Graph access's tenant_id)."""
    topology = hosts.topology
    if topology is None:
        return None
    for tier in topology.tiers.values():
        if isinstance(tier, ExchangeOnlineTier) and tier.graph and tier.graph.tenant_id and \
                _GUID.fullmatch(tier.graph.tenant_id):
            return tier.graph.tenant_id.lower()
    return None


def _exo_trust(fields: list[tuple[str, str]], hosts: HostMap, entry: dict[str, int]
               ) -> tuple[bool, str]:
    """Is the tenant's block of headers the tenant's own? By who wrote it: the chain
    reaches the tenant, and the cross-tenant id is the tenant's (when known)."""
    if hosts.topology is None:
        return True, "unverified: no --topology"
    tier, why_not = _reaches("exchange-online", hosts, entry)
    if tier is None:
        return False, str(why_not)
    reasons = [f"written by {tier}: the Received chain reaches its inbound host"]
    cross = _last(fields, "x-ms-exchange-crosstenant-id")
    known = _tenant_id(hosts)
    if known and cross:
        if cross.lower() != known:
            return False, (f"X-MS-Exchange-CrossTenant-Id {cross} is not the tenant's "
                           f"({known}): another tenant's verdict")
        reasons.append("X-MS-Exchange-CrossTenant-Id is the tenant's")
    auth_as = _last(fields, "x-ms-exchange-organization-authas")
    if auth_as:
        reasons.append(f"AuthAs {auth_as}")
    return True, ", ".join(reasons)


#: X-Microsoft-Antispam-Mailbox-Delivery's ``dest``: where the mailbox put the message.
DEST = {"I": "the inbox", "J": "Junk Email", "D": "Deleted Items", "C": "a custom folder"}


#: X-Microsoft-Antispam-Mailbox-Delivery's ``OFR``: what decided the mailbox delivery.
OFR = {"customrules": "the recipient's own rules (Outlook or mailbox rules)",
       "spamfilterauthj": "Exchange Online's filter with the mailbox's junk email settings",
       "trustedsenderslist": "the recipient's Safe Senders list"}


def _override(delivery: str) -> str:
    """Why the mailbox delivered a message filtered as spam to the inbox, as far as
    X-Microsoft-Antispam-Mailbox-Delivery says (its ``OFR`` field), else the documented
    reasons ("Anti-spam message headers in Microsoft 365"; a sender on the recipient's
    Safe Senders list is delivered to the inbox)."""
    ofr = next((v.strip() for k, _, v in (i.partition(":") for i in delivery.split(";"))
                if k.strip().lower() == "ofr"), None)
    if ofr:
        return f"OFR:{ofr}: {OFR.get(ofr.lower(), 'a mailbox-level override')}"
    return "a mailbox-level override: the recipient's Safe Senders list or a mailbox rule"


def _forefront(fields: list[tuple[str, str]], hosts: HostMap, entry: dict[str, int]
               ) -> tuple[dict[str, str] | None, list[Finding]]:
    copies = _fields(fields, "x-forefront-antispam-report")
    if not copies:
        return None, []

    def parse(value: str) -> dict[str, str]:
        return {k.strip().upper(): v.strip() for k, _, v in
                (item.partition(":") for item in value.split(";")) if k.strip()}

    inbound = [(pos, v) for pos, v in copies if parse(v).get("DIR", "INB").upper() == "INB"]
    found: list[Finding] = []
    # The tenant appends its block below the original headers: of the inbound copies, the
    # lowest is its own; any other is the sender's (or forged).
    own = inbound[-1] if inbound else None
    for position, value in copies:
        if own is not None and position == own[0]:
            continue
        why = ("another copy above the tenant's own block: the sender's, or forged"
               if own is not None else
               f"direction {parse(value).get('DIR', '?')}: written by the sending side")
        found.append(Finding("HDR_HEADER_UNTRUSTED",
                             {"header": "X-Forefront-Antispam-Report", "why": why},
                             [Observed({"header": "X-Forefront-Antispam-Report",
                                        "value": value[:500], "why": why})]))
    if own is None:
        return parse(copies[-1][1]), found
    value = own[1]
    parsed = parse(value)
    trusted, why = _exo_trust(fields, hosts, entry)
    delivery = _last(fields, "x-microsoft-antispam-mailbox-delivery") or ""
    dest = next((v.strip().upper() for k, _, v in (i.partition(":") for i in delivery.split(";"))
                 if k.strip().lower() == "dest"), None)
    if dest:
        parsed["DEST"] = dest
    evidence = [Observed({"header": "X-Forefront-Antispam-Report", "value": value[:500],
                          "mailbox_delivery": delivery[:300] or None, "why": why})]
    if not trusted:
        return parsed, [*found, Finding("HDR_HEADER_UNTRUSTED", {
            "header": "X-Forefront-Antispam-Report", "why": why}, evidence)]
    tier = hosts.of_kind("exchange-online")
    folder = DEST.get(dest or "", f"folder code {dest}" if dest else "a folder not recorded")
    args = {"scl": parsed.get("SCL", "?"), "sfv": parsed.get("SFV", "?"),
            "cat": parsed.get("CAT", "?"), "ipv": parsed.get("IPV", "?"),
            "sfs": parsed.get("SFS", "?"), "folder": folder}
    found.append(Finding("HDR_EXO_FILTER_VERDICT", args, evidence, about=tier))
    scl = args["scl"]
    scl_value = int(scl) if re.fullmatch(r"-?\d+", scl) else None
    junk = (scl_value is not None and scl_value >= 5) or args["sfv"] in _JUNK_SFV \
        or args["cat"] in _JUNK_CATS
    if dest == "I" and junk:
        # The mailbox's own decision is the last word: a spam verdict the mailbox still
        # delivered to the inbox (the recipient's Safe Senders list, a mailbox rule).
        found.append(Finding("HDR_EXO_INBOX_OVERRIDE", {**args, "why": _override(delivery)},
                             evidence, about=tier))
    elif dest == "J" or junk:
        found.append(Finding("HDR_EXO_JUNKED", args, evidence, about=tier))
    elif scl_value == -1:
        found.append(Finding("HDR_EXO_FILTERING_SKIPPED", {"sfv": args["sfv"]}, evidence,
                             about=tier))
    return parsed, found


def _queue_id(chain: list[Hop], tiers: list[str | None], tier: str) -> Hop | None:
    """The hop whose id is Proofpoint's queue id: the sendmail hop after the filter
    (``from pps.filterd``), else a sendmail-stamped one, else the first with an id."""
    mine = [h for h, t in zip(chain, tiers, strict=True) if t == tier and h.queue_id]

    def rank(h: Hop) -> int:
        if (h.from_host or "").lower() == "pps.filterd":
            return 0
        if re.match(r"8\.\d", h.by_comment or "") or "ppe hosted" in (h.by_comment or "").lower():
            return 1
        return 2

    return min(mine, key=rank) if mine else None


def _smart_search(hosts: HostMap, tier: str | None, guid: str | None, qid: str | None,
                  hop: Hop | None) -> str:
    spec = hosts.proofpoint(tier) if tier else None
    if spec is not None and spec.flavour == "essentials":
        return (f"Proofpoint Essentials has no public message-trace API: search its "
                f"console's message log for queue id {qid or '?'}")
    base = spec.api.url if spec is not None and spec.api else "https://<cluster>.pphosted.com:10000"
    params = {"guid": guid} if guid else {"qid": qid} if qid else {}
    if hop is not None and hop.at is not None:
        params["from"] = (hop.at - SMART_SEARCH_WINDOW).strftime("%Y-%m-%dT%H:%M:%S%z")
        params["to"] = (hop.at + SMART_SEARCH_WINDOW).strftime("%Y-%m-%dT%H:%M:%S%z")
    return f"Smart Search: GET {base.rstrip('/')}/rest/v1/pss/filter?{urlencode(params)}"


def _pp_trust(hosts: HostMap, entry: dict[str, int]) -> tuple[bool, str]:
    """Proofpoint writes X-Proofpoint-Spam-Details as it passes the message on: its own
    when the Received chain passes through the topology's Proofpoint tier."""
    if hosts.topology is None:
        return True, "unverified: no --topology"
    tier, why_not = _reaches("proofpoint", hosts, entry)
    if tier is None:
        return False, str(why_not)
    return True, f"written by {tier}: the Received chain passes through it"


def _proofpoint(fields: list[tuple[str, str]], chain: list[Hop], tiers: list[str | None],
                hosts: HostMap, entry: dict[str, int]
                ) -> tuple[dict[str, str | None] | None, list[Finding]]:
    copies = _fields(fields, "x-proofpoint-spam-details")
    details = copies[-1] if copies else None  # the gateway's own: the lowest copy
    guid_field = _topmost(fields, "x-proofpoint-guid")
    tier = hosts.of_kind("proofpoint")
    queue_hop = _queue_id(chain, tiers, tier) if tier else None
    if details is None and guid_field is None and queue_hop is None:
        return None, []
    found: list[Finding] = []
    guid = guid_field[1].split()[0] if guid_field and guid_field[1] else None
    qid = queue_hop.queue_id if queue_hop else None
    lookup = _smart_search(hosts, tier, guid, qid, queue_hop)
    out: dict[str, str | None] = {"guid": guid, "queue_id": qid, "lookup": lookup}
    if guid or qid:
        found.append(Finding("HDR_PROOFPOINT_TRACE",
                             {"guid": guid or "(none)", "qid": qid or "(none)", "lookup": lookup},
                             [Observed({"guid": guid, "queue_id": qid,
                                        "received": queue_hop.raw if queue_hop else None})],
                             about=tier))
    if details is not None:
        _, value = details
        scores = dict(re.findall(r"([A-Za-z_]+)=(\S+)", value))
        out.update({"rule": scores.get("rule"), "details": value})
        trusted, why = _pp_trust(hosts, entry)
        if len(copies) > 1:
            trusted, why = False, (f"{len(copies)} copies: the gateway writes one; the others "
                                   "came with the message (forgeable)")
        evidence = [Observed({"header": "X-Proofpoint-Spam-Details", "value": value[:500],
                              "why": why})]
        if not trusted:
            found.append(Finding("HDR_HEADER_UNTRUSTED",
                                 {"header": "X-Proofpoint-Spam-Details", "why": why}, evidence))
        else:
            args = {"rule": scores.get("rule", "?"), "spamscore": scores.get("spamscore", "?"),
                    "phishscore": scores.get("phishscore", "?")}
            found.append(Finding("HDR_PROOFPOINT_VERDICT", args, evidence, about=tier))
            if "notspam" not in args["rule"].lower() and args["rule"] != "?":
                found.append(Finding("HDR_PROOFPOINT_FLAGGED", args, evidence, about=tier))
    return out, found


# --- the analysis ------------------------------------------------------------------------------

def _skewed(gaps: list[float | None], slow: float) -> dict[int, tuple[int, int]]:
    """The hops whose own stamp is the outlier: a delay over ``slow`` next to a negative
    one (beyond the tolerance). Both delays share that hop's stamp (RFC 5321 §4.4: each
    host stamps its own time), so its host's clock is off — ahead when the long delay
    comes first, behind when the negative one does — and neither delay is a slow hop.
    Maps the outlier's position to the positions of the two delays."""
    dated = [i for i, g in enumerate(gaps) if g is not None]
    outliers: dict[int, tuple[int, int]] = {}
    for a, b in itertools.pairwise(dated):
        first, second = gaps[a], gaps[b]
        assert first is not None and second is not None
        if ((first > slow and second < -SKEW_TOLERANCE)
                or (first < -SKEW_TOLERANCE and second > slow)) and a not in outliers:
            used = {x for pair in outliers.values() for x in pair}
            if a not in used and b not in used:
                outliers[a] = (a, b)
    return outliers


def _host_skew(chain: list[Hop], gaps: list[float | None], at: int, pair: tuple[int, int]
               ) -> Finding:
    before, after = (gaps[i] for i in pair)
    assert before is not None and after is not None
    hop = chain[at]
    ahead = before > 0
    return Finding("HDR_HOST_CLOCK_SKEW", {
        "index": hop.index, "by": hop.by_host or "?",
        "direction": "ahead of" if ahead else "behind",
        "skew_s": round(min(abs(before), abs(after)), 1),
        "before_s": before, "after_s": after,
        "transit_s": round(before + after, 1)},
        [Observed({"received": chain[i].raw[:500], "delay_s": gaps[i]}) for i in pair])


def _hop_findings(chain: list[Hop], tiers: list[str | None], gaps: list[float | None],
                  slow: float, topology: bool) -> list[Finding]:
    found = []
    skewed = _skewed(gaps, slow)
    explained = {i for pair in skewed.values() for i in pair}
    for position, (hop, tier, gap) in enumerate(zip(chain, tiers, gaps, strict=True)):
        evidence = [Observed({"received": hop.raw[:500]})]
        where = tier or ("outside the topology" if topology else "no --topology")
        if hop.problem is not None:
            found.append(Finding("HDR_RECEIVED_UNREADABLE",
                                 {"index": hop.index, "problem": hop.problem}, evidence))
        if position in skewed:
            found.append(_host_skew(chain, gaps, position, skewed[position]))
        if gap is None or position in explained:
            continue
        if gap > slow:
            found.append(Finding("HDR_HOP_SLOW", {"index": hop.index, "by": hop.by_host or "?",
                                                  "tier": where, "delay_s": gap},
                                 evidence, about=tier))
        elif gap < -SKEW_TOLERANCE:
            found.append(Finding("HDR_CLOCK_SKEW", {"index": hop.index, "by": hop.by_host or "?",
                                                    "delay_s": gap}, evidence))
    return found


def _bypass(chain: list[Hop], tiers: list[str | None], hosts: HostMap
            ) -> tuple[bool, list[Finding]]:
    if hosts.topology is None:
        return False, []
    found = []
    bypassed = False
    for tier, spec in hosts.topology.tiers.items():
        if spec.kind != "exchange-online" or tier not in tiers:
            continue
        gateways = hosts.gateways_before(tier)
        if not gateways:
            continue
        first = tiers.index(tier)
        entry = chain[first]
        client = entry.from_rdns or entry.from_host
        passed = any(t in gateways for t in tiers[:first]) or hosts.tier_of(client) in gateways
        evidence = [Observed({"received": entry.raw[:500], "tier": tier})]
        names = ", ".join(gateways)
        if passed:
            found.append(Finding("HDR_GATEWAY_PASSED", {"gateway": names, "tier": tier},
                                 evidence, about=tier))
            continue
        bypassed = True
        source = " ".join(x for x in (client, f"[{entry.from_ip}]" if entry.from_ip else None)
                          if x) or "an unnamed client"
        found.append(Finding("HDR_GATEWAY_BYPASSED",
                             {"gateway": names, "tier": tier, "entry": source},
                             evidence, about=tier))
    return bypassed, found


def analyze(fields: list[tuple[str, str]], hosts: HostMap,
            slow: float = SLOW_HOP_SECONDS) -> HeaderAnalysis:
    chain = hops(fields)
    tiers = attribute_hops(chain, hosts)
    gaps = delays(chain)
    entry = _entries(chain, tiers)
    auth = _auth(fields, chain, tiers, hosts)
    findings: list[Finding] = []
    if not chain:
        findings.append(Finding("HDR_NO_RECEIVED", {}, []))
    findings += _hop_findings(chain, tiers, gaps, slow, hosts.topology is not None)
    bypassed, found = _bypass(chain, tiers, hosts)
    findings += found
    findings += _auth_findings(auth)
    exo, found = _forefront(fields, hosts, entry)
    findings += found
    pp, found = _proofpoint(fields, chain, tiers, hosts, entry)
    findings += found
    return HeaderAnalysis(chain, tiers, gaps, auth, exo, pp, bypassed, findings)
