"""core.denoise: baselines, seamless tiles, channel matching, the comparison view, input preparation, defaults."""

from __future__ import annotations

import base64
import io
import re

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


def test_model_fn_stays_within_an_8bit_level_of_full_precision() -> None:
    # model_fn may run bf16 autocast where the hardware makes it fast; what it returns must not
    # differ visibly from the fp32 model, and must come back as contiguous float32.
    torch.manual_seed(0)
    model = models.build("unet_denoiser", width=8, depth=2).eval()
    images = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        reference = model(images)
        output = denoise.model_fn(model)(images)
    assert output.dtype == torch.float32 and output.is_contiguous()
    assert float((output - reference).square().mean().sqrt()) < 1 / 255


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


def test_comparison_page_carries_both_images_and_a_slider_for_the_browser() -> None:
    before, after = Image.new("RGB", (100, 10), (0, 0, 0)), Image.new("RGB", (50, 5), (200, 0, 0))
    page = images.comparison_html(before, after, "noisy <input>", "denoised", width=300)
    urls = re.findall(r'src="(data:image/png;base64,[^"]+)"', page)
    decoded = [Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) for url in urls]
    assert [im.getpixel((5, 5)) for im in decoded] == [(0, 0, 0), (200, 0, 0)]
    assert decoded[1].size == (100, 10)  # the result is shown at the input's size
    assert 'type="range"' in page and "width: 300px" in page
    assert "noisy &lt;input&gt;" in page and "<input>" not in page.replace('<input type="range"', "")
    large = images.comparison_html(Image.new("RGB", (3000, 2000)), Image.new("RGB", (3000, 2000)))
    # Sent scaled down to 1024 px and compressed for the eye, shown at most 640 CSS pixels wide (sharp on HiDPI).
    jpegs = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', large)
    assert [Image.open(io.BytesIO(base64.b64decode(data))).size for data in jpegs] == [(1024, 683)] * 2
    assert "width: 640px" in large
    # A 32 px CIFAR-10 image is enlarged to a comfortable width to drag across.
    assert "width: 384px" in images.comparison_html(Image.new("RGB", (32, 32)), Image.new("RGB", (32, 32)))


def test_bm3d_is_offered_only_where_it_can_run() -> None:
    gaussian, impulse = noise.NoiseSpec("gaussian", 25), noise.NoiseSpec("salt_pepper", 0.07)
    assert denoise.unavailable_reason("bm3d", gaussian, 32 * 32) is None
    assert "Gaussian" in denoise.unavailable_reason("bm3d", impulse, 32 * 32)
    assert "up to" in denoise.unavailable_reason("bm3d", gaussian, denoise.BM3D_MAX_PIXELS + 1)
    assert denoise.unavailable_reason("median", impulse, 10**7) is None


def test_compare_mode_only_offers_models_that_suit_the_image() -> None:
    mnist = {"dataset": "mnist", "arch_args": {"in_channels": 1}}
    cifar = {"dataset": "cifar10", "arch_args": {"in_channels": 3}}
    assert denoise.suits(cifar, 3, "cifar10") and not denoise.suits(mnist, 3, "cifar10")
    assert denoise.suits(mnist, 1, "mnist") and not denoise.suits(cifar, 1, "mnist")
    assert denoise.suits(cifar, 3, None) and not denoise.suits(mnist, 3, None)  # a colour upload
    assert denoise.suits(mnist, 1, None)  # a grey upload
    grey = {"dataset": "cifar10", "arch_args": {"in_channels": 1}}  # trained with --grey
    assert denoise.suits(grey, 1, None) and not denoise.suits(cifar, 1, None)
    assert not denoise.suits(grey, 3, "cifar10")  # it would turn a colour test image grey
    assert denoise.suits_photo(grey, 1) and not denoise.suits_photo(mnist, 1)  # digits are not photos


