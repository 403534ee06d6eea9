"""The report's thumbnails made ahead on threads (``report.pictures``): the page made
with them started early is the page made without, thumbnail for thumbnail, whatever
fails to decode, and later candidates are still made when earlier ones fail."""

from __future__ import annotations

import hashlib
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


def _copies(folder: Path, name: str, body: bytes, count: int, present: set[int]) -> list[dict]:
    """``count`` rows of one stored content under URLs of their own (the same bytes,
    the same sha256); only the files of the ``present`` copies are on this host."""
    rows = []
    for i in range(count):
        url = f"http://127.0.0.1/{name}/{i}.jpg"
        path = stored_name(url, "jpg")
        if i in present:
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(body)
        rows.append(make_row(url=url, status="ok", path=path, bytes=len(body), format="JPEG",
                             width=480, height=360, phash=hash_of(body),
                             sha256=hashlib.sha256(body).hexdigest()))  # fmt: skip
    return rows


def test_copies_of_one_content_share_a_thumbnail(tmp_path: Path) -> None:
    """One thumbnail per content: the copies whose files are elsewhere show the one made
    from the copy here; a copy here still gets its own when the copy that was asked first
    is elsewhere; a content of which no copy is here gets none."""
    first_here = _copies(tmp_path, "a", encode(photo(1), quality=85), 8, {0})
    first_elsewhere = _copies(tmp_path, "b", encode(photo(2), quality=85), 4, {2})
    nowhere = _copies(tmp_path, "c", encode(photo(3), quality=85), 3, set())
    rows = first_here + first_elsewhere + nowhere
    rep = report_of(rows)
    pictures = Pictures(rep, tmp_path)
    try:
        serial = StoreReader(tmp_path)
        made = serial.thumbnail(first_here[0])
        assert made is not None
        assert [pictures.thumbnail(row) for row in first_here] == [made] * 8
        own = serial.thumbnail(first_elsewhere[2])
        assert own is not None
        assert [pictures.thumbnail(row) for row in first_elsewhere] == [None, None, own, None]
        assert [pictures.thumbnail(row) for row in nowhere] == [None] * 3
        page = render_page(tmp_path / "m.jsonl", rep, {}, tmp_path, pictures)
    finally:
        pictures.close()
    # The 8 copies are one near-duplicate cluster on the page, each with the picture.
    assert page.count(f'<img class="near" src="{made}"') == 8
