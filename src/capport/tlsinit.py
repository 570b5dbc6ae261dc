"""`capport tls init`: a local certificate authority and the portal's certificate.

For a laboratory or a first start without a certificate from a public CA.
Devices trust the portal only once they trust the local CA, so a real
deployment should use a certificate for tls.hostname from a CA that guests'
devices already trust.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from capport.config import Config
from capport.errors import ConfigError

CA_CERTIFICATE_NAME = "capport-ca.pem"
CA_KEY_NAME = "capport-ca-key.pem"

CA_LIFETIME = datetime.timedelta(days=3650)
# NOTE: Apple platforms are reported to reject TLS server certificates valid
# for more than 825 days, so the certificate stays at that limit.
SERVER_LIFETIME = datetime.timedelta(days=825)
# Accept clocks that run a little behind the gateway's.
BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The files `capport tls init` wrote."""

    ca_certificate: Path
    ca_key: Path
    certificate: Path
    key: Path
    # Base64 SHA-256 of the server certificate's SubjectPublicKeyInfo, the
    # form Chromium's --ignore-certificate-errors-spki-list takes.
    spki_sha256: str


def init_tls(config: Config, force: bool = False) -> TlsFiles:
    """Create a local CA and a certificate for tls.hostname and portal.address.

    The CA is written next to tls.certificate. Existing files are kept unless
    force is true, so a second run cannot replace a CA that devices trust.
    """
    tls = config.tls
    if tls.certificate is None or tls.key is None or tls.hostname is None:
        raise ConfigError(
            "tls.certificate, tls.key and tls.hostname are missing from the "
            "configuration; `capport tls init` needs all three"
        )
    directory = tls.certificate.parent
    files = [
        directory / CA_CERTIFICATE_NAME,
        directory / CA_KEY_NAME,
        tls.certificate,
        tls.key,
    ]
    existing = [str(path) for path in files if path.exists()]
    if existing and not force:
        raise ConfigError(
            f"{', '.join(existing)} already exist; pass --force to replace them "
            "(devices that trust the old CA must then trust the new one)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    tls.key.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_certificate = _ca_certificate(ca_key, tls.hostname, now)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _server_certificate(
        key, ca_key, ca_certificate, tls.hostname, config.portal.address, now
    )
    _write_key(files[1], ca_key)
    files[0].write_bytes(ca_certificate.public_bytes(serialization.Encoding.PEM))
    _write_key(tls.key, key)
    tls.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(
        files[0], files[1], tls.certificate, tls.key, spki_hash(certificate)
    )


def check_tls_files(config: Config) -> None:
    """Raise ConfigError unless tls.certificate and tls.key load as a pair.

    The daemon calls this before it changes anything on the host, because
    the HTTPS server would otherwise only fail once the firewall is in place.
    """
    tls = config.tls
    if tls.certificate is None or tls.key is None:
        return
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(tls.certificate, tls.key)
    except ssl.SSLError as error:
        # Caught before OSError, of which SSLError is a subclass.
        raise ConfigError(
            f"tls.certificate {tls.certificate} and tls.key {tls.key} are not a "
            f"valid PEM certificate and matching key: {error.reason or error}"
        ) from error
    except OSError as error:
        raise ConfigError(
            f"tls.certificate {tls.certificate} or tls.key {tls.key} cannot be "
            f"read: {error.strerror or error}; run `capport tls init` to create "
            "them or fix the paths"
        ) from error


def spki_hash(certificate: x509.Certificate) -> str:
    """Return the base64 SHA-256 of certificate's SubjectPublicKeyInfo."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def _ca_certificate(
    key: ec.EllipticCurvePrivateKey, hostname: str, now: datetime.datetime
) -> x509.Certificate:
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"capport local CA for {hostname}")]
    )
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _server_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_certificate: x509.Certificate,
    hostname: str,
    address: ipaddress.IPv4Address,
    now: datetime.datetime,
) -> x509.Certificate:
    public = key.public_key()
    # Browsers check only the subjectAltName (RFC 6125), never the CN.
    names: list[x509.GeneralName] = [
        x509.DNSName(hostname),
        x509.IPAddress(address),
    ]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_certificate.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + SERVER_LIFETIME)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created with mode 0600, so the key is never readable by others.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
