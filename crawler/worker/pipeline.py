"""One URL, from task to result: reuse, or check opt-outs, download, verify and store.

``process`` never raises: every outcome, expected or not, becomes the result fields
the worker reports for that URL. It is two steps, which a worker runs on two threads:
``start`` (the network: robots.txt, the download) and, for a body that arrived,
``finish`` (verification, hash, store). A download thread hands ``finish`` to a
verifier when one is idle (``verifiers``) and goes on to its next URL, so that its
``--threads`` downloads stay in flight while the images are checked (issue 15: each
URL's check kept its thread off the network ~11 ms of its ~218 in a latency-bound run,
5 % of the downloads in flight).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from crawler import constants as c
from crawler.config import Policy
from crawler.exceptions import Blocked, TimeoutFailure, URLFailure
from crawler.layout import content_name, stored_name
from crawler.protocol import StoredCopy, Task
from crawler.stores import FolderStore, S3Store
from crawler.worker import deadline, verify
from crawler.worker.failures import host_trouble
from crawler.worker.fetch import fetch
from crawler.worker.robots import RobotsCache
from crawler.worker.storedcopy import (
    conditional_headers,
    elsewhere,
    image_fields,
    usable_stored_copy,
)
from crawler.worker.targetrobots import TargetCheck
from crawler.worker.xrobots import x_robots_opt_out

# A robots.txt fetch (or wait) that took this share of --deadline or more, and 0.1 s at
# least, is named in the URL's deadline timeout (``_name_robots_share``).
ROBOTS_SHARE = 0.1


@dataclass(frozen=True)
class Context:
    """What one download thread brings to every URL it processes."""

    session: requests.Session  # the thread's own (see deadline.make_session)
    policy: Policy  # the run's, from the master
    store: FolderStore | S3Store  # the run's store (stores.open_store)
    worker: str  # this worker's name, for the result
    robots: RobotsCache | None = None  # the run's robots.txt cache; None: not consulted
    # The thread's session for robots.txt: no retries, the master's backoff retries it.
    robots_session: requests.Session | None = None
    # Hands a verdict fetched here to the master at once: (task id, verdict).
    found: Callable[[int, dict[str, Any]], None] | None = None
    host: str | None = None  # this host's --host-id, for the result

    def __post_init__(self) -> None:
        """robots.txt is never fetched with ``session``: a fetch clears its session's
        cookies (``redirects.Trail``), and a redirect target's robots.txt is fetched in
        the middle of a download's trail. Raises ValueError."""
        if self.robots is not None and self.robots_session is None:
            raise ValueError("a Context with a RobotsCache needs its robots_session")

    @property
    def robots_http(self) -> requests.Session:
        """``robots_session``, there whenever ``robots`` is (``__post_init__``)."""
        assert self.robots_session is not None
        return self.robots_session


@dataclass(frozen=True)
class Fetched:
    """A URL whose body arrived and passed the opt-out checks: what ``finish`` needs."""

    task: Task
    row: dict[str, Any]  # its result fields so far (``start``'s)
    body: bytes
    started: float  # time.monotonic() when ``start`` began: ``elapsed_s`` counts from it


def process(task: Task, ctx: Context) -> dict[str, Any]:
    """Turn one task into its result fields (``protocol.RESULT_FIELDS``), ``start`` then
    ``finish`` on this thread; never raises.

    Without ``ctx.robots`` (or with the policy's ``ignore_robots``) robots.txt is not
    consulted.
    """
    outcome = start(task, ctx)
    return finish(outcome, ctx) if isinstance(outcome, Fetched) else outcome


