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

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection


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
            raise BlockedAddressError(f"{host} resolves to {ip}, which is not a public address")
        addresses.append(str(ip))
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    return addresses[0]


class _GuardMixin:
    """Replaces urllib3's ``_new_conn``: resolve, check, connect to the checked address."""

    def _new_conn(self) -> socket.socket:
        conn = self  # typed loosely: this mixes into urllib3's HTTPConnection classes
        try:
            address = public_address(conn._dns_host, conn.port)  # type: ignore[attr-defined]
            sock = connection.create_connection(
                (address, conn.port),  # type: ignore[attr-defined]
                conn.timeout,  # type: ignore[attr-defined]
                source_address=conn.source_address,  # type: ignore[attr-defined]
                socket_options=conn.socket_options,  # type: ignore[attr-defined]
            )
        except socket.gaierror as exc:
            raise NameResolutionError(conn.host, conn, exc) from exc  # type: ignore[attr-defined,arg-type]
        except TimeoutError as exc:
            raise ConnectTimeoutError(conn, f"connection to {conn.host} timed out") from exc  # type: ignore[attr-defined]
        except OSError as exc:
            raise NewConnectionError(conn, f"failed to connect: {exc}") from exc  # type: ignore[arg-type]
        return sock


class GuardedHTTPConnection(_GuardMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardMixin, HTTPSConnection):
    pass


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
