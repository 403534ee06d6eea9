"""The HTML run report (``crawler/report.py``).

A real crawl (``python -m crawler.master`` with a local worker against the loopback image
server) makes the manifest; ``python -m crawler.report`` turns it into a page, which is
checked as HTML (statuses, hosts, failures, thumbnails as data: URIs, escaping) and
rendered in headless Chromium (text, and no broken image). Hand-written manifests cover
what a crawl cannot easily produce: torn lines, missing fields, hostile paths, a
decompression bomb, repeated journal rows, a long failure list, a big manifest.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_no_traceback, read_rows, run_cli
from imageserver import ImageServer, standard_routes
from PIL import Image

from crawler.layout import stored_name
from crawler.manifest import make_row
from crawler.report import build, model
from crawler.report import html as report_html
from crawler.report.thumbnails import StoreReader

SCRIPT = "<script>alert(1)</script>"
INVALID_LINE = f"ftp://files.example/{SCRIPT}"  # kept as written in the manifest
CHROMIUM_TIMEOUT = 60  # seconds one Chromium run may take
FAILED = {"http_error", "not_image", "corrupt", "invalid_url"}


class Page(HTMLParser):
    """What a browser would see of the report: tags, image sources, text, table cells."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.images: list[str] = []  # the gallery's
        self.near: list[str] = []  # the near-duplicate clusters'
        self.links: list[str] = []  # any other attribute that would load something
        self.text: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}  # by class; cells of each row
        self.rows: list[list[str]] = []
        self.in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            near = dict(attrs).get("class") == "near"
            (self.near if near else self.images).append(dict(attrs).get("src") or "")
        else:
            self.links += [v or "" for k, v in attrs if k in ("href", "src", "action")]
        if tag == "table":
            self.rows = self.tables[dict(attrs).get("class") or ""] = []
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")
            self.in_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self.in_cell = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.in_cell:
            self.rows[-1][-1] += data

    def table(self, cls: str) -> list[list[str]]:
        """The body rows of the table of class ``cls``."""
        return self.tables[cls][1:]

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def report_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crawler.report", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@dataclass
class Crawl:
    out: Path
    manifest: Path
    report: Path
    rows: list[dict[str, Any]]
    html: str


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawl]:
    """One real crawl of the standard routes plus hostile URLs, and its report."""
    tmp = tmp_path_factory.mktemp("report")
    out, listing = tmp / "out", tmp / "list.txt"
    with ImageServer() as server:
        routes = standard_routes(server)
        hostile = [server.url(f"/img/photo.jpg?q={SCRIPT}"), server.url(f"/gone/{SCRIPT}.jpg")]
        lines = [*routes.values(), *hostile, INVALID_LINE, routes["jpeg"]]  # last: a duplicate
        listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
        run = run_cli(
            "master", str(listing), "--bind", "127.0.0.1", "--port", "0", "--local-workers", "1",
            "--output", str(out), "--manifest", str(out / "manifest.jsonl"), "--no-progress",
        )  # fmt: skip
    assert run.returncode == 0, run.stderr
    made = report_cli(str(out / "manifest.jsonl"), "--output", str(out))
    assert made.returncode == 0, made.stderr
    assert made.stderr == ""
    path = Path(made.stdout.strip())
    assert path == out / "manifest.report.html"
    rows = read_rows(out / "manifest.jsonl")
    yield Crawl(out, out / "manifest.jsonl", path, rows, path.read_text(encoding="utf-8"))


def test_report_of_a_real_crawl(crawl: Crawl) -> None:
    page = parse(crawl.html)
    statuses = Counter(row["status"] for row in crawl.rows)
    assert {"ok", "http_error", "corrupt", "not_image", "invalid_url", "duplicate"} <= set(statuses)
    by_status = {cells[0]: cells[1] for cells in page.table("status")}
    assert by_status == {status: str(n) for status, n in statuses.items()}
    host = next(r for r in crawl.rows if r["status"] == "ok")["url"].split("/")[2]
    hosts = {cells[0]: cells[1:3] for cells in page.table("hosts")}
    failed = [row for row in crawl.rows if row["status"] in FAILED]
    urls = [row for row in crawl.rows if row["status"] != "duplicate"]  # lines, not URLs
    assert hosts[host] == [str(len(urls) - 1), str(len(failed) - 1)]  # all but the ftp line
    failures = page.table("fail")
    assert sorted(cells[:2] for cells in failures) == sorted(
        [r["url"], r["status"]] for r in failed
    )
    assert [
        "http://" + host + "/gone/%3Cscript%3Ealert(1)%3C/script%3E.jpg",
        "http_error",
        "404",
    ] in [cells[:3] for cells in failures]


