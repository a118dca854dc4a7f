"""Colorization on all 10,000 CIFAR-10 test images: the grey baseline and every colorization checkpoint.

Each method gets the BT.601 luma of the test images and is scored against the colour
originals: PSNR of the mean squared error over all test pixels (the headline: 106 test
images are exactly grey, and their infinite per-image PSNR would swamp a mean), mean
SSIM, mean CIEDE2000 colour difference, and mean colourfulness (Hasler and Suesstrunk)
beside the originals'. Semantic plausibility: the shipped fast classifier's accuracy
(no test-time augmentation) on the originals, the grey images and each colorization,
and the share of the accuracy lost to grey that the colorization wins back.

``--sweep NAME`` instead decodes a binned checkpoint at several temperatures on 5,000
training images (never the test set) to choose its temperature. ``--held-out NAME ...``
scores fine-tunes on the 2,000 training images they held out (``--val-size 2000``), with
two classifiers as judges, to choose among them. ``--ceilings`` asks what the fast net
makes of the *true* colours, desaturated or blurred: how right colours must be to win back
the accuracy lost to grey.

``--photos`` measures the development photos (``$CIFAR_LAB_DATA/photos``: Set5, Set14, Sun-Hays
80) through the Colorize page's own path (the upload decoder, BT.601 luma, chroma predicted at the
working size and laid onto the full-resolution luma), per folder: the grey image and every
colorizer, PSNR of the folder's MSE, the mean per-photo PSNR, SSIM, CIEDE2000 and seconds per
megapixel; ``--working-side`` tries other working sizes.

``--hints`` measures the hint models against inverse-distance interpolation of the same random
true-colour hints: on the CIFAR-10 test set per hint count, then on the development photos with
20 hints each at the page's working size for hints (``--photos`` with it: the photos only, where
``--working-side`` tries others).

Usage: python bench/colorize.py [--write] [--only NAME] [--limit N] [--sweep NAME]
                                [--held-out NAME ...] [--ceilings]
       python bench/colorize.py --photos [--per-folder N] [--working-side 64 ...]
       python bench/colorize.py --hints [--write] [--photos [--working-side 48 ...]]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import torch.nn.functional as F

from core import checkpoints, color, colorize, data, devices, hints, images, metrics, paths
from core.train.engine import split_train_val

BATCH = 500
CLASSIFIER = "fastnet-cifar10"
SWEEP_TEMPERATURES = (0.6, 0.8, 1.0, 1.2, 1.4, 1.7, 2.0)
HELD_OUT = 2000  # the fine-tunes' --val-size: these training images never trained them
JUDGES = (CLASSIFIER, "intermediate-block-cifar10")


@dataclass
class Row:
    method: str
    psnr_dataset: float
    ssim: float
    delta_e: float
    colorfulness: float
    accuracy: float | None
    ms_per_image: float | None


def batched(fn, inputs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(inputs[start:start + BATCH]) for start in range(0, len(inputs), BATCH)])


def psnr_dataset(output: torch.Tensor, originals: torch.Tensor) -> float:
    """PSNR of the mean squared error over every pixel (exactly grey images make per-image PSNR infinite)."""
    return metrics.psnr_from_mse(float(metrics.per_image_mse(output, originals).mean()))


def accuracy_of(classifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    return metrics.accuracy(batched(classifier, images), labels)


def recovered(accuracy: float, gray: float, original: float) -> float:
    """The share of the accuracy lost to grey that ``accuracy`` wins back."""
    return (accuracy - gray) / (original - gray)


def per_batch(fn, output: torch.Tensor, originals: torch.Tensor) -> float:
    """The mean of a per-image metric, computed batch by batch."""
    return float(torch.cat([fn(output[start:start + BATCH], originals[start:start + BATCH])
                            for start in range(0, len(output), BATCH)]).mean())


def score(method: str, output: torch.Tensor, originals: torch.Tensor, classifier, labels: torch.Tensor,
          ms_per_image: float | None) -> Row:
    accuracy = None
    if classifier is not None:
        accuracy = accuracy_of(classifier, output, labels)
    return Row(method, psnr_dataset(output, originals), per_batch(metrics.ssim, output, originals),
               per_batch(color.ciede2000, output, originals), float(color.colorfulness(output).mean()),
               accuracy, ms_per_image)


def ms_per_image(model, luma: torch.Tensor, count: int = 100) -> float:
    """Median milliseconds for one 32x32 image at batch 1, after a warm-up."""
    timings = []
    with torch.no_grad():
        for index in range(count + 5):
            start = time.perf_counter()
            model(luma[index:index + 1])
            timings.append(time.perf_counter() - start)
    return sorted(timings[5:])[len(timings[5:]) // 2] * 1000


def sweep(name: str) -> None:
    model, _ = checkpoints.load(name)
    if not getattr(model, "binned", False):
        raise SystemExit(f"{name} is not a binned colorizer: it has no temperature to choose.")
    train = data.load_dataset("cifar10", "train")
    originals = train.images[-5000:].float().div(255)
    luma = color.luma(originals)
    print(f"{name} on the last 5,000 CIFAR-10 training images; grey baseline "
          f"{psnr_dataset(colorize.gray_rgb(luma), originals):.2f} dB, "
          f"originals' colourfulness {float(color.colorfulness(originals).mean()):.1f}\n")
    print("| temperature | PSNR of the MSE (dB) | colourfulness | share of the originals' |")
    print("|---:|---:|---:|---:|")
    original = float(color.colorfulness(originals).mean())
    for temperature in SWEEP_TEMPERATURES:
        model.temperature = temperature
        output = batched(model, luma)
        psnr = psnr_dataset(output, originals)
        colorful = float(color.colorfulness(output).mean())
        print(f"| {temperature:g} | {psnr:.2f} | {colorful:.1f} | {colorful / original:.0%} |")


def held_out(names: list[str]) -> None:
    """Fine-tunes scored on the training images they held out. The judges trained on these images, so
    their accuracies are high; the comparison between colorizers is what counts."""
    train = data.load_dataset("cifar10", "train")
    _, (images, labels) = split_train_val(train.images, train.labels, HELD_OUT)
    originals = images.float().div(255)
    luma = color.luma(originals)
    judges = {judge: checkpoints.load(judge)[0] for judge in JUDGES}
    baselines = {judge: (accuracy_of(model, colorize.gray_rgb(luma), labels), accuracy_of(model, originals, labels))
                 for judge, model in judges.items()}
    gray_psnr = psnr_dataset(colorize.gray_rgb(luma), originals)
    print(f"{HELD_OUT:,} held-out CIFAR-10 training images; grey {gray_psnr:.2f} dB; "
          + "; ".join(f"{judge}: grey {gray:.2%}, originals {original:.2%}"
                      for judge, (gray, original) in baselines.items()) + "\n")
    print("| colorizer | PSNR of the MSE (dB) | " + " | ".join(f"{judge}: won back" for judge in JUDGES) + " |")
    print("|---|---:|" + "---:|" * len(JUDGES))
    for name in names:
        model, _ = checkpoints.load(name)
        output = batched(model, luma)
        psnr = psnr_dataset(output, originals)
        won_back = [recovered(accuracy_of(judges[judge], output, labels), *baselines[judge]) for judge in JUDGES]
        print(f"| {name} | {psnr:.2f} | " + " | ".join(f"{share:.0%}" for share in won_back) + " |")


def ceilings(limit: int | None) -> None:
    """The fast net's accuracy on the test images recoloured with their own chroma, weakened two ways."""
    test = data.load_dataset("cifar10", "test")
    originals, labels = test.images[:limit].float().div(255), test.labels[:limit]
    luma, chroma = color.luma(originals), color.chroma(originals)
    classifier = checkpoints.load(CLASSIFIER)[0]
    gray = accuracy_of(classifier, colorize.gray_rgb(luma), labels)
    original = accuracy_of(classifier, originals, labels)
    variants = [(f"true chroma x {scale:g} (desaturated)", chroma * scale) for scale in (0.25, 0.5, 0.75)]
    variants += [(f"true chroma averaged over {side}x{side} pixels", F.interpolate(
        F.avg_pool2d(chroma, side), scale_factor=side, mode="bilinear")) for side in (2, 4, 8, 16, 32)]
    print(f"{CLASSIFIER} on {'the first ' + str(limit) if limit else 'all'} CIFAR-10 test images: "
          f"originals {original:.2%}, grey {gray:.2%}\n")
    print("| colours given | classifier accuracy | accuracy lost to grey, won back |")
    print("|---|---:|---:|")
    for label, variant in variants:
        accuracy = accuracy_of(classifier, color.combine(luma, variant), labels)
        print(f"| {label} | {accuracy:.2%} | {recovered(accuracy, gray, original):.0%} |")


