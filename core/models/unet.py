"""U-Nets: the denoisers, plain and with attention gates (the colorizers reuse ``UNet``).

A U-Net encodes an image through a few down-sampling stages and decodes it back,
concatenating each encoder stage's features into the decoder at the same
resolution (skip connections), so fine detail need not squeeze through the
bottleneck. Attention gates (Oktay et al., 2018) weigh each skip connection by
how relevant the decoder's coarser features find each pixel.

Inputs of any size work: they are reflect-padded to a multiple of 2**depth and the
output is cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.models._registry import Option, register_model


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class AttentionGate(nn.Module):
    """Scales skip features by a per-pixel weight in (0, 1) computed from skip and decoder features."""

    def __init__(self, skip_channels: int, gate_channels: int, inner_channels: int) -> None:
        super().__init__()
        self.skip = nn.Conv2d(skip_channels, inner_channels, 1, bias=False)
        self.gate = nn.Conv2d(gate_channels, inner_channels, 1)
        self.score = nn.Conv2d(inner_channels, 1, 1)

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.score(torch.relu(self.skip(skip) + self.gate(gate))))
        return skip * weights


class UNet(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, width: int, depth: int, attention: bool) -> None:
        super().__init__()
        self.depth = depth
        widths = [width * 2**level for level in range(depth + 1)]
        self.encoders = nn.ModuleList()
        channels = in_channels
        for level in range(depth):
            self.encoders.append(conv_block(channels, widths[level]))
            channels = widths[level]
        self.bottleneck = conv_block(channels, widths[depth])
        self.ups = nn.ModuleList()
        self.gates = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in reversed(range(depth)):
            self.ups.append(nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2))
            self.gates.append(AttentionGate(widths[level], widths[level], max(widths[level] // 2, 1))
                              if attention else nn.Identity())
            self.decoders.append(conv_block(2 * widths[level], widths[level]))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        multiple = 2**self.depth
        pad_h, pad_w = -height % multiple, -width % multiple
        if pad_h or pad_w:
            mode = "reflect" if min(height, width) > max(pad_h, pad_w) else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, gate, decoder, skip in zip(self.ups, self.gates, self.decoders, reversed(skips), strict=True):
            x = up(x)
            skip = gate(skip, x) if isinstance(gate, AttentionGate) else skip
            x = decoder(torch.cat([skip, x], dim=1))
        return self.head(x)[..., :height, :width]


class ResidualDenoiser(nn.Module):
    """Predicts the noise and subtracts it (residual learning, as in DnCNN): the network
    only has to model what is wrong with the image, which is easier than redrawing it.

    With ``clip_flags`` it also sees, per channel, where the input is exactly 0 or 1. Noise added
    and then clipped piles up there: on MNIST at sigma 0.5 half of the black background reads 0 and
    half of every stroke 1: a point mass, which says more about the clean pixel than a value just inside
    the range, and a step that convolutions on the value alone only approximate."""

    def __init__(self, in_channels: int, width: int, depth: int, attention: bool, clip_flags: bool = False) -> None:
        super().__init__()
        self.in_channels, self.clip_flags = in_channels, clip_flags  # the image's channels, not the net's inputs
        self.net = UNet(in_channels * (3 if clip_flags else 1), in_channels, width, depth, attention)

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        # Centring at 0.5 stands in for dataset statistics: a blind denoiser must not depend on them.
        given = noisy - 0.5
        if self.clip_flags:
            given = torch.cat([given, (noisy <= 0).to(given.dtype), (noisy >= 1).to(given.dtype)], dim=1)
        return (noisy - self.net(given)).clamp(0, 1)


UNET_OPTIONS = (
    Option("width", 32, "channels of the first stage (doubled at each stage)", minimum=8, maximum=128),
    Option("depth", 3, "number of down-sampling stages", minimum=1, maximum=5),
    Option("clip_flags", False, "also show the network where the input is exactly 0 or 1 (clipped noise)",
           choices=(False, True)),
)
DENOISER_SUMMARY = (
    "A U-Net: an encoder halves the resolution at each stage, a decoder doubles it back, and skip "
    "connections hand each encoder stage's features straight to the decoder at the same size, so fine "
    "detail survives. It predicts the noise and subtracts it from the input (residual learning), "
    "which is easier than redrawing the whole image."
)


@register_model("unet_denoiser", task="denoising", title="U-Net denoiser", summary=DENOISER_SUMMARY,
                options=UNET_OPTIONS)
def unet_denoiser(*, in_channels: int = 3, width: int = 32, depth: int = 3, clip_flags: bool = False
                  ) -> ResidualDenoiser:
    """The seed project's U-Net, residual and slimmed from 31M to about 1.9M parameters."""
    return ResidualDenoiser(in_channels, width, depth, attention=False, clip_flags=clip_flags)


@register_model(
    "attention_unet_denoiser", task="denoising", title="Attention U-Net denoiser",
    summary=DENOISER_SUMMARY + " Attention gates weigh every skip connection pixel by pixel, using the "
    "decoder's coarser view to decide which encoder features to pass on.",
    options=UNET_OPTIONS,
)
def attention_unet_denoiser(*, in_channels: int = 3, width: int = 32, depth: int = 3, clip_flags: bool = False
                            ) -> ResidualDenoiser:
    """The seed project's attention U-Net, residual and slimmed."""
    return ResidualDenoiser(in_channels, width, depth, attention=True, clip_flags=clip_flags)
