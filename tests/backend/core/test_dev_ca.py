"""The development CA: made once and reused, server certificates for localhost, client
certificates that a TLS server checks and identifies by fingerprint (real sockets)."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from backend.core.dev_ca import (
    IssuedCertificate,
    ensure_ca,
    ensure_server_files,
    fingerprint,
    issue_client_certificate,
)


def test_ca_and_server_certificate_are_made_once_then_reused(tmp_path):
    first = ensure_server_files(tmp_path)
    contents = {p: p.read_bytes() for p in (first.ca_file, first.cert_file, first.key_file)}
    again = ensure_server_files(tmp_path)
    assert again == first
    assert {p: p.read_bytes() for p in contents} == contents  # nothing re-issued
    assert (tmp_path / "ca.key").stat().st_mode & 0o777 == 0o600
    assert first.key_file.stat().st_mode & 0o777 == 0o600

    ca = x509.load_pem_x509_certificate(first.ca_file.read_bytes())
    server, chained_ca = x509.load_pem_x509_certificates(first.cert_file.read_bytes())
    assert chained_ca == ca  # the server presents its chain
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost"}
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_server_certificate_is_reissued_for_new_names_by_the_same_ca(tmp_path):
    first = ensure_server_files(tmp_path, ("localhost",))
    before_ca, before_cert = first.ca_file.read_bytes(), first.cert_file.read_bytes()
    ensure_server_files(tmp_path, ("localhost", "gridledger.test"))
    assert first.ca_file.read_bytes() == before_ca
    assert first.cert_file.read_bytes() != before_cert
    server = x509.load_pem_x509_certificates(first.cert_file.read_bytes())[0]
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "gridledger.test"}


def test_server_certificate_of_another_ca_is_replaced(tmp_path):
    files = ensure_server_files(tmp_path / "a")
    other = ensure_server_files(tmp_path / "b")
    files.cert_file.write_bytes(other.cert_file.read_bytes())
    files.key_file.write_bytes(other.key_file.read_bytes())
    ensure_server_files(tmp_path / "a")
    server = x509.load_pem_x509_certificates(files.cert_file.read_bytes())[0]
    server.verify_directly_issued_by(x509.load_pem_x509_certificate(files.ca_file.read_bytes()))


def _write(issued: IssuedCertificate, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "client.pem").write_bytes(issued.cert_pem())
    (folder / "client.key").write_bytes(issued.key_pem())
    return folder / "client.pem", folder / "client.key"


def _mutual_tls_handshake(
    files, client_cert: Path, client_key: Path
) -> tuple[bytes | None, BaseException | None]:
    """One handshake on a real socket: a server requiring a client certificate of the CA;
    returns the certificate the server saw (DER) or the server's error."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    server_ctx.load_cert_chain(files.cert_file, files.key_file)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(files.ca_file)
    seen: dict[str, object] = {}
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        connection, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(connection, server_side=True) as tls:
                seen["cert"] = tls.getpeercert(binary_form=True)
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            seen["error"] = exc

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=files.ca_file)
    client_ctx.load_cert_chain(client_cert, client_key)
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client_ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.recv(2)  # TLS 1.3: the server checks the client certificate after our Finished
    except (ssl.SSLError, OSError):
        pass
    thread.join(5)
    listener.close()
    return seen.get("cert"), seen.get("error")  # type: ignore[return-value]


def test_client_certificate_is_accepted_and_identified_by_fingerprint(tmp_path):
    files = ensure_server_files(tmp_path / "tls")
    ca = ensure_ca(tmp_path / "tls")
    ven = issue_client_certificate(ca, "ven-0042")
    assert ven.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "ven-0042"
    )
    usage = ven.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    ven.certificate.verify_directly_issued_by(ca.certificate)

    seen, error = _mutual_tls_handshake(files, *_write(ven, tmp_path / "ven"))
    assert error is None and seen is not None
    assert hashlib.sha256(seen).hexdigest() == ven.fingerprint
    assert fingerprint(x509.load_der_x509_certificate(seen)) == ven.fingerprint
    assert issue_client_certificate(ca, "ven-0042").fingerprint != ven.fingerprint  # per cert


def test_client_certificate_of_another_ca_is_refused(tmp_path):
    files = ensure_server_files(tmp_path / "tls")
    stranger = issue_client_certificate(ensure_ca(tmp_path / "other"), "ven-0042")
    seen, error = _mutual_tls_handshake(files, *_write(stranger, tmp_path / "stranger"))
    assert seen is None
    assert isinstance(error, ssl.SSLError)
    assert "certificate verify failed" in str(error)


@pytest.mark.parametrize("name", ["ca.pem", "ca.key"])
def test_a_missing_ca_file_makes_a_new_ca(tmp_path, name):
    first = ensure_ca(tmp_path)
    (tmp_path / name).unlink()
    assert fingerprint(ensure_ca(tmp_path).certificate) != fingerprint(first.certificate)
