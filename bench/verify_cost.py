"""CPU per image of the verification path: the current ``verify.inspect`` against the
one of an earlier commit (default: the last before issue 10), on the benchmark's corpus
mix (78 % JPEG, 10 % PNG, 7 % WebP, 5 % GIF), interleaved round by round.

    python bench/verify_cost.py [--count 300] [--rounds 5] [--baseline REV]

The baseline's module is loaded from git (``git show REV:crawler/worker/verify.py``)
beside the installed package; each round times both on the same images, alternating
which goes first. Prints ms of process CPU per image (median of rounds), by format.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from corpus import plan, render  # noqa: E402

from crawler.config import Policy  # noqa: E402
from crawler.worker import verify  # noqa: E402


def load_baseline(rev: str) -> ModuleType:
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:crawler/worker/verify.py"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "verify_baseline.py"
    path.write_text(text.replace("from crawler.layout import", "from crawler.formats import"))
    spec = importlib.util.spec_from_file_location("verify_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def cost(
    inspect: Callable[[bytes, Policy], object], images: list[tuple[str, bytes]], policy: Policy
) -> dict[str, float]:
    """Process-CPU ms per image, by format and in all."""
    spent: dict[str, list[float]] = defaultdict(list)
    for fmt, body in images:
        start = time.process_time()
        inspect(body, policy)
        spent[fmt].append(time.process_time() - start)
    out = {fmt: 1000 * sum(v) / len(v) for fmt, v in spent.items()}
    out["all"] = 1000 * sum(sum(v) for v in spent.values()) / len(images)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", default="af5d817")
    args = parser.parse_args()
    specs = [plan(i, small=False) for i in range(args.count)]
    images = [(spec.format, render(spec)) for spec in specs]
    policy = Policy()
    verify.configure(policy)
    contenders = {"current": verify.inspect, "baseline": load_baseline(args.baseline).inspect}
    results: dict[str, list[dict[str, float]]] = defaultdict(list)
    for round_ in range(args.rounds):
        order = list(contenders) if round_ % 2 == 0 else list(reversed(contenders))
        for name in order:
            results[name].append(cost(contenders[name], images, policy))
    formats = sorted({k for r in results["current"] for k in r})
    print(f"{len(images)} images, {args.rounds} rounds; ms of CPU per image (median)")
    print(f"{'format':<8}" + "".join(f"{name:>12}" for name in contenders) + f"{'ratio':>8}")
    for fmt in formats:
        meds = [statistics.median(r[fmt] for r in results[name]) for name in contenders]
        print(f"{fmt:<8}" + "".join(f"{m:>12.2f}" for m in meds) + f"{meds[0] / meds[1]:>8.2f}")


if __name__ == "__main__":
    main()
