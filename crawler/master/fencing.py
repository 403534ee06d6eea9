"""Fencing tokens: which answer may end a URL, whoever sends it, whenever it arrives.

Every lease carries a fencing token, a per-URL lease counter that only grows (a release
costs no attempt but the next lease still gets a new token), and a result carries the
token of the lease it answers. The state machine of one URL on the master:

=========  =========================================  =========  ====================
state      event                                      accepted   next state
=========  =========================================  =========  ====================
waiting    ``get`` hands it out (token t+1)           -          leased(t+1, holder)
leased(t)  ``renew`` by the holder                    -          leased(t), extended
leased(t)  ``renew`` by anyone else                   no         leased(t); "gone"
leased(t)  ``release`` by the holder                  -          waiting (no attempt)
leased(t)  the lease expires, attempts left           -          waiting
leased(t)  the lease expires, no attempt left         -          final (worker_lost)
leased(t)  result from the holder, token t            yes        final
leased(t)  success from an earlier holder (< t)       yes        final (a late success
                                                                 is still a success)
leased(t)  failure with a token other than t          no         leased(t)
waiting    success from an earlier holder             yes        final
waiting    failure (its lease expired)                no         waiting: retried
final      any result                                 no         final
=========  =========================================  =========  ====================

A failure from a stale holder never overrides a live lease or an existing success.
Every transition has a test (``tests/master/test_leases.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crawler.constants import SUCCESS_STATUSES, TIMEOUT
from crawler.urls import host_of

MAX_TOKEN = 0xFFFF  # tokens are kept in 2 bytes a task: 65,535 leases of one URL


@dataclass(frozen=True)
class Answer:
    """What the lease board needs of a result: is it a success, for which lease."""

    success: bool = True
    token: int = 0  # the fencing token the result carries (0: none)
    http_status: int | None = None
    retry_after: float | None = None  # seconds a 429/503 answer asked to wait (Retry-After)
    request_age: float | None = None  # seconds since the URL's latest request, at its put
    # A ``timeout`` with no answer at all (a body too slow for --deadline had one: the
    # link or the deadline, not the host, and was given up as "answered none in time").
    timed_out: bool = False
    host: str | None = None  # who answered (a redirect's target), None: the URL's host

    @classmethod
    def of(cls, result: dict[str, Any]) -> Answer:
        """What a decoded result (``protocol.decode_result``) says to the lease board.
        ``host`` is read only off a ``final_url`` other than the URL (a redirect's): a
        URL split for every row was intake work for nothing."""
        success, final = result["status"] in SUCCESS_STATUSES, result.get("final_url")
        return cls(success, result["token"] or 0, result["http_status"],
                   result["retry_after"], result["request_age"],
                   result["status"] == TIMEOUT and result["http_status"] is None,
                   None if final == result.get("url") else _answered_by(final))  # fmt: skip


def _answered_by(final_url: str | None) -> str | None:
    """The host of a result's last hop; None when it has none, or one that is no URL (a
    worker's word: nothing a peer sends may stop the master)."""
    try:
        return host_of(final_url) if final_url else None
    except ValueError:
        return None


ANY_SUCCESS = Answer()  # a success without a token: what a caller that does not fence says


def accepts(answer: Answer, worker: str, holder: str | None, token: int | None) -> bool:
    """May ``answer`` from ``worker`` end a URL that is not final yet; ``holder`` and
    ``token``: the live lease's (None: no live lease, the URL waits)."""
    if answer.success:
        return True  # the live holder's, or a late one: a success is a success
    return holder == worker and token == answer.token
