"""The URL normalisation of the crawler before issue 11 (urllib.parse, RFC 3986), kept
verbatim as the reference that tests/shared/test_url_stability.py compares against:
stored file names derive from these forms, so they must not move."""

# ruff: noqa
from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, urlsplit, urlunsplit

from crawler.constants import MAX_URL_LENGTH

# Characters left as they are when re-quoting: RFC 3986 reserved and unreserved ones plus
# '%', so an already-encoded URL is not encoded twice.
_SAFE = "!#$%&'()*+,/:;=?@[]~"
# One DNS label after IDNA encoding (underscores tolerated: they occur in real host names).
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# URLs that _normalize would return unchanged: lower-case scheme and host of valid labels,
# no port, user or fragment, a path and query of characters that need no quoting (an
# empty query, a bare "?", is dropped by the full normalisation, so it takes that path).
_CANONICAL = re.compile(
    r"(?P<scheme>https?)://"
    r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
    r"/[A-Za-z0-9\-._~!$%&'()*+,;=:@/]*(?:\?[A-Za-z0-9\-._~!$%&'()*+,;=:@/?]+)?"
)


def normalize_url(text: str) -> str:
    """Return the canonical form of an http(s) URL, or raise ValueError saying why not."""
    match = _CANONICAL.fullmatch(text) if len(text) <= MAX_URL_LENGTH else None
    if match is not None:  # already in canonical form: most lines of most lists
        port = match["port"]
        default = 80 if match["scheme"] == "http" else 443
        if port is None or (int(port) < 65536 and int(port) != default):
            return text
    return _normalize(text)


def _normalize(text: str) -> str:
    if len(text) > MAX_URL_LENGTH:
        raise ValueError(f"URL longer than {MAX_URL_LENGTH} characters")
    if _CONTROL.search(text):
        raise ValueError("URL contains control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"malformed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError("not an http or https URL")
    host = parts.hostname or ""
    if not host:
        raise ValueError("URL has no host")
    host = _normalize_host(host)
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    if parts.username or parts.password:
        raise ValueError("URLs with credentials are not fetched")
    path = quote(parts.path, safe=_SAFE) or "/"
    query = quote(parts.query, safe=_SAFE)
    return urlunsplit((scheme, netloc, path, query, ""))


def _normalize_host(host: str) -> str:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return f"[{ip}]" if ip.version == 6 else str(ip)
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("host name is not valid") from None
    if not all(_LABEL.fullmatch(part) for part in ascii_host.rstrip(".").split(".")):
        raise ValueError("host name is not valid")
    return ascii_host.lower()


DEFAULT_PORTS = {"http": 80, "https": 443}
