"""A proposed change laid over DNS answers as the zone will once the change is made."""

from __future__ import annotations

import asyncio
import time

from mailtrace.clients.dns import DnsClient, Outcome, Server
from mailtrace.clients.dns_lookup import DnsLookup
from mailtrace.clients.dns_overlay import CHANGE_SERVER, OverlaidDnsClient, presentation

RESOLVER = Server("resolver", "127.0.0.1", 9)
LONG_SPF = "v=spf1 " + " ".join(f"ip4:192.0.2.{i}" for i in range(40)) + " -all"


def _overlay() -> OverlaidDnsClient:
    return OverlaidDnsClient(DnsClient([RESOLVER]), {
        ("contoso.com", "TXT"): (LONG_SPF,),
        ("contoso.com.", "MX"): (),
        ("selector3._domainkey.contoso.com", "CNAME"): ("selector3.example.net.",),
        ("selector3.example.net", "TXT"): ("v=DKIM1; k=rsa; p=MIIB",),
    })


def test_a_long_txt_value_is_split_into_strings_and_reads_back_whole():
    text = presentation("TXT", LONG_SPF)
    assert text.count('" "') == len(LONG_SPF) // 255
    answer = asyncio.run(DnsLookup(_overlay(), time.monotonic() + 5)("contoso.com", "TXT"))
    assert (answer.status, answer.data) == ("answer", (LONG_SPF,))
    assert answer.source == CHANGE_SERVER.label  # never passed off as a live answer


def test_a_removed_rrset_is_nodata_and_an_added_cname_is_followed_by_a_resolver():
    overlay = _overlay()

    async def ask() -> tuple[Outcome, tuple[str, ...], tuple[str, ...]]:
        deadline = time.monotonic() + 5
        mx = await overlay.lookup("contoso.com", "MX", deadline)
        dkim = await overlay.lookup("selector3._domainkey.contoso.com", "TXT", deadline)
        server = await overlay.query(Server("authoritative", "127.0.0.1", 9, "ns1.x"),
                                     "selector3._domainkey.contoso.com", "TXT", deadline)
        return (mx.outcome, tuple(r.type for r in dkim.answer),
                tuple(r.type for r in server.answer))

    assert asyncio.run(ask()) == (Outcome.NODATA, ("CNAME", "TXT"), ("CNAME",))
