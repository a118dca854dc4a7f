"""Models behind a small registry: ``build(name, **arch_args)``, ``list_architectures(task)``.

Every model takes float images in [0, 1] (N x C x H x W) and normalises inside
itself. Classifiers return logits; denoisers return the clean estimate, shaped as
the input; colorizers take N x 1 x H x W luma and return N x 3 x H x W RGB.
"""

from torch import nn

from core.models import (  # noqa: F401  (importing registers the models)
    autoencoder,
    colorizers,
    fastnet,
    intermediate,
    resnet,
    staged_cnn,
    unet,
)
from core.models._registry import (
    TASKS,
    Architecture,
    Option,
    build,
    get_architecture,
    list_architectures,
    private_copy,
    register_model,
    transplant,
)

__all__ = ["TASKS", "Architecture", "Option", "build", "get_architecture", "input_channels", "list_architectures",
           "private_copy", "register_model", "transplant"]


def input_channels(model: nn.Module) -> int:
    """The channels a model takes: its own ``in_channels`` (a colorizer's luma plus hint channels), else its
    first convolution's."""
    declared = getattr(model, "in_channels", None)
    if isinstance(declared, int):
        return declared
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
