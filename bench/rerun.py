"""A nightly rerun of a finished list: N URLs already `ok` in the manifest, plus 1 % new.

``python bench/rerun.py`` (N = 1,000,000; ``--scale`` for 10,000,000; ``--urls N``).
Once (cached in ``bench/.cache/``): a list of N URLs on 127.0.0.1 that are never fetched,
the same list with N/100 new URLs appended, and the manifest of a finished run of the
first list (``master_load``: the real master, 8 simulated workers answering `ok` with a
``host``). Then, in interleaved rounds, the real master reruns the longer list on a
fresh copy of that manifest, with the simulated workers:

- ``trust`` (the default since issue 12): stored images are taken from the manifest,
  only the new URLs go to workers;
- ``verify`` (``--verify-stored``: every URL through the workers, which is what every
  rerun did before issue 12) — the baseline;
- ``trust-read``: ``trust`` on a copy without the kept resume index (``NAME.resume.bin``),
  so the manifest is read in full: the first rerun after an upgrade or a crash.

Measured per run: wall time from launch to exit (planning, serving, compaction,
summary, report) and the master's peak RSS. Printed as a table, with the ratios
trust/verify of the same round; also written as JSON (``bench/rerun.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from master_load import CACHE, Load, run_master_load, url_list, write_urls
from procwatch import Limits

BENCH = Path(__file__).resolve().parent
SIM_WORKERS = 8
MODES = {"trust": (), "verify": ("--verify-stored",), "trust-read": ()}
UNKEPT = {"trust-read": ("m.resume.bin",)}  # files a mode's copy goes without


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def rerun_list(count: int) -> Path:
    """The list of ``count`` URLs with count/100 new ones appended (cached)."""
    path = CACHE / f"rerun-{count}.txt"
    if path.exists():
        return path
    base = url_list(count, say)
    tmp = path.with_suffix(".tmp")
    shutil.copyfile(base, tmp)
    with open(tmp, "a", encoding="ascii") as fh:
        write_urls(fh, "new", count // 100)
    tmp.replace(path)
    return path


def nightly_list(count: int, lines: Path) -> Path:
    """The one list path every run of the bench reads, as a nightly job reads one list
    that grows (rows name their line by it: ``source``), holding ``lines``'s lines now."""
    path = CACHE / f"nightly-{count}.txt"
    shutil.copyfile(lines, path)
    return path


def finished_manifest(count: int, env: dict[str, str], timeout: float) -> Path:
    """The folder holding the manifest of a completed run of the ``count``-URL list, with
    everything that run left beside it (summary, run history, the report's aggregate),
    as a nightly rerun finds them (cached)."""
    path = CACHE / f"finished-{count}"
    if (path / "m.jsonl").exists():
        return path
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        say(f"a first run over {count:,} URLs, for the finished manifest (once; cached) ...")
        urls = nightly_list(count, url_list(count, say))
        load = Load(urls, count, SIM_WORKERS, Path(work), env, Limits(timeout, 8192.0),
                    ("--no-report",))  # fmt: skip
        result = run_master_load(load, say)
        if result["status"] != "completed":
            raise SystemExit(f"the first run did not complete: {result}")
        path.mkdir(exist_ok=True)
        for kept in Path(work).glob("m.*"):  # the manifest and every file kept beside it
            if kept.name != "m.jsonl.lock":
                shutil.move(kept, path / kept.name)
    return path


def rerun(count: int, mode: str, env: dict[str, str], timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        for kept in finished_manifest(count, env, timeout).iterdir():
            if kept.name not in UNKEPT.get(mode, ()):
                shutil.copy2(kept, Path(work) / kept.name)  # copy2: times kept, as in place
        urls = nightly_list(count, rerun_list(count))  # read by the same path as the first run
        load = Load(urls, count // 100, SIM_WORKERS, Path(work), env, Limits(timeout, 8192.0),
                    MODES[mode])  # fmt: skip
        result = run_master_load(load, say)
    return {
        "mode": mode,
        "status": result["status"],
        "total_s": result["total_s"],
        "peak_rss_mb": result["peak_rss_mb"],
        "startup_s": result["startup_s"],
        "note": result["note"],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--urls", type=int, default=1_000_000)
    p.add_argument("--scale", action="store_true", help="N = 10,000,000")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per master run")
    p.add_argument("--json", type=Path, default=BENCH / "rerun.json")
    p.add_argument("--only", choices=tuple(MODES), help="run one mode (no ratio)")
    args = p.parse_args()
    count = 10_000_000 if args.scale else args.urls
    env = {k: v for k, v in os.environ.items() if k != "CRAWLER_AUTHKEY"}
    env["CRAWLER_AUTHKEY"] = secrets.token_hex(24)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH.parent), env.get("PYTHONPATH")]))
    CACHE.mkdir(parents=True, exist_ok=True)
    finished_manifest(count, env, args.timeout)
    rerun_list(count)
    runs = []
    for round_ in range(args.rounds):
        order = list(MODES) if round_ % 2 == 0 else list(reversed(MODES))  # interleaved
        for mode in [args.only] if args.only else order:
            say(f"round {round_ + 1}: rerun, {mode}, {count:,} + {count // 100:,} new URLs ...")
            runs.append(rerun(count, mode, env, args.timeout) | {"round": round_ + 1})
            say(f"  {runs[-1]['status']}: {runs[-1]['total_s']:.1f} s, "
                f"peak RSS {runs[-1]['peak_rss_mb']:.0f} MB")  # fmt: skip
    args.json.write_text(json.dumps({"urls": count, "runs": runs}, indent=2) + "\n")
    print(table(count, runs) if not args.only else json.dumps(runs, indent=2))
    return 0


def table(count: int, runs: list[dict[str, Any]]) -> str:
    def med(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["mode"] == mode)

    ratios = [
        t["total_s"] / v["total_s"]
        for t, v in zip(
            [r for r in runs if r["mode"] == "trust"],
            [r for r in runs if r["mode"] == "verify"],
            strict=True,
        )
    ]
    return "\n".join(
        [
            f"rerun of {count:,} finished URLs + {count // 100:,} new, "
            f"{SIM_WORKERS} simulated workers",
            *(
                f"  {mode:<10} wall {med(mode, 'total_s'):7.1f} s   "
                f"master peak RSS {med(mode, 'peak_rss_mb'):6.0f} MB"
                for mode in MODES
                if any(r["mode"] == mode for r in runs)
            ),
            f"  trust / verify wall time, per round: {', '.join(f'{x:.2f}' for x in ratios)}",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
