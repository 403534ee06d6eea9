"""Input formats: text, CSV, TSV and JSON Lines lists, gzip, folders, stdin, ``--dry-run``.

The readers are tested in process on real files (and on stdin through a subprocess);
the rest with the real master: its extras must reach the final manifest rows, of URLs
fetched and failed, through the spool, a rerun and its compaction.
"""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    RUN_TIMEOUT,
    assert_no_traceback,
    cli_command,
    cli_env,
    read_rows,
    run_cli,
    unstamped,
)
from imageserver import ImageServer, make_image

from crawler import constants as c
from crawler.config import ListSpec, format_of
from crawler.exceptions import UsageError
from crawler.manifest import FIELDS
from crawler.master.csvexport import write_csv
from crawler.master.leases import LeaseBoard
from crawler.master.lists import ListEntry, check_readable, expand_lists, read_list
from crawler.master.plan import plan_run, survey
from crawler.master.results import ResultIntake
from crawler.master.taskstore import TaskStore
from crawler.urls import normalize_url

BOM = "\ufeff"
CSV_TEXT = (
    "url,caption,id\n"
    'http://example.com/a.jpg,"a cat, on a mat",1\n'
    "\n"
    'http://example.com/b.jpg,"two\nlines, ""quoted""",2\n'
    "ftp://example.com/c.jpg,not http,3\n"
    ",no url,4\n"
    "http://example.com/d.jpg,surplus,5,more\n"
)
JSONL_TEXT = (
    '{"url": "http://example.com/a.jpg", "caption": "a cat", "tags": ["x", 1], "n": null}\n'
    "\n"
    '{"url": "http://example.com/b.jpg"}\n'
    "not json at all\n"
    "[1, 2]\n"
    '"http://example.com/quoted.jpg"\n'
    '{"link": "http://example.com/e.jpg", "caption": "wrong key"}\n'
    '{"url": 42, "caption": "a number"}\n'
    '{"url": NaN}\n'
    '{"url": "http://example.com/\\ud800.jpg"}\n'
    + "[" * 100_000
    + "\n"
    + '{"url": "ftp://example.com/f.jpg", "id": 6}\n'
)


def entries(path: Path | str, **spec: str) -> list[ListEntry]:
    return list(read_list(ListSpec(str(path), **spec)))


def summary(items: list[ListEntry]) -> list[tuple[int, str | None, str | None, Any]]:
    """(line, url, error, extra) of each entry: what does not depend on the list's path."""
    return [(e.line, e.url, e.error, e.extra) for e in items]


def write(path: Path, text: str, *, compress: bool = False) -> Path:
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


# ----------------------------------------------------------------------------- formats
@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("list.txt", "text"),
        ("urls", "text"),
        ("-", "text"),
        ("a.csv", "csv"),
        ("A.CSV.GZ", "csv"),
        ("x.tsv", "tsv"),
        ("x.tsv.gz", "tsv"),
        ("x.jsonl", "jsonl"),
        ("x.ndjson.gz", "jsonl"),
        ("dir.csv/list.txt", "text"),
        ("list.gz", "text"),
        ("list.json", "text"),
    ],
)
def test_format_comes_from_the_name(name: str, kind: str) -> None:
    assert format_of(name) == kind
    assert ListSpec(name).kind == kind
    assert ListSpec(name, "jsonl").kind == "jsonl"  # --input-format wins


def test_csv_rows_with_quoted_commas_and_newlines(tmp_path: Path) -> None:
    got = entries(write(tmp_path / "l.csv", CSV_TEXT))
    assert summary(got) == [
        (2, "http://example.com/a.jpg", None, {"caption": "a cat, on a mat", "id": "1"}),
        (4, "http://example.com/b.jpg", None, {"caption": 'two\nlines, "quoted"', "id": "2"}),
        (6, None, "not an http or https URL", {"caption": "not http", "id": "3"}),
        (7, None, "no URL", {"caption": "no url", "id": "4"}),
        (8, "http://example.com/d.jpg", None, {"caption": "surplus", "id": "5", "column4": "more"}),
    ]
    assert [e.source for e in got][:2] == [f"{tmp_path}/l.csv:2", f"{tmp_path}/l.csv:4"]
    assert got[2].raw == "ftp://example.com/c.jpg"


