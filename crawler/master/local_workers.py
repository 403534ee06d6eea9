"""Workers the master starts on its own host (``--local-workers N``).

They are the same command a remote host runs (``python -m crawler.worker``), pointed at
this master's port, each in a session of its own: a terminal's Ctrl-C reaches the
master alone, which then stops them with one SIGTERM (a second signal would make them
abort their downloads). The first ones start before the master listens, most often
before it has even read its flags (``prespawn``), with ``--args-from-stdin``: they read
their command line, its port included, from a pipe on their stdin (``tell_port``), and
a master gone before it served closes that pipe, which ends them.

The master knows them by their process group (``group_of``): the first process's pid,
which its copies share. A worker on another host of the same name may give any pid in
hello, so the group it runs in must be one of ours both as it says and as this host's
kernel says, while it calls. One is gone once its process is (``running``). The first
process killed outright, its copies finish the run (``worker.copies``): the master
still signals their group, and waits for them, while one of them is there.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

from crawler import constants as c
from crawler.config import MasterConfig
from crawler.exceptions import UsageError
from crawler.master.prespawn import stop, worker_command

STOP_WAIT = 10.0  # seconds the master waits for its workers to exit before killing them


class LocalWorkers:
    """The worker processes of one master run."""

    def __init__(self, config: MasterConfig, early: list[subprocess.Popen] | None = None) -> None:
        """``early``: workers ``prespawn.start_early`` started; ``start`` takes them out
        of that list (its owner kills what is left in it)."""
        self._config = config
        self._early = early if early is not None else []
        self.procs: list[subprocess.Popen] = []
        self._members: dict[int, set[int]] = {}  # group -> pids that said hello in it

    def start(self, port: int | None) -> None:
        """Start the ``--local-workers`` (one process and its copies, ``--processes``),
        taking over the one ``prespawn`` started if it did; against ``port`` on this host
        (None: not known yet, ``tell_port`` gives it). Raises UsageError when it cannot."""
        env = self._env()
        wanted = self._config.local_workers > 0  # prespawn may have read another number
        while self._early and wanted and not self.procs and env == os.environ:  # their key
            self.procs.append(self._early.pop(0))
        stop(self._early)  # more than the flags asked for, or another key: unused
        self._early.clear()
        if self.procs or not self._config.local_workers:
            return
        command = worker_command() if port is None else [*worker_command()[:-1], *self.args(port)]
        stdin = subprocess.PIPE if port is None else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(command, env=env, stdin=stdin, start_new_session=True)
        except OSError as exc:  # an interpreter this user may not run: one line
            why = f"cannot start the local workers ({sys.executable}): {exc.strerror or exc}"
            raise UsageError(why) from None
        self.procs.append(proc)

    def args(self, port: int) -> list[str]:
        """A local worker's command line after ``python -m crawler.worker``."""
        cfg = self._config
        host = "127.0.0.1" if cfg.bind in ("", "0.0.0.0") else cfg.bind
        args = [
            "--server", host, "--port", str(port), "--threads", str(cfg.worker_threads),
            "--processes", str(cfg.local_workers), "--output", str(cfg.output), "--quiet",
        ]  # fmt: skip
        return args + (["--authkey-file", cfg.authkey_file] if cfg.authkey_file else [])

    def _env(self) -> dict[str, str]:
        """Their environment: this process's, with the key when it came from no file."""
        env = dict(os.environ)
        if not self._config.authkey_file:
            env[c.AUTHKEY_ENV] = self._config.authkey.decode()
        return env

    def tell_port(self, port: int) -> None:
        """Give the workers started with no port (``start(None)``, ``prespawn``) their
        command line with the master's port: one JSON line on their stdin, which is then
        closed. One that has exited is skipped."""
        line = (json.dumps(self.args(port)) + "\n").encode()
        for proc in self.procs:
            if proc.stdin is not None and not proc.stdin.closed:
                with contextlib.suppress(OSError):  # BrokenPipeError: it has exited
                    proc.stdin.write(line)
                self._close_stdin(proc)

    @staticmethod
    def _close_stdin(proc: subprocess.Popen) -> None:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):  # the flush of a pipe whose reader is gone
                proc.stdin.close()

    def group_of(self, info: dict) -> int | None:
        """The process group of ours that the worker saying hello with ``info`` (host, pid
        and group, as ``worker.service`` gives them) runs in; None when it is not one of
        this master's local workers."""
        pid, group = info.get("pid"), info.get("group")
        if info.get("host") != socket.gethostname() or type(pid) is not int:
            return None
        if type(group) is not int or group not in {proc.pid for proc in self.procs}:
            return None
        if not running(pid, group):
            return None
        self._members.setdefault(group, set()).add(pid)
        return group

    def _group_alive(self, proc: subprocess.Popen) -> bool:
        """Is anyone of ``proc``'s group there: the first process, or (it killed
        outright) a copy of it that said hello? A group of one that exited might be
        another's by now, so the copies are looked at one by one (``running``)."""
        if proc.poll() is None:
            return True
        return any(running(pid, proc.pid) for pid in self._members.get(proc.pid, ()))

    def any_running(self) -> bool:
        """Is one of them (or a copy that outlived its first process) still there?"""
        return any(map(self._group_alive, self.procs))

    def all_exited(self) -> bool:
        return not self.any_running()

    def exit_codes(self) -> list[int]:
        return sorted({p.returncode for p in self.procs if p.returncode is not None})

    def ask_to_stop(self) -> None:
        """SIGTERM to each and its copies: they hand back unstarted work, finish the rest."""
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        """``signum`` to each process group (a worker and its copies: ``worker.copies``)
        with one of them still there (``_group_alive``)."""
        for proc in self.procs:
            if self._group_alive(proc):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signum)

    def kill_unused(self) -> None:
        """SIGKILL to each: only for workers no task was ever leased to (planning did not
        finish, or found nothing to do). They hold nothing and have written nothing, so
        there is nothing to hand back; waiting for a graceful exit (or for one still
        importing its modules to get as far as its stop handler) would only delay the
        master's own exit."""
        self._signal(signal.SIGKILL)
        for proc in self.procs:
            self._close_stdin(proc)
            proc.wait(timeout=STOP_WAIT)  # at once: reaped, so all_exited() says so

    def wait(self, by: float | None = None) -> None:
        """Wait up to STOP_WAIT seconds (or until ``by``, a ``time.monotonic()``: the end
        of a stop's --grace) for them to exit; kill what is left. Killing loses nothing:
        an image gets its final name only once whole, and a URL without an answer is
        fetched again by the next run."""
        deadline = time.monotonic() + STOP_WAIT if by is None else by
        for proc in self.procs:
            self._close_stdin(proc)  # one never told the port reads the end, and exits
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                proc.wait(timeout=5)
        # Copies whose first process was killed: not our children, so polled.
        while self.any_running() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._signal(signal.SIGKILL)  # none, unless they outlived the deadline


def running(pid: int, group: int) -> bool:
    """Is process ``pid`` alive (not a zombie: a copy whose first process was killed is
    reaped by whoever adopted it, or by nobody in a container with no init) and still in
    process group ``group``? A pid reused by another process is in another group."""
    try:
        if os.getpgid(pid) != group:
            return False
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except FileNotFoundError:  # gone between the two looks
        return False
    except OSError as exc:  # ProcessLookupError: gone; no /proc: the group is all we know
        return not isinstance(exc, ProcessLookupError)
    return stat[stat.rindex(b")") + 2 :][:1] != b"Z"
