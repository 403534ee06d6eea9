"""The master's memory for robots.txt verdicts (master.verdictstore, master.verdicts):
a verdict's robots.txt goes to a spool beside the manifest, parsed rules are kept for
the most recently used origins only, and nothing changes in what a verdict decides.

Until 2026-12-02 every origin's robots.txt, and its parsed rules once read, stayed in
the master's memory for the whole run: about 13.5 KB an origin for a 1 KB robots.txt
with 40 rules, gigabytes over a million origins. In-process, on real data.
"""

from __future__ import annotations

import base64
import gc
import os
import tracemalloc
from pathlib import Path

import pytest
from test_hostile_network import tmpfs

from crawler import keptrules
from crawler.master import verdicts, verdictstore
from crawler.master.verdicts import RobotsBoard
from crawler.master.verdictstore import SPOOL_FROM, VerdictStore
from crawler.robotstxt import answer_verdict

UA = "crawler/1.0 (+https://example.org/bot)"
RULES = (
    "# the rules of a site\nUser-agent: *\n"
    + "".join(f"Disallow: /private{i}/\n" for i in range(40))
    + "Disallow: /no/\n\nUser-agent: otherbot\nAllow: /\n"
)


def big_verdict(n: int) -> dict:
    """A verdict of a robots.txt of about 1 KB, told apart by ``n``."""
    return answer_verdict(200, f"# site {n}\n{RULES}".encode())


def test_small_verdicts_stay_and_large_ones_are_spooled(tmp_path: Path) -> None:
    monkeypatch_free(tmp_path)
    store = VerdictStore(tmp_path)
    small = answer_verdict(404, b"")
    store.add(1, small)
    store.add(2, {"refused": "private address"})
    assert store.spooled == 0 and list(tmp_path.iterdir()) == []  # a deleted file, made late
    large = [big_verdict(n) for n in range(20)]
    assert all(len(v["body"]) >= SPOOL_FROM for v in large)
    for n, verdict in enumerate(large, start=3):
        store.add(n, verdict)
    assert store.spooled > sum(len(v["body"]) for v in large)
    assert [store.get(n) for n in range(1, 23)] == [small, {"refused": "private address"}, *large]
    store.drop(5)
    assert store.get(5) is None and 5 not in store and store.get(6) == large[3]
    store.close()


def test_a_disk_short_of_room_keeps_verdicts_in_memory(tmp_path: Path, caplog) -> None:
    """The spool's disk (the manifest's, often the images') keeps FREE_RESERVE bytes
    free: below that nothing is spooled, one warning says so, and every verdict is
    still given (a review's, 2026-12-02: nine 378 KB robots.txt filled a 3 MiB output
    disk, and the images and the manifest were refused)."""
    with tmpfs(tmp_path / "small", "1m") as folder:
        store = VerdictStore(folder)
        large = [big_verdict(n) for n in range(60)]
        for n, verdict in enumerate(large):
            store.add(n, verdict)
        assert [store.get(n) for n in range(60)] == large
        assert store.spooled == 0
        assert caplog.text.count("cannot spool robots.txt verdicts") == 1
        assert "MiB free" in caplog.text
        store.close()


def test_a_full_disk_keeps_verdicts_in_memory(tmp_path: Path, caplog, monkeypatch) -> None:
    """Without the reserve, the spool's write fails when the disk is full: one warning,
    and every verdict is still given."""
    monkeypatch.setattr(verdictstore, "FREE_RESERVE", 0)
    with tmpfs(tmp_path / "small", "16k") as folder:
        store = VerdictStore(folder)
        large = [big_verdict(n) for n in range(60)]  # ~80 KB of JSON
        for n, verdict in enumerate(large):
            store.add(n, verdict)
        assert [store.get(n) for n in range(60)] == large
        assert 0 < store.spooled <= 16 * 1024
        assert caplog.text.count("cannot spool robots.txt verdicts") == 1
        store.close()


def test_a_closed_spool_gives_no_verdict_and_raises_nothing(tmp_path: Path) -> None:
    """After ``close`` the spooled verdicts are given no more (the worker fetches
    robots.txt itself) and new ones stay in memory; nothing raises (a review found a
    bare AssertionError there)."""
    monkeypatch_free(tmp_path)
    store = VerdictStore(tmp_path)
    store.add(1, big_verdict(1))
    store.close()
    assert store.get(1) is None
    store.add(2, big_verdict(2))
    assert store.get(2) == big_verdict(2)


def monkeypatch_free(folder: Path) -> None:
    """Skip unless ``folder``'s disk has room past FREE_RESERVE (the spool is used)."""
    found = os.statvfs(folder)
    if found.f_bavail * found.f_frsize < verdictstore.FREE_RESERVE + (64 << 20):
        pytest.skip("the disk of the temporary folder is short of room: nothing is spooled")


