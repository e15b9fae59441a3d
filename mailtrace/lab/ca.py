"""The lab's certificate authority: real X.509 certificates for the lab's TLS servers.

SMTP STARTTLS and HTTPS in the lab are checked the way they are in the field: the chain is
validated against a CA file (this CA's, handed to the client as ``--ca-file``), the name
against the host, the dates against the clock. Faults are certificates made wrong on
purpose: expired, or issued for another name. Keys are ECDSA P-256, made in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def spki_sha256(cert: x509.Certificate) -> str:
    """SHA-256 of a certificate's SubjectPublicKeyInfo, hex: a TLSA record's data for
    selector 1, matching type 1 (RFC 6698 §2.1)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


@dataclass(frozen=True)
class Issued:
    """One server certificate: PEM files on disk (the chain: the leaf, then the lab CA,
    as a server sends it so that DANE-TA can match the issuer)."""

    cert_file: Path
    key_file: Path
    names: tuple[str, ...]
    not_after: dt.datetime
    certificate: x509.Certificate

    def tlsa_ee(self) -> str:
        """DANE-EE, SPKI, SHA-256 (``3 1 1``) for this certificate."""
        return f"3 1 1 {spki_sha256(self.certificate)}"

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailtrace lab"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


class LabCA:
    """A throwaway CA living in a temporary folder; ``close()`` removes it."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="mailtrace-ca-")
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        subject = _name("mailtrace lab CA")
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                              content_commitment=False, key_encipherment=False,
                              data_encipherment=False, key_agreement=False,
                              encipher_only=False, decipher_only=False),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = Path(self._dir.name) / "lab-ca.pem"
        self.ca_file.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._count = 0

    def issue(self, *names: str, expired: bool = False) -> Issued:
        """A server certificate for ``names`` (DNS names or addresses), valid now — or,
        with ``expired``, one whose validity ended two days ago."""
        if not names:
            raise ValueError("a certificate needs at least one name")
        now = dt.datetime.now(dt.UTC)
        if expired:
            not_before, not_after = now - dt.timedelta(days=92), now - dt.timedelta(days=2)
        else:
            not_before, not_after = now - dt.timedelta(days=1), now + dt.timedelta(days=29)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self._count += 1
        folder = Path(self._dir.name)
        cert_file = folder / f"server-{self._count}.pem"
        key_file = folder / f"server-{self._count}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                              + self._cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
        return Issued(cert_file, key_file, tuple(names), not_after, cert)

    @property
    def certificate(self) -> x509.Certificate:
        """The CA's own certificate."""
        return self._cert

    def tlsa_ta(self) -> str:
        """DANE-TA, SPKI, SHA-256 (``2 1 1``) for this CA."""
        return f"2 1 1 {spki_sha256(self._cert)}"

    def close(self) -> None:
        self._dir.cleanup()
