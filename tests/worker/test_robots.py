"""Opt-out signals against the real crawler: robots.txt and X-Robots-Tag end as ``blocked``.

Every robots.txt case is a site of its own (one ImageServer, so one origin each), and
every case is one line of a single list crawled by one real ``python -m crawler.master
--local-workers 1`` run; each case is judged by its own test from that run's manifest,
what the servers were asked for, and what was stored. ``--ignore-robots`` gets a run of
its own, and a rerun with ``--retry-failed`` shows that robots.txt is fetched anew per run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_no_traceback, free_port, read_rows, run_cli
from hostile import hang, redirect
from imageserver import ImageServer, make_image

from crawler.urls import origin_of, robots_url
from crawler.worker.robots import product_token
from crawler.worker.xrobots import x_robots_opt_out

UA = "crawler/9.9 (test)"  # product token "crawler", as in the default user agent
DEADLINE = 6  # seconds: room for the 600 KiB robots.txt on a loaded machine
POLICY = (
    "--retries", "0", "--read-timeout", "3", "--deadline", str(DEADLINE),
    "--connect-timeout", "2",
)  # fmt: skip
RUN_TIMEOUT = 60


@dataclass(frozen=True)
class Case:
    """One list line and what its manifest row must say."""

    site: str  # which server (origin) it lives on
    path: str
    status: str  # "ok" or "blocked"
    error: str | None = None  # a piece of the blocked row's error text
    requested: bool = True  # whether the image itself may be asked for


ROBOTS_UA = "User-agent: crawler\nDisallow: /private/\n\nUser-agent: *\nDisallow:\n"
# 600 KiB: a rule before the 512 KiB the crawler reads, and one after it.
ROBOTS_HUGE = (
    "User-agent: *\nDisallow: /early/\n"
    + "# padding padding padding\n" * 24_000
    + "Disallow: /late/\n"
)
# RFC 9309: a group for another product whose name starts with ours, wildcards, "$", and
# an Allow longer than the Disallow it overrides.
ROBOTS_RFC = (
    "User-agent: crawlerbot\nDisallow: /\n\n"
    "User-agent: *\nDisallow: /*.jpg$\nDisallow: /img/\nAllow: /img/public/\n"
)
ROBOTS_FILES: dict[str, str | None] = {  # site -> robots.txt body (None: served otherwise)
    "ua": ROBOTS_UA,
    "star": "# everyone out\nUser-agent: *\nDisallow: /\n",
    "other": "User-agent: otherbot\nDisallow: /\n",
    "missing": None,  # 404: the tag cases live here too
    "error500": None,
    "busy429": None,
    "forbidden403": None,
    "hangs": None,
    "moved": None,  # 301 to the "target" site's file, which disallows us
    "target": "User-agent: Crawler\nDisallow: /\n",
    "loop": None,  # robots.txt redirects to a file that redirects back
    "huge": ROBOTS_HUGE,
    "rfc": ROBOTS_RFC,
}
SITES = list(ROBOTS_FILES)
DISALLOWS = "robots.txt disallows this URL for crawler"
CASES: dict[str, Case] = {
    "ua_private": Case("ua", "/private/x.png", "blocked", DISALLOWS, requested=False),
    "ua_public": Case("ua", "/public/y.png", "ok"),
    **{f"ua_more_{i}": Case("ua", f"/public/more-{i}.png", "ok") for i in range(6)},
    "star_all": Case("star", "/any/z.png", "blocked", DISALLOWS, requested=False),
    "other_bot_only": Case("other", "/img/a.png", "ok"),
    "robots_404": Case("missing", "/img/plain.png", "ok"),
    "robots_500": Case(
        "error500", "/img/a.png", "blocked", "robots.txt unavailable: HTTP 500", False
    ),
    "robots_429": Case(
        "busy429", "/img/a.png", "blocked", "robots.txt unavailable: HTTP 429", False
    ),
    "robots_403": Case("forbidden403", "/img/a.png", "ok"),
    # Transient failures all: retried with backoff until the URL's leases are spent.
    "robots_hangs": Case("hangs", "/img/a.png", "blocked", "robots.txt unavailable: ", False),
    "robots_refused": Case(
        "refused", "/img/a.png", "blocked", "robots.txt unavailable: connection refused", False
    ),
    "robots_moved": Case("moved", "/img/a.png", "blocked", DISALLOWS, requested=False),
    "robots_loop": Case("loop", "/img/a.png", "ok"),
    "huge_early": Case("huge", "/early/a.png", "blocked", DISALLOWS, requested=False),
    "huge_late": Case("huge", "/late/a.png", "ok"),  # its rule lies past 512 KiB
    "rfc_wildcard_end": Case("rfc", "/a/b.jpg", "blocked", DISALLOWS, requested=False),
    "rfc_wildcard_not_end": Case("rfc", "/a/b.jpg.png", "ok"),
    "rfc_disallowed_dir": Case("rfc", "/img/a.png", "blocked", DISALLOWS, requested=False),
    "rfc_longest_allow": Case("rfc", "/img/public/a.png", "ok"),
    "rfc_longest_beats_wildcard": Case("rfc", "/img/public/b.jpg", "ok"),
}
TRANSIENT_SITES = ("error500", "busy429", "hangs")  # robots.txt unavailable: retried
MAX_ATTEMPTS = 3  # the master's default: leases per URL, so robots.txt requests per origin
# X-Robots-Tag values (each tuple item is one header line), all on the "missing" site.
TAGS: dict[str, tuple[tuple[str, ...], str | None]] = {  # name -> (headers, blocking directive)
    "noai": (("noai",), "noai"),
    "noimageai": (("noimageai",), "noimageai"),
    "noindex": (("noindex",), "noindex"),
    "none": (("none",), "none"),
    "noimageindex": (("noimageindex",), "noimageindex"),  # img2dataset's default set has it
    "upper_case": (("NoImageAI",), "noimageai"),
    "in_a_list": (("noarchive, nosnippet, noai",), "noai"),
    "for_us": (("crawler: noai",), "crawler: noai"),
    "for_us_upper": (("Crawler: NONE",), "crawler: none"),
    "for_other_bot": (("otherbot: noai",), None),
    "for_other_bot_then_all": (("otherbot: noindex", "noai"), "noai"),
    "for_other_then_us": (("otherbot: noai, crawler: noindex",), "crawler: noindex"),
    "noarchive": (("noarchive",), None),
    "two_harmless": (("noarchive", "nosnippet"), None),
    "two_one_blocks": (("noarchive", "noimageai"), "noimageai"),
    "valued": (("max-image-preview: large, unavailable_after: 25 Jun 2010 15:00:00 PST",), None),
    "similar_word": (("noairport, indexnone",), None),
}
for _name, (_headers, _directive) in TAGS.items():
    CASES[f"tag_{_name}"] = (
        Case("missing", f"/tag/{_name}.png", "ok")
        if _directive is None
        else Case("missing", f"/tag/{_name}.png", "blocked", f"X-Robots-Tag opts out: {_directive}")
    )


def tagged(body: bytes, headers: tuple[str, ...]) -> Callable[[BaseHTTPRequestHandler], None]:
    """A PNG answered with every one of ``headers`` as its own X-Robots-Tag line."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "image/png")
        request.send_header("Content-Length", str(len(body)))
        for value in headers:
            request.send_header("X-Robots-Tag", value)
        request.end_headers()
        request.wfile.write(body)

    return handle


@dataclass
class Sites:
    """The servers of one test module, one per origin, and the URL of every case."""

    servers: dict[str, ImageServer] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    bodies: dict[str, bytes] = field(default_factory=dict)
    refused_port: int = 0

    def robots_hits(self, site: str) -> int:
        return self.servers[site].hits("/robots.txt")


def build_sites() -> Sites:
    sites = Sites(refused_port=free_port())  # nothing listens there
    for name in SITES:
        sites.servers[name] = ImageServer().start()
    s = sites.servers
    for name, text in ROBOTS_FILES.items():
        if text is not None:
            # Slow enough that the worker's four threads all ask while it is on its way.
            s[name].add("/robots.txt", text.encode(), content_type="text/plain", delay=0.5)
    s["error500"].add("/robots.txt", b"oops\n", status=500, content_type="text/plain")
    s["busy429"].add("/robots.txt", b"slow down\n", status=429, content_type="text/plain")
    s["forbidden403"].add(
        "/robots.txt", ROBOTS_FILES["star"].encode(), status=403, content_type="text/plain"
    )
    s["hangs"].add_handler("/robots.txt", hang())
    s["moved"].add_handler("/robots.txt", redirect(s["target"].url("/robots.txt"), 301))
    s["loop"].add_handler("/robots.txt", redirect("/robots-2.txt"))  # and back: a loop
    s["loop"].add_handler("/robots-2.txt", redirect("/robots.txt"))
    for i, (name, case) in enumerate(CASES.items()):
        body = make_image("PNG", 24, 16, seed=100 + i)
        sites.bodies[name] = body
        if case.site == "refused":
            sites.urls[name] = f"http://127.0.0.1:{sites.refused_port}{case.path}"
            continue
        server = s[case.site]
        if name.startswith("tag_"):
            headers = TAGS[name.removeprefix("tag_")][0]
            sites.urls[name] = server.add_handler(case.path, tagged(body, headers))
        else:
            sites.urls[name] = server.add(case.path, body, content_type="image/png")
    return sites


