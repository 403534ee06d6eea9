"""What a run says of what it resumed from: the kept index or the manifest, unreadable
lines, a run history damaged or missing, images dated after now, and images that other
verification rules passed. Warnings, so that ``-q`` (cron) keeps them."""

from __future__ import annotations

from pathlib import Path

from crawler import constants as c
from crawler.console import log
from crawler.manifest import runs_path
from crawler.master import healing
from crawler.master.plan import Plan


def tell_resume(plan: Plan, manifest: Path) -> None:
    """Log what the run resumed from, and what of it could not be trusted."""
    earlier = plan.earlier
    if earlier is None:
        return
    # The kept index spares reading the manifest.
    log.info("resumed from %s", "its kept index" if earlier.from_index else "the manifest")
    if plan.unreadable:
        log.warning("manifest %s: skipped %d unreadable line(s), the first at line %d",
                    manifest, plan.unreadable, plan.first_unreadable)  # fmt: skip
    if earlier.history_damaged:  # as a damaged content index is (``contents``)
        _mend_history(manifest, earlier.history_damaged)
    lost = earlier.history_missing and _has_rows(manifest)
    if lost:  # rows, but no history: the manifest moved without it (a fresh user's)
        log.warning("run history %s is missing (the manifest moved without it?): failures' "
                    "backoff starts again, the other failures are kept, and which rules "
                    "verified the stored images is unknown (--verify-stored=full checks "
                    "them)", runs_path(manifest))  # fmt: skip
    if earlier.future_dated:
        log.warning("%d stored image(s) dated after now (a clock that was ahead): "
                    "revalidated now (--refresh-after)", earlier.future_dated)  # fmt: skip
    # Said on a full read of the manifest: the first run after an upgrade (a kept index
    # of other rules is not used) or after one that kept none.
    if earlier.older_rules and not (earlier.from_index or lost) and plan.verify != "full":
        log.warning("%d stored images were verified by an earlier version's rules (before "
                    "%s): --verify-stored=full checks them again (reads and decodes every "
                    "stored image)", earlier.older_rules, c.RULES)  # fmt: skip


def _has_rows(manifest: Path) -> bool:
    try:
        return manifest.stat().st_size > 0
    except OSError:
        return False


def _mend_history(manifest: Path, why: str) -> None:
    """Warn of a damaged run history once: its unreadable lines are removed after the
    warning (until 2026-12-01 it came on every later run, for good)."""
    runs = runs_path(manifest)
    log.warning("run history %s was damaged (%s); of the runs it no longer names, transient "
                "failures are tried again and permanent ones kept; the unreadable lines are "
                "removed", runs, why)  # fmt: skip
    try:
        healing.drop_unreadable(runs)
    except OSError as exc:
        log.error("cannot remove the unreadable lines of %s: %s", runs, exc.strerror or exc)
