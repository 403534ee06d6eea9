"""Fault tolerance of a crawler run, with real processes, signals and a real HTTP server.

Every master and worker here is a real ``python -m crawler.master`` / ``crawler.worker``
process talking over BaseManager on loopback, and every image comes from the loopback
``ImageServer``. Processes are killed (SIGKILL), stopped (SIGTERM/SIGINT) and restarted
in the middle of a run, and the tests check what must survive that: the manifest holds
exactly one final row per input line, nothing reported ok is fetched again on a rerun,
leases that die with a worker go back to the queue (or end as ``worker_lost`` once
``--max-attempts`` is used up), handed-back tasks cost no attempt, and a ``--wait``
worker serves one master after another.

Every process is started in its own session, and the ``spawn`` fixture SIGKILLs each
one's process group and every local worker it was seen with (found by parent pid in
/proc) when a test ends, however it ends. Waits poll real observable state (server hits,
manifest rows, stderr lines) under generous timeouts; nothing asserts how fast
something happened, only that it happened.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import assert_no_traceback, cli_command, cli_env, free_port, read_rows, run_cli
from imageserver import Expected, ImageServer, expected_for, make_image, send

from crawler import constants as c

WAIT = 30.0  # seconds any single wait below may take before the test fails
PORT_LINE = re.compile(r"serving run \w+ on [^ ]*:(\d+)")
WAITING_LINE = "waiting for a master"
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"


# --- processes ---------------------------------------------------------------------------
@dataclass
class Spawned:
    """A crawler process started in its own session, with its output drained by threads."""

    proc: subprocess.Popen[str]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)
    children: set[int] = field(default_factory=set)  # local workers seen, killed at cleanup

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def wait(self, timeout: float = WAIT) -> int:
        """Wait for the exit code; a hang fails the test (the fixture then kills it)."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"pid {self.pid} still running after {timeout} s\n"
                f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
            ) from None
        for reader in self.readers:  # orphaned children may keep the pipes open: bounded
            reader.join(timeout=2)
        return code

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def local_workers(self) -> set[int]:
        """The live ``crawler.worker`` children of this (master) process and their copies
        (``--processes``: the first worker's children), remembered."""
        found = {pid for pid in children_of(self.pid) if is_worker(pid)}
        found |= {copy for pid in found for copy in children_of(pid) if is_worker(copy)}
        self.children |= found
        return found

    def kill_group(self) -> None:
        """SIGKILL the process, its group, and every child it was seen with (wherever now)."""
        self.local_workers()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        for pid in self.children:
            if is_worker(pid):  # still that process (reparented, not a reused pid)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        for reader in self.readers:
            reader.join(timeout=2)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _drain(stream: Any, sink: list[str]) -> None:
    with contextlib.suppress(ValueError, OSError):
        for line in iter(stream.readline, ""):
            sink.append(line)


Spawn = Callable[..., Spawned]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start ``python -m crawler.<module> ARGS`` in a new session; kill every group at the end."""
    started: list[Spawned] = []

    def start(module: str, *args: str) -> Spawned:
        proc = subprocess.Popen(
            cli_command(module, *args),
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: local workers included
        )
        spawned = Spawned(proc)
        started.append(spawned)
        for stream, sink in ((proc.stdout, spawned.out), (proc.stderr, spawned.err)):
            reader = threading.Thread(target=_drain, args=(stream, sink), daemon=True)
            reader.start()
            spawned.readers.append(reader)
        return spawned

    try:
        yield start
    finally:
        for spawned in started:
            spawned.kill_group()


def wait_until(
    condition: Callable[[], bool], what: str, *, alive: tuple[Spawned, ...] = ()
) -> None:
    """Poll ``condition`` until true; fail if it takes over WAIT s or a watched process exits."""
    deadline = time.monotonic() + WAIT
    while not condition():
        for spawned in alive:
            if spawned.proc.poll() is not None:
                raise AssertionError(
                    f"pid {spawned.pid} exited ({spawned.proc.returncode}) while waiting for "
                    f"{what}\nstdout:\n{spawned.stdout}\nstderr:\n{spawned.stderr}"
                )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def served_port(master: Spawned) -> int:
    """The port a master announced on stderr ("serving run ID on HOST:PORT")."""

    def port() -> int | None:
        match = PORT_LINE.search(master.stderr)
        return int(match.group(1)) if match else None

    wait_until(lambda: port() is not None, "the master to announce its port", alive=(master,))
    found = port()
    assert found is not None
    return found


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process from /proc, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    stat = proc_stat(pid)
    return stat is not None and stat[0] != "Z"


def children_of(parent: int) -> list[int]:
    """Live (non-zombie) child processes of ``parent``."""
    children = []
    for entry in Path("/proc").iterdir():
        stat = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None and stat[0] != "Z" and stat[1] == parent:
            children.append(int(entry.name))
    return children


def is_worker(pid: int) -> bool:
    """True while ``pid`` is a live ``crawler.worker`` process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return alive(pid) and b"crawler.worker" in cmdline


# --- run setup ---------------------------------------------------------------------------
@dataclass
class Run:
    """Files of one crawl: list, image folder and manifest under one temporary folder."""

    root: Path

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.jsonl"

    def write_list(self, lines: list[str], name: str = "list.txt") -> Path:
        path = self.root / name
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def master_args(self, lst: Path, *extra: str, port: int = 0) -> list[str]:
        """Master flags for a quick test run; flags in ``extra`` override (argparse: last wins)."""
        return [
            str(lst),
            "--bind", "127.0.0.1", "--port", str(port),
            "--output", str(self.images), "--manifest", str(self.manifest),
            "--no-progress", "--lease-seconds", "2", "--grace", "5",
            "--deadline", "20", "--retries", "0",
            *extra,
        ]  # fmt: skip

    def worker_args(self, port: int, threads: int = 2, *extra: str) -> list[str]:
        return [
            "--server", "127.0.0.1", "--port", str(port),
            "--output", str(self.images), "--threads", str(threads), *extra,
        ]  # fmt: skip

    def rows(self) -> list[dict[str, Any]]:
        """Every manifest line, each of which must be valid JSON."""
        return read_rows(self.manifest)

    def tolerant_rows(self) -> list[dict[str, Any]]:
        """Manifest rows, skipping a torn last line (a master killed mid-write)."""
        if not self.manifest.exists():
            return []
        rows = []
        for line in self.manifest.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                rows.append(json.loads(line))
        return rows

    def ok_urls(self) -> set[str]:
        return {row["url"] for row in self.tolerant_rows() if row.get("status") == c.OK}


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path)


def add_images(
    server: ImageServer, count: int, *, delay: float = 0.0, prefix: str = "img"
) -> dict[str, Expected]:
    """Register ``count`` distinct small PNGs (each answered after ``delay`` s)."""
    images = {}
    for i in range(count):
        body = make_image("PNG", 48, 32, seed=zlib.crc32(prefix.encode()) % 1000 + i)
        url = server.add(f"/{prefix}/{i}.png", body, content_type="image/png", delay=delay)
        images[url] = expected_for(body)
    return images


