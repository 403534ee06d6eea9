"""Day-one mistakes with the real commands: each must end in one clear line, never a traceback.

A user who gets the port, the list, the output folder or the key wrong must see what is
wrong and what to do, on one line of stderr, with the documented exit code (1 for bad
input or environment, 2 for a bad command line).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import (
    RUN_TIMEOUT,
    STAMP,
    assert_no_traceback,
    cli_command,
    cli_env,
    closed_port,
    free_port,
    read_rows,
    run_cli,
    start_cli,
    unstamped,
    wait_for_port,
)
from imageserver import ImageServer

from crawler.auth import generate_authkey
from crawler.cli.flags import report_parser, worker_parser
from crawler.cli.master_flags import master_parser
from crawler.cli.values import Number

EXIT_ERROR = 1
EXIT_USAGE = 2
QUICK = 30  # seconds: none of these should take more than a moment; this only stops a hang


def one_error_line(result: subprocess.CompletedProcess[str], prog: str) -> str:
    """The command failed with exit 1 and said why in exactly one line on stderr."""
    assert result.returncode == EXIT_ERROR, (result.returncode, result.stdout, result.stderr)
    assert_no_traceback(result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    line = unstamped(lines[0])
    assert line.startswith(f"{prog}: error: "), line
    return line


def no_key_env() -> dict[str, str]:
    env = cli_env()
    del env["CRAWLER_AUTHKEY"]
    return env


@pytest.fixture
def url_file(tmp_path: Path) -> Path:
    """A list whose URL is never fetched: these runs all stop before any download."""
    path = tmp_path / "list.txt"
    path.write_text(f"http://127.0.0.1:{free_port()}/never.png\n", encoding="utf-8")
    return path


def master_args(url_file: Path, out: Path, port: int | str = 0) -> list[str]:
    return [str(url_file), "--bind", "127.0.0.1", "--port", str(port), "--output", str(out)]


def worker_args(port: int, out: Path) -> list[str]:
    return ["--server", "127.0.0.1", "--port", str(port), "--output", str(out)]


def serve_list(
    tmp_path: Path, urls: list[str], reaper: list[subprocess.Popen[str]]
) -> tuple[subprocess.Popen[str], int, Path]:
    """A master serving ``urls`` on a free port, with no worker yet: (it, port, output)."""
    listing, out, port = tmp_path / "list.txt", tmp_path / "out", free_port()
    listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
    master = start_cli("master", *master_args(listing, out, port), "--no-progress")
    reaper.append(master)
    assert wait_for_port(master) == port
    return master, port, out


# ------------------------------------------------------------------------- master
def test_port_already_in_use(tmp_path: Path, url_file: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    earlier = '{"url": "http://127.0.0.1:9/old.png", "status": "ok"}\n'
    (out / "manifest.jsonl").write_text(earlier, encoding="utf-8")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("master", *master_args(url_file, out, port), timeout=QUICK)
    line = one_error_line(result, "crawler-master")
    assert f"port {port} is already in use" in line
    assert "--port" in line
    # The failed start left the earlier run's manifest as it was.
    assert (out / "manifest.jsonl").read_text(encoding="utf-8") == earlier


def test_a_port_in_use_makes_no_folder(tmp_path: Path, url_file: Path) -> None:
    """Until 2026-12-01 each failed bind left the manifest's folder behind, empty."""
    out = tmp_path / "night" / "out"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("master", *master_args(url_file, out, port), timeout=QUICK)
    assert f"port {port} is already in use" in one_error_line(result, "crawler-master")
    assert not (tmp_path / "night").exists()


