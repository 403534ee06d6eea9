"""Every use of a private CPython or urllib3 internal, in one place (this package), each
with why: multiprocessing's and urllib3's here, http.client's in ``httpclient``.

The crawler needs a few things the public APIs do not offer: a manager server whose
accept loop it owns, TCP_NODELAY and keepalive on manager connections before their
handshake, a per-URL deadline inside urllib3's retries, and an address check between
DNS and connect, and answers framed as RFC 9112 says. Each reaches into an internal;
each such reach is one function here, so that an upgrade breaks here and nowhere else,
and ``tests/test_compat.py`` checks every one of them still exists on the installed
versions.

Checked on CPython 3.11.7, 3.12.1 and 3.13.0 and on urllib3 2.6 to 2.8; ``setup.cfg``
bounds ``python_requires`` and ``urllib3`` (``<3``) accordingly.
"""

from __future__ import annotations

import errno
import functools
import socket
import threading
import xmlrpc.client
from collections.abc import Callable
from multiprocessing import connection, managers
from multiprocessing.managers import BaseProxy
from typing import Any, TypeVar

from crawler._compat.httpclient import (
    MAX_INTERIM,
    CutHead,
    FinalResponse,
    InvalidContentLength,
    MalformedChunk,
    RepeatedChunked,
    TooManyInterim,
    declared_length,
)

__all__ = [
    "MAX_INTERIM",
    "CutHead",
    "FinalResponse",
    "InvalidContentLength",
    "MalformedChunk",
    "RepeatedChunked",
    "TooManyInterim",
    "declared_length",
]  # the http.client part, for those who import it from here

T = TypeVar("T")


# --- multiprocessing (CPython 3.11-3.13: Lib/multiprocessing/managers.py, connection.py) ---
def arm_server_stop(server: Any) -> None:
    """``Server.serve_client`` loops ``while not self.stop_event.is_set()``; the event is
    made by ``Server.serve_forever``, which the master does not run (it owns the accept
    loop so that the listener really closes), so it is made here."""
    server.stop_event = threading.Event()


def listener_socket(listener: Any) -> socket.socket:
    """The socket behind a ``multiprocessing.connection.Listener``: closing the Listener
    does not wake a thread blocked in ``accept()``; ``shutdown()`` on the socket does."""
    return listener._listener._socket


def handshake(conn: connection.Connection, authkey: bytes) -> None:
    """The HMAC challenge both ways, as ``Listener.accept`` does with an authkey; the
    master runs it itself, under a time limit (``deliver_challenge`` and
    ``answer_challenge`` are undocumented module functions)."""
    connection.deliver_challenge(conn, authkey)
    connection.answer_challenge(conn, authkey)


def nodelay_serializer(
    name: str, tune: Callable[[socket.socket], None] | None = None, connect: float = 30.0
) -> str:
    """A manager serializer name that speaks ``name`` (``"xmlrpclib"``) on the wire but
    whose client connections set TCP_NODELAY, and ``tune(sock)``'s options, before the
    HMAC handshake; registered in ``managers.listener_client`` (the table ``BaseManager``
    and ``BaseProxy`` look their client up in).

    Why: the stdlib client ends the handshake with a small write (WELCOME) and then sends
    its first request, another small write, before any answer: Nagle's algorithm holds
    the request until the master's delayed ACK (40 ms on Linux). Every new connection
    (the manager's, one per proxy made, one per proxy and thread) paid that: 0.45 s
    before a worker's first request. Nothing on the wire changes. ``tune`` is how the
    worker's keepalive reaches every connection from its first byte (until 2026-12-01 it
    was set after a connection's first call returned, so a master host that vanished
    during that call, a ``hello``, was waited on for 15 minutes: a fresh user's).
    ``connect``: seconds each connection may take to open (the kernel's SYN retries
    otherwise run 127 s), the worker's ``--connect-timeout``."""
    if name != "xmlrpclib":
        raise ValueError(f"no TCP_NODELAY client for serializer {name!r}")
    alias = f"{name}+nodelay"
    listener = managers.listener_client[name][0]
    client = functools.partial(_nodelay_xml_client, tune, connect)
    managers.listener_client[alias] = (listener, client)
    return alias


def shared_proxies(manager: managers.BaseManager, typeids: tuple[str, ...]) -> list[Any]:
    """A proxy for each of ``typeids``, registered on ``manager`` (not started): one
    connection each, to ``create`` the object on the server, and no reference counts.

    Why: ``manager.connect()`` then ``manager.get_x()`` open a connection for ``dummy``,
    then three for each proxy (``create``, the proxy's ``incref``, the getter's
    ``decref``), and a collected proxy one more (``decref``): 10 handshakes before a
    worker's first call, 14 connections in all, ~15 ms on loopback and ~35 ms with the
    master busy planning, on the way to the first result (issue 15). The master's
    objects are served for its whole run, so the counts decide nothing there: a count
    the server keeps at one per worker leaves each object in its table, as it stays
    anyway. Raises OSError, EOFError, AuthenticationError (the key refused)."""
    client = managers.listener_client[manager._serializer][1]  # type: ignore[attr-defined]
    address, authkey = manager.address, manager._authkey  # type: ignore[attr-defined]
    proxies = []
    for typeid in typeids:
        conn = client(address, authkey=authkey)
        try:
            ident, exposed = managers.dispatch(conn, None, "create", (typeid,))  # type: ignore[attr-defined]
        finally:
            conn.close()
        token = managers.Token(typeid, address, ident)
        proxytype = manager._registry[typeid][-1]  # type: ignore[attr-defined]
        proxies.append(
            proxytype(token, manager._serializer, manager=manager, authkey=authkey,  # type: ignore[attr-defined]
                      exposed=exposed, incref=False)
        )  # fmt: skip
    return proxies


