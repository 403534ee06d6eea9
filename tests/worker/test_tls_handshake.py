"""An https connection whose TLS handshake fails is a connection that never opened: no
request counted, retried (``--retries``) as a refused connect is, and said in words.

Until 2026-12-01 (a fresh user's) urllib3 filed the handshake's failures with the
request's: a server that accepted and never spoke was "Read timed out. (read
timeout=1.0)", 1 s being the connect timeout, with ``attempts`` 3 though no request went
out; one that closed at once was raw OpenSSL text ("[SSL: UNEXPECTED_EOF_WHILE_READING]
...") after one try, where a plain-HTTP close before the head gets three; a reset
counted three requests. A certificate that does not verify stays a single try (the same
certificate comes again), now in words too.

Real servers on 127.0.0.1: raw sockets that accept and then close, reset, stay silent or
answer plain HTTP, and TLS servers made with the ssl module on a certificate made here
(``cryptography``, else the ``openssl`` command).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import ssl
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hostile import raw_server

try:  # the certificate is made with cryptography where it is installed, else openssl
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
except ImportError:  # pragma: no cover
    x509 = None  # type: ignore[assignment]

from crawler.config import Policy
from crawler.exceptions import URLFailure
from crawler.worker.deadline import make_session
from crawler.worker.fetch import fetch
from crawler.worker.resolver import Resolver

RETRIES = 2
POLICY = Policy(
    deadline=8.0, connect_timeout=0.5, read_timeout=3.0, retries=RETRIES, backoff=0.02,
    block_private=False,
)  # fmt: skip
ANSWER = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for IP 127.0.0.1 and its key (PEM files in ``folder``)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    if x509 is not None:
        from_cryptography(cert, key)
    else:
        if shutil.which("openssl") is None:
            pytest.skip("neither cryptography nor openssl to make a certificate with")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=test", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    return cert, key


def from_cryptography(cert: Path, key: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "test")])
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    built = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(private.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(san, critical=False).sign(private, hashes.SHA256())
    )  # fmt: skip
    cert.write_bytes(built.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )  # fmt: skip


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


class Server:
    """A raw server on 127.0.0.1 that counts the connections it accepted."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self.connections = 0
        self.held: list[socket.socket] = []
        self._serve = serve
        self.listener = raw_server(self._accepted)
        self.url = f"https://127.0.0.1:{self.listener.getsockname()[1]}/a.png"

    def _accepted(self, conn: socket.socket) -> None:
        self.connections += 1
        self.held.append(conn)
        self._serve(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


def lookup(host: str, port: int) -> list[Any]:
    assert host == "127.0.0.1", host  # nothing else is ever looked up
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]


def outcome(server: Server, verify: str | bool = True) -> tuple[str, int, str]:
    """(status, attempts, error) of fetching ``server``'s URL with the worker's session."""
    session = make_session(POLICY, Resolver(lookup))
    session.verify = verify
    try:
        download = fetch(session, server.url, POLICY)
    except URLFailure as failure:
        return failure.status, failure.attempts, str(failure)
    return "ok", download.attempts, ""


def silent(conn: socket.socket) -> None:
    """Accept, and never say a word (the socket is closed with the server)."""


def close(conn: socket.socket) -> None:
    conn.close()


def reset(conn: socket.socket) -> None:
    """Read the ClientHello, then reset: the handshake is under way."""
    conn.settimeout(5)
    conn.recv(65536)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def plain_http(conn: socket.socket) -> None:
    """A plain-HTTP server: it reads (the ClientHello, to it a request) and answers."""
    conn.settimeout(5)
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    conn.close()


def tls_server(cert: Path, key: Path, after: Callable[[ssl.SSLSocket], None]) -> Callable:
    def serve(conn: socket.socket) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        conn.settimeout(5)
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(65536)  # the request
                after(tls)
        except OSError:
            pass  # the client refused the certificate, or went

    return serve


def garbage_record(tls: ssl.SSLSocket) -> None:
    """A TLS application-data record that does not decrypt, where the answer's head goes."""
    with socket.socket(fileno=os.dup(tls.fileno())) as plain:
        plain.sendall(b"\x17\x03\x03\x00\x20" + bytes(range(32)))


@pytest.mark.parametrize(
    ("serve", "status", "said"),
    [
        (silent, "timeout", "got no answer within the connect timeout (0.5 s)"),
        (close, "connection_error", "failed: the server closed the connection"),
        (reset, "connection_error", "failed: the server reset the connection"),
        (plain_http, "connection_error", "failed: wrong version number"),
    ],
    ids=["silent", "close", "reset", "plain_http"],
)
def test_a_failed_handshake_is_retried_and_no_request(
    serve: Callable[[socket.socket], None], status: str, said: str
) -> None:
    server = Server(serve)
    try:
        got, attempts, error = outcome(server)
    finally:
        server.close()
    assert (got, attempts) == (status, 0), error
    assert server.connections == RETRIES + 1, error
    assert error == f"TLS handshake with 127.0.0.1 {said}", error
    assert "[SSL" not in error and "_ssl.c" not in error and "read timeout" not in error, error


def test_a_certificate_that_does_not_verify_is_one_try_in_words(
    certificate: tuple[Path, Path],
) -> None:
    server = Server(tls_server(*certificate, lambda tls: tls.sendall(ANSWER)))
    try:
        got = outcome(server)
    finally:
        server.close()
    said = "TLS certificate of 127.0.0.1 not accepted: self-signed certificate"
    assert got == ("connection_error", 0, said)
    assert server.connections == 1


def test_a_trusted_certificate_is_fetched(certificate: tuple[Path, Path]) -> None:
    """The control: the same server, its certificate trusted, answers (a 404, one try)."""
    server = Server(tls_server(*certificate, lambda tls: tls.sendall(ANSWER)))
    try:
        got = outcome(server, verify=str(certificate[0]))
    finally:
        server.close()
    assert got == ("http_error", 1, "HTTP 404 Not Found")


def test_a_tls_error_before_the_head_is_retried_and_counted(
    certificate: tuple[Path, Path],
) -> None:
    """After the handshake the request went out: each try counts, and all are made."""
    server = Server(tls_server(*certificate, garbage_record))
    try:
        status, attempts, error = outcome(server, verify=str(certificate[0]))
    finally:
        server.close()
    assert (status, attempts) == ("connection_error", RETRIES + 1), error
    assert server.connections == RETRIES + 1
    assert error.startswith("TLS error: ") and "[SSL" not in error, error