def test_comparing_every_denoiser_runs_what_suits_the_image_and_says_why_not_the_rest() -> None:
    mnist = {"path": "m.safetensors", "name": "unet-mnist", "dataset": "mnist", "arch_args": {"in_channels": 1}}
    cifar = {"path": "c.safetensors", "name": "unet-cifar", "dataset": "cifar10", "arch_args": {"in_channels": 3}}
    gaussian = noise.NoiseSpec("gaussian", 25)
    grey = {"path": "g.safetensors", "name": "unet-grey", "dataset": "cifar10", "arch_args": {"in_channels": 1}}
    runnable, skipped = denoise.comparison_plan([mnist, cifar, grey], gaussian, 3, None, 32 * 32)
    assert runnable == ["c.safetensors", "median", "bm3d"]
    # What does not fit is named for what is wrong: the channels first (a grey CIFAR-10 model was "trained on
    # CIFAR-10, not this kind of image" for a colour CIFAR-10 picture), then the dataset.
    assert skipped == ["unet-mnist: it takes grey images and this one is in colour.",
                       "unet-grey: it takes grey images and this one is in colour."]
    assert denoise.mismatch(cifar, 1, None) == "it takes colour images and this one is grey."
    assert denoise.mismatch(grey, 1, "mnist") == "trained on CIFAR-10, not this kind of image."
    assert denoise.mismatch(grey, 1, None) is None and denoise.mismatch(cifar, 3, "cifar10") is None
    runnable, skipped = denoise.comparison_plan([mnist, cifar], noise.NoiseSpec("salt_pepper", 0.07), 1, "mnist",
                                                28 * 28)
    assert runnable == ["m.safetensors", "median"]
    assert skipped[0] == "unet-cifar: it takes colour images and this one is grey."
    assert skipped[1].startswith("BM3D: BM3D is a Gaussian")
    _, skipped = denoise.comparison_plan([], gaussian, 3, None, denoise.BM3D_MAX_PIXELS + 1)
    assert skipped == [f"BM3D: {denoise.unavailable_reason('bm3d', gaussian, denoise.BM3D_MAX_PIXELS + 1)}"]
    image = torch.zeros(3, 4, 4)
    results = [denoise.Denoised("median", "Median", image, 0.002, 30.0, 0.9),
               denoise.Denoised("bm3d", "BM3D", image, 1.5)]
    rows = denoise.comparison_rows(results, 20.5)
    assert rows[0]["gain (dB)"] == pytest.approx(9.5) and rows[0]["time (ms)"] == pytest.approx(2.0)
    assert rows[1]["PSNR (dB)"] is None and rows[1]["gain (dB)"] is None  # no clean reference, no gain
    assert denoise.comparison_rows(results, None)[0]["gain (dB)"] is None


