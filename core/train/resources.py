"""What a training run will cost before it starts: parameters and an estimate of its peak memory.

A capped server refuses runs that cannot fit (``ServerLimits.apply``). The model is built on
PyTorch's ``meta`` device, so sizing a 45M-parameter ResNet allocates nothing; a forward pass
on meta tensors gives every layer's output shape, which is what training keeps for backward.

The estimate's terms, and the constants below, were fitted against the peak resident memory of
real runs by ``python bench/memory_estimate.py``, which prints the error per architecture.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from core import data, models
from core.train.config import TrainConfig

# A training process's resident memory before any data or model: the interpreter, torch and its
# libraries. Measured for the CUDA build of torch 2.14 (714 MB after import); the CPU-only wheel the
# Space installs is smaller, so there the estimate errs on the safe side.
PROCESS_BASELINE_MB = 900
# Autograd keeps about this many bytes per byte of layer outputs in a training step (saved inputs of
# convolutions, norms and activations, their gradients during backward, the allocator's slack).
ACTIVATION_FACTOR = 3.0
OPTIMIZER_STATES = {"sgd": 1, "muon": 1, "adam": 2, "adamw": 2}  # tensors per parameter besides weight and grad


@dataclass(frozen=True)
class RunCost:
    params: int
    peak_mb: float
    parts_mb: dict[str, float]

    def describe(self) -> str:
        parts = ", ".join(f"{name} {mb:,.0f} MB" for name, mb in self.parts_mb.items())
        return f"{self.params / 1e6:.2f}M parameters, about {self.peak_mb:,.0f} MB at peak ({parts})"


def _input_shape(config: TrainConfig, spec: data.DatasetSpec, batch: int) -> tuple[int, int, int, int]:
    channels = 1 if config.task == "colorization" else spec.channels  # colorizers see luma only
    return (batch, channels, spec.size, spec.size)


def _meta_model(config: TrainConfig, spec: data.DatasetSpec) -> nn.Module:
    builder = inspect.signature(models.get_architecture(config.arch).builder).parameters
    derived: dict[str, object] = {}
    if "in_channels" in builder:
        derived["in_channels"] = spec.channels
    if "num_classes" in builder:
        derived["num_classes"] = len(spec.classes)
    with torch.device("meta"):
        return models.build(config.arch, **(derived | dict(config.arch_args)))


def layer_output_elements(model: nn.Module, shape: tuple[int, ...]) -> int:
    """The elements of every leaf module's outputs in one forward pass of a meta batch of ``shape``."""
    total = 0

    def count(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal total
        outputs = output if isinstance(output, tuple | list) else (output,)
        total += sum(o.numel() for o in outputs if isinstance(o, torch.Tensor))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        model.train()
        with torch.no_grad():
            model(torch.empty(shape, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return total


def estimate(config: TrainConfig) -> RunCost:
    """Parameters and estimated peak resident memory of training ``config`` on the CPU."""
    if config.dataset in data.DATASETS:
        spec = data.DATASETS[config.dataset]
        train_images = {"cifar10": 50_000, "mnist": 60_000, "fashion_mnist": 60_000}.get(config.dataset, 60_000)
    else:  # an image folder, decoded to the CIFAR form
        classes = tuple(p.name for p in Path(config.dataset).iterdir() if p.is_dir()) or ("a", "b")
        spec = data.DatasetSpec("folder", "your images", 3, 32, classes, "", {})
        train_images = sum(1 for p in Path(config.dataset).rglob("*") if p.is_file())
    model = _meta_model(config, spec)
    params = sum(p.numel() for p in model.parameters())
    image_bytes = spec.channels * spec.size * spec.size
    # The split is read whole, then copied once into training and validation parts; the test split is kept.
    dataset_mb = (2 * train_images + 10_000) * image_bytes / 2**20
    states = 2 + OPTIMIZER_STATES.get(config.optimizer, 2) + (1 if config.lookahead else 0)
    weights_mb = params * 4 * states / 2**20
    batch = min(config.batch_size, config.subset or config.batch_size)
    per_image = layer_output_elements(model, _input_shape(config, spec, 1))
    activations_mb = ACTIVATION_FACTOR * per_image * batch * 4 / 2**20
    parts = {"process": float(PROCESS_BASELINE_MB), "data": dataset_mb, "weights and optimizer": weights_mb,
             "activations": activations_mb}
    return RunCost(params, sum(parts.values()), parts)
