"""Fail before the night, not after it: every file a run will write, checked at start.

The manifest is opened (and locked) before serving; this checks the rest (the summary,
the run history, the CSV export, the HTML report) the same way, so that a path that
cannot be written stops the master with one line before any download, instead of after
a night of work. A check cannot promise the disk will not fill up later: those errors
become one line and exit 3 (``exceptions.JournalError``), with the manifest consistent.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from crawler.atomic import in_place
from crawler.config import MasterConfig
from crawler.exceptions import UsageError
from crawler.layout import not_a_folder
from crawler.manifest import read_runs, report_path, runs_path, summary_path
from crawler.master.journalfile import refuse_special
from crawler.stores import IDENTITY, PER_HOST, FolderStore, open_store

PROBE = 64 << 10  # bytes of an existing --manifest read to recognise it as one


def check_outputs(cfg: MasterConfig) -> None:
    """Raise UsageError naming the first output file of the run that cannot be written."""
    files: list[tuple[str, Path | None]] = [
        ("summary", summary_path(cfg.manifest)),
        ("run history", runs_path(cfg.manifest)),
        ("CSV export", cfg.csv),
        ("report", report_path(cfg.manifest) if cfg.report else None),
    ]
    for what, path in files:
        if path is not None:
            check_file(what, path)


def check_manifest(cfg: MasterConfig) -> None:
    """Refuse a ``--manifest`` that is not one, before a run rewrites it: one of the run's
    own lists, or an existing file none of whose complete lines in its first PROBE bytes
    is a manifest row, and which is not a single torn row either (resuming would skip
    its lines as unreadable, and compacting drop them). Raises UsageError (one line)."""
    path = cfg.manifest
    refuse_special(path)  # a FIFO would hang the read below
    try:
        with open(path, "rb") as fh:
            head = fh.read(PROBE)
    except OSError:  # missing (a first run), or not readable: the journal says why
        return
    for spec in cfg.lists:
        if os.path.exists(spec.path) and os.path.samefile(spec.path, path):
            raise UsageError(f"--manifest {path} is one of the URL lists: choose another path")
    lines = head.split(b"\n")
    whole = lines[:-1] if len(head) < PROBE else lines[:-2]  # the rest may be cut short
    if not head or any(_is_row(line) for line in whole):
        return
    if not whole and head.lstrip().startswith(b'{"'):
        return  # one torn row: a first write interrupted (resuming drops it)
    raise UsageError(f"--manifest {path} exists and holds no manifest rows (is it a list, "
                     "or another file?): choose another path, or move it away")  # fmt: skip


def _is_row(line: bytes) -> bool:
    try:
        row = json.loads(line.removeprefix(b"\xef\xbb\xbf"))  # a BOM an editor added
    except ValueError:
        return False
    return isinstance(row, dict) and isinstance(row.get("url"), str)


def check_store(cfg: MasterConfig) -> str:
    """A shared store (folder or S3) must take a write before any URL is handed out;
    raises UsageError (one line). Per-host stores are checked by each worker. Returns a
    shared folder's identity (``FolderStore.identity``), for the workers to match; ""
    for other stores. A shared folder must also be the one earlier runs of this
    manifest stored into (``check_same_folder``)."""
    if cfg.policy.store == PER_HOST:
        return ""
    store = open_store(cfg.policy.store, cfg.output)
    store.check()
    if not isinstance(store, FolderStore):
        return ""
    check_same_folder(cfg, store.where, store.identity(create=False))
    return store.identity(create=True)


def check_same_folder(cfg: MasterConfig, where: str, found: str) -> None:
    """Raise UsageError (one line) when the shared folder's identity (``found``; "" for
    none) is not the one the run history last recorded for this store: a mount point
    left empty by a share not mounted holds none, another share another. Until
    2026-12-03 the master made a new identity in the empty mount point, the night's
    images went to the local disk under it, hidden once the share was mounted again,
    and the next run trusted their rows (a fresh user's). With ``--verify-stored``
    (every stored image checked, the missing ones downloaded again) the folder is
    taken as it is: a share emptied or replaced on purpose."""
    recorded = last_store_id(cfg.manifest, cfg.policy.store)
    if not recorded or found == recorded or cfg.resume.verify_stored:
        return
    holds = f"holds another {IDENTITY} ({found[:8]}...)" if found else f"holds no {IDENTITY}"
    raise UsageError(
        f"store {where} {holds}, not the one earlier runs of this manifest stored their "
        f"images in ({recorded[:8]}...): is the share mounted? If it was emptied or "
        "replaced on purpose, run with --verify-stored to check every stored image"
    )


def last_store_id(manifest: Path, store: str) -> str:
    """The identity of ``store`` (a shared folder's spec) the run history beside
    ``manifest`` last recorded (each run's ``policy``); "" for none."""
    recorded = ""
    for run in read_runs(manifest):
        policy = run.get("policy")
        if isinstance(policy, dict) and policy.get("store") == store:
            found = policy.get("store_id")
            recorded = found if isinstance(found, str) and found else recorded
    return recorded


def check_file(what: str, path: Path) -> None:
    """``path`` can be created or replaced: it is no folder, its parent is (or can be made)
    a writable folder. Raises UsageError saying which."""
    if path.is_dir():
        raise UsageError(f"cannot write {what} {path}: it is a directory")
    parent = path.parent
    problem = not_a_folder(parent)
    if problem is not None:
        raise UsageError(f"cannot write {what} {path}: {problem}")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {what} {path}: {parent} is not writable")
    if in_place(path) is None:  # replaced, not written into (a device, a descriptor)
        _probe(what, path)
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"cannot write {what} {path}: permission denied")


def _probe(what: str, path: Path) -> None:
    """Create and remove a file where ``path``'s new content will be made (beside it, or
    beside the file its symlink names: ``atomic.replacing``). A folder root may
    "access" but not create in (/proc, /sys) passed ``os.access``, and the run failed to
    write the file at its end (a fresh user's, 2026-12-02: ``--csv /proc/foo.csv``, a
    night's CSV never written). Raises UsageError."""
    target = Path(os.path.realpath(path)) if os.path.islink(path) else path
    try:
        fd, probe = tempfile.mkstemp(dir=target.parent, prefix=".crawler-check-")
        os.close(fd)
    except OSError as exc:
        raise UsageError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
    try:
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"cannot write {what} {path}: a file made in {target.parent} "
                         f"cannot be removed ({exc.strerror or exc})") from None  # fmt: skip
