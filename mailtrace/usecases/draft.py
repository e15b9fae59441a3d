"""``mailtrace init --domain D``: draft a topology from what public DNS already shows.

Read through the engine's DNS client (the resolvers and ``--connect-to`` rules of the
run): the MX (which service receives the mail: the gateway, or Exchange Online itself),
the SPF record (its includes and other terms, its ``all``), the DKIM selectors that exist
(Exchange Online's ``selector1``/``selector2`` CNAMEs and common others), DMARC's
policy, MTA-STS (the record, then the policy's mode over HTTPS), and the name that says a
tenant is behind it all: Exchange Online's inbound host from the MX or its classic form
(``<domain-with-dashes>.mail.protection.outlook.com``, looked up), its tenant from a DKIM
CNAME target. :func:`collect` asks; :func:`compose` drafts from what was seen, with no
I/O, so tests can call it on hand-built observations.

Nothing here changes anything; every question is one DNS query or one HTTPS GET.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from mailtrace import DISTRIBUTION, version
from mailtrace.clients.dns import DnsClient, DnsObservation, Outcome, Server
from mailtrace.clients.mta_sts import PolicyFetcher
from mailtrace.core.address import check_domain
from mailtrace.core.network import Redirects
from mailtrace.engine.settings import Options
from mailtrace.mailauth.dmarc import is_dmarc
from mailtrace.mailauth.dmarc import parse_record as parse_dmarc
from mailtrace.mailauth.lookup import txt_text
from mailtrace.mailauth.mta_sts import PolicyFetch, parse_policy
from mailtrace.mailauth.spf_record import SpfSyntaxError, is_spf
from mailtrace.mailauth.spf_record import parse_record as parse_spf
from mailtrace.report.draft import TierDraft, TopologyDraft, Value, commented
from mailtrace.topology import providers
from mailtrace.topology.providers import Provider

#: Selectors looked for: Exchange Online's two, then those common senders document
#: (Google Workspace "google", Mailchimp/Mandrill "k1"-"k3" and "mandrill", SendGrid
#: "s1"/"s2", Zendesk, and the generic names many mail servers default to).
DKIM_SELECTORS = ("selector1", "selector2", "google", "default", "dkim", "mail", "k1",
                  "k2", "k3", "s1", "s2", "mandrill", "zendesk1", "zendesk2")
EXO_SELECTORS = ("selector1", "selector2")


class DraftError(Exception):
    """Nothing sound can be drafted (no MX, no answer, a mailbox tier that cannot be
    told): the reason, and the exit code (2: the domain does not exist; 3: could not
    tell)."""

    def __init__(self, message: str, exit_code: int = 3) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class DnsView:
    """What :func:`collect` saw of a domain."""

    domain: str
    mx: DnsObservation
    txt: DnsObservation
    dmarc: DnsObservation
    mta_sts: DnsObservation
    autodiscover: DnsObservation
    dkim: dict[str, DnsObservation]
    resolvers: list[str]
    #: The classic Exchange Online inbound host's A lookup (when asked).
    exo_host: DnsObservation | None = None
    policy: PolicyFetch | None = None
    drafted_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


# --- what DNS says -------------------------------------------------------------------


def _where(obs: DnsObservation) -> str:
    return obs.server.label


def _texts(obs: DnsObservation) -> list[str]:
    return [txt_text(r.data) for r in obs.records("TXT")]


def mx_hosts(obs: DnsObservation) -> list[tuple[int, str]]:
    """(preference, host) of an MX answer, lowest preference first."""
    out = []
    for record in obs.records("MX"):
        pref, _, host = record.data.partition(" ")
        if pref.isdigit():
            out.append((int(pref), host.lower().rstrip(".")))
    return sorted(out)


def _mx_source(view: DnsView) -> str:
    shown = ", ".join(f"{p} {h}" for p, h in mx_hosts(view.mx))
    return f"MX {view.domain}: {shown} ({_where(view.mx)})"


def dkim_targets(view: DnsView) -> dict[str, str | None]:
    """Selectors that exist, with the CNAME target each leads to (None: a TXT key)."""
    found: dict[str, str | None] = {}
    for selector, obs in view.dkim.items():
        name = f"{selector}._domainkey.{view.domain}."
        alias = next((r.data.lower().rstrip(".") for r in obs.answer
                      if r.type == "CNAME" and r.name == name), None)
        keys = [t for t in _texts(obs) if "p=" in t.replace(" ", "")]
        if alias is not None or (obs.outcome is Outcome.ANSWER and keys):
            found[selector] = alias
    return found


def exo_evidence(view: DnsView) -> list[str]:
    """The records that say the domain's mailboxes are in Exchange Online."""
    evidence = []
    for _, host in mx_hosts(view.mx):
        if providers.EXO_HOST.match(host):
            evidence.append(f"MX {host}")
    spf = next((t for t in _texts(view.txt) if is_spf(t)), None)
    if spf is not None:
        evidence += [f"SPF include:{inc}" for inc in providers.EXO_SPF
                     if f"include:{inc}" in spf.lower().split()]
    for selector, target in dkim_targets(view).items():
        if target and providers.exo_tenant_from_dkim(target):
            evidence.append(f"DKIM {selector} -> {target}")
    alias = [r.data.lower().rstrip(".") for r in view.autodiscover.records("CNAME")]
    if "autodiscover.outlook.com" in alias:
        evidence.append(f"CNAME autodiscover.{view.domain} -> autodiscover.outlook.com")
    return evidence


