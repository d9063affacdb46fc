"""A development certificate authority: the CA and the server certificate `make run` serves
HTTPS and MQTT over TLS with (`GRIDLEDGER_TLS=dev`), and client certificates for devices.

Files live in one folder (`<data dir>/tls/`): `ca.pem`/`ca.key` (the CA, ten years),
`server.pem`/`server.key` (SAN localhost, 127.0.0.1, ::1; one year). They are created on
first use and reused afterwards, so a client that trusts `ca.pem` once keeps trusting it;
a server certificate that expires within 30 days, lacks a name, was not issued by this CA
or does not match its key is replaced. Keys are ECDSA P-256, written 0600. A development
CA only: its key sits next to its certificate, unencrypted.

Client certificates (`issue_client_certificate`) carry the device's name as common name
and `clientAuth` usage; a server identifies the device by `fingerprint` (SHA-256 of the
certificate's DER), which stays stable across restarts and is what a registry stores.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_SERVER_NAMES = ("localhost", "127.0.0.1", "::1")
CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=365)
RENEW_BEFORE = timedelta(days=30)
CA_NAME = "GridLedger development CA"


@dataclass(frozen=True)
class CertificateAuthority:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path


@dataclass(frozen=True)
class ServerFiles:
    """What a TLS server loads (cert chain, key) and what its clients trust (CA)."""

    ca_file: Path
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class IssuedCertificate:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return _key_pem(self.key)


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER encoding, lower-case hex (what `openssl x509 -fingerprint -sha256`
    prints, without colons)."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically, readable by the owner only."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    tmp.replace(path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _now() -> datetime:
    return datetime.now(UTC)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """Signatures (ECDSA handshakes); certificate and CRL signing for the CA only."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def ensure_ca(directory: Path) -> CertificateAuthority:
    """The CA in `directory` (ca.pem, ca.key), created when either file is missing."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "ca.pem", directory / "ca.key"
    if cert_file.exists() and key_file.exists():
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_file} is not an EC key")
        return CertificateAuthority(
            x509.load_pem_x509_certificate(cert_file.read_bytes()), key, cert_file
        )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_file, _key_pem(key))
    _write_public(cert_file, certificate.public_bytes(serialization.Encoding.PEM))
    return CertificateAuthority(certificate, key, cert_file)


def _san(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _issue(
    ca: CertificateAuthority,
    *,
    common_name: str,
    usage: x509.ObjectIdentifier,
    names: tuple[str, ...] = (),
    validity: timedelta = LEAF_VALIDITY,
) -> IssuedCertificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + validity, ca.certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if names:
        builder = builder.add_extension(_san(names), critical=False)
    return IssuedCertificate(builder.sign(ca.key, hashes.SHA256()), key)


def _server_cert_usable(
    cert_file: Path, key_file: Path, ca: CertificateAuthority, names: tuple[str, ...]
) -> bool:
    if not (cert_file.exists() and key_file.exists()):
        return False
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        certificate.verify_directly_issued_by(ca.certificate)
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    if key.public_key() != certificate.public_key():
        return False
    present = {str(n) for n in san.get_values_for_type(x509.DNSName)} | {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }
    wanted = {str(ipaddress.ip_address(n)) if _is_ip(n) else n for n in names}
    return wanted <= present and certificate.not_valid_after_utc - _now() > RENEW_BEFORE


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def ensure_server_files(
    directory: Path, names: tuple[str, ...] = DEFAULT_SERVER_NAMES
) -> ServerFiles:
    """The CA and a server certificate for `names` in `directory`: reused when present and
    still good (issued by this CA, covering `names`, more than 30 days left), else issued."""
    ca = ensure_ca(directory)
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    if not _server_cert_usable(cert_file, key_file, ca, names):
        issued = _issue(
            ca, common_name=names[0], usage=ExtendedKeyUsageOID.SERVER_AUTH, names=names
        )
        _write_private(key_file, issued.key_pem())
        # the chain a server presents: its certificate, then the CA's
        _write_public(
            cert_file,
            issued.cert_pem() + ca.certificate.public_bytes(serialization.Encoding.PEM),
        )
    return ServerFiles(ca_file=ca.cert_file, cert_file=cert_file, key_file=key_file)


def issue_client_certificate(
    ca: CertificateAuthority, common_name: str, validity: timedelta = LEAF_VALIDITY
) -> IssuedCertificate:
    """A client certificate (`clientAuth`) for a device, e.g. a VEN or a meter, named by
    `common_name`; identify it afterwards by `.fingerprint`. Nothing is written: the caller
    hands the key to the device and records the fingerprint."""
    return _issue(
        ca, common_name=common_name, usage=ExtendedKeyUsageOID.CLIENT_AUTH, validity=validity
    )
