"""A URL whose deadline went to its origin's robots.txt gets a deadline of its own.

The URL that fetches its origin's robots.txt shares ``--deadline`` with it (README,
"Who decides what"). On a host slow enough that robots.txt and the image together take
longer, that URL ended ``timeout``, and, retried by the next run as the origin's first URL
again, every night: a fresh user's (2026-12-02) read only "deadline of 4 s exceeded".
Such a URL now goes back to the master once (no attempt counted), after the verdict,
and its next lease fetches the image alone, within a whole deadline.

Real master and worker processes, a real server on loopback answering robots.txt and
the image late, under ``--deadline 2`` and ``--max-attempts 1`` (a hand-back must not
count as an attempt); the server counts the requests.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import read_rows, run_cli
from imageserver import ImageServer, make_image

ROBOTS_LATE = 0.6  # seconds the server waits before answering robots.txt


def _run(tmp_path: Path, url: str, deadline: str, *flags: str) -> dict:
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{url}\n")
    manifest = tmp_path / "m.jsonl"
    done = run_cli(
        "master", str(urls), "--local-workers", "1", "--threads", "1", "--deadline", deadline,
        "--max-attempts", "1", *flags, "--output", str(tmp_path / "out"),
        "--manifest", str(manifest), "--no-progress", "-q",
    )  # fmt: skip
    assert "Traceback" not in done.stderr
    [row] = read_rows(manifest)
    return row


def _slow_robots(server: ImageServer) -> None:
    server.add("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain",
                      delay=ROBOTS_LATE)  # fmt: skip


def test_a_url_robots_txt_kept_short_of_time_is_fetched_again(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """robots.txt 0.6 s and the image 1.5 s: together past the 2 s deadline, the image
    alone within it (0.5 s to spare)."""
    _slow_robots(image_server)
    url = image_server.add("/a.png", make_image("PNG", 40, 30, seed=2), delay=1.5)
    row = _run(tmp_path, url, "2")
    assert row["status"] == "ok", row
    assert image_server.hits("/a.png") == 2  # cut at the deadline, then whole
    assert image_server.hits("/robots.txt") == 1  # the second lease knew the verdict


def test_a_url_too_slow_on_its_own_still_times_out(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """Handed back once, not for ever: the image takes longer than the whole deadline,
    and its second lease ends ``timeout`` with nothing of robots.txt in its error."""
    _slow_robots(image_server)
    url = image_server.add("/b.png", make_image("PNG", 40, 30, seed=3), delay=2.5)
    row = _run(tmp_path, url, "2")
    assert row["status"] == "timeout", row
    assert re.fullmatch(r"deadline of 2 s exceeded( while reading)?", row["error"]), row
    assert image_server.hits("/b.png") == 2


@pytest.mark.parametrize("flags", [[], ["--ignore-robots"]], ids=["fast-robots", "no-robots"])
def test_without_a_slow_robots_txt_the_timeout_reads_as_before(
    tmp_path: Path, image_server: ImageServer, flags: list[str]
) -> None:
    """robots.txt answered at once (a 404: no rules) or not asked for: not handed back."""
    slow = image_server.add("/b.png", make_image("PNG", 40, 30, seed=3), delay=1.5)
    row = _run(tmp_path, slow, "1", *flags)
    assert row["status"] == "timeout"
    assert re.fullmatch(r"deadline of 1 s exceeded( while reading)?", row["error"]), row["error"]
    assert image_server.hits("/b.png") == 1
