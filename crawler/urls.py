"""URL facts, the one home for them: the canonical form, the host, the origin.

``normalize_url`` gives each http(s) URL one spelling, so that duplicates are found by
meaning rather than by spelling and the stored file's name (``layout.stored_name``)
depends on the URL's meaning only. Lists, redirects and the manifest all hold URLs in
this form; ``host_of``, ``netloc_of`` and ``origin_of`` read them.

URLs are parsed as browsers parse them, by the WHATWG URL Standard (ada-url, the parser
of Node.js): backslashes are slashes, dot segments (also ``%2e``) are resolved, hosts go
through IDNA and IPv4 numbers (``0x7f.1``) are read as browsers read them, ``Location``
targets are resolved against the URL they came from (``resolve_url``, after
``location_text`` has read the field's raw bytes). On top of that,
the canonical form keeps the crawler's earlier spelling, so that names already stored do
not change: scheme and host lower case, default port and fragment dropped, an empty
query dropped, the path and query percent-encoded by RFC 3986's rules (characters
outside its reserved and unreserved sets, ``%`` left alone), the query as written.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, urlsplit, urlunsplit

import ada_url

from crawler.constants import MAX_URL_LENGTH

# Characters left as they are when re-quoting: RFC 3986 reserved and unreserved ones plus
# '%', so an already-encoded URL is not encoded twice.
_SAFE = "!#$%&'()*+,/:;=?@[]~"
# One DNS label after IDNA encoding (underscores tolerated: they occur in real host names).
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
# A domain name's text form without the root's dot: 255 octets on the wire (RFC 1035
# 2.3.4) less the first length octet and the root label. No lookup can find a longer one,
# and until 2026-12-01 it was a "blocked" row (robots.txt unavailable), tried every run.
MAX_HOST_LENGTH = 253
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# URLs that _normalize would return unchanged: lower-case scheme and host of valid labels,
# no port, user or fragment, a path and query of characters that need no quoting (an
# empty query, a bare "?", is dropped by the full normalisation, so it takes that path).
_CANONICAL = re.compile(
    r"(?P<scheme>https?)://"
    r"(?P<host>(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
    r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
    r"(?P<path>/[A-Za-z0-9\-._~!$%&'()*+,;=:@/]*)(?:\?[A-Za-z0-9\-._~!$%&'()*+,;=:@/?]+)?"
)


# What sends a canonical-looking URL the slow way: a dot segment ("/." also catches
# "/.well-known", which the full parse leaves as it is), and a host that the WHATWG
# rules read as an IPv4 number (its last label numeric) unless it is a plain dotted quad.
_DOTS = re.compile(r"/\.|%2e", re.IGNORECASE)
_NUMERIC_LAST = re.compile(r"(?:^|\.)(?:[0-9]+|0x[0-9a-f]*)\.?$")
_DOTTED_QUAD = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:")
# What the WHATWG URL parser strips from both ends of its input: C0 controls and space.
_C0_AND_SPACE = "".join(map(chr, range(0x21)))
# A byte that was not part of valid UTF-8, as the "surrogateescape" decoder gives it.
_STRAY_BYTE = re.compile("[\udc80-\udcff]")
# A "%" that does not start a percent-encoding (RFC 3986 2.1: "%" HEXDIG HEXDIG).
_BARE_PERCENT = re.compile("%(?![0-9A-Fa-f]{2})")


def normalize_url(text: str) -> str:
    """Return the canonical form of an http(s) URL, or raise ValueError saying why not.

    Parsed by the WHATWG URL Standard, spelled as described in the module docstring.
    """
    match = _CANONICAL.fullmatch(text) if len(text) <= MAX_URL_LENGTH else None
    if match is not None and _fast_path_holds(text, match):
        return text  # already in canonical form: most lines of most lists
    return _normalize(text)


def _fast_path_holds(text: str, match: re.Match[str]) -> bool:
    port = match["port"]
    if port is not None:
        default = 80 if match["scheme"] == "http" else 443
        if int(port) >= 65536 or int(port) == default:
            return False
    host = match["host"]
    if len(host) > MAX_HOST_LENGTH:
        return False
    if _NUMERIC_LAST.search(host) and not _DOTTED_QUAD.fullmatch(host):
        return False
    return not _DOTS.search(text, match.start("path"), match.end("path"))


def request_target(url: str) -> str:
    """``url`` (canonical) as it is handed to requests for the request line: each ``%``
    that starts no ``%XX`` written ``%25``, every valid ``%XX`` as it is.

    The canonical form keeps a bare ``%`` (browsers send it as it is, WHATWG URL
    "percent-encode sets" leave ``%`` out), but requests' ``requote_uri`` and urllib3's
    ``parse_url`` both quote *every* ``%`` of a URL that holds one bare one, so until
    2026-12-01 ``/100%_caf%C3%A9.png`` went out as ``/100%25_caf%25C3%25A9.png``, another
    resource (a fresh user's: 404 where curl got the image). With the bare ones encoded
    first, both leave each ``%XX`` alone (RFC 3986 6.2.2: the same resource)."""
    return _BARE_PERCENT.sub("%25", url) if "%" in url else url


def location_text(field: bytes) -> str:
    """The text of a ``Location`` field value, from its bytes as they came off the wire.

    RFC 9110 (5.5) lets a field value carry any byte but controls (obs-text, 0x80-0xFF)
    and gives them no meaning; the WHATWG URL Standard parses text, not bytes. Read as
    browsers read it: valid UTF-8 is UTF-8 (its characters are then percent-encoded by
    their UTF-8 bytes, WHATWG URL "UTF-8 percent-encode"), and each byte that is not
    part of valid UTF-8 (a Latin-1 ``\\xe9``, a lone ``\\xff``, an encoded surrogate) is
    percent-encoded as that byte (``%E9``), so the path and query name exactly the bytes
    the server sent (RFC 3986 2.1: a percent-encoding stands for one octet). In a host
    such a byte makes the host invalid (WHATWG host parsing decodes ``%E9`` as UTF-8,
    which fails, and IDNA refuses the result): ``resolve_url`` refuses it. Total: any
    byte string gives a text.
    """
    text = field.decode("utf-8", errors="surrogateescape")
    return _STRAY_BYTE.sub(lambda stray: f"%{ord(stray[0]) - 0xDC00:02X}", text)


def resolve_url(base: str, reference: str) -> str:
    """The canonical form of ``reference`` (a redirect's Location, see ``location_text``)
    resolved against ``base``, as a browser resolves it (WHATWG URL Standard); ValueError
    when it is not an http(s) URL the crawler would fetch."""
    try:
        joined = ada_url.join_url(base, reference.strip(_C0_AND_SPACE))
    except ValueError:
        raise ValueError("malformed URL: the host or port is not valid") from None
    return normalize_url(joined)


def _normalize(text: str) -> str:
    if len(text) > MAX_URL_LENGTH:
        raise ValueError(f"URL longer than {MAX_URL_LENGTH} characters")
    if _CONTROL.search(text):
        raise ValueError("URL contains control characters")
    text = text.strip(" ")  # WHATWG: leading and trailing spaces are no part of a URL
    scheme = _SCHEME.match(text)
    if scheme is None or scheme[0].lower() not in ("http:", "https:"):
        raise ValueError("not an http or https URL")
    try:
        url = ada_url.URL(text)
    except ValueError:  # for http(s), only a host or a port can fail the WHATWG parse
        raise ValueError("malformed URL: the host or port is not valid") from None
    if url.username or url.password:
        raise ValueError("URLs with credentials are not fetched")
    if not url.hostname:
        raise ValueError("URL has no host")
    if url.port == "0":  # WHATWG accepts it, but nothing can be reached on port 0
        raise ValueError("malformed URL: port 0 cannot be connected to")
    host = _normalize_host(url.hostname.removeprefix("[").removesuffix("]"))
    netloc = f"{host}:{url.port}" if url.port else host
    path = quote(url.pathname, safe=_SAFE) or "/"
    # The query as written (up to the fragment), encoded as before: WHATWG would also
    # encode "'", which would rename the stored files of URLs with one in their query.
    query = quote(text.partition("#")[0].partition("?")[2], safe=_SAFE)
    return urlunsplit((url.protocol[:-1], netloc, path, query, ""))


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
    if len(ascii_host.removesuffix(".")) > MAX_HOST_LENGTH:
        raise ValueError(f"host name is longer than {MAX_HOST_LENGTH} characters")
    return ascii_host.lower()


DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # scheme, host (lower case), port
_NETLOC = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#]*)")


def host_of(url: str) -> str:
    """The host name of a URL, lower case, without port and without the root's trailing
    dot: what politeness limits count. ``a.test.`` is ``a.test`` (RFC 1034 3.1: the
    same absolute name; urllib3 sends both as ``Host: a.test``): until 2026-12-01 they
    were two hosts, each with its own --per-host and --host-delay, and the one server
    got two requests a millisecond apart (a fresh user's)."""
    return (urlsplit(url).hostname or "").removesuffix(".")


def netloc_of(url: str) -> str:
    """``host[:port]`` of a normalised URL, lower case, "" if it has none (a fast regex:
    the report calls it once per manifest row)."""
    match = _NETLOC.match(url)
    return match[1].lower() if match else ""


def origin_of(url: str) -> Origin:
    """(scheme, host, port) of an http(s) URL, the port filled in when it is the default
    (the unit robots.txt applies to, RFC 9309 section 2.3)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme, 0)


def robots_url(origin: Origin) -> str:
    """The robots.txt URL of an origin (RFC 9309 section 2.3: at the top-level path)."""
    scheme, host, port = origin
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    netloc = host if port == DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, "/robots.txt", "", ""))