_GIVEN_UP: set[tuple[str, int]] = set()  # masters this process no longer connects to


def _nodelay_xml_client(
    tune: Callable[[socket.socket], None] | None,
    connect: float,
    address: tuple[str, int],
    authkey: bytes | None = None,
) -> Any:
    """``connection.XmlClient`` for a TCP address, with TCP_NODELAY (and ``tune``) on
    before the handshake (``Client`` then ``answer_challenge``, ``deliver_challenge``, as
    the stdlib does); opened within ``connect`` seconds, or not at all to a master given
    up (``give_up``). Raises OSError."""
    if address in _GIVEN_UP:
        raise ConnectionAbortedError(errno.ECONNABORTED, "this master was given up")
    sock = socket.create_connection(address, timeout=connect)
    try:
        sock.settimeout(None)  # blocking again: multiprocessing's reads and writes block
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tune is not None:
            tune(sock)
        conn = connection.Connection(sock.detach())
    finally:
        sock.close()  # a no-op once detached
    if authkey is not None:
        connection.answer_challenge(conn, authkey)
        connection.deliver_challenge(conn, authkey)
    return connection.ConnectionWrapper(conn, _xml_dumps, _xml_loads)  # type: ignore[attr-defined]


def _xml_dumps(obj: Any) -> bytes:
    """As ``connection._xml_dumps`` (which needs a module global set by ``XmlClient``)."""
    return xmlrpc.client.dumps((obj,), None, None, None, 1).encode("utf-8")


def _xml_loads(data: bytes) -> Any:
    (obj,), _method = xmlrpc.client.loads(data.decode("utf-8"))
    return obj


def forget_connection(address: tuple[str, int]) -> None:
    """Drop the cached proxy connection to ``address``: ``BaseProxy`` keeps one per
    address per process (``_address_to_local``), which would still point at an earlier
    master of the same address after it went away (``--wait`` workers); and connect to
    it again (``give_up``)."""
    BaseProxy._address_to_local.pop(address, None)  # type: ignore[attr-defined]
    _GIVEN_UP.discard(address)


def give_up(address: tuple[str, int]) -> None:
    """Open no more connections to the master at ``address`` (until ``forget_connection``):
    a proxy's clean-up (``BaseProxy._decref``, run when a proxy is collected) connects to
    tell the master, and after a master host vanished each such connect waited out the
    kernel's SYN retries, ~127 s apiece: a worker that had said "went away" ran on for
    minutes (a fresh user's, 2026-12-01)."""
    _GIVEN_UP.add(address)


# --- urllib3 2.x (checked 2.6 to 2.8: src/urllib3/util/retry.py, timeout.py, connection.py) ---
def retry_url(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The URL argument of ``Retry.increment(method, url, response, error, _pool,
    _stacktrace)``, which urllib3 passes by keyword or by position."""
    return args[1] if len(args) > 1 else kwargs.get("url")


def timeout_parts(timeout: Any) -> tuple[Any, Any]:
    """The connect and read values a ``Timeout`` was made with, unclamped: its public
    properties return values already adjusted, so a clone needs ``_connect``/``_read``."""
    return timeout._connect, timeout._read


def dns_host(conn: Any) -> str:
    """The host name an ``HTTPConnection`` resolves, as urllib3's own ``_new_conn`` does:
    ``_dns_host``, the host as given (a trailing dot kept, a fully qualified name to the
    resolver), where the public ``host`` strips the dot."""
    return conn._dns_host


def with_socket_factory(
    base: type[T],
    factory: Callable[[Any], socket.socket],
    watch: Callable[[socket.socket | None], None] | None = None,
) -> type[T]:
    """A subclass of urllib3's ``HTTPConnection``/``HTTPSConnection`` ``base`` whose
    sockets come from ``factory(conn)``: ``_new_conn`` is the one method through which
    urllib3 opens every connection (first tries, retries and redirects alike). Its
    answers are read past interim ones (``FinalResponse``, set as http.client's
    ``response_class``), and ``watch(sock)`` is called before each answer is read."""

    def _new_conn(self: Any) -> socket.socket:
        return factory(self)

    def getresponse(self: Any, *args: Any, **kwargs: Any) -> Any:
        if watch is not None:
            watch(self.sock)
        return base.getresponse(self, *args, **kwargs)  # type: ignore[attr-defined]

    attributes = {"_new_conn": _new_conn, "getresponse": getresponse}
    return type(f"Guarded{base.__name__}", (base,), attributes | {"response_class": FinalResponse})