def bench_photos(only: str | None, per_folder: int | None, working_sides: list[int]) -> None:
    """The grey image and every colorizer on the development photos, as the Colorize page runs them."""
    folders = data.photo_folders()
    if not folders:
        raise SystemExit(f"No development photos under {paths.data_root() / 'photos'}.")
    models = [(meta["name"], checkpoints.load(meta["path"])[0]) for meta in checkpoints.list_checkpoints("colorization")
              if not only or meta["name"] == only]
    print(f"CPU: {devices.cpu_model()}; {devices.describe()}; PSNR with peak 1.\n")
    totals: dict[str, metrics.SetScore] = {}
    for folder, files in folders.items():
        scores: dict[str, metrics.SetScore] = {}
        for path in files[:per_folder]:
            given = colorize.prepare(images.load_image(path.read_bytes()))
            if given.original is None:
                continue  # a grey photo (Set14's bridge and man): nothing to compare colours with
            pixels = given.luma.shape[1] * given.luma.shape[2]
            gray = colorize.gray_rgb(given.luma)
            results = [("grey input", colorize.Colorized(
                gray, 0.0, float(metrics.psnr(gray[None], given.original[None])[0]),
                float(metrics.ssim(gray[None], given.original[None])[0]),
                float(color.ciede2000(gray[None], given.original[None])[0])))]
            for name, model in models:
                for side in working_sides:
                    label = name if len(working_sides) == 1 else f"{name} at {side} px"
                    results.append((label, colorize.colorize_one(model, given, side)))
            for name, result in results:
                for table in (scores, totals):
                    table.setdefault(name, metrics.SetScore()).add(result.psnr, pixels, result.seconds,
                                                                   ssim=result.ssim, delta_e=result.delta_e)
        print_photo_table(f"{folder} ({scores['grey input'].count} colour photos)", scores)
    print_photo_table("all folders", totals)


