"""Host names to addresses for one worker: bounded by the URL's deadline, cached.

``getaddrinfo`` cannot be given a timeout, and a stuck system resolver would hold a
download thread past ``--deadline``. So each lookup runs on a resolver thread of the
worker's own (a daemon: a stuck one never holds the process at exit), and the download
thread waits for the answer only as long as its connect timeout (already cut to the
time left before the deadline) allows. A lookup that gives up leaves its resolver
thread to finish on its own; at most ``RESOLVER_THREADS`` run at once, so a resolver
that hangs for every name makes lookups wait in line and time out, never piles up
threads.

Answers are cached per worker for ``CACHE_SECONDS`` (the system resolver does not tell
the record's TTL; five minutes is what browsers' host caches use too). Failures are not
cached. The lookup function is injectable: tests give a stub on loopback, never a real
DNS server.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

CACHE_SECONDS = 300.0
RESOLVER_THREADS = 4
CACHE_MAX = 10_000  # names kept per worker; the oldest entries go first
Lookup = Callable[[str, int], list[Any]]  # (host, port) -> getaddrinfo-style tuples


class DNSFailure(socket.gaierror):
    """A name could not be resolved in time (or at all); the message starts with "DNS: "."""


def system_lookup(host: str, port: int) -> list[Any]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _shortage() -> OSError | None:
    """The error a new socket meets now, if it is this host's shortage of descriptors:
    out of them, getaddrinfo cannot open /etc/hosts or a socket to the name server, and
    says "Name or service not known", with no errno (until 2026-12-03 such a name was
    the origin's connection_error: a review's). Asked on the failure path only."""
    try:
        socket.socket().close()
    except OSError as exc:
        return exc if exc.errno in (errno.EMFILE, errno.ENFILE) else None
    return None


class Resolver:
    """Thread-safe; one per worker process (shared by its download threads)."""

    def __init__(self, lookup: Lookup = system_lookup, clock: Callable[[], float] = time.monotonic):
        self._lookup = lookup
        self._clock = clock
        self._slots = threading.BoundedSemaphore(RESOLVER_THREADS)
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], tuple[float, list[Any]]] = {}

    def resolve(self, host: str, port: int, timeout: float | None) -> list[Any]:
        """getaddrinfo-style tuples for ``host``; DNSFailure after ``timeout`` seconds
        (None: no limit) or when the name does not resolve."""
        key = (host.lower(), port)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        answer = self._ask(host, port, timeout)
        if isinstance(answer, OSError):
            reason = answer.strerror or str(answer) or type(answer).__name__
            # its errno, for host_trouble; or this host's own shortage behind it
            raise DNSFailure(f"DNS: {host}: {reason}") from (_shortage() or answer)
        infos = answer
        if not infos:
            raise DNSFailure(f"DNS: {host}: no address")
        with self._lock:
            if len(self._cache) >= CACHE_MAX:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = (self._clock() + CACHE_SECONDS, list(infos))
        return infos

    def _ask(self, host: str, port: int, timeout: float | None) -> list[Any] | OSError:
        """The lookup's answer or its error, from a resolver thread; DNSFailure on timeout."""
        start = time.monotonic()
        if not self._slots.acquire(timeout=timeout):
            raise DNSFailure(f"DNS: lookup of {host} timed out after {timeout:.3g} s")
        answer: list[Any] = []
        done = threading.Event()

        def run() -> None:
            try:
                answer.append(self._lookup(host, port))
            except Exception as exc:  # e.g. UnicodeError for a name IDNA refuses
                answer.append(exc if isinstance(exc, OSError) else OSError(str(exc)))
            finally:
                self._slots.release()
                done.set()

        try:
            threading.Thread(target=run, name=f"resolver-{host}"[:40], daemon=True).start()
        except RuntimeError:  # no thread to be had: its slot back, or DNS is gone for good
            self._slots.release()  # (a fresh user's, 2026-12-01: every lookup then timed out)
            raise
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - start))
        if not done.wait(left):
            raise DNSFailure(f"DNS: lookup of {host} timed out after {timeout:.3g} s")
        return answer[0]
