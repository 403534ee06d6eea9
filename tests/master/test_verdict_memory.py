"""The master's memory for robots.txt verdicts (master.verdictstore, master.verdicts):
a verdict's robots.txt goes to a spool beside the manifest, parsed rules are kept for
the most recently used origins only, and nothing changes in what a verdict decides.

Until 2026-12-02 every origin's robots.txt, and its parsed rules once read, stayed in
the master's memory for the whole run: about 13.5 KB an origin for a 1 KB robots.txt
with 40 rules, gigabytes over a million origins. In-process, on real data.
"""

from __future__ import annotations

import base64
import tracemalloc
from pathlib import Path

import pytest
from test_hostile_network import tmpfs

from crawler.master import verdicts
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


def test_a_full_disk_keeps_verdicts_in_memory(tmp_path: Path, caplog) -> None:
    """The spool's folder fills up: one warning, and every verdict is still given."""
    with tmpfs(tmp_path / "small", "16k") as folder:
        store = VerdictStore(folder)
        large = [big_verdict(n) for n in range(60)]  # ~80 KB of JSON
        for n, verdict in enumerate(large):
            store.add(n, verdict)
        assert [store.get(n) for n in range(60)] == large
        assert caplog.text.count("cannot spool robots.txt verdicts") == 1
        store.close()


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
    monkeypatch.setattr(verdicts, "PARSED_KEPT", 2, raising=False)
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
    monkeypatch.setattr(verdicts, "PARSED_KEPT", 64, raising=False)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        board, hosts = board_with(3000, tmp_path)
        assert all(board.silent(n, f"{host}/no/1.png", 1.0) for n, host in enumerate(hosts))
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