def print_photo_table(title: str, scores: dict[str, metrics.SetScore], baseline: str = "grey input",
                      quality: bool = True) -> None:
    """One folder's rows, each against ``baseline``'s PSNR; ``quality`` adds SSIM and CIEDE2000."""
    reference = scores[baseline].psnr_of_set()
    extra = " SSIM | CIEDE2000 |" if quality else ""
    print(f"**{title}**\n")
    print(f"| method | photos | PSNR of the set's MSE (dB) | vs {baseline.split()[0]} (dB) | PSNR, mean per photo (dB) "
          f"|{extra} time per megapixel |")
    print("|---|---:|---:|---:|---:|" + "---:|" * (3 if quality else 1))
    for name, score in scores.items():
        gain = "–" if name == baseline else f"{score.psnr_of_set() - reference:+.2f}"
        timing = f"{score.seconds_per_megapixel():.3f} s" if score.seconds else "–"
        columns = f" {score.mean('ssim'):.4f} | {score.mean('delta_e'):.2f} |" if quality else ""
        print(f"| {name} | {score.count} | {score.psnr_of_set():.2f} | {gain} | {score.mean('psnr'):.2f} "
              f"|{columns} {timing} |")
    print(flush=True)


HINT_COUNTS = (0, 1, 5, 10, 20)
PHOTO_HINTS = 20
HINT_SEED = 0


