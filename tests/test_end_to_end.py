"""End-to-end runs: the real master and workers, over BaseManager on loopback, against real HTTP.

Every run here is a ``python -m crawler.master`` / ``python -m crawler.worker`` process
started the way a user would, fetching from the loopback image server, and is judged only
by what a user can see: exit codes, the manifest, the CSV, the stored files, the printed
commands, and what the image server was asked for.
"""

from __future__ import annotations

import csv
import hashlib
import os
import queue
import re
import shlex
import socket
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import pytest
from conftest import (
    RUN_TIMEOUT,
    assert_no_traceback,
    cli_env,
    free_port,
    read_rows,
    run_cli,
    start_cli,
    wait_for_port,
)
from imageserver import ImageServer, expected_for, make_image
from PIL import Image

STORED_NAME = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z]+)")
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
# What a correct crawler reports for each of the image server's standard routes.
ROUTE_STATUS = {
    "jpeg": "ok",
    "jpeg_small": "ok",
    "png": "ok",
    "webp": "ok",
    "gif": "ok",
    "gif_animated": "ok",
    "webp_animated": "ok",
    "not_found": "http_error",
    "html_as_jpg": "not_image",
    "truncated_jpeg": "corrupt",
    "redirect": "ok",
    "empty": "not_image",
    "text": "not_image",
}
FETCHED = {"ok", "http_error", "not_image", "corrupt"}


@dataclass(frozen=True)
class Expect:
    """The manifest row one input line must get."""

    status: str
    url: str  # the row's url: normalised, or the stripped line for invalid_url
    image: str | None = None  # for ok: the URL whose served bytes must be stored
    final_url: str | None = None  # for fetched rows: where the download ended
    http_status: int | None = None
    duplicate_of: str | None = None  # the source of the first occurrence


class UrlList:
    """A list file built line by line, remembering the row each line must get."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []
        self.expect: dict[str, Expect] = {}  # source ("LIST_PATH:N") -> expected row

    def add(self, line: str, expect: Expect | None = None) -> str:
        self.lines.append(line)
        source = f"{self.path}:{len(self.lines)}"  # the list path as given on the command line
        if expect is not None:
            self.expect[source] = expect
        return source

    def add_route(self, name: str, url: str, routes: dict[str, str], spelled: str = "") -> str:
        status = ROUTE_STATUS[name]
        final = routes["png"] if name == "redirect" else url
        return self.add(
            spelled or url,
            Expect(
                status,
                url,
                image=final if status == "ok" else None,
                final_url=final,  # a failure names its hop too (since 2026-12-02)
                http_status=404 if status == "http_error" else 200,
            ),
        )

    def write(self) -> Path:
        self.path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")
        return self.path


def check_stored(row: dict[str, Any], out: Path, server: ImageServer, image: str) -> None:
    """An ok row's file exists, is exactly what was served, and is a whole image."""
    expected = server.expected[image]
    match = STORED_NAME.fullmatch(row["path"])
    assert match is not None, row["path"]
    digest = hashlib.sha256(row["url"].encode()).hexdigest()  # named after the URL
    assert match.groups() == (digest[:2], digest[2:4], digest, EXTENSIONS[expected.format])
    stored = out / row["path"]
    data = stored.read_bytes()
    assert row["sha256"] == hashlib.sha256(data).hexdigest() == expected.sha256
    assert row["bytes"] == len(data) == len(expected.body)
    assert (row["width"], row["height"], row["format"]) == (
        expected.width,
        expected.height,
        expected.format,
    )
    assert stat.S_IMODE(stored.stat().st_mode) == 0o644
    with Image.open(stored) as img:
        assert (img.format, img.size) == (expected.format, (expected.width, expected.height))
        for frame in range(getattr(img, "n_frames", 1)):
            img.seek(frame)
            img.load()


