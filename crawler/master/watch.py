"""Whether a serving master can still finish: workers to wait for, and for how long.

A run cannot finish when its own ``--local-workers`` have all exited and no remote
worker was active within ``--lease-seconds``, or when no worker at all was active for
``--idle-timeout``. While none is active the master says so, with when it gives up:
until 2026-12-01 that line named only ``--idle-timeout`` ("giving up in 3540 s") even
when its local workers were gone, and the master gave up in the same second. Its own
local workers count as gone once their processes are (``WorkerRegistry.drop_gone``):
until 2026-12-01 ones killed outright (``kill -9``, the OOM killer) counted as active
for a whole ``--lease-seconds`` after their last call, and the master waited that long
for nobody before giving up (a fresh user's).
"""

from __future__ import annotations

from dataclasses import dataclass

from crawler.config import MasterConfig
from crawler.console import log
from crawler.master.leases import LeaseBoard
from crawler.master.local_workers import LocalWorkers, running
from crawler.master.progress import ACTIVE_WITHIN, Progress
from crawler.master.summary import RunStats


@dataclass
class Watch:
    """The workers of one serving run, watched for ``workers_left``."""

    config: MasterConfig
    local: LocalWorkers
    stats: RunStats
    serving: float  # when workers could first get tasks, on the registry's clock (``now``)

    def workers_left(self, board: LeaseBoard, progress: Progress, stopping: bool) -> bool:
        """False when the run cannot finish: its own workers all exited and no remote one
        is active, or no worker at all has been active for --idle-timeout seconds (the
        reason in ``stats.why``, and logged unless ``stopping``: then the workers going is
        what was asked)."""
        idle = self.config.idle_timeout
        board.workers.drop_gone(running)  # ours killed outright said no bye
        # The registry's clock: a master stopped (SIGSTOP) longer than --idle-timeout gave
        # up on waking, before reading its workers' calls (a review's, 2026-12-01).
        idle_for = board.workers.now() - board.workers.last_activity(since=self.serving)
        if idle and idle_for > idle:
            self.stats.why = f"no worker has been active for {idle:g} s (--idle-timeout)"
            log.error("%s; giving up", self.stats.why)
            return False
        lease = self.config.policy.lease_seconds
        own_gone = bool(self.local.procs) and not self.local.any_running()
        if own_gone and not board.workers.active(within=lease):
            if not stopping:
                codes = self.local.exit_codes()
                self.stats.why = f"all local workers exited (codes {codes}) early"
                log.error("%s", self.stats.why)
            return False
        if board.workers.active(within=ACTIVE_WITHIN) or board.leased():  # slow downloads
            progress.busy()
        elif not stopping:  # local workers gone: a remote one must call within --lease-seconds
            # (stopping, the wait is --grace, said when the stop began: until 2026-12-01
            # this said "giving up in 3590 s" and the master exited that second)
            progress.idle(idle_for, idle, lease if own_gone else 0.0)
        return True
