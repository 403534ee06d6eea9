"""The worker command: one run, or (``--wait``) every run, until stopped.

``serve`` connects to the master, works its run (``run.Worker``) and reports how it
went. With ``--wait`` the worker is a service: it waits for a master (reconnecting with
backoff), works each run, then waits for the next. SIGINT/SIGTERM: stop taking work,
hand back what was not started, finish and report the rest, then exit; a second signal
more than a second later stops at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import threading
import time
from types import FrameType

from crawler import constants as c
from crawler.config import Policy, WorkerConfig
from crawler.console import NOTICE, notice, record, show
from crawler.exceptions import (
    MasterGone,
    MasterUnreachable,
    OutputUnusable,
    ProtocolError,
    UsageError,
    WorkLost,
)
from crawler.layout import ensure_writable
from crawler.signalwake import SignalSafeEvent
from crawler.stopsignals import catch
from crawler.worker.channel import Channel, probe
from crawler.worker.copies import PASSED_ON, Copies, worst
from crawler.worker.run import Worker, worker_name

# --wait: longest pause between two connection attempts. 60 s until 2026-12-02: a master
# started again waited up to a minute for each process of a worker (a fresh user's saw
# one copy miss a short run); a refused connection costs next to nothing.
WAIT_BACKOFF_MAX = 10.0
M_ARENA_MAX = -8  # glibc's mallopt() parameter number
SUFFIX_MAX = 7  # "#" and up to six digits: the master's name for a second process of a name
REPEAT_SIGNAL_WINDOW = 1.0  # seconds within which a second stop signal is the same request


def _say(config: WorkerConfig, message: str) -> None:
    if not config.quiet:
        notice(message)


def work_one_run(
    config: WorkerConfig, channel: Channel, stop: threading.Event
) -> tuple[int, str, bool]:
    """Work the run the master at ``channel`` is serving; returns (exit code, run id,
    whether the master went away instead of ending the run)."""
    started = time.monotonic()
    worker = Worker(config, channel, stop)
    host = config.host_id or socket.gethostname()
    folder = os.path.abspath(config.output)  # the master warns of two folders for one host
    # pid and group: how a master knows its own local workers (``LocalWorkers.group_of``)
    info = {"host": host, "pid": os.getpid(), "group": os.getpgrp(), "threads": config.threads}
    # instance: tells this process from another of the same name (``master.workers``)
    info |= {"output": folder, "instance": secrets.token_hex(8)}
    try:
        run_info = channel.hello(worker.name, info)
    except MasterGone as exc:  # before any work: it could not join (exit 1, not 3: nothing
        raise MasterUnreachable(f"{exc}, before handing out work") from None  # was lost)
    worker.name = _given_name(worker.name, run_info.get("name"), channel.where)
    run_id = str(run_info.get("run_id"))
    try:
        policy = Policy.from_json(str(run_info.get("policy")))
    except ValueError as exc:
        raise ProtocolError(
            f"the master at {channel.where} sent an unusable policy: {exc}"
        ) from None
    over = False
    try:
        over = worker.run(policy)
        channel.bye(worker.name)
        if worker.disk_error is not None:
            raise OutputUnusable(f"stopped taking work: {worker.disk_error}")
    except MasterGone as exc:
        # Its summary too (until 2026-12-01 a worker that held live leases said neither
        # the summary nor what it held: a fresh user's).
        _summary(config, worker, started)
        if over:  # told the run was over: a master gone before our bye ended it (a review's)
            return c.EXIT_OK, run_id, False
        gone = f"{exc}{_undelivered(worker.held)}"
        if worker.holds_live_leases:  # work in hand was lost with the master: its rerun
            raise WorkLost(gone) from None  # will redo it
        # Holding no live lease, we lost nothing: the master finished, or will resume
        # (a worker thawed after a long freeze finds its leases expired, long redone).
        _say(config, gone)
        return c.EXIT_OK, run_id, True
    _summary(config, worker, started)
    return (c.EXIT_OK if over else c.EXIT_INTERRUPTED), run_id, False


def _given_name(name: str, given: object, where: str) -> str:
    """The name the master gave this process, ``NAME#N`` when another has ``name``
    (``master.workers``), else ``name``: an older master gives none. Raises
    ProtocolError for any other answer: going on under a name the master gave another
    process would make the two one worker again (a review's)."""
    if given is None or given == name:
        return name
    suffix = given[len(name) :] if isinstance(given, str) and given.startswith(name) else ""
    number = suffix[1:]
    if suffix[:1] == "#" and number.isascii() and number.isdigit() and len(suffix) <= SUFFIX_MAX:
        return name + suffix
    raise ProtocolError(f"the master at {where} gave this worker an unusable name: {given!r:.80}")


def _summary(config: WorkerConfig, worker: Worker, started: float) -> None:
    if not config.quiet:
        summary = worker.tally.summary(worker.name, time.monotonic() - started)
        show(summary)
        record(summary)


def _undelivered(held: int) -> str:
    """The URLs a worker held when its master went away, in words ("" for none): their
    answers never reached it, and the summary counts only answers delivered (until
    2026-12-01 it said so nowhere: a fresh user's)."""
    if not held:
        return ""
    return (
        f"; {held} leased URL{'s' if held != 1 else ''} had no answer delivered (other "
        "workers or a rerun fetch them; an image already stored for one may be named by "
        "no row)"
    )


def serve(config: WorkerConfig) -> int:
    """The worker command: one run, or (``--wait``) every run, until stopped."""
    ensure_writable(config.output, create=False)  # made by the first image stored
    _fewer_malloc_arenas()
    if config.processes > 1 and not config.wait:  # one line, not one a process
        probe(config.server, config.port, config.connect_timeout)
    copies = _fork(config)
    stop = _install_stop_handlers(copies)
    if config.wait:
        copies.watch(stop)
    try:
        code = _serve(config, stop, announce=not copies.copy)
    finally:  # never gone before its copies (an error: theirs is said by each)
        codes = copies.wait()
        _say_killed(copies)
    return worst([code, *codes])


def _say_killed(copies: Copies) -> None:
    """One error line for each copy a signal ended (``kill -9``, the OOM killer): it said
    nothing itself, and until 2026-12-02 its exit 3 came with no word (a fresh user's)."""
    for pid, signum in sorted(copies.killed.items()):
        name = signal.Signals(signum).name if signum in signal.valid_signals() else signum
        NOTICE.error(
            "error: copy %d of this worker was killed by %s: the URLs it held are fetched "
            "again once their leases expire (exit 3)", pid, name,
        )  # fmt: skip


def _fork(config: WorkerConfig) -> Copies:
    """``--processes``: the copies, forked before any thread (see copies.py); a service's
    stop with the first process. Raises UsageError when the system refuses a fork (a
    process limit: one line, not a traceback; until 2026-12-02 a review's)."""
    try:
        return Copies.fork(config.processes, follow_parent=config.wait)
    except OSError as exc:
        raise UsageError(
            f"cannot start {config.processes} worker processes (--processes): "
            f"{exc.strerror or exc}; none was started"
        ) from None


def _serve(config: WorkerConfig, stop: threading.Event, *, announce: bool) -> int:
    """This process's share of ``serve``: one run, or every run with --wait (whose
    waits only the first process, ``announce``, says: not one line a process)."""
    if not config.wait:
        try:
            channel = Channel(
                config.server, config.port, config.authkey, config.connect_timeout, stop
            )
            return work_one_run(config, channel, stop)[0]
        except (MasterUnreachable, MasterGone) as exc:
            if stop.is_set() and not isinstance(exc, WorkLost):
                # Stopped before it held anything (a master that ended during its
                # planning stops the local workers it started early): nothing to say.
                return c.EXIT_INTERRUPTED
            raise
    return _serve_forever(config, stop, announce)


def _serve_forever(config: WorkerConfig, stop: threading.Event, announce: bool) -> int:
    """Every run, one after the other. Between two runs one line says that the worker
    waits for the next master, after what ended the last (its summary, or that the master
    went away): until 2026-12-01 a run that ended normally was followed by "lost the
    connection to the master ... (Connection refused)", or by "cannot talk to the master",
    whichever call found the port closed first (a fresh user's)."""
    backoff, last_run, waiting = 1.0, None, False
    where = f"{config.server}:{config.port}"
    while not stop.is_set():
        try:
            channel = Channel(
                config.server, config.port, config.authkey, config.connect_timeout, stop
            )
            run_id = str(channel.hello(worker_name(), {}).get("run_id"))
            if run_id == last_run:
                raise MasterUnreachable("still the run we finished")  # the master is lingering
            waiting = False
            try:
                code, last_run, went = work_one_run(config, channel, stop)
            except WorkLost as exc:  # said here: the worker goes on
                _say(config, str(exc))
                code, last_run, went = c.EXIT_OK, run_id, True
            backoff = 1.0
            if code != c.EXIT_OK:
                return code
            if not stop.is_set():
                if announce:
                    # A master killed is no run ended (a fresh user's, 2026-12-03).
                    how = (
                        f"the master of run {last_run} went away"
                        if went
                        else f"run {last_run} ended"
                    )
                    _say(config, f"waiting for the next master at {where} ({how})")
                waiting = True
        except (MasterUnreachable, MasterGone) as exc:
            if stop.is_set():  # a stop while connecting: nothing to wait for
                break
            if not waiting and announce:  # one line per wait, not one per attempt
                _say(config, f"waiting for a master at {config.server}:{config.port} ({exc})")
            waiting = True
            stop.wait(backoff)
            backoff = min(backoff * 2, WAIT_BACKOFF_MAX)
    return c.EXIT_INTERRUPTED


def _fewer_malloc_arenas() -> None:
    """glibc gives threads their own malloc arenas (up to eight a core) and keeps what
    they grew: with 32 download threads that is ~100 MB held for nothing. Two will do."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 2)


def _install_stop_handlers(copies: Copies) -> threading.Event:
    """The stop signals set the returned event; one more than a second after the latest
    raises KeyboardInterrupt. Each is passed on to ``copies`` first: a first request as
    ``PASSED_ON``, which a copy takes for a first request only (``copies``)."""
    stop = SignalSafeEvent()  # set by the handler: see there
    latest: list[float] = []
    raised: list[bool] = []  # "stop now" raised already: once (a late copy of it again, a
    # second request passed on late by the first process, was a traceback: a review's)

    def handler(signum: int, frame: FrameType | None) -> None:
        # One stop request often arrives more than once at once (systemd signals the
        # whole cgroup, a master the process group): only a signal a second after the
        # latest means "stop now". Until 2026-12-01 the second of a pair arriving together
        # raised again during the first's unwinding: a traceback (a review's).
        now = time.monotonic()
        again = bool(latest) and now - latest[0] > REPEAT_SIGNAL_WINDOW
        copies.pass_on(signum if again else PASSED_ON)
        latest[:] = [now]
        if again and not raised:
            raised.append(True)
            raise KeyboardInterrupt
        stop.set()

    def passed_on(signum: int, frame: FrameType | None) -> None:
        if not latest:  # a request's first word: a signal a second later is a second one
            latest[:] = [time.monotonic()]
        stop.set()

    main = threading.current_thread() is threading.main_thread()
    if main:
        catch(handler)  # not one the worker was started with ignored (nohup: SIGHUP)
    copies.let_in(passed_on if main else None)
    return stop