def check_manifest(
    rows: list[dict[str, Any]],
    urls: UrlList,
    out: Path,
    server: ImageServer,
    run_id: str | None = None,
) -> None:
    """One row per input line, each as ``urls.expect`` says, and nothing else in ``out``."""
    assert sorted(row["source"] for row in rows) == sorted(urls.expect)
    run_ids = {row["run_id"] for row in rows}
    assert len(run_ids) == 1
    assert re.fullmatch(r"[0-9a-f]{12}", run_ids.pop() if run_id is None else run_id)
    if run_id is not None:
        assert {row["run_id"] for row in rows} == {run_id}
    host = socket.gethostname()
    for row in rows:
        exp = urls.expect[row["source"]]
        assert (row["status"], row["url"]) == (exp.status, exp.url), row
        assert row["duplicate_of"] == exp.duplicate_of, row
        if exp.status in FETCHED:
            name, _, pid = row["worker"].rpartition(":")
            assert name == host and pid.isdigit(), row
            assert row["final_url"] == exp.final_url, row
            assert row["http_status"] == exp.http_status, row
            assert isinstance(row["attempts"], int) and row["attempts"] >= 1, row
            assert row["leases"] == 1, row
            assert isinstance(row["elapsed_s"], (int, float)) and row["elapsed_s"] >= 0, row
            finished = datetime.fromisoformat(row["finished_at"])
            assert finished.utcoffset() == timedelta(0), row
        else:  # decided by the master while reading the list
            assert row["worker"] is None and row["finished_at"] is None, row
        if exp.status == "ok":
            assert row["error"] is None, row
            assert exp.image is not None
            check_stored(row, out, server, exp.image)
        else:
            assert row["path"] is None and row["sha256"] is None, row
        if exp.status not in ("ok", "duplicate"):  # a failure says why
            assert isinstance(row["error"], str) and row["error"], row
    stored = {
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and STORED_NAME.fullmatch(p.relative_to(out).as_posix())
    }
    assert stored == {row["path"] for row in rows if row["status"] == "ok"}
    assert list(out.rglob(".part-*")) == []


def check_hits(server: ImageServer, urls: UrlList, routes: dict[str, str]) -> None:
    """The server saw exactly one GET per fetched URL (plus the redirect's target), and
    robots.txt (once per worker: see test_robots.py)."""
    wanted: Counter[str] = Counter()
    for exp in urls.expect.values():
        if exp.status in FETCHED:
            wanted[urlsplit(exp.url).path] += 1
            if exp.final_url and exp.final_url != exp.url:
                wanted[urlsplit(exp.final_url).path] += 1
    paths = {urlsplit(url).path for url in routes.values()} | set(wanted)
    assert {p: server.hits(p) for p in paths} == {p: wanted[p] for p in paths}
    assert server.total_hits() - server.hits("/robots.txt") == sum(wanted.values())


def check_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == list(rows[0])
    assert len(table) == len(rows) + 1
    assert all(len(line) == len(table[0]) for line in table)
    url, status = table[0].index("url"), table[0].index("status")
    assert [(line[url], line[status]) for line in table[1:]] == [
        (row["url"], row["status"]) for row in rows
    ]


def no_key_env() -> dict[str, str]:
    env = cli_env()
    del env["CRAWLER_AUTHKEY"]
    return env


