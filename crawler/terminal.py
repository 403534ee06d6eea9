"""stderr as the person running the crawler sees it: a terminal or a file, whether a
progress bar can be read there, and how a log line gets past a bar that is drawn.

A pseudo-terminal that nobody sized (``script -qc`` started from cron or CI, some
``ssh -tt`` sessions) is 0 columns wide, and tqdm draws nothing on it; a narrow one
(a split tmux pane) cuts the bar's line at its edge, counts first. Until 2026-12-01
either showed no progress at all: the periodic lines were off because stderr was a
terminal (a fresh user's, 2026-12-01). Now a terminal of 0 columns is treated as the
file it is recorded into (timestamps, no bar), and wherever the bar's line does not
fit the periodic lines are written as well (``bar_fits``).
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

# Cells of bar besides its text before the bar counts as drawn: tqdm's own bar width
# when it knows no terminal's.
BAR_CELLS = 10


def columns(stream: IO[str] | None = None) -> int:
    """The width of the terminal ``stream`` (stderr) is; 0 for a file, a pipe, a closed
    stream, or a terminal nobody sized."""
    stream = sys.stderr if stream is None else stream
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):  # no descriptor, not a terminal, closed
        return 0


def watched(stream: IO[str] | None = None) -> bool:
    """Is ``stream`` (stderr) a terminal someone can watch: one with a width? Its lines
    then need no timestamps, and a bar may be drawn on it."""
    stream = sys.stderr if stream is None else stream
    try:
        return stream is not None and stream.isatty() and columns(stream) > 0
    except ValueError:  # closed
        return False


def bar_fits(bar: Any) -> bool:
    """Can the whole line of ``bar`` (a tqdm bar, or ``deferred.NoBar``) be read on its
    terminal now: its text (description, counts, rate, postfix) and, with a total, a bar
    of ``BAR_CELLS``? tqdm cuts the line at the terminal's edge (it keeps one column
    free), and at 0 columns draws nothing. False for a bar not drawn."""
    if bar.disable:
        return False
    # tqdm's line at ncols 0 is its whole text without the bar (tqdm.std.format_meter).
    text = bar.format_meter(**{**bar.format_dict, "ncols": 0})
    needed = len(text) + (BAR_CELLS + 2 if bar.total else 0)  # 2: the bar's "|" ends
    return columns(bar.fp) - 1 >= needed


def write_line(text: str, stream: IO[str]) -> None:
    """Write ``text`` and a newline to ``stream``. While tqdm draws a bar there, the bar
    is cleared first and drawn again below the line (``tqdm.write``): written straight
    on, a line was glued to the end of the bar's, as ``...workers=2]crawler-master:
    stopping: ...`` (a fresh user's, 2026-12-01). tqdm is in ``sys.modules`` only once
    something drew, or may draw, a bar (``deferred.progress_bar``); it is not imported
    for this."""
    tqdm = sys.modules.get("tqdm")
    if tqdm is None:
        stream.write(text + "\n")
    else:
        tqdm.tqdm.write(text, file=stream)


def printable(text: str) -> str:
    """``text`` with every control or otherwise unprintable character escaped (``\\r``,
    ``\\x1b``, ``\\u2028``): text from the network, in a log line or a terminal."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)
