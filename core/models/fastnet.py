"""A fast CIFAR-10 net in the airbench family (after Keller Jordan's cifar10-airbench).

What makes it fast is in the recipe as much as in the net:

- A 2x2 patch-whitening stem: its filters are the eigenvectors of the covariance
  of 2x2 image patches, scaled by their inverse standard deviation (and their
  negatives, so a ReLU-like nonlinearity keeps both signs). It is computed from
  the training data before training and frozen, so the first layer starts out
  decorrelating pixels instead of having to learn to.
- Three conv groups (conv, max-pool, batch norm, GELU, conv, batch norm, GELU),
  then a max-pool over what is left and a linear head whose output is scaled
  down, which keeps early logits small (a cheap form of output temperature).
- Trained with label smoothing, a linear warm-up and decay, alternating flips and
  2-pixel translations; evaluated with flip-plus-shift test-time augmentation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.models._blocks import Normalize, channel_stats, shift_only_batch_norm
from core.models._registry import Option, register_model


def _conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
    with torch.no_grad():  # start the first filters as the identity: signal passes through from step one
        nn.init.dirac_(conv.weight[: min(in_channels, out_channels)])
    return conv


class ConvGroup(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = _conv(in_channels, out_channels)
        self.norm1 = shift_only_batch_norm(out_channels)
        self.conv2 = _conv(out_channels, out_channels)
        self.norm2 = shift_only_batch_norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.conv1(x), 2)
        x = F.gelu(self.norm1(x))
        return F.gelu(self.norm2(self.conv2(x)))


class FastNet(nn.Module):
    def __init__(self, widths: Sequence[int], num_classes: int, in_channels: int, mean: Sequence[float],
                 std: Sequence[float], head_scale: float) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        whiten_channels = 2 * in_channels * 4  # every eigenvector of a 2x2 patch, and its negative
        self.whiten = nn.Conv2d(in_channels, whiten_channels, 2, bias=True)
        self.whiten.weight.requires_grad_(False)
        self.groups = nn.Sequential(
            ConvGroup(whiten_channels, widths[0]), ConvGroup(widths[0], widths[1]), ConvGroup(widths[1], widths[2])
        )
        self.head = nn.Linear(widths[2], num_classes, bias=False)
        self.head_scale = head_scale

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the whitening filters from training images (float, [0, 1], N x C x H x W)."""
        x = self.normalize(images.float())
        patches = x.unfold(2, 2, 1).unfold(3, 2, 1)  # N, C, H-1, W-1, 2, 2
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, x.shape[1] * 4).double()
        patches = patches - patches.mean(0)
        covariance = patches.T @ patches / len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        filters = (eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]).view(-1, x.shape[1], 2, 2)
        self.whiten.weight.copy_(torch.cat([filters, -filters]).float())
        self.whiten.bias.zero_()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.whiten(self.normalize(images))
        x = self.groups(F.gelu(x))
        x = F.adaptive_max_pool2d(x, 1).flatten(1)
        return self.head(x) * self.head_scale


@register_model(
    "fastnet",
    task="classification",
    title="Fast net (airbench family)",
    summary=(
        "A 2x2 patch-whitening first layer, computed from the training images before training and then frozen: "
        "it decorrelates neighbouring pixels so the net does not spend its first epochs learning to. Then three "
        "conv groups (convolution, max-pool, batch norm, GELU, convolution, batch norm, GELU), a global max-pool "
        "and a down-scaled linear head. Trained with label smoothing, alternating flips and 2-pixel shifts; "
        "evaluated with flip-and-shift test-time augmentation."
    ),
    options=(
        Option("width", 64, "channels of the first conv group (the others have four times as many)",
               minimum=8, maximum=256),
    ),
)
def fastnet(*, width: int = 64, num_classes: int = 10, in_channels: int = 3, head_scale: float = 1 / 9,
            mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> FastNet:
    """The airbench-style fast net; widths (w, 4w, 4w), about 1.97M parameters at w=64."""
    mean, std = channel_stats(in_channels, mean, std)
    return FastNet((width, 4 * width, 4 * width), num_classes, in_channels, mean, std, head_scale)
