"""``--store s3://BUCKET/PREFIX`` against a real S3 API server on loopback.

The server is moto in server mode (``ThreadedMotoServer``, started here on 127.0.0.1);
the master and the workers are real processes that reach it only through the standard
AWS configuration (``AWS_ENDPOINT_URL`` and the credential variables), as a user's
would. Every check reads the objects back through the S3 API (boto3).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import signal
import socket
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from conftest import (
    assert_no_traceback,
    cli_env,
    free_port,
    read_rows,
    run_cli,
    start_cli,
    wait_for_port,
)
from imageserver import Expected, ImageServer, expected_for, make_image
from moto.server import ThreadedMotoServer
from PIL import Image

from crawler import constants as c
from crawler.layout import stored_name
from crawler.s3store import S3_RETRIES, S3_TIMEOUTS, s3_config

# Credentials and settings for the tests without a moto server: fake, and nothing read
# from this machine's own AWS setup.
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_MAX_ATTEMPTS": "2",
}
BUCKET = "harvest"
PREFIX = "nightly"
STORE = f"s3://{BUCKET}/{PREFIX}"
WAIT = 60.0


@pytest.fixture
def s3() -> Iterator[dict[str, str]]:
    """A moto S3 server on loopback with one bucket; yields the AWS environment."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,  # nothing from this machine's own AWS setup
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    # moto keeps its buckets per process, not per server: start from none.
    requests.post(f"{env['AWS_ENDPOINT_URL']}/moto-api/reset", timeout=10)
    client(env).create_bucket(Bucket=BUCKET)
    try:
        yield env
    finally:
        requests.post(f"{env['AWS_ENDPOINT_URL']}/moto-api/reset-auth", data=b"inf", timeout=10)
        server.stop()


def client(env: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )


def objects(env: dict[str, str]) -> dict[str, int]:
    """Every object under the prefix: key -> size."""
    found = {}
    for page in client(env).get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            found[item["Key"]] = item["Size"]
    return found


def images_in(found: dict[str, int]) -> dict[str, int]:
    """``found`` without the start-up checks' probe objects."""
    return {key: size for key, size in found.items() if "/.crawler-probe-" not in key}


def master_args(tmp_path: Path, urls: list[str], port: int, *extra: str) -> list[str]:
    lst = tmp_path / "list.txt"
    lst.write_text("\n".join(urls) + "\n", encoding="utf-8")
    return [
        str(lst), "--bind", "127.0.0.1", "--port", str(port),
        "--output", str(tmp_path / "master"), "--no-progress",
        "--lease-seconds", "5", "--retries", "0", "--store", STORE, *extra,
    ]  # fmt: skip


def worker_args(tmp_path: Path, port: int, host: str) -> list[str]:
    return [
        "--server", "127.0.0.1", "--port", str(port), "--threads", "3",
        "--output", str(tmp_path / host), "--host-id", host, "-q",
    ]  # fmt: skip


def add_images(server: ImageServer, count: int, delay: float = 0.02) -> dict[str, Expected]:
    images = {}
    for i in range(count):
        fmt = ("PNG", "JPEG", "GIF")[i % 3]
        body = make_image(fmt, 64, 40, seed=i)
        url = server.add(f"/s3/{i}.{fmt.lower()}", body, content_type="image/x", delay=delay)
        images[url] = expected_for(body)
    return images


