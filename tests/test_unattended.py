"""Nights you can trust (issue 14): failures that heal, exit codes that alarm, logs worth
reading, and a master that fails before the night rather than after it.

Each test runs the real ``python -m crawler.master`` (with a local worker where URLs are
fetched) against real HTTP servers on loopback, and asserts what cron would see: the
exit code, the stderr lines, the log file, the summary.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import (
    RUN_TIMEOUT,
    STAMP,
    assert_no_traceback,
    cli_command,
    cli_env,
    read_rows,
    run_cli,
    unstamped,
    wait_for_port,
)
from imageserver import ImageServer, make_image
from test_early_workers import _workers_of
from test_hostile_network import tmpfs

DEGRADED, INCOMPLETE, INTERRUPTED = 4, 3, 130


def images(server: ImageServer, count: int, prefix: str = "img") -> list[str]:
    return [
        server.add(
            f"/{prefix}/{i}.png", make_image("PNG", 32, 24, seed=i), content_type="image/png"
        )
        for i in range(count)
    ]


def write_list(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def master(
    listing: Path, out: Path, *flags: str, guard: bool = False
) -> subprocess.CompletedProcess[str]:
    """One master run with one local worker; ``guard``: keep --block-private on."""
    extra = ["--block-private"] if guard else []
    return run_cli(
        "master", str(listing), "--port", "0", "--bind", "127.0.0.1", "--output", str(out),
        "--local-workers", "1", "--threads", "4", "--no-progress", "--no-report",
        "--retries", "0", *extra, *flags,
    )  # fmt: skip


def summary(out: Path) -> dict:
    return json.loads((out / "manifest.summary.json").read_text(encoding="utf-8"))


def test_private_addresses_alarm_then_heal_under_a_new_policy(
    tmp_path: Path, image_server: ImageServer
) -> None:
    listing = write_list(tmp_path / "list.txt", images(image_server, 4))
    out = tmp_path / "out"
    first = master(listing, out, guard=True)  # the default policy on a loopback list
    assert first.returncode == DEGRADED, first.stderr
    assert "none of the 4 URLs tried succeeded" in first.stderr
    rows = read_rows(out / "manifest.jsonl")
    assert {r["status"] for r in rows} == {"private_address"}
    assert all("--no-block-private" in r["error"] for r in rows)
    second = master(listing, out)  # the policy changed: the verdicts are redone
    assert second.returncode == 0, second.stderr
    assert summary(out)["changes"]["recovered"] == 4
    assert {r["status"] for r in read_rows(out / "manifest.jsonl")} == {"ok"}


def test_lists_that_are_not_url_lists_alarm_with_a_guess(tmp_path: Path) -> None:
    csv_list = write_list(tmp_path / "export.txt", ["id,url,caption"] + [
        f"{i},http://127.0.0.1:9/{i}.png,caption {i}" for i in range(30)
    ])  # fmt: skip
    html = write_list(tmp_path / "page.txt", ["<!doctype html>", "<html><body>"] + [
        f'<a href="/{i}.png">image {i}</a>' for i in range(30)
    ])  # fmt: skip
    image = tmp_path / "photo.txt"  # an image given as a list by mistake
    image.write_bytes(make_image("JPEG", 160, 120, seed=3) + make_image("PNG", 90, 60, seed=4))
    for listing, hint in ((csv_list, "this looks like CSV: use --input-format csv"),
                          (html, "this looks like an HTML page"),
                          (image, "this looks like binary data")):  # fmt: skip
        result = master(listing, tmp_path / listing.stem)
        assert result.returncode == DEGRADED, result.stderr
        assert hint in result.stderr and "list lines are not URLs" in result.stderr
        assert_no_traceback(result.stdout, result.stderr)
        dry = run_cli("master", str(listing), "--dry-run")
        assert dry.returncode == DEGRADED and hint in dry.stderr, dry.stderr


def test_every_stderr_line_is_stamped_and_the_log_file_has_the_summary(
    tmp_path: Path, image_server: ImageServer
) -> None:
    listing = write_list(tmp_path / "list.txt", images(image_server, 3))
    log_file = tmp_path / "night.log"
    result = master(listing, tmp_path / "out", "-v", "--log-file", str(log_file))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(STAMP.match(line) for line in lines), result.stderr
    per_url = [unstamped(line) for line in lines if " ok http://127.0.0.1" in line]
    assert len(per_url) == 3  # -v: one line per URL (status, URL, elapsed, worker)
    assert not any("urllib3" in line or "PIL" in line for line in lines)
    logged = log_file.read_text(encoding="utf-8")
    assert all(STAMP.match(line) for line in logged.splitlines())
    assert "serving run" in logged and "this run: 3 new" in logged
    assert "outcome: completed (exit 0)" in logged


def test_a_terminal_gets_a_progress_bar_and_a_pipe_gets_none(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """The bar is drawn on a terminal (stderr a pseudo-terminal here) and nowhere else;
    tqdm is imported only to draw it (crawler.deferred)."""
    urls = [image_server.add(f"/bar/{i}.png", make_image("PNG", 32, 24, seed=i)) for i in range(4)]
    listing = write_list(tmp_path / "list.txt", urls)
    command = cli_command("master", str(listing), "--bind", "127.0.0.1", "--local-workers",
                          "1", "--output", str(tmp_path / "out"), "--no-report")  # fmt: skip
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    try:
        proc = subprocess.Popen(command, env=cli_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=follower)  # fmt: skip
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        assert proc.wait(timeout=RUN_TIMEOUT) == 0, drawn
    finally:
        os.close(leader)
    assert b"4/4" in drawn and b"url" in drawn, drawn
    piped = run_cli("master", str(listing), "--bind", "127.0.0.1", "--local-workers", "1",
                    "--output", str(tmp_path / "again"), "--no-report")  # fmt: skip
    assert piped.returncode == 0 and "4/4" not in piped.stderr, piped.stderr


def test_unwritable_outputs_stop_the_master_before_any_download(
    tmp_path: Path, image_server: ImageServer
) -> None:
    urls = images(image_server, 2)
    listing = write_list(tmp_path / "list.txt", urls)
    (tmp_path / "csv-dir").mkdir()
    summary_dir = tmp_path / "o2" / "manifest.summary.json"
    summary_dir.mkdir(parents=True)
    a_file = write_list(tmp_path / "a-file", ["x"])
    link = tmp_path / "latest.csv"
    link.symlink_to("/proc/crawler-test.csv")
    cases = [
        (("--output", str(tmp_path / "o1"), "--csv", str(tmp_path / "csv-dir")),
         "cannot write CSV export"),
        (("--output", str(tmp_path / "o2")), "cannot write summary"),
        (("--output", str(a_file)), f"output folder {a_file} is not a directory"),
        # root "may write" /proc (access), where nothing can be created (a fresh user's)
        (("--output", str(tmp_path / "o3"), "--csv", "/proc/crawler-test.csv"),
         "cannot write CSV export /proc/crawler-test.csv"),
        # ... nor through a symlink to it: the file it names is the one replaced (a review's)
        (("--output", str(tmp_path / "o4"), "--csv", str(link)),
         f"cannot write CSV export {link}"),
    ]  # fmt: skip
    for flags, message in cases:
        result = run_cli("master", str(listing), "--port", "0", *flags, "--no-progress")
        assert result.returncode == 1, result.stderr
        lines = [unstamped(line) for line in result.stderr.splitlines()]
        assert len(lines) == 1 and message in lines[0], result.stderr
    assert image_server.total_hits() == 0


def test_host_delay_paces_requests_not_reused_images(
    tmp_path: Path, image_server: ImageServer
) -> None:
    listing = write_list(tmp_path / "list.txt", images(image_server, 12))
    out = tmp_path / "out"
    assert master(listing, out).returncode == 0
    image_server.reset_stats()
    # Paced, 12 URLs of one host 5 s apart would take a minute: reused, they take none.
    rerun = master(listing, out, "--host-delay", "5")
    assert rerun.returncode == 0, rerun.stderr
    assert image_server.total_hits() == 0
    assert float(summary(out)["elapsed_s"]) < 30


def _slow_run(
    server: ImageServer, tmp_path: Path, delay: float, *flags: str
) -> tuple[subprocess.Popen[str], Path]:
    """A master and one local worker on 6 images that each take ``delay`` s to come."""
    urls = [server.add(f"/slow/{i}.png", make_image("PNG", 32, 24, seed=i), delay=delay)
            for i in range(6)]  # fmt: skip
    listing = write_list(tmp_path / "list.txt", urls)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        cli_command("master", str(listing), "--port", "0", "--bind", "127.0.0.1",
                    "--output", str(out), "--local-workers", "1", "--threads", "2",
                    "--no-progress", "--no-report", *flags),
        env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return proc, out


def _downloading(proc: subprocess.Popen[str], server: ImageServer, out: Path) -> list[int]:
    """Once ``_slow_run``'s master serves and a first download has begun: its workers."""
    wait_for_port(proc)
    while server.total_hits() < 1:
        time.sleep(0.01)
    return _workers_of(out)


