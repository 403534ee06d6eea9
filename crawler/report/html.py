"""Rendering the run report: a ``model.ReportData`` to one self-contained HTML page.

Every piece of text from the web goes through ``_e`` (html.escape); images are
``data:`` URIs only (``thumbnails``); the page has no scripts and no external assets,
and its Content-Security-Policy allows neither.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from crawler import __version__
from crawler import constants as c
from crawler.manifest import now_iso
from crawler.report.model import BUCKET_S, MAX_HOSTS, HostStats, ReportData, num
from crawler.report.outcome import RunTotals, banner, run_totals, unlisted_note
from crawler.report.pictures import Pictures
from crawler.report.similar import THRESHOLD

TOP_HOSTS, TOP_RANKED = 50, 10  # rows in the host table; in the slowest / failing tables
BAR_WIDTHS = (5, 10, 30, 60, 300, 900, 3600, 21600, 86400)  # seconds a bar may stand for
MAX_BARS, PLOT_H = 120, 180
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
LARGEST = "; the largest (each image with its distance in bits to the first):"


def _e(value: Any, limit: int = 300) -> str:
    text = "" if value is None else str(value).translate(c.CONTROL_CHARACTERS)
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


def _totals(rep: ReportData, totals: RunTotals, summary: dict[str, Any]) -> str:
    # From the latest run that downloaded anything: not a resume's 0.0.
    rate = num(summary.get("work_images_per_s")) or rep.download_rate()
    hosts = sum(not name.startswith("(") for name in rep.hosts)
    cards = {
        totals.unit: f"{totals.urls:,}",
        "succeeded": f"{totals.succeeded:,}",
        "failed": f"{totals.failed:,}",
        "duplicates": f"{totals.duplicates:,}",
        "no status yet": f"{totals.missing:,}" if totals.missing else None,  # as on stdout
        "not re-checked": f"{totals.not_rechecked:,}" if totals.not_rechecked else None,
        "stored": _size(rep.stored_bytes),
        "images/s": "—" if rate is None else f"{rate:.1f}",
        "hosts": f"{hosts:,}" + ("+" if rep.pooled.urls else ""),
    }
    return "".join(
        f'<div class="card"><b>{v}</b><span>{k}</span></div>' for k, v in cards.items() if v
    )


def _rates(rep: ReportData) -> tuple[int, int, list[list[float]]]:
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


def _chart(rep: ReportData) -> str:
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
        # The top rate above the plot, from its left edge: right-aligned left of the axis
        # (until 2026-12-01), "17088/min" lost its first digits off the picture.
        text.format(50, 13, "start", f"{_rate(top)} rows/min") + text.format(45, base, "end", 0)
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


def _statuses(rep: ReportData) -> str:
    meaning = c.STATUSES.get
    rows = [
        (s, f"{n:,}", f"{100 * n / rep.rows:.1f}\u00a0%", meaning(s, "(not a crawler status)"))
        for s, n in rep.statuses.most_common()
    ]
    return _table(("status", "rows", "share", "meaning"), rows, "status")


HOST_HEAD = ("host", "URLs", "failures", "failure rate", "median s", "mean s")


def _host_table(hosts: list[tuple[str, HostStats]], cls: str) -> str:
    if not hosts:
        return '<p class="note">None.</p>'
    rows = [
        (name, f"{h.urls:,}", f"{h.failed:,}", f"{100 * h.failed / h.urls:.1f}\u00a0%")
        + ((f"{h.median():.3f}", f"{h.elapsed_sum / h.timed:.3f}") if h.timed else ("—", "—"))
        for name, h in hosts
    ]
    return _table(HOST_HEAD, rows, cls)


def _hosts(rep: ReportData) -> str:
    items = sorted(rep.hosts.items(), key=lambda kv: (-kv[1].urls, kv[0]))
    if rep.pooled.urls:
        items.append((f"(hosts beyond the first {MAX_HOSTS:,})", rep.pooled))
    more = len(items) - TOP_HOSTS
    note = f'<p class="note">{more:,} more hosts not shown.</p>' if more > 0 else ""
    return _host_table(items[:TOP_HOSTS], "hosts") + note


def _changes(summary: dict[str, Any]) -> str:
    """The morning summary: what the latest run changed (its summary's ``changes``)."""
    changes = summary.get("changes")
    if not isinstance(changes, dict):
        return ""
    cards = "".join(
        f'<div class="card"><b>{int(num(changes.get(key)) or 0):,}</b><span>{label}</span></div>'
        for key, label in c.CHANGES.items()
    )
    return f'<h2>This run</h2><div class="cards">{cards}</div>'


def _ranked(rep: ReportData) -> tuple[str, str]:
    """Tables of the slowest hosts (by median elapsed_s) and the most failing ones; with
    no more hosts than these tables hold, they would repeat "By host": left out."""
    real = [kv for kv in rep.hosts.items() if not kv[0].startswith("(")]
    if len(real) <= TOP_RANKED:
        return "", ""
    timed = [kv for kv in real if kv[1].timed]
    timed.sort(key=lambda kv: (-kv[1].median(), -kv[1].elapsed_sum / kv[1].timed, kv[0]))
    failing = [kv for kv in real if kv[1].failed]
    failing.sort(key=lambda kv: (-kv[1].failed, -kv[1].failed / kv[1].urls, kv[0]))
    return _host_table(timed[:TOP_RANKED], "slow"), _host_table(failing[:TOP_RANKED], "failing")


def _gallery(rep: ReportData, output: Path | None, pictures: Pictures) -> str:
    shared = any(row.get("store") for row in rep.candidates)
    if output is None and not shared:
        return '<p class="note">No image folder given: no thumbnails.</p>'
    tiles: list[str] = []
    for row in rep.candidates:
        uri = pictures.thumbnail(row) if len(tiles) < rep.sample else None
        if uri is not None:
            size = _size(num(row.get("bytes")) or 0)
            caption = f"{row.get('format') or '?'} {row.get('width')}×{row.get('height')}, {size}"
            tiles.append(
                f'<figure><img src="{uri}" alt="{_e(row["url"])}" title="{_e(row["url"], 2000)}">'
                f"<figcaption>{_e(caption)}<br>{_e(row['url'], 80)}</figcaption></figure>"
            )
    where = "the shared stores" if output is None else f"the shared stores and {_e(output)}"
    held = ", ".join(f"{_e(name)}: {n:,}" for name, n in rep.held.most_common())
    return (
        f'<p class="note">{len(tiles)} of {rep.stored_seen:,} stored images, picked at random '
        f"among those found in {where} on this host. Where they are: {held or 'none'}.</p>"
        f'<div class="gallery">{"".join(tiles)}</div>'
    )


def _duplicates(rep: ReportData, pictures: Pictures) -> str:
    """Exact content duplicates (a count) and near-duplicate clusters (thumbnails)."""
    near, clusters = rep.near, pictures.clusters
    count, images = pictures.cluster_count, pictures.cluster_images
    searched = f" among the first {len(near.hashes):,}" if near.seen > len(near.hashes) else ""
    text = (
        f'<p class="note">{rep.same_content:,} stored images have the same bytes as an earlier '
        f"row's (<code>same_content_as</code>). Near duplicates (perceptual hash at most "
        f"{THRESHOLD} bits apart, chained: two members may be far apart){searched}: "
        f"{count:,} clusters, {images:,} images"
        f"{LARGEST if clusters else '.'}</p>"
    )
    for cluster in clusters:
        tiles = []
        for row in cluster:
            uri = pictures.thumbnail(row)
            img = f'<img class="near" src="{uri}" alt="">' if uri else ""
            tiles.append(
                f"<figure>{img}<figcaption>{row['distance']} bits<br>"
                f"{_e(row['url'], 80)}</figcaption></figure>"
            )
        text += f'<div class="gallery">{"".join(tiles)}</div><br>'
    return text


def _failures(rep: ReportData) -> str:
    if not rep.failures:
        return '<p class="note">No failures.</p>'
    more = rep.failed - len(rep.failures)
    note = f'<p class="note">…and {more:,} more failures (see the manifest).</p>' if more else ""
    head = ("url", "status", "http_status", "error", "list line", "failing since")
    return _table(head, list(rep.failures.values()), "fail") + note


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
.outcome{border-radius:8px;padding:10px 16px;background:#fdf0d5;border:1px solid #e0b44c}
"""


def render_page(  # noqa: PLR0913  (what to show, and what is known of its run)
    manifest: Path,
    rep: ReportData,
    summary: dict[str, Any],
    output: Path | None,
    pictures: Pictures | None = None,
    earlier: dict[str, Any] | None = None,
) -> str:
    """The whole page; ``summary`` is the run's summary JSON ({} if none), ``output`` the
    folder of stored images for the gallery (None: no thumbnails), ``pictures`` the
    clusters and thumbnails if they were started ahead (else made here, and closed),
    ``earlier`` a summary that describes an earlier state of the manifest (then
    ``summary`` is {}: ``outcome.describes``)."""
    if pictures is None:
        pictures = Pictures(rep, output)
        try:
            return render_page(manifest, rep, summary, output, pictures, earlier)
        finally:
            pictures.close()
    run = f"run {_e(summary.get('run_id'))} {_e(summary.get('outcome'))}, " if summary else ""
    slow, failing = _ranked(rep)
    totals = run_totals(rep, summary, earlier)  # the summary's numbers, as stdout said them
    ranked = f"<h2>Slowest hosts</h2>{slow}<h2>Most failing hosts</h2>{failing}" if slow else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f'<meta name="viewport" content="width=device-width">'
        f"<title>crawler report: {_e(manifest.name)}</title><style>{STYLE}</style></head><body>"
        f'<h1>Crawl report</h1><p class="sub">{_e(manifest)}: {run}generated {now_iso()} '
        f"by crawler {__version__}</p>{banner(totals)}{unlisted_note(rep.rows, totals)}"
        f'<div class="cards">{_totals(rep, totals, summary)}</div>'
        f"{_changes(summary)}<h2>Throughput</h2>{_chart(rep)}"
        f'<div class="row"><div><h2>By status</h2>{_statuses(rep)}</div>'
        f"<div>{ranked}</div></div>"
        f"<h2>By host</h2>{_hosts(rep)}<h2>Gallery</h2>{_gallery(rep, output, pictures)}"
        f"<h2>Duplicates</h2>{_duplicates(rep, pictures)}"
        f"<h2>Failures</h2>{_failures(rep)}</body></html>\n"
    )
