"""Files a run writes that are not regular files: devices, FIFOs, descriptors' names
(``/dev/stdout``), symlinks, folders.

``--csv /dev/null`` (or ``/dev/stdout``) had the crawler write ``/dev/null.tmp`` and
rename it over the device: run as root, every program on the machine lost its
``/dev/null``. The tests make their own devices (``mknod``, when the test may), FIFOs
and ``/dev/stdout``-like symlinks (to ``/proc/self/fd/1``) in a temporary folder: nothing
under the real ``/dev`` is named, so that the code before the fix, run with these tests,
replaces only files of the test's own (it replaced this machine's ``/dev/stdout`` once).
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    RUN_TIMEOUT,
    assert_no_traceback,
    cli_command,
    cli_env,
    run_cli,
    start_cli,
    wait_for_port,
)
from imageserver import ImageServer, make_image

from crawler.atomic import write_whole


def stdout_link(folder: Path) -> Path:
    """A name for stdout as ``/dev/stdout`` is one: a symlink to ``/proc/self/fd/1``."""
    (folder / "stdout").symlink_to("/proc/self/fd/1")
    return folder / "stdout"


def null_device(folder: Path) -> Path:
    """A character device like /dev/null (1, 3) in ``folder``; skips without CAP_MKNOD."""
    path = folder / "null"
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("this test may not make a device (mknod)")
    return path


# --- atomic.replacing, over every kind of name --------------------------------------
def _missing(tmp: Path) -> Path:
    return tmp / "new.txt"


def _regular(tmp: Path) -> Path:
    (tmp / "old.txt").write_bytes(b"old")
    return tmp / "old.txt"


def _link_to_regular(tmp: Path) -> Path:
    (tmp / "target.txt").write_bytes(b"old")
    (tmp / "link.txt").symlink_to("target.txt")
    return tmp / "link.txt"


def _dangling_link(tmp: Path) -> Path:
    (tmp / "dangling.txt").symlink_to("nowhere.txt")
    return tmp / "dangling.txt"


KINDS: dict[str, Callable[[Path], Path]] = {
    "missing": _missing,
    "regular": _regular,
    "link-to-regular": _link_to_regular,
    "dangling-link": _dangling_link,
}


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_is_replaced_whole_and_a_link_keeps_being_one(tmp_path: Path, kind: str) -> None:
    path = KINDS[kind](tmp_path)
    was_link = path.is_symlink()
    write_whole(path, b"new")
    assert path.read_bytes() == b"new"
    assert path.is_symlink() is was_link  # a dangling one too: the file it names is made
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_a_device_is_written_into_not_replaced(tmp_path: Path) -> None:
    device = null_device(tmp_path)
    write_whole(device, b"gone")
    assert stat.S_ISCHR(device.stat().st_mode) and not (tmp_path / "null.tmp").exists()


def test_a_fifo_is_written_into_and_one_no_one_reads_is_an_error(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, there before the write
    try:
        write_whole(fifo, b"through")
        assert os.read(reader, 100) == b"through" and stat.S_ISFIFO(fifo.stat().st_mode)
    finally:
        os.close(reader)
    with pytest.raises(OSError, match="No such device or address"):
        write_whole(fifo, b"no reader")  # at once, not a hang


def test_a_descriptors_name_is_appended_to(tmp_path: Path) -> None:
    """``/dev/stdout`` with stdout redirected to a file: the file kept what was written to
    stdout before, and stayed the file stdout writes to."""
    out = tmp_path / "stdout.txt"
    script = (
        "import sys; from pathlib import Path; from crawler.atomic import write_whole; "
        "print('before', flush=True); write_whole(Path(sys.argv[1]), b'csv\\n'); "
        "print('after', flush=True)"
    )
    with open(out, "wb") as fh:
        inode = os.fstat(fh.fileno()).st_ino
        subprocess.run(
            [os.sys.executable, "-c", script, str(stdout_link(tmp_path))],
            stdout=fh,
            env=cli_env(),
            check=True,
            timeout=60,
        )
    assert out.read_text() == "before\ncsv\nafter\n" and out.stat().st_ino == inode


def test_a_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        write_whole(tmp_path, b"x")


# --- the commands -------------------------------------------------------------------
@pytest.fixture
def listing(tmp_path: Path, image_server: ImageServer) -> Path:
    png = make_image("PNG", 20, 20, seed=3)
    urls = [image_server.add(f"/sf/{i}.png", png, content_type="image/png") for i in range(3)]
    path = tmp_path / "l.txt"
    path.write_text("\n".join(urls) + "\n", encoding="utf-8")
    return path


def master(listing: Path, out: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return run_cli("master", str(listing), "--output", str(out), "--port", "0",
                   "--local-workers", "1", "--no-progress", "--no-report", *flags)  # fmt: skip


def test_csv_and_log_file_into_one_device(tmp_path: Path, listing: Path) -> None:
    device = null_device(tmp_path)
    done = master(listing, tmp_path / "out", "--csv", str(device), "--log-file", str(device))
    assert done.returncode == 0, done.stderr
    assert_no_traceback(done.stdout, done.stderr)
    assert stat.S_ISCHR(device.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.txt", "null", "out"]


@pytest.mark.parametrize("name", ["a link to it", "/proc/self/fd/1", "/dev/fd/1"])
def test_csv_to_stdout_redirected_to_a_file(tmp_path: Path, listing: Path, name: str) -> None:
    """Any name of stdout (a review's, 2026-12-02: the start-up check, creating a file
    beside the name, refused /proc/self/fd/1 and /dev/fd/1, written into, not replaced)."""
    out = tmp_path / "stdout.txt"
    csv = str(stdout_link(tmp_path)) if name == "a link to it" else name
    command = cli_command("master", str(listing), "--output", str(tmp_path / "out"), "--port",
                          "0", "--local-workers", "1", "--no-progress", "--no-report",
                          "--csv", csv)  # fmt: skip
    with open(out, "wb") as fh:
        inode = os.fstat(fh.fileno()).st_ino
        done = subprocess.run(command, stdout=fh, stderr=subprocess.PIPE, text=True,
                              env=cli_env(), timeout=RUN_TIMEOUT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8-sig")
    assert out.stat().st_ino == inode
    assert text.count("http://") >= 3 and "crawler" in text.lower(), text  # CSV and summary


def test_csv_through_a_symlink_replaces_its_target(tmp_path: Path, listing: Path) -> None:
    (tmp_path / "2026.csv").write_text("last night\n")
    (tmp_path / "latest.csv").symlink_to("2026.csv")
    done = master(listing, tmp_path / "out", "--csv", str(tmp_path / "latest.csv"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "latest.csv").is_symlink()
    assert (tmp_path / "2026.csv").read_text(encoding="utf-8-sig").startswith("url,")


def test_csv_into_a_fifo_no_one_reads_is_one_line_not_a_hang(tmp_path: Path, listing: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    done = master(listing, tmp_path / "out", "--csv", str(tmp_path / "fifo"))
    assert_no_traceback(done.stdout, done.stderr)
    assert "cannot write CSV" in done.stderr and "No such device or address" in done.stderr


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_a_manifest_that_is_not_a_regular_file_is_refused(
    tmp_path: Path, listing: Path, kind: str
) -> None:
    """A FIFO hung the start-up; a device would have been replaced by the compaction."""
    if kind == "fifo":
        os.mkfifo(tmp_path / "m")
        manifest = tmp_path / "m"
    elif kind == "device":
        manifest = null_device(tmp_path)
    else:
        manifest = tmp_path / "m"
        manifest.mkdir()
    kind = manifest.stat().st_mode
    before = {p.name for p in tmp_path.iterdir()}
    done = master(listing, tmp_path / "out", "--manifest", str(manifest))
    assert done.returncode == 1
    assert_no_traceback(done.stdout, done.stderr)
    said = ("is not a regular file", "is a folder, not a file")  # a folder: the latter
    assert any(f"manifest {manifest} {what}" in done.stderr for what in said), done.stderr
    assert {p.name for p in tmp_path.iterdir()} - before <= {"out"}  # no lock, no summary
    assert manifest.stat().st_mode == kind


def test_a_log_file_fifo_no_one_reads_is_not_a_hang(tmp_path: Path, listing: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    done = master(listing, tmp_path / "out", "--log-file", str(tmp_path / "fifo"))
    assert_no_traceback(done.stdout, done.stderr)
    assert done.returncode == 1 and "No such device or address" in done.stderr, done.stderr


@pytest.mark.parametrize("link", ["symlink", "hard-link"])
def test_a_second_master_on_the_same_manifest_by_another_name_is_refused(
    tmp_path: Path, listing: Path, reaper: list[subprocess.Popen[str]], link: str
) -> None:
    """The lock was found by the manifest's name: a second master reaching the file
    through a link ran, and the first ended with its manifest "replaced" (exit 3)."""
    (tmp_path / "real").mkdir()
    first = tmp_path / "real" / "m.jsonl"
    first.write_bytes(b"")
    other = tmp_path / "other.jsonl"
    if link == "symlink":
        other.symlink_to(first)
    else:
        os.link(first, other)
    holder = start_cli("master", str(listing), "--manifest", str(first), "--output",
                       str(tmp_path / "a"), "--port", "0", "--local-workers", "0",
                       "--no-progress", "--idle-timeout", "30")  # fmt: skip
    reaper.append(holder)
    wait_for_port(holder)  # serving: it holds the manifest
    done = master(listing, tmp_path / "b", "--manifest", str(other))
    holder.terminate()
    _, said = holder.communicate(timeout=RUN_TIMEOUT)
    assert done.returncode == 1, done.stderr
    assert_no_traceback(done.stdout, done.stderr)
    assert "is in use by another master" in done.stderr, done.stderr
    assert "removed, replaced or cut short" not in said, said  # the first one's manifest


def test_a_symlinked_manifest_stays_a_link_through_the_compaction(
    tmp_path: Path, listing: Path, image_server: ImageServer
) -> None:
    """The compaction's rename replaced the link by a file, the target left stale."""
    (tmp_path / "disk").mkdir()
    (tmp_path / "m.jsonl").symlink_to(tmp_path / "disk" / "m.jsonl")
    gone = image_server.add("/sf/gone.png", b"", status=404)
    with open(listing, "a", encoding="utf-8") as fh:
        fh.write(gone + "\n")
    for flags in ((), ("--retry-failed",)):  # the second supersedes the 404's row: compacted
        done = master(listing, tmp_path / "out", "--manifest", str(tmp_path / "m.jsonl"), *flags)
        assert done.returncode in (0, 4), done.stderr
    assert (tmp_path / "m.jsonl").is_symlink()
    rows = [line for line in (tmp_path / "disk" / "m.jsonl").read_text().splitlines() if line]
    assert len(rows) == 4  # one current row per URL: compacted where the link points
    assert (tmp_path / "disk" / "m.summary.json").exists()  # the files beside it there too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "l.txt", "m.jsonl", "out"]


