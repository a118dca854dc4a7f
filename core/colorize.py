"""Colorization for the app and the benchmark: a grey image in, a colour one out, at any size.

The model predicts chroma at its working size (a large photo is shrunk so its longer
side is ``working_side`` pixels) and the chroma is upsampled onto the full-resolution
luma: colour varies smoothly, so the photo keeps all its detail.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from core import color, metrics
from core.hints import Hint
from core.hints import encode as encode_hints
from core.images import is_grayscale, shrink_to, to_tensor
from core.models.colorizers import Colorizer

# A photo's chroma is predicted with its longer side at this many pixels: CIFAR-10's own scale, where the
# models learned what things are (of 24 to 64 px, the best on the development photos: bench/colorize.py).
WORKING_SIDE = 32
# With colour hints the colours rest less on recognising objects and more on spreading each hint up to the
# edges of its region, which a finer grid draws better: with 20 hints on the development photos, 44 and 48 px
# beat 32 px in every folder, by 0.23 dB on all of them at 48 (bench/colorize.py --hints --photos --working-side N).
HINT_WORKING_SIDE = 48
MAX_PIXELS = 4_000_000  # larger uploads are scaled down first, so a CPU answers in seconds


@dataclass
class ColorInput:
    """What a colorizer is given: luma (1 x H x W), and the colour original (3 x H x W) when there is one."""

    luma: torch.Tensor
    original: torch.Tensor | None
    note: str | None = None  # set when the image had to be scaled down


def prepare(image: Image.Image, max_pixels: int = MAX_PIXELS) -> ColorInput:
    """A colour image becomes its BT.601 luma plus the original to compare with; a grey one, luma only."""
    image, note = shrink_to(image, max_pixels)
    if is_grayscale(image):
        return ColorInput(to_tensor(image.convert("L"))[0], None, note)
    original = to_tensor(image.convert("RGB"))[0]
    return ColorInput(color.luma(original[None])[0], original, note)


def working_shape(height: int, width: int, working_side: int = WORKING_SIDE) -> tuple[int, int]:
    """The (height, width) an image's chroma is predicted at: shrunk so its longer side is ``working_side``."""
    scale = working_side / max(height, width)
    if scale >= 1:
        return height, width
    return max(round(height * scale), 1), max(round(width * scale), 1)


def default_working_side(takes_hints: bool) -> int:
    """The working size a model gets unless the visitor picks another: finer for a model guided by hints."""
    return HINT_WORKING_SIDE if takes_hints else WORKING_SIDE


@torch.no_grad()
def colorize(model: Colorizer, luma: torch.Tensor, working_side: int = WORKING_SIDE,
             hints: list[Hint] | None = None) -> torch.Tensor:
    """RGB (3 x H x W) for ``luma`` (1 x H x W): chroma predicted at the working size, luma kept as is.

    A hint model also gets ``hints``, placed on the working-size image; other models ignore them.
    """
    model.eval()
    full = luma[None].float()
    height, width = full.shape[-2:]
    size = working_shape(height, width, working_side)
    small = full if size == (height, width) else F.interpolate(full, size=size, mode="area")
    given = small
    if model.takes_hints and hints:
        given = torch.cat([small, encode_hints(hints, *small.shape[-2:])[None]], dim=1)
    chroma = model.predict_chroma(given)
    if small.shape[-2:] != full.shape[-2:]:
        chroma = F.interpolate(chroma, size=(height, width), mode="bilinear", align_corners=False)
    return color.combine(full, chroma)[0]


@dataclass
class Colorized:
    image: torch.Tensor  # 3 x H x W in [0, 1]
    seconds: float
    psnr: float | None = None
    ssim: float | None = None
    delta_e: float | None = None  # mean CIEDE2000 against the original
    colorfulness: float = 0.0
    original_colorfulness: float | None = None
    gray_psnr: float | None = None  # the grey image's own PSNR: the score to beat


def colorize_one(model: Colorizer, given: ColorInput, working_side: int = WORKING_SIDE,
                 hints: list[Hint] | None = None) -> Colorized:
    """Colorize one image and, when the original exists, measure the result against it."""
    start = time.perf_counter()
    output = colorize(model, given.luma, working_side, hints)
    seconds = time.perf_counter() - start
    result = Colorized(output, seconds, colorfulness=float(color.colorfulness(output[None])[0]))
    if given.original is not None:
        result.psnr = float(metrics.psnr(output[None], given.original[None])[0])
        result.ssim = float(metrics.ssim(output[None], given.original[None])[0])
        result.delta_e = float(color.ciede2000(output[None], given.original[None])[0])
        result.original_colorfulness = float(color.colorfulness(given.original[None])[0])
        result.gray_psnr = float(metrics.psnr(gray_rgb(given.luma)[None], given.original[None])[0])
    return result


def gray_rgb(luma: torch.Tensor) -> torch.Tensor:
    """The grey image in three equal channels: the do-nothing baseline colorizers must beat."""
    return luma.expand(*luma.shape[:-3], 3, *luma.shape[-2:])

