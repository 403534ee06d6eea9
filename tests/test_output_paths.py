"""No file a run writes may be another file of the run, or one it reads.

A fresh user pointed ``--csv`` at the manifest (every row lost, the next night refused),
at the generated key, the run history and the summary, and ``--csv`` or ``--log-file`` at
a URL list (the list overwritten, or log lines read as URLs the next night); ``--output``
or ``--csv`` inside a list folder worked the first night and failed, or grew, later;
``crawler-report --out`` replaced the manifest. Each is now refused before anything is
written: one line, exit 1, and every file as it was. Real ``python -m crawler.master``
and ``crawler.report`` processes, on real files (hard links and symlinks included).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    RUN_TIMEOUT,
    assert_no_traceback,
    cli_env,
    read_rows,
    run_cli,
    start_cli,
)
from imageserver import ImageServer, make_image

from crawler import constants as c
from crawler.manifest import runs_path
from crawler.outputs import listed_before

IMAGE = "abcd" + "0" * 60 + ".png"  # a stored image's name (layout.stored_name)
ROW = '{"url": "http://127.0.0.1:9/a.png", "status": "ok", "path": "ab/cd/x.png"}\n'


def _night(tmp_path: Path) -> Path:
    """A folder as a finished night leaves it: lists, the manifest and its files, a key."""
    (tmp_path / "lists").mkdir()
    for name in ("l.txt", "lists/a.txt"):
        (tmp_path / name).write_text("http://127.0.0.1:9/a.png\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.jsonl").write_text(ROW, encoding="utf-8")
    (out / "manifest.summary.json").write_text('{"total": 1}\n', encoding="utf-8")
    (out / "manifest.runs.jsonl").write_text('{"total": 1}\n', encoding="utf-8")
    (out / c.DEFAULT_KEY_NAME).write_text("k" * 40 + "\n", encoding="utf-8")
    (out / c.DEFAULT_KEY_NAME).chmod(0o600)
    for root in (out, tmp_path / "shared"):  # a stored image each, in its shard folders
        (root / "ab" / "cd").mkdir(parents=True)
        (root / "ab" / "cd" / IMAGE).write_bytes(make_image("PNG", 8, 8, seed=1))
    os.link(tmp_path / "l.txt", tmp_path / "hardlink.txt")
    os.link(out / "ab" / "cd" / IMAGE, tmp_path / "image.log")  # an image's other name
    (tmp_path / "via").symlink_to(out)
    return out


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


# (list given, flags, what the line says): each one a file the run would have destroyed
MASTER_CASES = {
    "csv-is-the-manifest": ("l.txt", ["--csv", "out/manifest.jsonl"], "is the manifest"),
    "csv-is-the-key": ("l.txt", ["--csv", "out/authkey"], "is the shared key"),
    "csv-is-the-history": ("l.txt", ["--csv", "out/manifest.runs.jsonl"], "is the run history"),
    "csv-is-the-summary": ("l.txt", ["--csv", "out/manifest.summary.json"], "is the summary"),
    "csv-via-a-symlink": ("l.txt", ["--csv", "via/manifest.jsonl"], "is the manifest"),
    "csv-is-a-list": ("l.txt", ["--csv", "l.txt"], "is one of the URL lists"),
    "csv-is-a-hard-link": ("l.txt", ["--csv", "hardlink.txt"], "is one of the URL lists"),
    "log-is-a-list": ("l.txt", ["--log-file", "l.txt"], "is one of the URL lists"),
    "log-is-the-manifest": ("l.txt", ["--log-file", "out/manifest.jsonl"], "is the manifest"),
    "csv-is-the-log": ("l.txt", ["--csv", "x.log", "--log-file", "x.log"], "is the --log-file"),
    "csv-is-the-given-key": (
        "l.txt",
        ["--authkey-file", "out/authkey", "--csv", "out/authkey"],
        "is the shared key",
    ),
    "csv-in-a-list-folder": ("lists", ["--csv", "lists/export.csv"], "in the URL list folder"),
    "output-is-a-list-folder": ("lists", ["--output", "lists"], "in the URL list folder"),
    "log-in-a-list-folder": ("lists", ["--log-file", "lists/night.log"], "in the URL list folder"),
    "csv-is-a-stored-image": ("l.txt", ["--csv", f"out/ab/cd/{IMAGE}"], "among the stored images"),
    "log-is-a-stored-image": ("l.txt", ["--log-file", f"out/ab/cd/{IMAGE}"], "among the stored"),
    "csv-in-a-new-shard": ("l.txt", ["--csv", "out/00/ff/x.csv"], "among the stored images"),
    "log-is-the-compaction": ("l.txt", ["--log-file", "out/manifest.jsonl.compact"], "written"),
    "log-is-the-summary-tmp": ("l.txt", ["--log-file", "out/manifest.summary.json.tmp"], "before"),
    "log-is-the-csv-tmp": ("l.txt", ["--csv", "x.csv", "--log-file", "x.csv.tmp"], "replaces"),
    "csv-is-the-index-journal": (
        "l.txt",
        ["--csv", "out/manifest.contents.sqlite-journal"],
        "where the content index is written",
    ),
    "log-named-as-an-image": ("l.txt", ["--log-file", f"elsewhere/ab/cd/{IMAGE}"], "named as"),
    "csv-in-the-shared-store": (
        "l.txt",
        ["--store", "shared", "--csv", f"shared/ab/cd/{IMAGE}"],
        "among the stored images",
    ),
}


@pytest.mark.parametrize("case", MASTER_CASES, ids=list(MASTER_CASES))
def test_a_master_refuses_to_write_over_its_own_files_or_its_lists(
    tmp_path: Path, case: str
) -> None:
    listing, flags, said = MASTER_CASES[case]
    _night(tmp_path)
    before = _digests(tmp_path)
    done = run_cli(
        "master", listing, "--output", "out", "--port", "0", "--local-workers", "0",
        "--no-progress", "--idle-timeout", "1", *flags, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == c.EXIT_ERROR, done.stderr
    assert_no_traceback(done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0] and "choose another " in lines[0], lines
    assert _digests(tmp_path) == before  # nothing written, nothing replaced
    assert not (tmp_path / "lists" / "manifest.jsonl").exists()


@pytest.mark.parametrize(
    "target", ["manifest.jsonl", "manifest.summary.json", "authkey", f"ab/cd/{IMAGE}"]
)
def test_a_report_refuses_to_write_over_the_manifest_or_its_files(
    tmp_path: Path, target: str
) -> None:
    out = _night(tmp_path)
    before = _digests(tmp_path)
    done = run_cli("report", str(out / "manifest.jsonl"), "--out", str(out / target))
    assert done.returncode == c.EXIT_ERROR, done.stderr
    assert_no_traceback(done.stdout, done.stderr)
    assert "choose another path" in done.stderr and len(done.stderr.splitlines()) == 1
    assert _digests(tmp_path) == before


# (command and flags after the manifest, from a folder beside the lists; what it says)
AFTER_A_RUN = {
    "report-over-a-list": (["report", "--out", "../l.txt"], "is one of the URL lists"),
    "report-over-a-hard-link": (["report", "--out", "../hardlink.txt"], "one of the URL lists"),
    "report-in-a-list-folder": (["report", "--out", "../lists/r.html"], "in the URL list folder"),
    "master-csv-over-an-earlier-list": (
        ["master", "--csv", "../l.txt", "--local-workers", "0", "--no-progress"],
        "is one of the URL lists",
    ),
    "export-into-a-list-folder": (
        ["export", "--format", "files", "--out", "../lists"],
        "in the URL list folder",
    ),
}


@pytest.mark.parametrize("case", AFTER_A_RUN, ids=list(AFTER_A_RUN))
def test_the_report_and_export_refuse_to_write_over_the_lists_a_run_read(
    tmp_path: Path, case: str
) -> None:
    """A real run's history names its lists (absolute: these commands run from anywhere);
    until 2026-12-03 ``crawler-report --out`` replaced a list with the report, exit 0."""
    _night(tmp_path)
    shutil.rmtree(tmp_path / "out")
    for name in ("l.txt", "lists/a.txt"):  # nothing to fetch: the run ends at once
        (tmp_path / name).write_text("not a URL\n", encoding="utf-8")
    done = run_cli(
        "master", "l.txt", "lists", "--output", "out", "--port", "0", "--local-workers", "0",
        "--no-progress", "--no-report", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == c.EXIT_DEGRADED, done.stderr  # invalid lines only
    started = json.loads(runs_path(tmp_path / "out" / "manifest.jsonl").read_text().split("\n")[0])
    assert started["lists"] == [str(tmp_path / "l.txt"), str(tmp_path / "lists")]  # not its files
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "new.txt").write_text("not a URL either\n", encoding="utf-8")
    before = _digests(tmp_path)
    command, said = AFTER_A_RUN[case]
    # The master: another night, another list, the same manifest.
    flags = (
        ["new.txt", "--output", "../out"] if command[0] == "master" else ["../out/manifest.jsonl"]
    )
    done = run_cli(command[0], *flags, *command[1:], cwd=elsewhere)
    assert done.returncode == c.EXIT_ERROR, done.stderr
    assert_no_traceback(done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0] and "choose another path" in lines[0], lines
    assert _digests(tmp_path) == before
    # A list removed since is no longer one: the report may go where it was.
    (tmp_path / "l.txt").unlink()
    (tmp_path / "hardlink.txt").unlink()
    done = run_cli("report", "../out/manifest.jsonl", "--out", "../l.txt", cwd=elsewhere)
    assert done.returncode == c.EXIT_OK, done.stderr
    assert (tmp_path / "l.txt").read_bytes().startswith(b"<!DOCTYPE html>")


@pytest.mark.parametrize("target", ["key", f"out/ab/cd/{IMAGE}", f"shared/ab/cd/{IMAGE}"])
def test_a_worker_refuses_a_log_file_that_is_its_key_or_a_stored_image(
    tmp_path: Path, target: str
) -> None:
    out = _night(tmp_path)
    (tmp_path / "key").write_bytes((out / c.DEFAULT_KEY_NAME).read_bytes())
    (tmp_path / "key").chmod(0o600)
    before = _digests(tmp_path)
    done = run_cli(
        "worker", "--server", "127.0.0.1", "--port", "9", "--authkey-file", "key",
        "--output", "out", "--log-file", target, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == c.EXIT_ERROR, done.stderr
    assert_no_traceback(done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "choose another path" in lines[0], lines
    assert _digests(tmp_path) == before


@pytest.mark.parametrize("command", ["master", "worker"])
def test_a_log_file_with_other_names_becomes_a_file_of_its_own(
    tmp_path: Path, command: str
) -> None:
    """Appended to, a log file's hard link to a stored image grew the image while its row
    stayed ok; refused (until 2026-12-01), a log a backup had linked stopped every night.
    The log now gets a file of its own, with the bytes it had; its other names keep theirs."""
    out = _night(tmp_path)
    image = out / "ab" / "cd" / IMAGE
    (tmp_path / "night.log").write_text("last night\n", encoding="utf-8")
    os.link(tmp_path / "night.log", tmp_path / "backup.log")  # cp -al, rsnapshot
    before = _digests(tmp_path)
    for log in ("image.log", "night.log"):
        if command == "master":
            args = ["l.txt", "--output", "out", "--port", "0", "--local-workers", "0",
                    "--no-progress", "--idle-timeout", "1"]  # fmt: skip
        else:
            (tmp_path / "key").write_bytes((out / c.DEFAULT_KEY_NAME).read_bytes())
            (tmp_path / "key").chmod(0o600)
            args = ["--server", "127.0.0.1", "--port", "9", "--authkey-file", "key",
                    "--output", "out", "--connect-timeout", "1"]  # fmt: skip
        done = run_cli(command, *args, "--log-file", log, cwd=tmp_path)
        assert_no_traceback(done.stdout, done.stderr)
        assert "other names" not in done.stderr, done.stderr
        had = image.read_bytes() if log == "image.log" else b"last night\n"
        grown = (tmp_path / log).read_bytes()
        assert (tmp_path / log).stat().st_nlink == 1  # a file of its own now
        assert grown.startswith(had) and len(grown) > len(had)  # ... that the run wrote to
    after = _digests(tmp_path)
    for name in (f"out/ab/cd/{IMAGE}", "backup.log"):
        assert after[name] == before[name]  # the other names: as they were


def test_a_log_file_inside_the_output_a_first_run_makes_is_written(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """The run makes --output; a --log-file inside it failed with "No such file"."""
    url = image_server.add("/one.png", make_image("PNG", 32, 24, seed=3), content_type="image/png")
    (tmp_path / "l.txt").write_text(url + "\n", encoding="utf-8")
    log = tmp_path / "new" / "logs" / "night.log"
    done = run_cli(
        "master", str(tmp_path / "l.txt"), "--output", str(tmp_path / "new"), "--port", "0",
        "--local-workers", "1", "--no-progress", "--no-report", "--log-file", str(log),
    )  # fmt: skip
    assert done.returncode == c.EXIT_OK, done.stderr
    assert [row["status"] for row in read_rows(tmp_path / "new" / "manifest.jsonl")] == ["ok"]
    assert "outcome" in log.read_text(encoding="utf-8")


def _remove(out: Path) -> None:
    """``rm -rf``, again while the worker adds a file under it (ENOTEMPTY)."""
    for _ in range(100):
        try:
            shutil.rmtree(out)
            return
        except OSError:
            time.sleep(0.01)
    shutil.rmtree(out)


def _truncate(out: Path) -> None:
    (out / "manifest.jsonl").write_bytes(b"")


def _replace(out: Path) -> None:
    (out / "other.jsonl").write_text(ROW, encoding="utf-8")
    os.replace(out / "other.jsonl", out / "manifest.jsonl")


@pytest.mark.parametrize("damage", [_remove, _truncate, _replace], ids=["rm", "cut", "mv"])
def test_a_manifest_removed_during_the_run_ends_it_incomplete(
    tmp_path: Path, image_server: ImageServer, damage: Callable[[Path], None]
) -> None:
    """``rm -rf`` of the output folder mid-run: the journal goes on in a file no name
    reaches; ``: > manifest.jsonl`` loses the rows before. Both said "completed", exit
    0; now exit 3, saying why."""
    png = make_image("PNG", 32, 24, seed=5)
    urls = [
        image_server.add(f"/gone/{i}.png", png, content_type="image/png", delay=0.05)
        for i in range(40)
    ]
    (tmp_path / "l.txt").write_text("\n".join(urls) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    master = start_cli(
        "master", str(tmp_path / "l.txt"), "--output", str(out), "--port", "0",
        "--local-workers", "1", "--threads", "1", "--no-progress", "--no-report",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not read_rows_or_none(out / "manifest.jsonl") and time.monotonic() < deadline:
            time.sleep(0.05)
        damage(out)
        _, stderr = master.communicate(timeout=RUN_TIMEOUT)
    finally:
        if master.poll() is None:
            master.kill()
    assert master.returncode == c.EXIT_INCOMPLETE, stderr
    assert_no_traceback(stderr)
    assert "was removed, replaced or cut short during the run" in stderr, stderr
    if damage is _remove:  # the folder went, and stays gone: its worker stopped (its store
        # is gone: until 2026-12-01 it made the folder again), the master says it could
        # not write the summary there
        assert "the store" in stderr and "is gone" in stderr, stderr
        assert "cannot write the run summary" in stderr and not out.exists(), stderr
        return
    summary = json.loads((out / "manifest.summary.json").read_text(encoding="utf-8"))
    assert summary["exit_code"] == c.EXIT_INCOMPLETE, summary


def read_rows_or_none(path: Path) -> list[dict] | None:
    try:
        return read_rows(path) or None
    except OSError:
        return None


@pytest.mark.parametrize("utf8", ["0", None], ids=["ascii-PYTHONUTF8=0", "C.UTF-8"])
def test_a_run_under_an_ascii_locale_keeps_names_in_other_scripts(
    tmp_path: Path, image_server: ImageServer, utf8: str | None
) -> None:
    """``LC_ALL=C PYTHONUTF8=0``: a list and an --output named in another script reached
    the UTF-8 manifest as lone surrogates (a traceback, and a local worker dead). Under
    ``C.UTF-8`` the master does not start itself again, and the names are kept too."""
    url = image_server.add("/u.png", make_image("PNG", 32, 24, seed=8), content_type="image/png")
    listing = tmp_path / "list ü ☃.txt"
    listing.write_text(url + "\n", encoding="utf-8")
    out = tmp_path / "out ☃"
    name = "C" if utf8 == "0" else "C.UTF-8"
    env = {k: v for k, v in cli_env(LC_ALL=name, LANG=name).items() if k != "PYTHONUTF8"}
    env.update({"PYTHONUTF8": utf8} if utf8 is not None else {})
    done = run_cli(
        "master", str(listing), "--output", str(out), "--port", "0", "--local-workers", "1",
        "--no-progress", env=env,
    )  # fmt: skip
    assert done.returncode == c.EXIT_OK, done.stderr
    assert_no_traceback(done.stdout, done.stderr)
    (row,) = read_rows(out / "manifest.jsonl")
    assert row["status"] == "ok" and row["source"] == f"{listing}:1", row
    assert (out / row["path"]).is_file()


UTF8_PROBE = (
    "import os, sys; from crawler.cli.startup import utf8_mode; utf8_mode(); "
    "print(sys.flags.utf8_mode, os.environ['PYTHONUTF8'], sys.stdout.errors)"
)


@pytest.mark.parametrize(
    ("env", "restarted"),
    [
        ({"LC_ALL": "C.UTF-8"}, False),  # what UTF-8 mode gives, already
        ({"LC_ALL": "C.UTF-8", "PYTHONUTF8": "1"}, False),
        ({"LC_ALL": "C", "PYTHONUTF8": "0"}, True),  # ASCII
        ({"LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "latin-1"}, True),
        ({"LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8:strict"}, True),
    ],
    ids=["C.UTF-8", "PYTHONUTF8=1", "C", "latin-1-streams", "strict-streams"],
)
def test_a_command_starts_again_in_utf8_mode_only_when_its_locale_differs(
    env: dict[str, str], restarted: bool
) -> None:
    """``utf8_mode`` starts the interpreter again (~25 ms) only when the locale's
    encodings differ from UTF-8 mode's; every child inherits ``PYTHONUTF8=1``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONUTF8", "PYTHONIO"))}
    done = subprocess.run(
        [sys.executable, "-c", UTF8_PROBE], env={**clean, "LANG": "C.UTF-8", **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    flag, inherited, errors = done.stdout.split()
    assert (flag == "1") is (restarted or env.get("PYTHONUTF8") == "1"), done.stdout
    assert inherited == "1", done.stdout
    if env.get("PYTHONIOENCODING") is None:
        assert errors == "surrogateescape", done.stdout


# Where the cut is (a row's start, middle, its last bytes) and which row (the first, one
# inside, the last but one): each place once, not every pair (2 runs each, ~2.5 s).
@pytest.mark.parametrize(("line", "cut"), [(0, 20), (3, 120), (6, -2), (0, -2), (6, 120)])
def test_a_row_cut_short_with_the_next_glued_on_is_an_unreadable_line(
    tmp_path: Path, image_server: ImageServer, line: int, cut: int
) -> None:
    """A manifest cut short mid-run, then appended to, holds a line made of a row's first
    bytes and the next whole row. The byte searches took it for that row, and reading it
    back was a traceback on every rerun (exit 1, the URLs never fetched again). Now it is
    an unreadable line: one warning, and its URLs are fetched again."""
    png = make_image("PNG", 16, 16, seed=2)
    urls = [image_server.add(f"/glue/{i}.png", png, content_type="image/png") for i in range(8)]
    (tmp_path / "l.txt").write_text("\n".join(urls) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["master", str(tmp_path / "l.txt"), "--output", str(out), "--port", "0",
            "--local-workers", "1", "--no-progress", "--no-report"]  # fmt: skip
    assert run_cli(*args).returncode == c.EXIT_OK
    manifest = out / "manifest.jsonl"
    lines = manifest.read_bytes().splitlines(keepends=True)
    lines[line : line + 2] = [lines[line][:cut] + lines[line + 1]]
    manifest.write_bytes(b"".join(lines))
    done = run_cli(*args)
    assert done.returncode == c.EXIT_OK, done.stderr
    assert_no_traceback(done.stdout, done.stderr)
    assert "skipped 1 unreadable line(s)" in done.stderr, done.stderr
    rows = read_rows(manifest)
    assert sorted(row["source"] for row in rows) == sorted(
        f"{tmp_path / 'l.txt'}:{n}" for n in range(1, 9)
    )
    assert {row["status"] for row in rows} == {"ok"}


def test_a_linked_log_file_no_copy_can_be_made_of_is_appended_to_with_a_warning(
    tmp_path: Path,
) -> None:
    """The copy could not be made (a service user's log folder it may not write; here,
    a folder in the copy's way): the run stopped, exit 1. Now the file is appended to in
    place, with a warning, as it was before the copy."""
    _night(tmp_path)
    (tmp_path / "night.log").write_text("last night\n", encoding="utf-8")
    os.link(tmp_path / "night.log", tmp_path / "backup.log")
    (tmp_path / "night.log.tmp").mkdir()  # no copy can be written
    done = run_cli(
        "master", "l.txt", "--output", "out", "--port", "0", "--local-workers", "0",
        "--no-progress", "--idle-timeout", "1", "--log-file", "night.log", cwd=tmp_path,
    )  # fmt: skip
    assert_no_traceback(done.stdout, done.stderr)
    assert done.returncode == c.EXIT_INCOMPLETE, done.stderr  # no worker came: not exit 1
    assert "appended to in place" in done.stderr
    assert (tmp_path / "backup.log").read_text().startswith("last night\n")
    assert len((tmp_path / "night.log").read_text()) > len("last night\n")


def test_the_lists_of_a_history_are_its_absolute_paths_that_are_there(tmp_path: Path) -> None:
    """An edited or older history: what is no absolute path of a file there is no list."""
    there = tmp_path / "l.txt"
    there.write_text("x\n", encoding="utf-8")
    lines = [
        {"run_id": "old"},  # an older crawler's start line: no lists
        {"run_id": "a", "lists": str(there)},  # not a list of paths
        {"run_id": "b", "lists": [1, None, "l.txt", str(tmp_path / "gone.txt"), str(there)]},
        {"run_id": "c", "lists": [str(there), str(tmp_path)]},
        {"lists": [str(tmp_path / "no-run.txt")]},
    ]
    (tmp_path / "gone.txt").with_name("no-run.txt").write_text("x\n", encoding="utf-8")
    manifest = tmp_path / "m.jsonl"
    runs_path(manifest).write_text("".join(json.dumps(x) + "\n" for x in lines), "utf-8")
    assert listed_before(manifest) == [str(there), str(tmp_path)]
    assert listed_before(tmp_path / "none.jsonl") == []
