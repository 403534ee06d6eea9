"""The master's own outputs on a full disk: the log file, stdout, and the small files it
replaces whole (summary, report, aggregate, key). Each failure is one line on stderr and
leaves nothing behind; none is a traceback, and none changes the run's exit code, which
says what happened to the URLs (a fresh user's report, 2026-11-30: a full log disk gave
343 tracebacks, a full stdout a traceback and exit 1, a full report disk a .tmp file).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import RUN_TIMEOUT, assert_no_traceback, cli_command, cli_env, read_rows
from imageserver import ImageServer
from test_hostile_network import remount_read_only, tmpfs
from test_unattended import images, write_list

from crawler.atomic import append_line, write_whole
from crawler.manifest import make_row


def _fill(disk: Path) -> None:
    """Leave ``disk`` (a tmpfs) without a free block."""
    with open(disk / "filler", "wb", buffering=0) as fh:  # unbuffered: close writes nothing
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass


def _run(listing: Path, out: Path, *flags: str, stdout: object = subprocess.PIPE) -> tuple:
    done = subprocess.run(
        cli_command("master", str(listing), "--port", "0", "--bind", "127.0.0.1", "--output",
                    str(out), "--local-workers", "1", "--threads", "2", "--no-progress",
                    *flags),
        env=cli_env(), stdout=stdout, stderr=subprocess.PIPE, text=True,
        timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return done.returncode, done.stdout or "", done.stderr


def test_a_log_file_on_a_full_disk_is_one_line(tmp_path: Path, image_server: ImageServer) -> None:
    listing = write_list(tmp_path / "list.txt", images(image_server, 20))
    with tmpfs(tmp_path / "disk", "64k") as disk:
        _fill(disk)
        code, stdout, stderr = _run(listing, tmp_path / "out", "-v", "--log-file",
                                    str(disk / "log.txt"))  # fmt: skip
    assert code == 0, stderr
    assert_no_traceback(stdout, stderr)
    assert "Logging error" not in stderr
    failed = [line for line in stderr.splitlines() if "cannot write log file" in line]
    assert len(failed) == 1 and "No space left on device" in failed[0], stderr
    assert "20 URLs" in stdout  # the run itself went on, and said so
    assert len(read_rows(tmp_path / "out" / "manifest.jsonl")) == 20


def test_stdout_that_cannot_be_written_is_one_line(
    tmp_path: Path, image_server: ImageServer
) -> None:
    listing = write_list(tmp_path / "list.txt", images(image_server, 5))
    with open("/dev/full", "w") as full:
        code, _, stderr = _run(listing, tmp_path / "out", stdout=full)
    assert code == 0, stderr
    assert_no_traceback(stderr)
    failed = [line for line in stderr.splitlines() if "cannot write to stdout" in line]
    assert len(failed) == 1, stderr
    assert '"exit_code": 0' in (tmp_path / "out" / "manifest.summary.json").read_text()


def _closing(fd: int) -> Callable[[], None]:
    return lambda: os.close(fd)


@pytest.mark.parametrize("closed", [1, 2], ids=["stdout", "stderr"])
def test_a_master_started_without_stdout_or_stderr_runs_and_earns_its_exit(
    tmp_path: Path, image_server: ImageServer, closed: int
) -> None:
    """``>&-`` and ``2>&-`` (a cron line, a service): the run goes on, the log file gets
    the outcome, no file gets what was meant for the closed stream. It was a traceback
    and exit 1 after the work (stdout), and exit 1 before any (stderr)."""
    listing = write_list(tmp_path / "list.txt", images(image_server, 5))
    out, log = tmp_path / "out", tmp_path / "night.log"
    done = subprocess.run(
        cli_command("master", str(listing), "--port", "0", "--bind", "127.0.0.1", "--output",
                    str(out), "--local-workers", "1", "--threads", "2", "--no-progress",
                    "--log-file", str(log)),
        env=cli_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=RUN_TIMEOUT, preexec_fn=_closing(closed),
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert_no_traceback(done.stdout, done.stderr)
    assert [row["status"] for row in read_rows(out / "manifest.jsonl")] == ["ok"] * 5
    assert "outcome: completed (exit 0)" in log.read_text(encoding="utf-8")
    for path in out.glob("*.jsonl"):  # every line a JSON value: nothing printed into it
        for line in path.read_text(encoding="utf-8").splitlines():
            assert isinstance(json.loads(line), dict), (path, line)


@pytest.mark.parametrize("mode", [0o644, 0o600])
def test_a_whole_file_on_a_full_disk_leaves_nothing(tmp_path: Path, mode: int) -> None:
    """``write_whole`` (summary, report, aggregate, key): the old file stays as it was,
    and no temporary file is left to take the room the next write needs."""
    with tmpfs(tmp_path / "disk", "64k") as disk:
        target = disk / "report.html"
        target.write_bytes(b"last night's")
        with pytest.raises(OSError, match="No space left"):
            write_whole(target, b"x" * 200_000, mode)
        assert sorted(p.name for p in disk.iterdir()) == ["report.html"]
        assert target.read_bytes() == b"last night's"
        write_whole(target, b"tonight's", mode)
        assert target.read_bytes() == b"tonight's"
        assert target.stat().st_mode & 0o777 == mode & ~0o022


def test_a_line_the_full_disk_refuses_leaves_the_history_as_it_was(tmp_path: Path) -> None:
    """``append_line`` (the run history): a line that does not fit, even in part, is cut
    off again; until 2026-12-01 a part of it stayed, and spoiled the next night's line."""
    with tmpfs(tmp_path / "disk", "64k") as disk:
        history = disk / "m.runs.jsonl"
        append_line(history, b'{"run_id": "a"}\n')
        _leave(disk, 2000)
        with pytest.raises(OSError, match="No space left"):
            append_line(history, b'{"run_id": "b", "pad": "' + b"x" * 100_000 + b'"}\n')
        assert history.read_bytes() == b'{"run_id": "a"}\n'
        (disk / "filler").unlink()
        append_line(history, b'{"run_id": "c"}\n')
        assert history.read_bytes() == b'{"run_id": "a"}\n{"run_id": "c"}\n'


