"""What ``python -m crawler.master`` and ``python -m crawler.worker`` do first, before
importing their command (0.05-0.2 s of imports).

A stop signal in that time ends the process the way one during planning does: exit 130
(``constants.EXIT_INTERRUPTED``), the master saying "interrupted", a worker silently
(it had nothing yet, like one whose ``--port -`` stdin ended). Without this, SIGINT left
a KeyboardInterrupt traceback from the middle of an import, and SIGTERM and SIGHUP
killed the process without a word (exit 143, 129). The commands install their own
handlers once they run (``master.launch.StopRequest``, ``worker.service``). Only the
standard library and ``crawler.constants`` are imported here: it must be in place at once.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import NoReturn

from crawler import constants as c


def interrupt_on_stop_signals() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as SIGINT already does."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise)


def _raise(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def interrupted(prog: str | None) -> NoReturn:
    """Exit 130, stopped before the command ran; ``prog``: say so on stderr under it.
    ``os._exit``, not SystemExit: a KeyboardInterrupt met inside code run by ``exec``
    (dataclasses builds its methods so, at import) marks it unhandled, and CPython then
    ends the process by SIGINT whatever SystemExit said (exit -2, not 130)."""
    if prog is not None:
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
    os._exit(c.EXIT_INTERRUPTED)  # nothing to finalise: nothing was started or written
