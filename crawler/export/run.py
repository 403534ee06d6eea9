"""An export from start to summary: every current row accounted for.

``export(config)`` streams the manifest's current rows (``rows.CurrentRows``); for
``webdataset`` and ``files`` each success row's image is read back (``images``),
checked, optionally resized (``derive``) and written as a sample (``samples``); for
``parquet`` every row is written (``parquet``). A row whose image cannot be exported
gets a status in the export's summary (``export.summary.json`` in the output folder,
with the first rows of each problem), never an exception. Memory is bounded whatever
the manifest's size: rows stream, the URL index is on disk.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from crawler.exceptions import ExportError, StoreFailure, UsageError
from crawler.export import derive, parquet, stale
from crawler.export.images import (
    EXPORTED,
    NO_IMAGE,
    PROBLEMS,
    STORE_ERROR,
    ImageReader,
    RowImage,
    is_sample,
)
from crawler.export.rows import CurrentRows, check_manifest
from crawler.export.samples import LooseFiles, Sample, TarShards
from crawler.layout import ensure_writable, stored_extension
from crawler.partfile import write_atomically

FORMATS = ("webdataset", "parquet", "files")
SUMMARY_NAME = "export.summary.json"
EXAMPLES = 20  # rows listed per problem in the summary
COLUMNS_SHOWN = 20  # list columns named when --caption-column names none of them


@dataclass(frozen=True)
class ExportConfig:
    manifest: Path
    out: Path
    format: str  # one of FORMATS
    images: tuple[Path, ...] = ()  # the hosts' stored images, looked in in order; (): the
    # manifest's folder
    shard_size: int = 10_000  # samples a shard (a folder for ``files``)
    caption_column: str | None = None  # the list column written as KEY.txt
    resize: int | None = None  # px; None: the stored bytes as they are
    resize_mode: str = "keep_ratio"  # one of derive.MODES
    progress: bool = True


@dataclass
class ExportResult:
    rows: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)  # shards, folders or the Parquet file
    damaged_lines: int = 0
    nulled_values: int = 0  # values of the wrong type written as null
    captions: int = 0  # samples written with a caption (--caption-column)
    kept_earlier: list[str] = field(default_factory=list)  # see stale.replace_earlier
    empty_stores: list[str] = field(default_factory=list)  # ImageReader.empty_stores
    mixed_folders: dict[str, list[str]] = field(default_factory=dict)  # stale.put_in_place
    columns: set[str] = field(default_factory=set)  # list columns seen (the first rows')

    @property
    def problems(self) -> int:
        return sum(self.statuses[s] for s in PROBLEMS)

    def caption_missing(self, config: ExportConfig) -> str | None:
        """What to say when ``--caption-column`` named a column no exported row has."""
        if config.caption_column is None or self.captions or not self.statuses[EXPORTED]:
            return None
        if config.caption_column in self.columns:  # there, but empty in every row
            return f"every exported row's list column {config.caption_column!r} is empty"
        seen = ", ".join(sorted(self.columns)[:COLUMNS_SHOWN]) or "none"
        return f"no exported row has the list column {config.caption_column!r} (columns: {seen})"

    def as_dict(self, config: ExportConfig) -> dict[str, Any]:
        return {
            "manifest": str(config.manifest),
            "format": config.format,
            "rows": self.rows,
            "statuses": dict(sorted(self.statuses.items())),
            "problems": self.problems,
            "examples": self.examples,
            "outputs": self.outputs,
            "damaged_lines": self.damaged_lines,
            "nulled_values": self.nulled_values,
            "captions": self.captions if config.caption_column is not None else None,
            "caption_missing": self.caption_missing(config),
            "kept_earlier": self.kept_earlier,
            "empty_stores": self.empty_stores,
            "mixed_folders": self.mixed_folders,
        }

    @property
    def whole(self) -> bool:
        """Did every store answer, holding some of its rows' images? Only a whole
        export removes what the earlier one wrote and this one did not."""
        return not self.statuses[STORE_ERROR] and not self.empty_stores


def export(config: ExportConfig) -> ExportResult:
    """Write the export; returns what happened to each row. Raises UsageError (bad
    manifest, one with no row at all, unusable --out, missing extra) or ExportError (the
    output failed midway)."""
    if config.format not in FORMATS:
        raise UsageError(f"unknown format {config.format!r} (one of {', '.join(FORMATS)})")
    if config.shard_size < 1:
        raise UsageError("--shard-size must be at least 1")
    if config.resize is not None and config.resize < 1:
        raise UsageError("--resize must be at least 1 px")
    if config.resize_mode not in derive.MODES:
        raise UsageError(f"unknown --resize-mode {config.resize_mode!r}")
    # Every check that can refuse comes before --out is made: a refusal writes nothing
    # (and "0 rows" with exit 0 from a file that is no manifest would fool a pipeline).
    check_manifest(config.manifest)
    if config.format == "parquet":
        parquet.schema()  # the extra is missing: say so before reading 10M rows
    ensure_writable(config.out, "--out folder")
    with stale.exclusive(config.out):  # one export at a time into a folder
        return _export(config)


def _export(config: ExportConfig) -> ExportResult:
    """``export``'s work, once its checks passed and ``--out`` is this export's."""
    earlier = stale.earlier_outputs(config.out / SUMMARY_NAME)
    rows = CurrentRows(config.manifest, config.out)
    result = ExportResult()
    staging, writer = config.out / stale.STAGING, None
    reader = ImageReader(config.images or (config.manifest.parent,))
    try:
        writer = _writer(config, stale.staging_folder(config.out))
        _write_all(config, rows, writer, result, reader)
        result.outputs = writer.close()
        result.mixed_folders = stale.put_in_place(staging, config.out, result.outputs, earlier)
    except (OSError, StoreFailure, UsageError) as exc:
        if writer is not None:
            writer.abort()  # its open file closed
        if isinstance(exc, UsageError):  # a store this host cannot open (the s3 extra)
            raise
        reason = getattr(exc, "strerror", None) or exc
        raise ExportError(f"cannot write the export in {config.out}: {reason}") from None
    finally:
        stale.discard(staging)  # after a failure: what it wrote goes, the earlier one stays
        rows.close()
    result.empty_stores = reader.empty_stores()
    if not result.whole:  # for want of a store: keep the rest
        result.kept_earlier = stale.still_there(config.out, earlier, result.outputs)
        result.mixed_folders |= earlier.kept_mixed(result.kept_earlier)
    else:
        stale.remove_stale(config.out, earlier, result.outputs, config.format == "webdataset")
    result.damaged_lines = rows.reading.damaged
    result.nulled_values += getattr(writer, "nulled", 0)
    _write_summary(config, result)
    return result


def _writer(config: ExportConfig, staging: Path) -> Any:
    if config.format == "parquet":
        return parquet.ParquetRows(staging)
    if config.format == "webdataset":
        return TarShards(staging, config.shard_size)
    return LooseFiles(staging, config.shard_size)


def _write_all(
    config: ExportConfig, rows: CurrentRows, writer: Any, result: ExportResult, reader: ImageReader
) -> None:
    make = _sample_maker(config, reader)
    # None: tqdm's own choice, off when stderr is not a terminal (cron logs get no bar).
    disable = None if config.progress else True
    bar = tqdm(total=rows.total, unit="row", disable=disable, dynamic_ncols=True)
    with bar:
        for row in rows:
            result.rows += 1
            bar.update(1)
            if config.format == "parquet":
                writer.add(row)
                result.statuses[EXPORTED] += 1
                result.nulled_values += rows.row_nulled  # written as null: exported rows'
                _note_columns(row, _caption(row, config), result)
                continue
            try:
                sample = make(row, result.statuses[EXPORTED])
            except RowImage as problem:
                result.statuses[problem.status] += 1
                examples = result.examples.setdefault(problem.status, [])
                if len(examples) < EXAMPLES:
                    examples.append({"url": row["url"], "reason": str(problem)})
                continue
            if sample is None:
                result.statuses[NO_IMAGE] += 1
                continue
            writer.add(sample)
            result.statuses[EXPORTED] += 1
            result.nulled_values += rows.row_nulled
            _note_columns(row, sample.caption, result)


def _note_columns(row: dict[str, Any], caption: str | None, result: ExportResult) -> None:
    """Count an exported row's caption (an empty cell is none) and note its list columns,
    for every format: a Parquet export said "no exported row has the list column
    'caption' (columns: none)" of rows that had it."""
    result.captions += bool(caption)
    if len(result.columns) < COLUMNS_SHOWN and isinstance(row.get("extra"), dict):
        result.columns.update(map(str, row["extra"]))


