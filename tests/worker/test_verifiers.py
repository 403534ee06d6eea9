"""A download thread goes on to its next URL while the body it fetched is checked.

A worker's download thread used to verify, hash and store each body itself before its
next request: in a latency-bound run each check kept it off the network ~11 ms of the
~218 a URL took (issue 15). It now hands the body to a verifier thread
(``worker/verifiers.py``) and starts the next URL at once.

Shown with a real master, one local worker of ONE download thread and a real HTTP
server: the first URL is a PNG whose check takes a few tenths of a second (8000 x 8000
pixels, all decoded); the server notes, when the second URL's request arrives, whether
the first image is stored yet. With the check on the download thread it always is (the
store is the check's last step, on the same thread, before the next request); handed
to a verifier it is not, and both rows are ``ok`` all the same.
"""

from __future__ import annotations

import gc
import io
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from conftest import read_rows, run_cli
from imageserver import ImageServer, make_image, send
from PIL import Image

from crawler.config import Policy, WorkerConfig
from crawler.protocol import Task
from crawler.worker import verify
from crawler.worker.lane import start_threads
from crawler.worker.pipeline import Fetched
from crawler.worker.run import Worker
from crawler.worker.verifiers import Verifiers


def slow_png(side: int = 8000) -> bytes:
    """A small file (~60 KB) of ``side`` x ``side`` grey pixels: ~0.35 s to check here."""
    buffer = io.BytesIO()
    Image.new("L", (side, side)).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_next_request_does_not_wait_for_the_check(
    tmp_path: Path, image_server: ImageServer
) -> None:
    out = tmp_path / "out"
    stored_at_next: list[list[str]] = []
    small = make_image("PNG", 40, 30, seed=3)

    def next_one(request: BaseHTTPRequestHandler) -> None:
        stored_at_next.append(sorted(p.name for p in out.rglob("*.png")))
        send(request, 200, small, {"Content-Type": "image/png"})

    first = image_server.add("/slow.png", slow_png(), content_type="image/png")
    second = image_server.add_handler("/next.png", next_one)
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{first}\n{second}\n")
    manifest = tmp_path / "m.jsonl"
    done = run_cli(
        "master", str(urls), "--local-workers", "1", "--threads", "1", "--ignore-robots",
        "--output", str(out), "--manifest", str(manifest), "--no-progress", "-q",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {row["url"]: row for row in read_rows(manifest)}
    assert [rows[first]["status"], rows[second]["status"]] == ["ok", "ok"]
    assert rows[first]["width"] == 8000
    assert stored_at_next == [[]], "the first image was checked before the next request"


def test_every_url_has_one_row_and_no_thread_keeps_a_body(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """A worker's own download threads (``Worker._download_loop``) and verifiers over 120
    URLs of a real server, good PNGs and cut ones: every URL has exactly one row, the
    good ones stored and ``ok``, the cut ones ``corrupt``, some checked by a verifier;
    while the threads then wait for tasks, no fetched body is alive (a loop variable
    kept each thread's last one: 3 x --threads bodies, a review's); and once the lane
    says stop, the verifiers end too."""
    good = make_image("PNG", 64, 48, seed=5)
    image_server.add("/good.png", good, content_type="image/png")
    image_server.add("/cut.png", good[: len(good) // 2], content_type="image/png")
    config = WorkerConfig(server="127.0.0.1", authkey=b"k", threads=6, output=tmp_path / "out")
    worker = Worker(config, None, threading.Event())  # type: ignore[arg-type]  # no master
    worker.policy = Policy(ignore_robots=True, block_private=False)
    verify.configure(worker.policy)
    worker._verifiers = Verifiers(worker._done, config.threads)
    threads = start_threads(worker._download_loop, config.threads)
    for task_id in range(120):
        name = "cut" if task_id % 3 == 0 else "good"
        task = Task(task_id, image_server.url(f"/{name}.png?n={task_id}"), 1, token=7)
        worker._held[task_id] = task.token
        worker._view.leased(task_id)
        worker._todo.put(task)
    rows = [worker._done.get(timeout=60) for _ in range(120)]
    assert sorted(row["id"] for row in rows) == list(range(120))
    assert {row["id"] for row in rows if row["status"] == "corrupt"} == set(range(0, 120, 3))
    assert all(row["status"] == "ok" and row["token"] == 7 for row in rows if row["id"] % 3)
    deadline = time.monotonic() + 30
    while worker._todo.room() < config.threads:  # every download thread waits for a task
        assert time.monotonic() < deadline
        time.sleep(0.01)
    gc.collect()
    assert [o for o in gc.get_objects() if isinstance(o, Fetched)] == []
    assert worker._verifiers.checking == 0
    for _ in threads:
        worker._todo.put(None)
    for thread in [*threads, *worker._verifiers._threads]:
        thread.join(30)
        assert not thread.is_alive(), f"{thread.name} did not end"
    assert worker._done.empty()
