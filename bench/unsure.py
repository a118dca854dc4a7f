"""When is a CIFAR-10 classifier's answer unsure? Its threshold, and what it catches.

A classifier must name one of its ten classes for any picture. The Classify page calls an answer unsure
when the model responds to the picture (``core.classify.familiarity``, the log-sum-exp of its logits) more
weakly than to 95% of the CIFAR-10 test images. For every CIFAR-10 classification checkpoint this script
measures that threshold on all 10,000 test images (plain and with test-time augmentation), the accuracy of
the answers above and below it (the Classify page's test-set view shows the plain pair), and then how
many pictures of other kinds fall below it, through the page's own path (``classify.model_input``):
the MNIST and Fashion-MNIST test sets (all 10,000 each) and the development photos. AUROC is the chance
that a random CIFAR-10 test image scores higher than a random picture of the other set. A second table
compares the familiarity with other scores a page could use at the same 5% of test images: two from the
logits (the top softmax probability, Hendrycks and Gimpel 2017, and the largest logit) and two from the
features the last layer reads, which need statistics of the 50,000 training images shipped beside a
checkpoint (the Mahalanobis distance to the nearest class mean under one shared covariance, Lee et al.
2018, and the cosine similarity to the 50th nearest training image, Sun et al. 2022).

Usage: python bench/unsure.py [--write] [--only NAME]
--write stores the thresholds (``test_unsure_below``, ``test_unsure_below_tta``) in each checkpoint's sidecar;
they come from ``core.train.engine.evaluate(..., unsure=True)``, as a training run's do.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.stats import mannwhitneyu

from core import checkpoints, classify, data, devices, images
from core.train.config import TrainConfig
from core.train.engine import evaluate
from core.train.tasks import Classification

NEIGHBOURS = 50  # Sun et al.'s k for CIFAR-10 with all its training images


@dataclass(frozen=True)
class Responses:
    """What a classifier makes of pictures: the features its last layer reads, and its logits."""

    features: torch.Tensor
    logits: torch.Tensor


Score = Callable[[Responses], torch.Tensor]
SCORES: dict[str, Score] = {
    "familiarity (log-sum-exp of the logits; the page's)": lambda seen: classify.familiarity(seen.logits),
    "top softmax probability": lambda seen: torch.softmax(seen.logits, 1).max(1).values,
    "largest logit": lambda seen: seen.logits.max(1).values,
}


def feature_scores(train: Responses, labels: torch.Tensor) -> dict[str, Score]:
    """Scores that compare a picture's features with the training images' (higher: more like them)."""
    classes = int(labels.max()) + 1
    means = torch.stack([train.features[labels == c].mean(0) for c in range(classes)])
    centred = train.features - means[labels]
    precision = torch.linalg.pinv(centred.T @ centred / len(centred), hermitian=True)
    known = F.normalize(train.features, dim=1)

    def mahalanobis(seen: Responses) -> torch.Tensor:
        offsets = seen.features[:, None] - means[None]
        return -torch.einsum("ncd,de,nce->nc", offsets, precision, offsets).min(1).values

    def nearest(seen: Responses) -> torch.Tensor:
        unit = F.normalize(seen.features, dim=1)
        return torch.cat([(chunk @ known.T).topk(NEIGHBOURS, dim=1).values[:, -1] for chunk in unit.split(1000)])

    return {"Mahalanobis distance to the nearest class mean (features)": mahalanobis,
            f"similarity to the {NEIGHBOURS}th nearest training image (features)": nearest}


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


@torch.no_grad()
def responses(model: torch.nn.Module, pictures: torch.Tensor) -> Responses:
    """Features (the input of the model's last linear layer) and logits, without test-time augmentation."""
    last = [module for module in model.modules() if isinstance(module, torch.nn.Linear)][-1]
    features: list[torch.Tensor] = []
    hook = last.register_forward_hook(lambda module, given, output: features.append(given[0].float()))
    try:
        logits = all_logits(model, pictures, tta=False)
    finally:
        hook.remove()
    return Responses(torch.cat(features), logits)


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
    test_set, train_set = data.load_dataset("cifar10", "test"), data.load_dataset("cifar10", "train")
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
        seen_test = responses(model, test)
        seen_others = [responses(model, pictures) for pictures in others.values()]
        for tta in (False, True):
            inside = all_logits(model, test, tta=True) if tta else seen_test.logits
            outside = [all_logits(model, pictures, tta=True) for pictures in others.values()] if tta \
                else [seen.logits for seen in seen_others]
            threshold = thresholds["test_unsure_below_tta" if tta else "test_unsure_below"]
            familiar = classify.familiarity(inside).numpy()
            unsure, right = familiar < threshold, (inside.argmax(1) == test_set.labels).numpy()
            cells = [cell(familiar, classify.familiarity(logits).numpy(), threshold) for logits in outside]
            rows.append(f"| {meta['name']} | {'with TTA' if tta else 'plain'} | {threshold:.3f} "
                        f"| {unsure.mean():.1%} | {right[~unsure].mean():.2%} | {right[unsure].mean():.2%} | "
                        + " | ".join(cells) + " |")
        scores = {**SCORES, **feature_scores(responses(model, train_set.images), train_set.labels)}
        for score_name, score in scores.items():
            inside = score(seen_test).numpy()
            cut = float(np.quantile(inside, classify.UNSURE_SHARE))
            cells = [cell(inside, score(seen).numpy(), cut) for seen in seen_others]
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
