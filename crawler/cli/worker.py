"""``crawler-worker`` / ``python -m crawler.worker``: flags to a ``WorkerConfig``."""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path
from typing import NoReturn

from crawler import constants as c
from crawler.auth import load_authkey
from crawler.cli.edge import leave, run_command
from crawler.cli.flags import master_port, worker_parser
from crawler.config import WorkerConfig
from crawler.exceptions import UsageError
from crawler.outputs import check_distinct
from crawler.worker.service import serve

LINE_LIMIT = 100  # characters of stdin read at most for --port -: a port is five
ARGS_LIMIT = 1 << 20  # ... for --args-from-stdin: a command line, paths and all


def worker_config(args: argparse.Namespace, master_port: int) -> WorkerConfig:
    key = load_authkey(args.authkey_file)
    if key is None:
        raise UsageError(
            f"no authkey: set ${c.AUTHKEY_ENV} or pass --authkey-file (the master's key)"
        )
    return WorkerConfig(
        server=args.server,
        authkey=key,
        port=master_port,
        threads=args.threads,
        output=args.output,
        connect_timeout=args.connect_timeout,
        quiet=args.quiet,
        progress_interval=args.progress_interval,
        wait=args.wait,
        processes=args.processes,
        host_id=args.host_id or socket.gethostname(),
    )


def port_from_stdin() -> int | None:
    """``--port -``: the master's port, from the first line of stdin. A master starts its
    local workers this way before it listens, so that their start-up (an interpreter and
    the worker's imports, ~0.2 s) overlaps its own; the line is read once those imports
    are done. None when stdin ends first: the master is gone before serving anything, so
    there is nothing to do. Raises UsageError for a line that is not a port."""
    line = sys.stdin.readline(LINE_LIMIT) if sys.stdin is not None else ""
    if not line:
        return None
    try:
        return master_port(line.strip())
    except argparse.ArgumentTypeError:
        raise UsageError(
            f"--port -: not a TCP port on stdin (1-65535): {line.strip()[:40]!r}"
        ) from None


def check_paths(args: argparse.Namespace) -> None:
    """The --log-file is neither the key nor among this host's stored images
    (``outputs.check_distinct``). Raises UsageError."""
    log_file = Path(args.log_file) if args.log_file else None
    key = {"shared key": Path(args.authkey_file)} if args.authkey_file else {}
    check_distinct({"--log-file": log_file}, key, [], (args.output,))


def args_from_stdin() -> list[str] | None:
    """``--args-from-stdin`` (alone): the command line, one JSON list of strings on the
    first line of stdin, read once the imports are done; how a master starts its local
    workers before it has read its own flags (``master.prespawn``). None when stdin ends
    first: the master is gone (or needs no worker), there is nothing to do. Raises
    UsageError for a line that is no such list."""
    line = sys.stdin.readline(ARGS_LIMIT) if sys.stdin is not None else ""
    if not line:
        return None
    try:
        args = json.loads(line)
    except ValueError:
        args = None
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise UsageError(f"{c.ARGS_FROM_STDIN}: not a JSON list of arguments on stdin")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the worker command; returns the exit code."""

    def body(args: argparse.Namespace) -> int:
        master_port = args.port if args.port is not None else port_from_stdin()
        if master_port is None:
            return c.EXIT_INTERRUPTED  # the master ended before it listened: nothing held
        return serve(worker_config(args, master_port))

    if (sys.argv[1:] if argv is None else argv) == [c.ARGS_FROM_STDIN]:
        try:
            argv = args_from_stdin()
        except UsageError as exc:
            sys.stderr.write(f"crawler-worker: error: {exc}\n")
            return c.EXIT_ERROR
        if argv is None:
            return c.EXIT_INTERRUPTED
    return run_command("crawler-worker", argv, worker_parser(), body, check_paths)


def run_module() -> NoReturn:
    """``python -m crawler.worker``: ``main``, then out at once (``edge.leave``)."""
    leave(main())
