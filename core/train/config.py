"""The training configuration: one dataclass shared by the command line and the Train page.

``validate()`` refuses bad values with messages a person can act on, before any
data is loaded or any thread is started.
"""

from __future__ import annotations

import json
import math
import os
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from core import checkpoints, data, hints, models, noise, paths
from core.own_data import UploadLimits, is_image_folder

OPTIMIZERS = ("sgd", "adam", "adamw", "muon")  # muon: the fast net (core.train.optim)
MUON_ARCHS = ("fastnet",)  # every conv filter feeds a batch norm, as Muon's renormalisation needs
SCHEDULES = ("constant", "step", "cosine", "onecycle")
# The words the Train page shows for each optimizer and schedule.
OPTIMIZER_LABELS = {"sgd": "SGD (Nesterov)", "adam": "Adam", "adamw": "AdamW", "muon": "Muon (conv filters) + SGD"}
SCHEDULE_LABELS = {"onecycle": "one-cycle (warm-up, linear decay)", "cosine": "cosine (with warm-up)",
                   "step": "step (÷10 twice)", "constant": "constant"}
# Each loss with the words the Train page shows for it; chroma_ce*: binned colorizers only.
LOSSES = {
    "mse": "MSE",
    "l1": "L1",
    "psnr": "PSNR per image (the mean the tables report)",
    "chroma_ce": "chroma bins (cross-entropy)",
    "chroma_ce_rebalanced": "chroma bins, rare colours boosted",
}
TASK_DATASETS = {
    "classification": ("cifar10", "mnist", "fashion_mnist"),
    "denoising": ("cifar10", "mnist", "fashion_mnist"),
    "colorization": ("cifar10",),
}


