"""Keys in the lists never reach a file others can read (``master.keylines``).

A folder given as a list is read file by file: a key file kept beside the lists, an
earlier run's ``downloads/`` with its ``authkey``, or the printed worker command saved
in a note put the shared key, as an ``invalid_url`` row's text, into the manifest, the
CSV, the kept aggregate and the report, all mode 0644 (a fresh user's, 2026-12-03).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from urllib.parse import quote, quote_plus

from conftest import KEY, assert_no_traceback, read_rows, run_cli
from hypothesis import given
from hypothesis import strategies as st
from imageserver import ImageServer

from crawler.master.keylines import HEX_RUN, OWN_KEY, KeyLines
from crawler.master.listlines import ListEntry

HEXDIGITS = "0123456789abcdefABCDEF"


def test_keys_in_a_list_folder_stay_out_of_every_file_the_run_writes(
    tmp_path: Path, image_server: ImageServer
) -> None:
    image_server.add_image("/img/a.png", "PNG", 16, 16, seed=1)
    digest_path = "/img/" + "ab" * 32 + ".png"  # a valid URL: left as it is
    other = secrets.token_hex(32)  # another run's generated key
    content_hash = secrets.token_hex(16)  # in a near-URL's path: no key
    lists = tmp_path / "lists"
    lists.mkdir()
    a_png = image_server.url("/img/a.png")
    (lists / "a.txt").write_text(f"{a_png}\n{image_server.url(digest_path)}\n")
    (lists / "crawler.key").write_text(KEY + "\n")  # the key this run uses ($CRAWLER_AUTHKEY)
    (lists / "crawler.key").chmod(0o600)
    (lists / "authkey").write_text(other + "\n")
    (lists / "notes.txt").write_text(
        f"CRAWLER_AUTHKEY={KEY} python -m crawler.worker --server h\n"
        f"secret: {other.upper()}\n"
        f"cdn.example/img/{content_hash}.jpg\n"
    )
    (lists / "rows.jsonl").write_text(
        json.dumps({"url": "not a url", "note": KEY}) + "\n"
        + json.dumps({"url": 5, "keys": [{"k": other}]}) + "\n"
    )  # fmt: skip
    (lists / "table.csv").write_text(f"url,note\nnot a url,{other}\n{a_png},fine\n")
    (lists / "header.txt").write_text(f"authkey,{other}\n" + f"{a_png},x\n" * 4)
    out = tmp_path / "out"
    result = run_cli(
        "master", str(lists), "--local-workers", "1", "--threads", "2", "--output", str(out),
        "--no-progress", "--csv", str(tmp_path / "rows.csv"), "--log-file", str(tmp_path / "log"),
    )  # fmt: skip
    assert result.returncode in (0, 4), result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    written = [p for p in [*out.rglob("*"), tmp_path / "rows.csv", tmp_path / "log"] if p.is_file()]
    assert len(written) > 5  # manifest, summary, report, aggregate, CSV, log, the image
    for path in [*written]:
        data = path.read_bytes()
        for key in (KEY, other, other.upper()):
            assert key.encode() not in data, path
    for key in (KEY, other, other.upper()):
        assert key not in result.stderr and key not in result.stdout
    rows = {
        row["source"].removeprefix(str(lists) + os.sep): row
        for row in read_rows(out / "manifest.jsonl")
    }
    assert rows["a.txt:1"]["status"] == "ok"
    assert rows["a.txt:2"]["url"] == image_server.url(digest_path)  # fetched: a 404
    assert rows["crawler.key:1"]["url"] == OWN_KEY
    assert rows["authkey:1"]["url"] == "[64 hex digits]"
    assert (
        rows["notes.txt:1"]["url"]
        == f"CRAWLER_AUTHKEY={OWN_KEY} python -m crawler.worker --server h"
    )
    assert rows["notes.txt:2"]["url"] == "secret: [64 hex digits]"
    assert rows["notes.txt:3"]["url"] == f"cdn.example/img/{content_hash}.jpg"  # no key
    assert rows["rows.jsonl:1"]["extra"] == {"note": OWN_KEY}
    assert rows["rows.jsonl:2"]["extra"] == {"keys": [{"k": "[64 hex digits]"}]}
    assert rows["table.csv:2"]["extra"] == {"note": "[64 hex digits]"}
    assert rows["header.txt:1"]["url"] == "authkey,[64 hex digits]"
    assert "reads as a header ('authkey,[64 hex digits]')" in result.stderr, result.stderr
    warned = [line for line in result.stderr.splitlines() if "holds what looks like a key" in line]
    for name in ("crawler.key", "authkey", "notes.txt", "rows.jsonl", "table.csv", "header.txt"):
        assert sum(f"URL list {lists / name}: line " in line for line in warned) == 1, warned
    assert len(warned) == 6, warned  # one a list; none for a.txt


def test_a_key_file_read_as_csv_is_not_quoted_in_the_missing_column_error(
    tmp_path: Path,
) -> None:
    other = secrets.token_hex(32)
    (tmp_path / "key.csv").write_text(other + "\n")
    result = run_cli("master", str(tmp_path / "key.csv"), "--output", str(tmp_path / "out"))
    assert result.returncode == 1, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    assert "has no column 'url' (its header: '[64 hex digits]')" in result.stderr, result.stderr
    assert other not in result.stderr


def _mixed(run: str) -> bool:
    return any(ch.isdigit() for ch in run) and not run.isdigit()


def _entry(text: str) -> ListEntry:
    return ListEntry("l.txt:1", text, None, f"not a URL: {text!r}")


@given(
    st.text(max_size=40),
    st.text(HEXDIGITS, min_size=HEX_RUN, max_size=80).filter(_mixed),
    st.text(max_size=40),
)
def test_no_long_hex_run_or_the_key_survives(before: str, run: str, after: str) -> None:
    keys = KeyLines(KEY.encode())
    for text in (f"{before} {run} {after}", before + KEY + after):
        shown = keys.hidden(_entry(text))
        for field in (shown.raw, shown.error):
            assert field is not None and KEY not in field
            assert run not in field


@given(
    st.text(min_size=16, max_size=40).map(str.strip).filter(lambda k: len(k) >= 16),
    st.sampled_from(["", "/", ":@", "!~*'()"]),
    st.booleans(),
)
def test_a_key_percent_encoded_in_a_line_is_hidden(key: str, safe: str, plus: bool) -> None:
    """A passphrase key in a URL's userinfo or query is percent-encoded there (or with
    ``+`` for spaces, as a form writes a query): hidden as the key is (until 2026-12-03
    the encoded form went into every file: a hostile-input trial's)."""
    encoded = (quote_plus if plus else quote)(key, safe=safe)
    text = f"http://u:{encoded}@127.0.0.1:1/x?k={encoded} not a url"
    shown = KeyLines(key.encode()).hidden(_entry(text))
    for field in (shown.raw, shown.error):
        assert field is not None and encoded not in field and key not in field, field
        assert OWN_KEY in field


@given(st.text(max_size=60).filter(lambda t: not any(c in HEXDIGITS for c in t)))
def test_text_without_a_long_hex_run_is_left_alone(text: str) -> None:
    short = text + " " + "abc123" * 5  # 30 hex digits: under the bound
    entry = _entry(short)
    assert KeyLines(KEY.encode()).hidden(entry) is entry
    for one_kind in ("a" * 64, "F" * 40, "1234567890" * 5):  # no key: letters or digits only
        entry = _entry(text + " " + one_kind)
        assert KeyLines(KEY.encode()).hidden(entry) is entry


def test_keys_in_deeply_nested_extras_are_hidden_without_a_traceback(tmp_path: Path) -> None:
    """The extras were walked value by value: a JSON Lines value nested 900 deep (which
    json takes) went past Python's stack, a traceback (a self-review's, 2026-12-03)."""
    other = secrets.token_hex(32)
    # As text: this process's own json (under pytest's deeper stack) need not take them.
    lines = [
        '{"url": 5, "deep": ' + "[" * depth + "]" * depth + f', "k": "{other}"}}'
        for depth in (1, 500, 900, 950)
    ]
    (tmp_path / "l.jsonl").write_text("\n".join(lines) + "\n")
    result = run_cli("master", str(tmp_path / "l.jsonl"), "--output", str(tmp_path / "out"),
                     "--no-progress", "--no-report")  # fmt: skip
    assert result.returncode == 4, result.stderr  # degraded: no line is a URL
    assert_no_traceback(result.stdout, result.stderr)
    journal = (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()
    assert len(journal) == 4 and all('"k":"[64 hex digits]"}' in line for line in journal)
    assert other not in "".join(journal)
