"""The tools users pick instead of the crawler, as benchmark contenders: img2dataset, aria2c.

* ``img2dataset`` (1.47, the version the issue measured) is installed by the bench into
  its own virtualenv under ``bench/.cache/img2dataset-venv`` (once; reused; not by
  ``--quick`` or ``--no-install`` runs), never into the crawler's environment. When it
  cannot be installed the contender is skipped with the reason. Settings:
  ``resize_mode=no``, ``skip_reencode``, ``output_format=files``, N processes x 16
  threads, the list cut into 2 shards per process (one shard is downloaded by one
  process: fewer shards would leave processes idle). It decodes every image with OpenCV
  (to read its size) and does not catch truncation.
* ``aria2c -j32``: no verification at all; skipped with a message when not installed.

Each run writes into the job's scratch folder; a run is valid when every URL became a
file (img2dataset: its stats files count every URL a success).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from procwatch import Limits, watch
from throughput import Job, failure_note, figures

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".cache" / "img2dataset-venv"
IMG2DATASET = "img2dataset==1.47.0"
INSTALL_TIMEOUT = 600  # seconds for the one-off pip install
Say = Callable[[str], None]


def img2dataset_binary(install: bool, say: Say) -> tuple[Path | None, str]:
    """The img2dataset command of the bench's own virtualenv (installing it the first
    time when ``install``), or None and why not."""
    binary = VENV / "bin" / "img2dataset"
    if binary.exists():
        return binary, "cached"
    if not install:
        return None, f"not installed in {VENV} (a run without --quick/--no-install does)"
    say(f"installing {IMG2DATASET} into {VENV} (once) ...")
    started = time.monotonic()
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True,
                       capture_output=True, timeout=120)  # fmt: skip
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", IMG2DATASET], check=True,
                       capture_output=True, timeout=INSTALL_TIMEOUT)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(VENV, ignore_errors=True)
        tail = getattr(exc, "stderr", b"") or b""
        reason = tail.decode(errors="replace").strip().splitlines()[-1:] or [str(exc)]
        return None, f"cannot install {IMG2DATASET}: {reason[0][:200]}"
    say(f"img2dataset installed in {time.monotonic() - started:.0f} s")
    return (binary, "installed now") if binary.exists() else (None, "no img2dataset after pip")


def img2dataset_command(binary: Path, job: Job, procs: int, threads: int) -> list[str]:
    per_shard = max(1, math.ceil(job.count / (2 * procs)))
    return [
        str(binary), "--url_list", str(job.urls), "--input_format", "txt",
        "--output_folder", str(job.scratch / "out"), "--output_format", "files",
        "--processes_count", str(procs), "--thread_count", str(threads),
        "--resize_mode", "no", "--skip_reencode", "True",
        "--number_sample_per_shard", str(per_shard), "--timeout", "30",
        "--enable_wandb", "False", "--distributor", "multiprocessing",
    ]  # fmt: skip


def run_img2dataset(binary: Path, job: Job, procs: int, threads: int) -> dict[str, Any]:
    """img2dataset over the list: valid when its stats count every URL a success."""
    env = dict(job.env, NO_ALBUMENTATIONS_UPDATE="1", WANDB_MODE="disabled")
    env.pop("PYTHONPATH", None)  # its own virtualenv, not the crawler's
    run = watch(img2dataset_command(binary, job, procs, threads), env, Limits(job.timeout_s))
    result = figures(job, run)
    ok = _img2dataset_successes(job.scratch / "out")
    result["valid"] = run.returncode == 0 and ok == job.count
    if not result["valid"]:
        result["note"] = failure_note(run, f"exit {run.returncode}, {ok}/{job.count} successes")
    return result


def _img2dataset_successes(out: Path) -> int:
    total = 0
    for stats in out.glob("*_stats.json"):
        try:
            total += int(json.loads(stats.read_text()).get("successes", 0))
        except (OSError, ValueError, TypeError):
            continue
    return total


def run_aria2c(job: Job) -> dict[str, Any]:
    """aria2c -j32 over the list: 32 downloads at once, no verification."""
    out = job.scratch / "out"
    command = ["aria2c", "-i", str(job.urls), "-d", str(out), "-j32", "-q",
               "--file-allocation=none", "--auto-file-renaming=false", "--allow-overwrite=true",
               "--max-tries=1", "--console-log-level=error", "--summary-interval=0"]  # fmt: skip
    run = watch(command, job.env, Limits(job.timeout_s))
    result = figures(job, run)
    files = sum(1 for p in out.iterdir() if p.is_file()) if out.exists() else 0
    result["valid"] = run.returncode == 0 and files == job.count
    if not result["valid"]:
        result["note"] = failure_note(run, f"exit {run.returncode}, {files}/{job.count} files")
    return result
