"""What differs between tasks: how a batch becomes (input, target), the loss, the metrics.

Adding a task means adding one class here and a name in ``TASKS``. Metrics are
returned as *sums* over the batch so they can be added across batches and
all-reduced across processes before dividing by the count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core import checkpoints, color, hints, metrics, noise
from core.train.config import TrainConfig


class Task:
    name: str
    headline: str  # the metric shown first and written as `test <headline>=...`
    higher_is_better = True

    def __init__(self, config: TrainConfig, model: torch.nn.Module | None = None) -> None:
        self.config = config

    def prepare(self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metric_sums(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-batch sums as 0-d tensors: adding them up needs no device sync per batch."""
        raise NotImplementedError

    @staticmethod
    def finalize(sums: dict[str, float | torch.Tensor], count: int) -> dict[str, float]:
        """Turn summed metrics into means (and dataset-level PSNR from summed MSE)."""
        result = {key: float(value) / max(count, 1) for key, value in sums.items() if key != "mse"}
        if "mse" in sums:
            result["psnr_dataset"] = metrics.psnr_from_mse(float(sums["mse"]) / max(count, 1))
        return result


class Classification(Task):
    name, headline = "classification", "accuracy"

    def prepare(self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
        return images, labels

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.float(), target, label_smoothing=self.config.label_smoothing)

    def metric_sums(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"accuracy": (output.argmax(1) == target).sum()}


def per_image_psnr_loss(output: torch.Tensor, target: torch.Tensor, floor: float = 1e-5) -> torch.Tensor:
    """Minus the mean per-image PSNR, the figure the denoising tables report.

    MSE minimises the error of the whole set, so a few hard images dominate it; the log of each
    image's own error weights every image by 1 / its error, as the mean of per-image PSNRs does.
    ``floor`` (50 dB) keeps a near-perfect image from taking an unbounded weight.
    """
    return 10 * torch.log10(metrics.per_image_mse(output, target) + floor).mean()


class ImageToImage(Task):
    """A task whose target is the clean image itself: a pixel loss (L1 or MSE) and PSNR per image and per set."""

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        output = output.float()
        if self.config.loss == "psnr":
            return per_image_psnr_loss(output, target)
        return F.l1_loss(output, target) if self.config.loss == "l1" else F.mse_loss(output, target)

    def metric_sums(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        output = output.float().clamp(0, 1)
        return {"psnr": metrics.psnr(output, target).sum(), "mse": metrics.per_image_mse(output, target).sum()}


class Denoising(ImageToImage):
    name, headline = "denoising", "psnr"

    def __init__(self, config: TrainConfig, model: torch.nn.Module | None = None) -> None:
        super().__init__(config, model)
        self.spec = None if config.noise in noise.MIXES else noise.NoiseSpec(config.noise, config.noise_level)

    def prepare(self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.spec is None:
            return noise.add_mixed_noise(images, self.config.noise, generator), images
        levels = None
        if self.config.noise_max_level is not None:
            low, high = sorted((self.config.noise_level, self.config.noise_max_level))
            levels = low + (high - low) * torch.rand(len(images), generator=generator)
        return noise.add_noise(images, self.spec, generator, levels), images


class TeacherLoss:
    """KL divergence from frozen classifiers' predictions on the original to their predictions on the colorized image.

    A squared error is content with any colour near the average; the teachers ask that the colours
    keep what a classifier reads from the original, so grass stays green and sky blue. Several
    teachers (names separated by commas) are averaged: colours that satisfy different networks are
    less likely to be tuned to one network's quirks. None should be the network ``bench/colorize.py``
    scores with, so the benchmark stays a fair test.
    """

    def __init__(self, checkpoint: str) -> None:
        self.models = []
        for name in (part.strip() for part in checkpoint.split(",")):
            model, meta = checkpoints.load(name)
            if meta["task"] != "classification":
                raise ValueError(f"The teacher {name!r} is a {meta['task']} model, not a classifier.")
            self.models.append(model.requires_grad_(False))

    def __call__(self, colorized: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        total = colorized.new_zeros((), dtype=torch.float32)
        for model in self.models:
            model.to(colorized.device)
            with torch.no_grad():
                target = F.log_softmax(model(original.float()).float(), dim=1)
            estimate = F.log_softmax(model(colorized.float()).float(), dim=1)
            total = total + F.kl_div(estimate, target, log_target=True, reduction="batchmean")
        return total / len(self.models)


class Colorization(ImageToImage):
    """Luma in, RGB out. A binned colorizer's training output carries its chroma-bin logits
    after the three RGB channels; the chroma losses train those, the others the RGB."""

    name, headline = "colorization", "psnr_dataset"

    def __init__(self, config: TrainConfig, model: torch.nn.Module | None = None) -> None:
        super().__init__(config, model)
        self.takes_hints = bool(getattr(model, "takes_hints", False))
        self.chroma_loss = color.ChromaBinLoss(rebalance=config.loss == "chroma_ce_rebalanced") \
            if config.loss.startswith("chroma_ce") else None
        self.teacher = TeacherLoss(config.teacher) if config.teacher else None
        if model is not None and hasattr(model, "emit_logits"):
            model.emit_logits = self.chroma_loss is not None
            model.rgb_trains = self.chroma_loss is None or self.teacher is not None

    def prepare(self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.takes_hints:
            return color.luma(images), images
        counts = hints.training_counts(len(images), generator, images.device, most=self.config.max_hints)
        return torch.cat([color.luma(images), hints.reveal(images, counts, generator)], dim=1), images

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.chroma_loss is not None and output.shape[1] > 3:
            loss = self.chroma_loss(output[:, 3:], target)
        else:  # evaluation sees RGB only (no logits): its loss is then the RGB error
            loss = super().loss(output[:, :3], target)
        if self.teacher is not None:
            loss = loss + self.config.teacher_weight * self.teacher(output[:, :3], target)
        return loss

    def metric_sums(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return super().metric_sums(output[:, :3], target)


TASKS: dict[str, type[Task]] = {task.name: task for task in (Classification, Denoising, Colorization)}


def make_task(config: TrainConfig, model: torch.nn.Module | None = None) -> Task:
    """The task ``config`` names, for ``model`` (a hint colorizer's batches carry hints)."""
    return TASKS[config.task](config, model)