def test_report_thumbnails_are_embedded(crawl: Crawl) -> None:
    page = parse(crawl.html)
    stored = [row for row in crawl.rows if row["status"] == "ok"]
    assert len(stored) == 9
    assert len(page.images) == len(stored)  # a local worker: every image is on this disk
    for src in page.images:
        kind, _, data = src.partition(";base64,")
        assert kind in ("data:image/jpeg", "data:image/png")
        with Image.open(io.BytesIO(base64.b64decode(data, validate=True))) as thumb:
            thumb.load()
            assert max(thumb.size) <= 160
    assert page.links == []  # nothing loaded from anywhere: no link, stylesheet or script
    assert "http-equiv" in crawl.html and "img-src data:" in crawl.html


def test_a_stored_file_whose_bytes_changed_gets_no_thumbnail(crawl: Crawl, tmp_path: Path) -> None:
    """A stored file replaced since by another image's bytes was shown in the gallery under
    the row's URL, format and size (the export checks each file's sha256; the report did
    not). Now such a row gets no thumbnail, as a missing file does; the others still do."""
    out = tmp_path / "out"
    shutil.copytree(crawl.out, out)
    stored = [row for row in crawl.rows if row["status"] == "ok"]
    first = stored[0]
    other = next(row for row in stored if row["sha256"] != first["sha256"])
    (out / first["path"]).write_bytes((out / other["path"]).read_bytes())
    made = report_cli(str(out / "manifest.jsonl"), "--output", str(out))
    assert made.returncode == 0, made.stderr
    page = parse((out / "manifest.report.html").read_text(encoding="utf-8"))
    before = Counter(parse(crawl.html).images)
    assert before - Counter(page.images) == Counter([StoreReader(crawl.out).thumbnail(first)])
    assert len(page.images) == len(stored) - 1  # the replaced one's, not another picture


def test_report_escapes_text_from_the_web(crawl: Crawl) -> None:
    page = parse(crawl.html)
    assert "script" not in page.tags
    assert "<script" not in crawl.html.lower()
    assert INVALID_LINE in page.all_text  # shown as text, exactly as the list had it
    assert escape_check(INVALID_LINE) in crawl.html


