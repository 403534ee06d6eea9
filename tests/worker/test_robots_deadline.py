"""A URL that fetched its origin's robots.txt says what of its deadline that took.

The URL that fetches its origin's robots.txt shares ``--deadline`` with it (README,
"Who decides what"). On a host slow enough that robots.txt and the image together take
longer, that URL ends ``timeout``, and, retried by the next run as the origin's first URL
again, every night: a fresh user's (2026-12-02) read only "deadline of 4 s exceeded".
Its error now names robots.txt's share; a URL that fetched none, or one that took
little of it, reads as before.

Real master and worker processes, a real server on loopback answering robots.txt 0.5 s
late and the image 2 s late, under ``--deadline 2`` and ``--max-attempts 1`` (robots.txt
has 1.5 s to spare on a loaded machine before the URL would be ``blocked`` instead).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import read_rows, run_cli
from imageserver import ImageServer, make_image

ROBOTS_LATE = 0.5  # seconds the server waits before answering robots.txt
IMAGE_LATE = 2.0  # and before answering the image


def test_the_timeout_names_robots_txt_share(tmp_path: Path, image_server: ImageServer) -> None:
    image_server.add("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain",
                     delay=ROBOTS_LATE)  # fmt: skip
    png = make_image("PNG", 40, 30, seed=2)
    first = image_server.add("/a.png", png, content_type="image/png", delay=IMAGE_LATE)
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{first}\n")
    manifest = tmp_path / "m.jsonl"
    done = run_cli(
        "master", str(urls), "--local-workers", "1", "--threads", "1", "--deadline", "2",
        "--max-attempts", "1", "--output", str(tmp_path / "out"), "--manifest", str(manifest),
        "--no-progress", "-q",
    )  # fmt: skip
    assert "Traceback" not in done.stderr
    [row] = read_rows(manifest)
    assert row["status"] == "timeout", row
    assert re.fullmatch(
        r"deadline of 2 s exceeded( while reading)?, \d\.\d s of it for robots\.txt first",
        row["error"],
    ), row["error"]


@pytest.mark.parametrize("flags", [[], ["--ignore-robots"]], ids=["fast-robots", "no-robots"])
def test_without_a_slow_robots_txt_the_timeout_reads_as_before(
    tmp_path: Path, image_server: ImageServer, flags: list[str]
) -> None:
    """robots.txt answered at once (a 404: no rules) or not asked for: no share named."""
    slow = image_server.add("/b.png", make_image("PNG", 40, 30, seed=3), delay=1.5)
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{slow}\n")
    manifest = tmp_path / "m.jsonl"
    done = run_cli(
        "master", str(urls), "--local-workers", "1", "--threads", "1", "--deadline", "1",
        "--max-attempts", "1", *flags, "--output", str(tmp_path / "out"),
        "--manifest", str(manifest), "--no-progress", "-q",
    )  # fmt: skip
    assert "Traceback" not in done.stderr
    [row] = read_rows(manifest)
    assert row["status"] == "timeout"
    assert re.fullmatch(r"deadline of 1 s exceeded( while reading)?", row["error"]), row["error"]
