"""The master's queue server: BaseManager's server, run on the master's own threads.

``BaseManager.get_server().serve_forever()`` would ``sys.exit`` when done, its accept
loop never stops, and it authenticates silently with no time limit. This owns the
accept loop instead: each connection must pass the HMAC handshake within
``HANDSHAKE_TIMEOUT`` seconds (a peer with a wrong key, or one that connects and sends
garbage or nothing, is logged and dropped without disturbing the run), may only call
the manager methods a worker needs (not ``shutdown``), and the listener really closes.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import resource
import socket
import threading
import time
from multiprocessing import AuthenticationError, connection
from multiprocessing.managers import Server
from traceback import format_exc
from typing import Any

from crawler import constants as c
from crawler._compat import arm_server_stop, handshake, listener_socket
from crawler.exceptions import UsageError
from crawler.master.endpoints import MasterManager, served
from crawler.protocol import SERIALIZER

log = logging.getLogger("crawler")

HANDSHAKE_TIMEOUT = 10.0
NO_THREAD_EVERY = 10.0  # seconds between two warnings of connections turned away
ACCEPT_PAUSE = 0.05  # seconds between two accepts while short of descriptors
SHORT_OF = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# Server methods a worker's manager and proxies use; 'shutdown' and 'debug_info' are not among them.
ALLOWED_CALLS = frozenset({"create", "accept_connection", "dummy", "incref", "decref"})


class QueueServer:
    """Serves the registered objects from the master's own process, on its own threads."""

    def __init__(self, bind: str, port: int, authkey: bytes, backlog: int = 1024) -> None:
        """Listen on ``bind:port`` (port 0: any free one, see ``port``); ``backlog``:
        connections the kernel queues before accepting them (capped by the kernel's
        net.core.somaxconn). Raises UsageError when the address cannot be used."""
        self._authkey = authkey
        try:
            self._server: Server = MasterManager(
                address=(bind, port), authkey=authkey, serializer=SERIALIZER
            ).get_server()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"port {port} is already in use (another master?); choose another with --port"
                ) from None
            raise UsageError(f"cannot listen on {bind or '*'}:{port}: {exc.strerror}") from None
        arm_server_stop(self._server)
        self._stopping = threading.Event()
        self._no_thread_said = -NO_THREAD_EVERY  # when it last said so (time.monotonic())
        self._short_said = -NO_THREAD_EVERY  # the same, of accepts short of descriptors
        # BaseManager's Server listens with a backlog of 16: a crowd of workers starting at
        # once would wait for SYN retransmissions (1 s, 3 s, 7 s ...). Listening again on
        # the same socket only raises the queue's length.
        listener_socket(self._server.listener).listen(backlog)
        self.port: int = self._server.address[1]
        self._thread = threading.Thread(target=self._accept_loop, name="accept", daemon=True)

    def start(self, objects: dict[str, object]) -> None:
        """Serve ``objects`` (task_queue, result_queue, run_control) from now on."""
        served.update(objects)
        self._thread.start()

    def _accept_loop(self) -> None:
        listener = self._server.listener
        while not self._stopping.is_set():
            try:
                conn = listener.accept()
            except OSError as exc:
                self._not_accepted(exc)
                continue
            if self._stopping.is_set():
                conn.close()
                break
            peer = listener.last_accepted
            try:
                threading.Thread(target=self._handle, args=(conn, peer), daemon=True).start()
            except RuntimeError as exc:
                conn.close()
                self._no_thread(exc, peer)

    def _not_accepted(self, exc: OSError) -> None:
        """A connection the accept failed for. Out of descriptors (or kernel memory) the
        connection stays queued, and the next accept fails at once: a warning at most
        every NO_THREAD_EVERY seconds, and a pause instead of a busy loop (until
        2026-12-03 it spun without a word while workers were reset: a resource-limits
        trial's). Others (a peer gone before it was accepted) are its own affair."""
        if exc.errno not in SHORT_OF:
            return
        now = time.monotonic()
        if now - self._short_said >= NO_THREAD_EVERY:
            self._short_said = now
            limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            files = "any number of" if limit == resource.RLIM_INFINITY else limit
            why = ""
            if exc.errno in (errno.EMFILE, errno.ENFILE):  # not kernel memory's (ENOBUFS)
                why = f" (this master may open {files} files: ulimit -n, or LimitNOFILE= in a "
                why += "systemd unit)"
            log.warning("cannot take a worker's connection: %s%s", exc.strerror, why)
        self._stopping.wait(ACCEPT_PAUSE)

    def _handle(self, conn: connection.Connection, peer: Any) -> None:
        """Authenticate one connection, then do what ``Server._handle_request`` does."""
        try:
            _nodelay(conn)
            if self._authenticate(conn, peer):
                self._dispatch(conn)
        except SystemExit:  # serve_client() ends a finished connection this way
            pass
        except RuntimeError as exc:  # the handshake's timer
            self._no_thread(exc, peer)
        finally:
            conn.close()

    def _no_thread(self, exc: RuntimeError, peer: Any) -> None:
        """A connection turned away because the system refused a thread for it (a process
        or thread limit): a warning at most every NO_THREAD_EVERY seconds, and the server
        goes on (until 2026-12-02 the accept loop's thread died of it: no worker could
        connect any more, and nothing said why). Raises ``exc`` when it is another error."""
        if c.NO_THREAD not in str(exc):
            raise exc
        now = time.monotonic()
        if now - self._no_thread_said >= NO_THREAD_EVERY:
            self._no_thread_said = now
            log.warning(
                "turned away a connection from %s: the system refused a thread for it (%s)",
                _address(peer),
                c.THREAD_LIMITS,
            )

    def _authenticate(self, conn: connection.Connection, peer: Any) -> bool:
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            _shutdown_fd(conn.fileno())

        timer = threading.Timer(HANDSHAKE_TIMEOUT, expire)
        timer.daemon = True
        timer.start()
        try:
            handshake(conn, self._authkey)
            return True
        except (EOFError, ConnectionResetError, BrokenPipeError):
            # Silence until the time limit, or closed without a word (a port probe:
            # workers probe before connecting): noise, not news.
            why = f"no handshake within {HANDSHAKE_TIMEOUT:g} s" if expired.is_set() else None
            if why is not None:
                log.debug("dropped a connection from %s: %s", _address(peer), why)
            else:
                log.debug("a connection from %s closed before authenticating", _address(peer))
            return False
        except AuthenticationError as exc:  # a peer with another key: worth a warning
            log.warning("refused a connection from %s: %s", _address(peer), exc)
            return False
        except Exception as exc:  # garbage: a scanner, a browser, the wrong protocol
            reason = str(exc) or type(exc).__name__
            log.debug("refused a connection from %s: %s", _address(peer), reason)
            return False
        finally:
            timer.cancel()

    def _dispatch(self, conn: connection.Connection) -> None:
        try:
            request = conn.recv()
            _ignore, funcname, args, kwds = request
            if funcname not in ALLOWED_CALLS:
                raise PermissionError(f"{funcname!r} is not allowed")
            result = getattr(self._server, funcname)(conn, *args, **kwds)
            message: tuple[str, Any] = ("#RETURN", result)
        except Exception:
            message = ("#TRACEBACK", format_exc())
        with contextlib.suppress(Exception):
            conn.send(message)

    def close(self) -> None:
        """Stop accepting: new connections are refused from here on."""
        self._stopping.set()
        sock = listener_socket(self._server.listener)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self._server.listener.close()


def _shutdown_fd(fd: int) -> None:
    """Wake a thread blocked reading ``fd`` (closing it alone would not, on Linux)."""
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=os.dup(fd))
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()


def _address(peer: Any) -> str:
    if isinstance(peer, (tuple, list)) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def _nodelay(conn: connection.Connection) -> None:
    """TCP_NODELAY on an accepted connection: an answer over 16 KiB (a batch of tasks) is
    sent as two writes, a 4-byte length then the payload, and Nagle's algorithm would
    hold the payload until the worker's delayed ACK of the length: 40 ms per answer."""
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(conn.fileno())) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