def test_tsv_and_a_url_column_of_another_name(tmp_path: Path) -> None:
    text = "id\tlink\tcaption\n1\t HTTP://Example.com/a.jpg \ta, b\n2\tnope\t\n"
    got = entries(write(tmp_path / "l.tsv", text), url_column="link")
    assert summary(got) == [
        (2, "http://example.com/a.jpg", None, {"id": "1", "caption": "a, b"}),
        (3, None, "not an http or https URL", {"id": "2", "caption": ""}),
    ]


def test_csv_without_extra_columns_has_no_extras(tmp_path: Path) -> None:
    got = entries(write(tmp_path / "l.csv", "url\nhttp://example.com/a.jpg\n"))
    assert summary(got) == [(2, "http://example.com/a.jpg", None, None)]


def test_csv_cell_over_the_size_limit_is_an_invalid_row_not_a_crash(tmp_path: Path) -> None:
    huge = '"' + "x" * (csv.field_size_limit() + 10) + '"'
    text = f"url,caption\nhttp://example.com/a.jpg,{huge}\nhttp://example.com/b.jpg,ok\n"
    got = entries(write(tmp_path / "l.csv", text))
    assert got[0].url is None and "over the 131072-character limit" in (got[0].error or "")
    assert summary(got[1:]) == [(3, "http://example.com/b.jpg", None, {"caption": "ok"})]


def test_empty_csv_is_an_empty_list(tmp_path: Path) -> None:
    path = write(tmp_path / "l.csv", "\n\n")
    check_readable([ListSpec(str(path))])
    assert entries(path) == []


def test_jsonl_values_and_garbage_lines(tmp_path: Path) -> None:
    got = entries(write(tmp_path / "l.jsonl", JSONL_TEXT))
    assert [(e.line, e.url, e.extra) for e in got] == [
        (1, "http://example.com/a.jpg", {"caption": "a cat", "tags": ["x", 1], "n": None}),
        (3, "http://example.com/b.jpg", None),
        (4, None, None),
        (5, None, None),
        (6, None, None),
        (7, None, {"link": "http://example.com/e.jpg", "caption": "wrong key"}),
        (8, None, {"caption": "a number"}),
        (9, None, None),
        (10, None, None),
        (11, None, None),
        (12, None, {"id": 6}),
    ]
    errors = [e.error or "" for e in got]
    assert errors[2].startswith("not valid JSON")
    assert errors[3:5] == ["not a JSON object"] * 2
    assert errors[5:7] == ["no 'url' key", "'url' is not a string"]
    assert errors[7].startswith("not valid JSON") and "NaN" in errors[7]
    assert errors[8] == "holds an unpaired surrogate escape"
    assert errors[9].startswith("not valid JSON")  # nested too deeply
    assert errors[10] == "not an http or https URL"
    assert got[2].raw == "not json at all" and got[10].raw == "ftp://example.com/f.jpg"
    for entry in got:  # every one can be written to a UTF-8 manifest
        json.dumps(entry.raw, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("name", "text", "spec"),
    [
        ("l.txt", "# c\nhttp://example.com/a.jpg\nnot a url\n", {}),
        ("l.csv", CSV_TEXT, {}),
        ("l.tsv", "url\tn\nhttp://example.com/a.jpg\t1\n", {}),
        ("l.jsonl", JSONL_TEXT, {}),
    ],
)
def test_gzip_of_each_format_reads_the_same(
    tmp_path: Path, name: str, text: str, spec: dict[str, str]
) -> None:
    plain = summary(entries(write(tmp_path / name, text), **spec))
    assert plain
    packed = write(tmp_path / f"{name}.gz", text, compress=True)
    assert summary(entries(packed, **spec)) == plain
    # Found by the magic bytes: a gzip file without the suffix, a plain one with it.
    (tmp_path / "sub").mkdir()
    renamed = write(tmp_path / "sub" / name, text, compress=True)
    assert summary(entries(renamed, **spec)) == plain
    fake = write(tmp_path / "sub" / f"{name}.gz", text)
    assert summary(entries(fake, **spec)) == plain


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("l.txt", "http://example.com/a.jpg\n"),
        ("l.csv", "url,n\nhttp://example.com/a.jpg,1\n"),
        ("l.tsv", "url\tn\nhttp://example.com/a.jpg\t1\n"),
        ("l.jsonl", '{"url": "http://example.com/a.jpg", "n": "1"}\n'),
    ],
)
def test_byte_order_mark_is_skipped(tmp_path: Path, name: str, text: str, compress: bool) -> None:
    path = write(tmp_path / name, BOM + text, compress=compress)
    got = entries(path)
    assert [e.url for e in got] == ["http://example.com/a.jpg"]
    assert got[0].extra == (None if name == "l.txt" else {"n": "1"})


