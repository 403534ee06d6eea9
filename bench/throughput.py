"""The download runs: the crawler, the plain baseline and wget on the corpus, and the
worker's memory at 32 threads (the latency-bound runs: ``latency.py``).

Each run is one watched command (``procwatch.watch``) writing into its own scratch
folder, which is set aside (``trash``: deleted at the end of the bench, not between runs)
and the page cache's dirty pages flushed before the next.
The crawler is only driven through its command line.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trash
from master_load import READY
from procwatch import Limits, Watched, crossing, rate_between, watch

BENCH = Path(__file__).resolve().parent
WORKER_TAG = "crawler.worker"
Say = Callable[[str], None]


@dataclass(frozen=True)
class Job:
    """One download run's inputs."""

    urls: Path  # the URL list
    count: int  # URLs in it
    megabytes: float  # bytes behind them / 1e6
    scratch: Path  # a folder of its own, removed afterwards
    env: dict[str, str]
    timeout_s: float
    flags: tuple[str, ...] = ()  # more crawler-master flags


def crawler_command(job: Job, workers: int, threads: int) -> list[str]:
    return [
        sys.executable, "-m", "crawler.master", str(job.urls),
        "--bind", "127.0.0.1", "--port", "0",
        "--local-workers", str(workers), "--threads", str(threads),
        "--output", str(job.scratch / "out"), "--manifest", str(job.scratch / "m.jsonl"),
        "--no-progress", "-q", "--no-block-private", "--idle-timeout", "120", *job.flags,
    ]  # fmt: skip


def figures(job: Job, run: Watched) -> dict[str, Any]:
    wall = run.wall_s or float("nan")
    return {
        "wall_s": wall,
        "images_per_s": job.count / wall,
        "mb_per_s": job.megabytes / wall,
        "cpu_s": run.cpu_s,
        "cpu_ms_per_image": 1000 * run.cpu_s / job.count,
    }


def run_crawler(job: Job, workers: int = 2, threads: int = 16) -> dict[str, Any]:
    """The crawler end to end: exit 0 and one ok manifest row per URL, or a note saying not."""
    manifest = job.scratch / "m.jsonl"
    run = watch(
        crawler_command(job, workers, threads),
        job.env,
        Limits(job.timeout_s),
        child_tag=WORKER_TAG,
        manifest=manifest,
        ready=READY,
    )
    result = figures(job, run)
    ok_rows = count_ok_rows(manifest)
    result["steady_images_per_s"] = rate_between(run.progress, 0.1 * job.count, 0.9 * job.count)
    result["startup_s"] = run.ready_s  # launch -> "serving run"
    result["first_row_s"] = run.first_line_s  # to the ms (crossing(): within 50 ms)
    last_row = crossing(run.progress, job.count)
    result["teardown_s"] = run.wall_s - last_row if last_row is not None else None
    result["worker_hwm_mb"] = max(run.child_hwm_mb.values(), default=None)
    result["workers_seen"] = len(run.child_hwm_mb)
    result["master_maxrss_mb"] = run.hwm_mb
    result["valid"] = run.returncode == 0 and ok_rows == job.count
    if not result["valid"]:
        result["note"] = failure_note(run, f"exit {run.returncode}, {ok_rows}/{job.count} ok rows")
    return result


def count_ok_rows(manifest: Path) -> int:
    if not manifest.exists():
        return 0
    ok = 0
    with open(manifest, encoding="utf-8") as fh:
        for line in fh:
            try:
                ok += json.loads(line).get("status") == "ok"
            except ValueError:
                continue
    return ok


BASELINE_MODES = {"full": [], "draft": ["--draft"], "crawler": ["--crawler-verify"]}


def run_baseline(job: Job, mode: str, procs: int = 2, threads: int = 16) -> dict[str, Any]:
    """bench/baseline.py: ``procs`` processes x ``threads`` threads of GET, check (``mode``:
    Pillow in full, JPEG at 1/8, or the crawler's own verification), SHA-256, write."""
    command = [sys.executable, str(BENCH / "baseline.py"), str(job.urls), str(job.scratch / "out")]
    command += ["--procs", str(procs), "--threads", str(threads), *BASELINE_MODES[mode]]
    run = watch(command, job.env, Limits(job.timeout_s))
    result = figures(job, run)
    result["valid"] = run.returncode == 0
    if not result["valid"]:
        result["note"] = failure_note(run, f"exit {run.returncode}")
    return result


def run_wget(job: Job) -> dict[str, Any]:
    """wget -q -i LIST -P DIR: one connection, no verification."""
    out = job.scratch / "out"
    run = watch(["wget", "-q", "-i", str(job.urls), "-P", str(out)], job.env, Limits(job.timeout_s))
    result = figures(job, run)
    files = len(os.listdir(out)) if out.exists() else 0
    result["valid"] = run.returncode == 0 and files == job.count
    if not result["valid"]:
        result["note"] = failure_note(run, f"exit {run.returncode}, {files}/{job.count} files")
    return result


def failure_note(run: Watched, what: str) -> str:
    tail = " | ".join(run.stderr_tail[-3:])
    return f"{what}{'; ' + run.stopped if run.stopped else ''}{'; ' + tail if tail else ''}"


def clean(job: Job) -> None:
    """Set a run's files aside (``trash``) and flush dirty pages, so the next run starts
    even."""
    trash.set_aside(job.scratch)
    job.scratch.mkdir(parents=True, exist_ok=True)
    os.sync()


def interleaved(
    runners: dict[str, Callable[[], dict[str, Any]]],
    rounds: int,
    before_each: Callable[[], None],
    say: Say,
) -> dict[str, list[dict[str, Any]]]:
    """Every runner once per round, the order rotated each round: A B C, B C A, C A B.

    Until 2026-12-01 the order was the same each round, and the crawler always went
    first: the first run of a round took ~10 % longer, whoever it was (the same checkout
    in the first and second places, swapped: 8.99 against 8.09 s, then 9.75 against 8.48
    s the other way round), which the crawler's ratios carried."""
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in runners}
    names = list(runners)
    for round_no in range(1, rounds + 1):
        turn = (round_no - 1) % len(names)
        for name in names[turn:] + names[:turn]:
            runner = runners[name]
            before_each()
            result = runner()
            samples[name].append(result)
            flag = "" if result.get("valid") else f"  INVALID: {result.get('note')}"
            say(
                f"round {round_no}/{rounds} {name:<15} {result['wall_s']:7.2f} s "
                f"{result['images_per_s']:8.1f} images/s{flag}"
            )
    before_each()
    return samples


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and spread ((max - min) / median) of wall time and images/s over the rounds."""
    out: dict[str, Any] = {"rounds": len(samples), "valid": all(s["valid"] for s in samples)}
    keys = ("wall_s", "images_per_s", "mb_per_s", "cpu_ms_per_image", "steady_images_per_s")
    for key in (*keys, "startup_s", "first_row_s", "teardown_s"):
        values = [s[key] for s in samples if isinstance(s.get(key), (int, float))]
        if not values:
            continue
        median = statistics.median(values)
        out[key] = median
        if key in ("wall_s", "images_per_s"):
            out[key + "_spread"] = (max(values) - min(values)) / median if median else None
    hwm = [s["worker_hwm_mb"] for s in samples if s.get("worker_hwm_mb")]
    if hwm:
        out["worker_hwm_mb"] = max(hwm)
    notes = [s["note"] for s in samples if s.get("note")]
    if notes:
        out["note"] = notes[0]
    return out
