"""An in-memory Lookup for the mail-authentication checks: hand-built DNS data, no
sockets (the lab tests cover the real DNS path)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mailtrace.mailauth.lookup import Answer, absolute

Zone = Mapping[str, Mapping[str, Sequence[str] | str]]


def zone_lookup(zone: Zone, *, errors: Sequence[tuple[str, str]] = (), ttl: int = 300):
    """``zone``: name -> {type: [data...]} (a str value: "NXDOMAIN"); a CNAME is followed.
    ``errors``: (name, type) questions that fail (a timeout)."""
    data = {absolute(n): dict(types) for n, types in zone.items()}
    failing = {(absolute(n), t) for n, t in errors}
    asked: list[tuple[str, str]] = []

    async def lookup(name: str, rdtype: str) -> Answer:
        key = absolute(name)
        asked.append((key, rdtype))
        chain: list[str] = []
        for _ in range(8):
            if (key, rdtype) in failing:
                return Answer(key, rdtype, "error", error="TIMEOUT", source="test zone")
            types = data.get(key)
            if types is None:
                return Answer(absolute(name), rdtype, "nxdomain", source="test zone",
                              chain=tuple(chain))
            if "CNAME" in types and rdtype != "CNAME":
                key = absolute(str(next(iter(types["CNAME"]))))
                chain.append(key)
                continue
            records = types.get(rdtype)
            if not records:
                return Answer(absolute(name), rdtype, "nodata", source="test zone",
                              chain=tuple(chain))
            return Answer(absolute(name), rdtype, "answer", tuple(records), ttl,
                          source="test zone", chain=tuple(chain))
        return Answer(absolute(name), rdtype, "error", error="CNAME loop")

    lookup.asked = asked  # type: ignore[attr-defined]
    return lookup
