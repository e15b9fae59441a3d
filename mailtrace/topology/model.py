"""The topology an admin declares: domains, tiers (by kind) and the flow between them.

These pydantic models are the schema (``mailtrace schema`` prints their JSON Schema).
Unknown keys are refused everywhere so a typo is an error, not a silently ignored line.
Secrets never live here: credentials are referenced by environment variable name,
certificate path, or an azure-identity method.

Host and domain names are stored lowercased without a trailing dot, so probes can compare
them with DNS answers directly. The flow chains are checked by
:class:`mailtrace.topology.flow.FlowGraph` (the loader builds one for every file).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from mailtrace.core.address import check_mailbox
from mailtrace.core.network import is_loopback


class _Strict(BaseModel):
    # Built when a topology is first read, not when the module is imported: commands that
    # read none (``mailtrace probes``) do not pay for building the validators.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# RFC 1035 §2.3.1 "preferred name syntax", relaxed for host names: underscores occur in
# real host names and a leading "*" label is kept as the original pattern allowed it.
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_DOMAIN_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_HOST_PATTERN = r"^(\*|[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$"  # noqa: E501
_DOMAIN_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"  # noqa: E501
_ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_TIER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def _ascii_hint(value: str) -> str:
    try:
        return f"; its ASCII form is {value.encode('idna').decode('ascii')!r}"
    except UnicodeError:
        return ""


def _normalize_hostname(value: str) -> str:
    """Lowercase, drop one trailing dot, and check the label syntax."""
    if not value.isascii():
        raise ValueError(f"{value!r} is not an ASCII host name{_ascii_hint(value)}")
    host = value.strip().lower().removesuffix(".")  # a YAML block scalar ends in "\n"
    labels = host.split(".")
    ok = 0 < len(host) <= 253 and all(
        _LABEL.fullmatch(label) or (i == 0 and label == "*") for i, label in enumerate(labels)
    )
    if not ok:
        raise ValueError(f"{value!r} is not a valid host name")
    return host


def _normalize_domain(value: str) -> str:
    """A mail domain: LDH labels (RFC 1035 §2.3.1), lowercased, no trailing dot."""
    if not value.isascii():
        raise ValueError(f"{value!r} is not an ASCII domain name{_ascii_hint(value)}")
    domain = value.strip().lower().removesuffix(".")
    labels = domain.split(".")
    if not (0 < len(domain) <= 253 and all(_DOMAIN_LABEL.fullmatch(label) for label in labels)):
        raise ValueError(f"{value!r} is not a valid domain name")
    if labels[-1].isdigit():
        raise ValueError(f"{value!r} is an address, not a domain name")
    return domain


def _check_env_name(value: str) -> str:
    if not re.fullmatch(_ENV_PATTERN, value):
        # The value is not echoed: it may well be the secret itself.
        raise ValueError(
            "expected the name of an environment variable (letters, digits, '_'); "
            "secrets never go in the topology file"
        )
    return value


def _check_tier_id(value: str) -> str:
    if not re.fullmatch(_TIER_ID_PATTERN, value):
        raise ValueError(
            f"tier id {value!r} must start with a letter or digit and contain only "
            "letters, digits, '-', '_' and '.'"
        )
    return value


Hostname = Annotated[
    str,
    AfterValidator(_normalize_hostname),
    WithJsonSchema({"type": "string", "pattern": _HOST_PATTERN}),
]
DomainName = Annotated[
    str,
    AfterValidator(_normalize_domain),
    WithJsonSchema({"type": "string", "pattern": _DOMAIN_PATTERN}),
]
EnvName = Annotated[
    str,
    AfterValidator(_check_env_name),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _ENV_PATTERN,
            "description": "Name of an environment variable holding the secret",
        }
    ),
]
TierId = Annotated[
    str,
    AfterValidator(_check_tier_id),
    WithJsonSchema({"type": "string", "pattern": _TIER_ID_PATTERN}),
]


def _as_list(value: Any) -> Any:
    """One string where a list of strings is expected is a list of one: ``domains:
    contoso.com`` reads as ``domains: [contoso.com]``. Anything else is left for the list's
    own validation (a mapping there is still an error: what it means is not clear)."""
    return [value] if isinstance(value, str) else value


def _one_or_many(item: Any) -> BeforeValidator:
    # The JSON Schema says so too, so an editor does not flag the single form.
    return BeforeValidator(_as_list, json_schema_input_type=item | list[item])


HostNames = Annotated[list[Hostname], _one_or_many(Hostname)]
DomainNames = Annotated[list[DomainName], _one_or_many(DomainName)]
Strings = Annotated[list[str], _one_or_many(str)]


def _check_base_url(url: str) -> str:
    """Base URLs must be https, except plain http to a loopback host (the lab)."""
    parts = urlsplit(url)
    # Never echo the URL: a pasted one may carry a password.
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "credentials in the URL are refused: name environment variables instead "
            "(username_env/password_env, secret_env, token_env)"
        )
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("expected an http(s) URL with a host")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError("plain http:// is accepted for loopback hosts only; use https://")
    return url


class SpfExpectation(_Strict):
    include: HostNames = Field(
        default_factory=list, description="Domains named by include: mechanisms (RFC 7208 §5.2)"
    )
    all: Literal["-all", "~all", "?all", "+all"] | None = Field(
        default=None, description="The SPF record's final 'all' mechanism"
    )
    mechanisms: Strings = Field(
        default_factory=list,
        description="Other SPF terms that must be published, e.g. a:dispatch-us.ppe-hosted.com "
        "(Proofpoint Essentials' documented SPF) or ip4:192.0.2.0/24",
    )

    @field_validator("mechanisms")
    @classmethod
    def _spf_terms(cls, terms: list[str]) -> list[str]:
        from mailtrace.mailauth.spf_record import SpfSyntaxError, parse_term

        for term in terms:
            try:
                parse_term(term)
            except SpfSyntaxError as exc:
                raise ValueError(f"{term!r} is not an SPF mechanism: {exc.message}") from None
        return terms


class DkimExpectation(_Strict):
    selectors: Strings = Field(
        default_factory=list, description="DKIM selectors that must be published"
    )
    targets: dict[str, Hostname] = Field(
        default_factory=dict,
        description="Per selector, the CNAME target it must lead to (a '*' matches one or "
        "more labels); Exchange Online's selector1/selector2 are checked without it",
    )


class MtaStsExpectation(_Strict):
    mode: Literal["enforce", "testing", "none"] | None = Field(
        default=None, description="The MTA-STS policy mode expected (RFC 8461 §3.2)"
    )


class DmarcExpectation(_Strict):
    policy: Literal["none", "quarantine", "reject"] | None = Field(
        default=None, description="The DMARC p= policy expected"
    )


class DnsExpectation(_Strict):
    mx: HostNames | None = Field(
        default=None,
        description="MX hosts public DNS must publish; default: the hosts of the first hop",
    )
    spf: SpfExpectation | None = None
    dkim: DkimExpectation | None = None
    dmarc: DmarcExpectation | None = None
    mta_sts: MtaStsExpectation | None = None


class DnsTier(_Strict):
    """Public DNS: the sender's MX lookup. Exactly one per topology, first in the flow."""

    kind: Literal["dns"]
    description: str | None = None
    expect: DnsExpectation = Field(
        default_factory=DnsExpectation, description="Records public DNS must serve"
    )