class ConfigError(ValueError):
    """A configuration that cannot run; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class TrainConfig:
    task: str = "classification"
    arch: str = "resnet18"
    arch_args: dict[str, Any] = field(default_factory=dict)
    dataset: str = "cifar10"
    epochs: int = 10
    batch_size: int = 256
    subset: int | None = None  # train on this many images only (quick runs); None: all
    val_size: int = 5000  # held out of the training split for validation
    val_share: float | None = None  # image folders: this share of each class held out (default 0.2; 0 beside a test/)
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9  # SGD and Muon's other parameters (Nesterov)
    muon_lr: float = 0.12  # Muon: the conv filters' rate (a fraction of their norm per step)
    muon_momentum: float = 0.8  # Muon: the conv filters' momentum
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    warmup_epochs: float = 1.0  # linear warm-up (onecycle, cosine)
    label_smoothing: float = 0.0  # classification only
    norm_lr_scale: float = 1.0  # learning-rate multiplier for normalisation layers' parameters (airbench: 64)
    lookahead: bool = False  # pull the weights towards a slow moving average every 5 steps (airbench)
    whiten_bias_epochs: int | None = None  # fast net: train the whitening bias this many epochs, then freeze it
    augment: bool = True  # random 2-pixel translation and horizontal flips
    alternate_flips: bool = False  # flip each image in every other epoch instead of at random
    tta: bool = False  # classification: also report test metrics with flip-and-shift test-time augmentation
    grey: bool = False  # denoising: train and test on the images' BT.601 grey (a denoiser for grey photos)
    loss: str = "mse"  # denoising / colorization
    noise: str = "gaussian"  # denoising: the noise kind, or a mix of kinds and levels ("blind", "impulse": core.noise)
    noise_level: float = 25.0  # denoising: the strength (see core.noise)
    noise_max_level: float | None = None  # denoising: draw each image's level up to this (blind denoisers)
    seed: int = 0
    device: str | None = None  # None: best available (cuda, mps, cpu)
    amp: bool = True  # mixed precision where the device supports it (CUDA)
    channels_last: bool = True
    compile: bool = False  # torch.compile the model
    name: str | None = None  # checkpoint name; default derived from task, arch and time
    out: str | None = None  # checkpoint folder; default the app's user checkpoint folder
    resume: str | None = None  # a checkpoint (name or path) to continue from
    init_from: str | None = None  # a checkpoint whose weights start a new run (a fine-tune: fresh optimizer)
    head_epochs: int = 0  # a classifier started from one with other classes: epochs training only its new head
    teacher: str | None = None  # colorization: classifiers (comma-separated) whose view of the original to keep
    teacher_weight: float = 1.0  # colorization: the teacher's share of the loss
    max_hints: int = hints.MAX_TRAINING_HINTS  # hint colorizers: most true-colour hints a training image reveals
    max_minutes: float | None = None  # a time budget: the schedule decays by the clock and the run ends on it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError([f"Unknown setting(s): {', '.join(unknown)}."])
        return cls(**values)

    def validate(self) -> TrainConfig:
        """Return self if runnable; raise ConfigError listing every problem otherwise."""
        problems: list[str] = []

        def number(name: str, low: float, high: float, integer: bool = False, optional: bool = False) -> None:
            value = getattr(self, name)
            if value is None and optional:
                return
            wrong_type = isinstance(value, bool) or not isinstance(value, int | float)
            if wrong_type or (integer and not isinstance(value, int)):
                problems.append(f"{name} must be {'a whole number' if integer else 'a number'}, not {value!r}.")
            elif not (math.isfinite(value) and low <= value <= high):
                problems.append(f"{name} must be between {low:g} and {high:g}, not {value!r}.")

        if self.task not in models.TASKS:
            problems.append(f"Unknown task {self.task!r}; choose one of {', '.join(models.TASKS)}.")
        else:
            try:
                arch = models.get_architecture(self.arch)
                if arch.task != self.task:
                    problems.append(f"{self.arch} is a {arch.task} model, not a {self.task} one.")
                known = {o.name for o in arch.options}
                for key, value in (self.arch_args or {}).items():
                    option = next((o for o in arch.options if o.name == key), None)
                    if option is None:
                        offered = ", ".join(sorted(known)) or "none"
                        problems.append(f"{self.arch} has no option {key!r}; it has {offered}.")
                    elif option.choices and value not in option.choices:
                        problems.append(f"{key} must be one of {option.choices}, not {value!r}.")
                    elif option.minimum is not None and (
                        isinstance(value, bool) or not isinstance(value, int | float)
                        or not option.minimum <= value <= (option.maximum or math.inf)
                    ):
                        problems.append(
                            f"{key} must be between {option.minimum:g} and {option.maximum:g}, not {value!r}.")
            except ValueError as error:
                problems.append(str(error))
            folder = is_image_folder(self.dataset)
            if folder and self.task != "classification":
                problems.append("An image folder (--dataset PATH) trains classifiers only.")
            elif not folder and self.dataset not in TASK_DATASETS[self.task]:
                problems.append(f"{self.task} trains on {', '.join(TASK_DATASETS[self.task])} or, for "
                                f"classification, a folder of class folders; not {self.dataset!r}.")
        if self.dataset not in data.DATASETS and not is_image_folder(self.dataset):
            problems.append(f"Unknown dataset {self.dataset!r}: neither a dataset name nor a folder.")
        number("epochs", 1, 1000, integer=True)
        number("batch_size", 1, 8192, integer=True)
        number("subset", 1, 10_000_000, integer=True, optional=True)
        number("val_size", 0, 100_000, integer=True)
        number("val_share", 0, 0.9, optional=True)
        number("head_epochs", 0, 1000, integer=True)
        number("lr", 1e-7, 10)
        number("momentum", 0, 0.999)
        number("weight_decay", 0, 1)
        number("muon_lr", 1e-5, 10)
        number("muon_momentum", 0, 0.999)
        number("warmup_epochs", 0, 1000)
        number("label_smoothing", 0, 0.5)
        number("norm_lr_scale", 0.01, 1000)
        number("seed", 0, 2**31 - 1, integer=True)
        number("whiten_bias_epochs", 0, 1000, integer=True, optional=True)
        number("max_minutes", 0.01, 10_000, optional=True)
        number("teacher_weight", 0, 1e6)
        number("max_hints", 0, 1024, integer=True)
        if self.teacher is not None and self.task != "colorization":
            problems.append("A teacher guides colorizers only.")
        if self.resume is not None and self.init_from is not None:
            problems.append("Resume a run or start one from other weights (init_from), not both.")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"Unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}.")
        elif self.optimizer == "muon" and self.arch not in MUON_ARCHS:
            problems.append(f"The muon optimizer trains {', '.join(MUON_ARCHS)} only (it needs every conv filter "
                            "to feed a batch norm).")
        if self.schedule not in SCHEDULES:
            problems.append(f"Unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}.")
        if self.loss not in LOSSES:
            problems.append(f"Unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}.")
        elif self.loss.startswith("chroma_ce") and not (self.task == "colorization" and self.arch_args.get("binned")):
            problems.append(f"The {self.loss} loss trains binned colorizers only: set the colorizer's binned option.")
        if self.task == "denoising" and self.noise not in noise.MIXES:
            try:
                noise.NoiseSpec(self.noise, self.noise_level)
                if self.noise_max_level is not None:
                    noise.NoiseSpec(self.noise, self.noise_max_level)
            except ValueError as error:
                problems.append(str(error))
        if self.grey and self.task != "denoising":
            problems.append("grey trains denoisers only (colorizers already see grey, classifiers take a grey "
                            "dataset such as MNIST).")
        unsafe_name = not self.name or any(c in self.name for c in "/\\\0") or self.name.startswith(".")
        if self.name is not None and unsafe_name:
            problems.append(f"name {self.name!r} cannot be used as a file name.")
        if problems:
            raise ConfigError(problems)
        return self


@dataclass(frozen=True)
class ServerLimits:
    """What a visitor may start on a shared server, read from the environment (unset: no cap).

    ``CIFAR_LAB_MAX_EPOCHS``, ``CIFAR_LAB_MAX_MINUTES``, ``CIFAR_LAB_MAX_TRAIN_IMAGES``,
    ``CIFAR_LAB_MAX_PARAMS``, ``CIFAR_LAB_MAX_MEMORY_MB`` (the estimated peak of a run, and the
    hard limit its process runs under), and for "Your images" runs ``CIFAR_LAB_MAX_UPLOAD_FILES``
    and ``CIFAR_LAB_MAX_UPLOAD_MB``. The job manager applies them to every run it starts,
    whatever the form sent, so the caps hold on the server and not only in the browser. On an
    uncapped server ``CIFAR_LAB_ANYONE_CAN_STOP=1`` lets any visitor stop a run; a capped one
    always keeps a run to the session that started it.
    """

    max_epochs: int | None = None
    max_minutes: float | None = None
    max_train_images: int | None = None
    max_params: int | None = None
    max_memory_mb: float | None = None
    max_upload_files: int | None = None
    max_upload_mb: float | None = None
    anyone_can_stop: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerLimits:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable, kind in (("max_epochs", "CIFAR_LAB_MAX_EPOCHS", int),
                                     ("max_minutes", "CIFAR_LAB_MAX_MINUTES", float),
                                     ("max_train_images", "CIFAR_LAB_MAX_TRAIN_IMAGES", int),
                                     ("max_params", "CIFAR_LAB_MAX_PARAMS", int),
                                     ("max_memory_mb", "CIFAR_LAB_MAX_MEMORY_MB", float),
                                     ("max_upload_files", "CIFAR_LAB_MAX_UPLOAD_FILES", int),
                                     ("max_upload_mb", "CIFAR_LAB_MAX_UPLOAD_MB", float)):
            text = environ.get(variable, "").strip()
            if not text:
                continue
            try:
                value = kind(text)
            except ValueError:
                raise ValueError(f"{variable}={text!r} is not a {'whole ' if kind is int else ''}number.") from None
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{variable} must be above zero, not {text!r}.")
            values[name] = value
        values["anyone_can_stop"] = environ.get("CIFAR_LAB_ANYONE_CAN_STOP", "").strip().lower() in ("1", "true", "yes")
        return cls(**values)

    @classmethod
    def from_dockerfile(cls, path: str | os.PathLike[str]) -> ServerLimits:
        """The caps a Dockerfile's ``ENV CIFAR_LAB_...=value`` lines set (the Space's, for tests and benchmarks)."""
        environment = {}
        for line in Path(path).read_text().splitlines():
            for word in line.replace("\\", " ").split():
                if word.startswith("CIFAR_LAB_") and "=" in word:
                    key, value = word.split("=", 1)
                    environment[key] = value
        return cls.from_env(environment)

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.max_epochs, self.max_minutes, self.max_train_images, self.max_params,
                                           self.max_memory_mb))

    def upload_limits(self) -> UploadLimits:
        """What one "Your images" run may upload: the server's caps, never above the hard limits."""
        hard = UploadLimits()
        return UploadLimits(min(self.max_upload_files or hard.max_files, hard.max_files),
                            min(self.max_upload_mb or hard.max_total_mb, hard.max_total_mb))

    @property
    def owner_only_stop(self) -> bool:
        """Whether only the session that started a run may stop it (always, on a capped server)."""
        return self.active or not self.anyone_can_stop

    def describe(self) -> str:
        """The caps as a sentence for the Train page; empty when there are none."""
        parts = []
        if self.max_epochs is not None:
            parts.append(f"{self.max_epochs} epochs")
        if self.max_train_images is not None:
            parts.append(f"{self.max_train_images:,} training images")
        if self.max_params is not None:
            parts.append(f"{self.max_params / 1e6:g}M parameters")
        if self.max_memory_mb is not None:
            parts.append(f"{self.max_memory_mb:,.0f} MB of memory")
        if self.max_minutes is not None:
            parts.append(f"{self.max_minutes:g} minutes of training (the learning rate decays by the clock, so a "
                         "longer run ends at the limit as a finished model; then a test-set evaluation without "
                         "test-time augmentation)")
        return f"This server allows at most {', '.join(parts)} per run." if parts else ""

    def apply(self, config: TrainConfig) -> TrainConfig:
        """``config`` with the time cap set; ConfigError if it asks for more than the server allows."""
        if not self.active:
            return config
        problems = []
        if self.max_epochs is not None and config.epochs > self.max_epochs:
            problems.append(f"This server allows at most {self.max_epochs} epochs per run, not {config.epochs}.")
        if self.max_train_images is not None and config.subset is not None and config.subset > self.max_train_images:
            problems.append(f"This server trains on at most {self.max_train_images:,} images per run, "
                            f"not {config.subset:,}.")
        if any(value is not None for value in (config.out, config.resume, config.teacher)) or not (
                config.init_from is None or checkpoints.is_plain_name(config.init_from)):
            problems.append("On this server runs are saved to the app's own folder and cannot read other files "
                            "(out, resume, teacher; init_from only by checkpoint name).")
        if is_image_folder(config.dataset) and not Path(config.dataset).resolve().is_relative_to(
                (paths.app_home() / "jobs").resolve()):
            problems.append("On this server a run trains on images uploaded for it, not on the server's folders.")
        if self.max_params is not None or self.max_memory_mb is not None:
            from core.train.resources import estimate  # builds the model on the meta device: no memory used

            cost = estimate(config)
            if self.max_params is not None and cost.params > self.max_params:
                problems.append(f"This server trains models of at most {self.max_params / 1e6:g}M parameters; "
                                f"this one has {cost.params / 1e6:.1f}M.")
            if self.max_memory_mb is not None and cost.peak_mb > self.max_memory_mb:
                problems.append(f"This run would need about {cost.peak_mb:,.0f} MB of memory, more than the "
                                f"{self.max_memory_mb:,.0f} MB this server allows per run; lower the batch size "
                                "or the width.")
        if problems:
            raise ConfigError(problems)
        capped = {}
        if self.max_train_images is not None and config.subset is None:  # "all images" means all it may have
            capped["subset"] = self.max_train_images
        if self.max_minutes is not None:
            capped["max_minutes"] = min(config.max_minutes or math.inf, self.max_minutes)
            # The final test-set evaluation runs after the time cap: six augmented views of 10,000 images
            # would take a ResNet-18 minutes on two cores, so a capped run measures the plain view only.
            capped["tta"] = False
        return replace(config, **capped)


