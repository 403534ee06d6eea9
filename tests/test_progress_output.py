"""What a person watching a run sees of its progress, on real pseudo-terminals.

A terminal too narrow for the progress bar (0 columns: ``script -qc`` started from cron
or CI; or a narrow pane) gets the periodic progress lines a file gets; log lines written
while a bar is drawn go above the bar, never onto its line; a master stopped (Ctrl-Z,
here SIGSTOP) and continued says one progress line, not one per interval it missed.

Each test runs the real ``python -m crawler.master`` and ``crawler.worker`` against a
real image server on loopback, with stderr on a pseudo-terminal of a set size.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path
from typing import IO

import pytest
from conftest import (
    RUN_TIMEOUT,
    STAMP,
    assert_no_traceback,
    cli_command,
    cli_env,
    start_cli,
    wait_for_port,
)
from imageserver import ImageServer, make_image

INTERRUPTED = 130
ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # cursor moves (tqdm's, for other positions)
WIDE = 200  # columns: room for every bar of these runs
NARROW = [0, 1, 30, 60]  # columns: nothing drawn (0), tqdm's untrimmed line (1), cut lines


class Terminal:
    """A pseudo-terminal of ``columns`` x ``rows`` for a command's stderr; what reaches it
    is read on a thread (a full terminal would block the writer)."""

    def __init__(self, columns: int, rows: int = 24) -> None:
        self.leader, self._follower = pty.openpty()
        size = struct.pack("HHHH", rows, columns, 0, 0)
        fcntl.ioctl(self._follower, termios.TIOCSWINSZ, size)
        self._received: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)

    def start(self, command: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(command, env=cli_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=self._follower)  # fmt: skip
        os.close(self._follower)
        self._reader.start()
        return proc

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.leader, 65536)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not chunk:
                return
            self._received.append(chunk)

    def raw(self) -> str:
        return b"".join(self._received).decode("utf-8", "replace")

    def close(self) -> str:
        """Wait for every writer to close the terminal; everything it received."""
        self._reader.join(timeout=RUN_TIMEOUT)
        os.close(self.leader)
        return self.raw()


def screen_lines(raw: str) -> list[str]:
    """The lines a terminal shows for ``raw``: a carriage return goes back to the start of
    the line, and what follows is written over what was there."""
    shown = []
    for line in ESCAPES.sub("", raw).replace("\r\n", "\n").split("\n"):
        cells: list[str] = []
        for part in line.split("\r"):
            cells[: len(part)] = part
        shown.append("".join(cells).rstrip())
    return shown


def slow_list(server: ImageServer, tmp_path: Path, count: int, delay: float) -> Path:
    urls = [server.add(f"/slow/{i}.png", make_image("PNG", 32, 24, seed=i), delay=delay)
            for i in range(count)]  # fmt: skip
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
    return listing


def master_command(listing: Path, out: Path, *flags: str) -> list[str]:
    return cli_command("master", str(listing), "--bind", "127.0.0.1", "--output", str(out),
                       "--no-report", *flags)  # fmt: skip


def run_on(terminal: Terminal, command: list[str]) -> tuple[int, str]:
    proc = terminal.start(command)
    try:
        code = proc.wait(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    return code, terminal.close()


@pytest.mark.parametrize("columns", [*NARROW, WIDE])
def test_a_terminal_too_narrow_for_the_bar_gets_progress_lines(
    tmp_path: Path, image_server: ImageServer, columns: int
) -> None:
    """On 0 columns (tqdm draws nothing) there was no progress at all, and on a narrow
    terminal a bar cut before its counts: now the periodic lines come there too. A wide
    terminal has the bar and no lines."""
    listing = slow_list(image_server, tmp_path, 8, 0.6)
    command = master_command(listing, tmp_path / "out", "--local-workers", "1",
                             "--threads", "2", "--progress-interval", "0.5")  # fmt: skip
    code, raw = run_on(Terminal(columns), command)
    assert code == 0, raw
    assert_no_traceback(raw)
    progress = [line for line in screen_lines(raw) if "crawler-master: progress: " in line]
    if columns == WIDE:
        assert "8/8" in raw and not progress, raw
        return
    assert progress, raw
    if columns == 0:  # a recording, as a file is: no bar, and every line stamped
        assert "url/s" not in raw, raw
        serving = [line for line in screen_lines(raw) if "serving run" in line]
        assert all(STAMP.match(line) for line in [*serving, *progress]), raw
        progress = [STAMP.sub("", line) for line in progress]
    # Each on a line of its own, above what the bar drew of its line
    assert all(re.match(r"crawler-master: progress: \d/8 URLs, [\d.]+ URLs/s, ok \d", p)
               for p in progress), raw  # fmt: skip


@pytest.mark.parametrize("columns", [0, 40])
def test_a_waiting_master_says_so_on_a_terminal_too_narrow_for_the_bar(
    tmp_path: Path, image_server: ImageServer, columns: int
) -> None:
    """The "waiting for workers" notice was on the bar only: a stalled master on a
    terminal of 0 columns said nothing."""
    listing = slow_list(image_server, tmp_path, 2, 0.0)
    command = master_command(listing, tmp_path / "out", "--idle-timeout", "12")
    code, raw = run_on(Terminal(columns), command)
    assert code == 3, raw  # EXIT_INCOMPLETE: no worker came
    shown = "\n".join(screen_lines(raw))
    assert re.search(r"waiting for workers: none active for 1\d s; giving up in \d s", shown), raw


@pytest.mark.parametrize("columns", [0, 30])
def test_a_worker_on_a_terminal_too_narrow_for_its_bar_logs_progress(
    tmp_path: Path, image_server: ImageServer, columns: int
) -> None:
    listing = slow_list(image_server, tmp_path, 8, 0.6)
    master = start_cli("master", str(listing), "--bind", "127.0.0.1", "--output",
                       str(tmp_path / "out"), "--no-report", "--no-progress")  # fmt: skip
    try:
        port = wait_for_port(master)
        worker = cli_command("worker", "--server", "127.0.0.1", "--port", str(port),
                             "--output", str(tmp_path / "images"), "--threads", "2",
                             "--progress-interval", "0.5")  # fmt: skip
        code, raw = run_on(Terminal(columns), worker)
        assert master.wait(timeout=RUN_TIMEOUT) == 0
    finally:
        if master.poll() is None:
            master.kill()
        master.communicate()
    assert code == 0, raw
    progress = [STAMP.sub("", line) for line in screen_lines(raw) if "progress: " in line]
    assert progress, raw
    assert all(re.match(r"crawler-worker: progress: \d URLs \([\d.]+/s\), \d ok", p)
               for p in progress), raw  # fmt: skip


def test_the_stop_line_goes_above_the_masters_bar(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """Ctrl-C on a terminal: "stopping: ..." was written onto the end of the bar's line
    (``...workers=1]crawler-master: stopping: ...``). Every line of the master's is a
    line of its own on the screen."""
    listing = slow_list(image_server, tmp_path, 6, 2.0)
    terminal = Terminal(WIDE)
    proc = terminal.start(master_command(listing, tmp_path / "out", "--local-workers", "1",
                                         "--threads", "2"))  # fmt: skip
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while "url/s" not in terminal.raw() or image_server.total_hits() < 1:
            assert time.monotonic() < deadline and proc.poll() is None, terminal.raw()
            time.sleep(0.05)
        time.sleep(0.3)  # the bar drawn again since (tqdm's mininterval is 0.1 s)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    raw = terminal.close()
    assert code == INTERRUPTED, raw
    shown = screen_lines(raw)
    assert any(line.startswith("crawler-master: stopping: no new work") for line in shown), raw
    glued = [line for line in shown if "crawler-master:" in line[1:] and "url/s" in line]
    assert not glued, raw


def test_every_line_of_the_master_goes_above_its_bar(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """With ``-v`` the master logs a line per URL (and per worker's hello) while its bar
    is drawn, from its main thread and from its server's: each on a line of its own."""
    listing = slow_list(image_server, tmp_path, 8, 0.3)
    command = master_command(listing, tmp_path / "out", "--local-workers", "1",
                             "--threads", "2", "-v")  # fmt: skip
    code, raw = run_on(Terminal(WIDE), command)
    assert code == 0, raw
    shown = screen_lines(raw)
    per_url = [line for line in shown if line.startswith("crawler-master: ok http://")]
    assert "url/s" in raw and len(per_url) == 8, raw
    glued = [line for line in shown if "crawler-master:" in line[1:]]
    assert not glued, raw


def test_a_master_continued_after_a_stop_says_one_progress_line(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """Stopped (SIGSTOP, as Ctrl-Z) for several --progress-interval and continued, the
    master wrote one line per interval missed, all at once; now one, the next a whole
    interval later."""
    listing = slow_list(image_server, tmp_path, 10, 1.0)
    proc = subprocess.Popen(master_command(listing, tmp_path / "out", "--local-workers", "1",
                                           "--threads", "2", "--no-progress",
                                           "--progress-interval", "1"),
                            env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    arrived: list[tuple[float, str]] = []
    reader = threading.Thread(target=_timed_lines, args=(proc.stderr, arrived), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not any("progress: " in line for _, line in list(arrived)):
            assert time.monotonic() < deadline and proc.poll() is None, arrived
            time.sleep(0.05)
        proc.send_signal(signal.SIGSTOP)
        time.sleep(5)  # five intervals missed
        continued = time.monotonic()
        proc.send_signal(signal.SIGCONT)
        code = proc.wait(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=RUN_TIMEOUT)
    assert code == 0, arrived
    after = [at for at, line in arrived if at >= continued and "progress: " in line]
    assert after, arrived
    # Generous: a burst came within milliseconds; the next line is due 1 s later.
    assert not [at for at in after[1:] if at - after[0] < 0.5], arrived


def _timed_lines(stream: IO[str], sink: list[tuple[float, str]]) -> None:
    """Each line of ``stream`` with when it came (monotonic), until its end."""
    for line in stream:
        sink.append((time.monotonic(), line))
