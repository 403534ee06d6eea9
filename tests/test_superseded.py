"""The run summary's ``superseded`` list is "safe to delete": it must never name a file a
current row still uses. A shared folder named another way (a symlink) holds the same
files; an image a worker reused was found where it looks, whatever host id it gave.
Until 2026-12-01 both were listed, and following the list deleted current images.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from conftest import assert_no_traceback, read_rows, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from imageserver import ImageServer, make_image

from crawler.layout import stored_name
from crawler.master.superseded import dropped_copy, moved_copy

NAME = stored_name("http://127.0.0.1/x.png", "png")  # a name the crawler gives


def night(listing: Path, out: Path, *flags: str) -> dict:
    result = run_cli(
        "master", str(listing), "--bind", "127.0.0.1", "--port", "0", "--local-workers", "1",
        "--output", str(out), "--no-progress", *flags,
    )  # fmt: skip
    manifest = out / "manifest.jsonl"
    statuses = [(r["status"], r["error"]) for r in read_rows(manifest)] if manifest.exists() else []
    assert result.returncode == 0, (result.stderr, statuses)
    assert_no_traceback(result.stdout, result.stderr)
    return json.loads((out / "manifest.summary.json").read_text(encoding="utf-8"))


def test_a_shared_folder_under_another_name_supersedes_nothing(
    tmp_path: Path, image_server: ImageServer
) -> None:
    shared, link, out = tmp_path / "shared", tmp_path / "link", tmp_path / "out"
    shared.mkdir()
    link.symlink_to(shared)
    old, new = make_image("PNG", 40, 30, seed=1), make_image("PNG", 40, 30, seed=2)
    urls = [image_server.add(f"/s/{i}.png", old, content_type="image/png") for i in range(3)]
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{url}\n" for url in urls), encoding="utf-8")
    night(listing, out, "--store", str(shared))
    assert night(listing, out, "--store", str(link))["superseded"] == []  # reused: the same
    image_server.add("/s/0.png", new, content_type="image/png")  # changed: downloaded anew
    time.sleep(0.2)
    summary = night(listing, out, "--store", str(link), "--refresh-after", "0.000001")
    assert summary["superseded"] == [], summary["superseded"]  # the same files, named twice
    for row in read_rows(out / "manifest.jsonl"):
        assert hashlib.sha256((shared / row["path"]).read_bytes()).hexdigest() == row["sha256"]


def test_a_copy_a_worker_reused_is_not_superseded() -> None:
    """A host renamed (--host-id) with the same --output: its worker reuses the files
    there, and the earlier rows' (host, path) are those very files."""
    earlier = {"status": "ok", "store": None, "host": "h1", "path": NAME, "sha256": "0"}
    reused = earlier | {"url": "http://127.0.0.1/x.png", "host": "h2", "reused": True}
    assert moved_copy(reused, earlier) is None
    downloaded = reused | {"reused": None}  # written anew by h2, in its own folder
    assert moved_copy(downloaded, earlier) == {
        "url": "http://127.0.0.1/x.png", "store": None, "host": "h1", "path": NAME, "sha256": "0",
    }  # fmt: skip
    # Reused from the host's folder where the earlier copy was in a shared folder (the
    # night after a --store night): the master cannot tell the two folders apart (one
    # folder, with --store out beside --output out): nothing listed. An S3 object and a
    # file are two copies for certain: the earlier one is listed.
    shared = earlier | {"store": "file:///srv/share", "host": "h1"}
    assert moved_copy(reused, shared) is None
    in_s3 = earlier | {"store": "s3://bucket/images", "host": "h1"}
    assert moved_copy(reused, in_s3) == {
        "url": "http://127.0.0.1/x.png", "store": "s3://bucket/images", "host": "h1",
        "path": NAME, "sha256": "0",
    }  # fmt: skip
    assert moved_copy(reused | {"store": "file:///srv/share"}, in_s3) is not None
    assert moved_copy(reused | {"store": "s3://bucket/images"}, in_s3) is None  # the same
    assert moved_copy(reused | {"store": "s3://bucket/images"}, earlier) is not None


