"""The storage flags: ``--store`` and ``--verify-stored`` (master), ``--host-id`` (worker)."""

from __future__ import annotations

import argparse
import re

from crawler.protocol import VERIFY_LEVELS

_HOST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,252}")


def _store(text: str) -> str:
    """``--store``'s value, not empty: ``--store "$STORE"`` with the variable unset meant
    each worker's own folder, silently, and the shared copies were listed as superseded."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "empty (an unset variable?): give a folder, file:// or s3:// URL, or leave "
            "--store out for each worker's own --output"
        )
    return text


def _host_id(text: str) -> str:
    if not _HOST_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(
            "a host id is 1-253 letters, digits, '.', '_', ':' or '-', starting with a "
            "letter or digit"
        )
    return text


def add_master_store_flags(p: argparse.ArgumentParser) -> None:
    """``--store`` (run policy) and ``--verify-stored`` (the master's resume)."""
    g = p.add_argument_group("storage")
    g.add_argument(
        "--store",
        default=None,  # not "": argparse passes a string default through _store
        type=_store,
        metavar="WHERE",
        help="where every worker stores images: a folder all hosts mount at the same path "
        "(or file:///path), or s3://BUCKET/PREFIX (pip install '.[s3]' in the checkout; "
        "credentials from the AWS environment); default: each worker's own --output",
    )
    g.add_argument(
        "--verify-stored",
        nargs="?",
        const="size",
        default="",
        choices=VERIFY_LEVELS,
        help="send images stored by earlier runs to workers for a check: their size, "
        "with =hash also their sha256, with =full also verified again by this version's "
        "rules (default: trust the manifest)",
    )


def add_worker_store_flags(p: argparse.ArgumentParser) -> None:
    """``--host-id``: this host's stable name in the manifest."""
    p.add_argument(
        "--host-id",
        type=_host_id,
        metavar="NAME",
        help="this host's stable name, recorded as the manifest's host field; keep it "
        "across restarts (default: the host name)",
    )
