"""Reading list lines: blanks and comments skipped, invalid lines reported, BOMs.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from crawler.config import ListSpec
from crawler.exceptions import UsageError
from crawler.master.lists import parse_line, read_list

STORED_NAME = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z]+)")


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


URLS = ["http://example.com/a.jpg", "http://example.com/b%C3%A9.png"]  # é: not ASCII
BODIES = {  # one list's text, per format; the same two URLs in each
    "text": "# a comment\n" + "\n".join(["http://example.com/a.jpg", "http://example.com/bé.png"]),
    "csv": 'url,caption\nhttp://example.com/a.jpg,a cat\nhttp://example.com/bé.png,"b, é"',
    "tsv": "url\tcaption\nhttp://example.com/a.jpg\ta cat\nhttp://example.com/bé.png\tb",
    "jsonl": '{"url": "http://example.com/a.jpg"}\n{"url": "http://example.com/bé.png"}',
}


@pytest.mark.parametrize("kind", sorted(BODIES))
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("joined", [False, True])
@pytest.mark.parametrize("packed", [False, True])
def test_lists_in_every_encoding_with_a_byte_order_mark_read_the_same(
    tmp_path: Path, kind: str, encoding: str, joined: bool, packed: bool
) -> None:
    """UTF-16 with its byte-order mark (Excel's "Unicode text") reads as UTF-8 does: every
    line was an invalid URL full of NULs, and a TSV's header was not found. A text list
    joined to another with ``cat`` carries the second's mark mid-file: that line was an
    invalid URL ("not an http or https URL", the mark unseen)."""
    bom = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff", "utf-8-sig": b"\xef\xbb\xbf"}
    text = BODIES[kind] + "\n"
    data = bom.get(encoding, b"") + text.encode(encoding.removesuffix("-sig"))
    expected = URLS
    if joined and not encoding.startswith("utf-16") and kind in ("text", "jsonl"):
        line = (
            "http://example.com/c.gif" if kind == "text" else '{"url": "http://example.com/c.gif"}'
        )
        data += b"\xef\xbb\xbf" + line.encode() + b"\n"  # cat a.txt b.txt
        expected = [*URLS, "http://example.com/c.gif"]
    path = tmp_path / f"list.{kind}"
    path.write_bytes(gzip.compress(data) if packed else data)
    entries = list(read_list(ListSpec(str(path), kind)))
    assert [(e.url, e.error) for e in entries] == [(url, None) for url in expected]
