"""The trust anchor DNSSEC validation starts from: the root zone's keys.

IANA's KSK-2017 and KSK-2024 by default (https://data.iana.org/root-anchors/
root-anchors.xml), or a file in zone-file syntax — DS or DNSKEY records owned by ".", as
Unbound's ``trust-anchor-file`` and BIND's ``trust-anchors`` take them — for a lab, a test
bed or an internal root with keys of its own (RFC 4033 §2, "trust anchor").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # dnspython reads an anchor file; the built-in anchor needs none of it
    import dns.name

#: The root zone's key-signing keys, as DS records (IANA root-anchors.xml: KSK-2017,
#: key tag 20326, and KSK-2024, key tag 38696, which signs the root from 2026-10-11).
IANA_ROOT_DS: tuple[str, ...] = (
    "20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
    "38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16",
)
#: A trust anchor file larger than this is not one.
MAX_ANCHOR_BYTES = 64 * 1024


class TrustAnchorError(ValueError):
    """A trust anchor file that cannot be used; ``str()`` is ``file[:line]: what``."""


@dataclass(frozen=True)
class TrustAnchor:
    """The root's anchor: DS records (digests of its KSKs) and/or its DNSKEY records,
    as rdata text."""

    ds: tuple[str, ...] = IANA_ROOT_DS
    dnskey: tuple[str, ...] = ()
    source: str = "IANA root KSK-2017 and KSK-2024 (built in)"

    @classmethod
    def from_file(cls, path: Path) -> TrustAnchor:
        """DS or DNSKEY records owned by "." (zone-file syntax, one per line; comments
        after ";" and blank lines allowed; TTL and class optional)."""
        import dns.name
        import dns.rdatatype

        try:
            if path.stat().st_size > MAX_ANCHOR_BYTES:
                raise TrustAnchorError(f"{path}: larger than {MAX_ANCHOR_BYTES} bytes: not "
                                       "a trust anchor file")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TrustAnchorError(f"{path}: cannot read the trust anchor: {exc}") from None
        ds: list[str] = []
        keys: list[str] = []
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split(";", 1)[0].strip()
            if not line:
                continue
            owner, rdtype, data = _record(line, f"{path}:{number}")
            if owner != dns.name.root:
                raise TrustAnchorError(f"{path}:{number}: the anchor must be for the root "
                                       f"zone '.', not {owner}")
            (ds if rdtype == dns.rdatatype.DS else keys).append(data)
        if not ds and not keys:
            raise TrustAnchorError(f"{path}: no DS or DNSKEY record for '.'")
        return cls(tuple(ds), tuple(keys), str(path))


def _record(line: str, where: str) -> tuple[dns.name.Name, int, str]:
    """``owner [ttl] [class] type rdata`` -> (owner, type, rdata in canonical text)."""
    import dns.exception
    import dns.name
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    tokens = line.split()
    try:
        owner = dns.name.from_text(tokens[0])
        rest = tokens[1:]
        while rest and (rest[0].isdigit() or rest[0].upper() in ("IN", "CLASS1")):
            rest = rest[1:]
        rdtype = dns.rdatatype.from_text(rest[0])
        if rdtype not in (dns.rdatatype.DS, dns.rdatatype.DNSKEY):
            raise TrustAnchorError(f"{where}: expected a DS or DNSKEY record, not {rest[0]}")
        rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, " ".join(rest[1:]))
    except TrustAnchorError:
        raise
    except (IndexError, dns.exception.DNSException, ValueError) as exc:
        raise TrustAnchorError(f"{where}: not a DS or DNSKEY record ({exc})") from None
    return owner, rdtype, rdata.to_text()
