"""One collection from many hosts: nightly reruns with two workers, per-host and shared stores.

The scenario of issue 12: a master and two workers (real processes, each with its own
``--output`` and ``--host-id``, left running as ``--wait`` services) crawl one list of
200 images served on loopback, night after night. Counted on the server: a rerun
downloads none of the images stored on an earlier night, and every image exists in
exactly one place (one host's folder, or the shared store).
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import (
    assert_no_traceback,
    free_port,
    read_rows,
    run_cli,
    start_cli,
    wait_for_port,
)
from imageserver import Expected, ImageServer, expected_for, make_image
from test_hostile_network import tmpfs

from crawler import constants as c
from crawler.stores import IDENTITY

HOSTS = ("host-a", "host-b")
NIGHT_TIMEOUT = 90


def add_images(server: ImageServer, count: int, prefix: str) -> dict[str, Expected]:
    images = {}
    for i in range(count):
        body = make_image("PNG", 48, 32, seed=zlib.crc32(prefix.encode()) % 1000 + i)
        # Latency, so that both workers get a share of the list: the second may start a
        # second or so after the first on a loaded machine (at 20 ms an image, the first
        # once fetched all 40 before the other had connected: a CI run, 2026-12-01).
        url = server.add(f"/{prefix}/{i}.png", body, content_type="image/png", delay=0.15)
        images[url] = expected_for(body)
    return images


@dataclass
class Cluster:
    """A master run per night on one manifest, two worker services on their own folders."""

    root: Path
    server: ImageServer
    store: list[str] = field(default_factory=list)  # ["--store", WHERE] or []
    port: int = field(default_factory=free_port)
    workers: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def manifest(self) -> Path:
        return self.root / "master" / "manifest.jsonl"

    def output(self, host: str) -> Path:
        return self.root / host

    def start_workers(self) -> None:
        for host in HOSTS:
            args = [
                "--server", "127.0.0.1", "--port", str(self.port), "--wait", "--threads", "4",
                "--output", str(self.output(host)), "--host-id", host, "-q",
            ]  # fmt: skip
            self.workers.append(start_cli("worker", *args))

    def night(self, urls: list[str], *extra: str, code: int = c.EXIT_OK) -> dict[str, Any]:
        """One nightly run of the master, ending with ``code``; returns its JSON summary."""
        lst = self.root / "list.txt"
        lst.write_text("\n".join(urls) + "\n", encoding="utf-8")
        master = start_cli(
            "master", str(lst), "--bind", "127.0.0.1", "--port", str(self.port),
            "--output", str(self.root / "master"), "--no-progress",
            "--lease-seconds", "5", "--retries", "0", *self.store, *extra,
        )  # fmt: skip
        try:
            wait_for_port(master)
            if not self.workers:  # started once the master serves: both join at once
                self.start_workers()
            out, err = master.communicate(timeout=NIGHT_TIMEOUT)
        finally:
            if master.poll() is None:
                master.kill()
                master.communicate()
        assert master.returncode == code, err
        assert_no_traceback(out, err)
        return json.loads(self.manifest.with_name("manifest.summary.json").read_text())

    def report(self) -> str:
        return self.manifest.with_name("manifest.report.html").read_text(encoding="utf-8")

    def rows(self) -> dict[str, dict[str, Any]]:
        rows = read_rows(self.manifest)
        by_url = {row["url"]: row for row in rows}
        assert len(by_url) == len(rows), "a URL has two rows after a completed run"
        return by_url

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()


@pytest.fixture
def cluster(tmp_path: Path, image_server: ImageServer) -> Iterator[Cluster]:
    made = Cluster(tmp_path, image_server)
    try:
        yield made
    finally:
        made.stop()


def hits(server: ImageServer, urls: list[str]) -> dict[str, int]:
    return {url: server.hits(urlsplit(url).path) for url in urls}


def stored_files(folder: Path) -> set[str]:
    """Relative names of the images under ``folder`` (manifest and key files left out)."""
    if not folder.is_dir():
        return set()
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and p.suffix == ".png" and not p.name.startswith(".part-")
    }


def assert_all_ok(rows: dict[str, dict[str, Any]], images: dict[str, Expected]) -> None:
    for url, expected in images.items():
        row = rows[url]
        assert row["status"] == c.OK, row
        assert (row["sha256"], row["width"]) == (expected.sha256, expected.width), row


def assert_one_copy_per_host_store(cluster: Cluster, rows: dict[str, dict[str, Any]]) -> None:
    """Every ok row's image is on exactly one host: the one its ``host`` field names."""
    held = {host: stored_files(cluster.output(host)) for host in HOSTS}
    ok = [row for row in rows.values() if row["status"] == c.OK]
    for row in ok:
        assert row["store"] is None, row
        where = [host for host in HOSTS if row["path"] in held[host]]
        assert where == [row["host"]], (row["url"], where, row["host"])
    assert sum(len(names) for names in held.values()) == len(ok)  # no stray copies
    assert all(held.values()), "one host stored nothing: not a two-host test"


