"""Models behind a small registry: ``build(name, **arch_args)``, ``list_architectures(task)``.

Every model takes float images in [0, 1] (N x C x H x W) and normalises inside
itself. Classifiers return logits; denoisers return the clean estimate, shaped as
the input; colorizers take N x 1 x H x W luma and return N x 3 x H x W RGB.
"""

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

__all__ = ["TASKS", "Architecture", "Option", "build", "get_architecture", "list_architectures",
           "private_copy", "register_model", "transplant"]
