"""Rows decided by another crawler's verification rules are decided again after an upgrade.

Until 2026-12-01 nothing recorded which rules decided a row, so a rerun by a crawler
whose verification had changed trusted every earlier verdict for good: an image an
older version wrongly passed stayed ``ok`` (and was exported), its missing fields
(``phash``, EXIF orientation) were never filled in, and a permanent failure an old bug
or old limit decided was kept (a fresh user's). Now every run records its rules
(``constants.RULES``, in its policy in ``NAME.runs.jsonl``); a stored image of a run of
other or unknown rules is verified again by a worker, and such a permanent failure is
retried once.

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


def test_stored_images_of_older_rules_are_verified_again(
    tmp_path: Path, image_server: ImageServer
) -> None:
    good = make_image("PNG", 40, 30, seed=1)
    crit = with_chunk(make_image("PNG", 40, 30, seed=2), b"CRIT")  # libpng refuses it
    bodies = {"good.png": good, "crit.png": make_image("PNG", 40, 30, seed=2),
              "rot.jpg": rotated_jpeg()}  # fmt: skip
    urls = [image_server.add(f"/u/{name}", body) for name, body in bodies.items()]
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{url}\n" for url in urls), encoding="utf-8")
    night(tmp_path, listing)
    first = rows(tmp_path)
    assert {row["status"] for row in first.values()} == {c.OK}
    # As the older crawler left them: crit.png's broken bytes stored as ok (and still
    # served), no phash, the rotated JPEG's raw size and no orientation.
    (tmp_path / "out" / first["crit.png"]["path"]).write_bytes(crit)
    image_server.add("/u/crit.png", crit)
    plant(tmp_path, "crit.png", bytes=len(crit), sha256=hashlib.sha256(crit).hexdigest())
    plant(tmp_path, "good.png", phash=None)
    plant(tmp_path, "rot.jpg", width=120, height=60, orientation=None, phash=None)
    as_older_version(tmp_path)
    hits = {name: image_server.hits(f"/u/{name}") for name in bodies}

    summary, stderr = night(tmp_path, listing)
    second = rows(tmp_path)
    assert "3 stored images were verified by an earlier version's rules" in stderr, stderr
    assert second["crit.png"]["status"] == c.CORRUPT, second["crit.png"]
    assert "unknown critical chunk" in second["crit.png"]["error"]
    assert image_server.hits("/u/crit.png") == hits["crit.png"] + 1  # judged anew
    for name in ("good.png", "rot.jpg"):  # good: reused with fresh fields, no request
        assert image_server.hits(f"/u/{name}") == hits[name], name
        assert second[name]["status"] == c.OK and second[name]["reused"], second[name]
        assert second[name]["phash"] == first[name]["phash"] is not None, second[name]
    assert (second["rot.jpg"]["width"], second["rot.jpg"]["height"]) == (60, 120)
    assert second["rot.jpg"]["orientation"] == 6

    summary, stderr = night(tmp_path, listing)  # checked once: trusted from now on
    assert "earlier version's rules" not in stderr
    assert summary["kept"] == 2 and summary["counts"] == {c.OK: 2, c.CORRUPT: 1}, summary
    assert {name: image_server.hits(f"/u/{name}") for name in ("good.png", "rot.jpg")} == {
        name: hits[name] for name in ("good.png", "rot.jpg")
    }


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
    assert "4 stored images were verified by an earlier version's rules" in stderr
    assert summary["reused"] == 4 and summary["kept"] == 0, summary
    assert image_server.total_hits() == before  # good copies: verified, not downloaded


@pytest.mark.parametrize("how", ["rules", "none", "damaged"])
def test_permanent_failures_of_older_rules_are_retried_once(
    tmp_path: Path, image_server: ImageServer, how: str
) -> None:
    """``rules``: decided by other rules; ``none``: by a crawler that recorded no
    policy; ``damaged``: the run history is unreadable (one warning line)."""
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
    now = rows(tmp_path)
    assert now["gone.png"]["status"] == c.OK, now["gone.png"]
    assert now["big.png"]["status"] == c.TOO_LARGE
    assert image_server.hits("/f/big.png") == hits["big"] + 1  # decided again
    if how != "damaged":  # the history that says when it failed is gone with it
        assert image_server.hits("/f/flaky.png") == hits["flaky"]  # its backoff kept

    before = image_server.hits("/f/big.png")
    night(tmp_path, listing, "--max-bytes", "500")  # once: decided by these rules now
    assert image_server.hits("/f/big.png") == before


def test_verify_stored_full_verifies_every_stored_image_again(
    tmp_path: Path, image_server: ImageServer
) -> None:
    bodies = {f"{i}.png": make_image("PNG", 30, 20, seed=i) for i in range(3)}
    urls = [image_server.add(f"/v/{name}", body) for name, body in bodies.items()]
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{url}\n" for url in urls), encoding="utf-8")
    night(tmp_path, listing)
    first = rows(tmp_path)
    broken = with_chunk(bodies["0.png"], b"CRIT")  # as stored and recorded by a bug
    (tmp_path / "out" / first["0.png"]["path"]).write_bytes(broken)
    image_server.add("/v/0.png", broken)
    plant(tmp_path, "0.png", bytes=len(broken), sha256=hashlib.sha256(broken).hexdigest())
    night(tmp_path, listing, "--verify-stored=hash")
    assert rows(tmp_path)["0.png"]["status"] == c.OK  # its hash is the manifest's
    hits = image_server.total_hits()

    summary, _ = night(tmp_path, listing, "--verify-stored=full")
    assert rows(tmp_path)["0.png"]["status"] == c.CORRUPT
    assert summary["reused"] == 2, summary
    assert image_server.total_hits() == hits + 1  # only the broken one downloaded


def test_the_version_names_the_protocol_and_the_rules() -> None:
    result = run_cli("master", "--version")
    assert result.returncode == 0, result.stderr
    assert f"rules {c.RULES}" in result.stdout and "(protocol 1." in result.stdout, result.stdout
