"""The report's thumbnails made ahead on threads (``report.pictures``): the page made
with them started early is the page made without, thumbnail for thumbnail, whatever
fails to decode, and later candidates are still made when earlier ones fail."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from crawler.layout import stored_name
from crawler.manifest import make_row
from crawler.report.html import render_page
from crawler.report.model import ReportData
from crawler.report.pictures import Pictures
from crawler.report.thumbnails import StoreReader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "worker"))
from test_phash import encode, hash_of, photo, variants

STAMP = re.compile(r"generated [^ ]+ by")


def stored_rows(folder: Path) -> list[dict]:
    """Versions of 12 pictures (near duplicates), 30 other pictures, and 6 rows whose
    stored file is damaged or missing: real files, real perceptual hashes."""
    rows = []

    def put(url: str, body: bytes | None, phash: str | None) -> None:
        path = stored_name(url, "jpg")
        if body is not None:
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(body)
        rows.append(make_row(url=url, status="ok", path=path, bytes=len(body or b""),
                             format="JPEG", width=480, height=360, phash=phash))  # fmt: skip

    for seed in range(12):
        for name, body in variants(seed).items():
            put(f"http://127.0.0.1/near/{seed}/{name}.jpg", body, hash_of(body))
    for seed in range(100, 130):
        body = encode(photo(seed), quality=85)
        put(f"http://127.0.0.1/other/{seed}.jpg", body, hash_of(body))
    damaged = variants(200)["q90"]
    for i in range(3):  # cut short, or gone: no thumbnail, whatever the order of threads
        put(f"http://127.0.0.1/cut/{i}.jpg", damaged[: 300 * (i + 1)], hash_of(damaged))
        put(f"http://127.0.0.1/gone/{i}.jpg", None, hash_of(damaged))
    return rows


def report_of(rows: list[dict]) -> ReportData:
    rep = ReportData(24, "r1")
    for row in rows:
        rep.add(row)
    return rep


def test_page_with_pictures_made_ahead_is_the_page_made_without(tmp_path: Path) -> None:
    rows = stored_rows(tmp_path)
    rep = report_of(rows)
    ahead = Pictures(rep, tmp_path)
    try:
        early = render_page(tmp_path / "m.jsonl", rep, {}, tmp_path, ahead)
    finally:
        ahead.close()
    late = render_page(tmp_path / "m.jsonl", report_of(rows), {}, tmp_path)
    assert STAMP.sub("", early) == STAMP.sub("", late)
    serial = StoreReader(tmp_path)
    expected = {serial.thumbnail(row) for row in rows} - {None}
    shown = set(re.findall(r'src="(data:[^"]+)"', early))
    assert shown and shown <= expected
    assert early.count('class="near"') >= 12 * 2  # every picture's versions, as clusters


def test_thumbnails_match_the_serial_reader_and_failures_are_none(tmp_path: Path) -> None:
    rows = stored_rows(tmp_path)
    rep = report_of(rows)
    pictures = Pictures(rep, tmp_path)
    try:
        serial = StoreReader(tmp_path)
        for row in rows:  # made ahead or not, the same answer
            assert pictures.thumbnail(row) == serial.thumbnail(row), row["url"]
        broken = [row for row in rows if "/cut/" in row["url"] or "/gone/" in row["url"]]
        assert all(pictures.thumbnail(row) is None for row in broken)
        assert pictures.thumbnail({"url": "http://127.0.0.1/x", "path": None}) is None
    finally:
        pictures.close()
