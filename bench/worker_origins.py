"""A real worker's memory over many origins, each with a robots.txt of its own.

``python bench/worker_origins.py [--origins 3000] [--urls 6000] [--robots-bytes 1000]
[--rounds 2] [--compare-src DIR]``

The worker-RSS scenario of ``run.py`` fetches every URL from one origin, so nothing a
worker keeps per origin shows there. Here an asyncio server in a child process listens
on ``--origins`` ports of 127.0.0.1 (each port an origin: RFC 9309 2.3 scopes
robots.txt to scheme, host and port) and answers ``/robots.txt`` with about
``--robots-bytes`` of Disallow rules (none of them the URLs') and every other path with
one small JPEG. The master runs with one local worker of 16 threads over ``--urls``
URLs spread over those origins; it prints, per checkout and round, the worker's peak
RSS (VmHWM) and the run's wall time, rounds interleaved. Until 2026-12-02 a worker kept
every robots.txt it fetched, parsed, for the run (``worker.robots``).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from procwatch import Limits, watch
from run import child_env, say
from throughput import WORKER_TAG

BENCH = Path(__file__).resolve().parent


def robots_text(size: int) -> bytes:
    lines = ["User-agent: *"]
    while sum(len(line) + 1 for line in lines) < size:
        lines.append(f"Disallow: /private{len(lines)}/")
    return ("\n".join(lines) + "\n").encode()


def _jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 80, 20)).save(out, "JPEG", quality=80)
    return out.getvalue()


async def _serve(origins: int, robots_bytes: int) -> None:
    robots, image = robots_text(robots_bytes), _jpeg()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                is_robots = path == b"/robots.txt"
                body, kind = (robots, b"text/plain") if is_robots else (image, b"image/jpeg")
                head = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                writer.write(head % (kind, len(body)) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # the client went away
        except IndexError:
            pass  # not a request line: the connection ends
        finally:
            writer.close()

    servers = [await asyncio.start_server(answer, "127.0.0.1", 0) for _ in range(origins)]
    print(json.dumps([s.sockets[0].getsockname()[1] for s in servers]), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the harness ends


def one_run(src: Path, urls: Path, scratch: Path, count: int) -> dict[str, float]:
    env = child_env(src)
    command = [
        sys.executable, "-m", "crawler.master", str(urls), "--bind", "127.0.0.1", "--port", "0",
        "--local-workers", "1", "--threads", "16", "--output", str(scratch / "out"),
        "--manifest", str(scratch / "m.jsonl"), "--no-progress", "-q", "--no-block-private",
        "--no-report",
    ]  # fmt: skip
    run = watch(command, env, Limits(600.0), child_tag=WORKER_TAG, manifest=scratch / "m.jsonl")
    rows = [json.loads(line) for line in (scratch / "m.jsonl").read_text().splitlines()]
    ok = sum(row["status"] == "ok" for row in rows)
    if run.returncode != 0 or ok != count:
        say(f"run not valid: exit {run.returncode}, {ok}/{count} ok rows")
    return {"worker_peak_rss_mb": max(run.child_hwm_mb.values(), default=float("nan")),
            "wall_s": run.wall_s}  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--origins", type=int, default=3000)
    p.add_argument("--urls", type=int, default=6000)
    p.add_argument("--robots-bytes", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--compare-src", type=Path, help="another checkout, measured alongside")
    p.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)  # the child
    a = p.parse_args()
    if a.serve:
        asyncio.run(_serve(*a.serve))
        return 0
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(a.origins), str(a.robots_bytes)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    scratch = Path(tempfile.mkdtemp(prefix="bench-worker-origins-"))
    try:
        ports = json.loads(server.stdout.readline())  # type: ignore[union-attr]
        urls = scratch / "urls.txt"
        urls.write_text("".join(f"http://127.0.0.1:{ports[i % len(ports)]}/i/{i}.jpg\n"
                                for i in range(a.urls)))  # fmt: skip
        sources = {"this": BENCH.parent}
        if a.compare_src:
            sources[str(a.compare_src)] = a.compare_src.resolve()
        figures: dict[str, list[dict[str, float]]] = {name: [] for name in sources}
        for r in range(a.rounds):
            for name in list(sources)[:: 1 if r % 2 == 0 else -1]:
                work = scratch / "run"
                shutil.rmtree(work, ignore_errors=True)
                work.mkdir()
                got = one_run(sources[name], urls, work, a.urls)
                figures[name].append(got)
                say(f"round {r + 1} {name}: " + ", ".join(f"{k} {v:,.1f}" for k, v in got.items()))
        print(f"{a.urls:,} URLs over {a.origins:,} origins, robots.txt ~{a.robots_bytes} B, "
              f"1 worker x 16 threads; median of {a.rounds} rounds:")  # fmt: skip
        for name, runs in figures.items():
            med = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
            print(f"  {name:8} " + ", ".join(f"{k} {v:,.1f}" for k, v in med.items()))
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(10)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
