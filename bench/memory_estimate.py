"""How close ``core.train.resources.estimate`` comes to a real training run's peak memory.

For a few architectures, runs ``python -m core.train`` as the Train page's server does (a child
process, a few batches of one epoch at the configured batch size) and reads the child's peak
resident memory from the kernel (``wait4``), next to the estimate a capped server refuses runs by.

Usage: python bench/memory_estimate.py [--batches 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import devices
from core.train.config import TrainConfig, config_to_argv, preset
from core.train.resources import estimate

ROOT = Path(__file__).resolve().parent.parent

CASES: dict[str, TrainConfig] = {
    "fast net, the Quick preset": preset("classification", "Quick"),
    "U-Net denoiser, batch 128": TrainConfig(task="denoising", arch="unet_denoiser", batch_size=128, optimizer="adam",
                                             lr=1e-3, val_size=500),
    "binned U-Net colorizer (Full preset), batch 256": preset("colorization", "Full"),
}


def measured_peak_mb(config: TrainConfig, scratch: str) -> float:
    """Peak resident memory of a child training ``config`` (kilobytes from wait4, as MB)."""
    argv = [sys.executable, "-m", "core.train", *config_to_argv(config), "--no-record"]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=os.environ | {"CIFAR_LAB_HOME": scratch})
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {process.stderr.read().decode()[-500:]}")
    return usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=3, help="training batches per run")
    args = parser.parse_args()
    print(f"CPU: {devices.cpu_model()}\n")
    print("| run | parameters | estimated peak (MB) | measured peak RSS (MB) | error |")
    print("|---|---:|---:|---:|---:|")
    errors = []
    with tempfile.TemporaryDirectory(prefix="memory-estimate-") as scratch:
        for label, config in CASES.items():
            short = replace(config, epochs=1, subset=args.batches * config.batch_size, out=scratch, name="probe",
                            tta=False)
            cost = estimate(config)  # the whole run's estimate: the subset only shortens the epoch
            peak = measured_peak_mb(short, scratch)
            error = cost.peak_mb / peak - 1
            errors.append(error)
            print(f"| {label} | {cost.params / 1e6:.2f}M | {cost.peak_mb:,.0f} | {peak:,.0f} | {error:+.0%} |")
    print(f"\nEstimate above the measured peak in {sum(e >= 0 for e in errors)} of {len(errors)} runs; "
          f"error from {min(errors):+.0%} to {max(errors):+.0%}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
