"""Hostile peers and hostile disks around a real run: the run must still complete correctly.

* Strangers on the master's port: a worker with the wrong key, a socket that sends junk,
  and one that connects and says nothing. Each is refused or dropped, with a line in the
  master's log; the real worker's run completes with every URL ok.
* A peer that holds the key but sends results that do not parse, name URLs the run never
  sent, or claim a reuse: ignored with a warning, never a crash, never a manifest row.
* A worker whose output folder fills up, or turns read-only, mid-run: it reports the
  first ``disk_error``, stops taking work, exits 1 with one line, and hands the rest back;
  a second worker with a healthy disk finishes them. No partial file is left behind.

The image routes are gated: they hold every request until the test has done its
mischief, so the run cannot end before it (every wait is bounded).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import IO, Any

import pytest
from conftest import (
    KEY,
    assert_no_traceback,
    cli_env,
    read_rows,
    run_cli,
    start_cli,
    unstamped,
)
from hostile import respond
from imageserver import ImageServer, make_image

from crawler.master.server import HANDSHAKE_TIMEOUT
from crawler.worker.channel import Channel

RUN_TIMEOUT = 90  # seconds any one process of these tests may take
GATE_LIMIT = 40.0  # seconds a gated request waits at most for the test to open the gate
SLOW_POLICY = ("--read-timeout", "60", "--deadline", "90")  # gated requests must not time out
STORED_NAME = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.png")


class Gate:
    """Holds every request of its routes until ``open()`` (or GATE_LIMIT) and counts them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = False
        self.arrived = 0

    def handler(self, body: bytes) -> Any:
        def handle(request: BaseHTTPRequestHandler) -> None:
            with self._cond:
                self.arrived += 1
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._open, timeout=GATE_LIMIT)
            respond(request, body, "image/png")

        return handle

    def wait_for_requests(self, count: int, timeout: float = 30) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.arrived >= count, timeout=timeout):
                raise AssertionError(f"only {self.arrived} of {count} requests arrived")

    def open(self) -> None:
        with self._cond:
            self._open = True
            self._cond.notify_all()


class Pump:
    """Collects a process's stream on a thread (so nothing is lost or blocks)."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: IO[str]) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def seen() -> bool:
            found[:] = [m for line in self.lines if (m := re.search(pattern, line))]
            return bool(found) or not self._thread.is_alive()

        with self._cond:
            self._cond.wait_for(seen, timeout=timeout)
        assert found, f"no line matching {pattern!r} in: {self.text()}"
        return found[0]

    def text(self, timeout: float = 0) -> str:
        self._thread.join(timeout)
        with self._cond:
            return "".join(self.lines)


class Proc:
    """A started CLI process with its stdout and stderr pumped."""

    def __init__(self, popen: subprocess.Popen[str]) -> None:
        self.popen = popen
        self.out = Pump(popen.stdout)
        self.err = Pump(popen.stderr)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def finish(self, timeout: float = RUN_TIMEOUT) -> tuple[int, str, str]:
        code = self.popen.wait(timeout=timeout)
        return code, self.out.text(timeout=10), self.err.text(timeout=10)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Processes a test started: any still running at teardown are killed (never leaked)."""
    started: list[Proc] = []
    yield started
    for proc in started:
        if proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait(timeout=30)


def start(procs: list[Proc], module: str, *args: str, env: dict[str, str] | None = None) -> Proc:
    proc = Proc(start_cli(module, *args, env=env))
    procs.append(proc)
    return proc


def start_master(procs: list[Proc], listing: Path, out: Path, *extra: str) -> tuple[Proc, int]:
    master = start(
        procs, "master", str(listing), "--bind", "127.0.0.1", "--port", "0",
        "--output", str(out), "--no-progress", *SLOW_POLICY, *extra,
    )  # fmt: skip
    port = int(master.err.wait_for(r"serving run \w+ on 127\.0\.0\.1:(\d+)").group(1))
    return master, port


def worker_args(port: int, output: Path, threads: int = 2) -> list[str]:
    return [
        *("--server", "127.0.0.1", "--port", str(port)),
        *("--output", str(output), "--threads", str(threads)),
    ]


def gated_images(
    server: ImageServer, gate: Gate, count: int, size: tuple[int, int] = (40, 30), seed: int = 0
) -> tuple[list[str], dict[str, bytes]]:
    urls, bodies = [], {}
    for i in range(count):
        body = make_image("PNG", *size, seed=seed + i)
        url = server.add_handler(f"/gated/{seed + i}.png", gate.handler(body))
        urls.append(url)
        bodies[url] = body
    return urls, bodies


def write_list(path: Path, urls: list[str]) -> Path:
    path.write_text("\n".join(urls) + "\n", encoding="utf-8")
    return path


