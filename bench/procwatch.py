"""Running one command to its end while watching it: time, CPU, memory, progress, a ready line.

``watch`` starts the command in its own session, then polls until it exits or its time
(or memory) limit is hit, in which case its whole process group is stopped. On the
way it samples, from /proc, the peak RSS (VmHWM) of the process and of its children
whose command line contains ``child_tag`` (the crawler's local workers), counts the
lines of a manifest as they are appended, and notes when a stderr line matches
``ready``. The process is reaped with ``os.wait4``, whose rusage is the CPU time and
peak RSS of the process and of the children it waited for.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from firstline import FirstLine

TICK = 0.05  # seconds between samples


@dataclass
class Watched:
    """What one watched run came to."""

    returncode: int | None = None
    started_at: float = 0.0  # time.monotonic() at launch
    wall_s: float = 0.0
    cpu_s: float = 0.0  # user + system, including the children it reaped
    maxrss_mb: float = 0.0  # ru_maxrss: the largest of the process and its reaped children
    hwm_mb: float = 0.0  # VmHWM of the process itself, as last sampled
    child_hwm_mb: dict[int, float] = field(default_factory=dict)  # pid -> VmHWM
    ready_s: float | None = None  # when a stderr line matched ``ready``
    ready_match: re.Match[str] | None = None
    stopped: str | None = None  # "timed out" / "RSS cap" when the harness stopped it
    killed: bool = False  # the harness had to SIGKILL it
    progress: list[tuple[float, int]] = field(default_factory=list)  # (s since start, lines)
    first_line_s: float | None = None  # the manifest's first row, to the ms (firstline.py)
    rss: list[tuple[float, float]] = field(default_factory=list)  # (s since start, VmRSS MB)
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def peak_rss_mb(self) -> float:
        return max(self.hwm_mb, self.maxrss_mb)


def status_kb(pid: int, key: str) -> int | None:
    """A ``kB`` field of /proc/<pid>/status (VmHWM, VmRSS), None when gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def children(parent: int, tag: str) -> list[int]:
    """Pids whose parent is ``parent`` and whose command line contains ``tag``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
            if ppid != parent:
                continue
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                if tag.encode() in fh.read():
                    found.append(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return found


class LineCounter:
    """Counts the lines appended to a file, following the inode first opened (compaction
    replaces the manifest by a new file: that one is not counted)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lines = 0
        self._fh = None

    def poll(self) -> int:
        if self._fh is None and self.path is not None:
            with contextlib.suppress(OSError):
                self._fh = open(self.path, "rb")  # noqa: SIM115 (closed in close())
        if self._fh is not None:
            while chunk := self._fh.read(16 << 20):
                self.lines += chunk.count(b"\n")
        return self.lines

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


@dataclass
class Limits:
    timeout_s: float
    rss_cap_mb: float | None = None


def watch(
    command: list[str],
    env: dict[str, str],
    limits: Limits,
    child_tag: str | None = None,
    manifest: Path | None = None,
    ready: re.Pattern[str] | None = None,
    on_ready: Callable[[re.Match[str]], None] | None = None,
) -> Watched:
    """Run ``command`` to its end (or its limits); see the module docstring."""
    started = time.monotonic()
    result = Watched(started_at=started)
    proc = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    reader = _StderrReader(proc, ready, started)
    counter = LineCounter(manifest)
    first = FirstLine(manifest, started) if manifest is not None else None
    try:
        _poll(proc, result, limits, child_tag, counter, reader, on_ready, started)
    finally:
        if result.returncode is None:  # an exception (Ctrl-C) in the harness: stop it all
            _kill_group(proc, result)
            _reap(proc, result, started)
        _kill_children(result, child_tag)
        counter.close()
        reader.join()
        if first is not None:
            result.first_line_s = first.stop()
    result.ready_s, result.ready_match = reader.ready_s, reader.match
    result.stderr_tail = list(reader.tail)
    return result


def _poll(
    proc: subprocess.Popen,
    result: Watched,
    limits: Limits,
    child_tag: str | None,
    counter: LineCounter,
    reader: _StderrReader,
    on_ready: Callable[[re.Match[str]], None] | None,
    started: float,
) -> None:
    told = False
    while not _reap(proc, result, started, os.WNOHANG):
        now = time.monotonic() - started
        _sample(proc.pid, result, child_tag, now)
        result.progress.append((now, counter.poll()))
        if not told and reader.match is not None and on_ready is not None:
            on_ready(reader.match)
            told = True
        if result.stopped is None:
            result.stopped = _over_limit(result, limits, now)
            if result.stopped is not None:
                _kill_group(proc, result, signal.SIGTERM)
        elif now > limits.timeout_s + 15:  # SIGTERM was not enough
            _kill_group(proc, result)
        time.sleep(TICK)
    result.progress.append((time.monotonic() - started, counter.poll()))


