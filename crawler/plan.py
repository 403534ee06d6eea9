"""Turning the input lists into the run's plan: what to fetch, and what is already decided.

Every input line that is not blank or a comment gets exactly one manifest row. The
first occurrence of a URL becomes a task; later occurrences are ``duplicate`` rows
pointing at the first; lines that are not http(s) URLs are ``invalid_url`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crawler import constants as c
from crawler.manifest import make_row
from crawler.urls import read_list


@dataclass
class Plan:
    urls: list[str] = field(default_factory=list)  # task id -> normalised URL
    sources: list[str] = field(default_factory=list)  # task id -> "file:line" of first sighting
    decided: list[dict[str, Any]] = field(default_factory=list)  # rows final before any download

    @property
    def total(self) -> int:
        return len(self.urls) + len(self.decided)


def plan_run(lists: tuple[str, ...], run_id: str) -> Plan:
    plan = Plan()
    first_seen: dict[str, int] = {}
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
            first_seen[entry.url] = len(plan.urls)
            plan.urls.append(entry.url)
            plan.sources.append(entry.source)
    return plan
