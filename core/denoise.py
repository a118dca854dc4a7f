"""Denoising for the app and the benchmark: learned models and classical baselines behind one call.

Every method takes and returns float images in [0, 1], N x C x H x W. Models run on
images of any size: large ones in overlapping tiles blended with smooth weights, so
memory stays bounded and no seams show. Baselines: a 3x3 median filter (the classic
answer to salt-and-pepper noise) and BM3D (the classic answer to Gaussian noise).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from kornia.color import rgb_to_grayscale
from PIL import Image
from scipy import ndimage
from torch import nn

from core import data, devices, metrics, models
from core.images import is_grayscale, shrink_to, to_tensor
from core.noise import MIXES, NoiseSpec, add_noise

TILE = 256  # pixels per tile side
OVERLAP = 32  # pixels shared by neighbouring tiles, blended
MAX_PIXELS = 4_000_000  # larger images are scaled down first, so a CPU answers in seconds
# Datasets of photographs, whose denoisers may open on a visitor's upload (MNIST's digits are not photos).
PHOTO_DATASETS = ("cifar10",)
BM3D_MAX_PIXELS = 256 * 256  # BM3D takes about a second per 32x32 image and grows with the area

Progress = Callable[[float], None]


@dataclass(frozen=True)
class Baseline:
    name: str
    title: str
    summary: str


BASELINES = {
    "median": Baseline("median", "Median filter 3x3",
                       "Replaces each pixel by the median of its 3x3 neighbourhood: isolated black and white "
                       "pixels vanish, but so does fine texture."),
    "bm3d": Baseline("bm3d", "BM3D",
                     "Block-matching and 3D filtering (Dabov et al. 2007): groups similar patches from across "
                     "the image and shrinks their joint transform. The strongest classical Gaussian denoiser; "
                     "it needs the noise level and takes about a second per 32x32 colour image."),
}


def unavailable_reason(method: str, spec: NoiseSpec, pixels: int) -> str | None:
    """Why ``method`` cannot run on an image of ``pixels`` with ``spec``'s noise, or None if it can.

    For an image that came noisy, ``spec`` is Gaussian at the estimated level (``estimate_noise_sigma``).
    """
    if method != "bm3d":
        return None
    if spec.kind != "gaussian":
        return "BM3D is a Gaussian denoiser: it needs a Gaussian noise level."
    if pixels > BM3D_MAX_PIXELS:
        return f"BM3D runs on images up to {BM3D_MAX_PIXELS:,} pixels here (this one has {pixels:,})."
    return None


def suits(meta: dict, channels: int, dataset: str | None) -> bool:
    """Whether a denoising checkpoint fits an image: it takes the image's channels and, for a test image,
    was trained on that image's dataset (an MNIST model has no business with a colour photo)."""
    return mismatch(meta, channels, dataset) is None


def mismatch(meta: dict, channels: int, dataset: str | None) -> str | None:
    """Why a denoising checkpoint does not suit an image, in a sentence; None if it does (``suits``)."""
    takes = meta["arch_args"].get("in_channels", 3)
    if takes != channels:
        return "it takes grey images and this one is in colour." if takes == 1 else \
            "it takes colour images and this one is grey."
    if dataset is not None and meta["dataset"] != dataset:
        return f"trained on {data.title(meta['dataset'])}, not this kind of image."
    return None


def suits_photo(meta: dict, channels: int) -> bool:
    """Whether a denoising checkpoint may open on a visitor's photo of ``channels``: it takes them and learned
    on photographs (an MNIST denoiser makes a grey photo worse than the noisy input)."""
    return suits(meta, channels, None) and meta["dataset"] in PHOTO_DATASETS


def trained_for(meta: dict, kind: str) -> bool:
    """Whether a denoising checkpoint learned ``kind`` of noise: alone, or as part of a mix."""
    trained = meta.get("recipe", {}).get("noise", "gaussian")
    return trained == kind or kind in MIXES.get(trained, {})


def measured_psnr(meta: dict, spec: NoiseSpec) -> float | None:
    """A checkpoint's PSNR (of the test set's MSE) on ``spec``'s kind at the nearest level measured, if any."""
    prefix = f"test_psnr_dataset_{spec.kind}"
    measured = {}
    for key, value in meta.get("metrics", {}).items():
        level = key.removeprefix(prefix)
        if key.startswith(prefix) and level.replace(".", "", 1).isdigit():
            measured[float(level)] = value
    if not measured:
        return None
    return measured[min(measured, key=lambda level: abs(level - spec.level))]


