"""Run ``crawler.worker`` in this process with its stages timed on per-thread CPU clocks.

``python bench/stage_timer.py OUT.json -- WORKER ARGS``: wraps the functions a download
thread calls for one URL (``fetch``, ``verify.inspect``, the SHA-256 of the body,
``FolderStore.put``, and the URL's two halves as a whole, ``pipeline.start`` and
``finish``, on whichever thread runs them; and the worker's calls to the master)
so that each adds the CPU time of its
own thread (``time.thread_time``: work done with the GIL released counts, waiting does
not) to a total, runs the worker's command line, then writes the totals, the calls
of each (``task``: a URL's ``start``, and its ``finish`` when a body arrived) and the
process's CPU time (``getrusage``) as JSON. A profiling aid only:
it patches the crawler's module attributes in this process and nowhere else.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

_lock = threading.Lock()
first: dict[str, float] = {}  # stage -> seconds since the process started, at its first call
cpu: Counter[str] = Counter()  # stage -> CPU seconds
calls: Counter[str] = Counter()


def timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if stage not in first:  # not setdefault: it read /proc twice on every call
            first[stage] = since_start()
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent = time.thread_time() - start
            with _lock:
                cpu[stage] += spent
                calls[stage] += 1

    return wrapper


def since_start() -> float:
    """Seconds since this process was started (by the kernel's clock of /proc)."""
    with open("/proc/self/stat") as fh:
        ticks = int(fh.read().rpartition(")")[2].split()[19])  # field 22: starttime
    with open("/proc/uptime") as fh:
        uptime = float(fh.read().split()[0])
    return uptime - ticks / os.sysconf("SC_CLK_TCK")


gc_time = [0.0, 0.0]  # seconds in the cyclic garbage collector; the start of the current one


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    now = time.perf_counter()  # the collector holds the GIL: its wall time is its CPU time
    if phase == "start":
        gc_time[1] = now
    else:
        gc_time[0] += now - gc_time[1]


def instrument() -> None:
    from crawler import stores
    from crawler.worker import channel, pipeline, run, verifiers, verify

    pipeline.fetch = timed("http", pipeline.fetch)
    verify.inspect = timed("decode", verify.inspect)
    stores.FolderStore.put = timed("write", stores.FolderStore.put)
    pipeline.hashlib = SimpleNamespace(sha256=timed("sha256", hashlib.sha256))
    run.start = timed("task", run.start)
    run.finish = timed("task", run.finish)  # a body no verifier was idle for
    verifiers.finish = timed("task", verifiers.finish)  # a body a verifier took
    for call in ("hello", "get", "put", "renew", "release"):  # the master round trips, counted
        setattr(channel.Channel, call, timed(f"master {call}", getattr(channel.Channel, call)))


def main() -> int:
    out, args = Path(sys.argv[1]), sys.argv[3:]  # sys.argv[2] is "--"
    instrument()
    gc.callbacks.append(_gc_timer)
    from crawler.cli.worker import main as worker_main

    startup = resource.getrusage(resource.RUSAGE_SELF)
    code = worker_main(args)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report = {
        "exit": code,
        "cpu_s": dict(cpu),
        "calls": dict(calls),
        "startup_cpu_s": startup.ru_utime + startup.ru_stime,
        "process_cpu_s": usage.ru_utime + usage.ru_stime,
        "main_thread_cpu_s": time.thread_time(),
        "gc_s": gc_time[0],
        "gc_collections": [stat["collections"] for stat in gc.get_stats()],
        "first_call_s": first,  # stage -> s after the process started
    }
    out.write_text(json.dumps(report))
    return code


if __name__ == "__main__":
    sys.exit(main())
