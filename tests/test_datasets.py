"""From a harvest to a dataset, end to end: a real master and worker crawl images
generated with Pillow from a real HTTP server on loopback; then the real
``crawler-export`` turns the manifest into WebDataset shards (read back with the
``webdataset`` library), Parquet (read back with pyarrow) and loose files.

Exact content duplicates (``same_content_as``, ``--dedup-content``) and perceptual
hashes (``phash``) are checked on the same crawl.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import webdataset as wds
from conftest import assert_no_traceback, cli_env, read_rows, run_cli
from imageserver import ImageServer, make_image
from PIL import Image
from test_hostile_network import tmpfs
from test_s3 import STORE, objects, s3  # noqa: F401  (s3: the moto server fixture)

from crawler.layout import content_name
from crawler.manifest import FIELDS

DISTINCT = 7  # different pictures served
COPIES = (0, 0, 3)  # pictures also served, byte for byte, at a second URL (0 twice)


@dataclass
class Harvest:
    out: Path
    manifest: Path
    rows: list[dict]
    ok: dict[str, dict]  # url -> row, status ok
    captions: dict[str, str]  # url -> the list's caption
    stdout: str


def crawl(
    server: ImageServer, root: Path, *flags: str, env: dict[str, str] | None = None
) -> Harvest:
    """A CSV list (url, caption, id) of distinct pictures, byte-equal copies, a 404."""
    rows, captions = [], {}
    bodies = {}
    for n in range(DISTINCT):
        fmt = ("JPEG", "PNG", "WEBP", "GIF")[n % 4]
        bodies[n] = make_image(fmt, 160 + 8 * n, 120 + 4 * n, seed=n)
        url = server.add(f"/p{n}", bodies[n], content_type="image/" + fmt.lower())
        rows.append((url, f"picture {n}, with, commas", f"id-{n}"))
    for k, n in enumerate(COPIES):
        url = server.add(f"/copy{k}-of-{n}", bodies[n], content_type="image/jpeg")
        rows.append((url, f"copy {k} of {n}", f"copy-{k}"))
    rows.append((server.add("/gone", b"nothing", status=404), "a 404", "gone"))
    root.mkdir(parents=True, exist_ok=True)
    listing = root / "list.csv"
    with open(listing, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(("url", "caption", "id"))
        writer.writerows(rows)
    captions = {url: caption for url, caption, _ in rows}
    out = root / "out"
    result = run_cli(
        "master", str(listing), "--bind", "127.0.0.1", "--port", "0", "--local-workers", "1",
        "--threads", "4", "--output", str(out), "--no-progress", *flags, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    manifest = out / "manifest.jsonl"
    all_rows = read_rows(manifest)
    ok = {row["url"]: row for row in all_rows if row["status"] == "ok"}
    assert len(ok) == DISTINCT + len(COPIES)
    return Harvest(out, manifest, all_rows, ok, captions, result.stdout)


@pytest.fixture(scope="module")
def harvest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harvest]:
    with ImageServer() as server:
        yield crawl(server, tmp_path_factory.mktemp("harvest"))


def export(*args: str) -> tuple[int, str, str]:
    result = run_cli("export", *args, "--no-progress")
    assert_no_traceback(result.stdout, result.stderr)
    return result.returncode, result.stdout, result.stderr


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- content duplicates and perceptual hashes -------------------------------------------


def test_exact_duplicates_name_the_first_row(harvest: Harvest) -> None:
    by_source = {row["source"]: row for row in harvest.rows}
    flagged = [row for row in harvest.ok.values() if row["same_content_as"] is not None]
    assert len(flagged) == len(COPIES)
    for row in flagged:
        first = by_source[row["same_content_as"]]
        # The first is whichever arrived first (4 threads): same bytes, no pointer itself.
        assert first["sha256"] == row["sha256"] and first["same_content_as"] is None
    firsts = {row["sha256"] for row in harvest.ok.values() if row["same_content_as"] is None}
    assert len(firsts) == DISTINCT  # every distinct content has exactly one first
    summary = json.loads((harvest.out / "manifest.summary.json").read_text())
    assert summary["same_content"] == len(COPIES)
    assert f"{len(COPIES)} images with the same bytes" in harvest.stdout
    report = (harvest.out / "manifest.report.html").read_text()
    assert f"{len(COPIES)} stored images have the same bytes" in report


def test_every_image_has_a_perceptual_hash(harvest: Harvest) -> None:
    for row in harvest.ok.values():
        assert isinstance(row["phash"], str) and len(row["phash"]) == 16
        int(row["phash"], 16)
    by_sha: dict[str, set[str]] = {}
    for row in harvest.ok.values():
        by_sha.setdefault(row["sha256"], set()).add(row["phash"])
    assert all(len(hashes) == 1 for hashes in by_sha.values())  # same bytes, same hash


def test_dedup_content_stores_each_content_once(tmp_path: Path) -> None:
    with ImageServer() as server:
        first = crawl(server, tmp_path, "--dedup-content")
        files = sorted(p for p in first.out.rglob("*") if p.is_file() and len(p.stem) == 64)
        assert len(files) == DISTINCT  # one file per distinct content, copies included
        for row in first.ok.values():
            ext = row["path"].rsplit(".", 1)[1]
            assert row["path"] == content_name(row["sha256"], ext)
            assert sha((first.out / row["path"]).read_bytes()) == row["sha256"]
        # The rerun trusts, then (--verify-stored) rechecks every stored copy: all reused.
        again = run_cli(
            "master", str(tmp_path / "list.csv"), "--bind", "127.0.0.1", "--port", "0",
            "--local-workers", "1", "--output", str(first.out), "--no-progress",
            "--dedup-content", "--verify-stored",
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        rows = {r["url"]: r for r in read_rows(first.manifest) if r["status"] == "ok"}
        assert all(row["reused"] for row in rows.values())
        assert {r["path"] for r in rows.values()} == {r["path"] for r in first.ok.values()}
        copies = [r for r in rows.values() if r["same_content_as"] is not None]
        assert len(copies) == len(COPIES)
        assert server.total_hits() == len(first.rows) + 1  # robots.txt, nothing again


# --- export -------------------------------------------------------------------------------


def test_webdataset_shards_read_back(harvest: Harvest, tmp_path: Path) -> None:
    out = tmp_path / "wds"
    code, stdout, _ = export(
        str(harvest.manifest), "--format", "webdataset", "--out", str(out),
        "--shard-size", "3", "--caption-column", "caption",
    )  # fmt: skip
    assert code == 0 and "exported" in stdout
    shards = sorted(out.glob("shard-*.tar"))
    assert len(shards) == -(-len(harvest.ok) // 3) and not list(out.glob("*.part"))
    assert f"  {len(shards)} tar shards in {out}\n" in stdout  # not "N webdataset outputs"
    index = json.loads((out / "shards.json").read_text())
    for source in ([str(p) for p in shards], f"{out}/{index['pattern']}"):
        samples = list(wds.WebDataset(source, shardshuffle=False))
        seen = {}
        for sample in samples:
            meta = json.loads(sample["json"])
            image = next(sample[k] for k in ("jpg", "png", "webp", "gif") if k in sample)
            assert sha(image) == meta["sha256"]
            assert sample["txt"].decode() == harvest.captions[meta["url"]]
            seen[meta["url"]] = meta
        assert seen == harvest.ok  # exactly the ok rows, with their metadata
        assert all(meta["extra"]["id"] for meta in seen.values())
    assert sum(s["nsamples"] for s in index["shardlist"]) == len(harvest.ok)
    summary = json.loads((out / "export.summary.json").read_text())
    assert summary["statuses"] == {"exported": len(harvest.ok), "no_image": 1}


def test_an_export_replaces_the_earlier_one_in_its_folder(harvest: Harvest, tmp_path: Path) -> None:
    """Exported again into the same --out with other settings or another format, every
    sample is there once: what the earlier export wrote and this one did not is gone,
    and files that are not the export's stay."""
    out, total = tmp_path / "out", len(harvest.ok)
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    runs = [
        ("webdataset", "2"), ("webdataset", "100"), ("files", "2"), ("files", "100"),
        ("files", "3"), ("parquet", "5"), ("webdataset", "4"),
    ]  # fmt: skip
    for fmt, size in runs:
        code, _, err = export(str(harvest.manifest), "--format", fmt, "--out", str(out),
                              "--shard-size", size)  # fmt: skip
        assert code == 0, err
        shards = sorted(p.name for p in out.glob("shard-*.tar"))
        members = [p for p in out.glob("[0-9]*/*") if p.is_file()]
        summary = json.loads((out / "export.summary.json").read_text())
        if fmt == "webdataset":
            index = json.loads((out / "shards.json").read_text())
            assert shards == summary["outputs"] == [e["url"] for e in index["shardlist"]]
            samples = list(wds.WebDataset([str(out / n) for n in shards], shardshuffle=False))
            assert len(samples) == total and members == []
        elif fmt == "files":
            assert shards == [] and not (out / "shards.json").exists()
            assert len({p.name.split(".")[0] for p in members}) == total, (fmt, size)
            assert all(int(p.parent.name) == int(p.name[:9]) // int(size) for p in members)
            assert sorted(p.name for p in out.iterdir() if p.is_dir()) == summary["outputs"]
        else:
            assert shards == members == [] and (out / "manifest.parquet").exists()
        assert fmt == "parquet" or not (out / "manifest.parquet").exists()
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("column", ["Caption", "nope"])
def test_a_caption_column_no_row_has_is_said_and_exits_3(
    harvest: Harvest, tmp_path: Path, column: str
) -> None:
    out = tmp_path / "out"
    code, _, err = export(str(harvest.manifest), "--format", "webdataset", "--out", str(out),
                          "--caption-column", column)  # fmt: skip
    assert code == 3
    line = f"crawler-export: no exported row has the list column {column!r} (columns: caption, id)"
    assert err.strip() == line
    summary = json.loads((out / "export.summary.json").read_text())
    assert summary["captions"] == 0 and summary["caption_missing"] == line.split(": ", 1)[1]


def test_a_caption_column_empty_in_every_row_is_said_so(tmp_path: Path) -> None:
    """The column is there, empty: "no exported row has the list column 'caption'
    (columns: caption, license)" named it among the columns it said were missing (a
    fresh user's, 2026-12-01)."""
    with ImageServer() as server:
        urls = [server.add(f"/e{n}", make_image("PNG", 20 + n, 20, seed=n)) for n in range(3)]
        listing = tmp_path / "l.csv"
        listing.write_text("url,caption,license\n" + "".join(f"{u},,cc0\n" for u in urls))
        out = tmp_path / "out"
        crawl = run_cli(
            "master", str(listing), "--bind", "127.0.0.1", "--port", "0", "--output", str(out),
            "--local-workers", "1", "--no-progress", "--no-report",
        )  # fmt: skip
    assert crawl.returncode == 0, crawl.stderr
    code, _, err = export(str(out / "manifest.jsonl"), "--format", "webdataset", "--out",
                          str(tmp_path / "wds"), "--caption-column", "caption")  # fmt: skip
    assert (code, err.strip()) == (
        3,
        "crawler-export: every exported row's list column 'caption' is empty",
    )


@pytest.mark.parametrize("fmt", ["webdataset", "files", "parquet"])
def test_every_format_counts_the_caption_column_the_rows_have(
    harvest: Harvest, tmp_path: Path, fmt: str
) -> None:
    """A Parquet export said "no exported row has the list column 'caption' (columns:
    none)" and exited 3 for rows that had it."""
    out = tmp_path / "out"
    code, _, err = export(str(harvest.manifest), "--format", fmt, "--out", str(out),
                          "--caption-column", "caption")  # fmt: skip
    assert code == 0, err
    summary = json.loads((out / "export.summary.json").read_text())
    exported = harvest.rows if fmt == "parquet" else harvest.ok  # Parquet: every row
    assert summary["captions"] == len(exported), summary  # every list line has one
    assert summary["caption_missing"] is None


CAPTIONS = [  # a JSON Lines list's caption values, and the KEY.txt each must give
    ("a cat", "a cat"), (False, "false"), (True, "true"), (1.5, "1.5"), (0, "0"),
    ({"en": "é", "n": [1, None]}, '{"en": "é", "n": [1, null]}'), (["x", 2], '["x", 2]'),
    (None, ""), ("", ""),  # no caption: an empty KEY.txt, so every sample has one
]  # fmt: skip


def test_a_caption_that_is_not_a_string_is_written_as_json(tmp_path: Path) -> None:
    """A JSON Lines list's caption ``false`` became ``False`` in KEY.txt, an object a
    Python dict's repr (single quotes, ``None``)."""
    png = make_image("PNG", 24, 24, seed=5)
    with ImageServer() as server:
        lines = [
            json.dumps({"url": server.add(f"/c{i}", png, content_type="image/png"), "caption": v})
            for i, (v, _) in enumerate(CAPTIONS)
        ]
        (tmp_path / "l.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        done = run_cli(
            "master", str(tmp_path / "l.jsonl"), "--port", "0", "--local-workers", "1",
            "--output", str(tmp_path / "out"), "--no-progress", "--no-report",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = tmp_path / "wds"
    code, _, err = export(str(tmp_path / "out" / "manifest.jsonl"), "--format", "webdataset",
                          "--out", str(out), "--caption-column", "caption")  # fmt: skip
    assert code == 0, err
    texts = {}
    for shard in sorted(out.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
        for name, data in members.items():
            if name.endswith(".json"):
                text = members.get(name[: -len("json")] + "txt")
                texts[json.loads(data)["url"]] = None if text is None else text.decode()
    urls = [json.loads(line)["url"] for line in lines]
    assert [texts[url] for url in urls] == [want for _, want in CAPTIONS]
    # The README's loader: a sample without its .txt stopped it (ValueError).
    shards = [str(shard) for shard in sorted(out.glob("shard-*.tar"))]
    loaded = wds.WebDataset(shards, shardshuffle=False).to_tuple("jpg;png;webp;gif", "json", "txt")
    assert len(list(loaded)) == len(CAPTIONS)


def test_parquet_matches_the_manifest(harvest: Harvest, tmp_path: Path) -> None:
    out = tmp_path / "pq"
    code, stdout, _ = export(str(harvest.manifest), "--format", "parquet", "--out", str(out))
    assert code == 0 and f"  1 Parquet file in {out}\n" in stdout
    table = pq.read_table(out / "manifest.parquet")
    assert table.column_names == list(FIELDS)
    assert str(table.schema.field("bytes").type) == "int64"
    assert str(table.schema.field("reused").type) == "bool"
    assert str(table.schema.field("finished_at").type) == "timestamp[ms, tz=UTC]"
    read = table.to_pylist()
    assert len(read) == len(harvest.rows)
    for got, row in zip(read, harvest.rows, strict=True):
        for name in FIELDS:
            value = got[name]
            if name in ("fetched_at", "first_failed_at", "finished_at") and value is not None:
                value = value.isoformat()
            if name == "extra":
                value = json.loads(value)
            assert value == row[name], name


@pytest.mark.parametrize(
    ("mode", "expect"),
    [("keep_ratio", lambda w, h: max(w, h) == 64), ("center_crop", lambda w, h: (w, h) == (64, 64)),
     ("border", lambda w, h: (w, h) == (64, 64))],
)  # fmt: skip
def test_files_with_derived_images(harvest: Harvest, tmp_path: Path, mode: str, expect) -> None:
    before = {p: sha(p.read_bytes()) for p in harvest.out.rglob("*") if p.is_file()}
    out = tmp_path / "files"
    code, stdout, _ = export(
        str(harvest.manifest), "--format", "files", "--out", str(out), "--shard-size", "4",
        "--resize", "64", "--resize-mode", mode,
    )  # fmt: skip
    assert code == 0 and f"  3 shard folders in {out}\n" in stdout
    metas = sorted(out.glob("*/*.json"))
    assert len(metas) == len(harvest.ok) and len(list(out.glob("*"))) == 3 + 1  # + summary
    for path in metas:
        meta = json.loads(path.read_text())
        images = [p for p in path.parent.glob(path.stem + ".*") if p.suffix in (".jpg", ".png")]
        with Image.open(images[0]) as image:
            assert expect(*image.size) and (image.width, image.height) == (
                meta["derived"]["width"], meta["derived"]["height"])  # fmt: skip
        assert meta["sha256"] == harvest.ok[meta["url"]]["sha256"]  # the original's
    after = {p: sha(p.read_bytes()) for p in harvest.out.rglob("*") if p.is_file()}
    assert {p: h for p, h in after.items() if p in before and p.suffix != ".lock"} == {
        p: h for p, h in before.items() if p.suffix != ".lock"}  # fmt: skip


# --- bad input ------------------------------------------------------------------------------


def test_bad_input_is_one_line_or_a_row_status(harvest: Harvest, tmp_path: Path) -> None:
    code, _, err = export(
        str(tmp_path / "none.jsonl"), "--format", "files", "--out", str(tmp_path / "o")
    )
    assert code == 1 and err.count("\n") == 1 and "does not exist" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = export(str(harvest.manifest), "--format", "files", "--out", str(blocker / "o"))
    assert code == 1 and err.count("\n") == 1 and "--out folder" in err
    # A damaged copy of the manifest: a torn line, garbage, a row whose file is gone,
    # one whose file changed, one whose path escapes the store.
    lines = harvest.manifest.read_text().splitlines()
    ok_rows = [json.loads(line) for line in lines if '"status":"ok"' in line]
    gone, changed, escaping = ok_rows[0], ok_rows[1], ok_rows[2]
    images = tmp_path / "images"
    for row in ok_rows:
        target = images / row["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((harvest.out / row["path"]).read_bytes())
    (images / gone["path"]).unlink()
    (images / changed["path"]).write_bytes(b"other bytes")
    escaping["path"] = "../../etc/passwd"
    edited = [json.dumps(escaping) if r["url"] == escaping["url"] else line
              for line, r in ((line, json.loads(line)) for line in lines)]  # fmt: skip
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("\n".join([*edited, "{not json", '{"url": 5}', edited[0][:40]]) + "\n")
    out = tmp_path / "out"
    code, stdout, err = export(str(damaged), "--format", "webdataset", "--out", str(out),
                               "--images", str(images))  # fmt: skip
    assert code == 3, err
    summary = json.loads((out / "export.summary.json").read_text())
    assert summary["statuses"]["missing"] == 1 and summary["statuses"]["changed"] == 1
    assert summary["statuses"]["bad_path"] == 1 and summary["damaged_lines"] == 3
    assert summary["statuses"]["exported"] == len(ok_rows) - 3
    assert "3 damaged manifest lines" in stdout


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"hello world\nnot json\n", "none of its 2 lines is a manifest row"),
        (b'{"a": 1}\n[1, 2]\n', "none of its 2 lines is a manifest row"),
        (b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8, "is a manifest row"),  # a JPEG's head
        (b"", "it is empty"),
    ],
)
@pytest.mark.parametrize("fmt", ["files", "parquet", "webdataset"])
def test_a_file_with_no_manifest_row_is_one_clear_error(
    tmp_path: Path, content: bytes, says: str, fmt: str
) -> None:
    """Not "0 rows exported" and exit 0: an unattended pipeline would go on with nothing."""
    given = tmp_path / "given.jsonl"
    given.write_bytes(content)
    out = tmp_path / "deep" / "out"
    code, stdout, err = export(str(given), "--format", fmt, "--out", str(out))
    assert code == 1 and stdout == "", err
    assert err.count("\n") == 1 and "is not a crawler manifest" in err and says in err, err
    assert not (tmp_path / "deep").exists()  # refused before anything was made


def test_a_manifest_with_a_bom_exports_like_one_without(harvest: Harvest, tmp_path: Path) -> None:
    """An editor may save the manifest with a UTF-8 BOM; the master reads it, so must this."""
    marked = tmp_path / "bom.jsonl"
    marked.write_bytes(b"\xef\xbb\xbf" + harvest.manifest.read_bytes())
    runs = {}
    for name, manifest in (("plain", harvest.manifest), ("bom", marked)):
        out = tmp_path / name
        code, _, err = export(str(manifest), "--format", "parquet", "--out", str(out))
        assert code == 0, err
        runs[name] = json.loads((out / "export.summary.json").read_text())
    assert runs["bom"]["rows"] == runs["plain"]["rows"] == len(harvest.rows)
    assert runs["bom"]["damaged_lines"] == 0


def test_a_missing_manifest_makes_no_out_folder(tmp_path: Path) -> None:
    code, _, err = export(
        str(tmp_path / "none.jsonl"), "--format", "files", "--out", str(tmp_path / "a" / "b")
    )
    assert code == 1 and "does not exist" in err
    assert not (tmp_path / "a").exists()


def test_export_without_write_permission(harvest: Harvest, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    code, _, err = export(str(harvest.manifest), "--format", "webdataset", "--out", str(out))
    assert code == 1 and err.count("\n") == 1


def test_tar_members_are_plain(harvest: Harvest, tmp_path: Path) -> None:
    """Shards hold regular files only, named KEY.EXT, with no path components."""
    out = tmp_path / "wds"
    assert export(str(harvest.manifest), "--format", "webdataset", "--out", str(out))[0] == 0
    with tarfile.open(out / "shard-00000.tar") as tar:
        members = tar.getmembers()
    assert all(m.isfile() and "/" not in m.name and m.name.count(".") == 1 for m in members)
    assert len(members) == 2 * len(harvest.ok)  # image + json, no caption asked for
    with tarfile.open(out / "shard-00000.tar") as tar:
        first = tar.extractfile(members[0])
        assert first is not None
        Image.open(io.BytesIO(first.read())).verify()


# --- from S3 (moto server on loopback) ------------------------------------------------------


def test_export_from_s3(s3: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    """A crawl into S3 with --dedup-content, exported from S3 as shards."""
    env = cli_env(**s3)
    with ImageServer() as server:
        harvest = crawl(server, tmp_path, "--store", STORE, "--dedup-content", env=env)
    keys = objects(s3)
    assert len([k for k in keys if "/.crawler-probe" not in k]) == DISTINCT
    out = tmp_path / "wds"
    result = run_cli("export", str(harvest.manifest), "--format", "webdataset", "--out",
                     str(out), "--no-progress", env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = {}
    for sample in wds.WebDataset([str(p) for p in sorted(out.glob("*.tar"))], shardshuffle=False):
        meta = json.loads(sample["json"])
        image = next(sample[k] for k in ("jpg", "png", "webp", "gif") if k in sample)
        assert sha(image) == meta["sha256"] and meta["store"] == STORE
        seen[meta["url"]] = meta
    assert seen == harvest.ok


def test_export_from_a_shared_folder(tmp_path: Path) -> None:
    """A crawl into a shared folder (--store file://), exported as files from there: the
    manifest's folder holds no image, the store does."""
    shared = tmp_path / "shared"
    shared.mkdir()
    with ImageServer() as server:
        harvest = crawl(server, tmp_path, "--store", shared.as_uri())
    out = tmp_path / "files"
    code, _, err = export(str(harvest.manifest), "--format", "files", "--out", str(out))
    assert code == 0, err
    metas = [json.loads(p.read_text()) for p in out.glob("*/*.json")]
    assert {m["url"] for m in metas} == set(harvest.ok)
    for path in out.glob("*/*"):
        if path.suffix not in (".json", ".txt"):
            meta = json.loads(path.with_suffix(".json").read_text())
            assert sha(path.read_bytes()) == meta["sha256"] and meta["store"] == shared.as_uri()


def test_an_export_while_the_store_is_away_keeps_the_earlier_one(tmp_path: Path) -> None:
    """Exported again while the shared folder is unmounted (every image a store_error):
    the earlier export's shards stay, listed as kept_earlier, until an export that
    reads every image replaces them. Before, it removed them all and wrote nothing."""
    shared = tmp_path / "shared"
    shared.mkdir()
    with ImageServer() as server:
        harvest = crawl(server, tmp_path, "--store", shared.as_uri())
    out, args = tmp_path / "wds", (str(harvest.manifest), "--format", "webdataset")
    code, _, err = export(*args, "--out", str(out), "--shard-size", "2")
    assert code == 0, err
    earlier = sorted(p.name for p in out.glob("shard-*.tar"))
    before = {name: (out / name).read_bytes() for name in earlier}
    assert len(earlier) > 2
    shared.rename(tmp_path / "unmounted")
    code, _, err = export(*args, "--out", str(out), "--shard-size", "2")
    summary = json.loads((out / "export.summary.json").read_text())
    assert code == 3 and summary["statuses"]["store_error"] == len(harvest.ok), summary
    assert summary["outputs"] == [] and summary["kept_earlier"] == earlier
    assert {name: (out / name).read_bytes() for name in earlier} == before
    assert "of the earlier export were kept" in err
    assert json.loads((out / "shards.json").read_text())["pattern"] is None  # none of its own
    (tmp_path / "unmounted").rename(shared)
    code, _, err = export(*args, "--out", str(out), "--shard-size", "100")
    summary = json.loads((out / "export.summary.json").read_text())
    assert code == 0, err
    assert (
        sorted(p.name for p in out.glob("shard-*.tar")) == summary["outputs"] == ["shard-00000.tar"]
    )
    assert summary["kept_earlier"] == []


def test_an_export_that_fails_midway_leaves_the_earlier_one_as_it_was(
    harvest: Harvest, tmp_path: Path
) -> None:
    """The disk fills while the second export is written: exit 1, one line, and --out
    holds the first export byte for byte (the second was written aside). Before, its
    finished shards stayed beside the first's, listed nowhere, and no later export
    removed them (a glob loader read samples twice)."""
    args = (str(harvest.manifest), "--format", "webdataset", "--shard-size", "2")
    measured = tmp_path / "measured"
    assert export(*args, "--out", str(measured))[0] == 0
    size = sum(p.stat().st_size for p in measured.iterdir())
    with tmpfs(tmp_path / "disk", f"{(size * 3 // 2) // 1024 + 64}k") as disk:
        out = disk / "wds"
        assert export(*args, "--out", str(out))[0] == 0
        first = {p.name: p.read_bytes() for p in out.iterdir()}
        code, _, err = export(*args[:-1], "1", "--out", str(out))
        assert code == 1 and err.count("\n") == 1 and "No space left" in err, err
        assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # nothing aside
    with tmpfs(tmp_path / "small", f"{(size // 2) // 1024}k") as small:
        code, _, err = export(*args, "--out", str(small / "wds"))
        assert code == 1 and "No space left" in err, err
        assert [p.name for p in (small / "wds").iterdir()] == []  # no shard, finished or not


@pytest.mark.parametrize("changed", [1, 3])
def test_a_content_named_file_other_rows_still_use_is_not_superseded(
    tmp_path: Path, changed: int
) -> None:
    """--dedup-content: three URLs serve the same bytes, stored once. A refresh finds the
    first URL's bytes changed: its row names a new file, but the old one is still the
    other two rows' image. The summary listed it as superseded ("safe to delete"), and
    deleting it lost their image. Now it is listed only when no current row has those
    bytes any more (all three changed), and then once, not once per URL."""
    old, new = make_image("JPEG", 120, 90, seed=1), make_image("JPEG", 120, 90, seed=2)
    out, listing = tmp_path / "out", tmp_path / "list.txt"
    with ImageServer() as server:
        urls = [server.add(f"/x{i}.jpg", old, content_type="image/jpeg") for i in range(3)]
        listing.write_text("\n".join(urls) + "\n")

        def run(*flags: str) -> str:
            result = run_cli(
                "master", str(listing), "--bind", "127.0.0.1", "--port", "0",
                "--local-workers", "1", "--output", str(out), "--no-progress",
                "--dedup-content", *flags,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            assert_no_traceback(result.stdout, result.stderr)
            return result.stdout

        run()
        for i in range(changed):
            server.add(f"/x{i}.jpg", new, content_type="image/jpeg")
        time.sleep(0.2)  # past --refresh-after: every row is due
        stdout = run("--refresh-after", "0.000001")
    old_file = content_name(sha(old), "jpg")
    rows = {r["url"]: r for r in read_rows(out / "manifest.jsonl")}
    assert [rows[url]["sha256"] == sha(new) for url in urls] == [i < changed for i in range(3)]
    superseded = json.loads((out / "manifest.summary.json").read_text())["superseded"]
    if changed < 3:  # still the image of the rows that did not change
        assert superseded == [] and "superseded" not in stdout
        assert sha((out / old_file).read_bytes()) == sha(old)
    else:
        assert [(e["path"], e["sha256"]) for e in superseded] == [(old_file, sha(old))]
        assert "1 earlier copy superseded" in stdout


def test_images_not_beside_the_manifest_are_said_with_the_flag_to_give(
    harvest: Harvest, tmp_path: Path
) -> None:
    """The manifest copied away from its images, no --images: the one line names the
    folder it looked in as the manifest's, and says to give --images DIR (a fresh
    user's, 2026-12-02: only "export again once it is mounted")."""
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copyfile(harvest.manifest, moved / "manifest.jsonl")
    out = tmp_path / "out"
    code, _, err = export(
        str(moved / "manifest.jsonl"), "--format", "webdataset", "--out", str(out)
    )
    assert code == 3, err
    [line] = [line for line in err.splitlines() if "looks empty or unmounted" in line]
    assert f"is in {moved} (the manifest's folder: " in line and "give --images DIR" in line
