"""A worker's verifier threads: they check and store what its download threads fetched.

A download thread ``start``s a URL (``pipeline``: robots.txt, the request, the body).
When a verifier is idle and a decode could start at once (``verify.decoder_free``), it
hands the body over: the verifier ``finish``es it (verification, hash, store) and
queues the row for the master, while the download thread goes on to its next URL, so
that the ``--threads`` downloads stay in flight while images are checked. Otherwise
the download thread finishes the body itself, as it always did: where the decodes are
what limits a run (CPU-bound), it waits for them as before. (Queueing every body for
the verifiers instead kept every download thread fetching, and their Python work held
the GIL from the verifiers' between two decodes: the cores idle 3-5 % of a CPU-bound
run, ~10 % slower.)

Decoding runs without the GIL, at most ``verify.DECODERS`` at once in a process; there
are PER_DECODER times as many verifiers (no more than download threads): a check is
more than its decode (structure, hash, write), and in a latency-bound run, where a
check's wall time is long on a busy machine, fewer were all busy too often. A worker
thus holds at most ``--threads`` + verifiers bodies.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from crawler.worker import verify
from crawler.worker.lane import start_threads
from crawler.worker.pipeline import Context, Fetched, finish

PER_DECODER = 4  # verifiers per decode a process runs at once


class Verifiers:
    """The verifier threads of one run of a worker."""

    def __init__(self, done: queue.Queue[dict[str, Any]], downloaders: int) -> None:
        """``done``: where each finished row goes (the comms thread takes it from there);
        ``downloaders``: the download threads that will hand bodies over, and call
        ``downloader_done`` once each when they end. Raises UsageError when the system
        refuses a thread."""
        count = max(1, min(PER_DECODER * verify.DECODERS, downloaders))
        self._handed: queue.SimpleQueue[tuple[Fetched, Context] | None] = queue.SimpleQueue()
        self._idle = 0  # verifiers waiting, less the bodies handed to them not taken yet
        self.checking = 0  # bodies handed over and not finished yet
        self._done = done
        self._downloading = downloaders
        self._lock = threading.Lock()
        self._threads = start_threads(self._loop, count, "verify")

    def hand(self, fetched: Fetched, ctx: Context) -> bool:
        """Give ``fetched`` (``ctx``: the download thread's context) to an idle verifier;
        False, keeping nothing, when none is idle or every decode permit is taken (the
        caller then finishes it)."""
        if not verify.decoder_free():
            return False
        with self._lock:
            if self._idle <= 0:
                return False
            self._idle -= 1
            self.checking += 1
        self._handed.put((fetched, ctx))
        return True

    def downloader_done(self) -> None:
        """A download thread ended. After the last, the verifiers end once they have
        finished what they were handed (no thread hands more then: nothing is left)."""
        with self._lock:
            self._downloading -= 1
            last = self._downloading == 0
        if last:
            for _ in self._threads:
                self._handed.put(None)

    def _loop(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._handed.get()
            if item is None:
                return
            row = finish(*item)
            item = None  # the body: not held while this thread waits for the next
            with self._lock:
                self.checking -= 1
            self._done.put(row)