def readable(value: float, digits: int = 6) -> float:
    """``value`` to ``digits`` significant digits: a derived rate (1.465e-3 x 1000) reads 1.465 in a run's
    command, not 1.4649999999999999, by a change far below anything training notices."""
    return float(f"{value:.{digits}g}")


# The airbench recipe (KellerJordan/cifar10-airbench), written for a loss averaged over the batch:
# its lr of 11.5 per 1024 images with Nesterov momentum 0.85 is 1.465e-3 per image, and its decay
# of 0.0153 per 1024 images, decoupled from the rate, is 0.0153 / 11.5 relative to it.
AIRBENCH = dict(optimizer="sgd", momentum=0.85, weight_decay=readable(0.0153 / 11.5), norm_lr_scale=64.0,
                lookahead=True, schedule="onecycle", label_smoothing=0.2, augment=True, alternate_flips=True, tta=True)

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # task: preset label -> settings layered over TrainConfig's defaults
    "classification": {
        # Freezing the whitening bias after the first epoch (airbench trains it for 3 of 10) skips the
        # largest feature map's backward pass from then on: about 12% faster steps. Muon on the conv
        # filters (airbench94_muon's optimizer, at its batch-1000 settings) added 0.8 points with TTA over
        # SGD in the same 5 epochs; 46,000 of the 48,000 training images keep the run under 10 minutes.
        # A sixth epoch (bf16 autocast pays for it on CPUs that have it) lifted plain accuracy from 89.61% and
        # 89.34% (seeds 0, 1) to 90.18% and above, in 0.73 of the 5-epoch fp32 run's time (bench/quick_train.py).
        "Quick": dict(AIRBENCH, arch="fastnet", arch_args={"width": 32}, epochs=6, subset=46_000, val_size=2000,
                      batch_size=1000, optimizer="muon", muon_lr=0.12, muon_momentum=0.8, lr=readable(1.465e-3 * 1000),
                      warmup_epochs=1.38, whiten_bias_epochs=1),
        "Full": dict(AIRBENCH, arch="fastnet", arch_args={}, epochs=12, subset=None, val_size=0, batch_size=1024,
                     lr=readable(1.465e-3 * 1024), warmup_epochs=2.76),
    },
    "denoising": {
        "Quick": dict(arch="conv_dae", arch_args={"width": 32}, dataset="mnist", epochs=2, subset=10_000,
                      batch_size=128, optimizer="adam", lr=2e-3, schedule="cosine", noise="gaussian",
                      noise_level=50.0, augment=False),
        "Full": dict(arch="conv_dae", arch_args={}, dataset="mnist", epochs=20, subset=None, batch_size=128,
                     optimizer="adam", lr=2e-3, schedule="cosine", noise="gaussian", noise_level=127.5,
                     augment=False),
    },
    "colorization": {
        "Quick": dict(arch="unet_colorizer", arch_args={"width": 16}, epochs=2, subset=10_000, batch_size=128,
                      optimizer="adam", lr=2e-3, schedule="cosine", loss="l1"),
        "Full": dict(arch="unet_colorizer", arch_args={"binned": True}, epochs=25, subset=None, val_size=0,
                     batch_size=256, optimizer="adam", lr=2e-3, schedule="cosine", loss="chroma_ce"),
    },
}
PRESET_NOTES: dict[str, dict[str, str]] = {
    "classification": {
        "Quick": "The fast net at width 32 with the airbench recipe and Muon, 6 epochs on 46,000 images: about "
                 "2.5 minutes on a 2-core AMD EPYC for about 90% test accuracy without test-time augmentation "
                 "(bench/quick_train.py measures it).",
        "Full": "The shipped fast net's recipe: 12 epochs of the airbench recipe, about 75 minutes on a 2-core CPU, "
                "minutes on a GPU.",
    },
    "denoising": {
        "Quick": "A small conv autoencoder on 10,000 MNIST digits: a few minutes on a CPU.",
        "Full": "The conv autoencoder on all of MNIST for 20 epochs.",
    },
    "colorization": {
        "Quick": "A width-16 U-Net colorizer on 10,000 images: a few minutes on a CPU.",
        "Full": "The shipped faithful colorizer's recipe: chroma classified into bins, 25 epochs. About 7 minutes "
                "on an H100 GPU; hours on a 2-core CPU.",
    },
}


