"""A manifest written before issue 11 (URLs parsed by the WHATWG rules) still resumes.

Stored file names derive from the normalised URL, so a changed normalisation must not
rename what earlier runs stored. The rows below are what the crawler wrote before the
change, for list lines written in many spellings (upper-case scheme and host, IRIs,
spaces, a fragment, ``|`` and ``^``, an empty query, percent escapes): their ``url`` is
the old normal form, taken from the old ``normalize_url`` and kept here as text. A rerun
of the same list with the current code must reuse every ok row without a request.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from conftest import assert_no_traceback, read_rows, run_cli
from imageserver import ImageServer, make_image

from crawler.layout import stored_name
from crawler.manifest import make_row
from crawler.urls import normalize_url

# list line -> the url the crawler wrote for it before issue 11 ({port}: the server's)
BEFORE = {
    "http://127.0.0.1:{port}/plain/a.png": "http://127.0.0.1:{port}/plain/a.png",
    "HTTP://LOCALHOST:{port}/Upper/B.png": "http://localhost:{port}/Upper/B.png",
    "http://localhost:{port}/café/ü ber.png": "http://localhost:{port}/caf%C3%A9/%C3%BC%20ber.png",
    "http://localhost:{port}/q.png?x=1 2&y='z'": "http://localhost:{port}/q.png?x=1%202&y='z'",
    "http://Localhost:{port}/frag.png#top": "http://localhost:{port}/frag.png",
    "http://localhost:{port}/pipe|caret^.png": "http://localhost:{port}/pipe%7Ccaret%5E.png",
    "http://localhost:{port}/enc%20oded.png?a=%2F": "http://localhost:{port}/enc%20oded.png?a=%2F",
    "http://localhost:{port}/.well-known/c.png": "http://localhost:{port}/.well-known/c.png",
    "http://127.0.0.1:{port}/empty-query.png?": "http://127.0.0.1:{port}/empty-query.png",
    "http://localhost:{port}/sq[1].png": "http://localhost:{port}/sq[1].png",
}


def test_a_manifest_from_before_resumes_with_every_ok_row_reused(
    tmp_path: Path, image_server: ImageServer
) -> None:
    port = image_server.base_url.rpartition(":")[2]
    lines = [line.replace("{port}", port) for line in BEFORE]
    urls = [url.replace("{port}", port) for url in BEFORE.values()]
    assert [normalize_url(line) for line in lines] == urls  # the normal forms did not move
    listing, out = tmp_path / "list.txt", tmp_path / "out"
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest = tmp_path / "manifest.jsonl"
    rows = []
    for number, url in enumerate(urls, start=1):
        body = make_image("PNG", 20 + number, 20, seed=70 + number)
        path = stored_name(url, "png")
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(body)
        row = make_row(
            url=url,
            status="ok",
            http_status=200,
            path=path,
            bytes=len(body),
            sha256=hashlib.sha256(body).hexdigest(),
            width=20 + number,
            height=20,
            format="PNG",
            worker="old:1",
            attempts=1,
            leases=1,
            final_url=url,
            content_type="image/png",
            fetched_at="2026-11-01T00:00:00+00:00",
            source=f"{listing}:{number}",
            run_id="0123456789ab",
            finished_at="2026-11-01T00:00:00+00:00",
        )
        rows.append(row)
    manifest.write_text("".join(f"{json.dumps(r)}\n" for r in rows), "utf-8")
    result = run_cli(
        "master", str(listing), "--bind", "127.0.0.1", "--port", "0", "--local-workers", "1",
        "--output", str(out), "--manifest", str(manifest), "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    after = read_rows(manifest)
    assert [row["url"] for row in after] == urls
    for before, row in zip(rows, after, strict=True):
        assert (row["status"], row["reused"], row["attempts"]) == ("ok", True, 0), row
        assert row["path"] == before["path"] and row["sha256"] == before["sha256"], row
    assert image_server.total_hits() == 0  # nothing was downloaded again
