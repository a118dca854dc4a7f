"""The optimizer side of training: learning-rate schedules, parameter groups, lookahead, and Muon.

Muon for conv filters, SGD for the rest: airbench's faster optimizer, as one torch Optimizer.

Muon (Keller Jordan, 2024) replaces a filter's momentum by its nearest semi-orthogonal
matrix, found by a few Newton-Schulz iterations, so every direction of the update gets
the same step instead of the few that dominate the gradient. airbench94_muon reaches
airbench94's accuracy in 8 epochs instead of 10 with it. The filters are renormalised
before each step: every one of them feeds a batch norm, so only their direction matters
and a fixed norm makes the learning rate a fixed angle per step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)

# The quintic iteration's coefficients (Jordan): they push singular values to about 0.7-1.2
# in a few steps instead of converging slowly to exactly 1, which training does not need.
_NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)


def orthogonalize(matrix: torch.Tensor, steps: int = 3, eps: float = 1e-7) -> torch.Tensor:
    """An approximately semi-orthogonal matrix with ``matrix``'s singular vectors."""
    a, b, c = _NEWTON_SCHULZ
    x = matrix / (matrix.norm() + eps)  # the top singular value is now at most 1
    wide = x.size(0) <= x.size(1)
    if not wide:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x if wide else x.T


class Muon(torch.optim.Optimizer):
    """Nesterov-momentum SGD; groups with ``orthogonal=True`` step along the orthogonalised momentum.

    Orthogonal groups are for weights followed by a normalisation layer (their norm is reset to
    sqrt(out_channels) before each step, and they get no weight decay, which would do nothing).
    """

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, orthogonal=False))

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        for group in self.param_groups:
            momentum, orthogonal = group["momentum"], group["orthogonal"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                if group["weight_decay"] and not orthogonal:
                    grad = grad.add(param, alpha=group["weight_decay"])
                state = self.state[param]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = grad.clone()
                else:
                    state["momentum_buffer"].mul_(momentum).add_(grad)
                update = grad.add(state["momentum_buffer"], alpha=momentum)
                if orthogonal:
                    param.mul_(len(param) ** 0.5 / param.norm().clamp_min(1e-12))
                    update = orthogonalize(update.reshape(len(update), -1).float()).view_as(param).to(param.dtype)
                param.add_(update, alpha=-group["lr"])


def lr_factor(schedule: str, step: int, total_steps: int, warmup_steps: int) -> float:
    """The learning-rate multiplier at ``step`` (0-based) of ``total_steps``."""
    if schedule == "constant":
        return 1.0
    if schedule == "step":  # divide by 10 at 50% and 75% of training
        return 0.1 ** sum(step >= total_steps * m for m in (0.5, 0.75))
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return max(1.0 - progress, 0.0)  # onecycle: linear warm-up, then linear decay to zero


def parameter_groups(model: nn.Module, lr: float, weight_decay: float, norm_lr_scale: float
                     ) -> list[dict[str, Any]]:
    """Trainable parameters, with normalisation layers' own at ``norm_lr_scale`` times the rate.

    Their weight decay is divided by the same factor, so the decay per step (lr x decay)
    stays that of the other weights: with batch norm, a large rate for the shifts
    speeds training up (airbench uses 64x) without shrinking them faster.
    """
    norm_ids = {id(p) for m in model.modules() if isinstance(m, NORM_LAYERS) for p in m.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    norms = [p for p in trainable if id(p) in norm_ids]
    others = [p for p in trainable if id(p) not in norm_ids]
    groups = [dict(params=others, lr=lr, base_lr=lr, weight_decay=weight_decay)]
    if norms:
        groups.append(dict(params=norms, lr=lr * norm_lr_scale, base_lr=lr * norm_lr_scale,
                           weight_decay=weight_decay / norm_lr_scale))
    return [g for g in groups if g["params"]]


def split_filters(groups: list[dict[str, Any]], lr: float, momentum: float) -> list[dict[str, Any]]:
    """``groups`` with the conv filters moved into their own orthogonal (Muon) group."""
    filters = [p for g in groups for p in g["params"] if p.ndim == 4]
    rest = [{**g, "params": [p for p in g["params"] if p.ndim != 4]} for g in groups]
    muon = dict(params=filters, lr=lr, base_lr=lr, momentum=momentum, weight_decay=0.0, orthogonal=True)
    return [g for g in [*rest, muon] if g["params"]]


class Lookahead:
    """Airbench's lookahead: every few steps the slow copy moves towards the weights, and
    the weights jump back to it. Early on the decay is near 0 (plain SGD); it grows as
    the learning rate falls, averaging out the noise of the last steps."""

    def __init__(self, model: nn.Module) -> None:
        self.slow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        for key, value in model.state_dict().items():
            if key in self.slow:
                self.slow[key].lerp_(value, 1 - decay)
                value.copy_(self.slow[key])
