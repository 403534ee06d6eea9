"""What the crawler tells the person running it: stderr lines and the log file.

Everything goes through the ``crawler`` loggers, set up once by the CLI
(``cli.edge.setup_logging``); the library never prints to stderr itself:

- ``log`` ("crawler"): progress lines, warnings, errors; ``-q`` keeps warnings and
  errors, ``-v`` adds one line per URL (DEBUG);
- ``NOTICE`` ("crawler.notice"): what must be seen even with ``-q``: the serving line,
  how workers connect, a generated key, the one-line fatal error;
- ``RECORD`` ("crawler.record"): the log file only: the run's summary and outcome.

Without a terminal (or on one of 0 columns, a recording: ``terminal.watched``) every
stderr line starts with an ISO 8601 timestamp; the log file always has them. A line
written while a progress bar is drawn goes above the bar (``Console``). Third-party
loggers (urllib3, PIL) reach either only from WARNING up.

Disks fill up, pipes close: a log file that cannot be written any more is said once on
stderr and then left alone (``LogFile``), and stdout that cannot be written is said once
(``show``): never a traceback per line, and never a different exit code for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import sys
import time
from pathlib import Path
from typing import Any

from crawler.atomic import in_place, open_in_place, replacing
from crawler.terminal import watched, write_line

log = logging.getLogger("crawler")
NOTICE = logging.getLogger("crawler.notice")
NOTICE.setLevel(logging.INFO)  # its own level: -q (WARNING on "crawler") does not hide it
RECORD = logging.getLogger("crawler.record")
RECORD.setLevel(logging.INFO)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"  # ISO 8601, with the UTC offset


def notice(text: str) -> None:
    """Show ``text`` (one record per line, so that each line gets its timestamp)."""
    for line in text.splitlines():
        NOTICE.info(line)


def say_unlogged(text: str) -> None:
    """Write ``text`` to stderr only, never to the log file (a secret): one line at
    most lost if stderr cannot be written (it is then already /dev/null or gone).
    Without a terminal (or on one of 0 columns) each line gets its timestamp, as every
    other stderr line (until 2026-12-01 these had none, a fresh user's)."""
    with contextlib.suppress(OSError, ValueError):
        if not watched():
            stamp = time.strftime(TIME_FORMAT) + " "
            text = "\n".join(stamp + line for line in text.splitlines())
        write_line(text, sys.stderr)
        sys.stderr.flush()


def record(text: str) -> None:
    """Write ``text`` to the log file only (no-op without ``--log-file``)."""
    for line in text.splitlines():
        RECORD.info(line)


def show(text: str) -> None:
    """Print ``text`` on stdout, with its newline in the same write: ``print`` wrote it
    apart, and unbuffered (PYTHONUNBUFFERED) the summary lines of a worker's processes,
    which share one stdout, came out run together (a fresh user's, 2026-12-02). A
    stdout that cannot be written (a full disk, a closed pipe) is one error line on
    stderr instead of a traceback, and is then /dev/null: the text still buffered must
    not fail again when the interpreter flushes it at exit."""
    out = sys.stdout
    if out is None:  # no stdout at all (print wrote nowhere then too)
        return
    try:
        out.write(text + "\n")
        out.flush()
    except OSError as exc:
        log.error("cannot write to stdout: %s", exc.strerror or exc)
        with contextlib.suppress(OSError, ValueError):  # stdout closed, or no descriptor
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)


class Console(logging.StreamHandler):
    """stderr's handler: each line written past a progress bar drawn there, which is
    cleared and drawn again below it (``terminal.write_line``), for every logger and
    thread (a worker's download threads log too)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_line(self.format(record), self.stream)
            self.flush()
        except RecursionError:  # logging's own rule: not swallowed
            raise
        except Exception:
            self.handleError(record)


class Due:
    """A line due every ``interval`` seconds (> 0), by the monotonic clock. After a stall
    (Ctrl-Z and ``fg``, a suspended VM) one line is due, and the next a whole interval
    later: the master printed a line per interval missed, six in the same second after
    a stop of 25 s (a fresh user's, 2026-12-01)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.at = time.monotonic() + interval

    def now(self) -> bool:
        """Is a line due? If so, the next one is counted from here."""
        now = time.monotonic()
        if now < self.at:
            return False
        # On time, the next keeps to the grid (no drift); late by an interval or more,
        # it is counted from now, not from the missed ones (nor just after this one).
        late = now - self.at >= self.interval
        self.at = now + self.interval if late else self.at + self.interval
        return True


class LogFile(logging.FileHandler):
    """``--log-file``: a write that fails (a full disk) is one error line on stderr, and
    the file gets nothing more; logging's default is a traceback on stderr per record."""

    def __init__(self, path: str) -> None:
        # Its folder is made as the CSV's and the manifest's are: a log file inside the
        # --output a first run creates failed with "No such file or directory".
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        _own_copy(path)
        # backslashreplace: a message naming a file whose name is not UTF-8 (a surrogate,
        # PEP 383) stopped the log file at that line (a fresh user's, 2026-12-01).
        super().__init__(path, encoding="utf-8", errors="backslashreplace")
        self.failed = False

    def _open(self) -> Any:
        """Appended to as a file is; a device or FIFO written into in place, a FIFO no one
        reads an error (ENXIO) instead of a start-up that waits for a reader for ever."""
        kind = in_place(Path(self.baseFilename))
        if kind is None:
            return super()._open()
        # A descriptor's name (/dev/stdout) is written through the descriptor: opened anew,
        # a stdout redirected with ">" wrote its later lines over the log's.
        how = {"mode": "a", "encoding": "utf-8", "errors": "backslashreplace"}
        return open_in_place(Path(self.baseFilename), kind, how)

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        if self.failed:
            return
        self.failed = True  # first: the line below reaches this handler too
        exc = sys.exc_info()[1]
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        log.error("cannot write log file %s: %s; it gets nothing more", self.baseFilename, why)


def _own_copy(path: str) -> None:
    """A log file with other names (hard links) becomes a file of its own, with the same
    bytes, before it is appended to: appended to, it changed under every name. A hard
    link to a stored image got the log's lines while its row stayed ok (outputs.py
    compares names, and cannot see a link's other names); refused instead, a log that a
    backup (``cp -al``, rsnapshot) had linked stopped every night. In a folder the
    command may not write (a service user's ``/var/log`` file), no copy can be made: the
    file is appended to in place, with a warning, as before."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode) or st.st_nlink < 2:
        return
    try:
        with open(path, "rb") as old, replacing(Path(path), stat.S_IMODE(st.st_mode)) as new:
            shutil.copyfileobj(old, new)
    except OSError as exc:
        log.warning("log file %s has other names (hard links), and no copy of its own could "
                    "be made (%s): appended to in place", path, exc.strerror or exc)  # fmt: skip


class NotRecord(logging.Filter):
    """Keeps RECORD lines (summary, outcome: already on stdout) off stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(RECORD.name)
