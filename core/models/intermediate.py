"""The seed project's "intermediate block" net.

Each intermediate block holds L independent convolutions, all fed the same input
x (the block's input, batch-normalised), and mixes their outputs with weights
computed from x itself:

    m = per-channel mean of x          (a C-vector)
    a = FC(m)                          (L numbers, one per convolution)
    x' = a1 * C1(x) + ... + aL * CL(x)

so the block decides, image by image, how much of each convolution to use. The
output block takes the per-channel means of the last block's output into zero
or more hidden FC layers and a final FC layer that gives the logits.

The L convolutions are computed as one convolution with L times the output
channels (the same arithmetic, one kernel launch), then split and mixed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.models._blocks import Normalize, channel_stats, shift_only_batch_norm
from core.models._registry import Option, register_model


class IntermediateBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, paths: int, pool: bool = False) -> None:
        super().__init__()
        self.paths, self.out_channels, self.pool = paths, out_channels, pool
        # The block normalises its input, so m (and with it a = FC(m)) has the same scale in every
        # block. Without this the output's scale is the input's times |a|, compounding block after
        # block: training at lr 0.4 reached a NaN loss by step 17.
        self.norm = shift_only_batch_norm(in_channels)
        # Each path is conv (-> max-pool) -> ReLU; stacked along channels so they run as one conv.
        self.convs = nn.Conv2d(in_channels, paths * out_channels, 3, padding=1, bias=False)
        self.mixer = nn.Linear(in_channels, paths)
        # Start as an even blend, a = 1/L for every image.
        nn.init.zeros_(self.mixer.weight)
        nn.init.constant_(self.mixer.bias, 1.0 / paths)

    def mixing_weights(self, x: torch.Tensor) -> torch.Tensor:
        """a = FC(m): one weight per path and image, from the (normalised) input's channel means."""
        return self.mixer(x.mean(dim=(2, 3)))

    def path_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """C_1(x) ... C_L(x) of the normalised input x, stacked along channels (N x L*C' x H' x W')."""
        outputs = self.convs(x)
        if self.pool:  # pooling right after the conv, like the fast net, keeps the elementwise work small
            outputs = F.max_pool2d(outputs, 2)
        return torch.relu(outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        weights = self.mixing_weights(x)  # N x L
        outputs = self.path_outputs(x)
        n, _, height, width = outputs.shape
        # x' = sum_l a_l C_l(x) as one contraction over l: a multiply-then-sum writes an L-times larger
        # temporary, and this block's time is dominated by such memory-bound elementwise passes.
        outputs = outputs.permute(0, 2, 3, 1).reshape(n, height * width, self.paths, self.out_channels)
        mixed = torch.einsum("nplc,nl->npc", outputs, weights)
        return mixed.reshape(n, height, width, self.out_channels).permute(0, 3, 1, 2)


class IntermediateBlockNet(nn.Module):
    def __init__(self, widths: Sequence[int], paths: int, hidden: Sequence[int], num_classes: int,
                 in_channels: int, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        layers: list[nn.Module] = []
        channels = in_channels
        for index, width in enumerate(widths):
            # The first block and then every second one halve the resolution, which keeps the wide,
            # L-path blocks affordable on a CPU.
            layers.append(IntermediateBlock(channels, width, paths, pool=index % 2 == 0 and index < len(widths) - 1))
            channels = width
        self.blocks = nn.Sequential(*layers)
        head: list[nn.Module] = []
        for size in hidden:
            head += [nn.Linear(channels, size), nn.ReLU(inplace=True)]
            channels = size
        head.append(nn.Linear(channels, num_classes))
        self.output = nn.Sequential(*head)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.blocks(self.normalize(images))
        return self.output(features.mean(dim=(2, 3)))  # per-channel means into the FC layers


@register_model(
    "intermediate_block_net",
    task="classification",
    title="Intermediate-block net",
    summary=(
        "Each intermediate block runs L convolutions side by side on the same input and adds their outputs "
        "with learned mixing weights a = FC(m), where m holds the input's per-channel means: every image "
        "chooses its own blend of the convolutions. Each block batch-normalises its input first, so the mixing "
        "weights keep one scale from block to block; the first block and then every second one max-pool "
        "their convolutions' outputs; "
        "the output block averages each channel of the last block and maps those means to the class logits."
    ),
    options=(
        Option("width", 24, "channels of the first block (doubled after each pooling, up to 4x)", minimum=8,
               maximum=256),
        Option("paths", 3, "L, the convolutions mixed in each block", minimum=1, maximum=8),
        Option("blocks", 6, "number of intermediate blocks", minimum=2, maximum=12),
    ),
)
def intermediate_block_net(*, width: int = 24, paths: int = 3, blocks: int = 6, hidden: Sequence[int] = (),
                           num_classes: int = 10, in_channels: int = 3, mean: Sequence[float] | None = None,
                           std: Sequence[float] | None = None) -> IntermediateBlockNet:
    """Blocks of widths w | 2w, 2w | 4w, 4w | 4w ... (| is a max-pool); ``hidden`` FC sizes before the logits."""
    mean, std = channel_stats(in_channels, mean, std)
    widths = [width * min(2 ** ((index + 1) // 2), 4) for index in range(blocks)]
    return IntermediateBlockNet(widths, paths, tuple(hidden), num_classes, in_channels, mean, std)
