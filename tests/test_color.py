"""Colour conversions, chroma bins, colourfulness and CIEDE2000, and the colorizers built on them."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image

from core import color, colorize, models
from core.train.config import ConfigError, TrainConfig


def test_luma_matches_pil_and_known_values() -> None:
    rgb = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]).T.reshape(1, 3, 2, 2)
    assert color.luma(rgb).flatten().tolist() == pytest.approx([0.299, 0.587, 0.114, 1.0], abs=1e-4)
    photo = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    pil = np.asarray(Image.fromarray(photo).convert("L"), dtype=np.float32) / 255
    ours = color.luma(torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255)[0, 0].numpy()
    assert np.abs(ours - pil).max() <= 1 / 255 + 1e-6  # PIL rounds to whole levels


def test_luma_and_chroma_round_trip() -> None:
    rgb = torch.rand(2, 3, 9, 7)
    # kornia rounds its YCbCr coefficients to three decimals: the round trip holds to well under a level.
    assert torch.allclose(color.combine(color.luma(rgb), color.chroma(rgb)), rgb, atol=5e-4)
    grey = torch.full((1, 3, 4, 4), 0.4)
    assert color.chroma(grey).abs().max() < 1e-6


def test_soft_bin_targets_peak_at_the_nearest_bin_and_sum_to_one() -> None:
    centres = color.chroma_bin_centres()
    assert len(centres) == 21 * 21
    chroma = torch.tensor([0.12, -0.2]).view(1, 2, 1, 1)
    targets = color.soft_bin_targets(chroma, centres)
    assert float(targets.sum()) == pytest.approx(1.0, abs=1e-5)
    assert centres[targets.flatten().argmax()].tolist() == pytest.approx([0.12, -0.2], abs=1e-6)


def test_decoding_sharpens_as_the_temperature_falls() -> None:
    centres = color.chroma_bin_centres()
    logits = torch.zeros(1, len(centres), 1, 1)
    red = int(((centres - torch.tensor([-0.2, 0.4])).abs().sum(1)).argmin())
    logits[0, red] = 3.0
    warm = color.decode_bins(logits, centres, 1.0).flatten()
    cold = color.decode_bins(logits, centres, 0.1).flatten()
    assert cold.tolist() == pytest.approx([-0.2, 0.4], abs=1e-3)
    assert warm.norm() < cold.norm()  # a flat-ish distribution averages towards grey


def dense_chroma_ce(logits: torch.Tensor, rgb: torch.Tensor, rebalance_weights: torch.Tensor | None) -> torch.Tensor:
    """The loss by its definition: cross-entropy against the dense soft targets."""
    targets = color.soft_bin_targets(color.chroma(rgb), color.chroma_bin_centres())
    per_pixel = -(targets * torch.log_softmax(logits.float(), dim=1)).sum(1)
    if rebalance_weights is not None:
        per_pixel = per_pixel * rebalance_weights[targets.argmax(1)]
    return per_pixel.mean()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rebalance", [False, True])
def test_chroma_loss_and_its_gradient_equal_the_dense_definition(dtype: torch.dtype, rebalance: bool) -> None:
    torch.manual_seed(0)
    rgb = torch.rand(5, 3, 9, 13)  # 5 images of odd size: chunks of images split unevenly
    rgb[0, :, :3] = 0.5  # some exactly grey pixels
    logits = (torch.randn(5, len(color.chroma_bin_centres()), 9, 13) * 4).to(dtype)
    dense_logits = logits.clone().requires_grad_(True)
    # As a binned model in training hands them over: after the RGB, channels last.
    packed = torch.cat([torch.rand(5, 3, 9, 13).to(dtype), logits], 1).contiguous(memory_format=torch.channels_last)
    packed.requires_grad_(True)
    fast_logits = packed[:, 3:]
    fast_logits.retain_grad()
    loss = color.ChromaBinLoss(rebalance=rebalance)
    old_chunk = color._SoftBinCrossEntropy.CHUNK_PIXELS
    color._SoftBinCrossEntropy.CHUNK_PIXELS = 2 * 9 * 13
    try:
        fast = loss(fast_logits, rgb)
    finally:
        color._SoftBinCrossEntropy.CHUNK_PIXELS = old_chunk
    weights = None
    if rebalance:  # the first batch's weights, from its own colour frequencies
        weights = 1.0 / (0.5 * loss.prior + 0.5 / len(loss.prior))
        weights = weights / (loss.prior * weights).sum()
    dense = dense_chroma_ce(dense_logits, rgb, weights)
    assert float(fast.detach()) == pytest.approx(float(dense.detach()), rel=1e-5)
    fast.backward()
    dense.backward()
    assert fast_logits.grad.dtype == dtype
    assert torch.equal(logits, packed[:, 3:].detach())  # read, never written
    scale = float(dense_logits.grad.float().abs().max())
    tolerance = 1e-5 if dtype == torch.float32 else 1e-2  # bf16 keeps 8 bits of mantissa
    assert float((fast_logits.grad.float() - dense_logits.grad.float()).abs().max()) <= tolerance * scale


def test_rebalanced_loss_weights_rare_colours_up() -> None:
    torch.manual_seed(0)
    grey = torch.full((1, 3, 8, 8), 0.5)
    grey[..., 0, 0] = torch.tensor([1.0, 0.0, 0.0])  # one red pixel among grey ones
    logits = torch.zeros(1, len(color.chroma_bin_centres()), 8, 8)
    plain, rebalanced = color.ChromaBinLoss(rebalance=False), color.ChromaBinLoss(rebalance=True)
    assert float(plain(logits, grey)) == pytest.approx(float(rebalanced(logits, grey)), rel=1e-4)  # uniform logits
    centres = color.chroma_bin_centres()
    grey_bin = int(centres.norm(dim=1).argmin())
    logits[0, grey_bin] = 10.0  # confidently grey everywhere: only the red pixel is far off
    plain, rebalanced = color.ChromaBinLoss(rebalance=False), color.ChromaBinLoss(rebalance=True)
    assert float(rebalanced(logits, grey)) > 1.5 * float(plain(logits, grey))


def test_colourfulness_and_ciede2000_known_values() -> None:
    grey = torch.full((1, 3, 8, 8), 0.3)
    assert float(color.colorfulness(grey)[0]) == pytest.approx(0.0, abs=1e-4)
    red = torch.zeros(1, 3, 8, 8)
    red[:, 0] = 1.0
    # Uniform red: no spread, rg = 255, yb = 127.5, so 0.3 * sqrt(255^2 + 127.5^2).
    assert float(color.colorfulness(red)[0]) == pytest.approx(0.3 * (255**2 + 127.5**2) ** 0.5, rel=1e-4)
    assert float(color.ciede2000(red, red)[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(color.ciede2000(grey, red)[0]) > 30  # red against dark grey: a large difference


@pytest.mark.parametrize("arch", ["unet_colorizer", "resnet_colorizer"])
@pytest.mark.parametrize("binned", [False, True])
def test_colorizers_keep_the_input_luma_on_odd_sizes(arch: str, binned: bool) -> None:
    model = models.build(arch, width=8, binned=binned).eval()
    luma = torch.rand(2, 1, 21, 35) * 0.6 + 0.2  # away from 0 and 1, where clipping could move it
    with torch.no_grad():
        rgb = model(luma)
    assert rgb.shape == (2, 3, 21, 35) and float(rgb.min()) >= 0 and float(rgb.max()) <= 1
    inside = ((rgb > 0.001) & (rgb < 0.999)).all(1, keepdim=True)
    assert torch.allclose(color.luma(rgb)[inside], luma[inside], atol=2e-3)


def test_binned_colorizer_returns_logits_only_in_training() -> None:
    model = models.build("unet_colorizer", width=8, binned=True)
    luma = torch.rand(1, 1, 16, 16)
    assert model.train()(luma).shape[1] == 3 + len(color.chroma_bin_centres())
    assert model.eval()(luma).shape[1] == 3
    # A loss on the RGB alone (squared error) needs no logits, so the task switches them off.
    from core.train.tasks import make_task

    make_task(TrainConfig(task="colorization", arch="unet_colorizer", loss="mse"), model)
    assert model.train()(luma).shape[1] == 3
    make_task(TrainConfig(task="colorization", arch="unet_colorizer", loss="chroma_ce"), model)
    assert model.train()(luma).shape[1] == 3 + len(color.chroma_bin_centres())


def rgb_in_autograd(output: torch.Tensor) -> bool:
    """Whether the RGB packed first in a binned colorizer's training output has a backward path."""
    return output.grad_fn.next_functions[0][0] is not None


