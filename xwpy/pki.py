"""The site's certificates: a CA made at ``xwpy init``, the coordinator's server certificate signed
by it, and the TLS settings both ends use. Workers and clients trust the site CA only (pinning),
never the system's store."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def make_ca(site_name: str, days: int = 3650) -> tuple[bytes, bytes]:
    """A self-signed CA: (certificate PEM, key PEM)."""
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{site_name} xwpy site CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for n in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            entries.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(entries)


def make_server_cert(ca_cert_pem: bytes, ca_key_pem: bytes, names: list[str], days: int = 825) -> tuple[bytes, bytes]:
    """A server certificate for ``names`` (host names and IP addresses), signed by the site CA."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, None)
    key = _key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by its owner only, created with those rights (no window)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


# -- TLS for Twisted ---------------------------------------------------------------------------


def server_context_factory(cert_pem: bytes, key_pem: bytes):
    """TLS 1.2+ server options for the coordinator's listening port."""
    from twisted.internet import ssl

    cert = ssl.PrivateCertificate.loadPEM(cert_pem + b"\n" + key_pem)
    return ssl.CertificateOptions(
        privateKey=cert.privateKey.original,
        certificate=cert.original,
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
    )


@implementer(IPolicyForHTTPS)
class PinnedPolicy:
    """A treq/Agent TLS policy that trusts the site CA only, with host name checks."""

    def __init__(self, ca_pem: bytes):
        from twisted.internet import ssl

        self._root = ssl.Certificate.loadPEM(ca_pem)

    def creatorForNetloc(self, hostname: bytes, port: int):
        from twisted.internet import ssl

        return ssl.optionsForClientTLS(hostname.decode("ascii"), trustRoot=self._root)


def client_ssl_context(ca_path: Path):
    """A stdlib SSL context trusting the site CA only (for the synchronous CLI client)."""
    import ssl

    ctx = ssl.create_default_context(cafile=str(ca_path))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx
