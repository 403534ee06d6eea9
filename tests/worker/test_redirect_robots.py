"""robots.txt for redirect targets, against the real crawler (``worker.targetrobots``).

A list URL whose own origin allows it redirects: to a path its own robots.txt
disallows, to another origin that disallows or allows the target, to one whose
robots.txt is unavailable, hangs or is missing, and through an allowed hop to a
disallowed one. Each target is read against its own origin's rules before it is asked
for; the list origin's robots.txt is still fetched once for the cluster, another
origin's at most once per worker; the URL's deadline still bounds the hops after a
target's robots.txt (read timeouts far longer than the deadline, so that a lost
deadline shows). ``--ignore-robots`` follows every redirect and asks for no robots.txt.
Until 2026-12-02 no redirect target was checked.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_no_traceback, read_rows, run_cli
from hostile import hang, redirect
from imageserver import ImageServer, make_image

DEADLINE = 4.0
POLICY = ("--retries", "0", "--read-timeout", "60", "--deadline", str(DEADLINE))
WORKERS = 2
ROBOTS = {  # site -> its robots.txt (None: answered otherwise)
    "home": "User-agent: *\nDisallow: /private/\n",
    "cdn": "User-agent: *\nDisallow: /no/\n",
    "down": None,  # 503
    "slow": None,  # never answers
    "open": None,  # 404
    "late": "User-agent: *\nDisallow:\n",  # one URL's: its robots.txt always fetched inside it
}


@dataclass(frozen=True)
class Case:
    """One list URL on "home" and where it leads."""

    hops: tuple[tuple[str, str], ...]  # (site, path) of each redirect target, in order
    status: str  # with robots.txt honoured
    error: str | None = None  # a piece of that row's error
    asked: tuple[int, ...] = ()  # requests each target got, in order


DISALLOWED = "disallows the redirect target"
UNAVAILABLE = "robots.txt unavailable"
CASES = {
    "other_origin_disallows": Case((("cdn", "/no/1.png"),), "blocked", DISALLOWED, (0,)),
    "other_origin_allows": Case((("cdn", "/ok/1.png"),), "ok", asked=(1,)),
    "own_origin_disallows": Case((("home", "/private/1.png"),), "blocked", DISALLOWED, (0,)),
    "robots_unavailable": Case(
        (("down", "/img/1.png"),), "blocked", f"{UNAVAILABLE}: HTTP 503 (the redirect target", (0,)
    ),
    "robots_hangs": Case((("slow", "/img/1.png"),), "blocked", UNAVAILABLE, (0,)),
    "robots_missing": Case((("open", "/img/1.png"),), "ok", asked=(1,)),
    "second_hop_disallowed": Case(
        (("cdn", "/ok/hop.png"), ("cdn", "/no/2.png")), "blocked", DISALLOWED, (1, 0)
    ),
    "target_hangs_after_its_robots": Case(
        (("late", "/img/hang.png"),), "timeout", "deadline of", (1,)
    ),
}


@dataclass
class Sites:
    servers: dict[str, ImageServer]
    urls: dict[str, str]  # case -> its list URL

    def target(self, site: str, path: str) -> str:
        return self.servers[site].url(path)


def build() -> Sites:
    s = {name: ImageServer().start() for name in ROBOTS}
    for name, text in ROBOTS.items():
        if text is not None:
            s[name].add("/robots.txt", text.encode(), content_type="text/plain")
    s["down"].add("/robots.txt", b"busy\n", status=503, content_type="text/plain")
    s["slow"].add_handler("/robots.txt", hang())
    urls = {}
    for i, (name, case) in enumerate(CASES.items()):
        chain = [("home", f"/start/{name}.png"), *case.hops]
        for (site, path), (next_site, next_path) in itertools.pairwise(chain):
            s[site].add_handler(path, redirect(s[next_site].url(next_path)))
        last_site, last_path = chain[-1]
        if last_path.endswith("hang.png"):
            s[last_site].add_handler(last_path, hang())
        else:
            body = make_image("PNG", 20, 12, seed=300 + i)
            s[last_site].add(last_path, body, content_type="image/png")
        urls[name] = s["home"].url(f"/start/{name}.png")
    return Sites(s, urls)


@pytest.fixture(scope="module")
def sites() -> Iterator[Sites]:
    built = build()
    try:
        yield built
    finally:
        for server in built.servers.values():
            server.stop()


@dataclass
class Run:
    result: subprocess.CompletedProcess[str]
    rows: dict[str, dict[str, Any]]
    hits: dict[tuple[str, str], int]  # (site, path) -> requests, counted right after the run


def crawl(sites: Sites, root: Path, *flags: str) -> Run:
    names = list(CASES)
    listing = root / "list.txt"
    listing.write_text("".join(sites.urls[n] + "\n" for n in names), encoding="utf-8")
    manifest = root / "m.jsonl"
    result = run_cli(
        "master", str(listing), "--bind", "127.0.0.1", "--port", "0",
        "--local-workers", str(WORKERS), "--threads", "4", "--output", str(root / "out"),
        "--manifest", str(manifest), "--no-progress", "--max-failure-rate", "1",
        "--no-block-private", *POLICY, *flags, timeout=90,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    rows = {names[int(r["source"].rpartition(":")[2]) - 1]: r for r in read_rows(manifest)}
    assert sorted(rows) == sorted(names)
    paths = {(site, path) for case in CASES.values() for site, path in case.hops}
    paths |= {(site, "/robots.txt") for site in ROBOTS}
    hits = {(site, path): sites.servers[site].hits(path) for site, path in paths}
    for server in sites.servers.values():
        server.reset_stats()
    return Run(result, rows, hits)


@pytest.fixture(scope="module")
def honoured(sites: Sites, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return crawl(sites, tmp_path_factory.mktemp("honoured"))


@pytest.fixture(scope="module")
def ignored(sites: Sites, honoured: Run, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return crawl(sites, tmp_path_factory.mktemp("ignored"), "--ignore-robots")


@pytest.mark.parametrize("name", list(CASES))
def test_each_redirect_target_is_read_against_its_own_origins_rules(
    honoured: Run, sites: Sites, name: str
) -> None:
    case, row = CASES[name], honoured.rows[name]
    assert row["status"] == case.status, row
    if case.error is not None:
        assert case.error in row["error"], row
    assert [honoured.hits[hop] for hop in case.hops] == list(case.asked), row
    if case.status == "blocked":
        last = case.hops[len([n for n in case.asked if n]) :][0]
        assert row["final_url"] == sites.target(*last), row  # the target refused
        assert row["attempts"] == 1 + sum(case.asked), row  # the requests sent, no more
        assert row["path"] is None and row["sha256"] is None, row
        if "disallows" in (case.error or ""):
            assert sites.target(*last) in row["error"], row


def test_the_list_origins_robots_txt_is_still_fetched_once(honoured: Run) -> None:
    """Its own-origin targets are read against the verdict the task came with (or the
    probe's own fetch), not fetched again."""
    assert honoured.hits[("home", "/robots.txt")] == 1


@pytest.mark.parametrize("site", ["cdn", "open"])
def test_another_origins_robots_txt_is_fetched_at_most_once_per_worker(
    honoured: Run, site: str
) -> None:
    assert 1 <= honoured.hits[(site, "/robots.txt")] <= WORKERS


def test_a_target_whose_robots_txt_hangs_ends_within_the_urls_deadline(honoured: Run) -> None:
    assert honoured.rows["robots_hangs"]["elapsed_s"] < DEADLINE + 2


def test_the_deadline_still_bounds_the_hops_after_a_targets_robots_txt(honoured: Run) -> None:
    """The target's robots.txt has its own fetch inside the URL's; the URL's deadline
    must survive it (the read timeout, 60 s, would otherwise bound the hung target)."""
    row = honoured.rows["target_hangs_after_its_robots"]
    assert row["elapsed_s"] < DEADLINE + 2, row


def test_ignore_robots_follows_every_redirect_and_asks_no_robots_txt(ignored: Run) -> None:
    for name, case in CASES.items():
        expected = "timeout" if name == "target_hangs_after_its_robots" else "ok"
        assert ignored.rows[name]["status"] == expected, ignored.rows[name]
        assert all(ignored.hits[hop] == 1 for hop in case.hops), name
    assert not any(n for (_, path), n in ignored.hits.items() if path == "/robots.txt")
