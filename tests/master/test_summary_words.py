"""The run summary's words for counts of one (a fresh user's, 2026-12-02: "1 images")."""

from __future__ import annotations

from pathlib import Path

from crawler.master.summary import RunStats, format_summary


def summary_text(tmp_path: Path, copies: int, superseded: int) -> str:
    stats = RunStats(run_id="r", total=copies + 1)
    rows = [{"status": "ok", "run_id": "r", "same_content_as": None}]
    rows += [{"status": "ok", "run_id": "r", "same_content_as": "l.txt:1"}] * copies
    stats.add(rows)
    stats.superseded = [{"path": f"ab/cd/{n}.jpg"} for n in range(superseded)]
    return format_summary(stats.as_dict(0, 1.0, tmp_path / "m.jsonl"), None)


def test_one_is_singular_and_more_are_plural(tmp_path: Path) -> None:
    one = summary_text(tmp_path, 1, 1)
    assert "  1 image with the same bytes as an earlier row's" in one
    assert "  1 earlier copy superseded by a new location or a failure row" in one
    two = summary_text(tmp_path, 2, 3)
    assert "  2 images with the same bytes as an earlier row's" in two
    assert "  3 earlier copies superseded by a new location or a failure row" in two
    assert "same bytes" not in summary_text(tmp_path, 0, 0)


def test_kept_failures_are_not_promised_a_retry(tmp_path: Path) -> None:
    """A permanent failure kept is retried only with --retry-failed: the summary said
    "failures kept (not retried yet)" of 404s too (a fresh user's, 2026-12-02); it now
    says what the README says, waiting for their backoff or permanent."""
    stats = RunStats(run_id="r", total=1)
    stats.changes["kept_failures"] = 1
    text = format_summary(stats.as_dict(0, 1.0, tmp_path / "m.jsonl"), None)
    assert "1 failures kept (waiting for their backoff, or permanent)" in text
    assert "not retried yet" not in text


def test_a_degraded_runs_reason_names_the_failure_of_urls_sent_out() -> None:
    """``most_often``: this run's failures of URLs sent out, not a list's bad lines (they
    won a tie against the run's 404s) nor rows kept as they were (a rerun's, with no
    error: "most often invalid_url (3)"), with the error made printable (a worker's
    text) and cut (reviews', 2026-12-02)."""
    stats = RunStats(run_id="r", total=9)
    stats.add([{"status": "invalid_url", "run_id": "r", "error": "not an http URL"}] * 4)
    stats.add([{"status": "http_error"}] * 5)  # kept from an earlier run: no run_id
    stats.add([{"status": "ok", "run_id": "r"}])
    assert stats.most_often() is None
    shout = "HTTP 404 \x1b[31mgone\r\n" + "x" * 300
    stats.add([{"status": "http_error", "run_id": "r", "error": shout}] * 2)
    stats.add([{"status": "timeout", "run_id": "r", "error": "read timeout"}])
    said = stats.most_often()
    assert said is not None and said.startswith(
        "most often http_error (2): HTTP 404 \\x1b[31mgone\\r\\nxxx"
    )
    assert said.isprintable() and said.endswith("x...")  # 160 characters, then escaped
    assert len(said) == len("most often http_error (2): ") + 160 + len("\\x1b\\r\\n") - 3


def test_a_slow_rate_is_not_said_as_zero(tmp_path: Path) -> None:
    """5 images in 127 s said "0.0 images/s" (a fresh user's, 2026-12-03)."""
    stats = RunStats(run_id="r", total=5)
    stats.add([{"status": "ok", "run_id": "r", "bytes": 10, "reused": None}] * 5)
    summary = stats.as_dict(0, 127.0, tmp_path / "m.jsonl")
    assert "downloaded (0.04 images/s" in format_summary(summary, None), summary
    summary["images_per_s"] = 473.21
    assert "downloaded (473.2 images/s" in format_summary(summary, None)
    summary["images_per_s"] = None
    assert "downloaded (0 images/s" in format_summary(summary, None)