def test_rgb_leaves_autograd_only_when_no_loss_reads_it() -> None:
    from core.train.tasks import make_task

    torch.manual_seed(0)
    model = models.build("unet_colorizer", width=8, binned=True).train()
    images = torch.rand(4, 3, 16, 16)
    task = make_task(TrainConfig(task="colorization", arch="unet_colorizer", loss="chroma_ce"), model)
    assert not model.rgb_trains

    def gradients() -> list[torch.Tensor]:
        model.zero_grad()
        given, target = task.prepare(images, None, None)
        output = model(given)
        assert rgb_in_autograd(output) == model.rgb_trains
        task.loss(output, target).backward()
        return [parameter.grad.clone() for parameter in model.parameters()]

    fast = gradients()
    model.rgb_trains = True  # the decoding in autograd, as before: its gradient is all zeros
    kept = gradients()
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(fast, kept, strict=True))
    # A teacher reads the RGB: it stays in autograd, or the teacher would teach nothing.
    make_task(TrainConfig(task="colorization", arch="unet_colorizer", loss="chroma_ce",
                          teacher="staged-advanced-cifar10"), model)
    assert model.rgb_trains
    make_task(TrainConfig(task="colorization", arch="unet_colorizer", loss="chroma_ce"), model)
    assert not model.rgb_trains and not rgb_in_autograd(model(color.luma(images)))


