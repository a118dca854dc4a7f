"""Inside a classifier: what every convolutional block makes of one image, and its first layer's filters.

As CNN Explainer shows, but for any classifier in the registry, a visitor's own included. The
blocks are found from the model's structure (``feature_blocks``), the activations are caught by
forward hooks on a private copy of the model (as Grad-CAM does), so a page's shared, cached model
never carries a hook.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from core import models
from core.classify import InputFormat, model_input
from core.images import colour_lut, to_tensor


@dataclass(frozen=True)
class BlockView:
    """One block's output for one image."""

    name: str  # the module's path in the model
    kind: str  # its class name, e.g. ConvGroup, BasicBlock
    maps: torch.Tensor  # C x H x W, float32
    order: tuple[int, ...]  # channels by mean activation, highest first

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.maps.shape)


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def feature_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The convolutional blocks in the order an image passes them: a top-level module holding
    convolutions, or each conv-holding stage of a top-level ``Sequential`` of stages (a Sequential
    of bare layers, such as a ResNet stem, counts as one block)."""
    blocks = []
    for name, child in model.named_children():
        if not _has_conv(child):
            continue
        parts = [(f"{name}.{key}", part) for key, part in child.named_children() if _has_conv(part)] \
            if isinstance(child, nn.Sequential) else []
        if parts and not any(isinstance(part, nn.Conv2d) for _, part in parts):
            blocks += parts
        else:
            blocks.append((name, child))
    return blocks


@torch.no_grad()
def activations(model: nn.Module, image: Image.Image, fmt: InputFormat | None = None) -> list[BlockView]:
    """Every block's output for ``image`` (fitted to ``fmt`` as the model sees it), on a private copy."""
    fmt = fmt or InputFormat.of_model(model)
    private = models.private_copy(model).eval()
    caught: dict[str, torch.Tensor] = {}
    handles = [module.register_forward_hook(lambda _m, _i, out, name=name: caught.__setitem__(name, out))
               for name, module in feature_blocks(private)]
    try:
        private(to_tensor(model_input(image, fmt)))
    finally:
        for handle in handles:
            handle.remove()
    views = []
    for name, module in feature_blocks(private):
        maps = caught[name][0].float()
        order = torch.argsort(maps.mean(dim=(1, 2)), descending=True).tolist()
        views.append(BlockView(name, type(module).__name__, maps, tuple(order)))
    return views


def first_filters(model: nn.Module) -> torch.Tensor:
    """The first convolution's filters, out x in x k x k, each stretched to [0, 1] for showing as a patch."""
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    weights = conv.weight.detach().float()
    low = weights.amin(dim=(1, 2, 3), keepdim=True)
    high = weights.amax(dim=(1, 2, 3), keepdim=True)
    return (weights - low) / (high - low).clamp_min(1e-8)


