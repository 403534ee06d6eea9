"""Names and numbers shared by the master and the workers: statuses, exit codes, defaults."""

from __future__ import annotations

# --- Status vocabulary (closed: the master rejects any other value from a worker). ---
OK = "ok"
NOT_MODIFIED = "not_modified"
DUPLICATE = "duplicate"
INVALID_URL = "invalid_url"
HTTP_ERROR = "http_error"
TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"
REDIRECT_ERROR = "redirect_error"
PRIVATE_ADDRESS = "private_address"
TOO_LARGE = "too_large"
NOT_IMAGE = "not_image"
UNSUPPORTED_FORMAT = "unsupported_format"
CORRUPT = "corrupt"
TOO_MANY_PIXELS = "too_many_pixels"
TOO_SMALL = "too_small"
BLOCKED = "blocked"
DISK_ERROR = "disk_error"
WORKER_LOST = "worker_lost"
WORKER_ERROR = "worker_error"

# X-Robots-Tag directives that opt an image out (``worker.xrobots``): img2dataset's
# default set (noai, noimageai, noindex, noimageindex) plus none (= noindex).
OPT_OUT_DIRECTIVES = ("noai", "noimageai", "noindex", "noimageindex", "none")

# Every status a manifest row may carry, with the one-line meaning the README documents.
STATUSES: dict[str, str] = {
    OK: "downloaded, decoded in full by Pillow and stored (or reused: see the reused field)",
    NOT_MODIFIED: "--refresh-after: the server answered 304, the stored image is current",
    DUPLICATE: "the same URL appeared earlier in the input; fetched once, under its first row",
    INVALID_URL: "not an http(s) URL; never sent to a worker",
    HTTP_ERROR: "the server answered with a non-2xx status (see http_status)",
    TIMEOUT: "connect or read timeout, or the per-URL deadline ran out",
    CONNECTION_ERROR: "DNS failure, refused or reset connection, body shorter than announced",
    REDIRECT_ERROR: "too many redirects, a redirect loop, or a redirect to a non-http(s) URL",
    PRIVATE_ADDRESS: "the host (or a redirect's) resolves to a loopback/private/link-local address",
    TOO_LARGE: "the body exceeded max_bytes (announced or while streaming)",
    NOT_IMAGE: "the bytes are no image at all (HTML, text, PDF, empty); see the error",
    UNSUPPORTED_FORMAT: "an image format the crawler does not store (SVG, HEIF, JPEG XL, ...)",
    CORRUPT: "the bytes start as a supported image but are not one whole image (truncated, "
    "damaged, a bad header)",
    TOO_MANY_PIXELS: "width x height above max_pixels, or an ICO of more images or bytes, an "
    "animation of more frames, a PNG of more chunks than its bounds (decompression-bomb guard)",
    TOO_SMALL: "smaller than min_width / min_height",
    BLOCKED: "robots.txt disallows it for our user agent, or the response's X-Robots-Tag "
    f"opts out ({', '.join(OPT_OUT_DIRECTIVES)}), or robots.txt was unavailable "
    "(its host unreachable, 5xx answers: transient, the next run tries again); the reason "
    "is in error",
    DISK_ERROR: "the worker could not write the file (disk full, read-only, permissions, its "
    "store gone) or ran out of file descriptors or threads: it took no more work",
    WORKER_LOST: "handed to workers max_attempts times and never answered",
    WORKER_ERROR: "an unexpected error inside the worker (a bug: please report it), or "
    "its host ran out of memory handling the URL",
}
SUCCESS_STATUSES = frozenset({OK, NOT_MODIFIED})
FAILED_STATUSES = frozenset(STATUSES) - SUCCESS_STATUSES - {DUPLICATE}
# HTTP statuses of a host asking for less: it is backed off (master.politeness), and the
# URLs of it a worker holds but has not started go back to the master (worker.lane).
OVERLOADED = frozenset({429, 503})
# An animation (or an icon's images) may decode to more pixels than one frame: all of a
# file's frames together may hold this many times --max-pixels (worker.verify, pngdata).
ANIMATION_PIXEL_FACTOR = 4
BACKOFF_START = 1.0  # seconds: the first penalty of a host that answered 429/503
RETRY_AFTER_MAX = 1e6  # seconds (~11 days): a longer Retry-After travels as this