def bench_hints(limit: int | None, write: bool, per_folder: int | None, photos_only: bool,
                working_sides: list[int]) -> None:
    """Hint models against inverse-distance interpolation of the same random true-colour hints."""
    models = [(meta["name"], meta["path"], checkpoints.load(meta["path"])[0])
              for meta in checkpoints.list_checkpoints("colorization")]
    # Channels last: 3.6x faster for these U-Nets in float32 on a CPU (measured; plain layout crawls).
    models = [(name, path, model.to(memory_format=torch.channels_last)) for name, path, model in models
              if model.takes_hints]
    print(f"CPU: {devices.cpu_model()}; {devices.describe()}; hints at random pixels, seed {HINT_SEED}.\n")
    written: dict[str, dict] = {path: {} for _, path, _ in models}
    if not photos_only:
        hints_on_cifar(models, limit, written)
    tables: dict[str, dict[str, metrics.SetScore]] = {}  # per folder, then all folders
    for folder, files in data.photo_folders().items():
        for path in files[:per_folder]:
            given = colorize.prepare(images.load_image(path.read_bytes()))
            if given.original is None:
                continue
            pixels = given.luma.shape[1] * given.luma.shape[2]
            chosen = hints.sample_hints(given.original, PHOTO_HINTS, HINT_SEED)
            start = time.perf_counter()
            channels = hints.encode(chosen, *given.luma.shape[1:])[None]
            baseline = hints.interpolate(given.luma[None], channels)
            seconds = time.perf_counter() - start
            results = [("interpolation", float(metrics.psnr(baseline, given.original[None])[0]), seconds)]
            for name, _, model in models:
                for side in working_sides:
                    result = colorize.colorize_one(model, given, side, chosen)
                    results.append((name if len(working_sides) == 1 else f"{name} at {side} px", result.psnr,
                                    result.seconds))
            for table in (folder, "all folders"):
                for label, psnr, seconds in results:
                    tables.setdefault(table, {}).setdefault(label, metrics.SetScore()).add(psnr, pixels, seconds)
    if tables:
        print(f"\nDevelopment photos, {PHOTO_HINTS} random true-colour hints each (seed {HINT_SEED}; working size "
              f"{', '.join(map(str, working_sides))} px):")
        for title in sorted(tables, key=lambda table: table == "all folders"):  # the total last
            print()
            print_photo_table(title, tables[title], baseline="interpolation", quality=False)
        if working_sides == [colorize.HINT_WORKING_SIDE]:
            for name, path, _ in models:
                written[path][f"photos_psnr_dataset_hints{PHOTO_HINTS}"] = round(
                    tables["all folders"][name].psnr_of_set(), 3)
    if write and not limit and not per_folder and not photos_only and working_sides == [colorize.HINT_WORKING_SIDE]:
        checkpoints.record_measurements(written, "python bench/colorize.py --hints --write")


