"""Failures that heal: which earlier failures a rerun tries again, and when it gives up.

A failure is *transient* when trying again later may well succeed: the network or the
host was in trouble (timeouts, connection and DNS errors, 408/425/429 and 5xx answers,
robots.txt unavailable, store errors, ``worker_lost``). It is *permanent* when the same
answer would come again (404 and the other 4xx, ``not_image``, ``corrupt``,
``too_large``, ``too_many_pixels``, ``too_small``, ``unsupported_format``, an opt-out,
``redirect_error``).

On a rerun, a URL whose last row is a failure is:

- tried again when its failure is transient and its backoff is over: after a URL's
  k-th failed run in a row it waits 2^(k-1) - 1 runs (0, 1, 3, then 7 at most), so a
  host that is down for a week is not hammered every night;
- given up (kept as it is) once it has failed ``give_up_after`` runs in a row;
- re-decided whatever its class when the policy that decided it has changed since
  (``--block-private``, the size and pixel limits, ``--min-width``/``--min-height``,
  robots): the old verdict no longer says anything;
- re-decided, when permanent, when it was decided by other verification rules than
  this run's (``constants.RULES``, recorded in the run's policy) or by a run the
  history names without a policy (a crawler from before the policy was recorded): a
  bug since fixed may have decided it. Once: the retry's row is this run's, whose rules
  are recorded. A run the history does not name (a history lost or damaged) says
  nothing either way, and its permanent failures are kept. A transient failure keeps
  its backoff;
- kept otherwise.

``--retry-failed`` tries every failure again. Rows count their failed runs in a row
(``failures``) and keep the time of the first (``first_failed_at``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler import constants as c
from crawler.atomic import write_whole
from crawler.manifest import runs_path

TRANSIENT = frozenset({c.TIMEOUT, c.CONNECTION_ERROR, c.DISK_ERROR, c.WORKER_LOST, c.WORKER_ERROR})
TRANSIENT_HTTP = frozenset({408, 425, 429})  # and every 5xx
BACKOFF_CAP = 7  # runs a URL waits at most between two tries (a week of nights)
# The policy fields a failure's verdict depends on: changed since, it is re-decided.
DECIDED_BY: dict[str, tuple[str, ...]] = {
    c.PRIVATE_ADDRESS: ("block_private",),
    c.TOO_LARGE: ("max_bytes",),
    c.TOO_MANY_PIXELS: ("max_pixels",),
    c.TOO_SMALL: ("min_width", "min_height"),
    c.BLOCKED: ("ignore_robots", "user_agent"),
    c.TIMEOUT: ("deadline", "connect_timeout", "read_timeout"),
    c.REDIRECT_ERROR: ("max_redirects",),  # "more than N redirects"
}
KEEP, RETRY, GIVE_UP = 0, 1, 2


def transient(row: dict[str, Any]) -> bool:
    """Whether the failure in ``row`` may well heal by itself (see the module docstring)."""
    status, http_status = row.get("status"), row.get("http_status")
    if status == c.HTTP_ERROR:
        code = http_status if isinstance(http_status, int) else 0
        return code >= 500 or code in TRANSIENT_HTTP
    if status == c.BLOCKED:
        return str(row.get("error") or "").startswith("robots.txt unavailable")
    return status in TRANSIENT


@dataclass(frozen=True)
class History:
    """The runs of a manifest, in order: their index and the policy each ran with."""

    index: dict[str, int]  # run_id -> position (0: the first run)
    policies: dict[str, dict[str, Any]]  # run_id -> that run's policy, where recorded
    runs: int  # how many runs there were before this one
    damaged: str = ""  # why the history could not be read in full ("": it could)
    missing: bool = False  # there is no history file (a first run, or a manifest moved)

    @classmethod
    def read(cls, manifest: Path) -> History:
        """From the manifest's run history; a missing file gives none, a damaged one what
        it can (``damaged`` says what was wrong). A run has two lines there (its start,
        then its summary) or, killed, the first alone (``summary.record_start``): it
        counts once, where it started."""
        index: dict[str, int] = {}
        policies: dict[str, dict[str, Any]] = {}
        try:
            data = runs_path(manifest).read_bytes()
        except FileNotFoundError:
            return cls(index, policies, 0, missing=True)
        except OSError as exc:
            return cls(index, policies, 0, f"unreadable: {exc.strerror or exc}")
        *lines, _torn = data.split(b"\n")  # a last line without its newline: a kill
        bad = 0
        for line in lines:
            row = _object(line)
            bad += _unreadable(line, row)
            run_id = row.get("run_id") if row is not None else None
            if isinstance(run_id, str):
                index.setdefault(run_id, len(index))
                if isinstance(row.get("policy"), dict):
                    policies[run_id] = row["policy"]
        damaged = f"{bad} unreadable line(s)" if bad else ""
        return cls(index, policies, len(index), damaged)

    def named(self, run_id: object) -> bool:
        """Does the history name the run ``run_id`` (with or without its policy)?"""
        return str(run_id) in self.index

    def rules(self, run_id: object) -> str | None:
        """The verification rules the run ``run_id`` decided by; None when unknown."""
        rules = self.policies.get(str(run_id), {}).get("rules")
        return rules if isinstance(rules, str) else None


def drop_unreadable(runs: Path) -> None:
    """Rewrite the run history ``runs`` without its unreadable lines (atomically), once
    their damage was told: the runs they named are unknown all the same, and told on
    every later run the warning said nothing new. A torn last line (a run killed while
    adding it) is no damage: it stays. Raises OSError."""
    *lines, torn = runs.read_bytes().split(b"\n")
    kept = [line + b"\n" for line in lines if not _unreadable(line, _object(line))]
    write_whole(runs, b"".join(kept) + torn)


def _unreadable(line: bytes, row: dict[str, Any] | None) -> bool:
    return row is None and bool(line.strip())


def _object(line: bytes) -> dict[str, Any] | None:
    """The JSON object on one line of the history; None for anything else."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) else None


