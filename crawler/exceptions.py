"""One exception root for the crawler, with subclasses grouped by cause.

Third-party errors (requests, Pillow, OSError, multiprocessing) are converted into
these at one boundary each: ``worker.fetch.fetch`` for the network,
``worker.verify.inspect`` for Pillow, ``stores`` (``FolderStore``, ``s3store.S3Store``) for the
disk and S3, ``worker.channel.Channel`` for the managers. Every error that ends a URL carries the
manifest ``status`` it stands for.
"""

from __future__ import annotations

from collections.abc import Iterator

from crawler import constants as c

MAX_CAUSES = 8  # exceptions followed down a failure's cause chain


def causes(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc``, then what it was raised from or while handling (``__cause__``, else
    ``__context__``: ``raise ... from None`` keeps the context), MAX_CAUSES at most: a
    converted error's original, at any of the boundaries above."""
    for _ in range(MAX_CAUSES):
        if exc is None:
            return
        yield exc
        exc = exc.__cause__ or exc.__context__


class CrawlerError(Exception):
    """Root of every error the crawler raises on purpose."""


# --- Errors that end a run or stop a command: shown as one line at the CLI edge. ---
class UsageError(CrawlerError):
    """Bad input or environment detected before or while starting (a clear one-liner)."""


class ProtocolError(CrawlerError):
    """Talking to the master failed: unreachable, wrong key, or it went away."""


class MasterUnreachable(ProtocolError):
    """No master answered at the address given."""


class AuthenticationFailed(ProtocolError):
    """The master and this worker do not share the same authkey."""


class IncompatibleMaster(ProtocolError):
    """The master runs another crawler version, one speaking another protocol."""


class MasterGone(ProtocolError):
    """An established connection to the master broke."""


class WorkLost(MasterGone):
    """The master went away while the worker held leased work (its rerun redoes it)."""


class JournalError(CrawlerError):
    """The master could not write its own files (manifest, URL spool) during a run: the
    run stops (exit 3); the manifest stays consistent and the next run resumes."""


class ExportError(CrawlerError):
    """An export could not write its output (disk full, read-only): it stops (exit 1);
    what it wrote aside is removed, and ``--out`` holds what it held before."""


class OutputUnusable(CrawlerError):
    """This worker's output folder stopped accepting files (full, read-only, gone): the
    worker takes no more work. Per URL, the same cause is a ``StoreFailure``."""


# --- Errors that end one URL: become a manifest status, never escape a worker. ---
class URLFailure(CrawlerError):
    """A URL could not be turned into a stored image; ``status`` names why."""

    status = c.WORKER_ERROR

    def __init__(
        self, message: str, *, http_status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.retry_after = retry_after  # seconds a 429/503 answer asked us to wait; None: none
        self.attempts: int | None = None  # HTTP requests made before it failed, when known
        self.final_url: str | None = None  # the hop it failed at (a redirect's target...)


class FetchFailure(URLFailure):
    """The download failed."""


class HTTPStatusFailure(FetchFailure):
    status = c.HTTP_ERROR


class TimeoutFailure(FetchFailure):
    status = c.TIMEOUT


class ConnectionFailure(FetchFailure):
    status = c.CONNECTION_ERROR


class PrivateAddress(FetchFailure):
    status = c.PRIVATE_ADDRESS


class RedirectFailure(FetchFailure):
    status = c.REDIRECT_ERROR


class TooLarge(FetchFailure):
    status = c.TOO_LARGE


class Blocked(URLFailure):
    """The site opted out: robots.txt disallows the URL, or X-Robots-Tag forbids its use."""

    status = c.BLOCKED


class VerifyFailure(URLFailure):
    """The bytes arrived but are not an acceptable image."""


class NotImage(VerifyFailure):
    status = c.NOT_IMAGE


class UnsupportedFormat(VerifyFailure):
    status = c.UNSUPPORTED_FORMAT


class Corrupt(VerifyFailure):
    status = c.CORRUPT


class TooManyPixels(VerifyFailure):
    status = c.TOO_MANY_PIXELS


class TooSmall(VerifyFailure):
    status = c.TOO_SMALL


class StoreFailure(URLFailure):
    """The verified image could not be written (status ``disk_error``)."""

    status = c.DISK_ERROR
