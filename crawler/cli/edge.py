"""The edge of every command: parse, set up logging, run, and turn each expected error
into one line on stderr and an exit code; nothing below it prints a traceback for a
condition a user can cause."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from crawler import constants as c
from crawler import partfile
from crawler.console import NOTICE, TIME_FORMAT, Console, LogFile, NotRecord, log
from crawler.exceptions import (
    CrawlerError,
    JournalError,
    MasterGone,
    ProtocolError,
    UsageError,
)
from crawler.layout import not_a_folder
from crawler.terminal import watched


def _after_dashes(argv: list[str] | None) -> list[str]:
    """``argv`` with the names after ``--`` that start with '-' spelled ``./-name``:
    CPython's intermixed parser refuses ``--`` when no positional comes before it
    (``crawler-master -- -l.txt``: "the following arguments are required: LIST", a
    fresh user's, 2026-12-01); a name so spelled needs no ``--``. A lone ``-`` (stdin)
    stays as it is."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--" not in argv:
        return argv
    at = argv.index("--")
    tail = [
        f"./{name}" if name.startswith("-") and name != "-" else name for name in argv[at + 1 :]
    ]
    return [*argv[:at], *tail]


def run_command(
    prog: str,
    argv: list[str] | None,
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace], int],
    check: Callable[[argparse.Namespace], None] | None = None,
) -> int:
    """Parse, run, and turn every expected error into one line and an exit code.
    ``check`` runs once stderr is set up and before the log file is opened: a refusal
    must not write into a file it protects (``--log-file`` naming a URL list)."""
    args = parser.parse_intermixed_args(_after_dashes(argv))  # options amid list files
    try:
        setup_logging(prog, args, check)
        return body(args)
    except KeyboardInterrupt:
        NOTICE.error("interrupted")
        return c.EXIT_INTERRUPTED
    except (MasterGone, JournalError) as exc:  # the run started and could not finish
        NOTICE.error("error: %s", exc)
        return c.EXIT_INCOMPLETE
    except (UsageError, ProtocolError, CrawlerError) as exc:
        NOTICE.error("error: %s", exc)
        return c.EXIT_ERROR
    except FileNotFoundError:
        if _cwd_exists():
            raise
        NOTICE.error("error: %s", CWD_GONE)
        return c.EXIT_ERROR
    except RuntimeError as exc:  # threading's word for EAGAIN from pthread_create
        if c.NO_THREAD not in str(exc):
            raise
        NOTICE.error("error: %s", THREADS_REFUSED)
        return c.EXIT_ERROR


THREADS_REFUSED = (
    f"the system refused to start a thread ({c.THREAD_LIMITS}); use fewer --threads or --processes"
)
CWD_GONE = "the current folder no longer exists, so relative paths (default ones too) "
CWD_GONE += "name nothing: cd to a folder that exists, or give absolute paths"


def _cwd_exists() -> bool:
    """Can the current folder be named? A command started in a removed folder found out
    in a traceback from the first relative path it resolved (until 2026-12-01: a fresh
    user's); it is one line now."""
    try:
        os.getcwd()
    except FileNotFoundError:
        return False
    return True


def run_plain(prog: str, body: Callable[[], int]) -> int:
    """``run_command`` for the commands that log nothing (report, export): an expected
    error becomes one line on stderr and EXIT_ERROR, Ctrl-C EXIT_INTERRUPTED. What the
    library warns of (``console.show``: stdout that cannot be written) goes to stderr."""
    logging.basicConfig(level=logging.WARNING, format=f"{prog}: %(message)s", force=True)
    try:
        return body()
    except CrawlerError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return c.EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return c.EXIT_INTERRUPTED
    except FileNotFoundError:
        if _cwd_exists():
            raise
        print(f"{prog}: error: {CWD_GONE}", file=sys.stderr)
        return c.EXIT_ERROR


def leave(code: int) -> NoReturn:
    """End ``python -m crawler.master`` or ``crawler.worker`` with ``code`` at once, without
    the interpreter's finalisation: tearing down NumPy, Pillow, requests and every
    object of a run took 50-100 ms after the command returned, for the master and for
    each local worker (which the master waits for), all on the run's way to its exit.
    Safe only here: the command has returned, so every file it wrote is closed
    (manifest, summary, report; its temporary files are unnamed), the threads left are
    daemons a normal exit kills too, and what is buffered is flushed first. A worker
    that ends by itself (its master gone) may still have threads storing images: the
    ``.part-*`` files they write are removed first (``partfile.abandon``)."""
    partfile.abandon()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken pipe
            stream.flush()
    os._exit(code)


def setup_logging(
    prog: str, args: argparse.Namespace, check: Callable[[argparse.Namespace], None] | None = None
) -> None:
    """stderr gets notices (INFO) unless -q, one line per URL with -v; every stderr line
    starts with an ISO 8601 timestamp when stderr is not a terminal, or one of 0 columns
    (``terminal.watched``), and goes above a progress bar drawn there (``Console``).
    ``--log-file`` gets the same, always with timestamps, plus the summary and the
    outcome (``console``).
    Raises UsageError when the log file cannot be written (stderr is set up first, so
    that the error is shown like any other)."""
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    stamped = logging.Formatter(f"%(asctime)s {prog}: %(message)s", TIME_FORMAT)
    plain = logging.Formatter(f"{prog}: %(message)s")
    console = Console()
    console.setFormatter(plain if watched() else stamped)
    console.addFilter(NotRecord())
    # Third-party loggers (urllib3's retries, PIL's plugin chatter) only from WARNING up:
    # the root stays at WARNING, the crawler's own loggers take the chosen level.
    logging.basicConfig(level=logging.WARNING, handlers=[console], force=True)
    log.setLevel(level)
    # urllib3 warns on every retry; the manifest's attempts field records those. The S3
    # store's libraries (botocore, s3fs) stay at the root's WARNING like every other.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    if check is not None:
        check(args)
    if args.log_file and not getattr(args, "dry_run", False):  # a dry run writes nothing
        try:
            handler = LogFile(args.log_file)
        except OSError as exc:
            why = not_a_folder(Path(args.log_file).parent) or exc.strerror
            raise UsageError(f"cannot write log file {args.log_file}: {why}") from None
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {prog} %(levelname)s %(message)s", TIME_FORMAT)
        )
        logging.getLogger().addHandler(handler)
