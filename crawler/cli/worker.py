"""``crawler-worker`` / ``python -m crawler.worker``: flags to a ``WorkerConfig``."""

from __future__ import annotations

import argparse
import socket
from typing import NoReturn

from crawler import constants as c
from crawler.auth import load_authkey
from crawler.cli.edge import leave, run_command
from crawler.cli.flags import worker_parser
from crawler.config import WorkerConfig
from crawler.exceptions import UsageError
from crawler.worker.service import serve


def worker_config(args: argparse.Namespace) -> WorkerConfig:
    key = load_authkey(args.authkey_file)
    if key is None:
        raise UsageError(
            f"no authkey: set ${c.AUTHKEY_ENV} or pass --authkey-file (the master's key)"
        )
    return WorkerConfig(
        server=args.server,
        authkey=key,
        port=args.port,
        threads=args.threads,
        output=args.output,
        connect_timeout=args.connect_timeout,
        quiet=args.quiet,
        progress_interval=args.progress_interval,
        wait=args.wait,
        host_id=args.host_id or socket.gethostname(),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the worker command; returns the exit code."""
    return run_command("crawler-worker", argv, worker_parser(), lambda a: serve(worker_config(a)))


def run_module() -> NoReturn:
    """``python -m crawler.worker``: ``main``, then out at once (``edge.leave``)."""
    leave(main())
