"""The S3 store (``--store s3://BUCKET/PREFIX``): S3 or an S3-compatible object store,
through fsspec + s3fs (the ``s3`` extra), with botocore's retries as the only ones.

Credentials, region and endpoint come from the standard AWS configuration (environment,
``AWS_ENDPOINT_URL``, profiles), never from a flag; so do botocore's retry settings when
``AWS_MAX_ATTEMPTS`` or ``AWS_RETRY_MODE`` is set. An object appears only once its
upload (one PUT, or a completed multipart upload) has finished. A failed call raises
``StoreFailure`` (status ``disk_error``) with the reason; a store that is unusable at
start-up raises ``UsageError`` (one line, before any download).
"""

from __future__ import annotations

import importlib
import os
import secrets
import time
from collections.abc import Mapping
from typing import Any

from crawler.exceptions import StoreFailure, UsageError, causes

# fsspec (the s3 extra) is imported by S3Store alone: ~25 ms of imports (asyncio and
# more) that every process would otherwise pay at start-up for a folder store (issue 15).
FSSPEC = "fsspec"

# ``check`` writes, reads back and removes PROBE_NAME-<16 hex digits>: a name of its own,
# as every worker of a run checks the store when it joins, at the same moment as others.
PROBE_NAME = ".crawler-probe"
S3_RETRIES = {"max_attempts": 5, "mode": "standard"}  # botocore: backoff with jitter
# The standard AWS settings of botocore's retries: when the environment sets either,
# botocore's own configuration decides (``s3_config``), as for any AWS tool on the host.
RETRY_SETTINGS = ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")
S3_TIMEOUTS = {"connect_timeout": 10, "read_timeout": 60}  # seconds
# After this many calls in a row got no answer (botocore's retries spent; a 4xx, such as
# a missing key, access denied or an archived object, is an answer), a store is down:
# its calls fail at once for DOWN_FOR seconds, then one is tried again. An export or a
# report over an unreachable store waited out the retries of every image in turn (5 min
# 22 s for 600); then, until 2026-12-01, those of 5 images (a fresh user's: 1-1.5 min
# against an endpoint that refused every connection, and 5 x 377 s against one that
# never answered). One call's 5 attempts unanswered is the sign: a worker stops at its
# first disk_error anyway, and an export with one store_error keeps the earlier export
# all the same.
# No call waits longer than this, whatever botocore and aiohttp do (seconds; fsspec's
# own bound, its FSTimeoutError): 5 attempts of S3_TIMEOUTS and their backoff fit in it.
CALL_LIMIT = 600
DOWN_AFTER = 1
DOWN_FOR = 30.0
# Error codes of S3 and S3-compatible stores that ask the client to slow down.
THROTTLING_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}
)
CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "ico": "image/vnd.microsoft.icon",
    "avif": "image/avif",
}