class BasicApi(_Strict):
    url: str = Field(description="Base URL of the API (https; http only to loopback)")
    username_env: EnvName | None = None
    password_env: EnvName | None = None

    _url = field_validator("url")(_check_base_url)


class ProofpointApi(BasicApi):
    """The gateway's admin API, by flavour: PoD/PPS REST on the cluster host's port 10000
    (Smart Search, quarantine; HTTP Basic with an API-role account), or the Essentials v1
    API of the org's stack (X-User / X-Password headers)."""

    org: DomainName | None = Field(
        default=None,
        description="Essentials: the organisation's primary domain "
        "(default: the first domain of the topology)",
    )
    quarantine_folders: Strings = Field(
        default_factory=list,
        description="PoD: the quarantine folders to list (default: the server's default, "
        "Quarantine)",
    )


class TapAccess(_Strict):
    """TAP SIEM API v2 (or the Essentials Threat API, which has the same shape). It lists
    only messages tied to a known threat: never evidence that clean mail was delivered."""

    url: str = Field(
        default="https://tap-api-v2.proofpoint.com",
        description="Base URL (Essentials: https://us-siem.proofpointessentials.com)",
    )
    principal_env: EnvName = Field(description="Env var holding the service principal")
    secret_env: EnvName = Field(description="Env var holding the service secret")

    _url = field_validator("url")(_check_base_url)


class ProofpointTier(_Strict):
    kind: Literal["proofpoint"]
    flavour: Literal["pod", "essentials"] = Field(
        description="pod = Proofpoint on Demand; essentials = Proofpoint Essentials"
    )
    description: str | None = None
    hosts: HostNames = Field(min_length=1, description="Inbound MX hosts of the gateway")
    api: ProofpointApi | None = None
    tap: TapAccess | None = None