@dataclass
class Run:
    """One finished master run over the sites."""

    result: subprocess.CompletedProcess[str]
    out: Path
    manifest: Path
    rows: dict[str, dict[str, Any]]  # case name -> its manifest row

    def row(self, name: str) -> dict[str, Any]:
        assert self.result.returncode == 0, self.result.stderr
        assert name in self.rows, f"no manifest row for {name}: {self.result.stderr}"
        return self.rows[name]


def stored_files(out: Path) -> set[str]:
    return {
        (Path(dirpath) / name).relative_to(out).as_posix()
        for dirpath, _, names in os.walk(out)
        for name in names
    }


def crawl(sites: Sites, root: Path, *flags: str, threads: int = 4, workers: int = 2) -> Run:
    names = list(CASES)
    listing = root / "list.txt"
    listing.write_text("\n".join(sites.urls[n] for n in names) + "\n", encoding="utf-8")
    out, manifest = root / "out", root / "manifest.jsonl"
    result = run_cli(
        "master", str(listing), "--bind", "127.0.0.1", "--port", "0",
        "--local-workers", str(workers), "--threads", str(threads), "--output", str(out),
        # Opt-outs by design: most URLs are blocked, which is tested, not an alarm (exit 4).
        "--manifest", str(manifest), "--no-progress", "--max-failure-rate", "1",
        *POLICY, *flags, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    rows = read_rows(manifest) if manifest.exists() else []
    by_case = {names[int(row["source"].rpartition(":")[2]) - 1]: row for row in rows}
    return Run(result, out, manifest, by_case)


@pytest.fixture(scope="module")
def sites() -> Iterator[Sites]:
    built = build_sites()
    try:
        yield built
    finally:
        for server in built.servers.values():
            server.stop()


@pytest.fixture(scope="module")
def robots_run(sites: Sites, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return crawl(sites, tmp_path_factory.mktemp("robots"))


# ------------------------------------------------------------------- the robots run
def test_robots_run_completes_with_one_row_per_case(robots_run: Run) -> None:
    assert robots_run.result.returncode == 0, robots_run.result.stderr
    assert_no_traceback(robots_run.result.stdout, robots_run.result.stderr)
    assert sorted(robots_run.rows) == sorted(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_case_status(robots_run: Run, sites: Sites, name: str) -> None:
    case, row = CASES[name], robots_run.row(name)
    assert row["status"] == case.status, row
    if case.status == "ok":
        assert row["error"] is None, row
        data = (robots_run.out / row["path"]).read_bytes()
        assert data == sites.bodies[name]
        assert row["sha256"] == hashlib.sha256(data).hexdigest()
    else:
        assert case.error is not None and case.error in row["error"], row
        if not case.requested:
            assert row["error"].startswith("robots.txt "), row
        assert row["path"] is None and row["sha256"] is None, row


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.site != "refused"])
def test_robots_blocked_images_are_never_asked_for(
    robots_run: Run, sites: Sites, name: str
) -> None:
    case, row = CASES[name], robots_run.row(name)
    asked = sites.servers[case.site].hits(case.path)
    assert asked == (1 if case.requested else 0), row
    if not case.requested:
        assert row["attempts"] == 0 and row["http_status"] is None, row


def test_a_tag_blocked_row_keeps_what_the_server_answered(robots_run: Run) -> None:
    row = robots_run.row("tag_noai")
    assert (row["http_status"], row["content_type"], row["attempts"]) == (200, "image/png", 1)
    assert row["bytes"] and row["format"] is None, row  # arrived, never verified nor stored


def test_blocked_images_are_not_stored(robots_run: Run) -> None:
    ok_paths = {row["path"] for row in robots_run.rows.values() if row["status"] == "ok"}
    assert len(ok_paths) == sum(case.status == "ok" for case in CASES.values())
    assert stored_files(robots_run.out) == ok_paths


@pytest.mark.parametrize("site", SITES)
def test_robots_txt_is_fetched_once_per_origin_per_cluster(
    robots_run: Run, sites: Sites, site: str
) -> None:
    """Two workers of four threads each, the files taking 0.5 s to arrive: one request.
    An unavailable robots.txt is asked once per backoff step, once per lease of its URL."""
    robots_run.row("ua_public")
    assert sites.robots_hits(site) == (MAX_ATTEMPTS if site in TRANSIENT_SITES else 1)


@pytest.mark.parametrize("name", ["robots_500", "robots_429", "robots_hangs", "robots_refused"])
def test_unavailable_robots_txt_is_retried_until_the_leases_are_spent(
    robots_run: Run, name: str
) -> None:
    row = robots_run.row(name)
    assert (row["status"], row["leases"], row["attempts"]) == ("blocked", MAX_ATTEMPTS, 0), row


def test_redirected_robots_txt_is_followed_to_the_other_host(robots_run: Run, sites: Sites) -> None:
    robots_run.row("robots_moved")
    assert sites.robots_hits("target") == 1  # asked through the redirect, once


def test_robots_txt_wait_is_bounded_by_the_deadline(robots_run: Run, sites: Sites) -> None:
    row = robots_run.row("robots_hangs")
    assert row["elapsed_s"] < DEADLINE + 5, row


# ------------------------------------------------------------------ --ignore-robots
@pytest.fixture(scope="module")
def ignoring_run(
    robots_run: Run, sites: Sites, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Run, dict[str, int]]:
    before = {site: sites.robots_hits(site) for site in SITES}
    run = crawl(sites, tmp_path_factory.mktemp("ignoring"), "--ignore-robots")
    after = {site: sites.robots_hits(site) for site in SITES}
    return run, {site: after[site] - before[site] for site in SITES}


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.site not in ("refused",)])
def test_ignore_robots_downloads_everything(
    ignoring_run: tuple[Run, dict[str, int]], name: str
) -> None:
    run, _ = ignoring_run
    row = run.row(name)
    assert row["status"] == "ok", row


