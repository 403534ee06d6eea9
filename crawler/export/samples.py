"""One sample of a dataset, and the writers of the two image formats.

A sample is one stored image: ``KEY.EXT`` (the image bytes), ``KEY.json`` (the
manifest row, the list's extra columns under ``extra``) and, with ``--caption-column``,
``KEY.txt``. Keys are the sample's number, nine digits: no dots (WebDataset splits a
member's name at the first dot), sortable.

- ``webdataset``: POSIX tar shards of ``shard_size`` samples, ``shard-00000.tar``, ...
  (the standard library's ``tarfile``), each written as ``.part`` and renamed when
  whole; then ``shards.json``: wids' shard index (every shard's name and sample
  count, the format webdataset's indexed loader reads), plus ``pattern``, the shards in
  the brace notation ``webdataset.WebDataset`` expands (``shard-{00000..00012}.tar``).
- ``files``: the same three files per sample in folders of ``shard_size`` samples,
  ``00000/``, ``00001/``, ... (each file written whole or not at all).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler.partfile import write_atomically


@dataclass(frozen=True)
class Sample:
    key: str  # nine digits
    image: bytes
    extension: str  # without the dot: jpg, png, ...
    meta: dict[str, Any]  # the .json
    caption: str | None = None  # the .txt

    def members(self) -> list[tuple[str, bytes]]:
        """(name, bytes) of the sample's files, image first."""
        meta = json.dumps(self.meta, ensure_ascii=False, sort_keys=True).encode("utf-8")
        files = [(f"{self.key}.{self.extension}", self.image), (f"{self.key}.json", meta)]
        if self.caption is not None:
            files.append((f"{self.key}.txt", self.caption.encode("utf-8")))
        return files


class TarShards:
    """Writes samples into tar shards of ``shard_size`` samples in ``out``."""

    def __init__(self, out: Path, shard_size: int) -> None:
        self.out = out
        self.shard_size = shard_size
        self.shards: list[tuple[str, int]] = []  # (name, samples) of the finished shards
        self._tar: tarfile.TarFile | None = None
        self._count = 0

    def add(self, sample: Sample) -> None:
        """Append ``sample``; raises OSError when the folder refuses (disk full)."""
        if self._tar is None:
            name = f"shard-{len(self.shards):05d}.tar"
            part = self.out / (name + ".part")
            self._tar = tarfile.open(part, "w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
            self._name, self._count = name, 0
        for name, data in sample.members():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0  # reproducible shards
            self._tar.addfile(info, io.BytesIO(data))
        self._count += 1
        if self._count >= self.shard_size:
            self._finish_shard()

    def _finish_shard(self) -> None:
        assert self._tar is not None
        self._tar.close()
        os.replace(self.out / (self._name + ".part"), self.out / self._name)
        self.shards.append((self._name, self._count))
        self._tar = None

    def close(self) -> list[str]:
        """Finish the last shard and write the index files; returns the shards' names."""
        if self._tar is not None:
            self._finish_shard()
        last = len(self.shards) - 1
        index = {
            "__kind__": "wids-shard-index-v1",
            "wids_version": 1,
            "name": "crawler-export",
            "shardlist": [{"url": name, "nsamples": n} for name, n in self.shards],
            # brace notation, as webdataset.WebDataset takes it (after the folder's path)
            "pattern": f"shard-{{00000..{last:05d}}}.tar" if self.shards else None,
        }
        write_atomically(self.out, "shards.json", (json.dumps(index, indent=1) + "\n").encode())
        return [name for name, _ in self.shards]

    def abort(self) -> None:
        """Drop the unfinished shard (after an error): no partial shard has a final name."""
        if self._tar is not None:
            with contextlib.suppress(OSError):
                self._tar.close()
            (self.out / (self._name + ".part")).unlink(missing_ok=True)
            self._tar = None


class LooseFiles:
    """Writes samples as files, ``shard_size`` samples a folder."""

    def __init__(self, out: Path, shard_size: int) -> None:
        self.out = out
        self.shard_size = shard_size
        self.count = 0

    def add(self, sample: Sample) -> None:
        """Write ``sample``'s files; raises OSError (StoreFailure) when the folder refuses."""
        folder = f"{self.count // self.shard_size:05d}"
        for name, data in sample.members():
            write_atomically(self.out, f"{folder}/{name}", data)
        self.count += 1

    def close(self) -> list[str]:
        return [f"{n:05d}" for n in range(-(-self.count // self.shard_size))]

    def abort(self) -> None:
        pass
