"""The master/worker protocol on ``multiprocessing.managers``: names and messages.

Three callables are registered, by name (``REGISTERED``): ``get_task_queue`` and
``get_result_queue`` (the names of the document the product grew from) and
``get_run_control`` (hands the run's policy to a worker). The master registers them with
the objects it serves (``master.endpoints``), a worker without (``worker.channel``).
Calls carry plain data only and the managers use the ``xmlrpclib`` serializer, so a peer
holding the key can send data but never code: with the default pickle serializer,
anyone with the key could run code on the master and, through the master, on every
worker. Tasks and results are batched, so the serializer's extra cost per call (~2x
pickle) is paid once per batch.

Messages are JSON text: a task is ``{"id", "url", "attempt", "token"[, "stored"]
[, "robots"]}`` (``token``: the lease's fencing token, a per-URL lease counter;
``stored``: the ``StoredCopy`` an earlier run left for the URL, with what to check of
it; ``robots``: the id of its origin's robots.txt verdict, which ``TaskQueue.robots``
hands out); a result is one manifest row's worth of fields (see ``RESULT_FIELDS``),
with the token of the lease it answers, plus ``robots`` when the robots.txt the worker
fetched for it was unavailable (``crawler.robotstxt``). A verdict a worker fetched goes
to the master at once, before the URL's result (``TaskQueue.robots_found``). Both are
checked on receipt.

A master and a worker work together only when they speak the same protocol
(``PROTOCOL``), which both send at ``hello``: a worker of another crawler version could
read a policy without the rules it lacks, or send results the master ignores, every
lease of it redone. A worker refuses a master of another protocol; a master turns such
a worker away (``hello``'s answer then holds no usable policy, which stops workers of
any version). The identity is derived from the shapes themselves, so it changes with
any of them (a result's ``robots_late``, 2026-12-02, made it another).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from crawler import __version__
from crawler.config import Policy
from crawler.constants import RETRY_AFTER_MAX, RULES, STATUSES
from crawler.robotstxt import check_verdict

SERIALIZER = "xmlrpclib"
MAX_GET_WAIT = 2.0  # seconds a get may block on the master: keeps its server threads short-lived
# Each exposed method, with the parameters a call sends, in order: the master's endpoints
# take exactly these (tests/test_mixed_versions.py), and they are part of the identity,
# so a parameter added is another protocol, refused at hello, not a failing call.
CALLS: dict[str, dict[str, tuple[str, ...]]] = {
    "task": {
        "get": ("worker", "max_items", "timeout", "room"),
        "renew": ("worker", "ids"),
        "release": ("worker", "ids"),
        "robots": ("worker", "ids"),
        "robots_found": ("worker", "items"),
    },
    "result": {"put": ("worker", "results")},
    "control": {"hello": ("worker", "info"), "bye": ("worker",)},
}
TASK_METHODS = tuple(CALLS["task"])
RESULT_METHODS = tuple(CALLS["result"])
CONTROL_METHODS = tuple(CALLS["control"])
# The registered callables: name -> the methods their objects expose.
REGISTERED: dict[str, tuple[str, ...]] = {
    "get_task_queue": TASK_METHODS,
    "get_result_queue": RESULT_METHODS,
    "get_run_control": CONTROL_METHODS,
}

# Result fields a worker reports, with their JSON types (None allowed for all but the first four).
RESULT_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (int,),
    "url": (str,),
    "status": (str,),
    "worker": (str,),
    "host": (str,),  # the worker's --host-id: whose store holds the image
    "store": (str,),  # the shared store the worker used (the policy's); None: its own folder
    "http_status": (int,),
    "error": (str,),
    "path": (str,),
    "sha256": (str,),
    "phash": (str,),  # 64-bit perceptual hash, 16 hex digits (worker.phash)
    "bytes": (int,),
    "width": (int,),
    "height": (int,),
    "orientation": (int,),
    "format": (str,),
    "attempts": (int,),
    "elapsed_s": (float, int),
    "final_url": (str,),
    "content_type": (str,),
    "etag": (str,),
    "last_modified": (str,),
    "reused": (bool,),
    "robots": (dict,),  # not a manifest field: the robots.txt verdict fetched for the URL
    "robots_late": (bool,),  # nor this: its --deadline went to robots.txt (leases: again)
    # Not a manifest field: True when the worker revalidated a stored copy it holds (its
    # size, with --verify-stored=hash its sha256, as the manifest says); a failure then
    # leaves that copy the URL's image (master.results).
    "held": (bool,),
    # Not a manifest field: True when the worker verified the stored copy it reused in
    # full (--verify-stored=full): the result's image fields, None too, replace the row's.
    "verified": (bool,),
    "token": (int,),  # not a manifest field: the fencing token of the lease answered
    "retry_after": (float, int),  # nor this: s a 429/503's Retry-After asked (<= RETRY_AFTER_MAX)
    # Not a manifest field: seconds between the URL's latest request and the result's put.
    "request_age": (float, int),
}
REQUIRED_FIELDS = ("id", "url", "status", "worker")


# What a worker checks of a stored copy before reusing it (StoredCopy.verify; "": its size).
VERIFY_LEVELS = ("size", "hash", "full")


# --- Messages ---
@dataclass(frozen=True)
class StoredCopy:
    """The image an earlier run stored for a URL, as the master knows it from the
    manifest: a worker reuses it (if its host holds that file) or revalidates it."""

    path: str
    bytes: int
    etag: str | None
    last_modified: str | None
    refresh: bool
    sha256: str | None = None  # of the stored bytes
    # --verify-stored: "size", "hash" (the bytes are hashed again) or "full" (hashed and
    # verified again by this version's rules, constants.RULES)
    verify: str = ""
    store: str | None = None  # where the manifest says it is: the row's store (a spec)
    host: str | None = None  # and host (per-host stores)


@dataclass(frozen=True)
class Task:
    id: int
    url: str
    attempt: int  # how many times this URL has been leased, this lease included
    stored: StoredCopy | None = None
    robots: int | None = None  # id of the origin's robots.txt verdict; None: fetch it
    token: int = 0  # the lease's fencing token: the worker returns it with the result


def encode_task(task: Task, stored: dict[str, Any] | None) -> str:
    """A task message; ``stored`` as ``StoredCopy``'s fields (see ``Plan.stored_copy``)."""
    fields: dict[str, Any] = {"id": task.id, "url": task.url, "attempt": task.attempt}
    fields["token"] = task.token
    if stored is not None:
        fields["stored"] = stored
    if task.robots is not None:
        fields["robots"] = task.robots
    return json.dumps(fields)