def path_of(url: str) -> str:
    return urlsplit(url).path


def hits_of(server: ImageServer, urls: Iterable[str]) -> dict[str, int]:
    return {url: server.hits(path_of(url)) for url in urls}


def wait_for_downloads(server: ImageServer, urls: list[str], count: int, worker: Spawned) -> None:
    """Wait until ``count`` of ``urls`` were requested: counted on the images, as robots.txt
    is a hit too and a freeze after "two hits" could catch the second download about to
    send its request (seen in CI: a thawed worker's URL fetched twice)."""
    started = lambda: sum(hits_of(server, urls).values()) >= count  # noqa: E731
    wait_until(started, "the first downloads", alive=(worker,))


def by_url(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows keyed by URL, failing if a URL has more than one row."""
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        assert row["url"] not in seen, f"two rows for {row['url']}"
        seen[row["url"]] = row
    return seen


def assert_complete_ok(rows: list[dict[str, Any]], images: dict[str, Expected]) -> None:
    """Exactly one ok row per image URL, with the bytes the server sent."""
    rows_by_url = by_url(rows)
    assert set(rows_by_url) == set(images)
    for url, expected in images.items():
        row = rows_by_url[url]
        assert row["status"] == c.OK, row
        assert row["sha256"] == expected.sha256, row


def file_sha256(run: Run, row: dict[str, Any]) -> str:
    return hashlib.sha256((run.images / row["path"]).read_bytes()).hexdigest()


def by_worker(rows: list[dict[str, Any]], pid: int) -> set[str]:
    """URLs whose row was reported by the worker with this pid ("host:pid")."""
    return {row["url"] for row in rows if str(row.get("worker", "")).endswith(f":{pid}")}


# --- 1. a worker SIGKILLed while it holds leases ------------------------------------------
def test_sigkilled_worker_leases_go_to_another_worker(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    images = add_images(image_server, 12, delay=1.5)
    port = free_port()
    master = spawn("master", *run.master_args(run.write_list(list(images)), port=port))
    served_port(master)

    worker_a = spawn("worker", *run.worker_args(port, 4))
    wait_until(lambda: image_server.total_hits() >= 4, "A's downloads", alive=(worker_a,))
    worker_a.signal(signal.SIGKILL)
    assert worker_a.wait() == -signal.SIGKILL
    asked_by_a = {url for url, n in hits_of(image_server, images).items() if n}

    worker_b = spawn("worker", *run.worker_args(port, 4))
    assert master.wait(60) == 0, master.stderr
    assert worker_b.wait() == 0, worker_b.stderr
    assert_no_traceback(master.stdout, master.stderr, worker_b.stdout, worker_b.stderr)

    rows = run.rows()
    assert_complete_ok(rows, images)
    assert by_worker(rows, worker_b.pid), "worker B reported nothing"
    rows_by_url = by_url(rows)
    # What A was downloading when it died was leased again, and B fetched it again.
    redone = {url for url in asked_by_a if url not in by_worker(rows, worker_a.pid)}
    assert redone, "A was killed after it had reported everything it asked for"
    for url in redone:
        assert rows_by_url[url]["leases"] >= 2, rows_by_url[url]
        assert image_server.hits(path_of(url)) >= 2
    assert max(row["leases"] for row in rows) > 1


# --- 2. a URL whose every holder dies ends as worker_lost -----------------------------------
def test_url_whose_workers_all_die_ends_worker_lost(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    release = threading.Event()

    def never_answers(handler: BaseHTTPRequestHandler) -> None:
        release.wait(30)  # until the test ends: the worker holding it is killed first
        send(handler, 503)

    hang = image_server.add_handler("/hang.png", never_answers)
    images = add_images(image_server, 2)
    lst = run.write_list([hang, *images])
    port = free_port()
    master = spawn(
        "master",
        *run.master_args(lst, "--max-attempts", "2", "--lease-seconds", "1", port=port),
    )
    served_port(master)
    try:
        for holder in (1, 2):
            worker = spawn("worker", *run.worker_args(port, 2))
            wait_until(
                lambda holder=holder: (
                    image_server.hits("/hang.png") >= holder and run.ok_urls() == set(images)
                ),
                f"holder {holder} to be stuck on the hanging URL",
                alive=(worker, master),
            )
            worker.signal(signal.SIGKILL)
            assert worker.wait() == -signal.SIGKILL
        # No worker is left: the second lease expires, and that was the last attempt.
        assert master.wait(60) == 0, master.stderr
    finally:
        release.set()
    assert_no_traceback(master.stdout, master.stderr)

    rows = by_url(run.rows())
    assert set(rows) == {hang, *images}
    lost = rows[hang]
    assert lost["status"] == c.WORKER_LOST, lost
    assert lost["leases"] == 2, lost
    assert "2 times" in lost["error"], lost
    assert image_server.hits("/hang.png") == 2
    assert all(rows[url]["status"] == c.OK for url in images)


def test_a_stored_image_whose_revalidation_was_lost_keeps_its_row(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    """A --refresh-after rerun whose worker dies holding the revalidation of a stored
    image, with no lease left (--max-attempts 1): nothing was learnt of the image, so its
    ok row stands (not re-checked). Before, a worker_lost row replaced it and the manifest
    named the stored file nowhere (a host given up for 429/503 did the same)."""
    release, night = threading.Event(), [1]
    body = make_image("PNG", 40, 30, seed=3)

    def hangs_the_second_night(handler: BaseHTTPRequestHandler) -> None:
        if night[0] == 2:
            release.wait(30)  # until the test ends: the worker holding it is killed first
        send(handler, 200, body, {"Content-Type": "image/png"})

    hang = image_server.add_handler("/hang.png", hangs_the_second_night)
    images = add_images(image_server, 2)
    lst = run.write_list([hang, *images])
    first = run_cli("master", *run.master_args(lst, "--local-workers", "1"), timeout=60)
    assert first.returncode == 0, first.stderr
    stored = by_url(run.rows())[hang]
    assert stored["status"] == c.OK, stored
    night[0], port = 2, free_port()
    refresh = ("--refresh-after", "0.000001", "--max-attempts", "1", "--lease-seconds", "1")
    master = spawn("master", *run.master_args(lst, *refresh, port=port))
    served_port(master)
    try:
        worker = spawn("worker", *run.worker_args(port, 2))
        others = [f"/img/{i}.png" for i in range(2)]  # revalidated (200) before the kill
        wait_until(
            lambda: [image_server.hits(p) for p in ("/hang.png", *others)] == [2, 2, 2],
            "the revalidation to hang", alive=(worker, master),
        )  # fmt: skip
        worker.signal(signal.SIGKILL)
        assert worker.wait() == -signal.SIGKILL
        assert master.wait(60) == 0, master.stderr
    finally:
        release.set()
    assert_no_traceback(master.stdout, master.stderr)
    row = by_url(run.rows())[hang]
    assert row == stored, row  # journalled again as it was
    assert file_sha256(run, row) == stored["sha256"]
    summary = json.loads(run.manifest.with_suffix(".summary.json").read_text())
    assert summary["not_rechecked"] >= 1 and summary["counts"].get(c.WORKER_LOST, 0) == 0


# --- 3. the master SIGKILLed mid-run, then the same command again ---------------------------
def test_sigkilled_master_rerun_reuses_what_was_reported(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    images = add_images(image_server, 30, delay=0.4)
    urls = list(images)
    lines = [*urls[:10], urls[3], "ftp://example.invalid/not-http.png", *urls[10:]]
    args = run.master_args(run.write_list(lines), "--local-workers", "2", "--threads", "2")
    master = spawn("master", *args)
    wait_until(lambda: len(run.ok_urls()) >= 4, "some ok rows", alive=(master,))
    workers = master.local_workers()
    assert len(workers) == 2
    master.signal(signal.SIGKILL)
    assert master.wait() == -signal.SIGKILL
    # Its local workers lose the connection and exit on their own (none is left behind).
    wait_until(lambda: not any(map(alive, workers)), "the orphaned local workers to exit")

    ok_before = {row["url"]: row for row in run.tolerant_rows() if row.get("status") == c.OK}
    assert 4 <= len(ok_before) < len(urls), "the kill did not land mid-run"
    hits_before = hits_of(image_server, urls)

    rerun = run_cli("master", *args, timeout=90)
    assert rerun.returncode == 0, rerun.stderr
    assert_no_traceback(rerun.stdout, rerun.stderr)

    rows = run.rows()  # compacted: every line valid, one row per input line
    assert len(rows) == len(lines)
    per_url = [row for row in rows if row["status"] not in (c.DUPLICATE, c.INVALID_URL)]
    assert_complete_ok(per_url, images)
    assert [row["status"] for row in rows].count(c.DUPLICATE) == 1
    assert [row["status"] for row in rows].count(c.INVALID_URL) == 1
    final = by_url(per_url)
    hits_after = hits_of(image_server, urls)
    for url, before in ok_before.items():
        assert hits_after[url] == hits_before[url], f"{url} was fetched again"
        assert final[url] == before  # trusted as the manifest says: kept, sent to no worker
        assert file_sha256(run, final[url]) == images[url].sha256
    for url in set(urls) - set(ok_before):
        assert hits_after[url] >= 1


# --- 4. a torn last line in the manifest ------------------------------------------------------
def test_torn_manifest_line_is_cut_on_rerun(run: Run, image_server: ImageServer) -> None:
    images = add_images(image_server, 5)
    args = run.master_args(run.write_list(list(images)), "--local-workers", "1")
    first = run_cli("master", *args, timeout=60)
    assert first.returncode == 0, first.stderr
    line = json.dumps(by_url(run.rows())[next(iter(images))], separators=(",", ":"))
    with open(run.manifest, "a", encoding="utf-8") as fh:
        fh.write(line[: len(line) // 2])  # a crash mid-write: half a row, no newline
    hits = hits_of(image_server, images)

    # --verify-stored: the stored files are checked (and reused) by a worker.
    second = run_cli("master", *args, "--verify-stored", timeout=60)
    assert second.returncode == 0, second.stderr
    assert_no_traceback(second.stdout, second.stderr)
    assert run.manifest.read_text(encoding="utf-8").endswith("\n")
    rows = run.rows()  # raises on any line that is not JSON
    assert_complete_ok(rows, images)
    assert all(row["reused"] is True for row in rows)
    assert hits_of(image_server, images) == hits


# --- 5. --retry-failed -------------------------------------------------------------------------
def test_failures_are_kept_until_retry_failed(run: Run, image_server: ImageServer) -> None:
    """A permanent failure (403) is kept on reruns until --retry-failed (transient ones are
    retried by default: tests/test_nights.py)."""
    body = make_image("PNG", 40, 30, seed=77)
    broken = {"yes": True}

    def flaky(handler: BaseHTTPRequestHandler) -> None:
        if broken["yes"]:
            send(handler, 403, b"forbidden\n", {"Content-Type": "text/plain"})
        else:
            send(handler, 200, body, {"Content-Type": "image/png"})

    url = image_server.add_handler("/flaky.png", flaky)
    steady = add_images(image_server, 1)
    args = run.master_args(run.write_list([url, *steady]), "--local-workers", "1")

    first = run_cli("master", *args, timeout=60)
    assert first.returncode == 0, first.stderr
    row = by_url(run.rows())[url]
    assert (row["status"], row["http_status"]) == (c.HTTP_ERROR, 403), row
    assert image_server.hits("/flaky.png") == 1  # --retries 0: one request

    broken["yes"] = False
    second = run_cli("master", *args, timeout=60)
    assert second.returncode == 0, second.stderr
    row = by_url(run.rows())[url]
    assert (row["status"], row["http_status"]) == (c.HTTP_ERROR, 403), row
    assert image_server.hits("/flaky.png") == 1  # the failure was kept, not retried

    third = run_cli("master", *args, "--retry-failed", timeout=60)
    assert third.returncode == 0, third.stderr
    assert_no_traceback(first.stderr, second.stderr, third.stderr)
    rows = by_url(run.rows())
    assert rows[url]["status"] == c.OK, rows[url]
    assert rows[url]["sha256"] == hashlib.sha256(body).hexdigest()
    assert image_server.hits("/flaky.png") == 2
    assert hits_of(image_server, steady) == dict.fromkeys(steady, 1)  # reused every time


# --- 6. --refresh-after -------------------------------------------------------------------------
@dataclass
class Seen:
    if_none_match: str | None
    if_modified_since: str | None
    status: int


class VersionedImage:
    """Serves one image with an ETag and Last-Modified; 304 when If-None-Match matches."""

    def __init__(self, body: bytes, etag: str) -> None:
        self.body, self.etag = body, etag
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def replace(self, body: bytes, etag: str) -> None:
        with self._lock:
            self.body, self.etag = body, etag

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            body, etag = self.body, self.etag
        match = handler.headers.get("If-None-Match")
        status = 304 if match == etag else 200
        with self._lock:  # logged before answering: the run cannot end before it is
            self.seen.append(Seen(match, handler.headers.get("If-Modified-Since"), status))
        headers = {"ETag": etag, "Last-Modified": LAST_MODIFIED}
        if status == 200:
            headers["Content-Type"] = "image/png"
        send(handler, status, body if status == 200 else b"", headers)


def test_refresh_after_revalidates_with_etag(run: Run, image_server: ImageServer) -> None:
    v1, v2 = make_image("PNG", 40, 30, seed=1), make_image("PNG", 40, 30, seed=2)
    image = VersionedImage(v1, '"v1"')
    url = image_server.add_handler("/versioned.png", image)
    args = run.master_args(run.write_list([url]), "--local-workers", "1")
    # 1e-6 days is 0.09 s: any stored row is older than that by the time the next run plans.
    refresh = ("--refresh-after", "0.000001")

    first = run_cli("master", *args, timeout=60)
    assert first.returncode == 0, first.stderr
    stored = by_url(run.rows())[url]
    assert stored["status"] == c.OK, stored
    assert (stored["etag"], stored["last_modified"]) == ('"v1"', LAST_MODIFIED)
    assert stored["sha256"] == hashlib.sha256(v1).hexdigest()

    second = run_cli("master", *args, *refresh, timeout=60)
    assert second.returncode == 0, second.stderr
    row = by_url(run.rows())[url]
    assert (row["status"], row["http_status"]) == (c.NOT_MODIFIED, 304), row
    assert (row["path"], row["sha256"], row["bytes"]) == (
        stored["path"],
        stored["sha256"],
        stored["bytes"],
    )
    assert image.seen[-1] == Seen('"v1"', LAST_MODIFIED, 304)
    assert [s.status for s in image.seen] == [200, 304]  # the body was sent once only
    assert file_sha256(run, row) == stored["sha256"]

    image.replace(v2, '"v2"')  # the image changed on the server
    third = run_cli("master", *args, *refresh, timeout=60)
    assert third.returncode == 0, third.stderr
    assert_no_traceback(first.stderr, second.stderr, third.stderr)
    row = by_url(run.rows())[url]
    assert (row["status"], row["http_status"]) == (c.OK, 200), row
    assert row["sha256"] == hashlib.sha256(v2).hexdigest()
    assert row["etag"] == '"v2"'
    assert image.seen[-1] == Seen('"v1"', LAST_MODIFIED, 200)
    assert file_sha256(run, row) == row["sha256"]


# --- 7. retries of transient failures -----------------------------------------------------
def test_transient_503_is_retried_after_retry_after_and_404_is_not(
    run: Run, image_server: ImageServer
) -> None:
    body = make_image("PNG", 40, 30, seed=9)
    times: list[float] = []

    def busy_twice(handler: BaseHTTPRequestHandler) -> None:
        times.append(time.monotonic())
        if len(times) <= 2:
            send(handler, 503, b"busy\n", {"Retry-After": "1", "Content-Type": "text/plain"})
        else:
            send(handler, 200, body, {"Content-Type": "image/png"})

    plain: list[float] = []

    def busy_once(handler: BaseHTTPRequestHandler) -> None:
        plain.append(time.monotonic())
        status, text = (429, b"slow down\n") if len(plain) == 1 else (200, body)
        send(handler, status, text, {"Content-Type": "image/png"})

    busy = image_server.add_handler("/busy.png", busy_twice)
    once = image_server.add_handler("/once.png", busy_once)
    missing = image_server.url("/missing.png")  # no route: the server answers 404
    args = run.master_args(
        run.write_list([busy, once, missing]), "--local-workers", "1", "--retries", "2"
    )
    done = run_cli("master", *args, timeout=60)
    assert done.returncode == 0, done.stderr
    assert_no_traceback(done.stdout, done.stderr)

    rows = by_url(run.rows())
    assert rows[busy]["status"] == c.OK, rows[busy]
    assert rows[busy]["attempts"] == 3, rows[busy]
    assert rows[busy]["sha256"] == hashlib.sha256(body).hexdigest()
    assert len(times) == 3
    # Retry-After: 1 was honoured (a lower bound, so it cannot flake): the master held
    # the host that long before leasing the URL again (since 2026-12-02; the worker's
    # thread before).
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(times))
    # Without Retry-After the host's backoff holds it too (1 s; urllib3 asked again at
    # once, milliseconds after a 429, until 2026-12-01).
    assert rows[once]["status"] == c.OK and len(plain) == 2 and plain[1] - plain[0] >= 0.45
    assert (rows[missing]["status"], rows[missing]["http_status"]) == (c.HTTP_ERROR, 404)
    assert rows[missing]["attempts"] == 1, rows[missing]
    assert image_server.hits("/missing.png") == 1


def test_a_late_503_with_no_time_for_the_backoff_is_reported_as_it_is(
    run: Run, image_server: ImageServer
) -> None:
    """A 500 that comes 0.5 s before the deadline, with a retry left: the backoff (0.5-1
    s) would reach the deadline, so the answer is the row (http_error 500) and no try is
    made that cannot end. A review found the worker sleeping to the deadline and sending
    one more request: the row said "timeout" (2026-12-01; a 503 then, which the worker no
    longer retries itself: the master leases it again, ``test_politeness``)."""
    times: list[float] = []

    def late_busy(handler: BaseHTTPRequestHandler) -> None:
        times.append(time.monotonic())
        if len(times) == 1:
            time.sleep(2.5)
        send(handler, 500, b"busy\n", {"Content-Type": "text/plain"})

    url = image_server.add_handler("/late-busy.png", late_busy)
    args = run.master_args(run.write_list([url]), "--local-workers", "1", "--retries", "1",
                           "--deadline", "3", "--max-failure-rate", "1")  # fmt: skip
    done = run_cli("master", *args, timeout=60)
    assert done.returncode == 0, done.stderr
    row = by_url(run.rows())[url]
    assert (row["status"], row["http_status"], row["attempts"]) == (c.HTTP_ERROR, 500, 1), row
    assert len(times) == 1


# --- 8. SIGTERM to the master ---------------------------------------------------------------
def test_sigterm_to_master_keeps_finished_rows_and_rerun_completes(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    images = add_images(image_server, 24, delay=0.5)
    # Leases of 10 s, not the quick runs' 2: on a loaded machine a 2 s lease could expire
    # during the stop, and its download, rightly unreported, made this test fail now and then.
    # A --grace of 30 s, not 5, for the same reason (a CI run with a helper's load beside it,
    # 2026-12-03): a download still in progress when the grace ends gets no row, by design
    # (test_a_stop_whose_grace_ends_says_what_had_no_answer); the workers exit once done.
    args = run.master_args(
        run.write_list(list(images)), "--local-workers", "2", "--threads", "2",
        "--lease-seconds", "10", "--grace", "30",
    )  # fmt: skip
    master = spawn("master", *args)
    wait_until(lambda: len(run.ok_urls()) >= 2, "some ok rows", alive=(master,))
    workers = master.local_workers()
    master.signal(signal.SIGTERM)
    assert master.wait() == c.EXIT_INTERRUPTED, master.stderr
    assert_no_traceback(master.stdout, master.stderr)
    assert not any(map(alive, workers))  # the master waited for them

    rows = run.rows()  # every line is valid JSON
    assert 2 <= len(rows) < len(images), "the stop did not land mid-run"
    assert all(row["status"] == c.OK for row in rows), rows  # final, none lost
    by_url(rows)  # no URL twice
    # Downloads in progress at the stop were finished and reported within the grace.
    hits_before = hits_of(image_server, images)
    asked = {url for url, n in hits_before.items() if n}
    assert asked == {row["url"] for row in rows}, master.stderr

    rerun = run_cli("master", *args, timeout=90)
    assert rerun.returncode == 0, rerun.stderr
    final = run.rows()
    assert_complete_ok(final, images)
    hits_after = hits_of(image_server, images)
    for row in rows:
        assert hits_after[row["url"]] == hits_before[row["url"]]
        assert by_url(final)[row["url"]] == row  # kept as the manifest says


def test_a_stop_whose_grace_ends_says_what_had_no_answer(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    """A stop whose --grace ends before a URL in progress is answered: that URL gets no
    row (the next run fetches it), and the master says how many (until 2026-12-03 nothing
    said why they had none). The worker is started apart, so the master does not kill it:
    its answer comes after the master has gone."""
    slow = add_images(image_server, 1, delay=6.0, prefix="slow")
    fast = add_images(image_server, 2, prefix="fast")
    port = free_port()
    listed = run.write_list([*fast, *slow])
    master = spawn("master", *run.master_args(listed, "--grace", "1", port=port))
    served_port(master)
    worker = spawn("worker", *run.worker_args(port, 3))
    wait_until(lambda: len(run.ok_urls()) == 2, "the fast rows", alive=(master,))
    wait_for_downloads(image_server, list(slow), 1, worker)
    master.signal(signal.SIGTERM)
    assert master.wait(30) == c.EXIT_INTERRUPTED, master.stderr
    assert "--grace 1 s over; no answer for 1 URL in progress" in master.stderr, master.stderr
    assert worker.wait(30) is not None
    assert_no_traceback(master.stdout, master.stderr, worker.stdout, worker.stderr)
    assert {row["url"] for row in run.rows()} == set(fast)  # none for the slow one

    rerun = run_cli("master", *run.master_args(listed, "--local-workers", "1"), timeout=90)
    assert rerun.returncode == 0, rerun.stderr
    assert_complete_ok(run.rows(), {**fast, **slow})


# --- 9. SIGTERM to a separately started worker -------------------------------------------------
def test_sigterm_to_worker_hands_back_and_another_finishes(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    images = add_images(image_server, 10, delay=1.5)
    port = free_port()
    # --max-attempts 1: every URL has one lease to spare; a hand-back must not use it up.
    master = spawn(
        "master", *run.master_args(run.write_list(list(images)), "--max-attempts", "1", port=port)
    )
    served_port(master)
    worker_a = spawn("worker", *run.worker_args(port, 2))  # leases 4, starts 2
    wait_until(lambda: image_server.total_hits() >= 2, "A's downloads", alive=(worker_a,))
    worker_a.signal(signal.SIGTERM)
    assert worker_a.wait() == c.EXIT_INTERRUPTED, worker_a.stderr
    asked_by_a = {url for url, n in hits_of(image_server, images).items() if n}
    # Said at once, not after the downloads in progress (until 2026-12-02 nothing was).
    stopping = [line for line in worker_a.stderr.splitlines() if "stopping: " in line]
    assert len(stopping) == 1, worker_a.stderr
    assert f"finishing the {len(asked_by_a)} in progress" in stopping[0], stopping

    worker_b = spawn("worker", *run.worker_args(port, 4))
    assert master.wait(60) == 0, master.stderr
    assert worker_b.wait() == 0, worker_b.stderr
    assert_no_traceback(
        master.stdout, master.stderr, worker_a.stdout, worker_a.stderr, worker_b.stderr
    )

    rows = run.rows()
    assert_complete_ok(rows, images)
    # A finished and reported what it had started; everything else B did, once each.
    assert by_worker(rows, worker_a.pid) == asked_by_a
    assert by_worker(rows, worker_b.pid) == set(images) - asked_by_a
    assert hits_of(image_server, images) == dict.fromkeys(images, 1)
    assert all(row["leases"] == 1 for row in rows), rows  # hand-backs cost no attempt


def test_a_worker_stopped_while_its_master_is_slow_starts_nothing_more(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    """The stop lands while the worker's comms thread waits on the master (frozen here:
    SIGSTOP, as a master slow to answer on a loaded machine): its download thread,
    finishing the URL in progress, must not start the one queued behind it, which the
    comms thread hands back once it can. Until 2026-12-02 it did (a review's)."""
    first, queued = add_images(image_server, 2, delay=5.0)
    port = free_port()
    # Leases of 10 s: renewed every 2.5 s, and not dropped by the worker as unconfirmed
    # while the master is frozen (a whole lease: then it would start nothing anyway).
    listed = run.write_list([first, queued])
    master = spawn("master", *run.master_args(listed, "--lease-seconds", "10", port=port))
    served_port(master)
    worker = spawn("worker", *run.worker_args(port, 1))  # one thread: the second queued
    wait_until(lambda: image_server.hits(path_of(first)) == 1, "the first", alive=(worker,))
    time.sleep(0.5)  # the second leased too (after the first's robots.txt verdict)
    master.signal(signal.SIGSTOP)
    try:
        time.sleep(3.0)  # the comms thread's next call (a renewal) waits for the master
        worker.signal(signal.SIGTERM)
        time.sleep(2.5)  # the first download ends meanwhile
    finally:
        master.signal(signal.SIGCONT)
    assert worker.wait() == c.EXIT_INTERRUPTED, worker.stderr
    assert image_server.hits(path_of(queued)) == 0  # handed back, never asked for
    assert by_url(run.rows()).keys() <= {first}


# --- 10. a --wait worker serves one master after another -----------------------------------
def test_wait_worker_serves_consecutive_masters(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    port = free_port()
    worker = spawn("worker", *run.worker_args(port, 2, "--wait"))
    wait_until(lambda: WAITING_LINE in worker.stderr, "the waiting line", alive=(worker,))
    time.sleep(1.5)  # the backoff retries at 1 s: at least one more refused connection
    assert worker.stderr.count(WAITING_LINE) == 1, worker.stderr

    for name in ("first", "second"):
        images = add_images(image_server, 4, prefix=name)
        lst = run.write_list(list(images), f"{name}.txt")
        manifest = run.root / f"{name}.jsonl"
        master = spawn("master", *run.master_args(lst, "--manifest", str(manifest), port=port))
        assert master.wait(60) == 0, master.stderr
        assert_no_traceback(master.stdout, master.stderr)
        rows = read_rows(manifest)
        assert_complete_ok(rows, images)
        assert by_worker(rows, worker.pid) == set(images)
        assert worker.proc.poll() is None, worker.stderr

    assert worker.stderr.count(WAITING_LINE) <= 3, worker.stderr  # one per wait
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == c.EXIT_INTERRUPTED, worker.stderr
    assert_no_traceback(worker.stdout, worker.stderr)


def test_wait_worker_says_what_ended_each_run(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    """A --wait worker whose master was killed while it held leases gives its summary
    and how many leased URLs had no answer delivered (as the README says; until
    2026-12-01 neither); after a run that ended normally it says it waits for the next
    master, not that it "lost the connection" ("Connection refused")."""
    port = free_port()
    where = f"127.0.0.1:{port}"
    worker = spawn("worker", *run.worker_args(port, 2, "--wait"))
    wait_until(lambda: WAITING_LINE in worker.stderr, "the waiting line", alive=(worker,))
    slow = add_images(image_server, 4, prefix="killedrun", delay=5.0)
    first_list = run.write_list(list(slow), "first.txt")
    manifest = str(run.root / "first.jsonl")
    first = spawn("master", *run.master_args(first_list, "--manifest", manifest, port=port))
    wait_for_downloads(image_server, list(slow), 2, worker)
    first.signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    gone = re.compile(rf"the master at {where} went away \(.+\); \d+ leased URLs? had no answer")
    wait_until(lambda: gone.search(worker.stderr) is not None, "the went-away line",
               alive=(worker,))  # fmt: skip
    summary = re.compile(rf"worker {socket.gethostname()}:{worker.pid}: \d+ URLs in ")
    wait_until(lambda: summary.search(worker.stdout) is not None, "the killed run's summary",
               alive=(worker,))  # fmt: skip
    killed = re.search(r"serving run (\w+)", first.stderr)
    assert killed is not None, first.stderr
    went = f"waiting for the next master at {where} (the master of run {killed[1]} went away)"
    wait_until(lambda: went in worker.stderr, "the killed run's waiting line", alive=(worker,))
    assert f"(run {killed[1]} ended)" not in worker.stderr  # until 2026-12-03 it said so
    quick = add_images(image_server, 4, prefix="nextrun")
    second = spawn("master", *run.master_args(run.write_list(list(quick), "second.txt"),
                                              "--manifest", str(run.root / "second.jsonl"),
                                              port=port))  # fmt: skip
    assert second.wait(60) == 0, second.stderr
    run_id = json.loads((run.root / "second.summary.json").read_text())["run_id"]
    ended = f"waiting for the next master at {where} (run {run_id} ended)"
    wait_until(lambda: ended in worker.stderr, "the line after the run", alive=(worker,))
    time.sleep(2)  # the backoff retries at 1 and 2 s: refused connections, said no more
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == c.EXIT_INTERRUPTED, worker.stderr
    after = worker.stderr.split(ended, 1)[1]
    assert after.strip() == "", worker.stderr
    for wrong in ("lost the connection", "cannot talk to the master"):
        assert wrong not in worker.stderr, worker.stderr
    assert_no_traceback(worker.stdout, worker.stderr)


# --- 11. one master per manifest --------------------------------------------------------------
def test_second_master_on_same_manifest_is_refused(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    images = add_images(image_server, 2)
    lst = run.write_list(list(images))
    first = spawn("master", *run.master_args(lst, port=free_port()))  # waits for workers
    served_port(first)

    second = run_cli("master", *run.master_args(lst), timeout=30)
    assert second.returncode == c.EXIT_ERROR
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, second.stderr
    assert "another master" in lines[0] and "lock" in lines[0], lines[0]
    assert_no_traceback(second.stdout, second.stderr)
    assert first.proc.poll() is None  # the first master is undisturbed

    first.signal(signal.SIGTERM)
    assert first.wait() == c.EXIT_INTERRUPTED, first.stderr
    third = run_cli("master", *run.master_args(lst, "--local-workers", "1"), timeout=60)
    assert third.returncode == 0, third.stderr  # the lock went with the first master
    assert_complete_ok(run.rows(), images)


# --- Ctrl-C in a terminal -----------------------------------------------------------------------
def test_ctrl_c_lets_local_workers_finish_their_downloads(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    images = add_images(image_server, 10, delay=1.5)
    args = run.master_args(run.write_list(list(images)), "--local-workers", "1")
    master = spawn("master", *args)
    wait_until(lambda: image_server.total_hits() >= 2, "downloads", alive=(master,))
    os.killpg(master.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    code = master.wait()
    # What the workers had started when the key was pressed is finished and reported ...
    asked = {url for url, n in hits_of(image_server, images).items() if n}
    assert {row["url"] for row in run.rows()} == asked, master.stderr
    assert "crawler-worker: interrupted" not in master.stderr  # ... not aborted
    assert code == c.EXIT_INTERRUPTED, master.stderr


# --- 14. fencing: a frozen worker's stale leases (issue 13) -----------------------------------
def test_thawed_worker_drops_leases_finished_elsewhere(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    """Fault 2: a worker frozen past its leases, then thawed, makes no request for URLs
    that were finished elsewhere meanwhile (counted on the server)."""
    images = add_images(image_server, 16, delay=1.0, prefix="frozen")
    urls = list(images)
    port = free_port()
    lst = run.write_list(urls)
    master = spawn("master", *run.master_args(lst, "--lease-seconds", "3", port=port))
    served_port(master)
    frozen = spawn("worker", *run.worker_args(port, 2))  # leases 4: 2 downloading, 2 queued
    wait_for_downloads(image_server, urls, 2, frozen)
    frozen.signal(signal.SIGSTOP)
    other = spawn("worker", *run.worker_args(port, 2))
    # The frozen worker's leases expire; the other worker finishes those URLs.
    wait_until(lambda: set(urls[:4]) <= run.ok_urls(), "the frozen leases redone", alive=(other,))
    finished = run.ok_urls()
    before = hits_of(image_server, finished)
    frozen.signal(signal.SIGCONT)
    assert master.wait(60) == 0, master.stderr
    assert frozen.wait() == 0, frozen.stderr
    after = hits_of(image_server, finished)
    assert after == before, "the thawed worker fetched URLs finished while it was frozen"
    rows = by_url(run.rows())
    assert {rows[url]["status"] for url in urls} == {c.OK}
    assert hits_of(image_server, urls[2:4]) == {url: 1 for url in urls[2:4]}  # never twice


@pytest.mark.parametrize(
    "flags, pause",
    [
        (("--lease-seconds", "3", "--max-attempts", "1"), 8.0),  # past the lease and STALL
        (("--idle-timeout", "6", "--lease-seconds", "60"), 9.0),  # past --idle-timeout
    ],
    ids=["leases", "idle-timeout"],
)
def test_a_master_frozen_while_its_worker_downloads_reads_its_calls_on_waking(
    run: Run, image_server: ImageServer, spawn: Spawn, flags: tuple[str, ...], pause: float
) -> None:
    """The master stopped (SIGSTOP) longer than a lease, or than --idle-timeout, while its
    worker downloads: on waking it must read the answers and calls waiting in its sockets,
    neither expire the leases first (a fresh user's, 2026-12-01: with --max-attempts 1
    answered URLs ended worker_lost, their images stored and named by no row) nor give up
    for want of activity during its own stop (a review's: exit 3). The time the master
    was stopped is not counted (``master.liveclock``), by its leases nor its registry.
    The worker's progress lines (every second here) do not come in a burst once its call
    returns: until 2026-12-01 it wrote one for every interval missed, stale figures
    stamped with one second (a fresh user's)."""
    images = add_images(image_server, 16, delay=0.7, prefix="masterfrozen")
    port = free_port()
    master = spawn("master", *run.master_args(run.write_list(list(images)), *flags, port=port))
    served_port(master)
    worker = spawn("worker", *run.worker_args(port, 4, "--progress-interval", "1"))
    wait_until(lambda: image_server.total_hits() >= 4, "the first downloads", alive=(worker,))
    master.signal(signal.SIGSTOP)
    time.sleep(pause)  # more than liveclock.STALL (5 s) too
    master.signal(signal.SIGCONT)
    assert master.wait(60) == 0, master.stderr
    assert worker.wait() == 0, worker.stderr
    rows = by_url(run.rows())
    assert {url: rows[url]["status"] for url in images} == dict.fromkeys(images, c.OK)
    stamps = Counter(line.split(" ", 1)[0] for line in worker.err if " progress: " in line)
    assert stamps and max(stamps.values()) == 1, worker.stderr


def test_a_worker_thawed_past_its_leases_takes_them_again(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    """Fault 2 with one worker: frozen past its leases and its deadline with downloads in
    flight, it is the worker the master hands those URLs to again. The stale downloads
    fail (ignored: fencing), and the new leases of the same URLs must be fetched. Found
    by a fresh user (2026-12-01): the worker knew its leases by id, dropped the new ones
    as gone without a request, and with --max-attempts 2 they ended worker_lost."""
    bodies = [make_image("PNG", 48, 32, seed=700 + i) for i in range(6)]
    urls = [image_server.add(f"/again/{i}.png", body, content_type="image/png", delay=10.0)
            for i, body in enumerate(bodies)]  # fmt: skip
    port = free_port()
    flags = ("--lease-seconds", "3", "--deadline", "3", "--max-attempts", "2")
    master = spawn("master", *run.master_args(run.write_list(urls), *flags, port=port))
    served_port(master)
    worker = spawn("worker", *run.worker_args(port, 2))  # leases 4: 2 downloading, 2 queued
    wait_for_downloads(image_server, urls, 2, worker)
    in_flight = [url for url in urls if image_server.hits(path_of(url))]
    worker.signal(signal.SIGSTOP)
    time.sleep(5)  # past the lease (3 s) and the deadline (3 s)
    for url, body in zip(urls, bodies, strict=True):  # answered at once from now on
        image_server.add(path_of(url), body, content_type="image/png")
    worker.signal(signal.SIGCONT)
    assert master.wait(60) == 0, master.stderr
    assert worker.wait() == 0, worker.stderr
    rows = by_url(run.rows())
    assert {url: rows[url]["status"] for url in urls} == dict.fromkeys(urls, c.OK)
    assert hits_of(image_server, in_flight) == dict.fromkeys(in_flight, 2)  # stale, then new
    rest = [url for url in urls if url not in in_flight]  # queued ones: their stale task not run
    assert hits_of(image_server, rest) == dict.fromkeys(rest, 1)
    # The stale failures were no results of its own (it said "2 failed", the manifest none).
    assert re.search(r"worker \S+: \d+ URLs in [\d.]+ s, \d+ ok, 0 failed", worker.stdout), (
        worker.stdout
    )


def test_worker_thawed_after_the_master_left_lost_nothing(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    """A worker frozen past its leases, thawed only after the run ended and its master
    exited: its leases expired long ago and were redone, so finding the master gone costs
    nothing; it exits 0 (not "work lost") and fetches nothing more."""
    images = add_images(image_server, 8, delay=1.0, prefix="late")
    urls = list(images)
    port = free_port()
    master = spawn("master", *run.master_args(run.write_list(urls), "--lease-seconds", "3",
                                              port=port))  # fmt: skip
    served_port(master)
    frozen = spawn("worker", *run.worker_args(port, 2))  # leases 4: 2 downloading, 2 queued
    wait_for_downloads(image_server, urls, 2, frozen)
    frozen.signal(signal.SIGSTOP)
    other = spawn("worker", *run.worker_args(port, 2))
    assert master.wait(60) == 0, master.stderr
    assert other.wait() == 0, other.stderr
    before = hits_of(image_server, urls)
    frozen.signal(signal.SIGCONT)
    assert frozen.wait() == 0, frozen.stderr
    # Its answers never reached the master: said, not silently left out of its summary.
    assert re.search(r"went away \(.+\); \d+ leased URLs? had no answer", frozen.stderr), (
        frozen.stderr
    )
    assert hits_of(image_server, urls) == before  # its queued leases were dropped unstarted
    assert {row["status"] for row in by_url(run.rows()).values()} == {c.OK}


def test_stale_failure_after_a_freeze_does_not_override_the_live_lease(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    """Fault 1 end to end: W1's downloads fail (the server breaks them) while W1 is frozen
    past its leases; W2 holds the new leases and is still downloading when W1 thaws and
    reports its failures. Every URL ends ok, from W2."""
    hits: dict[str, int] = {}
    lock = threading.Lock()
    body = make_image("PNG", 48, 32, seed=7)

    def first_breaks(handler: BaseHTTPRequestHandler) -> None:
        with lock:
            hits[handler.path] = count = hits.get(handler.path, 0) + 1
        if count == 1:  # W1's request: a short body, then the connection is closed
            time.sleep(0.3)
            send(handler, 200, body[:10], {"Content-Type": "image/png"})
            handler.wfile.flush()
            handler.close_connection = True
            return
        time.sleep(4.0)  # W2's: good, but slow
        send(handler, 200, body, {"Content-Type": "image/png"})

    urls = [image_server.add_handler(f"/stale/{i}.png", first_breaks) for i in range(2)]
    port = free_port()
    master = spawn("master", *run.master_args(run.write_list(urls), port=port))
    served_port(master)
    w1 = spawn("worker", *run.worker_args(port, 2))
    wait_until(lambda: len(hits) == 2, "W1's requests", alive=(w1,))
    w1.signal(signal.SIGSTOP)
    w2 = spawn("worker", *run.worker_args(port, 2))
    wait_until(lambda: sum(hits.values()) == 4, "W2's requests", alive=(w2,))
    w1.signal(signal.SIGCONT)  # W1 reads its broken answers now: connection_error, stale
    assert master.wait(60) == 0, master.stderr
    rows = by_url(run.rows())
    assert [rows[url]["status"] for url in urls] == [c.OK, c.OK], rows
    assert {rows[url]["worker"].rsplit(":", 1)[1] for url in urls} == {str(w2.pid)}
    assert all(rows[url]["leases"] == 2 for url in urls)


def test_master_without_workers_says_it_is_waiting(run: Run, image_server: ImageServer) -> None:
    """Fault 4: a master whose workers are gone says, without a terminal, that it waits
    for workers and for how long; the first lines say how workers connect."""
    images = add_images(image_server, 2, prefix="alone")
    result = run_cli(
        "master", *run.master_args(run.write_list(list(images)), "--idle-timeout", "13"),
        "--authkey-file", str(write_key(run.root / "key")),
    )  # fmt: skip
    assert result.returncode == c.EXIT_INCOMPLETE, result.stderr
    assert "workers connect with: python -m crawler.worker --server 127.0.0.1" in result.stderr
    assert "--authkey-file" in result.stderr
    assert re.search(
        r"waiting for workers: none active for 1\d s; giving up in \d s", result.stderr
    )
    assert_no_traceback(result.stdout, result.stderr)


def test_master_whose_local_workers_died_says_when_it_gives_up(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    """Both local workers killed (``kill -9``) while holding leases: once the leases ran
    out the master said "waiting for workers: ...; giving up in 3588 s (--idle-timeout)"
    and gave up in the same second (exit 3, as documented). No line may promise a wait
    longer than the --lease-seconds it actually gives a remote worker."""
    images = add_images(image_server, 8, prefix="orphans", delay=30.0)
    args = run.master_args(run.write_list(list(images)), "--local-workers", "2",
                           "--threads", "2", "--lease-seconds", "12")  # fmt: skip
    master = spawn("master", *args)
    wait_until(lambda: sum(hits_of(image_server, images).values()) >= 2, "downloads",
               alive=(master,))  # fmt: skip
    wait_until(lambda: len(master.local_workers()) == 2, "two local workers", alive=(master,))
    for pid in master.local_workers():
        os.kill(pid, signal.SIGKILL)
    assert master.wait(60) == c.EXIT_INCOMPLETE, master.stderr
    assert "all local workers exited (codes [-9]) early" in master.stderr, master.stderr
    assert "(--idle-timeout)" not in master.stderr, master.stderr
    for left in re.findall(r"giving up in (\d+) s", master.stderr):
        assert int(left) <= 12, master.stderr
    assert_no_traceback(master.stdout, master.stderr)


@pytest.mark.parametrize("processes", [1, 2])
def test_master_whose_local_workers_were_all_killed_gives_up_at_once(
    run: Run, image_server: ImageServer, spawn: Spawn, processes: int
) -> None:
    """Every local worker killed (``kill -9``, the OOM killer) and no remote one: the
    README says the master gives up at once. Until 2026-12-01 it counted its dead workers
    as active for a whole --lease-seconds after their last call ("workers 2" meanwhile)."""
    lease = 40
    images = add_images(image_server, 8, prefix=f"allkilled{processes}", delay=30.0)
    args = run.master_args(run.write_list(list(images)), "--local-workers", str(processes),
                           "--threads", "2", "--lease-seconds", str(lease),
                           "--progress-interval", "1")  # fmt: skip
    master = spawn("master", *args)
    wait_until(lambda: sum(hits_of(image_server, images).values()) >= 2 * processes,
               "downloads", alive=(master,))  # fmt: skip
    workers = master.local_workers()
    assert len(workers) == processes
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    assert master.wait(lease) == c.EXIT_INCOMPLETE, master.stderr
    assert time.monotonic() - killed < lease / 2, master.stderr  # generous: "at once"
    assert "all local workers exited (codes [-9]) early" in master.stderr, master.stderr
    assert "giving up in" not in master.stderr, master.stderr
    assert_no_traceback(master.stdout, master.stderr)


def test_a_worker_started_by_hand_on_the_masters_host_is_not_one_of_its_own(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    """A worker of the same host name that the master did not start counts as a remote
    one: the master's own local worker killed, it goes on with that one to the end."""
    images = add_images(image_server, 16, prefix="byhand", delay=0.5)
    key = str(write_key(run.root / "key"))
    port = free_port()
    args = run.master_args(run.write_list(list(images)), "--local-workers", "1",
                           "--threads", "1", "--authkey-file", key, port=port)  # fmt: skip
    master = spawn("master", *args)
    served_port(master)
    other = spawn("worker", *run.worker_args(port, 1, "--authkey-file", key))
    wait_until(lambda: by_worker(run.tolerant_rows(), other.pid), "a row from the other worker",
               alive=(master, other))  # fmt: skip
    for pid in master.local_workers():
        os.kill(pid, signal.SIGKILL)
    assert master.wait(60) == c.EXIT_OK, master.stderr
    assert other.wait() == c.EXIT_OK, other.stderr
    assert len(by_url(run.rows())) == len(images)
    assert {row["status"] for row in run.rows()} == {c.OK}


def test_local_copies_left_when_their_first_process_is_killed_finish_the_run(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    """Only the first local worker process killed: its copies (``--processes``) are
    still the master's own workers, so the master waits for them and they finish."""
    images = add_images(image_server, 6, prefix="firstkilled", delay=0.5)
    args = run.master_args(run.write_list(list(images)), "--local-workers", "2",
                           "--threads", "1")  # fmt: skip
    master = spawn("master", *args)
    wait_until(lambda: sum(hits_of(image_server, images).values()) >= 2, "downloads",
               alive=(master,))  # fmt: skip
    first = [pid for pid in master.local_workers() if pid in children_of(master.pid)]
    assert len(first) == 1
    os.kill(first[0], signal.SIGKILL)
    assert master.wait(60) == c.EXIT_OK, master.stderr
    assert {row["status"] for row in run.rows()} == {c.OK}
    assert len(by_url(run.rows())) == len(images)


def test_a_stop_reaches_local_copies_whose_first_process_was_killed(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    """The first local worker process killed, then the master stopped with downloads
    slower than its --grace: the copies, which carry on without their first process
    (``worker.copies``), are still the master's (its group), so they are stopped and
    killed at the end of the grace as the first would be, not left behind downloading
    once the master has exited (until 2026-12-02 only a live first process was: a
    review's)."""
    images = add_images(image_server, 6, prefix="firststop", delay=60)
    # The default lease's renewals are rare: a copy would not soon find the master gone.
    args = run.master_args(run.write_list(list(images)), "--local-workers", "2",
                           "--threads", "1", "--grace", "1", "--deadline", "100",
                           "--lease-seconds", "300")  # fmt: skip
    master = spawn("master", *args)
    wait_until(lambda: sum(hits_of(image_server, images).values()) >= 2, "downloads",
               alive=(master,))  # fmt: skip
    workers = master.local_workers()
    first = [pid for pid in workers if pid in children_of(master.pid)]
    os.kill(first[0], signal.SIGKILL)
    master.signal(signal.SIGTERM)
    assert master.wait(60) == c.EXIT_INTERRUPTED, master.stderr
    assert not any(alive(pid) for pid in workers), master.stderr
    assert not any(row["status"] == c.OK for row in run.rows())


def write_key(path: Path) -> Path:
    path.write_text("k" * 40 + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path
