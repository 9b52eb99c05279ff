"""A self-signed certificate for the simulator's TLS port, made at run time.

The legacy and MyTeslaMate streaming hosts are ``wss://``; TeslaMate reaches a self-hosted
one with ``TESLA_WSS_TLS_ACCEPT_INVALID_CERTS=true``. Nothing is downloaded or kept: the key
and certificate live in a temporary directory only while the context loads them.
"""

from __future__ import annotations

import ipaddress
import ssl
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed_pem(host: str, now: datetime) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for `host`, valid a year from `now`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([alt, x509.DNSName("localhost")]), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(host: str, now: datetime) -> ssl.SSLContext:
    """A server-side TLS context with a fresh self-signed certificate for `host`."""
    cert, key = self_signed_pem(host, now)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_path.write_bytes(cert)
        key_path.write_bytes(key)
        key_path.chmod(0o600)
        context.load_cert_chain(cert_path, key_path)
    return context
