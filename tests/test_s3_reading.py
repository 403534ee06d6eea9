"""Reading an S3 store after the run: thumbnails within a budget, objects and "folders",
a host without the s3 extra. Real s3fs against moto's server or a silent socket server,
all on loopback (fresh user's reports of 2026-12-01).
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import cli_env, free_port, run_cli
from imageserver import make_image
from test_s3 import BUCKET, STORE, client, s3

from crawler.manifest import make_row
from crawler.report.thumbnails import StoreReader
from crawler.s3store import S3Store, _answered

__all__ = ["s3"]  # the moto fixture, shared with test_s3

DIGEST = "ab" * 32
ROW = {"store": STORE, "path": f"ab/ab/{DIGEST}.jpg", "sha256": DIGEST}


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An "S3 endpoint" that takes connections and never answers (a hung proxy)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in [*held, listener]:
        conn.close()


def aws_env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)


def test_thumbnails_from_a_store_that_never_answers_end_within_the_budget(
    silent_endpoint: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Until 2026-12-01 each call waited out botocore's 5 read timeouts (377 s), and a
    report (or the end of a run) sat 19 minutes without a word."""
    aws_env(monkeypatch, silent_endpoint)
    reader, made = StoreReader(None, budget=2.0), []
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="crawler"):
        thread = threading.Thread(target=lambda: made.extend(reader.thumbnail(ROW) for _ in "ab"))
        thread.start()
        thread.join(timeout=60)
    assert not thread.is_alive(), "a thumbnail call outlived its budget by a minute"
    assert made == [None, None]
    assert time.monotonic() - started < 30
    said = [r.getMessage() for r in caplog.records if "thumbnails from" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"report: thumbnails from {STORE} may be missing")
    assert said[0].endswith("no answer within 2 s"), said


