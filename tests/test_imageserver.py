"""Tests for the loopback test image server itself."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
import requests
from imageserver import ImageServer, make_image, standard_routes
from PIL import Image, UnidentifiedImageError

IMAGE_ROUTES = [
    "jpeg",
    "jpeg_small",
    "png",
    "webp",
    "gif",
    "gif_animated",
    "webp_animated",
]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ImageServer, dict[str, str]]]:
    with ImageServer() as server:
        yield server, standard_routes(server)


@pytest.fixture
def server() -> Iterator[ImageServer]:
    with ImageServer() as srv:
        yield srv


def test_binds_loopback(served: tuple[ImageServer, dict[str, str]]) -> None:
    server, urls = served
    assert server.base_url.startswith("http://127.0.0.1:")
    assert all(url.startswith(server.base_url + "/") for url in urls.values())
    assert set(server.expected) == {urls[name] for name in IMAGE_ROUTES}


@pytest.mark.parametrize("name", IMAGE_ROUTES)
def test_image_routes_match_expected(served: tuple[ImageServer, dict[str, str]], name: str) -> None:
    server, urls = served
    exp = server.expected[urls[name]]
    resp = requests.get(urls[name], timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Content-Length"] == str(len(exp.body))
    assert resp.headers["Content-Type"] == f"image/{exp.format.lower()}"
    assert resp.content == exp.body
    assert hashlib.sha256(resp.content).hexdigest() == exp.sha256
    with Image.open(io.BytesIO(resp.content)) as img:
        img.load()
        assert (img.format, img.width, img.height) == (
            exp.format,
            exp.width,
            exp.height,
        )
        assert getattr(img, "n_frames", 1) == (3 if "animated" in name else 1)


def test_standard_sizes(served: tuple[ImageServer, dict[str, str]]) -> None:
    server, urls = served
    sizes = {
        n: (server.expected[urls[n]].width, server.expected[urls[n]].height) for n in IMAGE_ROUTES
    }
    assert sizes["jpeg"] == (640, 480)
    assert sizes["jpeg_small"] == (64, 64)
    assert sizes["png"] == (300, 200)
    assert sizes["webp"] == (320, 240)
    assert sizes["gif"] == (100, 80)
    with Image.open(io.BytesIO(server.expected[urls["png"]].body)) as img:
        assert img.mode == "RGBA"


def test_head_sends_length_without_body(
    served: tuple[ImageServer, dict[str, str]],
) -> None:
    server, urls = served
    resp = requests.head(urls["jpeg"], timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Content-Length"] == str(len(server.expected[urls["jpeg"]].body))
    assert resp.content == b""


def test_not_found(served: tuple[ImageServer, dict[str, str]]) -> None:
    _, urls = served
    resp = requests.get(urls["not_found"], timeout=5)
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith("text/html")
    assert b"404" in resp.content


def test_redirect_followed(served: tuple[ImageServer, dict[str, str]]) -> None:
    server, urls = served
    resp = requests.get(urls["redirect"], timeout=5)
    assert [r.status_code for r in resp.history] == [302]
    assert resp.url == urls["png"]
    assert resp.content == server.expected[urls["png"]].body
    raw = requests.get(urls["redirect"], timeout=5, allow_redirects=False)
    assert raw.status_code == 302
    assert raw.headers["Location"] == urls["png"]


def test_truncated_jpeg_fails_load(served: tuple[ImageServer, dict[str, str]]) -> None:
    _, urls = served
    resp = requests.get(urls["truncated_jpeg"], timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.headers["Content-Length"] == str(len(resp.content))
    full = make_image("JPEG", 800, 600, seed=8)
    assert full.startswith(resp.content)
    assert len(resp.content) == int(len(full) * 0.6)
    img = Image.open(io.BytesIO(resp.content))  # header parses fine
    assert (img.format, img.size) == ("JPEG", (800, 600))
    with pytest.raises(OSError, match="image file is truncated"):
        img.load()


def test_bogus_bodies(served: tuple[ImageServer, dict[str, str]]) -> None:
    _, urls = served
    html = requests.get(urls["html_as_jpg"], timeout=5)
    assert (html.status_code, html.headers["Content-Type"]) == (200, "image/jpeg")
    assert html.content.startswith(b"<!DOCTYPE html>")
    empty = requests.get(urls["empty"], timeout=5)
    assert (empty.status_code, empty.headers["Content-Type"]) == (200, "image/png")
    assert empty.content == b"" and empty.headers["Content-Length"] == "0"
    text = requests.get(urls["text"], timeout=5)
    assert (text.status_code, text.headers["Content-Type"]) == (200, "text/plain")
    for resp in (html, text):
        with pytest.raises(UnidentifiedImageError):
            Image.open(io.BytesIO(resp.content))


def test_make_image_deterministic() -> None:
    assert make_image("JPEG", 50, 40, seed=3) == make_image("JPEG", 50, 40, seed=3)
    assert make_image("JPEG", 50, 40, seed=3) != make_image("JPEG", 50, 40, seed=4)
    with pytest.raises(ValueError):
        make_image("JPEG", 10, 10, frames=2)


def test_hits_counting(server: ImageServer) -> None:
    url = server.add_image("/a.png", "PNG", 10, 10)
    assert server.hits("/a.png") == 0
    requests.get(url, timeout=5)
    requests.get(url + "?v=2", timeout=5)
    requests.head(url, timeout=5)  # HEAD is not a download
    requests.get(server.url("/nope"), timeout=5)
    assert server.hits("/a.png") == 2
    assert server.hits("a.png") == 2
    assert server.hits("/nope") == 1
    assert server.total_hits() == 3
    server.reset_stats()
    assert server.total_hits() == 0


def test_max_concurrent_with_delay(server: ImageServer) -> None:
    delay, n = 0.4, 4
    url = server.add("/slow.bin", b"x" * 100, delay=delay)
    results: list[int] = []

    def fetch() -> None:
        results.append(requests.get(url, timeout=5).status_code)

    threads = [threading.Thread(target=fetch) for _ in range(n)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    assert results == [200] * n
    assert delay <= elapsed < delay * n
    assert server.max_concurrent == n
    assert server.hits("/slow.bin") == n


def test_add_handler(server: ImageServer) -> None:
    def teapot(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(418)
        handler.send_header("Content-Length", "5")
        handler.end_headers()
        handler.wfile.write(b"short")

    url = server.add_handler("/teapot", teapot)
    resp = requests.get(url, timeout=5)
    assert (resp.status_code, resp.content) == (418, b"short")
    assert server.hits("/teapot") == 1