def test_a_dry_run_writes_no_log_file(tmp_path: Path, image_server: ImageServer) -> None:
    listing = write_list(tmp_path / "list.txt", images(image_server, 3))
    code, stdout, stderr = _run(listing, tmp_path / "out", "--dry-run", "--log-file",
                                str(tmp_path / "log.txt"))  # fmt: skip
    assert code == 0, stderr
    assert "nothing written" in stdout
    assert not (tmp_path / "log.txt").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("mode", ["full", "read_only"])
def test_a_dry_run_beside_a_full_or_read_only_manifest_folder_still_counts(
    tmp_path: Path, mode: str
) -> None:
    """A dry run spools the URL lists beside the manifest (off a /tmp in RAM); when that
    folder takes no file, it spools in the system's temporary folder. Before: a traceback
    (OSError from tempfile or pwrite)."""
    lines = [f"http://127.0.0.1:9/{i}.png" for i in range(50_000)] + ["not a url"]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(lines) + "\n")
    with tmpfs(tmp_path / "disk", "64k") as disk:
        (disk / "out").mkdir()
        if mode == "full":
            _fill(disk)
        else:
            remount_read_only(disk)
        code, stdout, stderr = _run(listing, disk / "out", "--dry-run")
    assert_no_traceback(stdout, stderr)
    assert code == 0, stderr
    assert (
        "valid URLs (distinct)       50000" in stdout
        and "invalid                         1" in stdout
    )


def test_the_report_command_on_a_full_stdout_is_one_line(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps(make_row(url="http://127.0.0.1/a.png", status="not_found"))
                        + "\n", encoding="utf-8")  # fmt: skip
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            cli_command("report", str(manifest)), env=cli_env(), stdout=full,
            stderr=subprocess.PIPE, text=True, timeout=RUN_TIMEOUT,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr  # the report itself was written
    assert_no_traceback(done.stderr)
    assert done.stderr.splitlines() == [
        "crawler-report: cannot write to stdout: No space left on device"
    ]
    assert (tmp_path / "m.report.html").is_file()