def test_a_store_that_is_the_output_folder_is_refused(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """``--store out`` beside ``--output out``: one folder under two names in the rows,
    whose earlier copies could not be told from the current ones once a night switched
    between them (a review found a version of 2026-12-03 listing every current image as
    safe to delete). Refused, one line, before anything is written; by a symlink too."""
    out = tmp_path / "out"
    url = image_server.add_image("/b/0.png", "PNG", 40, 30, seed=40)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{url}\n", encoding="utf-8")
    night(listing, out)
    (tmp_path / "link").symlink_to(out)
    before = (out / "manifest.jsonl").read_bytes()
    for store in (out, tmp_path / "link", tmp_path / "link" / "."):
        result = run_cli("master", str(listing), "--output", str(out), "--store", str(store),
                         "--local-workers", "1", "--no-progress")  # fmt: skip
        assert result.returncode == 1, result.stderr
        assert_no_traceback(result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "is the --output folder" in lines[0], lines
    assert (out / "manifest.jsonl").read_bytes() == before


def test_an_image_its_site_opted_out_of_is_listed(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """A refresh finds the site opting out (X-Robots-Tag: noai): the row becomes
    ``blocked`` and the stored file, which no row names now, is listed as superseded
    (until 2026-12-02 it was listed nowhere: a fresh user's)."""
    out, body = tmp_path / "out", make_image("PNG", 40, 30, seed=3)
    urls = [image_server.add(f"/o/{i}.png", body if i == 0 else make_image("PNG", 40, 30, seed=9),
                             content_type="image/png") for i in range(2)]  # fmt: skip
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{url}\n" for url in urls), encoding="utf-8")
    night(listing, out)
    stored = {row["url"]: row for row in read_rows(out / "manifest.jsonl")}[urls[0]]
    image_server.add("/o/0.png", body, content_type="image/png", headers={"X-Robots-Tag": "noai"})
    time.sleep(0.2)
    summary = night(listing, out, "--refresh-after", "0.000001")
    row = {row["url"]: row for row in read_rows(out / "manifest.jsonl")}[urls[0]]
    assert (row["status"], row["path"]) == ("blocked", None)
    assert [(e["url"], e["path"], e["sha256"]) for e in summary["superseded"]] == [
        (urls[0], stored["path"], stored["sha256"])
    ]
    assert (out / stored["path"]).is_file()  # listed, not deleted: the user's to delete
    assert night(listing, out)["superseded"] == []


def test_a_failure_that_replaces_no_image_lists_nothing() -> None:
    failure = {"url": "http://127.0.0.1/x.png", "status": "blocked", "path": None}
    earlier = {"status": "ok", "store": None, "host": "h1", "path": NAME, "sha256": "0"}
    assert dropped_copy(failure, earlier)["path"] == NAME
    assert dropped_copy(failure, None) is None  # a new URL
    assert dropped_copy(failure, earlier | {"status": "http_error", "path": None}) is None
    assert dropped_copy(earlier | {"url": failure["url"]}, earlier) is None  # a success


def test_a_content_file_a_url_no_longer_listed_names_is_not_listed(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """``--dedup-content``: x and y share one file; y leaves the lists (its row is kept,
    and trusted again when it comes back) and x's site opts out. The file is not safe to
    delete (until 2026-12-02 it was listed: a review's, which deleted it, listed y again,
    and y's row stayed ok, naming no file)."""
    body, out = make_image("PNG", 40, 30, seed=3), tmp_path / "out"
    x, y, z = (image_server.add(f"/d/{name}.png", make_image("PNG", 40, 30, seed=9)
               if name == "z" else body, content_type="image/png") for name in "xyz")  # fmt: skip
    both, without_y = tmp_path / "both.txt", tmp_path / "without-y.txt"
    both.write_text(f"{x}\n{y}\n{z}\n", encoding="utf-8")
    without_y.write_text(f"{x}\n{z}\n", encoding="utf-8")
    night(both, out, "--dedup-content")
    shared = {row["url"]: row for row in read_rows(out / "manifest.jsonl")}[y]["path"]
    image_server.add("/d/x.png", body, content_type="image/png", headers={"X-Robots-Tag": "noai"})
    time.sleep(0.2)
    summary = night(without_y, out, "--dedup-content", "--refresh-after", "0.000001")
    assert shared not in [entry["path"] for entry in summary["superseded"]]
    assert (out / shared).is_file()


def test_a_failure_after_a_store_switch_leaves_the_earlier_copy_standing(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """Per-host folders one night, ``--store`` a shared folder the next: every stored URL
    is downloaded anew into the share. One that now answers 404 says nothing of its copy
    in the host's folder: its row stands (not re-checked), the copy is not "safe to
    delete". Until 2026-12-03 the 404 replaced the row and the URL's only copy was listed
    as superseded (a fresh user's). An opt-out still replaces its row; a copy downloaded
    anew into the share lists the old one."""
    out, shared = tmp_path / "out", tmp_path / "shared"
    bodies = [make_image("PNG", 40, 30, seed=20 + i) for i in range(3)]
    gone, opted, moved = (image_server.add(f"/w/{i}.png", body, content_type="image/png")
                          for i, body in enumerate(bodies))  # fmt: skip
    listing = tmp_path / "list.txt"
    listing.write_text(f"{gone}\n{opted}\n{moved}\n", encoding="utf-8")
    night(listing, out)
    first = {row["url"]: row for row in read_rows(out / "manifest.jsonl")}
    image_server.add("/w/0.png", b"gone", status=404)
    image_server.add("/w/1.png", bodies[1], content_type="image/png",
                     headers={"X-Robots-Tag": "noai"})  # fmt: skip
    shared.mkdir()
    result = run_cli(
        "master", str(listing), "--bind", "127.0.0.1", "--local-workers", "1",
        "--output", str(out), "--no-progress", "--store", str(shared),
    )  # fmt: skip
    assert_no_traceback(result.stdout, result.stderr)
    summary = json.loads((out / "manifest.summary.json").read_text(encoding="utf-8"))
    rows = {row["url"]: row for row in read_rows(out / "manifest.jsonl")}
    assert len(rows) == 3
    assert {k: rows[gone][k] for k in ("status", "store", "host", "path", "sha256")} == {
        k: first[gone][k] for k in ("status", "store", "host", "path", "sha256")
    }
    assert (out / rows[gone]["path"]).is_file()
    assert (rows[opted]["status"], rows[opted]["path"]) == ("blocked", None)
    assert (rows[moved]["status"], rows[moved]["store"]) == ("ok", shared.as_uri())
    listed = sorted((e["url"], e["path"]) for e in summary["superseded"])
    assert listed == sorted((url, first[url]["path"]) for url in (opted, moved)), listed
    assert summary["not_rechecked"] == 1, summary
    assert result.returncode == 0, result.stderr


# Paths an edited manifest may hold: none is a name the crawler gives.
FOREIGN = [
    "/etc/passwd", "../precious/family.png", f"../{NAME}", f"/{NAME}", f"{NAME[:6]}../{NAME[6:]}",
    f"ab/cd/{NAME[6:]}", NAME.upper(), f"{NAME}/", f"./{NAME}", f"x/{NAME}", NAME[:-4] + ".exe",
    NAME.replace("/", "\\"), "", ".", "..", f"{NAME}\x00.png",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.sampled_from(FOREIGN), st.text(max_size=90)))
def test_only_a_name_the_crawler_gives_is_listed(path: str) -> None:
    """A manifest is a file anyone may edit: a row's ``path`` naming a file outside the
    store's names (``/etc/passwd``, ``../photos/x.png``) is never listed as safe to
    delete, whether the URL's image moved or failed its check. Until 2026-12-03 it was
    (a hostile-input trial's)."""
    earlier = {"status": "ok", "store": None, "host": "h1", "path": path, "sha256": "0"}
    moved = {"url": "http://127.0.0.1/x.png", "status": "ok", "store": None, "host": "h2",
             "path": NAME}  # fmt: skip
    failed = {"url": "http://127.0.0.1/x.png", "status": "corrupt", "path": None}
    listed = path == NAME  # moved to another host's folder, or failed: listed
    assert (moved_copy(moved, earlier) is not None) == listed
    assert (dropped_copy(failed, earlier) is not None) == listed


def test_an_edited_path_is_not_listed_after_a_verify_stored_run(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """End to end: rows edited to name a file outside the store (relative, absolute);
    ``--verify-stored`` finds their copies gone, fetches them anew, and lists nothing."""
    out, precious = tmp_path / "out", tmp_path / "precious"
    precious.mkdir()
    (precious / "family.png").write_bytes(make_image("PNG", 20, 20, seed=5))
    urls = [image_server.add(f"/e/{i}.png", make_image("PNG", 40, 30, seed=20 + i),
                             content_type="image/png") for i in range(3)]  # fmt: skip
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{url}\n" for url in urls), encoding="utf-8")
    night(listing, out)
    manifest = out / "manifest.jsonl"
    rows = read_rows(manifest)
    rows[0]["path"] = "../../precious/family.png"
    rows[1]["path"] = str(precious / "family.png")
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    summary = night(listing, out, "--verify-stored")
    assert summary["superseded"] == [], summary["superseded"]
    assert (precious / "family.png").is_file()
    assert {row["url"]: row["status"] for row in read_rows(manifest)} == dict.fromkeys(urls, "ok")
