"""Every connection a worker opens: the name resolved by the worker's ``Resolver`` (bounded
by the deadline, cached), and with ``--block-private``, non-public addresses refused.

URL lists come from the web, so a URL (or a redirect) may point at the worker's own
loopback, its LAN, or a cloud metadata service. Every connection urllib3 opens goes
through ``_connect_socket``: it resolves the host itself, refuses it (with the guard on)
when any address is not globally routable, and connects to an address it checked, so
the answer cannot change between the check and the connect (DNS rebinding). It runs on
every redirect hop because every hop opens its own connection.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection

from crawler._compat import dns_host, with_socket_factory
from crawler.worker.handshake import HandshakeHTTPSConnection
from crawler.worker.keepalive import ReplayStale
from crawler.worker.resolver import DNSFailure, Resolver


class BlockedAddressError(Exception):
    """The host resolves to an address the policy forbids (deliberately not an OSError,
    so urllib3 neither wraps nor retries it)."""


# IPv6 prefixes whose last 32 bits are an IPv4 address a connection may reach: IPv4-
# compatible (RFC 4291 2.5.5.1, deprecated), IPv4-translated (RFC 2765), NAT64's well-
# known prefix (RFC 6052). Python calls them all global.
EMBEDDING = tuple(
    ipaddress.IPv6Network(net) for net in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96")
)
# Special-purpose blocks Python 3.11's ``is_global`` does not know (IANA's registries):
# NAT64's local-use prefix (RFC 8215: a local network's translation, its IPv4 address
# placed at any of RFC 6052's offsets), site-local (RFC 3879), SRv6 SIDs (RFC 9602),
# documentation (RFC 9637), and IANA's IPv4 special-purpose block (RFC 6890).
NOT_PUBLIC = tuple(
    ipaddress.ip_network(net)
    for net in ("64:ff9b:1::/48", "fec0::/10", "5f00::/16", "3fff::/20", "192.0.0.0/24")
)


def _embedded(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries: compatible, translated, NAT64, 6to4 (RFC
    3056) or Teredo's client (RFC 4380); None when it carries none (``::`` and ``::1``
    are IPv6's own; a mapped one is taken for its IPv4 address before)."""
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if int(ip) > 1 and any(ip in net for net in EMBEDDING):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not ip.is_multicast and not any(ip in net for net in NOT_PUBLIC)


def public_addresses(host: str, infos: list[Any]) -> list[str]:
    """The addresses of getaddrinfo ``infos`` for ``host``, if every one is public, and
    so is any IPv4 address an IPv6 one carries (``[::7f00:1]``, ``64:ff9b::a00:1``,
    ``2002:7f00:1::`` reach loopback or the LAN through IPv4-compatible, NAT64 and 6to4
    addresses, which Python's ``is_global`` calls global); else raise. An IPv4-mapped
    address is given as its IPv4 address."""
    addresses = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        inner = _embedded(ip) if isinstance(ip, ipaddress.IPv6Address) else None
        if not _public(ip):
            raise _refused(host, str(ip))
        if inner is not None and not _public(inner):
            raise _refused(host, f"{ip} (IPv4 {inner})")
        addresses.append(str(ip))
    return addresses


def _refused(host: str, address: str) -> BlockedAddressError:
    return BlockedAddressError(
        f"{host} resolves to {address}, which is not a public address "
        "(the master's --no-block-private allows it)"
    )


def _connector(resolver: Resolver, block_private: bool) -> Callable[[Any], socket.socket]:
    def connect(conn: Any) -> socket.socket:
        return _connect_socket(conn, resolver, block_private)

    return connect


def _connect_socket(conn: Any, resolver: Resolver, block_private: bool) -> socket.socket:
    """A socket for urllib3 connection ``conn``: resolve, check, connect to a checked
    address; errors raised as urllib3's own, so that it retries and reports them as usual."""
    host = dns_host(conn)
    timeout = conn.timeout if isinstance(conn.timeout, (int, float)) else None
    try:
        infos = resolver.resolve(host, conn.port, timeout)
        if block_private:
            addresses = public_addresses(host, infos)
        else:
            addresses = [str(info[4][0]) for info in infos]
        return _first_connection(dict.fromkeys(addresses), conn)
    except DNSFailure as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    except TimeoutError as exc:
        raise ConnectTimeoutError(conn, f"connection to {conn.host} timed out") from exc
    except OSError as exc:
        raise NewConnectionError(conn, f"failed to connect: {exc}") from exc


def _first_connection(addresses: dict[str, None], conn: Any) -> socket.socket:
    """Connect to each address in turn (as ``socket.create_connection`` does); the last
    error if none answers."""
    error: OSError | None = None
    for address in addresses:
        try:
            return connection.create_connection(
                (address, conn.port),
                conn.timeout,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except OSError as exc:
            error = exc
    raise error or OSError("no address to connect to")


def mount(
    adapter: HTTPAdapter,
    resolver: Resolver,
    block_private: bool,
    watch: Callable[[socket.socket | None], None] | None = None,
    time_left: Callable[[], float] | None = None,
) -> None:
    """Make every connection ``adapter`` opens resolve through ``resolver`` and, with
    ``block_private``, go through the address check; its answers are read past interim
    (1xx) ones, ``watch(sock)`` is called before each is read (the deadline's
    watchdog: ``deadline.make_session``), and a request a kept connection lost before
    its answer is sent again on a new one while ``time_left()`` is above 0
    (``keepalive.ReplayStale``)."""
    factory = _connector(resolver, block_private)
    http = with_socket_factory(HTTPConnection, factory, watch)
    https = with_socket_factory(HandshakeHTTPSConnection, factory, watch)
    extra = {} if time_left is None else {"time_left": staticmethod(time_left)}
    adapter.poolmanager.pool_classes_by_scheme = {
        "http": type(
            "ResolvedHTTPConnectionPool",
            (ReplayStale, HTTPConnectionPool),
            {"ConnectionCls": http} | extra,
        ),
        "https": type(
            "ResolvedHTTPSConnectionPool",
            (ReplayStale, HTTPSConnectionPool),
            {"ConnectionCls": https} | extra,
        ),
    }
