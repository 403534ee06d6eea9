"""Refusing to connect to hosts that resolve to non-public addresses (``--block-private``).

URL lists come from the web, so a URL (or a redirect) may point at the worker's own
loopback, its LAN, or a cloud metadata service. With the guard on, every connection
urllib3 opens resolves the host itself, refuses it when any address is not globally
routable, and connects to the address it checked, so the answer cannot change
between the check and the connect (DNS rebinding). It is checked on every redirect
hop because every hop opens its own connection.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection

from crawler._compat import dns_host, with_socket_factory


class BlockedAddressError(Exception):
    """The host resolves to an address the policy forbids (deliberately not an OSError,
    so urllib3 neither wraps nor retries it)."""


def public_address(host: str, port: int) -> str:
    """Resolve ``host``; return its first address if every address is public, else raise."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            raise BlockedAddressError(
                f"{host} resolves to {ip}, which is not a public address "
                "(the master's --no-block-private allows it)"
            )
        addresses.append(str(ip))
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    return addresses[0]


def _guarded_socket(conn: Any) -> socket.socket:
    """A socket for urllib3 connection ``conn``: resolve, check, connect to the checked
    address; errors raised as urllib3's own, so that it retries and reports them as usual."""
    host = dns_host(conn)
    try:
        address = public_address(host, conn.port)
        return connection.create_connection(
            (address, conn.port),
            conn.timeout,
            source_address=conn.source_address,
            socket_options=conn.socket_options,
        )
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    except TimeoutError as exc:
        raise ConnectTimeoutError(conn, f"connection to {conn.host} timed out") from exc
    except OSError as exc:
        raise NewConnectionError(conn, f"failed to connect: {exc}") from exc


GuardedHTTPConnection = with_socket_factory(HTTPConnection, _guarded_socket)
GuardedHTTPSConnection = with_socket_factory(HTTPSConnection, _guarded_socket)


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


def guard(adapter: HTTPAdapter) -> None:
    """Make every connection ``adapter`` opens go through the address check."""
    adapter.poolmanager.pool_classes_by_scheme = {
        "http": GuardedHTTPConnectionPool,
        "https": GuardedHTTPSConnectionPool,
    }
