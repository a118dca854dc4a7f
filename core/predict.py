"""Run a checkpoint on image files, for scripts: ``python -m core.predict NAME IMAGE... [--out DIR]``.

A classifier prints each image's top class and its probability (tab-separated: file, class,
probability, then "unsure" where the model responds to the image more weakly than to 95% of its
test images, as the Classify page warns, "sure" otherwise, "-" for a checkpoint without that
measurement). A denoiser writes ``<image>-denoised.png`` (after adding ``--noise`` at
``--level`` first, when asked: otherwise the image is taken as already noisy); a colorizer
writes ``<image>-colorized.png`` from the image's luma. Images go through the same reading and
sizing as the app's pages, so the results match what the pages show.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image
from torch import nn

from core import checkpoints, classify, colorize, data, denoise, fileio, noise
from core.images import ImageError, load_image, png_bytes, to_pil


def classify_file(model: nn.Module, meta: dict, image: Image.Image) -> tuple[str, float, str]:
    """The top class of one image, its probability, and "unsure", "sure" or "-" (see the module's doc)."""
    probabilities, familiarity = classify.probabilities_and_familiarity(model, image, fmt=classify.InputFormat.of(meta))
    names = meta.get("classes") or data.DATASETS[meta["dataset"]].classes
    best = int(probabilities.argmax())
    sure = "-" if classify.unsure_threshold(meta) is None else \
        "unsure" if classify.is_unsure(familiarity, meta, tta=False) else "sure"
    return names[best], float(probabilities[best]), sure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.predict", description="Run a CIFAR Lab checkpoint on images.")
    parser.add_argument("name", help="a checkpoint's name or its .safetensors path")
    parser.add_argument("images", nargs="+", type=Path, help="image files (PNG, JPEG, WebP, ...)")
    parser.add_argument("--out", type=Path, help="folder for written images (default: beside each image)")
    parser.add_argument("--noise", choices=noise.KINDS, help="denoisers: add this noise first (default: none)")
    parser.add_argument("--level", type=float, help="the noise's strength (default: the app's default for it)")
    parser.add_argument("--seed", type=int, default=0, help="the noise's seed")
    args = parser.parse_args(argv)
    try:
        model, meta = checkpoints.load(args.name)
        spec = None
        if args.noise:
            spec = noise.NoiseSpec(args.noise, args.level if args.level is not None else noise.RANGES[args.noise][2])
    except (checkpoints.CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in args.images:
        try:
            image = load_image(path.read_bytes())
        except (OSError, ImageError) as error:
            print(f"{path}\terror: {error}", file=sys.stderr)
            failures += 1
            continue
        if meta["task"] == "classification":
            name, probability, sure = classify_file(model, meta, image)
            print(f"{path}\t{name}\t{probability:.4f}\t{sure}")
            continue
        if meta["task"] == "denoising":
            clean, _ = denoise.prepare(image)
            noisy = denoise.make_noisy(clean, spec, args.seed) if spec else clean
            output = denoise.denoise_one("model", noisy, model=model, title=meta["name"]).image
            suffix = "denoised"
        else:
            output = colorize.colorize_one(model, colorize.prepare(image)).image
            suffix = "colorized"
        target = (args.out or path.parent) / f"{path.stem}-{suffix}.png"
        fileio.atomic_write_bytes(target, png_bytes(to_pil(output)), sync=False)
        print(f"{path}\t{target}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