def test_nightly_reruns_with_per_host_stores_download_only_new_images(
    cluster: Cluster, image_server: ImageServer
) -> None:
    first = add_images(image_server, 200, "night1")

    night1 = cluster.night(list(first))
    assert night1["downloaded"] == 200
    assert hits(image_server, list(first)) == dict.fromkeys(first, 1)
    rows = cluster.rows()
    assert_all_ok(rows, first)
    assert_one_copy_per_host_store(cluster, rows)
    # The report's gallery says how many images each host holds.
    held = {host: sum(row["host"] == host for row in rows.values()) for host in HOSTS}
    assert f"host-a: {held['host-a']}" in cluster.report()
    assert f"host-b: {held['host-b']}" in cluster.report()

    second = add_images(image_server, 2, "night2")
    night2 = cluster.night([*first, *second])
    assert (night2["downloaded"], night2["kept"], night2["reused"]) == (2, 200, 0)
    assert hits(image_server, list(first)) == dict.fromkeys(first, 1)  # none again
    assert hits(image_server, list(second)) == dict.fromkeys(second, 1)
    after = cluster.rows()
    assert {url: after[url] for url in first} == {url: rows[url] for url in first}
    assert_all_ok(after, first | second)
    assert_one_copy_per_host_store(cluster, after)

    night3 = cluster.night([*first, *second])
    assert (night3["downloaded"], night3["kept"]) == (0, 202)
    assert sum(hits(image_server, [*first, *second]).values()) == 202
    assert cluster.rows() == after