def test_sighup_stops_the_master_gracefully(tmp_path: Path, image_server: ImageServer) -> None:
    proc, out = _slow_run(image_server, tmp_path, 2.0, "--grace", "10")
    try:
        wait_for_port(proc)
        while image_server.total_hits() < 1:
            pass
        proc.send_signal(signal.SIGHUP)  # the terminal closed
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == INTERRUPTED, stderr
    assert_no_traceback(stdout, stderr)
    assert summary(out)["outcome"] == "interrupted"
    history = (out / "manifest.runs.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["outcome"] for line in history] == ["started", "interrupted"]


def test_a_master_started_with_nohup_outlives_its_terminal(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """``nohup crawler-master ... &``: SIGHUP is ignored from the start and stays so (the
    run completes); until 2026-12-01 the master caught it and stopped, 0 of 6 rows."""
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what nohup hands on
    try:
        proc, out = _slow_run(image_server, tmp_path, 0.5)
    finally:
        signal.signal(signal.SIGHUP, before)
    try:
        _downloading(proc, image_server, out)
        proc.send_signal(signal.SIGHUP)  # the terminal closed
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert_no_traceback(stdout, stderr)
    assert summary(out)["outcome"] == "completed"
    assert [r["status"] for r in read_rows(out / "manifest.jsonl")] == ["ok"] * 6


def test_a_master_started_with_sigterm_ignored_still_stops_on_it(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """SIGTERM is the explicit stop (kill, systemd, timeout): caught even when inherited
    ignored, unlike nohup's SIGHUP (a review's: the master would also have handed the
    ignored SIGTERM on to the local workers it stops with it)."""
    before = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        proc, out = _slow_run(image_server, tmp_path, 30.0, "--grace", "1")
    finally:
        signal.signal(signal.SIGTERM, before)
    try:
        _downloading(proc, image_server, out)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == INTERRUPTED, stderr
    assert_no_traceback(stdout, stderr)
    assert summary(out)["outcome"] == "interrupted"


@pytest.mark.parametrize("grace, second", [(1, False), (25, True)], ids=["grace", "second"])
def test_a_stop_ends_with_its_grace_or_a_second_signal(
    tmp_path: Path, image_server: ImageServer, grace: int, second: bool
) -> None:
    """The README: stopped, the master collects answers for up to --grace seconds, then
    writes the summary and exits; a second signal, more than a second after the first,
    stops it at once. Its worker here is busy with a download that takes 30 s, longer
    than either: the master kills it then (an image never has its final name before it
    is whole; the URL, unanswered, is the next run's). It used to wait 5 s more for it to
    hear that the run was over, then 10 s more for it to exit (16 s for a 1 s grace), and
    after a second signal it waited out the grace (24 s of 25)."""
    proc, out = _slow_run(image_server, tmp_path, 30.0, "--grace", str(grace))
    try:
        workers = _downloading(proc, image_server, out)
        proc.send_signal(signal.SIGTERM)
        if second:
            time.sleep(1.5)
            proc.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
        took = time.monotonic() - stopped
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == INTERRUPTED, stderr
    assert_no_traceback(stdout, stderr)
    limit = 4 if second else grace + 4  # it was 24 and 16 s
    assert took < limit, f"the stop took {took:.1f} s (--grace {grace})"
    assert workers and _workers_of(out) == []  # it had one, and none is left behind
    assert not list(out.rglob("*.png"))  # nothing stored under a final name
    if not second:  # a second signal stops before the summary
        assert summary(out)["outcome"] == "interrupted"


def test_workers_busy_with_slow_downloads_are_not_said_to_be_gone(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """A worker whose threads are all busy and whose queue is full calls the master only
    to renew its leases (every --lease-seconds / 4); the master said "waiting for workers:
    none active" all the same, an alarm for whoever reads the cron mail. Workers holding
    live leases are busy. Here 2 threads download 2 slow images (11 s), with 2 fast ones
    queued behind them."""
    slow = [image_server.add(f"/slow/{i}.png", make_image("PNG", 32, 24, seed=i), delay=11.0)
            for i in range(2)]  # fmt: skip
    listing = write_list(tmp_path / "list.txt", [*slow, *images(image_server, 2)])
    result = master(listing, tmp_path / "out", "--threads", "2", "--lease-seconds", "120")
    assert result.returncode == 0, result.stderr
    assert "waiting for workers" not in result.stderr, result.stderr
    assert [row["status"] for row in read_rows(tmp_path / "out" / "manifest.jsonl")] == ["ok"] * 4


def test_a_stop_whose_workers_are_gone_is_interrupted_not_incomplete(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """Stopped, the master asks its local workers to go and waits up to --grace for
    answers. When none is left, that is the stop's outcome: 130, never "all local
    workers exited early" and 3, which would alarm a cron job after an operator's stop.
    Here the only worker is killed holding leases, once the stop is asked for
    (--lease-seconds 2: they expire soon). The race that gave 3 (the last answers and
    the workers' exits seen in one pass of the master's loop: 3 of 200 stops swept over
    a run's first 1.5 s) is not reproducible on demand; the sweep that found it found
    it no more in 540 stops after the fix (closing note of 2026-11-30)."""
    proc, out = _slow_run(image_server, tmp_path, 8.0, "--grace", "60", "--lease-seconds", "2")
    try:
        workers = _downloading(proc, image_server, out)
        proc.send_signal(signal.SIGTERM)
        for pid in workers:
            os.kill(pid, signal.SIGKILL)  # gone with its leases, before any answer
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert workers, "no local worker found"
    assert proc.returncode == INTERRUPTED, stderr
    assert "early" not in stderr, stderr
    assert_no_traceback(stdout, stderr)
    assert summary(out)["outcome"] == "interrupted"


def test_damaged_manifest_is_repaired_with_a_word(
    tmp_path: Path, image_server: ImageServer
) -> None:
    listing = write_list(tmp_path / "list.txt", images(image_server, 3))
    out = tmp_path / "out"
    assert master(listing, out).returncode == 0
    manifest = out / "manifest.jsonl"
    lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
    manifest.write_text(lines[0] + "garbage, not json\n" + "".join(lines[1:]) + '{"url": "htt',
                        encoding="utf-8")  # fmt: skip
    result = master(listing, out)
    assert result.returncode == 0, result.stderr
    assert "dropped a torn last line (12 bytes)" in result.stderr
    assert "skipped 1 unreadable line(s), the first at line 2" in result.stderr
    assert {r["status"] for r in read_rows(manifest)} == {"ok"}


@pytest.mark.parametrize(
    "edit",
    [{"status": "bogus"}, {"status": 3}, {"url": 5}, {"url": None}],
    ids=["unknown_status", "numeric_status", "numeric_url", "null_url"],
)
def test_an_edited_row_that_is_no_row_is_said_and_fetched_again(
    tmp_path: Path, image_server: ImageServer, edit: dict
) -> None:
    """A row that parses but names no status of ours, or no URL, was dropped without a
    word (its URL quietly fetched again: a fresh user's, 2026-12-03); it is said as a
    damaged line is."""
    urls = images(image_server, 3)
    listing = write_list(tmp_path / "list.txt", urls)
    out = tmp_path / "out"
    assert master(listing, out).returncode == 0
    manifest = out / "manifest.jsonl"
    lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
    row = json.loads(lines[1])
    lines[1] = json.dumps({**row, **edit}) + "\n"
    manifest.write_text("".join(lines), encoding="utf-8")
    hits = image_server.hits(urlsplit(row["url"]).path)
    result = master(listing, out)
    assert result.returncode == 0, result.stderr
    assert "skipped 1 unreadable line(s), the first at line 2" in result.stderr, result.stderr
    assert image_server.hits(urlsplit(row["url"]).path) == hits + 1
    assert [r["status"] for r in read_rows(manifest) if r["url"] == row["url"]][-1] == "ok"


def test_a_full_disk_before_the_run_is_one_line_and_exit_1(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """No room beside the manifest for the URL spool: nothing was handed out, an error
    before the run (exit 1), as an unwritable folder is."""
    long = "x" * 300  # 400 URLs of ~330 bytes: their spool does not fit in 64 KiB
    urls = [image_server.add(f"/{long}/{i}.png", b"not an image") for i in range(400)]
    listing = write_list(tmp_path / "list.txt", urls)
    with tmpfs(tmp_path / "disk", "64k") as disk:
        result = master(listing, tmp_path / "out", "--manifest", str(disk / "manifest.jsonl"))
    assert result.returncode == 1, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    errors = [unstamped(line) for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "cannot spool the URL lists" in errors[0], result.stderr
    assert "No space left on device" in errors[0]


def test_full_disk_under_the_manifest_mid_run_is_one_line_exit_3_and_a_summary(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """The manifest's disk fills mid-run: one error line, exit 3, and the run still says
    how it went (stdout, the log file's outcome). The summary and report beside the
    manifest cannot be written: last night's are removed, not left as if this run's.
    Before: the error line alone, and last night's summary and report stood."""
    urls = [image_server.add(f"/{i}.png", b"not an image") for i in range(600)]
    with tmpfs(tmp_path / "disk", "128k") as disk:
        flags = ("--port", "0", "--bind", "127.0.0.1", "--output", str(tmp_path / "out"),
                 "--local-workers", "1", "--no-progress", "--max-failure-rate", "1",
                 "--manifest", str(disk / "manifest.jsonl"))  # fmt: skip
        few = write_list(tmp_path / "few.txt", urls[:3])
        assert run_cli("master", str(few), *flags).returncode == 0
        assert (disk / "manifest.summary.json").exists()
        log, listing = tmp_path / "log.txt", write_list(tmp_path / "list.txt", urls)
        result = run_cli("master", str(listing), *flags, "--log-file", str(log))
        assert result.returncode == INCOMPLETE, result.stderr
        assert_no_traceback(result.stdout, result.stderr)
        errors = [unstamped(line) for line in result.stderr.splitlines() if ": error: " in line]
        assert "cannot write manifest" in errors[0] and "No space left" in errors[0], errors
        said = re.search(r"crawler: run (\w+) incomplete", result.stdout)
        assert said, result.stdout
        assert "outcome: incomplete (exit 3)" in log.read_text(encoding="utf-8")
        # The refused batch is cut off whole: no torn line, and what the run says it did
        # is what its rows in the manifest say (a fresh user saw 63 counted, 61 written).
        journal = (disk / "manifest.jsonl").read_bytes()
        assert journal.endswith(b"\n")
        mine = [r for r in read_rows(disk / "manifest.jsonl") if r["run_id"] == said[1]]
        assert f"{len(mine)} new failures" in result.stdout, (len(mine), result.stdout)
        for name in ("manifest.summary.json", "manifest.report.html"):
            left = disk / name
            assert not left.exists() or result.stdout.split()[2] in left.read_text(), name


def test_a_compaction_on_a_full_disk_is_one_line_and_exit_3(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """A rerun compacts the manifest when it cannot trust what the last run kept (here
    its report aggregate is gone, as after a crash): the copy needs about the manifest's
    size again. On a disk without that room it used to end in a traceback and exit 1,
    leaving the partial copy to fill the disk, every night until space came back; then,
    one line and exit 3 but no summary (a second fresh user's report)."""
    long = "x" * 300  # rows of ~1 KB
    urls = [image_server.add(f"/{long}/{i}.png", make_image("PNG", 8, 8, seed=i))
            for i in range(150)]  # fmt: skip
    listing = write_list(tmp_path / "list.txt", urls)
    with tmpfs(tmp_path / "disk", "1m") as disk:
        manifest = disk / "manifest.jsonl"
        flags = ("--manifest", str(manifest))
        assert master(listing, tmp_path / "out", *flags).returncode == 0
        (disk / "manifest.aggregate.json").unlink()  # the next run must compact
        before = manifest.read_bytes()
        room = os.statvfs(disk)
        filler = room.f_bavail * room.f_frsize - len(before) // 2  # half a copy's room
        (disk / "filler").write_bytes(b"\0" * filler)
        result = master(listing, tmp_path / "out", *flags)
        assert result.returncode == INCOMPLETE, result.stderr
        assert_no_traceback(result.stdout, result.stderr)
        errors = [unstamped(line) for line in result.stderr.splitlines() if ": error: " in line]
        assert len(errors) == 1 and "cannot compact manifest" in errors[0], result.stderr
        assert "No space left on device" in errors[0]
        assert manifest.read_bytes() == before  # as it was: nothing new to journal
        assert not (disk / "manifest.jsonl.compact").exists()  # no partial copy
        # Every row is journalled: the summary still says how the run went, and why.
        said = json.loads((disk / "manifest.summary.json").read_text(encoding="utf-8"))
        assert said["outcome"] == "incomplete" and said["exit_code"] == INCOMPLETE
        assert said["why"].startswith("cannot compact manifest")
        assert "150 URLs" in result.stdout
        (disk / "filler").unlink()
        again = master(listing, tmp_path / "out", *flags)
        assert again.returncode == 0, again.stderr
        assert len(read_rows(manifest)) == 150
        assert (disk / "manifest.aggregate.json").exists()  # compacted and kept again


@pytest.mark.parametrize("sep", [",", "\t"], ids=["csv", "tsv"])
@pytest.mark.parametrize("rows", [3, 30])
def test_a_delimited_list_read_as_text_is_said_even_when_its_urls_parse(
    tmp_path: Path, sep: str, rows: int
) -> None:
    """``url,caption`` over ``http://…/a.png,a cat`` in a .txt list: each line is a URL
    (commas are allowed in a path), fetched with its caption, and all 404; nothing was
    said, since most lines were URLs (a fresh user, 2026-12-01)."""
    listing = write_list(tmp_path / "l.txt", [f"url{sep}caption"] + [
        f"http://127.0.0.1:9/{i}.png{sep}a cat" for i in range(rows)
    ])  # fmt: skip
    dry = run_cli("master", str(listing), "--dry-run")
    assert_no_traceback(dry.stdout, dry.stderr)
    kind = "CSV: use --input-format csv" if sep == "," else "TSV: use --input-format tsv"
    said = ("reads as a header ('url", "lines are not URLs")  # the latter: tabs never parse
    assert any(text in dry.stderr for text in said) and kind in dry.stderr, dry.stderr


def test_a_text_list_with_commas_in_its_urls_is_not_taken_for_csv(tmp_path: Path) -> None:
    listing = write_list(tmp_path / "l.txt", [
        f"http://127.0.0.1:9/w_100,h_{i}/a.png" for i in range(10)
    ])  # fmt: skip
    dry = run_cli("master", str(listing), "--dry-run")
    assert dry.returncode == 0 and "header" not in dry.stderr, dry.stderr
