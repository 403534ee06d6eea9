"""Near-duplicate clusters of the report: found from real perceptual hashes of
generated images, complete up to the threshold, never joining different pictures, and
bounded."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.report.similar import MAX_CLUSTERS, MAX_MEMBERS, THRESHOLD, NearDuplicates, near_pairs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "worker"))
from test_phash import encode, hash_of, photo, variants


def test_clusters_hold_exactly_the_versions_of_each_picture() -> None:
    near = NearDuplicates()
    for seed in range(8):
        for name, body in variants(seed).items():
            near.add({"url": f"http://127.0.0.1/{seed}/{name}", "phash": hash_of(body)})
    for seed in range(100, 140):  # pictures with no other version
        near.add({"url": f"http://127.0.0.1/alone/{seed}", "phash": hash_of(encode(photo(seed)))})
    clusters, count, images = near.clusters()
    assert count == 8 and images == 8 * len(variants(0))
    for cluster in clusters:
        seeds = {row["url"].split("/")[3] for row in cluster}
        assert len(seeds) == 1 and "alone" not in seeds
        assert all(row["distance"] <= 2 * THRESHOLD for row in cluster)
    assert len(clusters) == 8


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(50, 400))
def test_near_pairs_equals_brute_force(seed: int, count: int) -> None:
    """Every pair within the threshold, and no other, on hashes planted close together."""
    rng = random.Random(seed)
    values = [rng.getrandbits(64) for _ in range(count // 2)]
    for value in list(values):
        for bit in rng.sample(range(64), rng.randint(0, 9)):
            value ^= 1 << bit
        values.append(value)
    unique = np.unique(np.array(values, dtype=np.uint64))
    found = {tuple(pair) for pair in near_pairs(unique).tolist()}
    ints = [int(v) for v in unique]
    brute = {
        (i, j)
        for i in range(len(ints))
        for j in range(i + 1, len(ints))
        if (ints[i] ^ ints[j]).bit_count() <= THRESHOLD
    }
    assert found == brute


def test_bounded_and_copies_are_one_node() -> None:
    near = NearDuplicates()
    for n in range(5000):  # many rows with one hash: no pair explosion
        near.add({"url": f"u{n}", "phash": "00ff00ff00ff00ff"})
    for n in range(MAX_CLUSTERS + 5):
        for k in range(2):
            near.add(
                {"url": f"c{n}.{k}", "phash": f"{((n * 0x9E3779B97F4A7C15) % 2**64) ^ k:016x}"}
            )
    for bad in ("", "zz" * 8, None, 12, "0" * 17):
        near.add({"url": "bad", "phash": bad})
    clusters, count, images = near.clusters()
    assert len(clusters) == MAX_CLUSTERS and count == MAX_CLUSTERS + 6
    assert len(clusters[0]) == MAX_MEMBERS and images == 5000 + 2 * (MAX_CLUSTERS + 5)


def test_rows_kept_before_sha256_was_recorded_still_cluster() -> None:
    """An aggregate saved by an earlier version holds rows of 8 fields, no sha256: they
    load (``report.ledger``) and cluster as before, with sha256 None; new rows carry it."""
    old = "\x1f".join(["http://127.0.0.1/old.jpg", "ab/cd/old.jpg", "", "h1", "64", "48",
                       "JPEG", "1234"])  # fmt: skip
    near = NearDuplicates([0x00FF00FF00FF00FF], [old])
    near.index()
    near.add({"url": "http://127.0.0.1/new.jpg", "phash": "00ff00ff00ff00fe", "sha256": "a" * 64,
              "path": "ef/01/new.jpg", "width": 64, "height": 48, "format": "JPEG"})  # fmt: skip
    [cluster], count, images = near.clusters()
    assert (count, images) == (1, 2)
    by_url = {row["url"]: row for row in cluster}
    assert by_url["http://127.0.0.1/old.jpg"]["sha256"] is None
    assert by_url["http://127.0.0.1/old.jpg"]["bytes"] == 1234
    assert by_url["http://127.0.0.1/new.jpg"]["sha256"] == "a" * 64
    assert by_url["http://127.0.0.1/new.jpg"]["distance"] in (0, 1)
