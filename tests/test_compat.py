"""Every private CPython/urllib3 internal the crawler reaches (``crawler._compat``) still
exists and behaves as relied on, on the installed versions: an upgrade that removes one
fails here, by name, rather than in a nightly run."""

from __future__ import annotations

import contextlib
import gc
import http.client
import inspect
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from multiprocessing import connection, managers
from multiprocessing.managers import BaseProxy, Server
from pathlib import Path
from typing import Any

import pytest
from conftest import cli_env, run_cli
from urllib3.connection import HTTPConnection
from urllib3.util.retry import Retry
from urllib3.util.timeout import Timeout

from crawler import _compat
from crawler.exceptions import MasterGone
from crawler.master import server as server_module
from crawler.master.endpoints import ResultQueue, RunControl, TaskQueue
from crawler.master.leases import LeaseBoard
from crawler.master.server import QueueServer
from crawler.worker import channel as channel_module
from crawler.worker.channel import Channel

KEY = b"compat-test-key-0123456789"


def test_server_loops_on_stop_event_and_listener_has_a_socket() -> None:
    assert "self.stop_event" in inspect.getsource(Server.serve_client)
    listener = connection.Listener(("127.0.0.1", 0), authkey=KEY)
    try:
        assert isinstance(_compat.listener_socket(listener), socket.socket)
    finally:
        listener.close()


def test_handshake_functions_exist() -> None:
    assert callable(connection.deliver_challenge) and callable(connection.answer_challenge)


def one_url_master() -> QueueServer:
    """A real QueueServer with a LeaseBoard of one URL, serving (close it when done)."""
    board = LeaseBoard(["http://example.com/a.png"], None, 60.0, 3)
    server = QueueServer("127.0.0.1", 0, KEY)
    server.start(
        {
            "task_queue": TaskQueue(board),
            "result_queue": ResultQueue(queue.Queue()),
            "run_control": RunControl(board, {"run_id": "r", "policy": "{}"}),
        }
    )
    return server


def test_proxy_internals_on_a_real_connection() -> None:
    """A real QueueServer and Channel: the proxy's thread-local connection carries the
    worker's keepalive, and the per-address cache holds (then forgets) the address."""
    server = one_url_master()
    try:
        channel = Channel("127.0.0.1", server.port, KEY, 5.0)
        assert channel.get("w", 1, 0)["tasks"]
        conn = channel._tasks._tls.connection
        with socket.socket(fileno=os.dup(conn.fileno())) as sock:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
        address = ("127.0.0.1", server.port)
        assert address in BaseProxy._address_to_local  # type: ignore[attr-defined]
        _compat.forget_connection(address)
        assert address not in BaseProxy._address_to_local  # type: ignore[attr-defined]
    finally:
        server.close()


def options(client: Any) -> dict[str, int]:
    with socket.socket(fileno=os.dup(client.fileno())) as sock:
        return {
            "nodelay": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
            "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "user_timeout": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
            "blocking": int(sock.getblocking()),
        }


def test_worker_connections_carry_keepalive_from_before_the_handshake() -> None:
    """Every connection the worker's serializer opens has TCP_NODELAY, keepalive and the
    user timeout as soon as it exists, before any call on it: until 2026-12-01 keepalive
    came after a connection's first call returned, and a master host that vanished during
    that call (a ``hello``) was waited on for 15 minutes (a fresh user's)."""
    server = one_url_master()
    try:
        _compat.nodelay_serializer("xmlrpclib", channel_module._keepalive)
        _, client_of = managers.listener_client["xmlrpclib+nodelay"]
        client = client_of(("127.0.0.1", server.port), KEY)  # handshake done, no call yet
        assert options(client) == {
            "nodelay": 1, "keepalive": 1, "user_timeout": channel_module.USER_TIMEOUT_MS,
            "blocking": 1,
        }  # fmt: skip
        client.close()
    finally:
        server.close()


def test_a_master_given_up_gets_no_more_connections() -> None:
    """Once a call found the master gone, the proxies' clean-up connects no more (each
    connect to a vanished host waited out 127 s of SYN retries, after the worker had said
    "went away"); a new Channel to the address connects again."""
    server = one_url_master()
    address = ("127.0.0.1", server.port)
    channel = Channel(*address, KEY, 5.0)
    server.close()
    with pytest.raises(MasterGone):
        channel.get("w", 1, 0)
    listener = socket.create_server(address)  # the port answers again: not asked
    listener.settimeout(0.3)
    try:
        _, client_of = managers.listener_client["xmlrpclib+nodelay"]
        with pytest.raises(ConnectionAbortedError, match="given up"):
            client_of(address, KEY)
        with pytest.raises(TimeoutError):
            listener.accept()
        _compat.forget_connection(address)  # what a new Channel does first
        failed: list[BaseException] = []
        thread = threading.Thread(target=lambda: _call_into(client_of, address, failed))
        thread.start()
        accepted, _ = listener.accept()  # it connects again
        accepted.close()  # and hears nothing: no master
        thread.join(10)
        assert failed and isinstance(failed[0], (OSError, EOFError)), failed
    finally:
        _compat.forget_connection(address)
        listener.close()


