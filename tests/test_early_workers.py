"""Local workers start while the master plans (issue 15, "no fixed overhead").

The master listens and starts ``--local-workers`` before it imports its heavy modules and
reads the lists, so the workers connect while planning is still going on. Planning is
made slow for real here: the list comes on the master's stdin, and the test holds the
pipe open until the workers started early have said hello. Then: every URL is still done; a planning
failure still ends with one line and its exit code; a signal during planning stops the
run at once (also while a named pipe as the list waits for its writer); a list on a
named pipe is opened once; a run with nothing to do exits; and no worker process is ever
left behind.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import (
    RUN_TIMEOUT,
    SESSION_ENV,
    assert_no_traceback,
    cli_command,
    cli_env,
    read_rows,
    run_cli,
)
from imageserver import ImageServer, make_image

from crawler import constants as c
from crawler.master.endpoints import BoardSlot, RunControl, TaskQueue
from crawler.master.leases import LeaseBoard
from crawler.master.workers import WorkerRegistry
from crawler.protocol import IDENTITY

HELLO = re.compile(r"worker \S+ said hello")
POLL_IDLE = 2.0  # worker.pacing.POLL_IDLE: held longer, every worker's get came back empty once


def _images(server: ImageServer, count: int) -> list[str]:
    kinds = ("JPEG", "PNG", "GIF", "WEBP")
    return [
        server.add(f"/early/{i}.img", make_image(kinds[i % 4], 40 + i, 30, seed=i))
        for i in range(count)
    ]


def _workers_of(output: Path) -> list[int]:
    """Live (not zombie) worker processes started for ``output``, or started by a master
    of this test before it had read its flags (``--args-from-stdin``: no ``--output`` on
    their command line; known by the test's PYTEST_CURRENT_TEST, which they inherit)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            words = [a.decode(errors="replace") for a in argv]
            ours = str(output) in words or (
                c.ARGS_FROM_STDIN in words and _this_test((entry / "environ").read_bytes())
            )
        except (OSError, IndexError):
            continue  # gone meanwhile
        if "crawler.worker" in words and ours and state != "Z":
            found.append(int(entry.name))
    return found


def _this_test(environ: bytes) -> bool:
    """Does a process environment come from the running test: its node id, and this
    test process (``SESSION_ENV``; until 2026-12-02 the node id alone, and a suite run
    beside another killed the other's workers while they started: its masters then
    waited for hellos that never came)?"""
    current = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    found = {}
    for item in environ.split(b"\0"):
        name, _, value = item.decode(errors="replace").partition("=")
        found[name] = value
    return (
        bool(current)
        and found.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0] == current
        and found.get(SESSION_ENV) == str(os.getpid())
    )


class StdinMaster:
    """A master reading its list from stdin (or ``source``: a named pipe, say), ``-v``, two
    local workers; stderr collected."""

    def __init__(self, tmp: Path, *flags: str, source: str = "-") -> None:
        self.output = tmp / "out"
        self.manifest = tmp / "m.jsonl"
        args = [source, "--output", str(self.output), "--manifest", str(self.manifest)]
        args += ["--local-workers", "2", "--threads", "4", "--no-progress", "-v", *flags]
        self.proc = subprocess.Popen(
            cli_command("master", *args),
            env=cli_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def write(self, lines: list[str], close: bool = False) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(f"{line}\n" for line in lines))
        self.proc.stdin.flush()
        if close:
            self.proc.stdin.close()

    def wait_for_hellos(self, count: int = 1) -> None:
        """Until ``count`` workers said hello (the list still open: planning not done):
        the first local worker and its copies (``--processes``) all start at once."""
        with self._changed:
            done = self._changed.wait_for(
                lambda: sum(bool(HELLO.search(x)) for x in self.lines) >= count, RUN_TIMEOUT
            )
        assert done, "".join(self.lines)

    def finish(self) -> tuple[int, str, str]:
        """Exit code, stdout, stderr; the master must end within RUN_TIMEOUT."""
        try:
            code = self.proc.wait(timeout=RUN_TIMEOUT)  # before reading: never a hang
            out = self.proc.stdout.read() if self.proc.stdout else ""
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)
        return code, out, "".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def master_factory(tmp_path: Path):
    started: list[StdinMaster] = []

    def make(*flags: str, source: str = "-") -> StdinMaster:
        started.append(StdinMaster(tmp_path, *flags, source=source))
        return started[-1]

    yield make
    for master in started:
        master.kill()
        for pid in _workers_of(master.output):  # never leaked, whatever the test found
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_workers_that_connect_during_planning_finish_every_url(
    master_factory, image_server: ImageServer
) -> None:
    urls = _images(image_server, 24)
    master = master_factory("--idle-timeout", "1")
    master.write(urls[:10])
    master.wait_for_hellos()
    # Planning waits for the rest of the list while the workers ask for work: longer than
    # their idle poll and than --idle-timeout, which counts only once serving has begun.
    time.sleep(POLL_IDLE + 0.5)
    master.write(urls[10:], close=True)
    code, out, err = master.finish()
    assert code == c.EXIT_OK, err
    assert_no_traceback(out, err)
    assert "error" not in err.lower()
    rows = read_rows(master.manifest)
    assert sorted(r["url"] for r in rows) == sorted(urls)
    assert {r["status"] for r in rows} == {c.OK}
    assert all((master.output / r["path"]).is_file() for r in rows)
    assert _workers_of(master.output) == []