def _over_limit(result: Watched, limits: Limits, now: float) -> str | None:
    if now > limits.timeout_s:
        return "timed out"
    if limits.rss_cap_mb is not None and result.hwm_mb > limits.rss_cap_mb:
        return "RSS cap"
    return None


def _sample(pid: int, result: Watched, child_tag: str | None, now: float) -> None:
    hwm, rss = status_kb(pid, "VmHWM"), status_kb(pid, "VmRSS")
    if hwm is not None:
        result.hwm_mb = max(result.hwm_mb, hwm / 1024)
    if rss is not None:
        result.rss.append((now, rss / 1024))
    if child_tag is None:
        return
    known = set(result.child_hwm_mb)
    for child in known | set(children(pid, child_tag)):
        hwm = status_kb(child, "VmHWM")
        if hwm is not None:
            result.child_hwm_mb[child] = max(result.child_hwm_mb.get(child, 0.0), hwm / 1024)


def _reap(proc: subprocess.Popen, result: Watched, started: float, flags: int = 0) -> bool:
    """wait4 the process (blocking unless WNOHANG); True once it has been reaped."""
    try:
        pid, status, usage = os.wait4(proc.pid, flags)
    except ChildProcessError:
        return True
    if pid == 0:
        return False
    result.returncode = proc.returncode = os.waitstatus_to_exitcode(status)
    result.wall_s = time.monotonic() - started
    result.cpu_s = usage.ru_utime + usage.ru_stime
    result.maxrss_mb = usage.ru_maxrss / 1024
    return True


def _kill_group(proc: subprocess.Popen, result: Watched, sig: int = signal.SIGKILL) -> None:
    """Signal the process's group; on SIGKILL, also the children seen (own sessions)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    if sig == signal.SIGKILL:
        result.killed = True


def _kill_children(result: Watched, tag: str | None) -> None:
    """After a SIGKILL of the process: its children seen earlier that still run (the
    crawler starts its local workers in sessions of their own). Checked by command line,
    so a reused pid is left alone."""
    if not result.killed or tag is None:
        return
    for pid in result.child_hwm_mb:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if tag.encode() not in fh.read():
                    continue
            os.kill(pid, signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


class _StderrReader:
    """Drains a child's stderr in a thread: keeps the tail, notes the first ``ready`` line."""

    def __init__(self, proc: subprocess.Popen, ready: re.Pattern[str] | None, t0: float) -> None:
        self.tail: deque[str] = deque(maxlen=40)
        self.ready_s: float | None = None
        self.match: re.Match[str] | None = None
        self._ready, self._t0, self._proc = ready, t0, proc
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self.tail.append(line.rstrip("\n"))
            if self.match is None and self._ready is not None:
                match = self._ready.search(line)
                if match is not None:
                    self.ready_s, self.match = time.monotonic() - self._t0, match

    def join(self) -> None:
        self._thread.join(timeout=5)
        if self._proc.stderr is not None:
            with contextlib.suppress(OSError):
                self._proc.stderr.close()


def value_at(series: list[tuple[float, float]], when: float | None) -> float | None:
    """The first sampled value at or after ``when`` seconds (None if none)."""
    if when is None:
        return None
    return next((v for t, v in series if t >= when), None)


def rate_between(progress: list[tuple[float, int]], lo: float, hi: float) -> float | None:
    """Lines/s between the moments the count first reached ``lo`` and ``hi`` lines
    (linearly interpolated between samples), or None if it never got there."""
    t_lo, t_hi = crossing(progress, lo), crossing(progress, hi)
    if t_lo is None or t_hi is None or t_hi <= t_lo:
        return None
    return (hi - lo) / (t_hi - t_lo)


def crossing(progress: list[tuple[float, int]], target: float) -> float | None:
    """Seconds after launch when the count first reached ``target`` (interpolated)."""
    prev_t, prev_n = 0.0, 0
    for t, n in progress:
        if n >= target:
            if n == prev_n:
                return t
            return prev_t + (t - prev_t) * (target - prev_n) / (n - prev_n)
        prev_t, prev_n = t, n
    return None
