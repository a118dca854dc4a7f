"""Small building blocks shared by the model files."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class Normalize(nn.Module):
    """Standardise [0, 1] images inside the model, so no caller can get the statistics wrong.

    The statistics are builder arguments (recorded in the checkpoint's sidecar), not
    weights, so they are kept out of the state dict.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError("mean and std need one value per channel")
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std

    def inverse(self, images: torch.Tensor) -> torch.Tensor:
        return images * self.std + self.mean


def channel_stats(in_channels: int, mean: Sequence[float] | None, std: Sequence[float] | None
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Default statistics: CIFAR-10's for colour input, mid-grey for one channel."""
    if mean is None:
        mean = CIFAR10_MEAN if in_channels == 3 else (0.5,) * in_channels
    if std is None:
        std = CIFAR10_STD if in_channels == 3 else (0.25,) * in_channels
    if len(mean) != in_channels or len(std) != in_channels:
        raise ValueError(f"mean and std need {in_channels} values, one per input channel")
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def shift_only_batch_norm(channels: int) -> nn.BatchNorm2d:
    """Batch norm whose scale stays 1 (airbench): only the shift learns.

    The next layer is a convolution, which can absorb any scale, so only the shift
    needs learning, and it learns fast at the large rate ``TrainConfig.norm_lr_scale``
    gives it; a learned scale at that rate would be unstable.
    """
    norm = nn.BatchNorm2d(channels, momentum=0.4, eps=1e-12)
    norm.weight.requires_grad_(False)
    return norm
