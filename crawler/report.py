"""The HTML run report: one self-contained page summing up a manifest.

``write_report`` streams the manifest twice and never holds it whole. The first pass
finds which rows are current (in the journal the last row of a URL counts; a Bloom
filter keeps this to a few bits a row) and the latest run. The second aggregates:
counts by status and host, rows finished over time, and bounded samples (the first
failures, a reservoir of stored images). Thumbnails of sampled images found under
``output`` are made with Pillow and embedded as ``data:`` URIs: the page has no
scripts and no external assets (its Content-Security-Policy allows neither), and all
text from the web is HTML-escaped. Command line: ``python -m crawler.report MANIFEST``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import math
import os
import random
import re
import stat
import statistics
import sys
import warnings
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from PIL import Image

from crawler import __version__
from crawler import constants as c
from crawler.exceptions import CrawlerError, UsageError
from crawler.manifest import LINE_STATUSES, read_manifest
from crawler.summary import now_iso

MAX_FAILURES = 500  # rows in the failure table
MAX_STATUSES = 64  # distinct status values counted; more only in a hand-edited manifest
MAX_HOSTS = 100_000  # hosts counted one by one; rows of any further host are pooled
TOP_HOSTS, TOP_RANKED = 50, 10  # rows in the host table; in the slowest / failing tables
MAX_IMAGE_BYTES = 64 << 20  # stored files larger than this get no thumbnail
THUMB = (160, 160)
BUCKET_S = 5  # finished_at resolution of the throughput chart
BAR_WIDTHS = (5, 10, 30, 60, 300, 900, 3600, 21600, 86400)  # seconds a bar may stand for
MAX_BARS, PLOT_H = 120, 180
TIMES_KEPT = 64  # elapsed_s values kept per host: exact medians up to 64 rows, sampled above
STORED_NAME = re.compile(
    r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.(jpg|png|gif|webp|bmp|tif|ico)"
)
NETLOC = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#]*)")  # manifest URLs are normalised
OPEN_FORMATS = ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "ICO"]
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _num(value: Any) -> float | None:
    """A JSON number as float; None for anything else (bools, strings, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return float(value)


def _timestamp(value: Any) -> float | None:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _host_name(row: dict[str, Any]) -> str:
    """The row's host[:port]; a pseudo-host in parentheses for rows without one."""
    if row.get("status") == c.INVALID_URL:
        return "(invalid URL)"
    match = NETLOC.match(row["url"])
    return (match[1].lower() if match else "") or "(no host)"


def _status(row: dict[str, Any]) -> str:
    status = row.get("status")
    return status if isinstance(status, str) else "(missing)"


def _digest(row: dict[str, Any]) -> bytes:
    """What a row is the current row of: its URL or, for per-line rows, its input line."""
    status = _status(row)
    key = f"L{status}\0{row.get('source') or row['url']}" if status in LINE_STATUSES else row["url"]
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=20).digest()


@dataclass
class _Scan:
    """First pass: rows read, the last index of every key seen twice, the latest run."""

    count: int = 0
    last_of: dict[int, int] = field(default_factory=dict)
    latest_run: str | None = None
    latest_ts: float = -math.inf


