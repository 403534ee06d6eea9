"""Politeness scheduled by the master, measured on the server side.

Two host names (``127.0.0.1`` and ``localhost``) reach one loopback server; the server
records, per ``Host`` header, how many requests it is serving at once and when each
started. ``--per-host`` must hold across two workers; ``--host-delay`` must space the
requests of a host; a host that answers 429 must be backed off.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from conftest import assert_no_traceback, read_rows, run_cli
from imageserver import ImageServer, make_image

ONE_WORKER_OF_8 = ("--local-workers", "1", "--threads", "8")


class HostMeter:
    """Per-Host concurrency and request start times, recorded by the handlers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.starts: defaultdict[str, list[float]] = defaultdict(list)

    def handler(self, body: bytes, delay: float, status: int = 200) -> Callable:
        def serve(request: BaseHTTPRequestHandler) -> None:
            host = (request.headers.get("Host") or "").rsplit(":", 1)[0]
            with self.lock:
                self.in_flight[host] += 1
                self.peak[host] = max(self.peak[host], self.in_flight[host])
                self.starts[host].append(time.monotonic())
            try:
                time.sleep(delay)
                request.send_response(status)
                request.send_header("Content-Type", "image/png")
                request.send_header("Content-Length", str(len(body)))
                request.end_headers()
                if request.command != "HEAD":
                    request.wfile.write(body)
            finally:
                with self.lock:
                    self.in_flight[host] -= 1

        return serve


def two_host_list(
    tmp_path: Path, server: ImageServer, meter: HostMeter, per_host: int, delay: float
) -> Path:
    body = make_image("PNG", 32, 24, seed=5)
    lines = []
    for i in range(per_host):
        path = f"/p/{i}.png"
        server.add_handler(path, meter.handler(body, delay))
        for name in ("127.0.0.1", "localhost"):
            # the same path under two host names: two hosts for the crawler
            lines.append(server.url(path).replace("127.0.0.1", name, 1))
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(lines) + "\n")
    return listing