@pytest.mark.parametrize("when", ["at_once", "after_hello"])
def test_planning_failure_stops_the_early_workers(
    master_factory, image_server: ImageServer, when: str
) -> None:
    """A CSV on stdin without the URL column fails while planning (stdin is not checked
    before: reading it would consume it): one line, exit 1, the workers stopped, whether
    they were still starting or already connected."""
    master = master_factory("--input-format", "csv")
    if when == "after_hello":
        master.wait_for_hellos()
    master.write(["name,link", "a,http://127.0.0.1:9/x.jpg"], close=True)
    code, out, err = master.finish()
    assert code == c.EXIT_ERROR, err
    assert_no_traceback(out, err)
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "has no column 'url'" in errors[0], err
    assert _workers_of(master.output) == []


@pytest.mark.parametrize("signals", [1, 2])
def test_a_signal_during_planning_stops_at_once(
    master_factory, image_server: ImageServer, signals: int
) -> None:
    """A SIGTERM while the master plans (its list still open: planning waits for more)
    stops it at once: nothing was leased, so nothing is lost. Exit 130, one line, no
    worker left, no traceback, nothing fetched."""
    urls = _images(image_server, 6)
    master = master_factory("--grace", "5")
    master.write(urls[:3])  # and the list stays open
    master.wait_for_hellos()
    for _ in range(signals):
        master.proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)  # two signals, not one delivered twice
    code, out, err = master.finish()
    assert code == c.EXIT_INTERRUPTED, err
    assert_no_traceback(out, err)
    assert "interrupted" in err
    assert _workers_of(master.output) == []
    # A stop before the manifest was opened leaves none (seen on a loaded machine).
    rows = read_rows(master.manifest) if master.manifest.exists() else []
    assert not any(r["status"] == c.OK for r in rows)
    assert image_server.total_hits() == 0


def _feed(fifo: Path, urls: list[str], failures: list[BaseException]) -> None:
    """Write ``urls`` into the named pipe in two parts, a pause between them."""
    try:
        with open(fifo, "w", encoding="utf-8") as fh:  # waits for the master to open it
            fh.write("".join(f"{url}\n" for url in urls[:3]))
            fh.flush()
            time.sleep(0.5)
            fh.write("".join(f"{url}\n" for url in urls[3:]))
    except BaseException as exc:  # reported by the test: a pipe closed under the writer
        failures.append(exc)


def test_a_list_on_a_named_pipe_is_opened_once_and_read_to_its_end(
    master_factory, image_server: ImageServer, tmp_path: Path
) -> None:
    """A named pipe as the list: the start-up checks do not open it (opening waits for
    its writer, and closing it again would cut the writer off before planning opens it
    for good: the master then waited forever)."""
    urls = _images(image_server, 8)
    fifo = tmp_path / "urls.fifo"
    os.mkfifo(fifo)
    failures: list[BaseException] = []
    writer = threading.Thread(target=_feed, args=(fifo, urls, failures), daemon=True)
    writer.start()
    master = master_factory(source=str(fifo))
    code, out, err = master.finish()
    writer.join(timeout=10)
    assert failures == [] and not writer.is_alive(), failures
    assert code == c.EXIT_OK, err
    assert_no_traceback(out, err)
    assert sorted(r["url"] for r in read_rows(master.manifest)) == sorted(urls)


def test_a_signal_while_a_named_pipe_has_no_writer(master_factory, tmp_path: Path) -> None:
    """A named pipe nobody writes to: planning waits in its open(); one SIGINT ends the
    run (exit 130, one line, no worker left), not only a second one."""
    fifo = tmp_path / "urls.fifo"
    os.mkfifo(fifo)
    master = master_factory(source=str(fifo))
    master.wait_for_hellos()  # the master is serving, waiting for the pipe's writer
    master.proc.send_signal(signal.SIGINT)
    code, out, err = master.finish()
    assert code == c.EXIT_INTERRUPTED, err
    assert_no_traceback(out, err)
    assert _workers_of(master.output) == []


def _tgkill(pid: int, tid: int, signum: int) -> None:
    """Send ``signum`` to thread ``tid`` of process ``pid`` alone (tgkill(2))."""
    libc = ctypes.CDLL(None, use_errno=True)
    if hasattr(libc, "tgkill"):  # glibc 2.30 and later
        done = libc.tgkill(pid, tid, signum)
    else:
        done = libc.syscall(234, pid, tid, signum)  # SYS_tgkill on x86-64
    assert done == 0, os.strerror(ctypes.get_errno())


