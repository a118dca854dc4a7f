"""Trainer overhead: the engine's training images/s against a bare hand-written loop.

Same process, same model, data, batch size, optimizer and augmentation; runs are
interleaved (bare, engine, bare, engine, ...) so drift in machine load hits both.
Each run trains two epochs and the second is timed, so one-off warm-up costs
(allocator, first kernels) are left out of both. The overhead is taken per pair (an
engine run against the bare run just before it), so the machine's drift between pairs
cancels; the table gives the median of the pairs and their spread. Goal: the engine
within 5% of the bare loop.

Usage: python bench/trainer_overhead.py [--arch staged_cnn --width 32 --images 20000 --repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import torch.nn.functional as F

from core import data, devices, models
from core.train import TrainConfig, Trainer
from core.train.engine import default_arch_args, split_train_val


def bare_loop(config: TrainConfig, train: data.ImageDataset) -> float:
    """Images per second of the simplest loop that does the same work."""
    torch.manual_seed(config.seed)
    model = models.build(config.arch, **default_arch_args(config, train)).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, nesterov=True,
                                weight_decay=config.weight_decay)
    loader = data.TensorLoader(train.images, train.labels, config.batch_size, flip=True, translate=2,
                               drop_last=True, seed=config.seed)
    model.train()
    for epoch in range(config.epochs):
        loader.set_epoch(epoch)
        start, count = time.perf_counter(), 0
        for images, labels in loader:
            output = model(images.contiguous(memory_format=torch.channels_last))
            loss = F.cross_entropy(output, labels, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            count += len(labels)
    return count / (time.perf_counter() - start)  # the last epoch


def engine(config: TrainConfig) -> float:
    """Images per second the engine reports for its training loop (validation and saving excluded)."""
    result = Trainer(config).fit()
    assert result.status == "finished", result.message
    return result.history[-1].images_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="staged_cnn")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    devices.configure_threads()
    full = data.load_dataset("cifar10", "train")
    (images, labels), _ = split_train_val(full.images, full.labels, 0)
    train = data.ImageDataset("cifar10", "train", images[: args.images], labels[: args.images], full.classes, "")
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(task="classification", arch=args.arch, arch_args={"width": args.width},
                             dataset="cifar10", epochs=2, batch_size=args.batch_size, subset=args.images, val_size=0,
                             lr=0.05, schedule="constant", label_smoothing=0.1, seed=0, out=out, name="overhead",
                             amp=False)
        bare_loop(config, train)  # warm-up: allocator, kernels, caches
        bare, eng = [], []
        for _ in range(args.repeats):
            bare.append(bare_loop(config, train))
            eng.append(engine(config))
    overheads = sorted(1 - e / b for b, e in zip(bare, eng, strict=True))
    quartiles = statistics.quantiles(overheads, n=4) if len(overheads) > 1 else overheads * 3
    print(f"CPU: {devices.cpu_model()}; device {devices.describe()}\n")
    print("| model | pairs | bare loop (img/s, median) | engine (img/s, median) | overhead, median of pairs "
          "| middle half of pairs | all pairs |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.arch} width {args.width}, {args.images:,} images | {args.repeats} | {statistics.median(bare):.0f} "
          f"| {statistics.median(eng):.0f} | {statistics.median(overheads):+.1%} | {quartiles[0]:+.1%} to "
          f"{quartiles[2]:+.1%} | {overheads[0]:+.1%} to {overheads[-1]:+.1%} |")
    print(f"\nruns: bare {[round(b) for b in bare]}, engine {[round(e) for e in eng]}")


if __name__ == "__main__":
    main()