def default_method(metas: list[dict], spec: NoiseSpec, channels: int, dataset: str | None, pixels: int = 0) -> str:
    """What the Denoise page opens on for this noise and image: the suitable checkpoint trained for the
    noise's kind that was measured best on it (nearest measured level), or else the classical answer to it.

    A checkpoint trained for another kind of noise is never chosen: it would leave the noise in. Nor is,
    for an upload, one trained on digits: a visitor's picture is a photo, and an MNIST denoiser makes a grey
    photo at sigma 25 worse than the noisy input (12.6 against 20.3 dB on Set14's bridge).
    """
    fitting = [meta for meta in metas if suits(meta, channels, dataset) and trained_for(meta, spec.kind)
               and (dataset is not None or suits_photo(meta, channels))]
    if fitting:
        best = max(fitting, key=lambda meta: (measured_psnr(meta, spec) is not None, measured_psnr(meta, spec) or 0,
                                              meta["recipe"].get("noise") == spec.kind))
        return best["path"]
    return "bm3d" if spec.kind == "gaussian" and pixels <= BM3D_MAX_PIXELS else "median"


def median_filter(images: torch.Tensor, size: int = 3) -> torch.Tensor:
    """Per-channel median filter with mirrored edges (scipy.ndimage)."""
    filtered = ndimage.median_filter(images.detach().cpu().numpy(), size=(1, 1, size, size), mode="mirror")
    return torch.from_numpy(filtered).to(images.device)


