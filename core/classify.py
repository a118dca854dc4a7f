"""Classification inference: what the model sees, its probabilities, saliency, test-set views."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

from core import data, models
from core.images import colour_lut, to_tensor

# Views averaged by test-time augmentation: (flip, dy, dx). The untranslated pair
# carries half the weight, the four 1-pixel shifts the other half (as in airbench).
TTA_VIEWS = ((False, 0, 0), (True, 0, 0), (False, 1, 1), (True, 1, 1), (False, -1, -1), (True, -1, -1))
TTA_WEIGHTS = (0.25, 0.25, 0.125, 0.125, 0.125, 0.125)

# A classifier must name one of its classes for any picture. Its answer is called unsure when it responds to
# the picture more weakly than to this share of its own test images (so that share of them is flagged too);
# bench/unsure.py measures how many pictures of other kinds it catches.
UNSURE_SHARE = 0.05
UNSURE_MIN_IMAGES = 200  # fewer test images than this give no usable 5% quantile
# The thresholds are measured where the test accuracy is (core.train.engine.evaluate with ``unsure``):
# sidecar keys test_unsure_below, and test_unsure_below_tta for test-time augmentation.


@dataclass(frozen=True)
class InputFormat:
    """How a classifier sees an image: as many channels, and as many pixels a side, as its training data."""

    channels: int = 3
    size: int = 32

    @classmethod
    def of(cls, meta: dict[str, Any]) -> InputFormat:
        """The format a checkpoint was trained on: channels from its arch_args, side from its dataset."""
        spec = data.DATASETS.get(meta.get("dataset", ""))
        default = spec.channels if spec else 3
        return cls(int(meta.get("arch_args", {}).get("in_channels", default)), spec.size if spec else 32)

    @classmethod
    def of_model(cls, model: nn.Module) -> InputFormat:
        """A model's own channel count (its first convolution's) at the CIFAR side: for callers without a sidecar."""
        first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        return cls(first.in_channels if first is not None else 3)

    @property
    def mode(self) -> str:
        """The PIL mode of what the model sees: "L" (BT.601 luma) for one channel, else "RGB"."""
        return "L" if self.channels == 1 else "RGB"


def input_note(meta: dict[str, Any]) -> str | None:
    """A sentence for a checkpoint that does not see images as CIFAR-10 models do, or None."""
    fmt = InputFormat.of(meta)
    if fmt == InputFormat():
        return None
    spec = data.DATASETS.get(meta["dataset"])
    title = spec.title if spec else meta["dataset"]
    colour = "in grey" if fmt.channels == 1 else "in colour"
    return (f"Trained on {title}: the image is shown to it {colour} at {fmt.size} x {fmt.size}, and it answers "
            f"with {title}'s classes. Only pictures like its training data make sense to it.")


def model_input(image: Image.Image, fmt: InputFormat | None = None) -> Image.Image:
    """The square image a model sees: centre-cropped, resized to its side, and grey (BT.601 luma,
    PIL's "L") for one-channel models. ``fmt`` None: the CIFAR form, 32 x 32 RGB."""
    fmt = fmt or InputFormat()
    return ImageOps.fit(image.convert(fmt.mode), (fmt.size, fmt.size), method=Image.Resampling.LANCZOS)


@torch.no_grad()
def predict_tta(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Logits averaged over flipped and 1-pixel-shifted views of ``images`` (floats in [0, 1])."""
    return predict_tta_and_plain(model, images)[0]


@torch.no_grad()
def predict_tta_and_plain(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(test-time-augmented logits, plain logits): the plain ones are the first view's, so they cost nothing."""
    count = len(images)
    total, plain = None, None
    for (flip, dy, dx), weight in zip(TTA_VIEWS, TTA_WEIGHTS, strict=True):
        shift = torch.tensor([[dy, dx]]).expand(count, 2) if (dy or dx) else None
        flips = torch.full((count,), flip) if flip else None
        view = data.augment(images, shift, flips) if (shift is not None or flips is not None) else images
        logits = model(view).float()
        plain = logits if plain is None else plain
        total = logits * weight if total is None else total + logits * weight
    return total, plain


@torch.no_grad()
def logits(model: nn.Module, image: Image.Image, tta: bool = False, fmt: InputFormat | None = None) -> torch.Tensor:
    """The 1 x K logits for one image of any size, fitted to ``fmt`` first (None: the model's channels at
    32 x 32)."""
    batch = to_tensor(model_input(image, fmt or InputFormat.of_model(model)))
    return (predict_tta(model, batch) if tta else model(batch)).float()


def probabilities(model: nn.Module, image: Image.Image, tta: bool = False,
                  fmt: InputFormat | None = None) -> np.ndarray:
    """Class probabilities for one image of any size (see ``logits``)."""
    return torch.softmax(logits(model, image, tta, fmt), dim=1)[0].numpy()


def probabilities_and_familiarity(model: nn.Module, image: Image.Image, tta: bool = False,
                                  fmt: InputFormat | None = None) -> tuple[np.ndarray, float]:
    """Class probabilities for one image and how strongly the model responds to it (``familiarity``)."""
    found = logits(model, image, tta, fmt)
    return torch.softmax(found, dim=1)[0].numpy(), float(familiarity(found)[0])


def familiarity(logits_: torch.Tensor) -> torch.Tensor:
    """How strongly a classifier responds to each image, whatever the class: the log-sum-exp of its logits
    (minus the free energy of Liu et al. 2020, "Energy-based Out-of-distribution Detection"). Pictures unlike
    its training data tend to score low; bench/unsure.py compares it with the top softmax probability."""
    return torch.logsumexp(logits_.float(), dim=1)


def unsure_threshold(meta: dict[str, Any], tta: bool = False) -> float | None:
    """The checkpoint's measured threshold, or None: a checkpoint from before thresholds existed, or trained
    on too few test images."""
    found = meta.get("metrics", {})
    # A run that did not measure test-time augmentation has only the plain threshold; averaged views lower
    # the familiarity only a little (2.742 to 2.729 for the shipped fast net), so it stands in.
    return found.get("test_unsure_below_tta", found.get("test_unsure_below")) if tta \
        else found.get("test_unsure_below")


def is_unsure(score: float, meta: dict[str, Any], tta: bool) -> bool:
    """Whether an image's familiarity ``score`` is below the checkpoint's threshold (never, where it has none)."""
    threshold = unsure_threshold(meta, tta)
    return threshold is not None and score < threshold


def unsure_note(classes: list[str], dataset_title: str) -> str:
    """What an unsure answer means, in words for the page and the command line."""
    share = f"{1 - UNSURE_SHARE:.0%}"
    return (f"Unsure: the model responds to this picture more weakly than to {share} of its test images "
            f"({dataset_title}). It knows only {len(classes)} classes ({', '.join(classes)}) and must name one, so the "
            f"picture may show none of them.")


def top_classes(probabilities: np.ndarray, classes: list[str], count: int = 3) -> list[tuple[str, float]]:
    """The ``count`` most probable classes, most probable first, with their probabilities."""
    order = np.argsort(probabilities)[::-1][:count]
    return [(classes[i], float(probabilities[i])) for i in order]


def verdicts(model: nn.Module, pictures: list[torch.Tensor], classes: list[str], fmt: InputFormat | None = None,
             meta: dict[str, Any] | None = None) -> list[tuple[str, float, bool]]:
    """The most probable class, its probability and whether the answer is unsure (``is_unsure``; never without
    ``meta``) for each picture (C x H x W floats in [0, 1])."""
    from core.images import to_pil

    found = []
    for picture in pictures:
        probabilities_, score = probabilities_and_familiarity(model, to_pil(picture).convert("RGB"), fmt=fmt)
        best = int(np.argmax(probabilities_))
        found.append((classes[best], float(probabilities_[best]), meta is not None and is_unsure(score, meta, False)))
    return found


def prediction_text(probabilities: np.ndarray, classes: list[str], truth: int | None = None) -> str:
    """The most probable class and its probability in Markdown and, for an image whose class is known, whether
    that is right ("**cat**, 94.6% · correct", "... · wrong: it is a **dog**")."""
    best = int(np.argmax(probabilities))
    text = f"**{classes[best]}**, {probabilities[best]:.1%}"
    if truth is not None:
        text += " · correct" if truth == best else f" · wrong: it is a **{classes[truth]}**"
    return text


def verdict_text(name: str, probability: float, unsure: bool) -> str:
    """A verdict in a few words of Markdown, as the pages write it under a picture."""
    return f"**{name}** {probability:.0%}" + (" (unsure)" if unsure else "")


_SALIENCY_LAYERS: weakref.WeakKeyDictionary[nn.Module, str] = weakref.WeakKeyDictionary()


def saliency_layer(model: nn.Module, fmt: InputFormat | None = None, min_side: int = 6) -> nn.Module:
    """The last convolution whose output is still at least ``min_side`` pixels wide:
    late enough to be semantic, early enough for a map with some resolution."""
    return model.get_submodule(_saliency_layer_name(model, fmt, min_side))


def _saliency_layer_name(model: nn.Module, fmt: InputFormat | None = None, min_side: int = 6) -> str:
    if model not in _SALIENCY_LAYERS:  # a model's format never changes, so the model alone is the key
        fmt = fmt or InputFormat.of_model(model)
        private = models.private_copy(model)  # hooks on the shared model would see other sessions' passes
        sides: list[tuple[str, int]] = []
        for name, module in private.named_modules():
            if isinstance(module, nn.Conv2d):
                module.register_forward_hook(lambda m, i, o, name=name: sides.append((name, o.shape[-1])))
        with torch.no_grad():
            private(torch.zeros(1, fmt.channels, fmt.size, fmt.size))
        wide = [name for name, side in sides if side >= min_side]
        _SALIENCY_LAYERS[model] = wide[-1] if wide else sides[-1][0]
    return _SALIENCY_LAYERS[model]


def saliency(model: nn.Module, image: Image.Image, target: int, layer: nn.Module | None = None,
             fmt: InputFormat | None = None) -> np.ndarray:
    """Grad-CAM (captum's LayerGradCam) for class ``target``: a map in [0, 1] the size of the model's input."""
    from captum.attr import LayerAttribution, LayerGradCam

    fmt = fmt or InputFormat.of_model(model)
    names = {module: name for name, module in model.named_modules()}
    layer_name = names[layer] if layer is not None else _saliency_layer_name(model, fmt)
    private = models.private_copy(model)  # Grad-CAM hooks its layer: never on the model other sessions share
    batch = to_tensor(model_input(image, fmt)).requires_grad_(True)
    cam = LayerGradCam(private, private.get_submodule(layer_name))
    attribution = cam.attribute(batch, target=target, relu_attributions=True)
    heat = LayerAttribution.interpolate(attribution, (fmt.size, fmt.size), interpolate_mode="bilinear")[0, 0]
    heat = heat.detach().clamp_min(0)
    return (heat / heat.max()).numpy() if heat.max() > 0 else heat.numpy()


def overlay(image: Image.Image, heat: np.ndarray, size: int = 256, alpha: float = 0.5,
            fmt: InputFormat | None = None) -> Image.Image:
    """``heat`` (values in [0, 1]) coloured and blended over what the model saw of ``image``, both at ``size``."""
    lut = colour_lut("Turbo")
    seen = model_input(image, fmt).convert("RGB")  # a grey view still gets a coloured heat map
    base = np.asarray(seen.resize((size, size), Image.Resampling.NEAREST), dtype=np.float32)
    heat_image = Image.fromarray((heat * 255).astype(np.uint8))
    heat_big = np.asarray(heat_image.resize((size, size), Image.Resampling.BILINEAR))
    blended = (1 - alpha) * base + alpha * lut[heat_big]
    return Image.fromarray(blended.clip(0, 255).astype(np.uint8))


@dataclass
class TestSetResult:
    predictions: np.ndarray  # N predicted classes
    labels: np.ndarray  # N true classes
    classes: list[str]
    familiarity: np.ndarray | None = None  # N: how strongly the model responded to each image (``familiarity``)

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean())

    def confusion(self) -> np.ndarray:
        """Counts, rows = true class, columns = predicted class."""
        size = len(self.classes)
        return np.bincount(self.labels * size + self.predictions, minlength=size * size).reshape(size, size)

    @property
    def errors(self) -> int:
        """How many test images the model got wrong."""
        return int((self.predictions != self.labels).sum())

    def most_confused(self) -> tuple[int, int]:
        """(true class, predicted class) of the commonest mistake: the pair the page shows first."""
        matrix = self.confusion()
        off_diagonal = matrix - np.diag(np.diag(matrix))
        true_class, predicted = np.unravel_index(off_diagonal.argmax(), matrix.shape)
        return int(true_class), int(predicted)

    def per_class_accuracy(self) -> np.ndarray:
        """Each class's share of its test images classified right."""
        matrix = self.confusion()
        return matrix.diagonal() / matrix.sum(axis=1).clip(min=1)

    def sure_and_unsure(self, meta: dict[str, Any]) -> tuple[float, float, float] | None:
        """(share of unsure answers, accuracy of the others, accuracy of the unsure ones) by ``is_unsure``'s
        rule, or None where the checkpoint has no threshold or the familiarity was not kept."""
        threshold = unsure_threshold(meta)
        if threshold is None or self.familiarity is None:
            return None
        unsure = self.familiarity < threshold
        right = self.predictions == self.labels
        return float(unsure.mean()), float(right[~unsure].mean()) if (~unsure).any() else float("nan"), \
            float(right[unsure].mean()) if unsure.any() else float("nan")

    def indices(self, true_class: int, predicted_class: int) -> np.ndarray:
        """Test-set indices of images of ``true_class`` predicted as ``predicted_class``."""
        return np.flatnonzero((self.labels == true_class) & (self.predictions == predicted_class))


@torch.no_grad()
def evaluate_test_set(model: nn.Module, dataset: data.ImageDataset, batch_size: int = 500,
                      limit: int | None = None) -> TestSetResult:
    """Predictions for every image of ``dataset`` (or its first ``limit``)."""
    model.eval()
    count = len(dataset) if limit is None else min(limit, len(dataset))
    predictions, familiar = [], []
    for start in range(0, count, batch_size):
        batch = dataset.images[start : min(start + batch_size, count)].float().div(255)
        logits_ = model(batch).float()
        predictions.append(logits_.argmax(1))
        familiar.append(familiarity(logits_))
    return TestSetResult(torch.cat(predictions).numpy(), dataset.labels[:count].numpy(), list(dataset.classes),
                         torch.cat(familiar).numpy())
