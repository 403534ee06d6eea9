"""The TLS handshake of an https connection: its failures are the connection's, said in
words.

urllib3 runs the handshake in ``HTTPSConnection.connect``, after the TCP connect, and
filed what it raised with the request's own failures: a handshake that got no answer
was "Read timed out. (read timeout=2.0)", the 2 s being the connect timeout, and it
counted as requests sent; a reset counted so too; an EOF or an alert was raw OpenSSL
text ("[SSL: UNEXPECTED_EOF_WHILE_READING] ...") and never retried (urllib3's "other"
errors). No request goes out before the handshake ends, so here its failures are the
connection's, as a refused TCP connect is: no attempt, and retried (``--retries``)
as the README's "failures to connect, errors or timeouts before the response headers
arrive" are (a fresh user's, 2026-12-01). A certificate that does not verify is the
server's answer, not the network's: ``CertificateRefused``, not retried.
"""

from __future__ import annotations

import ssl

from urllib3.connection import HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.ssl_match_hostname import CertificateError

# What the peer did, for the errors that say it by their class (the others by OpenSSL's
# reason, in words: "wrong version number", "tlsv1 alert protocol version").
_DID = (
    ((ssl.SSLEOFError, ssl.SSLZeroReturnError, BrokenPipeError, ConnectionAbortedError),
     "the server closed the connection"),
    ((ConnectionResetError,), "the server reset the connection"),
)  # fmt: skip


class CertificateRefused(Exception):
    """The server's certificate does not verify (deliberately not an OSError, so that
    urllib3 neither wraps nor retries it: the same certificate comes again)."""


def tls_words(exc: BaseException) -> str:
    """What an error of a TLS connection means, in a few words, without OpenSSL's
    bracketed codes and source lines."""
    for kinds, words in _DID:
        if isinstance(exc, kinds):
            return words
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason.lower().replace("_", " ")
    strerror = getattr(exc, "strerror", None)
    return (strerror or str(exc) or type(exc).__name__).lower()


def _seconds(value: object) -> str:
    return f"{value:g} s" if isinstance(value, (int, float)) else "its time"


class HandshakeHTTPSConnection(HTTPSConnection):
    """urllib3's HTTPSConnection whose handshake failures are connect failures
    (``ConnectTimeoutError``, ``NewConnectionError``: retried, no request counted) or
    ``CertificateRefused``. The TCP connect before it raises urllib3's own already
    (``netguard``), and passes through."""

    def connect(self) -> None:
        try:
            super().connect()
        except (ssl.SSLCertVerificationError, CertificateError) as exc:
            words = getattr(exc, "verify_message", None) or str(exc)
            raise CertificateRefused(
                f"TLS certificate of {self.host} not accepted: {words}"
            ) from None
        except TimeoutError as exc:  # bounded by the connect timeout: the socket's then
            raise ConnectTimeoutError(
                self,
                f"TLS handshake with {self.host} got no answer within the connect timeout "
                f"({_seconds(self.timeout)})",
            ) from exc
        except OSError as exc:
            raise NewConnectionError(
                self, f"TLS handshake with {self.host} failed: {tls_words(exc)}"
            ) from exc
