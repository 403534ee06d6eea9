"""A shared ``--store`` folder must be the one earlier runs of the manifest stored into.

A share not mounted leaves its mount point: an empty folder. Until 2026-12-03 the master
took it for a new store, made a new identity in it, the night's images went to the local
disk under the mount point (hidden once the share was mounted again), and the next run
trusted their rows: images the manifest said were stored and were not (a fresh user's).
Real master and local worker processes, a real image server on loopback; the unmount is
the share's folder moved away and an empty folder put in its place.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from conftest import assert_no_traceback, read_rows, run_cli
from imageserver import ImageServer, make_image

from crawler import constants as c
from crawler.stores import IDENTITY


def night(listing: Path, out: Path, share: Path, *flags: str) -> tuple[int, str]:
    result = run_cli(
        "master", str(listing), "--bind", "127.0.0.1", "--local-workers", "1",
        "--output", str(out), "--store", str(share), "--no-progress", "--no-report", *flags,
    )  # fmt: skip
    assert_no_traceback(result.stdout, result.stderr)
    return result.returncode, result.stderr


def first_night(tmp_path: Path, server: ImageServer, prefix: str, out: Path, share: Path) -> Path:
    """Three images under ``/PREFIX/``, listed and stored into a new ``share``; the list."""
    seed = 40 + 10 * (prefix != "i")
    urls = [server.add(f"/{prefix}/{i}.png", make_image("PNG", 30, 20, seed=seed + i),
                       content_type="image/png") for i in range(3)]  # fmt: skip
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{u}\n" for u in urls), encoding="utf-8")
    share.mkdir()
    assert night(listing, out, share)[0] == c.EXIT_OK
    return listing


def test_an_empty_or_other_folder_as_the_share_is_refused(
    tmp_path: Path, image_server: ImageServer
) -> None:
    out, share, away = tmp_path / "out", tmp_path / "share", tmp_path / "share.real"
    listing = first_night(tmp_path, image_server, "i", out, share)
    token = (share / IDENTITY).read_text()
    share.rename(away)
    share.mkdir()  # the mount point, the share not mounted
    code, err = night(listing, out, share)
    assert code == c.EXIT_ERROR and err.count("\n") == 1, err
    assert f"store {share} holds no {IDENTITY}, not the one earlier runs" in err, err
    assert "is the share mounted?" in err and "--verify-stored" in err, err
    assert list(share.iterdir()) == []  # no identity made, nothing stored
    (share / IDENTITY).write_text("f" * 32)  # another share mounted there
    code, err = night(listing, out, share)
    assert code == c.EXIT_ERROR and f"holds another {IDENTITY} (ffffffff...)" in err, err
    (share / IDENTITY).unlink()
    share.rmdir()
    away.rename(share)  # mounted again: the same share
    assert night(listing, out, share)[0] == c.EXIT_OK
    assert (share / IDENTITY).read_text() == token


def test_verify_stored_takes_a_share_emptied_on_purpose(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """An emptied share (its identity gone too) is taken with --verify-stored: every
    stored image is checked there, found missing and downloaded again; then the new
    identity is the one recorded, and a plain rerun trusts it."""
    out, share = tmp_path / "out", tmp_path / "share"
    listing = first_night(tmp_path, image_server, "e", out, share)
    for path in share.iterdir():
        if path.is_dir():
            for file in path.rglob("*"):
                if file.is_file():
                    file.unlink()
        else:
            path.unlink()
    assert night(listing, out, share)[0] == c.EXIT_ERROR
    code, err = night(listing, out, share, "--verify-stored")
    assert code == c.EXIT_OK, err
    for row in read_rows(out / "manifest.jsonl"):
        assert row["status"] == "ok", row
        assert hashlib.sha256((share / row["path"]).read_bytes()).hexdigest() == row["sha256"]
    assert night(listing, out, share)[0] == c.EXIT_OK
