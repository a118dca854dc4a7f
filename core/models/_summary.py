"""A layer table generated from a model, for the "How this model works" expanders."""

from __future__ import annotations

import copy

import torch
from torch import nn


def layer_table(model: nn.Module, example: torch.Tensor) -> list[dict[str, object]]:
    """One row per leaf module that runs on ``example``: name, type, output shape, parameters.

    The hooks go on a private copy: the app shares one model object between visitors, and a hook
    on it would also record (and slow down) everyone else's forward passes.
    """
    model = copy.deepcopy(model)
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
        model.eval()(example)
    return rows