def check_ok_rows(
    rows: list[dict[str, Any]], bodies: dict[str, bytes], outputs: dict[int, Path]
) -> None:
    """Every row is ok, stored by one of ``outputs`` (worker pid -> its folder), bytes exact."""
    assert sorted(row["url"] for row in rows) == sorted(bodies)
    for row in rows:
        assert row["status"] == "ok", row
        pid = int(row["worker"].rpartition(":")[2])
        assert pid in outputs, row
        data = (outputs[pid] / row["path"]).read_bytes()
        assert data == bodies[row["url"]]
        assert row["sha256"] == hashlib.sha256(data).hexdigest()


def read_until_closed(sock: socket.socket, timeout: float) -> bool:
    """Read (and drop) what the peer sends until it closes: True if it did within ``timeout``."""
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(4096):
                return True
        except TimeoutError:
            return False
        except OSError:  # reset: closed too
            return True
    return False


# ------------------------------------------------------------------ strangers on the port
def test_strangers_are_refused_and_the_run_completes(
    tmp_path: Path, image_server: ImageServer, procs: list[Proc]
) -> None:
    gate = Gate()
    urls, bodies = gated_images(image_server, gate, 6)
    listing = write_list(tmp_path / "list.txt", urls)
    out = tmp_path / "out"
    master, port = start_master(procs, listing, out, "-v")  # -v: junk and silence are DEBUG
    worker = start(procs, "worker", *worker_args(port, out))
    gate.wait_for_requests(1)  # the real worker is at work: the run is under way

    silent = socket.create_connection(("127.0.0.1", port), timeout=10)
    junk = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        junk.sendall(b"GET / HTTP/1.1\r\nHost: crawler\r\n\r\n" + bytes(range(256)))
        assert read_until_closed(junk, timeout=15), "the master kept a junk connection open"

        wrong = run_cli(
            "worker", *worker_args(port, tmp_path / "intruder"),
            env=cli_env(CRAWLER_AUTHKEY="not-the-master-key-" + "x" * 24), timeout=60,
        )  # fmt: skip
        assert wrong.returncode == 1, wrong.stderr
        assert_no_traceback(wrong.stdout, wrong.stderr)
        lines = wrong.stderr.strip().splitlines()
        assert len(lines) == 1, wrong.stderr
        assert unstamped(lines[0]).startswith("crawler-worker: error: ")
        assert f"127.0.0.1:{port} rejected this worker's authkey" in lines[0]
        assert wrong.stdout == ""

        # The silent one is cut off by the master once the handshake time is up.
        assert read_until_closed(silent, timeout=HANDSHAKE_TIMEOUT + 15)
    finally:
        silent.close()
        junk.close()
    gate.open()

    code, w_out, w_err = worker.finish()
    assert code == 0, w_err
    assert_no_traceback(w_out, w_err)
    code, m_out, m_err = master.finish()
    assert code == 0, m_err
    assert_no_traceback(m_out, m_err)
    assert "completed" in m_out
    refused = re.findall(r"refused a connection from 127\.0\.0\.1:\d+: (.*)", m_err)
    assert sorted(refused) == ["bad message length", "digest received was wrong"], m_err
    assert re.search(
        rf"dropped a connection from 127\.0\.0\.1:\d+: no handshake within {HANDSHAKE_TIMEOUT:g} s",
        m_err,
    ), m_err
    check_ok_rows(read_rows(out / "manifest.jsonl"), bodies, {worker.pid: out})
    assert not (tmp_path / "intruder").exists() or not any((tmp_path / "intruder").iterdir())


# ------------------------------------------------------------------------ forged results
def test_forged_results_are_ignored(
    tmp_path: Path, image_server: ImageServer, procs: list[Proc]
) -> None:
    gate = Gate()
    urls, bodies = gated_images(image_server, gate, 4, seed=10)
    listing = write_list(tmp_path / "list.txt", urls)
    out = tmp_path / "out"
    master, port = start_master(procs, listing, out, "--local-workers", "1", "--threads", "2")
    gate.wait_for_requests(1)

    me = "intruder:1"

    def result(**fields: Any) -> str:
        return json.dumps({"id": 0, "url": urls[0], "status": "ok", "worker": me} | fields)

    forged: list[tuple[Any, str]] = [
        ("garbage", "result is not JSON"),
        ("[1, 2]", "result is not a JSON object"),
        (result(id=9999, url="http://never.invalid/x.png"), "for a URL this run never sent"),
        (result(url="http://elsewhere.invalid/0.png"), "for a URL this run never sent"),
        (result(id=-1), "for a URL this run never sent"),
        (result(status="pwned"), "unknown status 'pwned'"),
        (result(id="0"), "result field 'id' has the wrong type"),
        (result(reused=True, path="../../../etc/passwd"), "reusing a file never stored"),
        (result(status="not_modified"), "reusing a file never stored"),
    ]
    channel = Channel("127.0.0.1", port, KEY.encode(), timeout=10)
    info = channel.hello(me, {"host": "intruder"})
    assert "policy" in info and "run_id" in info
    assert channel.put(me, [text for text, _ in forged] + [42]) == len(forged) + 1  # type: ignore[list-item]
    channel.bye(me)
    gate.open()

    code, m_out, m_err = master.finish()
    assert code == 0, m_err
    assert_no_traceback(m_out, m_err)
    ignored = re.findall(rf"ignored a result from {re.escape(me)}(?::| ) ?(.*)", m_err)
    assert len(ignored) == len(forged), m_err
    for (_, reason), line in zip(forged, ignored, strict=True):
        assert reason in line, (reason, line)
    rows = read_rows(out / "manifest.jsonl")
    assert all(row["worker"] != me for row in rows), rows
    (local,) = {int(row["worker"].rpartition(":")[2]) for row in rows}
    check_ok_rows(rows, bodies, {local: out})


