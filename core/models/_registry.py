"""The model registry: architectures by name, with the options a user may set.

Model files only hold models; they register a builder with ``@register_model``,
declaring the task it serves and its user-facing options, so the Train page can
offer them and a checkpoint's sidecar can rebuild the model by name.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

TASKS = ("classification", "denoising", "colorization")


@dataclass(frozen=True)
class Option:
    """One user-settable argument of an architecture's builder."""

    name: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Architecture:
    name: str
    task: str
    title: str
    summary: str  # a few sentences for "How this model works"
    builder: Callable[..., nn.Module]
    options: tuple[Option, ...] = field(default_factory=tuple)
    # A shipped checkpoint a fresh model of this design takes its frozen part from (``model.adopt``).
    base_checkpoint: str | None = None
    takes_hints: bool = False  # a colorizer that always takes colour hints (others may by their "hints" option)


_REGISTRY: dict[str, Architecture] = {}


def register_model(
    name: str, *, task: str, title: str, summary: str, options: tuple[Option, ...] = (),
    base_checkpoint: str | None = None, takes_hints: bool = False,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register ``builder`` under ``name`` for ``task``."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}")

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} is already registered")
        _REGISTRY[name] = Architecture(name, task, title, summary, builder, tuple(options), base_checkpoint,
                                       takes_hints)
        return builder

    return decorate


def get_architecture(name: str) -> Architecture:
    """The registered architecture ``name``; ValueError naming the known ones otherwise."""
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ValueError(f"Unknown architecture {name!r}. Known architectures: {known}.")
    return _REGISTRY[name]


def list_architectures(task: str | None = None) -> list[str]:
    """Names of the registered architectures, optionally only those for ``task``."""
    return sorted(name for name, arch in _REGISTRY.items() if task is None or arch.task == task)


def build(architecture: str, **arch_args: Any) -> nn.Module:
    """Build a registered architecture; unknown arguments are refused by name."""
    arch = get_architecture(architecture)
    try:
        return arch.builder(**arch_args)
    except TypeError as error:
        raise ValueError(f"Bad arguments for {architecture!r}: {error}") from error


def private_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` for work that hooks into it (Grad-CAM, layer tables).

    The app caches one model object for every visitor, and a forward hook fires on every
    caller's forward pass: Grad-CAM in two sessions at once on the shared model mixed their
    activations up (found by bench/load.py). A copy costs milliseconds.
    """
    return copy.deepcopy(model).eval()


@torch.no_grad()
def transplant(source: nn.Module, target: nn.Module, new_outputs: bool = False) -> list[str]:
    """Copy ``source``'s weights into ``target``, a model of the same design with more inputs.

    A tensor that ``target`` has wider along its input channels (dim 1: a first convolution
    given extra input channels) keeps ``source``'s values in its leading slice and zeros in
    the rest, so the new inputs start out ignored and the model starts as good as before.
    With ``new_outputs``, a tensor whose output size (dim 0) differs, such as a classifier's head
    for other classes, keeps ``target``'s fresh initialisation. Returns the names of the tensors
    not copied whole; any other mismatch is an error.
    """
    theirs, ours = source.state_dict(), target.state_dict()
    if theirs.keys() != ours.keys():
        raise ValueError(f"Different designs: {sorted(set(theirs) ^ set(ours))[:4]}")
    widened = []
    for name, value in theirs.items():
        mine = ours[name]
        if mine.shape == value.shape:
            mine.copy_(value)
        elif mine.dim() > 1 and mine.shape[0] == value.shape[0] and mine.shape[2:] == value.shape[2:] \
                and mine.shape[1] > value.shape[1]:
            mine.zero_()
            mine[:, :value.shape[1]] = value
            widened.append(name)
        elif new_outputs and mine.dim() >= 1 and mine.shape[0] != value.shape[0] and mine.shape[1:] == value.shape[1:]:
            widened.append(name)
        else:
            raise ValueError(f"{name}: {tuple(value.shape)} does not fit {tuple(mine.shape)}")
    return widened
