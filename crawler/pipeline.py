"""One URL, from task to result: reuse, or check opt-outs, download, verify and store.

``process`` never raises: every outcome, expected or not, becomes the result fields
the worker reports for that URL.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any

import requests

from crawler import constants as c
from crawler import storage, verify
from crawler.config import Policy
from crawler.exceptions import Blocked, URLFailure
from crawler.fetch import conditional_headers, fetch
from crawler.protocol import Have, Task
from crawler.robots import RobotsCache, x_robots_opt_out

_STORED_NAME = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.([a-z]{3,4})")


def process(
    task: Task,
    session: requests.Session,
    policy: Policy,
    output: Path,
    worker: str,
    robots: RobotsCache | None = None,
) -> dict[str, Any]:
    """Turn one task into its result fields.

    ``robots`` is the worker run's robots.txt cache; without one (or with the policy's
    ``ignore_robots``) robots.txt is not consulted.
    """
    start = time.monotonic()
    row: dict[str, Any] = {"id": task.id, "url": task.url, "worker": worker, "attempts": 1}
    try:
        have = stored_copy(task, output)
        if have is not None and not have.refresh:
            row.update(status=c.OK, reused=True, path=have.path, bytes=have.bytes, attempts=0)
        else:
            _download(task, have, session, policy, output, row, robots)
    except URLFailure as failure:
        row.update(status=failure.status, error=str(failure))
        if failure.attempts is not None:
            row["attempts"] = failure.attempts
        if failure.http_status is not None:
            row["http_status"] = failure.http_status
    except Exception as exc:  # a bug must not kill the worker: report it as data
        row.update(status=c.WORKER_ERROR, error=f"{type(exc).__name__}: {exc}"[:500])
    row["elapsed_s"] = round(time.monotonic() - start, 3)
    return row


def _download(
    task: Task,
    have: Have | None,
    session: requests.Session,
    policy: Policy,
    output: Path,
    row: dict[str, Any],
    robots: RobotsCache | None,
) -> None:
    if have is None and robots is not None and not policy.ignore_robots:
        robots.check(task.url, session)  # a revalidation of a stored image does not ask
    headers = conditional_headers(have.etag, have.last_modified) if have else None
    download = fetch(session, task.url, policy, headers or None)
    row.update(
        http_status=download.http_status,
        final_url=download.final_url,
        content_type=download.content_type,
        attempts=download.attempts,
        etag=download.etag,
        last_modified=download.last_modified,
    )
    if download.not_modified and have is not None:
        row.update(status=c.NOT_MODIFIED, path=have.path, bytes=have.bytes)
        return
    row["bytes"] = len(download.body)
    if not policy.ignore_robots:
        directive = x_robots_opt_out(download.robots_tags, policy.user_agent)
        if directive is not None:
            raise Blocked(f"X-Robots-Tag opts out: {directive}")
    info = verify.inspect(download.body, policy)
    row.update(width=info.width, height=info.height, format=info.format)
    relative = storage.relative_path(task.url, info.extension)
    storage.store(output, relative, download.body)
    row.update(status=c.OK, path=relative, sha256=hashlib.sha256(download.body).hexdigest())


def stored_copy(task: Task, output: Path) -> Have | None:
    """The master's hint, if this host really holds that file for that URL (name and size)."""
    have = task.have
    if have is None:
        return None
    match = _STORED_NAME.fullmatch(have.path)
    if match is None or have.path != storage.relative_path(task.url, match.group(1)):
        return None  # not a name this crawler would have given this URL's image
    try:
        stat = (output / have.path).stat()
    except OSError:
        return None
    return have if stat.st_size == have.bytes else None