def test_bf16_decoding_stays_within_half_a_grey_level() -> None:
    logits = (torch.randn(2, len(color.chroma_bin_centres()), 8, 8) * 3).bfloat16()  # as a bf16 model gives them
    exact = color.decode_bins(logits.float(), color.chroma_bin_centres(), 1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = color.decode_bins(logits, color.chroma_bin_centres(), 1.0)
    assert fast.dtype == torch.float32 and (fast - exact).abs().max() < 0.5 / 255


def test_large_images_keep_their_full_resolution_luma() -> None:
    model = models.build("unet_colorizer", width=8).eval()
    luma = torch.rand(1, 300, 200) * 0.6 + 0.2
    rgb = colorize.colorize(model, luma, working_side=64)
    assert rgb.shape == (3, 300, 200)
    inside = ((rgb > 0.001) & (rgb < 0.999)).all(0, keepdim=True)  # unclipped pixels
    assert inside.float().mean() > 0.5
    assert torch.allclose(color.luma(rgb[None])[0][inside], luma[inside], atol=2e-3)  # the detail is the input's


def test_prepare_separates_colour_and_grey_images() -> None:
    colour = Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    given = colorize.prepare(colour)
    assert given.original is not None and given.luma.shape == (1, 20, 30)
    grey = colour.convert("L").convert("RGB")
    assert colorize.prepare(grey).original is None
    big = colour.resize((3000, 2000))
    assert colorize.prepare(big, max_pixels=1_000_000).note is not None


def test_colorize_one_scores_against_the_original() -> None:
    model = models.build("unet_colorizer", width=8).eval()
    given = colorize.prepare(Image.fromarray(np.random.default_rng(2).integers(0, 256, (32, 32, 3), np.uint8)))
    result = colorize.colorize_one(model, given)
    assert result.psnr is not None and result.delta_e is not None and result.original_colorfulness > 0
    assert 0 < result.gray_psnr < 100 and result.gray_psnr != result.psnr


def test_imagenet_weights_offline_fail_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.models import ResNet18_Weights

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(type(ResNet18_Weights.IMAGENET1K_V1), "get_state_dict", offline)
    with pytest.raises(RuntimeError, match=r"ImageNet weights .* could not be downloaded"):
        models.build("resnet_colorizer", width=64, pretrained=True)
    with pytest.raises(ValueError, match=r"width 64 only"):
        models.build("resnet_colorizer", width=32, pretrained=True)


def test_chroma_losses_need_a_binned_colorizer() -> None:
    with pytest.raises(ConfigError, match=r"binned colorizers only"):
        TrainConfig(task="colorization", arch="unet_colorizer", loss="chroma_ce").validate()
    TrainConfig(task="colorization", arch="unet_colorizer", arch_args={"binned": True}, loss="chroma_ce").validate()


def test_ciede2000_in_strips_equals_the_whole_image() -> None:
    generator = torch.Generator().manual_seed(1)
    estimate, target = torch.rand(2, 3, 45, 20, generator=generator), torch.rand(2, 3, 45, 20, generator=generator)
    whole = color.ciede2000(estimate, target, strip_rows=1000)
    assert torch.allclose(color.ciede2000(estimate, target, strip_rows=7), whole, rtol=1e-5)
