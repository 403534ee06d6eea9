"""The stop signals (Ctrl-C, kill, a closed terminal), as this process inherited them.

SIGHUP and SIGINT stay ignored when the process was started with them ignored:
``nohup`` ignores SIGHUP so that a run outlives its terminal, and a shell starts a
script's background jobs with SIGINT ignored. Until 2026-12-01 the master and the
worker caught them regardless, so a night's run started with ``nohup crawler-master ...
&`` stopped when its terminal closed. SIGTERM is always caught: it is the explicit stop
(kill, systemd, timeout), and the master stops its local workers with it; one that
inherited it ignored would hand that on to them.
"""

from __future__ import annotations

import signal
import threading

TYPE_CHECKING = False  # typing is not imported at run time: ``cli.startup`` imports this first
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill, a closed terminal
# Read when this module is first imported: before any of the crawler's handlers is set
# (``cli.startup`` imports it first thing). Python itself leaves an inherited SIG_IGN of
# SIGINT as it is.
INHERITED_IGNORED = frozenset(
    s for s in (signal.SIGINT, signal.SIGHUP) if signal.getsignal(s) is signal.SIG_IGN
)


def catch(handler: Callable[[int, FrameType | None], Any]) -> None:
    """Set ``handler`` for each stop signal, except those the process inherited ignored.
    Raises ValueError outside the main thread (``signal.signal``)."""
    for signum in STOP_SIGNALS:
        if signum not in INHERITED_IGNORED:
            signal.signal(signum, handler)


def to_the_main_thread() -> None:
    """From now on every thread starts with the stop signals blocked (its starter's own
    mask is restored at once), so that the kernel delivers them to the main thread, the
    only one that does not block them.

    Why: a signal sent to a process goes to any one of its threads that does not block
    it. Python runs the handler in the main thread, but only once that thread is back in
    the interpreter: a signal taken by another thread left the main thread in its system
    call. A master planning from stdin or a named pipe then ignored SIGTERM and Ctrl-C
    until the writer wrote (until 2026-12-02: now and then, once its server's threads
    ran). Only ``threading.Thread.start`` is wrapped: the crawler's threads and its
    libraries' all start there."""
    start = threading.Thread.start
    if getattr(start, "stop_signals_blocked", False):
        return

    def start_blocked(thread: threading.Thread) -> None:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            start(thread)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    start_blocked.stop_signals_blocked = True  # type: ignore[attr-defined]
    threading.Thread.start = start_blocked  # type: ignore[method-assign]
