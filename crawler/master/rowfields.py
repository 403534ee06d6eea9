"""A result's manifest fields: what a reuse or a revalidation keeps of the row that
stored the image, where the image is (``store``, ``host``), and whether a failure leaves
the stored copy standing. Used by ``results.ResultIntake``.
"""

from __future__ import annotations

from typing import Any

from crawler import constants as c
from crawler.manifest import FIELD_SET
from crawler.master.healing import transient

# What a reused or revalidated (304) image keeps from the row that stored it.
STORED_FIELDS = ("path", "sha256", "phash", "bytes", "width", "height", "orientation", "format")
STORED_FIELDS += ("content_type", "final_url", "etag", "last_modified", "fetched_at")
# What a copy verified again in full (``verified``) says anew, None too: until 2026-12-01
# the row's old value stayed where the check found none (an orientation it has not).
VERIFIED_FIELDS = ("width", "height", "orientation", "format", "phash", "sha256")


def opted_out(result: dict[str, Any]) -> bool:
    """Did the site opt out (X-Robots-Tag, or robots.txt now disallowing it: a permanent
    ``blocked``)? The crawler honours it: the failure replaces the row, whatever copy
    was stored. robots.txt unavailable is no opt-out."""
    return result["status"] == c.BLOCKED and not transient(result)


def copy_kept(result: dict[str, Any], stored: dict[str, Any] | None, store: str) -> bool:
    """Does a failure (no opt-out) leave the stored copy the URL's image? Yes when it
    answered the revalidation of a copy its worker holds (``held``), and when the copy
    is in another store than the run's ``store`` (``--store`` changed since: the
    workers look for it in theirs, and download the URL anew into it). A 404, a broken
    or HTML answer, a timeout says the web has no better image now, not that the
    verified copy is wrong: until 2026-12-01 the failure replaced the ok row, and the
    image, still on disk, was no longer in the manifest (nor listed anywhere); after a
    store switch until 2026-12-03, and was listed as superseded, "safe to delete", the
    URL's only copy (a fresh user's)."""
    elsewhere = stored is not None and (stored.get("store") or "") != store
    return bool(result["held"]) or elsewhere


def result_fields(
    result: dict[str, Any], stored: dict[str, Any] | None, now: str
) -> dict[str, Any]:
    """A result's manifest fields; a reuse or a 304 keeps the ``stored`` row's image fields."""
    fields = {k: v for k, v in result.items() if k in FIELD_SET}
    if stored is not None:
        kept = {k: stored.get(k) for k in STORED_FIELDS}
        fields = kept | {k: v for k, v in fields.items() if v is not None}
        if result.get("verified"):
            fields |= {k: result.get(k) for k in VERIFIED_FIELDS}
        if result["status"] == c.NOT_MODIFIED:
            fields["fetched_at"] = now
    elif result["status"] == c.OK:
        fields["fetched_at"] = now
    return fields


def locate(fields: dict[str, Any], stored: dict[str, Any] | None, store: str) -> None:
    """Where the row's image is: ``store`` (a shared store's spec, null for per-host
    stores) and ``host`` (whose store took or found it). A 304 leaves the image where the
    earlier row says it is; a row without an image has neither."""
    if fields["status"] == c.NOT_MODIFIED and stored is not None:
        fields.update(host=stored.get("host"), store=stored.get("store"))
    elif fields["status"] == c.OK:
        # The run's shared store only if the worker says it used it: a worker from before
        # --store existed writes to its own folder (its rows are then checked next time).
        fields["store"] = store if store and fields.get("store") == store else None
    else:
        fields.update(host=None, store=None)