def test_broken_gzip_is_one_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "l.txt.gz"
    path.write_bytes(gzip.compress(b"http://example.com/a.jpg\n" * 1000)[:40])
    with pytest.raises(UsageError, match=r"cannot read URL list .*: broken gzip data"):
        list(read_list(str(path)))
    check_readable([str(path)])  # only the start is checked before a run: it is fine
    path.write_bytes(b"\x1f\x8b" + bytes(20))  # not even a gzip header
    with pytest.raises(UsageError, match="broken gzip data"):
        check_readable([str(path)])


# ------------------------------------------------------------------------------ stdin
READ_STDIN = (
    "import json, sys\n"
    "from crawler.config import ListSpec\nfrom crawler.master.lists import read_list\n"
    "spec = ListSpec('-', sys.argv[1])\n"
    "print(json.dumps([[e.source, e.url, e.error, e.extra] for e in read_list(spec)]))\n"
)


def read_stdin(data: bytes, input_format: str) -> list[list[Any]]:
    result = subprocess.run(
        [sys.executable, "-c", READ_STDIN, input_format],
        input=data,
        capture_output=True,
        timeout=RUN_TIMEOUT,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize("compress", [False, True])
def test_stdin_is_read_as_a_stream(compress: bool) -> None:
    text = "http://example.com/a.jpg\n\nftp://x/y\n"
    data = text.encode()
    got = read_stdin(gzip.compress(data) if compress else data, "auto")
    assert got == [
        ["-:1", "http://example.com/a.jpg", None, None],
        ["-:3", None, "not an http or https URL", None],
    ]


def test_stdin_in_csv_and_jsonl() -> None:
    got = read_stdin(gzip.compress(CSV_TEXT.encode()), "csv")
    assert got[0] == [
        "-:2",
        "http://example.com/a.jpg",
        None,
        {"caption": "a cat, on a mat", "id": "1"},
    ]
    got = read_stdin(b'{"url": "http://example.com/a.jpg", "k": [1]}\n', "jsonl")
    assert got == [["-:1", "http://example.com/a.jpg", None, {"k": [1]}]]


# ---------------------------------------------------------------------------- folders
def test_folder_is_its_regular_files_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "lists"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.txt", "a.csv", "10.jsonl", ".hidden.txt", "sub/deep.txt"):
        (folder / name).write_text("url\n", encoding="utf-8")
    other = write(tmp_path / "x.tsv", "url\n")
    specs = expand_lists([str(other), str(folder)], "auto", "link")
    assert [s.path for s in specs] == [
        str(other),
        f"{folder}/10.jsonl",
        f"{folder}/a.csv",
        f"{folder}/b.txt",
    ]
    assert {(s.format, s.url_column) for s in specs} == {("auto", "link")}
    assert [s.kind for s in specs] == ["tsv", "jsonl", "csv", "text"]


def test_folder_lists_keep_their_paths_in_sources(tmp_path: Path) -> None:
    folder = tmp_path / "lists"
    folder.mkdir()
    write(folder / "b.txt", "http://example.com/b.jpg\n")
    write(folder / "a.csv.gz", "url,n\nhttp://example.com/a.jpg,1\n", compress=True)
    plan = plan_run(expand_lists([str(folder)]), "run", lambda rows: None)
    try:
        assert [plan.store.record(i) for i in range(len(plan.store))] == [
            ("http://example.com/a.jpg", f"{folder}/a.csv.gz:2", {"n": "1"}),
            ("http://example.com/b.jpg", f"{folder}/b.txt:1", None),
        ]
    finally:
        plan.close()


@pytest.mark.parametrize("hidden", [False, True])
def test_empty_folder_is_a_usage_error(tmp_path: Path, hidden: bool) -> None:
    folder = tmp_path / "lists"
    (folder / "sub").mkdir(parents=True)
    if hidden:
        (folder / ".only-hidden.txt").write_text("http://example.com/a.jpg\n")
    with pytest.raises(UsageError, match=f"URL list folder {folder} holds no list files"):
        expand_lists([str(folder)])


def test_stdin_only_once() -> None:
    with pytest.raises(UsageError, match="stdin"):
        expand_lists(["-", "-"])


def test_check_readable_names_the_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path / "l.csv.gz", "link,caption\nhttp://example.com/a.jpg,x\n", compress=True)
    with pytest.raises(UsageError, match=r"has no column 'url' \(its header: 'link', 'caption'\)"):
        check_readable([ListSpec(str(path))])
    check_readable([ListSpec(str(path), url_column="link"), "-"])  # stdin is never read here
    with pytest.raises(UsageError, match="No such file"):
        check_readable([ListSpec(str(tmp_path / "missing.csv"))])