class SmtpGatewayTier(_Strict):
    kind: Literal["smtp-gateway"]
    description: str | None = None
    hosts: HostNames = Field(min_length=1, description="Inbound hosts of the gateway")


# Which credential references each azure-identity method cannot do without.
_AUTH_NEEDS: dict[str, tuple[str, ...]] = {
    "client-secret": ("client_id", "secret_env"),
    "client-certificate": ("client_id", "certificate_path"),
    "token-env": ("token_env",),
}


class GraphAccess(_Strict):
    url: str = Field(
        default="https://graph.microsoft.com/v1.0",
        description="Graph base URL (national clouds have their own host)",
    )
    auth: Literal[
        "client-secret",
        "client-certificate",
        "device-code",
        "managed-identity",
        "azure-cli",
        "token-env",
    ]
    tenant_id: str | None = None
    client_id: str | None = None
    certificate_path: str | None = None
    secret_env: EnvName | None = None
    token_env: EnvName | None = None

    _url = field_validator("url")(_check_base_url)

    @model_validator(mode="after")
    def _auth_has_its_references(self) -> GraphAccess:
        missing = [name for name in _AUTH_NEEDS.get(self.auth, ()) if getattr(self, name) is None]
        if missing:
            raise ValueError(f"auth {self.auth!r} needs {' and '.join(missing)}")
        return self


class ExchangeOnlineTier(_Strict):
    kind: Literal["exchange-online"]
    description: str | None = None
    tenant: str | None = None
    inbound_host: Hostname = Field(
        description="<domain>.mail.protection.outlook.com or the newer *.mx.microsoft host"
    )
    accepts_only_from: str | None = Field(
        default=None, description="Tier id the inbound connector restricts mail to"
    )
    graph: GraphAccess | None = None


#: Mimecast's inbound hosts and SPF include by region (Mimecast's "Data Centers and URLs"
#: and MX-record support articles): ``<region>-smtp-inbound-1/-2`` under the region's
#: domain, and ``include:<region>._netblocks.<domain>`` for SPF. UK accounts use the EU
#: netblocks. A tier may list its hosts instead, which always wins.
MIMECAST_REGIONS: dict[str, tuple[str, str]] = {
    # region: (MX host domain, SPF netblocks include)
    "uk": ("mimecast.com", "eu._netblocks.mimecast.com"),
    "eu": ("mimecast.com", "eu._netblocks.mimecast.com"),
    "de": ("mimecast.com", "de._netblocks.mimecast.com"),
    "us": ("mimecast.com", "us._netblocks.mimecast.com"),
    "usb": ("mimecast.com", "usb._netblocks.mimecast.com"),
    "ca": ("mimecast.com", "ca._netblocks.mimecast.com"),
    "za": ("mimecast.co.za", "za._netblocks.mimecast.co.za"),
    "au": ("mimecast.com", "au._netblocks.mimecast.com"),
    "je": ("mimecast-offshore.com", "je._netblocks.mimecast-offshore.com"),
}
#: The domains Mimecast's inbound hosts live under (any region).
MIMECAST_DOMAINS = ("mimecast.com", "mimecast.co.za", "mimecast-offshore.com")


def mimecast_region(host: str) -> str | None:
    """The Mimecast region whose inbound hosts ``host`` is one of (``eu-smtp-inbound-1.
    mimecast.com`` -> ``eu``), or None: how an MX set is recognized as Mimecast's."""
    host = host.lower().rstrip(".")
    for region, (domain, _) in MIMECAST_REGIONS.items():
        if re.fullmatch(rf"{region}-smtp-inbound-\d+\.{re.escape(domain)}", host):
            return region
    return None


#: Exchange Online's DNSSEC-signed inbound namespace, where a tenant can turn on inbound
#: SMTP DANE (<domain-with-dashes>.<c>-v1.mx.microsoft); the classic
#: *.mail.protection.outlook.com hosts are not signed.
EXO_DANE_SUFFIX = ".mx.microsoft"


def mimecast_hosts(region: str) -> list[str]:
    """The two inbound hosts of a Mimecast region, as its MX records name them."""
    domain = MIMECAST_REGIONS[region][0]
    return [f"{region}-smtp-inbound-{n}.{domain}" for n in (1, 2)]


