"""The value types of every command's flags: each number within a documented range, no
empty path or name, a user agent that is a valid HTTP header value.

Until 2026-12-01 a number had a lower bound only, and a huge one reached the library
that could not take it: ``--refresh-after 1e9`` (``timedelta``), ``--listen-backlog
2147483648`` (``listen``), ``--connect-timeout 1e10`` (a socket's timeout) were each a
traceback, and ``--deadline 1e10`` killed every worker's deadline watchdog. An empty
value (a script's unset variable) was taken as a path or a name: ``--output ""`` meant
the current folder, ``--authkey-file ""`` a new key. Both are now usage errors (exit 2,
one line).
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from pathlib import Path

from crawler import constants as c

MAX_SECONDS = 30 * 86400  # 2,592,000: any timeout, delay, deadline or interval
MAX_DAYS = 36500  # --refresh-after: a hundred years


@dataclass(frozen=True)
class Number:
    """An argparse type: an ``int`` or a finite ``float`` from ``low`` (excluded when
    ``above``) to ``high``. Raises argparse.ArgumentTypeError, or ValueError for text
    that is no number (argparse: "invalid int value")."""

    kind: type[int] | type[float]
    low: int
    high: int
    above: bool = False  # the value must be more than low, not equal to it

    @property
    def __name__(self) -> str:  # what argparse calls the type in its messages
        return self.kind.__name__

    def __call__(self, text: str) -> int | float:
        value = self.kind(text)
        if not math.isfinite(value):  # inf, nan, 1e999: a wait that never ends
            raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
        if self.above and not value > self.low:
            raise argparse.ArgumentTypeError(f"must be more than {self.low}, not {text}")
        if value < self.low:
            least = "0 or more" if self.low == 0 else f"at least {self.low}"
            raise argparse.ArgumentTypeError(f"must be {least}, not {text}")
        if value > self.high:
            raise argparse.ArgumentTypeError(f"must be at most {self.high}, not {text}")
        return value


SECONDS = Number(float, 0, MAX_SECONDS, above=True)  # a timeout or an interval
SECONDS_OR_NONE = Number(float, 0, MAX_SECONDS)  # a delay or a wait; 0: none (or forever)
# --lease-seconds: workers renew their leases every quarter lease, one call to the master
# each; under a second (0.001 was taken) the leases ran out before any renewal came back,
# and every URL was fetched again and again, then worker_lost (a fresh user's, 2026-12-03).
LEASE = Number(float, 1, MAX_SECONDS)
DAYS = Number(float, 0, MAX_DAYS, above=True)
SHARE = Number(float, 0, 1)  # --max-failure-rate: a share of the URLs tried
BYTES = Number(int, 1, 1 << 40)  # --max-bytes: 1 TiB
PIXELS = Number(int, 1, 1 << 40)  # --max-pixels
SIDE = Number(int, 0, 1_000_000)  # --min-width, --min-height (px)
RETRIES = Number(int, 0, 100)  # urllib3's backoff doubles per retry
REDIRECTS = Number(int, 0, 100)
ATTEMPTS = Number(int, 1, 1000)  # --max-attempts, --give-up-after
PER_HOST = Number(int, 0, 1_000_000)
LOCAL_WORKERS = Number(int, 0, c.MAX_PROCESSES)  # processes on this machine
PROCESSES = Number(int, 1, c.MAX_PROCESSES)  # a worker and its copies (--processes)
BACKLOG = Number(int, 1, 65535)  # the kernel caps it lower (net.core.somaxconn)
SHARD_SIZE = Number(int, 1, 1_000_000)  # crawler-export
RESIZE = Number(int, 1, 65535)  # crawler-export: the largest side JPEG allows


def nonempty(text: str) -> str:
    """A name or address that may not be empty (nor blank): ``"$VAR"`` with the variable
    unset would otherwise mean something else, in silence."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty (an unset variable?): give a value or leave it out")
    return text


def nonempty_path(text: str) -> Path:
    """A path that may not be empty: ``Path("")`` is the current folder."""
    return Path(nonempty(text))


# RFC 9110 field-value: visible characters, spaces and tabs between them, and bytes
# 0x80-0xFF (obs-text); http.client sends values as Latin-1. requests refuses leading
# whitespace and CR/LF; http.client any other control character's line break.
_FIELD_VALUE = re.compile(r"[!-~\x80-\xff](?:[ \t!-~\x80-\xff]*[!-~\x80-\xff])?")


def user_agent(text: str) -> str:
    """``--user-agent``: one valid header value (RFC 9110 field-value, Latin-1), not
    empty: a line break, a control character or a leading space made every request
    fail unsent, each URL recorded as a transient failure (until 2026-12-01)."""
    if not _FIELD_VALUE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"not a valid HTTP header value: {text[:60]!r} (printable Latin-1 characters, "
            "no line break or control character, no space at either end, not empty)"
        )
    return text
