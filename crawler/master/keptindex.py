"""The resume index kept beside the manifest: each task's last row, without reading it.

To resume, a run finds each task's last row in the manifest: a read of the whole file,
gigabytes at 10M URLs (a row is about 700 bytes), most of a nightly rerun's time. So a
completed run keeps what that read would find, as ``NAME.resume.bin`` beside
``NAME.jsonl``: where each task's last row lies (``journal.Offsets``), its byte of facts
(``resume``: status, trusted), the per-line rows with their digests
(``linerows.EarlierLines``) and the rows of URLs no longer listed. The next run uses it
instead of the read when:

- the manifest is as that run left it (``manifest.fingerprint``: size, mtime, the first
  and last 64 KiB; ``cp -p`` and ``rsync -t`` keep them), as for the report's aggregate;
- the lists give the first N tasks as they did: the same list paths, and the CRC-32 of
  the first N records of the URL spool (URL, list, line, extras) is the same; new URLs
  may follow (so every kept row still names its line: ``restamp``);
- stored images are trusted as that run trusted them: the same ``--store``, no
  ``--refresh-after`` (it needs every row's date); ``--verify-stored`` clears the trust;
- the content index needs no filling from the manifest (it was kept too);
- that run decided by the same verification rules (``constants.RULES``): the first
  run after an upgrade reads the manifest in full, to retry the permanent failures
  of other rules and count the stored images they passed (``resumenotes.tell_resume``);
- rows read back through it (a sample, and every failure) are their tasks' rows.

Failures are judged anew from their rows, read by offset: healing depends on the run
count. Otherwise the manifest is read in full, as without the index (``resume``).
"""

from __future__ import annotations

import json
import os
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from crawler import constants as c
from crawler.atomic import TMP_SUFFIX
from crawler.config import Policy, ResumeOptions
from crawler.manifest import fingerprint, resume_path
from crawler.master.journal import Offsets
from crawler.master.linerows import EarlierLines
from crawler.master.taskstore import TaskStore

VERSION = 3  # 2: the list paths too; 3: the per-line rows' digests


@dataclass
class KeptIndex:
    """What a resume read of the manifest found, for the first ``tasks`` tasks."""

    tasks: int
    offsets: Offsets  # each task's last row, offset + 1 (0: none); may be longer
    facts: bytearray  # each task's byte of facts (``resume``), trusted as without options
    lines: EarlierLines = field(default_factory=EarlierLines)
    unlisted: array = field(default_factory=lambda: array("Q"))  # rows of no task
    store: str = ""  # the run's --store, which "trusted" was judged against
    sources: list[str] = field(default_factory=list)  # the list paths (TaskStore.sources)
    spool_crc: int = 0  # TaskStore.crc(tasks)


def save(manifest: Path, kept: KeptIndex) -> None:
    """Keep ``kept`` for the manifest as it is now (atomically). Raises OSError."""
    header = {
        "version": VERSION,
        "rules": c.RULES,  # what its trusted facts were judged by
        "fingerprint": fingerprint(manifest),
        "tasks": kept.tasks,
        "spool_crc": kept.spool_crc,
        "store": kept.store,
        "sources": kept.sources,
        "lines": len(kept.lines),
        "unlisted": len(kept.unlisted),
    }
    path = resume_path(manifest)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "wb") as fh:
            fh.write(json.dumps(header).encode() + b"\n")
            _dump(fh, kept)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _dump(fh: BinaryIO, kept: KeptIndex) -> None:
    if len(kept.offsets) != kept.tasks or len(kept.facts) != kept.tasks:
        raise ValueError("a kept index covers every task once")
    kept.offsets.dump(fh)
    fh.write(kept.facts)
    lines = kept.lines
    for values in (lines.offsets, lines.keys, lines.digests, kept.unlisted):
        fh.write(memoryview(values).cast("B"))


def discard(manifest: Path) -> None:
    """Remove the kept index (it no longer fits). Raises nothing."""
    try:
        resume_path(manifest).unlink(missing_ok=True)
    except OSError:
        return


def load(manifest: Path, store: TaskStore, options: ResumeOptions) -> KeptIndex | None:
    """The kept index if it fits this manifest, these lists and these options (see the
    module docstring), with room for every task of ``store``; else None."""
    if options.refresh_after is not None:
        return None
    try:
        with open(resume_path(manifest), "rb") as fh:
            header = json.loads(fh.readline())
            if not _fits(header, manifest, store, options):
                return None
            return _read(fh, header, len(store))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _fits(header: dict, manifest: Path, store: TaskStore, options: ResumeOptions) -> bool:
    tasks = header["tasks"]
    return (
        header["version"] == VERSION
        and header.get("rules") == (options.policy or Policy()).rules
        and header["fingerprint"] == fingerprint(manifest)
        and header["store"] == options.store
        and header["sources"] == store.sources[: len(header["sources"])]
        and type(tasks) is int
        and 0 <= tasks <= len(store)
        and header["spool_crc"] == store.crc(tasks)
    )


def _read(fh: BinaryIO, header: dict, count: int) -> KeptIndex | None:
    tasks, lines, unlisted = header["tasks"], header["lines"], header["unlisted"]
    offsets, facts = Offsets(count), bytearray(count)
    if not offsets.load(fh, tasks) or fh.readinto(memoryview(facts)[:tasks]) != tasks:
        return None
    kept = KeptIndex(tasks, offsets, facts, store=header["store"])
    for values, size in ((kept.lines.offsets, lines), (kept.lines.keys, lines),
                         (kept.lines.digests, lines), (kept.unlisted, unlisted)):  # fmt: skip
        data = fh.read(values.itemsize * size)
        if len(data) != values.itemsize * size:
            return None
        values.frombytes(data)
    return kept if not fh.read(1) else None
