"""The flags of the three commands: argparse parsers and value types.

``cli`` turns the parsed flags into one configuration object per command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crawler import __version__
from crawler import constants as c
from crawler.cli.storeflags import add_master_store_flags, add_worker_store_flags
from crawler.config import INPUT_FORMATS, Policy


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"crawler {__version__}")
    parser.add_argument(
        "--authkey-file",
        metavar="PATH",
        help=f"file holding the shared key (mode 0600); default: ${c.AUTHKEY_ENV}",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress, summary or notices: errors only"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    parser.add_argument("--log-file", metavar="PATH", help="also log to PATH, with timestamps")
    parser.add_argument(
        "--progress-interval",
        type=_positive_float,
        default=60.0,
        metavar="S",
        help="without a terminal (cron), log a progress line every S seconds instead of a "
        "progress bar (default: %(default)s)",
    )


# The numeric fields of Policy, one flag each (default from Policy): name, type, metavar, help.
POLICY_FLAGS: tuple[tuple[str, Callable[[str], Any], str, str], ...] = (
    ("connect_timeout", _positive_float, "S", "HTTP connect timeout"),
    ("read_timeout", _positive_float, "S", "HTTP read timeout, for each receive"),
    ("deadline", _positive_float, "S", "whole-URL time limit"),
    ("max_bytes", _positive_int, "N", "largest body accepted"),
    ("max_pixels", _positive_int, "N", "largest width x height accepted"),
    ("min_width", _non_negative_int, "PX", "smallest width accepted"),
    ("min_height", _non_negative_int, "PX", "smallest height accepted"),
    ("retries", _non_negative_int, "N", "retries of transient failures"),
    ("max_redirects", _non_negative_int, "N", "redirects followed at most"),
    ("lease_seconds", _positive_float, "S", "seconds before an unanswered URL is handed out again"),
)


def master_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="crawler-master",
        description="Serve URL lists to crawler workers and write the manifest.",
    )
    _common(p)
    _master_lists(p)
    _master_serving(p)
    _master_run(p)
    _master_policy(p.add_argument_group("run policy (sent to every worker)"))
    add_master_store_flags(p)
    return p


def _master_lists(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "lists",
        nargs="+",
        metavar="LIST",
        help="URL lists: files (text, CSV, TSV, JSON Lines; gzip or not), folders of them, "
        "or - for stdin",
    )
    p.add_argument(
        "--input-format",
        choices=INPUT_FORMATS,
        default="auto",
        help="format of every list; auto: from its name (.csv, .tsv, .jsonl, .ndjson, "
        "optionally .gz), else text (default: %(default)s)",
    )
    p.add_argument(
        "--url-column",
        default="url",
        metavar="NAME",
        help="CSV/TSV column or JSON Lines key holding the URL (default: %(default)s)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="read the lists, print how many URLs are valid, invalid and duplicate, write nothing",
    )


def _master_serving(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bind", default="", help="address to listen on (default: all interfaces)")
    p.add_argument(
        "--port", type=_port, default=c.DEFAULT_PORT, help="queue port (default: %(default)s)"
    )
    p.add_argument(
        "--output",
        type=Path,
        default=Path(c.DEFAULT_OUTPUT),
        help="image folder of local workers (default: %(default)s)",
    )
    p.add_argument("--manifest", type=Path, help="manifest path (default: OUTPUT/manifest.jsonl)")
    p.add_argument("--csv", type=Path, metavar="PATH", help="also export the manifest as CSV")
    p.add_argument(
        "--local-workers",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="start N workers on this machine",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=8,
        metavar="N",
        help="download threads per local worker (default: %(default)s)",
    )
    p.add_argument(
        "--max-attempts",
        type=_positive_int,
        default=3,
        metavar="N",
        help="times a URL is handed out before it is worker_lost (default: %(default)s)",
    )


def _master_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-report", action="store_true", help="skip the HTML run report at the end of the run"
    )
    p.add_argument(
        "--per-host",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="at most N URLs of one host in progress at once, across all workers (default: no cap)",
    )
    p.add_argument(
        "--host-delay",
        type=_non_negative_float,
        default=0.0,
        metavar="S",
        help="at least S seconds between two requests to the same host (default: %(default)s)",
    )
    p.add_argument(
        "--idle-timeout",
        type=_non_negative_float,
        default=3600.0,
        metavar="S",
        help="give up (exit 3) when no worker has been active for S seconds while URLs "
        "remain; 0 waits forever (default: %(default)s)",
    )
    p.add_argument(
        "--retry-failed", action="store_true", help="re-attempt URLs whose last status failed"
    )
    p.add_argument(
        "--refresh-after",
        type=_positive_float,
        metavar="DAYS",
        help="revalidate ok images older than DAYS (If-None-Match / If-Modified-Since)",
    )
    p.add_argument(
        "--grace",
        type=_non_negative_float,
        default=30.0,
        metavar="S",
        help="on SIGINT/SIGTERM, wait this long for answers in progress (default: %(default)s)",
    )


def _master_policy(g: argparse._ArgumentGroup) -> None:
    defaults = Policy()
    for name, kind, metavar, text in POLICY_FLAGS:
        g.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=getattr(defaults, name),
            metavar=metavar,
            help=f"{text} (default: %(default)s)",
        )
    g.add_argument(
        "--block-private",
        action=argparse.BooleanOptionalAction,
        default=defaults.block_private,
        help="refuse hosts (and redirects) that resolve to loopback, private, link-local or "
        "metadata addresses; --no-block-private for internal servers (default: on)",
    )
    g.add_argument(
        "--user-agent", default=defaults.user_agent, metavar="TEXT", help="sent with every request"
    )
    g.add_argument(
        "--ignore-robots",
        action="store_true",
        help="do not honour robots.txt or X-Robots-Tag opt-outs; only for lists of "
        "images you own or have permission to collect",
    )


def worker_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="crawler-worker",
        description="Download, verify and store URLs served by a crawler master.",
    )
    _common(p)
    p.add_argument(
        "--server", required=True, metavar="HOST", help="the master's host name or address"
    )
    p.add_argument(
        "--port", type=_port, default=c.DEFAULT_PORT, help="master's port (default: %(default)s)"
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=8,
        metavar="N",
        help="concurrent downloads (default: %(default)s)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=Path(c.DEFAULT_OUTPUT),
        help="image folder (default: %(default)s)",
    )
    p.add_argument(
        "--connect-timeout",
        type=_positive_float,
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


def report_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="crawler-report", description="Write the HTML report of a crawler manifest."
    )
    p.add_argument("--version", action="version", version=f"crawler {__version__}")
    p.add_argument("manifest", type=Path, metavar="MANIFEST", help="the manifest (.jsonl)")
    p.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="the folder of the stored images, for thumbnails (default: the manifest's)",
    )
    p.add_argument("--out", type=Path, metavar="PATH", help="default: <manifest>.report.html")
    p.add_argument("--sample", type=int, default=24, metavar="N", help="thumbnails (24)")
    return p
