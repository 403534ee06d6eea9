"""Benchmark harness for the crawler: throughput, latency, master capacity and memory.

``python bench/run.py [--quick] [--json PATH] [--rounds N] [--images N] [--workers N]
[--scaling LIST] [--skip-scale] [--fixed-urls N]``

1. a deterministic, web-like image corpus, generated once with Pillow and cached in
   ``bench/.cache/`` (``corpus.py``);
2. served by nginx with its own config on 127.0.0.1 (or, saying so, a Python fallback;
   ``servers.py``);
3. downloaded by the crawler (``--workers`` local workers x 16 threads, full verification,
   manifest, report; and with each worker count of ``--scaling``), the plain baselines
   (``baseline.py``, same processes and threads: Pillow in full, JPEG at 1/8, and the
   crawler's own verification, the like-for-like one), img2dataset and aria2c
   (``contenders.py``) and wget, interleaved over ``--rounds``, each run's files set
   aside until the end (``trash.py``);
4. the crawler (also with ``--ignore-robots``) and the baseline against a server that
   waits 200 ms per answer, 64
   downloads in flight, 1,000 and 4,000 URLs, vs Little's law (``latency.py``);
5. the fixed cost: a 600-URL list (``--quick``: 100), the crawler vs the like-for-like
   baseline, launch -> first row, last row -> exit, a rerun with nothing to do
   (``fixedcost.py``);
6. the master's capacity with 8 simulated workers (``simworker.py``, ``master_load.py``)
   sending rows like a real worker's, in calls of 500 tasks and again of 8 (about what a
   real worker's calls carry): results/s, CPU per result and per call;
7. the master on a 10,000,000-URL list: peak RSS, start-up, early vs late rate;
8. a worker's peak RSS at 32 threads.

One table is printed and written as JSON (``--json``, default bench/results.json).
Everything runs on 127.0.0.1, is bounded in time and is stopped at the end, on Ctrl-C
too; the crawler is only driven through its command line and public protocol.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

import contenders
import fixedcost
import latency as lat
import servers
import throughput as tp
from corpus import Corpus, ensure_corpus
from master_load import Load, run_master_load, url_list
from procwatch import Limits
from report import Row, machine_info, mem_available_mb, render, write_json
from rows import build_rows

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PYCACHE = BENCH / ".cache" / "pycache"  # the measured crawlers' bytecode
NO_BYTECODE = "PYTHONDONTWRITEBYTECODE"
BUSY_LOAD = 0.5  # 1-minute load average above which the machine is not idle
# Tasks a simulated worker takes per call in the capacity scenario's second run: about
# what a real worker's calls carry (16 threads: gets of 8 or more, puts of a few rows).
SMALL_BATCH = 8
GROUPS = frozenset({"downloads", "worker-rss", "latency", "fixed", "capacity", "scale"})


@dataclass(frozen=True)
class Settings:
    quick: bool
    images: int
    rounds: int
    workers: int
    scaling: tuple[int, ...]
    latency_sizes: tuple[int, ...]
    fixed_urls: int
    capacity_urls: int
    scale_urls: int
    sim_workers: int
    scale_timeout: float
    skip_scale: bool
    server: str
    install: bool
    json: Path
    crawler_src: Path
    compare_src: Path | None
    only: frozenset[str]


def parse_args(argv: list[str] | None) -> Settings:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small corpus, one round (< 1 min)")
    p.add_argument("--json", type=Path, default=BENCH / "results.json", metavar="PATH")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3; quick 1)")
    p.add_argument("--images", type=int, help="corpus size (default 3000; quick 200)")
    p.add_argument("--workers", type=int, default=2, help="processes of every contender")
    p.add_argument(
        "--scaling",
        default="1",
        metavar="LIST",
        help="also run the crawler with these local worker counts (default 1)",
    )
    p.add_argument("--skip-scale", action="store_true", help="leave out the 10M-URL run")
    p.add_argument("--scale-urls", type=int, help="default 10,000,000; quick 20,000")
    p.add_argument("--fixed-urls", type=int, help="fixed-cost list (default 600; quick 100)")
    p.add_argument("--capacity-urls", type=int, help="default 200,000; quick 8,000")
    p.add_argument("--scale-timeout", type=float, help="seconds (default 900; quick 120)")
    p.add_argument("--sim-workers", type=int, default=8)
    p.add_argument("--server", choices=("auto", "nginx", "python"), default="auto")
    p.add_argument(
        "--no-install",
        action="store_true",
        help="never apt-get install nginx, aria2 or wget, nor pip install img2dataset",
    )
    p.add_argument(
        "--only",
        type=lambda text: frozenset(text.split(",")),
        default=GROUPS,
        metavar="LIST",
        help=f"run only these, comma-separated: {','.join(sorted(GROUPS))} (default: all)",
    )
    p.add_argument(
        "--crawler-src",
        type=Path,
        default=REPO,
        metavar="DIR",
        help="benchmark the crawler package in DIR/crawler (default: this checkout)",
    )
    p.add_argument(
        "--compare-src",
        type=Path,
        metavar="DIR",
        help="also run the crawler package in DIR/crawler ('crawler (DIR)')",
    )
    a = p.parse_args(argv)
    q = a.quick
    return Settings(
        quick=q,
        images=a.images or (200 if q else 3000),
        rounds=a.rounds or (1 if q else 3),
        workers=a.workers,
        scaling=tuple(n for n in map(int, filter(None, a.scaling.split(","))) if n != a.workers),
        latency_sizes=(100,) if q else (1000, 4000),
        fixed_urls=a.fixed_urls or (100 if q else 600),
        capacity_urls=a.capacity_urls or (8_000 if q else 200_000),
        scale_urls=a.scale_urls or (20_000 if q else 10_000_000),
        sim_workers=a.sim_workers,
        scale_timeout=a.scale_timeout or (120.0 if q else 900.0),
        skip_scale=a.skip_scale,
        server=a.server,
        install=not a.no_install,
        json=a.json,
        crawler_src=a.crawler_src.resolve(),
        compare_src=a.compare_src.resolve() if a.compare_src else None,
        only=a.only & GROUPS,
    )


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def child_env(crawler_src: Path) -> dict[str, str]:
    """The environment of every crawler process: a fresh key, the crawler to measure, and
    its bytecode cached (under PYCACHE, compiled once here), as an installed crawler's is
    (pip compiles at install): a machine that sets PYTHONDONTWRITEBYTECODE would have
    every process compile the crawler's modules anew, ~0.1 s of each start-up.
    PYTHONSAFEPATH: ``python -m`` would put the working directory first on sys.path,
    ahead of PYTHONPATH; run from inside a checkout, every contender ran that checkout's
    crawler, ``--compare-src`` comparing it with itself."""
    env = {k: v for k, v in os.environ.items() if k not in ("CRAWLER_AUTHKEY", NO_BYTECODE)}
    env["CRAWLER_AUTHKEY"] = secrets.token_hex(24)
    env["PYTHONSAFEPATH"] = "1"  # Python >= 3.11 (setup.cfg's python_requires)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(crawler_src), env.get("PYTHONPATH")]))
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    compile_command = [sys.executable, "-m", "compileall", "-q", str(crawler_src / "crawler")]
    subprocess.run(compile_command, env=env, check=False, stdout=subprocess.DEVNULL)
    return env


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    load_before = os.getloadavg()
    if load_before[0] > BUSY_LOAD:
        say(f"WARNING: load average {load_before[0]:.1f} before starting: others are using the "
            "CPUs, the figures will be disturbed")  # fmt: skip
    corpus = ensure_corpus(settings.images, settings.quick, say)  # first: forks a pool
    signal.signal(signal.SIGTERM, _interrupt)  # after: the pool's children must not inherit it
    scratch = Path(tempfile.mkdtemp(prefix="crawler-bench-"))
    scenarios: dict[str, Any] = {"corpus": corpus_info(corpus), "load_before": load_before}
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        probe_path = f"/img/{corpus.files[0]['name']}"
        static = servers.start_static(
            corpus.root, probe_path, settings.server, settings.install, say
        )
        stack.callback(static.stop)
        say(f"serving the corpus with {static.name} at {static.base_url}")
        scenarios["server"] = {"name": static.name, "fallback": static.fallback}
        scenarios.update(run_all(settings, corpus, static.base_url, scratch))
    rows = build_rows(scenarios)
    finish(settings, scenarios, rows)
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def corpus_info(corpus: Corpus) -> dict[str, Any]:
    mix = Counter(f["format"] for f in corpus.files)
    return {
        "images": len(corpus.files),
        "megabytes": corpus.total_bytes / 1e6,
        "mix": dict(mix.most_common()),
        "generated_s": corpus.generated_s,
        "path": str(corpus.root),
    }


def run_all(settings: Settings, corpus: Corpus, base: str, scratch: Path) -> dict[str, Any]:
    env = child_env(settings.crawler_src)
    only = settings.only
    out: dict[str, Any] = {}
    if "downloads" in only:
        out.update(downloads(settings, corpus, base, scratch, env))
    if "worker-rss" in only:
        out["worker-rss"] = worker_rss(corpus, base, scratch, env, out.get("crawler", {}))
    others = {}
    if settings.compare_src is not None:
        others[f"crawler ({settings.compare_src.name})"] = child_env(settings.compare_src)
    if "latency" in only:
        sizes = list(settings.latency_sizes)
        out["latency"] = lat.run_sizes(corpus, sizes, settings.workers, scratch, env, say, others)
    if "fixed" in only:
        out["fixed"] = fixedcost.run_fixed(corpus, base, settings.fixed_urls, settings.rounds,
                                           settings.workers, scratch, env, say, others)  # fmt: skip
    if "capacity" in only:
        out["capacity"] = master_load(settings, settings.capacity_urls, 300.0, scratch, env)
        small = master_load(settings, settings.capacity_urls, 300.0, scratch, env, SMALL_BATCH)
        out["capacity"]["small_batches"] = small
    if settings.skip_scale:
        out["scale"] = {"status": "skipped (--skip-scale)"}
    elif "scale" in only:
        timeout = settings.scale_timeout
        out["scale"] = master_load(settings, settings.scale_urls, timeout, scratch, env)
    return out


def make_job(corpus: Corpus, base: str, files: list[dict], scratch: Path, env: dict) -> tp.Job:
    urls = scratch / f"list-{len(files)}-{base.rsplit(':', 1)[1]}.txt"
    urls.write_text("\n".join(corpus.urls(base, files)) + "\n")
    work = scratch / "run"
    work.mkdir(exist_ok=True)
    megabytes = sum(f["bytes"] for f in files) / 1e6
    timeout = max(120.0, len(files) / 10)
    return tp.Job(urls, len(files), megabytes, work, env, timeout)


def downloads(
    settings: Settings, corpus: Corpus, base: str, scratch: Path, env: dict
) -> dict[str, Any]:
    """The crawler (and its scaling), the baselines, img2dataset, aria2c, wget, interleaved."""
    job = make_job(corpus, base, corpus.files, scratch, env)
    n = settings.workers
    runners = {"crawler": lambda: tp.run_crawler(job, workers=n)}
    for k in settings.scaling:
        runners[f"crawler x{k}"] = lambda k=k: tp.run_crawler(job, workers=k)
    if settings.compare_src is not None:  # the same run with another checkout's crawler
        other = replace(job, env=child_env(settings.compare_src))
        runners[f"crawler ({settings.compare_src.name})"] = lambda: tp.run_crawler(other, n)
    runners["baseline"] = lambda: tp.run_baseline(job, "full", procs=n)
    runners["baseline-draft"] = lambda: tp.run_baseline(job, "draft", procs=n)
    runners["baseline-verify"] = lambda: tp.run_baseline(job, "crawler", procs=n)
    skipped = other_contenders(runners, job, n, settings.install and not settings.quick)
    say(f"download runs: {job.count} images, {job.megabytes:.0f} MB, {settings.rounds} round(s)")
    samples = tp.interleaved(runners, settings.rounds, lambda: tp.clean(job), say)
    out: dict[str, Any] = {name: tp.summarize(runs) for name, runs in samples.items()}
    out.update(skipped)
    for name, runs in samples.items():
        out[name]["samples"] = runs
    out["contenders"] = list(runners) + list(skipped)
    return out


def other_contenders(runners: dict, job: tp.Job, procs: int, install: bool) -> dict[str, Any]:
    """Add img2dataset, aria2c and wget to ``runners`` where they can run; the skipped
    ones with the reason."""
    skipped: dict[str, Any] = {}
    binary, why = contenders.img2dataset_binary(install, say)
    if binary is not None:
        runners["img2dataset"] = lambda: contenders.run_img2dataset(binary, job, procs, 16)
    else:
        say(f"img2dataset skipped: {why}")
        skipped["img2dataset"] = {"status": f"skipped: {why}"}
    tools = (("aria2c", "aria2", contenders.run_aria2c), ("wget", "wget", tp.run_wget))
    for tool, package, run in tools:  # installed as nginx is (until 2026-12-03 skipped)
        path, why = servers.find_binary(tool, package, install, say)
        if path is not None:
            runners[tool] = lambda run=run: run(job)
        else:
            say(f"{tool} skipped: {why}")
            skipped[tool] = {"status": f"skipped: {why}"}
    return skipped


def worker_rss(
    corpus: Corpus, base: str, scratch: Path, env: dict, crawler: dict
) -> dict[str, Any]:
    """One local worker with 32 threads over the whole corpus: its peak RSS."""
    job = make_job(corpus, base, corpus.files, scratch, env)
    tp.clean(job)
    run = tp.run_crawler(job, workers=1, threads=32)
    tp.clean(job)
    say(f"1 worker x 32 threads: peak RSS {run.get('worker_hwm_mb') or 0:.0f} MB")
    return {
        "hwm_mb_32_threads": run.get("worker_hwm_mb"),
        "hwm_mb_16_threads": crawler.get("worker_hwm_mb"),
        "images_per_s_1x32": run["images_per_s"],
        "valid": run["valid"],
        "note": run.get("note"),
    }


def master_load(
    settings: Settings, count: int, timeout: float, scratch: Path, env: dict, batch: int = 500
) -> dict[str, Any]:
    work = scratch / f"master-{count}-{batch}"
    work.mkdir()
    rss_cap = min(8192.0, mem_available_mb() / 2)  # never let it take the machine down
    load = Load(url_list(count, say), count, settings.sim_workers, work, env,
                Limits(timeout, rss_cap), batch=batch)  # fmt: skip
    say(f"master with {settings.sim_workers} simulated workers on {count:,} URLs, "
        f"{batch} tasks a call ...")  # fmt: skip
    try:
        result = run_master_load(load, say)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["rss_cap_mb"] = rss_cap
    say(
        f"  {result['status']}: {result.get('results_per_s') or 0:,.0f} results/s, "
        f"peak RSS {result['peak_rss_mb']:.0f} MB, {result['total_s']:.1f} s"
    )
    return result


def finish(settings: Settings, scenarios: dict[str, Any], rows: list[Row]) -> None:
    machine = machine_info(scenarios["server"], settings.crawler_src)
    machine["loadavg_before"] = scenarios.pop("load_before")
    machine["loadavg_after"] = os.getloadavg()
    title = (
        f"crawler benchmark ({'quick' if settings.quick else 'full'}) on {machine['nproc']} x "
        f"{machine['cpu_model']}, {machine['memory_mb']} MB; server: {machine['server']}"
    )
    if scenarios["server"].get("fallback"):
        title += f"\nNOTE: nginx was not used ({scenarios['server']['fallback']})"
    print(render(rows, title), flush=True)
    params = asdict(settings) | {"json": str(settings.json)}
    params["crawler_src"] = str(settings.crawler_src)
    params["compare_src"] = str(settings.compare_src) if settings.compare_src else None
    params["only"] = sorted(settings.only)
    write_json(settings.json, machine, params, scenarios, rows)
    say(f"results written to {settings.json}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say("interrupted; everything started was stopped")
        sys.exit(130)
