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
