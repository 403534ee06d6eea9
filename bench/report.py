"""The one table (scenario, metric, value, target, ok?) and the JSON file, with machine info."""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import PIL
import requests
import urllib3

REPO = Path(__file__).resolve().parent.parent
HEADER = ("scenario", "metric", "value", "target", "ok?")
MAX_CELL = 50  # longer values (failure notes) are cut in the table and listed in full below it


@dataclass
class Row:
    scenario: str
    metric: str
    value: float | int | str | None
    target: str = ""
    ok: bool | None = None  # None: no target, for information

    def cells(self) -> tuple[str, str, str, str, str]:
        mark = "" if self.ok is None else ("yes" if self.ok else "NO")
        value = fmt(self.value)
        if len(value) > MAX_CELL:
            value = value[: MAX_CELL - 3] + "..."
        return self.scenario, self.metric, value, self.target, mark


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    size = abs(value)
    if isinstance(value, int) or size >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}" if size >= 10 else f"{value:.2f}" if size >= 0.1 else f"{value:.3g}"


def render(rows: list[Row], title: str) -> str:
    cells = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = [title, ""]
    for k, cell in enumerate(cells):
        left = [c.ljust(w) for c, w in zip(cell[:2], widths[:2], strict=True)]
        right = [cell[2].rjust(widths[2]), cell[3].ljust(widths[3]), cell[4]]
        lines.append("  ".join(left + right).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    long = [r for r in rows if len(fmt(r.value)) > MAX_CELL]
    if long:
        lines += ["", "notes:"] + [f"  {r.scenario} / {r.metric}: {fmt(r.value)}" for r in long]
    return "\n".join(lines)


def machine_info(server: dict[str, Any], crawler_src: Path = REPO) -> dict[str, Any]:
    """The machine, the libraries, the server and the crawler version measured."""
    git = ["git", "-C", str(crawler_src)]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "memory_mb": _meminfo_mb("MemTotal"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "pillow": PIL.__version__,
        "requests": requests.__version__,
        "urllib3": urllib3.__version__,
        "server": server.get("name"),
        "server_fallback_reason": server.get("fallback"),
        "wget": _first_line(["wget", "--version"]) if shutil.which("wget") else None,
        "crawler_src": str(crawler_src),
        "crawler_commit": _first_line([*git, "rev-parse", "--short", "HEAD"]),  # None: not git
        "crawler_dirty": bool(_first_line([*git, "status", "--porcelain", "crawler"])),
    }  # fmt: skip


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _meminfo_mb(key: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return None


def mem_available_mb() -> int:
    return _meminfo_mb("MemAvailable") or 4096


def _first_line(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return None
    lines = done.stdout.strip().splitlines()
    return lines[0] if lines else None


def write_json(path: Path, machine: dict, params: dict, scenarios: dict, rows: list[Row]) -> None:
    data = {
        "machine": machine,
        "params": params,
        "scenarios": scenarios,
        "table": [asdict(row) for row in rows],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_plain(data), indent=2, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def _plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null, paths strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
