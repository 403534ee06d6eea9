"""A URL whose deadline went to its origin's robots.txt is leased again, with a deadline
of its own.

The URL that fetches its origin's robots.txt shares ``--deadline`` with it (README,
"Who decides what"). On a host slow enough that robots.txt and the image together take
longer, that URL ended ``timeout``, and, retried by the next run as the origin's first URL
again, every night: a fresh user's (2026-12-02) read only "deadline of 4 s exceeded".
Now its result says so (``robots_late``), and the master leases the URL again, once a
run, while it has leases left: the next lease knows the verdict and fetches the image
alone. With no lease left the timeout stands, and names robots.txt's share.

Real master and worker processes, a real server on loopback answering robots.txt 0.6 s
late; the server counts and times the image requests.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from conftest import read_rows, run_cli
from imageserver import ImageServer, make_image, send

ROBOTS_LATE = 0.6  # seconds the server waits before answering robots.txt
PNG = make_image("PNG", 40, 30, seed=2)


def _run(tmp_path: Path, url: str, *flags: str) -> dict:
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{url}\n")
    manifest = tmp_path / "m.jsonl"
    done = run_cli(
        "master", str(urls), "--local-workers", "1", "--threads", "1", *flags,
        "--output", str(tmp_path / "out"), "--manifest", str(manifest), "--no-progress", "-q",
    )  # fmt: skip
    assert "Traceback" not in done.stderr
    [row] = read_rows(manifest)
    return row


def _slow_robots(server: ImageServer) -> None:
    server.add("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain",
               delay=ROBOTS_LATE)  # fmt: skip


def _slow_first(times: list[float], first_delay: float) -> Callable[[BaseHTTPRequestHandler], None]:
    """An image whose first request waits ``first_delay`` s; later ones answer at once.
    ``times``: when each request arrived (monotonic)."""
    lock = threading.Lock()

    def handler(request: BaseHTTPRequestHandler) -> None:
        with lock:
            times.append(time.monotonic())
            first = len(times) == 1
        if first:
            time.sleep(first_delay)
        send(request, 200, PNG, {"Content-Type": "image/png"})

    return handler


def test_a_url_robots_txt_kept_short_of_time_is_leased_again(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """robots.txt 0.6 s, then the image cut at the 2 s deadline: leased again (a lease
    of two), where it answers at once."""
    _slow_robots(image_server)
    times: list[float] = []
    url = image_server.add_handler("/a.png", _slow_first(times, 2.5))
    row = _run(tmp_path, url, "--deadline", "2", "--max-attempts", "2")
    assert (row["status"], row["leases"]) == ("ok", 2), row
    assert len(times) == 2
    assert image_server.hits("/robots.txt") == 1  # the second lease knew the verdict


def test_the_cut_request_spaces_the_host(tmp_path: Path, image_server: ImageServer) -> None:
    """Under --host-delay 3 the second request waits 3 s from the first's: the cut
    request's time comes to the master with its result (``request_age``), as any
    answer's does, and spaces the host's next lease."""
    _slow_robots(image_server)
    times: list[float] = []
    url = image_server.add_handler("/s.png", _slow_first(times, 2.5))
    row = _run(tmp_path, url, "--deadline", "2", "--max-attempts", "2", "--host-delay", "3")
    assert row["status"] == "ok", row
    assert len(times) == 2 and times[1] - times[0] >= 2.9, times


def test_with_no_lease_left_the_timeout_names_robots_txt(
    tmp_path: Path, image_server: ImageServer
) -> None:
    _slow_robots(image_server)
    url = image_server.add("/b.png", PNG, content_type="image/png", delay=2.5)
    row = _run(tmp_path, url, "--deadline", "2", "--max-attempts", "1")
    assert row["status"] == "timeout", row
    assert re.fullmatch(
        r"deadline of 2 s exceeded( while reading)?, \d\.\d s of it for robots\.txt first",
        row["error"],
    ), row["error"]
    assert image_server.hits("/b.png") == 1


def test_leased_again_once_a_run(tmp_path: Path, image_server: ImageServer) -> None:
    """Its second lease knows the verdict: too slow on its own too, it times out plainly."""
    _slow_robots(image_server)
    url = image_server.add("/c.png", PNG, content_type="image/png", delay=2.5)
    row = _run(tmp_path, url, "--deadline", "2", "--max-attempts", "3")
    assert (row["status"], row["leases"]) == ("timeout", 2), row
    assert re.fullmatch(r"deadline of 2 s exceeded( while reading)?", row["error"]), row
    assert image_server.hits("/c.png") == 2


@pytest.mark.parametrize("flags", [[], ["--ignore-robots"]], ids=["fast-robots", "no-robots"])
def test_without_a_slow_robots_txt_the_timeout_reads_as_before(
    tmp_path: Path, image_server: ImageServer, flags: list[str]
) -> None:
    """robots.txt answered at once (a 404: no rules) or not asked for: not leased again."""
    slow = image_server.add("/d.png", PNG, content_type="image/png", delay=2.5)
    row = _run(tmp_path, slow, "--deadline", "2", "--max-attempts", "3", *flags)
    assert (row["status"], row["leases"]) == ("timeout", 1), row
    assert re.fullmatch(r"deadline of 2 s exceeded( while reading)?", row["error"]), row["error"]
    assert image_server.hits("/d.png") == 1
