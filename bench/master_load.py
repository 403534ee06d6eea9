"""The master under load: K simulated workers answering every task at once.

``python -m crawler.master`` runs on a generated list of URLs on 127.0.0.1 that are
never fetched (no local workers, a port of its own, the key in $CRAWLER_AUTHKEY);
once it says "serving run ... on HOST:PORT", K ``bench/simworker.py`` processes take
tasks 500 at a time and put back an "ok" result for each. Measured: results/s from
the first get to the master's exit (and until the last row is journaled), the
master's CPU time and peak RSS (``wait4``, /proc VmHWM; VmRSS once serving and once
every row is journaled, before compaction), its start-up time, and the rates over the
first and the last 10 %: of results accepted (the simulated workers' put times) and of
rows journaled (manifest lines counted over time).
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procwatch import Limits, Watched, crossing, value_at, watch
from servers import stop_process

BENCH = Path(__file__).resolve().parent
CACHE = BENCH / ".cache"
READY = re.compile(r"serving run \w+ on [^ ]*:(\d+)")
CHUNK = 100_000  # lines written per write() when generating a list
Say = Callable[[str], None]


def url_list(count: int, say: Say) -> Path:
    """A cached list of ``count`` distinct URLs on 127.0.0.1 (port 9: nothing fetches them)."""
    path = CACHE / f"urls-{count}.txt"
    if path.exists():
        return path
    say(f"writing a list of {count:,} URLs to {path} (once; cached) ...")
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="ascii") as fh:
        write_urls(fh, "u", count)
    tmp.replace(path)
    return path


def write_urls(fh: Any, folder: str, count: int) -> None:
    """``count`` URLs ``http://127.0.0.1:9/FOLDER/NNNNNNNN.jpg`` (never fetched), in chunks."""
    for start in range(0, count, CHUNK):
        stop = min(count, start + CHUNK)
        fh.write("".join(f"http://127.0.0.1:9/{folder}/{i:08d}.jpg\n" for i in range(start, stop)))


@dataclass(frozen=True)
class Load:
    """One master-under-load run's inputs."""

    urls: Path
    count: int
    workers: int  # simulated workers
    scratch: Path
    env: dict[str, str]
    limits: Limits
    extra: tuple[str, ...] = ()  # more master flags (bench/rerun.py)
    batch: int = 500  # tasks a simulated worker asks for per get (and answers per put)
    sim_flags: tuple[str, ...] = ()  # more simworker.py flags (bench/origins.py)


def run_master_load(load: Load, say: Say) -> dict[str, Any]:
    sims: list[subprocess.Popen] = []

    def start_workers(match: re.Match[str]) -> None:
        sims.extend(_spawn_sim(load, int(match.group(1)), k) for k in range(load.workers))

    command = [
        sys.executable, "-m", "crawler.master", str(load.urls),
        "--bind", "127.0.0.1", "--port", "0",
        "--output", str(load.scratch / "out"), "--manifest", str(load.scratch / "m.jsonl"),
        "--no-progress", "-q",
        # The master counts idleness from its own start, planning included: a short
        # --idle-timeout ends a long list's run the moment it starts serving.
        "--idle-timeout", str(int(load.limits.timeout_s) + 60), *load.extra,
    ]  # fmt: skip
    try:
        run = watch(
            command,
            load.env,
            load.limits,
            manifest=load.scratch / "m.jsonl",
            ready=READY,
            on_ready=start_workers,
        )
    finally:
        stats = [_collect_sim(proc) for proc in sims]
    return _figures(load, run, stats)


def _spawn_sim(load: Load, port: int, k: int) -> subprocess.Popen:
    command = [sys.executable, str(BENCH / "simworker.py"), "--port", str(port)]
    command += ["--name", f"sim-{k}", "--deadline", str(load.limits.timeout_s + 10)]
    command += ["--max-calls", str(20 * load.count // load.batch + 10_000)]
    command += ["--batch", str(load.batch), *load.sim_flags]
    return subprocess.Popen(
        command,
        env=load.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _collect_sim(proc: subprocess.Popen) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        stop_process(proc)
        return {"error": "simulated worker did not finish"}
    with contextlib.suppress(ValueError, IndexError):
        return json.loads(out.strip().splitlines()[-1])
    return {"error": f"simulated worker exit {proc.returncode}: {err.strip()[-300:]}"}


def _figures(load: Load, run: Watched, sims: list[dict[str, Any]]) -> dict[str, Any]:
    n = load.count
    firsts = [s["first_get"] for s in sims if s.get("first_get")]
    first = min(firsts) - run.started_at if firsts else None  # s after the master's launch
    puts = _puts_timeline(sims, run.started_at)
    journaled = crossing(run.progress, n)
    result: dict[str, Any] = {
        "note": " | ".join(run.stderr_tail[-2:]) or None,
        "urls": n,
        "rows": run.progress[-1][1] if run.progress else 0,
        "sim_workers": load.workers,
        "batch": load.batch,
        "status": run.stopped or ("completed" if run.returncode == 0 else f"exit {run.returncode}"),
        "startup_s": run.ready_s,
        "total_s": run.wall_s,
        "master_cpu_s": run.cpu_s,
        "peak_rss_mb": run.peak_rss_mb,
        "rss_serving_mb": value_at(run.rss, run.ready_s),  # after planning, before any work
        "rss_last_row_mb": value_at(run.rss, journaled),  # before compaction
        "rss_peak_at_s": max(run.rss, key=lambda s: s[1])[0] if run.rss else None,
        "last_row_at_s": journaled,
        "sim_errors": [s["error"] for s in sims if s.get("error")][:2],
    }
    if first is not None and run.returncode == 0:
        result["results_per_s"] = n / (run.wall_s - first)
        result["results_per_s_to_last_row"] = n / (journaled - first) if journaled else None
        result["cpu_us_per_result"] = 1e6 * run.cpu_s / n
        result["journal_lag_s"] = journaled - puts[-1][0] if journaled and puts else None
        result["tail_s"] = run.wall_s - journaled if journaled else None  # compaction, summary
    if first is not None:
        result.update(_tenths("puts", puts, first, n))
        result.update(_tenths("rows", run.progress, first, n))
    return result


def _puts_timeline(sims: list[dict[str, Any]], t0: float) -> list[tuple[float, int]]:
    """(s after launch, results put so far), over all simulated workers."""
    events = sorted((t - t0, count) for s in sims for t, count in s.get("puts", []))
    timeline, total = [], 0
    for t, count in events:
        total += count
        timeline.append((t, total))
    return timeline


def _tenths(kind: str, series: list[tuple[float, int]], first: float, n: int) -> dict[str, Any]:
    """Per s over the first and the last 10 % of ``n`` (None where not reached)."""
    t10, t90, t100 = (crossing(series, f * n) for f in (0.1, 0.9, 1.0))
    first10 = 0.1 * n / (t10 - first) if t10 and t10 > first else None
    last10 = 0.1 * n / (t100 - t90) if t90 and t100 and t100 > t90 else None
    ratio = last10 / first10 if first10 and last10 else None
    return {
        f"{kind}_first10_per_s": first10,
        f"{kind}_last10_per_s": last10,
        f"{kind}_last_over_first": ratio,
    }
