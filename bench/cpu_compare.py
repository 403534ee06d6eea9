"""Worker CPU per image, by format and by stage: this checkout against an earlier commit,
measured in the same run, interleaved.

``python bench/cpu_compare.py [--before REV] [--per-format 300] [--mix 1000] [--rounds 3]``

For each format of the corpus (and for the mix) one worker fetches that part of the
corpus from nginx, under ``stage_timer.py`` (``profile_worker.profile``), once with the
crawler package of ``--before`` (exported with ``git archive`` into a scratch folder) and
once with this checkout's, alternating which goes first round by round. Prints the
median over rounds of the whole worker process's CPU ms per image (start-up included:
it is what a worker costs), and the stages (HTTP, decode, write, the rest).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import servers
import trash
from corpus import ensure_corpus
from profile_worker import profile
from run import child_env, say
from throughput import Job

BENCH = Path(__file__).resolve().parent
STAGES = ("http", "decode", "write")


def export(rev: str, into: Path) -> Path:
    """The crawler package of ``rev``, unpacked under ``into``; returns its parent folder."""
    data = subprocess.run(["git", "-C", str(BENCH.parent), "archive", rev, "crawler"],
                          check=True, capture_output=True).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def one(files: list[dict], base: str, corpus_urls: Any, env: dict, work: Path, threads: int):
    trash.set_aside(work)  # not deleted: see trash.py
    work.mkdir(parents=True)
    urls = work / "list.txt"
    urls.write_text("\n".join(corpus_urls(base, files)) + "\n")
    megabytes = sum(f["bytes"] for f in files) / 1e6
    job = Job(urls, len(files), megabytes, work, env, 600)
    r = profile(job, threads, None, 0)
    n = len(files)
    cpu = r["cpu_s"]
    out = {k: 1000 * cpu.get(k, 0.0) / n for k in STAGES}
    out["whole"] = 1000 * r["process_cpu_s"] / n
    out["start-up"] = 1000 * r["startup_cpu_s"] / n
    out["rest"] = out["whole"] - sum(out[k] for k in (*STAGES, "start-up"))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", default="main")
    p.add_argument("--corpus", type=int, default=3000)
    p.add_argument(
        "--per-format", type=int, default=300, help="images of each format (0: the mix only)"
    )
    p.add_argument("--mix", type=int, default=1000, help="images of the mix")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=16)
    a = p.parse_args()
    corpus = ensure_corpus(a.corpus, False, say)
    groups: dict[str, list[dict]] = defaultdict(list)
    for f in corpus.files:
        groups[f["format"]].append(f)
    sets = {fmt: files[: a.per_format] for fmt, files in sorted(groups.items()) if a.per_format}
    sets["mix"] = corpus.subset(a.mix)
    share = {fmt: len(files) / len(corpus.files) for fmt, files in groups.items()}
    scratch = Path(tempfile.mkdtemp(prefix="crawler-cpu-"))
    results: dict[tuple[str, str], list[dict]] = defaultdict(list)
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        srcs = {"before": export(a.before, scratch / "before"), "after": BENCH.parent}
        envs = {which: child_env(src) for which, src in srcs.items()}  # compiled once each
        static = servers.start_static(corpus.root, f"/img/{corpus.files[0]['name']}",
                                      "auto", True, say)  # fmt: skip
        stack.callback(static.stop)
        for round_ in range(a.rounds):
            order = list(srcs) if round_ % 2 == 0 else list(srcs)[::-1]
            for name, files in sets.items():
                for which in order:
                    r = one(files, static.base_url, corpus.urls, envs[which],
                            scratch / "work", a.threads)  # fmt: skip
                    results[(name, which)].append(r)
                    say(f"round {round_ + 1} {name:<5} {which:<6} {r['whole']:.2f} ms/image")
    print_table(results, list(sets), share, a.before)
    return 0


def print_table(results: dict, names: list[str], share: dict[str, float], before: str) -> None:
    cols = ("whole", *STAGES, "rest", "start-up")
    print(f"worker CPU ms per image (median of rounds); before = {before}, after = this checkout")
    print(f"{'set':<6}{'share':>6} {'':<7}" + "".join(f"{c:>9}" for c in cols))
    for name in names:
        for which in ("before", "after"):
            runs = results[(name, which)]
            meds = [statistics.median(r[c] for r in runs) for c in cols]
            pct = f"{share[name]:.0%}" if name in share else ""
            print(f"{name:<6}{pct:>6} {which:<7}" + "".join(f"{m:9.2f}" for m in meds))


if __name__ == "__main__":
    sys.exit(main())