def hints_on_cifar(models: list, limit: int | None, written: dict[str, dict]) -> None:
    """The CIFAR-10 table: PSNR of the set's MSE per hint count, for interpolation and every hint model."""
    test = data.load_dataset("cifar10", "test")
    originals = test.images[:limit].float().div(255)
    luma = color.luma(originals)
    print(f"{'First ' + str(limit) if limit else 'All'} CIFAR-10 test images; PSNR of the set's MSE (dB).\n")
    names = [name for name, _, _ in models]
    print("| hints | interpolation (IDW over the true luma) | " + " | ".join(names) + " |")
    print("|---:|---:|" + "---:|" * len(names))
    for count in HINT_COUNTS:
        given = hints.fixed_hints(originals, count, HINT_SEED)
        row = [psnr_dataset(hints.interpolate(luma, given), originals)]
        for _, path, model in models:
            value = psnr_dataset(batched(model, torch.cat([luma, given], dim=1).contiguous(
                memory_format=torch.channels_last)), originals)
            written[path][f"test_psnr_dataset_hints{count}"] = round(value, 3)
            row.append(value)
        print(f"| {count} | " + " | ".join(f"{value:.2f}" for value in row) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store the numbers in shipped checkpoints' sidecars")
    parser.add_argument("--only", help="measure only this checkpoint (and the baselines)")
    parser.add_argument("--limit", type=int, help="use only the first N test images (quick checks)")
    parser.add_argument("--sweep", metavar="NAME", help="choose a binned checkpoint's temperature on training images")
    parser.add_argument("--held-out", nargs="+", metavar="NAME", help="score fine-tunes on their held-out images")
    parser.add_argument("--ceilings", action="store_true", help="the fast net on desaturated or blurred true colours")
    parser.add_argument("--photos", action="store_true",
                        help="measure the development photos instead (with --hints: only the photos)")
    parser.add_argument("--hints", action="store_true",
                        help="hint models against interpolation of the same hints (CIFAR-10 and the photos)")
    parser.add_argument("--per-folder", type=int, help="--photos: only the first N photos of each folder")
    parser.add_argument("--working-side", type=int, action="append",
                        help=f"--photos: the working size's longer side (repeatable; default {colorize.WORKING_SIDE}, "
                             f"with --hints {colorize.HINT_WORKING_SIDE})")
    args = parser.parse_args()
    devices.configure_threads()
    if args.hints:
        bench_hints(args.limit, args.write, args.per_folder, args.photos,
                    args.working_side or [colorize.HINT_WORKING_SIDE])
        return
    if args.photos:
        bench_photos(args.only, args.per_folder, args.working_side or [colorize.WORKING_SIDE])
        return
    if args.sweep:
        sweep(args.sweep)
        return
    if args.held_out:
        held_out(args.held_out)
        return
    if args.ceilings:
        ceilings(args.limit)
        return
    test = data.load_dataset("cifar10", "test")
    originals, labels = test.images[:args.limit].float().div(255), test.labels[:args.limit]
    luma = color.luma(originals)
    try:
        classifier = checkpoints.load(CLASSIFIER)[0]
    except checkpoints.CheckpointError as error:
        print(f"No classifier for the semantic check ({error}).", file=sys.stderr)
        classifier = None
    rows = [score("original colour images", originals, originals, classifier, labels, None),
            score("grey input (BT.601 luma in 3 channels)", colorize.gray_rgb(luma), originals, classifier, labels,
                  None)]
    gray, original = rows[1], rows[0]
    written: dict[str, dict] = {}
    for meta in checkpoints.list_checkpoints("colorization"):
        if args.only and meta["name"] != args.only:
            continue
        model, meta = checkpoints.load(meta["path"])
        row = score(meta["name"], batched(model, luma), originals, classifier, labels, ms_per_image(model, luma))
        rows.append(row)
        measured = {"test_psnr_dataset": round(row.psnr_dataset, 3), "test_ssim": round(row.ssim, 4),
                    "test_ciede2000": round(row.delta_e, 3), "test_colorfulness": round(row.colorfulness, 2),
                    "test_colorfulness_share": round(row.colorfulness / original.colorfulness, 4),
                    "ms_per_image": round(row.ms_per_image, 2)}
        if row.accuracy is not None:
            measured["test_classifier_accuracy"] = round(row.accuracy, 4)
            measured["test_accuracy_recovered"] = round(
                recovered(row.accuracy, gray.accuracy, original.accuracy), 4)
        written[meta["path"]] = measured
    if args.write and not args.limit:
        checkpoints.record_measurements(
            written, "python bench/colorize.py --write" + (f" --only {args.only}" if args.only else ""))
    print(f"Device: {devices.describe()}; {'first ' + str(args.limit) if args.limit else 'all'} CIFAR-10 test images; "
          f"classifier: {CLASSIFIER} without test-time augmentation.\n")
    print("| method | PSNR of the MSE (dB) | SSIM | CIEDE2000 | colourfulness | classifier accuracy "
          "| accuracy lost to grey, won back | time per image |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        accuracy = "–" if row.accuracy is None else f"{row.accuracy:.2%}"
        won_back = "–"
        if row.accuracy is not None and row not in (gray, original):
            won_back = f"{recovered(row.accuracy, gray.accuracy, original.accuracy):.0%}"
        share = f"{row.colorfulness:.1f} ({row.colorfulness / original.colorfulness:.0%})"
        timing = "–" if row.ms_per_image is None else f"{row.ms_per_image:.1f} ms"
        print(f"| {row.method} | {row.psnr_dataset:.2f} | {row.ssim:.4f} | {row.delta_e:.2f} | {share} "
              f"| {accuracy} | {won_back} | {timing} |")


if __name__ == "__main__":
    main()