def test_list_file_missing(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-list.txt"
    env = {k: v for k, v in cli_env().items() if k != "CRAWLER_AUTHKEY"}  # a key is made
    result = run_cli("master", *master_args(missing, tmp_path / "out"), env=env, timeout=QUICK)
    line = one_error_line(result, "crawler-master")
    assert f"cannot read URL list {missing}: No such file or directory" in line
    assert not (tmp_path / "out").exists()  # it was made, to hold a new key and nothing else


@pytest.mark.parametrize("store", ["", " "])
def test_an_empty_store_is_refused(tmp_path: Path, url_file: Path, store: str) -> None:
    """``--store "$STORE"`` with the variable unset meant each worker's own folder, in
    silence, and every shared copy was then listed as superseded ("safe to delete")."""
    result = run_cli("master", *master_args(url_file, tmp_path / "out"), "--store", store)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("crawler-master: error: argument --store: empty"), last
    assert_no_traceback(result.stdout, result.stderr)
    assert not (tmp_path / "out").exists()


def test_list_is_an_empty_folder(tmp_path: Path) -> None:
    folder = tmp_path / "lists"
    folder.mkdir()
    result = run_cli("master", *master_args(folder, tmp_path / "out"), timeout=QUICK)
    line = one_error_line(result, "crawler-master")
    assert f"URL list folder {folder} holds no list files" in line


def test_second_list_missing_stops_before_anything(tmp_path: Path, url_file: Path) -> None:
    missing = tmp_path / "second.txt"
    out = tmp_path / "out"
    args = [str(missing), *master_args(url_file, out)]  # LIST [LIST ...] come first
    result = run_cli("master", *args, timeout=QUICK)
    line = one_error_line(result, "crawler-master")
    assert f"cannot read URL list {missing}" in line
    assert not (out / "manifest.jsonl").exists()


@pytest.mark.parametrize("prog", ["master", "worker"])
def test_output_folder_not_writable(tmp_path: Path, url_file: Path, prog: str) -> None:
    (tmp_path / "file.txt").write_text("a regular file, not a folder\n")
    out = tmp_path / "file.txt" / "sub"
    args = master_args(url_file, out) if prog == "master" else worker_args(free_port(), out)
    result = run_cli(prog, *args, timeout=QUICK)
    line = one_error_line(result, f"crawler-{prog}")
    # (until 2026-12-01: "is not writable: Not a directory"; the folder is made only when
    # the run can start)
    why = f"{out.parent} is a file, not a folder"
    assert line.endswith(f"output folder {out} cannot be made: {why}")


def test_manifest_in_use_by_another_master(
    tmp_path: Path, url_file: Path, reaper: list[subprocess.Popen[str]]
) -> None:
    out = tmp_path / "out"
    first = start_cli("master", *master_args(url_file, out), "--no-progress")
    reaper.append(first)
    wait_for_port(first)
    result = run_cli("master", *master_args(url_file, out), timeout=QUICK)
    line = one_error_line(result, "crawler-master")
    assert f"manifest {out / 'manifest.jsonl'} is in use by another master" in line
    assert "--manifest" in line
    assert first.poll() is None  # the first master was not disturbed


NOT_MANIFESTS = {
    "list": None,  # the run's own URL list
    "text": b"# notes\nhttp://127.0.0.1/a.png\nsecond line\n",
    "json-not-rows": b'{"a": 1}\n[1, 2]\n',
    "binary": bytes(range(256)) * 3,  # no newline at all
    "binary-lines": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\n" * 40,
}


@pytest.mark.parametrize("kind", sorted(NOT_MANIFESTS))
def test_a_file_that_is_no_manifest_is_refused_untouched(
    tmp_path: Path, url_file: Path, kind: str
) -> None:
    """--manifest naming the list itself, or any existing file without manifest rows:
    one line and exit 1, the file byte for byte as it was (resuming from it used to skip
    its lines as unreadable, and compacting overwrote it)."""
    target = url_file if NOT_MANIFESTS[kind] is None else tmp_path / "other.dat"
    if NOT_MANIFESTS[kind] is not None:
        target.write_bytes(NOT_MANIFESTS[kind])
    before = target.read_bytes()
    args = [*master_args(url_file, tmp_path / "out"), "--manifest", str(target)]
    line = one_error_line(run_cli("master", *args, timeout=QUICK), "crawler-master")
    assert str(target) in line and "--manifest" in line
    assert target.read_bytes() == before
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    "text",
    [
        '\ufeff{"url": "http://127.0.0.1:9/x.png", "status": "http_error"}\r\n',  # BOM, CRLF
        '{"url": "http://127.0.0.1:9/x.png", "sta',  # one torn row: a first write cut short
    ],
)
def test_a_manifest_of_one_odd_row_is_still_a_manifest(tmp_path: Path, text: str) -> None:
    listed = tmp_path / "list.txt"
    listed.write_text("not a url\n", encoding="utf-8")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(text, encoding="utf-8")
    args = [*master_args(listed, tmp_path / "out"), "--manifest", str(manifest)]
    result = run_cli("master", *args, "--no-progress", timeout=RUN_TIMEOUT)
    assert result.returncode == 4, result.stderr  # degraded: its one line is not a URL
    assert_no_traceback(result.stdout, result.stderr)
    assert '"status":"invalid_url"' in manifest.read_text(encoding="utf-8-sig")