def decode_task(text: str) -> Task:
    try:
        raw = json.loads(text)
    except RecursionError:
        raise ValueError("task nested too deeply") from None
    if not (
        isinstance(raw, dict)
        and type(raw.get("id")) is int
        and isinstance(raw.get("url"), str)
        and type(raw.get("attempt")) is int
    ):
        raise ValueError("malformed task")
    robots, token = raw.get("robots"), raw.get("token")
    return Task(
        raw["id"],
        raw["url"],
        raw["attempt"],
        _decode_stored(raw.get("stored")),
        robots if type(robots) is int else None,
        token if type(token) is int else 0,
    )


def _decode_stored(raw: Any) -> StoredCopy | None:
    """A stored copy that does not check out is dropped: the worker then downloads."""
    if not isinstance(raw, dict):
        return None
    path, size = raw.get("path"), raw.get("bytes")
    if not (isinstance(path, str) and type(size) is int):
        return None
    etag, modified = raw.get("etag"), raw.get("last_modified")
    digest, verify = raw.get("sha256"), raw.get("verify")
    store, host = raw.get("store"), raw.get("host")
    return StoredCopy(
        path,
        size,
        etag if isinstance(etag, str) else None,
        modified if isinstance(modified, str) else None,
        raw.get("refresh") is True,
        digest if isinstance(digest, str) else None,
        verify if verify in VERIFY_LEVELS else "",
        store if isinstance(store, str) else None,
        host if isinstance(host, str) else None,
    )