def filters_image(filters: torch.Tensor, cell: int = 24, columns: int = 16, gap: int = 2) -> Image.Image:
    """Filters (out x in x k x k in [0, 1]) as a grid of colour patches (grey for one input channel)."""
    count, channels = filters.shape[:2]
    rows = -(-count // columns)
    sheet = Image.new("RGB", (min(count, columns) * (cell + gap) + gap, rows * (cell + gap) + gap), "white")
    for index, patch in enumerate(filters):
        array = (patch[:3] if channels >= 3 else patch[:1].expand(3, -1, -1)).permute(1, 2, 0).numpy()
        tile = Image.fromarray((array * 255).round().astype(np.uint8)).resize((cell, cell), Image.Resampling.NEAREST)
        sheet.paste(tile, (gap + (index % columns) * (cell + gap), gap + (index // columns) * (cell + gap)))
    return sheet


def maps_image(view: BlockView, start: int = 0, count: int = 16, columns: int = 8, cell: int = 64,
               gap: int = 2) -> Image.Image:
    """``count`` channels of a block from rank ``start`` (by mean activation), as coloured maps in a grid.

    Each map is stretched over its own range, so a quiet channel's pattern still shows.
    """
    lut = colour_lut("Viridis")
    channels = view.order[start:start + count]
    rows = max(-(-len(channels) // columns), 1)
    sheet = Image.new("RGB", (columns * (cell + gap) + gap, rows * (cell + gap) + gap), "white")
    for position, channel in enumerate(channels):
        plane = view.maps[channel]
        low, high = float(plane.min()), float(plane.max())
        scaled = ((plane - low) / (high - low) * 255).round() if high > low else torch.zeros_like(plane)
        tile = Image.fromarray(lut[scaled.numpy().astype(np.uint8)].astype(np.uint8))
        sheet.paste(tile.resize((cell, cell), Image.Resampling.NEAREST),
                    (gap + (position % columns) * (cell + gap), gap + (position // columns) * (cell + gap)))
    return sheet


def shape_table(model: nn.Module, views: list[BlockView], fmt: InputFormat | None = None) -> list[dict]:
    """How the image's size and channel count change block by block, from the input on."""
    fmt = fmt or InputFormat.of_model(model)
    rows = [{"block": "input", "kind": "image", "channels": fmt.channels, "height": fmt.size, "width": fmt.size}]
    for view in views:
        channels, height, width = view.shape
        rows.append({"block": view.name, "kind": view.kind, "channels": channels, "height": height, "width": width})
    return rows


# ---- which classes a block's features already separate: linear probes ---------------------------------------
# Images per split when the Classify page's button fits the probes of a checkpoint trained here (the shipped
# ones carry bench/inside.py's, fitted on 10,000 and scored on 10,000): a visitor waits for a fifth of that.
PAGE_PROBE_IMAGES = 2000


@torch.no_grad()
def pooled_features(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> list[torch.Tensor]:
    """Every block's output averaged over space, N x C per block, for uint8 ``images`` (N x C x H x W)."""
    from core import devices

    private = models.private_copy(model).eval()
    blocks = feature_blocks(private)
    caught: dict[str, torch.Tensor] = {}
    handles = [module.register_forward_hook(lambda _m, _i, out, name=name: caught.__setitem__(name, out))
               for name, module in blocks]
    amp = devices.amp_dtype(torch.device("cpu"))
    features: list[list[torch.Tensor]] = [[] for _ in blocks]
    try:
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size].float().div(255)
            with torch.autocast("cpu", dtype=amp) if amp is not None else torch.autocast("cpu", enabled=False):
                private(batch)
            for index, (name, _) in enumerate(blocks):
                features[index].append(caught[name].float().mean(dim=(2, 3)))
    finally:
        for handle in handles:
            handle.remove()
    return [torch.cat(parts) for parts in features]


def fit_probe(features: torch.Tensor, labels: torch.Tensor, classes: int, weight_decay: float = 1e-3,
              steps: int = 100) -> tuple[nn.Linear, torch.Tensor, torch.Tensor]:
    """A softmax regression on standardised ``features`` (L-BFGS, full batch): (layer, mean, std)."""
    mean, std = features.mean(0), features.std(0).clamp_min(1e-6)
    inputs = (features - mean) / std
    torch.manual_seed(0)
    layer = nn.Linear(features.shape[1], classes)
    optimizer = torch.optim.LBFGS(layer.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(layer(inputs), labels) + weight_decay * layer.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return layer, mean, std


@torch.no_grad()
def probe_accuracies(model: nn.Module, train_images: torch.Tensor, train_labels: torch.Tensor,
                     test_images: torch.Tensor, test_labels: torch.Tensor) -> dict[str, float]:
    """Per block, the test accuracy of a linear probe fitted on its pooled features of the training images."""
    classes = int(max(train_labels.max(), test_labels.max())) + 1
    names = [name for name, _ in feature_blocks(model)]
    train_features = pooled_features(model, train_images)
    test_features = pooled_features(model, test_images)
    result = {}
    for name, train_x, test_x in zip(names, train_features, test_features, strict=True):
        with torch.enable_grad():
            layer, mean, std = fit_probe(train_x, train_labels, classes)
        predicted = layer((test_x - mean) / std).argmax(1)
        result[name] = float((predicted == test_labels).float().mean())
    return result
