"""The latency-bound runs: a server that answers every request after 200 ms, and how
close the crawler and the baseline come to Little's law's limit (in flight / latency).

The crawler runs twice: as users run it, and with ``--ignore-robots``, which the
baseline is like: each origin's robots.txt is one more 200 ms answer the crawler waits
for before the origin's first image (politeness: nothing is fetched before the verdict).
All get the same concurrency: ``workers`` processes x ``THREADS`` threads, 64 downloads
in flight by default (limit 64 / 0.2 s = 320 images/s). Lists of 1,000 and 4,000 URLs
(``--quick``: 100) over the corpus's 500 smallest files (thumbnails: on two cores, full
size images at 320/s would make the run CPU-bound, not latency-bound), each file under
several URLs (``?copy=N``, which the delaying server ignores). Each size runs the crawler, then
the baseline (and ``others``, crawlers of other checkouts), alternating the order by size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import servers
import throughput as tp
from corpus import Corpus

LATENCY = 0.2  # seconds the delaying server waits before each answer
THREADS = 32  # download threads per process
DISTINCT = 500  # distinct files served (the smallest of the corpus), repeated past that
Say = Callable[[str], None]


def small_files(corpus: Corpus) -> list[dict]:
    """The corpus's smallest files: waiting, not decoding, must be what limits the run."""
    return sorted(corpus.files, key=lambda f: f["bytes"])[:DISTINCT]


def latency_urls(corpus: Corpus, base: str, count: int) -> list[str]:
    """``count`` URLs over the smallest files (repeated as ``?copy=N`` past them)."""
    urls = corpus.urls(base, small_files(corpus))[:count]
    copies = [f"{urls[i % len(urls)]}?copy={i // len(urls)}" for i in range(len(urls), count)]
    return urls + copies


def run_sizes(
    corpus: Corpus, sizes: list[int], workers: int, scratch: Path, env: dict, say: Say,
    others: dict[str, dict] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Per list size: the crawler's and the baseline's images/s against the limit."""
    files = small_files(corpus)
    delay = servers.start_delay(corpus.root, [f["name"] for f in files], LATENCY)
    out: dict[str, Any] = {"in_flight": workers * THREADS, "latency_s": LATENCY}
    try:
        paths = [f"/img/{f['name']}" for f in files]
        capacity = servers.probe(delay.base_url, paths, connections=256, per_connection=3)
        say(f"delay server serves {capacity['requests_per_s']:.0f} requests/s to 256 clients")
        out["delay_server_requests_per_s"] = capacity["requests_per_s"]
        out["delay_server_errors"] = capacity["errors"]
        for turn, size in enumerate(sizes):
            out[str(size)] = one_size(corpus, delay.base_url, size, workers, scratch, env,
                                      turn % 2 == 1, say, others or {})  # fmt: skip
    finally:
        delay.stop()
    return out


def one_size(
    corpus: Corpus, base: str, size: int, workers: int, scratch: Path, env: dict,
    baseline_first: bool, say: Say, others: dict[str, dict],
) -> dict[str, Any]:  # fmt: skip
    urls = scratch / f"latency-{size}.txt"
    urls.write_text("\n".join(latency_urls(corpus, base, size)) + "\n")
    work = scratch / "run"
    job = tp.Job(urls, size, float("nan"), work, env, max(120.0, size / 10))
    limit = workers * THREADS / LATENCY
    unpoliced = replace(job, flags=("--ignore-robots",))  # like the baseline: no robots.txt
    runners = {
        "crawler": lambda: tp.run_crawler(job, workers=workers, threads=THREADS),
        "crawler --ignore-robots": lambda: tp.run_crawler(unpoliced, workers, THREADS),
        "baseline": lambda: tp.run_baseline(job, "draft", procs=workers, threads=THREADS),
    }
    for name, other_env in others.items():  # other checkouts' crawlers (--compare-src)
        other = replace(job, env=other_env)
        runners[name] = lambda other=other: tp.run_crawler(other, workers, THREADS)
    order = list(runners)[::-1] if baseline_first else list(runners)
    result: dict[str, Any] = {"limit_images_per_s": limit}
    for name in order:
        tp.clean(job)
        run = runners[name]()
        run["achieved_over_limit"] = run["images_per_s"] / limit
        steady = run.get("steady_images_per_s")
        run["steady_over_limit"] = steady / limit if steady else None
        result[name] = run
        say(f"latency-bound, {size} URLs, {name}: {run['images_per_s']:.1f} images/s "
            f"= {run['achieved_over_limit']:.2f} of the limit {limit:.0f}")  # fmt: skip
    tp.clean(job)
    return result
