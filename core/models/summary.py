"""A layer table generated from a model, for the "How this model works" expanders."""

from __future__ import annotations

import torch
from torch import nn

from core.models._registry import private_copy


def layer_table(model: nn.Module, example: torch.Tensor) -> list[dict[str, object]]:
    """One row per leaf module that runs on ``example``: name, type, output shape, parameters.

    The hooks go on a private copy, so they never see another visitor's forward pass.
    """
    model = private_copy(model)
    rows: list[dict[str, object]] = []
    for name, module in model.named_modules():
        if list(module.children()) or name == "":
            continue

        def record(module: nn.Module, inputs: object, output: object, name: str = name) -> None:
            shape = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else ()
            rows.append({"layer": name, "type": type(module).__name__,
                         "output shape": " x ".join(map(str, shape)),
                         "parameters": sum(p.numel() for p in module.parameters(recurse=False))})

        module.register_forward_hook(record)
    with torch.no_grad():
        model(example)
    return rows
