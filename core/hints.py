"""Colour hints for user-guided colorization (Zhang et al. 2017, "Real-Time User-Guided Image Colorization").

A hint is a point of the image and the colour a person says it has. A hint-conditioned
colorizer sees them as three extra input channels next to the luma: the hint's chroma
(Cb, Cr offsets) where a hint lies, zero elsewhere, and a mask that is one at hints. In
training, hints are true colours revealed at random pixels; the baseline they are measured
against fills the chroma between hints by inverse-distance weighting over the true luma.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core import color

CHANNELS = 3  # Cb, Cr, mask
MAX_TRAINING_HINTS = 64
IDW_POWER = 2.0


@dataclass(frozen=True)
class Hint:
    """A colour at a point; ``x`` and ``y`` are fractions of the width and height, so any size can use it."""

    x: float
    y: float
    rgb: tuple[float, float, float]  # in [0, 1]

    @classmethod
    def from_hex(cls, x: float, y: float, colour: str) -> Hint:
        """A hint from a ``#rrggbb`` colour, as a colour picker gives it."""
        value = colour.lstrip("#")
        if len(value) != 6:
            raise ValueError(f"Not a #rrggbb colour: {colour!r}")
        return cls(x, y, tuple(int(value[i:i + 2], 16) / 255 for i in (0, 2, 4)))

    def hex(self) -> str:
        return "#" + "".join(f"{round(v * 255):02x}" for v in self.rgb)

    def pixel(self, height: int, width: int) -> tuple[int, int]:
        """The (row, column) this hint falls on in an image of that size."""
        return min(int(self.y * height), height - 1), min(int(self.x * width), width - 1)


def encode(hints: list[Hint], height: int, width: int) -> torch.Tensor:
    """The hint channels (3 x H x W) for ``hints`` on an image of that size; a later hint on a pixel wins."""
    channels = torch.zeros(CHANNELS, height, width)
    for hint in hints:
        row, col = hint.pixel(height, width)
        channels[:2, row, col] = color.chroma(torch.tensor(hint.rgb).view(1, 3, 1, 1)).view(2)
        channels[2, row, col] = 1.0
    return channels


def reveal(images: torch.Tensor, counts: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Hint channels (N x 3 x H x W) revealing each image's true chroma at ``counts[i]`` random pixels."""
    n, _, height, width = images.shape
    scores = torch.rand(n, height * width, generator=generator).to(images.device)  # drawn on the CPU, as noise is
    # The counts[i] lowest scores of each row are its hint pixels: distinct positions, no Python loop.
    ranks = scores.argsort(dim=1).argsort(dim=1)
    mask = (ranks < counts.to(images.device).view(n, 1)).view(n, 1, height, width).to(images.dtype)
    return torch.cat([color.chroma(images) * mask, mask], dim=1)


def training_counts(n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
                    ) -> torch.Tensor:
    """How many hints each training image gets: 0 to MAX_TRAINING_HINTS, log-uniform, so few hints are common
    (about one image in six gets none, which keeps the model a plain colorizer too)."""
    uniform = torch.rand(n, generator=generator)
    return (torch.exp(uniform * math.log(MAX_TRAINING_HINTS + 1)).floor() - 1).long().to(device)


def fixed_hints(images: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """``count`` random true-colour hints per image, the same for the same seed (the benchmark's)."""
    counts = torch.full((len(images),), count, dtype=torch.long)
    return reveal(images, counts, torch.Generator().manual_seed(seed))


def interpolate(luma: torch.Tensor, hint_channels: torch.Tensor, power: float = IDW_POWER) -> torch.Tensor:
    """The baseline: chroma filled by inverse-distance weighting of the hints, over the true luma (N x 3 x H x W).

    An image without hints stays grey.
    """
    n, _, height, width = luma.shape
    rows, cols = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                                indexing="ij")
    grid = torch.stack([rows.flatten(), cols.flatten()], dim=1)  # P x 2
    chroma = torch.zeros(n, 2, height * width)
    for index in range(n):
        mask = hint_channels[index, 2].flatten() > 0
        if not mask.any():
            continue
        points = grid[mask]  # K x 2
        distance = torch.cdist(grid, points)  # P x K
        weights = distance.clamp_min(1e-6).pow(-power)
        weights = weights / weights.sum(dim=1, keepdim=True)
        chroma[index] = (weights @ hint_channels[index, :2].flatten(1)[:, mask].T.float()).T
    return color.combine(luma.float(), chroma.view(n, 2, height, width).to(luma.device))


def sample_hints(original: torch.Tensor, count: int, seed: int) -> list[Hint]:
    """``count`` hints at distinct random pixels of ``original`` (3 x H x W), each with its true colour."""
    _, height, width = original.shape
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randperm(height * width, generator=generator)[:count].tolist()
    return [Hint((index % width + 0.5) / width, (index // width + 0.5) / height,
                 tuple(original[:, index // width, index % width].tolist())) for index in picks]
