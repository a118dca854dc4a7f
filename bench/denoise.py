"""Denoising on the full test sets: noisy input, median filter, BM3D and every denoising checkpoint.

For each setting (CIFAR-10 with Gaussian sigma 15, 25, 50 and salt-and-pepper 0.07;
MNIST and Fashion-MNIST with Gaussian sigma 0.5 on [0, 1] images, 127.5 on the 0-255
scale) the noise is drawn once from a fixed seed, and every method sees the same noisy
images. PSNR is reported both ways: the mean of per-image PSNRs (the literature's
convention) and the PSNR of the mean squared error over all test pixels. BM3D, at about
a second per image, runs on the first ``--bm3d-images`` test images (500 by default);
its row says how many, and the noisy input is measured on the same subset beside it.

Usage: python bench/denoise.py [--write] [--only NAME] [--dataset NAME ...] [--bm3d-images 500] [--limit N]
--write stores each shipped checkpoint's numbers in its sidecar.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from core import checkpoints, data, denoise, devices, metrics
from core.noise import NoiseSpec, add_noise

NOISE_SEED = 2024
BATCH = 500
SETTINGS = (
    ("cifar10", NoiseSpec("gaussian", 15.0)),
    ("cifar10", NoiseSpec("gaussian", 25.0)),
    ("cifar10", NoiseSpec("gaussian", 50.0)),
    ("cifar10", NoiseSpec("salt_pepper", 0.07)),
    ("mnist", NoiseSpec("gaussian", 127.5)),
    ("fashion_mnist", NoiseSpec("gaussian", 127.5)),
)


@dataclass
class Row:
    dataset: str
    noise: str
    method: str
    images: int
    psnr_mean: float
    psnr_dataset: float
    ssim: float
    ms_per_image: float | None


def setting_key(spec: NoiseSpec) -> str:
    """How a setting is named in a checkpoint's metrics: gaussian25, salt_pepper0.07, ..."""
    return f"{spec.kind}{spec.level:g}"


def measure(fn, clean: torch.Tensor, noisy: torch.Tensor) -> tuple[float, float, float, float]:
    """Mean per-image PSNR, dataset PSNR, mean SSIM and seconds of ``fn`` over batches."""
    psnr_sum = ssim_sum = squared = 0.0
    seconds = 0.0
    for start in range(0, len(clean), BATCH):
        target, batch = clean[start:start + BATCH], noisy[start:start + BATCH]
        began = time.perf_counter()
        with torch.no_grad():
            output = fn(batch)
        seconds += time.perf_counter() - began
        psnr_sum += float(metrics.psnr(output, target).sum())
        ssim_sum += float(metrics.ssim(output, target).sum())
        squared += float(metrics.per_image_mse(output, target).sum())
    count = len(clean)
    return psnr_sum / count, metrics.psnr_from_mse(squared / count), ssim_sum / count, seconds


def bench_setting(dataset: str, spec: NoiseSpec, metas: list[dict], bm3d_images: int, limit: int | None,
                  written: dict[str, dict[str, float]]) -> list[Row]:
    """Every method on one dataset and noise; checkpoints' numbers are collected into ``written``."""
    test = data.load_dataset(dataset, "test")
    clean = test.images[:limit].float().div(255)
    noisy = add_noise(clean, spec, torch.Generator().manual_seed(NOISE_SEED))
    rows: list[Row] = []

    def add(method: str, fn, images: int = len(clean), timed: bool = False) -> Row:
        psnr_mean, psnr_dataset, ssim, seconds = measure(fn, clean[:images], noisy[:images])
        rows.append(Row(dataset, spec.label(), method, images, psnr_mean, psnr_dataset, ssim,
                        seconds / images * 1000 if timed else None))
        return rows[-1]

    add("noisy input", lambda x: x)
    add("median 3x3", denoise.median_filter, timed=True)
    subset = min(bm3d_images, len(clean))
    if spec.kind == "gaussian" and subset:
        add("noisy input (BM3D's subset)", lambda x: x, images=subset)
        add("BM3D (bm3d_rgb)" if clean.shape[1] == 3 else "BM3D", lambda x: denoise.bm3d_denoise(x, spec.level),
            images=subset, timed=True)
    for meta in metas:
        if meta["dataset"] != dataset:
            continue
        model, meta = checkpoints.load(meta["path"])
        model.eval()
        row = add(meta["name"], denoise.model_fn(model), timed=True)
        key = setting_key(spec)
        written.setdefault(meta["path"], {}).update({
            f"test_psnr_{key}": round(row.psnr_mean, 3), f"test_psnr_dataset_{key}": round(row.psnr_dataset, 3),
            f"test_ssim_{key}": round(row.ssim, 4), f"ms_per_image_{key}": round(row.ms_per_image, 3),
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store the numbers in shipped checkpoints' sidecars")
    parser.add_argument("--only", help="measure only this checkpoint (and the baselines)")
    parser.add_argument("--bm3d-images", type=int, default=500, help="test images BM3D runs on (0: skip BM3D)")
    parser.add_argument("--limit", type=int, help="use only the first N test images (quick checks)")
    parser.add_argument("--dataset", action="append", choices=sorted({d for d, _ in SETTINGS}),
                        help="measure only this dataset's settings (repeatable; default: all)")
    args = parser.parse_args()
    devices.configure_threads()
    written: dict[str, dict[str, float]] = {}
    metas = [m for m in checkpoints.list_checkpoints("denoising") if not args.only or m["name"] == args.only]
    settings = [(dataset, spec) for dataset, spec in SETTINGS if not args.dataset or dataset in args.dataset]
    rows = [row for dataset, spec in settings
            for row in bench_setting(dataset, spec, metas, args.bm3d_images, args.limit, written)]
    if args.write and not args.limit:
        checkpoints.record_measurements(written, "python bench/denoise.py --write"
                                        + (f" --only {args.only}" if args.only else "")
                                        + "".join(f" --dataset {d}" for d in args.dataset or ()))
    print(f"Device: {devices.describe()}; noise seed {NOISE_SEED}; "
          f"{'first ' + str(args.limit) if args.limit else 'all'} test images unless the row says otherwise.\n")
    print("| dataset | noise | method | images | PSNR, mean per image (dB) | PSNR of the MSE (dB) | SSIM "
          "| time per image |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        timing = "–" if row.ms_per_image is None else f"{row.ms_per_image:.2f} ms"
        print(f"| {data.DATASETS[row.dataset].title} | {row.noise} | {row.method} | {row.images:,} "
              f"| {row.psnr_mean:.2f} | {row.psnr_dataset:.2f} | {row.ssim:.4f} | {timing} |")


if __name__ == "__main__":
    main()
