"""A simulated worker: takes tasks from a master and answers each at once with an "ok" result.

Only the crawler's public protocol is used (``Channel``, ``decode_task``,
``encode_result``), so the master does all of its real work (leases, decoding and
checking results, the manifest, the content and near-duplicate indexes) while nothing
is downloaded. Each row has a real row's fields, with a sha256 and a perceptual hash of
its own: rows that all carried one digest and no hash (as before 2026-11-30) spared the
master its per-image index work. Run by the harness as ``python bench/simworker.py
--port P --name NAME --deadline S [--batch N]``; the key comes from
$CRAWLER_AUTHKEY, the crawler from $PYTHONPATH (or the installed package). Prints one
JSON line: results sent, calls made, and the monotonic times of the first get and of
every put (comparable across processes on one host).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time
from typing import Any

from crawler.exceptions import CrawlerError
from crawler.layout import stored_name
from crawler.protocol import decode_task, encode_result
from crawler.worker.channel import Channel

BATCH = 500
WAIT = 2.0  # seconds a get() may wait on the master
NO_ROBOTS = {"status": 404, "body": ""}  # the verdict a probe's robots.txt 404 gives


def robots_verdict(size: int) -> dict[str, Any]:
    """A probe's verdict: a robots.txt of about ``size`` bytes of Disallow rules (none of
    them the URLs' folder), or a 404's (``size`` 0)."""
    if size <= 0:
        return NO_ROBOTS
    lines, n = ["User-agent: *"], 0
    while sum(len(line) + 1 for line in lines) < size:
        lines.append(f"Disallow: /private{n}/")
        n += 1
    return {"status": 200, "body": base64.b64encode("\n".join(lines).encode()).decode()}


def fake_result(task_id: int, url: str, name: str) -> str:
    """An "ok" row with the fields a real worker's has, its values distinct per URL (so
    the content and near-duplicate indexes do the work they do in a real run)."""
    digest = hashlib.sha256(url.encode()).hexdigest()
    return encode_result(
        {
            "id": task_id,
            "url": url,
            "status": "ok",
            "worker": name,
            "host": "bench",  # a --host-id: a rerun trusts rows that name their host
            "store": None,
            "http_status": 200,
            "final_url": url,
            "content_type": "image/jpeg",
            "etag": f'"{digest[:16]}"',
            "last_modified": "Mon, 30 Nov 2026 08:00:00 GMT",
            "bytes": 150_000 + int(digest[:4], 16),
            "width": 1920,
            "height": 1080,
            "orientation": None,
            "format": "JPEG",
            "sha256": digest,
            "phash": digest[-16:],
            "path": stored_name(url, "jpg"),  # where a worker stores it
            "attempts": 1,
            "elapsed_s": 0.012,
        }
    )


def work(
    channel: Channel,
    stats: dict[str, Any],
    deadline: float,
    max_calls: int,
    batch: int,
    verdict: dict[str, Any] = NO_ROBOTS,
) -> None:
    """get → put until the master says the run is over, the deadline passes or calls run
    out; ``verdict``: what each probe's robots.txt gives."""
    name = stats["name"]
    channel.hello(name, {"host": "bench", "pid": os.getpid(), "threads": 0})
    while time.monotonic() < deadline and stats["calls"] < max_calls:
        stats["first_get"] = stats["first_get"] or time.monotonic()
        answer = channel.get(name, batch, WAIT)
        stats["calls"] += 1
        if answer.get("over"):
            stats["over"] = True
            break
        tasks = [decode_task(text) for text in answer.get("tasks", [])]
        probes = [t.id for t in tasks if t.robots is None]  # as a worker does
        if probes:
            channel.robots_found(name, [{"id": i, "verdict": verdict} for i in probes])
        if tasks:
            channel.put(name, [fake_result(t.id, t.url, name) for t in tasks])
            stats["results"] += len(tasks)
            stats["last_put"] = time.monotonic()
            stats["puts"].append((round(stats["last_put"], 4), len(tasks)))
    channel.bye(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--deadline", type=float, required=True, help="seconds from now")
    parser.add_argument("--max-calls", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=BATCH, help="tasks asked for per get")
    parser.add_argument("--robots-bytes", type=int, default=0,
                        help="each probe's robots.txt, about this size (0: a 404)")  # fmt: skip
    args = parser.parse_args()
    key = os.environ["CRAWLER_AUTHKEY"].encode()
    deadline = time.monotonic() + args.deadline
    stats: dict[str, Any] = {"name": args.name, "results": 0, "calls": 0, "over": False}
    stats["puts"] = []  # (monotonic time, results) per put
    stats["first_get"] = stats["last_put"] = None
    try:
        channel = Channel(args.host, args.port, key, 10.0)
        verdict = robots_verdict(args.robots_bytes)
        work(channel, stats, deadline, args.max_calls, args.batch, verdict)
    except CrawlerError as exc:  # the master went away: say so, with what was done
        stats["error"] = str(exc)
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
