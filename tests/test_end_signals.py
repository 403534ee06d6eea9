"""Stop signals sent to a real master once its run is over, while it writes the CSV.

A list of a few images, each on many lines, makes a run whose downloads are quick and
whose CSV export takes seconds; the signals are sent for real once the export's
temporary file appears. Until 2026-12-01 the first was silent and the second ended the
master "interrupted" (exit 130) with no summary, CSV or report, and a run history saying
only "started", though every URL had its final row (a fresh user's).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import zlib
from pathlib import Path

import pytest
from conftest import assert_no_traceback, cli_command, cli_env
from imageserver import ImageServer, make_image

from crawler import constants as c
from crawler.atomic import TMP_SUFFIX

IMAGES = 10
REPEATS = 20_000  # lines a URL: the CSV export of 200,000 rows takes seconds
WAIT = 180.0  # seconds a run may take here (planning and exporting 200,000 lines)


def _list(tmp_path: Path, server: ImageServer) -> Path:
    urls = []
    for i in range(IMAGES):
        body = make_image("PNG", 24, 16, seed=zlib.crc32(b"endsig") % 1000 + i)
        urls.append(server.add(f"/end/{i}.png", body, content_type="image/png"))
    path = tmp_path / "list.txt"
    path.write_text("\n".join(urls * REPEATS) + "\n", encoding="utf-8")
    return path


def _run(tmp_path: Path, server: ImageServer, signals: list[int]) -> tuple[int, str, str]:
    """A master run with ``--csv``; ``signals`` sent to it (0.2 s apart) once its CSV's
    temporary file appears. Its exit code, stdout and stderr."""
    csv = tmp_path / "out.csv"
    args = [str(_list(tmp_path, server)), "--local-workers", "1", "--output",
            str(tmp_path / "images"), "--manifest", str(tmp_path / "manifest.jsonl"),
            "--csv", str(csv), "--no-progress"]  # fmt: skip
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(cli_command("master", *args), env=cli_env(),
                                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)  # fmt: skip
    try:
        tmp = csv.with_name(csv.name + TMP_SUFFIX)
        deadline = time.monotonic() + WAIT
        while not tmp.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the master ended before its CSV export: a longer list"
        for signum in signals:
            proc.send_signal(signum)
            time.sleep(0.2)
        code = proc.wait(WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, out.read_text(), err.read_text()


def _history(tmp_path: Path) -> list[str]:
    lines = (tmp_path / "manifest.runs.jsonl").read_text().splitlines()
    return [json.loads(line)["outcome"] for line in lines]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_one_signal_while_exporting_is_answered_and_the_run_ends_as_it_is(
    tmp_path: Path, image_server: ImageServer, signum: int
) -> None:
    code, out, err = _run(tmp_path, image_server, [signum])
    assert code == c.EXIT_OK, err
    assert "the run is over: finishing its summary; a second signal skips the CSV" in err
    assert (tmp_path / "out.csv").exists()
    assert f"run {json.loads((tmp_path / 'manifest.summary.json').read_text())['run_id']}" in out
    assert "completed" in out
    assert _history(tmp_path) == ["started", "completed"]
    assert_no_traceback(out, err)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_second_signal_skips_the_csv_and_report_but_not_the_summary(
    tmp_path: Path, image_server: ImageServer, signum: int
) -> None:
    code, out, err = _run(tmp_path, image_server, [signum, signum])
    assert code == c.EXIT_OK, err  # every URL has its final row: the run completed
    assert "interrupted" not in err
    assert "skipping the CSV export and the report; writing the summary" in err, err
    summary = json.loads((tmp_path / "manifest.summary.json").read_text())
    assert summary["outcome"] == "completed"
    assert summary["urls"] == IMAGES * REPEATS
    assert "completed" in out
    assert _history(tmp_path) == ["started", "completed"]
    assert not (tmp_path / "out.csv.tmp").exists()
    assert not list(tmp_path.glob("*.html"))  # no report: skipped, not half written
    assert "report" not in out.lower(), out
    assert_no_traceback(out, err)