def _sample_maker(
    config: ExportConfig, reader: ImageReader
) -> Callable[[dict[str, Any], int], Sample | None]:
    def make(row: dict[str, Any], number: int) -> Sample | None:
        if not is_sample(row):
            return None
        body = reader.read(row)
        extension = stored_extension(row["path"]) or "bin"
        meta = dict(row)
        if config.resize is not None:
            body, extension, width, height = _derived(body, config)
            meta["derived"] = {"width": width, "height": height, "mode": config.resize_mode}
        # With --caption-column, every sample has its KEY.txt, empty when the row has no
        # caption: a sample without one broke loaders that ask for "txt" (webdataset's
        # to_tuple, the README's own example).
        caption = _caption(row, config)
        if caption is None and config.caption_column is not None:
            caption = ""
        return Sample(f"{number:09d}", body, extension, meta, caption)

    return make


def _derived(body: bytes, config: ExportConfig) -> tuple[bytes, str, int, int]:
    assert config.resize is not None
    try:
        return derive.derive(body, config.resize, config.resize_mode)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise RowImage("bad_image", f"cannot resize: {exc}"[:300]) from None


def _caption(row: dict[str, Any], config: ExportConfig) -> str | None:
    """The caption column's text; None without --caption-column or when the row lacks it.
    A JSON Lines list's value that is not a string is written as JSON (``false``, not
    Python's ``False``; an object with double quotes, not a Python dict's repr)."""
    extra = row.get("extra")
    if config.caption_column is None or not isinstance(extra, dict):
        return None
    value = extra.get(config.caption_column)
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _write_summary(config: ExportConfig, result: ExportResult) -> None:
    text = json.dumps(result.as_dict(config), indent=2, ensure_ascii=False) + "\n"
    try:
        write_atomically(config.out, SUMMARY_NAME, text.encode("utf-8"))
    except StoreFailure as failure:
        raise ExportError(f"cannot write the export summary: {failure}") from None
