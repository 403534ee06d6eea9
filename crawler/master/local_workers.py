"""Workers the master starts on its own host (``--local-workers N``).

They are the same command a remote host runs (``python -m crawler.worker``), pointed at
this master's port, each in a session of its own: a terminal's Ctrl-C reaches the
master alone, which then stops them with one SIGTERM (a second signal would make them
abort their downloads).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from crawler import constants as c
from crawler.config import MasterConfig

STOP_WAIT = 10.0  # seconds the master waits for its workers to exit before killing them


class LocalWorkers:
    """The worker processes of one master run."""

    def __init__(self, config: MasterConfig) -> None:
        self._config = config
        self.procs: list[subprocess.Popen] = []

    def start(self, port: int) -> None:
        """Start ``--local-workers`` workers against ``port`` on this host."""
        cfg = self._config
        if cfg.local_workers <= 0:
            return
        host = "127.0.0.1" if cfg.bind in ("", "0.0.0.0") else cfg.bind
        command = [
            sys.executable, "-m", "crawler.worker", "--server", host, "--port", str(port),
            "--threads", str(cfg.worker_threads), "--output", str(cfg.output), "--quiet",
        ]  # fmt: skip
        env = dict(os.environ)
        if cfg.authkey_file:
            command += ["--authkey-file", cfg.authkey_file]
        else:
            env[c.AUTHKEY_ENV] = cfg.authkey.decode()
        for _ in range(cfg.local_workers):
            self.procs.append(
                subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
            )

    def any_running(self) -> bool:
        return any(p.poll() is None for p in self.procs)

    def all_exited(self) -> bool:
        return all(p.poll() is not None for p in self.procs)

    def exit_codes(self) -> list[int]:
        return sorted({p.returncode for p in self.procs if p.returncode is not None})

    def ask_to_stop(self) -> None:
        """SIGTERM to each: they hand back unstarted work and finish the rest."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def wait(self) -> None:
        """Wait up to STOP_WAIT seconds for them to exit; kill what is left."""
        deadline = time.monotonic() + STOP_WAIT
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
