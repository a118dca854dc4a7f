"""Image-quality and classification metrics, on [0, 1] tensors (peak 1).

PSNR comes in two conventions and both are reported: the mean of per-image PSNRs
(the denoising literature's) and the PSNR of the mean squared error over a whole
set (robust to images that are reproduced exactly, whose own PSNR is infinite).
SSIM is kornia's.
"""

from __future__ import annotations

import kornia
import torch

MAX_PSNR = 100.0  # per-image PSNR of an exact match is capped here instead of +inf


def per_image_mse(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (estimate.float() - target.float()).pow(2).flatten(1).mean(1)


def psnr(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for images in [0, 1], capped at MAX_PSNR."""
    mse = per_image_mse(estimate, target)
    return (10 * torch.log10(1.0 / mse.clamp_min(10 ** (-MAX_PSNR / 10)))).clamp_max(MAX_PSNR)


def psnr_from_mse(mse: float) -> float:
    """PSNR of a mean squared error (on [0, 1] data)."""
    return MAX_PSNR if mse <= 10 ** (-MAX_PSNR / 10) else float(10 * torch.log10(torch.tensor(1.0 / mse)))


def ssim(estimate: torch.Tensor, target: torch.Tensor, window: int = 7, strip_rows: int = 256) -> torch.Tensor:
    """Per-image SSIM (Gaussian window; 7 suits 32x32 images).

    A large image is measured in strips of ``strip_rows`` rows, each read with a margin of half
    a window, so the result is the same while the memory stays that of one strip (kornia's SSIM
    holds about ten float copies of its input).
    """
    window = min(window, *estimate.shape[-2:]) | 1
    estimate, target = estimate.float().clamp(0, 1), target.float()
    height, margin = estimate.shape[-2], window // 2
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
    return float((logits.argmax(1) == labels).float().mean())
