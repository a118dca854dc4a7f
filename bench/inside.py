"""Inside the network: how long the Classify page's first inside view takes, and per-block linear probes.

For every shipped classifier (or those named):

- the first view of one image, as the page draws it: block activations on a private copy of the
  model, every block's grid of its top 16 channels, and the first layer's filters (median of 5
  cold views, each on a fresh copy; goal: under 1 second on two CPU cores);
- with ``--probes``, a linear probe per block: softmax regression on the block's spatially pooled
  features of ``--probe-train`` training images, scored on all 10,000 test images. ``--write`` keeps
  them in the sidecar (``probes``, with this command), where the page reads them.

    python bench/inside.py --probes --write
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import checkpoints, data, devices, images, inside, paths
from core.classify import InputFormat


def first_view_seconds(model: torch.nn.Module, fmt: InputFormat, repeats: int = 5) -> float:
    photo = images.sample_photo("Chelsea the cat")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        views = inside.activations(model, photo, fmt)
        for view in views:
            inside.maps_image(view)
        inside.filters_image(inside.first_filters(model))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="checkpoints (default: every shipped classifier)")
    parser.add_argument("--probes", action="store_true", help="also fit and score a linear probe per block")
    parser.add_argument("--probe-train", type=int, default=10_000, help="training images the probes are fitted on")
    parser.add_argument("--write", action="store_true", help="keep the probes in the shipped sidecars")
    args = parser.parse_args(argv)
    command = "python bench/inside.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    names = args.names or [m["name"] for m in checkpoints.list_checkpoints("classification")
                           if Path(m["path"]).parent == paths.SHIPPED_CHECKPOINTS]
    print(f"CPU: {devices.cpu_model()}; torch {torch.__version__}\n")
    print("| checkpoint | blocks | shapes (C x H x W) | first view, median of 5 | probe accuracy per block |")
    print("|---|---:|---|---:|---|")
    for name in names:
        model, meta = checkpoints.load(name)
        fmt = InputFormat.of(meta)
        seconds = first_view_seconds(model, fmt)
        views = inside.activations(model, images.sample_photo("Chelsea the cat"), fmt)
        shapes = ", ".join("x".join(map(str, v.shape)) for v in views)
        probes = ""
        if args.probes:
            train, test = data.load_dataset(meta["dataset"], "train"), data.load_dataset(meta["dataset"], "test")
            accuracy = inside.probe_accuracies(model, train.images[: args.probe_train],
                                               train.labels[: args.probe_train], test.images, test.labels)
            probes = ", ".join(f"{block} {value:.1%}" for block, value in accuracy.items())
            if args.write and Path(meta["path"]).parent == paths.SHIPPED_CHECKPOINTS:
                checkpoints.update_metadata(meta["path"], probes={
                    "accuracy": accuracy, "train_images": min(args.probe_train, len(train)),
                    "test_images": len(test), "measured_by": command})
        print(f"| {name} | {len(views)} | {shapes} | {seconds * 1000:.0f} ms | {probes} |", flush=True)


if __name__ == "__main__":
    main()
