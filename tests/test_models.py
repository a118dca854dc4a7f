"""core.models: every registered architecture builds and honours the task's contract."""

from __future__ import annotations

import inspect

import pytest
import torch

from core import models

SHAPES = {"classification": (3, 32, 32), "denoising": (3, 28, 28), "colorization": (1, 32, 32)}


def input_shape(arch: models.Architecture) -> tuple[int, ...]:
    """The task's input shape, with the builder's default number of channels."""
    channels = inspect.signature(arch.builder).parameters.get("in_channels")
    shape = SHAPES[arch.task]
    return (channels.default, *shape[1:]) if channels is not None else shape


@pytest.mark.parametrize("name", models.list_architectures())
def test_architecture_builds_and_honours_its_contract(name: str) -> None:
    arch = models.get_architecture(name)
    defaults = {option.name: option.default for option in arch.options}
    model = models.build(name, **defaults).eval()
    images = torch.rand(2, *input_shape(arch))
    with torch.no_grad():
        output = model(images)
    if arch.task == "classification":
        assert output.shape == (2, 10)
    elif arch.task == "denoising":
        assert output.shape == images.shape and output.min() >= 0 and output.max() <= 1
    else:
        assert output.shape == (2, 3, *images.shape[-2:])
    assert torch.isfinite(output).all()
    assert arch.summary and arch.title


def test_registry_lists_by_task_and_refuses_unknown_names() -> None:
    assert "resnet18" in models.list_architectures("classification")
    assert "resnet18" not in models.list_architectures("denoising")
    with pytest.raises(ValueError, match="Known architectures"):
        models.build("no-such-net")
    with pytest.raises(ValueError, match="Bad arguments"):
        models.build("resnet18", depth=50)


def test_resnet18_has_the_cifar_stem_and_expected_size() -> None:
    model = models.build("resnet18")
    assert sum(p.numel() for p in model.parameters()) == 11_173_962
    stem = model.stem[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())


def test_models_normalise_inside_themselves() -> None:
    # Same images given as [0, 1] floats: a model must not need the caller to standardise.
    model = models.build("resnet18", width=8).eval()
    assert model.normalize.mean.flatten().tolist() == pytest.approx([0.4914, 0.4822, 0.4465])
    assert "normalize.mean" not in model.state_dict()


@pytest.mark.parametrize("size", [(28, 28), (31, 17), (64, 48)])
def test_denoising_autoencoder_keeps_odd_sizes(size: tuple[int, int]) -> None:
    model = models.build("conv_dae", width=8)
    assert model(torch.rand(1, 1, *size)).shape == (1, 1, *size)


@pytest.mark.parametrize("name", ["unet_denoiser", "attention_unet_denoiser", "unet_colorizer"])
@pytest.mark.parametrize("size", [(32, 32), (29, 41), (7, 5), (100, 64)])
def test_unets_keep_odd_sizes(name: str, size: tuple[int, int]) -> None:
    model = models.build(name, width=8, depth=3).eval()
    channels = 1 if name == "unet_colorizer" else 3
    with torch.no_grad():
        output = model(torch.rand(1, channels, *size))
    assert output.shape == (1, 3, *size) and output.min() >= 0 and output.max() <= 1


def test_colorizer_keeps_the_input_luma() -> None:
    from kornia.color import rgb_to_grayscale

    model = models.build("unet_colorizer", width=8).eval()
    luma = 0.25 + 0.5 * torch.rand(2, 1, 32, 32)  # mid-tones: no colour is clipped at 0 or 1
    with torch.no_grad():
        for module in model.modules():  # small chroma, so every RGB value stays in gamut
            if isinstance(module, torch.nn.Conv2d) and module.out_channels == 2:
                module.weight.mul_(0.01)
                module.bias.zero_()
        rgb = model(luma)
    assert torch.allclose(rgb_to_grayscale(rgb), luma, atol=1e-5)


@pytest.mark.parametrize("variant", ["baseline", "intermediate", "advanced"])
def test_staged_cnn_variants(variant: str) -> None:
    model = models.build("staged_cnn", variant=variant, width=8).eval()
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    has_norm = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert has_norm == (variant == "advanced")


def test_intermediate_blocks_start_as_an_even_blend_with_bounded_logits() -> None:
    torch.manual_seed(0)
    model = models.build("intermediate_block_net", width=8, paths=3, blocks=6)
    images = torch.rand(16, 3, 32, 32)
    block = model.blocks[0]
    assert torch.allclose(block.mixing_weights(images), torch.full((16, 3), 1 / 3))
    # Random mixing weights compound block after block (logits near 2e4 at width 24); an even blend does not.
    with torch.no_grad():
        assert float(model(images).abs().max()) < 20
    assert sum(p.numel() for p in models.build("intermediate_block_net").parameters()) == pytest.approx(725_000,
                                                                                                    rel=0.01)


def test_a_denoiser_grown_with_clip_flags_starts_as_its_source_and_sees_exact_zeros_and_ones() -> None:
    plain = models.build("unet_denoiser", in_channels=1, width=8, depth=2).eval()
    flagged = models.build("unet_denoiser", in_channels=1, width=8, depth=2, clip_flags=True).eval()
    assert models.transplant(plain, flagged) == ["net.encoders.0.0.weight"]
    assert models.input_channels(flagged) == 1  # the pages feed it grey images, not three channels
    noisy = torch.rand(2, 1, 12, 12)
    with torch.no_grad():
        assert torch.equal(plain(noisy), flagged(noisy))  # the flags' weights start at zero
        first = flagged.net.encoders[0][0]
        first.weight[:, 1:] = torch.randn_like(first.weight[:, 1:])
        # A pixel at exactly 0 now differs from one a hair above it by more than the hair.
        clipped, inside = noisy.clone(), noisy.clone()
        clipped[..., 6, 6], inside[..., 6, 6] = 0.0, 1e-6
        assert (flagged(clipped) - flagged(inside)).abs().max() > 1e-3
        assert (plain(clipped) - plain(inside)).abs().max() < 1e-3
