"""The convolutional denoising autoencoder of the MNIST / Fashion-MNIST seed project.

An encoder halves the resolution twice while widening the channels, a decoder of
transposed convolutions brings it back; outputs are clipped to [0, 1] outside training.
Sizes are kept even-agnostic by cropping the decoder's output to the input's size.
"""

from __future__ import annotations

import torch
from torch import nn

from core.models._registry import Option, register_model


class ConvDenoisingAutoencoder(nn.Module):
    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, 2 * width, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * width, width, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, in_channels, 3, padding=1),
        )

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        # Centring around 0.5 keeps the first layer's inputs balanced without dataset statistics.
        decoded = self.decoder(self.encoder(noisy - 0.5))[..., : noisy.shape[-2], : noisy.shape[-1]] + 0.5
        # Clipped to [0, 1] only outside training. A sigmoid output (the seed's) saturates: MNIST is
        # mostly black, the first steps drive every output towards 0, and with the sigmoid's gradient
        # gone the net stopped learning at the mean image (9.7 dB) whatever the learning rate.
        return decoded if self.training else decoded.clamp(0, 1)


@register_model(
    "conv_dae",
    task="denoising",
    title="Convolutional denoising autoencoder",
    summary=(
        "An encoder squeezes the noisy image through two pooling steps into a compact code; "
        "the decoder rebuilds a clean image from that code with transposed convolutions. "
        "The bottleneck cannot store the noise, so the reconstruction drops it."
    ),
    options=(Option("width", 64, "channels of the first encoder layer", minimum=8, maximum=256),),
)
def conv_dae(*, in_channels: int = 1, width: int = 64) -> ConvDenoisingAutoencoder:
    """The seed project's autoencoder; about 0.30M parameters at width 64 on one channel."""
    return ConvDenoisingAutoencoder(in_channels, width)
