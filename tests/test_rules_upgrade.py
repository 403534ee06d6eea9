"""Rows decided by another crawler's verification rules after an upgrade.

Until 2026-12-01 nothing recorded which rules decided a row, so a rerun by a crawler
whose verification had changed kept every earlier verdict for good, without a word (a
fresh user's). Now every run records its rules (``constants.RULES``, in its policy in
``NAME.runs.jsonl``): a permanent failure of a run of other or unknown rules is retried
once, and the stored images such runs passed are trusted as before but counted, in a
warning: ``--verify-stored=full`` checks them again, at the user's choice (it reads and
decodes every stored image). For a day (5cec624) every such image was sent to a worker
for that check after each upgrade, unasked: hours of decoding at a million images, and
data lost when the check failed for a reason other than the copy (a helper's review).

"An earlier version" is simulated as it would have left its files: after a real run,
the run history's policies get an older ``rules`` (or none, or the history is damaged),
the kept resume index says it was kept under those rules, and rows are planted as the
older crawler would have written them. Real master and worker processes, a real image
server on loopback whose hits are counted.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_no_traceback, read_rows, run_cli
from imageserver import ImageServer, make_image
from PIL import Image

from crawler import constants as c
from crawler import protocol
from crawler.manifest import resume_path, runs_path

OLD_RULES = "2026-11-30"


def night(root: Path, listing: Path, *flags: str) -> tuple[dict[str, Any], str]:
    """One whole run; its summary and stderr."""
    args = [str(listing), "--output", str(root / "out"), "--local-workers", "1"]
    args += ["--deadline", "5", "--retries", "0", "--host-delay", "0", "--ignore-robots"]
    result = run_cli("master", *args, *flags, timeout=90)
    assert result.returncode in (c.EXIT_OK, c.EXIT_DEGRADED), result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    summary = json.loads((root / "out" / "manifest.summary.json").read_text(encoding="utf-8"))
    return summary, result.stderr


def rows(root: Path) -> dict[str, dict[str, Any]]:
    found = read_rows(root / "out" / "manifest.jsonl")
    return {row["url"].rsplit("/", 1)[1]: row for row in found}


def with_chunk(png: bytes, kind: bytes, data: bytes = b"x") -> bytes:
    """``png`` with a chunk of ``kind`` (and a right CRC) added before IEND."""
    chunk = struct.pack(">I", len(data)) + kind + data
    chunk += struct.pack(">I", zlib.crc32(kind + data))
    return png[:-12] + chunk + png[-12:]


def rotated_jpeg() -> bytes:
    """A 120x60 JPEG whose EXIF orientation (6) shows it as 60x120."""
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (120, 60), (200, 40, 40)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def as_older_version(root: Path, how: str = "rules") -> None:
    """Make the run history, and the kept index, look as an older crawler left them:
    ``rules``: its policies name older rules; ``none``: no policy recorded;
    ``damaged``: the history is unreadable bytes."""
    runs = runs_path(root / "out" / "manifest.jsonl")
    if how == "damaged":
        runs.write_bytes(b"\x00\xff garbage \x9c\n" * 20)
    else:
        lines = [json.loads(line) for line in runs.read_text(encoding="utf-8").splitlines()]
        for line in lines:
            if how == "none":
                line.pop("policy", None)
            else:
                line["policy"]["rules"] = OLD_RULES
        runs.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    kept = resume_path(root / "out" / "manifest.jsonl")
    if kept.exists():
        header, rest = kept.read_bytes().split(b"\n", 1)
        fields = json.loads(header) | {"rules": OLD_RULES}
        kept.write_bytes(json.dumps(fields).encode() + b"\n" + rest)


def plant(root: Path, name: str, **fields: Any) -> None:
    """Rewrite ``name``'s row as an older crawler would have written it."""
    manifest = root / "out" / "manifest.jsonl"
    lines = manifest.read_text(encoding="utf-8").splitlines()
    for at, line in enumerate(lines):
        row = json.loads(line)
        if row["url"].endswith("/" + name):
            lines[at] = json.dumps(row | fields, separators=(",", ":"))
    manifest.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def listing_of(root: Path, urls: list[str]) -> Path:
    listing = root / "list.txt"
    listing.write_text("".join(f"{url}\n" for url in urls), encoding="utf-8")
    return listing


