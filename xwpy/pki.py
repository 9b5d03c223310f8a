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
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
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


# A server certificate's validity. Browsers refuse more than 398 days (CA/Browser Forum), and
# Mozilla's "intermediate" profile (5.7, the one sslyze checks) more than 366: a year it is.
SERVER_CERT_DAYS = 365
MAX_SERVER_CERT_DAYS = 366


def make_server_cert(ca_cert_pem: bytes, ca_key_pem: bytes, names: list[str],
                     days: int = SERVER_CERT_DAYS) -> tuple[bytes, bytes]:
    """A server certificate for ``names`` (host names and IP addresses), signed by the site CA."""
    if not 1 <= days <= MAX_SERVER_CERT_DAYS:
        raise ValueError(f"a server certificate lasts 1 to {MAX_SERVER_CERT_DAYS} days, not {days}")
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


# Mozilla's "intermediate" server-side TLS profile (5.7): TLS 1.2 and 1.3, forward-secret AEAD
# suites only. Its DHE suites are left out (they would need 2048-bit DH parameters, and the
# certificate is ECDSA: only the ECDHE-ECDSA ones are ever chosen); TLS 1.3's suites are OpenSSL's
# defaults, which are the profile's. Key exchange on P-256 only (a subset of the profile's curves:
# pyOpenSSL sets one group, and without it OpenSSL would also offer X448 and P-521).
INTERMEDIATE_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
])


def server_context(cert_pem: bytes, key_pem: bytes):
    """The coordinator's TLS (a pyOpenSSL context): the intermediate profile above."""
    from twisted.internet import ssl

    cert = ssl.PrivateCertificate.loadPEM(cert_pem + b"\n" + key_pem)
    options = ssl.CertificateOptions(
        privateKey=cert.privateKey.original,
        certificate=cert.original,
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
        acceptableCiphers=ssl.AcceptableCiphers.fromOpenSSLCipherString(INTERMEDIATE_CIPHERS),
    )
    ctx = options.getContext()
    ctx.set_tmp_ecdh(ec.SECP256R1())
    return ctx


def serial_of(cert_pem_or_der: bytes) -> int:
    """A certificate's serial number (PEM or DER)."""
    if cert_pem_or_der.lstrip().startswith(b"-----"):
        return x509.load_pem_x509_certificate(cert_pem_or_der).serial_number
    return x509.load_der_x509_certificate(cert_pem_or_der).serial_number


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    """The listening port's TLS, whose certificate can be replaced while it serves: connections
    made after :meth:`use` get the new one, those already open keep theirs (nothing is dropped)."""

    def __init__(self, cert_pem: bytes, key_pem: bytes):
        self.use(cert_pem, key_pem)

    def use(self, cert_pem: bytes, key_pem: bytes) -> int:
        """Serve this certificate from now on; its serial number. Raises (and keeps serving the
        old one) if the pair is unusable: a key that is not the certificate's, a damaged file."""
        ctx = server_context(cert_pem, key_pem)
        ctx.check_privatekey()
        self._context, self.serial = ctx, serial_of(cert_pem)
        return self.serial

    def serverConnectionForTLS(self, tlsProtocol):
        from OpenSSL import SSL

        return SSL.Connection(self._context, None)


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