@pytest.mark.parametrize("name", ["l.csv", "l.tsv"])
def test_a_url_column_named_twice_is_refused(tmp_path: Path, name: str) -> None:
    """``url,url``: the second column's URL went into ``extra`` without a word."""
    sep = "\t" if name.endswith(".tsv") else ","
    path = write(tmp_path / name, f"url{sep}caption{sep}url\nhttp://a.example/1{sep}x{sep}u\n")
    with pytest.raises(UsageError, match=r"has 2 columns named 'url': rename all but"):
        check_readable([ListSpec(str(path))])


@pytest.mark.parametrize("name", ["l.csv", "l.tsv"])
@pytest.mark.parametrize(
    "header", [("url", "caption", "caption"), ("caption", "url", "id", "caption", "id")]
)
def test_any_column_named_twice_is_refused(tmp_path: Path, name: str, header: tuple) -> None:
    """``url,caption,caption``: a row's extras kept only the second caption, unsaid."""
    sep = "\t" if name.endswith(".tsv") else ","
    cells = sep.join(
        f"http://a.example/{i}" if h == "url" else f"c{i}" for i, h in enumerate(header)
    )
    path = write(tmp_path / name, sep.join(header) + "\n" + cells + "\n")
    with pytest.raises(UsageError, match=r"has 2 columns named '(caption|id)': give each its own"):
        check_readable([ListSpec(str(path))])