@pytest.mark.parametrize("twin", ["same", "dotted", "linked"])
def test_a_list_given_twice_is_one_line(tmp_path: Path, url_file: Path, twin: str) -> None:
    """By the same name, another path to it, or a symlink: every row would name its twin
    as the line it duplicates."""
    other = {"same": url_file, "dotted": url_file.parent / "." / url_file.name}.get(twin)
    if other is None:
        other = tmp_path / "link.txt"
        other.symlink_to(url_file)
    args = [str(url_file), str(other), "--output", str(tmp_path / "out")]
    result = run_cli("master", *args, timeout=QUICK)
    line = one_error_line(result, "crawler-master")
    assert f"URL list {other} is given twice" in line and line.endswith("give each list once")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- key
def test_worker_with_wrong_key_is_refused_and_master_carries_on(
    tmp_path: Path,
    image_server: ImageServer,
    routes: dict[str, str],
    reaper: list[subprocess.Popen[str]],
) -> None:
    master, port, out = serve_list(tmp_path, [routes["png"]], reaper)
    wrong = cli_env(CRAWLER_AUTHKEY="a-different-key-0123456789")
    result = run_cli("worker", *worker_args(port, out), env=wrong, timeout=QUICK)
    line = one_error_line(result, "crawler-worker")
    assert f"the master at 127.0.0.1:{port} rejected this worker's authkey" in line
    assert "CRAWLER_AUTHKEY" in line
    assert image_server.total_hits() == 0

    right = run_cli("worker", *worker_args(port, out), "--threads", "1")
    assert right.returncode == 0, right.stderr
    master_out, master_err = master.communicate(timeout=RUN_TIMEOUT)
    assert master.returncode == 0, master_err
    assert_no_traceback(master_out, master_err)
    assert [row["status"] for row in read_rows(out / "manifest.jsonl")] == ["ok"]


def test_worker_where_nothing_listens(tmp_path: Path) -> None:
    with closed_port() as port:
        args = [*worker_args(port, tmp_path / "out"), "--connect-timeout", "5"]
        result = run_cli("worker", *args, timeout=QUICK)
    line = one_error_line(result, "crawler-worker")
    assert f"cannot reach the master at 127.0.0.1:{port}: Connection refused" in line


