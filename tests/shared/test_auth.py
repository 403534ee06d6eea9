"""The shared-key rules.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from crawler.auth import MIN_KEY_LENGTH, generate_authkey, load_authkey
from crawler.exceptions import UsageError

STORED_NAME = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z]+)")


def key_file(tmp_path: Path, content: bytes, mode: int) -> Path:
    path = tmp_path / "crawler.key"
    path.write_bytes(content)
    path.chmod(mode)
    return path


def test_load_authkey_from_file_strips_whitespace(tmp_path: Path) -> None:
    path = key_file(tmp_path, b"  0123456789abcdef-key \n\n", 0o600)
    assert load_authkey(str(path)) == b"0123456789abcdef-key"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o601, 0o644])
def test_load_authkey_refuses_file_open_to_others(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path, b"0123456789abcdef-key\n", mode)
    with pytest.raises(UsageError, match=re.escape(f"chmod 600 {path}")):
        load_authkey(str(path))


def test_load_authkey_refuses_short_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    short = "k" * (MIN_KEY_LENGTH - 1)
    monkeypatch.setenv("CRAWLER_AUTHKEY", short)
    with pytest.raises(UsageError, match="too short"):
        load_authkey(None)
    monkeypatch.setenv("CRAWLER_AUTHKEY", short + "k")
    assert load_authkey(None) == (short + "k").encode()
    monkeypatch.setenv("CRAWLER_AUTHKEY", "   ")  # set, but empty: a script's unset variable
    with pytest.raises(UsageError, match="set but empty"):
        load_authkey(None)
    monkeypatch.delenv("CRAWLER_AUTHKEY")
    assert load_authkey(None) is None


def test_generate_authkey_writes_private_file(tmp_path: Path) -> None:
    path = tmp_path / "out" / "authkey"
    key, made = generate_authkey(path)
    assert made and len(key) >= MIN_KEY_LENGTH
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_authkey(str(path)) == key
    assert generate_authkey(path) == (key, False)  # made once: a second master shares it
    assert sorted(os.listdir(path.parent)) == ["authkey"]


def test_generated_key_under_a_file_says_which_part_is_a_file(tmp_path: Path) -> None:
    """``--manifest list.txt/m.jsonl``: the key goes beside the manifest, under a file."""
    listing = tmp_path / "list.txt"
    listing.write_text("http://127.0.0.1/a.jpg\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"list\.txt is a file, not a folder"):
        generate_authkey(listing / "sub" / "authkey")