# --- asking ----------------------------------------------------------------------------


async def collect(domain: str, options: Options) -> DnsView:
    """Ask DNS (and the MTA-STS policy host) everything :func:`compose` reads."""
    domain = check_domain(domain)
    deadline = time.monotonic() + options.timeout
    client = DnsClient([Server("resolver", e.address, e.port) for e in options.resolvers],
                       Redirects(tuple(options.connect_to)))

    async def ask(name: str, rdtype: str) -> DnsObservation:
        return await client.lookup(name, rdtype, deadline)

    # Everything at once, the inbound host's address included (it is needed unless the MX
    # is Exchange Online itself); the MTA-STS policy only once its record says there is one.
    mx, txt, dmarc, sts, autodiscover, exo_host, *dkim = await asyncio.gather(
        ask(domain, "MX"), ask(domain, "TXT"), ask(f"_dmarc.{domain}", "TXT"),
        ask(f"_mta-sts.{domain}", "TXT"), ask(f"autodiscover.{domain}", "CNAME"),
        ask(providers.classic_exo_host(domain), "A"),
        *(ask(f"{s}._domainkey.{domain}", "TXT") for s in DKIM_SELECTORS))
    view = DnsView(domain, mx, txt, dmarc, sts, autodiscover,
                   dict(zip(DKIM_SELECTORS, dkim, strict=True)),
                   [s.label for s in client.resolvers], exo_host=exo_host)
    if any(t.startswith("v=STSv1") for t in _texts(sts)):
        view.policy = await _policy(domain, options, deadline)
    return view


async def _policy(domain: str, options: Options, deadline: float) -> PolicyFetch:
    fetcher = PolicyFetcher(Redirects(tuple(options.connect_to)), options.ca_file)
    try:
        return await asyncio.wait_for(fetcher.fetch(domain),
                                      max(deadline - time.monotonic(), 0.1))
    except TimeoutError:
        return PolicyFetch(f"https://mta-sts.{domain}/.well-known/mta-sts.txt",
                           error="no answer within the run's budget")


async def draft_topology(domain: str, options: Options) -> TopologyDraft:
    return compose(await collect(domain, options))


# --- drafting --------------------------------------------------------------------------


def _check_mx(view: DnsView) -> list[tuple[int, str]]:
    obs = view.mx
    if obs.outcome is Outcome.NXDOMAIN:
        raise DraftError(f"{view.domain} does not exist (NXDOMAIN from {_where(obs)}): "
                         "check the spelling", exit_code=2)
    if not obs.outcome.answered:
        raise DraftError(f"the MX lookup for {view.domain} failed ({obs.outcome.value} from "
                         f"{_where(obs)}{': ' + obs.error if obs.error else ''}); nothing to "
                         "draft from — try again, or another --resolver")
    hosts = mx_hosts(obs)
    if not hosts:
        raise DraftError(f"{view.domain} publishes no MX record ({_where(obs)}): senders "
                         "fall back to its address record (RFC 5321 §5.1), if any, and no "
                         "gateway or mailbox service can be told from it")
    if [h for _, h in hosts] == [""]:
        raise DraftError(f"{view.domain} publishes a null MX (RFC 7505): it accepts no mail")
    return hosts