def start(task: Task, ctx: Context) -> dict[str, Any] | Fetched:
    """The network half of ``process``: the result fields of a URL that ends here (a
    reused copy, a 304, any failure), else the ``Fetched`` body for ``finish``. Never
    raises."""
    started = time.monotonic()
    row: dict[str, Any] = {"id": task.id, "url": task.url, "worker": ctx.worker, "attempts": 1}
    row["token"] = task.token  # which lease this answers (fencing: see master.leases)
    row.update(host=ctx.host, store=ctx.store.spec or None)
    deadline.bound_url(ctx.policy.deadline)  # robots.txt and the URL: one deadline
    body = None
    try:
        stored, fresh = _checked_copy(task, ctx, row)
        if stored is not None and not stored.refresh:
            row.update(status=c.OK, reused=True, path=stored.path, bytes=stored.bytes, attempts=0)
            row.update(fresh)
        else:
            row["held"] = stored is not None or None  # a revalidation of a copy held here
            body = _download(task, stored or elsewhere(task, ctx.store), ctx, row)
            row.update(fresh if body is None else {})  # a 304: the copy's fields stand
    except Exception as exc:  # a bug must not kill the worker: data, as any failure is
        body = None
        _record_failure(row, exc)
    finally:
        row["_request_at"] = getattr(deadline.clock, "last_request", None)  # see run._put
        deadline.bound_url(None)
    if body is not None:
        return Fetched(task, row, body, started)
    row["elapsed_s"] = round(time.monotonic() - started, 3)
    return row


def finish(fetched: Fetched, ctx: Context) -> dict[str, Any]:
    """The checking half of ``process``: verify, hash and store ``fetched``'s body (on
    any thread: it uses ``ctx``'s store and policy only); its result fields. Never
    raises."""
    row = fetched.row
    try:
        _keep(fetched.task, fetched.body, ctx, row)
    except Exception as exc:  # a bug must not kill the worker: data, as any failure is
        _record_failure(row, exc)
    row["elapsed_s"] = round(time.monotonic() - fetched.started, 3)
    return row


def _record_failure(row: dict[str, Any], exc: Exception) -> None:
    if isinstance(exc, URLFailure):
        _failed(row, exc)
    else:
        row.update(status=c.WORKER_ERROR, error=f"{type(exc).__name__}: {exc}"[:500])
        _short_of(row, exc)


def _failed(row: dict[str, Any], failure: URLFailure) -> None:
    row.update(status=failure.status, error=str(failure))
    if failure.attempts is not None:
        row["attempts"] = failure.attempts
    if failure.http_status is not None:
        row["http_status"] = failure.http_status
    if failure.retry_after is not None:
        row["retry_after"] = failure.retry_after  # for the master's politeness
    if failure.final_url is not None:
        row["final_url"] = failure.final_url  # whose answer it was: the host it charges
    _short_of(row, failure)


def _short_of(row: dict[str, Any], exc: BaseException) -> None:
    """A failure that was this host's shortage (``failures.host_trouble``): of
    descriptors or threads, a ``disk_error``, the worker's own trouble, so it takes no
    more work and its other URLs go to other workers (``run``); of memory, a
    ``worker_error``, and it goes on. A rerun tries the URL again either way."""
    trouble = host_trouble(exc)
    if trouble is not None:
        words, stop = trouble
        status = c.DISK_ERROR if stop else c.WORKER_ERROR
        row.update(status=status, error=f"{words}: {row['error']}"[:500])
        row.pop("http_status", None)


