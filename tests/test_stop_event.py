"""``signalwake.SignalSafeEvent``: the worker's stop event, set from its signal handler.

A handler runs in the main thread between two bytecodes, perhaps while that thread holds
the lock of a ``threading.Event`` it waits on or clears; that event's ``set`` from the
handler then waits for a lock its own thread holds. Here a timer signal every 2 ms sets
the event while the main thread waits on it and clears it, for a second, in a process of
its own (with ``threading.Event`` it never ends: the handler re-enters until Python's
recursion limit, a traceback).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from crawler.signalwake import SignalSafeEvent

STRESS = """
import signal, time
from crawler.signalwake import SignalSafeEvent
flag = SignalSafeEvent()
signal.signal(signal.SIGALRM, lambda signum, frame: flag.set())
signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
end, waits = time.monotonic() + 1.0, 0
while time.monotonic() < end:
    flag.wait(0.0005)
    flag.clear()
    waits += 1
signal.setitimer(signal.ITIMER_REAL, 0)
print("done", waits)
"""


def test_a_handler_sets_it_whatever_the_main_thread_was_doing() -> None:
    done = subprocess.run(
        [sys.executable, "-c", STRESS], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("done "), done.stdout


def test_it_behaves_as_an_event_across_threads() -> None:
    event = SignalSafeEvent()
    assert not event.is_set() and event.wait(0.01) is False
    woken: list[bool] = []
    waiter = threading.Thread(target=lambda: woken.append(event.wait(30)))
    waiter.start()
    time.sleep(0.05)
    event.set()
    waiter.join(timeout=30)
    assert woken == [True] and event.is_set() and event.wait() is True
    event.clear()
    assert not event.is_set() and event.wait(0) is False