def run_night(
    tmp_path: Path, env: dict[str, str], urls: list[str], *extra: str, hosts: int = 2
) -> None:
    """A master and ``hosts`` worker processes, to the end of the run."""
    port = free_port()
    master = start_cli("master", *master_args(tmp_path, urls, port, *extra), env=cli_env(**env))
    workers: list[subprocess.Popen[str]] = []
    try:
        wait_for_port(master)
        workers = [
            start_cli("worker", *worker_args(tmp_path, port, host), env=cli_env(**env))
            for host in ("host-a", "host-b")[:hosts]
        ]
        out, err = master.communicate(timeout=WAIT)
        assert master.returncode == 0, err
        assert_no_traceback(out, err)
        for worker in workers:
            w_out, w_err = worker.communicate(timeout=WAIT)
            assert worker.returncode == 0, w_err
            assert_no_traceback(w_out, w_err)
    finally:
        for proc in (master, *workers):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_two_workers_store_whole_objects_in_s3(
    tmp_path: Path, s3: dict[str, str], image_server: ImageServer
) -> None:
    # Two at a time, 0.1 s each: the run lasts ~1.5 s, so a worker that starts late on a
    # loaded machine still gets its share (with 16 threads the first did all 30 at once).
    images = add_images(image_server, 30, delay=0.1)
    run_night(tmp_path, s3, list(images), "--per-host", "2")

    rows = {row["url"]: row for row in read_rows(tmp_path / "master" / "manifest.jsonl")}
    s3c = client(s3)
    assert {rows[url]["host"] for url in images} == {"host-a", "host-b"}
    for url, expected in images.items():
        row = rows[url]
        assert (row["status"], row["store"]) == (c.OK, STORE), row
        answer = s3c.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{row['path']}")
        body = answer["Body"].read()
        assert hashlib.sha256(body).hexdigest() == row["sha256"] == expected.sha256
        with Image.open(io.BytesIO(body)) as image:
            image.load()
            assert (image.format, image.size) == (expected.format, (64, 40))
        assert answer["ContentType"] == Image.MIME[expected.format]
    assert set(objects(s3)) == {f"{PREFIX}/{rows[url]['path']}" for url in images}
    assert not list(tmp_path.glob("host-*/**/*.png"))  # nothing on the hosts' own disks
    report = (tmp_path / "master" / "manifest.report.html").read_text(encoding="utf-8")
    assert report.count('<img src="data:image/') == 24  # thumbnails read from the bucket
    assert f"{STORE}: 30" in report

    # The rerun trusts the store: it ends without any worker, nothing fetched.
    hits = sum(image_server.hits(urlsplit(url).path) for url in images)
    run_night(tmp_path, s3, list(images), hosts=0)
    again = {row["url"]: row for row in read_rows(tmp_path / "master" / "manifest.jsonl")}
    assert again == rows
    # --verify-stored=hash: every object read back and hashed by a worker, none fetched.
    run_night(tmp_path, s3, list(images), "--verify-stored=hash")
    checked = read_rows(tmp_path / "master" / "manifest.jsonl")
    assert all(row["reused"] is True and row["status"] == c.OK for row in checked)
    assert sum(image_server.hits(urlsplit(url).path) for url in images) == hits


def noise_png(seed: int, side: int = 600) -> bytes:
    """A PNG of random pixels (~1 MB): long enough to upload that kills land mid-PUT."""
    pixels = random.Random(seed).randbytes(side * side * 3)
    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(buf, format="PNG", compress_level=0)
    return buf.getvalue()


def test_worker_killed_during_uploads_leaves_no_partial_object(
    tmp_path: Path, s3: dict[str, str], image_server: ImageServer
) -> None:
    bodies = {}
    for i in range(24):
        body = noise_png(zlib.crc32(b"kill") + i)
        bodies[image_server.add(f"/big/{i}.png", body, content_type="image/png")] = body
    port = free_port()
    env = cli_env(**s3)
    master = start_cli("master", *master_args(tmp_path, list(bodies), port), env=env)
    procs = [master]
    try:
        wait_for_port(master)
        # SIGKILL workers one after another while they download and upload.
        for round_ in range(4):
            worker = start_cli("worker", *worker_args(tmp_path, port, f"k{round_}"), env=env)
            procs.append(worker)
            deadline = time.monotonic() + WAIT
            while not images_in(objects(s3)) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3 * round_)
            worker.send_signal(signal.SIGKILL)
            worker.communicate(timeout=WAIT)
        finisher = start_cli("worker", *worker_args(tmp_path, port, "finisher"), env=env)
        procs.append(finisher)
        out, err = master.communicate(timeout=WAIT * 2)
        assert master.returncode == 0, err
        assert_no_traceback(out, err)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()

    expected = {f"{PREFIX}/{stored_name(url, 'png')}": body for url, body in bodies.items()}
    found = images_in(objects(s3))  # a worker killed in its start-up check leaves a probe
    assert set(found) <= set(expected), "an object under a name no image has"
    s3c = client(s3)
    for key in found:  # every object under a final key is whole
        body = s3c.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert body == expected[key], f"{key} is not the whole image"
    rows = read_rows(tmp_path / "master" / "manifest.jsonl")
    assert all(row["status"] in (c.OK, c.WORKER_LOST) for row in rows), rows
    for row in rows:
        if row["status"] == c.OK:
            assert f"{PREFIX}/{row['path']}" in found


