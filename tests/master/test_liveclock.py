"""The lease board's clock leaves out the time the master was stopped (``liveclock``)."""

from __future__ import annotations

from crawler.master.liveclock import STALL, LiveClock


def test_gaps_up_to_stall_count_and_longer_ones_are_left_out() -> None:
    now = [100.0]
    clock = LiveClock(lambda: now[0])
    readings = []
    for step in (0.5, STALL, STALL + 0.01, 0.5, 3600.0, 1.0):
        now[0] += step
        readings.append(clock())
    assert readings[:2] == [100.5, 100.5 + STALL]  # counted
    assert readings[2] == readings[1]  # a stop: nothing passed
    assert readings[3] == readings[2] + 0.5
    assert readings[4] == readings[3] and readings[5] == readings[4] + 1.0  # an hour stopped
    assert clock.stopped == STALL + 0.01 + 3600.0
    assert readings == sorted(readings)  # never backwards
