"""The resume index kept beside the manifest (``master.keptindex``) says what reading the
manifest would: checked after every night of the real master, on nights that add URLs,
drop one and bring it back, change per-line rows, retry failures (so compact), verify
every stored image, and edit the manifest behind the master's back.

After each night the next night's plan is made twice in-process from the same lists:
once with the kept index, once with it removed (the manifest read in full). Every task's
last-row offset and byte of facts, the per-line rows, the rows of URLs no longer listed
and what is carried must be equal; and the index must have been used where it fits.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from conftest import assert_no_traceback, run_cli
from imageserver import ImageServer

from crawler.config import ResumeOptions
from crawler.manifest import EDGE, fingerprint, make_row, resume_path
from crawler.master.carried import carry
from crawler.master.plan import plan_run
from crawler.master.resume import SAMPLE

OPTIONS = {"trust": ResumeOptions(), "verify": ResumeOptions(verify_stored="size")}


def night(listing: Path, out: Path, *flags: str) -> None:
    result = run_cli(
        "master", str(listing), "--port", "0", "--bind", "127.0.0.1", "--output", str(out),
        "--local-workers", "1", "--threads", "4", "--no-progress", "--retries", "0",
        "--no-report", *flags,
    )  # fmt: skip
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode in (0, 4), result.stderr


def resume_state(listing: Path, manifest: Path, options: ResumeOptions, tmp: Path) -> Any:
    """What planning the next night finds: (used the index?, everything it found)."""
    plan = plan_run([str(listing)], "next", lambda rows: None, manifest, options, tmp)
    try:
        earlier = plan.earlier
        assert earlier is not None
        count = len(plan.store)
        found = {
            "offsets": [earlier.offsets[t] for t in range(count)],
            "facts": bytes(earlier.facts),
            "lines": sorted(zip(earlier.lines.offsets, earlier.lines.keys, strict=True)),
            # What a per-line row is matched by: noted as journalled, or read in full.
            "digests": sorted(zip(earlier.lines.offsets, earlier.lines.digests, strict=True)),
            "decoded": plan.decoded_lines,
            "unlisted": sorted(earlier.unlisted),
            "carried": carry(earlier)[1],
            "superseded": list(plan.superseded_lines),
        }
        return earlier.from_index, found
    finally:
        plan.close()


def assert_index_reads_as_the_manifest(
    listing: Path, manifest: Path, tmp: Path, used: bool = True
) -> None:
    for name, options in OPTIONS.items():
        with_index = resume_state(listing, manifest, options, tmp)
        saved = resume_path(manifest).read_bytes() if resume_path(manifest).exists() else None
        resume_path(manifest).unlink(missing_ok=True)
        without = resume_state(listing, manifest, options, tmp)
        if saved is not None:
            resume_path(manifest).write_bytes(saved)
        assert without[0] is False
        assert with_index[0] is used, name
        assert with_index[1] == without[1], name


def test_the_kept_index_reads_as_the_manifest_night_after_night(
    tmp_path: Path, image_server: ImageServer
) -> None:
    images = [image_server.add_image(f"/i/{n}.png", "PNG", 30 + n, 20, seed=n) for n in range(5)]
    missing = image_server.add("/missing.png", b"", status=404)
    busy = image_server.add("/busy.png", b"", status=503)  # transient: retried, compacted
    listing, out, scratch = tmp_path / "list.txt", tmp_path / "out", tmp_path / "scratch"
    manifest = out / "manifest.jsonl"
    scratch.mkdir()

    def write_list(lines: list[str]) -> None:
        listing.write_text("\n".join(lines) + "\n", encoding="utf-8")

    lines = [*images[:3], missing, busy, "not a url", images[0]]
    write_list(lines)
    night(listing, out)  # a first run keeps the index too
    assert resume_path(manifest).exists()
    assert_index_reads_as_the_manifest(listing, manifest, scratch)

    write_list([*lines, images[3]])  # a new URL after the known ones
    night(listing, out)
    assert_index_reads_as_the_manifest(listing, manifest, scratch)

    dropped = [line for line in lines if line != images[2]]  # a URL no longer listed
    write_list(dropped)
    night(listing, out, "--retry-failed")  # failures superseded: compacted
    assert_index_reads_as_the_manifest(listing, manifest, scratch)
    write_list([*dropped, images[4], images[2]])  # it comes back, as a new task
    assert_index_reads_as_the_manifest(listing, manifest, scratch)

    night(listing, out, "--verify-stored")  # every stored image superseded
    assert_index_reads_as_the_manifest(listing, manifest, scratch)

    # A row appended behind the master's back: the index no longer fits, and is not used.
    with open(manifest, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(make_row(url=images[1], status="timeout")) + "\n")
    assert_index_reads_as_the_manifest(listing, manifest, scratch, used=False)

    # Lines moved: the first tasks are no longer the same lines: not used either.
    night(listing, out)
    write_list(["# moved", *dropped])
    assert_index_reads_as_the_manifest(listing, manifest, scratch, used=False)


def first_night(tmp_path: Path, urls: list[str]) -> tuple[Path, Path, Path]:
    """A list of ``urls`` crawled once: (the list, the output folder, a scratch folder)."""
    listing, out, scratch = tmp_path / "list.txt", tmp_path / "out", tmp_path / "scratch"
    scratch.mkdir()
    listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
    night(listing, out)
    return listing, out, scratch


def test_a_copied_manifest_keeps_its_index_and_a_damaged_index_is_ignored(
    tmp_path: Path, image_server: ImageServer
) -> None:
    images = [image_server.add_image(f"/c/{n}.png", "PNG", 20, 20, seed=n) for n in range(3)]
    listing, out, scratch = first_night(tmp_path, images)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)  # copies times, as cp -p does
    manifest = copy / "manifest.jsonl"
    assert_index_reads_as_the_manifest(listing, manifest, scratch)
    data = resume_path(manifest).read_bytes()
    for damaged in (data[:-1], data + b"x", b"", b"{}\n" + data, data[:40]):
        resume_path(manifest).write_bytes(damaged)
        assert_index_reads_as_the_manifest(listing, manifest, scratch, used=False)


def test_a_row_edited_in_place_is_seen_by_the_rows_read_back(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """Size and time kept, and far from the first and last 64 KiB: the fingerprint cannot
    tell; the sample of rows read back through the index does."""
    images = [image_server.add_image(f"/e/{n}.png", "PNG", 8, 8, seed=n) for n in range(300)]
    listing, out, scratch = first_night(tmp_path, images)
    manifest = out / "manifest.jsonl"
    text, stat = manifest.read_bytes(), manifest.stat()
    assert len(text) > 3 * EDGE
    step = len(images) // SAMPLE  # every fourth task's row is read back
    starts = [text.index(b'{"url":"' + url.encode() + b'"') for url in images[::step]]
    row_at = next(at for at in starts if EDGE < at < len(text) - EDGE - 4096)  # mid-file
    for old, new in ((b'"status":"ok"', b'"status":"no"'), (b".png", b".PNG")):
        at = text.index(old, row_at)
        manifest.write_bytes(text[:at] + new + text[at + len(old) :])
        os.utime(manifest, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        before = fingerprint(manifest)
        assert_index_reads_as_the_manifest(listing, manifest, scratch, used=False)
        assert fingerprint(manifest) == before