# The morning summary's categories of what a run changed (a summary's ``changes``), in
# the order shown on stdout and in the report. Successes "reused" made no request;
# "revalidated" got a 304, "refetched" downloaded an image stored before; failures
# "not_fetched" asked nothing (not "tried": closing.alarm).
CHANGES: dict[str, str] = {
    "new_ok": "new",
    "reused": "reused",
    "revalidated": "revalidated (304)",
    "refresh_failed": "revalidation failed (stored copy kept)",
    "refetched": "downloaded again",
    "recovered": "recovered (failed before, ok now)",
    "new_failures": "new failures",
    "still_failing": "still failing (retried)",
    "not_fetched": "not fetched (their host given up: 429/503, Retry-After)",
    "kept_failures": "failures kept (waiting for their backoff, or permanent)",
    "given_up": "given up (--give-up-after)",
}

# The verification rules revision: which rules decided a row. Bump it whenever a change
# can alter a verdict or an image field (verification, URL parsing, what a limit means,
# width/height/orientation/phash): a rerun then retries the permanent failures runs of
# other rules decided (master.healing) and counts the stored images they passed, which
# --verify-stored=full checks again at the user's choice (master.plan.tell_resume); a
# worker of other rules is refused like another version (protocol). Recorded in every
# run's policy (config.Policy.rules, NAME.runs.jsonl).
RULES = "2026-12-01.2"  # .2: frame and chunk bounds, PNG ancillary chunks, coded --max-bytes

# --- Exit codes (documented in the README; cron jobs act on them). ---
EXIT_OK = 0  # the run completed; failed downloads are normal results
EXIT_ERROR = 1  # bad input or environment: nothing, or not everything, could start
EXIT_USAGE = 2  # argparse: bad command line
EXIT_INCOMPLETE = 3  # the run started but could not finish (workers gone, master lost)
EXIT_DEGRADED = 4  # completed, but nothing it tried succeeded, or too much failed
EXIT_INTERRUPTED = 130  # SIGINT / SIGTERM

# The outcome of a run's first run-history line (NAME.runs.jsonl), until its summary line.
RUN_STARTED = "started"

# --- Defaults. ---
DEFAULT_PORT = 8001
DEFAULT_OUTPUT = "downloads"
DEFAULT_MANIFEST_NAME = "manifest.jsonl"
DEFAULT_KEY_NAME = "authkey"  # the key a master generates beside its manifest
AUTHKEY_ENV = "CRAWLER_AUTHKEY"
# A worker started with only this reads its command line from stdin (master.prespawn).
ARGS_FROM_STDIN = "--args-from-stdin"
MAX_URL_LENGTH = 8192
# Download threads a worker may run: beyond a few dozen a process gains nothing (one
# GIL verifies every image: bench/HISTORY.md), and 100,000 spun for a minute, then died
# with a traceback at the system's thread limit. More concurrency: more workers.
MAX_THREADS = 1024
MAX_PROCESSES = 256  # a worker and its copies (--processes, --local-workers)

# For str.translate: control characters as U+FFFD in what people open (the CSV export,
# the HTML report): C0 (tab, newline and carriage return aside), DEL and C1 (a NUL from a
# list line made tools take them for binary files; C1's CSI drives terminals), the line
# and paragraph separators, and the bidirectional embeddings, overrides and isolates
# (U+202A-U+202E, U+2066-U+2069: text shown in another order than it is, "Trojan
# Source", CVE-2021-42574). The manifest keeps the text as it was.
_CONTROL_CODES = [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
_CONTROL_CODES += [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
CONTROL_CHARACTERS = {code: "\ufffd" for code in _CONTROL_CODES if chr(code) not in "\t\n\r"}

# threading's words (RuntimeError) when the system refuses a thread: EAGAIN from
# pthread_create, a process or thread limit (ulimit -u, a cgroup's pids.max).
NO_THREAD = "can't start new thread"
# What refuses a thread: a process limit, or no room for its stack (``ulimit -v``: a
# resource-limits trial was sent to the process limits alone).
THREAD_LIMITS = (
    "a process or thread limit: ulimit -u, a cgroup's pids.max; or memory for its stack: ulimit -v"
)
