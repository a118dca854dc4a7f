"""The seed project's staged CNN, in its three stages.

- ``baseline``: a plain conv net (two conv + pool stages, a hidden FC layer), no
  normalisation; the seed trained it with SGD at lr 0.01 (28.5%).
- ``intermediate``: the baseline with six more plain conv blocks in between. Without
  normalisation the deeper stack trains worse, not better (the seed: 23.6%), the
  lesson that motivates the next stage.
- ``advanced``: VGG-style stages with batch norm and dropout (the seed: 86.1% after
  200 epochs with AdamW and cosine annealing).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from core.models._blocks import Normalize, channel_stats
from core.models._registry import Option, register_model

VARIANTS = ("baseline", "intermediate", "advanced")


def plain_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True))


def bn_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class StagedCNN(nn.Module):
    def __init__(self, variant: str, num_classes: int, in_channels: int, width: int, dropout: float,
                 mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
        self.normalize = Normalize(mean, std)
        if variant == "advanced":
            w = width
            self.features = nn.Sequential(
                bn_conv(in_channels, w), bn_conv(w, w), nn.MaxPool2d(2), nn.Dropout(dropout / 2),
                bn_conv(w, 2 * w), bn_conv(2 * w, 2 * w), nn.MaxPool2d(2), nn.Dropout(dropout / 2),
                bn_conv(2 * w, 4 * w), bn_conv(4 * w, 4 * w), nn.MaxPool2d(2), nn.Dropout(dropout / 2),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            )
            self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * w, num_classes))
        else:
            extra = [plain_conv(2 * width, 2 * width) for _ in range(6 if variant == "intermediate" else 0)]
            self.features = nn.Sequential(
                plain_conv(in_channels, width), nn.MaxPool2d(2),
                plain_conv(width, 2 * width), *extra, nn.MaxPool2d(2),
                nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            )
            self.classifier = nn.Sequential(nn.Linear(2 * width * 16, 8 * width), nn.ReLU(inplace=True),
                                            nn.Linear(8 * width, num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.normalize(images)))


@register_model(
    "staged_cnn",
    task="classification",
    title="Staged CNN (baseline / intermediate / advanced)",
    summary=(
        "Stacks of 3x3 convolutions with max-pooling, read top to bottom. The baseline is a plain two-stage "
        "net; the intermediate stage inserts six more plain convolutions, which without normalisation makes "
        "training harder rather than better; the advanced stage adds batch normalisation after every "
        "convolution and dropout between stages, which is what lets a deeper net train well."
    ),
    options=(
        Option("variant", "advanced", "which stage of the seed project", choices=VARIANTS),
        Option("width", 64, "channels of the first stage", minimum=8, maximum=256),
        Option("dropout", 0.3, "dropout before the classifier (advanced only)", minimum=0.0, maximum=0.9),
    ),
)
def staged_cnn(*, variant: str = "advanced", num_classes: int = 10, in_channels: int = 3, width: int = 64,
               dropout: float = 0.3, mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None) -> StagedCNN:
    """The staged CNN of the seed project; ``variant`` picks the stage."""
    mean, std = channel_stats(in_channels, mean, std)
    return StagedCNN(variant, num_classes, in_channels, width, dropout, mean, std)
