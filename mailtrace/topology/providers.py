"""Mail services recognized by the host names they publish: which kind of tier an MX
host, an SPF include or a DKIM CNAME target stands for.

``mailtrace init`` drafts a topology from these; a guess, never a declaration: the draft
says which record led to each one. The host names come from each vendor's documented
MX and SPF entries:

- Proofpoint on Demand ``mx0a-<id>.pphosted.com`` and Essentials
  ``mx1-<stack>.ppe-hosted.com`` (reference: proofpoint.md §7);
- Exchange Online ``<domain-with-dashes>.mail.protection.outlook.com`` and, for domains
  added since 2025, ``<domain-with-dashes>.<x>-v1.mx.microsoft`` (graph-exo.md §1);
  DKIM ``selectorN-<domain-with-dashes>._domainkey.<tenant>.onmicrosoft.com`` or
  ``…._domainkey.<tenant>.<x>-v1.dkim.mail.microsoft``;
- Mimecast ``<region>-smtp-inbound-N.mimecast.com`` (also ``mimecast.co.za``,
  ``mimecast-offshore.com``); Google Workspace ``aspmx.l.google.com`` and
  ``smtp.google.com``; Cisco Secure Email Cloud Gateway ``*.iphmx.com``; Barracuda Email
  Security Service ``*.ess.barracudanetworks.com``; Trend Micro Email Security
  ``*.tmes.trendmicro.com`` (and its regional domains).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from mailtrace.topology.model import TIER_KINDS, Tier

Role = Literal["gateway", "mailbox", "hosted-mailbox"]


@dataclass(frozen=True)
class Provider:
    """A mail service as its host names show it."""

    name: str  # as an admin knows it: "Proofpoint on Demand"
    tier_id: str  # the tier id a draft gives it
    kind: str  # the tier kind that models it today
    role: Role  # gateway in front of a mailbox; a mailbox tier; mailboxes hosted elsewhere
    suffixes: tuple[str, ...]  # host-name suffixes (a label boundary before each)
    flavour: str | None = None  # Proofpoint: pod | essentials
    #: The kind a future model may give it (a first-class tier), used when the model has it.
    own_kind: str | None = None


def _gateway_kind(own: str) -> str:
    """The vendor's own tier kind when the model has one taking only ``hosts`` (a
    first-class kind added later), else the generic SMTP gateway."""
    if own not in TIER_KINDS:
        return "smtp-gateway"
    member = next(m for m in get_args(get_args(Tier)[0])
                  if get_args(m.model_fields["kind"].annotation) == (own,))
    required = {name for name, field in member.model_fields.items() if field.is_required()}
    return own if required <= {"kind", "hosts"} else "smtp-gateway"


PROVIDERS: tuple[Provider, ...] = (
    Provider("Proofpoint on Demand", "proofpoint", "proofpoint", "gateway",
             ("pphosted.com",), flavour="pod"),
    Provider("Proofpoint Essentials", "proofpoint", "proofpoint", "gateway",
             ("ppe-hosted.com",), flavour="essentials"),
    Provider("Exchange Online", "exchange-online", "exchange-online", "mailbox",
             ("mail.protection.outlook.com", "mx.microsoft")),
    Provider("Mimecast", "mimecast", _gateway_kind("mimecast"), "gateway",
             ("mimecast.com", "mimecast.co.za", "mimecast-offshore.com"), own_kind="mimecast"),
    Provider("Google Workspace", "google-workspace", "smtp-gateway", "hosted-mailbox",
             ("aspmx.l.google.com", "googlemail.com", "smtp.google.com")),
    Provider("Cisco Secure Email", "cisco-secure-email", "smtp-gateway", "gateway",
             ("iphmx.com",)),
    Provider("Barracuda Email Security", "barracuda", "smtp-gateway", "gateway",
             ("barracudanetworks.com", "barracuda.com")),
    Provider("Trend Micro Email Security", "trend-micro", "smtp-gateway", "gateway",
             ("tmes.trendmicro.com", "tmes.trendmicro.eu", "tmes-anz.trendmicro.com",
              "tmes.trendmicro.co.jp", "tmems-jp.trendmicro.com", "tmes-in.trendmicro.com")),
)

#: An MX host no provider claims: the organization's own server, or a service not listed.
UNKNOWN = Provider("an SMTP gateway", "gateway", "smtp-gateway", "gateway", ())


def _bare(host: str) -> str:
    return host.lower().rstrip(".")


def recognize(host: str) -> Provider | None:
    """The provider whose host names ``host`` is one of, or None."""
    name = _bare(host)
    for provider in PROVIDERS:
        if any(name == s or name.endswith("." + s) for s in provider.suffixes):
            return provider
    return None


#: Exchange Online's classic inbound host and the newer DNSSEC one (graph-exo.md §1).
EXO_HOST = re.compile(r"^(?P<label>[a-z0-9-]+)\.(mail\.protection\.outlook\.com"
                      r"|[a-z0-9]+-v1\.mx\.microsoft)$")
# selectorN-<domain-with-dashes>._domainkey.<tenant>.onmicrosoft.com, or the newer
# selectorN-<domain-with-dashes>._domainkey.<tenant>.<x>-v1.dkim.mail.microsoft
_EXO_DKIM = re.compile(r"\._domainkey\.(?P<tenant>[a-z0-9-]+)\."
                       r"(onmicrosoft\.com|[a-z0-9]+-v1\.dkim\.mail\.microsoft)$")
#: SPF includes that say a domain sends through Exchange Online.
EXO_SPF = ("spf.protection.outlook.com",)


def classic_exo_host(domain: str) -> str:
    """The inbound host Exchange Online gives a domain: its name with dashes for dots
    (and dashes doubled), under mail.protection.outlook.com."""
    return _bare(domain).replace("-", "--").replace(".", "-") + ".mail.protection.outlook.com"


def exo_tenant_from_dkim(target: str) -> str | None:
    """The tenant's initial domain (``contoso.onmicrosoft.com``) from the target of an
    Exchange Online DKIM CNAME, or None for any other target."""
    match = _EXO_DKIM.search(_bare(target))
    return f"{match['tenant']}.onmicrosoft.com" if match else None


def essentials_stack(host: str) -> str | None:
    """The Essentials stack (us1 … us5, eu1) an ``mx1-<stack>.ppe-hosted.com`` host names."""
    match = re.fullmatch(r"mx\d+-([a-z]{2}\d+)\.ppe-hosted\.com", _bare(host))
    return match.group(1) if match else None