def test_ssim_of_a_large_image_is_measured_in_strips_with_the_same_result() -> None:
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(2, 3, 301, 97, generator=generator)
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
    whole = metrics.ssim(noisy, clean, strip_rows=10_000)
    assert torch.allclose(metrics.ssim(noisy, clean, strip_rows=40), whole, atol=1e-6)
    assert torch.allclose(metrics.ssim(clean, clean, strip_rows=40), torch.ones(2), atol=1e-6)
    assert float(whole.max()) < 0.99
    # By default a strip holds about STRIP_PIXELS pixels: a wide photo gets few rows per strip, same result.
    wide = torch.rand(1, 3, 90, metrics.STRIP_PIXELS // 30, generator=generator)
    blurred = torch.nn.functional.avg_pool2d(wide, 3, stride=1, padding=1)
    assert torch.allclose(metrics.ssim(blurred, wide), metrics.ssim(blurred, wide, strip_rows=10_000), atol=1e-6)


def denoiser_meta(name: str, trained: str, dataset: str = "cifar10", channels: int = 3, **psnr: float) -> dict:
    """A sidecar as bench/denoise.py leaves it: per-setting PSNR keys like test_psnr_dataset_gaussian25."""
    return {"path": name, "name": name, "dataset": dataset, "arch_args": {"in_channels": channels},
            "recipe": {"noise": trained}, "metrics": {f"test_psnr_dataset_{key}": value for key, value in psnr.items()}}


def test_default_denoiser_is_the_best_measured_one_trained_for_the_noise() -> None:
    gaussian = denoiser_meta("gaussian", "gaussian", gaussian15=31.2, gaussian25=28.4, gaussian50=24.5)
    gaussian["metrics"]["test_psnr_dataset_salt_pepper0.07"] = 45.0  # even if it scored well there
    blind = denoiser_meta("blind", "blind", gaussian15=31.0, gaussian25=28.5, gaussian50=24.2)
    blind.update(metrics={**blind["metrics"], "test_psnr_dataset_salt_pepper0.07": 39.0})
    impulse = denoiser_meta("impulse", "salt_pepper")
    impulse.update(metrics={"test_psnr_dataset_salt_pepper0.07": 41.1, "test_psnr_dataset_gaussian25": 20.7})
    mnist = denoiser_meta("mnist", "gaussian", dataset="mnist", channels=1, gaussian127_5=21.0)
    metas = [impulse, gaussian, blind, mnist]

    def default(kind: str, level: float, channels: int = 3, dataset: str | None = None, pixels: int = 10**6) -> str:
        return denoise.default_method(metas, noise.NoiseSpec(kind, level), channels, dataset, pixels)

    assert default("gaussian", 15) == "gaussian" and default("gaussian", 50) == "gaussian"
    assert default("gaussian", 27) == "blind"  # nearest measured level is 25, where the blind model leads
    assert default("salt_pepper", 0.07) == "impulse"  # never the Gaussian model, whatever its numbers
    assert default("salt_pepper", 0.3) == "impulse"
    # Per-channel impulses: the blind mix learned them; the whole-pixel specialist did not.
    assert default("salt_pepper_channels", 0.07) == "blind"
    assert default("poisson", 30) == "median"  # no model learned Poisson noise: the classical answer
    assert default("gaussian", 25, channels=1, dataset="mnist") == "mnist"
    # A grey upload is a photo: never the digit denoiser, but the classical answer...
    assert default("gaussian", 25, channels=1) == "median"
    assert default("gaussian", 25, channels=1, pixels=32 * 32) == "bm3d"
    # ...or a denoiser trained on grey photos (core.train --grey), whatever the digit model's numbers.
    metas.append(denoiser_meta("grey", "gaussian", channels=1, gaussian15=30.0, gaussian25=27.0))
    assert default("gaussian", 25, channels=1) == "grey" and default("gaussian", 120, channels=1) == "grey"
    assert default("gaussian", 25, channels=1, dataset="mnist") == "mnist"
    assert default("gaussian", 25, dataset="fashion_mnist", pixels=32 * 32) == "bm3d"
    assert default("gaussian", 25, dataset="fashion_mnist", pixels=denoise.BM3D_MAX_PIXELS + 1) == "median"


def test_estimated_noise_level_tracks_the_added_noise_and_strength_blends() -> None:
    clean = smooth_image(128, 128)
    for sigma in (10.0, 25.0, 50.0):
        noisy = denoise.make_noisy(clean, noise.NoiseSpec("gaussian", sigma), seed=1)
        assert denoise.estimate_noise_sigma(noisy) == pytest.approx(sigma, rel=0.15)
    assert denoise.estimate_noise_sigma(clean) < 3
    assert denoise.estimate_noise_sigma(clean[:1]) < 3  # one channel
    noisy = denoise.make_noisy(clean, noise.NoiseSpec("gaussian", 25), seed=1)
    assert torch.equal(denoise.blend(noisy, clean, 0.0), noisy)
    assert torch.allclose(denoise.blend(noisy, clean, 1.0), clean)
    halfway = denoise.blend(noisy, clean, 0.5)
    assert metrics.psnr(noisy[None], clean[None]) < metrics.psnr(halfway[None], clean[None])


def test_a_set_score_weights_every_pixel_alike_and_averages_per_image() -> None:
    score = metrics.SetScore()
    score.add(20.0, pixels=3_000_000, seconds=2.0, ssim=0.5)  # a large photo at MSE 0.01
    score.add(40.0, pixels=1_000_000, seconds=1.0, ssim=0.9)  # a small one at MSE 0.0001
    assert score.count == 2 and score.mean("psnr") == 30.0 and score.mean("ssim") == pytest.approx(0.7)
    assert score.psnr_of_set() == pytest.approx(metrics.psnr_from_mse((0.01 * 3 + 0.0001) / 4), abs=1e-4)
    assert score.seconds_per_megapixel() == pytest.approx(0.75)
