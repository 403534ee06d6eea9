"""Fast in-process tests of the crawler's pure pieces, fed with real data.

URL normalisation and list reading, the wire-message checks, Pillow verification on
images Pillow itself generated, hashed storage on a real temporary folder, the CSV
export, the run policy's JSON form, the shared-key rules, and the task board's leases
driven by a fake clock. No network and no subprocesses: the end-to-end behaviour is in
``test_end_to_end.py``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from imageserver import HTML_PAGE, make_image, truncated
from PIL import Image

from crawler import layout, protocol
from crawler.auth import MIN_KEY_LENGTH, generate_authkey, load_authkey
from crawler.config import Policy
from crawler.exceptions import (
    Corrupt,
    NotImage,
    StoreFailure,
    TooManyPixels,
    TooSmall,
    UsageError,
)
from crawler.manifest import FIELDS, make_row, read_manifest
from crawler.master.journal import write_csv
from crawler.master.leases import LeaseBoard
from crawler.master.lists import parse_line, read_list
from crawler.master.taskstore import TaskStore
from crawler.urls import normalize_url
from crawler.worker import storage, verify

STORED_NAME = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z]+)")


# --------------------------------------------------------------------------- urls
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://example.com/a.jpg", "http://example.com/a.jpg"),
        ("HTTP://Example.COM/Photos/A.JPG", "http://example.com/Photos/A.JPG"),
        ("http://example.com:80/a.jpg", "http://example.com/a.jpg"),
        ("https://example.com:443/a.jpg", "https://example.com/a.jpg"),
        ("http://example.com:443/a.jpg", "http://example.com:443/a.jpg"),
        ("https://example.com:8443/a.jpg", "https://example.com:8443/a.jpg"),
        ("http://example.com/a.jpg#section-2", "http://example.com/a.jpg"),
        ("http://example.com", "http://example.com/"),
        ("http://example.com?size=2", "http://example.com/?size=2"),
        ("http://example.com/my photo.jpg", "http://example.com/my%20photo.jpg"),
        ("http://example.com/a.jpg?q=x y", "http://example.com/a.jpg?q=x%20y"),
        ("http://example.com/café/ä.png", "http://example.com/caf%C3%A9/%C3%A4.png"),
        ("http://example.com/my%20photo.jpg", "http://example.com/my%20photo.jpg"),
        ("http://Bücher.Example/x.png", "http://xn--bcher-kva.example/x.png"),
        ("http://[::1]:8080/a.png", "http://[::1]:8080/a.png"),
        ("http://127.0.0.1:80/a.png", "http://127.0.0.1/a.png"),
        ("http://example.com/a.jpg?w=1&h=2", "http://example.com/a.jpg?w=1&h=2"),
    ],
)
def test_normalize_url(text: str, expected: str) -> None:
    assert normalize_url(text) == expected
    assert normalize_url(expected) == expected  # canonical form is a fixed point


def test_normalize_url_makes_spellings_of_one_url_equal() -> None:
    spellings = [
        "http://example.com/a b.jpg",
        "HTTP://EXAMPLE.com:80/a%20b.jpg#top",
        "http://example.COM/a b.jpg#",
    ]
    assert len({normalize_url(s) for s in spellings}) == 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ftp://example.com/a.png", "not an http or https URL"),
        ("not-a-url", "not an http or https URL"),
        ("javascript:alert(1)", "not an http or https URL"),
        ("//example.com/a.png", "not an http or https URL"),
        ("http:///a.png", "no host"),
        ("http://user:secret@example.com/a.png", "credentials"),
        ("http://example.com:99999/a.png", "malformed URL"),
        ("http://example.com:abc/a.png", "malformed URL"),
        ("http://example.com/a\tb.png", "control characters"),
        ("http://example.com/a\x00.png", "control characters"),
        ("http://a..b/x.png", "host name is not valid"),
        ("http://" + "a" * 64 + ".com/x.png", "host name is not valid"),
        ("http://example.com/" + "a" * 9000, "longer than"),
    ],
)
def test_normalize_url_rejects_with_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        normalize_url(text)


@pytest.mark.parametrize("text", ["http://exa mple.com/a.jpg", "http://exa<mple.com/a.jpg"])
def test_normalize_url_rejects_host_with_forbidden_characters(text: str) -> None:
    with pytest.raises(ValueError, match="host"):
        normalize_url(text)


@pytest.mark.parametrize("line", ["", "\n", "   \t \r\n", "# a comment", "   # indented comment"])
def test_parse_line_skips_blanks_and_comments(line: str) -> None:
    assert parse_line(line, "list.txt:1") is None


def test_parse_line_strips_and_normalises() -> None:
    entry = parse_line("  \tHTTP://Example.com/A.png#x \r\n", "list.txt:7")
    assert entry is not None
    assert entry.source == "list.txt:7"
    assert entry.raw == "HTTP://Example.com/A.png#x"
    assert entry.url == "http://example.com/A.png"
    assert entry.error is None


def test_parse_line_reports_invalid_line() -> None:
    entry = parse_line("ftp://x/y.png\n", "list.txt:3")
    assert entry is not None
    assert entry.url is None
    assert entry.raw == "ftp://x/y.png"
    assert entry.error == "not an http or https URL"


def test_read_list_streams_entries_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "urls.txt"
    # \n, \r\n and a lone \r all end lines; a bad byte is replaced, not fatal.
    path.write_bytes(
        b"# header comment\n"
        b"\n"
        b"  http://Example.com/a.jpg  \r\n"
        b"not-a-url\r"
        b"   \n"
        b"http://example.com/b\xff.png\n"
        b"# trailing comment"
    )
    entries = list(read_list(str(path)))
    assert [e.source for e in entries] == [f"{path}:3", f"{path}:4", f"{path}:6"]
    assert entries[0].url == "http://example.com/a.jpg"
    assert entries[1].url is None and entries[1].raw == "not-a-url"
    assert entries[2].url == "http://example.com/b%EF%BF%BD.png"


def test_read_list_ignores_utf8_bom(tmp_path: Path) -> None:
    with_comment = tmp_path / "comment-first.txt"
    with_comment.write_text("# exported\nhttp://example.com/a.jpg\n", encoding="utf-8-sig")
    with_url = tmp_path / "url-first.txt"
    with_url.write_text("http://example.com/a.jpg\n", encoding="utf-8-sig")
    assert [e.url for e in read_list(str(with_comment))] == ["http://example.com/a.jpg"]
    assert [e.url for e in read_list(str(with_url))] == ["http://example.com/a.jpg"]


def test_read_list_missing_file_is_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(UsageError, match=re.escape(f"cannot read URL list {missing}")):
        list(read_list(str(missing)))


# ----------------------------------------------------------------------- protocol
def result_fields(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "id": 3,
        "url": "http://example.com/a.png",
        "status": "ok",
        "worker": "host:123",
        "http_status": 200,
        "path": "ab/cd/" + "ab" * 32 + ".png",
        "sha256": "0" * 64,
        "bytes": 1234,
        "width": 10,
        "height": 20,
        "format": "PNG",
        "attempts": 1,
        "elapsed_s": 0.25,
        "final_url": "http://example.com/a.png",
        "content_type": "image/png",
    }
    fields.update(overrides)
    return fields


def test_decode_result_accepts_a_full_ok_row() -> None:
    fields = result_fields()
    row = protocol.decode_result(protocol.encode_result(fields))
    assert set(row) == set(protocol.RESULT_FIELDS)
    for name, value in fields.items():
        assert row[name] == value


def test_decode_result_accepts_required_fields_only_and_fills_none() -> None:
    text = json.dumps({"id": 0, "url": "http://x/", "status": "timeout", "worker": "h:1"})
    row = protocol.decode_result(text)
    assert row["status"] == "timeout"
    assert row["http_status"] is None and row["path"] is None


def test_decode_result_accepts_integer_elapsed() -> None:
    assert protocol.decode_result(json.dumps(result_fields(elapsed_s=2)))["elapsed_s"] == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ("", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('"ok"', "not a JSON object"),
        ("null", "not a JSON object"),
        ("[" * 100_000, "not JSON"),
    ],
)
def test_decode_result_rejects_non_objects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        protocol.decode_result(text)


@pytest.mark.parametrize("missing", ["id", "url", "status", "worker"])
def test_decode_result_rejects_missing_required_field(missing: str) -> None:
    fields = result_fields()
    del fields[missing]
    with pytest.raises(ValueError, match=repr(missing)):
        protocol.decode_result(json.dumps(fields))
    with pytest.raises(ValueError, match=repr(missing)):
        protocol.decode_result(json.dumps(result_fields(**{missing: None})))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("id", "3"),
        ("id", 3.0),
        ("id", True),
        ("http_status", True),
        ("width", False),
        ("bytes", "1234"),
        ("url", 5),
        ("worker", ["h", 1]),
        ("status", 1),
        ("elapsed_s", "0.25"),
        ("elapsed_s", True),
        ("sha256", {"a": 1}),
    ],
)
def test_decode_result_rejects_wrong_types(name: str, value: object) -> None:
    with pytest.raises(ValueError, match="wrong type"):
        protocol.decode_result(json.dumps(result_fields(**{name: value})))


@pytest.mark.parametrize("status", ["OK", "fine", "", "ok "])
def test_decode_result_rejects_unknown_status(status: str) -> None:
    with pytest.raises(ValueError, match="unknown status"):
        protocol.decode_result(json.dumps(result_fields(status=status)))


def test_decode_task_accepts_valid_task() -> None:
    task = protocol.decode_task(json.dumps({"id": 7, "url": "http://x/a.png", "attempt": 2}))
    assert (task.id, task.url, task.attempt) == (7, "http://x/a.png", 2)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '"task"',
        json.dumps({"url": "http://x/", "attempt": 1}),
        json.dumps({"id": 1, "attempt": 1}),
        json.dumps({"id": 1, "url": "http://x/"}),
        json.dumps({"id": "1", "url": "http://x/", "attempt": 1}),
        json.dumps({"id": True, "url": "http://x/", "attempt": 1}),
        json.dumps({"id": 1.0, "url": "http://x/", "attempt": 1}),
        json.dumps({"id": 1, "url": 5, "attempt": 1}),
        json.dumps({"id": 1, "url": "http://x/", "attempt": False}),
        json.dumps({"id": 1, "url": "http://x/", "attempt": None}),
    ],
)
def test_decode_task_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        protocol.decode_task(text)


# ------------------------------------------------------------------------- verify
def encode(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "width", "height", "frames", "extension"),
    [
        ("JPEG", 64, 48, 1, "jpg"),
        ("PNG", 30, 20, 1, "png"),
        ("WEBP", 32, 24, 1, "webp"),
        ("GIF", 10, 8, 1, "gif"),
        ("GIF", 12, 9, 3, "gif"),
        ("WEBP", 12, 9, 3, "webp"),
    ],
)
def test_inspect_accepts_real_images(
    fmt: str, width: int, height: int, frames: int, extension: str
) -> None:
    body = make_image(fmt, width, height, seed=width, frames=frames)
    info = verify.inspect(body, Policy())
    assert (info.format, info.width, info.height, info.frames) == (fmt, width, height, frames)
    assert info.extension == extension


@pytest.mark.parametrize(("fmt", "extension"), [("BMP", "bmp"), ("TIFF", "tif"), ("ICO", "ico")])
def test_inspect_accepts_other_raster_formats(fmt: str, extension: str) -> None:
    body = encode(Image.new("RGB", (16, 16), (200, 30, 40)), fmt)
    info = verify.inspect(body, Policy())
    assert (info.format, info.width, info.height, info.extension) == (fmt, 16, 16, extension)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF"])
def test_inspect_truncated_image_is_corrupt(fmt: str) -> None:
    body = truncated(make_image(fmt, 200, 150, seed=1))
    with pytest.raises(Corrupt) as caught:
        verify.inspect(body, Policy())
    assert caught.value.status == "corrupt"


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        (HTML_PAGE, "HTML"),
        (b"", "empty"),
        (b"just some text, not a PNG\n", "26 bytes"),
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" '
            b'height="10"><rect width="10" height="10"/></svg>',
            "SVG",
        ),
    ],
)
def test_inspect_non_images_are_not_image(body: bytes, hint: str) -> None:
    with pytest.raises(NotImage, match=hint) as caught:
        verify.inspect(body, Policy())
    assert caught.value.status == "not_image"


def test_inspect_refuses_eps_that_pillow_could_open() -> None:
    body = encode(Image.new("RGB", (16, 16), (0, 90, 200)), "EPS")
    assert Image.open(io.BytesIO(body)).format == "EPS"  # a real EPS file, Pillow knows it
    with pytest.raises(NotImage):  # ...but its plugin would run Ghostscript: never tried
        verify.inspect(body, Policy())


def test_inspect_refuses_pdf() -> None:
    body = encode(Image.new("RGB", (16, 16), (0, 90, 200)), "PDF")
    assert body.startswith(b"%PDF")
    with pytest.raises(NotImage, match="PDF"):
        verify.inspect(body, Policy())


def test_inspect_too_many_pixels() -> None:
    body = make_image("PNG", 40, 30, seed=2)
    verify.inspect(body, Policy(max_pixels=40 * 30))  # exactly at the limit: fine
    with pytest.raises(TooManyPixels) as caught:
        verify.inspect(body, Policy(max_pixels=40 * 30 - 1))
    assert caught.value.status == "too_many_pixels"


def test_inspect_counts_all_frames_of_an_animation() -> None:
    body = make_image("GIF", 20, 10, seed=3, frames=5)
    verify.inspect(body, Policy(max_pixels=20 * 10 * 2))  # 5 frames <= 4 x (2 frames' worth)
    with pytest.raises(TooManyPixels, match="frames"):
        verify.inspect(body, Policy(max_pixels=20 * 10))


def test_inspect_with_pillow_bomb_guard_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after
    policy = Policy(max_pixels=100)
    verify.configure(policy)
    assert Image.MAX_IMAGE_PIXELS == 100
    with pytest.raises(TooManyPixels):  # > 2 x the limit: Pillow itself refuses to open it
        verify.inspect(make_image("PNG", 64, 64, seed=4), policy)


@pytest.mark.parametrize(("min_width", "min_height"), [(41, 0), (0, 31), (100, 100)])
def test_inspect_too_small(min_width: int, min_height: int) -> None:
    body = make_image("JPEG", 40, 30, seed=5)
    with pytest.raises(TooSmall) as caught:
        verify.inspect(body, Policy(min_width=min_width, min_height=min_height))
    assert caught.value.status == "too_small"
    assert verify.inspect(body, Policy(min_width=40, min_height=30)).width == 40


# ------------------------------------------------------------------------ storage
def test_relative_path_is_deterministic_and_sharded() -> None:
    url = "http://example.com/a.png"
    path = layout.stored_name(url, "png")
    assert path == layout.stored_name(url, "png")
    match = STORED_NAME.fullmatch(path)
    assert match is not None
    digest = hashlib.sha256(url.encode()).hexdigest()
    assert match.groups() == (digest[:2], digest[2:4], digest, "png")
    assert layout.stored_name("http://example.com/b.png", "png") != path
    assert layout.stored_name(url, "jpg") == path[: -len("png")] + "jpg"


def test_relative_path_ignores_hostile_url_parts() -> None:
    path = layout.stored_name("http://example.com/../../etc/passwd?x=/..", "png")
    assert STORED_NAME.fullmatch(path) is not None


def test_store_writes_atomically(tmp_path: Path) -> None:
    body = make_image("PNG", 20, 20, seed=6)
    relative = layout.stored_name("http://example.com/a.png", "png")
    storage.store(tmp_path, relative, body)
    storage.store(tmp_path, relative, body)  # writing the same image again is harmless
    target = tmp_path / relative
    assert target.read_bytes() == body
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [target]


def test_store_replaces_content(tmp_path: Path) -> None:
    relative = layout.stored_name("http://example.com/b.gif", "gif")
    storage.store(tmp_path, relative, b"first version")
    storage.store(tmp_path, relative, b"second")
    assert (tmp_path / relative).read_bytes() == b"second"


def test_store_impossible_target_is_disk_failure(tmp_path: Path) -> None:
    root = tmp_path / "regular-file"
    root.write_bytes(b"not a folder")
    with pytest.raises(StoreFailure) as caught:
        storage.store(root, layout.stored_name("http://x/a.png", "png"), b"data")
    assert caught.value.status == "disk_error"
    assert str(root) in str(caught.value)
    assert [p.name for p in tmp_path.iterdir()] == ["regular-file"]


def test_store_into_existing_folder_name_is_disk_failure(tmp_path: Path) -> None:
    relative = layout.stored_name("http://x/a.png", "png")
    (tmp_path / relative).mkdir(parents=True)  # a folder where the file must go
    with pytest.raises(StoreFailure):
        storage.store(tmp_path, relative, b"data")
    leftovers = [p for p in tmp_path.rglob(".part-*")]
    assert leftovers == []


def test_ensure_writable_under_a_file_is_usage_error(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UsageError, match="not writable"):
        layout.ensure_writable(tmp_path / "file.txt" / "sub")


# ----------------------------------------------------------------------- manifest
def test_write_csv_guards_formula_cells(tmp_path: Path) -> None:
    rows = [
        make_row(url="=cmd|' /C calc'!A0", status="invalid_url", error="+1+1"),
        make_row(url="@SUM(A1)", status="invalid_url", error="-2", bytes=-5, elapsed_s=-0.5),
        make_row(url="http://example.com/a.png", status="ok", width=10, height=20),
    ]
    path = tmp_path / "m.csv"
    write_csv(rows, path)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM for spreadsheets
    with open(path, encoding="utf-8-sig", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == list(FIELDS)
    assert table[0]["url"] == "'=cmd|' /C calc'!A0"
    assert table[0]["error"] == "'+1+1"
    assert table[1]["url"] == "'@SUM(A1)"
    assert table[1]["error"] == "'-2"
    assert table[1]["bytes"] == "-5"  # numbers are numbers, not formulas
    assert table[1]["elapsed_s"] == "-0.5"
    assert table[2]["url"] == "http://example.com/a.png"
    assert table[2]["width"] == "10"
    assert table[2]["path"] == ""  # None is an empty cell


def test_make_row_has_every_field_and_refuses_unknown_ones() -> None:
    row = make_row(url="http://x/", status="ok")
    assert list(row) == list(FIELDS)
    with pytest.raises(ValueError, match="unknown manifest fields"):
        make_row(url="http://x/", colour="red")


def test_read_manifest_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    good = [make_row(url=f"http://x/{i}.png", status="ok") for i in range(2)]
    text = "".join(json.dumps(r) + "\n" for r in good)
    path.write_text(text + json.dumps(good[0])[:25], encoding="utf-8")
    assert list(read_manifest(path)) == good


# ------------------------------------------------------------------------- config
def test_policy_json_round_trip() -> None:
    policy = Policy(
        connect_timeout=1.5,
        read_timeout=2.0,
        deadline=9.0,
        max_bytes=12345,
        max_pixels=999,
        min_width=3,
        min_height=4,
        retries=0,
        backoff=0.1,
        max_redirects=2,
        user_agent="test-agent/1 ü",
        lease_seconds=7.0,
    )
    assert Policy.from_json(policy.to_json()) == policy
    assert Policy.from_json(Policy().to_json()) == Policy()


def test_policy_from_json_converts_ints_for_floats_and_ignores_unknown_keys() -> None:
    policy = Policy.from_json(json.dumps({"lease_seconds": 5, "from_the_future": [1, 2]}))
    assert policy.lease_seconds == 5.0 and isinstance(policy.lease_seconds, float)
    assert policy.max_bytes == Policy().max_bytes


@pytest.mark.parametrize(
    "raw",
    [
        {"max_bytes": "10"},
        {"max_bytes": 1.5},
        {"retries": True},
        {"lease_seconds": False},
        {"lease_seconds": "60"},
        {"user_agent": 5},
        {"min_width": None},
    ],
)
def test_policy_from_json_rejects_wrong_types(raw: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="wrong type"):
        Policy.from_json(json.dumps(raw))


@pytest.mark.parametrize("text", ["[]", '"policy"', "3"])
def test_policy_from_json_rejects_non_objects(text: str) -> None:
    with pytest.raises(ValueError, match="not a JSON object"):
        Policy.from_json(text)


# --------------------------------------------------------------------------- auth
def key_file(tmp_path: Path, content: bytes, mode: int) -> Path:
    path = tmp_path / "crawler.key"
    path.write_bytes(content)
    path.chmod(mode)
    return path


def test_load_authkey_from_file_strips_whitespace(tmp_path: Path) -> None:
    path = key_file(tmp_path, b"  0123456789abcdef-key \n\n", 0o600)
    assert load_authkey(str(path)) == b"0123456789abcdef-key"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o601, 0o644])
def test_load_authkey_refuses_file_open_to_others(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path, b"0123456789abcdef-key\n", mode)
    with pytest.raises(UsageError, match=re.escape(f"chmod 600 {path}")):
        load_authkey(str(path))


def test_load_authkey_refuses_short_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    short = "k" * (MIN_KEY_LENGTH - 1)
    monkeypatch.setenv("CRAWLER_AUTHKEY", short)
    with pytest.raises(UsageError, match="too short"):
        load_authkey(None)
    monkeypatch.setenv("CRAWLER_AUTHKEY", short + "k")
    assert load_authkey(None) == (short + "k").encode()
    monkeypatch.setenv("CRAWLER_AUTHKEY", "   ")
    assert load_authkey(None) is None


def test_generate_authkey_writes_private_file(tmp_path: Path) -> None:
    path = tmp_path / "out" / "authkey"
    key = generate_authkey(path)
    assert len(key) >= MIN_KEY_LENGTH
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_authkey(str(path)) == key
    assert generate_authkey(path) != key  # a new key every time
    assert sorted(os.listdir(path.parent)) == ["authkey"]


# ---------------------------------------------------------------------- scheduler
class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


URLS = [f"http://example.com/{i}.png" for i in range(5)]


def make_board(clock: Callable[[], float], max_attempts: int = 3) -> LeaseBoard:
    return LeaseBoard(list(URLS), None, 10.0, max_attempts, clock=clock)


def leased(answer: dict) -> list[protocol.Task]:
    assert answer["over"] is False
    return [protocol.decode_task(text) for text in answer["tasks"]]


def test_get_leases_tasks_in_order() -> None:
    board = make_board(FakeClock())
    tasks = leased(board.get("w1", 2, 0))
    assert [(t.id, t.url, t.attempt) for t in tasks] == [(0, URLS[0], 1), (1, URLS[1], 1)]
    assert [t.id for t in leased(board.get("w2", 10, 0))] == [2, 3, 4]
    assert board.leased() == 5
    assert leased(board.get("w3", 10, 0)) == []  # nothing left, and no wait with timeout 0


def test_renew_extends_only_own_leases() -> None:
    clock = FakeClock()
    board = make_board(clock)
    leased(board.get("w1", 2, 0))
    clock.advance(8)
    assert board.renew("w2", [0, 1]) == 0  # not w2's leases
    assert board.renew("w1", [0, 1, 99]) == 2
    clock.advance(8)  # 16 s after the lease, 8 s after the renewal
    assert board.expire() == []
    assert [t.id for t in leased(board.get("w2", 10, 0))] == [2, 3, 4]  # 0 and 1 still w1's
    clock.advance(3)  # now past the renewed lease
    assert board.expire() == []
    assert sorted((t.id, t.attempt) for t in leased(board.get("w2", 10, 0))) == [(0, 2), (1, 2)]


def test_expired_lease_goes_back_to_the_queue() -> None:
    clock = FakeClock()
    board = make_board(clock)
    leased(board.get("w1", 1, 0))
    clock.advance(9.9)
    assert board.expire() == []
    assert board.leased() == 1
    clock.advance(0.2)
    assert board.expire() == []
    assert board.leased() == 0
    again = leased(board.get("w2", 1, 0))
    assert [(t.id, t.attempt) for t in again] == [(0, 2)]  # first in line, second attempt
    assert board.attempts(0) == 2


def test_max_attempts_declares_task_lost() -> None:
    clock = FakeClock()
    board = make_board(clock, max_attempts=2)
    for attempt in (1, 2):
        tasks = leased(board.get(f"w{attempt}", 1, 0))
        assert [(t.id, t.attempt) for t in tasks] == [(0, attempt)]
        clock.advance(11)
        lost = board.expire()
        assert lost == ([] if attempt == 1 else [0])
    assert board.expire() == []  # reported once
    assert [t.id for t in leased(board.get("w3", 10, 0))] == [1, 2, 3, 4]  # 0 is final
    assert board.complete(0, "w1") is False  # a very late answer loses to worker_lost


def test_complete_first_answer_wins() -> None:
    clock = FakeClock()
    board = make_board(clock)
    leased(board.get("slow", 1, 0))
    clock.advance(11)
    board.expire()  # the slow worker's lease ran out: task 0 is queued again
    assert board.complete(0, "slow") is True  # ...but its late answer still counts
    assert board.complete(0, "slow") is False  # a repeated answer does not
    assert [t.id for t in leased(board.get("fast", 10, 0))] == [1, 2, 3, 4]  # 0 not re-sent
    assert board.complete(1, "fast") is True
    assert board.complete(1, "other") is False
    assert board.leased() == 3


def test_release_hands_back_without_costing_an_attempt() -> None:
    board = make_board(FakeClock())
    leased(board.get("w1", 2, 0))
    assert board.release("w2", [0, 1]) == 0
    assert board.release("w1", [1]) == 1
    assert [(t.id, t.attempt) for t in leased(board.get("w2", 1, 0))] == [(1, 1)]


def test_finish_ends_every_get() -> None:
    board = make_board(FakeClock())
    leased(board.get("w1", 1, 0))
    board.finish()
    assert board.get("w1", 10, 0) == {"tasks": [], "over": True}
    assert board.get("w2", 10, 5) == {"tasks": [], "over": True}  # no wait once over
    assert board.workers.all_told(within=60) is True


# --------------------------------------------------------------------------- task store
def test_task_store_keeps_distinct_urls_and_finds_duplicates(tmp_path: Path) -> None:
    store = TaskStore(tmp_path)
    store.sources.append("a.txt")
    urls = [f"http://h{i % 7}.example/{i}.jpg" for i in range(70_000)]  # grows the table
    for line, url in enumerate(urls, start=1):
        assert store.add(url, 0, line) == (line - 1, True)
    assert store.add(urls[12_345], 0, 99) == (12_345, False)
    assert len(store) == len(urls)
    assert store.find(urls[69_999]) == 69_999
    assert store.find("http://h0.example/missing.jpg") is None
    assert store.url(5) == urls[5] and store[6] == urls[6]
    assert store.source(41) == "a.txt:42"
    assert store.entry(41) == (urls[41], "a.txt:42")
    assert store.urls(100, 104) == urls[100:104]
    with pytest.raises(IndexError):
        store.url(len(urls))
    store.close()


class CollidingStore(TaskStore):
    """Every URL gets the same hash tag: only the URL comparison keeps them apart."""

    @staticmethod
    def _tag(url: str) -> int:
        return 12345


def test_task_store_never_merges_urls_whose_hashes_collide(tmp_path: Path) -> None:
    store = CollidingStore(tmp_path)
    store.sources.append("a.txt")
    urls = [f"http://example.com/{i}" for i in range(300)]
    assert [store.add(u, 0, i)[1] for i, u in enumerate(urls)] == [True] * 300
    assert [store.find(u) for u in urls] == list(range(300))
    assert store.add(urls[7], 0, 1) == (7, False)
    assert store.find("http://example.com/other") is None
    store.close()
