"""A public IPv4 site crawled with the default ``--block-private``, in a network
namespace of the test's own where that address lives on loopback, so nothing leaves.

Every other test serves from 127.0.0.1 with the guard off (``conftest.cli_command``), so
none saw the guard let a public address through: one version of the IPv6 check raised
AttributeError on every IPv4 address, and the default policy failed every IPv4 site as
``worker_error`` (a fresh user, 2026-12-01). Needs root and ``unshare``; skipped without
them, except under ``CI=true``, where it must run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RUN_TIMEOUT, cli_env, read_rows
from imageserver import make_image

PUBLIC = "93.184.216.34"  # a global address, configured only inside the namespace
SCRIPT = """
set -e
ip link set lo up
ip addr add {public}/32 dev lo
cd {root}
{python} -m http.server --bind {public} 18180 >/dev/null 2>&1 &
server=$!
trap 'kill $server' EXIT
for i in $(seq 50); do
    {python} -c "import socket; socket.create_connection(('{public}', 18180), 1)" \\
        2>/dev/null && break
    sleep 0.1
done
{python} -m crawler.master l.txt --output out --port 0 --local-workers 1 --no-progress --no-report
"""


def test_a_public_ipv4_site_is_crawled_with_the_guard_on(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run this: it needs root, unshare and iproute2")
        pytest.skip("needs root, unshare and iproute2")
    (tmp_path / "a.png").write_bytes(make_image("PNG", 20, 20, seed=1))
    (tmp_path / "l.txt").write_text(f"http://{PUBLIC}:18180/a.png\n")
    script = SCRIPT.format(public=PUBLIC, root=tmp_path, python=sys.executable)
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", script], env=cli_env(), capture_output=True, text=True,
        timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (row,) = read_rows(tmp_path / "out" / "manifest.jsonl")
    assert (row["status"], row["http_status"]) == ("ok", 200), row