def test_a_stop_signal_another_thread_took_still_stops_planning(
    master_factory, tmp_path: Path
) -> None:
    """A stop signal that reaches a thread other than the main one (as one arriving just
    before the main thread blocks does, in effect): the main thread, waiting in the open
    of a named pipe nobody writes to, is nudged (``signalwake.nudge_the_main_thread``),
    so the handler runs and the run ends (exit 130); until 2026-12-02 it waited for the
    pipe's writer for good (seen 3 times in 80 runs of the test above)."""
    fifo = tmp_path / "urls.fifo"
    os.mkfifo(fifo)
    master = master_factory(source=str(fifo))
    master.wait_for_hellos()
    pid = master.proc.pid
    other = min(int(t.name) for t in Path(f"/proc/{pid}/task").iterdir() if int(t.name) != pid)
    _tgkill(pid, other, signal.SIGTERM)
    code, out, err = master.finish()
    assert code == c.EXIT_INTERRUPTED, err
    assert_no_traceback(out, err)
    assert _workers_of(master.output) == []


def test_nothing_to_do_exits_and_leaves_no_worker(
    tmp_path: Path, image_server: ImageServer
) -> None:
    urls = _images(image_server, 4)
    listed = tmp_path / "list.txt"
    listed.write_text("\n".join(urls) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    args = [str(listed), "--output", str(out), "--local-workers", "2", "--no-progress"]
    first = run_cli("master", *args)
    assert first.returncode == c.EXIT_OK, first.stderr
    again = run_cli("master", *args)  # everything kept: the workers started early go
    assert again.returncode == c.EXIT_OK, again.stderr
    assert_no_traceback(again.stdout, again.stderr)
    assert "error" not in again.stderr.lower()
    assert _workers_of(out) == []


def test_dry_run_starts_no_worker(tmp_path: Path, url_list: Path) -> None:
    out = tmp_path / "out"
    seen: list[int] = []
    proc = subprocess.Popen(
        cli_command(
            "master", str(url_list), "--output", str(out), "--local-workers", "2", "--dry-run"
        ),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    while proc.poll() is None:  # a worker would live ~0.2 s at least: importing
        seen += _workers_of(out)
        time.sleep(0.01)
    stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == c.EXIT_OK, stderr
    assert "dry run" in stdout
    assert seen == []


def test_the_endpoints_before_and_after_the_board() -> None:
    """In process: before planning hands the board over, hello is answered, get returns no
    tasks (never "over"), and no id is anyone's; a get waiting for the board goes on with
    it as soon as it is there."""
    slot = BoardSlot(WorkerRegistry())
    tasks = TaskQueue(slot)
    control = RunControl(slot, {"run_id": "r", "policy": "{}"})
    assert control.hello("w1", {"host": "h", **IDENTITY}) == {
        "run_id": "r",
        "policy": "{}",
        **IDENTITY,
    }
    assert tasks.get("w1", 5, 0.05) == {"tasks": [], "over": False}
    assert tasks.renew("w1", [1, 2, "x"]) == {"renewed": 0, "gone": [1, 2]}
    assert tasks.release("w1", [1]) == 0
    assert tasks.robots("w1", [1]) == [] and tasks.robots_found("w1", [{}]) == 0
    assert slot.workers.active(within=60) == ["w1"]

    board = LeaseBoard(["http://127.0.0.1:9/a.jpg"], None, 60, 3, workers=slot.workers)
    answers: list[dict] = []
    waiting = threading.Thread(target=lambda: answers.append(tasks.get("w1", 5, 30)))
    waiting.start()
    slot.fill(board)
    waiting.join(timeout=RUN_TIMEOUT)
    assert len(answers) == 1 and len(answers[0]["tasks"]) == 1
    assert board.workers is slot.workers


def test_every_local_worker_starts_once(tmp_path: Path, image_server: ImageServer) -> None:
    """More local workers than CPUs: one process and its copies (``--processes``), each
    exactly once, all working (until 2026-12-01 those beyond the CPUs started once the
    first had said hello, each its own start-up)."""
    urls = [
        image_server.add(f"/slow/{i}.png", make_image("PNG", 30 + i, 20, seed=i), delay=0.2)
        for i in range(30)
    ]
    listed = tmp_path / "list.txt"
    listed.write_text("\n".join(urls) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    wanted = 3  # more than a 2-CPU machine's, and each gets work from 30 URLs
    args = [str(listed), "--output", str(out), "--local-workers", str(wanted)]
    proc = subprocess.Popen(
        cli_command("master", *args, "--threads", "2", "--no-progress"),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    seen: set[int] = set()
    while proc.poll() is None:  # each worker lives a second at least: 30 URLs x 0.2 s
        seen.update(_workers_of(out))
        time.sleep(0.01)
    stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == c.EXIT_OK, stderr
    assert_no_traceback(stdout, stderr)
    assert len(seen) == wanted
    rows = read_rows(out / "manifest.jsonl")
    assert sorted(r["url"] for r in rows) == sorted(urls)
    assert {r["status"] for r in rows} == {c.OK}
    assert len({r["worker"] for r in rows}) == wanted
