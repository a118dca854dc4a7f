"""The resume file: everything a killed or stopped run needs to go on, beside its checkpoint, never pickled.

Weights and optimizer tensors in one safetensors file, the rest (optimizer scalars, parameter
groups, the epoch history) as JSON in its metadata. One file, written atomically, so the state a
resume starts from is always of a single epoch, whenever the process was killed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from core import checkpoints
from core.fileio import temp_path


def resume_path(weights: str | Path) -> Path:
    """The file beside a checkpoint that holds everything resuming needs, weights included."""
    weights = Path(weights)
    return weights.with_name(weights.stem + checkpoints.RESUME_SUFFIX)


def save(target: Path, model: nn.Module, optimizer: torch.optim.Optimizer, history: list[dict[str, Any]]) -> None:
    """Write the resume file for the epochs in ``history`` (EpochRecords as dicts), atomically."""
    state = optimizer.state_dict()
    tensors = {f"model.{key}": value for key, value in checkpoints.state_dict_for_saving(model).items()}
    scalars = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    metadata = {
        "epoch": str(len(history)),
        "param_groups": json.dumps(state["param_groups"]),
        "scalars": json.dumps(scalars),
        "history": json.dumps(history),
    }
    tmp = temp_path(target)
    try:
        save_file(tensors or {"_empty": torch.zeros(0)}, str(tmp), metadata=metadata)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def load(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
         ) -> tuple[list[dict[str, Any]], int]:
    """Restore ``model`` and ``optimizer`` from a resume file; returns the epoch history and the epochs done."""
    if not path.is_file():
        raise ValueError(f"Cannot resume: {path.name} (the optimizer state) is missing.")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    weights = {key.removeprefix("model."): value for key, value in tensors.items() if key.startswith("model.")}
    if weights:  # older resume files held only the optimizer: the checkpoint's weights are then used
        model.load_state_dict(weights, strict=True)
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key != "_empty" and not key.startswith("model."):
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value.to(device)
    for key, value in json.loads(metadata["scalars"]).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(metadata["param_groups"])})
    return json.loads(metadata["history"]), int(metadata["epoch"])