def test_the_report_command_says_what_it_skipped(tmp_path: Path) -> None:
    """Damaged lines (torn, garbled, not a row) are skipped by the report, and said: one
    line on stderr with their count, as crawler-export counts them."""
    manifest = tmp_path / "m.jsonl"
    rows = [json.dumps(make_row(url=f"http://127.0.0.1/{i}.png", status="not_found"))
            for i in range(4)]  # fmt: skip
    lines = [rows[0], "garbage", rows[1], '["a", "list"]', rows[2], "", rows[3], '{"torn": ']
    manifest.write_text("\n".join(lines), encoding="utf-8")
    done = subprocess.run(
        cli_command("report", str(manifest)), env=cli_env(), capture_output=True, text=True,
        timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"crawler-report: manifest {manifest}: skipped 3 damaged line(s) (torn or garbled)"
    ]
    page = (tmp_path / "m.report.html").read_text(encoding="utf-8")
    assert '<div class="card"><b>4</b><span>rows</span></div>' in page  # the 4 rows read


def test_a_csv_on_a_full_disk_keeps_last_nights(tmp_path: Path, image_server: ImageServer) -> None:
    """The CSV is written whole or not at all: on a full disk, one line, last night's CSV
    as it was, no partial one under its name and no temporary file (it used to be cut
    off mid-row, in place of a complete one)."""
    listing = write_list(tmp_path / "list.txt", images(image_server, 30))
    with tmpfs(tmp_path / "disk", "64k") as disk:
        csv = disk / "m.csv"
        csv.write_text("last night's complete CSV\n", encoding="utf-8")
        _fill(disk)
        code, _, stderr = _run(listing, tmp_path / "out", "--csv", str(csv))
        assert code == 0, stderr
        assert_no_traceback(stderr)
        failed = [line for line in stderr.splitlines() if "no CSV export" in line]
        assert len(failed) == 1 and "No space left on device" in failed[0], stderr
        assert csv.read_text(encoding="utf-8") == "last night's complete CSV\n"
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "m.csv"]


def _leave(disk: Path, room: int) -> None:
    """Fill ``disk`` (a tmpfs) but ``room`` bytes."""
    (disk / "filler").unlink(missing_ok=True)
    stat = os.statvfs(disk)
    with open(disk / "filler", "wb") as fh:
        fh.write(b"\0" * max(stat.f_bavail * stat.f_frsize - room, 0))


def test_a_rerun_of_repeated_lines_needs_little_room_beside_the_manifest(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """A fresh user's nightly rerun (t28, 2026-12-01): each repeated line's row went to a
    deleted spool file beside the manifest as full JSON, ~650 bytes a line, so a rerun
    needed about that much free room (75 MB for 150,000 lines), and failed every night on
    a disk that held the manifest ("cannot spool the URL lists ... No space left on
    device", or blaming the manifest). Now ~20 bytes a line, and a disk without even that
    room is one line naming the spools and what they held."""
    listing = write_list(tmp_path / "list.txt", images(image_server, 1) * 20_001)
    with tmpfs(tmp_path / "disk", "32m") as disk:
        manifest = disk / "m.jsonl"
        args = (listing, tmp_path / "out", "--manifest", str(manifest), "--no-report")
        code, _, stderr = _run(*args)
        assert code == 0, stderr
        assert manifest.stat().st_size > 8_000_000  # 20,000 rows of repeated lines
        _leave(disk, 2_000_000)  # room for the rows' spool compressed, not as JSON
        code, stdout, stderr = _run(*args)
        assert code == 0, stderr
        assert "20001 URLs" in stdout, stdout
        _leave(disk, 48_000)  # not even that
        code, stdout, stderr = _run(*args)
    assert code == 1, stderr
    assert_no_traceback(stdout, stderr)
    (line,) = [line for line in stderr.splitlines() if "error:" in line]
    assert "No space left on device" in line, line
    assert "the run's spools there, deleted temporary files, held" in line, line
    assert re.search(r" held \d+ kB of URLs and \d+ kB of repeated and invalid lines' rows", line)
