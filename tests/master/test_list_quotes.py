"""CSV and TSV lists with stray quotes, and lines held to a bound, read in process.

A quote opened and never closed (a scraped caption ``"Untitled``) must cost its own line
only: that line gets an ``invalid_url`` entry saying so, and every later line its own
entry under its own line number, while legitimate quoted cells (delimiters, doubled
quotes, newlines) still read as one row. Hypothesis builds lists of such rows in every
layout; the expected entries follow from the rows alone. ``bounded_lines`` is checked
against Python's own line splitting with a tiny bound.
"""

from __future__ import annotations

import gzip
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.config import ListSpec
from crawler.exceptions import UsageError
from crawler.master.delimited import MAX_SPAN
from crawler.master.listlines import KEPT, MAX_LINE, Overlong, bounded_lines
from crawler.master.lists import ListEntry, check_readable, read_list

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = ["url", "quoted", "multi", "invalid", "stray", "stray_url", "blank", "lenient"]
LAYOUTS = [("url", "caption"), ("caption", "url"), ("id", "url", "caption")]
WORDS = st.text("abcdefgh xyz", min_size=1, max_size=12).map(lambda s: "w" + s)


@dataclass
class Expected:
    """What a row must read as: its first line, URL or error, caption."""

    line: int
    url: str | None
    stray: bool = False
    caption: str | None = None


def url_of(n: int) -> str:
    return f"http://example.com/img/{n}.jpg"


def quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def build_row(kind: str, n: int, words: list[str], d: str, nl: str) -> tuple[dict[str, str], Any]:
    """The raw cells of one row (``url`` and ``caption``, as written) and the caption it
    must read as (None: no entry for a valid row is expected, see ``expect``)."""
    if kind == "quoted":
        caption = f'{words[0]}{d} "{words[-1]}"'
        return {"url": url_of(n), "caption": quote(caption)}, caption
    if kind == "multi":
        caption = nl.join(words)
        return {"url": url_of(n), "caption": quote(caption)}, caption
    if kind == "invalid":
        return {"url": f"nope{n}", "caption": words[0]}, words[0]
    if kind == "stray":
        return {"url": url_of(n), "caption": f'"Untitled{d} {words[0]}'}, None
    if kind == "stray_url":
        return {"url": '"' + url_of(n), "caption": words[0]}, None
    if kind == "lenient":
        return {"url": url_of(n), "caption": f'"{words[0]}" {n}'}, f"{words[0]} {n}"
    return {"url": url_of(n), "caption": words[0]}, words[0]


def make_list(
    kinds: list[str], words: list[list[str]], layout: tuple[str, ...], d: str, nl: str
) -> tuple[str, list[Expected]]:
    """A list's text and the entries it must read as, in order."""
    lines, expected = [d.join(layout)], []
    for n, (kind, row_words) in enumerate(zip(kinds, words, strict=True)):
        line = len(lines) + 1
        if kind == "blank":
            lines.append("")
            continue
        cells, caption = build_row(kind, n, row_words, d, nl)
        cells["id"] = str(n)
        text = d.join(cells[name] for name in layout)
        lines += text.split(nl)
        stray = kind.startswith("stray")
        url = None if stray or kind == "invalid" else url_of(n)
        expected.append(Expected(line, url, stray, caption))
    return nl.join(lines) + nl, expected


def read_text(path: Path, text: str, *, compress: bool = False) -> list[ListEntry]:
    data = text.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return list(read_list(ListSpec(str(path))))


def check(got: list[ListEntry], expected: list[Expected]) -> None:
    assert [e.line for e in got] == [x.line for x in expected]
    for entry, want in zip(got, expected, strict=True):
        assert entry.source.endswith(f":{want.line}")
        assert entry.url == want.url, (entry, want)
        if want.stray:
            assert (entry.error or "").startswith(
                f"unclosed quote: a quoted cell opened on line {want.line} "
            ), entry
            assert entry.extra is None
        elif want.url is None:
            assert entry.error and not entry.error.startswith("unclosed"), entry
        if not want.stray:
            assert entry.extra is not None and entry.extra["caption"] == want.caption, entry


@SETTINGS
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(KINDS), st.lists(WORDS, min_size=1, max_size=3)), max_size=25
    ),
    layout=st.sampled_from(LAYOUTS),
    kind=st.sampled_from(["csv", "tsv"]),
    nl=st.sampled_from(["\n", "\r\n"]),
)
def test_every_row_reads_as_itself_around_stray_quotes(
    rows: list[tuple[str, list[str]]], layout: tuple[str, ...], kind: str, nl: str
) -> None:
    d = "," if kind == "csv" else "\t"
    text, expected = make_list([k for k, _ in rows], [w for _, w in rows], layout, d, nl)
    with tempfile.TemporaryDirectory() as folder:
        check(read_text(Path(folder) / f"l.{kind}", text), expected)


@pytest.mark.parametrize("kind", ["csv", "tsv"])
@pytest.mark.parametrize("compress", [False, True])
def test_a_stray_quote_at_every_position_costs_its_line_only(
    tmp_path: Path, kind: str, compress: bool
) -> None:
    d = "," if kind == "csv" else "\t"
    words = [["wcap"]] * 40
    for position in range(40):
        kinds = ["url"] * 40
        kinds[position] = "stray"
        text, expected = make_list(kinds, words, ("url", "caption"), d, "\n")
        check(read_text(tmp_path / f"l.{kind}", text, compress=compress), expected)


