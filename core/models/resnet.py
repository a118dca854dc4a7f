"""ResNet-18 in its CIFAR form: a 3x3 stem and no max-pool, so 32x32 inputs keep
their resolution through the first stage (He et al., 2016; the seed project's model)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from core.models._blocks import Normalize, channel_stats
from core.models._registry import Option, register_model


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            # A 1x1 projection when the shape changes, so the residual sum lines up.
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, blocks: Sequence[int], num_classes: int, in_channels: int, width: int,
                 mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        stages, channels = [], width
        for index, count in enumerate(blocks):
            out_channels = width * 2**index
            for block in range(count):
                stages.append(BasicBlock(channels, out_channels, 2 if index > 0 and block == 0 else 1))
                channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.stages(self.stem(self.normalize(images)))
        return self.head(self.pool(features).flatten(1))


@register_model(
    "resnet18",
    task="classification",
    title="ResNet-18 (CIFAR form)",
    summary=(
        "Eight residual blocks in four stages. Each block adds its input back to its output "
        "(a residual connection), so gradients flow straight through and deep stacks train. "
        "The CIFAR form starts with a 3x3 convolution and no max-pool, keeping 32x32 detail."
    ),
    options=(
        Option("width", 64, "channels of the first stage (doubled at each stage)", minimum=8, maximum=128),
    ),
)
def resnet18(*, num_classes: int = 10, in_channels: int = 3, width: int = 64,
             mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> ResNet:
    """ResNet-18 for 32x32 images; about 11.2M parameters at width 64."""
    mean, std = channel_stats(in_channels, mean, std)
    return ResNet((2, 2, 2, 2), num_classes, in_channels, width, mean, std)