def test_ignore_robots_never_asks_for_robots_txt(
    ignoring_run: tuple[Run, dict[str, int]],
) -> None:
    run, asked = ignoring_run
    assert run.row("robots_refused")["status"] == "connection_error"
    assert asked == dict.fromkeys(SITES, 0)


# ------------------------------------------------------- a new run asks again (last)
def test_a_new_run_fetches_robots_txt_again(
    robots_run: Run, ignoring_run: tuple[Run, dict[str, int]], sites: Sites
) -> None:
    """Rerun the first run's manifest with --retry-failed: ok rows are kept as the manifest
    says, without any request, blocked rows are tried again, which needs each robots.txt
    once more."""
    before = {site: sites.robots_hits(site) for site in SITES}
    root = robots_run.manifest.parent
    rerun = crawl(sites, root, "--retry-failed")
    assert rerun.result.returncode == 0, rerun.result.stderr
    for name, case in CASES.items():
        row = rerun.row(name)
        assert row["status"] == case.status, row
        assert row["reused"] is None, row  # ok rows kept from the first run, the rest new
        assert (row["run_id"] == robots_run.row(name)["run_id"]) is (case.status == "ok"), row
    asked = {site: sites.robots_hits(site) - before[site] for site in SITES}
    assert asked["ua"] == asked["star"] == 1, asked
    assert asked["error500"] == MAX_ATTEMPTS, asked
    assert asked["other"] == 0, asked  # only ok rows there: reused, nothing fetched


# ------------------------------------------------------------------------ the parsers
@pytest.mark.parametrize(
    ("headers", "expected"),
    [(headers, directive) for headers, directive in TAGS.values()]
    + [((), None), (("",), None), ((" , ,",), None), (("CRAWLER:noai",), "crawler: noai")],
)
def test_x_robots_opt_out(headers: tuple[str, ...], expected: str | None) -> None:
    assert x_robots_opt_out(headers, UA) == expected


def test_product_token_and_origins() -> None:
    assert product_token("Crawler/1.0 (+https://example.org)") == "crawler"
    assert product_token("plainbot") == "plainbot"
    assert origin_of("http://Example.org/a.png") == ("http", "example.org", 80)
    assert origin_of("https://example.org:8443/a.png?q") == ("https", "example.org", 8443)
    assert robots_url(("https", "example.org", 443)) == "https://example.org/robots.txt"
    assert robots_url(("http", "::1", 8080)) == "http://[::1]:8080/robots.txt"