def crawl(tmp_path: Path, listing: Path, *flags: str) -> list[dict]:
    out = tmp_path / "out"
    result = run_cli(
        "master", str(listing), "--bind", "127.0.0.1", "--port", "0",
        "--local-workers", "2", "--threads", "4", "--output", str(out),
        "--no-progress", "--retries", "0", *flags,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    return read_rows(out / "manifest.jsonl")


def test_per_host_cap_holds_across_two_workers(tmp_path: Path, image_server: ImageServer) -> None:
    meter = HostMeter()
    listing = two_host_list(tmp_path, image_server, meter, per_host=8, delay=0.3)
    rows = crawl(tmp_path, listing, "--per-host", "1")
    assert len(rows) == 16 and {r["status"] for r in rows} == {"ok"}
    assert set(meter.peak) == {"127.0.0.1", "localhost"}
    assert max(meter.peak.values()) == 1, meter.peak
    assert len({r["worker"] for r in rows}) >= 1


def test_without_a_cap_the_same_run_is_concurrent(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """The control for the test above: the meter does see concurrency when allowed."""
    meter = HostMeter()
    listing = two_host_list(tmp_path, image_server, meter, per_host=8, delay=0.3)
    rows = crawl(tmp_path, listing)
    assert {r["status"] for r in rows} == {"ok"}
    assert max(meter.peak.values()) > 1, meter.peak


def test_per_host_cap_of_two(tmp_path: Path, image_server: ImageServer) -> None:
    meter = HostMeter()
    listing = two_host_list(tmp_path, image_server, meter, per_host=8, delay=0.3)
    rows = crawl(tmp_path, listing, "--per-host", "2")
    assert {r["status"] for r in rows} == {"ok"}
    assert max(meter.peak.values()) == 2, meter.peak


def test_host_delay_spaces_requests_to_a_host(tmp_path: Path, image_server: ImageServer) -> None:
    meter = HostMeter()
    listing = two_host_list(tmp_path, image_server, meter, per_host=4, delay=0.0)
    rows = crawl(tmp_path, listing, "--host-delay", "0.5")
    assert {r["status"] for r in rows} == {"ok"}
    for host, starts in meter.starts.items():
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert len(starts) == 4 and min(gaps) >= 0.4, (host, gaps)


@pytest.mark.parametrize(
    ("robots", "robots_wait", "flags"),
    [("Crawl-delay: 0.5\n", 0.0, ()), ("", 0.7, ("--host-delay", "0.5"))],
    ids=["crawl-delay", "host-delay-slow-robots"],
)
def test_the_probe_and_the_next_url_are_spaced_too(
    tmp_path: Path, image_server: ImageServer, robots: str, robots_wait: float, flags: tuple
) -> None:
    """The probe asks for its image once its robots.txt is in: the host's next lease is
    spaced from then. Before, the next lease went out when the verdict came (Crawl-delay
    was unknown when the probe was leased; a slow robots.txt outlasted --host-delay),
    and the first two images reached the host milliseconds apart."""

    def robots_txt(request: BaseHTTPRequestHandler) -> None:
        time.sleep(robots_wait)
        body = f"User-agent: *\n{robots}Allow: /\n".encode()
        request.send_response(200)
        request.send_header("Content-Type", "text/plain")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    image_server.add_handler("/robots.txt", robots_txt)
    meter = HostMeter()
    listing = two_host_list(tmp_path, image_server, meter, per_host=3, delay=0.0)
    rows = crawl(tmp_path, listing, *flags)
    assert {r["status"] for r in rows} == {"ok"}
    for host, starts in meter.starts.items():
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert len(starts) == 3 and min(gaps) >= 0.4, (host, gaps)


def test_host_delay_spaces_requests_not_only_leases(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """Slow answers from one host keep a worker's threads busy: a lease of the other host
    waited in the worker's queue, then started together with the next one (leased 0.5 s
    later to an idle thread), 10 ms apart at the server. A spaced host's tasks now go
    only to a thread that starts them at once (``worker.lane``)."""
    meter, body, lines = HostMeter(), make_image("PNG", 32, 24, seed=6), []
    for i in range(8):
        slow, fast = f"/slow/{i}.png", f"/fast/{i}.png"
        image_server.add_handler(slow, meter.handler(body, 1.2))
        image_server.add_handler(fast, meter.handler(body, 0.0))
        lines += [image_server.url(slow), image_server.url(fast).replace("127.0.0.1", "localhost")]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(lines) + "\n")
    rows = crawl(tmp_path, listing, "--host-delay", "0.5", "--threads", "2")
    assert {r["status"] for r in rows} == {"ok"}
    for host, starts in meter.starts.items():
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert len(starts) == 8 and min(gaps) >= 0.4, (host, gaps)


def test_a_host_answering_429_is_backed_off(tmp_path: Path, image_server: ImageServer) -> None:
    meter = HostMeter()
    body = b"slow down"
    lines = []
    for i in range(3):
        path = f"/busy/{i}.png"
        image_server.add_handler(path, meter.handler(body, 0.0, status=429))
        lines.append(image_server.url(path))
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(lines) + "\n")
    rows = crawl(tmp_path, listing, "--per-host", "1", "--max-failure-rate", "1")  # all 429
    assert [r["status"] for r in rows] == ["http_error"] * 3
    assert {r["http_status"] for r in rows} == {429}
    starts = meter.starts["127.0.0.1"]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # 1 s after the first 429, then 2 s: the penalty doubles while the host stays busy.
    assert len(starts) == 3 and gaps[0] >= 0.9 and gaps[1] >= 1.8, gaps


class AskingServer:
    """A host whose first ``refusals`` answers are ``status`` with ``Retry-After: ask``."""

    def __init__(self, meter: HostMeter, status: int, ask: str, refusals: int) -> None:
        self.ok = meter.handler(make_image("PNG", 32, 24, seed=5), 0.0)
        self.meter, self.status, self.ask, self.left = meter, status, ask, refusals

    def __call__(self, request: BaseHTTPRequestHandler) -> None:
        if self.left <= 0:
            return self.ok(request)
        self.left -= 1
        with self.meter.lock:
            self.meter.starts["127.0.0.1"].append(time.monotonic())
        request.send_response(self.status)
        for name, value in (("Retry-After", self.ask), ("Content-Length", "0")):
            request.send_header(name, value)
        request.end_headers()
        return None


@pytest.mark.parametrize("status", [429, 503])
def test_a_hosts_retry_after_holds_its_next_request(
    status: int, tmp_path: Path, image_server: ImageServer
) -> None:
    """Retry-After: 3 on the first answer (not retried by the worker: --retries 0): the
    host's next request comes 3 s later, not after the 1-s backoff (until 2026-12-01)."""
    meter, lines = HostMeter(), []
    asking = AskingServer(meter, status, "3", refusals=1)
    for i in range(3):
        image_server.add_handler(f"/ask/{i}.png", asking)
        lines.append(image_server.url(f"/ask/{i}.png"))
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(lines) + "\n")
    rows = crawl(tmp_path, listing, "--per-host", "1", "--max-failure-rate", "1")
    assert sorted(r["status"] for r in rows) == ["http_error", "ok", "ok"]
    starts = meter.starts["127.0.0.1"]
    assert len(starts) == 3 and starts[1] - starts[0] >= 2.9, starts