def _call_into(client_of: Any, address: tuple[str, int], failed: list[BaseException]) -> None:
    try:
        client_of(address, KEY)
    except BaseException as exc:  # handed to the test
        failed.append(exc)


def test_a_connect_that_gets_no_answer_ends() -> None:
    """A master host that drops SYNs (here: a full accept queue) is given up after the
    connect bound (the worker's --connect-timeout), not after 127 s of SYN retries."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = [socket.create_connection(listener.getsockname(), timeout=2)]  # queue full
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):  # its SYNs dropped, not refused
            _compat._nodelay_xml_client(None, 1.0, listener.getsockname(), KEY)
        assert 0.9 < time.monotonic() - started < 10
        # A Channel's connections take its --connect-timeout (until 2026-12-01 a fixed
        # 30 s capped a longer one: a review's); here 2 s.
        server = one_url_master()
        try:
            Channel("127.0.0.1", server.port, KEY, 2.0)
        finally:
            server.close()
            _compat.forget_connection(("127.0.0.1", server.port))
        _, client_of = managers.listener_client["xmlrpclib+nodelay"]
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            client_of(listener.getsockname(), KEY)
        assert 1.9 < time.monotonic() - started < 10
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_nodelay_client_speaks_to_a_real_master_with_nodelay_on() -> None:
    """The worker's connections (``nodelay_serializer``) carry TCP_NODELAY from before the
    handshake, and a real QueueServer (plain xmlrpclib listener) answers them: the wire
    format is unchanged. A wrong key is still refused."""
    assert callable(connection.ConnectionWrapper)
    server = one_url_master()
    try:
        client = _compat._nodelay_xml_client(None, 5.0, ("127.0.0.1", server.port), KEY)
        assert options(client)["nodelay"] != 0
        client.close()
        channel = Channel("127.0.0.1", server.port, KEY, 5.0)
        assert channel.get("w", 1, 0)["tasks"]
        assert options(channel._tasks._tls.connection)["nodelay"] != 0
        with pytest.raises(connection.AuthenticationError):
            _compat._nodelay_xml_client(
                None, 5.0, ("127.0.0.1", server.port), b"another-key-0123456789"
            )
        assert _compat.nodelay_serializer("xmlrpclib") == "xmlrpclib+nodelay"
        with pytest.raises(ValueError, match="no TCP_NODELAY client"):
            _compat.nodelay_serializer("pickle")
    finally:
        _compat.forget_connection(("127.0.0.1", server.port))
        server.close()


def test_master_sets_nodelay_on_accepted_connections() -> None:
    """The master's side of a worker connection: answers over 16 KiB go out as two writes."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=5)
    accepted, _ = listener.accept()
    conn = connection.Connection(accepted.detach())
    try:
        server_module._nodelay(conn)
        with socket.socket(fileno=os.dup(conn.fileno())) as sock:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        conn.close()
        client.close()
        listener.close()


def test_retry_increment_takes_url_second() -> None:
    names = list(inspect.signature(Retry.increment).parameters)
    assert names[:3] == ["self", "method", "url"]
    assert _compat.retry_url(("GET", "http://x/"), {}) == "http://x/"
    assert _compat.retry_url((), {"url": "http://y/"}) == "http://y/"


def test_timeout_parts_are_the_values_given() -> None:
    assert _compat.timeout_parts(Timeout(connect=1.5, read=7.0)) == (1.5, 7.0)


