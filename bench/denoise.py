"""Denoising on the full test sets: noisy input, median filter, BM3D and every denoising checkpoint.

For each setting (CIFAR-10 with Gaussian sigma 15, 25, 50 and salt-and-pepper 0.07;
the CIFAR-10 test images in BT.601 grey with Gaussian sigma 15, 25, 50, for denoisers trained with
``--grey``; MNIST and Fashion-MNIST with Gaussian sigma 0.5 on [0, 1] images, 127.5 on the 0-255
scale) the noise is drawn once from a fixed seed, and every method sees the same noisy
images. PSNR is reported both ways: the mean of per-image PSNRs (the literature's
convention) and the PSNR of the mean squared error over all test pixels. BM3D, at about
a second per image, runs on the first ``--bm3d-images`` test images (500 by default);
its row says how many, and the noisy input is measured on the same subset beside it.

``--photos`` instead measures the development photos (``$CIFAR_LAB_DATA/photos``: Set5, Set14,
Sun-Hays 80) at Gaussian sigma 15, 25 and 50, through the Denoise page's own path (the upload
decoder, the working size, tiles): every colour checkpoint and BM3D, per folder, with the PSNR
of the folder's MSE, the mean per-image PSNR, SSIM and seconds per megapixel. BM3D takes about
half a minute per photo, so it runs on the first ``--bm3d-photos`` of each folder, and a second
table compares every method on exactly those photos. Grey photos (two in Set14) are left to ``--grey``,
which measures the one-channel denoisers and grey BM3D on every photo converted to grey.

``--split train`` measures the training images instead (never written to a sidecar): a model that scores
the same on the images it learned from as on the test set is not held back by its training data.

Usage: python bench/denoise.py [--write] [--only NAME] [--dataset NAME ...] [--bm3d-images 500] [--limit N]
       python bench/denoise.py --split train --limit 10000 [--only NAME] [--dataset NAME ...]
       python bench/denoise.py --photos [--grey] [--per-folder N] [--bm3d-photos 5] [--sigma 25 ...]
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

from core import checkpoints, color, data, denoise, devices, images, metrics, paths
from core.noise import NoiseSpec, add_noise

NOISE_SEED = 2024
GREY = "_grey"  # a dataset's test images in BT.601 grey, for denoisers trained on them (core.train --grey)
BATCH = 500
SETTINGS = (
    ("cifar10", NoiseSpec("gaussian", 15.0)),
    ("cifar10", NoiseSpec("gaussian", 25.0)),
    ("cifar10", NoiseSpec("gaussian", 50.0)),
    ("cifar10", NoiseSpec("salt_pepper", 0.07)),
    ("cifar10", NoiseSpec("salt_pepper_channels", 0.07)),
    ("cifar10_grey", NoiseSpec("gaussian", 15.0)),
    ("cifar10_grey", NoiseSpec("gaussian", 25.0)),
    ("cifar10_grey", NoiseSpec("gaussian", 50.0)),
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


def source_dataset(name: str) -> str:
    return name.removesuffix(GREY)


def dataset_title(name: str) -> str:
    title = data.DATASETS[source_dataset(name)].title
    return f"{title} (grey)" if name.endswith(GREY) else title


def model_precision() -> str:
    """How ``denoise.model_fn`` runs the models here (it picks bf16 where the CPU has AMX or AVX512-BF16)."""
    return "bf16 autocast, channels-last" if devices.amp_dtype(torch.device("cpu")) else "fp32"


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
                  written: dict[str, dict[str, float]], split: str = "test") -> list[Row]:
    """Every method on one dataset and noise; checkpoints' numbers are collected into ``written``."""
    pixels = data.load_dataset(source_dataset(dataset), split).images[:limit]
    clean = (color.grey_uint8(pixels) if dataset.endswith(GREY) else pixels).float().div(255)
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
        if not denoise.suits(meta, clean.shape[1], source_dataset(dataset)):
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


PHOTO_SIGMAS = (15.0, 25.0, 50.0)


def photo_cells(score: metrics.SetScore) -> str:
    timing = f"{score.seconds_per_megapixel():.2f} s" if score.seconds else "–"
    return (f"{score.count} | {score.psnr_of_set():.2f} | {score.mean('psnr'):.2f} | {score.mean('ssim'):.4f} "
            f"| {timing}")


