"""Few-shot training on your own images, timed from "Start" to the checkpoint.

A task the shipped models have never seen: Fashion-MNIST classes 0 to 4 (T-shirt/top, trouser,
pullover, dress, coat), with K training images per class drawn from the training split with a
fixed seed and written as an image folder of PNGs, exactly what a visitor would upload. The run
is the Train page's "Your images" preset through the command line (``python -m core.train
--dataset PATH``, a process of its own, imports and decoding included); it is scored on those
classes' 5,000 test images, written as ``PATH/test/``.

    python bench/own_data.py                  # 5, 20 and 50 images per class
    python bench/own_data.py --shots 20 --runs 3

Prints a Markdown table with the CPU model; the goal is 80% test accuracy within 60 seconds at
20 images per class on two CPU cores.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import data, devices
from core.train.config import config_to_argv, own_images_preset

CLASSES = (0, 1, 2, 3, 4)
SEED = 2024


def write_folder(root: Path, shots: int, seed: int = SEED) -> None:
    """``root/train/<class>/`` with ``shots`` images per class, ``root/test/<class>/`` with all test images."""
    train, test = data.load_dataset("fashion_mnist", "train"), data.load_dataset("fashion_mnist", "test")
    generator = torch.Generator().manual_seed(seed)
    for label in CLASSES:
        name = re.sub(r"[^A-Za-z0-9 -]", "-", train.classes[label])
        members = (train.labels == label).nonzero().flatten()
        chosen = members[torch.randperm(len(members), generator=generator)[:shots]]
        for split, dataset, indices in (("train", train, chosen),
                                        ("test", test, (test.labels == label).nonzero().flatten())):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in indices.tolist():
                Image.fromarray(dataset.images[index, 0].numpy()).save(folder / f"{index}.png")


def run(root: Path, out: Path, overrides: dict) -> tuple[float, float, str]:
    """(seconds from launch to exit, test accuracy, command) of one training process."""
    config = own_images_preset(dataset=str(root), out=str(out), name="own", **overrides)
    argv = [sys.executable, "-m", "core.train", *config_to_argv(config), "--no-record"]
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    seconds = time.perf_counter() - start
    found = re.search(r"test accuracy=([0-9.]+)", result.stdout)
    if result.returncode != 0 or not found:
        raise RuntimeError(f"training failed:\n{result.stderr[-2000:]}")
    return seconds, float(found.group(1)), " ".join(argv[1:])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, nargs="+", default=[5, 20, 50], help="training images per class")
    parser.add_argument("--runs", type=int, default=1, help="runs per setting (different draws of the images)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting of the preset (experiments), e.g. --set epochs=20")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, value = item.split("=", 1)
        overrides[key] = json.loads(value)
    print(f"CPU: {devices.cpu_model()}; torch {torch.__version__}")
    rows, command = [], ""
    for shots in args.shots:
        for draw in range(args.runs):
            with tempfile.TemporaryDirectory() as folder:
                root = Path(folder) / "fashion-0-4"
                write_folder(root, shots, SEED + draw)
                seconds, accuracy, command = run(root, Path(folder) / "out", overrides)
            rows.append((shots, draw, seconds, accuracy))
            print(f"{shots} per class, draw {draw}: {accuracy:.2%} in {seconds:.1f} s", flush=True)
    print(f"\nCommand (PATH holds train/ and test/): {command}\n")
    print("| images per class | draw | test accuracy (5,000 images) | seconds, Start to checkpoint |")
    print("|---:|---:|---:|---:|")
    for shots, draw, seconds, accuracy in rows:
        print(f"| {shots} | {draw} | {accuracy:.2%} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
