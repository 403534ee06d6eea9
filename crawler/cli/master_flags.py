"""The master's flags: lists, serving, the run, and the run policy sent to workers."""

from __future__ import annotations

import argparse
from pathlib import Path

from crawler import constants as c
from crawler.cli.flags import POLICY_FLAGS, common, port, thread_count
from crawler.cli.storeflags import add_master_store_flags
from crawler.cli.values import (
    ATTEMPTS,
    BACKLOG,
    DAYS,
    LOCAL_WORKERS,
    PER_HOST,
    SECONDS_OR_NONE,
    SHARE,
    nonempty,
    nonempty_path,
    user_agent,
)
from crawler.config import INPUT_FORMATS, Policy

LOCAL_THREADS = 8  # --threads of each local worker, unless given


def master_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="crawler-master",
        description="Serve URL lists to crawler workers and write the manifest.",
    )
    common(p, quiet_keeps=" (and where the master serves)")
    _master_lists(p)
    _master_serving(p)
    _master_run(p)
    _master_reruns(p)
    _master_policy(p.add_argument_group("run policy (sent to every worker)"))
    add_master_store_flags(p)
    return p


def _master_lists(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "lists",
        nargs="+",
        type=nonempty,
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
        type=nonempty,
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
    p.add_argument(
        "--bind",
        type=nonempty,  # not given: all interfaces; "" (a script's unset variable) refused
        help="address to listen on (default: all interfaces)",
    )
    p.add_argument(
        "--port", type=port, default=c.DEFAULT_PORT, help="queue port (default: %(default)s)"
    )
    p.add_argument(
        "--output",
        type=nonempty_path,
        default=Path(c.DEFAULT_OUTPUT),
        help="image folder of local workers (default: %(default)s)",
    )
    p.add_argument(
        "--manifest", type=nonempty_path, help="manifest path (default: OUTPUT/manifest.jsonl)"
    )
    p.add_argument(
        "--csv", type=nonempty_path, metavar="PATH", help="also export the manifest as CSV"
    )
    p.add_argument(
        "--listen-backlog",
        type=BACKLOG,
        default=1024,
        metavar="N",
        help="connections the queue port holds while the master accepts them, for crowds of "
        "workers starting at once (default: %(default)s; the kernel caps it)",
    )
    p.add_argument(
        "--local-workers",
        type=LOCAL_WORKERS,
        default=0,
        metavar="N",
        help="start N workers on this machine (default: %(default)s, remote workers only)",
    )
    p.add_argument(
        "--threads",
        type=thread_count,
        metavar="N",
        help=f"download threads per local worker, at most 1024 (default: {LOCAL_THREADS})",
    )
    p.add_argument(
        "--max-attempts",
        type=ATTEMPTS,
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
        type=PER_HOST,
        default=0,
        metavar="N",
        help="at most N URLs of one listed host in progress at once, across all workers (a "
        "redirect to another host is followed at once; 0, the default: no cap)",
    )
    p.add_argument(
        "--host-delay",
        type=SECONDS_OR_NONE,
        default=0.0,
        metavar="S",
        help="at least S seconds between the requests of two URLs of the same listed host, "
        "across all workers (its robots.txt comes just before its first URL; a redirect to "
        "another host is followed at once) (default: %(default)s)",
    )
    p.add_argument(
        "--idle-timeout",
        type=SECONDS_OR_NONE,
        default=3600.0,
        metavar="S",
        help="give up (exit 3) when no worker has been active for S seconds while URLs "
        "remain; 0 waits forever (default: %(default)s)",
    )
    p.add_argument(
        "--grace",
        type=SECONDS_OR_NONE,
        default=30.0,
        metavar="S",
        help="on SIGINT/SIGTERM, wait this long for answers in progress (default: %(default)s)",
    )


def _master_reruns(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="re-attempt URLs whose last status was a failure",
    )
    p.add_argument(
        "--give-up-after",
        type=ATTEMPTS,
        default=5,
        metavar="N",
        help="stop retrying a transient failure once it has failed N runs in a row "
        "(default: %(default)s; --retry-failed retries all the same)",
    )
    p.add_argument(
        "--max-failure-rate",
        type=SHARE,
        default=0.5,
        metavar="R",
        help="exit 4 (degraded) when more than this share of the URLs tried failed "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--refresh-after",
        type=DAYS,
        metavar="DAYS",
        help="revalidate ok images older than DAYS (If-None-Match / If-Modified-Since)",
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
        "--user-agent",
        type=user_agent,
        default=defaults.user_agent,
        metavar="TEXT",
        help="sent with every request",
    )
    g.add_argument(
        "--ignore-robots",
        action="store_true",
        help="do not honour robots.txt or X-Robots-Tag opt-outs; only for lists of "
        "images you own or have permission to collect",
    )
    g.add_argument(
        "--dedup-content",
        action="store_true",
        help="store equal image bytes once, named by their sha256 (ab/cd/<sha256>.<ext>): "
        "every URL with that content points at the one file, in any store",
    )
