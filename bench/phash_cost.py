"""What the perceptual hash costs the worker: verification with our numpy pHash, with
imagehash's ``phash`` on the same decoded pixels, and without any hash (a baseline
commit's ``verify``), on the benchmark corpus mix, interleaved round by round; and the
peak RSS of a process that imports the worker's verification with either.

    python bench/phash_cost.py [--count 300] [--rounds 5] [--baseline REV]

Needs ``pip install imagehash`` (not a dependency of the crawler: this is the comparison
that decided against it, see README, Near duplicates).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from types import ModuleType, SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import imagehash  # noqa: E402
from corpus import plan, render  # noqa: E402
from PIL import Image  # noqa: E402
from verify_cost import cost, load_baseline  # noqa: E402

from crawler.config import Policy  # noqa: E402
from crawler.worker import verify  # noqa: E402

# VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec.
RSS = (
    "import {code}; print([x.split()[1] for x in open('/proc/self/status') if x[:5] == 'VmHWM'][0])"
)


def _imagehash_decoded(pixels: object, image: Image.Image) -> str:
    if pixels is None:
        return str(imagehash.phash(image))
    grey = pixels[:, :, 0] if pixels.ndim == 3 else pixels  # type: ignore[attr-defined]
    return str(imagehash.phash(Image.fromarray(grey)))


def with_imagehash() -> ModuleType:
    """A second copy of the current verify module whose hash is imagehash's."""
    spec = importlib.util.spec_from_file_location("verify_ih", ROOT / "crawler/worker/verify.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.phash = SimpleNamespace(of_decoded=_imagehash_decoded)  # type: ignore[attr-defined]
    return module


def peak_rss_kb(code: str) -> int:
    code = RSS.format(code=code)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", default="1c37039")
    args = parser.parse_args()
    images = [(spec.format, render(spec)) for spec in (plan(i, False) for i in range(args.count))]
    policy = Policy()
    verify.configure(policy)
    contenders = {
        "no hash": load_baseline(args.baseline).inspect,
        "numpy": verify.inspect,
        "imagehash": with_imagehash().inspect,
    }
    results: dict[str, list[dict[str, float]]] = defaultdict(list)
    for round_ in range(args.rounds):
        names = list(contenders)
        order = names[round_ % 3 :] + names[: round_ % 3]
        for name in order:
            results[name].append(cost(contenders[name], images, policy))
    print(f"{len(images)} images, {args.rounds} rounds; ms of CPU per image (median)")
    print(f"{'format':<8}" + "".join(f"{n:>12}" for n in contenders) + "  numpy/none  ih/none")
    for fmt in sorted({k for r in results["numpy"] for k in r}):
        meds = [statistics.median(r[fmt] for r in results[n]) for n in contenders]
        ratios = f"{meds[1] / meds[0]:>12.3f}{meds[2] / meds[0]:>9.3f}"
        print(f"{fmt:<8}" + "".join(f"{m:>12.3f}" for m in meds) + ratios)
    probe = "PIL.Image.new('RGB', (640, 480))"
    base = peak_rss_kb(f"crawler.worker.phash as h, PIL.Image; h.of_image({probe})") / 1024
    with_ih = peak_rss_kb(f"crawler.worker.phash, imagehash, PIL.Image; imagehash.phash({probe})")
    with_ih /= 1024
    print(f"peak RSS after hashing one image: {base:.1f} MB; with imagehash: {with_ih:.1f} MB")


if __name__ == "__main__":
    main()