def test_nightly_reruns_with_a_shared_store(
    cluster: Cluster, image_server: ImageServer, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    cluster.store = ["--store", str(shared)]
    first = add_images(image_server, 200, "night1")

    night1 = cluster.night(list(first))
    assert night1["downloaded"] == 200
    rows = cluster.rows()
    assert_all_ok(rows, first)
    assert {row["store"] for row in rows.values()} == {shared.as_uri()}
    assert {row["host"] for row in rows.values()} == set(HOSTS)  # both worked
    assert stored_files(shared) == {row["path"] for row in rows.values()}
    assert not any(stored_files(cluster.output(host)) for host in HOSTS)
    # The report's thumbnails come from the shared store (the master's folder has none).
    assert cluster.report().count('<img src="data:image/') == 24
    assert f"{shared.as_uri()}: 200" in cluster.report()
    for url, expected in first.items():
        assert hashlib.sha256((shared / rows[url]["path"]).read_bytes()).hexdigest() == (
            expected.sha256
        )

    second = add_images(image_server, 2, "night2")
    night2 = cluster.night([*first, *second])
    assert (night2["downloaded"], night2["kept"]) == (2, 200)
    assert hits(image_server, list(first)) == dict.fromkeys(first, 1)
    after = cluster.rows()
    assert_all_ok(after, first | second)
    assert stored_files(shared) == {row["path"] for row in after.values()}

    # --verify-stored=hash: every image checked in the store, by any worker, none fetched.
    night3 = cluster.night([*first, *second], "--verify-stored=hash")
    assert (night3["downloaded"], night3["reused"], night3["kept"]) == (0, 202, 0)
    assert sum(hits(image_server, [*first, *second]).values()) == 202
    # Reused where they are, by whichever host: the current images, no superseded copy.
    assert night3["superseded"] == []

    # Files gone from the store are fetched again under the same name, by any host: the
    # new file is the current image, not a copy elsewhere that makes it safe to delete.
    gone = sorted(first)[:5]
    for url in gone:
        (shared / after[url]["path"]).unlink()
    night4 = cluster.night([*first, *second], "--verify-stored")
    assert (night4["downloaded"], night4["reused"]) == (5, 197)
    assert night4["superseded"] == []
    assert {url: cluster.rows()[url]["path"] for url in gone} == {
        url: after[url]["path"] for url in gone
    }
    assert stored_files(shared) == {row["path"] for row in after.values()}


def test_verify_stored_goes_to_the_host_that_holds_the_file(
    cluster: Cluster, image_server: ImageServer
) -> None:
    images = add_images(image_server, 60, "verify")
    cluster.night(list(images))
    rows = cluster.rows()
    on_b = {url for url in images if rows[url]["host"] == "host-b"}
    assert on_b and len(on_b) < len(images)

    # Both hosts connected: each image is checked by the host that holds it.
    night2 = cluster.night(list(images), "--verify-stored")
    assert (night2["downloaded"], night2["reused"], night2["superseded"]) == (0, 60, [])
    assert hits(image_server, list(images)) == dict.fromkeys(images, 1)
    after = cluster.rows()
    assert {url: after[url]["host"] for url in images} == {url: rows[url]["host"] for url in images}
    assert_one_copy_per_host_store(cluster, after)

    # host-b is gone: after the bounded wait (--lease-seconds) host-a does its share,
    # downloading those images again; host-b's copies are listed as superseded.
    b_worker = cluster.workers.pop(HOSTS.index("host-b"))
    b_worker.send_signal(signal.SIGTERM)
    b_worker.communicate(timeout=30)
    night3 = cluster.night(list(images), "--verify-stored")
    assert (night3["downloaded"], night3["reused"]) == (len(on_b), 60 - len(on_b))
    final = cluster.rows()
    assert {row["host"] for row in final.values()} == {"host-a"}
    assert_all_ok(final, images)
    assert sorted((s["host"], s["path"]) for s in night3["superseded"]) == sorted(
        ("host-b", rows[url]["path"]) for url in on_b
    )
    held_a = stored_files(cluster.output("host-a"))
    assert {row["path"] for row in final.values()} == held_a
    assert hits(image_server, list(images)) == {url: 1 + (url in on_b) for url in images}


def test_rows_from_before_host_ids_are_checked_once_then_trusted(
    tmp_path: Path, image_server: ImageServer
) -> None:
    images = add_images(image_server, 6, "old")
    lst = tmp_path / "list.txt"
    lst.write_text("\n".join(images) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    args = [str(lst), "--bind", "127.0.0.1", "--port", "0", "--output", str(out),
            "--local-workers", "1", "--no-progress", "--no-report"]  # fmt: skip
    assert run_cli("master", *args).returncode == 0
    manifest = out / "manifest.jsonl"
    # A manifest written before issue 12: no host, no store.
    old = [
        {k: v for k, v in row.items() if k not in ("host", "store")} for row in read_rows(manifest)
    ]
    manifest.write_text("".join(json.dumps(row) + "\n" for row in old), encoding="utf-8")

    second = run_cli("master", *args)
    assert second.returncode == 0, second.stderr
    rows = read_rows(manifest)
    assert all(row["reused"] is True and isinstance(row["host"], str) for row in rows), rows
    assert hits(image_server, list(images)) == dict.fromkeys(images, 1)
    third = run_cli("master", *args)
    assert third.returncode == 0, third.stderr
    assert read_rows(manifest) == rows  # now trusted: kept as they are


def test_a_shared_store_that_is_not_there_stops_the_master(tmp_path: Path) -> None:
    lst = tmp_path / "list.txt"
    lst.write_text("http://127.0.0.1:9/a.png\n", encoding="utf-8")
    for where, says in ((tmp_path / "nowhere", "is the share mounted"), ("ftp://x/y", "s3://")):
        done = run_cli("master", str(lst), "--output", str(tmp_path / "out"), "--store", str(where))
        assert done.returncode == c.EXIT_ERROR
        assert_no_traceback(done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and says in done.stderr, done.stderr


def test_an_image_whose_host_stayed_away_keeps_its_row_when_the_download_fails(
    cluster: Cluster, image_server: ImageServer
) -> None:
    """--verify-stored with host-b gone: host-a downloads host-b's images instead, and
    the web now answers 404. That says nothing of host-b's copies: their rows stand (not
    re-checked), with their host and path. Before, the 404 replaced them, the manifest
    forgot images host-b still held, and the next run fetched them all again. One site
    opts out (X-Robots-Tag: noai) instead: that row is replaced, whichever host heard it,
    and host-b's copy listed as superseded (until 2026-12-03 it stood too)."""
    images = add_images(image_server, 40, "away")
    cluster.night(list(images))
    rows = cluster.rows()
    on_b = {url for url in images if rows[url]["host"] == "host-b"}
    assert len(on_b) > 1 and len(on_b) < len(images)
    b_worker = cluster.workers.pop(HOSTS.index("host-b"))
    b_worker.send_signal(signal.SIGTERM)
    b_worker.communicate(timeout=30)
    opted = sorted(on_b)[0]
    for url in on_b - {opted}:
        image_server.add(urlsplit(url).path, b"gone", status=404)
    body = make_image("PNG", 48, 32, seed=1)
    image_server.add(urlsplit(opted).path, body, content_type="image/png",
                     headers={"X-Robots-Tag": "noai"})  # fmt: skip
    # The one URL tried (the others reused or standing) was refused: exit 4 (alarm).
    night2 = cluster.night(list(images), "--verify-stored", code=c.EXIT_DEGRADED)
    assert night2["not_rechecked"] == len(on_b) - 1, night2
    assert (night2["downloaded"], night2["reused"]) == (0, len(images) - len(on_b))
    after = cluster.rows()
    for url in on_b - {opted}:
        assert {k: after[url][k] for k in ("status", "host", "path", "sha256")} == {
            k: rows[url][k] for k in ("status", "host", "path", "sha256")
        }
    assert (after[opted]["status"], after[opted]["path"]) == ("blocked", None)
    assert [(e["url"], e["host"], e["path"]) for e in night2["superseded"]] == [
        (opted, "host-b", rows[opted]["path"])
    ]


def test_a_worker_whose_share_is_not_mounted_stores_nothing(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """The share is a tmpfs (an NFS mount's stand-in); after the master checked it, it is
    unmounted, as on a worker host where it never came up: the mount point is an empty
    folder. The worker there stops at once (exit 1, one line); before, it stored the
    images in that folder, on its local disk, and the rows named the share. Once the
    share is back, a worker stores them there."""
    urls = [image_server.add(f"/m/{i}.png", make_image("PNG", 24, 16, seed=i),
                             content_type="image/png") for i in range(2)]  # fmt: skip
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"{u}\n" for u in urls), encoding="utf-8")
    with tmpfs(tmp_path / "share", "16m") as share:
        master = start_cli(
            "master", str(lst), "--bind", "127.0.0.1", "--port", "0", "--store", str(share),
            "--output", str(tmp_path / "out"), "--no-progress", "--idle-timeout", "60",
        )  # fmt: skip
        try:
            port = wait_for_port(master)
            assert (share / IDENTITY).is_file()
            subprocess.run(["umount", str(share)], check=True, timeout=30)
            worker = ("worker", "--server", "127.0.0.1", "--port", str(port), "--output")
            away = run_cli(*worker, str(tmp_path / "w1"), "--host-id", "away", timeout=60)
            assert away.returncode == c.EXIT_ERROR, away.stderr
            assert "is the share mounted on this host?" in away.stderr, away.stderr
            assert_no_traceback(away.stdout, away.stderr)
            assert list(share.iterdir()) == []  # nothing stored on the local disk
            mounted = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(share)], timeout=30)
            assert mounted.returncode == 0
            (share / IDENTITY).write_text("another share\n")  # mounted, but not the master's
            other = run_cli(*worker, str(tmp_path / "w2"), "--host-id", "other", timeout=60)
            assert other.returncode == c.EXIT_ERROR and "another folder's" in other.stderr
        finally:
            master.kill()
            master.communicate(timeout=30)


