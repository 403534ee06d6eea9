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

import io
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import requests
from conftest import read_rows, run_cli
from imageserver import ImageServer, make_image, send
from PIL import Image

from crawler.config import Policy
from crawler.protocol import Task
from crawler.stores import FolderStore
from crawler.worker import verify
from crawler.worker.pipeline import Context, Fetched, finish
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


def test_every_body_handed_over_is_finished_before_the_verifiers_end(tmp_path: Path) -> None:
    """Eight download threads hand 40 real bodies each (good PNGs and damaged ones) to the
    verifiers as they would, finishing themselves what no idle verifier takes, then end:
    every body has exactly one row, the good ones stored, the damaged ones ``corrupt``,
    and the verifiers end once the last download thread has."""
    policy = Policy()
    verify.configure(policy)
    store = FolderStore(tmp_path / "out")
    ctx = Context(session=requests.Session(), policy=policy, store=store, worker="w")
    good = make_image("PNG", 40, 30, seed=5)
    done: queue.SimpleQueue[dict] = queue.SimpleQueue()
    verifiers = Verifiers(done, downloaders=8)
    handed = [0]
    lock = threading.Lock()

    def download_thread(first: int) -> None:
        for task_id in range(first, first + 40):
            body = good if task_id % 3 else good[: len(good) // 2]
            row = {"id": task_id, "url": f"http://127.0.0.1:9/{task_id}.png", "attempts": 1}
            fetched = Fetched(Task(task_id, row["url"], 1), row, body, time.monotonic())
            if verifiers.hand(fetched, ctx):
                with lock:
                    handed[0] += 1
            else:
                done.put(finish(fetched, ctx))
        verifiers.downloader_done()

    threads = [threading.Thread(target=download_thread, args=(40 * i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    rows = [done.get(timeout=60) for _ in range(320)]
    assert sorted(row["id"] for row in rows) == list(range(320))
    assert {row["id"] for row in rows if row["status"] == "corrupt"} == set(range(0, 320, 3))
    assert all(row["status"] == "ok" for row in rows if row["id"] % 3)
    assert handed[0] > 0  # some went to a verifier (they start idle)
    for thread in verifiers._threads:  # they end: no thread waits for a body for good
        thread.join(30)
        assert not thread.is_alive(), "a verifier did not end"
    assert done.empty()
