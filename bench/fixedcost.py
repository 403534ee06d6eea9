"""The fixed cost of a run: a short list, where start-up and the end weigh most.

A list of ``size`` corpus URLs (600 by default; spread over the corpus, so with its
format mix) is fetched by the crawler (``workers`` local workers x 16 threads) and by the
baselines (``baseline.py --draft``, and ``--crawler-verify``: the like-for-like one, the
crawler's own verification without its master; same processes and threads), and by the
crawlers of other checkouts (``--compare-src``), interleaved: the order is reversed every
other round, so neither side always runs on a warmer machine. Reported per crawler:
launch -> "serving run" (planning done), launch -> first manifest row, last row -> exit,
wall, and the wall of a rerun with nothing left to do (everything kept: the local workers
started early must not cost it anything); and the crawler's wall over the baseline's,
against the issue's target (<= 1.3 x on 600 URLs, issue 15 "no fixed overhead").
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import throughput as tp
from corpus import Corpus

THREADS = 16  # download threads per process, as in the download runs
Say = Callable[[str], None]


def run_fixed(
    corpus: Corpus, base: str, size: int, rounds: int, workers: int, scratch: Path,
    env: dict, say: Say, others: dict[str, dict] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Medians over ``rounds`` of every contender; ``others``: name -> env of a crawler."""
    files = corpus.subset(size)
    urls = scratch / f"fixed-{len(files)}.txt"
    urls.write_text("\n".join(corpus.urls(base, files)) + "\n")
    megabytes = sum(f["bytes"] for f in files) / 1e6
    job = tp.Job(urls, len(files), megabytes, scratch / "run", env, 120.0)
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "crawler": lambda: _with_rerun(job, workers)
    }
    for name, other_env in (others or {}).items():
        other = replace(job, env=other_env)
        runners[name] = lambda other=other: _with_rerun(other, workers)
    for mode in ("draft", "crawler"):  # crawler: its own verification, the like-for-like one
        name = "baseline-verify" if mode == "crawler" else f"baseline-{mode}"
        runners[name] = lambda mode=mode: tp.run_baseline(job, mode, workers, THREADS)
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in runners}
    for turn in range(rounds):
        order = list(runners) if turn % 2 == 0 else list(runners)[::-1]
        for name in order:
            tp.clean(job)
            run = runners[name]()
            samples[name].append(run)
            say(f"fixed cost, {job.count} URLs, {name}: wall {run['wall_s']:.2f} s, first row "
                f"{_s(run.get('first_row_s'))}, exit after last row {_s(run.get('teardown_s'))}"
                f"{'' if run['valid'] else '  INVALID: ' + str(run.get('note'))}")  # fmt: skip
    tp.clean(job)
    out: dict[str, Any] = {"urls": job.count, "megabytes": megabytes, "rounds": rounds}
    for name, runs in samples.items():
        out[name] = tp.summarize(runs)
        reruns = [r["rerun_wall_s"] for r in runs if r.get("rerun_wall_s") is not None]
        if reruns:
            out[name]["rerun_wall_s"] = statistics.median(reruns)
        out[name]["samples"] = runs
    return out


def _with_rerun(job: tp.Job, workers: int) -> dict[str, Any]:
    """A crawler run, then the same command again with nothing left to do."""
    run = tp.run_crawler(job, workers=workers, threads=THREADS)
    again = tp.run_crawler(job, workers=workers, threads=THREADS)
    run["rerun_wall_s"] = again["wall_s"]
    if not again["valid"]:
        run["valid"] = False
        run["note"] = f"rerun: {again.get('note')}"
    return run


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"
