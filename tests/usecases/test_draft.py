"""``mailtrace init``: a topology drafted from live DNS loads, and a triage of the healthy
lab with it is healthy; each guess names its record; what cannot be drafted says why."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailtrace.clients.dns import Outcome
from mailtrace.lab import scenarios
from mailtrace.lab.lab import Lab
from mailtrace.mailauth.mta_sts import PolicyFetch
from mailtrace.report.draft import check, render
from mailtrace.topology import FlowGraph
from mailtrace.topology.model import ExchangeOnlineTier, ProofpointTier, SmtpGatewayTier
from mailtrace.topology.providers import classic_exo_host, exo_tenant_from_dkim, recognize
from mailtrace.usecases.demo import lab_options
from mailtrace.usecases.draft import DnsView, DraftError, compose, draft_topology
from mailtrace.usecases.triage import make_target, run_triage
from tests.support.builders import RESOLVER, obs

# --- against the lab: the done-when of the onboarding issue ----------------------------------


async def _draft_and_triage(domain: str, scenario: str = "healthy"):
    async with Lab(scenarios.get(scenario)) as lab:
        options = lab_options(lab, 20)
        drafted = await draft_topology(domain, options)
        text = render(drafted)
        topology = check(text, f"{domain}.yaml")
        report = await run_triage(topology, make_target(topology, f"alice@{domain}", None),
                                  options)
        return text, topology, report


@pytest.mark.parametrize(("domain", "gateway"), [
    ("contoso.com", "pod"),          # Proofpoint on Demand in front of Exchange Online
    ("fabrikam.com", "essentials"),  # Proofpoint Essentials in front of Exchange Online
    ("northwind.com", None),         # Exchange Online straight from the MX
])
def test_a_draft_of_each_lab_domain_loads_and_its_triage_of_the_healthy_lab_is_healthy(
        domain, gateway):
    text, topology, report = asyncio.run(_draft_and_triage(domain))
    flow = FlowGraph(topology)
    assert flow.hops()[-1] == "exchange-online"
    exo = topology.tiers["exchange-online"]
    assert isinstance(exo, ExchangeOnlineTier)
    assert exo.inbound_host == f"{domain.replace('.', '-')}.mail.protection.outlook.com"
    assert exo.tenant == f"{domain.split('.')[0]}.onmicrosoft.com"
    assert exo.graph is None  # API sections stay commented templates
    if gateway is None:
        assert flow.hops() == ["public-dns", "exchange-online"]
        assert exo.accepts_only_from is None
    else:
        pp = topology.tiers["proofpoint"]
        assert isinstance(pp, ProofpointTier) and pp.flavour == gateway and pp.api is None
        assert flow.hops() == ["public-dns", "proofpoint", "exchange-online"]
        assert exo.accepts_only_from == "proofpoint"
    assert (report.verdict.status, report.verdict.tier) == ("healthy", None), (
        report.verdict.summary)
    assert "# graph:" in text
    assert gateway is None or "password_env" in text


def test_the_draft_keeps_what_dns_publishes_and_says_where_it_read_it():
    text, topology, _ = asyncio.run(_draft_and_triage("fabrikam.com"))
    dns = topology.tiers["public-dns"]
    assert dns.kind == "dns"
    assert dns.expect.mx == ["mx1-us1.ppe-hosted.com", "mx2-us1.ppe-hosted.com"]
    assert dns.expect.spf is not None
    assert dns.expect.spf.include == ["spf.protection.outlook.com"]
    assert dns.expect.spf.mechanisms == ["a:dispatch-us.ppe-hosted.com"]
    assert dns.expect.spf.all == "-all"
    assert dns.expect.dkim is not None and dns.expect.dkim.selectors == ["selector1", "selector2"]
    assert dns.expect.dmarc is not None and dns.expect.dmarc.policy == "none"
    # Each value is commented with the record it comes from, each inference marked.
    assert "# from MX fabrikam.com: 10 mx1-us1.ppe-hosted.com, 20 mx2-us1.ppe-hosted.com" in text
    assert "# from TXT _dmarc.fabrikam.com: v=DMARC1; p=none" in text
    assert ("# GUESS: mx1-us1.ppe-hosted.com, mx2-us1.ppe-hosted.com is Proofpoint Essentials"
            in text)
    assert "url: https://us1.proofpointessentials.com/api/v1" in text  # the stack, from the MX


def test_mta_sts_mode_is_read_from_the_policy_itself():
    _, topology, _ = asyncio.run(_draft_and_triage("contoso.com"))
    dns = topology.tiers["public-dns"]
    assert dns.kind == "dns" and dns.expect.mta_sts is not None
    assert dns.expect.mta_sts.mode == "enforce"


def test_a_faulty_world_still_drafts_what_it_sees_and_the_triage_finds_the_fault():
    # One name server serves a stale MX: the draft is made from what the resolver answers,
    # and the triage with it still localizes the fault.
    text, _, report = asyncio.run(_draft_and_triage("contoso.com", "stale-ns"))
    assert report.verdict.status in ("degraded", "fault")
    assert report.verdict.tier == "public-dns"
    assert "proofpoint" in text


def test_a_domain_that_does_not_exist_is_exit_2():
    async def main() -> None:
        async with Lab(scenarios.get("healthy")) as lab:
            await draft_topology("nosuch.com", lab_options(lab, 10))

    with pytest.raises(DraftError) as caught:
        asyncio.run(main())
    assert caught.value.exit_code == 2 and "NXDOMAIN" in str(caught.value)


# --- the pure part, on hand-built answers ----------------------------------------------------


def view(mx: list[str] | Outcome, spf: str | None = None, dkim: dict[str, str] | None = None,
         dmarc: str | None = None, exo_a: str | None = None,
         autodiscover: str | None = None) -> DnsView:
    domain = "example.com"

    def txt(name: str, text: str | None) -> object:
        if text is None:
            return obs(RESOLVER, name, "TXT", Outcome.NODATA)
        return obs(RESOLVER, name, "TXT", answer=[(name, "TXT", 300, f'"{text}"')])

    if isinstance(mx, Outcome):
        mx_obs = obs(RESOLVER, f"{domain}.", "MX", mx)
    else:
        mx_obs = obs(RESOLVER, f"{domain}.", "MX", Outcome.ANSWER if mx else Outcome.NODATA,
                     [(f"{domain}.", "MX", 3600, m) for m in mx])
    keys = {}
    for selector in ("selector1", "selector2", "google", "k1"):
        name = f"{selector}._domainkey.{domain}."
        target = (dkim or {}).get(selector)
        if target is None:
            keys[selector] = obs(RESOLVER, name, "TXT", Outcome.NXDOMAIN)
        else:
            keys[selector] = obs(RESOLVER, name, "TXT", answer=[
                (name, "CNAME", 300, target + "."), (target + ".", "TXT", 300, '"v=DKIM1; p=MII"')])
    host = classic_exo_host(domain) + "."
    exo = obs(RESOLVER, host, "A", Outcome.ANSWER if exo_a else Outcome.NXDOMAIN,
              [(host, "A", 300, exo_a)] if exo_a else [])
    auto = f"autodiscover.{domain}."
    return DnsView(
        domain, mx_obs, txt(f"{domain}.", spf), txt(f"_dmarc.{domain}.", dmarc),
        txt(f"_mta-sts.{domain}.", None),
        obs(RESOLVER, auto, "CNAME", Outcome.ANSWER if autodiscover else Outcome.NXDOMAIN,
            [(auto, "CNAME", 300, autodiscover + ".")] if autodiscover else []),
        keys, [RESOLVER.label], exo_host=exo)


EXO_SPF = "v=spf1 include:spf.protection.outlook.com -all"
EXO_DKIM = {"selector1": "selector1-example-com._domainkey.examplecorp.onmicrosoft.com"}


def drafted(v: DnsView):
    text = render(compose(v))
    return text, check(text)


def test_mimecast_in_front_of_exchange_online_is_a_gateway_tier():
    text, topology = drafted(view(["10 eu-smtp-inbound-1.mimecast.com.",
                                   "10 eu-smtp-inbound-2.mimecast.com."],
                                  spf="v=spf1 include:eu._netblocks.mimecast.com "
                                  "include:spf.protection.outlook.com ~all", dkim=EXO_DKIM))
    gateway = topology.tiers["mimecast"]
    assert gateway.kind in ("mimecast", "smtp-gateway")
    assert list(gateway.hosts) == ["eu-smtp-inbound-1.mimecast.com",  # type: ignore[union-attr]
                                   "eu-smtp-inbound-2.mimecast.com"]
    exo = topology.tiers["exchange-online"]
    assert isinstance(exo, ExchangeOnlineTier)
    assert exo.tenant == "examplecorp.onmicrosoft.com" and exo.accepts_only_from == "mimecast"
    # The classic inbound host does not resolve here: kept, and said so.
    assert exo.inbound_host == "example-com.mail.protection.outlook.com"
    assert "GUESS: the classic name does not resolve (NXDOMAIN)" in text
    assert "is Mimecast" in text


@pytest.mark.parametrize(("host", "tier"), [
    ("mx1.hc1234-56.iphmx.com", "cisco-secure-email"),
    ("d123456a.ess.barracudanetworks.com", "barracuda"),
    ("example-com.in.tmes.trendmicro.com", "trend-micro"),
    ("mail.example.net", "gateway"),
])
def test_other_gateways_in_front_of_exchange_online(host, tier):
    _, topology = drafted(view([f"10 {host}."], spf=EXO_SPF, exo_a="198.51.100.7"))
    assert isinstance(topology.tiers[tier], SmtpGatewayTier)
    assert FlowGraph(topology).hops() == ["public-dns", tier, "exchange-online"]
    exo = topology.tiers["exchange-online"]
    assert isinstance(exo, ExchangeOnlineTier) and exo.tenant is None  # no DKIM: commented


def test_the_newer_mx_microsoft_host_is_exchange_online_itself():
    _, topology = drafted(view(["0 example-com.o-v1.mx.microsoft."], spf=EXO_SPF))
    assert FlowGraph(topology).hops() == ["public-dns", "exchange-online"]
    exo = topology.tiers["exchange-online"]
    assert isinstance(exo, ExchangeOnlineTier)
    assert exo.inbound_host == "example-com.o-v1.mx.microsoft"


def test_an_mx_beside_the_gateway_is_noted_not_declared():
    text, topology = drafted(view(["10 mx0a-001234.pphosted.com.",
                                   "20 example-com.mail.protection.outlook.com."],
                                  spf=EXO_SPF, exo_a="198.51.100.7"))
    dns = topology.tiers["public-dns"]
    assert dns.kind == "dns" and dns.expect.mx == ["mx0a-001234.pphosted.com"]
    assert "NOTE: the MX also names example-com.mail.protection.outlook.com" in text


@pytest.mark.parametrize(("mx", "needle"), [
    (["10 aspmx.l.google.com.", "20 alt1.aspmx.l.google.com."], "Google Workspace"),
    (["10 mail.example.net."], "no record names the mailbox service"),
])
def test_a_mailbox_service_that_cannot_be_told_is_not_guessed(mx, needle):
    with pytest.raises(DraftError) as caught:
        compose(view(mx, spf="v=spf1 mx -all"))
    assert caught.value.exit_code == 3 and needle in str(caught.value)


def test_google_in_front_of_exchange_online_is_drafted_and_noted():
    text, topology = drafted(view(["1 smtp.google.com."], spf=EXO_SPF,
                                  autodiscover="autodiscover.outlook.com"))
    assert "google-workspace" in topology.tiers
    assert "NOTE: Google Workspace receives the mail before Exchange Online" in text


@pytest.mark.parametrize(("mx", "code", "needle"), [
    (Outcome.NXDOMAIN, 2, "does not exist"),
    (Outcome.TIMEOUT, 3, "TIMEOUT"),
    (Outcome.SERVFAIL, 3, "SERVFAIL"),
    ([], 3, "no MX record"),
    (["0 ."], 3, "null MX"),
])
def test_nothing_sound_to_draft_from(mx, code, needle):
    with pytest.raises(DraftError) as caught:
        compose(view(mx))
    assert caught.value.exit_code == code and needle in str(caught.value)


def test_several_spf_records_declare_no_spf_and_third_party_dkim_keeps_its_target():
    v = view(["10 mx0a-001234.pphosted.com."], spf=EXO_SPF,
             dkim={**EXO_DKIM, "k1": "dkim.mcsv.net"})
    v.txt = obs(RESOLVER, "example.com.", "TXT", answer=[
        ("example.com.", "TXT", 300, '"v=spf1 -all"'),
        ("example.com.", "TXT", 300, '"v=spf1 ~all"')])
    _, topology = drafted(v)
    dns = topology.tiers["public-dns"]
    assert dns.kind == "dns" and dns.expect.spf is None
    assert dns.expect.dkim is not None
    assert dns.expect.dkim.selectors == ["selector1", "k1"]
    assert dns.expect.dkim.targets == {"k1": "dkim.mcsv.net"}


def test_an_unreadable_mta_sts_policy_leaves_its_mode_to_fill_in():
    v = view(["0 example-com.mail.protection.outlook.com."], spf=EXO_SPF)
    v.mta_sts = obs(RESOLVER, "_mta-sts.example.com.", "TXT", answer=[
        ("_mta-sts.example.com.", "TXT", 300, '"v=STSv1; id=1"')])
    v.policy = PolicyFetch("https://mta-sts.example.com/.well-known/mta-sts.txt",
                           error="TLS or certificate failure: expired")
    text, topology = drafted(v)
    dns = topology.tiers["public-dns"]
    assert dns.kind == "dns" and dns.expect.mta_sts is None
    assert "# mta_sts:" in text and "# mode: enforce" in text
    assert "could not be read (TLS or certificate failure" in text


def test_record_text_cannot_break_out_of_its_comment():
    v = view(["0 example-com.mail.protection.outlook.com."],
             dmarc="v=DMARC1; p=none\\010topology: pwned")
    text, topology = drafted(v)
    assert topology.topology == "example"
    assert "\ntopology: pwned" not in text


def test_providers_and_tenant_names():
    assert recognize("MX0A-001234.pphosted.com.").flavour == "pod"  # type: ignore[union-attr]
    assert recognize("evilpphosted.com") is None
    assert exo_tenant_from_dkim(
        "selector1-northwind-com._domainkey.northwind.n-v1.dkim.mail.microsoft.") == (
        "northwind.onmicrosoft.com")
    assert exo_tenant_from_dkim("dkim.mcsv.net") is None


def test_init_writes_a_file_graph_accepts_and_never_replaces_one_unasked(capsys, tmp_path):
    import subprocess
    import sys

    from mailtrace.cli import main
    from tests.support.paths import ROOT

    proc = subprocess.Popen([sys.executable, "-m", "mailtrace", "lab", "healthy",
                             "--lab-file", str(tmp_path / "lab.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        while not (tmp_path / "lab.yaml").exists():
            if not proc.stdout.readline():
                raise AssertionError(proc.communicate()[1])
        out = tmp_path / "northwind.yaml"
        argv = ["init", "--domain", "northwind.com", "--lab-file", str(tmp_path / "lab.yaml"),
                "--output", str(out)]
        assert main(argv) == 0
        assert main(["graph", "--topology", str(out)]) == 0
        assert "public-dns (dns) → exchange-online" in capsys.readouterr().out
        before = out.read_text(encoding="utf-8")
        assert main(argv) == 2 and "--force" in capsys.readouterr().err
        assert out.read_text(encoding="utf-8") == before
        assert main([*argv[:-2], "--domain", "nosuch.com"]) == 2
        assert "NXDOMAIN" in capsys.readouterr().err
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert not Path(tmp_path / "lab.yaml").exists()