# "Your images": a few dozen pictures per class, so the run fine-tunes the shipped fast net (93.7% on
# CIFAR-10) instead of learning features from scratch: a new head alone for 5 epochs, then the whole net.
# bench/own_data.py chose it on Fashion-MNIST classes 0-4 (20 per class, 3 draws of the images): test-time
# augmentation added 0.5 points for 19 of the run's 50 seconds, which more epochs of training use better;
# batch 16 beat 32 by about 1.5 points; label smoothing 0.2 and lr 0.02 beat 0.1 and 0.05. The time budget
# bounds larger folders (50 per class) to the same minute.
OWN_IMAGES = dict(task="classification", arch="fastnet", init_from="fastnet-cifar10", epochs=60, head_epochs=5,
                  batch_size=16, optimizer="sgd", lr=0.02, momentum=0.9, weight_decay=5e-4, schedule="cosine",
                  warmup_epochs=0.0, label_smoothing=0.2, augment=True, tta=False, val_size=0, max_minutes=0.65)
OWN_IMAGES_NOTE = ("Fine-tunes the shipped fast net (CIFAR-10, 93.7%) on your classes: a new head on its features for "
                   "5 epochs, then the whole net, within 40 seconds of training. Images are seen as CIFAR-10's are: "
                   "centre-cropped square, 32 x 32.")