def test_legit_multi_line_cells_in_every_layout_stay_one_row(tmp_path: Path) -> None:
    """The last line of a multi-line caption holds the rest of the row, URL included:
    the quote before it closes the cell, so it is no row of its own."""
    for layout in LAYOUTS:
        for kind, d in (("csv", ","), ("tsv", "\t")):
            words = [["wa", "wb, c", "wd"], ["we"], ["wf", "", "wg"]]
            text, expected = make_list(["multi", "url", "multi"], words, layout, d, "\r\n")
            check(read_text(tmp_path / f"l.{kind}", text), expected)


@pytest.mark.parametrize("kind", ["csv", "tsv"])
def test_a_quote_spanning_too_many_lines_is_left_open(tmp_path: Path, kind: str) -> None:
    """No URL row follows to show the quote is stray: the bounds end it, and the lines it
    ran into are read again, each as a row of its own."""
    d = "," if kind == "csv" else "\t"
    many = "\n".join(f"nope{i}" for i in range(MAX_SPAN + 5))
    wide = "\n".join("x" * 60_000 for _ in range(3))
    for filler, how in ((many, f"past {MAX_SPAN} lines"), (wide, f"past {MAX_LINE} characters")):
        text = f'url{d}caption\n{url_of(1)}{d}"Untitled\n{filler}\n{url_of(2)}{d}"closed"\n'
        got = read_text(tmp_path / f"l.{kind}", text)
        rows = filler.count("\n") + 1
        assert [e.line for e in got] == list(range(2, rows + 4))
        assert got[0].error == f"unclosed quote: a quoted cell opened on line 2 runs on {how}"
        assert all(e.url is None and not e.error.startswith("unclosed") for e in got[1:-1])
        assert got[-1].url == url_of(2) and got[-1].extra == {"caption": "closed"}


@pytest.mark.parametrize("header", ['url,"caption\nhttp://example.com/a.jpg,x\n', '"url\n'])
def test_a_header_with_a_quote_left_open_is_one_usage_error(tmp_path: Path, header: str) -> None:
    path = tmp_path / "l.csv"
    path.write_text(header)
    message = "cannot read the header row of URL list .* \\(line 1\\): unclosed quote"
    with pytest.raises(UsageError, match=message):
        check_readable([str(path)])
    with pytest.raises(UsageError, match=message):
        list(read_list(str(path)))


# ------------------------------------------------------------------- bounded lines
@settings(max_examples=500, deadline=None)
@given(
    text=st.text("ab\r\n", max_size=60),
    cap=st.integers(1, 8),
    chunk=st.integers(1, 16),
)
def test_bounded_lines_split_as_python_does_and_cut_long_ones(
    text: str, cap: int, chunk: int
) -> None:
    fh = io.TextIOWrapper(io.BytesIO(text.encode()), encoding="utf-8", newline="")
    fh._CHUNK_SIZE = chunk  # a \r\n across decoder chunks, and across the bound
    got = list(bounded_lines(fh, cap))
    want = io.StringIO(text, newline="").readlines()
    assert len(got) == len(want)
    for line, whole in zip(got, want, strict=True):
        # A line of ``cap`` characters fits, whatever its ending (until 2026-12-01 one of
        # exactly ``cap`` followed by its ending was "over the limit": a fresh user's).
        fits = len(whole.rstrip("\r\n")) <= cap
        assert isinstance(line, Overlong) == (not fits)
        if fits:
            assert line == whole
        else:
            assert line == whole[:cap] and line.length == len(whole.rstrip("\r\n"))  # type: ignore[attr-defined]


LONG = 3 * MAX_LINE + 17
A, B = "http://example.com/a.jpg", "http://example.com/b.jpg"


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("l.txt", f"{A}\n{{long}}\n{B}\n", 2),
        ("l.txt", "# c\n{long}", 2),
        ("l.csv", f"url,caption\n{A},x\r\n{{long}}\r\n{B},y", 3),
        ("l.tsv", f'url\tcaption\n{A}\t"x\n{{long}}\n{B}\tz\n', 3),
        ("l.jsonl", f'{{{{"url": "{A}"}}}}\n{{long}}\n{{{{"url": "{B}"}}}}\n', 2),
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_an_over_long_line_is_a_small_invalid_entry(
    tmp_path: Path, name: str, text: str, line: int, compress: bool
) -> None:
    long = "a" * LONG
    got = read_text(tmp_path / name, text.format(long=long), compress=compress)
    [bad] = [e for e in got if e.line == line]
    assert bad.url is None and bad.raw == "a" * KEPT
    assert bad.error == (
        f"line of {LONG} characters, over the {MAX_LINE}-character limit of a list line "
        f"(only its first {KEPT} kept)"
    )
    if B in text:  # and reading goes on after it
        assert got[-1].url == B


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r", ""])
@pytest.mark.parametrize("extra", [-1, 0, 1])
def test_a_line_of_the_limit_is_read_one_more_is_not(
    tmp_path: Path, ending: str, extra: int
) -> None:
    """A CSV line of MAX_LINE characters (a URL and a long caption) is a URL, whatever
    ends it; one character more is over the limit (a fresh user's, 2026-12-01: exactly
    MAX_LINE, followed by its newline, was "over the 131072-character limit")."""
    caption = "c" * (MAX_LINE + extra - len(A) - 1)
    got = read_text(tmp_path / "l.csv", f"url,caption\n{A},{caption}{ending}", compress=False)
    [entry] = [e for e in got if e.line == 2]
    assert (entry.url is None) == (extra > 0), entry.error
