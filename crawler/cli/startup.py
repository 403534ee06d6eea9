"""What ``python -m crawler.master`` and ``python -m crawler.worker`` (and the console
scripts ``crawler-master``, ``crawler-worker``: ``master``, ``worker``) do first, before
importing their command (0.05-0.2 s of imports, ``_command``).

A stop signal from then until the command installs its own handlers
(``master.launch.StopRequest``, ``worker.service``) ends the process at once: exit 130
(``constants.EXIT_INTERRUPTED``), the master saying "interrupted", a worker silently (it
had nothing yet, like one whose ``--port -`` stdin ended). Nothing has been handed out
by then, so there is nothing to finish. Exiting from the handler itself, not raising
KeyboardInterrupt: an exception raised there can surface inside an import's weakref
callback, which prints "Exception ignored" and loses the stop, or in code run by
``exec`` (dataclasses, at import), after which CPython turns any exit into death by
SIGINT. Before this, SIGINT left a traceback from the middle of an import, and SIGTERM
and SIGHUP killed the process without a word (exit 143, 129). Local workers the master
has started by then read the end of their stdin and leave (``master.local_workers``).
The interpreter's own start-up (~20 ms) keeps Python's defaults.
"""

from __future__ import annotations

import importlib
import locale
import os  # loaded with the interpreter, as sys is
import sys

from crawler import constants as c
from crawler.stopsignals import catch

MASTER = "crawler-master"
TYPE_CHECKING = False  # typing itself is not imported at run time: it takes a while
if TYPE_CHECKING:
    from types import FrameType
    from typing import Any, NoReturn


def interrupt_on_stop_signals() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as SIGINT does: for the commands that
    clean up on Ctrl-C (``crawler-export``: its staging folder and index removed, exit
    130, "interrupted"). Before, SIGTERM (what timeout, systemctl and kill send) killed
    the export where it stood, and its hidden index stayed in --out for good."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    catch(handler)  # nohup's SIGHUP stays ignored (``stopsignals``)


def exit_on_stop_signals(prog: str | None) -> None:
    """SIGINT, SIGTERM and SIGHUP end the process with exit 130, at once; ``prog``: after
    saying "PROG: interrupted" on stderr."""
    said = f"{prog}: interrupted\n".encode() if prog is not None else b""

    def handler(signum: int, frame: FrameType | None) -> None:
        if said:
            os.write(2, said)  # unbuffered: no stream is half-way through a write here
        os._exit(c.EXIT_INTERRUPTED)

    catch(handler)  # nohup's SIGHUP stays ignored (``stopsignals``)


def utf8_mode() -> None:
    """Run in Python's UTF-8 mode (PEP 540), starting the interpreter again in it when
    it is off (``PYTHONUTF8=0``, or a locale whose encoding is not UTF-8): the manifest,
    the report and every file the crawler writes are UTF-8, and under an ASCII locale a
    list or folder named in another script reached them as lone surrogates, a traceback.
    Child processes (local workers) inherit the setting. Returns only when on, or when
    the locale already gives what it would (``C.UTF-8``, Debian's and most containers'
    default): starting again cost the master ~25 ms of its start-up, and its first
    result came that much later (issue 15, "no fixed overhead")."""
    if sys.flags.utf8_mode or os.environ.get("PYTHONUTF8") == "1":
        return
    os.environ["PYTHONUTF8"] = "1"
    if not _locale_is_utf8_mode():
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def _locale_is_utf8_mode() -> bool:
    """Whether this interpreter's encodings are those UTF-8 mode sets (PEP 540): UTF-8
    for files, names and the standard streams, ``surrogateescape`` for names, stdin and
    stdout (so that a name in no encoding is written back as its bytes, not an error)."""
    utf8 = ("utf-8", "utf8")
    streams = [stream for stream in (sys.stdin, sys.stdout) if stream is not None]
    return (
        locale.getpreferredencoding(False).lower() in utf8
        and sys.getfilesystemencoding().lower() in utf8
        and sys.getfilesystemencodeerrors() == "surrogateescape"
        and all(stream.encoding.lower() in utf8 for stream in streams)
        and all(stream.errors == "surrogateescape" for stream in streams)
    )


def open_std_streams() -> None:
    """A standard stream the command was started without (``>&-``, ``2>&-``) becomes
    /dev/null, descriptor and ``sys`` object: Python leaves ``sys.stdout`` None then (the
    exit's flush was a traceback and exit 1), and the next file opened would take the
    free descriptor, so that a local worker's output went into it. The log file still
    gets everything; the exit code stays what the run earned."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))  # noqa: SIM115


def prepare_process() -> None:
    """What every command does first: ``utf8_mode``, ``open_std_streams``, then
    ``one_blas_thread``."""
    utf8_mode()
    open_std_streams()
    one_blas_thread()


def one_blas_thread() -> None:
    """``OPENBLAS_NUM_THREADS=1`` unless it is set, before NumPy is imported (and so for
    the local workers too): NumPy's OpenBLAS otherwise starts a thread per core but one
    when it loads, in the master and in every worker, for matrix work the crawler does
    not do (a perceptual hash is a 32 x 32 product). On a 64-core host that was 63 idle
    threads a process, against a container's process limit (``pids.max``), where OpenBLAS
    then printed its own complaints before the crawler's one line (a fresh user's,
    2026-12-02)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def master() -> NoReturn:
    """``python -m crawler.master`` and the ``crawler-master`` script."""
    prepare_process()
    exit_on_stop_signals(MASTER)
    early = _command("crawler.master.prespawn", MASTER).start_early(sys.argv[1:])  # see there
    _command("crawler.cli.master", MASTER).run_module(early)


def worker() -> NoReturn:
    """``python -m crawler.worker`` and the ``crawler-worker`` script. A worker has
    nothing yet: it leaves silently (its master may be the one stopping it)."""
    prepare_process()
    exit_on_stop_signals(None)
    _command("crawler.cli.worker", "crawler-worker").run_module()


def _command(name: str, prog: str) -> Any:
    """The command's module, imported only now that the handlers are in place: a
    deferred import, as ``cli.master._heavy`` is (the code rules forbid an import
    statement in a function); it follows import-linter's layers (cli -> cli). One that
    cannot be loaded (a dependency missing or broken, no memory for it under
    ``ulimit -v``: a resource-limits trial's traceback) is one line and exit 1."""
    try:
        return importlib.import_module(name)
    except (ImportError, MemoryError, OSError) as exc:
        why = f"{type(exc).__name__}: {exc}" if isinstance(exc, MemoryError) else str(exc)
        os.write(2, f"{prog}: error: cannot load its modules: {why}\n".encode())
        os._exit(c.EXIT_ERROR)
