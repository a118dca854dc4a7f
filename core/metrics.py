"""Image-quality and classification metrics, on [0, 1] tensors (peak 1).

PSNR comes in two conventions and both are reported: the mean of per-image PSNRs
(the denoising literature's) and the PSNR of the mean squared error over a whole
set (robust to images that are reproduced exactly, whose own PSNR is infinite).
SSIM is kornia's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import kornia
import torch

MAX_PSNR = 100.0  # per-image PSNR of an exact match is capped here instead of +inf


def per_image_mse(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each image of a batch (N values), in float32 whatever the inputs' dtype."""
    return (estimate.float() - target.float()).pow(2).flatten(1).mean(1)


def psnr(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for images in [0, 1], capped at MAX_PSNR."""
    mse = per_image_mse(estimate, target)
    return (10 * torch.log10(1.0 / mse.clamp_min(10 ** (-MAX_PSNR / 10)))).clamp_max(MAX_PSNR)


def psnr_from_mse(mse: float) -> float:
    """PSNR of a mean squared error (on [0, 1] data)."""
    return MAX_PSNR if mse <= 10 ** (-MAX_PSNR / 10) else float(10 * torch.log10(torch.tensor(1.0 / mse)))


# A large image is measured in strips of about this many pixels: small enough for the CPU's caches, which on two
# cores measured a 4-megapixel photo 2 to 3 times faster than strips of 256 full rows (one-off timings; what the
# pages gain is in bench/page_rerun.py).
STRIP_PIXELS = 1 << 18


def ssim(estimate: torch.Tensor, target: torch.Tensor, window: int = 7, strip_rows: int | None = None
         ) -> torch.Tensor:
    """Per-image SSIM (Gaussian window; 7 suits 32x32 images).

    A large image is measured in strips of ``strip_rows`` rows (by default as many as make about
    ``STRIP_PIXELS`` pixels of each image), each read with a margin of half a window, so the result is
    the same while the memory stays that of one strip (kornia's SSIM holds about ten float copies of
    its input).
    """
    window = min(window, *estimate.shape[-2:]) | 1
    estimate, target = estimate.float().clamp(0, 1), target.float()
    height, margin = estimate.shape[-2], window // 2
    strip_rows = strip_rows or max(window, STRIP_PIXELS // estimate.shape[-1])
    if height <= strip_rows + 2 * margin:
        return kornia.metrics.ssim(estimate, target, window_size=window).flatten(1).mean(1)
    total = torch.zeros(len(estimate), dtype=torch.float64)
    for top in range(0, height, strip_rows):
        bottom = min(top + strip_rows, height)
        low, high = max(top - margin, 0), min(bottom + margin, height)
        strip = kornia.metrics.ssim(estimate[..., low:high, :], target[..., low:high, :], window_size=window)
        total += strip[..., top - low:top - low + bottom - top, :].flatten(1).double().sum(1)
    return (total / estimate[0].numel()).float()


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of the batch whose highest logit is its label."""
    return float((logits.argmax(1) == labels).float().mean())


@dataclass
class SetScore:
    """Results gathered image by image over a set of images of any sizes (photos): the PSNR of the set's
    mean squared error, weighting every pixel alike, beside the mean of any per-image measure."""

    per_image: dict[str, list[float]] = field(default_factory=dict)
    squared_error: float = 0.0
    pixels: int = 0
    seconds: float = 0.0

    def add(self, psnr: float, pixels: int, seconds: float = 0.0, **measures: float) -> None:
        """One image's PSNR, its pixel count and time, and any other per-image measures (ssim=..., ...)."""
        self.squared_error += 10 ** (-psnr / 10) * pixels
        self.pixels += pixels
        self.seconds += seconds
        for name, value in {"psnr": psnr, **measures}.items():
            self.per_image.setdefault(name, []).append(float(value))

    @property
    def count(self) -> int:
        return len(self.per_image.get("psnr", []))

    def psnr_of_set(self) -> float:
        return psnr_from_mse(self.squared_error / self.pixels)

    def mean(self, name: str) -> float:
        values = self.per_image[name]
        return sum(values) / len(values)

    def seconds_per_megapixel(self) -> float:
        return self.seconds / (self.pixels / 1e6)
