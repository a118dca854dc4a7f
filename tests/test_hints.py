"""Colour hints: their encoding, the random hints training and the benchmark draw, the interpolation
baseline, and hint colorizers (grown from a plain one, trained, used on a photo)."""

from __future__ import annotations

import pytest
import torch

from core import checkpoints, color, colorize, hints, models
from core.train import TrainConfig, Trainer


def test_a_hint_is_encoded_at_its_pixel_with_its_chroma_and_a_mask() -> None:
    red = hints.Hint.from_hex(0.5, 0.25, "#ff0000")
    assert red.rgb == (1.0, 0.0, 0.0) and red.hex() == "#ff0000"
    channels = hints.encode([red], height=8, width=10)
    assert channels.shape == (3, 8, 10)
    assert channels[2].sum() == 1 and channels[2, 2, 5] == 1  # row 0.25 * 8, column 0.5 * 10
    expected = color.chroma(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)).view(2)
    assert torch.allclose(channels[:2, 2, 5], expected)
    assert channels[:2].abs().sum() == pytest.approx(float(expected.abs().sum()))
    # The last hint on a pixel wins (blue: a high Cb); a point on the far edge stays inside.
    both = hints.encode([red, hints.Hint.from_hex(0.5, 0.25, "#0000ff"), hints.Hint(1.0, 1.0, (0, 1, 0))], 8, 10)
    assert both[0, 2, 5] > 0.3 and both[2, 7, 9] == 1 and both[2].sum() == 2
    with pytest.raises(ValueError, match="rrggbb"):
        hints.Hint.from_hex(0, 0, "red")


def test_revealed_hints_are_true_colours_at_exactly_the_asked_number_of_pixels() -> None:
    images = torch.rand(4, 3, 16, 16)
    counts = torch.tensor([0, 1, 5, 20])
    channels = hints.reveal(images, counts, torch.Generator().manual_seed(0))
    assert channels.shape == (4, 3, 16, 16)
    assert channels[:, 2].flatten(1).sum(1).tolist() == [0, 1, 5, 20]
    mask = channels[:, 2:3].bool().expand(-1, 2, -1, -1)
    assert torch.equal(channels[:, :2][mask], color.chroma(images)[mask])
    assert channels[:, :2][~mask].abs().max() == 0
    # The benchmark's draw is fixed by its seed, and differs for another.
    assert torch.equal(hints.fixed_hints(images, 10, seed=3), hints.fixed_hints(images, 10, seed=3))
    assert not torch.equal(hints.fixed_hints(images, 10, seed=3), hints.fixed_hints(images, 10, seed=4))


def test_training_draws_few_hints_often_and_none_sometimes() -> None:
    counts = hints.training_counts(20_000, torch.Generator().manual_seed(0))
    assert counts.min() == 0 and counts.max() <= hints.MAX_TRAINING_HINTS
    assert 0.1 < float((counts == 0).float().mean()) < 0.25
    assert float((counts <= 10).float().mean()) > 0.5  # log-uniform: most images get a handful


def test_interpolation_is_exact_at_hints_and_grey_without_them() -> None:
    images = torch.rand(2, 3, 12, 12)
    luma = color.luma(images)
    channels = hints.fixed_hints(images, 6, seed=0)
    channels[1] = 0  # the second image has no hints
    filled = hints.interpolate(luma, channels)
    mask = channels[0, 2].bool()
    assert torch.allclose(color.chroma(filled[:1])[0][:, mask], color.chroma(images[:1])[0][:, mask], atol=2e-3)
    assert color.chroma(filled[1:]).abs().max() < 2e-3
    assert torch.allclose(color.luma(filled[1:]), luma[1:], atol=2e-3)  # the true luma (clamped colours aside)


def test_sampled_photo_hints_carry_the_colour_of_their_pixel() -> None:
    original = torch.rand(3, 30, 40)
    chosen = hints.sample_hints(original, 5, seed=1)
    assert len({(hint.x, hint.y) for hint in chosen}) == 5
    for hint in chosen:
        row, col = hint.pixel(30, 40)
        assert hint.rgb == pytest.approx(original[:, row, col].tolist())


def test_a_grown_hint_model_starts_as_its_source_and_then_listens_to_hints() -> None:
    plain = models.build("unet_colorizer", width=8, depth=2, binned=True).eval()
    grown = models.build("unet_colorizer", width=8, depth=2, binned=True, hints=True).eval()
    assert models.transplant(plain, grown) == ["body.encoders.0.0.weight"]
    images = torch.rand(2, 3, 16, 16)
    luma = color.luma(images)
    with torch.no_grad():
        assert torch.equal(plain(luma), grown(luma))  # luma alone: no hints
        with_hints = torch.cat([luma, hints.fixed_hints(images, 8, seed=0)], dim=1)
        assert torch.equal(plain(luma), grown(with_hints))  # the new inputs start at zero weight
    with pytest.raises(ValueError, match="does not fit"):
        models.transplant(plain, models.build("unet_colorizer", width=16, depth=2, binned=True, hints=True))


def test_a_hint_colorizer_fine_tunes_from_a_plain_one_and_uses_hints_on_a_photo(tmp_path, data_root) -> None:
    base = dict(task="colorization", arch="unet_colorizer", dataset="cifar10", epochs=1, batch_size=64,
                subset=256, val_size=64, optimizer="adam", lr=2e-3, schedule="constant", loss="chroma_ce",
                seed=1, out=str(tmp_path))
    plain = Trainer(TrainConfig(**base, arch_args={"width": 8, "depth": 2, "binned": True}, name="plain")).fit()
    assert plain.status == "finished", plain.message
    tuned = Trainer(TrainConfig(**base, arch_args={"binned": True, "hints": True}, init_from=plain.checkpoint,
                                name="hinted")).fit()
    assert tuned.status == "finished", tuned.message
    model, meta = checkpoints.load(tuned.checkpoint)
    assert model.takes_hints and meta["arch_args"]["width"] == 8 and meta["arch_args"]["hints"] is True

    luma = torch.rand(1, 48, 64)
    blue = [hints.Hint.from_hex(0.5, 0.5, "#2040ff")]
    plain_rgb = colorize.colorize(model, luma, working_side=32)
    hinted_rgb = colorize.colorize(model, luma, working_side=32, hints=blue)
    assert hinted_rgb.shape == (3, 48, 64)
    assert not torch.equal(plain_rgb, hinted_rgb)
    assert torch.allclose(color.luma(hinted_rgb[None])[0], luma, atol=2e-2)  # the luma is kept