def own_images_preset(**settings: Any) -> TrainConfig:
    """The "Your images" recipe, with ``settings`` (the dataset folder at least) over it."""
    return TrainConfig(**(OWN_IMAGES | settings))


def preset(task: str, label: str) -> TrainConfig:
    """A TrainConfig for ``task`` with the preset ``label`` applied."""
    return TrainConfig(task=task, **PRESETS[task][label])


# The optimisation settings that belong to an architecture rather than to a preset's length.
RECIPE_FIELDS = ("optimizer", "lr", "momentum", "weight_decay", "batch_size", "schedule", "warmup_epochs",
                 "label_smoothing", "norm_lr_scale", "lookahead", "whiten_bias_epochs", "loss")
# Architectures without a shipped checkpoint to learn from: a standard recipe for each.
FALLBACK_RECIPES: dict[str, dict[str, Any]] = {
    "resnet18": dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, batch_size=128, schedule="onecycle",
                     warmup_epochs=1.0, label_smoothing=0.1, norm_lr_scale=1.0, lookahead=False,
                     whiten_bias_epochs=None),
}


def optimizers_for(arch: str) -> list[str]:
    """The optimizers an architecture can train with: Muon only where every conv filter feeds a batch norm."""
    return [name for name in OPTIMIZERS if name != "muon" or arch in MUON_ARCHS]


