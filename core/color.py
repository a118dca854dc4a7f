"""Colour for colorization: luma and chroma, chroma bins, colourfulness and CIEDE2000.

Colorizers work in BT.601 YCbCr (kornia's conversions): Y is the luma that PIL's
``convert("L")`` computes, and Cb, Cr carry all of the colour. Predicting only Cb and
Cr from Y leaves the input's brightness untouched.

The vivid colorizer classifies each pixel's chroma into bins on a grid instead of
regressing it (Zhang, Isola and Efros, "Colorful Image Colorization", 2016): a
regression to the mean of all plausible colours is grey, while a distribution can
be decoded towards its likelier, more saturated modes.
"""

from __future__ import annotations

import numpy as np
import torch
from kornia.color import rgb_to_grayscale, rgb_to_ycbcr, ycbcr_to_rgb
from skimage.color import deltaE_ciede2000, rgb2lab

CHROMA_BIN_STEP = 0.04  # grid spacing on the Cb/Cr offset scale (offsets lie in [-0.5, 0.5])
SOFT_BIN_SIGMA = CHROMA_BIN_STEP / 2  # the soft targets' Gaussian kernel, on the same scale
CHROMA_BIN_LIMIT = 0.40  # natural photos' chroma offsets rarely go further (CIFAR-10: 99.9% within)


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 luma (N x 1 x H x W) of RGB images in [0, 1], as PIL's convert("L") computes it."""
    return rgb_to_grayscale(rgb)


