"""A revalidation that fails keeps the stored copy the URL's image.

``--refresh-after`` asks the web again for images stored long enough ago. Until
2026-12-01 any failure of that request replaced the ok row: a 404, an HTML page in the
image's place, a timeout; the verified image stayed on disk, but the manifest no longer
named it, nor did the summary, so the collection lost it without a word. Now the earlier
row stands (the copy is still due, so the next run asks again) and the summary counts
the URLs (``changes.refresh_failed``); an answer that opts out (X-Robots-Tag) still
replaces the row, as the crawler honours opt-outs, and a new image still replaces the
old one.

Real master and worker processes, a real image server on loopback; each night is a
whole run, and the files on disk are read back.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conftest import assert_no_traceback, read_rows, run_cli
from imageserver import HTML_PAGE, ImageServer, make_image, send

from crawler import constants as c

REFRESH = ("--refresh-after", "0.000001")  # 0.09 s: every stored row is due by the next night
CASES = ("gone", "html", "slow", "opted_out", "changed", "same")


def night(root: Path, listing: Path, *flags: str) -> dict[str, Any]:
    args = [str(listing), "--output", str(root / "out"), "--local-workers", "1"]
    args += ["--deadline", "1", "--retries", "0", "--host-delay", "0", *flags]
    result = run_cli("master", *args, timeout=60)
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    return json.loads((root / "out" / "manifest.summary.json").read_text(encoding="utf-8"))


def rows(root: Path) -> dict[str, dict[str, Any]]:
    found = read_rows(root / "out" / "manifest.jsonl")
    return {row["url"].rsplit("/", 1)[1].removesuffix(".png"): row for row in found}


def test_a_failed_revalidation_keeps_the_stored_copy(
    tmp_path: Path, image_server: ImageServer
) -> None:
    images = {name: make_image("PNG", 40, 30, seed=i) for i, name in enumerate(CASES)}
    urls = {name: image_server.add(f"/r/{name}.png", body, content_type="image/png")
            for name, body in images.items()}  # fmt: skip
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{url}\n" for url in urls.values()), encoding="utf-8")
    night(tmp_path, listing)
    first = rows(tmp_path)
    assert {row["status"] for row in first.values()} == {c.OK}

    def serve(name: str, body: bytes, **how: Any) -> None:
        image_server.add(urlsplit(urls[name]).path, body, **how)

    serve("gone", b"gone", status=404)
    serve("html", HTML_PAGE, content_type="image/png")
    serve("slow", images["slow"], content_type="image/png", delay=3.0)
    serve("opted_out", images["opted_out"], content_type="image/png",
          headers={"X-Robots-Tag": "noai"})  # fmt: skip
    new = make_image("PNG", 40, 30, seed=99)
    serve("changed", new, content_type="image/png")
    summary = night(tmp_path, listing, *REFRESH)
    second = rows(tmp_path)

    for name in ("gone", "html", "slow", "same"):  # "same": downloaded again, the same bytes
        assert {k: second[name][k] for k in ("status", "path", "sha256")} == {
            k: first[name][k] for k in ("status", "path", "sha256")
        }, second[name]
        stored = (tmp_path / "out" / second[name]["path"]).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == first[name]["sha256"] == hashlib.sha256(
            images[name]).hexdigest()  # fmt: skip
    assert second["opted_out"]["status"] == c.BLOCKED, second["opted_out"]
    assert second["changed"]["sha256"] == hashlib.sha256(new).hexdigest()
    assert summary["changes"]["refresh_failed"] == 3, summary["changes"]
    assert summary["changes"]["refetched"] == 2, summary["changes"]
    assert summary["counts"] == {c.OK: 5, c.BLOCKED: 1}, summary["counts"]

    before = {name: image_server.hits(f"/r/{name}.png") for name in ("gone", "html")}
    night(tmp_path, listing, *REFRESH)
    for name, hits in before.items():  # still due: asked again the next night
        assert image_server.hits(f"/r/{name}.png") == hits + 1, name
        assert rows(tmp_path)[name]["sha256"] == first[name]["sha256"]


def test_a_revalidation_asks_robots_txt(tmp_path: Path, image_server: ImageServer) -> None:
    """A refresh makes requests, so robots.txt rules them, as RFC 9309 asks of every
    access: a URL it now disallows is not asked for and ends blocked (an opt-out, which
    replaces the row, as X-Robots-Tag's does); the others are spaced by its Crawl-delay.
    Until 2026-12-01 a refresh never read robots.txt: disallowed URLs were asked, and the
    host's conditional GETs came together. A robots.txt unavailable the next night is no
    opt-out: the stored copies stand."""
    names = ["ok0", "ok1", "ok2", "no0", "no1"]
    seen: dict[str, list[float]] = {name: [] for name in names}
    image_server.add("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain")
    urls = {}
    for i, name in enumerate(names):
        body = make_image("PNG", 40, 30, seed=20 + i)
        urls[name] = image_server.add_handler(f"/{name[:2]}/{name}.png", timed(body, seen[name]))
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{url}\n" for url in urls.values()), encoding="utf-8")
    night(tmp_path, listing)
    first = rows(tmp_path)
    assert {row["status"] for row in first.values()} == {c.OK}

    rules = b"User-agent: *\nCrawl-delay: 1\nDisallow: /no/\n"
    image_server.add("/robots.txt", rules, content_type="text/plain")
    night(tmp_path, listing, *REFRESH, "--max-failure-rate", "1")
    second = rows(tmp_path)
    for name in ("no0", "no1"):
        assert (second[name]["status"], second[name]["attempts"]) == (c.BLOCKED, 0), second
        assert len(seen[name]) == 1  # the first night only
    starts = sorted(seen[name][1] for name in ("ok0", "ok1", "ok2"))
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(starts)), starts  # Crawl-delay 1
    assert all(second[n]["status"] in (c.OK, c.NOT_MODIFIED) for n in ("ok0", "ok1", "ok2"))

    image_server.add("/robots.txt", b"busy", status=503, content_type="text/plain")
    summary = night(tmp_path, listing, *REFRESH, "--max-attempts", "1")
    third = rows(tmp_path)
    for name in ("ok0", "ok1", "ok2"):  # not asked for, and their stored copy stands
        assert (third[name]["status"], third[name]["path"]) == (c.OK, first[name]["path"])
        assert len(seen[name]) == 2
    assert summary["counts"].get(c.BLOCKED, 0) == 2  # the opted-out rows, from the last night


def timed(body: bytes, seen: list[float]) -> Any:
    """A handler serving ``body`` as a PNG, noting when each request came."""

    def serve(handler: Any) -> None:
        seen.append(time.monotonic())
        send(handler, 200, body, {"Content-Type": "image/png"})

    return serve


def test_a_row_that_stands_names_its_line_as_the_lists_now_have_it(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """Night 1 a CSV list; night 2 the same URLs as JSON Lines, reordered, other captions,
    with --refresh-after: two revalidations fail (their rows stand), two are answered.
    Every row names its JSON Lines line and caption, a copy's ``same_content_as`` names
    the first copy's current line, and no URL counts as not re-checked: all answered. A
    fresh user's (2026-12-01): standing rows kept ``list.csv:3`` and its caption, for
    good (the kept index then trusted them); ``same_content_as`` named the CSV line; the
    summary said "(not re-checked) 2 ... rerun the same command"."""
    twin = make_image("PNG", 40, 30, seed=50)
    bodies = {
        "gone": make_image("PNG", 40, 30, seed=51),
        "html": make_image("PNG", 40, 30, seed=52),
    }
    bodies |= {"first": twin, "copy": twin}
    urls = {name: image_server.add(f"/m/{name}.png", body, content_type="image/png")
            for name, body in bodies.items()}  # fmt: skip
    csv = tmp_path / "list.csv"
    csv.write_text("url,cap\n" + "".join(f"{u},{n}\n" for n, u in urls.items()), encoding="utf-8")
    night(tmp_path, csv)
    image_server.add("/m/gone.png", b"gone", status=404)
    image_server.add("/m/html.png", HTML_PAGE, content_type="image/png")
    order = ["copy", "html", "first", "gone"]
    jsonl = tmp_path / "list.jsonl"
    jsonl.write_text("".join(json.dumps({"url": urls[n], "cap": n + "2"}) + "\n" for n in order),
                     encoding="utf-8")  # fmt: skip
    summary = night(tmp_path, jsonl, *REFRESH)
    assert summary["changes"]["refresh_failed"] == 2 and summary["not_rechecked"] == 0, summary
    for rerun in (False, True):  # and the next plain night, from the kept index
        if rerun:
            night(tmp_path, jsonl)
        now = rows(tmp_path)
        for line, name in enumerate(order, start=1):
            assert now[name]["status"] == c.OK, now[name]
            assert (now[name]["source"], now[name]["extra"]) == (
                f"{jsonl}:{line}",
                {"cap": name + "2"},
            ), (rerun, now[name])
        # Which of the two twins is "the first row with the same bytes" is the order their
        # answers came in the first night: the other names that one's current line.
        twins = sorted((now[n]["same_content_as"] is not None, n) for n in ("first", "copy"))
        (_, original), (_, other) = twins
        assert now[original]["same_content_as"] is None, (rerun, now[original])
        assert now[other]["same_content_as"] == now[original]["source"], (rerun, now[other])


def test_images_dated_after_now_are_revalidated(tmp_path: Path, image_server: ImageServer) -> None:
    """A night whose clock was ahead dated its rows in the future: their age is unknown,
    so ``--refresh-after`` revalidates them, and says so. Until 2026-12-01 their age was
    negative, never due: one night at 2030 stopped every revalidation until 2030 (a fresh
    user's)."""
    dates = ("2030-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00", "2031-06-01T00:00:00")
    names = ("a", "b", "c", "now")
    urls = {name: image_server.add(f"/ahead/{name}.png", make_image("PNG", 40, 30, seed=i),
                                   content_type="image/png")
            for i, name in enumerate(names)}  # fmt: skip
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{url}\n" for url in urls.values()), encoding="utf-8")
    night(tmp_path, listing)
    manifest = tmp_path / "out" / "manifest.jsonl"
    lines = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        name = row["url"].rsplit("/", 1)[1].removesuffix(".png")
        ahead = row | {"fetched_at": dates[names.index(name) % len(dates)]}
        # Counted per URL by its last row (until 2026-12-01 per row): a journal not
        # compacted holds each row dated ahead twice, and "now"'s row dated ahead is
        # followed by its row of today.
        lines += [json.dumps(ahead) + "\n"] * (1 if name == "now" else 2)
        lines += [line + "\n"] if name == "now" else []
    manifest.write_text("".join(lines), encoding="utf-8")
    hits = {name: image_server.hits(f"/ahead/{name}.png") for name in names}
    args = [str(listing), "--output", str(tmp_path / "out"), "--local-workers", "1"]
    result = run_cli("master", *args, "--refresh-after", "3", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "3 stored image(s) dated after now" in result.stderr, result.stderr
    for name in names:  # the three dated ahead asked again; the one of today not
        assert image_server.hits(f"/ahead/{name}.png") == hits[name] + (name != "now"), name
    assert {row["status"] for row in rows(tmp_path).values()} == {c.OK}
