"""DNS as the worker does it: bounded by the deadline, cached, failures named "DNS: ...".

The worker's ``Resolver`` takes the lookup function; here it is a stub that answers
from a table (names under ``.test`` pointing at 127.0.0.1), fails, or hangs, so no
test asks a real DNS server. The downloads themselves are real: ``fetch`` over a real
session against a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from typing import Any

import pytest
from imageserver import ImageServer, make_image

from crawler.config import Policy
from crawler.exceptions import ConnectionFailure, PrivateAddress
from crawler.worker.deadline import make_session
from crawler.worker.fetch import fetch
from crawler.worker.resolver import CACHE_SECONDS, Resolver

POLICY = Policy(deadline=2.0, connect_timeout=1.5, read_timeout=1.5, retries=0, block_private=False)


class StubDNS:
    """A lookup function: a table of names, the rest NXDOMAIN; ``hang`` names never answer
    (until the test ends); every question counted."""

    def __init__(self, table: dict[str, str], hang: tuple[str, ...] = ()) -> None:
        self.table = table
        self.hang = hang
        self.asked: Counter[str] = Counter()
        self.release = threading.Event()

    def __call__(self, host: str, port: int) -> list[Any]:
        self.asked[host] += 1
        if host in self.hang:
            self.release.wait(30)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (self.table[host], port))]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def site(image_server: ImageServer) -> tuple[ImageServer, str, bytes]:
    png = make_image("PNG", 30, 20, seed=81)
    url = image_server.add("/dns/a.png", png, content_type="image/png")
    port = url.split(":")[2].split("/")[0]
    return image_server, port, png


def test_names_are_resolved_by_the_workers_resolver(site: tuple[ImageServer, str, bytes]) -> None:
    _, port, png = site
    stub = StubDNS({"images.test": "127.0.0.1"})
    session = make_session(POLICY, Resolver(stub))
    download = fetch(session, f"http://images.test:{port}/dns/a.png", POLICY)
    assert (download.http_status, download.body) == (200, png)
    assert stub.asked == {"images.test": 1}


def test_answers_are_cached_for_five_minutes(site: tuple[ImageServer, str, bytes]) -> None:
    server, port, _ = site
    stub, clock = StubDNS({"images.test": "127.0.0.1"}), FakeClock()
    resolver = Resolver(stub, clock)
    for _ in range(3):  # a new session (a new connection) each time: only the cache saves asking
        fetch(make_session(POLICY, resolver), f"http://images.test:{port}/dns/a.png", POLICY)
    assert stub.asked["images.test"] == 1
    clock.now += CACHE_SECONDS
    fetch(make_session(POLICY, resolver), f"http://images.test:{port}/dns/a.png", POLICY)
    assert stub.asked["images.test"] == 2
    assert server.hits("/dns/a.png") == 4


def test_a_name_that_does_not_resolve_is_a_dns_connection_error() -> None:
    session = make_session(POLICY, Resolver(StubDNS({})))
    with pytest.raises(ConnectionFailure) as caught:
        fetch(session, "http://missing.test/a.png", POLICY)
    assert str(caught.value) == "DNS: missing.test: Name or service not known"
    assert caught.value.status == "connection_error"
    assert caught.value.attempts == 0  # nothing was sent


def test_a_hanging_resolver_is_cut_at_the_deadline() -> None:
    """The stub would hold the lookup 30 s; the download gives up at its connect timeout
    (cut to the deadline), with the resolver thread left to finish on its own."""
    stub = StubDNS({"slow.test": "127.0.0.1"}, hang=("slow.test",))
    session = make_session(POLICY, Resolver(stub))
    try:
        with pytest.raises(ConnectionFailure) as caught:
            fetch(session, "http://slow.test/a.png", POLICY)
    finally:
        stub.release.set()
    assert str(caught.value).startswith("DNS: lookup of slow.test timed out after ")
    assert caught.value.attempts == 0


def test_block_private_checks_the_resolvers_answer(site: tuple[ImageServer, str, bytes]) -> None:
    server, port, _ = site
    # Loopback answers only: were the guard to fail, no packet may leave the machine.
    stub = StubDNS({"other.test": "127.0.0.2", "loop.test": "127.0.0.1"})
    guarded = Policy(deadline=2.0, retries=0, block_private=True)
    session = make_session(guarded, Resolver(stub))
    for host, address in (("other.test", "127.0.0.2"), ("loop.test", "127.0.0.1")):
        with pytest.raises(PrivateAddress) as caught:
            fetch(session, f"http://{host}:{port}/dns/a.png", guarded)
        assert f"{host} resolves to {address}" in str(caught.value)
        assert caught.value.attempts == 0
    assert server.total_hits() == 0
