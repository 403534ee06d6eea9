"""The head of an answer, from a raw socket server on loopback: interim (1xx) answers
before the final one, a head sent slowly enough to outlast the deadline, and a
Retry-After that means nothing. Found by a fresh user (2026-12-01):

- a ``103 Early Hints`` was taken for the final answer: the image failed for good as
  "HTTP 103", and a robots.txt sent after one was not read, its Disallow ignored;
- a status line sent a byte at a time, a header line a second, endless ``100
  Continue`` answers or an endless chunked trailer held a download thread (its lease
  renewed) 30-40 s under ``--deadline 5``: every receive was short, none was the last;
- a 503 whose Retry-After was "soon" became a ``connection_error``, never retried.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import assert_no_traceback, read_rows, run_cli
from hostile import raw_server
from imageserver import make_image

PNG = make_image("PNG", 24, 16, seed=4)
DEADLINE = 3.0
SLACK = 2.0  # seconds past the deadline a row may take (the retry's pause, scheduling)
LIMIT = 20.0  # seconds a handler keeps at it, whatever the client does


def answer(body: bytes, status: str = "200 OK", kind: bytes = b"image/png") -> bytes:
    return (f"HTTP/1.1 {status}\r\n".encode() + b"Content-Type: " + kind + b"\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip


def interim(count: int, status: str = "103 Early Hints") -> bytes:
    return f"HTTP/1.1 {status}\r\nLink: </s.css>; rel=preload\r\n\r\n".encode() * count


def trickled(data: bytes, every: float) -> Callable[[socket.socket], None]:
    def send(conn: socket.socket) -> None:
        end = time.monotonic() + LIMIT
        for i in range(len(data)):
            if time.monotonic() > end:
                return
            conn.sendall(data[i : i + 1])
            time.sleep(every)

    return send


def flood(unit: bytes) -> Callable[[socket.socket], None]:
    def send(conn: socket.socket) -> None:
        end = time.monotonic() + LIMIT
        while time.monotonic() < end:
            conn.sendall(unit * 20)
            time.sleep(0.05)

    return send


def endless_trailer(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n"
                 b"\r\n" + f"{len(PNG):x}\r\n".encode() + PNG + b"\r\n0\r\n")  # fmt: skip
    flood(b"X-Trailer: v\r\n")(conn)


HEADER_LINES = b"".join(b"X-Slow-%d: v\r\n" % i for i in range(40))


def header_trickle(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    trickled(HEADER_LINES, 1.0 / 14)(conn)  # a line a second


ROBOTS = b"User-agent: *\nDisallow: /private\n"
PAGES: dict[str, bytes | Callable[[socket.socket], None]] = {
    "/robots.txt": answer(b"", "404 Not Found", b"text/plain"),
    "/early-hints.png": interim(1) + answer(PNG),
    "/many-hints.png": interim(5) + interim(3, "100 Continue") + interim(1, "102 Processing")
    + answer(PNG),
    "/hint-flood.png": interim(25) + answer(PNG),
    "/continue-flood.png": flood(b"HTTP/1.1 100 Continue\r\n\r\n"),
    "/status-trickle.png": trickled(answer(PNG), 0.5),
    "/header-trickle.png": header_trickle,
    "/endless-trailer.png": endless_trailer,
    # a 500: the worker retries it itself (a 503 now goes back to the master, which holds
    # the host and leases the URL again: tests/master/test_politeness.py)
    "/retry-after-junk.png": answer(b"busy", "500 Internal Server Error", b"text/plain").replace(
        b"\r\n\r\n", b"\r\nRetry-After: soon\r\n\r\n", 1),
}  # fmt: skip
# A second origin, whose robots.txt comes after a 103 and disallows /private.
GUARDED: dict[str, bytes | Callable[[socket.socket], None]] = {
    "/robots.txt": interim(1) + answer(ROBOTS, kind=b"text/plain"),
    "/private/secret.png": answer(PNG),
    "/public.png": answer(PNG),
}


class RawServer:
    """Answers each connection's first request from ``pages`` (bytes, or a function
    writing to the socket), then closes it; records the paths asked for."""

    def __init__(self, pages: dict[str, bytes | Callable[[socket.socket], None]]) -> None:
        self.pages, self.seen = pages, []
        self.sock = raw_server(self._serve)
        self.port = self.sock.getsockname()[1]

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    more = conn.recv(4096)
                    if not more:
                        return
                    data += more
                path = data.split(b" ", 2)[1].decode()
                self.seen.append(path)
                page = self.pages.get(path, answer(b"", "404 Not Found", b"text/plain"))
                conn.sendall(page) if isinstance(page, bytes) else page(conn)
            except OSError:  # the client gave up: what the tests want of it
                return

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:
    plain, guarded = RawServer(PAGES), RawServer(GUARDED)
    root = tmp_path_factory.mktemp("head")
    urls = [plain.url(p) for p in PAGES if p != "/robots.txt"]
    urls += [guarded.url(p) for p in GUARDED if p != "/robots.txt"]
    (root / "l.txt").write_text("\n".join(urls) + "\n", encoding="utf-8")
    done = run_cli(
        "master", str(root / "l.txt"), "--output", str(root / "out"), "--port", "0",
        "--local-workers", "1", "--threads", "16", "--no-progress", "--no-report",
        "--deadline", str(DEADLINE), "--retries", "1",
    )  # fmt: skip
    assert_no_traceback(done.stdout, done.stderr)
    found = {
        row["url"].split(":", 2)[2].split("/", 1)[1]: row
        for row in read_rows(root / "out" / "manifest.jsonl")
    }
    yield {"/" + path: row for path, row in found.items()}
    plain.sock.close()
    guarded.sock.close()


@pytest.mark.parametrize("path", ["/early-hints.png", "/many-hints.png", "/public.png"])
def test_interim_answers_are_skipped(rows: dict[str, dict], path: str) -> None:
    row = rows[path]
    assert (row["status"], row["http_status"], row["bytes"]) == ("ok", 200, len(PNG)), row


def test_a_robots_txt_after_an_interim_answer_is_obeyed(rows: dict[str, dict]) -> None:
    row = rows["/private/secret.png"]
    assert row["status"] == "blocked" and "robots.txt" in row["error"], row


def test_too_many_interim_answers_are_refused(rows: dict[str, dict]) -> None:
    row = rows["/hint-flood.png"]
    assert row["status"] == "connection_error", row
    assert "more than 20 interim (1xx) answers" in row["error"], row


@pytest.mark.parametrize(
    "path",
    ["/continue-flood.png", "/status-trickle.png", "/header-trickle.png", "/endless-trailer.png"],
)
def test_a_slow_or_endless_head_ends_at_the_deadline(rows: dict[str, dict], path: str) -> None:
    row = rows[path]
    assert row["status"] in ("timeout", "connection_error"), row
    assert row["elapsed_s"] < DEADLINE + SLACK, row
    assert path == "/continue-flood.png" or row["error"].startswith(
        f"deadline of {DEADLINE:g} s"
    ), row


def test_a_retry_after_that_means_nothing_is_ignored(rows: dict[str, dict]) -> None:
    row = rows["/retry-after-junk.png"]
    assert (row["status"], row["http_status"], row["attempts"]) == ("http_error", 500, 2), row
    assert row["leases"] == 1, row  # retried in the thread, urllib3's backoff


def test_a_probe_fetches_robots_txt_and_its_url_within_one_deadline(tmp_path: Path) -> None:
    """robots.txt had a deadline of its own: a probe whose robots.txt and image each took
    most of --deadline 5 ended ok after 8.7 s (a fresh user, 2026-12-01). Each lease of
    the URL stays within one deadline: the first is cut there, and, its deadline gone to
    robots.txt, the URL is leased again (since 2026-12-02), its image then fetched alone."""
    robots = answer(b"User-agent: *\nAllow: /\n", kind=b"text/plain")
    slow = RawServer({"/robots.txt": trickled(robots, 2.0 / len(robots)),
                      "/slow.png": trickled(answer(PNG), 2.0 / len(answer(PNG)))})  # fmt: skip
    try:
        (tmp_path / "l.txt").write_text(slow.url("/slow.png") + "\n")
        done = run_cli("master", str(tmp_path / "l.txt"), "--output", str(tmp_path / "out"),
                       "--port", "0", "--local-workers", "1", "--no-progress", "--no-report",
                       "--deadline", str(DEADLINE), "--retries", "0")  # fmt: skip
        assert_no_traceback(done.stdout, done.stderr)
    finally:
        slow.sock.close()
    (row,) = read_rows(tmp_path / "out" / "manifest.jsonl")
    assert row["elapsed_s"] < DEADLINE + SLACK / 2, row
    assert row["leases"] == 2, row
    # The image alone trickles over 2 s of the 3: ok, unless a loaded machine stretches
    # its many short sleeps past the deadline (a CI run did, 2026-12-02): each lease
    # within one deadline is the point here (tests/worker/test_robots_deadline.py has
    # the margins for "ok").
    assert row["status"] in ("ok", "timeout"), row
