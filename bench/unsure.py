"""When is a CIFAR-10 classifier's answer unsure? Its threshold, and what it catches.

A classifier must name one of its ten classes for any picture. The Classify page calls an answer unsure
when the model responds to the picture (``core.classify.familiarity``, the log-sum-exp of its logits) more
weakly than to 95% of the CIFAR-10 test images. For every CIFAR-10 classification checkpoint this script
measures that threshold on all 10,000 test images (plain and with test-time augmentation), the accuracy of
the answers above and below it (the Classify page's test-set view shows the plain pair), and then how
many pictures of other kinds fall below it, through the page's own path (``classify.model_input``):
the MNIST and Fashion-MNIST test sets (all 10,000 each) and the development photos. AUROC is the chance
that a random CIFAR-10 test image scores higher than a random picture of the other set. A second table
compares the familiarity with two other scores a page could use (the top softmax probability, Hendrycks
and Gimpel 2017, and the largest logit) at the same 5% of test images.

Usage: python bench/unsure.py [--write] [--only NAME]
--write stores the thresholds (``test_unsure_below``, ``test_unsure_below_tta``) in each checkpoint's sidecar;
they come from ``core.train.engine.evaluate(..., unsure=True)``, as a training run's do.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from PIL import Image
from scipy.stats import mannwhitneyu

from core import checkpoints, classify, data, devices, images
from core.train.config import TrainConfig
from core.train.engine import evaluate
from core.train.tasks import Classification

SCORES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "familiarity (log-sum-exp of the logits; the page's)": classify.familiarity,
    "top softmax probability": lambda logits: torch.softmax(logits, 1).max(1).values,
    "largest logit": lambda logits: logits.max(1).values,
}


def as_seen(pictures: list[Image.Image]) -> torch.Tensor:
    """Pictures as a CIFAR-10 classifier sees them on the Classify page: uint8, N x 3 x 32 x 32."""
    return torch.cat([images.to_tensor(classify.model_input(p)) for p in pictures]).mul(255).round().to(torch.uint8)


def other_sets() -> dict[str, torch.Tensor]:
    """The pictures that are not CIFAR-10 which are found on this machine, by name."""
    found = {}
    for name in ("mnist", "fashion_mnist"):
        try:
            test = data.load_dataset(name, "test")
        except data.DatasetNotFoundError:
            print(f"{data.title(name)} not found: left out.")
            continue
        found[f"{data.title(name)} test set"] = as_seen([images.to_pil(x.float() / 255) for x in test.images])
    files = [path for paths in data.photo_folders().values() for path in paths]
    if files:
        found["development photos"] = as_seen([images.load_image(path.read_bytes()) for path in files])
    else:
        print("No development photos found: left out.")
    return found


@torch.no_grad()
def all_logits(model: torch.nn.Module, pictures: torch.Tensor, tta: bool) -> torch.Tensor:
    batches = [pictures[i:i + 500].float() / 255 for i in range(0, len(pictures), 500)]
    return torch.cat([classify.predict_tta(model, b) if tta else model(b).float() for b in batches])


def cell(inside: np.ndarray, outside: np.ndarray, threshold: float) -> str:
    """The share of ``outside`` below ``threshold``, and the AUROC of the two sets' scores."""
    area = mannwhitneyu(inside, outside).statistic / (len(inside) * len(outside))
    return f"{np.mean(outside < threshold):.0%} ({area:.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store the thresholds in the checkpoints' sidecars")
    parser.add_argument("--only", help="measure only this checkpoint")
    args = parser.parse_args()
    devices.configure_threads()
    test_set = data.load_dataset("cifar10", "test")
    test = test_set.images
    others = other_sets()
    rows, comparison = [], []
    for meta in checkpoints.list_checkpoints("classification"):
        if meta["dataset"] != "cifar10" or (args.only and meta["name"] != args.only):
            continue
        model, meta = checkpoints.load(meta["path"])
        model.eval()
        _, measured = evaluate(model, Classification(TrainConfig()), test, test_set.labels, tta=True, unsure=True)
        thresholds = {f"test_{key}": measured[key] for key in ("unsure_below", "unsure_below_tta")}
        for tta in (False, True):
            inside = all_logits(model, test, tta)
            outside = [all_logits(model, pictures, tta) for pictures in others.values()]
            threshold = thresholds["test_unsure_below_tta" if tta else "test_unsure_below"]
            familiar = classify.familiarity(inside).numpy()
            unsure, right = familiar < threshold, (inside.argmax(1) == test_set.labels).numpy()
            cells = [cell(familiar, classify.familiarity(logits).numpy(), threshold) for logits in outside]
            rows.append(f"| {meta['name']} | {'with TTA' if tta else 'plain'} | {threshold:.3f} "
                        f"| {unsure.mean():.1%} | {right[~unsure].mean():.2%} | {right[unsure].mean():.2%} | "
                        + " | ".join(cells) + " |")
            if not tta:
                for score_name, score in SCORES.items():
                    scores = score(inside).numpy()
                    cut = float(np.quantile(scores, classify.UNSURE_SHARE))
                    cells = [cell(scores, score(logits).numpy(), cut) for logits in outside]
                    comparison.append(f"| {meta['name']} | {score_name} | " + " | ".join(cells) + " |")
        if args.write:
            command = "python bench/unsure.py --write" + (f" --only {args.only}" if args.only else "")
            checkpoints.record_measurements({meta["path"]: thresholds}, command)
    names = list(others)
    print(f"Device: {devices.describe()}. Threshold: the familiarity below which {classify.UNSURE_SHARE:.0%} of "
          f"the 10,000 CIFAR-10 test images fall. Cells: share of the set below it (AUROC).\n")
    print("| checkpoint | prediction | threshold | CIFAR-10 test images below it | accuracy when sure "
          "| accuracy when unsure | " + " | ".join(names) + " |")
    print("|---|---|---:|---:|---:|---:|" + "---:|" * len(names))
    print("\n".join(rows))
    print(f"\nThe same at {classify.UNSURE_SHARE:.0%} of the CIFAR-10 test images with other scores "
          "(plain prediction):\n")
    print("| checkpoint | score | " + " | ".join(names) + " |")
    print("|---|---|" + "---:|" * len(names))
    print("\n".join(comparison))


if __name__ == "__main__":
    main()