@pytest.mark.parametrize("name", ["l.csv", "l.tsv"])
def test_columns_without_a_name_keep_every_cell(tmp_path: Path, name: str) -> None:
    """Two unnamed columns were both named "": a row's extras kept the last cell only."""
    sep = "\t" if name.endswith(".tsv") else ","
    text = (
        sep.join(["", "url", " ", "id"])
        + "\n"
        + sep.join(["a", "http://a.example/1", "b", "7", "z"])
        + "\n"
    )
    got = entries(write(tmp_path / name, text))
    assert summary(got) == [
        (2, "http://a.example/1", None, {"column1": "a", "column3": "b", "id": "7", "column5": "z"})
    ]


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ('{"url": "http://a.example/1", "url": "http://a.example/2"}', "url"),
        ('{"url": "http://a.example/1", "caption": "a", "caption": "b"}', "caption"),
        ('{"caption": "a", "url": "http://a.example/1", "caption": "a"}', "caption"),
        ('{"url": "http://a.example/1", "meta": {"w": 1, "w": 2}}', "w"),
    ],
    ids=["url", "caption", "same-value", "nested"],
)
def test_a_json_lines_object_naming_a_member_twice_is_an_invalid_line(
    tmp_path: Path, line: str, name: str
) -> None:
    """Python's JSON parser keeps a repeated name's last value: a second ``url`` replaced
    the first, a second caption lost the first, unsaid (RFC 8259 section 4 leaves it to
    the parser). The line is now an invalid one saying so; the lines around it are read."""
    text = '{"url": "http://a.example/0"}\n' + line + '\n{"url": "http://a.example/3"}\n'
    got = entries(write(tmp_path / "l.jsonl", text))
    assert [e.url for e in got] == ["http://a.example/0", None, "http://a.example/3"]
    assert got[1].error == f"names {name!r} twice in one object" and got[1].raw == line


# ------------------------------------------------------------------ store, plan, rows
def test_task_store_keeps_extras_on_disk(tmp_path: Path) -> None:
    store = TaskStore(tmp_path)
    store.sources.append("l.csv")
    odd = {"caption": "tab\there\nnewline\u2028sep\x85 and é", "n": [1, None]}
    assert store.add("http://example.com/a.jpg", 0, 2, odd) == (0, True)
    assert store.add("http://example.com/b.jpg", 0, 3) == (1, True)
    assert store.add("http://example.com/a.jpg", 0, 9, {"other": "x"}) == (0, False)
    assert store.add("http://example.com/c.jpg", 0, 4, {}) == (2, True)
    assert store.record(0) == ("http://example.com/a.jpg", "l.csv:2", odd)
    assert store.entry(0) == ("http://example.com/a.jpg", "l.csv:2")
    assert store.record(1)[2] is None and store.record(2)[2] is None
    assert store.urls(0, 3) == [f"http://example.com/{x}.jpg" for x in "abc"]
    assert store.find("http://example.com/c.jpg") == 2
    store.close()


def test_plan_rows_carry_their_own_lines_extras(tmp_path: Path) -> None:
    path = write(
        tmp_path / "l.csv",
        "url,caption\nhttp://example.com/a.jpg,first\nhttp://example.com/a.jpg,second\n"
        "nope,third\n",
    )
    rows: list[dict[str, Any]] = []
    plan = plan_run((ListSpec(str(path)),), "run", rows.extend, spool=tmp_path)
    try:
        assert [(r["status"], r["extra"]) for r in rows] == [
            (c.DUPLICATE, {"caption": "second"}),
            (c.INVALID_URL, {"caption": "third"}),
        ]
        assert plan.store.record(0)[2] == {"caption": "first"}
        assert (plan.lines, plan.decided, len(plan.store)) == (3, 2, 1)
    finally:
        plan.close()


