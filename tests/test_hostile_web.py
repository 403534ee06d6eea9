"""Hostile web servers against the real crawler: every misbehaviour ends in its own status.

Each case of ``hostile.py`` (a trickling, hanging or endless body, lying headers,
decompression bombs, redirect tricks, odd but valid URLs) is one line of a single list
crawled by one real ``python -m crawler.master --local-workers 1`` run with a small
policy (deadline 3 s, 200 kB cap, retries off), so the whole set costs one run; each
case is still judged by its own test, from that run's manifest. Transient failures need
retries on, so they get runs of their own, and so does the address guard. Every test
checks only what a user can see: exit codes, manifest rows, stored files, and what the
server was asked for.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import assert_no_traceback, read_rows, run_cli
from hostile import (
    HostileSite,
    register_deadline_cases,
    register_retry_cases,
    register_web_cases,
)
from imageserver import ImageServer, make_image
from PIL import Image

DEADLINE = 3
READ_TIMEOUT = 2
MAX_BYTES = 200_000
MAX_PIXELS = 4_000_000
MIN_SIDE = 16
MAX_REDIRECTS = 3
RUN_TIMEOUT = 60  # seconds: a run over servers that never stop must still end well inside this
SLACK = 5  # seconds a URL may overrun its deadline (thread scheduling, not a benchmark)
POLICY = (
    "--deadline", str(DEADLINE), "--read-timeout", str(READ_TIMEOUT), "--connect-timeout", "2",
    "--max-bytes", str(MAX_BYTES), "--max-pixels", str(MAX_PIXELS),
    "--min-width", str(MIN_SIDE), "--min-height", str(MIN_SIDE),
)  # fmt: skip
STORED_NAME = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})\.(jpg|png|gif|webp)")
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}


@dataclass(frozen=True)
class Expect:
    """What the manifest row of one hostile case must say."""

    status: str
    error: str | None = None  # a piece of the row's error text (failures only)
    http_status: int | None = None
    format: str | None = None  # ok rows: the format Pillow found in the bytes


HANG_BUG = (
    "BUG: a server that never answers ends as connection_error, not timeout: with "
    "--retries 0 urllib3 wraps the ReadTimeoutError in MaxRetryError, requests turns that "
    "into a ConnectionError, and fetch._convert only looks at exc.args[0] (the "
    "MaxRetryError), not at its .reason"
)
WEB_CASES: dict[str, Expect] = {
    # The head came: the answer's status is kept (a slow body is no silence of the host).
    "trickle": Expect("timeout", f"deadline of {DEADLINE} s exceeded while reading", 200),
    "hang": Expect("timeout", "timed out"),
    "endless": Expect("too_large", f"body exceeds max_bytes {MAX_BYTES}"),
    "short_body": Expect("connection_error", "body shorter than announced"),
    "lying_length": Expect("too_large", f"Content-Length 1000000000 exceeds max_bytes {MAX_BYTES}"),
    "gzip_bomb": Expect("too_large", f"body exceeds max_bytes {MAX_BYTES}"),
    "not_http": Expect("connection_error", "connection aborted: "),
    # The client's limits on a response's headers (http.client): one readable line.
    "header_line": Expect("connection_error", "connection aborted: got more than 65536 bytes"),
    "header_count": Expect("connection_error", "connection aborted: got more than 100 headers"),
    "bomb_huge": Expect("too_many_pixels", "10000000000 pixels", 200),
    "bomb_over": Expect("too_many_pixels", f"3000x2000 exceeds max_pixels {MAX_PIXELS}", 200),
    "svg": Expect("unsupported_format", "SVG", 200),
    "html_as_image": Expect("not_image", "looks like HTML", 200),
    "empty": Expect("not_image", "empty body", 200),
    "tiny": Expect("too_small", f"8x8 is below {MIN_SIDE}x{MIN_SIDE}", 200),
    "png_as_html": Expect("ok", http_status=200, format="PNG"),
    "jpeg_as_png": Expect("ok", http_status=200, format="JPEG"),
    "disposition": Expect("ok", http_status=200, format="GIF"),
    "animated_gif": Expect("ok", http_status=200, format="GIF"),
    "redirect_loop": Expect("redirect_error", "redirect loop"),
    "redirect_too_many": Expect("redirect_error", f"more than {MAX_REDIRECTS} redirects"),
    "redirect_max": Expect("ok", http_status=200, format="PNG"),
    "redirect_file": Expect("redirect_error", "not an http or https URL"),
    "redirect_ftp": Expect("redirect_error", "not an http or https URL"),
    "redirect_credentials": Expect("redirect_error", "URLs with credentials are not fetched"),
    "redirect_no_location": Expect("http_error", "HTTP 302", 302),
    "non_ascii": Expect("ok", http_status=200, format="PNG"),
    "long_url": Expect("ok", http_status=200, format="JPEG"),
    # Field cases 07, 08, 13: HTTP framing read from the transport, as browsers do.
    "utf8_location": Expect("ok", http_status=200, format="JPEG"),
    "utf8_location_encoded": Expect("ok", http_status=200, format="JPEG"),
    "chunked_only": Expect("ok", http_status=200, format="PNG"),
    "chunked_cl_small": Expect("ok", http_status=200, format="PNG"),
    "chunked_cl_huge": Expect("ok", http_status=200, format="PNG"),
    "no_last_chunk": Expect("connection_error", "body shorter than announced"),
    "bad_chunk_size": Expect("connection_error", "malformed chunk size 'zz'"),
    # Location bytes that are not UTF-8, several Location headers, no status line at all.
    "latin1_location": Expect("ok", http_status=200, format="JPEG"),
    "mixed_location": Expect("ok", http_status=200, format="JPEG"),
    "same_two_locations": Expect("ok", http_status=200, format="JPEG"),
    "bad_host_location": Expect("redirect_error", "the host or port is not valid"),
    "two_locations": Expect("redirect_error", "several Location headers"),
    "port0_location": Expect("redirect_error", "port 0"),
    "http09": Expect("connection_error", "answered without a valid HTTP status line"),
}
OK_CASES = [name for name, exp in WEB_CASES.items() if exp.status == "ok"]


@dataclass
class Run:
    """One finished master run over a hostile site."""

    site: HostileSite
    result: subprocess.CompletedProcess[str]
    out: Path
    rows: dict[str, dict[str, Any]]  # case name -> its manifest row
    all_rows: list[dict[str, Any]]

    def row(self, name: str) -> dict[str, Any]:
        """The row of case ``name``, once the run is known to have ended well."""
        assert self.result.returncode == 0, self.result.stderr
        assert name in self.rows, f"no manifest row for {name}: {self.result.stderr}"
        strays = [p for p in stored_files(self.out) if not STORED_NAME.fullmatch(p)]
        assert strays == [], f"files under OUT that are not hashed names: {strays}"
        return self.rows[name]


def stored_files(out: Path) -> list[str]:
    """Every file under ``out`` (walked, hidden ones included), relative to it."""
    return sorted(
        (Path(dirpath) / name).relative_to(out).as_posix()
        for dirpath, _, names in os.walk(out)
        for name in names
    )


def crawl(site: HostileSite, root: Path, *policy: str) -> Run:
    """Crawl every line of ``site`` with one master and one local worker; map rows to cases."""
    names = list(site.lines)
    listing = root / "list.txt"
    listing.write_text("\n".join(site.lines[n] for n in names) + "\n", encoding="utf-8")
    out, manifest = root / "out", root / "manifest.jsonl"  # the manifest lives outside OUT
    result = run_cli(
        "master", str(listing), "--bind", "127.0.0.1", "--port", "0", "--local-workers", "1",
        "--threads", "4", "--output", str(out), "--manifest", str(manifest), "--no-progress",
        # Hostile by design: most URLs fail, which is what is tested, not an alarm (exit 4).
        "--max-failure-rate", "1", *POLICY, *policy, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    rows = read_rows(manifest) if manifest.exists() else []
    by_case = {names[int(row["source"].rpartition(":")[2]) - 1]: row for row in rows}
    return Run(site, result, out, by_case, rows)


@pytest.fixture(scope="module")
def web_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with ImageServer() as server:
        site = register_web_cases(server, max_redirects=MAX_REDIRECTS)
        root = tmp_path_factory.mktemp("web")
        yield crawl(site, root, "--retries", "0", "--max-redirects", str(MAX_REDIRECTS))


def check_stored(run: Run, name: str, row: dict[str, Any]) -> None:
    """An ok row names a file under OUT, named after its URL, holding exactly what was served."""
    body = run.site.bodies[name]
    match = STORED_NAME.fullmatch(row["path"] or "")
    assert match is not None, row
    assert match.group(1) == hashlib.sha256(row["url"].encode("utf-8")).hexdigest()
    assert match.group(2) == EXTENSIONS[row["format"]]
    data = (run.out / row["path"]).read_bytes()
    assert data == body
    assert row["sha256"] == hashlib.sha256(body).hexdigest()
    assert row["bytes"] == len(body)
    with Image.open(run.out / row["path"]) as image:
        assert (image.format, image.size) == (row["format"], (row["width"], row["height"]))


# ---------------------------------------------------------------------- the web run
def test_web_run_completes_with_one_row_per_case(web_run: Run) -> None:
    assert web_run.result.returncode == 0, web_run.result.stderr
    assert_no_traceback(web_run.result.stdout, web_run.result.stderr)
    assert "completed" in web_run.result.stdout
    assert len(web_run.all_rows) == len(web_run.site.lines)
    assert sorted(web_run.rows) == sorted(WEB_CASES)


@pytest.mark.parametrize("name", WEB_CASES)
def test_hostile_case_status(web_run: Run, name: str) -> None:
    exp, row = WEB_CASES[name], web_run.row(name)
    assert row["url"] == web_run.site.urls[name], row
    assert row["status"] == exp.status, row
    assert row["http_status"] == exp.http_status, row
    if exp.status == "ok":
        assert row["error"] is None, row
        assert row["format"] == exp.format, row
        assert row["final_url"] == web_run.site.final[name], row
        check_stored(web_run, name, row)
    else:
        assert exp.error is not None and exp.error in (row["error"] or ""), row
        assert row["path"] is None and row["sha256"] is None, row


@pytest.mark.parametrize("name", ["trickle", "hang", "endless", "short_body", "gzip_bomb"])
def test_endless_servers_cannot_hold_a_thread_past_the_deadline(web_run: Run, name: str) -> None:
    row = web_run.row(name)
    assert row["status"] != "ok", row
    assert 0 <= row["elapsed_s"] < DEADLINE + SLACK, row


def test_hanging_server_ends_within_the_deadline(web_run: Run) -> None:
    """Whatever status it gets (see the xfail above), a silent server costs one read timeout."""
    row = web_run.row("hang")
    assert "timed out" in row["error"], row
    assert READ_TIMEOUT - 0.5 < row["elapsed_s"] < DEADLINE + SLACK, row


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("png_as_html", "text/html"), ("jpeg_as_png", "image/png"), ("svg", "image/svg+xml")],
)
def test_content_type_is_recorded_but_not_believed(
    web_run: Run, name: str, content_type: str
) -> None:
    row = web_run.row(name)
    assert row["content_type"] == content_type, row


def test_jpeg_labelled_png_is_stored_as_jpg(web_run: Run) -> None:
    row = web_run.row("jpeg_as_png")
    assert row["path"].endswith(".jpg"), row


def test_output_holds_only_hashed_names_of_ok_rows(web_run: Run) -> None:
    out = web_run.out
    folders = [
        (Path(dirpath) / name).relative_to(out).as_posix()
        for dirpath, names, _ in os.walk(out)
        for name in names
    ]
    ok_paths = {row["path"] for row in web_run.all_rows if row["status"] == "ok"}
    assert len(ok_paths) == len(OK_CASES)
    assert stored_files(out) == sorted(ok_paths)
    assert all(re.fullmatch(r"[0-9a-f]{2}(/[0-9a-f]{2})?", d) for d in folders), folders


def test_content_disposition_plants_no_file(web_run: Run) -> None:
    assert web_run.row("disposition")["status"] == "ok"
    (evil,) = web_run.site.evil_names
    places = [Path(tempfile.gettempdir()), Path("/tmp"), Path.cwd(), web_run.out.parent]
    for place in places:
        assert not (place / evil).exists(), place
    assert list(web_run.out.parent.rglob(f"*{evil}*")) == []
    assert list(web_run.out.parent.rglob("*.sh")) == []


def test_non_ascii_path_is_sent_percent_encoded(web_run: Run) -> None:
    row = web_run.row("non_ascii")
    wire = "/bilder/stra%C3%9Fe%20%C3%BC.png"
    assert web_run.site.seen["non_ascii"] == [wire]
    assert row["url"] == web_run.site.server.base_url + wire, row
    assert row["status"] == "ok", row


def test_long_url_is_sent_whole(web_run: Run) -> None:
    row = web_run.row("long_url")
    sent = web_run.site.seen["long_url"]
    listed = urlsplit(web_run.site.lines["long_url"])
    assert len(web_run.site.lines["long_url"]) > 4000
    assert sent == [f"{listed.path}?{listed.query}"]
    assert row["url"] == web_run.site.lines["long_url"], row


def test_redirect_loop_is_caught_before_asking_again(web_run: Run) -> None:
    server = web_run.site.server
    assert web_run.row("redirect_loop")["status"] == "redirect_error"
    assert (server.hits("/loop/a.png"), server.hits("/loop/b.png")) == (1, 1)


def test_redirect_chain_stops_at_max_redirects(web_run: Run) -> None:
    server = web_run.site.server
    assert web_run.row("redirect_too_many")["status"] == "redirect_error"
    hops = [server.hits(f"/chain/long/{i}.png") for i in range(MAX_REDIRECTS + 2)]
    assert hops == [1] * (MAX_REDIRECTS + 1) + [0]  # the image at the end is never asked for


def test_redirect_chain_of_exactly_max_redirects_is_followed(web_run: Run) -> None:
    server = web_run.site.server
    row = web_run.row("redirect_max")
    assert row["status"] == "ok", row
    assert [server.hits(f"/chain/fits/{i}.png") for i in range(MAX_REDIRECTS + 1)] == [1] * (
        MAX_REDIRECTS + 1
    )


@pytest.mark.parametrize(
    "name",
    [n for n in WEB_CASES if not n.startswith("redirect_") or n == "redirect_no_location"],
)
def test_each_url_is_asked_for_once_with_retries_off(web_run: Run, name: str) -> None:
    """Once a lease: a URL whose deadline ran out after a tenth of it went to robots.txt
    is leased again, once, by design (``pipeline._name_robots_share``); on a loaded
    machine the origin's robots.txt can take that long (a CI run, 2026-12-03: the
    trickled body, asked twice, with leases 2)."""
    row = web_run.row(name)
    assert row["leases"] in (1, 2), row
    assert web_run.site.server.hits(web_run.site.paths[name]) == row["leases"], row


def test_a_raw_utf8_location_is_followed_percent_encoded(web_run: Run) -> None:
    """Case 07: the server is asked once for the UTF-8 percent-encoded path."""
    row = web_run.row("utf8_location")
    assert row["final_url"].endswith("/%E5%9B%BE%E7%89%87/%D1%84%D0%BE%D1%82%D0%BE%20caf%C3%A9.jpg")
    assert web_run.site.seen["utf8_location"] == [urlsplit(row["final_url"]).path]


@pytest.mark.parametrize(
    ("name", "asked"),
    [
        ("latin1_location", "/img/caf%E9.jpg"),
        ("mixed_location", "/img%C3%A9?x=%FF"),
        ("same_two_locations", "/img/twice.jpg"),
    ],
)
def test_location_bytes_that_are_not_utf8_are_followed_percent_encoded(
    web_run: Run, name: str, asked: str
) -> None:
    """Valid UTF-8 read as UTF-8, any other byte percent-encoded as it is (urls.location_text)."""
    row = web_run.row(name)
    assert row["final_url"] == web_run.site.server.url(asked), row


def test_several_different_locations_are_not_followed(web_run: Run) -> None:
    server = web_run.site.server
    assert web_run.row("two_locations")["status"] == "redirect_error"
    assert (server.hits("/img/first.jpg"), server.hits("/img/elsewhere.jpg")) == (0, 0)


def test_no_row_is_a_worker_error_and_every_error_is_plain_text(web_run: Run) -> None:
    """Whatever the servers sent, a status of its own, and an error text a person can
    read: printable, without urllib3's pool or connection objects, and ASCII here (no
    case sends UTF-8 text an error would quote: other bytes are escaped, ``\xff``)."""
    for name, row in web_run.rows.items():
        error = row["error"] or ""
        assert row["status"] != "worker_error", (name, row)
        assert error.isprintable() and error.isascii(), (name, row)
        assert "ConnectionPool(" not in error and " object at 0x" not in error, (name, row)


@pytest.mark.parametrize("name", WEB_CASES)
def test_attempts_equal_the_requests_the_server_saw(web_run: Run, name: str) -> None:
    """Every hostile case, redirects and broken bodies included: attempts counts requests
    sent, exactly (retries off here; the retried runs below check the same with retries)."""
    row = web_run.row(name)
    assert row["attempts"] == web_run.site.requests(name), row


# -------------------------------------------------------------------- retried runs
@dataclass(frozen=True)
class RetryExpect:
    status: str
    http_status: int
    requests: int  # GETs the server must have seen, and the row's attempts


def retry_expectations(retries: int) -> dict[str, RetryExpect]:
    return {
        "429_once": RetryExpect("ok", 200, 2),
        "503_twice": RetryExpect("ok", 200, 3)
        if retries >= 2
        else RetryExpect("http_error", 503, 2),
        "503_forever": RetryExpect("http_error", 503, retries + 1),
        "503_endless": RetryExpect("http_error", 503, retries + 1),
        # Retry-After: 3600 is longer than the worker may wait: no pause, no retry.
        "retry_after_hour": RetryExpect("http_error", 503, 1),
        "404": RetryExpect("http_error", 404, 1),
        "dropped": RetryExpect("connection_error", 0, retries + 1),  # closed without a word
    }


@pytest.fixture(scope="module", params=[1, 2], ids=["retries1", "retries2"])
def retry_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, Run]]:
    retries: int = request.param
    with ImageServer() as server:
        site = register_retry_cases(server)
        root = tmp_path_factory.mktemp(f"retries{retries}")
        yield retries, crawl(site, root, "--retries", str(retries))


@pytest.mark.parametrize("name", list(retry_expectations(0)))
def test_transient_failures_are_retried(retry_run: tuple[int, Run], name: str) -> None:
    retries, run = retry_run
    exp, row = retry_expectations(retries)[name], run.row(name)
    assert_no_traceback(run.result.stdout, run.result.stderr)
    assert (row["status"], row["http_status"] or 0) == (exp.status, exp.http_status), row
    assert run.site.server.hits(run.site.paths[name]) == exp.requests
    assert row["attempts"] == exp.requests, row
    if exp.status == "ok":
        check_stored(run, name, row)
    elif exp.status == "http_error":
        reason = {503: "Service Unavailable", 404: "Not Found"}[exp.http_status]
        assert row["error"] == f"HTTP {exp.http_status} {reason}", row
    else:
        assert "Remote end closed connection without response" in row["error"], row


def test_retry_after_is_honoured(retry_run: tuple[int, Run]) -> None:
    """The 429's Retry-After: 1 holds the second request: the master leases the URL
    again once the host's hold is over (until 2026-12-02 the worker's thread waited)."""
    _, run = retry_run
    row = run.row("429_once")
    assert (row["status"], row["leases"], row["attempts"]) == ("ok", 2, 2), row
    first, second = run.site.times["429_once"]
    assert second - first >= 0.95


def test_retry_after_longer_than_the_deadline_is_not_waited_for(
    retry_run: tuple[int, Run],
) -> None:
    _, run = retry_run
    row = run.row("retry_after_hour")
    assert row["elapsed_s"] < DEADLINE, row  # answered at once, not at the deadline


def test_a_retried_answer_with_an_endless_body_ends_within_the_deadline(
    retry_run: tuple[int, Run],
) -> None:
    """urllib3 reads a retried answer's body to its end before the next try: an endless
    503 held the thread for ever (now: read off within a bound, then closed)."""
    _, run = retry_run
    row = run.row("503_endless")
    assert row["elapsed_s"] < DEADLINE, row


# ------------------------------------------------- retries against the deadline
RETRY_READ_TIMEOUT = 2.9  # just under the deadline: a second full read would overrun it
DEADLINE_BUG = (
    "BUG: the deadline does not cover urllib3's own retries: DeadlineAdapter.send clamps "
    "the timeouts once per hop, but urllib3 retries a read timeout inside urlopen with "
    "the same Timeout, so a silent server costs (1 + retries) read timeouts, capped only "
    "when DeadlineRetry.increment next runs (here 2 x 2.9 s for a 3 s deadline)"
)
ATTEMPTS_BUG = (
    "BUG: fetch._tries_in_error counts policy.retries + 1 requests for any MaxRetryError, "
    "but DeadlineRetry.increment raises MaxRetryError early when the deadline runs out, "
    "so attempts claims 4 requests where the server saw 2"
)


@pytest.fixture(scope="module")
def deadline_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with ImageServer() as server:
        site = register_deadline_cases(server)
        root = tmp_path_factory.mktemp("deadline")
        yield crawl(site, root, "--retries", "3", "--read-timeout", str(RETRY_READ_TIMEOUT))


def test_retried_silent_server_ends_as_timeout(deadline_run: Run) -> None:
    row = deadline_run.row("hang")
    assert_no_traceback(deadline_run.result.stdout, deadline_run.result.stderr)
    assert (row["status"], row["http_status"]) == ("timeout", None), row
    assert row["error"] == f"deadline of {DEADLINE} s exceeded", row
    assert 2 <= deadline_run.site.server.hits("/slow/hang.jpg") <= 4


def test_deadline_covers_urllib3_retries(deadline_run: Run) -> None:
    row = deadline_run.row("hang")
    assert row["elapsed_s"] < DEADLINE + 2, row  # the bug costs 2 x 2.9 s = 5.8 s, always


def test_attempts_of_a_deadline_cut_retry_match_the_requests(deadline_run: Run) -> None:
    row = deadline_run.row("hang")
    assert row["attempts"] == deadline_run.site.server.hits("/slow/hang.jpg"), row


# ------------------------------------------------------------------- address guard
def guard_site(server: ImageServer) -> dict[str, str]:
    png = make_image("PNG", 40, 30, seed=31)
    image = server.add("/guard/image.png", png, content_type="image/png")
    return {
        "direct": image,
        "redirect": server.add("/guard/redirect.png", b"", status=302, headers={"Location": image}),
        "localhost": image.replace("127.0.0.1", "localhost").replace("image.png", "named.png"),
    }


def guard_run(tmp_path: Path, urls: dict[str, str], *flags: str) -> dict[str, dict[str, Any]]:
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(urls.values()) + "\n", encoding="utf-8")
    manifest = tmp_path / "manifest.jsonl"
    result = run_cli(
        "master", str(listing), "--bind", "127.0.0.1", "--port", "0", "--local-workers", "1",
        "--threads", "2", "--output", str(tmp_path / "out"), "--manifest", str(manifest),
        "--no-progress", "--max-failure-rate", "1", *POLICY, *flags, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    names = list(urls)
    return {names[int(r["source"].rpartition(":")[2]) - 1]: r for r in read_rows(manifest)}


def test_block_private_refuses_loopback_at_the_first_hop(
    tmp_path: Path, image_server: ImageServer
) -> None:
    urls = guard_site(image_server)
    image_server.add("/guard/named.png", b"", status=500)  # must never be asked for either
    rows = guard_run(tmp_path, urls, "--block-private")
    for name, row in rows.items():
        assert row["status"] == "private_address", (name, row)
        assert row["attempts"] == 0, row  # refused before anything was sent
        assert "not a public address" in row["error"], row
        assert row["http_status"] is None and row["path"] is None, row
    assert "127.0.0.1" in rows["direct"]["error"]
    assert image_server.total_hits() == 0  # refused before connecting: not even the redirect
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []


def test_no_block_private_fetches_a_loopback_redirect(
    tmp_path: Path, image_server: ImageServer
) -> None:
    urls = guard_site(image_server)
    del urls["localhost"]
    rows = guard_run(tmp_path, urls, "--no-block-private")
    assert {name: row["status"] for name, row in rows.items()} == {
        "direct": "ok",
        "redirect": "ok",
    }
    assert rows["redirect"]["final_url"] == urls["direct"]
    assert rows["redirect"]["sha256"] == rows["direct"]["sha256"]
    assert image_server.hits("/guard/redirect.png") == 1
    assert image_server.hits("/guard/image.png") == 2