def test_a_copy_found_where_the_manifest_does_not_say_is_hashed(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """Per-host store, then a shared one, then back: the first night's files are still
    in --output, of the same names and sizes, but not the copies the manifest records
    (those are in the share). Found there, they are hashed before they are reused: one
    damaged since (a byte flipped) is downloaded again; until 2026-12-01 it was reused
    by name and size under the share's sha256, a damaged image `ok` (a fresh user's)."""
    bodies = [make_image("PNG", 40, 30, seed=500 + i) for i in range(3)]
    urls = [image_server.add(f"/switch/{i}.png", body, content_type="image/png")
            for i, body in enumerate(bodies)]  # fmt: skip
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{u}\n" for u in urls), encoding="utf-8")
    share = tmp_path / "share"
    share.mkdir()

    def night(*flags: str) -> list[dict[str, Any]]:
        result = run_cli("master", str(listing), "--output", str(tmp_path / "out"),
                         "--local-workers", "1", "--no-progress", *flags)  # fmt: skip
        assert result.returncode == 0, result.stderr
        return read_rows(tmp_path / "out" / "manifest.jsonl")

    first = {row["url"]: row for row in night()}
    night("--store", str(share))  # the copies the manifest records are the share's now
    damaged = tmp_path / "out" / first[urls[0]]["path"]
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    hits = image_server.hits(urlsplit(urls[0]).path)
    rows = {row["url"]: row for row in night()}
    assert image_server.hits(urlsplit(urls[0]).path) == hits + 1  # downloaded again
    for url, body in zip(urls, bodies, strict=True):
        stored = (tmp_path / "out" / rows[url]["path"]).read_bytes()
        assert rows[url]["status"] == c.OK and stored == body, rows[url]
        assert rows[url]["sha256"] == hashlib.sha256(body).hexdigest()
