"""Lines that processes sharing one stdout write are never run together.

A worker's ``--processes`` copies share its stdout, and each prints its summary there
(``console.show``). ``print`` wrote a line's text and its newline in two writes; with
Python unbuffered (``PYTHONUNBUFFERED=1``, common in containers and services) another
process's line could fall between them: a fresh user's worker output read
"... 0.0 MB downloadedworker vm:356: 69 URLs ..." (2026-12-02). Each line now goes out
in one write. Shown with two real processes writing 20,000 lines each into one file
through one shared descriptor, as forked copies do.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

WRITER = (
    "import sys; from crawler.console import show\n"
    "for i in range(20000): show(f'worker {sys.argv[1]}: line {i} ' + 'x' * 120)\n"
)
LINE = re.compile(r"worker [ab]: line \d+ x{120}")


def test_two_processes_lines_stay_whole(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(out, "w") as shared:  # one open file, one offset: as a forked copy's stdout
        writers = [
            subprocess.Popen([sys.executable, "-c", WRITER, name], stdout=shared, env=env)
            for name in "ab"
        ]
        for writer in writers:
            assert writer.wait(120) == 0
    lines = out.read_text().split("\n")
    assert lines.pop() == ""
    broken = [line for line in lines if not LINE.fullmatch(line)]
    assert broken == []
    assert len(lines) == 40000