def _scan(manifest: Path) -> _Scan:
    bits = max(1 << 16, manifest.stat().st_size // 16)  # rows are >300 bytes: >20 bits a row
    bloom, scan = bytearray(bits // 8 + 1), _Scan()
    for index, row in enumerate(read_manifest(manifest)):
        digest = _digest(row)
        spots = [int.from_bytes(digest[i : i + 4]) % bits for i in (8, 12, 16)]
        if all(bloom[s >> 3] & (1 << (s & 7)) for s in spots):  # maybe seen before
            scan.last_of[int.from_bytes(digest[:8])] = index
        for s in spots:
            bloom[s >> 3] |= 1 << (s & 7)
        ts = _timestamp(row.get("finished_at"))
        if ts is not None and ts >= scan.latest_ts and isinstance(row.get("run_id"), str):
            scan.latest_ts, scan.latest_run = ts, row["run_id"]
        scan.count = index + 1
    return scan


@dataclass(slots=True)
class _Host:
    urls: int = 0
    failed: int = 0
    timed: int = 0
    elapsed_sum: float = 0.0
    times: array[float] = field(default_factory=lambda: array("f"))  # a reservoir

    def add(self, failed: bool, elapsed: float | None, rng: random.Random) -> None:
        self.urls += 1
        self.failed += failed
        if elapsed is not None and elapsed >= 0:
            self.timed += 1
            self.elapsed_sum += elapsed
            if len(self.times) < TIMES_KEPT:
                self.times.append(elapsed)
            elif (slot := rng.randrange(self.timed)) < TIMES_KEPT:
                self.times[slot] = elapsed

    def median(self) -> float:
        return statistics.median(self.times) if self.times else 0.0


@dataclass
class _Report:
    """Second pass: everything the page shows, in bounded memory."""

    sample: int
    chart_run: str | None
    rows: int = 0
    failed: int = 0
    stored_bytes: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    hosts: dict[str, _Host] = field(default_factory=dict)
    pooled: _Host = field(default_factory=_Host)
    failures: list[tuple[Any, ...]] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    stored_seen: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    bars: tuple[Counter[int], ...] = field(default_factory=lambda: (Counter(), Counter()))
    fetched: int = 0  # downloaded (not reused) in the chart run
    span: tuple[float, float] = (math.inf, -math.inf)

    def add(self, row: dict[str, Any]) -> None:
        status = _status(row)
        if status not in c.STATUSES and len(self.statuses) >= MAX_STATUSES:
            status = "(other)"  # a closed vocabulary, unless the manifest was edited
        failed = status not in c.SUCCESS_STATUSES and status != c.DUPLICATE
        self.rows += 1
        self.failed += failed
        self.statuses[status] += 1
        self._host(row).add(failed, _num(row.get("elapsed_s")), self.rng)
        if failed and len(self.failures) < MAX_FAILURES:
            cells = (row["url"], status, row.get("http_status"), row.get("error"))
            self.failures.append(tuple(None if v is None else str(v)[:1000] for v in cells))
        if status in c.SUCCESS_STATUSES:
            self.stored_bytes += int(_num(row.get("bytes")) or 0)
            self._sample(row)
        ts = _timestamp(row.get("finished_at"))
        if ts is not None and row.get("run_id") == self.chart_run:
            self.bars[failed][int(ts // BUCKET_S)] += 1
            self.span = (min(self.span[0], ts), max(self.span[1], ts))
            self.fetched += status == c.OK and not row.get("reused")

    def _host(self, row: dict[str, Any]) -> _Host:
        host = self.hosts.get(name := _host_name(row))
        if host is None and len(self.hosts) >= MAX_HOSTS:
            return self.pooled
        return host or self.hosts.setdefault(name, _Host())

    def _sample(self, row: dict[str, Any]) -> None:
        """Reservoir sampling: every stored row equally likely to be a gallery candidate."""
        if not isinstance(row.get("path"), str):
            return
        self.stored_seen += 1
        slot, cap = len(self.candidates), 4 * self.sample  # files may be on other hosts
        if slot >= cap:
            slot = self.rng.randrange(self.stored_seen)
        if slot < cap:
            keep = {k: row.get(k) for k in ("url", "path", "width", "height", "format", "bytes")}
            self.candidates[slot : slot + 1] = [keep]


def _read_summary(manifest: Path) -> dict[str, Any]:
    try:
        data = json.loads(manifest.with_name(manifest.stem + ".summary.json").read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _thumbnail(output: Path, relative: str) -> str | None:
    """A data: URI of a stored image's thumbnail; None when it cannot be shown."""
    match = STORED_NAME.fullmatch(relative)
    if not match or match[1] + match[2] != match[3][:4]:
        return None
    try:
        fd = os.open(output / relative, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_IMAGE_BYTES:
            return None
        data = fh.read()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _encode_thumbnail(data)
    except Exception:  # Pillow raises many types for a bad file; it just gets no thumbnail
        return None


def _encode_thumbnail(data: bytes) -> str | None:
    with Image.open(io.BytesIO(data), formats=OPEN_FORMATS) as image:
        if image.width * image.height > (Image.MAX_IMAGE_PIXELS or 178_956_970):
            return None  # the bomb guard stays on, even where it was switched off
        image.thumbnail(THUMB)
        alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = image.convert("RGBA" if alpha else "RGB")
    buf = io.BytesIO()
    image.save(buf, format="PNG" if alpha else "JPEG", **({} if alpha else {"quality": 80}))
    kind = "png" if alpha else "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def _e(value: Any, limit: int = 300) -> str:
    text = "" if value is None else str(value)
    return escape(text if len(text) <= limit else text[: limit - 1] + "…", quote=True)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _table(head: tuple[str, ...], rows: list[tuple[Any, ...]], cls: str = "") -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _totals(rep: _Report, summary: dict[str, Any]) -> str:
    rate = _num(summary.get("images_per_s"))
    if rate is None and rep.span[1] > rep.span[0]:
        rate = rep.fetched / (rep.span[1] - rep.span[0])
    hosts = sum(not name.startswith("(") for name in rep.hosts)
    cards = {
        "URLs": f"{rep.rows:,}",
        "succeeded": f"{sum(rep.statuses[s] for s in c.SUCCESS_STATUSES):,}",
        "failed": f"{rep.failed:,}",
        "duplicates": f"{rep.statuses[c.DUPLICATE]:,}",
        "stored": _size(rep.stored_bytes),
        "images/s": "—" if rate is None else f"{rate:.1f}",
        "hosts": f"{hosts:,}" + ("+" if rep.pooled.urls else ""),
    }
    return "".join(f'<div class="card"><b>{v}</b><span>{k}</span></div>' for k, v in cards.items())


def _rates(rep: _Report) -> tuple[int, int, list[list[float]]]:
    """The chart run's rows in at most MAX_BARS bars: start, bar seconds, [ok, failed]/min."""
    keys = rep.bars[0].keys() | rep.bars[1].keys()
    lo, hi = min(keys) * BUCKET_S, max(keys) * BUCKET_S
    width = next((w for w in BAR_WIDTHS if (hi - lo) / w < MAX_BARS), (hi - lo) // MAX_BARS + 1)
    start = lo // width * width
    rates = [[0.0, 0.0] for _ in range((hi - start) // width + 1)]
    for failed, counter in enumerate(rep.bars):
        for key, count in counter.items():
            rates[(key * BUCKET_S - start) // width][failed] += count * 60 / width
    return start, width, rates


def _clock(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):  # a bar before year 1
        return "?"


def _rate(per_minute: float) -> str:
    return f"{per_minute:.0f}" if per_minute >= 10 or per_minute == 0 else f"{per_minute:.2g}"


def _bar(x: float, w: float, rate: list[float], top: float, when: float) -> str:
    ok, bad = (v / top * PLOT_H for v in rate)
    rect = '<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" class="{}"/>'
    tip = f"<title>{_clock(when)}: {_rate(rate[0])} ok, {_rate(rate[1])} failed a minute</title>"
    high = rect.format(x, 20 + PLOT_H - ok - bad, w, bad, "bad") if bad else ""
    return f"<g>{tip}{rect.format(x, 20 + PLOT_H - ok, w, ok, 'ok')}{high}</g>"


def _chart(rep: _Report) -> str:
    if not rep.bars[0] and not rep.bars[1]:
        return '<p class="note">No row of the latest run has a finished_at time.</p>'
    start, width, rates = _rates(rep)
    top, step, base = max(sum(r) for r in rates) or 1, 900 / len(rates), 20 + PLOT_H
    bars = (
        _bar(50 + i * step, max(step - 1, 1), r, top, start + i * width)
        for i, r in enumerate(rates)
    )
    text = '<text x="{}" y="{}" class="ax" text-anchor="{}">{}</text>'
    axes = (
        text.format(45, 25, "end", f"{_rate(top)}/min") + text.format(45, base, "end", 0)
        + f'<line x1="50" y1="{base}" x2="950" y2="{base}" class="axis"/>'
        + text.format(50, base + 18, "start", _clock(start))
        + text.format(950, base + 18, "end", _clock(start + len(rates) * width))
    )  # fmt: skip
    return (
        f'<svg viewBox="0 0 960 {base + 28}" role="img" aria-label="rows finished per minute">'
        f'{axes}{"".join(bars)}</svg><p class="note">Rows finished per minute in run '
        f"{_e(rep.chart_run)}, one bar per {width} s: "
        '<span class="k ok"></span>ok or not modified <span class="k bad"></span>failed</p>'
    )


def _statuses(rep: _Report) -> str:
    meaning = c.STATUSES.get
    rows = [
        (s, f"{n:,}", f"{100 * n / rep.rows:.1f}\u00a0%", meaning(s, "(not a crawler status)"))
        for s, n in rep.statuses.most_common()
    ]
    return _table(("status", "rows", "share", "meaning"), rows, "status")


HOST_HEAD = ("host", "URLs", "failures", "failure rate", "median s", "mean s")


def _host_table(hosts: list[tuple[str, _Host]], cls: str) -> str:
    if not hosts:
        return '<p class="note">None.</p>'
    rows = [
        (name, f"{h.urls:,}", f"{h.failed:,}", f"{100 * h.failed / h.urls:.1f}\u00a0%")
        + ((f"{h.median():.3f}", f"{h.elapsed_sum / h.timed:.3f}") if h.timed else ("—", "—"))
        for name, h in hosts
    ]
    return _table(HOST_HEAD, rows, cls)


def _hosts(rep: _Report) -> str:
    items = sorted(rep.hosts.items(), key=lambda kv: (-kv[1].urls, kv[0]))
    if rep.pooled.urls:
        items.append((f"(hosts beyond the first {MAX_HOSTS:,})", rep.pooled))
    more = len(items) - TOP_HOSTS
    note = f'<p class="note">{more:,} more hosts not shown.</p>' if more > 0 else ""
    return _host_table(items[:TOP_HOSTS], "hosts") + note


def _ranked(rep: _Report) -> tuple[str, str]:
    """Tables of the slowest hosts (by median elapsed_s) and the most failing ones."""
    real = [kv for kv in rep.hosts.items() if not kv[0].startswith("(")]
    timed = [kv for kv in real if kv[1].timed]
    timed.sort(key=lambda kv: (-kv[1].median(), -kv[1].elapsed_sum / kv[1].timed, kv[0]))
    failing = [kv for kv in real if kv[1].failed]
    failing.sort(key=lambda kv: (-kv[1].failed, -kv[1].failed / kv[1].urls, kv[0]))
    return _host_table(timed[:TOP_RANKED], "slow"), _host_table(failing[:TOP_RANKED], "failing")


def _gallery(rep: _Report, output: Path | None) -> str:
    if output is None:
        return '<p class="note">No image folder given: no thumbnails.</p>'
    tiles: list[str] = []
    for row in rep.candidates:
        uri = _thumbnail(output, row["path"]) if len(tiles) < rep.sample else None
        if uri is not None:
            size = _size(_num(row.get("bytes")) or 0)
            caption = f"{row.get('format') or '?'} {row.get('width')}×{row.get('height')}, {size}"
            tiles.append(
                f'<figure><img src="{uri}" alt="{_e(row["url"])}" title="{_e(row["url"], 2000)}">'
                f"<figcaption>{_e(caption)}<br>{_e(row['url'], 80)}</figcaption></figure>"
            )
    return (
        f'<p class="note">{len(tiles)} of {rep.stored_seen:,} stored images, picked at random '
        f'among those found in {_e(output)} on this host.</p><div class="gallery">'
        f"{''.join(tiles)}</div>"
    )


def _failures(rep: _Report) -> str:
    if not rep.failures:
        return '<p class="note">No failures.</p>'
    more = rep.failed - len(rep.failures)
    note = f'<p class="note">…and {more:,} more failures (see the manifest).</p>' if more else ""
    return _table(("url", "status", "http_status", "error"), rep.failures, "fail") + note


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d232b;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub,.note{color:#5b6570;font-size:12.5px}.cards{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}
.card{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:10px 16px;min-width:110px}
.card b{display:block;font-size:20px}.card span{color:#5b6570;font-size:12px}
table{border-collapse:collapse;background:#fff;font-size:12.5px;max-width:100%}
th,td{border:1px solid #dde1e6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}td{overflow-wrap:break-word;max-width:520px}
table.fail td:first-child{word-break:break-all}table.status td:first-child{white-space:nowrap}
svg{width:100%;max-width:960px;background:#fff;border:1px solid #dde1e6;border-radius:8px}
.ok{fill:#3a8f5c}.bad{fill:#d0533f}.axis{stroke:#888}.ax{font-size:11px;fill:#5b6570}
.k{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
span.ok{background:#3a8f5c}span.bad{background:#d0533f}.gallery{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:8px;width:164px}
figure img{display:block;margin:auto;max-width:160px;max-height:160px}
figcaption{font-size:11px;color:#5b6570;overflow-wrap:anywhere;margin-top:4px}
.row{display:flex;flex-wrap:wrap;gap:24px}.row>div{flex:1 1 420px}
"""


def _page(manifest: Path, rep: _Report, summary: dict[str, Any], output: Path | None) -> str:
    run = f"run {_e(summary.get('run_id'))} {_e(summary.get('outcome'))}, " if summary else ""
    slow, failing = _ranked(rep)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f'<meta name="viewport" content="width=device-width">'
        f"<title>crawler report: {_e(manifest.name)}</title><style>{STYLE}</style></head><body>"
        f'<h1>Crawl report</h1><p class="sub">{_e(manifest)}: {run}generated {now_iso()} '
        f'by crawler {__version__}</p><div class="cards">{_totals(rep, summary)}</div>'
        f"<h2>Throughput</h2>{_chart(rep)}"
        f'<div class="row"><div><h2>By status</h2>{_statuses(rep)}</div>'
        f"<div><h2>Slowest hosts</h2>{slow}<h2>Most failing hosts</h2>{failing}</div></div>"
        f"<h2>By host</h2>{_hosts(rep)}<h2>Gallery</h2>{_gallery(rep, output)}"
        f"<h2>Failures</h2>{_failures(rep)}</body></html>\n"
    )


def _aggregate(manifest: Path, sample: int) -> _Report:
    scan = _scan(manifest)
    rep, repeats = _Report(max(0, sample), scan.latest_run), scan.last_of
    for index, row in enumerate(read_manifest(manifest)):
        if index >= scan.count:  # appended since the first pass
            break
        if repeats and repeats.get(int.from_bytes(_digest(row)[:8]), index) != index:
            continue  # an earlier row of a URL (or line) that has a later one
        rep.add(row)
    return rep


def write_report(
    manifest: Path, output: Path | None, report_path: Path | None = None, sample: int = 24
) -> Path:
    """Write the HTML report of ``manifest``, by default to ``<stem>.report.html`` beside it.

    ``output`` is the folder holding stored images on this host (the master's
    ``--output``), for the gallery; None leaves thumbnails out. Returns the path
    written; raises UsageError when the manifest cannot be read or the report written.
    """
    manifest = Path(manifest)
    path = Path(report_path or manifest.with_name(manifest.stem + ".report.html"))
    try:
        rep = _aggregate(manifest, sample)
    except OSError as exc:
        raise UsageError(f"cannot read manifest {manifest}: {exc.strerror or exc}") from None
    text = _page(manifest, rep, _read_summary(manifest), output and Path(output))
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write report {path}: {exc.strerror or exc}") from None
    return path


OUTPUT_HELP = "the folder of the stored images, for thumbnails (default: the manifest's)"


def main(argv: list[str] | None = None) -> int:
    """``python -m crawler.report MANIFEST``: write the report and print its path."""
    parser = argparse.ArgumentParser(
        prog="crawler-report", description="Write the HTML report of a crawler manifest."
    )
    parser.add_argument("--version", action="version", version=f"crawler {__version__}")
    parser.add_argument("manifest", type=Path, metavar="MANIFEST", help="the manifest (.jsonl)")
    parser.add_argument("--output", type=Path, metavar="DIR", help=OUTPUT_HELP)
    parser.add_argument("--out", type=Path, metavar="PATH", help="default: <manifest>.report.html")
    parser.add_argument("--sample", type=int, default=24, metavar="N", help="thumbnails (24)")
    args = parser.parse_args(argv)
    try:
        output = args.manifest.parent if args.output is None else args.output
        print(write_report(args.manifest, output, args.out, args.sample), flush=True)
    except CrawlerError as exc:
        print(f"crawler-report: error: {exc}", file=sys.stderr)
        return c.EXIT_ERROR
    except KeyboardInterrupt:
        print("crawler-report: interrupted", file=sys.stderr)
        return c.EXIT_INTERRUPTED
    return c.EXIT_OK


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy, so every class has one identity.
    from crawler.report import main as _main

    sys.exit(_main())
