"""Where a worker's CPU goes, per image: HTTP, Pillow decode, SHA-256, write, the rest.

``python bench/profile_worker.py [--images N] [--threads 16] [--py-spy PATH]``: serves
part of the corpus with nginx (or the fallback), starts a master with no local worker,
and runs one worker through ``bench/stage_timer.py``, which times each stage of each
URL on its thread's CPU clock (decoding and hashing release the GIL: a sampling
profiler that only sees Python frames, or counts waiting threads, cannot split that).
With ``--py-spy``, the same worker also runs under ``py-spy record --gil`` for where
the GIL-holding (pure Python) time goes, bucketed the same way. py-spy is not a
dependency of the project: install it anywhere (``pip install --target DIR py-spy``).

The worker's files go under the system's temporary folder. On this machine's disk a run
that follows a deletion of many files pays extra kernel CPU for each file it creates
(``trash.py``), so two profiles run one after the other differ by that; to compare CPU,
give them a tmpfs: ``TMPDIR=/dev/shm python bench/profile_worker.py ...``. The master's
log is kept (drained as it runs: a full pipe would stop it) and shown if the worker fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import linecache
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import servers
from corpus import ensure_corpus
from master_load import READY
from run import child_env, say
from throughput import Job, crawler_command

BENCH = Path(__file__).resolve().parent
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?):(?P<line>\d+)\)$")
BUCKETS = ("HTTP (requests/urllib3/socket)", "decode (Pillow)", "sha256", "write file",
           "master comms", "other in pipeline", "other")  # fmt: skip


def bucket(stack: list[tuple[str, str, int]]) -> str:
    """The bucket of one sample, from its frames (root first)."""
    for func, path, _line in stack:
        if path.endswith("crawler/worker/fetch.py") and func == "fetch":
            return BUCKETS[0]
        if path.endswith("crawler/worker/verify.py") and func == "inspect":
            return BUCKETS[1]
        if path.endswith("crawler/stores.py") and func == "put":
            return BUCKETS[3]
        if path.endswith("crawler/worker/channel.py") or (
            path.endswith("crawler/worker/run.py") and func in ("_comms_loop", "_send_results")
        ):
            return BUCKETS[4]
    func, path, line = stack[-1]
    if path.endswith("crawler/worker/pipeline.py") and "sha256" in linecache.getline(path, line):
        return BUCKETS[2]
    if any(p.endswith("crawler/worker/pipeline.py") for _, p, _ in stack):
        return BUCKETS[5]
    return BUCKETS[6]


def parse_raw(text: str) -> Counter[str]:
    """Samples per bucket from py-spy's raw (collapsed stacks) output."""
    counts: Counter[str] = Counter()
    for row in text.splitlines():
        stack_text, _, count = row.rpartition(" ")
        if not count.isdigit():
            continue
        frames = []
        for part in stack_text.split(";"):
            match = FRAME.match(part.strip())
            if match:
                frames.append((match["func"], match["file"], int(match["line"])))
        if frames:
            counts[bucket(frames)] += int(count)
    return counts