@pytest.mark.parametrize(
    ("asked", "said"),
    [
        ("86400", "asked to wait 86400 s (Retry-After)"),
        ("Fri, 01 Dec 2100 00:00:00 GMT", "asked to wait 1000000 s or more (Retry-After)"),
    ],
)
def test_a_host_asking_for_a_day_is_given_up_for_the_run(
    tmp_path: Path, image_server: ImageServer, asked: str, said: str
) -> None:
    """Retry-After of a day (more than the 5-minute backoff cap): one request, and the
    host's other URLs end at once, unfetched, saying why (until 2026-12-01: 8 requests in
    two minutes, each answered "come back in an hour"; and then, until a fresh user's
    report, any wait over 6 hours was said to be 21600 s, urllib3's cap)."""
    meter, lines = HostMeter(), []
    asking = AskingServer(meter, 503, asked, refusals=100)
    for i in range(4):
        image_server.add_handler(f"/hour/{i}.png", asking)
        lines.append(image_server.url(f"/hour/{i}.png"))
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(lines) + "\n")
    rows = crawl(tmp_path, listing, "--per-host", "1", "--max-failure-rate", "1")
    assert len(meter.starts["127.0.0.1"]) == 1
    assert {(r["status"], r["http_status"]) for r in rows} == {("http_error", 503)}
    unfetched = [r for r in rows if r["attempts"] == 0]
    assert len(unfetched) == 3 and said in unfetched[0]["error"], unfetched[0]["error"]


