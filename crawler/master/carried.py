"""What an earlier run's rows carry into this run: the tasks that are final before
anything is handed out, and what they were (counted for the summary)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from crawler import constants as c
from crawler.master.earlier import CARRIED, SECOND, STATUS_MASK, STATUS_NAMES, TRUSTED, EarlierRows
from crawler.master.frontier import FINAL

_TO_STATE = bytes(FINAL if value & CARRIED else 0 for value in range(256))


@dataclass
class Carried:
    """The earlier rows that stand for this run: their statuses, and how many of them."""

    statuses: Counter[str] = field(default_factory=Counter)
    retried: int = 0  # earlier failures tried again this run
    given_up: int = 0  # of the carried: failed too many runs in a row
    kept: int = 0  # of the carried: stored images trusted without a worker
    due: int = 0  # stored images due for revalidation (``--refresh-after``)


def carry(earlier: EarlierRows) -> tuple[bytearray, Carried]:
    """The state of every task (FINAL: its last row stands, never sent to a worker:
    trusted images, and failures this run does not retry), and what was carried. Counted
    from a histogram of ``facts``: a few table look-ups for any number of tasks."""
    carried = Carried()
    for facts, count in Counter(earlier.facts).items():
        status = STATUS_NAMES.get(facts & STATUS_MASK)
        if facts & CARRIED:
            carried.statuses[str(status)] += count
            carried.kept += count if facts & TRUSTED else 0
            failed = status in c.FAILED_STATUSES
            carried.given_up += count if failed and facts & SECOND else 0
        elif status in c.FAILED_STATUSES:
            carried.retried += count
        elif status in c.SUCCESS_STATUSES and facts & SECOND:
            carried.due += count
    return earlier.facts.translate(_TO_STATE), carried


_UNANSWERED = bytes(0 if value == FINAL else 0xFF for value in range(256))
_CODE = bytes(value & STATUS_MASK for value in range(256))


def standing(earlier: EarlierRows, state: bytearray) -> Counter[str]:
    """The statuses of the earlier rows that still stand for tasks this run sent out
    (``--verify-stored``, ``--retry-failed``, ``--refresh-after``, an untrusted copy) but
    ended without an answer for: ``state`` is the frontier's, FINAL for every task with a
    row (carried or written). Tasks with no earlier row are not counted: they have no
    status yet. Whole-array operations: about 30 ms a million tasks, once."""
    size = len(state)
    mask = int.from_bytes(state.translate(_UNANSWERED))
    codes = (int.from_bytes(earlier.facts[:size]) & mask).to_bytes(size).translate(_CODE)
    found = {status: codes.count(code) for code, status in STATUS_NAMES.items()}
    return Counter({status: n for status, n in found.items() if n})
