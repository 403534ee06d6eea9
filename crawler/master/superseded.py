"""Earlier copies a new location replaced: the run summary's ``superseded``, "safe to
delete". Every entry must be a file no current row names, so what is listed errs on the
side of leaving a file: one left over costs space, one deleted while in use an image.
"""

from __future__ import annotations

import contextlib
from typing import Any

from crawler import constants as c
from crawler.exceptions import JournalError
from crawler.layout import content_name, stored_extension
from crawler.master.contents import ContentIndex
from crawler.stores import same_file


def moved_copy(fields: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """The entry for the earlier copy (``stored``, the URL's earlier success row) that the
    new row (``fields``) replaced: an image stored anew elsewhere (another host's folder,
    another store, another name), or reused from S3 where the earlier copy was in a
    folder, or the other way round (two copies for certain). None for one rewritten
    where it was, one a worker reused from a folder where the earlier copy was in a
    folder too (its own folder under another host id, or a shared folder that is that
    very folder: ``--store out`` beside ``--output out``; a review found that listing
    those, as a version of 2026-12-03 did, named current images), and a shared folder's
    file under another name (a symlink). Until 2026-12-01 those were listed too."""
    if fields["status"] != c.OK or not _names_a_copy(stored):
        return None
    if _where(stored) == _where(fields):
        return None
    if fields.get("reused") and _in_s3(stored) == _in_s3(fields):
        return None
    if same_file((stored.get("store"), stored["path"]), (fields.get("store"), fields["path"])):
        return None
    return _entry(fields["url"], stored)


def _in_s3(row: dict[str, Any]) -> bool:
    store = row.get("store")
    return isinstance(store, str) and store.startswith("s3://")


def dropped_copy(fields: dict[str, Any], earlier: dict[str, Any] | None) -> dict[str, Any] | None:
    """The entry for the earlier copy (``earlier``, the URL's earlier row) that a failure
    row (``fields``) replaced: the site opted out (X-Robots-Tag, robots.txt disallowing
    it now), or the copy was checked and found missing or damaged; None when the new row
    is a success (``moved_copy``) or the earlier one named no file. The file is named by
    no current row of the URL; a content-named one other URLs still have is taken out at
    the end (``spare_shared``). Until 2026-12-02 it was listed nowhere: an opted-out
    image stayed on disk, found only by comparing the store with the manifest (a fresh
    user's)."""
    if fields["status"] in c.SUCCESS_STATUSES or not _names_a_copy(earlier):
        return None
    if earlier.get("status") not in c.SUCCESS_STATUSES:
        return None
    return _entry(fields["url"], earlier)


def _names_a_copy(row: dict[str, Any] | None) -> bool:
    """Does ``row`` name its image by a name the crawler gives (``layout.stored_extension``)?
    A manifest is a file anyone may have edited: until 2026-12-03 a row's ``path`` of
    ``/etc/passwd`` or ``../photos/x.png`` was listed as safe to delete once the URL's
    image moved or failed its check (a hostile-input trial's)."""
    path = row.get("path") if row is not None else None
    return isinstance(path, str) and stored_extension(path) is not None


def _entry(url: str, row: dict[str, Any]) -> dict[str, Any]:
    """The ``superseded`` entry of ``url``'s earlier ``row``'s file."""
    where = {"store": row.get("store"), "host": row.get("host"), "path": row["path"]}
    return {"url": url, **where, "sha256": row.get("sha256")}


def _where(row: dict[str, Any]) -> tuple[Any, ...]:
    """Where a row's image file is: in a shared store its name there, whichever host
    wrote it; in the hosts' own folders, the host and the name."""
    store, path = row.get("store"), row.get("path")
    return ("store", store, path) if store else ("host", row.get("host"), path)


def spare_shared(contents: ContentIndex | None, superseded: list[dict[str, Any]]) -> None:
    """Take out of ``superseded`` (which the summary calls safe to delete) each copy named
    by its content (``--dedup-content``: one file for every URL with those bytes) whose
    bytes a current row of another URL still has: deleting it would take that row's
    image. Without a content index that answers, no content-named copy is listed: the
    more robust choice, as whether one is used cannot be told. Each is listed once."""
    shared = [entry for entry in superseded if _content_named(entry)]
    if not shared:
        return
    users = None
    with contextlib.suppress(JournalError):  # the place failed: as if it had not answered
        users = contents.users({e["sha256"] for e in shared}) if contents else None

    def unused(entry: dict[str, Any]) -> bool:
        least, most = (users or {}).get(entry["sha256"], (entry["url"], entry["url"]))
        return users is not None and least == most == entry["url"]

    kept, listed = [], set()  # a file once, however many URLs it was the image of
    for entry in superseded:
        if _content_named(entry):
            where = (entry["store"], entry["host"], entry["path"])
            if not unused(entry) or where in listed:
                continue
            listed.add(where)
        kept.append(entry)
    superseded[:] = kept


def _content_named(entry: dict[str, Any]) -> bool:
    sha256, path = entry.get("sha256"), entry.get("path")
    if not isinstance(sha256, str) or not isinstance(path, str):
        return False
    return path == content_name(sha256, stored_extension(path) or "")
