"""core.models: every registered architecture builds and honours the task's contract."""

from __future__ import annotations

import pytest
import torch

from core import models

SHAPES = {"classification": (3, 32, 32), "denoising": (1, 28, 28), "colorization": (1, 32, 32)}


@pytest.mark.parametrize("name", models.list_architectures())
def test_architecture_builds_and_honours_its_contract(name: str) -> None:
    arch = models.get_architecture(name)
    defaults = {option.name: option.default for option in arch.options}
    model = models.build(name, **defaults).eval()
    images = torch.rand(2, *SHAPES[arch.task])
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