def bm3d_denoise(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """BM3D for Gaussian noise of ``sigma`` on the 0-255 scale; colour images use its RGB variant."""
    import bm3d  # imported here: it pulls in a large module tree the app does not always need

    results = []
    for image in images.detach().cpu().double().numpy():
        if image.shape[0] == 3:
            estimate = bm3d.bm3d_rgb(image.transpose(1, 2, 0), sigma_psd=sigma / 255).transpose(2, 0, 1)
        else:
            estimate = bm3d.bm3d(image[0], sigma_psd=sigma / 255)[None]
        results.append(np.clip(estimate, 0.0, 1.0))
    return torch.from_numpy(np.stack(results)).float().to(images.device)


def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Colour to grey (BT.601) for one-channel models, grey to three equal channels for colour ones."""
    if images.shape[1] == channels:
        return images
    if channels == 1:
        return rgb_to_grayscale(images)
    return images.expand(-1, channels, -1, -1)


def _blend_window(size: int, overlap: int) -> torch.Tensor:
    """Weights that ramp up over the overlap at both ends, so overlapping tiles cross-fade."""
    ramp = torch.ones(size)
    if overlap:
        edge = (torch.arange(overlap) + 0.5) / overlap
        ramp[:overlap] = edge
        ramp[-overlap:] = edge.flip(0)
    return ramp


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


@torch.no_grad()
def run_tiled(fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, tile: int = TILE,
              overlap: int = OVERLAP, progress: Progress | None = None) -> torch.Tensor:
    """Apply ``fn`` (same-size in, same-size out) to overlapping tiles and blend the results."""
    height, width = images.shape[-2:]
    if height <= tile and width <= tile:
        out = fn(images)
        if progress:
            progress(1.0)
        return out
    rows, cols = _starts(height, tile, overlap), _starts(width, tile, overlap)
    total = torch.zeros(images.shape[0], images.shape[1], height, width, device=images.device)
    weight_sum = torch.zeros(1, 1, height, width, device=images.device)
    done, count = 0, len(rows) * len(cols)
    for top in rows:
        for left in cols:
            h, w = min(tile, height), min(tile, width)
            patch = images[..., top:top + h, left:left + w]
            window = (_blend_window(h, overlap if h == tile else 0)[:, None]
                      * _blend_window(w, overlap if w == tile else 0)[None, :]).to(images.device)
            total[..., top:top + h, left:left + w] += fn(patch).float() * window
            weight_sum[..., top:top + h, left:left + w] += window
            done += 1
            if progress:
                progress(done / count)
    return (total / weight_sum).clamp(0, 1)


def model_fn(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """A same-size denoising function from a model, adapting the image's channels to the model's.

    Where the hardware has fast bf16 (AMX or AVX512-BF16 on a CPU, a recent GPU) the model runs under bf16
    autocast on channels-last input: on a Xeon with AMX that is 30 to 50 times faster than fp32
    for the U-Nets, and the difference (about 1e-3 RMS) is below one 8-bit level.
    """
    channels = models.input_channels(model)
    device = next(model.parameters()).device
    precision = devices.amp_dtype(device)
    layout = torch.channels_last if precision is not None else torch.contiguous_format

    def apply(images: torch.Tensor) -> torch.Tensor:
        batch = match_channels(images, channels).to(device).contiguous(memory_format=layout)
        with torch.autocast(device.type, dtype=precision, enabled=precision is not None):
            output = model(batch)
        return match_channels(output.float().clamp(0, 1).contiguous().to(images.device), images.shape[1])

    return apply


@dataclass
class Denoised:
    """One method's result on one image; metrics are None when there is no clean reference."""

    method: str
    title: str
    image: torch.Tensor  # C x H x W in [0, 1]
    seconds: float
    psnr: float | None = None
    ssim: float | None = None


def score(estimate: torch.Tensor, clean: torch.Tensor | None) -> tuple[float | None, float | None]:
    """PSNR (dB, peak 1) and SSIM of one C x H x W image against its clean version."""
    if clean is None:
        return None, None
    return float(metrics.psnr(estimate[None], clean[None])[0]), float(metrics.ssim(estimate[None], clean[None])[0])


def comparison_plan(metas: list[dict], spec: NoiseSpec, channels: int, dataset: str | None,
                    pixels: int) -> tuple[list[str], list[str]]:
    """What comparing every denoiser runs on an image (checkpoint paths, then baselines' names) and, for
    each method left out, a sentence saying why: a checkpoint that does not suit the image (``suits``), a
    baseline that cannot run on it (``unavailable_reason``). ``dataset`` is None for a photo."""
    runnable, skipped = [], []
    for meta in metas:
        why = mismatch(meta, channels, dataset)
        if why is None:
            runnable.append(meta["path"])
        else:
            skipped.append(f"{meta['name']}: {why}")
    for name, baseline in BASELINES.items():
        reason = unavailable_reason(name, spec, pixels)
        if reason is None:
            runnable.append(name)
        else:
            skipped.append(f"{baseline.title}: {reason}")
    return runnable, skipped


def comparison_rows(results: list[Denoised], noisy_psnr: float | None) -> list[dict]:
    """One table row per result: PSNR, its gain over the noisy input, SSIM and time (None without a reference)."""
    return [{"denoiser": r.title, "PSNR (dB)": r.psnr,
             "gain (dB)": None if r.psnr is None or noisy_psnr is None else r.psnr - noisy_psnr,
             "SSIM": r.ssim, "time (ms)": r.seconds * 1000} for r in results]


def denoise_one(method: str, noisy: torch.Tensor, *, model: nn.Module | None = None, title: str | None = None,
                spec: NoiseSpec | None = None, clean: torch.Tensor | None = None,
                progress: Progress | None = None) -> Denoised:
    """Denoise one C x H x W image with a model (``model`` given) or a baseline (``method``)."""
    batch = noisy[None].float()
    start = time.perf_counter()
    if model is not None:
        model.eval()
        output = run_tiled(model_fn(model), batch, progress=progress)
    elif method == "median":
        output = median_filter(batch)
    elif method == "bm3d":
        if spec is None or spec.kind != "gaussian":
            raise ValueError("BM3D is a Gaussian denoiser: it needs the Gaussian noise level.")
        output = bm3d_denoise(batch, spec.level)
    else:
        raise ValueError(f"Unknown denoising method {method!r}.")
    seconds = time.perf_counter() - start
    psnr, ssim = score(output[0], clean)
    return Denoised(method, title or BASELINES[method].title, output[0], seconds, psnr, ssim)


def prepare(image: Image.Image, max_pixels: int = MAX_PIXELS) -> tuple[torch.Tensor, str | None]:
    """An image as a C x H x W tensor (one channel if it is grey), shrunk under ``max_pixels``.

    Returns the tensor and, when it had to be shrunk, a sentence saying so.
    """
    image, note = shrink_to(image, max_pixels)
    grey = is_grayscale(image)
    tensor = to_tensor(image.convert("L") if grey else image.convert("RGB"))[0]
    return tensor, note


def estimate_noise_sigma(image: torch.Tensor) -> float:
    """The Gaussian noise level of a C x H x W image that came noisy, on the 0-255 scale.

    scikit-image's wavelet estimate (Donoho's median absolute deviation of the finest diagonal
    detail), averaged over the channels; a clean photo reads a few units, not zero.
    """
    from skimage.restoration import estimate_sigma

    array = image.detach().cpu().double().numpy()
    if array.shape[0] == 1:
        sigma = estimate_sigma(array[0])
    else:
        sigma = estimate_sigma(array, channel_axis=0, average_sigmas=True)
    return float(min(max(sigma * 255, 0.0), 255.0))


def blend(noisy: torch.Tensor, denoised: torch.Tensor, strength: float) -> torch.Tensor:
    """From the input (``strength`` 0) to the full denoised result (1): how hard to denoise a photo that came noisy."""
    return (noisy + float(strength) * (denoised.to(noisy.dtype) - noisy)).clamp(0, 1)


def make_noisy(clean: torch.Tensor, spec: NoiseSpec, seed: int) -> torch.Tensor:
    """``clean`` (C x H x W) with ``spec``'s noise drawn from ``seed``: the same seed, the same noise."""
    return add_noise(clean[None], spec, torch.Generator().manual_seed(seed))[0]



def noisy_and_restored(clean: torch.Tensor, spec: NoiseSpec, model: nn.Module | None,
                       seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``clean`` (C x H x W) with ``spec``'s noise, and that after ``model`` (None: the median filter):
    for one image, what the noise-versus-recognition curves measure over a test set."""
    noisy = make_noisy(clean, spec, seed)
    if model is None:
        restored = denoise_one("median", noisy)
    else:
        restored = denoise_one("model", noisy, model=model, title="model")
    return noisy, restored.image.clamp(0, 1)