def compose(view: DnsView) -> TopologyDraft:
    """The draft from what DNS showed: tiers in flow order, each value with its record."""
    hosts = _check_mx(view)
    first = providers.recognize(hosts[0][1]) or providers.UNKNOWN
    exo = exo_evidence(view)
    notes: list[str] = []
    mine = [h for _, h in hosts if (providers.recognize(h) or providers.UNKNOWN) == first]
    others = [h for _, h in hosts if h not in mine]
    if others:
        notes.append(f"the MX also names {', '.join(others)}, which is not {first.name}: "
                     "triage will say whether it bypasses the gateway")
    tiers = [_dns_tier(view, mine, first)]
    if first.kind == "exchange-online":
        tiers.append(_exo_tier(view, None, mine[0], exo))
        return _draft(view, tiers, notes)
    if not exo:
        if first.role == "hosted-mailbox":
            why = (f"its MX is {first.name} ({mine[0]}), which hosts the mailboxes itself; "
                   "mailtrace models Exchange Online and Exchange Server mailboxes")
        else:
            why = (f"its MX is {first.name if first is not providers.UNKNOWN else mine[0]}"
                   " and no record names the mailbox service behind it (no Exchange Online "
                   "SPF include, DKIM CNAME or autodiscover)")
        raise DraftError(f"cannot draft a topology for {view.domain}: {why}. Write the "
                         "mailbox tier by hand (see topologies/ and `mailtrace schema`)")
    if first.role == "hosted-mailbox":
        notes.append(f"{first.name} receives the mail before Exchange Online: drafted as a "
                     "gateway in front of it; check that this is how mail flows")
    gateway = _gateway_tier(view, first, mine)
    tiers += [gateway, _exo_tier(view, gateway.id, None, exo)]
    return _draft(view, tiers, notes)


def _draft(view: DnsView, tiers: list[TierDraft], notes: list[str]) -> TopologyDraft:
    name = view.domain.split(".")[0]
    when = view.drafted_at.astimezone(dt.UTC).replace(microsecond=0)
    return TopologyDraft(view.domain, name, tiers,
                         when.isoformat().replace("+00:00", "Z"), view.resolvers,
                         f"{DISTRIBUTION} {version()}", notes)


def _dns_tier(view: DnsView, mx: list[str], provider: Provider) -> TierDraft:
    expect: list[Value] = [Value("mx", mx, source=_mx_source(view))]
    spf = _spf(view)
    if spf is not None:
        expect.append(spf)
    dkim = dkim_targets(view)
    if dkim:
        shown = "; ".join(f"{s} -> {t}" if t else f"{s} (TXT key)" for s, t in dkim.items())
        other = {s: t for s, t in dkim.items() if t and s not in EXO_SELECTORS}
        children = [Value("selectors", list(dkim))]
        if other:
            children.append(Value("targets", other))
        expect.append(Value("dkim", source=f"DKIM selectors of {view.domain}: {shown}",
                            children=tuple(children)))
    dmarc = _dmarc(view)
    if dmarc is not None:
        expect.append(dmarc)
    sts = _mta_sts(view)
    if sts is not None:
        expect.append(sts)
    return TierDraft("public-dns", "dns", f"Public DNS: what the world sees of {view.domain}",
                     (Value("expect", children=tuple(expect)),))


def _spf(view: DnsView) -> Value | None:
    records = [t for t in _texts(view.txt) if is_spf(t)]
    if len(records) != 1:
        return None  # none, or several (a PermError triage reports): nothing to declare
    try:
        record = parse_spf(records[0])
    except SpfSyntaxError:
        return None
    include = [m.domain_spec for m in record.mechanisms
               if m.name == "include" and m.domain_spec and m.qualifier == "+"]
    other = [m.text for m in record.mechanisms if m.name not in ("include", "all")
             and m.qualifier == "+"]
    children = [Value("include", include)] if include else []
    if other:
        children.append(Value("mechanisms", other))
    final = record.all
    if final is not None:
        children.append(Value("all", final.text.lstrip("+") if final.qualifier != "+" else
                              "+all"))
    if not children:
        return None
    return Value("spf", source=f"TXT {view.domain}: {records[0]}", children=tuple(children))


def _dmarc(view: DnsView) -> Value | None:
    records = [t for t in _texts(view.dmarc) if is_dmarc(t)]
    if len(records) != 1:
        return None
    parsed = parse_dmarc(records[0])
    if parsed.policy is None:
        return None
    return Value("dmarc", source=f"TXT _dmarc.{view.domain}: {records[0]}",
                 children=(Value("policy", parsed.policy),))


def _mta_sts(view: DnsView) -> Value | None:
    records = [t for t in _texts(view.mta_sts) if t.startswith("v=STSv1")]
    if not records:
        return None
    fetched = view.policy
    if fetched is None or fetched.body is None or fetched.status != 200:
        why = (fetched.error or f"HTTP {fetched.status}") if fetched else "not fetched"
        return Value("mta_sts", source=f"TXT _mta-sts.{view.domain}: {records[0]}",
                     guess=f"the policy could not be read ({why}): fill in its mode",
                     children=(Value("mode", "enforce"),), commented=True)
    mode = parse_policy(fetched.body).mode
    if mode is None:
        return None
    return Value("mta_sts", source=f"{fetched.url}: mode: {mode}",
                 children=(Value("mode", mode),))


