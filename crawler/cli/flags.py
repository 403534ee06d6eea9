"""The flags of the worker and report commands, and the value types and options all
three share (the master's parser: ``master_flags``).

``cli`` turns the parsed flags into one configuration object per command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crawler import constants as c
from crawler.cli.storeflags import add_worker_store_flags
from crawler.cli.values import (
    BYTES,
    LEASE,
    PIXELS,
    PROCESSES,
    REDIRECTS,
    RETRIES,
    SECONDS,
    SIDE,
    Number,
    nonempty,
    nonempty_path,
)
from crawler.protocol import VERSION_TEXT

MAX_SAMPLE = 1000  # report thumbnails: a page of ~10 MB


def thread_count(text: str) -> int:
    """``--threads``: 1 to ``constants.MAX_THREADS``."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    if value > c.MAX_THREADS:
        raise argparse.ArgumentTypeError(
            f"must be at most {c.MAX_THREADS}, not {value} (more workers give more downloads)"
        )
    return value


def sample_size(text: str) -> int:
    """``crawler-report --sample``: 0 to MAX_SAMPLE thumbnails. Its reservoir holds four
    times as many rows; -1 was taken as is, and a huge one was memory for nothing."""
    return int(Number(int, 0, MAX_SAMPLE)(text))


def port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


def master_port(text: str) -> int:
    """A master's TCP port, to connect to: ASCII digits, 1-65535 (not 0, not ``+80``, not
    full-width digits, which ``int`` would take). Raises argparse.ArgumentTypeError."""
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"not a TCP port (1-65535): {text[:40]!r}")
    return int(text)


def port_or_stdin(text: str) -> int | None:
    """A worker's ``--port``: a master's port, or ``-`` (None): read it from stdin's first
    line. Raises argparse.ArgumentTypeError."""
    text = text.strip()  # as on stdin
    return None if text == "-" else master_port(text)


def common(parser: argparse.ArgumentParser, quiet_keeps: str = "") -> None:
    """Flags of both commands; ``quiet_keeps``: what ``-q`` still prints besides warnings
    and errors (the master's serving line)."""
    parser.add_argument("--version", action="version", version=VERSION_TEXT)
    parser.add_argument(
        "--authkey-file",
        type=nonempty,
        metavar="PATH",
        help=f"file holding the shared key (mode 0600); default: ${c.AUTHKEY_ENV}",
    )
    loudness = parser.add_mutually_exclusive_group()  # -q -v: which would win?
    loudness.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help=f"no progress, summary or notices: warnings and errors{quiet_keeps}",
    )
    loudness.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    parser.add_argument(
        "--log-file", type=nonempty, metavar="PATH", help="also log to PATH, with timestamps"
    )
    parser.add_argument(
        "--progress-interval",
        type=SECONDS,
        default=60.0,
        metavar="S",
        help="without a terminal (cron), or on one too narrow for the progress bar, log a "
        "progress line every S seconds (default: %(default)s)",
    )


# The numeric fields of Policy, one flag each (default from Policy): name, type, metavar, help.
POLICY_FLAGS: tuple[tuple[str, Callable[[str], Any], str, str], ...] = (
    ("connect_timeout", SECONDS, "S", "HTTP connect timeout"),
    ("read_timeout", SECONDS, "S", "HTTP read timeout, for each receive"),
    ("deadline", SECONDS, "S", "whole-URL time limit"),
    ("max_bytes", BYTES, "N", "largest body accepted"),
    ("max_pixels", PIXELS, "N", "largest width x height accepted"),
    ("min_width", SIDE, "PX", "smallest width accepted"),
    ("min_height", SIDE, "PX", "smallest height accepted"),
    ("retries", RETRIES, "N", "retries of transient failures"),
    ("max_redirects", REDIRECTS, "N", "redirects followed at most"),
    ("lease_seconds", LEASE, "S", "seconds before an unanswered URL is handed out again"),
)


def worker_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="crawler-worker",
        description="Download, verify and store URLs served by a crawler master.",
    )
    common(p)
    p.add_argument(
        "--server",
        type=nonempty,
        required=True,
        metavar="HOST",
        help="the master's host name or address",
    )
    p.add_argument(
        "--port",
        type=port_or_stdin,
        default=c.DEFAULT_PORT,
        help="the master's port, or - to read it from stdin's first line (how a master's "
        "local workers learn it) (default: %(default)s)",
    )
    _worker_resources(p)
    p.add_argument(
        "--connect-timeout",
        type=SECONDS,
        default=10.0,
        metavar="S",
        help="to reach the master (default: %(default)s)",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="run as a service: wait for a master, work each run, wait for the next",
    )
    add_worker_store_flags(p)
    return p


def _worker_resources(p: argparse.ArgumentParser) -> None:
    """What a worker host gives: threads, processes, its image folder."""
    p.add_argument(
        "--threads",
        type=thread_count,
        default=8,
        metavar="N",
        help="concurrent downloads, at most 1024 (default: %(default)s)",
    )
    p.add_argument(
        "--processes",
        type=PROCESSES,
        default=1,
        metavar="N",
        help="worker processes on this host: this one and N-1 copies forked from it once "
        "started, each with its own --threads (default: %(default)s)",
    )
    p.add_argument(
        "--output",
        type=nonempty_path,
        default=Path(c.DEFAULT_OUTPUT),
        help="image folder (default: %(default)s)",
    )


def report_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="crawler-report", description="Write the HTML report of a crawler manifest."
    )
    p.add_argument("--version", action="version", version=VERSION_TEXT)
    p.add_argument("manifest", type=nonempty_path, metavar="MANIFEST", help="the manifest (.jsonl)")
    p.add_argument(
        "--output",
        type=nonempty_path,
        metavar="DIR",
        help="the folder of the stored images, for thumbnails (default: the manifest's)",
    )
    p.add_argument(
        "--out",
        type=nonempty_path,
        metavar="PATH",
        help="where the report goes (default: <manifest>.report.html)",
    )
    p.add_argument(
        "--sample",
        type=sample_size,
        default=24,
        metavar="N",
        help=f"gallery thumbnails, at most {MAX_SAMPLE} (default: %(default)s)",
    )
    return p
