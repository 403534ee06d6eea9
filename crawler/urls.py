"""Reading URL lists and normalising URLs.

A list is plain text: one URL per line, blank lines and ``#`` comments ignored,
surrounding whitespace stripped. Lists are read as a stream, line by line. Each URL
is normalised (scheme and host lower-cased, IDNA host, unsafe characters
percent-encoded, fragment dropped) so that duplicates are found by meaning rather
than by spelling; a line that is not an http(s) URL is reported, never raised.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from crawler.constants import MAX_URL_LENGTH
from crawler.exceptions import UsageError

# Characters left as they are when re-quoting: RFC 3986 reserved and unreserved ones plus
# '%', so an already-encoded URL is not encoded twice.
_SAFE = "!#$%&'()*+,/:;=?@[]~"
# One DNS label after IDNA encoding (underscores tolerated: they occur in real host names).
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# URLs that _normalize would return unchanged: lower-case scheme and host of valid labels,
# no port, user or fragment, a path and query of characters that need no quoting.
_CANONICAL = re.compile(
    r"(?P<scheme>https?)://"
    r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
    r"/[A-Za-z0-9\-._~!$%&'()*+,;=:@/]*(?:\?[A-Za-z0-9\-._~!$%&'()*+,;=:@/?]*)?"
)


@dataclass(frozen=True)
class ListEntry:
    """One non-blank, non-comment line of an input list."""

    source: str  # "file:line", for the manifest
    raw: str
    url: str | None  # normalised URL, or None when the line is not a valid URL
    error: str | None = None
    line: int = 0  # 1-based line number in its list


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
    netloc = (
        host if port is None or port == {"http": 80, "https": 443}[scheme] else f"{host}:{port}"
    )
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


def parse_line(line: str, source: str, number: int = 0) -> ListEntry | None:
    """One list line to an entry; None for blank lines and comments."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    try:
        return ListEntry(source, text, normalize_url(text), None, number)
    except ValueError as exc:
        return ListEntry(source, text, None, str(exc), number)


def read_list(path: str) -> Iterator[ListEntry]:
    """Stream the entries of one list file, in order."""
    try:
        # utf-8-sig: lists saved by Notepad or Excel start with a byte-order mark.
        fh = open(path, encoding="utf-8-sig", errors="replace", newline="")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"cannot read URL list {path}: {exc.strerror}") from None
    with fh:
        for number, line in enumerate(fh, start=1):
            entry = parse_line(line, f"{path}:{number}", number)
            if entry is not None:
                yield entry


def check_readable(paths: tuple[str, ...]) -> None:
    """Fail early, with one line, when a list is missing or unreadable."""
    for path in paths:
        p = Path(path)
        if p.is_dir():
            raise UsageError(f"URL list {path} is a folder, not a file")
        try:
            with open(p, "rb") as fh:
                fh.read(1)
        except OSError as exc:
            raise UsageError(f"cannot read URL list {path}: {exc.strerror}") from None
