"""The light first half of a master run: what a worker needs to connect, before planning.

``Launch.start`` checks the lists, the output and the store, binds the listening socket,
serves the handshake from an empty ``endpoints.BoardSlot`` and tells the local workers,
started before this module was even imported (``cli.master.run_master``), its port.
It imports none of the heavy modules (planning, the report, numpy), so that the workers'
own start-up (an interpreter and the worker's imports, ~0.2 s) overlaps the master's
imports and its planning instead of following them: the first result arrives that much
sooner (issue 15, "no fixed overhead"). Until planning hands over the lease board, a
worker's ``get`` returns no tasks; a run that ends before that (a planning error, a
signal while planning, nothing to do) stops the early workers at once: they hold nothing.
"""

from __future__ import annotations

import dataclasses
import queue
import time
import uuid
from types import FrameType

from crawler.config import MasterConfig
from crawler.exceptions import UsageError
from crawler.layout import ensure_writable, missing_folders, remove_if_empty
from crawler.master.endpoints import BoardSlot, ResultQueue, RunControl, TaskQueue
from crawler.master.endstop import LateStops
from crawler.master.liveclock import LiveClock
from crawler.master.local_workers import LocalWorkers
from crawler.master.preflight import check_manifest, check_outputs, check_store
from crawler.master.server import QueueServer
from crawler.master.workers import WorkerRegistry
from crawler.signalwake import nudge_the_main_thread
from crawler.stopsignals import catch

INBOX_BATCHES = 16  # result batches waiting for the master loop, at most


class StopRequest:
    """SIGINT, SIGTERM and SIGHUP (the terminal closed). Until the lease board is handed
    over (``graceful``) any of them raises KeyboardInterrupt: nothing has been leased, so
    stopping at once loses nothing, and a list read from a pipe or stdin may block
    planning for as long as its writer waits (a recorded signal would be retried past,
    PEP 475). From then on the first is recorded (the run stops handing out work and
    ends gracefully) and a second raises KeyboardInterrupt. Once the run is over
    (``ending``) they are ``endstop.LateStops``'s."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.abrupt = True  # planning: see above
        self.late: LateStops | None = None  # the run is over: see endstop

    def graceful(self) -> None:
        """From now on a first signal is recorded, not raised (work may be leased)."""
        self.abrupt = False

    def ending(self, skippable: str) -> LateStops:
        """The master stopped collecting answers: from now on signals are the returned
        ``LateStops``'s (``skippable``: what a second one skips, in words)."""
        self.late = LateStops(self.signum is not None, skippable)
        return self.late

    def install(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            if self.late is not None:
                self.late.signal()  # may raise: see endstop
                return
            again, self.signum = self.signum is not None, signum
            if again or self.abrupt:
                raise KeyboardInterrupt  # a second signal, or planning: stop now

        catch(handler)  # not one the master was started with ignored (nohup: SIGHUP)
        nudge_the_main_thread()  # planning may block in a call no signal interrupts


class Launch:
    """The run's identity, its listening socket, the served objects and its local workers."""

    def __init__(self, config: MasterConfig, local: LocalWorkers) -> None:
        self.config = config
        self.run_id = uuid.uuid4().hex[:12]
        self.started = time.monotonic()
        self.stop = StopRequest()
        # Bounded: see endpoints.ResultQueue (backpressure).
        self.inbox: queue.Queue[tuple[str, list[str]]] = queue.Queue(maxsize=INBOX_BATCHES)
        # One clock for leases and for workers' last calls (``liveclock``): the time the
        # master was stopped is neither a lease's nor a worker's idleness.
        self.clock = LiveClock()
        self.slot = BoardSlot(WorkerRegistry(self.clock, own=local.group_of))
        self.local = local  # started already, waiting for the port
        self.server: QueueServer | None = None
        self.policy = config.policy  # with the shared folder's identity once started
        self._closed = False

    def start(self) -> None:
        """Check, listen, serve, tell the local workers the port. Raises UsageError (one
        line at the CLI) when the output, the store or the port cannot be used (the lists
        were checked with the flags: ``cli.master.master_config``)."""
        cfg = self.config
        # A signal from here on ends in close(), which stops the workers started early;
        # a master killed before this has only closed their stdin, which ends them.
        self.stop.install()
        ensure_writable(cfg.output, create=False)  # made by the first image stored
        made = missing_folders(cfg.manifest.parent)  # the checks below make them
        try:
            check_manifest(cfg)
            check_outputs(cfg)
            policy = self.policy = dataclasses.replace(cfg.policy, store_id=check_store(cfg))
            self.server = QueueServer(cfg.bind, cfg.port, cfg.authkey, cfg.listen_backlog)
        except UsageError:
            # A master that cannot start leaves no empty folder behind (until 2026-12-01
            # each failed bind left the manifest's, a fresh user's). Listening comes
            # last: a worker calling while the store is checked is refused at once.
            remove_if_empty(made)
            raise
        run_info = {"run_id": self.run_id, "policy": policy.to_json()}
        self.server.start(
            {
                "task_queue": TaskQueue(self.slot),
                "result_queue": ResultQueue(self.inbox),
                "run_control": RunControl(self.slot, run_info, shared_store=bool(cfg.policy.store)),
            }
        )
        self.local.tell_port(self.server.port)

    @property
    def port(self) -> int:
        return self.server.port if self.server is not None else self.config.port

    def close(self, by: float | None = None) -> None:
        """Stop listening and wait for the local workers (``LocalWorkers.wait``: until
        ``by``, a ``time.monotonic()``, if given). Those that never saw a lease board
        (planning did not finish) hold nothing: they are killed, not waited for. Closing
        again does nothing."""
        if self._closed:
            return
        self._closed = True
        if self.slot.board is None:
            self.local.kill_unused()
        if self.server is not None:
            self.server.close()
        late = self.stop.late
        if late is None:
            self.local.wait(by)
        elif not late.run(lambda: self._wait_local(by), False):  # a second signal: now
            self.local.wait(time.monotonic())  # those left are killed

    def _wait_local(self, by: float | None) -> bool:
        self.local.wait(by)
        return True