class LineReader:
    """Reads a process's stream on a thread, so a test can wait for a line without hanging."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}: {self.text()}") from None
            if line is None:
                raise AssertionError(f"stream ended before {pattern!r}: {self.text()}")
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def rest(self, timeout: float = 30) -> str:
        """Everything the stream said, once it has ended."""
        self._thread.join(timeout)
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        return self.text()

    def text(self) -> str:
        return "".join(self.seen)


# --------------------------------------------------------------------------------------
def test_full_run_with_local_workers(
    tmp_path: Path, image_server: ImageServer, routes: dict[str, str]
) -> None:
    urls = UrlList(tmp_path / "list.txt")
    urls.add("# every standard route of the image server")
    urls.add("")
    sources = {}
    for name, url in routes.items():
        spelled = f"  {url}\t " if name == "gif" else url  # surrounding whitespace is fine
        sources[name] = urls.add_route(name, url, routes, spelled)
    urls.add("   ")
    urls.add("not-a-url", Expect("invalid_url", "not-a-url"))
    urls.add("ftp://x/y.png", Expect("invalid_url", "ftp://x/y.png"))
    urls.add("http://127.0.0.2:0/x.jpg", Expect("invalid_url", "http://127.0.0.2:0/x.jpg"))
    urls.add("# the JPEG again, spelled differently")
    again = routes["jpeg"].replace("http://", "HTTP://") + "#again"
    urls.add(again, Expect("duplicate", routes["jpeg"], duplicate_of=sources["jpeg"]))
    urls.write()
    out = tmp_path / "out"

    result = run_cli(
        "master", str(urls.path), "--bind", "127.0.0.1", "--port", "0",
        "--local-workers", "2", "--threads", "3", "--output", str(out),
        "--manifest", str(out / "manifest.jsonl"), "--csv", str(out / "m.csv"), "--no-progress",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    announced = re.search(r"serving run ([0-9a-f]+) on 127\.0\.0\.1:\d+", result.stderr)
    assert announced is not None, result.stderr
    rows = read_rows(out / "manifest.jsonl")
    assert len(rows) == len(urls.expect) == len(routes) + 4
    check_manifest(rows, urls, out, image_server, run_id=announced.group(1))
    check_hits(image_server, urls, routes)
    check_csv(out / "m.csv", rows)
    by_url = {row["url"]: row for row in rows if row["status"] == "ok"}
    # The redirect is stored under its own URL's name, with the same bytes as its target.
    assert by_url[routes["redirect"]]["path"] != by_url[routes["png"]]["path"]
    assert by_url[routes["redirect"]]["sha256"] == by_url[routes["png"]]["sha256"]
    workers = {row["worker"] for row in rows if row["worker"]}
    assert all(int(w.rpartition(":")[2]) != os.getpid() for w in workers)


class Gate:
    """Holds every request until ``needed`` are waiting at once, then lets all through.

    With workers of 2 threads, 3 requests in flight at once prove two workers are busy,
    so the run cannot end before the second worker has joined it.
    """

    def __init__(self, needed: int, timeout: float) -> None:
        self.needed, self.timeout = needed, timeout
        self.opened = False
        self._waiting = 0
        self._cond = threading.Condition()

    def handler(self, body: bytes) -> Any:
        def handle(request: BaseHTTPRequestHandler) -> None:
            with self._cond:
                self._waiting += 1
                if self._waiting >= self.needed:
                    self.opened = True
                    self._cond.notify_all()
                self._cond.wait_for(lambda: self.opened, timeout=self.timeout)
            request.send_response(200)
            request.send_header("Content-Type", "image/png")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)

        return handle


def test_master_and_workers_as_separate_commands(
    tmp_path: Path,
    image_server: ImageServer,
    routes: dict[str, str],
    reaper: list[subprocess.Popen[str]],
) -> None:
    gate = Gate(needed=3, timeout=30)
    urls = UrlList(tmp_path / "list.txt")
    urls.add("# the first eight images wait until two workers fetch at once")
    for i in range(8):
        body = make_image("PNG", 24, 16, seed=100 + i)
        url = image_server.add_handler(f"/gated/{i}.png", gate.handler(body))
        image_server.expected[url] = expected_for(body)
        urls.add(url, Expect("ok", url, image=url, final_url=url, http_status=200))
    for name, url in routes.items():
        urls.add_route(name, url, routes)
    urls.write()
    out = tmp_path / "out"
    port = free_port()

    master = start_cli(
        "master", str(urls.path), "--bind", "127.0.0.1", "--port", str(port),
        "--output", str(out), "--no-progress",
    )  # fmt: skip
    reaper.append(master)
    assert wait_for_port(master) == port
    worker_args = ["--server", "127.0.0.1", "--port", str(port), "--output", str(out)]
    workers = [start_cli("worker", *worker_args, "--threads", "2") for _ in range(2)]
    reaper.extend(workers)
    finished = [proc.communicate(timeout=RUN_TIMEOUT) for proc in workers]
    master_out, master_err = master.communicate(timeout=RUN_TIMEOUT)

    assert master.returncode == 0, master_err
    assert_no_traceback(master_out, master_err)
    assert "completed" in master_out
    total = 0
    for proc, (stdout, stderr) in zip(workers, finished, strict=True):
        assert proc.returncode == 0, stderr
        assert_no_traceback(stdout, stderr)
        summary = re.search(rf"worker \S+:{proc.pid}: (\d+) URLs", stdout)
        assert summary is not None, stdout
        total += int(summary.group(1))
    assert total == len(urls.expect)  # between them, each URL once
    assert gate.opened
    rows = read_rows(out / "manifest.jsonl")
    check_manifest(rows, urls, out, image_server)
    check_hits(image_server, urls, routes)
    pids = {int(row["worker"].rpartition(":")[2]) for row in rows}
    assert pids == {proc.pid for proc in workers}


@pytest.mark.parametrize("name", ["crawler-master", "crawler-worker"])
def test_console_scripts_are_installed(name: str) -> None:
    script = Path(sys.executable).parent / name
    assert script.is_file() and os.access(script, os.X_OK), script
    result = subprocess.run(
        [str(script), "--help"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {name} ")
    assert "--authkey-file" in result.stdout
    assert_no_traceback(result.stdout, result.stderr)


def test_generated_key_and_printed_worker_command(
    tmp_path: Path,
    image_server: ImageServer,
    routes: dict[str, str],
    reaper: list[subprocess.Popen[str]],
) -> None:
    urls = UrlList(tmp_path / "list.txt")
    for name in ("png", "gif_animated", "not_found"):
        urls.add_route(name, routes[name], routes)
    urls.write()
    out = tmp_path / "out"

    log = tmp_path / "night.log"
    master = start_cli(
        "master", str(urls.path), "--bind", "127.0.0.1", "--port", "0",
        "--output", str(out), "--no-progress", "--log-file", str(log), env=no_key_env(),
    )  # fmt: skip
    reaper.append(master)
    assert master.stderr is not None
    stderr = LineReader(master.stderr)
    port = int(stderr.wait_for(r"serving run \w+ on 127\.0\.0\.1:(\d+)").group(1))
    printed = stderr.wait_for(
        r"\s{4}CRAWLER_AUTHKEY=(\S+) (python -m crawler\.worker --server .*)$"
    )
    key, command = printed.group(1), shlex.split(printed.group(2))
    expected_command = ["python", "-m", "crawler.worker", "--server", "127.0.0.1"]
    assert command == [*expected_command, "--port", str(port)]
    key_files = [
        p for p in tmp_path.rglob("*") if p.is_file() and p.read_bytes().strip() == key.encode()
    ]
    assert len(key_files) == 1, key_files
    assert stat.S_IMODE(key_files[0].stat().st_mode) == 0o600
    assert str(key_files[0]) in stderr.text()  # the notice says where the key is

    worker = run_cli(
        "worker", *command[3:], "--output", str(out), "--threads", "2",
        env=cli_env(CRAWLER_AUTHKEY=key),
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    assert_no_traceback(worker.stdout, worker.stderr)
    assert master.wait(timeout=RUN_TIMEOUT) == 0
    assert master.stdout is not None
    master_out = master.stdout.read()
    assert_no_traceback(master_out, stderr.rest())
    check_manifest(read_rows(out / "manifest.jsonl"), urls, out, image_server)
    check_hits(image_server, urls, routes)
    # The key is on stderr, once; not in the log file, which others may read (0644).
    logged = log.read_text(encoding="utf-8")
    assert str(key_files[0]) in logged and "outcome" in logged
    assert key not in logged


def test_local_workers_stay_quiet_when_nothing_to_fetch(tmp_path: Path) -> None:
    urls = UrlList(tmp_path / "list.txt")
    urls.add("# nothing here can be fetched")
    urls.add("mailto:someone@example.com", Expect("invalid_url", "mailto:someone@example.com"))
    urls.add("ftp://x/y.png", Expect("invalid_url", "ftp://x/y.png"))
    urls.write()
    out = tmp_path / "out"
    result = run_cli(
        "master", str(urls.path), "--bind", "127.0.0.1", "--port", "0",
        "--local-workers", "2", "--output", str(out), "--no-progress",
    )  # fmt: skip
    assert result.returncode == 4, result.stderr  # degraded: no list line is a URL
    assert "degraded run: 2 of 2 list lines are not URLs" in result.stderr
    rows = read_rows(out / "manifest.jsonl")
    assert sorted(row["source"] for row in rows) == sorted(urls.expect)
    assert "error" not in result.stderr, result.stderr
