"""Noise models for denoising: seeded, batched, on any device, clipped to [0, 1].

Strengths use the conventions of the literature and the seed projects: Gaussian
sigma on the 0-255 scale (sigma 25 means 25/255 on [0, 1] images), salt-and-pepper
as the fraction of pixels replaced (``salt_pepper`` hits whole pixels, ``salt_pepper_channels``
hits each channel value on its own, as scikit-image's ``random_noise(mode="s&p")`` does
to a C x H x W array, which leaves coloured specks), Poisson as the photon count at full white
(lower is noisier), speckle as the standard deviation of multiplicative noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

KINDS = ("gaussian", "salt_pepper", "salt_pepper_channels", "poisson", "speckle")
RANGES = {  # kind: (minimum, maximum, default), for validation and the UI's sliders
    "gaussian": (0.0, 255.0, 25.0),
    "salt_pepper": (0.0, 0.5, 0.07),
    "salt_pepper_channels": (0.0, 0.5, 0.07),
    "poisson": (1.0, 255.0, 30.0),
    "speckle": (0.0, 1.0, 0.2),
}

TITLES = {  # how the pages name each kind and mix
    "gaussian": "Gaussian", "salt_pepper": "Salt and pepper (whole pixels)",
    "salt_pepper_channels": "Salt and pepper per channel (scikit-image's s&p)", "poisson": "Poisson (shot noise)",
    "speckle": "Speckle (multiplicative)", "blind": "Blind mix: Gaussian and both salt-and-pepper kinds",
    "impulse": "Impulse mix: both salt-and-pepper kinds",
}

LEVEL_TITLES = {  # what a kind's strength means, for chart axes
    "gaussian": "σ (0-255 scale)", "salt_pepper": "share of pixels hit", "salt_pepper_channels": "share of values hit",
    "poisson": "photons at white (fewer: noisier)", "speckle": "relative σ",
}

# Training on a mix: every image draws one of the mix's kinds, then a level uniformly from its range.
# "blind" covers what a visitor's photo may carry; "impulse" both salt-and-pepper conventions.
BLIND = "blind"
IMPULSE = "impulse"
MIXES: dict[str, dict[str, tuple[float, float]]] = {
    BLIND: {"gaussian": (0.0, 50.0), "salt_pepper": (0.0, 0.15), "salt_pepper_channels": (0.0, 0.15)},
    IMPULSE: {"salt_pepper": (0.0, 0.15), "salt_pepper_channels": (0.0, 0.15)},
}
# How often a mix draws each kind, where not equally. A whole-pixel hit erases all three channels, a
# per-channel hit one, so whole pixels are the harder kind: at equal shares an attention U-Net ended
# 1.6 dB lower on them (39.8 against 41.4 dB at amount 0.07), and trained on whole pixels alone it
# forgot the per-channel kind within two epochs (41.4 -> 28.0 dB). The blind mix's whole-pixel share went
# from 2 to 3 for its sixth fine-tune, which took whole pixels from 39.86 to 40.20 dB.
MIX_SHARES: dict[str, dict[str, float]] = {
    IMPULSE: {"salt_pepper": 2.0, "salt_pepper_channels": 1.0},
    BLIND: {"gaussian": 1.0, "salt_pepper": 3.0, "salt_pepper_channels": 1.5},
}


@dataclass(frozen=True)
class NoiseSpec:
    """One kind of noise and its strength."""

    kind: str
    level: float

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Unknown noise {self.kind!r}; choose one of {', '.join(KINDS)}.")
        low, high, _ = RANGES[self.kind]
        if not low <= float(self.level) <= high:  # also refuses NaN
            raise ValueError(f"{self.kind} strength must be between {low:g} and {high:g}, not {self.level}.")

    def label(self) -> str:
        names = {"gaussian": "Gaussian σ={:g}", "salt_pepper": "salt & pepper {:g}",
                 "salt_pepper_channels": "salt & pepper per channel {:g}",
                 "poisson": "Poisson peak {:g}", "speckle": "speckle {:g}"}
        return names[self.kind].format(self.level)


def add_noise(images: torch.Tensor, spec: NoiseSpec, generator: torch.Generator | None = None,
              levels: torch.Tensor | None = None) -> torch.Tensor:
    """Noisy copies of ``images`` (floats in [0, 1]); ``levels`` gives each image its own strength.

    Random numbers are drawn on the CPU from ``generator`` and moved, so a seed gives
    the same noise on every device.
    """
    shape, device = images.shape, images.device
    level = (levels if levels is not None else torch.full((shape[0],), float(spec.level)))
    level = level.to(device=device, dtype=images.dtype).view(-1, *([1] * (images.ndim - 1)))
    if spec.kind == "gaussian":
        noise = torch.randn(shape, generator=generator).to(device)
        noisy = images + noise * (level / 255.0)
    elif spec.kind == "speckle":
        noise = torch.randn(shape, generator=generator).to(device)
        noisy = images + images * noise * level
    elif spec.kind == "poisson":
        # torch.poisson takes no generator; draw it on the CPU under a seed taken from ours.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            counts = torch.poisson((images * level).cpu().double())
        noisy = (counts.to(device=device, dtype=images.dtype)) / level
    else:  # salt and pepper: a fraction of pixels (or of channel values) set to black or white
        pixel_shape = shape if spec.kind == "salt_pepper_channels" else (shape[0], 1, *shape[2:])
        hit = torch.rand(pixel_shape, generator=generator).to(device) < level
        salt = torch.rand(pixel_shape, generator=generator).to(device) < 0.5
        noisy = torch.where(hit, salt.to(images.dtype).expand_as(images), images)
    return noisy.clamp(0.0, 1.0)


def add_mixed_noise(images: torch.Tensor, mix: str = BLIND, generator: torch.Generator | None = None
                    ) -> torch.Tensor:
    """Noisy copies for training on a mix (``MIXES``): each image gets one of its kinds (in the mix's
    ``MIX_SHARES``, else equally often) and a level in its range."""
    ranges = MIXES[mix]
    count = images.shape[0]
    kinds = list(ranges)
    shares = torch.tensor([MIX_SHARES.get(mix, {}).get(kind, 1.0) for kind in kinds])
    choice = torch.multinomial(shares, count, replacement=True, generator=generator)
    noisy = images
    for index, kind in enumerate(kinds):
        low, high = ranges[kind]
        levels = low + (high - low) * torch.rand(count, generator=generator)
        candidate = add_noise(images, NoiseSpec(kind, high), generator, levels)
        picked = (choice == index).to(images.device).view(-1, *([1] * (images.ndim - 1)))
        noisy = torch.where(picked, candidate, noisy)
    return noisy
