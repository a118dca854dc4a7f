"""core.denoise: baselines, tiling without seams, channel matching, the split view, input preparation."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from core import denoise, images, metrics, models, noise


def smooth_image(height: int = 32, width: int = 32, channels: int = 3) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    planes = [0.2 + 0.6 * x, 0.2 + 0.6 * y, 0.5 + 0.3 * torch.sin(6 * x) * torch.cos(4 * y)]
    return torch.stack(planes[:channels])


def test_median_removes_salt_and_pepper_and_keeps_edges_mirrored() -> None:
    clean = smooth_image()[None]
    noisy = noise.add_noise(clean, noise.NoiseSpec("salt_pepper", 0.07), torch.Generator().manual_seed(0))
    filtered = denoise.median_filter(noisy)
    assert filtered.shape == noisy.shape
    gain = float(metrics.psnr(filtered, clean) - metrics.psnr(noisy, clean))
    assert gain > 8  # a 3x3 median is the textbook cure for impulse noise
    flat = torch.full((1, 3, 8, 8), 0.4)
    assert torch.allclose(denoise.median_filter(flat), flat)  # no dark border from zero padding


def test_bm3d_beats_the_noisy_input_on_gaussian_noise() -> None:
    clean = smooth_image()
    spec = noise.NoiseSpec("gaussian", 25)
    noisy = denoise.make_noisy(clean, spec, seed=0)
    result = denoise.denoise_one("bm3d", noisy, spec=spec, clean=clean)
    noisy_psnr, _ = denoise.score(noisy, clean)
    assert result.psnr > noisy_psnr + 5 and float(result.image.min()) >= 0 and float(result.image.max()) <= 1
    with pytest.raises(ValueError, match="Gaussian"):
        denoise.denoise_one("bm3d", noisy, spec=noise.NoiseSpec("salt_pepper", 0.1), clean=clean)


def test_the_same_seed_gives_the_same_noise() -> None:
    clean = smooth_image()
    spec = noise.NoiseSpec("gaussian", 25)
    assert torch.equal(denoise.make_noisy(clean, spec, 3), denoise.make_noisy(clean, spec, 3))
    assert not torch.equal(denoise.make_noisy(clean, spec, 3), denoise.make_noisy(clean, spec, 4))


@pytest.mark.parametrize("size", [(300, 517), (256, 256), (40, 700)])
def test_tiling_matches_a_single_pass_without_seams(size: tuple[int, int]) -> None:
    # A per-pixel function gives identical results tiled or not: any seam would show as a difference.
    images = torch.rand(1, 3, *size)
    tiled = denoise.run_tiled(lambda x: x.sqrt(), images, tile=128, overlap=16)
    assert torch.allclose(tiled, images.sqrt(), atol=1e-6)
    # A convolutional model differs only near tile borders, and only slightly: no visible seams.
    torch.manual_seed(0)
    model = models.build("unet_denoiser", width=8, depth=2).eval()
    fn = denoise.model_fn(model)
    with torch.no_grad():
        whole, pieces = fn(images), denoise.run_tiled(fn, images, tile=128, overlap=32)
    assert pieces.shape == whole.shape
    assert float((pieces - whole).abs().max()) < 0.05


def test_tiling_reports_progress() -> None:
    seen: list[float] = []
    denoise.run_tiled(lambda x: x, torch.rand(1, 1, 300, 300), tile=128, overlap=16, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 9


@pytest.mark.parametrize("arch, channels", [("unet_denoiser", 3), ("attention_unet_denoiser", 3), ("conv_dae", 1)])
@pytest.mark.parametrize("size", [(32, 32), (33, 47), (28, 28), (5, 9)])
def test_models_keep_any_image_size(arch: str, channels: int, size: tuple[int, int]) -> None:
    model = models.build(arch, width=8, in_channels=channels).eval()
    with torch.no_grad():
        assert model(torch.rand(2, channels, *size)).shape == (2, channels, *size)
    # Colour images through a one-channel model (and back) keep their own channel count.
    rgb = torch.rand(3, *size)
    assert denoise.denoise_one(arch, rgb, model=model, title=arch).image.shape == rgb.shape


def test_prepare_keeps_grey_images_grey_and_shrinks_huge_ones() -> None:
    grey = Image.new("L", (40, 30), 128).convert("RGB")
    tensor, note = denoise.prepare(grey)
    assert tensor.shape == (1, 30, 40) and note is None
    big = Image.new("RGB", (3000, 2000), (10, 200, 30))
    tensor, note = denoise.prepare(big, max_pixels=1_000_000)
    assert tensor.shape[0] == 3 and tensor.shape[1] * tensor.shape[2] <= 1_000_000
    assert "scaled down from 3000 x 2000" in note


def test_split_view_puts_before_left_and_after_right() -> None:
    before, after = Image.new("RGB", (100, 10), (0, 0, 0)), Image.new("RGB", (100, 10), (200, 0, 0))
    view = images.split_view(before, after, 0.3)
    assert view.getpixel((10, 5)) == (0, 0, 0) and view.getpixel((80, 5)) == (200, 0, 0)
    assert view.getpixel((30, 5)) == (255, 255, 255)  # the divider
    assert images.split_view(before, after, 1.0).getpixel((99, 5)) == (0, 0, 0)


def test_bm3d_is_offered_only_where_it_can_run() -> None:
    gaussian, impulse = noise.NoiseSpec("gaussian", 25), noise.NoiseSpec("salt_pepper", 0.07)
    assert denoise.unavailable_reason("bm3d", gaussian, 32 * 32) is None
    assert "Gaussian" in denoise.unavailable_reason("bm3d", impulse, 32 * 32)
    assert "Gaussian" in denoise.unavailable_reason("bm3d", gaussian, 32 * 32, has_reference=False)
    assert "up to" in denoise.unavailable_reason("bm3d", gaussian, denoise.BM3D_MAX_PIXELS + 1)
    assert denoise.unavailable_reason("median", impulse, 10**7, has_reference=False) is None


def test_compare_mode_only_offers_models_that_suit_the_image() -> None:
    mnist = {"dataset": "mnist", "arch_args": {"in_channels": 1}}
    cifar = {"dataset": "cifar10", "arch_args": {"in_channels": 3}}
    assert denoise.suits(cifar, 3, "cifar10") and not denoise.suits(mnist, 3, "cifar10")
    assert denoise.suits(mnist, 1, "mnist") and not denoise.suits(cifar, 1, "mnist")
    assert denoise.suits(cifar, 3, None) and not denoise.suits(mnist, 3, None)  # a colour upload
    assert denoise.suits(mnist, 1, None)  # a grey upload


def test_ssim_of_a_large_image_is_measured_in_strips_with_the_same_result() -> None:
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(2, 3, 301, 97, generator=generator)
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
    whole = metrics.ssim(noisy, clean, strip_rows=10_000)
    assert torch.allclose(metrics.ssim(noisy, clean, strip_rows=40), whole, atol=1e-6)
    assert torch.allclose(metrics.ssim(clean, clean, strip_rows=40), torch.ones(2), atol=1e-6)
    assert float(whole.max()) < 0.99
