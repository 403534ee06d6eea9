"""The master's memory and capacity over many origins, each with a robots.txt.

``python bench/origins.py [--urls 200000] [--origins 100000] [--robots-bytes 1000]
[--rounds 2] [--compare-src DIR] [-- MASTER FLAGS]``

The capacity bench (``master_load``) lists every URL on one host, so nothing the master
keeps per host or per origin shows there. Here the URLs are spread over ``--origins``
origins (IP literals in 127.0.0.0/8, port 9: never fetched, no name looked up), and the
simulated workers answer each origin's probe with a robots.txt of about
``--robots-bytes`` of Disallow rules (none of them the URLs'). The master runs with
``--host-delay 0.001`` unless flags are given after ``--``: politeness active, so it
reads the rules itself (``RobotsBoard.silent``). Prints, per checkout and round, the
master's peak RSS, results/s and CPU a result; rounds interleaved.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

from master_load import Load, run_master_load
from procwatch import Limits
from run import child_env, say

BENCH = Path(__file__).resolve().parent
FIGURES = ("peak_rss_mb", "results_per_s", "cpu_us_per_result")


def write_list(path: Path, urls: int, origins: int) -> None:
    with open(path, "w", encoding="ascii") as fh:
        for i in range(urls):
            h = i % origins
            fh.write(f"http://127.{1 + h // 65536}.{(h // 256) % 256}.{h % 256}:9/i/{i}.jpg\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--urls", type=int, default=200_000)
    p.add_argument("--origins", type=int, default=100_000)
    p.add_argument("--robots-bytes", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--workers", type=int, default=8, help="simulated workers")
    p.add_argument("--compare-src", type=Path, help="another checkout, measured alongside")
    p.add_argument("flags", nargs="*", help="master flags (after --)")
    a = p.parse_args()
    if not 0 < a.origins <= a.urls or a.origins > 254 * 65536:
        p.error("--origins: 1 to --urls, at most 16,646,144")
    srcs = {"this": BENCH.parent} | ({"compare": a.compare_src} if a.compare_src else {})
    envs = {name: child_env(src) for name, src in srcs.items()}
    flags = tuple(a.flags) or ("--host-delay", "0.001")
    sim = ("--robots-bytes", str(a.robots_bytes))
    scratch = Path(tempfile.mkdtemp(prefix="crawler-origins-"))
    figures: dict[str, list[dict]] = {name: [] for name in srcs}
    try:
        urls = scratch / "list.txt"
        write_list(urls, a.urls, a.origins)
        for round_ in range(a.rounds):
            order = list(srcs) if round_ % 2 == 0 else list(srcs)[::-1]
            for name in order:
                work = scratch / f"{name}-{round_}"
                work.mkdir()
                load = Load(urls, a.urls, a.workers, work, envs[name], Limits(900), flags,
                            sim_flags=sim)  # fmt: skip
                r = run_master_load(load, say)
                figures[name].append(r)
                say(f"round {round_ + 1} {name}: {r['status']}, "
                    + ", ".join(f"{k} {r.get(k) or 0:,.1f}" for k in FIGURES))  # fmt: skip
                shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{a.urls:,} URLs over {a.origins:,} origins, robots.txt ~{a.robots_bytes} B, "
          f"master flags {' '.join(flags)}; median of {a.rounds} rounds:")  # fmt: skip
    for name, runs in figures.items():
        cells = [f"{k} {statistics.median(r.get(k) or 0 for r in runs):,.1f}" for k in FIGURES]
        print(f"  {name:<8} {srcs[name]}: " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