def test_survey_counts_like_a_run(tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", CSV_TEXT)
    b = write(tmp_path / "b.jsonl", JSONL_TEXT, compress=True)
    found = survey((ListSpec(str(a)), ListSpec(str(b), "jsonl")))
    # a.csv: 3 valid (a, b, d), 2 invalid; b.jsonl: a and b again, 9 invalid.
    assert (found.lists, found.lines, found.valid) == (2, 16, 3)
    assert (found.invalid, found.duplicate) == (11, 2)


def test_worker_lost_row_carries_the_extras(tmp_path: Path) -> None:
    path = write(tmp_path / "l.jsonl", '{"url": "http://example.com/a.jpg", "id": 7}\n')
    plan = plan_run((str(path),), "run", lambda rows: None, spool=tmp_path)
    now = [0.0]
    board = LeaseBoard(plan.store, plan.state, 10.0, 1, clock=lambda: now[0])
    try:
        assert len(board.get("w", 1, 0)["tasks"]) == 1
        now[0] = 11.0  # the only lease expired, with no attempt left
        [row] = ResultIntake(plan, board, "run").lost_rows()
    finally:
        plan.close()
    assert (row["status"], row["source"], row["extra"]) == (
        c.WORKER_LOST,
        f"{path}:1",
        {"id": 7},
    )


def test_csv_export_writes_extras_as_json(tmp_path: Path) -> None:
    rows = [{"url": "http://example.com/a.jpg", "status": "ok", "extra": {"caption": "é, x"}}]
    write_csv(rows, tmp_path / "m.csv")
    with open(tmp_path / "m.csv", encoding="utf-8-sig", newline="") as fh:
        header, row = list(csv.reader(fh))
    assert header == list(FIELDS) and header[-1] == "extra"
    assert json.loads(row[-1]) == {"caption": "é, x"}


# -------------------------------------------------------------------- the real master
def master_args(out: Path, *lists: str) -> list[str]:
    return [
        *lists, "--bind", "127.0.0.1", "--port", "0", "--local-workers", "1", "--threads", "2",
        "--output", str(out), "--manifest", str(out / "manifest.jsonl"), "--no-progress",
    ]  # fmt: skip


def by_source(rows: list[dict[str, Any]]) -> dict[str, tuple[str, Any]]:
    return {row["source"]: (row["status"], row["extra"]) for row in rows}


def test_extras_reach_the_final_rows_of_gzip_csv_and_jsonl(
    tmp_path: Path, image_server: ImageServer
) -> None:
    ok = image_server.add_image("/img/cat.jpg", "JPEG", 64, 48, seed=1)
    png = image_server.add_image("/img/dog.png", "PNG", 32, 32, seed=2)
    missing = image_server.url("/img/missing.jpg")
    csv_list = write(
        tmp_path / "captions.csv.gz",
        f'url,caption,id\n{ok},"a cat,\non a mat",1\n{missing},gone,2\nnope,bad,3\n',
        compress=True,
    )
    jsonl_list = write(
        tmp_path / "more.jsonl",
        f'{{"url": "{png}", "caption": "a dog", "tags": ["pet"]}}\n'
        f'{{"url": "{ok}", "caption": "the cat again"}}\n'
        "garbage\n",
    )
    out = tmp_path / "out"
    args = master_args(out, str(csv_list), str(jsonl_list))
    expected = {
        f"{csv_list}:2": ("ok", {"caption": "a cat,\non a mat", "id": "1"}),
        f"{csv_list}:4": ("http_error", {"caption": "gone", "id": "2"}),
        f"{csv_list}:5": ("invalid_url", {"caption": "bad", "id": "3"}),
        f"{jsonl_list}:1": ("ok", {"caption": "a dog", "tags": ["pet"]}),
        f"{jsonl_list}:2": ("duplicate", {"caption": "the cat again"}),
        f"{jsonl_list}:3": ("invalid_url", None),
    }

    first = run_cli("master", *args, "--csv", str(out / "m.csv"))
    assert first.returncode == 0, first.stderr
    assert_no_traceback(first.stdout, first.stderr)
    rows = read_rows(out / "manifest.jsonl")
    assert by_source(rows) == expected
    assert all(list(row) == list(FIELDS) for row in rows)
    with open(out / "m.csv", encoding="utf-8-sig", newline="") as fh:
        cells = {r["source"]: r["extra"] for r in csv.DictReader(fh)}
    assert json.loads(cells[f"{csv_list}:2"]) == expected[f"{csv_list}:2"][1]

    # A rerun resumes (trusting the stored images) and compacts: the extras stay.
    second = run_cli("master", *args)
    assert second.returncode == 0, second.stderr
    assert by_source(read_rows(out / "manifest.jsonl")) == expected
    first_ok = {row["url"]: row for row in rows if row["status"] == "ok"}
    kept = {row["url"]: row for row in read_rows(out / "manifest.jsonl") if row["status"] == "ok"}
    assert kept == first_ok  # the same rows (compaction puts them in input order)
    # Checked by a worker (--verify-stored), the stored files are reused: the extras stay.
    third = run_cli("master", *args, "--verify-stored")
    assert third.returncode == 0, third.stderr
    rows = read_rows(out / "manifest.jsonl")
    assert by_source(rows) == expected
    assert {row["url"]: row["reused"] for row in rows if row["status"] == "ok"} == {
        ok: True,
        png: True,
    }


def test_extras_from_stdin(tmp_path: Path, image_server: ImageServer) -> None:
    ok = image_server.add_image("/img/cat.jpg", "JPEG", 64, 48, seed=1)
    missing = image_server.url("/img/missing.jpg")
    lines = f'{{"url": "{ok}", "id": 1}}\n{{"url": "{missing}", "id": 2}}\n{{"id": 3}}\n'
    out = tmp_path / "out"
    result = subprocess.run(
        cli_command("master", *master_args(out, "-"), "--input-format", "jsonl"),
        input=gzip.compress(lines.encode()),
        env=cli_env(),
        capture_output=True,
        timeout=RUN_TIMEOUT,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert_no_traceback(result.stdout.decode(), stderr)
    assert by_source(read_rows(out / "manifest.jsonl")) == {
        "-:1": ("ok", {"id": 1}),
        "-:2": ("http_error", {"id": 2}),
        "-:3": ("invalid_url", {"id": 3}),
    }


def test_dry_run_counts_and_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "lists"
    folder.mkdir()
    write(folder / "a.csv.gz", CSV_TEXT, compress=True)
    write(folder / "b.jsonl", JSONL_TEXT)
    out = tmp_path / "out"
    result = subprocess.run(
        cli_command("master", "--dry-run", str(folder), "-", "--output", str(out)),
        input="http://example.com/a.jpg\nhttp://example.com/new.jpg\n# c\nbad\n",
        env={k: v for k, v in cli_env().items() if k != "CRAWLER_AUTHKEY"},  # no key needed
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    assert result.stdout.splitlines() == [
        "dry run: 3 list(s), 19 line(s)",
        "  valid URLs (distinct)           4",
        "  invalid                        12",
        "  duplicate                       3",
        "nothing written",
    ]
    # b.jsonl is mostly not URLs (on purpose): that alone is said, with a guess.
    warned = [unstamped(line) for line in result.stderr.splitlines()]
    assert warned == [f"crawler-master: URL list {folder / 'b.jsonl'}: 9 of its first 11 lines are "
                      "not URLs; check the list and --input-format/--url-column"]  # fmt: skip
    assert not out.exists()  # no manifest, no key file, no folder


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "cannot read URL list {path}: No such file or directory"),
        ("missing folder", "cannot read URL list {path}: No such file or directory"),
        ("empty folder", "URL list folder {path} holds no list files"),
        (
            "no column",
            "URL list {path} has no column 'url' (its header: 'link'); "
            "name the URL column with --url-column",
        ),
    ],
)
@pytest.mark.parametrize("dry", [False, True])
def test_day_one_list_errors(tmp_path: Path, case: str, message: str, dry: bool) -> None:
    path = tmp_path / ("lists" if "folder" in case else "l.csv")
    if case == "empty folder":
        path.mkdir()
    elif case == "no column":
        write(path, "link\nhttp://example.com/a.jpg\n")
    out = tmp_path / "out"
    flags = ["--dry-run"] if dry else []
    result = run_cli("master", str(path), *flags, *master_args(out), timeout=30)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert_no_traceback(result.stdout, result.stderr)
    lines = [unstamped(line) for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"crawler-master: error: {message.format(path=path)}"]
    assert not (out / "manifest.jsonl").exists()


