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
