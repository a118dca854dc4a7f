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


def ssim(estimate: torch.Tensor, target: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Per-image SSIM (Gaussian window; 7 suits 32x32 images)."""
    window = min(window, *estimate.shape[-2:]) | 1
    ssim_map = kornia.metrics.ssim(estimate.float().clamp(0, 1), target.float(), window_size=window)
    return ssim_map.flatten(1).mean(1)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean())
