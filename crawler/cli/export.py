"""``crawler-export`` / ``python -m crawler.export MANIFEST --format F --out DIR``."""

from __future__ import annotations

import argparse
import sys

from crawler import constants as c
from crawler.cli.edge import run_plain
from crawler.cli.startup import interrupt_on_stop_signals, prepare_process
from crawler.cli.values import RESIZE, SHARD_SIZE, nonempty, nonempty_path
from crawler.console import show
from crawler.exceptions import UsageError
from crawler.export.derive import MODES
from crawler.export.run import FORMATS, SUMMARY_NAME, ExportConfig, ExportResult, export
from crawler.outputs import check_distinct, listed_before, run_files
from crawler.protocol import VERSION_TEXT


def export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="crawler-export",
        description="Turn a crawler manifest and its stored images into a dataset: "
        "WebDataset tar shards, a Parquet file of the manifest, or loose files.",
    )
    p.add_argument("--version", action="version", version=VERSION_TEXT)
    p.add_argument("manifest", type=nonempty_path, metavar="MANIFEST", help="the manifest (.jsonl)")
    p.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    p.add_argument(
        "--out", required=True, type=nonempty_path, metavar="DIR", help="the output folder"
    )
    p.add_argument(
        "--images",
        type=nonempty_path,
        action="append",
        metavar="DIR",
        help="a host's stored images, for rows without a shared store; again for "
        "each host's folder (default: the manifest's folder)",
    )
    p.add_argument("--shard-size", type=SHARD_SIZE, metavar="N", help="samples a shard (10000)")
    p.add_argument(
        "--caption-column",
        type=nonempty,
        metavar="NAME",
        help="the list column written as each sample's .txt",
    )
    p.add_argument(
        "--resize",
        type=RESIZE,
        metavar="PX",
        help="write derived images of PX (originals unchanged)",
    )
    p.add_argument("--resize-mode", choices=MODES, help="how --resize fits (keep_ratio)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the export, print its summary; returns the exit code: 0 when every image
    row was exported, 3 when some were not (their statuses in the summary) or
    ``--caption-column`` named a column no exported row has, 1 on error."""
    prepare_process()
    interrupt_on_stop_signals()
    parser = export_parser()
    args = parser.parse_args(argv)
    _refuse_idle_flags(parser, args)
    config = ExportConfig(
        manifest=args.manifest,
        out=args.out,
        format=args.format,
        images=tuple(args.images or ()),
        caption_column=args.caption_column,
        resize=args.resize,
        progress=not args.no_progress,
        **{k: v for k in ("shard_size", "resize_mode") if (v := getattr(args, k)) is not None},
    )

    def body() -> int:
        # The export's summary may not be one of the master's files (a manifest named
        # export.jsonl has its run summary at export.summary.json): refused, nothing
        # written, as the master and crawler-report refuse theirs.
        kept = run_files(config.manifest, config.manifest.parent / c.DEFAULT_KEY_NAME)
        for folder in config.images:  # each row was a store_error, with no word of why
            if not folder.is_dir():  # (a fresh user's, 2026-12-03)
                raise UsageError(
                    f"--images {folder} is not a folder here (a host's stored images: a "
                    "worker's --output)"
                )
        images = config.images or (config.manifest.parent,)
        lists = listed_before(config.manifest)  # a list folder as --out: read as lists
        check_distinct({"--out": config.out / SUMMARY_NAME}, kept, lists, images)
        result = export(config)
        show(_summary(config, result))
        missing = result.caption_missing(config)
        if missing is not None:  # a dataset without its captions: not what was asked
            print(f"crawler-export: {missing}", file=sys.stderr)
        for store in result.empty_stores:
            print(_empty(store, result, not config.images), file=sys.stderr)
        if result.statuses["store_error"] and result.kept_earlier:
            print(_kept(result), file=sys.stderr)
        return c.EXIT_INCOMPLETE if result.problems or missing else c.EXIT_OK

    return run_plain("crawler-export", body)


def _refuse_idle_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A flag that would change nothing is a usage error (exit 2), not ignored: whoever
    gave it expects it to act (until 2026-12-01 these were silently ignored)."""
    if args.resize_mode is not None and args.resize is None:
        parser.error("--resize-mode needs --resize PX")
    if args.format == "parquet" and args.resize is not None:  # (--shard-size: harmless)
        parser.error("--resize does nothing with --format parquet (a file of rows, no images)")


# What each format writes, one and many (until 2026-12-02 "1 files outputs", a fresh user's).
OUTPUT_WORDS = {
    "webdataset": ("tar shard", "tar shards"),
    "files": ("shard folder", "shard folders"),
    "parquet": ("Parquet file", "Parquet files"),
}


def _summary(config: ExportConfig, result: ExportResult) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(result.statuses.items()))
    lines = [f"crawler-export: {result.rows} rows: {counts or 'none'}"]
    if result.damaged_lines:
        lines.append(f"  {result.damaged_lines} damaged manifest lines skipped")
    count = len(result.outputs)
    one, many = OUTPUT_WORDS.get(config.format, ("output", "outputs"))
    lines.append(f"  {count} {one if count == 1 else many} in {config.out}")
    lines.append(f"  summary: {config.out / SUMMARY_NAME}")
    return "\n".join(lines)


def _kept(result: ExportResult) -> str:
    failed = result.statuses["store_error"]
    return (
        f"crawler-export: the store failed for {failed} rows: {len(result.kept_earlier)} "
        "files or folders of the earlier export were kept beside this one (kept_earlier in the "
        "summary); export again once the store answers"
    )


def _empty(store: str, result: ExportResult, guessed: bool) -> str:
    """``guessed``: ``store`` is the manifest's folder, taken for this host's images for
    want of ``--images`` (until 2026-12-02 the line did not say so: a fresh user's, whose
    images were in a worker's --output elsewhere)."""
    kept = len(result.kept_earlier)
    where = (
        " (the manifest's folder: if this host's images are elsewhere, a worker's --output, "
        "give --images DIR)"
        if guessed and "://" not in store
        else ""
    )
    return (
        f"crawler-export: none of the images the rows name is in {store}{where}: the store "
        f"looks empty or unmounted; {kept} files or folders of the earlier export were kept "
        "(kept_earlier in the summary); export again once it is mounted"
    )
