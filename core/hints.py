"""Colour hints for user-guided colorization (Zhang et al. 2017, "Real-Time User-Guided Image Colorization").

A hint is a point of the image and the colour a person says it has. A hint-conditioned
colorizer sees them as three extra input channels next to the luma: the hint's chroma
(Cb, Cr offsets) where a hint lies, zero elsewhere, and a mask that is one at hints. In
training, hints are true colours revealed at random pixels; the baseline they are measured
against fills the chroma between hints by inverse-distance weighting over the true luma.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from PIL import Image, ImageDraw

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


def training_counts(n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                    most: int = MAX_TRAINING_HINTS) -> torch.Tensor:
    """How many hints each training image gets: 0 to ``most``, log-uniform, so few hints are common
    (with the default, about one image in six gets none, which keeps the model a plain colorizer too)."""
    uniform = torch.rand(n, generator=generator)
    return (torch.exp(uniform * math.log(most + 2)).floor() - 1).long().clamp(max=most).to(device)


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


def true_colour(original: torch.Tensor, x: float, y: float, height: int, width: int) -> tuple[float, float, float]:
    """The colour ``original`` (3 x H x W) has at (x, y) once shrunk to height x width, as the model sees it."""
    small = torch.nn.functional.interpolate(original[None].float(), size=(height, width), mode="area")[0] \
        if original.shape[-2:] != (height, width) else original.float()
    row, col = Hint(x, y, (0.0, 0.0, 0.0)).pixel(height, width)
    return tuple(small[:, row, col].clamp(0, 1).tolist())


@dataclass
class HintBoard:
    """The hints a person has placed on one image, built from the clicks a click-to-pick widget reports.

    A widget reports its last click again on every rerun; the click's time tells a new click from
    a repeat. Placing hints on another image starts a fresh board.
    """

    image_key: object = None
    hints: list[Hint] = field(default_factory=list)
    last_click: object = None

    def show(self, image_key: object) -> None:
        """Start over when the image changes."""
        if image_key != self.image_key:  # the last click is kept: it was made on the old image
            self.image_key, self.hints = image_key, []

    def click(self, click: dict | None, colour: tuple[float, float, float] | Callable[[float, float], tuple]
              ) -> Hint | None:
        """Add the hint a new ``click`` ({x, y, width, height, unix_time}) places; a repeat or a miss adds nothing.

        ``colour`` is a colour, or a function of the click's (x, y) fractions giving one.
        """
        if not click or click.get("unix_time") == self.last_click:
            return None
        self.last_click = click.get("unix_time")
        width, height = click.get("width") or 0, click.get("height") or 0
        if width <= 0 or height <= 0:
            return None
        x, y = click["x"] / width, click["y"] / height
        if not (0 <= x <= 1 and 0 <= y <= 1):
            return None
        x, y = min(x, 1 - 1e-6), min(y, 1 - 1e-6)
        hint = Hint(x, y, tuple(colour(x, y) if callable(colour) else colour))
        self.hints.append(hint)
        return hint

    def undo(self) -> None:
        if self.hints:
            self.hints.pop()

    def clear(self) -> None:
        self.hints.clear()


def to_text(hints: list[Hint]) -> str:
    """Hints as short text for a link: ``x,y,rrggbb`` per hint (x, y as fractions), joined by ``;``."""
    return ";".join(f"{h.x:.4f},{h.y:.4f},{h.hex().lstrip('#')}" for h in hints)


def from_text(text: str, most: int = 200) -> list[Hint]:
    """The hints ``to_text`` wrote; ValueError for anything else (a link is typed by anyone)."""
    found = []
    for part in filter(None, text.split(";")[: most + 1]):
        x, y, colour = part.split(",")
        x, y = float(x), float(y)
        if not (0 <= x < 1 and 0 <= y < 1):
            raise ValueError(f"A hint outside the image: {part!r}")
        found.append(Hint.from_hex(x, y, colour))
    if len(found) > most:
        raise ValueError(f"More than {most} hints.")
    return found


def draw(image: Image.Image, hints: list[Hint], radius: int | None = None) -> Image.Image:
    """``image`` with each hint drawn as a dot of its colour, ringed so it shows on dark and light alike."""
    marked = image.convert("RGB").copy()
    canvas = ImageDraw.Draw(marked)
    radius = radius or max(4, round(min(marked.size) / 60))
    for hint in hints:
        cx, cy = hint.x * marked.width, hint.y * marked.height
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        canvas.ellipse(box, fill=hint.hex(), outline="white", width=max(1, radius // 3))
        outer = (box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1)
        canvas.ellipse(outer, outline="black", width=1)
    return marked


# The correction at each hint spreads along the luma (Levin et al. 2004, "Colorization using
# Optimization"): neighbours of similar luma are tied, so a hint's colour fills its own region and
# stops at edges. Chosen on 300 training images (of 0.015 to 0.12 and 1e-5 to 5e-2): with 1, 5, 10
# and 20 hints +0.14, +0.27, +0.29 and +0.41 dB over the Gaussian spread it replaced.
EDGE_SIGMA = 0.03  # luma difference (0-1 scale) at which two neighbours' corrections stop being tied
# What a hint refiner still misses at its hints is small and smooth, and spreads best almost regardless of the
# luma: chosen on the first 1,000 training images (of 0.02 to 0.5), +0.015 to +0.031 dB with 1 to 20 hints.
SETTLE_EDGE_SIGMA = 0.12
DECAY = 1e-4  # each pixel's pull towards no correction: where no hint reaches, the model's colour stands
TOLERANCE = 1e-4  # the solver stops when the preconditioned residual has shrunk this much
# An ONNX export spreads by distance alone, with a Gaussian of this fraction of the longer side (the
# spread before this one; 0.2 to 0.4 dB lower with 5 to 20 hints on the CIFAR-10 test set).
EXPORT_SPREAD_SIGMA = 0.25
# (dy, dx, weight): the four neighbours ahead of a pixel; diagonals count half, as they lie further away.
_NEIGHBOURS = ((0, 1, 1.0), (1, 0, 1.0), (1, 1, 0.5), (1, -1, 0.5))


def spread_residuals(chroma: torch.Tensor, hint_channels: torch.Tensor, luma: torch.Tensor,
                     edge_sigma: float = EDGE_SIGMA) -> torch.Tensor:
    """``chroma`` (N x 2 x H x W) corrected so each hint's colour holds at its pixel and spreads along the luma.

    What the model missed at each hint (the hint's chroma minus the model's there) is the correction
    there; elsewhere the correction is the smoothest field over ``luma`` (N x 1 x H x W) that meets
    them, smooth where the luma is and free to jump at its edges (a luma step of ``edge_sigma`` loosens
    the tie). A person's colour then shows where they clicked and over the region they clicked in, not
    across the edge into the next one.
    """
    mask = hint_channels[:, 2:3].float().contiguous()
    exporting = torch.compiler.is_exporting()
    # A shortcut only (without hints the correction is zero); an exported graph cannot branch on data.
    if not exporting and not mask.any():
        return chroma
    with torch.autocast(chroma.device.type, enabled=False):  # the solver needs fp32's precision
        if exporting:  # each solver step adds dozens of nodes (and seconds of export): the older Gaussian spread
            return _gaussian_spread(chroma.float().contiguous(), hint_channels[:, :2].float().contiguous(), mask,
                                    EXPORT_SPREAD_SIGMA)
        residual = (hint_channels[:, :2].float() - chroma.float()) * mask
        return chroma.float() + propagate(residual, mask, luma.float(), edge_sigma)


def propagate(values: torch.Tensor, mask: torch.Tensor, luma: torch.Tensor, edge_sigma: float = EDGE_SIGMA,
              decay: float = DECAY, steps: int | None = None) -> torch.Tensor:
    """The field equal to ``values`` where ``mask`` is one, and elsewhere minimising the luma-weighted
    differences between neighbours plus ``decay`` times its square (N x C x H x W).

    Solved by conjugate gradients with a Jacobi preconditioner: ``steps`` if given, else until the
    residual has shrunk by ``TOLERANCE``, at most five steps per pixel of the longer side.
    """
    height, width = luma.shape[-2:]
    weights = []
    for dy, dx, base in _NEIGHBOURS:
        weight = base * torch.exp(-(luma - _ahead(luma, dy, dx)).square() / (2 * edge_sigma ** 2))
        inside = torch.ones(height, width, dtype=luma.dtype, device=luma.device)
        if dy:
            inside[height - dy:] = 0
        if dx > 0:
            inside[:, width - dx:] = 0
        elif dx < 0:
            inside[:, :-dx] = 0
        weights.append(weight * inside)  # no tie across the border (rolled tensors wrap around)
    free = 1.0 - mask

    def system(field: torch.Tensor) -> torch.Tensor:
        tied = decay * field
        for (dy, dx, _), weight in zip(_NEIGHBOURS, weights, strict=True):
            pull = weight * (field - _ahead(field, dy, dx))
            tied = tied + pull - torch.roll(pull, shifts=(dy, dx), dims=(-2, -1))
        return free * tied

    degree = decay + sum(weight + torch.roll(weight, shifts=(dy, dx), dims=(-2, -1))
                         for (dy, dx, _), weight in zip(_NEIGHBOURS, weights, strict=True))
    inverse = free / degree
    known = values * mask
    solution = torch.zeros_like(values)
    residual = -system(known)
    direction = inverse * residual
    agreement = (residual * direction).sum((-2, -1), keepdim=True)
    enough = agreement.amax() * TOLERANCE ** 2
    for iteration in range(steps or 5 * max(height, width)):
        # Stop once every residual has shrunk by TOLERANCE (checked now and then: each check waits for the numbers).
        if steps is None and iteration % 8 == 0 and bool(agreement.amax() <= enough):
            break
        applied = system(direction)
        length = agreement / (direction * applied).sum((-2, -1), keepdim=True).clamp_min(1e-30)
        solution = solution + length * direction
        residual = residual - length * applied
        preconditioned = inverse * residual
        new_agreement = (residual * preconditioned).sum((-2, -1), keepdim=True)
        direction = preconditioned + new_agreement / agreement.clamp_min(1e-30) * direction
        agreement = new_agreement
    return known + free * solution


def _ahead(field: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """The value at each pixel's (dy, dx) neighbour (wrapping at the border, where the weights are zero)."""
    return torch.roll(field, shifts=(-dy, -dx), dims=(-2, -1))


def _gaussian_spread(chroma: torch.Tensor, hint_chroma: torch.Tensor, mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each hint's correction spread with a Gaussian of ``sigma`` times the longer side, as a fraction where
    hints' reaches overlap (the exported graph's spread: two convolutions, no solver)."""
    residual = (hint_chroma - chroma) * mask
    spread = sigma * max(chroma.shape[-2:])
    radius = max(1, math.ceil(3 * spread))
    offsets = torch.arange(-radius, radius + 1, dtype=chroma.dtype, device=chroma.device)
    kernel = torch.exp(-offsets.square() / (2 * spread ** 2))  # peak 1: a lone hint corrects its pixel fully

    def blur(x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        rows = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
        cols = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
        x = torch.nn.functional.conv2d(x, rows, padding=(radius, 0), groups=channels)
        return torch.nn.functional.conv2d(x, cols, padding=(0, radius), groups=channels)

    return chroma + blur(residual) / blur(mask).clamp_min(1.0)