def encode_result(fields: dict[str, Any]) -> str:
    return json.dumps(fields, separators=(",", ":"))


def decode_result(text: str) -> dict[str, Any]:
    """Parse and check one result string; ValueError says what is wrong with it."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("result is not JSON") from None
    if not isinstance(raw, dict):
        raise ValueError("result is not a JSON object")
    row = _typed(raw)
    if row["status"] not in STATUSES:
        raise ValueError(f"unknown status {row['status']!r}")
    for name in ("retry_after", "request_age"):
        if row[name] is not None and not 0 <= row[name] <= RETRY_AFTER_MAX:
            raise ValueError(f"result field {name!r} is not 0 to {RETRY_AFTER_MAX:g} seconds")
    if row["robots"] is not None:
        row["robots"] = check_verdict(row["robots"])
        if row["robots"] is None:
            raise ValueError("result field 'robots' is not a robots.txt verdict")
    return row


def _typed(raw: dict[str, Any]) -> dict[str, Any]:
    """Every field of RESULT_FIELDS from ``raw``, None where absent; ValueError for a
    required one absent, a value of another type, or a number not finite (RFC 8259 s. 6
    has no NaN nor Infinity; ``json.loads`` reads them, the manifest must not hold them).
    ``raw`` is from ``json.loads``: each type is exactly one of JSON's, so a set look-up
    checks it (a bool is no int), a field present at a time (issue 15: master CPU)."""
    for name in REQUIRED_FIELDS:
        if raw.get(name) is None:
            raise ValueError(f"result lacks {name!r}")
    row = dict(_ABSENT)
    for name, value in raw.items():
        kinds = _KINDS.get(name)
        if kinds is None or value is None:
            continue  # not a result field: ignored
        kind = type(value)
        if kind not in kinds:
            raise ValueError(f"result field {name!r} has the wrong type")
        if kind is float and not math.isfinite(value):
            raise ValueError(f"result field {name!r} is not a finite number")
        row[name] = value
    return row


_KINDS = {name: frozenset(kinds) for name, kinds in RESULT_FIELDS.items()}
_ABSENT = dict.fromkeys(RESULT_FIELDS)


# --- Identity ---
# Bumped for a change of meaning alone; 2: a get's "none_left" (issue 15)
WIRE_VERSION = 2


def _identity() -> str:
    """``"<WIRE_VERSION>.<10 hex digits>"``: the version and a digest of every shape two
    peers must agree on (names, methods and their parameters, message and policy fields,
    their types, the statuses) and of the verification rules (``constants.RULES``): a
    worker of other rules would decide by them."""
    shapes = {
        "rules": RULES,
        "serializer": SERIALIZER,
        "registered": REGISTERED,
        "calls": CALLS,
        "result": {
            name: [kind.__name__ for kind in kinds] for name, kinds in RESULT_FIELDS.items()
        },
        "statuses": sorted(STATUSES),
        "messages": {
            kind.__name__: [[f.name, str(f.type)] for f in dataclasses.fields(kind)]
            for kind in (Task, StoredCopy, Policy)
        },
    }
    digest = hashlib.sha256(json.dumps(shapes, sort_keys=True).encode()).hexdigest()
    return f"{WIRE_VERSION}.{digest[:10]}"


PROTOCOL = _identity()
# What each peer says of itself at hello, beside its own fields.
IDENTITY = {"protocol": PROTOCOL, "crawler": __version__}
# What ``--version`` says: the version number alone names no commit (0.1.0 for all).
VERSION_TEXT = f"crawler {__version__} (protocol {PROTOCOL}, rules {RULES})"


def incompatible(info: object) -> str | None:
    """What differs when ``info`` (a hello's fields, or its answer) names another
    protocol than ours, as ``"crawler V (protocol P)"``; None when it is ours."""
    fields = info if isinstance(info, dict) else {}
    if fields.get("protocol") == PROTOCOL:
        return None
    version, protocol = fields.get("crawler"), fields.get("protocol")
    if not isinstance(protocol, str):
        return "an older crawler (no protocol at hello)"
    return f"crawler {str(version)[:40]} (protocol {protocol[:40]})"