def profile(job: Job, threads: int, py_spy: str | None, rate: int) -> dict[str, Any]:
    """Run the master and one timed worker; the stage timer's totals (+ py-spy buckets)."""
    master = subprocess.Popen(
        crawler_command(job, 0, threads),
        env=job.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    log = job.scratch / "master.log"
    try:
        port = _port(master)
        threading.Thread(target=_drain, args=(master, log), daemon=True).start()
        stages, raw = job.scratch / "stages.json", job.scratch / "py-spy.txt"
        command = [sys.executable, str(BENCH / "stage_timer.py"), str(stages), "--"]
        command += ["--server", "127.0.0.1", "--port", str(port), "--threads", str(threads)]
        command += ["--output", str(job.scratch / "out"), "--quiet"]
        if py_spy:
            spy = [py_spy, "record", "--gil", "--format", "raw", "--rate", str(rate)]
            command = [*spy, "-o", str(raw), "--", *command]
        try:
            subprocess.run(
                command, env=job.env, timeout=job.timeout_s, check=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        except (subprocess.TimeoutExpired, subprocess.CalledProcessError) as exc:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"the worker failed ({exc}); the master's log:\n{tail}") from None
        master.wait(timeout=60)
        result = json.loads(stages.read_text())
        if py_spy:
            result["gil_samples"] = dict(parse_raw(raw.read_text()))
            shutil.copyfile(raw, BENCH / ".cache" / "py-spy-worker.txt")  # for a closer look
        return result
    finally:
        servers.stop_process(master)


def _drain(master: subprocess.Popen, log: Path) -> None:
    """The master's stderr into ``log``, as it comes."""
    assert master.stderr is not None
    with log.open("a") as out:
        for line in master.stderr:
            out.write(line)
            out.flush()


def _port(master: subprocess.Popen) -> int:
    assert master.stderr is not None
    for line in master.stderr:
        match = READY.search(line)
        if match:
            return int(match.group(1))
    raise RuntimeError("the master did not start")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=1000, help="corpus images to fetch")
    p.add_argument("--corpus", type=int, default=5000, help="corpus size (as run.py --images)")
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--py-spy", metavar="PATH", help="also sample GIL holders with py-spy")
    p.add_argument("--rate", type=int, default=200, help="py-spy samples/s")
    p.add_argument("--crawler-src", type=Path, default=BENCH.parent)
    a = p.parse_args()
    corpus = ensure_corpus(a.corpus, False, say)
    files = corpus.subset(a.images)
    scratch = Path(tempfile.mkdtemp(prefix="crawler-profile-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        static = servers.start_static(corpus.root, f"/img/{files[0]['name']}", "auto", True, say)
        stack.callback(static.stop)
        urls = scratch / "list.txt"
        urls.write_text("\n".join(corpus.urls(static.base_url, files)) + "\n")
        megabytes = sum(f["bytes"] for f in files) / 1e6
        job = Job(urls, len(files), megabytes, scratch, child_env(a.crawler_src.resolve()), 600)
        result = profile(job, a.threads, a.py_spy, a.rate)
    print(f"one worker, {a.threads} threads, {len(files)} images ({megabytes:.0f} MB) "
          f"served by {static.name}")  # fmt: skip
    print_stages(result, len(files))
    if "gil_samples" in result:
        print_gil(Counter(result["gil_samples"]), len(files), a.rate)
    return 0


def print_stages(r: dict[str, Any], images: int) -> None:
    """CPU ms per image by stage, from the stage timer."""
    cpu = r["cpu_s"]
    staged = sum(cpu.get(k, 0.0) for k in ("http", "decode", "sha256", "write"))
    rest = r["process_cpu_s"] - r["startup_cpu_s"] - cpu.get("task", 0.0)
    rows = [
        ("HTTP (fetch: requests/urllib3/socket)", cpu.get("http", 0.0)),
        ("decode (verify.inspect: Pillow)", cpu.get("decode", 0.0)),
        ("sha256 of the body", cpu.get("sha256", 0.0)),
        ("write file (FolderStore.put)", cpu.get("write", 0.0)),
        ("rest of each task", cpu.get("task", 0.0) - staged),
        ("comms thread, queues, GC", rest),
        ("start-up (imports)", r["startup_cpu_s"]),
    ]
    print(f"{'CPU by stage (thread CPU clocks)':<40} {'ms/image':>9} {'share':>6}")
    for name, seconds in rows:
        print(f"{name:<40} {1000 * seconds / images:9.2f} {seconds / r['process_cpu_s']:6.0%}")
    print(f"{'whole worker process':<40} {1000 * r['process_cpu_s'] / images:9.2f}")
    if "gc_s" in r:  # included in the stages above, wherever a collection started
        print(f"{'of which cyclic GC (all threads)':<40} {1000 * r['gc_s'] / images:9.2f} "
              f"{r['gc_s'] / r['process_cpu_s']:6.0%}  collections by generation "
              f"{r['gc_collections']}")  # fmt: skip
    started = r.get("first_call_s", {})
    for stage, at in sorted(started.items(), key=lambda item: item[1]):
        print(f"{'s from worker start to first ' + stage:<40} {at:9.3f}")
    for name, count in sorted(r["calls"].items()):
        if name.startswith("master "):
            spent = 1000 * cpu.get(name, 0.0) / images
            print(f"{name + ' (calls/image, CPU ms/image)':<40} {count / images:9.2f} {spent:6.2f}")


def print_gil(counts: Counter[str], images: int, rate: int) -> None:
    """py-spy --gil: the time some thread held the GIL, i.e. ran Python, by bucket."""
    total = sum(counts.values())
    print(f"\n{'GIL held (py-spy --gil)':<40} {'ms/image':>9} {'share':>6}")
    for name in BUCKETS:
        n = counts.get(name, 0)
        print(f"{name:<40} {1000 * n / rate / images:9.2f} {n / max(1, total):6.0%}")


if __name__ == "__main__":
    sys.exit(main())
