"""The master imports NumPy only when a step needs it (``crawler.deferred``, issue 15).

At start-up it would cost ~45 ms of CPU while the local workers import too, delaying the
first result. A real run under ``python -X importtime`` shows what the master process
loaded: a run whose report has fewer than two perceptual hashes to compare, and whose
per-line rows (a duplicate, an invalid line) have no earlier run to be matched to, never
loads NumPy; a run with two images does, for the report's near duplicates.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RUN_TIMEOUT, cli_env, read_rows
from imageserver import ImageServer

IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", re.M)


def _master_modules(urls: Path, out: Path) -> set[str]:
    """The modules a real master run (one local worker) loaded, as it reports them."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "crawler.master", "--no-block-private",
         str(urls), "--bind", "127.0.0.1", "--port", "0", "--local-workers", "1",
         "--threads", "2", "--output", str(out), "--no-progress", "-q"],
        env=cli_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return set(IMPORTED.findall(run.stderr))


@pytest.mark.parametrize("images", [1, 2])
def test_master_loads_numpy_only_for_what_needs_it(
    tmp_path: Path, image_server: ImageServer, images: int
) -> None:
    urls = [image_server.add_image(f"/img/{i}.jpg", "JPEG", 96, 64, seed=i) for i in range(images)]
    lines = [*urls, urls[0], "not a url"]  # a duplicate and an invalid line: per-line rows
    listed = tmp_path / "list.txt"
    listed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    loaded = _master_modules(listed, out)
    rows = read_rows(out / "manifest.jsonl")
    assert sorted(row["status"] for row in rows) == sorted(
        ["ok"] * images + ["duplicate", "invalid_url"]
    )
    assert "crawler.master.linerows" in loaded  # the check sees the master's own modules
    # importlib.import_module's own module gets no importtime line; its submodules do.
    numpy = any(name.startswith("numpy.") for name in loaded)
    assert numpy == (images == 2)  # two hashes: the report compares them
    assert "Near duplicates" in (out / "manifest.report.html").read_text(encoding="utf-8")