def escape_check(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")


def test_report_cli_errors_are_one_line(tmp_path: Path) -> None:
    missing = report_cli(str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1
    assert missing.stderr.startswith("crawler-report: error: manifest ")
    assert missing.stderr.rstrip().endswith("nope.jsonl does not exist")
    assert missing.stderr.count("\n") == 1
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("", encoding="utf-8")
    unwritable = report_cli(str(manifest), "--out", str(tmp_path / "no" / "dir" / "r.html"))
    assert unwritable.returncode == 1
    assert unwritable.stderr.startswith("crawler-report: error: cannot write report")
    assert_no_traceback(missing.stderr, unwritable.stderr)
    empty = report_cli(str(manifest))
    assert empty.returncode == 0 and Path(empty.stdout.strip()) == tmp_path / "m.report.html"
    for name, junk in (("noise.bin", bytes(range(256)) * 40), ("page.html", b"<html>hi</html>\n")):
        (tmp_path / name).write_bytes(junk)
        wrong = report_cli(str(tmp_path / name))
        assert wrong.returncode == 1 and wrong.stderr.count("\n") == 1, wrong.stderr
        assert "holds no manifest rows" in wrong.stderr
        assert not (tmp_path / name).with_suffix(".report.html").exists()
    nowhere = report_cli(str(manifest), "--output", str(tmp_path / "typo"))  # was exit 0
    assert nowhere.returncode == 1 and nowhere.stderr.count("\n") == 1, nowhere.stderr
    assert "--output" in nowhere.stderr and "is not a folder" in nowhere.stderr
    for sample in ("-1", "1001", "many"):  # -1 was taken as is; 10**9 filled the memory
        bad = report_cli(str(manifest), "--sample", sample)
        last = bad.stderr.strip().splitlines()[-1]  # after argparse's usage lines
        assert bad.returncode == 2 and last.startswith("crawler-report: error: argument --sample")
        assert_no_traceback(bad.stderr)


def test_console_script_is_installed(crawl: Crawl, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "crawler-report"
    assert script.is_file() and os.access(script, os.X_OK), script
    out = tmp_path / "r.html"
    done = subprocess.run(
        [str(script), str(crawl.manifest), "--output", str(crawl.out), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{out}\n" and len(parse(out.read_text("utf-8")).images) == 9


# --- hand-written manifests -------------------------------------------------------------


def store_image(out: Path, url: str, size: tuple[int, int], ext: str = "png") -> str:
    relative = stored_name(url, ext)
    (out / relative).parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, "teal").save(out / relative, format="PNG")
    return relative


def write_manifest(path: Path, rows: list[dict[str, Any] | str]) -> None:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines), encoding="utf-8")  # no final newline: a torn last line


def test_hostile_and_damaged_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)
    out = tmp_path / "out"
    ok = "http://a.example/ok.png"
    bomb = "http://a.example/bomb.png"
    linked = "http://a.example/linked.png"
    text = "http://a.example/text.png"
    good, huge = store_image(out, ok, (40, 30)), store_image(out, bomb, (100, 100))
    link = stored_name(linked, "png")
    (out / link).parent.mkdir(parents=True, exist_ok=True)
    (out / link).symlink_to(out / good)
    notes = stored_name(text, "png")
    (out / notes).parent.mkdir(parents=True, exist_ok=True)
    (out / notes).write_text("not an image")
    evil = 'http://b.example/x?"><img src=x onerror=alert(1)>'
    shifted = "00/00/" + good.split("/")[2]  # right name, wrong shard
    rows: list[dict[str, Any] | str] = [
        make_row(url=ok, status="timeout", run_id="r1", finished_at="2025-01-01T00:00:00+00:00"),
        make_row(url=ok, status="ok", path=good, bytes=1234, run_id="r2"),
        make_row(url=ok, status="duplicate", source="l:9", duplicate_of="l:1"),
        make_row(url=bomb, status="ok", path=huge),
        make_row(url=linked, status="ok", path=link),
        make_row(url=text, status="ok", path=notes),
        make_row(url="http://a.example/up", status="ok", path="../../../../etc/passwd"),
        make_row(url="http://a.example/shift", status="ok", path=shifted),
        make_row(url=evil, status="http_error", http_status=500, error=f"bad {SCRIPT}"),
        {"url": "http://c.example/bare"},
        {"url": "http://c.example/odd", "status": ["x"], "elapsed_s": "1", "bytes": "9"},
        {"url": "http://c.example/t", "status": "ok", "finished_at": "yesterday", "path": 7},
        make_row(url="http://d.example/1", status="ok", run_id="z", finished_at="0001-01-01"),
        make_row(url="http://d.example/2", status="x", run_id="z", finished_at="9999-12-31"),
        "not json at all",
        '["a", "list"]',
        '{"url": 5, "status": "ok"}',
        '{"url": "http://torn.example/',
    ]  # fmt: skip
    write_manifest(tmp_path / "m.jsonl", rows)
    path = build.write_report(tmp_path / "m.jsonl", out)
    html = path.read_text(encoding="utf-8")
    page = parse(html)
    assert len(page.images) == 1  # only the real, small, regular file with a hashed name
    assert "script" not in page.tags and page.tags.count("img") == 1
    assert evil in page.all_text and f"bad {SCRIPT}" in page.all_text
    by_status = {cells[0]: cells[1] for cells in page.table("status")}
    # the journal's last row counts: ok's timeout is gone; its duplicate row stays
    assert by_status == {"ok": "8", "duplicate": "1", "http_error": "1", "(missing)": "2", "x": "1"}
    assert 0 < html.count("<title>") - 1 <= report_html.MAX_BARS + 1  # 10,000 years in few bars


def test_failure_table_is_capped(tmp_path: Path) -> None:
    rows: list[dict[str, Any] | str] = [
        make_row(url=f"http://h{i % 7}.example/{i}", status="timeout", error="read timeout")
        for i in range(model.MAX_FAILURES + 123)
    ]
    write_manifest(tmp_path / "m.jsonl", rows)
    page = parse(build.write_report(tmp_path / "m.jsonl", None).read_text(encoding="utf-8"))
    assert len(page.table("fail")) == model.MAX_FAILURES
    assert "…and 123 more failures" in page.all_text
    assert "No image folder given" in page.all_text


def test_control_characters_from_a_list_line_stay_out_of_the_report(tmp_path: Path) -> None:
    """A NUL from an invalid list line made tools take the report for a binary file."""
    controls = "".join(chr(code) for code in [*range(0x20), 0x7F] if chr(code) not in "\t\n\r")
    controls += "\x85\x9b\u2028\u2029\u202a\u202e\u2066\u2069"  # C1, separators, bidi
    rows: list[dict[str, Any] | str] = [
        make_row(url=f"bad{controls}url", status="invalid_url", error=f"why{controls}"),
        make_row(url="http://h.example/a.png", status="timeout", error=f"slow{controls}"),
    ]
    write_manifest(tmp_path / "m.jsonl", rows)
    text = build.write_report(tmp_path / "m.jsonl", None).read_text(encoding="utf-8")
    assert not any(ch in controls for ch in text), [ch for ch in text if ch in controls]
    assert "slow\ufffd" in text


def test_chart_shows_the_latest_run(tmp_path: Path) -> None:
    start = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
    rows: list[dict[str, Any] | str] = [
        make_row(url=f"http://old.example/{i}", status="ok", run_id="old",
                 finished_at=(start - timedelta(days=3, seconds=i)).isoformat())
        for i in range(50)
    ] + [
        make_row(url=f"http://new.example/{i}", status="ok" if i % 5 else "timeout", run_id="new",
                 finished_at=(start + timedelta(seconds=3 * i)).isoformat())
        for i in range(600)  # 30 minutes
    ]  # fmt: skip
    write_manifest(tmp_path / "m.jsonl", rows)
    html = build.write_report(tmp_path / "m.jsonl", None).read_text(encoding="utf-8")
    assert "in run new, one bar per 30 s" in html
    bars = re.findall(r"<title>([^<]*): (\d+) ok, (\d+) failed a minute</title>", html)
    assert len(bars) == 60  # 30 minutes in 30 s bars
    assert sum(int(ok) + int(bad) for _, ok, bad in bars) == 2 * 600  # rows/min, bar = 1/2 min
    assert all((int(ok), int(bad)) == (16, 4) for _, ok, bad in bars)
    assert "<b>0.3</b><span>images/s" in html  # 480 downloads over 1797 s


def test_the_latest_run_is_the_historys_not_the_clocks(tmp_path: Path) -> None:
    """A night whose clock was ahead (2030) before a night of the right date: the run
    history says which came last, and the chart and images/s are that run's. Until
    2026-12-01 the latest ``finished_at`` alone decided, and the report charted the 2030
    night under a header naming the real latest run (a fresh user's)."""
    start, ahead = datetime(2026, 6, 1, 2, 0, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
    rows: list[dict[str, Any] | str] = [
        make_row(url=f"http://a.example/{i}", status="ok", run_id="ahead",
                 finished_at=(ahead + timedelta(seconds=i)).isoformat())
        for i in range(50)
    ] + [
        make_row(url=f"http://b.example/{i}", status="ok", run_id="right",
                 finished_at=(start + timedelta(seconds=2 * i)).isoformat())
        for i in range(100)
    ]  # fmt: skip
    write_manifest(tmp_path / "m.jsonl", rows)
    history = [{"run_id": run, "outcome": "started"} for run in ("ahead", "right")]
    (tmp_path / "m.runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    html = build.write_report(tmp_path / "m.jsonl", None).read_text(encoding="utf-8")
    assert "in run right, one bar per" in html
    assert "<b>0.5</b><span>images/s" in html  # 100 downloads over 198 s


@pytest.mark.parametrize("per_bucket", [1, 9, 150, 1_424, 20_000])
def test_every_chart_label_lies_inside_the_picture(tmp_path: Path, per_bucket: int) -> None:
    """At any rate: each label, at most 7 px a character at the chart's 11 px, fits in
    the SVG's view box (a fresh user's, 2026-12-01: the top rate, right-aligned left of
    the axis, showed "088/min" for 17,088 rows a minute). Up to 240,000 a minute."""
    start = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
    rows: list[dict[str, Any] | str] = [
        make_row(url=f"http://h.example/{i}", status="ok", run_id="r",
                 finished_at=(start + timedelta(seconds=5 * (i // per_bucket))).isoformat())
        for i in range(per_bucket * 3)
    ]  # fmt: skip
    write_manifest(tmp_path / "m.jsonl", rows)
    html = build.write_report(tmp_path / "m.jsonl", None).read_text(encoding="utf-8")
    [(width, height)] = re.findall(r'<svg viewBox="0 0 (\d+) (\d+)"', html)
    labels = re.findall(
        r'<text x="([\d.]+)" y="([\d.]+)" class="ax" text-anchor="(\w+)">([^<]*)<', html
    )
    assert any(text.startswith(f"{per_bucket * 12} rows/min") for *_, text in labels), labels
    for x, y, anchor, text in labels:
        left = float(x) - (7 * len(text) if anchor == "end" else 0)
        assert left >= 0 and left + 7 * len(text) <= int(width), (x, anchor, text)
        assert 11 <= float(y) <= int(height), (y, text)


def test_big_manifest_is_streamed(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    with open(manifest, "w", encoding="utf-8") as fh:
        for i in range(15_000):
            status = "ok" if i % 5 else "http_error"
            url, elapsed = f"http://h{i % 300}.example/img/{i}.jpg", 0.01 * (i % 300)
            row = make_row(url=url, status=status, elapsed_s=elapsed, path=stored_name(url, "jpg"))
            fh.write(json.dumps(row) + "\n")
    tracemalloc.start()
    try:
        html = build.write_report(manifest, tmp_path).read_text(encoding="utf-8")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = manifest.stat().st_size  # about 8 MB; as a list of dicts, several times that
    assert peak < min(2_000_000, size / 4), (peak, size)
    page = parse(html)
    assert len(page.table("hosts")) == report_html.TOP_HOSTS
    assert "250 more hosts not shown" in page.all_text
    assert page.table("hosts")[0][0] == "h0.example"


# --- rendering in Chromium -----------------------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is required under CI=true (.ci/run installs Debian's chromium)")
    pytest.skip("chromium not installed (apt-get install chromium): report rendering not checked")


def run_chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp / 'profile'}", *args,
    ]  # fmt: skip
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=CHROMIUM_TIMEOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "HOME": str(tmp)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


# Counts the gallery's decoded images; the control image is broken on purpose, proving
# that the count would notice one.
PROBE = (
    '<img id="control" src="data:image/png;base64,AAAA" alt="">'
    "<script>addEventListener('load', () => {"
    "const imgs = [...document.querySelectorAll('figure img:not(.near)')];"
    "const ok = imgs.filter((i) => i.complete && i.naturalWidth > 0).length;"
    "document.title = `loaded ${ok} of ${imgs.length}, control "
    "${document.getElementById('control').naturalWidth}`;});</script>"
)


def test_report_renders_in_chromium(crawl: Crawl, tmp_path: Path) -> None:
    dom = run_chromium(tmp_path, "--dump-dom", crawl.report.as_uri()).stdout
    page = parse(dom)
    assert "Crawl report" in page.all_text and "Gallery" in page.all_text
    for status in ("ok", "http_error", "corrupt", "not_image", "invalid_url", "duplicate"):
        assert status in page.all_text
    assert INVALID_LINE in page.all_text and "script" not in page.tags
    probe = tmp_path / "probe.html"  # a copy that may run the one script above
    allow = crawl.html.replace("img-src data:;", "img-src data:; script-src 'unsafe-inline';")
    probe.write_text(allow.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    shown = run_chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    title = re.search(r"<title>(loaded [^<]*)</title>", shown.stdout)
    assert title is not None, shown.stdout[:2000]
    assert title[1] == "loaded 9 of 9, control 0"
    shot = tmp_path / "shot.png"
    run_chromium(tmp_path, "--window-size=1200,1600", f"--screenshot={shot}", crawl.report.as_uri())
    with Image.open(shot) as image:
        assert image.size == (1200, 1600)
        assert len(image.convert("RGB").getcolors(1 << 20) or ()) > 1000  # thumbnails drawn


def card(page: Page, label: str) -> str:
    """The value of the totals card labelled ``label`` (cards render value, then label)."""
    text = page.text
    return next(text[i - 1] for i, t in enumerate(text) if t == label and i)


def test_report_after_a_resume_and_a_shrunk_list(tmp_path: Path, image_server: ImageServer) -> None:
    """Issue 14: a resumed run that only reused still shows the speed of the run that
    downloaded, host latencies of real requests, the current list's totals (what stdout
    said), no ranked tables repeating "By host", and each failure's list line."""
    urls = [image_server.add_image(f"/r/{i}.png", "PNG", 64, 48, seed=i) for i in range(6)]
    missing = image_server.add("/r/gone.png", b"", status=404)
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join([*urls, missing]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    flags = ("--port", "0", "--output", str(out), "--local-workers", "1", "--no-progress")
    assert run_cli("master", str(listing), *flags).returncode == 0
    listing.write_text("\n".join([*urls[:4], missing]) + "\n", encoding="utf-8")
    second = run_cli("master", str(listing), *flags)  # everything reused or kept
    assert second.returncode == 0, second.stderr
    page = parse((out / "manifest.report.html").read_text(encoding="utf-8"))
    assert card(page, "URLs") == "5"  # the current list, as stdout says
    assert f"{5} URLs" in second.stdout
    assert float(card(page, "images/s")) > 0  # the first run's speed, not this one's 0
    [(_host, *cells)] = page.table("hosts")
    assert float(cells[3]) > 0  # the kept 404's real request; reuses are not timed (0.000)
    assert "slow" not in page.tables and "failing" not in page.tables  # one host: merged
    [failure] = page.table("fail")
    # The row kept from the first run names the line it is on now (restamped: the list
    # shrank above it), and since when it fails.
    assert failure[0] == missing and failure[4] == f"{listing}:5" and failure[5]
    assert "This run" in page.all_text


def test_rows_of_urls_no_longer_listed_are_said(tmp_path: Path) -> None:
    """A rerun over a shorter list: the totals count its lines, the status table every
    row of the manifest; the page says how many rows are of URLs no longer listed (a
    fresh user's, 2026-12-01: "2,501 succeeded" above "not_modified 2,848", unsaid)."""
    with ImageServer() as server:
        urls = [server.add(f"/u{n}.png", make_png(n)) for n in range(5)]
        listing, out = tmp_path / "l.txt", tmp_path / "out"
        for kept in (5, 3, 5):
            listing.write_text("".join(f"{u}\n" for u in urls[:kept]))
            result = run_cli(
                "master", str(listing), "--bind", "127.0.0.1", "--port", "0", "--output",
                str(out), "--local-workers", "1", "--no-progress",
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            page = (out / "manifest.report.html").read_text(encoding="utf-8")
            note = re.search(r"(\d+) rows of the manifest are of URLs no longer in the lists", page)
            assert (int(note[1]) if note else 0) == 5 - kept, page[:2000]


def make_png(n: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20 + n, 20), (n * 40, 0, 0)).save(out, "PNG")
    return out.getvalue()
