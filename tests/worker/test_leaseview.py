"""A worker's view of its leases: dropped when gone, and when unconfirmed for a lease."""

from __future__ import annotations

import threading

from crawler.worker.leaseview import HeldLeases, LeaseView


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_gone_leases_are_not_started_and_are_reported_dropped() -> None:
    view = LeaseView(60.0, Clock())
    view.confirm([3])
    assert view.may_start(1) is True
    assert view.may_start(3) is False
    assert view.take_dropped() == [(3, None)]
    assert view.take_dropped() == []


def test_a_stale_view_asks_for_a_renewal_and_waits_for_it() -> None:
    clock = Clock()
    view = LeaseView(60.0, clock)
    clock.now += 45  # frozen, say: more than half a lease since the last confirmation
    answers: list[bool] = []
    thread = threading.Thread(target=lambda: answers.append(view.may_start(7)))
    thread.start()
    while not view.renewal_wanted():
        pass
    view.confirm([7])  # the renewal says task 7 went to another worker meanwhile
    thread.join(timeout=5)
    assert answers == [False]
    assert view.renewal_wanted() is False


def test_no_confirmation_for_a_lease_period_stops_new_downloads() -> None:
    clock = Clock()
    view = LeaseView(0.2, clock)
    clock.now += 1.0  # the master unreachable for five lease periods
    assert view.may_start(1) is False  # waited up to half a lease for a renewal, in vain
    assert view.take_dropped() == [(1, None)]
    view.confirm([])
    assert view.may_start(2) is True


def test_a_task_leased_again_after_its_lease_went_may_start() -> None:
    """Its download was in flight when the lease went (never asked may_start again)."""
    view = LeaseView(60.0, Clock())
    view.confirm([5])
    view.leased(5)
    assert view.may_start(5) is True
    assert view.take_dropped() == []


def test_held_leases_are_told_apart_by_their_token() -> None:
    held = HeldLeases()
    held[5] = 1
    held.forget([5])  # the master: gone
    held[5] = 2  # leased to us again
    assert held.answered(5, 1) is False  # the stale download's result answers no lease held
    assert held == {5: 2}
    assert held.answered(5, 2) is True
    assert held == {}


def test_a_queued_task_whose_url_was_leased_again_is_not_started() -> None:
    """Thawed from SIGSTOP: the renewal says lease 5 (token 1) is gone, then the master
    leases 5 to us again (token 2) before a thread reaches the stale task in the queue.
    The stale one is skipped without being reported dropped (that would forget the new
    lease), and the new one starts. Until 2026-12-01 both ran: two requests for one URL."""
    view, held = LeaseView(60.0, Clock()), HeldLeases()
    held[5] = 1
    view.confirm([5])
    held[5] = 2
    view.leased(5)
    assert held.may_start(view, 5, 1) is False
    assert held.may_start(view, 5, 2) is True
    assert view.take_dropped() == [] and held == {5: 2}
    assert held.may_start(view, 6, 7) is True  # not held (forgotten): the view decides


def test_a_stale_task_dropped_before_its_url_is_leased_again_forgets_only_itself() -> None:
    """The other order (a review's): the renewal says lease 7 (token 1) is gone and the
    comms loop forgets it; a thread drops the stale task; then 7 is leased to us again
    (token 2). Forgetting the dropped lease by id forgot the new one (never renewed,
    its result taken for a stale one)."""
    view, held = LeaseView(60.0, Clock()), HeldLeases()
    held[7] = 1
    view.confirm([7])
    held.forget([7])
    assert held.may_start(view, 7, 1) is False
    held[7] = 2
    view.leased(7)
    held.forget_dropped(view.take_dropped())
    assert held == {7: 2}
    assert held.may_start(view, 7, 2) is True
