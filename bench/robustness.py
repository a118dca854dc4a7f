"""Noise versus recognition: classifier accuracy against noise strength, without and with a denoiser in front.

For every shipped CIFAR-10 classifier and every noise kind (Gaussian sigma 0 to 100, both
salt-and-pepper kinds 0 to 0.3, Poisson, speckle), on the first N test images (noise seeded per
setting): the accuracy on the noisy images, and on the same images after the denoiser the Denoise
page opens on for that noise (``core.denoise.default_method``: the best checkpoint measured for the
kind, else the median filter). Level 0 is the clean test set.

    python bench/robustness.py --images 10000 --write

``--write`` stores the curves in each classifier's sidecar (``robustness``, with N and this command),
where the Classify page draws them.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import checkpoints, data, denoise, devices, paths
from core.noise import NoiseSpec, add_noise

LEVELS = {
    "gaussian": (0.0, 10.0, 25.0, 50.0, 75.0, 100.0),
    "salt_pepper": (0.0, 0.02, 0.07, 0.15, 0.3),
    "salt_pepper_channels": (0.0, 0.02, 0.07, 0.15, 0.3),
    "poisson": (255.0, 100.0, 30.0, 10.0, 3.0),  # photons at white: fewer is noisier; 255 is nearly clean
    "speckle": (0.0, 0.1, 0.2, 0.4, 0.6),
}
SEED = 2024


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    amp = devices.amp_dtype(torch.device("cpu"))
    correct = 0
    for start in range(0, len(images), 500):
        with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
            logits = model(images[start:start + 500])
        correct += int((logits.float().argmax(1) == labels[start:start + 500]).sum())
    return correct / len(images)


@functools.cache
def denoiser_fn(path: str):
    return denoise.model_fn(checkpoints.load(path)[0].eval())


def denoised(method: str, noisy: torch.Tensor) -> torch.Tensor:
    if method == "median":
        return denoise.median_filter(noisy)
    function = denoiser_fn(method)
    with torch.inference_mode():
        return torch.cat([function(noisy[i:i + 500]) for i in range(0, len(noisy), 500)]).clamp(0, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000, help="test images (default: all 10,000)")
    parser.add_argument("--write", action="store_true", help="store the curves in the shipped classifiers' sidecars")
    args = parser.parse_args(argv)
    command = "python bench/robustness.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    curves = measure(args.images)
    print(f"\nAccuracy, N = {args.images:,} test images: noisy / denoised (the Denoise page's default denoiser)\n")
    print("| classifier | clean | Gaussian σ 25 | Gaussian σ 50 | salt and pepper 0.07 (whole pixels) "
          "| salt and pepper 0.07 (per channel) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, kinds in curves.items():
        def cell(kind: str, level: float, kinds: dict = kinds) -> str:
            point = next(p for p in kinds[kind] if p["level"] == level)
            return f"{point['noisy']:.1%} / {point['denoised']:.1%}"
        print(f"| {name} | {kinds['gaussian'][0]['noisy']:.1%} | {cell('gaussian', 25.0)} | {cell('gaussian', 50.0)} "
              f"| {cell('salt_pepper', 0.07)} | {cell('salt_pepper_channels', 0.07)} |")
        if args.write:
            checkpoints.update_metadata(name, robustness={"images": args.images, "measured_by": command,
                                                          "noise_seed": SEED, "curves": kinds})


def measure(count: int) -> dict[str, dict[str, list[dict]]]:
    """Per shipped CIFAR-10 classifier, per noise kind: one point per level (noisy and denoised accuracy)."""
    test = data.load_dataset("cifar10", "test")
    clean, labels = test.images[:count].float().div(255), test.labels[:count]
    def shipped(task: str) -> list[dict]:
        return [m for m in checkpoints.list_checkpoints(task) if Path(m["path"]).parent == paths.SHIPPED_CHECKPOINTS]

    classifiers = [m for m in shipped("classification") if m["dataset"] == "cifar10"]
    models = {m["name"]: checkpoints.load(m["path"])[0].eval() for m in classifiers}
    denoisers = shipped("denoising")
    print(f"CPU: {devices.cpu_model()}; torch {torch.__version__}; {len(clean):,} CIFAR-10 test images\n")
    curves: dict[str, dict[str, list[dict]]] = {name: {} for name in models}
    for kind, levels in LEVELS.items():
        for level in levels:
            spec = NoiseSpec(kind, level)
            noisy = clean if level == 0 else add_noise(clean, spec, torch.Generator().manual_seed(SEED))
            method = denoise.default_method(denoisers, spec, 3, "cifar10")
            restored = denoised(method, noisy)
            denoiser = Path(method).stem if method != "median" else "median filter 3x3"
            for name, model in models.items():
                point = {"level": level, "noisy": accuracy(model, noisy, labels),
                         "denoised": accuracy(model, restored, labels), "denoiser": denoiser}
                curves[name].setdefault(kind, []).append(point)
                print(f"{name} {kind} {level:g}: noisy {point['noisy']:.2%}, denoised by {denoiser} "
                      f"{point['denoised']:.2%}", flush=True)
    return curves


if __name__ == "__main__":
    main()