def test_bare_question_mark_is_dropped_on_the_fast_path_too() -> None:
    # The canonical-form fast path once kept it: two spellings, two different "URLs".
    assert normalize_url("http://example.com/a.jpg?") == "http://example.com/a.jpg"
    assert normalize_url("HTTP://example.com/a.jpg?") == "http://example.com/a.jpg"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n\n"])
def test_a_list_without_urls_is_said_once(tmp_path: Path, text: str) -> None:
    """The real master on a list with nothing to read: one warning naming it, and exit 4
    (degraded), as ``--dry-run`` says of it: an empty nightly list is more likely a broken
    export upstream than a night with nothing to do, and exit 0 would alarm no one."""
    listing = write(tmp_path / "l.txt", text)
    done = run_cli("master", str(listing), "--bind", "127.0.0.1", "--port", "0",
                   "--output", str(tmp_path / "out"), "--no-progress", "-q")  # fmt: skip
    assert done.returncode == c.EXIT_DEGRADED, done.stderr
    assert "degraded run: the lists hold no URL" in done.stderr
    dry = run_cli("master", str(listing), "--output", str(tmp_path / "out"), "--dry-run")
    assert dry.returncode == done.returncode
    assert_no_traceback(done.stdout, done.stderr)
    assert done.stderr.count("holds no URLs") == 1 and str(listing) in done.stderr