def grey_uint8(images: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """uint8 RGB images (N x 3 x H x W) as their rounded uint8 BT.601 luma (N x 1 x H x W); others unchanged."""
    if images.shape[1] != 3:
        return images
    return torch.cat([luma(part.float().div(255)).mul(255).round().to(torch.uint8)
                      for part in images.split(chunk)]) if len(images) else images[:, :1]


def chroma(rgb: torch.Tensor) -> torch.Tensor:
    """The Cb and Cr offsets from neutral grey (N x 2 x H x W), in [-0.5, 0.5]."""
    return rgb_to_ycbcr(rgb)[:, 1:] - 0.5


def combine(luma_: torch.Tensor, chroma_: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] from luma and chroma offsets."""
    return ycbcr_to_rgb(torch.cat([luma_, chroma_.to(luma_.dtype) + 0.5], dim=1)).clamp(0, 1)


def bin_axis() -> torch.Tensor:
    """The Cb (and equally Cr) values of the bin grid's rows (and columns)."""
    count = round(CHROMA_BIN_LIMIT / CHROMA_BIN_STEP)
    return torch.arange(-count, count + 1, dtype=torch.float32) * CHROMA_BIN_STEP


def chroma_bin_centres() -> torch.Tensor:
    """The Q x 2 grid of (Cb, Cr) bin centres the vivid colorizer classifies into."""
    cb, cr = torch.meshgrid(bin_axis(), bin_axis(), indexing="ij")
    return torch.stack([cb.flatten(), cr.flatten()], dim=1)


def decode_bins(logits: torch.Tensor, centres: torch.Tensor, temperature: float) -> torch.Tensor:
    """Chroma (N x 2 x H x W) from bin logits (N x Q x H x W) by the annealed mean.

    Temperature 1 gives the distribution's mean (the least-squares estimate); lower
    temperatures sharpen it towards its mode, trading faithfulness for vividness.
    """
    # Bins last: a channels-last model's logits are then contiguous, and the sum is one matmul (1.5x faster).
    # In the logits' own dtype: under bf16 autocast that halves the traffic through 441 channels per pixel,
    # the costliest part of training a binned colorizer on a CPU (1.5x faster), and the mean stays within 0.5/255.
    weights = torch.softmax(logits.permute(0, 2, 3, 1) / temperature, dim=-1)
    return (weights @ centres.to(weights.device, weights.dtype)).permute(0, 3, 1, 2).float()


def soft_bin_targets(chroma_: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Each pixel's chroma spread over nearby bins with a Gaussian kernel (N x Q x H x W).

    Soft targets tell the classifier that neighbouring bins are nearly right, which
    hard one-hot targets would not.
    """
    centres = centres.to(chroma_.device, chroma_.dtype)
    distance2 = (chroma_.unsqueeze(1) - centres.view(1, -1, 2, 1, 1)).pow(2).sum(2)
    return torch.softmax(-distance2 / (2 * SOFT_BIN_SIGMA**2), dim=1)


def _float_copy(tensor: torch.Tensor) -> torch.Tensor:
    """A new float32 row-major copy, even of a strided view (a channel slice of a channels-last tensor)."""
    return tensor.to(torch.float32, memory_format=torch.contiguous_format, copy=True)


class _SoftBinCrossEntropy(torch.autograd.Function):
    """Per-pixel cross-entropy of bin logits (N x Q x H x W) against ``soft_bin_targets``, without building them.

    The Gaussian kernel on the grid is separable and its normalisation factorises, so each pixel's target is
    the outer product of a Cb and a Cr weight vector (N x H x W x 21 each). Building the dense targets, their
    distances and the fp32 log-softmax took 2.7 s of a 4.5 s step at batch 256 on two CPU cores; here each
    chunk of images is read once forwards and once backwards while it is in cache (``bench/chroma_loss.py``).
    """

    CHUNK_PIXELS = 2048  # two 32 x 32 images: fastest of 1,024 to 32,768 at batch 256

    @staticmethod
    def images_per_chunk(logits: torch.Tensor) -> int:
        """A CPU works through a few images at a time, in cache; a GPU takes the batch at once."""
        if logits.device.type != "cpu":
            return max(1, len(logits))
        return max(1, _SoftBinCrossEntropy.CHUNK_PIXELS // (logits.shape[-2] * logits.shape[-1]))

    @staticmethod
    def forward(ctx, logits: torch.Tensor, cb_weights: torch.Tensor, cr_weights: torch.Tensor) -> torch.Tensor:
        bins_last = logits.permute(0, 2, 3, 1)  # contiguous for a channels-last model's logits
        per_pixel = torch.empty(bins_last.shape[:-1], device=logits.device)
        axis_size = cb_weights.shape[-1]
        log_norms = torch.empty_like(per_pixel)
        step = _SoftBinCrossEntropy.images_per_chunk(logits)
        for start in range(0, len(logits), step):
            rows = slice(start, start + step)
            part = _float_copy(bins_last[rows])
            log_norms[rows] = torch.logsumexp(part, dim=-1)
            # sum over (i, j) of cb_i * cr_j * logit_ij, as a batch of (21 x 21) @ (21 x 1) products
            by_cb = (part.unflatten(-1, (axis_size, axis_size)) @ cr_weights[rows].unsqueeze(-1)).squeeze(-1)
            per_pixel[rows] = log_norms[rows] - (by_cb * cb_weights[rows]).sum(-1)
        ctx.save_for_backward(logits, cb_weights, cr_weights, log_norms)
        return per_pixel

    @staticmethod
    def backward(ctx, upstream: torch.Tensor):
        logits, cb_weights, cr_weights, log_norms = ctx.saved_tensors
        bins_last = logits.permute(0, 2, 3, 1)
        grad = torch.empty_like(bins_last)
        axis_size = cb_weights.shape[-1]
        step = _SoftBinCrossEntropy.images_per_chunk(logits)
        for start in range(0, len(logits), step):
            rows = slice(start, start + step)
            softmax = _float_copy(bins_last[rows]).sub_(log_norms[rows].unsqueeze(-1)).exp_()
            # softmax minus the targets' outer product, in place: (21 x 1) @ (1 x 21) per pixel
            softmax.view(-1, axis_size, axis_size).baddbmm_(cb_weights[rows].reshape(-1, axis_size, 1),
                                                           cr_weights[rows].reshape(-1, 1, axis_size), alpha=-1)
            grad[rows] = softmax.mul_(upstream[rows].unsqueeze(-1))
        return grad.permute(0, 3, 1, 2), None, None


class ChromaBinLoss:
    """Cross-entropy against soft chroma bins, optionally rebalanced towards rare colours.

    Rebalancing weights each pixel by the inverse of its colour's frequency (mixed
    with a uniform prior, lambda = 0.5, as Zhang et al.), so the many dull pixels of
    sky, road and wall do not drown out the few saturated ones. The frequencies are a
    running average over the training batches, so no pass over the dataset is needed.
    """

    def __init__(self, rebalance: bool, mix: float = 0.5, momentum: float = 0.99) -> None:
        self.rebalance, self.mix, self.momentum = rebalance, mix, momentum
        self.axis = bin_axis()
        self.prior: torch.Tensor | None = None

    def __call__(self, logits: torch.Tensor, target_rgb: torch.Tensor) -> torch.Tensor:
        offsets = chroma(target_rgb.float()).permute(0, 2, 3, 1)  # N x H x W x (Cb, Cr)
        axis = self.axis.to(offsets.device)
        cb_weights, cr_weights = (torch.softmax(-(offsets[..., channel:channel + 1] - axis).pow(2)
                                                / (2 * SOFT_BIN_SIGMA**2), dim=-1) for channel in (0, 1))
        per_pixel = _SoftBinCrossEntropy.apply(logits, cb_weights, cr_weights)
        if not self.rebalance:
            return per_pixel.mean()
        hard = cb_weights.argmax(-1) * len(axis) + cr_weights.argmax(-1)  # the targets' peak bin
        counts = torch.bincount(hard.flatten(), minlength=len(axis) ** 2).float()
        batch_prior = counts / counts.sum()
        self.prior = batch_prior if self.prior is None else (
            self.momentum * self.prior.to(batch_prior.device) + (1 - self.momentum) * batch_prior)
        weights = 1.0 / ((1 - self.mix) * self.prior + self.mix / len(self.prior))
        weights = weights / (self.prior * weights).sum()  # the expected weight is 1
        return (per_pixel * weights[hard]).mean()


def colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler and Suesstrunk's (2003) colourfulness of each image, on the 0-255 scale."""
    rgb = rgb.float() * 255
    red_green = rgb[:, 0] - rgb[:, 1]
    yellow_blue = 0.5 * (rgb[:, 0] + rgb[:, 1]) - rgb[:, 2]
    spread = torch.sqrt(red_green.flatten(1).var(1, correction=0) + yellow_blue.flatten(1).var(1, correction=0))
    centre = torch.sqrt(red_green.flatten(1).mean(1) ** 2 + yellow_blue.flatten(1).mean(1) ** 2)
    return spread + 0.3 * centre


def ciede2000(estimate: torch.Tensor, target: torch.Tensor, strip_rows: int = 256) -> torch.Tensor:
    """Mean CIEDE2000 colour difference per image (scikit-image's formula).

    Measured in strips of rows: scikit-image works in float64 with many temporaries, which for
    a 4-megapixel photo would cost hundreds of MB at once.
    """
    def lab(images: torch.Tensor) -> np.ndarray:
        return rgb2lab(images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy(), channel_axis=-1)

    total = np.zeros(len(estimate))
    for top in range(0, estimate.shape[-2], strip_rows):
        rows = slice(top, top + strip_rows)
        difference = deltaE_ciede2000(lab(estimate[..., rows, :]), lab(target[..., rows, :]), channel_axis=-1)
        total += difference.reshape(len(difference), -1).sum(1)
    return torch.from_numpy(total / (estimate.shape[-2] * estimate.shape[-1])).float()
