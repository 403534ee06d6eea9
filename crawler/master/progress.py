"""What the master tells the person watching: where it serves, the key, how far it is.

On a terminal a progress bar (tqdm) with ok/failed/workers counts; without one (cron,
``--no-progress``), or where its line cannot be read whole (a terminal of 0 columns, or
too narrow: ``terminal.bar_fits``), a log line every ``--progress-interval`` seconds
as well, unless ``--quiet``. The generated key is printed once, with the command to
start workers.
"""

from __future__ import annotations

import os
import shlex
import socket
import time
from collections.abc import Callable
from typing import Any

from crawler import constants as c
from crawler.config import MasterConfig
from crawler.console import Due, log, notice, say_unlogged
from crawler.deferred import progress_bar
from crawler.master.summary import RunStats
from crawler.master.workers import WorkerRegistry
from crawler.terminal import bar_fits

ACTIVE_WITHIN = 10.0  # seconds: a worker seen this recently counts as active in the bar
WAIT_NOTICE_AFTER = 10.0  # seconds without any active worker before the master says so
WAIT_NOTICE_EVERY = 60.0  # then once a minute (unless the bar, which says it at once, fits)


def announce(cfg: MasterConfig, run_id: str, port: int) -> None:
    """The serving line, how workers connect and, for a key the master made or reused,
    where it is."""
    where = f"{cfg.bind or '*'}:{port}"
    notice(f"serving run {run_id} on {where}")
    host = cfg.bind if cfg.bind not in ("", "0.0.0.0") else socket.gethostname()
    command = f"python -m crawler.worker --server {host} --port {port}"
    # Absolute: the command is for another host, where the master's working folder means
    # nothing (a fresh user's: "--authkey-file downloads/authkey").
    key_file = shlex.quote(os.path.abspath(cfg.authkey_file)) if cfg.authkey_file else None
    if cfg.authkey_origin == "file":
        notice(f"workers connect with: {command} --authkey-file {key_file}")
    elif cfg.authkey_origin == "env":
        notice(f"workers connect with: {command} (the same ${c.AUTHKEY_ENV})")
    if cfg.authkey_origin == "generated":
        notice(
            f"no authkey given; generated one and saved it to {cfg.authkey_file} "
            "(mode 0600; later runs reuse it)"
        )
        # On stderr only, not in --log-file: a log file is made readable by others (0644),
        # and kept; the key's own file is 0600.
        say_unlogged(
            f"crawler: start workers on other hosts with:\n"
            f"    {c.AUTHKEY_ENV}={cfg.authkey.decode()} {command}"
        )
    elif cfg.authkey_origin == "reused":
        notice(f"no authkey given; using the one generated earlier in {cfg.authkey_file}")
        # How workers connect, as for any other key (until 2026-12-01 a rerun said
        # nothing of it, a fresh user's): the key's file, never the key itself.
        notice(f"workers connect with: {command} --authkey-file {key_file}")


class Progress:
    """The bar, or the periodic log lines, of one run (a context manager)."""

    def __init__(
        self, cfg: MasterConfig, total: int, todo: int, stats: RunStats, workers: WorkerRegistry
    ) -> None:
        self._total, self._todo = total, todo
        self._stats, self._workers = stats, workers
        # A worker counts while it may hold leases (one busy with slow downloads calls
        # rarely): "workers 0" was shown while two were connected and downloading, and
        # sent the reader of a stalled run to the wrong cause (a fresh user's, 2026-12-01).
        self._connected_within = max(ACTIVE_WITHIN, cfg.policy.lease_seconds)
        disable = True if not cfg.progress else None  # None: off when not a TTY
        # tqdm is imported only to draw (``deferred``): ~10-20 ms of the master's start-up
        # (importlib.metadata finding its version), on the way to the first result.
        self._bar = progress_bar(
            disable, total=total, initial=total - todo, unit="url", dynamic_ncols=True
        )
        # The lines are due while the bar cannot be read whole (``tick``), not only without
        # a bar: on a terminal of 0 columns there was no progress at all (a fresh user's,
        # 2026-12-01).
        self._lines = None if cfg.quiet else Due(cfg.progress_interval)
        self._started = time.monotonic()
        self._quiet = cfg.quiet
        self._waiting = False  # the bar says "waiting for workers"
        self._next_wait_log = 0.0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._bar.close()

    def advance(self, rows: int) -> None:
        """``rows`` more URLs have their final row."""
        self._bar.update(rows)
        self._bar.set_postfix(self.counts(), refresh=False)

    def tick(self, remaining: int, held_back: Callable[[], int] = lambda: 0) -> None:
        """Log a progress line when one is due and no bar shows the counts: none is drawn,
        or its line does not fit the terminal (``terminal.bar_fits``). ``held_back``: the
        origins held back for an unavailable robots.txt, asked only for a line: until
        2026-12-02 a run whose servers were down said "0.0 URLs/s, ok 0, failed 0" for
        minutes, and no more (a fresh user's)."""
        if self._lines is None or not self._lines.now() or bar_fits(self._bar):
            return
        done = self._total - remaining
        rate = (self._todo - remaining) / max(time.monotonic() - self._started, 1e-9)
        counts = ", ".join(f"{k} {v}" for k, v in self.counts().items())
        if held := held_back():
            counts += (
                f"; {held} origin{'s' * (held != 1)} held back: robots.txt unavailable, "
                "asked again after a backoff"
            )
        log.info("progress: %d/%d URLs, %.1f URLs/s, %s", done, self._total, rate, counts)

    def idle(self, idle_for: float, timeout: float, lease: float = 0.0) -> None:
        """No worker is active, for ``idle_for`` seconds; ``timeout``: --idle-timeout (0:
        none); ``lease``: --lease-seconds when the local workers have all exited (a
        remote worker must call within it; 0: they have not). Says so on the bar, or in
        a log line once a minute, with when the master gives up."""
        if idle_for < WAIT_NOTICE_AFTER:
            return
        left = (
            f"giving up in {timeout - idle_for:.0f} s (--idle-timeout)" if timeout else "no limit"
        )
        if lease and (not timeout or lease < timeout):
            left = (
                f"the local workers exited: giving up in {max(lease - idle_for, 0):.0f} s "
                "unless a remote worker calls (--lease-seconds)"
            )
        if not self._bar.disable:
            self._bar.set_description_str(f"waiting for workers ({left})", refresh=False)
            self._waiting = True
        if not self._quiet and time.monotonic() >= self._next_wait_log and not bar_fits(self._bar):
            self._next_wait_log = time.monotonic() + WAIT_NOTICE_EVERY
            log.warning("waiting for workers: none active for %.0f s; %s", idle_for, left)

    def busy(self) -> None:
        """Workers are active (again)."""
        if self._waiting:
            self._bar.set_description_str("", refresh=False)
            self._waiting = False
        self._next_wait_log = 0.0

    def counts(self) -> dict[str, int]:
        workers = len(self._workers.active(within=self._connected_within))
        return {"ok": self._stats.succeeded, "failed": self._stats.failed, "workers": workers}