def _stdout_run(tmp_path: Path, redirect: str, *flags: str) -> tuple[str, str, int]:
    """The master with stdout redirected to ``out.txt`` (``redirect``: ">" or ">>", onto
    a line already there); its flags may name ``stdout``, a /dev/stdout-like link."""
    out = tmp_path / "out.txt"
    out.write_text("before\n")
    command = cli_command(*flags)
    with open(out, "ab" if redirect == ">>" else "r+b") as fh:
        fh.seek(0, os.SEEK_END)  # ">": the shell's offset after what it had written
        done = subprocess.run(command, stdout=fh, stderr=subprocess.PIPE, text=True,
                              env=cli_env(), timeout=RUN_TIMEOUT, cwd=tmp_path)  # fmt: skip
    return out.read_text(encoding="utf-8", errors="replace"), done.stderr, done.returncode


@pytest.mark.parametrize("redirect", [">", ">>"])
def test_a_csv_and_a_log_file_on_stdout_keep_every_line(
    tmp_path: Path, listing: Path, redirect: str
) -> None:
    """The log through /dev/stdout lost its first lines under the summary; the CSV put a
    byte-order mark mid-way (a fresh user, 2026-12-01)."""
    stdout_link(tmp_path)
    text, err, code = _stdout_run(
        tmp_path, redirect, "master", str(listing), "--output", "out", "--port", "0",
        "--local-workers", "1", "--no-progress", "--no-report", "--csv", "stdout",
        "--log-file", "stdout",
    )  # fmt: skip
    assert code == 0, err
    assert text.startswith("before\n") and "\ufeff" not in text, text
    for said in ("serving run", "completed", "outcome: completed", "url,status"):
        assert said in text, (said, text)


