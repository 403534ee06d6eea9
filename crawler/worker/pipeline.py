"""One URL, from task to result: reuse, or check opt-outs, download, verify and store.

``process`` never raises: every outcome, expected or not, becomes the result fields
the worker reports for that URL.
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
from crawler.exceptions import (
    Blocked,
    TooManyPixels,
    TooSmall,
    URLFailure,
    VerifyFailure,
)
from crawler.layout import content_name, stored_extension, stored_name
from crawler.protocol import StoredCopy, Task
from crawler.stores import FolderStore, S3Store
from crawler.worker import deadline, verify
from crawler.worker.failures import host_trouble
from crawler.worker.fetch import conditional_headers, fetch
from crawler.worker.robots import RobotsCache, x_robots_opt_out


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


def process(task: Task, ctx: Context) -> dict[str, Any]:
    """Turn one task into its result fields (``protocol.RESULT_FIELDS``); never raises.

    Without ``ctx.robots`` (or with the policy's ``ignore_robots``) robots.txt is not
    consulted.
    """
    start = time.monotonic()
    row: dict[str, Any] = {"id": task.id, "url": task.url, "worker": ctx.worker, "attempts": 1}
    row["token"] = task.token  # which lease this answers (fencing: see master.leases)
    row.update(host=ctx.host, store=ctx.store.spec or None)
    deadline.bound_url(ctx.policy.deadline)  # robots.txt and the URL: one deadline
    try:
        stored, fresh = _checked_copy(task, ctx, row)
        if stored is not None and not stored.refresh:
            row.update(status=c.OK, reused=True, path=stored.path, bytes=stored.bytes, attempts=0)
            row.update(fresh)
        else:
            row["held"] = stored is not None or None  # a revalidation of a copy held here
            _download(task, stored or _elsewhere(task, ctx), ctx, row)
            row.update(fresh if row["status"] == c.NOT_MODIFIED else {})
    except URLFailure as failure:
        _failed(row, failure)
    except Exception as exc:  # a bug must not kill the worker: report it as data
        row.update(status=c.WORKER_ERROR, error=f"{type(exc).__name__}: {exc}"[:500])
        _short_of(row, exc)
    finally:
        row["_request_at"] = getattr(deadline.clock, "last_request", None)  # see run._put
        deadline.bound_url(None)
    row["elapsed_s"] = round(time.monotonic() - start, 3)
    return row


def _failed(row: dict[str, Any], failure: URLFailure) -> None:
    row.update(status=failure.status, error=str(failure))
    if failure.attempts is not None:
        row["attempts"] = failure.attempts
    if failure.http_status is not None:
        row["http_status"] = failure.http_status
    if failure.retry_after is not None:
        row["retry_after"] = failure.retry_after  # for the master's politeness
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


def _download(task: Task, stored: StoredCopy | None, ctx: Context, row: dict[str, Any]) -> None:
    policy = ctx.policy
    if ctx.robots is not None and not policy.ignore_robots:
        # Every request asks, a revalidation of a stored image too (RFC 9309 2.2.2: its
        # rules apply to every access, and its Crawl-delay spaces them; until 2026-12-01 a
        # refresh did not ask). A verdict fetched here goes to the master, to be shared
        # (or, if unavailable, with the result, to back off).
        session = ctx.robots_session or ctx.session
        report, failure = ctx.robots.check(task.url, task.robots, session)
        if report is not None and "unavailable" in report:
            row["robots"] = report  # with the result: the master puts the URL back
        elif report is not None and ctx.found is not None:
            ctx.found(task.id, report)  # shared now, not after this URL's download
        if failure is not None:
            raise failure
    headers = conditional_headers(stored.etag, stored.last_modified) if stored else None
    download = fetch(ctx.session, task.url, policy, headers or None)
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
        return
    row["bytes"] = len(download.body)
    if not policy.ignore_robots:
        directive = x_robots_opt_out(download.robots_tags, policy.user_agent)
        if directive is not None:
            raise Blocked(f"X-Robots-Tag opts out: {directive}")
    info = verify.inspect(download.body, policy)
    fields = _image_fields(info)
    phash = fields.pop("phash")  # an ok row's only, as the stored image's
    row.update(fields)
    digest = hashlib.sha256(download.body).hexdigest()
    if policy.dedup_content:  # one object per distinct content, whichever URL brought it
        relative = content_name(digest, info.extension)
    else:
        relative = stored_name(task.url, info.extension)
    ctx.store.put(relative, download.body)
    row.update(status=c.OK, path=relative, sha256=digest, phash=phash)


def _image_fields(info: verify.ImageInfo) -> dict[str, Any]:
    """The result fields verification gives an image."""
    return {"width": info.width, "height": info.height, "orientation": info.orientation,
            "format": info.format, "phash": info.phash}  # fmt: skip


NOT_USABLE: tuple[None, dict[str, Any]] = (None, {})
# What a full check of a stored copy says of it when a limit of this run refuses it
# (a raised --min-width, a lowered --max-pixels): nothing wrong with the copy, which
# stands as any trusted row does (limits are not applied to stored images again).
POLICY_REFUSALS = (TooSmall, TooManyPixels)


def _checked_copy(
    task: Task, ctx: Context, row: dict[str, Any]
) -> tuple[StoredCopy | None, dict[str, Any]]:
    """``usable_stored_copy``; when this host fails while checking the copy (its store
    cannot read it, a shortage of memory decoding it, anything but the copy's own
    fault), the copy is ``held``: the failure leaves the earlier row standing
    (``master.results._copy_kept``), to be checked again another time. Reusing it
    unchecked instead would mark it checked, for good. Until 2026-12-01 the failure
    replaced the ok row, or the intact copy was downloaded again."""
    try:
        return usable_stored_copy(task, ctx.store, ctx.policy, ctx.host)
    except Exception:  # StoreFailure, a host's shortage, a bug: nothing said of the copy
        row["held"] = True
        raise


def usable_stored_copy(
    task: Task, store: FolderStore | S3Store, policy: Policy, host: str | None = None
) -> tuple[StoredCopy | None, dict[str, Any]]:
    """The task's stored copy, if this run's store really holds that image for that URL
    (the name ``layout.stored_name`` gives it, the size the manifest recorded and, with
    ``--verify-stored=hash`` or ``full``, the sha256), and the image fields a ``full``
    check found: the bytes verified again by this version's rules (``verify.inspect``),
    its verdict then the copy's (a broken one is not usable: the URL is downloaded and
    judged anew; one only a limit refuses, ``POLICY_REFUSALS``, stands unchanged).
    A file found elsewhere than the manifest says the copy is (``host``: this worker's
    --host-id) is hashed in any case: the same name and size, it may be another copy
    (a store switched, then switched back, found an older, damaged copy, reused it
    under the recorded sha256: a fresh user's, 2026-12-01).
    Raises StoreFailure when the store fails, the VerifyFailure of a shortage of this
    host's (``failures.host_trouble``: not the copy's fault)."""
    stored = revalidation(task)
    if stored is None or store.size(stored.path) != stored.bytes:
        return NOT_USABLE
    level = stored.verify
    if level not in ("hash", "full") and not _where_recorded(stored, store, host):
        level = "hash" if stored.sha256 is not None else level
    if level not in ("hash", "full"):
        return stored, {}
    body = store.read(stored.path)
    digest = hashlib.sha256(body).hexdigest()
    if stored.sha256 is not None and digest != stored.sha256:
        return NOT_USABLE
    if level == "hash":
        return stored, {}
    try:
        info = verify.inspect(body, policy)
    except POLICY_REFUSALS:
        return stored, {}
    except VerifyFailure as exc:
        if host_trouble(exc) is not None:
            raise
        return NOT_USABLE
    if info.extension != stored_extension(stored.path):  # stored as another format
        return NOT_USABLE
    return stored, _image_fields(info) | {"sha256": digest, "verified": True}


def _where_recorded(stored: StoredCopy, store: FolderStore | S3Store, host: str | None) -> bool:
    """Is ``store`` where the manifest says the copy is: the same shared store, or this
    host's own store when the row names this host?"""
    if store.spec:
        return stored.store == store.spec
    return stored.store is None and stored.host is not None and stored.host == host


def _elsewhere(task: Task, ctx: Context) -> StoredCopy | None:
    """A copy due for revalidation on another host's own store: a 304 keeps it there,
    so any worker may ask. (A copy missing from a shared store is downloaded again, and
    one to verify in full is checked where it is: a 304 must not keep it unchecked.)"""
    stored = revalidation(task)
    if stored is None or not stored.refresh or ctx.store.spec or stored.verify == "full":
        return None
    return stored


def revalidation(task: Task) -> StoredCopy | None:
    """The task's stored copy when its name is one this crawler would have given this
    URL's image: enough to revalidate it, since a 304 needs no file (the image stays
    where it is) and any other answer is downloaded and stored anew."""
    stored = task.stored
    if stored is None:
        return None
    extension = stored_extension(stored.path)
    if extension is None:
        return None
    by_content = stored.sha256 is not None and stored.path == content_name(stored.sha256, extension)
    return stored if by_content or stored.path == stored_name(task.url, extension) else None
