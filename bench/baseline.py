"""The plain baseline: the crawler's kind of work with the same libraries and no queue.

``python bench/baseline.py LIST OUTPUT [--procs 2] [--threads 16] [--draft]``: the list
is split up front into ``--procs`` processes, each a ``ThreadPoolExecutor`` whose threads
each own a ``requests.Session``; per URL: GET, Pillow open and load of every frame (in
full, or with ``--draft`` at 1/8 scale for JPEG), SHA-256, write the file into two-level
sharded folders. ``--crawler-verify`` checks each body with the crawler's own
``verify.inspect`` instead (the same decoders, whole-file checks and perceptual hash as a
worker): what a crawler run does for an image, without the master, the queues, the
manifest or the report, so the two differ by the distribution alone. Prints one JSON line
(ok, failed, bytes); exits 1 if any URL failed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing
import queue
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from PIL import Image

from crawler.config import Policy
from crawler.worker import verify

TIMEOUT = (10, 30)
POLICY = Policy()  # the crawler's defaults, as a run without flags
_local = threading.local()


def fetch_one(url: str, output: Path, mode: str) -> int:
    """Bytes of one verified, stored image (raises on any failure)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    resp = session.get(url, timeout=TIMEOUT)
    resp.raise_for_status()
    body = resp.content
    ext = verify.inspect(body, POLICY).extension if mode == "crawler" else decode(body, mode)
    digest = hashlib.sha256(body).hexdigest()
    folder = output / digest[:2] / digest[2:4]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{digest}.{ext}").write_bytes(body)
    return len(body)


def decode(body: bytes, mode: str) -> str:
    """Pillow: every frame in full (``full``), or JPEG at 1/8 (``draft``); the format."""
    with Image.open(io.BytesIO(body)) as image:
        if mode == "draft" and image.format == "JPEG":
            image.draft(None, (max(1, image.width // 8), max(1, image.height // 8)))
        for frame in range(getattr(image, "n_frames", 1)):
            image.seek(frame)
            image.load()
        return (image.format or "bin").lower()


def run_part(
    urls: list[str], output: Path, threads: int, mode: str, out: multiprocessing.Queue
) -> None:
    ok = failed = size = 0
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(fetch_one, url, output, mode) for url in urls]
        for future in futures:
            try:
                size += future.result()
                ok += 1
            except Exception:  # counted: the harness checks that nothing failed
                failed += 1
    out.put({"ok": ok, "failed": failed, "bytes": size})


def collect(results: multiprocessing.Queue, procs: list) -> list[dict]:
    """Each part's counts; a part that died without reporting counts as all failed."""
    parts: list[dict] = []
    while len(parts) < len(procs):
        try:
            parts.append(results.get(timeout=1))
        except queue.Empty:
            if all(not p.is_alive() for p in procs) and results.empty():
                parts += [{"ok": 0, "failed": 1, "bytes": 0}] * (len(procs) - len(parts))
    for proc in procs:
        proc.join()
    return parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("list", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--draft", action="store_true", help="decode JPEG at 1/8 scale")
    how.add_argument("--crawler-verify", action="store_true", help="the crawler's verify.inspect")
    args = parser.parse_args()
    mode = "crawler" if args.crawler_verify else "draft" if args.draft else "full"
    verify.configure(POLICY)
    urls = [line.strip() for line in args.list.read_text().splitlines() if line.strip()]
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=run_part, args=(urls[i :: args.procs], args.output, args.threads,
                                          mode, results))
        for i in range(args.procs)
    ]  # fmt: skip
    for proc in procs:
        proc.start()
    parts = collect(results, procs)
    total = {key: sum(p[key] for p in parts) for key in ("ok", "failed", "bytes")}
    print(json.dumps(total), flush=True)
    return 0 if total["failed"] == 0 and total["ok"] == len(urls) else 1


if __name__ == "__main__":
    sys.exit(main())