class MimecastTier(_Strict):
    """Mimecast Email Security, Cloud Gateway: the MX hosts of the account's region.

    Only SMTP is probed: Mimecast's own APIs (message tracking, held queue) are not
    asked (yet)."""

    kind: Literal["mimecast"]
    region: Literal["uk", "eu", "de", "us", "usb", "ca", "za", "au", "je"] = Field(
        description="The account's data centre region: its MX hosts and SPF include follow "
        "from it (uk, eu, de, us, usb, ca, za, au, je = offshore/Jersey)"
    )
    description: str | None = None
    hosts: list[Hostname] = Field(
        default_factory=list,
        description="Inbound MX hosts; default: <region>-smtp-inbound-1/-2 of the region",
    )

    @model_validator(mode="after")
    def _region_hosts(self) -> MimecastTier:
        if not self.hosts:
            object.__setattr__(self, "hosts", mimecast_hosts(self.region))
        return self

    @property
    def spf_include(self) -> str:
        """The SPF include Mimecast documents for the region's outbound hosts."""
        return MIMECAST_REGIONS[self.region][1]


class ExchangeOnPremTier(_Strict):
    """Exchange Server on-premises in a hybrid organization: the hosts Exchange Online's
    outbound connector delivers to (its smart hosts), and the certificate name the hybrid
    connector expects them to present."""

    kind: Literal["exchange-onprem"]
    description: str | None = None
    hosts: HostNames = Field(
        min_length=1,
        description="The smart hosts of Exchange Online's outbound connector to on-premises "
        "(Get-OutboundConnector | Format-List SmartHosts)",
    )
    tls_certificate_name: Hostname | None = Field(
        default=None,
        description="The certificate name the hybrid connectors expect the hosts to present "
        "(the outbound connector's TlsDomain; TlsCertificateName on-premises); *.domain "
        "accepts any name under the domain",
    )
    accepted_domains: list[DomainName] = Field(
        default_factory=list,
        description="Domains the on-premises organization accepts; default: the topology's",
    )
    connector: str | None = Field(
        default=None,
        description="The name of Exchange Online's outbound connector to these hosts, as "
        "message trace shows it (default: any connector to one of the hosts)",
    )


Tier = Annotated[
    DnsTier
    | ProofpointTier
    | MimecastTier
    | SmtpGatewayTier
    | ExchangeOnlineTier
    | ExchangeOnPremTier,
    Field(discriminator="kind"),
]

#: Every tier kind, in the order the union declares them.
TIER_KINDS: tuple[str, ...] = tuple(
    get_args(member.model_fields["kind"].annotation)[0] for member in get_args(get_args(Tier)[0])
)
MAILBOX_KINDS = frozenset({"exchange-online", "exchange-onprem"})
GATEWAY_KINDS = frozenset({"proofpoint", "mimecast", "smtp-gateway"})


def _check_probe_sender(value: str) -> str:
    return value if value == "" else check_mailbox(value)


class SmtpProbe(_Strict):
    """How the SMTP probes introduce themselves. They stop after RCPT TO: no mail is sent."""

    mail_from: Annotated[str, AfterValidator(_check_probe_sender)] = Field(
        default="", description='MAIL FROM of the probes; "" (the default) is the null sender'
    )
    helo: Hostname | None = Field(
        default=None, description="EHLO name; default: this machine's name or address"
    )


class Topology(_Strict):
    """A mailtrace topology: the domains, the tiers mail crosses, and the flow between them."""

    topology: str = Field(min_length=1, description="A short name for this topology")
    description: str | None = None
    domains: DomainNames = Field(min_length=1, description="Mail domains this flow serves")
    flow: Strings = Field(
        min_length=1, description='Chains of tier ids, e.g. "public-dns -> proofpoint -> eop"'
    )
    tiers: dict[TierId, Tier] = Field(description="The tiers, by id")
    smtp: SmtpProbe = Field(default_factory=SmtpProbe, description="SMTP probe identity")

    @field_validator("domains")
    @classmethod
    def _no_repeated_domain(cls, domains: list[str]) -> list[str]:
        seen: set[str] = set()
        for domain in domains:
            if domain in seen:
                raise ValueError(f"domain {domain!r} is listed twice")
            seen.add(domain)
        return domains

    def inbound_hosts(self, tier_id: str) -> list[str]:
        """The hosts a tier receives mail on, as declared."""
        tier = self.tiers[tier_id]
        if isinstance(tier, ExchangeOnlineTier):
            return [tier.inbound_host]
        if isinstance(tier, DnsTier):
            return []
        return list(tier.hosts)
