"""core.noise: each noise model's statistics, seeding and clipping, and the training mixes."""

from __future__ import annotations

import pytest
import torch

from core import noise

GREY = torch.full((8, 3, 32, 32), 0.5)  # mid-grey: no clipping for moderate noise, so statistics are exact


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gaussian_sigma_is_on_the_0_255_scale() -> None:
    noisy = noise.add_noise(GREY, noise.NoiseSpec("gaussian", 25.0), seeded())
    residual = noisy - GREY
    assert residual.std().item() == pytest.approx(25 / 255, rel=0.02)
    assert abs(residual.mean().item()) < 2e-3


def test_salt_and_pepper_replaces_that_fraction_of_pixels_with_black_or_white() -> None:
    noisy = noise.add_noise(GREY, noise.NoiseSpec("salt_pepper", 0.07), seeded())
    changed = (noisy != GREY).any(dim=1)  # a pixel is hit in all channels together
    assert changed.float().mean().item() == pytest.approx(0.07, rel=0.05)
    values = noisy.permute(0, 2, 3, 1)[changed]
    assert set(values.unique().tolist()) == {0.0, 1.0}
    assert (values == 1.0).float().mean().item() == pytest.approx(0.5, abs=0.03)


def test_poisson_noise_shrinks_as_the_photon_peak_grows() -> None:
    residuals = [(noise.add_noise(GREY, noise.NoiseSpec("poisson", peak), seeded()) - GREY).std().item()
                 for peak in (10.0, 100.0)]
    # Counts at a peak p have standard deviation sqrt(0.5 p), so the image's is sqrt(0.5 / p).
    assert residuals[0] == pytest.approx((0.5 / 10) ** 0.5, rel=0.05)
    assert residuals[1] == pytest.approx((0.5 / 100) ** 0.5, rel=0.05)


def test_speckle_is_multiplicative() -> None:
    images = torch.cat([torch.full((4, 3, 32, 32), 0.2), torch.full((4, 3, 32, 32), 0.6)])
    residual = noise.add_noise(images, noise.NoiseSpec("speckle", 0.3), seeded()) - images
    assert residual[:4].std().item() == pytest.approx(0.2 * 0.3, rel=0.05)
    assert residual[4:].std().item() == pytest.approx(0.6 * 0.3, rel=0.05)


@pytest.mark.parametrize(("kind", "level"), [("gaussian", 100.0), ("salt_pepper", 0.3), ("poisson", 2.0),
                                             ("speckle", 1.0)])
def test_every_kind_is_seeded_and_clipped(kind: str, level: float) -> None:
    images = torch.rand(4, 3, 16, 16)
    spec = noise.NoiseSpec(kind, level)
    first = noise.add_noise(images, spec, seeded(7))
    assert torch.equal(first, noise.add_noise(images, spec, seeded(7)))
    assert not torch.equal(first, noise.add_noise(images, spec, seeded(8)))
    assert first.min() >= 0 and first.max() <= 1


def test_per_image_levels() -> None:
    levels = torch.tensor([0.0, 50.0])
    noisy = noise.add_noise(GREY[:2], noise.NoiseSpec("gaussian", 50.0), seeded(), levels)
    assert torch.equal(noisy[0], GREY[0])
    assert (noisy[1] - GREY[1]).std().item() == pytest.approx(50 / 255, rel=0.03)


def impulse_statistics(noisy: torch.Tensor, clean: torch.Tensor) -> dict[str, float]:
    """What tells the salt-and-pepper conventions apart, measured on a mid-grey image."""
    hit = noisy != clean
    pixel_hit = hit.any(dim=1)
    return {
        "values hit": hit.float().mean().item(),
        "pixels hit": pixel_hit.float().mean().item(),
        "salt share": (noisy[hit] == 1.0).float().mean().item(),
        "specks of one channel": (hit.sum(1) == 1).float().sum().item() / max(pixel_hit.sum().item(), 1),
    }


def test_per_channel_salt_and_pepper_matches_scikit_image() -> None:
    random_noise = pytest.importorskip("skimage.util").random_noise
    grey = torch.full((16, 3, 32, 32), 0.5)
    ours = impulse_statistics(noise.add_noise(grey, noise.NoiseSpec("salt_pepper_channels", 0.07), seeded()), grey)
    # The seed project's call: random_noise on a C x H x W array, each image on its own.
    theirs_images = torch.stack([torch.from_numpy(random_noise(image.numpy(), mode="s&p", amount=0.07, rng=index))
                                 for index, image in enumerate(grey)]).float()
    theirs = impulse_statistics(theirs_images, grey)
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=0.01), key
    assert ours["values hit"] == pytest.approx(0.07, abs=0.005)
    assert ours["pixels hit"] == pytest.approx(1 - 0.93**3, abs=0.01)  # three channels, each hit on its own
    assert ours["specks of one channel"] > 0.85  # mostly coloured specks, not black or white pixels
    whole = impulse_statistics(noise.add_noise(grey, noise.NoiseSpec("salt_pepper", 0.07), seeded()), grey)
    assert whole["specks of one channel"] == 0.0 and whole["pixels hit"] == pytest.approx(0.07, abs=0.005)


def test_out_of_range_strengths_are_refused() -> None:
    with pytest.raises(ValueError, match=r"between 0 and 0\.5"):
        noise.NoiseSpec("salt_pepper", 0.9)
    with pytest.raises(ValueError, match="Unknown noise"):
        noise.NoiseSpec("pink", 1.0)


def test_blind_noise_mixes_kinds_and_levels_within_their_ranges() -> None:
    images = torch.full((400, 1, 16, 16), 0.5)
    noisy = noise.add_mixed_noise(images, noise.BLIND, seeded(3))
    assert torch.equal(noisy, noise.add_mixed_noise(images, noise.BLIND, seeded(3)))
    residual = (noisy - images).flatten(1)
    impulses = ((noisy == 0) | (noisy == 1)).flatten(1)
    # Salt-and-pepper images change only at impulses; Gaussian ones almost everywhere.
    salt_pepper = (residual != 0).sum(1) == impulses.sum(1)
    shares = noise.MIX_SHARES[noise.BLIND]
    impulse_share = 1 - shares["gaussian"] / sum(shares.values())  # two of the three kinds are impulses
    assert impulse_share - 0.09 < salt_pepper.float().mean().item() < impulse_share + 0.09
    gaussian_sigmas = residual[~salt_pepper].std(1) * 255
    assert gaussian_sigmas.max().item() < 50 * 1.15 and gaussian_sigmas.min().item() < 10
    amounts = impulses[salt_pepper].float().mean(1)
    assert amounts.max().item() < noise.MIXES[noise.BLIND]["salt_pepper"][1] * 1.3


def test_impulse_mix_draws_both_salt_and_pepper_conventions() -> None:
    grey = torch.full((300, 3, 16, 16), 0.5)
    noisy = noise.add_mixed_noise(grey, noise.IMPULSE, seeded(4))
    hit = noisy != grey
    assert set(noisy[hit].unique().tolist()) <= {0.0, 1.0}  # impulses only, no Gaussian
    whole_pixels = (hit.any(1) == hit.all(1)).flatten(1).all(1)  # every hit pixel hit in all three channels
    assert 0.57 < whole_pixels.float().mean().item() < 0.77  # two in three: whole pixels are the harder kind
    amounts = hit.float().flatten(1).mean(1)
    assert amounts.max().item() < noise.MIXES[noise.IMPULSE]["salt_pepper"][1] * 1.3