def test_socket_factory_is_what_connect_uses() -> None:
    """urllib3 opens the socket of a connection through ``_new_conn``: a subclass made by
    ``with_socket_factory`` gets every connect, to a real listener on loopback."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    acceptor = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    acceptor.start()
    seen: list[str] = []

    def factory(conn: HTTPConnection) -> socket.socket:
        seen.append(_compat.dns_host(conn))
        return socket.create_connection(("127.0.0.1", port), timeout=5)

    guarded = _compat.with_socket_factory(HTTPConnection, factory)
    conn = guarded("localhost.", port, timeout=5)
    try:
        conn.connect()
        acceptor.join(timeout=5)
        assert len(accepted) == 1  # the factory's socket is the one that connected
        assert seen == ["localhost."]  # _dns_host: as given; conn.host drops the dot
        assert conn.host == "localhost"
    finally:
        conn.close()
        for sock in accepted:
            sock.close()
        listener.close()


def test_http_client_reads_status_lines_through_read_status_and_response_class() -> None:
    """``FinalResponse`` overrides ``HTTPResponse._read_status`` (called by ``begin`` for
    each status line) and uses ``http.client._read_headers``; urllib3's connection makes
    its answer from ``response_class`` and reads it in ``getresponse``."""
    assert "self._read_status()" in inspect.getsource(http.client.HTTPResponse.begin)
    assert callable(http.client._read_headers)  # type: ignore[attr-defined]
    assert "self.response_class(" in inspect.getsource(http.client.HTTPConnection.getresponse)
    assert "super().getresponse()" in inspect.getsource(HTTPConnection.getresponse)
    guarded = _compat.with_socket_factory(HTTPConnection, lambda conn: socket.socket())
    assert guarded.response_class is _compat.FinalResponse


def test_http_client_reads_chunks_through_the_methods_final_response_overrides() -> None:
    """``FinalResponse`` overrides ``_read_next_chunk_size`` and ``_get_chunk_left`` (the
    one reads each chunk's size line, the other drops the 2 bytes after a chunk's data
    when ``chunk_left`` is 0, and reads no more when it is None) and reads lines up to
    ``_MAXLINE``."""
    source = inspect.getsource(http.client.HTTPResponse._get_chunk_left)
    assert "self._read_next_chunk_size()" in source and "self._safe_read(2)" in source
    assert "if chunk_left is not None:" in source
    assert isinstance(http.client._MAXLINE, int)  # type: ignore[attr-defined]
    for name in ("_read1_chunked", "_readinto_chunked", "_read_chunked"):
        assert "self._get_chunk_left()" in inspect.getsource(
            getattr(http.client.HTTPResponse, name)
        )


VANISHING_MASTER = """
import os, queue, sys
from crawler.master.endpoints import ResultQueue, RunControl, TaskQueue
from crawler.master.leases import LeaseBoard
from crawler.master.server import QueueServer

class Vanishing(RunControl):
    def hello(self, worker, info):
        os._exit(0)  # the master's process gone in the middle of the call

board = LeaseBoard(["http://127.0.0.1:9/a.png"], None, 60.0, 3)
server = QueueServer("127.0.0.1", 0, sys.argv[1].encode())
server.start({"task_queue": TaskQueue(board), "result_queue": ResultQueue(queue.Queue()),
              "run_control": Vanishing(board, {"run_id": "r", "policy": "{}"})})
print(server.port, flush=True)
sys.stdin.read()
"""


def test_a_master_gone_during_hello_is_a_worker_that_could_not_join(tmp_path: Path) -> None:
    """A worker whose master goes away during its ``hello`` held no work: it could not
    join, exit 1 (until 2026-12-01 exit 3, "work lost", for nothing: a review's; exit 0
    for a few hours that day, which hid a master still up behind a broken link)."""
    key = KEY.decode()
    master = subprocess.Popen(
        [sys.executable, "-c", VANISHING_MASTER, key], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, env=cli_env(),
    )  # fmt: skip
    try:
        port = master.stdout.readline().strip() if master.stdout else ""
        worker = run_cli(
            "worker", "--server", "127.0.0.1", "--port", port, "--output", str(tmp_path),
            env=cli_env(CRAWLER_AUTHKEY=key),
        )  # fmt: skip
    finally:
        master.kill()
        master.communicate(timeout=10)
    assert worker.returncode == 1, worker.stderr
    assert "before handing out work" in worker.stderr, worker.stderr
    assert "Traceback" not in worker.stderr


class CountingRelay:
    """A TCP relay on loopback in front of ``port`` that counts the connections made
    through it (the real bytes pass both ways)."""

    def __init__(self, port: int) -> None:
        self.port_to = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.count = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            self.count += 1
            far = socket.create_connection(("127.0.0.1", self.port_to))
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()


def test_a_worker_connects_once_per_proxy_and_never_to_count_references() -> None:
    """A Channel opens one connection to reach the master (the probe), one per proxy
    (``shared_proxies``: ``create``), then one per calling thread; collecting it opens
    none. Until 2026-12-01 it took 14 (``dummy``, and ``create``, ``incref`` and
    ``decref`` for each proxy, then a ``decref`` each when collected): ~15-35 ms of
    handshakes before a worker's first call (issue 15). Each proxy still works."""
    server = one_url_master()
    relay = CountingRelay(server.port)
    address = ("127.0.0.1", relay.port)
    try:
        channel = Channel(*address, KEY, 5.0)
        assert relay.count == 4
        assert channel.hello("w", {"host": "h"})["run_id"] == "r"
        assert channel.get("w", 1, 0)["tasks"]
        assert channel.put("w", []) == 0
        assert relay.count == 5  # the calling thread's one connection, for all three
        del channel
        gc.collect()
        time.sleep(0.2)  # a decref would be on its way
        assert relay.count == 5
    finally:
        _compat.forget_connection(address)
        relay.close()
        server.close()