class S3Store:
    """A bucket (and key prefix) of S3 or an S3-compatible service, through s3fs."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.where = spec
        self._base = spec.removeprefix("s3://")
        self._unanswered = 0  # calls in a row that got no answer (see DOWN_AFTER)
        self._down: tuple[float, str] = (0.0, "")  # until when, and why
        # Seconds this store may still spend in calls that get no answer, in all (None:
        # CALL_LIMIT each, no total): the report's thumbnails, which must not hold a
        # run's end (``thumbnails.StoreReader``). Answered calls cost none of it.
        self.patience: float | None = None
        self._fs = _filesystem(spec)

    @property
    def unreachable(self) -> bool:
        """Taken for down now, or out of patience: its calls fail without being tried."""
        out_of_patience = self.patience is not None and self.patience <= 0
        return out_of_patience or time.monotonic() < self._down[0]

    def _key(self, relative: str) -> str:
        return f"{self._base}/{relative}"

    def put(self, relative: str, body: bytes) -> None:
        """Upload ``body`` under ``PREFIX/relative`` with its Content-Type; the object
        appears only once whole. Raises StoreFailure (after botocore's retries)."""
        content_type = CONTENT_TYPES.get(relative.rsplit(".", 1)[-1], "application/octet-stream")
        self._call("write", relative, self._fs.pipe_file, body, ContentType=content_type)

    def size(self, relative: str) -> int | None:
        """Bytes of the stored object, or None when there is none; raises StoreFailure."""
        try:
            info = self._call("read", relative, self._fs.info)
        except StoreFailure as failure:
            if isinstance(failure.__cause__, FileNotFoundError):
                return None
            raise
        if info.get("type") == "directory":  # keys under it, no object: s3fs says size 0
            return None
        return int(info["size"])

    def read(self, relative: str) -> bytes:
        """The stored bytes; raises StoreFailure (also when absent)."""
        return self._call("read", relative, self._fs.cat_file)

    def check(self) -> None:
        """Write, read back and remove a probe object; UsageError (one line) when that
        fails, or when what comes back is not what was written: an endpoint that is not
        S3 (any web server answering 200) would otherwise take every image and keep none."""
        token = secrets.token_hex(8)
        name, probe = f"{PROBE_NAME}-{token}", f"crawler probe {token}".encode()
        try:
            self.put(name, probe)
            back = self.read(name)
            self._call("remove", name, self._fs.rm_file)
        except StoreFailure as failure:
            raise UsageError(f"store {self.spec} is unusable: {failure}") from None
        if back != probe:
            raise UsageError(
                f"store {self.spec} is unusable: s3://{self._key(name)} read back "
                f"{len(back)} bytes that are not the {len(probe)} written (is the endpoint S3?)"
            )

    def _call(self, verb: str, relative: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        key = self._key(relative)
        until, why = self._down
        if time.monotonic() < until:
            raise StoreFailure(f"cannot {verb} s3://{key}: not tried, the store is down ({why})")
        limit = CALL_LIMIT if self.patience is None else min(CALL_LIMIT, self.patience)
        if limit <= 0:
            raise StoreFailure(f"cannot {verb} s3://{key}: not tried, out of patience")
        started = time.monotonic()
        try:
            result = fn(key, *args, timeout=limit, **kwargs)
        except Exception as exc:  # s3fs raises OSError subclasses, botocore its own tree
            reason = _reason(exc, verb, limit)
            if _answered(exc):  # a missing key, access denied, an archived object
                self._unanswered = 0
            else:
                self._unanswered += 1
                if self.patience is not None:
                    self.patience -= time.monotonic() - started
            if self._unanswered >= DOWN_AFTER:
                self._down = (time.monotonic() + DOWN_FOR, f"a call got no answer: {reason}")
            raise StoreFailure(f"cannot {verb} s3://{key}: {reason}") from exc
        self._unanswered = 0
        return result


def _filesystem(spec: str) -> Any:
    """s3fs's filesystem for the store ``spec``. Raises UsageError without the s3 extra,
    or for an AWS_MAX_ATTEMPTS botocore would refuse."""
    config = s3_config(os.environ)
    try:  # deferred: see FSSPEC
        fsspec = importlib.import_module(FSSPEC)
        session = importlib.import_module("aiobotocore.session").AioSession()
        # No "Expect: 100-continue": aiohttp waits for the 100 with no timeout at all,
        # so an endpoint that never sent one (an HTTP/1.0 server, one that never
        # answers) held the start-up check, or an upload, for ever.
        session.register("before-sign.s3", _no_expect)
        # Listings are not cached: another host may have stored an image since.
        fs = fsspec.filesystem(
            "s3",
            session=session,
            config_kwargs=config,
            use_listings_cache=False,
            skip_instance_cache=True,
        )
    except ImportError:  # pragma: no cover - exercised on hosts without the extra
        raise UsageError(
            f"store {spec} needs the s3 extra: pip install '.[s3]' in the crawler's checkout"
        ) from None
    # botocore's retries are the only ones: s3fs's own (its ``retries``, 5, a class
    # attribute) wrapped them, 25 requests and 76 s for one write to an endpoint that
    # closed every connection, against the 5 attempts the README promises.
    fs.retries = 1
    # aiohttp leaves a task failed behind a connection the endpoint closed, and asyncio
    # logs each one with its traceback when it is collected ("Task exception was never
    # retrieved"): the call itself raised already, and its error is the store's line.
    fs.loop.call_soon_threadsafe(fs.loop.set_exception_handler, _unretrieved)
    return fs


def _no_expect(request: Any, **kwargs: Any) -> None:
    """botocore's before-sign hook: the request without an Expect header."""
    if "Expect" in request.headers:
        del request.headers["Expect"]


def _unretrieved(loop: Any, context: dict[str, Any]) -> None:
    """fsspec's event loop's exception handler: nothing to say (see S3Store)."""


def s3_config(environ: Mapping[str, str]) -> dict[str, Any]:
    """botocore's client settings: S3_TIMEOUTS, and S3_RETRIES unless ``environ`` sets
    AWS_MAX_ATTEMPTS or AWS_RETRY_MODE (then botocore reads those, and ``~/.aws/config``;
    a retry mode it refuses fails the store's first call, as with the AWS CLI). Raises
    UsageError for an AWS_MAX_ATTEMPTS that is not a whole number of 1 or more."""
    attempts = environ.get("AWS_MAX_ATTEMPTS", "")
    if attempts and not (attempts.isascii() and attempts.isdigit() and int(attempts) >= 1):
        raise UsageError(
            f"AWS_MAX_ATTEMPTS={attempts!r}: botocore needs a whole number of 1 or more"
        )
    if any(environ.get(name) for name in RETRY_SETTINGS):
        return dict(S3_TIMEOUTS)
    return {"retries": S3_RETRIES, **S3_TIMEOUTS}


def _answered(exc: BaseException) -> bool:
    """Did S3 answer the failed call, with a 4xx (no such key, access denied, an object
    archived to Glacier), rather than not at all (no connection, no answer in time) or
    with trouble (5xx after botocore's retries)? Only the latter take the store down: a
    review found one archived object, answered 403, taking 17 of 20 exports with it."""
    if isinstance(exc, (FileNotFoundError, PermissionError)):
        return True
    response = _s3_answer(exc)
    if response is None:
        return False
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    # A 429, or a throttling code, is the store in trouble as a 503 is (a review: a
    # throttled report paid every thumbnail's retries, 3 minutes for 96).
    throttled = status == 429 or response.get("Error", {}).get("Code") in THROTTLING_CODES
    return isinstance(status, int) and 400 <= status < 500 and not throttled


def _s3_answer(exc: BaseException) -> dict[str, Any] | None:
    """The S3 error answer behind ``exc`` (botocore's ClientError ``response``: its
    ``Error.Code`` and ``ResponseMetadata.HTTPStatusCode``), down its cause chain: s3fs
    raises its own exceptions from botocore's; None when no answer came."""
    for seen in causes(exc):
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            return response
    return None


def _reason(exc: Exception, verb: str, limit: float) -> str:
    """One line for a store error: missing bucket, denied, unreachable, throttled."""
    if isinstance(exc, FileNotFoundError):
        return "no such bucket" if verb == "write" else "no such bucket or key"
    if type(exc).__name__ == "FSTimeoutError":  # fsspec's, not imported here (FSSPEC)
        return f"no answer within {limit:.3g} s"
    if isinstance(exc, PermissionError):
        if (_s3_answer(exc) or {}).get("Error", {}).get("Code") == "InvalidObjectState":
            return "the object is archived (InvalidObjectState: restore it to read it)"
        return "access denied (check the AWS credentials and the bucket's policy)"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
