"""Classification checkpoints on the full CIFAR-10 test set: accuracy, speed, size.

For every classification checkpoint (shipped and user-trained): parameters, test
accuracy plain and with flip-and-shift test-time augmentation, the CPU training
time recorded in its metadata, latency for one image (prediction alone, and with
the Grad-CAM saliency map the Classify page shows), and throughput at batch 256.

Usage: python bench/classify.py [--write] [--only NAME]
--write stores the measured metrics in each shipped checkpoint's sidecar.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from core import checkpoints, classify, data, devices
from core.images import sample_photo
from core.train.config import TrainConfig
from core.train.engine import evaluate
from core.train.tasks import Classification

SEED_PROJECTS = """Seed projects' reported test accuracy: staged CNN baseline 28.5%, intermediate 23.6%, advanced 86.1%
(200 epochs); intermediate-block net 80.9% (50 epochs); ResNet-18 81.2% (7 epochs)."""


def median_ms(fn, repeats: int = 20) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store the metrics in shipped checkpoints' sidecars")
    parser.add_argument("--only", help="measure only this checkpoint")
    args = parser.parse_args()
    devices.configure_threads()
    test = data.load_dataset("cifar10", "test")
    task = Classification(TrainConfig())
    photo = sample_photo("Chelsea the cat")
    rows = []
    for meta in checkpoints.list_checkpoints("classification"):
        if meta["dataset"] != "cifar10" or (args.only and meta["name"] != args.only):
            continue
        model, meta = checkpoints.load(meta["path"])
        _, measured_accuracy = evaluate(model, task, test.images, test.labels, batch_size=500, tta=True)
        latency = median_ms(lambda model=model: classify.probabilities(model, photo))
        layer = classify.saliency_layer(model)
        with_saliency = median_ms(lambda model=model, layer=layer: (
            classify.saliency(model, photo, int(classify.probabilities(model, photo).argmax()), layer)))
        batch = torch.rand(256, 3, 32, 32)
        with torch.no_grad():
            per_batch = median_ms(lambda model=model, batch=batch: model(batch), repeats=5)
        seconds = meta.get("training", {}).get("seconds")
        measured = {
            "test_accuracy": measured_accuracy["accuracy"], "test_accuracy_tta": measured_accuracy["accuracy_tta"],
            "latency_ms": round(latency, 1), "latency_with_saliency_ms": round(with_saliency, 1),
            "throughput_batch256": round(256 / (per_batch / 1000)),
        }
        rows.append((meta, measured, seconds))
        if args.write:
            command = "python bench/classify.py --write" + (f" --only {args.only}" if args.only else "")
            checkpoints.record_measurements({meta["path"]: measured}, command)
    print(f"Device: {devices.describe()}; all 10,000 CIFAR-10 test images.\n")
    print("| checkpoint | architecture | parameters | test accuracy | with TTA | CPU training time "
          "| latency, 1 image | with saliency | throughput (batch 256) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for meta, measured, seconds in rows:
        trained = f"{seconds / 60:.0f} min" if seconds else "–"
        print(f"| {meta['name']} | {meta['architecture']} | {meta['num_params'] / 1e6:.2f}M "
              f"| {measured['test_accuracy']:.2%} | {measured['test_accuracy_tta']:.2%} | {trained} "
              f"| {measured['latency_ms']:.1f} ms | {measured['latency_with_saliency_ms']:.1f} ms "
              f"| {measured['throughput_batch256']:,} img/s |")
    print("\n" + SEED_PROJECTS)


if __name__ == "__main__":
    main()