def test_a_manifest_named_as_a_descriptor_is_refused(tmp_path: Path, listing: Path) -> None:
    stdout_link(tmp_path)
    text, err, code = _stdout_run(
        tmp_path, ">", "master", str(listing), "--manifest", "stdout", "--output", "out",
        "--port", "0", "--local-workers", "1", "--no-progress",
    )  # fmt: skip
    assert code == 1 and "names an open descriptor" in err, err
    assert text == "before\n"


def test_a_csv_through_a_dangling_symlink_makes_the_file_it_names(
    tmp_path: Path, listing: Path
) -> None:
    (tmp_path / "latest.csv").symlink_to("2026-12-01.csv")
    done = master(listing, tmp_path / "out", "--csv", str(tmp_path / "latest.csv"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "latest.csv").is_symlink()
    assert (tmp_path / "2026-12-01.csv").read_text(encoding="utf-8-sig").startswith("url,")


def test_a_second_master_after_the_lock_file_was_removed_is_refused_in_those_words(
    tmp_path: Path, listing: Path, reaper: list[subprocess.Popen[str]]
) -> None:
    """The manifest itself is locked too: refused, and the line says how (it said "under
    another name: a link" of the same name, a fresh user's, 2026-12-03)."""
    manifest = tmp_path / "m.jsonl"
    holder = start_cli("master", str(listing), "--manifest", str(manifest), "--output",
                       str(tmp_path / "a"), "--port", "0", "--local-workers", "0",
                       "--no-progress", "--idle-timeout", "30")  # fmt: skip
    reaper.append(holder)
    wait_for_port(holder)
    (tmp_path / "m.jsonl.lock").unlink()
    done = master(listing, tmp_path / "b", "--manifest", str(manifest))
    holder.terminate()
    holder.communicate(timeout=RUN_TIMEOUT)
    assert done.returncode == 1, done.stderr
    assert_no_traceback(done.stdout, done.stderr)
    said = "in use by another master (it holds the file itself: by another name, or its lock"
    assert f"{said} file was removed)" in done.stderr, done.stderr


@pytest.mark.parametrize("kind", ["fifo", "fifo_with_writer", "folder", "missing"])
@pytest.mark.parametrize("command", ["report", "export"])
def test_a_manifest_to_read_that_is_no_file_is_one_line(
    tmp_path: Path, command: str, kind: str
) -> None:
    """``crawler-report`` hung for good on a named pipe, with or without a writer (it
    reads a manifest twice; a pipe's second open waits for a writer: a fresh user's,
    2026-12-03); a folder was "does not exist or is not a file"."""
    path = tmp_path / "manifest.jsonl"
    writer = None
    if kind.startswith("fifo"):
        os.mkfifo(path)
        if kind == "fifo_with_writer":  # a shell's `cat m.jsonl > fifo &`
            writer = subprocess.Popen(["sh", "-c", f"printf '%s\\n' '{{}}' > '{path}'"])
    elif kind == "folder":
        path.mkdir()
    args = [str(path), "--out", str(tmp_path / "x.html")] if command == "report" else [
        str(path), "--format", "files", "--out", str(tmp_path / "ds")]  # fmt: skip
    try:
        done = run_cli(command, *args, timeout=60)
    finally:
        if writer is not None:
            writer.kill()
            writer.wait(timeout=10)
    assert done.returncode == 1, done.stderr
    assert_no_traceback(done.stdout, done.stderr)
    (line,) = done.stderr.strip().splitlines()
    said = {"fifo": "is not a regular file (a pipe, a device)", "folder": "is a folder, not a file",
            "missing": "does not exist"}[kind.removesuffix("_with_writer")]  # fmt: skip
    assert f"manifest {path} {said}" in line, line