def decide(row: dict[str, Any], history: History, policy: dict[str, Any], give_up: int) -> int:
    """KEEP, RETRY or GIVE_UP for the failed ``row`` on this run (``policy``: this run's)."""
    then = history.policies.get(str(row.get("run_id")))
    fields = DECIDED_BY.get(str(row.get("status")), ())
    if then is not None and any(then.get(f) != policy.get(f) for f in fields):
        return RETRY
    if not transient(row):
        rules = policy.get("rules")
        if rules is None:  # no policy (a library caller's): until 2026-12-01 every
            return KEEP  # permanent failure was retried, every run
        if then is None:
            # A run the history names without its policy (a version before policies
            # were recorded): decided by limits and rules it does not say, so decided
            # again. A run it does not name (no history: a manifest moved without it;
            # a damaged line) says nothing either way: kept (until 2026-12-01 retried,
            # and a moved manifest's 404s made the night "degraded": a fresh user's).
            return RETRY if history.named(row.get("run_id")) else KEEP
        return RETRY if history.rules(row.get("run_id")) != rules else KEEP
    failures = row.get("failures") if type(row.get("failures")) is int else 1
    if failures >= give_up:
        return GIVE_UP
    wait = min(2 ** (failures - 1) - 1, BACKOFF_CAP)  # runs skipped: 0, 1, 3, then 7
    position = history.index.get(str(row.get("run_id")))
    runs_since = history.runs - position if position is not None else BACKOFF_CAP + 1
    return RETRY if runs_since > wait else KEEP


def failure_fields(earlier: dict[str, Any] | None, now: str) -> dict[str, Any]:
    """``failures`` and ``first_failed_at`` of a new failure, continuing ``earlier``'s
    count when that was a failure too."""
    if earlier is None or earlier.get("status") not in c.FAILED_STATUSES:
        return {"failures": 1, "first_failed_at": now}
    count = earlier.get("failures") if type(earlier.get("failures")) is int else 1
    since = earlier.get("first_failed_at") or earlier.get("finished_at") or now
    return {"failures": count + 1, "first_failed_at": since}
