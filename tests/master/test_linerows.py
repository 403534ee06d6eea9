"""``linerows.LineRows``: this run's per-line rows matched to earlier ones (Hypothesis).

Earlier per-line rows are written to a real journal file (as the master writes them);
any mix of this run's rows is matched. Each new row is kept (an equal earlier row of
the same line stays current) or written, never both; each earlier row is matched at
most once or superseded; and no row is written while an equal earlier row is left
superseded.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.manifest import make_row
from crawler.master.journal import ManifestWriter
from crawler.master.linerows import EarlierLines, LineRows, row_digest

SOURCES = [f"urls/list.txt:{n}" for n in range(1, 6)]


@st.composite
def line_row(draw: st.DrawFn, run_id: str) -> dict[str, Any]:
    source = draw(st.sampled_from(SOURCES))
    if draw(st.booleans()):
        row = make_row(url=draw(st.sampled_from(["a b", "ftp://x", "é"])), status="invalid_url",
                       error="not an http(s) URL", source=source, run_id=run_id)  # fmt: skip
    else:
        row = make_row(url="http://h.test/a.png", status="duplicate", source=source,
                       duplicate_of=draw(st.sampled_from(SOURCES[:2])), run_id=run_id)  # fmt: skip
    row["extra"] = draw(st.sampled_from([None, {"caption": "x"}, {"caption": "y"}]))
    row["finished_at"] = f"2026-11-{draw(st.integers(1, 29)):02d}T00:00:00+00:00"
    return row


def canonical(row: dict[str, Any]) -> str:
    return repr(sorted((k, repr(v)) for k, v in row.items() if k not in ("run_id", "finished_at")))


@settings(max_examples=60, deadline=None)
@given(
    earlier=st.lists(line_row("old"), max_size=12),
    new=st.lists(line_row("new"), max_size=12),
)
def test_matching_keeps_equal_rows_and_supersedes_the_rest(
    tmp_path_factory: Any, earlier: list[dict[str, Any]], new: list[dict[str, Any]]
) -> None:
    folder: Path = tmp_path_factory.mktemp("lines")
    journal = folder / "m.jsonl"
    writer = ManifestWriter(journal)
    offsets = []
    for row in earlier:
        offsets.append(journal.stat().st_size if journal.exists() else 0)
        writer.write([row])
    lines = EarlierLines()
    for offset, row in zip(offsets, earlier, strict=True):
        lines.add(offset, row["source"], row_digest(row))
    written: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    matcher = LineRows(written.extend, kept.extend, folder, hold=True)
    for row in new:
        matcher.add(row)
    matcher.settle(journal, lines)
    writer.close()

    # Kept rows are counted by their status only (never decoded again): the new rows
    # not written are the kept ones, and their statuses are the ones counted.
    kept_rows = Counter(map(canonical, new)) - Counter(map(canonical, written))
    assert kept_rows.total() + len(written) == len(new)
    statuses = Counter(row["status"] for row in new) - Counter(row["status"] for row in written)
    assert Counter(row["status"] for row in kept) == statuses
    assert all(set(row) == {"status"} for row in kept)
    by_offset = dict(zip(offsets, earlier, strict=True))
    superseded = [by_offset[o] for o in matcher.superseded]
    assert list(matcher.superseded) == sorted(matcher.superseded)
    # The earlier rows not superseded are exactly the kept ones, as a multiset.
    current = Counter(map(canonical, earlier)) - Counter(map(canonical, superseded))
    assert current == kept_rows
    # Greedy but complete: a written row has no equal earlier row left superseded.
    assert not set(map(canonical, written)) & set(map(canonical, superseded))


def test_without_earlier_rows_everything_is_written_at_once(tmp_path: Path) -> None:
    written: list[dict[str, Any]] = []
    matcher = LineRows(written.extend, lambda rows: None, tmp_path, hold=False)
    row = make_row(url="x", status="invalid_url", source=SOURCES[0], run_id="r")
    matcher.add(row)
    matcher.settle(None, None)
    assert written == [row] and list(matcher.superseded) == []
