"""No file a command writes may be another of its files, or one it reads: one check for
the master (``--csv``, ``--log-file``, ``--output``), the worker (``--log-file``),
``crawler-report --out`` and ``crawler-export --out``, made before anything is written.

A fresh user pointed ``--csv`` at the manifest (every row lost), at the key and at a URL
list, ``--log-file`` at a list and at the key, ``--output`` at the list folder, and
``crawler-report --out`` at the manifest; ``--csv`` at a stored image replaced it while
its row stayed ``ok``. Paths are compared as the file system resolves them: symlinks,
hard links, ``..``, names of files that do not exist yet.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from crawler.atomic import descriptor
from crawler.exceptions import UsageError
from crawler.layout import in_shards, named_stored
from crawler.manifest import COMPANION_SUFFIXES, read_runs, side_files

# The flag that moves each file a run keeps (``run_files``); '': the manifest's files.
KEPT_BY = {"shared key": "--authkey-file", "": "--manifest or --output"}


def check_distinct(
    chosen: dict[str, Path | None],
    kept: dict[str, Path],
    lists: list[str],
    images: tuple[Path, ...] = (),
) -> None:
    """Refuse, before anything is written, a file the run writes that is another file of
    the run or one it reads. ``chosen``: the files named by a flag (``--csv``,
    ``--log-file``), by that flag; ``kept``: the files the run keeps (the manifest and
    those beside it, the key), by what each is; ``lists``: the URL lists as given
    (files, folders, ``-``). A chosen file may not be any other file; no file written
    may be a list, nor a visible file in a list folder (``master.lists`` would read it
    as a list the next night), nor lie in the shard folders of ``images`` (the folders
    stored images go to: ``layout.in_shards``). Raises UsageError (one line)."""
    files = [(flag, path) for flag, path in chosen.items() if path is not None]
    for what, named in [*files, *kept.items(), *(("URL list", p) for p in lists if p != "-")]:
        utf8_name(named, what)
    for root in images:
        utf8_name(root, "image folder")
    for flag, path in files:
        for root in images:
            if in_shards(path, root):
                raise UsageError(
                    f"{flag} {path} is among the stored images of {root}: choose another path"
                )
        if named_stored(path):  # a store this command does not know of (a shared one)
            raise UsageError(f"{flag} {path} is named as a stored image is: choose another path")
    others = [*files, *kept.items()]
    for index, (flag, path) in enumerate(files):
        _not_another(flag, path, others[index + 1 :], others)
    for what, path in others:
        if what in chosen:
            _not_a_list(path, what, "another path", lists)
        else:
            _not_a_list(path, f"the {what}", f"another {KEPT_BY.get(what, KEPT_BY[''])}", lists)


def utf8_name(path: Path | str, what: str) -> None:
    """Raise UsageError when ``path``, made absolute, is not valid UTF-8: a byte the
    locale could not decode, kept as a surrogate (PEP 383), in its name or a folder's.
    The manifest, summary and logs are UTF-8 and name these files (a row's ``source``
    names its list): such a list made the master fail with a traceback once its first
    row was written, every night, its images stored and named by no row; such an
    ``--output`` a traceback in the worker, then the master (a fresh user's, 2026-12-01)."""
    full = os.path.abspath(path)
    try:
        full.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(full).decode("utf-8", "backslashreplace")
        raise UsageError(
            f"{what} {shown} is not valid UTF-8 (in its name or a folder's): the manifest "
            "and logs are UTF-8 and name it; rename it"
        ) from None


def _not_another(
    flag: str, path: Path, later: list[tuple[str, Path]], every: list[tuple[str, Path]]
) -> None:
    """Raise UsageError when ``path`` is one of ``later``, or a file written beside one
    of ``every`` while that one is being written (``manifest.COMPANION_SUFFIXES``)."""
    for what, other in later:
        if _same(path, other) and not _in_place(path):  # two outputs into /dev/null: fine
            raise UsageError(f"{flag} {path} is the {what}: choose another path")
    for what, other in every:
        if any(_same(path, Path(f"{other}{end}")) for end in COMPANION_SUFFIXES):
            raise UsageError(
                f"{flag} {path} is where the {what} is written before it replaces "
                f"{other}: choose another path"
            )


def _not_a_list(path: Path, name: str, fix: str, lists: list[str]) -> None:
    """Raise UsageError when ``path`` is one of ``lists`` or would be read as one."""
    for given in lists:
        if given != "-" and _same(path, Path(given)):
            raise UsageError(f"{name} {path} is one of the URL lists: choose {fix}")
        if given != "-" and os.path.isdir(given) and _inside(path, Path(given)):
            raise UsageError(
                f"{name} {path} is in the URL list folder {given}, and would be read "
                f"as a list: choose {fix}"
            )


def run_files(manifest: Path, key: Path | None) -> dict[str, Path]:
    """What ``check_distinct`` calls ``kept``: the manifest, the files beside it and the
    shared key (``key``: the --authkey-file, or the one a run generates)."""
    kept = side_files(manifest)
    if key is not None:
        kept["shared key"] = key
    return kept


def listed_before(manifest: Path) -> list[str]:
    """The URL lists the runs of ``manifest`` read (the ``lists`` of its run history,
    absolute) that are there now: what ``check_distinct`` must keep ``crawler-report``
    and ``crawler-export`` from writing over. Until 2026-12-03 ``crawler-report --out``
    replaced a list with the report, exit 0, and the next night read it as an HTML
    page (a fresh user's). A run of an older crawler recorded no lists: none of its."""
    found: dict[str, None] = {}
    for run in read_runs(manifest):
        paths = run.get("lists")
        for path in paths if isinstance(paths, list) else ():
            if isinstance(path, str) and os.path.isabs(path) and os.path.exists(path):
                found[path] = None
    return list(found)


def _same(a: Path, b: Path) -> bool:
    """One file, by any name: a link, a relative path, a folder reached by a symlink."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they would be
        return os.path.realpath(a) == os.path.realpath(b)


def _inside(path: Path, folder: Path) -> bool:
    """``path`` would be one of ``folder``'s list files (not recursive; hidden left out)."""
    return not path.name.startswith(".") and _same(path.parent, folder)


def _in_place(path: Path) -> bool:
    """A character device (``/dev/null``, a terminal) or a descriptor's name
    (``/dev/stdout``): written into, never replaced (``atomic.replacing``), so any
    number of outputs may share it."""
    try:
        return stat.S_ISCHR(os.stat(path).st_mode) or descriptor(path) is not None
    except OSError:
        return False