def board_with(origins: int, tmp_path: Path) -> tuple[RobotsBoard, list[str]]:
    """A board holding the verdict of ``origins`` origins, each disallowing /no/."""
    board = RobotsBoard(True, user_agent=UA, spool=tmp_path)
    hosts = [f"http://h{n}.example" for n in range(origins)]
    for n, host in enumerate(hosts):
        assert board.admit(n, f"{host}/ok/0.png", 0.0)
        board.record(n, f"{host}/ok/0.png", big_verdict(n), 0.0)
    return board, hosts


def test_rules_dropped_from_memory_decide_the_safe_way(tmp_path: Path, monkeypatch) -> None:
    """With room for two origins' parsed rules, ten origins read in turn: each origin's
    rules are parsed once, when first needed, and decide as they would; once dropped
    they are not read again, and their URLs are taken for ones making a request (paced:
    never unpaced by mistake; the worker still blocks them). The workers get every
    verdict as it came, from the spool."""
    monkeypatch.setattr(keptrules, "KEPT_ENTRIES", 2)
    board, hosts = board_with(10, tmp_path)
    for n, host in enumerate(hosts):
        assert board.silent(100 + n, f"{host}/no/1.png", 1.0)
        assert not board.silent(100 + n, f"{host}/ok/1.png", 1.0)
        assert board.silent(100 + n, f"{host}/private7/x.png", 1.0)
    assert [board.silent(100 + n, f"{host}/no/1.png", 1.0) for n, host in enumerate(hosts)] == [
        False
    ] * 8 + [True, True]  # the last two still at hand
    assert board.verdicts(list(range(1, 11))) == [
        {"id": n + 1, "verdict": big_verdict(n)} for n in range(10)
    ]


def test_memory_does_not_grow_with_each_origins_robots_txt(tmp_path: Path, monkeypatch) -> None:
    """3,000 origins with a 1 KB robots.txt each, all of them read: about 2 KB an origin
    with this test's own strings and 64 origins' rules parsed (the rest: its verdict's
    id, place and kind), not its robots.txt and parsed rules (14.3 KB an origin until
    2026-12-02)."""
    monkeypatch.setattr(keptrules, "KEPT_ENTRIES", 64)
    monkeypatch_free(tmp_path)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        board, hosts = board_with(3000, tmp_path)
        assert all(board.silent(n, f"{host}/no/1.png", 1.0) for n, host in enumerate(hosts))
        gc.collect()  # the parsed rules dropped are freed by the collector (cycles)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown / len(hosts) < 4000, f"{grown / len(hosts):.0f} bytes an origin"  # 14,300 before


@pytest.mark.parametrize("body", [b"", b"User-agent: *\nAllow: /\n" * 40])
def test_verdicts_that_block_nothing_keep_no_rules(tmp_path: Path, body: bytes) -> None:
    board = RobotsBoard(True, user_agent=UA, spool=tmp_path)
    board.admit(0, "http://a.example/x.png", 0.0)
    board.record(0, "http://a.example/x.png", answer_verdict(200, body), 0.0)
    assert board.blocking("http://a.example/y.png", 1.0) is None
    assert not board.silent(1, "http://a.example/y.png", 1.0)
    assert board.verdicts([1]) == [{"id": 1, "verdict": answer_verdict(200, body)}]
    assert base64.b64decode(board.verdicts([1])[0]["verdict"]["body"]) == body


def test_parsed_rules_kept_within_their_bytes(tmp_path: Path, monkeypatch) -> None:
    """Room for about three 1 KB robots.txt of parsed rules: the fourth origin read
    drops the first one's (not parsed again: its URLs are paced)."""
    monkeypatch.setattr(keptrules, "KEPT_BYTES", 3500)
    board, hosts = board_with(4, tmp_path)
    assert all(board.silent(n, f"{host}/no/1.png", 1.0) for n, host in enumerate(hosts))
    assert [board.silent(n, f"{host}/no/2.png", 1.0) for n, host in enumerate(hosts)] == [
        False, True, True, True
    ]  # fmt: skip


def test_a_verdict_expired_is_given_no_more(tmp_path: Path) -> None:
    board, hosts = board_with(2, tmp_path)
    assert [v["id"] for v in board.verdicts([1, 2])] == [1, 2]
    later = verdicts.ROBOTS_TTL + 1.0
    assert board.verdict_id(f"{hosts[0]}/ok/1.png", later) is None  # expired: forgotten
    assert [v["id"] for v in board.verdicts([1, 2])] == [2]


def test_a_verdict_that_cannot_be_read_back_spares_no_url(tmp_path: Path) -> None:
    """Its spool read back short (an I/O error's stand-in): the worker gets no verdict
    and fetches robots.txt itself, so the master no longer takes its URLs for ones
    making no request (a review's, 2026-12-02: it still did, unpaced)."""
    monkeypatch_free(tmp_path)
    board, hosts = board_with(1, tmp_path)
    url = f"{hosts[0]}/no/1.png"
    assert board.silent(0, url, 1.0)
    spool = board._store._file
    assert spool is not None
    os.ftruncate(spool.fileno(), 10)
    assert board.verdicts([1]) == []
    assert not board.silent(0, url, 1.0)
