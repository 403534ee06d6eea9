"""Downloading one URL with requests: timeouts, retries, a size cap and a deadline.

``fetch`` is the one place where requests' and urllib3's exceptions are turned into
the crawler's own (``exceptions.FetchFailure`` and subclasses), each carrying the
manifest status it stands for. Nothing the server says is trusted: Content-Length is
only used to refuse early, never to size a buffer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from crawler.config import Policy
from crawler.exceptions import (
    ConnectionFailure,
    HTTPStatusFailure,
    RedirectFailure,
    TimeoutFailure,
    TooLarge,
)

CHUNK = 64 * 1024
TRANSIENT_STATUSES = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class Download:
    body: bytes  # empty for a 304 answer to a conditional request
    http_status: int
    final_url: str
    content_type: str | None
    attempts: int
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.http_status == 304


class CappedRetry(Retry):
    """urllib3's Retry, with a server's Retry-After capped so it cannot park a thread for hours."""

    RETRY_AFTER_CAP = 30.0

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), self.RETRY_AFTER_CAP)


def make_session(policy: Policy) -> requests.Session:
    """A session for one download thread: pooled connections, transient failures retried."""
    retry = CappedRetry(
        total=policy.retries,
        connect=policy.retries,
        read=policy.retries,
        status=policy.retries,
        other=0,
        redirect=False,  # requests follows redirects itself, counting them against max_redirects
        allowed_methods=frozenset({"GET"}),
        status_forcelist=TRANSIENT_STATUSES,
        backoff_factor=policy.backoff,
        backoff_jitter=policy.backoff,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer is reported as http_error with its status
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=16, pool_maxsize=4)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.max_redirects = policy.max_redirects
    session.trust_env = False  # no netrc credentials or proxies picked up from the environment
    session.headers["User-Agent"] = policy.user_agent
    session.headers["Accept"] = "image/*,*/*;q=0.5"
    return session


def conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    """Headers that let a server answer 304 for an image we already hold."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def fetch(
    session: requests.Session, url: str, policy: Policy, headers: dict[str, str] | None = None
) -> Download:
    """Download ``url`` into memory, or raise a FetchFailure naming the status.

    With conditional ``headers``, a 304 answer is a ``Download`` with an empty body.
    """
    start = time.monotonic()
    try:
        with session.get(
            url,
            stream=True,
            timeout=(policy.connect_timeout, policy.read_timeout),
            headers=headers,
        ) as resp:
            attempts = _attempts(resp)
            if resp.status_code == 304 and headers:
                body = b""
            elif 200 <= resp.status_code < 300:
                body = _read_capped(resp, policy, start)
            else:
                raise HTTPStatusFailure(
                    f"HTTP {resp.status_code} {resp.reason or ''}".strip(),
                    http_status=resp.status_code,
                )
            return Download(
                body,
                resp.status_code,
                resp.url,
                _header(resp, "Content-Type"),
                attempts,
                _header(resp, "ETag"),
                _header(resp, "Last-Modified"),
            )
    except requests.exceptions.TooManyRedirects:
        raise RedirectFailure(f"more than {policy.max_redirects} redirects") from None
    except requests.exceptions.InvalidSchema:
        raise RedirectFailure("redirected to a URL that is not http or https") from None
    except requests.exceptions.Timeout as exc:
        raise TimeoutFailure(_reason(exc, "timed out")) from None
    except requests.exceptions.ConnectionError as exc:
        if exc.args and isinstance(exc.args[0], ReadTimeoutError):
            raise TimeoutFailure("read timed out") from None
        raise ConnectionFailure(_reason(exc, "connection failed")) from None
    except requests.exceptions.ChunkedEncodingError:
        raise ConnectionFailure("connection broken: body shorter than announced") from None
    except requests.exceptions.ContentDecodingError:
        raise ConnectionFailure("body could not be decoded (bad Content-Encoding)") from None
    except requests.exceptions.RequestException as exc:
        raise ConnectionFailure(_reason(exc, type(exc).__name__)) from None


def _read_capped(resp: requests.Response, policy: Policy, start: float) -> bytes:
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise TooLarge(f"Content-Length {declared} exceeds max_bytes {policy.max_bytes}")
    body = bytearray()
    for chunk in resp.iter_content(CHUNK):
        body += chunk
        if len(body) > policy.max_bytes:
            raise TooLarge(f"body exceeds max_bytes {policy.max_bytes}")
        if time.monotonic() - start > policy.deadline:
            raise TimeoutFailure(f"deadline of {policy.deadline:g} s exceeded while reading")
    return bytes(body)


def _header(resp: requests.Response, name: str) -> str | None:
    """A header value fit to be recorded and sent back later: short, printable ASCII."""
    value = resp.headers.get(name)
    if not value or len(value) > 256 or not value.isascii() or not value.isprintable():
        return None
    return value


def _attempts(resp: requests.Response) -> int:
    """Requests made for this URL: one per redirect hop, plus urllib3's retries."""
    hops = [*resp.history, resp]
    retries = sum(len(getattr(getattr(r.raw, "retries", None), "history", ()) or ()) for r in hops)
    return 1 + retries


def _reason(exc: Exception, default: str) -> str:
    """A short reason from a requests exception, without the pool/object noise."""
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", None) or inner or exc
    text = str(reason)
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "host name could not be resolved"
    if "Connection refused" in text:
        return "connection refused"
    return text[:300] if text else default
