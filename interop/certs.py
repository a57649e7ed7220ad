"""A throwaway CA and one server certificate for loopback homeservers.

The certificate is valid for IP 127.0.0.1 to 127.0.0.16 (the harness's nodes with
distinct hosts), IP ::1 and DNS ``localhost`` (no ``*.localhost``:
Synapse's verifier rejects it), so every loopback node, Kairan or Synapse, can serve it and
every peer can verify it against the CA.  Keys are EC P-256: fast to make, accepted by both.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: The certificate covers 127.0.0.1 to 127.0.0.<LOOPBACK_HOSTS>.
LOOPBACK_HOSTS = 16


@dataclass(frozen=True)
class CertPaths:
    ca: Path
    """The CA certificate (PEM): what clients and peers trust."""
    certificate: Path
    """The server certificate followed by the CA certificate (PEM chain)."""
    private_key: Path
    """The server's private key (PEM, PKCS#8, unencrypted)."""


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kairan interop throwaway CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_certs(directory: Path, *, days: int = 7) -> CertPaths:
    """Write ``ca.pem``, ``server.pem`` (leaf + CA) and ``server.key`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(hours=1)
    not_after = now + datetime.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Kairan interop CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    *(
                        x509.IPAddress(ipaddress.ip_address(f"127.0.0.{i}"))
                        for i in range(1, LOOPBACK_HOSTS + 1)
                    ),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )

    paths = CertPaths(
        ca=directory / "ca.pem",
        certificate=directory / "server.pem",
        private_key=directory / "server.key",
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    paths.ca.write_bytes(ca_pem)
    paths.certificate.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
    paths.private_key.write_bytes(_pem_key(leaf_key))
    paths.private_key.chmod(0o600)
    return paths