def interrupted_rerun(root: Path, names: list[str]) -> None:
    """Leave the manifest as a rerun of the current rules killed after journalling the
    rows of ``names`` would have: its start line in the history, then those rows."""
    manifest = root / "out" / "manifest.jsonl"
    started = {"run_id": "killed", "outcome": "started", "policy": {"rules": c.RULES}}
    with runs_path(manifest).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(started) + "\n")
    found = rows(root)
    with manifest.open("a", encoding="utf-8") as fh:
        for name in names:
            again = found[name] | {"run_id": "killed", "reused": True}
            fh.write(json.dumps(again, separators=(",", ":")) + "\n")


OLDER = "stored images were verified by an earlier version's rules"


def test_stored_images_of_older_rules_are_trusted_and_counted(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """No worker checks them unasked; a warning (seen under -q) counts each task whose
    last row other rules decided once: until 2026-12-01 the rows of an interrupted rerun
    were counted too, and every image was sent to a worker for a full check."""
    names = [f"{i}.png" for i in range(5)]
    urls = [image_server.add(f"/t/{n}", make_image("PNG", 40, 30, seed=i))
            for i, n in enumerate(names)]  # fmt: skip
    listing = listing_of(tmp_path, urls)
    night(tmp_path, listing)
    as_older_version(tmp_path)
    interrupted_rerun(tmp_path, names[:2])  # 2 tasks decided again by these rules
    before = image_server.total_hits()

    summary, stderr = night(tmp_path, listing, "-q")
    assert f"3 {OLDER} (before {c.RULES}): --verify-stored=full checks them" in stderr, stderr
    assert summary["kept"] == 5 and summary["reused"] == 0, summary
    assert summary["older_rules"] == 3, summary
    assert image_server.total_hits() == before  # trusted: no worker, no request
    assert {row["status"] for row in rows(tmp_path).values()} == {c.OK}

    summary, stderr = night(tmp_path, listing, "-q")  # its kept index: no full read
    assert OLDER not in stderr and summary["kept"] == 5, (stderr, summary)
    assert summary["older_rules"] is None, summary  # not counted
    assert image_server.total_hits() == before


def test_verify_stored_full_verifies_stored_images_again(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """The user's choice: the broken image is caught, missing fields filled in, a wrong
    one cleared (until 2026-12-01 a field the check found absent kept its old value)."""
    good = make_image("PNG", 40, 30, seed=1)
    crit = with_chunk(make_image("PNG", 40, 30, seed=2), b"CRIT")  # libpng refuses it
    bodies = {"good.png": good, "crit.png": make_image("PNG", 40, 30, seed=2),
              "rot.jpg": rotated_jpeg(), "flat.png": make_image("PNG", 40, 30, seed=4)}  # fmt: skip
    urls = [image_server.add(f"/u/{name}", body) for name, body in bodies.items()]
    listing = listing_of(tmp_path, urls)
    night(tmp_path, listing)
    first = rows(tmp_path)
    assert {row["status"] for row in first.values()} == {c.OK}
    # As the older crawler left them: crit.png's broken bytes stored as ok (and still
    # served), no phash, the rotated JPEG's raw size and no orientation, an orientation
    # the PNG has not.
    (tmp_path / "out" / first["crit.png"]["path"]).write_bytes(crit)
    image_server.add("/u/crit.png", crit)
    plant(tmp_path, "crit.png", bytes=len(crit), sha256=hashlib.sha256(crit).hexdigest())
    plant(tmp_path, "good.png", phash=None)
    plant(tmp_path, "rot.jpg", width=120, height=60, orientation=None, phash=None)
    plant(tmp_path, "flat.png", width=30, height=40, orientation=6)
    as_older_version(tmp_path)
    hits = {name: image_server.hits(f"/u/{name}") for name in bodies}

    summary, stderr = night(tmp_path, listing, "--verify-stored=full")
    second = rows(tmp_path)
    assert OLDER not in stderr, stderr  # asked for: no warning
    assert second["crit.png"]["status"] == c.CORRUPT, second["crit.png"]
    assert "unknown critical chunk" in second["crit.png"]["error"]
    assert image_server.hits("/u/crit.png") == hits["crit.png"] + 1  # judged anew
    for name in ("good.png", "rot.jpg", "flat.png"):  # reused with fresh fields
        assert image_server.hits(f"/u/{name}") == hits[name], name
        assert second[name]["status"] == c.OK and second[name]["reused"], second[name]
        assert second[name]["phash"] == first[name]["phash"] is not None, second[name]
    assert (second["rot.jpg"]["width"], second["rot.jpg"]["height"]) == (60, 120)
    assert second["rot.jpg"]["orientation"] == 6
    flat = second["flat.png"]
    assert (flat["width"], flat["height"], flat["orientation"]) == (40, 30, None), flat

    summary, stderr = night(tmp_path, listing)  # checked by these rules: trusted
    assert OLDER not in stderr
    assert summary["kept"] == 3 and summary["counts"] == {c.OK: 3, c.CORRUPT: 1}, summary
    assert image_server.total_hits() == sum(hits.values()) + 1


@pytest.mark.parametrize("limit", [("--min-width", "100"), ("--max-pixels", "1000")])
def test_a_stored_image_a_new_limit_refuses_stands_under_a_full_check(
    tmp_path: Path, image_server: ImageServer, limit: tuple[str, str]
) -> None:
    """A raised --min-width or a lowered --max-pixels refuses the 40x30 copies: nothing
    wrong with them, and trusted rows are not judged by new limits either, so they stand
    as they were, with no request. Until 2026-12-01 they were downloaded again and, the
    site now answering 404, the failures replaced the ok rows (the files orphaned)."""
    urls = [image_server.add(f"/p/{i}.png", make_image("PNG", 40, 30, seed=i)) for i in range(2)]
    listing = listing_of(tmp_path, urls)
    night(tmp_path, listing)
    first = rows(tmp_path)
    for i in range(2):
        image_server.add(f"/p/{i}.png", b"gone", status=404)
    before = image_server.total_hits()

    summary, _ = night(tmp_path, listing, "--verify-stored=full", *limit)
    now = rows(tmp_path)
    assert image_server.total_hits() == before
    for name, row in now.items():
        assert row["status"] == c.OK and row["path"] == first[name]["path"], row
        assert (row["width"], row["height"]) == (40, 30), row
        assert (tmp_path / "out" / row["path"]).is_file()
    assert summary["reused"] == 2, summary


@pytest.mark.parametrize("level", ["hash", "full"])
def test_a_store_that_cannot_read_a_copy_leaves_its_row_standing(
    tmp_path: Path, image_server: ImageServer, level: str
) -> None:
    """The stored file cannot be read (a folder in its place, of the recorded size: the
    store's read fails, as an S3 GET timeout or an EIO would). That says nothing of the
    image: the ok row stands, to be checked again, and nothing is downloaded. Until
    2026-12-01 the store's ``disk_error`` replaced the ok row."""
    url = image_server.add("/s/a.png", make_image("PNG", 40, 30, seed=7))
    listing = listing_of(tmp_path, [url])
    night(tmp_path, listing)
    first = rows(tmp_path)["a.png"]
    stored = tmp_path / "out" / first["path"]
    stored.unlink()
    stored.mkdir()
    plant(tmp_path, "a.png", bytes=stored.stat().st_size)
    before = image_server.total_hits()

    night(tmp_path, listing, f"--verify-stored={level}")
    now = rows(tmp_path)["a.png"]
    assert now["status"] == c.OK and now["path"] == first["path"], now
    assert now["host"] == first["host"] and now["run_id"] == first["run_id"], now
    assert image_server.total_hits() == before


def test_a_kept_index_of_other_rules_is_not_used(tmp_path: Path, image_server: ImageServer) -> None:
    urls = [image_server.add(f"/k/{i}.png", make_image("PNG", 30, 20, seed=i)) for i in range(4)]
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{url}\n" for url in urls), encoding="utf-8")
    night(tmp_path, listing)
    _, stderr = night(tmp_path, listing)
    assert "resumed from its kept index" in stderr  # the index fits when nothing changed
    as_older_version(tmp_path)  # the manifest itself untouched: only the rules differ
    before = image_server.total_hits()
    summary, stderr = night(tmp_path, listing)
    assert "resumed from the manifest" in stderr, stderr
    assert f"4 {OLDER}" in stderr, stderr  # a full read: counted
    assert summary["kept"] == 4 and summary["reused"] == 0, summary
    assert image_server.total_hits() == before  # trusted: no worker, no request


@pytest.mark.parametrize("how", ["rules", "none", "damaged"])
def test_permanent_failures_of_older_rules_are_retried_once(
    tmp_path: Path, image_server: ImageServer, how: str
) -> None:
    """``rules``: decided by other rules; ``none``: by a crawler that recorded no
    policy; ``damaged``: the run history is unreadable (one warning line), and the runs
    it no longer names say nothing either way: their permanent failures are kept (as a
    manifest moved without its history keeps them, below)."""
    image = make_image("PNG", 60, 50, seed=3)
    image_server.add("/f/big.png", image)  # too_large under --max-bytes 500
    image_server.add("/f/gone.png", b"gone", status=404)  # an old bug's 404
    image_server.add("/f/flaky.png", b"busy", status=500)  # transient
    listing = tmp_path / "list.txt"
    listing.write_text("".join(image_server.url(f"/f/{n}.png") + "\n"
                               for n in ("big", "gone", "flaky")), encoding="utf-8")  # fmt: skip
    night(tmp_path, listing, "--max-bytes", "500")
    assert {n: r["status"] for n, r in rows(tmp_path).items()} == {
        "big.png": c.TOO_LARGE, "gone.png": c.HTTP_ERROR, "flaky.png": c.HTTP_ERROR
    }  # fmt: skip
    plant(tmp_path, "flaky.png", failures=2)  # its backoff: one night skipped
    as_older_version(tmp_path, how)
    image_server.add("/f/gone.png", make_image("PNG", 4, 4))  # within --max-bytes
    hits = {n: image_server.hits(f"/f/{n}.png") for n in ("big", "gone", "flaky")}

    _, stderr = night(tmp_path, listing, "--max-bytes", "500")
    damaged = "run history" in stderr and "was damaged" in stderr
    assert damaged == (how == "damaged"), stderr
    now, retried = rows(tmp_path), how != "damaged"
    assert now["gone.png"]["status"] == (c.OK if retried else c.HTTP_ERROR), now["gone.png"]
    assert now["big.png"]["status"] == c.TOO_LARGE
    assert image_server.hits("/f/big.png") == hits["big"] + retried  # decided again
    if how != "damaged":  # the history that says when it failed is gone with it
        assert image_server.hits("/f/flaky.png") == hits["flaky"]  # its backoff kept

    before = image_server.hits("/f/big.png")
    _, stderr = night(tmp_path, listing, "--max-bytes", "500")  # once: these rules' now
    assert image_server.hits("/f/big.png") == before
    # Told once: its unreadable lines went after the warning (until 2026-12-01 it came
    # on every later run, for good).
    assert "was damaged" not in stderr, stderr


def test_the_version_names_the_protocol_and_the_rules() -> None:
    result = run_cli("master", "--version")
    assert result.returncode == 0, result.stderr
    assert f"rules {c.RULES}" in result.stdout, result.stdout
    assert f"(protocol {protocol.PROTOCOL}," in result.stdout, result.stdout


def test_a_manifest_moved_without_its_history_keeps_its_failures(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """The manifest moved (``mv``, then ``--manifest``) and its run history left behind:
    said in one warning; the permanent failures are kept (nothing says which rules
    decided them), the stored images trusted, and no "earlier version" is claimed.
    Until 2026-12-01 such a night said "7 stored images were verified by an earlier
    version's rules", retried every permanent failure and exited 4 (a fresh user's)."""
    urls = [image_server.add(f"/moved/{i}.png", make_image("PNG", 40, 30, seed=300 + i),
                             content_type="image/png") for i in range(3)]  # fmt: skip
    gone = image_server.add("/moved/gone.png", b"", status=404)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{u}\n" for u in [*urls, gone]), encoding="utf-8")
    night(tmp_path, listing)
    moved = tmp_path / "moved" / "collection.jsonl"
    moved.parent.mkdir()
    (tmp_path / "out" / "manifest.jsonl").rename(moved)
    hits = image_server.total_hits()
    for night_after in range(2):  # and the night after, whose history names one run
        resume_path(moved).unlink(missing_ok=True)  # a full read, as after an upgrade
        result = run_cli("master", str(listing), "--output", str(tmp_path / "out"),
                         "--manifest", str(moved), "--local-workers", "1", "-q",
                         timeout=90)  # fmt: skip
        assert result.returncode == c.EXIT_OK, result.stderr
        said = "is missing (the manifest moved without it?)" in result.stderr
        assert said == (night_after == 0), result.stderr
        assert "earlier version" not in result.stderr
        assert image_server.total_hits() == hits  # nothing asked for: all kept or trusted
        assert {r["url"]: r["status"] for r in read_rows(moved)}[gone] == "http_error"
