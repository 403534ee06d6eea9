"""robots.txt verdicts shared through the master's spool (master.verdictstore): several
origins, each with a robots.txt of about 1 KB (spooled, not kept in memory), two worker
processes, politeness active so the master reads the rules itself (``silent``). Every
origin's robots.txt is fetched once for the cluster, its disallowed URLs are never asked
for and end blocked, the others are stored. Real master and workers, a real image
server on three loopback addresses.
"""

from __future__ import annotations

from pathlib import Path

from conftest import assert_no_traceback, read_rows, run_cli
from imageserver import ImageServer
from test_hostile_network import tmpfs

from crawler import constants as c
from crawler.master.verdictstore import SPOOL_FROM

ROBOTS = (
    "# robots.txt of a site with many rules\nUser-agent: *\n"
    + "".join(f"Disallow: /private{i}/\n" for i in range(30))
    + "Disallow: /no/\n\nUser-agent: otherbot\nAllow: /\n"
).encode()


def test_verdicts_from_the_spool_decide_as_they_would(
    tmp_path: Path, image_server: ImageServer
) -> None:
    assert len(ROBOTS) * 4 // 3 >= SPOOL_FROM  # its verdict is spooled
    image_server.add("/robots.txt", ROBOTS, content_type="text/plain")
    bases = [
        image_server.base_url,
        image_server.alias("127.0.0.2"),
        image_server.alias("127.0.0.3"),
    ]
    urls: dict[str, str] = {}
    for n, base in enumerate(bases):
        for i in range(4):
            path = f"/ok/{n}-{i}.png"
            urls[base + path] = image_server.add_image(path, "PNG", 24, 16, seed=10 * n + i)
        for i in range(2):
            urls[base + f"/no/{n}-{i}.png"] = image_server.add_image(
                f"/no/{n}-{i}.png", "PNG", 24, 16, seed=100 + 10 * n + i
            )
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{url}\n" for url in urls), encoding="utf-8")
    result = run_cli(
        "master", str(listing), "--bind", "127.0.0.1", "--output", str(tmp_path / "out"),
        "--local-workers", "2", "--threads", "2", "--host-delay", "0.05",
        "--no-progress", "--no-report",
    )  # fmt: skip
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr
    rows = {row["url"]: row for row in read_rows(tmp_path / "out" / "manifest.jsonl")}
    assert set(rows) == set(urls)
    for url, row in rows.items():
        if "/no/" in url:
            assert (row["status"], row["attempts"]) == (c.BLOCKED, 0), row
        else:
            assert row["status"] == c.OK, row
    assert image_server.hits("/robots.txt") == len(bases)  # once an origin, for the cluster
    assert all(image_server.hits(f"/no/{n}-{i}.png") == 0 for n in range(3) for i in range(2))


def test_the_spool_leaves_a_small_output_disk_to_the_images(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """Nine origins with a robots.txt of about 380 KB each, the manifest and the images
    on a 3 MiB disk: the verdicts are not spooled there (the disk keeps its room for
    the images and the rows), and every URL is stored (a review's, 2026-12-02: the
    spool took the room, and the images and the manifest were refused)."""
    padding = "".join(f"# {'x' * 70}\n" for _ in range(5000))
    image_server.add("/robots.txt", (padding + "User-agent: *\nDisallow: /no/\n").encode(),
                     content_type="text/plain")  # fmt: skip
    bases = [image_server.base_url] + [image_server.alias(f"127.0.0.{n}") for n in range(2, 10)]
    urls = [
        image_server.add_image(f"/ok/{n}.png", "PNG", 24, 16, seed=n).replace(
            image_server.base_url, base
        )
        for n, base in enumerate(bases)
    ]
    with tmpfs(tmp_path / "disk", "3m") as disk:
        listing = tmp_path / "list.txt"
        listing.write_text("".join(f"{url}\n" for url in urls), encoding="utf-8")
        result = run_cli(
            "master", str(listing), "--bind", "127.0.0.1", "--output", str(disk / "out"),
            "--local-workers", "1", "--threads", "4", "--no-progress", "--no-report",
        )  # fmt: skip
        assert_no_traceback(result.stdout, result.stderr)
        assert result.returncode == 0, result.stderr
        rows = read_rows(disk / "out" / "manifest.jsonl")
        assert sorted(row["url"] for row in rows) == sorted(urls)
        assert {row["status"] for row in rows} == {c.OK}