# ----------------------------------------------------------------------------- bad disks
@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs at ``path`` (made, or a folder it is mounted over): skipped without
    mount rights, failed under CI=true."""
    path.mkdir(exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        problem = "" if done.returncode == 0 else done.stderr.strip() or f"exit {done.returncode}"
    except (OSError, subprocess.SubprocessError) as exc:
        problem = str(exc)
    if problem:
        reason = f"cannot mount a tmpfs (needs root and mount): {problem}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True, timeout=30).returncode:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def remount_read_only(path: Path) -> None:
    done = subprocess.run(
        ["mount", "-o", "remount,ro", str(path)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, f"cannot remount {path} read-only: {done.stderr}"


@pytest.mark.parametrize(
    ("mode", "size", "reason"),
    [("full", "64k", "No space left on device"), ("read_only", "1m", "Read-only file system")],
)
def test_disk_error_stops_the_worker_and_another_finishes(
    tmp_path: Path,
    image_server: ImageServer,
    procs: list[Proc],
    mode: str,
    size: str,
    reason: str,
) -> None:
    gate = Gate()
    # One small image (fits in 64k) and then images of ~100 kB each (never fit).
    small, small_bodies = gated_images(image_server, gate, 1, size=(60, 60), seed=40)
    big, big_bodies = gated_images(image_server, gate, 7, size=(200, 200), seed=50)
    assert all(len(body) > 64 * 1024 for body in big_bodies.values())
    more, more_bodies = gated_images(image_server, gate, 4, size=(60, 60), seed=60)
    bodies = small_bodies | big_bodies | more_bodies
    listing = write_list(tmp_path / "list.txt", small + big + more)
    master_out, good_out = tmp_path / "master", tmp_path / "good"

    with tmpfs(tmp_path / "disk", size) as disk:
        master, port = start_master(procs, listing, master_out)
        bad = start(procs, "worker", *worker_args(port, disk))
        if mode == "read_only":
            gate.wait_for_requests(1)  # the worker is connected and downloading: now the disk goes
            remount_read_only(disk)
        gate.open()
        code, b_out, b_err = bad.finish()
        assert code == 1, b_err
        assert_no_traceback(b_out, b_err)
        lines = b_err.strip().splitlines()
        assert len(lines) == 1, b_err
        line = unstamped(lines[0])
        assert line.startswith("crawler-worker: error: stopped taking work: cannot write ")
        assert reason in lines[0]

        good = start(procs, "worker", *worker_args(port, good_out))
        code, g_out, g_err = good.finish()
        assert code == 0, g_err
        assert_no_traceback(g_out, g_err)
        code, m_out, m_err = master.finish()
        assert code == 0, m_err
        assert_no_traceback(m_out, m_err)

        rows = read_rows(master_out / "manifest.jsonl")
        assert sorted(row["url"] for row in rows) == sorted(bodies)
        failed = [row for row in rows if row["status"] != "ok"]
        assert len(failed) == 1, failed  # the first disk_error only: the rest went back
        (row,) = failed
        assert row["status"] == "disk_error", row
        assert int(row["worker"].rpartition(":")[2]) == bad.pid, row
        assert reason in row["error"] and row["path"] is None, row
        ok = [r for r in rows if r["status"] == "ok"]
        check_ok_rows(
            ok, {r["url"]: bodies[r["url"]] for r in ok}, {bad.pid: disk, good.pid: good_out}
        )

        # On the bad disk: only whole files, each an ok row of the bad worker; no leftovers.
        on_disk = sorted(p.relative_to(disk).as_posix() for p in disk.rglob("*") if p.is_file())
        from_bad = sorted(r["path"] for r in ok if int(r["worker"].rpartition(":")[2]) == bad.pid)
        assert on_disk == from_bad, (on_disk, from_bad)
        assert all(STORED_NAME.fullmatch(p) for p in on_disk), on_disk
        if mode == "read_only":
            assert on_disk == []
