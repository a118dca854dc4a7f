"""Watching a classifier learn: a fixed panel of validation images and its predictions after every epoch.

The trainer picks the panel once per run (the first validation image of each class in turn, so the
classes are spread), predicts it after every epoch, and hands both to its callbacks: the live file
(the Train page while the run is on) and the run store (the replay afterwards). Images travel as
base64 PNG, a few kB for CIFAR's 32 x 32.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import torch
from PIL import Image
from torch import nn

from core.images import png_bytes, to_pil

PANEL_SIZE = 8


def choose(labels: torch.Tensor, size: int = PANEL_SIZE) -> list[int]:
    """Indices of ``size`` images, one per class in turn (class 0's first, class 1's first, ...)."""
    per_class = [torch.nonzero(labels == c).flatten().tolist() for c in sorted(set(labels.tolist()))]
    chosen: list[int] = []
    for rank in range(max((len(p) for p in per_class), default=0)):
        for indices in per_class:
            if rank < len(indices) and len(chosen) < size:
                chosen.append(indices[rank])
    return chosen


def encode(images: torch.Tensor) -> list[str]:
    """uint8 images (N x C x H x W) as base64 PNG strings."""
    return [base64.b64encode(png_bytes(to_pil(image.float() / 255))).decode() for image in images]


def decode(encoded: str) -> Image.Image:
    """One panel image back as a PIL image."""
    return Image.open(io.BytesIO(base64.b64decode(encoded)))


def describe(images: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> dict[str, Any]:
    """The panel as stored with a run: its images, their true classes and the class names."""
    return {"images": encode(images), "labels": [int(v) for v in labels], "classes": list(classes)}


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, device: torch.device | str = "cpu") -> list[list[float]]:
    """The top class and its probability for each uint8 image, as ``[[class, probability], ...]``."""
    was_training = model.training
    model.eval()
    try:
        probabilities = model(images.to(device).float().div(255)).float().softmax(1).cpu()
    finally:
        model.train(was_training)
    top = probabilities.max(1)
    return [[int(c), round(float(p), 4)] for p, c in zip(top.values, top.indices, strict=True)]


def rows(panel: dict[str, Any], predictions: list[list[float]] | None) -> list[dict[str, Any]]:
    """What the page shows under each image: truth, prediction, probability, and whether it is right."""
    classes = panel["classes"]
    shown = []
    for index, (encoded, label) in enumerate(zip(panel["images"], panel["labels"], strict=True)):
        row: dict[str, Any] = {"image": decode(encoded), "truth": classes[label]}
        if predictions and index < len(predictions):
            predicted, probability = predictions[index]
            row |= {"predicted": classes[int(predicted)], "probability": probability,
                    "correct": int(predicted) == label}
        shown.append(row)
    return shown


def right_count(panel: dict[str, Any], predictions: list[list[float]]) -> int:
    """How many of the panel's images ``predictions`` (``predict``'s form) name correctly."""
    return sum(int(predicted) == label for (predicted, _), label in zip(predictions, panel["labels"], strict=False))
