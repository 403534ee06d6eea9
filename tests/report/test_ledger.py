"""The report's aggregate kept by the master (``report.ledger``) equals one read from the
manifest: row by row (Hypothesis, on ``ReportData``), through a save and a load, and over
real nights of the real master, whose journal is compacted only when rows of it were
superseded."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from conftest import assert_no_traceback, read_rows, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from imageserver import ImageServer

from crawler.manifest import aggregate_path, make_row
from crawler.report import ledger
from crawler.report.aggregate import aggregate
from crawler.report.model import MAX_FAILURES, ReportData


def exact(rep: ReportData) -> dict[str, Any]:
    """What the report shows that is not a random sample."""
    assert len(rep.failures) <= MAX_FAILURES
    return {
        "same_content": rep.same_content,
        "near": (rep.near.seen, sorted(rep.near.urls())),
        "rows": rep.rows,
        "failed": rep.failed,
        "stored_bytes": rep.stored_bytes,
        "stored_seen": rep.stored_seen,
        "statuses": {k: v for k, v in rep.statuses.items() if v},
        "held": {k: v for k, v in rep.held.items() if v},
        "hosts": {n: (h.urls, h.failed, h.timed) for n, h in rep.hosts.items()},
        "elapsed": {n: round(h.elapsed_sum, 6) for n, h in rep.hosts.items()},
        "failures": sorted(f[0] for f in rep.failures),
        "candidates": len(rep.candidates),
        "chart": (rep.chart_run, sum(rep.bars[0].values()), sum(rep.bars[1].values())),
    }


def assert_ledger_fits(manifest: Path) -> None:
    """The aggregate the master saved equals one read from the (compacted) manifest."""
    saved = ledger.load(manifest)
    assert saved is not None, "no usable aggregate after a completed run"
    read = aggregate(manifest, ledger.SAMPLE, compacted_by=saved.chart_run)
    assert exact(saved) == exact(read)
    stored = {row["url"] for row in read_rows(manifest) if isinstance(row.get("path"), str)}
    assert {c["url"] for c in saved.candidates} <= stored


# ------------------------------------------------------------------ row by row
STATUSES = ("ok", "reused", "http_error", "timeout", "duplicate", "invalid_url", "odd")
HOSTS = ("a.test", "b.test:8080", "c.test")


@st.composite
def rows(draw: st.DrawFn) -> dict[str, Any]:
    status = draw(st.sampled_from(STATUSES))
    host = draw(st.sampled_from(HOSTS))
    url = f"http://{host}/{draw(st.integers(0, 10**6))}.jpg"
    stored = status in ("ok", "reused")
    return make_row(
        url=url if status != "invalid_url" else f"not a url {draw(st.integers(0, 99))}",
        status=status,
        path="ab/cd/x.jpg" if stored else None,
        bytes=draw(st.integers(0, 10**7)) if stored else None,
        host=draw(st.sampled_from(("h1", "h2", None))),
        attempts=draw(st.integers(0, 3)),
        elapsed_s=draw(st.floats(0, 30, allow_nan=False)),
        run_id=draw(st.sampled_from(("r1", "r2"))),
        finished_at=f"2026-11-{draw(st.integers(1, 29)):02d}T00:00:00+00:00",
        reused=draw(st.sampled_from((None, True))),
        phash=draw(st.sampled_from((None, "00ff00ff00ff00ff", "0123456789abcdef"))),
        same_content_as=draw(st.sampled_from((None, "list.txt:1"))),
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(rows(), max_size=60), st.data())
def test_removing_rows_equals_never_adding_them(all_rows: list[dict], data: st.DataObject) -> None:
    for i, row in enumerate(all_rows):  # one row per URL, as in a compacted manifest
        row["url"] += f"#{i}"
    gone = data.draw(st.sets(st.integers(0, max(0, len(all_rows) - 1))))
    kept = [row for i, row in enumerate(all_rows) if i not in gone]
    running, fresh = ReportData(4, None), ReportData(4, None)
    for row in all_rows:
        running.add(row)
    for i in sorted(gone):
        if i < len(all_rows):
            running.remove(all_rows[i])
    for row in kept:
        fresh.add(row)
    got, want = exact(running), exact(fresh)
    assert got.pop("candidates") <= want.pop("candidates")  # a sample: a removed one is gone
    assert got == want


# ------------------------------------------------------------------ saved, loaded
def test_saved_aggregate_is_used_only_for_the_manifest_it_was_saved_with(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    lines = [make_row(url=f"http://a.test/{i}.jpg", status="ok", path="p", bytes=i, host="h")
             for i in range(50)]  # fmt: skip
    manifest.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    rep = aggregate(manifest, ledger.SAMPLE)
    ledger.save(manifest, rep)
    loaded = ledger.load(manifest)
    assert loaded is not None and exact(loaded) == exact(rep)

    # Edited in place, same size: the head or tail differs, or the time.
    text = manifest.read_bytes()
    for edit in (text.replace(b'"bytes":1,', b'"bytes":7,', 1), text[:-3] + b"}}\n"):
        manifest.write_bytes(edit)
        assert ledger.load(manifest) is None
    manifest.write_bytes(text)
    ledger.save(manifest, rep)
    with open(manifest, "ab") as fh:
        fh.write(b"{}\n")  # appended
    assert ledger.load(manifest) is None
    ledger.save(manifest, rep)
    stat = manifest.stat()
    os.utime(manifest, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched
    assert ledger.load(manifest) is None
    for damage in (b"", b"{", b'{"version": 1}', b"[1, 2]", b'{"version":1,"fingerprint":0}'):
        aggregate_path(manifest).write_bytes(damage)
        assert ledger.load(manifest) is None
    ledger.save(manifest, None)
    assert not aggregate_path(manifest).exists()


def test_an_aggregate_of_version_2_still_loads(tmp_path: Path) -> None:
    """Version 2 kept no sha256 in its near-duplicate rows and gallery candidates: such an
    aggregate loads (no 10M-row read after an upgrade) and clusters; unknown versions do
    not load."""
    manifest = tmp_path / "m.jsonl"
    lines = [make_row(url=f"http://a.test/{i}.jpg", status="ok", path=f"p{i}", bytes=i,
                      host="h", phash=f"{0xFF00 + (i % 2):016x}", sha256=f"{i:064x}")
             for i in range(6)]  # fmt: skip
    manifest.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    ledger.save(manifest, aggregate(manifest, ledger.SAMPLE))
    state = json.loads(aggregate_path(manifest).read_bytes())
    state["version"] = 2
    near = state["data"]["near"]
    near["rows"] = [row.rsplit("\x1f", 1)[0] for row in near["rows"]]  # the 8 fields of 2
    for candidate in state["data"]["candidates"]:
        del candidate["sha256"]
    aggregate_path(manifest).write_text(json.dumps(state), encoding="utf-8")
    loaded = ledger.load(manifest)
    assert loaded is not None
    [cluster], count, images = loaded.near.clusters()
    assert (count, images) == (1, 6)
    assert {row["sha256"] for row in cluster} == {None}
    assert sorted(row["bytes"] for row in cluster) == list(range(6))
    for version in (1, ledger.VERSION + 1):
        state["version"] = version
        aggregate_path(manifest).write_text(json.dumps(state), encoding="utf-8")
        assert ledger.load(manifest) is None


# ------------------------------------------------------------------ real nights
def night(listing: Path, out: Path, *flags: str) -> dict[str, Any]:
    result = run_cli(
        "master", str(listing), "--port", "0", "--bind", "127.0.0.1", "--output", str(out),
        "--local-workers", "1", "--threads", "4", "--no-progress", "--retries", "0", *flags,
    )  # fmt: skip
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode in (0, 4), result.stderr
    return json.loads((out / "manifest.summary.json").read_text(encoding="utf-8"))


def test_nights_keep_the_aggregate_and_compact_only_when_needed(
    tmp_path: Path, image_server: ImageServer
) -> None:
    images = [image_server.add_image(f"/i/{n}.png", "PNG", 30 + n, 20, seed=n) for n in range(6)]
    gone = image_server.url("/gone.jpg")
    listing, out = tmp_path / "list.txt", tmp_path / "out"
    manifest = out / "manifest.jsonl"

    def write_list(*extra: str) -> None:
        listing.write_text("\n".join([*images, gone, *extra]) + "\n", encoding="utf-8")

    write_list("not a url", images[0])  # an invalid line, a duplicate line
    night(listing, out)
    assert_ledger_fits(manifest)

    # Only new URLs: the journal is appended to, never rewritten (the same file).
    inode = manifest.stat().st_ino
    before = manifest.read_bytes()
    images.append(image_server.add_image("/i/new.png", "PNG", 50, 20, seed=9))
    listing.write_text(
        "\n".join([*images[:-1], gone, images[-1]]) + "\n", encoding="utf-8"
    )  # the same lines, minus the two per-line rows' lines, plus one URL
    night(listing, out)
    assert_ledger_fits(manifest)  # the two per-line rows superseded: compacted
    assert manifest.stat().st_ino != inode

    inode, before = manifest.stat().st_ino, manifest.read_bytes()
    images.append(image_server.add_image("/i/newer.png", "PNG", 60, 20, seed=10))
    listing.write_text("\n".join([*images[:-2], gone, *images[-2:]]) + "\n", encoding="utf-8")
    night(listing, out)
    assert manifest.stat().st_ino == inode and manifest.read_bytes().startswith(before)
    assert_ledger_fits(manifest)

    # Every stored image checked again: every row superseded, compacted, still equal.
    night(listing, out, "--verify-stored")
    assert len(read_rows(manifest)) == len(images) + 1
    assert_ledger_fits(manifest)

    # A manifest changed behind the master's back: the report reads it whole, and the
    # aggregate saved after that run fits again.
    with open(manifest, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(make_row(url="http://unlisted.test/x.jpg", status="timeout")) + "\n")
    night(listing, out)
    assert_ledger_fits(manifest)
    report = (out / "manifest.report.html").read_text(encoding="utf-8")
    assert "unlisted.test" in report