def test_keys_under_an_images_name_are_no_image(
    s3: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A "folder" (keys under the name) where an image was: no object there (an export's
    ``missing``, as a folder store says), not s3fs's directory of size 0 (``store_error``,
    and the earlier export kept for a store that was fine, until 2026-12-01)."""
    aws_env(monkeypatch, s3["AWS_ENDPOINT_URL"])
    key = f"{STORE.removeprefix(f's3://{BUCKET}/')}/{ROW['path']}"
    client(s3).put_object(Bucket=BUCKET, Key=f"{key}/note.txt", Body=b"not an image")
    client(s3).put_object(Bucket=BUCKET, Key=f"{key}.png", Body=b"an image")
    store = S3Store(STORE)
    assert store.size(ROW["path"]) is None
    assert store.size(ROW["path"].replace(".jpg", ".jpg.png")) == len(b"an image")


def test_an_export_on_a_host_without_the_s3_extra_is_one_line(tmp_path: Path) -> None:
    """As for a missing pyarrow: exit 1, one line, nothing written (until 2026-12-01 each
    row was a store_error, exit 3, the same line in every row). A host without the extra
    is made by a folder on PYTHONPATH whose ``fsspec`` cannot be imported."""
    shadow = tmp_path / "shadow" / "fsspec"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no fsspec on this host')\n")
    manifest = tmp_path / "m.jsonl"
    row = make_row(url="http://127.0.0.1:9/a.jpg", status="ok", run_id="r", path=ROW["path"],
                   sha256=DIGEST, store=STORE)  # fmt: skip
    manifest.write_text(json.dumps(row) + "\n", encoding="utf-8")
    out = tmp_path / "wds"
    env = cli_env(PYTHONPATH=str(shadow.parent))
    args = ("--format", "webdataset", "--out", str(out), "--no-progress")
    result = run_cli("export", str(manifest), *args, env=env)
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs the s3 extra" in lines[0], result.stderr
    assert not out.exists() or not any(out.iterdir())


def s3_manifest(env: dict[str, str], root: Path, count: int, archived: int = -1) -> Path:
    """``count`` PNGs put under the prefix (the ``archived``-th as GLACIER, which S3 then
    refuses to read: 403 InvalidObjectState), and a manifest of ``ok`` rows naming them."""
    rows = []
    for i in range(count):
        body = make_image("PNG", 8, 8, seed=i)
        digest = hashlib.sha256(body).hexdigest()
        relative = f"{digest[:2]}/{digest[2:4]}/{digest}.png"
        extra = {"StorageClass": "GLACIER"} if i == archived else {}
        key = f"{STORE.removeprefix(f's3://{BUCKET}/')}/{relative}"
        client(env).put_object(Bucket=BUCKET, Key=key, Body=body, **extra)
        url = f"http://127.0.0.1:9/{i}.png"
        row = make_row(url=url, status="ok", run_id="r", path=relative, sha256=digest)
        rows.append({**row, "store": STORE, "bytes": len(body)})
    manifest = root / "m.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return manifest


def export_summary(manifest: Path, out: Path, env: dict[str, str]) -> tuple[int, dict]:
    args = ("--format", "files", "--out", str(out), "--no-progress")
    result = run_cli("export", str(manifest), *args, env=cli_env(**env))
    return result.returncode, json.loads((out / "export.summary.json").read_text())


def test_an_archived_object_is_its_rows_store_error_alone(
    s3: dict[str, str], tmp_path: Path
) -> None:
    """S3 answers its read (403): the store answers, it is not down. Until a review of
    2026-12-01 such a call took the store down for 30 s: 17 of 20 rows not tried."""
    manifest = s3_manifest(s3, tmp_path, 20, archived=3)
    code, summary = export_summary(manifest, tmp_path / "out", s3)
    assert code == 3
    assert summary["statuses"]["exported"] == 19 and summary["statuses"]["store_error"] == 1


def test_an_export_from_an_endpoint_that_refuses_connections_ends_soon(
    s3: dict[str, str], tmp_path: Path
) -> None:
    """The first call without an answer takes the store down: the other rows are
    ``store_error`` at once, not each after botocore's attempts (5 min 22 s for 600
    images before a first fix, 1-1.5 min for 200 until 2026-12-01: five such calls)."""
    manifest = s3_manifest(s3, tmp_path, 12)
    closed = {**s3, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_MAX_ATTEMPTS": "2"}
    code, summary = export_summary(manifest, tmp_path / "out", closed)
    assert code == 3 and summary["statuses"]["store_error"] == 12, summary
    reasons = [e["reason"] for e in summary["examples"]["store_error"]]
    assert sum("not tried, the store is down" in r for r in reasons) == len(reasons) - 1, reasons


def test_an_export_from_a_store_that_denies_every_call_says_so(
    s3: dict[str, str], tmp_path: Path
) -> None:
    """Denied (moto enforcing credentials it does not know): every row a store_error
    saying why, each answered at once."""
    manifest = s3_manifest(s3, tmp_path, 6)
    requests.post(f"{s3['AWS_ENDPOINT_URL']}/moto-api/reset-auth", data=b"0", timeout=10)
    code, summary = export_summary(manifest, tmp_path / "out", s3)
    assert code == 3 and summary["statuses"]["store_error"] == 6, summary
    assert all("access denied" in e["reason"] for e in summary["examples"]["store_error"])


def client_error(status: int, code: str) -> Exception:
    """What s3fs raises for an S3 error answer: an OSError from botocore's ClientError."""
    answer = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    wrapped = OSError(5, code)
    wrapped.__cause__ = ClientError(answer, "GetObject")
    return wrapped


@pytest.mark.parametrize(
    ("status", "code", "answered"),
    [
        (403, "AccessDenied", True),
        (403, "InvalidObjectState", True),  # archived: that object's trouble alone
        (400, "RequestTimeout", True),
        (429, "TooManyRequests", False),  # throttled: the store in trouble (a review's)
        (400, "Throttling", False),
        (503, "SlowDown", False),
        (500, "InternalError", False),
    ],
)
def test_which_failures_are_answers(status: int, code: str, answered: bool) -> None:
    """Only calls without an answer, or with the store in trouble, take it down."""
    assert _answered(client_error(status, code)) is answered