def test_one_list_of_several_without_urls_alarms(tmp_path: Path, image_server: ImageServer) -> None:
    """A list that held URLs and is empty tonight, beside one that is not: its URLs'
    rows become history. Until 2026-12-03 that was a warning and exit 0 (a fresh
    user's); now the run completes degraded (exit 4) naming it, and so does --dry-run."""
    url = image_server.add("/e.png", make_image("PNG", 8, 8), content_type="image/png")
    full = write(tmp_path / "full.txt", f"{url}\n")
    empty = write(tmp_path / "empty.txt", "# nothing tonight\n")
    done = run_cli("master", str(full), str(empty), "--bind", "127.0.0.1", "--port", "0",
                   "--output", str(tmp_path / "out"), "--no-progress", "-q",
                   "--local-workers", "1")  # fmt: skip
    assert_no_traceback(done.stdout, done.stderr)
    assert done.returncode == c.EXIT_DEGRADED, done.stderr
    assert f"degraded run: list {empty} holds no URL (empty, or only comments)" in done.stderr
    dry = run_cli("master", str(full), str(empty), "--output", str(tmp_path / "o2"), "--dry-run")
    assert dry.returncode == c.EXIT_DEGRADED, dry.stderr
    alone = run_cli("master", str(full), "--output", str(tmp_path / "o3"), "--dry-run")
    assert alone.returncode == c.EXIT_OK, alone.stderr


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1.5e309"])
def test_a_json_number_too_large_for_a_float_is_an_invalid_line(
    tmp_path: Path, number: str
) -> None:
    """``1e400`` became ``Infinity``, which the manifest held: not JSON (a fresh user)."""
    line = '{"url": "http://a.example/1", "caption": ' + number + "}"
    (entry,) = entries(write(tmp_path / "l.jsonl", line + "\n"))
    assert entry.url is None and entry.error == f"not valid JSON: {number} is too large a number"
    assert entries(write(tmp_path / "m.jsonl", '{"url": "http://a.example/1", "n": 1e308}\n'))[
        0
    ].url


@pytest.mark.parametrize("sep", [",", "\t"])
def test_a_cell_beyond_the_header_keeps_a_column_named_like_it(tmp_path: Path, sep: str) -> None:
    """``url,column3`` over ``URL,a,b``: the surplus cell, named column3 too, replaced a."""
    path = write(tmp_path / "l.csv", f"url{sep}column3\nhttp://a.example/1{sep}a{sep}b\n")
    if sep == "\t":
        path = path.rename(tmp_path / "l.tsv")
    assert summary(entries(path)) == [
        (2, "http://a.example/1", None, {"column3": "a", "_column3": "b"})
    ]
