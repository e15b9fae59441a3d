"""A resolver that still holds an old answer in its cache: the lab's model of a public
resolver that asked before a change and keeps the answer until its TTL runs out.

Questions it has an entry for are answered from the entry, with the TTL that remains
(RFC 1035 §7.4: a cached record's TTL counts down); once the entry expires, and for every
other question, it forwards like the lab's ``ForwardingResolver``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from mailtrace.lab.dns_server import ForwardingResolver, Resolution, normalise_name


class CachingResolver(ForwardingResolver):
    def __init__(
        self,
        forwarders: Mapping[str, Sequence[tuple[str, int]]],
        cached: Mapping[tuple[str, str], tuple[Sequence[str], int]],
        **kwargs: object,
    ) -> None:
        """``cached``: (name, type) -> (rdata in master-file syntax, seconds left)."""
        super().__init__(forwarders, **kwargs)  # type: ignore[arg-type]
        now = time.monotonic()
        self.cache: dict[tuple[dns.name.Name, dns.rdatatype.RdataType],
                         tuple[list[str], float]] = {
            (normalise_name(name), dns.rdatatype.from_text(rdtype)): (list(data), now + ttl)
            for (name, rdtype), (data, ttl) in cached.items()
        }

    async def _resolve(self, name: dns.name.Name, qtype: dns.rdatatype.RdataType,
                       dnssec: bool = False) -> Resolution:
        entry = self.cache.get((normalise_name(name), qtype))
        if entry is not None:
            data, expires = entry
            left = int(expires - time.monotonic())
            if left > 0:
                rrset = dns.rrset.from_text_list(name, left, "IN", qtype, data)
                return Resolution(dns.rcode.NOERROR, [rrset])
        return await super()._resolve(name, qtype, dnssec)