def lr_for_batch(lr: float, tuned_batch: int, batch: int, optimizer: str) -> float:
    """``lr``, tuned at ``tuned_batch``, for a run at ``batch``: in proportion to the batch for SGD and Muon
    (Goyal et al. 2017), to its square root for Adam and AdamW, as timm scales its base learning rate."""
    ratio = batch / tuned_batch
    return readable(lr * (ratio if optimizer in ("sgd", "muon") else math.sqrt(ratio)))


def form_lr(typed: float, preset: TrainConfig, batch: int, optimizer: str) -> tuple[float, str | None]:
    """The learning rate a form's run uses, and a sentence when it differs from what was typed: a rate left as
    ``preset`` tuned it follows a changed batch size (``lr_for_batch``); one typed in is kept."""
    if typed != preset.lr or batch == preset.batch_size:
        return typed, None
    lr = lr_for_batch(preset.lr, preset.batch_size, batch, optimizer)
    return lr, (f"Learning rate scaled from {preset.lr:g} (tuned for batch {preset.batch_size}) to {lr:.4g} "
                f"for batch {batch}. Set it yourself to train at another rate.")


def for_architecture(config: TrainConfig, arch: str) -> TrainConfig:
    """``config`` (a preset) for another architecture: its length and data stay, its optimisation becomes the
    recipe that trained ``arch``'s shipped checkpoint (or a standard one), so a visitor who switches from the
    fast net's Quick preset (Muon, lr 1.47 at batch 1000) to another net does not start a run that diverges."""
    if arch == config.arch:
        return config
    shipped = [m for m in checkpoints.list_checkpoints(config.task)
               if m["architecture"] == arch and checkpoints.is_shipped(m["path"])]
    recipe = shipped[0]["recipe"] if shipped else FALLBACK_RECIPES.get(arch, {})
    changes = {key: recipe[key] for key in RECIPE_FIELDS if key in recipe}
    if changes.get("optimizer", config.optimizer) == "muon" and arch not in MUON_ARCHS:
        changes["optimizer"] = "sgd"
    return replace(config, arch=arch, arch_args={}, **changes)


def config_to_argv(config: TrainConfig) -> list[str]:
    """The arguments of ``python -m core.train`` that reproduce ``config`` (defaults left out)."""
    defaults = TrainConfig()
    argv: list[str] = []
    for key, value in config.to_dict().items():
        always_shown = key in ("task", "arch", "dataset", "epochs")
        if key == "arch_args" or (value == getattr(defaults, key) and not always_shown):
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else f"--no-{key.replace('_', '-')}")
        elif value is not None:
            argv += [flag, str(value)]
    for key, value in sorted(config.arch_args.items()):
        argv += ["--arch-arg", f"{key}={json.dumps(value)}"]
    return argv


def config_to_command(config: TrainConfig) -> str:
    """The command line that reproduces ``config``."""
    return shlex.join(["python", "-m", "core.train", *config_to_argv(config)])


def torchrun_form(command: str, processes: int = 2) -> str:
    """``command`` (``python -m core.train ...``) as the same run on ``processes`` GPUs through torchrun.

    The batch size stays the global one (each process takes its share), so the run learns alike.
    """
    prefix = "python -m core.train"
    if not command.startswith(prefix):
        raise ValueError(f"Not a training command: {command[:40]!r}")
    return f"torchrun --standalone --nproc_per_node {processes} -m core.train{command[len(prefix):]}"
