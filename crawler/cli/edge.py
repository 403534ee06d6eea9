"""The edge of every command: parse, set up logging, run, and turn each expected error
into one line on stderr and an exit code; nothing below it prints a traceback for a
condition a user can cause."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from crawler import constants as c
from crawler.exceptions import CrawlerError, MasterGone, ProtocolError, UsageError


def run_command(
    prog: str,
    argv: list[str] | None,
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace], int],
) -> int:
    """Parse, run, and turn every expected error into one line and an exit code."""
    args = parser.parse_intermixed_args(argv)  # options may come between list files
    try:
        setup_logging(prog, args)
        return body(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return c.EXIT_INTERRUPTED
    except MasterGone as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return c.EXIT_INCOMPLETE
    except (UsageError, ProtocolError, CrawlerError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return c.EXIT_ERROR


QUIET_LIBRARIES = ("botocore", "aiobotocore", "s3fs", "fsspec")


def setup_logging(prog: str, args: argparse.Namespace) -> None:
    """stderr gets notices (INFO) unless -q, detail with -v; --log-file gets the same with
    timestamps. urllib3's retry warnings are left out: the attempts field records those."""
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    console = logging.StreamHandler()
    console.setFormatter(logging.Formatter(f"{prog}: %(message)s"))
    handlers: list[logging.Handler] = [console]
    if args.log_file:
        try:
            handler = logging.FileHandler(args.log_file, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write log file {args.log_file}: {exc.strerror}") from None
        handler.setFormatter(logging.Formatter(f"%(asctime)s {prog} %(levelname)s %(message)s"))
        handlers.append(handler)
    logging.basicConfig(level=level, handlers=handlers, force=True)
    logging.getLogger("urllib3").setLevel(logging.DEBUG if args.verbose else logging.ERROR)
    for name in QUIET_LIBRARIES:  # the S3 store's libraries: their notices are not ours
        logging.getLogger(name).setLevel(logging.INFO if args.verbose else logging.WARNING)