def bench_photos(metas: list[dict], sigmas: list[float], per_folder: int | None, bm3d_photos: int,
                 grey: bool = False) -> None:
    """Every colour checkpoint and BM3D on the development colour photos, as the Denoise page runs them; with
    ``grey``, every one-channel checkpoint trained on photographs and grey BM3D on every photo made grey."""
    folders = data.photo_folders()
    if not folders:
        raise SystemExit(f"No development photos under {paths.data_root() / 'photos'}.")
    models, channels = [], 1 if grey else 3
    for meta in metas:
        if denoise.suits_photo(meta, channels):
            model, meta = checkpoints.load(meta["path"])
            models.append((meta["name"], model))
    print(f"CPU: {devices.cpu_model()}; {devices.describe()}; models in {model_precision()}; "
          "noise seed = the photo's index in its folder; PSNR with peak 1.\n")
    bm3d = "BM3D" if grey else "BM3D (bm3d_rgb)"
    for folder, files in folders.items():
        photos = [images.load_image(path.read_bytes()) for path in files]
        photos = [photo.convert("L") for photo in photos] if grey else \
            [photo for photo in photos if not images.is_grayscale(photo)]
        photos = photos[:per_folder]
        for sigma in sigmas:
            spec = NoiseSpec("gaussian", sigma)
            everywhere: dict[str, metrics.SetScore] = {}
            on_subset: dict[str, metrics.SetScore] = {}
            for index, photo in enumerate(photos):
                clean, _ = denoise.prepare(photo)
                noisy = denoise.make_noisy(clean, spec, seed=index)
                pixels = clean.shape[1] * clean.shape[2]
                psnr, ssim = denoise.score(noisy, clean)
                results = [("noisy input", denoise.Denoised("noisy", "noisy input", noisy, 0.0, psnr, ssim))]
                results += [(name, denoise.denoise_one(name, noisy, model=model, title=name, clean=clean))
                            for name, model in models]
                if index < bm3d_photos:
                    results.append((bm3d, denoise.denoise_one("bm3d", noisy, spec=spec, clean=clean)))
                for name, result in results:
                    tables = ([] if name == bm3d else [everywhere]) + ([on_subset] * (index < bm3d_photos))
                    for table in tables:
                        table.setdefault(name, metrics.SetScore()).add(result.psnr, pixels, result.seconds,
                                                                       ssim=result.ssim)
            print(f"**{folder}{' in grey' if grey else ''}, Gaussian σ={sigma:g}** ({len(photos)} "
                  f"{'' if grey else 'colour '}photos; BM3D on the first {min(bm3d_photos, len(photos))})\n")
            print("| method | photos | PSNR of the set's MSE (dB) | PSNR, mean per photo (dB) | SSIM "
                  "| time per megapixel |")
            print("|---|---:|---:|---:|---:|---:|")
            for name, score in everywhere.items():
                print(f"| {name} | {photo_cells(score)} |")
            for name, score in on_subset.items():
                print(f"| {name} (BM3D's photos) | {photo_cells(score)} |")
            print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store the numbers in shipped checkpoints' sidecars")
    parser.add_argument("--only", help="measure only this checkpoint (and the baselines)")
    parser.add_argument("--bm3d-images", type=int, default=500, help="test images BM3D runs on (0: skip BM3D)")
    parser.add_argument("--limit", type=int, help="use only the first N test images (quick checks)")
    parser.add_argument("--split", choices=("test", "train"), default="test",
                        help="measure the training images instead (a check for overfitting; never written)")
    parser.add_argument("--dataset", action="append", choices=sorted({d for d, _ in SETTINGS}),
                        help="measure only this dataset's settings (repeatable; default: all)")
    parser.add_argument("--photos", action="store_true", help="measure the development photos instead")
    parser.add_argument("--per-folder", type=int, help="--photos: only the first N photos of each folder")
    parser.add_argument("--bm3d-photos", type=int, default=5, help="--photos: photos per folder BM3D runs on")
    parser.add_argument("--grey", action="store_true", help="--photos: the photos in grey, one-channel models")
    parser.add_argument("--sigma", type=float, action="append", help="--photos: Gaussian sigma (repeatable)")
    args = parser.parse_args()
    if args.write and args.split != "test":
        parser.error("--write records test-set numbers; --split train is a check and never writes")
    devices.configure_threads()
    if args.photos:
        metas = [m for m in checkpoints.list_checkpoints("denoising") if not args.only or m["name"] == args.only]
        bench_photos(metas, args.sigma or list(PHOTO_SIGMAS), args.per_folder, args.bm3d_photos, args.grey)
        return
    written: dict[str, dict[str, float]] = {}
    metas = [m for m in checkpoints.list_checkpoints("denoising") if not args.only or m["name"] == args.only]
    settings = [(dataset, spec) for dataset, spec in SETTINGS if not args.dataset or dataset in args.dataset]
    rows = [row for dataset, spec in settings
            for row in bench_setting(dataset, spec, metas, args.bm3d_images, args.limit, written, args.split)]
    if args.write and not args.limit and args.split == "test":
        checkpoints.record_measurements(written, "python bench/denoise.py --write"
                                        + (f" --only {args.only}" if args.only else "")
                                        + "".join(f" --dataset {d}" for d in args.dataset or ()))
    print(f"CPU: {devices.cpu_model()}; {devices.describe()}; models in {model_precision()}; noise seed {NOISE_SEED}; "
          f"{'first ' + str(args.limit) if args.limit else 'all'} {args.split} images unless the row says otherwise.\n")
    print("| dataset | noise | method | images | PSNR, mean per image (dB) | PSNR of the MSE (dB) | SSIM "
          "| time per image |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        timing = "–" if row.ms_per_image is None else f"{row.ms_per_image:.2f} ms"
        print(f"| {dataset_title(row.dataset)} | {row.noise} | {row.method} | {row.images:,} "
              f"| {row.psnr_mean:.2f} | {row.psnr_dataset:.2f} | {row.ssim:.4f} | {timing} |")


if __name__ == "__main__":
    main()