@pytest.mark.parametrize("wait", [[], ["--wait"]])
def test_a_stop_during_a_connect_that_never_answers_is_prompt(
    tmp_path: Path, wait: list[str]
) -> None:
    """Something accepts and never speaks (no master: an HTTP server, say): a SIGTERM
    while the worker waits for the handshake ends it at once, not after
    --connect-timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        args = [*worker_args(port, tmp_path / "out"), "--connect-timeout", "30", *wait]
        worker = start_cli("worker", *args)
        try:
            listener.settimeout(QUICK)
            accepted = [listener.accept()[0]]  # the worker is connecting now
            time.sleep(0.3)  # inside the handshake's wait
            signalled = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            _, err = worker.communicate(timeout=QUICK)
            took = time.monotonic() - signalled
        finally:
            if worker.poll() is None:
                worker.kill()
            for conn in accepted:
                conn.close()
    assert worker.returncode == 130, err
    assert_no_traceback(err)
    assert took < 5, took  # --connect-timeout is 30 s: it did not wait that out


def test_worker_at_a_port_that_hangs_up(tmp_path: Path) -> None:
    """Something listens there, accepts, and closes at once (no master): one line in
    words, not a bare ``EOFError()``."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        stop = threading.Event()

        def hang_up() -> None:
            listener.settimeout(0.1)
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    listener.accept()[0].close()

        closer = threading.Thread(target=hang_up, daemon=True)
        closer.start()
        try:
            args = [*worker_args(port, tmp_path / "out"), "--connect-timeout", "5"]
            result = run_cli("worker", *args, timeout=QUICK)
        finally:
            stop.set()
            closer.join(timeout=5)
    line = one_error_line(result, "crawler-worker")
    assert f"cannot talk to the master at 127.0.0.1:{port}: it closed the connection" in line


def test_worker_without_key(tmp_path: Path) -> None:
    args = worker_args(free_port(), tmp_path / "out")
    result = run_cli("worker", *args, env=no_key_env(), timeout=QUICK)
    line = one_error_line(result, "crawler-worker")
    assert "no authkey: set $CRAWLER_AUTHKEY or pass --authkey-file" in line


@pytest.mark.parametrize("prog", ["master", "worker"])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, url_file: Path, prog: str) -> None:
    key = tmp_path / "crawler.key"
    key.write_text("0123456789abcdef0123456789abcdef\n")
    key.chmod(0o644)
    out = tmp_path / "out"
    port = free_port()
    args = master_args(url_file, out, port) if prog == "master" else worker_args(port, out)
    result = run_cli(prog, *args, "--authkey-file", str(key), env=no_key_env(), timeout=QUICK)
    line = one_error_line(result, f"crawler-{prog}")
    assert f"authkey file {key} is open to other users (mode 0644); run: chmod 600 {key}" in line
    if prog == "worker":  # the same key with mode 0600 is accepted: the worker gets further
        key.chmod(0o600)
        with closed_port() as closed:
            args = worker_args(closed, out)
            result = run_cli(
                prog, *args, "--authkey-file", str(key), env=no_key_env(), timeout=QUICK
            )
        line = one_error_line(result, "crawler-worker")
        assert "cannot reach the master" in line


@pytest.mark.parametrize("prog", ["master", "worker"])
def test_too_short_key_is_refused(tmp_path: Path, url_file: Path, prog: str) -> None:
    out = tmp_path / "out"
    port = free_port()
    args = master_args(url_file, out, port) if prog == "master" else worker_args(port, out)
    result = run_cli(prog, *args, env=cli_env(CRAWLER_AUTHKEY="short-key"), timeout=QUICK)
    line = one_error_line(result, f"crawler-{prog}")
    assert "authkey from $CRAWLER_AUTHKEY is too short (at least 16 bytes)" in line

    key = tmp_path / "short.key"
    key.write_text("  tiny  \n")
    key.chmod(0o600)
    result = run_cli(prog, *args, "--authkey-file", str(key), timeout=QUICK)
    line = one_error_line(result, f"crawler-{prog}")
    assert f"authkey from {key} is too short" in line


def test_missing_key_file(tmp_path: Path) -> None:
    key = tmp_path / "absent.key"
    args = [*worker_args(free_port(), tmp_path / "out"), "--authkey-file", str(key)]
    result = run_cli("worker", *args, timeout=QUICK)
    line = one_error_line(result, "crawler-worker")
    assert f"cannot read authkey file {key}: No such file or directory" in line


