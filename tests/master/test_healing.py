"""The backoff of failures that heal (``healing.decide``), night by night, and the run
summary's count of downloads on nights that carry revalidated (304) rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler import constants as c
from crawler.config import MasterConfig, Policy
from crawler.manifest import read_runs, runs_path
from crawler.master import healing
from crawler.master.progress import Progress
from crawler.master.summary import RunStats, record_start, write_summary
from crawler.master.workers import WorkerRegistry


def skipped_runs(give_up: int, nights: int) -> list[int]:
    """A URL that fails every time it is tried: how many runs it sits out between tries."""
    runs: list[str] = []
    row = None  # its last row
    skipped, waiting = [], 0
    for night in range(nights):
        history = healing.History({r: i for i, r in enumerate(runs)}, {}, len(runs))
        tried = row is None or healing.decide(row, history, {}, give_up) == healing.RETRY
        run_id = f"run{night}"
        if tried:
            if row is not None:
                skipped.append(waiting)
            failures = 1 if row is None else row["failures"] + 1
            row = {"status": c.TIMEOUT, "run_id": run_id, "failures": failures}
            waiting = 0
        else:
            waiting += 1
        runs.append(run_id)
    return skipped


def test_a_failing_url_sits_out_0_1_3_then_7_runs_as_documented() -> None:
    skipped = skipped_runs(give_up=100, nights=60)
    assert skipped[:3] == [0, 1, 3] and skipped[3:] == [7] * 6


@pytest.mark.parametrize("give_up", [1, 2, 3, 5])
def test_it_is_given_up_after_give_up_after_failed_runs(give_up: int) -> None:
    assert len(skipped_runs(give_up, nights=60)) == give_up - 1


def test_downloads_are_counted_as_written_not_derived_from_what_was_carried() -> None:
    stats = RunStats("r", 6)
    stats.counts.update({c.OK: 2, c.NOT_MODIFIED: 1})  # carried from the manifest
    stats.kept = 3
    stats.add([
        {"status": c.OK, "bytes": 10},  # downloaded
        {"status": c.OK, "reused": True},
        {"status": c.NOT_MODIFIED},
    ])  # fmt: skip
    summary = stats.as_dict(0, 1.0, Path("m.jsonl"))
    assert (summary["downloaded"], summary["reused"], summary["kept"]) == (1, 1, 3)
    assert summary["images_per_s"] == 1.0


@pytest.mark.parametrize(
    ("status", "field"), [(s, f) for s, fs in healing.DECIDED_BY.items() for f in fs]
)
def test_a_failure_is_decided_again_when_a_field_it_depends_on_changed(
    status: str, field: str
) -> None:
    """Also ``redirect_error`` under another --max-redirects (a fresh user raised it, and
    the "more than 0 redirects" rows stayed until --retry-failed)."""
    then = {field: 0}
    history = healing.History({"run0": 0}, {"run0": then}, 1)
    row = {"status": status, "run_id": "run0", "failures": 1, "http_status": None}
    assert healing.decide(row, history, {field: 5}, give_up=5) == healing.RETRY
    if not healing.transient(row):
        assert healing.decide(row, history, dict(then), give_up=5) == healing.KEEP


def test_redirect_errors_depend_on_max_redirects() -> None:
    assert "max_redirects" in healing.DECIDED_BY[c.REDIRECT_ERROR]


def test_a_run_killed_after_its_start_line_counts_in_the_history(tmp_path: Path) -> None:
    """Each run adds a line when it starts and one when it ends (``record_start``,
    ``write_summary``); one killed has the first alone. It counts once, in order, with
    its policy: until 2026-12-01 a killed run was in no history (a fresh user's)."""
    manifest = tmp_path / "m.jsonl"
    for run_id, ends, limit in (("a", True, 10), ("killed", False, 500), ("c", True, 10)):
        stats = RunStats(run_id, total=1, policy={"max_bytes": limit})
        record_start(stats, manifest, ["l.txt"])
        if ends:
            write_summary(stats.as_dict(0, 1.0, manifest), manifest)
    history = healing.History.read(manifest)
    assert history.index == {"a": 0, "killed": 1, "c": 2} and history.runs == 3
    assert history.policies["killed"] == {"max_bytes": 500}
    row = {"status": c.TOO_LARGE, "run_id": "killed", "failures": 1}
    assert healing.decide(row, history, {"max_bytes": 10}, 5) == healing.RETRY  # limit changed
    row = {"status": c.TIMEOUT, "run_id": "c", "failures": 2}  # waits one run after "c"
    assert healing.decide(row, history, {}, 5) == healing.KEEP


def test_a_torn_history_line_stays_apart_from_the_next(tmp_path: Path) -> None:
    """A power cut mid-line: the next run's line is a line of its own (until 2026-12-01
    it was written onto the torn one, and both were lost)."""
    manifest = tmp_path / "m.jsonl"
    runs_path(manifest).write_bytes(b'{"run_id": "a"}\n{"run_id": "torn", "outc')
    record_start(RunStats("b", total=1), manifest, [])
    assert [r["run_id"] for r in read_runs(manifest)] == ["a", "b"]


@pytest.mark.parametrize("ahead", [0, 5, 3600, 86400, 40 * 365 * 86400])
@pytest.mark.parametrize("elapsed", [0.0, 8.4, 4000.0])
def test_a_summary_never_ends_before_its_start_and_elapsed(ahead: int, elapsed: float) -> None:
    """The run started on a clock ``ahead`` s ahead of now (stepped back since, NTP):
    ``ended_at`` is at least ``started_at`` + ``elapsed_s`` (until 2026-12-01 a summary
    could end a day before it started: a fresh user's); on a clock that was right, now."""
    start = datetime.now(UTC) + timedelta(seconds=ahead)
    stats = RunStats("r", 1, started_at=start.isoformat(timespec="seconds"))
    summary = stats.as_dict(0, elapsed, Path("m.jsonl"))
    started = datetime.fromisoformat(summary["started_at"])
    ended = datetime.fromisoformat(summary["ended_at"])
    assert ended - started >= timedelta(seconds=round(elapsed))
    # The clock went back: the start's clock plus what passed; else now.
    expected = max(datetime.now(UTC), started + timedelta(seconds=round(elapsed)))
    assert abs(ended - expected) <= timedelta(seconds=2)


@pytest.mark.parametrize("status", [c.HTTP_ERROR, c.TOO_LARGE, c.CORRUPT, c.NOT_IMAGE])
@pytest.mark.parametrize("then", [None, {}, {"rules": "2020-01-01"}, {"rules": c.RULES}])
def test_without_a_policy_no_permanent_failure_is_retried_for_rules(
    status: str, then: dict | None
) -> None:
    """A library caller passes no policy (``{}``): there are no rules to compare, so the
    failure stands whatever rules decided it. Until 2026-12-01 every permanent failure
    was retried on every run; with this run's policy, other rules still retry it once."""
    row = {"status": status, "http_status": 404, "run_id": "run0", "failures": 1}
    policies = {} if then is None else {"run0": then}
    history = healing.History({"run0": 0}, policies, 1)
    assert healing.decide(row, history, {}, 5) == healing.KEEP
    ours = healing.decide(row, history, {"rules": c.RULES}, 5)
    assert ours == (healing.KEEP if then == {"rules": c.RULES} else healing.RETRY)


@pytest.mark.parametrize("torn", [b"", b'{"run_id": "killed", "outc'])
def test_drop_unreadable_keeps_every_readable_line_and_a_torn_last_one(
    tmp_path: Path, torn: bytes
) -> None:
    """After its warning the history loses its unreadable lines, so that the warning is
    said once; a torn last line (a run killed while writing it) is no damage and stays."""
    runs = tmp_path / "manifest.runs.jsonl"
    good = [b'{"run_id": "a", "policy": {}}\n', b'{"run_id": "b"}\n', b"\n"]
    bad = [b"\x00\xff garbage\n", b"[1, 2]\n", b'{"run_id": "c", "poli\n']
    runs.write_bytes(bad[0] + good[0] + bad[1] + good[1] + bad[2] + good[2] + torn)
    assert healing.History.read(runs.with_name("manifest.jsonl")).damaged == "3 unreadable line(s)"
    healing.drop_unreadable(runs)
    assert runs.read_bytes() == b"".join(good) + torn
    history = healing.History.read(runs.with_name("manifest.jsonl"))
    assert history.damaged == "" and list(history.index) == ["a", "b"]


def test_progress_counts_a_worker_while_it_may_hold_leases() -> None:
    """A worker busy with slow downloads calls rarely; it counts in the progress line
    while it may still hold leases (--lease-seconds), not only for 10 s after a call:
    "workers 0" was shown while two were connected and downloading (a fresh user's,
    2026-12-01)."""
    now = [0.0]
    workers = WorkerRegistry(clock=lambda: now[0])
    cfg = MasterConfig(lists=(), authkey=b"k" * 32, progress=False, policy=Policy())
    with Progress(cfg, 10, 10, RunStats("r", 10), workers) as progress:
        workers.seen("w1")
        now[0] = 30.0  # quiet for 30 s: downloading
        assert progress.counts()["workers"] == 1
        now[0] = 61.0  # past its leases (60 s): gone as far as anyone can tell
        assert progress.counts()["workers"] == 0
