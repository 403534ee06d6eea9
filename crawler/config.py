"""Configuration objects: built once from the command line, then passed into the core.

``Policy`` is the run's policy. It is set on the master and sent to every worker when
it connects, so that all hosts of a run download with the same timeouts, limits and
user agent. ``MasterConfig`` and ``WorkerConfig`` add what is local to one host; their
parts (``ListSpec``, ``ResumeOptions``, ``HostLimits``) live here too, so that this
module depends on nothing but ``constants`` and every layer can import it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from crawler import __version__
from crawler import constants as c

DEFAULT_USER_AGENT = (
    f"crawler/{__version__} (image harvester; +https://github.com/crawler-project/crawler)"
)


STDIN = "-"
FORMATS = ("text", "csv", "tsv", "jsonl")
INPUT_FORMATS = ("auto", *FORMATS)
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def format_of(path: str) -> str:
    """The format a list's name implies (after an optional ``.gz``): text unless known."""
    if path == STDIN:
        return "text"
    name = os.path.basename(path).lower().removesuffix(".gz")
    return _SUFFIXES.get(os.path.splitext(name)[1], "text")


@dataclass(frozen=True)
class ListSpec:
    """One list to read: its path (or ``-``), its format and, for CSV/TSV/JSONL, its URL key."""

    path: str
    format: str = "auto"  # one of INPUT_FORMATS
    url_column: str = "url"
    folder: str = ""  # the list folder named on the command line it is a file of, if any

    @property
    def kind(self) -> str:
        """The format the list is read in: the given one, else the one its name implies."""
        return format_of(self.path) if self.format == "auto" else self.format


@dataclass(frozen=True)
class ResumeOptions:
    """What a rerun does with the rows of earlier runs."""

    retry_failed: bool = False  # hand out URLs whose last status was a failure again
    refresh_after: timedelta | None = None  # revalidate stored images older than this
    give_up_after: int = 5  # failed runs in a row after which a transient failure is kept
    policy: Policy | None = None  # this run's (a verdict of a different policy is redone)
    # "": trust stored images; "size", "hash" or "full" (hashed and verified again by
    # this version's rules): send them to workers for a check
    verify_stored: str = ""
    store: str = ""  # the run's store spec (stores.normalize_spec): where trusted images are


@dataclass(frozen=True)
class HostLimits:
    """Cluster-wide politeness, applied by the master to every lease."""

    per_host: int = 0  # URLs of one host leased at once, cluster-wide; 0: no cap
    host_delay: float = 0.0  # seconds between two leases of one host


@dataclass(frozen=True)
class Policy:
    """Run-wide download policy, decided on the master."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 60.0  # whole URL: connect, redirects and body
    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 178_956_970  # Pillow's own default MAX_IMAGE_PIXELS
    min_width: int = 0
    min_height: int = 0
    retries: int = 2  # extra attempts for transient failures
    backoff: float = 0.5  # seconds; doubled per retry, with jitter
    max_redirects: int = 10
    block_private: bool = True  # refuse hosts resolving to non-public addresses
    user_agent: str = DEFAULT_USER_AGENT
    lease_seconds: float = 60.0  # a task unanswered this long goes back to the queue
    ignore_robots: bool = False  # skip robots.txt and X-Robots-Tag (lists the user owns)
    store: str = ""  # stores.normalize_spec: "" each worker's --output, file:// or s3://
    dedup_content: bool = False  # name images by their bytes' sha256: one copy per content
    # The shared folder's identity, as the master sees it (stores.FolderStore.identity):
    # a worker whose folder at that path holds another (or none) is not on the share.
    store_id: str = ""
    rules: str = c.RULES  # the verification rules revision the run decides by

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Policy:
        """Parse a policy sent by a master; unknown keys are ignored, wrong types refused."""
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("policy is not a JSON object")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in raw:
                continue
            value, kind = raw[f.name], type(getattr(cls(), f.name))
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if type(value) is not kind:
                raise ValueError(f"policy field {f.name!r} has the wrong type")
            values[f.name] = value
        return cls(**values)


@dataclass(frozen=True)
class MasterConfig:
    """Everything one master run needs, from the command line."""

    lists: tuple[ListSpec | str, ...]  # a str: a list file, its format from its name
    authkey: bytes = field(repr=False)
    bind: str = ""
    port: int = c.DEFAULT_PORT
    output: Path = Path(c.DEFAULT_OUTPUT)
    manifest: Path = Path(c.DEFAULT_OUTPUT) / c.DEFAULT_MANIFEST_NAME
    csv: Path | None = None
    local_workers: int = 0
    worker_threads: int = 8  # --threads for the local workers
    max_attempts: int = 3  # leases per URL before it is declared worker_lost
    resume: ResumeOptions = field(default_factory=ResumeOptions)
    limits: HostLimits = field(default_factory=HostLimits)  # --per-host, --host-delay
    grace: float = 30.0  # on SIGINT/SIGTERM: seconds to keep collecting answers in progress
    progress: bool = True
    progress_interval: float = 60.0  # seconds between progress log lines without a terminal
    quiet: bool = False
    report: bool = True  # write the HTML run report at the end
    policy: Policy = Policy()
    authkey_file: str | None = None  # where the key came from, handed on to local workers
    authkey_origin: str = "file"  # file, env, generated (new, printed once) or reused
    idle_timeout: float = 3600.0  # no worker active this long while URLs remain: give up
    max_failure_rate: float = 0.5  # above this share of failed tries: exit EXIT_DEGRADED
    listen_backlog: int = 1024  # queue port: connections the kernel holds before accept()


@dataclass(frozen=True)
class WorkerConfig:
    """One worker host's own resources; the download policy comes from the master."""

    server: str
    authkey: bytes = field(repr=False)
    port: int = c.DEFAULT_PORT
    threads: int = 8
    output: Path = Path(c.DEFAULT_OUTPUT)
    connect_timeout: float = 10.0
    quiet: bool = False
    progress_interval: float = 60.0  # seconds between progress log lines without a terminal
    wait: bool = False  # keep running: wait for a master, work its run, wait for the next
    processes: int = 1  # this worker and processes - 1 copies forked from it (worker.copies)
    host_id: str = ""  # stable name of this host (manifest's host field); "": the host name