# ------------------------------------------------------------------------ argparse
@pytest.mark.parametrize(
    ("prog", "args", "message"),
    [
        ("master", [], "the following arguments are required: LIST"),
        ("master", ["list.txt", "--port", "70000"], "not a TCP port: 70000"),
        ("master", ["list.txt", "--port", "eighty"], "--port"),
        ("master", ["list.txt", "--threads", "0"], "must be at least 1, not 0"),
        ("master", ["list.txt", "--local-workers", "-1"], "must be 0 or more, not -1"),
        ("master", ["list.txt", "--lease-seconds", "0"], "must be at least 1, not 0"),
        ("master", ["list.txt", "--lease-seconds", "0.001"], "must be at least 1, not 0.001"),
        ("master", ["list.txt", "--lease-seconds", "nan"], "must be a finite number"),
        ("master", ["list.txt", "--host-delay", "inf"], "must be a finite number, not inf"),
        ("worker", ["--server", "127.0.0.1", "--connect-timeout", "1e999"], "finite number"),
        ("master", ["list.txt", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        ("worker", [], "the following arguments are required: --server"),
        ("worker", ["--server", "127.0.0.1", "--threads", "0"], "must be at least 1, not 0"),
        ("worker", ["--server", "127.0.0.1", "--port", "-5"], "not a TCP port (1-65535): '-5'"),
        ("worker", ["--server", "127.0.0.1", "--max-bytes", "5"], "unrecognized arguments"),
    ],
)
def test_bad_command_line_exits_2(tmp_path: Path, prog: str, args: list[str], message: str) -> None:
    result = run_cli(prog, *args, timeout=QUICK)
    assert result.returncode == EXIT_USAGE, (result.stdout, result.stderr)
    assert_no_traceback(result.stdout, result.stderr)
    assert result.stderr.startswith(f"usage: crawler-{prog} ")
    assert f"crawler-{prog}: error: " in result.stderr
    assert message in result.stderr


def test_no_flag_takes_an_endless_number() -> None:
    """Every number flag of every command refuses inf, -inf, nan and 1e999: an endless
    --host-delay or --lease-seconds would make a run wait forever."""
    checked = 0
    for parser in (master_parser(), worker_parser(), report_parser()):
        for action in parser._actions:
            assert action.type is not float, action.dest  # unchecked: takes "inf"
            if isinstance(action.type, Number) and action.type.kind is float:
                for text in ("inf", "-inf", "nan", "1e999"):
                    with pytest.raises(argparse.ArgumentTypeError, match="finite"):
                        action.type(text)
                checked += 1
    assert checked >= 8


def test_local_workers_that_cannot_be_started_are_one_line(tmp_path: Path) -> None:
    """An interpreter the user may not run (a service user and a root-owned venv) was a
    traceback from subprocess.Popen, exit 1 (a fresh user, 2026-12-01)."""
    (tmp_path / "l.txt").write_text("http://127.0.0.1:9/a.png\n")
    script = (
        "import sys; sys.executable = sys.argv[1]; "
        "from crawler.cli.master import main; sys.exit(main(sys.argv[2:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "no-python"), str(tmp_path / "l.txt"),
         "--output", str(tmp_path / "out"), "--port", "0", "--local-workers", "2",
         "--no-progress"],
        env=cli_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert_no_traceback(done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot start the local workers" in lines[0], lines


@pytest.mark.parametrize("prog", ["master", "worker"])
def test_threads_beyond_the_limit_are_refused_at_once(tmp_path: Path, prog: str) -> None:
    """--threads 100000 spun a minute starting threads, then died with a traceback at the
    system's limit (a fresh user, 2026-12-01): now argparse refuses it (exit 2, a line)."""
    first = [str(tmp_path / "list.txt")] if prog == "master" else ["--server", "127.0.0.1"]
    result = run_cli(prog, *first, "--threads", "100000", timeout=QUICK)
    assert result.returncode == 2, result.stderr
    assert_no_traceback(result.stderr)
    assert result.stderr.splitlines()[-1].endswith(
        "argument --threads: must be at most 1024, not 100000 (more workers give more downloads)"
    )


def test_threads_past_the_systems_limit_are_one_line() -> None:
    """Under a memory limit that leaves no room for 1,024 thread stacks (what ``ulimit``
    or a container sets), starting the download threads is a UsageError, one line."""
    script = (
        "import resource, time\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31))\n"
        "from crawler.exceptions import UsageError\n"
        "from crawler.worker.lane import start_threads\n"
        "try:\n"
        "    start_threads(lambda: time.sleep(2), 1024)\n"
        "except UsageError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=QUICK
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert re.fullmatch(
        r"cannot start download thread \d+ of 1024: can't start new thread; lower --threads\n",
        done.stdout,
    ), done.stdout


@pytest.mark.parametrize("prog", ["master", "worker"])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_authkey_variable_is_refused(
    tmp_path: Path, url_file: Path, prog: str, value: str
) -> None:
    """``CRAWLER_AUTHKEY=$KEY`` with KEY unset: until 2026-12-01 "no key", and a nightly
    master made a new one that every waiting worker refused (a fresh user's)."""
    out, port = tmp_path / "out", free_port()
    args = master_args(url_file, out, port) if prog == "master" else worker_args(port, out)
    result = run_cli(prog, *args, env=cli_env(CRAWLER_AUTHKEY=value), timeout=QUICK)
    line = one_error_line(result, f"crawler-{prog}")
    assert "$CRAWLER_AUTHKEY is set but empty" in line, line
    assert not (out / "authkey").exists()


def test_a_rerun_with_the_generated_key_says_how_workers_connect(tmp_path: Path) -> None:
    """The first run prints the key's command once (each line stamped, as every stderr
    line without a terminal); a rerun reusing the key names its file (until 2026-12-01
    it printed no worker command at all, a fresh user's)."""
    listing = tmp_path / "l.txt"
    listing.write_text("ftp://127.0.0.1/not-http.png\n", encoding="utf-8")
    out = tmp_path / "out"
    args = [*master_args(listing, out), "--no-progress", "--no-report"]
    first = run_cli("master", *args, env=no_key_env(), timeout=RUN_TIMEOUT)
    assert first.returncode == 4, first.stderr  # degraded: no line is a URL
    assert all(STAMP.match(line) for line in first.stderr.splitlines()), first.stderr
    assert "CRAWLER_AUTHKEY=" in first.stderr
    second = run_cli("master", *args, env=no_key_env(), timeout=RUN_TIMEOUT)
    assert "CRAWLER_AUTHKEY=" not in second.stderr
    said = [unstamped(line) for line in second.stderr.splitlines()]
    assert any(
        line.startswith("crawler-master: workers connect with: python -m crawler.worker")
        and line.endswith(f"--authkey-file {out / 'authkey'}")
        for line in said
    ), said


def test_the_printed_worker_command_names_the_key_file_by_its_absolute_path(
    tmp_path: Path,
) -> None:
    """The command is for another host: a relative ``--authkey-file out/authkey`` (the
    master's working folder's) meant nothing there (a fresh user's, 2026-12-03)."""
    (tmp_path / "l.txt").write_text("ftp://127.0.0.1/not-http.png\n", encoding="utf-8")
    args = ["l.txt", "--bind", "127.0.0.1", "--port", "0", "--output", "out dir", "--no-report"]
    for _ in range(2):  # the key made, then reused
        result = run_cli("master", *args, env=no_key_env(), timeout=RUN_TIMEOUT, cwd=tmp_path)
        assert result.returncode == 4, result.stderr
    said = [unstamped(line) for line in result.stderr.splitlines()]
    command = [line for line in said if "workers connect with: python -m crawler.worker" in line]
    assert len(command) == 1 and command[0].endswith(  # quoted for a shell: a space in it
        f"--authkey-file {shlex.quote(str(tmp_path / 'out dir' / 'authkey'))}"
    ), said


@pytest.mark.parametrize(
    "command",
    [
        ("master", "list.txt"),
        ("worker", "--server", "127.0.0.1", "--port", "1"),
        ("report", "manifest.jsonl"),
        ("export", "manifest.jsonl", "--format", "files", "--out", "o"),
    ],
    ids=lambda command: command[0],
)
def test_a_command_started_in_a_removed_folder_says_so(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Started from a folder removed meanwhile, with relative paths (the default
    --output too): one line and exit 1; until 2026-12-01 a traceback from the first path
    resolved (a fresh user's)."""
    gone = tmp_path / "gone"
    gone.mkdir()
    line = " ".join(shlex.quote(part) for part in cli_command(*command))
    result = subprocess.run(
        ["sh", "-c", f"cd {shlex.quote(str(gone))} && rmdir ../gone && exec {line}"],
        capture_output=True, text=True, env=cli_env(), timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    says = "current folder no longer exists"  # the report too, since its paths are checked
    assert says in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr


def test_masters_making_the_key_together_agree_on_it(tmp_path: Path) -> None:
    """The key file appears whole and once: callers racing to make it (masters started
    together by cron on a fresh --output) all get the key the file holds, and one of
    them made it. Until 2026-12-01 they wrote through one fixed temporary name: some
    failed ("File exists", "No such file or directory"), and one ran with a key other
    than the file's, refused to every worker started from the file (a fresh user's)."""
    for round_ in range(30):
        path = tmp_path / f"out{round_}" / "authkey"
        results: list[tuple[bytes, bool] | BaseException] = []
        go = threading.Barrier(8)

        def make(path: Path = path, results: list = results, go: threading.Barrier = go) -> None:
            go.wait()
            try:
                results.append(generate_authkey(path))
            except BaseException as exc:  # any failure is the finding
                results.append(exc)

        threads = [threading.Thread(target=make) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        held = path.read_bytes().strip()
        assert results == [(held, made) for _, made in results], results
        assert sum(made for _, made in results) == 1
        assert path.stat().st_mode & 0o777 == 0o600
        assert [p.name for p in path.parent.iterdir()] == ["authkey"]  # no temporary left


@pytest.mark.parametrize("before", [[], ["plain.txt"]])
def test_lists_named_with_a_leading_dash_come_after_two_dashes(
    tmp_path: Path, before: list[str]
) -> None:
    """``crawler-master -- -l.txt``: until 2026-12-01 "the following arguments are
    required: LIST" when no list came before ``--`` (CPython's intermixed parser; a
    fresh user's); an option after ``--`` is a name too."""
    for name in ("plain.txt", "-l.txt", "--x.txt"):
        (tmp_path / name).write_text(f"http://127.0.0.1:9/{name}.png\n", encoding="utf-8")
    result = run_cli("master", "--dry-run", *before, "--", "-l.txt", "--x.txt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"dry run: {len(before) + 2} list(s), {len(before) + 2} line(s)" in result.stdout


@pytest.mark.parametrize(
    ("module", "args"),
    [("worker", ["--server", "127.0.0.1", "--port", "9"]), ("master", ["l.txt"])],
)
def test_a_command_whose_modules_cannot_load_says_so_in_one_line(
    tmp_path: Path, module: str, args: list[str]
) -> None:
    """A dependency broken or missing (or no memory to load it, ``ulimit -v``): until
    2026-12-03 a traceback from the middle of the imports (a resource-limits trial's)."""
    broken = tmp_path / "broken" / "protego"  # robots.txt's parser: both commands load it
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise ImportError("protego: broken here")\n')
    done = run_cli(module, *args, cwd=tmp_path, env=cli_env(PYTHONPATH=str(broken.parent)))
    assert done.returncode == EXIT_ERROR, done.stderr
    assert_no_traceback(done.stdout, done.stderr)
    assert done.stderr.splitlines() == [
        f"crawler-{module}: error: cannot load its modules: protego: broken here"
    ], done.stderr
