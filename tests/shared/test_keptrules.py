"""``keptrules.KeptRules`` against a plain model of a least-recently-used store bounded by
entries and bytes (one entry always stays), over Hypothesis's sequences of operations."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.keptrules import KeptRules

KEYS = st.integers(0, 6)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), KEYS, st.integers(0, 50)),
        st.tuples(st.just("get"), KEYS, st.just(0)),
        st.tuples(st.just("pop"), KEYS, st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(OPS, st.integers(1, 4), st.integers(0, 120))
def test_kept_rules_is_a_bounded_lru(ops: list, entries: int, max_bytes: int) -> None:
    kept: KeptRules[int, str] = KeptRules(entries, max_bytes)
    model: list[tuple[int, int]] = []  # (key, size), least recently used first
    for op, key, size in ops:
        found = [i for i, (k, _) in enumerate(model) if k == key]
        if op == "put":
            expected_dropped = []
            model = [item for item in model if item[0] != key] + [(key, size)]
            while len(model) > 1 and (len(model) > entries or sum(s for _, s in model) > max_bytes):
                expected_dropped.append(model.pop(0)[0])
            assert kept.put(key, f"v{key}", size) == expected_dropped
        elif op == "get":
            got = kept.get(key)
            assert got == ((f"v{key}",) if found else None)
            if found:
                model.append(model.pop(found[0]))
        else:
            kept.pop(key)
            model = [item for item in model if item[0] != key]
        assert len(kept) == len(model)
        assert all(k in kept for k, _ in model)
