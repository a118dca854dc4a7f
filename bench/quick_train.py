"""The Train page's Quick classification preset, end to end, as a user meets it.

Runs the preset's own command line (``config_to_command``) in a fresh process with
an empty dataset cache, so the wall time includes starting Python, decoding the
CIFAR-10 PNGs, the data-initialised whitening, training, and the final evaluation
on all 10,000 test images (plain and with test-time augmentation).

Usage: python bench/quick_train.py [--preset LABEL] [--budget-minutes 10] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import checkpoints, devices
from core.train.config import preset
from core.train.engine import config_to_command

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="Quick")
    parser.add_argument("--budget-minutes", type=float, default=10.0)
    parser.add_argument("--target", type=float, default=0.90, help="test accuracy the preset must reach")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one of the preset's settings (JSON value), to try a variant")
    parser.add_argument("--keep", type=Path, default=None, help="copy the trained checkpoint into this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="quick-train-") as scratch:
        overrides = {key: json.loads(value) for key, value in (item.split("=", 1) for item in args.set)}
        config = replace(preset("classification", args.preset), **overrides, out=scratch, name="quick").validate()
        command = config_to_command(config) + " --no-record"
        env = os.environ | {"CIFAR_LAB_CACHE": str(Path(scratch) / "cache"), "CIFAR_LAB_HOME": scratch}
        start = time.monotonic()
        finished = subprocess.run(shlex.split(command.replace("python", sys.executable, 1)), cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        wall = time.monotonic() - start
        if finished.returncode != 0:
            print(f"The preset's run failed (exit {finished.returncode}): {command}", file=sys.stderr)
            return 1
        meta = checkpoints.read_meta(Path(scratch) / "quick.safetensors")
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for suffix in (".safetensors", ".json"):
                shutil.copy2(Path(scratch) / f"quick{suffix}", args.keep / f"quick{suffix}")
    metrics = meta["metrics"]
    training = meta.get("training", {}).get("seconds", float("nan"))
    best = max(metrics["test_accuracy"], metrics.get("test_accuracy_tta", 0.0))
    reached = best >= args.target and wall <= args.budget_minutes * 60
    print(f"Device: {devices.describe()}; the dataset cache starts empty; all 10,000 CIFAR-10 test images.\n")
    print(f"Command: `{command}`\n")
    print("| preset | architecture | parameters | epochs | wall time, end to end | of which training "
          "| test accuracy | with TTA | target |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    print(f"| {args.preset} | {meta['architecture']} | {meta['num_params'] / 1e6:.2f}M | {config.epochs} "
          f"| {wall / 60:.1f} min | {training / 60:.1f} min | {metrics['test_accuracy']:.2%} "
          f"| {metrics.get('test_accuracy_tta', float('nan')):.2%} "
          f"| {'met' if reached else 'missed'}: {args.target:.0%} within {args.budget_minutes:g} min |")
    return 0 if reached else 1


if __name__ == "__main__":
    sys.exit(main())