def _download(
    task: Task, stored: StoredCopy | None, ctx: Context, row: dict[str, Any]
) -> bytes | None:
    """The request (robots.txt first); the body to keep, or None for a 304 (the row
    then says ``not_modified``). Raises the URL's FetchFailure or Blocked."""
    policy = ctx.policy
    robots_s = 0.0  # seconds the robots.txt verdict took (fetched or waited for)
    if ctx.robots is not None and not policy.ignore_robots:
        # Every request asks, a revalidation of a stored image too (RFC 9309 2.2.2: its
        # rules apply to every access, and its Crawl-delay spaces them; until 2026-12-01 a
        # refresh did not ask). A verdict fetched here goes to the master, to be shared
        # (or, if unavailable, with the result, to back off).
        asked = time.monotonic()
        report, failure = ctx.robots.check(task.url, task.robots, ctx.robots_http)
        robots_s = time.monotonic() - asked
        if report is not None and "unavailable" in report:
            row["robots"] = report  # with the result: the master puts the URL back
        elif report is not None and ctx.found is not None:
            ctx.found(task.id, report)  # shared now, not after this URL's download
        if failure is not None:
            raise failure
    headers = conditional_headers(stored.etag, stored.last_modified) if stored else None
    targets = _admit(task, ctx)
    try:
        download = fetch(ctx.session, task.url, policy, headers or None, targets)
    except TimeoutFailure as timeout:
        # robots_late: the master leases the URL again, once, with the verdict known
        robots_s += targets.spent if targets is not None else 0.0  # redirect targets'
        row["robots_late"] = _name_robots_share(timeout, robots_s, policy.deadline) or None
        raise
    row.update(
        http_status=download.http_status,
        final_url=download.final_url,
        content_type=download.content_type,
        attempts=download.attempts,
        etag=download.etag,
        last_modified=download.last_modified,
    )
    if download.not_modified and stored is not None:
        row.update(status=c.NOT_MODIFIED, path=stored.path, bytes=stored.bytes)
        return None
    row["bytes"] = len(download.body)
    if not policy.ignore_robots:
        directive = x_robots_opt_out(download.robots_tags, policy.user_agent)
        if directive is not None:
            raise Blocked(f"X-Robots-Tag opts out: {directive}")
    return download.body


def _admit(task: Task, ctx: Context) -> TargetCheck | None:
    """The robots.txt check of each redirect target of ``task``'s fetch (``targetrobots``);
    None: robots.txt not consulted."""
    if ctx.robots is None or ctx.policy.ignore_robots:
        return None
    return TargetCheck(task.url, task.robots, ctx.robots, ctx.robots_http)


def _name_robots_share(timeout: TimeoutFailure, robots_s: float, limit: float) -> bool:
    """Say in a deadline's ``timeout`` how much of it went to the origin's robots.txt,
    fetched (or waited for) before this URL's request (they share ``--deadline``:
    README, "Who decides what"); True when it did. On a host that slow, the origin's
    first URL failed every night, its error naming only the deadline (a fresh user's,
    2026-12-02): the master now leases such a URL again (``putbacks``)."""
    named = robots_s >= max(ROBOTS_SHARE * limit, 0.1)  # "0.0 s" would say nothing
    if named and str(timeout).startswith("deadline of"):
        timeout.args = (f"{timeout}, {robots_s:.1f} s of it for robots.txt first",)
        return True
    return False


def _keep(task: Task, body: bytes, ctx: Context, row: dict[str, Any]) -> None:
    """Verify ``body``, store it under its name, and say so in ``row``. Raises the
    VerifyFailure of a body that is not a whole image, StoreFailure."""
    info = verify.inspect(body, ctx.policy)
    fields = image_fields(info)
    phash = fields.pop("phash")  # an ok row's only, as the stored image's
    row.update(fields)
    digest = hashlib.sha256(body).hexdigest()
    if ctx.policy.dedup_content:  # one object per distinct content, whichever URL brought it
        relative = content_name(digest, info.extension)
    else:
        relative = stored_name(task.url, info.extension)
    ctx.store.put(relative, body)
    row.update(status=c.OK, path=relative, sha256=digest, phash=phash)


def _checked_copy(
    task: Task, ctx: Context, row: dict[str, Any]
) -> tuple[StoredCopy | None, dict[str, Any]]:
    """``usable_stored_copy``; when this host fails while checking the copy (its store
    cannot read it, a shortage of memory decoding it, anything but the copy's own
    fault), the copy is ``held``: the failure leaves the earlier row standing
    (``master.rowfields.copy_kept``), to be checked again another time. Reusing it
    unchecked instead would mark it checked, for good. Until 2026-12-01 the failure
    replaced the ok row, or the intact copy was downloaded again."""
    try:
        return usable_stored_copy(task, ctx.store, ctx.policy, ctx.host)
    except Exception:  # StoreFailure, a host's shortage, a bug: nothing said of the copy
        row["held"] = True
        raise