def test_a_retried_request_spaces_the_hosts_next_url_from_the_retry(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """--host-delay 1, one URL at a time: the first URL's answer is a 500, and the worker
    retries it after its backoff (0.5-1 s), well after the lease. The next URL waits 1 s
    from that retry, not from the lease (the worker says how long ago its latest request
    went out). Before, it could follow the retry within milliseconds: the master spaced
    leases only, so a request that went out late (a retry, or a busy machine) came close
    to the next (a fresh user's: 57 ms under --host-delay 0.5, 2026-12-01)."""
    meter, body = HostMeter(), make_image("PNG", 32, 24, seed=5)
    busy = AskingServer(meter, 500, "0", refusals=1)  # Retry-After 0: the backoff alone
    image_server.add_handler("/retry/0.png", busy)
    image_server.add_handler("/retry/1.png", meter.handler(body, 0.0))
    listing = tmp_path / "list.txt"
    listing.write_text("".join(image_server.url(f"/retry/{i}.png") + "\n" for i in range(2)))
    out = tmp_path / "out"
    result = run_cli(
        "master", str(listing), "--bind", "127.0.0.1", "--local-workers", "1", "--threads",
        "2", "--output", str(out), "--no-progress", "--retries", "1", "--host-delay", "1",
        "--per-host", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {r["url"].rsplit("/", 1)[1]: r for r in read_rows(out / "manifest.jsonl")}
    assert rows["0.png"]["attempts"] == 2 and rows["1.png"]["status"] == "ok", rows
    starts = sorted(meter.starts["127.0.0.1"])  # the 500, its retry, the next URL
    assert len(starts) == 3 and starts[2] - starts[1] >= 0.95, starts


def test_a_429_holds_its_host_for_every_thread_and_its_url_is_leased_again(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """One worker of 4 threads; the host's first URL answers 429 with Retry-After: 3 every
    time, each of its 12 others takes 1 s. Once the threads busy at a 429 are free, no
    request of the host starts before its Retry-After is over: the answer goes to the
    master at once, which holds the host for every thread and worker, and leases the
    refused URL again after each hold (--retries 2: three requests, its row counts them).
    Until 2026-12-02 the thread slept the Retry-After out inside urllib3, and the master
    learnt of the 429 only after it: the other threads asked for the 12 within 3 s of it
    (a fresh user's)."""
    meter, refusals, png = HostMeter(), HostMeter(), make_image("PNG", 32, 24, seed=5)
    image_server.add_handler("/r429/0.png", AskingServer(refusals, 429, "3", refusals=100))
    lines = [image_server.url("/r429/0.png")]
    for i in range(12):
        image_server.add_handler(f"/slow/{i}.png", meter.handler(png, 1.0))
        lines.append(image_server.url(f"/slow/{i}.png"))
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(lines) + "\n")
    flags = ("--retries", "2", "--local-workers", "1", "--threads", "4")
    rows = {r["url"]: r for r in crawl(tmp_path, listing, "--max-failure-rate", "1", *flags)}
    refused = rows.pop(lines[0])
    assert (refused["status"], refused["http_status"]) == ("http_error", 429), refused
    assert (refused["attempts"], refused["leases"]) == (3, 3), refused
    assert {r["status"] for r in rows.values()} == {"ok"} and len(rows) == 12
    asked, starts = refusals.starts["127.0.0.1"], meter.starts["127.0.0.1"]
    assert len(asked) == 3 and all(b - a >= 2.9 for a, b in itertools.pairwise(asked)), asked
    for refusal in asked:  # 0.5 s: requests already leased when the 429 came, crossing it
        early = [round(t - refusal, 2) for t in starts if refusal + 0.5 < t < refusal + 2.9]
        assert not early, (early, [round(t - asked[0], 2) for t in sorted(starts)])


class CDNSite:
    """127.0.0.1's /a/bad.png redirects to a CDN (127.0.0.2) whose /cdn/bad.png answers
    503 asking for 3 s; the CDN's own listed URLs take ``delay`` s each. ``refusals``
    records the 503s, ``meter`` the CDN's own requests (by Host)."""

    def __init__(self, server: ImageServer, own: int, delay: float) -> None:
        self.meter, self.refusals, png = HostMeter(), HostMeter(), make_image("PNG", 32, 24)
        self.cdn = cdn = server.alias("127.0.0.2")

        def moved(request: BaseHTTPRequestHandler) -> None:
            request.send_response(302)
            for name, value in (("Location", cdn + "/cdn/bad.png"), ("Content-Length", "0")):
                request.send_header(name, value)
            request.end_headers()

        server.add_handler("/a/bad.png", moved)
        server.add_handler("/cdn/bad.png", AskingServer(self.refusals, 503, "3", refusals=100))
        self.lines = [server.url("/a/bad.png")]
        for i in range(own):
            server.add_handler(f"/cdn/own/{i}.png", self.meter.handler(png, delay))
            self.lines.append(f"{cdn}/cdn/own/{i}.png")

    def crawl(self, tmp_path: Path, *flags: str) -> list[dict]:
        listing = tmp_path / "list.txt"
        listing.write_text("\n".join(self.lines) + "\n")
        return crawl(tmp_path, listing, "--max-failure-rate", "1", "--local-workers", "1", *flags)

    def after_the_503(self) -> list[float]:
        """When the CDN's own requests started, in s after its one 503."""
        [refusal] = self.refusals.starts["127.0.0.1"]
        return sorted(round(t - refusal, 2) for t in self.meter.starts["127.0.0.2"])


def test_a_redirect_targets_503_holds_the_target_for_its_own_urls_too(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """127.0.0.1 redirects an image to a CDN (127.0.0.2), which answers 503 asking for
    3 s; the CDN's own listed URLs (1 s each, --per-host 1) wait those 3 s: the answer is
    the CDN's. The row names where the 503 came from (``final_url``). Until 2026-12-02
    the listed host took it: the CDN was asked again a second later, and a long
    Retry-After gave up the host that redirected (a fresh user's)."""
    site = CDNSite(image_server, own=3, delay=1.0)
    rows = {r["url"]: r for r in site.crawl(tmp_path, "--per-host", "1", "--threads", "4")}
    bad = rows.pop(site.lines[0])
    assert (bad["status"], bad["http_status"]) == ("http_error", 503), bad
    assert bad["final_url"] == site.cdn + "/cdn/bad.png", bad
    assert {r["status"] for r in rows.values()} == {"ok"} and len(rows) == 3
    starts = site.after_the_503()
    assert not [t for t in starts if 0.5 < t < 2.9], starts


def test_a_workers_queued_urls_of_a_redirect_target_that_answered_503_go_back(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """One worker of one thread holds three URLs: 127.0.0.1's, which redirects to a CDN
    (127.0.0.2) answering 503 with Retry-After: 3, and two of the CDN's own, queued. They
    go back to the master, which holds them 3 s: until 2026-12-02 the worker handed back
    the listed host's queued URLs only, and asked the CDN again at once."""
    site = CDNSite(image_server, own=2, delay=0.0)
    rows = site.crawl(tmp_path, "--threads", "1", "--ignore-robots")
    assert sorted(r["status"] for r in rows) == ["http_error", "ok", "ok"], rows
    starts = site.after_the_503()
    assert all(t >= 2.9 for t in starts), starts


class RateLimiter:
    """A host that answers 429 to every request that starts within ``window`` seconds of
    its first, and the image after: a rate limiter refusing one burst."""

    def __init__(self, meter: HostMeter, body: bytes, window: float) -> None:
        self.first: float | None = None
        self.refused = 0
        self.ok = meter.handler(body, 0.2)
        self.busy = meter.handler(b"slow down", 0.2, status=429)
        self.window = window

    def __call__(self, request: BaseHTTPRequestHandler) -> None:
        now = time.monotonic()
        self.first = self.first or now
        refuse = now - self.first < self.window
        self.refused += refuse
        (self.busy if refuse else self.ok)(request)


def test_a_burst_of_429_backs_a_host_off_once_and_its_urls_are_fetched(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """A worker of 8 threads leases 16 URLs of one host at once; the host refuses the
    burst with 429. The worker does not ask for those queued behind the refused ones (they
    go back to the master: all 16 were asked for once), and the master backs the host off
    once, 1 s: the answers to requests already out are one burst, not 8 in a row, which
    gave the host up for the run (its other 16 URLs ended unfetched)."""
    meter, lines = HostMeter(), []
    limiter = RateLimiter(meter, make_image("PNG", 32, 24, seed=5), window=0.8)
    for i in range(24):
        image_server.add_handler(f"/busy/{i}.png", limiter)
        lines.append(image_server.url(f"/busy/{i}.png"))
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(lines) + "\n")
    rows = crawl(tmp_path, listing, "--max-failure-rate", "1", *ONE_WORKER_OF_8)
    refused = [r for r in rows if r["status"] != "ok"]
    assert len(rows) == 24 and {(r["status"], r["http_status"]) for r in refused} == {
        ("http_error", 429)
    }, {(r["status"], r["http_status"], r["error"]) for r in rows}
    assert len(refused) == limiter.refused <= 10  # the 8 in flight, and a margin
    assert len(meter.starts["127.0.0.1"]) == 24  # each URL asked once: none queued was
    starts = sorted(meter.starts["127.0.0.1"])
    assert starts[len(refused)] - starts[0] >= 1.0  # backed off (1 s from the first 429)


@pytest.mark.parametrize("flag", ["--per-host", "--host-delay"])
def test_politeness_flags_reject_negative_values(flag: str, tmp_path: Path) -> None:
    listing = tmp_path / "l.txt"
    listing.write_text("http://127.0.0.1/x.png\n")
    result = run_cli("master", str(listing), flag, "-1")
    assert result.returncode == 2 and "must be 0 or more" in result.stderr


def test_urls_robots_txt_disallows_do_not_wait_for_the_crawl_delay(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """A host's robots.txt sets a Crawl-delay and disallows some of its URLs. Those make no
    request (their worker ends them blocked), so they are not spaced: they end as soon as
    the verdict is known, before the host's second image, which waits the Crawl-delay.
    Before, each waited its turn (a minute apiece under the 60 s cap, for nothing)."""
    meter, png = HostMeter(), make_image("PNG", 32, 24, seed=9)
    robots = b"User-agent: *\nCrawl-delay: 1.5\nDisallow: /no/\n"
    image_server.add("/robots.txt", robots, content_type="text/plain")
    lines = []
    for path in ("/ok/1.png", "/ok/2.png", *(f"/no/{i}.png" for i in range(5))):
        image_server.add_handler(path, meter.handler(png, 0.0))
        lines.append(image_server.url(path))
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = run_cli(
        "master", str(listing), "--bind", "127.0.0.1", "--port", "0", "--local-workers", "1",
        "--threads", "4", "--output", str(out), "--no-progress", "--max-failure-rate", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = read_rows(out / "manifest.jsonl")
    order = [row["url"].rsplit("/", 2)[1] + "/" + row["status"] for row in rows]
    assert sorted(order) == ["no/blocked"] * 5 + ["ok/ok"] * 2, order
    assert order[-1] == "ok/ok", order  # the second image, after its Crawl-delay, comes last
    starts = meter.starts["127.0.0.1"]
    assert len(starts) == 2 and starts[1] - starts[0] >= 1.4, starts  # still spaced
