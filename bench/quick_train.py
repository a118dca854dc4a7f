"""The Train page's Quick classification preset, end to end, as a visitor of the Space meets it.

Runs the preset's own command line (``config_to_command``) in a fresh process with an empty
dataset cache, so the wall time includes starting Python, decoding the CIFAR-10 PNGs, the
data-initialised whitening, training, and the final evaluation on all 10,000 test images.
``--space`` applies the Space's caps, read from the Dockerfile, as its server would (a time
budget, no test-time augmentation). ``--reference`` first runs last round's Quick preset the
same way, so the two wall times come from one run on one machine: machines here differ by 2x
from day to day, so their ratio is the figure.

Usage: python bench/quick_train.py [--preset Quick] [--space] [--reference] [--set KEY=VALUE ...]
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import checkpoints, devices
from core.train.config import AIRBENCH, ServerLimits, TrainConfig, config_to_command, preset

ROOT = Path(__file__).resolve().parent.parent
# Last round's Quick preset (9.7 minutes, 89.71% plain, 90.67% with TTA in its README), kept to time against.
# It trained in fp32 on every CPU (autocast was CUDA-only then), so it still does here.
REFERENCE = TrainConfig(task="classification", amp=False, **dict(
    AIRBENCH, arch="fastnet", arch_args={"width": 32}, epochs=5, subset=46_000, val_size=2000, batch_size=1000,
    optimizer="muon", muon_lr=0.12, muon_momentum=0.8, lr=1.465e-3 * 1000, warmup_epochs=1.15,
    whiten_bias_epochs=1))


def run(config: TrainConfig, keep: Path | None = None) -> dict[str, Any]:
    """Train ``config`` in a fresh process with an empty cache; its wall time and sidecar."""
    with tempfile.TemporaryDirectory(prefix="quick-train-") as scratch:
        config = replace(config, out=scratch, name="quick").validate()
        command = config_to_command(config) + " --no-record"
        env = os.environ | {"CIFAR_LAB_CACHE": str(Path(scratch) / "cache"), "CIFAR_LAB_HOME": scratch}
        start = time.monotonic()
        finished = subprocess.run(shlex.split(command.replace("python", sys.executable, 1)), cwd=ROOT, env=env,
                                  capture_output=True, text=True)
        wall = time.monotonic() - start
        if finished.returncode != 0:
            raise RuntimeError(f"The run failed (exit {finished.returncode}): {command}\n{finished.stderr[-800:]}")
        meta = checkpoints.read_meta(Path(scratch) / "quick.safetensors")
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
            for suffix in (".safetensors", ".json"):
                shutil.copy2(Path(scratch) / f"quick{suffix}", keep / f"quick{suffix}")
    return {"config": config, "command": command.replace(f" --out {config.out}", ""), "wall": wall, "meta": meta}


def row(label: str, result: dict[str, Any], ratio: str) -> str:
    config, meta = result["config"], result["meta"]
    metrics = meta["metrics"]
    tta = metrics.get("test_accuracy_tta")
    return (f"| {label} | {meta['num_params'] / 1e6:.2f}M | {config.epochs} | {config.subset:,} "
            f"| {result['wall'] / 60:.1f} min | {meta.get('training', {}).get('seconds', float('nan')) / 60:.1f} min "
            f"| {metrics['test_accuracy']:.2%} | {'–' if tta is None else f'{tta:.2%}'} | {ratio} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="Quick")
    parser.add_argument("--space", action="store_true", help="apply the Dockerfile's caps, as the Space does")
    parser.add_argument("--reference", action="store_true", help="first time last round's Quick preset")
    parser.add_argument("--target", type=float, default=0.895, help="plain test accuracy the preset must reach")
    parser.add_argument("--max-ratio", type=float, default=0.8, help="its wall time over the reference's, at most")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one of the preset's settings (JSON value), to try a variant")
    parser.add_argument("--keep", type=Path, default=None, help="copy the trained checkpoint into this folder")
    args = parser.parse_args()
    overrides = {key: json.loads(value) for key, value in (item.split("=", 1) for item in args.set)}
    config = replace(preset("classification", args.preset), **overrides)
    if args.space:
        config = ServerLimits.from_dockerfile(ROOT / "Dockerfile").apply(config.validate())
    print(f"CPU: {devices.cpu_model()}; {devices.describe()}; each run in a fresh process with an empty dataset "
          "cache; all 10,000 CIFAR-10 test images.\n", flush=True)
    reference = run(REFERENCE) if args.reference else None
    result = run(config, args.keep)
    ratio = result["wall"] / reference["wall"] if reference else None
    print("| run | parameters | epochs | training images | wall time, end to end | of which training "
          "| test accuracy | with TTA | wall time / reference |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    if reference:
        print(row("last round's Quick (reference)", reference, "1.00"))
    label = f"{args.preset}{' under the Space caps' if args.space else ''}"
    print(row(label, result, "–" if ratio is None else f"{ratio:.2f}"))
    print(f"\nCommand: `{result['command']}`")
    if reference:
        print(f"Reference: `{reference['command']}`")
    reached = result["meta"]["metrics"]["test_accuracy"] >= args.target and (ratio is None or ratio <= args.max_ratio)
    print(f"\nTarget: {args.target:.1%} plain test accuracy" + (f" in at most {args.max_ratio:g} of the reference's "
          "wall time" if reference else "") + f": {'met' if reached else 'missed'}.")
    return 0 if reached else 1


if __name__ == "__main__":
    sys.exit(main())
