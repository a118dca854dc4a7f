"""Home's showcase: one live example per page, made by the same calls the pages make.

Each example is computed from a shipped checkpoint (the best of its task, as the pages open on)
and an image everyone has: a CIFAR-10 test image when the dataset is there, else a sample photo
bundled with scikit-image. ``query`` holds the link parameters that open the page on the same image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from torch import nn

from core import checkpoints, classify, colorize, data, denoise, images
from core.noise import NoiseSpec

SHOWN_SIDE = 160  # pixels: a 32 x 32 test image enlarged five times
DENOISE_NOISE = NoiseSpec("gaussian", 25.0)
DENOISE_SEED = 0
# (test image index, sample photo) per page, picked to show what the page does: a cat to name, a ship under
# noise, a horse to colour (+7 dB over grey; the set's mean gain is +1.8 dB, and Home says it is one picked image).
# Each page opens on its own, so a visitor who follows Home's link or opens the page sees the same example.
IMAGES = {"classify": (0, "Chelsea the cat"), "denoise": (1, "Rocket"), "colorize": (48, "Coffee")}


@dataclass
class Example:
    page: str  # "classify", "denoise" or "colorize"
    pictures: list[tuple[Image.Image, str]]  # image and caption, left to right
    summary: str  # one line, markdown
    query: dict[str, str]  # the link parameters that open the page on the same image and model
    checkpoint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def shown(image: Image.Image) -> Image.Image:
    """``image`` at the size the showcase shows it: small ones enlarged to SHOWN_SIDE, large ones shrunk."""
    return images.for_clicking(image, 2 * SHOWN_SIDE)


def shipped_best(task: str) -> dict[str, Any] | None:
    """The shipped checkpoint of ``task`` a page opens on (best first, CIFAR-10 first); None if none ships."""
    shipped = [m for m in checkpoints.list_checkpoints(task) if checkpoints.is_shipped(m["path"])]
    metas = checkpoints.best_first(shipped, "cifar10")
    return metas[0] if metas else None


def example_image(page: str) -> tuple[Image.Image, str, dict[str, str]]:
    """The page's example image, its caption and the link parameters that select it on the page."""
    index, photo = IMAGES[page]
    try:
        test = data.load_dataset("cifar10", "test")
    except (data.DatasetNotFoundError, data.DatasetError):  # missing, or there but unreadable: the photo, then
        return images.sample_photo(photo), photo, {"source": "sample", "photo": photo}
    return test.picture(index), f"test image #{index}: {test.classes[int(test.labels[index])]}", {"image": str(index)}


def classify_example(model: nn.Module, meta: dict[str, Any]) -> Example:
    """The test image's class, its probability and Grad-CAM, as Classify shows them."""
    image, caption, link = example_image("classify")
    fmt = classify.InputFormat.of(meta)
    probabilities = classify.probabilities(model, image, fmt=fmt)
    best = int(probabilities.argmax())
    name = checkpoints.class_names(meta)[best]
    heat = classify.overlay(image, classify.saliency(model, image, best, fmt=fmt), size=SHOWN_SIDE, fmt=fmt)
    return Example("classify", [(shown(classify.model_input(image, fmt)), caption),
                                (heat, f"Grad-CAM: where it looked for \"{name}\"")],
                   f"**{name}**, {probabilities[best]:.1%}", link | {"model": meta["name"]}, meta["name"])


def denoise_example(model: nn.Module, meta: dict[str, Any]) -> Example:
    """The test image under Gaussian noise σ 25 and after the denoiser, with both PSNRs."""
    image, caption, link = example_image("denoise")
    clean = images.to_tensor(classify.model_input(image) if max(image.size) <= 64 else
                             image.resize((128, 128 * image.height // image.width)))[0]
    noisy = denoise.make_noisy(clean, DENOISE_NOISE, DENOISE_SEED)
    result = denoise.denoise_one("model", noisy, model=model, title=meta["name"], clean=clean)
    noisy_psnr, _ = denoise.score(noisy, clean)
    return Example("denoise", [(shown(images.to_pil(noisy)), f"Noisy: {DENOISE_NOISE.label()}, "
                                                               f"{noisy_psnr:.2f} dB"),
                               (shown(images.to_pil(result.image)), f"Denoised: {result.psnr:.2f} dB")],
                   f"PSNR **{noisy_psnr:.2f} → {result.psnr:.2f} dB** ({caption})",
                   link | {"noise": DENOISE_NOISE.kind, "level": f"{DENOISE_NOISE.level:g}", "seed": str(DENOISE_SEED),
                           "denoiser": meta["name"]}, meta["name"], {"psnr": result.psnr, "noisy_psnr": noisy_psnr})


def colorize_example(model: nn.Module, meta: dict[str, Any]) -> Example:
    """The test image in grey and colorized, with the PSNR of each against the original."""
    image, caption, link = example_image("colorize")
    given = colorize.prepare(image)
    result = colorize.colorize_one(model, given)
    grey = images.to_pil(colorize.gray_rgb(given.luma))
    return Example("colorize", [(shown(grey), f"Grey: {result.gray_psnr:.2f} dB"),
                                (shown(images.to_pil(result.image)), f"Colorized: {result.psnr:.2f} dB")],
                   f"PSNR against the original **{result.gray_psnr:.2f} → {result.psnr:.2f} dB** ({caption})",
                   link | {"model": meta["name"]}, meta["name"], {"psnr": result.psnr, "gray_psnr": result.gray_psnr})


@torch.no_grad()
def examples(load: Any = checkpoints.load) -> list[Example]:
    """Every page's example whose task ships a checkpoint; ``load(path) -> (model, meta)``."""
    made = []
    for task, make in (("classification", classify_example), ("denoising", denoise_example),
                       ("colorization", colorize_example)):
        meta = shipped_best(task)
        if task == "denoising":
            metas = [m for m in checkpoints.list_checkpoints(task) if checkpoints.is_shipped(m["path"])]
            chosen = denoise.default_method(metas, DENOISE_NOISE, 3, "cifar10")
            meta = next((m for m in metas if m["path"] == chosen), None)
        if meta is None:
            continue
        model, meta = load(meta["path"])
        made.append(make(model.eval(), meta))
    return made