def _gateway_tier(view: DnsView, provider: Provider, hosts: list[str]) -> TierDraft:
    if provider is providers.UNKNOWN:
        guess = (f"no service mailtrace knows uses {hosts[0]}: drafted as a generic SMTP "
                 "gateway in front of Exchange Online")
    else:
        guess = f"{', '.join(hosts)} is {provider.name}"
        if provider.own_kind and provider.kind == "smtp-gateway":
            guess += " (probed as a generic SMTP gateway)"
    values = []
    if provider.flavour:
        values.append(Value("flavour", provider.flavour, guess=guess))
        guess = ""
    values.append(Value("hosts", hosts, source=_mx_source(view), guess=guess or None))
    return TierDraft(provider.tier_id, provider.kind, f"The gateway: {provider.name}",
                     tuple(values), _gateway_templates(provider, hosts))


def _gateway_templates(provider: Provider, hosts: list[str]) -> tuple[str, ...]:
    if provider.flavour == "pod":
        return commented(
            "Optional: the PoD admin REST API (Smart Search, quarantine), port 10000 of your",
            "cluster's host; an API-role account. Credentials come from the environment.",
            "api:",
            "  url: https://<your-cluster>.pphosted.com:10000",
            "  username_env: PROOFPOINT_API_USER",
            "  password_env: PROOFPOINT_API_PASSWORD",
            "Optional: TAP's SIEM API (threat-only), a service principal and secret.",
            "tap:",
            "  url: https://tap-api-v2.proofpoint.com",
            "  principal_env: PROOFPOINT_TAP_PRINCIPAL",
            "  secret_env: PROOFPOINT_TAP_SECRET")
    if provider.flavour == "essentials":
        stack = providers.essentials_stack(hosts[0]) or "<stack>"
        return commented(
            f"Optional: the Essentials admin API of your stack ({stack}, from the MX host).",
            "api:",
            f"  url: https://{stack}.proofpointessentials.com/api/v1",
            "  username_env: PPE_API_USER",
            "  password_env: PPE_API_PASSWORD")
    return commented(f"mailtrace probes {provider.name} over SMTP; it reads no API of it yet.")


def _exo_tier(view: DnsView, gateway: str | None, mx_host: str | None,
              evidence: Sequence[str]) -> TierDraft:
    values: list[Value] = []
    tenants = {s: providers.exo_tenant_from_dkim(t) for s, t in dkim_targets(view).items()
               if t and providers.exo_tenant_from_dkim(t)}
    if tenants:
        selector, tenant = next(iter(tenants.items()))
        values.append(Value("tenant", tenant,
                            source=f"DKIM {selector}._domainkey.{view.domain} -> "
                            f"{dkim_targets(view)[selector]}",
                            guess="the tenant's initial domain, named in the DKIM target"))
    else:
        values.append(Value("tenant", f"{view.domain.split('.')[0]}.onmicrosoft.com",
                            guess="no DKIM CNAME names the tenant: fill in its "
                            "<name>.onmicrosoft.com domain (optional)", commented=True))
    if mx_host is not None:
        values.append(Value("inbound_host", mx_host, source=_mx_source(view)))
    else:
        values.append(_inbound_guess(view))
    if gateway is not None:
        values.append(Value("accepts_only_from", gateway,
                            guess="not visible in DNS: behind a gateway, the inbound connector "
                            "should accept mail only from it (remove the line if it does not)"))
    title = "The mailboxes: Exchange Online" + (f" (seen in {'; '.join(evidence)})"
                                               if evidence else "")
    templates = commented(
        "Optional: Microsoft Graph, read-only (domains, recipients, message trace).",
        "Sign in once with `mailtrace login --topology THIS-FILE` (device code), or use",
        "an app: auth client-secret with client_id and secret_env: MAILTRACE_GRAPH_SECRET.",
        "graph:",
        "  url: https://graph.microsoft.com/v1.0",
        "  auth: device-code",
        f"  tenant_id: {next(iter(tenants.values()), f'{view.domain}')}")
    return TierDraft("exchange-online", "exchange-online", title, tuple(values), templates)


def _inbound_guess(view: DnsView) -> Value:
    host = providers.classic_exo_host(view.domain)
    obs = view.exo_host
    if obs is not None and obs.records("A"):
        shown = ", ".join(r.data for r in obs.records("A"))
        return Value("inbound_host", host, source=f"A {host}: {shown} ({_where(obs)})",
                     guess="Exchange Online's inbound host for the domain (its classic "
                     "name, which resolves); the gateway delivers there")
    what = obs.outcome.value if obs is not None else "not looked up"
    return Value("inbound_host", host,
                 guess=f"the classic name does not resolve ({what}): copy the tenant's "
                 "inbound host (Get-AcceptedDomain / the admin center's MX value)")