def test_missing_bucket_stops_the_master_before_any_download(
    tmp_path: Path, s3: dict[str, str], image_server: ImageServer
) -> None:
    images = add_images(image_server, 3)
    args = master_args(tmp_path, list(images), free_port(), "--store", "s3://no-such-bucket/x")
    done = run_cli("master", *args, env=cli_env(**s3))
    assert done.returncode == c.EXIT_ERROR
    assert_no_traceback(done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "s3://no-such-bucket/x" in lines[0] and "no such bucket" in lines[0]
    assert image_server.total_hits() == 0


def test_denied_credentials_stop_the_master_before_any_download(
    tmp_path: Path, s3: dict[str, str], image_server: ImageServer
) -> None:
    images = add_images(image_server, 3)
    # From now on the server checks credentials; "testing" is no key it knows.
    requests.post(f"{s3['AWS_ENDPOINT_URL']}/moto-api/reset-auth", data=b"0", timeout=10)
    done = run_cli("master", *master_args(tmp_path, list(images), free_port()), env=cli_env(**s3))
    assert done.returncode == c.EXIT_ERROR
    assert_no_traceback(done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert STORE in lines[0] and "access denied" in lines[0]
    assert image_server.total_hits() == 0


class Closer:
    """A TCP endpoint on loopback that accepts each connection and closes it at once."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self._sock.accept()
                self.accepted += 1
                conn.close()

    def close(self) -> None:
        self._sock.close()


class NotS3(BaseHTTPRequestHandler):
    """A web server that is not S3: 200 and a page of its own to every request (HTTP/1.1,
    so that it answers the "Expect: 100-continue" of a PUT, as web servers do)."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        page = b"<html>welcome</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(page)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class NotS3OldHTTP(NotS3):
    """The same at HTTP/1.0, as Python's http.server answers by default: it never sends
    the "100 Continue" a PUT with "Expect: 100-continue" waits for, and aiohttp waited
    for it with no timeout (the master hung)."""

    protocol_version = "HTTP/1.0"


@pytest.mark.parametrize("endpoint", ["refused", "closes", "not-s3", "not-s3-http10"])
def test_an_endpoint_that_is_not_a_usable_s3_stops_the_master_before_any_download(
    tmp_path: Path, image_server: ImageServer, endpoint: str
) -> None:
    """A closed port, a peer that closes every connection (with botocore's attempts
    set by the standard AWS_MAX_ATTEMPTS, and no retries of s3fs's own on top), and a
    web server that answers 200 to everything (the probe reads back something else):
    one line, exit 1, no traceback, no download."""
    images = add_images(image_server, 3)
    handler = NotS3OldHTTP if endpoint == "not-s3-http10" else NotS3
    closer, web = Closer(), ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    port = {"refused": free_port(), "closes": closer.port}.get(endpoint, web.server_address[1])
    env = cli_env(**(AWS | {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}))
    try:
        done = run_cli("master", *master_args(tmp_path, list(images), free_port()), env=env)
    finally:
        closer.close()
        web.shutdown()
        web.server_close()
    assert done.returncode == c.EXIT_ERROR, done.stderr
    assert_no_traceback(done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"store {STORE} is unusable" in lines[0], lines[0]
    if endpoint.startswith("not-s3"):
        assert "read back 20 bytes that are not the" in lines[0], lines[0]
    else:
        assert "127.0.0.1" in lines[0], lines[0]
    # Two attempts, each a connection and aiohttp's one more on a closed one: s3fs's
    # own five retries on top made it 25 requests (and 76 s with the default attempts).
    assert closer.accepted <= 2 * int(AWS["AWS_MAX_ATTEMPTS"]), closer.accepted
    assert image_server.total_hits() == 0


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "٣"])
def test_an_aws_max_attempts_botocore_would_refuse_is_one_line(tmp_path: Path, value: str) -> None:
    env = cli_env(**(AWS | {"AWS_MAX_ATTEMPTS": value, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}))
    done = run_cli("master", *master_args(tmp_path, ["http://127.0.0.1:9/a.png"], free_port()),
                   env=env)  # fmt: skip
    assert done.returncode == c.EXIT_ERROR
    assert_no_traceback(done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    expected = f"AWS_MAX_ATTEMPTS={value!r}: botocore needs a whole number of 1 or more"
    assert lines[0].endswith(f"crawler-master: error: {expected}"), lines


def test_botocore_reads_its_own_retry_settings_only_when_the_environment_sets_them() -> None:
    assert s3_config({}) == {"retries": S3_RETRIES, **S3_TIMEOUTS}
    assert s3_config({"AWS_MAX_ATTEMPTS": ""}) == {"retries": S3_RETRIES, **S3_TIMEOUTS}
    assert s3_config({"AWS_MAX_ATTEMPTS": "3"}) == S3_TIMEOUTS
    assert s3_config({"AWS_RETRY_MODE": "adaptive"}) == S3_TIMEOUTS
