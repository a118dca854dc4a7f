"""The seed project's staged CNN, in its three stages.

- ``baseline``: a plain conv net (two conv + pool stages, a hidden FC layer), no
  normalisation; the seed trained it with SGD at lr 0.01 (28.5%).
- ``intermediate``: the baseline with six more plain conv blocks in between. Without
  normalisation the deeper stack trains worse, not better (the seed: 23.6%), the
  lesson that motivates the next stage.
- ``advanced``: VGG-style stages with batch norm and dropout (the seed: 86.1% after
  200 epochs with AdamW and cosine annealing). Each stage is conv, max-pool, batch
  norm, ReLU, conv, batch norm, ReLU, dropout: pooling straight after the first conv
  (as the fast net does) leaves the normalisation and activations a quarter of the
  pixels, which on a CPU, where those memory-bound passes dominate, trains about
  2.5 times faster than pooling at the end of the stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from core.models._blocks import Normalize, channel_stats, shift_only_batch_norm
from core.models._registry import Option, register_model

VARIANTS = ("baseline", "intermediate", "advanced")


def plain_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """The seed's plain stage: a 3x3 convolution and a ReLU, no normalisation."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True))


def advanced_stage(in_channels: int, out_channels: int, dropout: float) -> nn.Sequential:
    """The advanced variant's stage: convolve, pool to half size, shift-only batch norm and ReLU, the same
    again at the new size without pooling, then dropout."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.MaxPool2d(2),
        shift_only_batch_norm(out_channels), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        shift_only_batch_norm(out_channels), nn.ReLU(inplace=True), nn.Dropout(dropout),
    )


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
                advanced_stage(in_channels, w, dropout / 2), advanced_stage(w, 2 * w, dropout / 2),
                advanced_stage(2 * w, 4 * w, dropout / 2), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
            )
            self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * w, num_classes))
            # Logits scaled down as in the fast net: at the airbench learning rate an unscaled head
            # blew the logits up to 270 within ten steps, and the net never recovered.
            self.logit_scale = 1 / 9
        else:
            extra = [plain_conv(2 * width, 2 * width) for _ in range(6 if variant == "intermediate" else 0)]
            self.features = nn.Sequential(
                plain_conv(in_channels, width), nn.MaxPool2d(2),
                plain_conv(width, 2 * width), *extra, nn.MaxPool2d(2),
                nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            )
            self.classifier = nn.Sequential(nn.Linear(2 * width * 16, 8 * width), nn.ReLU(inplace=True),
                                            nn.Linear(8 * width, num_classes))
            self.logit_scale = 1.0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.normalize(images))) * self.logit_scale


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
        Option("width", 48, "channels of the first stage", minimum=8, maximum=256),
        Option("dropout", 0.1, "dropout before the classifier (advanced only)", minimum=0.0, maximum=0.9),
    ),
)
def staged_cnn(*, variant: str = "advanced", num_classes: int = 10, in_channels: int = 3, width: int = 48,
               dropout: float = 0.1, mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None) -> StagedCNN:
    """The staged CNN of the seed project; ``variant`` picks the stage."""
    mean, std = channel_stats(in_channels, mean, std)
    return StagedCNN(variant, num_classes, in_channels, width, dropout, mean, std)
