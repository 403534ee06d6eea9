"""Turning the input lists (and the manifest of earlier runs) into the run's plan.

Every input line that is not blank or a comment gets exactly one manifest row. The
first occurrence of a URL becomes a task; later occurrences are ``duplicate`` rows
pointing at the first; lines that are not http(s) URLs are ``invalid_url`` rows.

With an earlier manifest, the plan resumes: a URL whose last status was a success is
sent with a hint of the stored file, so the worker that gets it reuses the file when
it is still there (or revalidates it, once older than ``refresh_after``); a URL whose
last status was a failure keeps it unless ``retry_failed``; everything else is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from crawler import constants as c
from crawler.manifest import make_row
from crawler.urls import read_list


@dataclass(frozen=True)
class ResumeOptions:
    retry_failed: bool = False
    refresh_after: timedelta | None = None


@dataclass
class Plan:
    urls: list[str] = field(default_factory=list)  # task id -> normalised URL
    sources: list[str] = field(default_factory=list)  # task id -> "file:line" of first sighting
    decided: list[dict[str, Any]] = field(default_factory=list)  # this run's per-line rows
    carried: dict[int, dict[str, Any]] = field(default_factory=dict)  # final rows kept as they are
    prior: dict[int, dict[str, Any]] = field(default_factory=dict)  # success rows to reuse/refresh
    refresh: set[int] = field(default_factory=set)  # ids whose stored image is due a revalidation

    @property
    def total(self) -> int:
        return len(self.urls) + len(self.decided)

    @property
    def pending(self) -> list[int]:
        return [i for i in range(len(self.urls)) if i not in self.carried]

    def hint(self, task_id: int) -> dict[str, Any] | None:
        """What a worker needs to reuse or revalidate the stored file, if there is one."""
        row = self.prior.get(task_id)
        if row is None:
            return None
        keys = ("path", "bytes", "etag", "last_modified")
        return {k: row.get(k) for k in keys} | {"refresh": task_id in self.refresh}


def plan_run(
    lists: tuple[str, ...],
    run_id: str,
    earlier: dict[str, dict[str, Any]] | None = None,
    options: ResumeOptions = ResumeOptions(),
) -> Plan:
    plan = Plan()
    first_seen: dict[str, int] = {}
    now = datetime.now(UTC)
    for path in lists:
        for entry in read_list(path):
            if entry.url is None:
                plan.decided.append(
                    make_row(
                        url=entry.raw,
                        status=c.INVALID_URL,
                        error=entry.error,
                        source=entry.source,
                        run_id=run_id,
                    )
                )
                continue
            task_id = first_seen.get(entry.url)
            if task_id is not None:
                plan.decided.append(
                    make_row(
                        url=entry.url,
                        status=c.DUPLICATE,
                        source=entry.source,
                        duplicate_of=plan.sources[task_id],
                        run_id=run_id,
                    )
                )
                continue
            task_id = len(plan.urls)
            first_seen[entry.url] = task_id
            plan.urls.append(entry.url)
            plan.sources.append(entry.source)
            if earlier and entry.url in earlier:
                _resume(plan, task_id, earlier[entry.url], options, now)
    return plan


def _resume(
    plan: Plan, task_id: int, row: dict[str, Any], options: ResumeOptions, now: datetime
) -> None:
    status = row.get("status")
    if status in c.SUCCESS_STATUSES and isinstance(row.get("path"), str):
        plan.prior[task_id] = row
        if options.refresh_after is not None and _age(row, now) >= options.refresh_after:
            plan.refresh.add(task_id)
    elif status in c.FAILED_STATUSES and not options.retry_failed:
        plan.carried[task_id] = row


def _age(row: dict[str, Any], now: datetime) -> timedelta:
    try:
        fetched = datetime.fromisoformat(str(row.get("fetched_at") or row.get("finished_at")))
    except ValueError:
        return timedelta.max  # no usable date: treat as old
    if fetched.tzinfo is None:
        fetched = fetched.replace(tzinfo=UTC)
    return now - fetched
