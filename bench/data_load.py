"""Dataset loading speed: first (decode) and cached loads of every dataset split.

Usage: python bench/data_load.py [--root ../shared/data]
Prints a Markdown table for the README. The goal: a cached CIFAR-10 train load
under 2 s on the 2-core development CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import data


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("CIFAR_LAB_DATA", "../shared/data"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["CIFAR_LAB_CACHE"] = cache  # a cold cache, so the first load really decodes
        print("| dataset | split | images | source | first load (s) | cached load (s, median of 5) |")
        print("|---|---|---:|---|---:|---:|")
        for name in data.DATASETS:
            for split in data.SPLITS:
                def load(name=name, split=split):
                    return data.load_dataset(name, split, args.root, progress=lambda done, total: None)

                first = timed(load)
                cached = statistics.median(timed(load) for _ in range(5))
                loaded = load()
                print(f"| {name} | {split} | {len(loaded):,} | {loaded.source.split(' in ')[0]} "
                      f"| {first:.2f} | {cached:.3f} |", flush=True)


if __name__ == "__main__":
    main()
