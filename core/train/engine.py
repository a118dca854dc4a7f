"""The one trainer for every task, on a CPU, a GPU, or several through torchrun.

The loop knows nothing of who listens: it emits events to callbacks (a terminal
progress bar, the Train page's live state, the run store), the Lightning way.
Stop is cooperative (checked every batch); a non-finite loss ends the run as
``diverged``. After every epoch the checkpoint and a resume file are written
atomically by rank 0, so a killed run loses at most the epoch in progress.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from core import checkpoints, color, data, devices, models, own_data, paths
from core.classify import UNSURE_MIN_IMAGES, UNSURE_SHARE, InputFormat, familiarity, predict_tta_and_plain
from core.display import format_headline, metric_name
from core.train import panel, resume
from core.train.config import TrainConfig, config_to_command
from core.train.optim import Lookahead, Muon, lr_factor, parameter_groups, split_filters
from core.train.resume import resume_path
from core.train.tasks import Task, make_task

VALIDATION_SPLIT_SEED = 20_240_601  # fixed, so every run validates on the same images
EVAL_NOISE_SEED = 1234  # fixed noise for validation and test images: comparable across runs
LOOKAHEAD_EVERY = 5  # steps
LOOKAHEAD_DECAY = 0.95**5  # the slow weights' decay at the end of training; it grows as (step / total)^3


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class EpochRecord:
    epoch: int  # 1-based
    train_loss: float
    train_metrics: dict[str, float]
    val_loss: float | None
    val_metrics: dict[str, float]
    seconds: float
    images_per_second: float
    lr: float
    panel: list[list[float]] | None = None  # classification: [class, probability] for each panel image


@dataclass
class RunResult:
    status: str  # finished, stopped, diverged or failed
    message: str
    epochs_completed: int
    history: list[EpochRecord] = field(default_factory=list)
    test_metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None
    seconds: float = 0.0


class Callback:
    """Subscribe to the trainer's events by overriding any of these."""

    def on_train_start(self, trainer: Trainer) -> None: ...
    def on_batch_end(self, trainer: Trainer, step: int, loss: torch.Tensor, batch_size: int) -> None: ...
    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None: ...
    def on_finish(self, trainer: Trainer, result: RunResult) -> None: ...


def split_train_val(images: torch.Tensor, labels: torch.Tensor, val_size: int
                    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Hold ``val_size`` images of the training split out, the same ones in every run."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(VALIDATION_SPLIT_SEED))
    val, train = order[:val_size], order[val_size:]
    return (images[train], labels[train]), (images[val], labels[val])


INPUT_OPTIONS = ("hints", "clip_flags")  # architecture options a fine-tune may switch on: they widen only the input


def default_arch_args(config: TrainConfig, train: data.ImageDataset) -> dict[str, Any]:
    """Dataset-dependent builder arguments (channels, classes, statistics) under the user's."""
    builder = inspect.signature(models.get_architecture(config.arch).builder).parameters
    derived: dict[str, Any] = {}
    if "in_channels" in builder:
        derived["in_channels"] = train.images.shape[1]
    if "num_classes" in builder:
        derived["num_classes"] = len(train.classes)
    if "mean" in builder and "std" in builder:
        floats = train.images[:10_000].float().div(255)
        derived["mean"] = [round(v, 4) for v in floats.mean(dim=(0, 2, 3)).tolist()]
        derived["std"] = [round(v, 4) for v in floats.std(dim=(0, 2, 3)).tolist()]
    return {**derived, **config.arch_args}


@torch.no_grad()
def evaluate(model: nn.Module, task: Task, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 500,
             device: torch.device | str = "cpu", amp: torch.dtype | None = None,
             channels_last: bool = False, tta: bool = False, unsure: bool = False) -> tuple[float, dict[str, float]]:
    """Mean loss and metrics of ``model`` on uint8 ``images``; noise is seeded, so repeatable.

    ``tta`` averages classifier logits over flipped and shifted views (core.classify): the loss
    is then the augmented one, and the metrics come twice, plain and with a ``_tta`` suffix.
    ``unsure`` (classifiers) adds ``unsure_below``: the familiarity below which ``UNSURE_SHARE`` of
    the images fall, the threshold under which the Classify page calls an answer unsure.
    """
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(EVAL_NOISE_SEED)
    loader = data.TensorLoader(images, labels, batch_size, shuffle=False, device=device)
    loss_sum, sums, count = 0.0, {}, 0
    familiar: dict[str, list[torch.Tensor]] = {}  # suffix -> each batch's familiarity, for ``unsure``
    for batch, batch_labels in loader:
        inputs, target = task.prepare(batch, batch_labels, generator)
        if channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with _autocast(torch.device(device), amp):
            output, plain = predict_tta_and_plain(model, inputs) if tta else (model(inputs), None)
        loss_sum += float(task.loss(output, target)) * len(batch)
        batch_sums = task.metric_sums(output, target)
        if plain is not None:
            batch_sums = {f"{key}_tta": value for key, value in batch_sums.items()} | task.metric_sums(plain, target)
        if unsure:
            for suffix, logits in ({"": output} if plain is None else {"": plain, "_tta": output}).items():
                familiar.setdefault(suffix, []).append(familiarity(logits).cpu())
        for key, value in batch_sums.items():
            sums[key] = sums.get(key, 0.0) + value.double()
        count += len(batch)
    model.train(was_training)
    found = task.finalize(sums, count)
    for suffix, scores in familiar.items():
        found[f"unsure_below{suffix}"] = round(float(torch.cat(scores).quantile(UNSURE_SHARE)), 4)
    return loss_sum / max(count, 1), found


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (full disk, read-only folder); the previous one is untouched."""


class Trainer:
    """Train ``config`` once: ``Trainer(config, callbacks).fit()`` returns a RunResult."""

    def __init__(self, config: TrainConfig, callbacks: list[Callback] | tuple[Callback, ...] = (),
                 stop_event: threading.Event | None = None, command: str | None = None) -> None:
        self.config = config.validate()
        self.callbacks = list(callbacks)
        self.stop_event = stop_event or threading.Event()
        self.command = command or config_to_command(config)
        self.rank, self.world_size = 0, 1
        self.device = torch.device("cpu")
        self.step = 0
        self.total_steps = 0
        self.epoch = 0
        self.history: list[EpochRecord] = []
        self.checkpoint_path: Path | None = None
        self.started = 0.0

    # ---- set-up ---------------------------------------------------------------------------------
    def _setup_distributed(self) -> None:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            if not dist.is_initialized():
                backend = "nccl" if torch.cuda.is_available() else "gloo"
                dist.init_process_group(backend)
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
            if torch.cuda.is_available() and self.config.device in (None, "cuda"):
                local = int(os.environ.get("LOCAL_RANK", "0"))
                torch.cuda.set_device(local)
                self.device = torch.device("cuda", local)
                return
        self.device = devices.pick_device(self.config.device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _emit(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)

    # ---- the run ----------------------------------------------------------------------------------
    def fit(self) -> RunResult:
        self.started = time.monotonic()
        config = self.config
        try:
            self._setup_distributed()
            torch.manual_seed(config.seed)
            self._load_data()
            self._build()
            self.task = make_task(config, self.model)
            self._emit("on_train_start")
            status, message = self._loop()
            test_metrics: dict[str, float] = {}
            if status == "finished":
                _, test_metrics = evaluate(self.model, self.task, self.test.images, self.test.labels,
                                           batch_size=max(config.batch_size, 256), device=self.device,
                                           amp=self.amp, channels_last=config.channels_last,
                                           tta=config.tta and config.task == "classification",
                                           unsure=config.task == "classification"
                                           and len(self.test.labels) >= UNSURE_MIN_IMAGES)
                test_metrics = {f"test_{k}": v for k, v in test_metrics.items()}
                self._save(test_metrics)
                metric = self.task.headline  # as the page's tiles read it: "test accuracy 89.91%"
                headline = f"test {metric_name(metric)} {format_headline(metric, test_metrics[f'test_{metric}'])}"
                message = headline if message == "Finished." else f"{message} {headline}"
            result = RunResult(status, message, len(self.history), self.history, test_metrics,
                               str(self.checkpoint_path) if self.checkpoint_path else None,
                               time.monotonic() - self.started)
        except TrainingDiverged as error:
            result = RunResult("diverged", str(error), len(self.history), self.history,
                               checkpoint=str(self.checkpoint_path) if self.checkpoint_path else None,
                               seconds=time.monotonic() - self.started)
        except Exception as error:
            result = RunResult("failed", f"{type(error).__name__}: {error}", len(self.history), self.history,
                               checkpoint=str(self.checkpoint_path) if self.checkpoint_path else None,
                               seconds=time.monotonic() - self.started)
            self._emit("on_finish", result)
            raise
        self._emit("on_finish", result)
        return result

    def _load_data(self) -> None:
        config = self.config
        self.evaluated_on: str | None = None
        self.skipped_files: list[str] = []
        if own_data.is_image_folder(config.dataset):
            full, val_images, val_labels = self._load_folder()
            train_images, train_labels = full.images, full.labels
        else:
            full = data.load_dataset(config.dataset, "train")
            self.test = data.load_dataset(config.dataset, "test")
            if config.val_size >= len(full):
                raise ValueError(f"val_size {config.val_size} leaves no training images out of {len(full)}.")
            (train_images, train_labels), (val_images, val_labels) = split_train_val(
                full.images, full.labels, config.val_size)
        if config.subset is not None:
            train_images, train_labels = train_images[: config.subset], train_labels[: config.subset]
        if config.grey:  # a denoiser for grey photos learns, and is tested, on the same images in grey
            train_images, val_images = color.grey_uint8(train_images), color.grey_uint8(val_images)
            self.test = replace(self.test, images=color.grey_uint8(self.test.images))
        self.train_data = data.ImageDataset(full.name, "train", train_images, train_labels, full.classes, full.source)
        self.val_images, self.val_labels = val_images, val_labels
        self.panel: dict[str, Any] | None = None  # the images whose predictions are shown after every epoch
        if config.task == "classification" and len(val_labels):
            chosen = panel.choose(val_labels)
            self.panel_images = val_images[chosen]
            self.panel = panel.describe(self.panel_images, val_labels[chosen], full.classes)
        per_rank_batch = max(config.batch_size // self.world_size, 1)
        augment = config.augment
        self.loader = data.TensorLoader(
            train_images, train_labels, per_rank_batch, shuffle=True, flip=augment,
            alternate_flips=config.alternate_flips, translate=2 if augment else 0,
            drop_last=len(train_labels) >= 4 * config.batch_size,
            seed=config.seed, device=self.device, rank=self.rank, world_size=self.world_size,
        )

    def _load_folder(self) -> tuple[data.ImageDataset, torch.Tensor, torch.Tensor]:
        """Your images: ``PATH/<class>/`` (a share held out) or ``PATH/train/`` with ``PATH/test/``,
        decoded to the input form of the model the run starts from (CIFAR's 32 x 32 RGB by default)."""
        config = self.config
        source = config.resume or config.init_from
        fmt = InputFormat.of(checkpoints.read_meta(checkpoints.resolve(source))) if source else InputFormat()
        train_dir, test_dir = own_data.split_folders(config.dataset)
        train = own_data.read_image_folder(train_dir, fmt)
        test = own_data.read_image_folder(test_dir, fmt, classes=train.classes) if test_dir else None
        self.skipped_files = train.skipped + ([f"test/{s}" for s in test.skipped] if test else [])
        if self.skipped_files and self.is_main:
            print(f"Skipped {len(self.skipped_files)} unreadable file(s): " + "; ".join(self.skipped_files[:20])
                  + (" ..." if len(self.skipped_files) > 20 else ""), file=sys.stderr)
        share = config.val_share if config.val_share is not None else (0.0 if test else 0.2)
        keep, held = own_data.holdout(train.labels, share, VALIDATION_SPLIT_SEED)
        name = Path(config.dataset).expanduser().name
        full = data.ImageDataset(name, "train", train.images[keep], train.labels[keep], train.classes,
                                 f"image folder {train_dir}")
        if test is not None:
            self.test = data.ImageDataset(name, "test", test.images, test.labels, train.classes, f"{test_dir}")
            self.evaluated_on = f"the {len(test):,} images of {test_dir.name}/"
        else:  # no test split: the final figures are the held-out share's, and say so
            self.test = data.ImageDataset(name, "test", train.images[held], train.labels[held], train.classes, "")
            self.evaluated_on = f"the {len(held):,} images held out of the folder ({share:.0%} of each class)"
        return full, train.images[held], train.labels[held]

    def _build(self) -> None:
        config = self.config
        self.arch_args = default_arch_args(config, self.train_data)
        self.start_epoch = 0
        self.head: list[nn.Parameter] = []  # a new classifier head on trained features (transfer learning)...
        self.features: list[nn.Parameter] = []  # ...and the trained parameters it sits on
        source = config.resume or config.init_from  # init_from: these weights, a fresh optimizer and schedule
        if source:
            self.model, meta = checkpoints.load(source)
            if meta["architecture"] != config.arch:
                raise ValueError(f"Cannot {'resume' if config.resume else 'start'} {config.arch} from "
                                 f"{meta['architecture']} weights.")
            self.arch_args = meta["arch_args"]  # the weights fix the shape...
            # ...unless a fine-tune adds inputs (colour hints) or classes (a new head for your images).
            grown = {**meta["arch_args"], **{k: v for k, v in config.arch_args.items() if k in INPUT_OPTIONS}}
            if "num_classes" in grown and config.init_from:
                grown["num_classes"] = len(self.train_data.classes)
            if config.init_from and grown != meta["arch_args"]:
                model = models.build(config.arch, **grown)
                fresh = models.transplant(self.model, model, new_outputs=True)
                self.model, self.arch_args = model, grown
                if grown.get("num_classes") != meta["arch_args"].get("num_classes"):
                    self.head = [p for n, p in self.model.named_parameters() if n in fresh]
                    self.features = [p for n, p in self.model.named_parameters() if n not in fresh and p.requires_grad]
            if config.resume:
                self.checkpoint_path = checkpoints.resolve(config.resume)
        else:
            self.model = models.build(config.arch, **self.arch_args)
            base = models.get_architecture(config.arch).base_checkpoint
            if base:  # a design with a frozen part (the hint refiner's colorizer) takes it from a shipped checkpoint
                try:
                    self.model.adopt(checkpoints.load(base)[0])
                except ValueError as error:  # CheckpointError included
                    raise ValueError(f"{config.arch} builds on the checkpoint {base!r}, which could not be "
                                     f"loaded: {error}") from error
            if hasattr(self.model, "init_from_data"):  # e.g. the fast net's whitening layer
                sample = self.train_data.images[:5000].float().div(255)
                self.model.init_from_data(sample)
        self.model.to(self.device)
        if config.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.amp = devices.amp_dtype(self.device) if config.amp else None
        params = parameter_groups(self.model, config.lr, config.weight_decay, config.norm_lr_scale)
        if config.optimizer == "muon":
            self.optimizer = Muon(split_filters(params, config.muon_lr, config.muon_momentum), lr=config.lr,
                                  momentum=config.momentum, weight_decay=config.weight_decay)
        elif config.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                                             nesterov=config.momentum > 0, weight_decay=config.weight_decay)
        elif config.optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        if config.resume:
            self._restore_training_state(resume_path(self.checkpoint_path))
        self.lookahead = Lookahead(self.model) if config.lookahead else None
        self.forward_model = self._wrap_model()
        self.steps_per_epoch = len(self.loader)
        self.total_steps = config.epochs * self.steps_per_epoch
        warmup = int(config.warmup_epochs * self.steps_per_epoch) if config.schedule in ("onecycle", "cosine") else 0
        self.warmup_steps = min(warmup, int(0.3 * self.total_steps))  # short runs still get to decay
        self.step = self.start_epoch * self.steps_per_epoch
        if self.checkpoint_path is None:
            dataset = Path(config.dataset).name  # an image folder's own name, not its path
            name = config.name or f"{config.task}-{config.arch}-{dataset}-{datetime.now():%Y%m%d-%H%M%S}"
            self.checkpoint_path = Path(config.out or paths.user_checkpoints()) / f"{name}.safetensors"
        self.name = self.checkpoint_path.stem

    def _loop(self) -> tuple[str, str]:
        config, task = self.config, self.task
        # A time-capped run spends its schedule by the clock or by the step, whichever is further along, so
        # at the limit the learning rate has decayed and the model is finished rather than cut mid-schedule.
        loop_start = time.monotonic()
        budget = self.started + config.max_minutes * 60 - loop_start if config.max_minutes else None
        if budget is not None and budget <= 0:
            return "stopped", f"The time limit of {config.max_minutes:g} minutes was reached before training began."
        for epoch in range(self.start_epoch, config.epochs):
            self.epoch = epoch
            self.loader.set_epoch(epoch)
            if config.whiten_bias_epochs is not None and epoch >= config.whiten_bias_epochs:
                self._freeze_whitening()
            noise_generator = torch.Generator().manual_seed(config.seed * 7919 + epoch * 104_729 + self.rank)
            self.forward_model.train()
            if self.head:
                self._train_head_only(epoch < config.head_epochs)
            epoch_start = time.monotonic()
            loss_sum = torch.zeros((), device=self.device)
            sums: dict[str, torch.Tensor] = {}
            count = 0
            for batch, labels in self.loader:
                if self.stop_event.is_set():
                    return "stopped", f"Stopped by request during epoch {epoch + 1}."
                progress_step = self.step
                if budget is not None:
                    timed = int((time.monotonic() - loop_start) / budget * self.total_steps)
                    progress_step = max(self.step, timed)
                    if progress_step >= self.total_steps:
                        if self.lookahead is not None:
                            self.lookahead.update(self.model, 1.0)  # finish on the slow weights
                        return "finished", (f"Reached the time limit of {config.max_minutes:g} minutes after "
                                            f"{self.step / self.steps_per_epoch:.1f} of {config.epochs} epochs, "
                                            "with the learning rate decayed by then.")
                factor = lr_factor(config.schedule, progress_step, self.total_steps, self.warmup_steps)
                lr = config.lr * factor
                for group in self.optimizer.param_groups:
                    group["lr"] = group["base_lr"] * factor
                inputs, target = task.prepare(batch, labels, noise_generator)
                if config.channels_last:
                    inputs = inputs.contiguous(memory_format=torch.channels_last)
                with _autocast(self.device, self.amp):
                    output = self.forward_model(inputs)
                loss = task.loss(output, target)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(
                        f"The loss became {float(loss.detach())} at epoch {epoch + 1}, step {self.step + 1}: "
                        "the learning "
                        f"rate ({config.lr:g}) is probably too high for {config.arch}.")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.step += 1
                if self.lookahead is not None and self.step % LOOKAHEAD_EVERY == 0:
                    progress = max(self.step, progress_step + 1) / self.total_steps  # the step just taken counts
                    self.lookahead.update(self.model, LOOKAHEAD_DECAY * progress**3)
                detached = loss.detach()
                loss_sum += detached * len(batch)
                for key, value in task.metric_sums(output.detach(), target).items():
                    sums[key] = sums.get(key, 0.0) + value.double()
                count += len(batch)
                self._emit("on_batch_end", self.step, detached, len(batch))
            seconds = time.monotonic() - epoch_start
            train_loss, sums, count = self._all_reduce(float(loss_sum), {k: float(v) for k, v in sums.items()}, count)
            val_loss, val_metrics = (None, {})
            if len(self.val_labels):
                val_loss, val_metrics = evaluate(self.model, task, self.val_images, self.val_labels,
                                                 batch_size=max(config.batch_size, 256), device=self.device,
                                                 amp=self.amp, channels_last=config.channels_last)
            predictions = panel.predict(self.model, self.panel_images, self.device) if self.panel else None
            record = EpochRecord(epoch + 1, train_loss / max(count, 1), task.finalize(sums, count), val_loss,
                                 val_metrics, seconds, count / max(seconds, 1e-9), lr, predictions)
            self.history.append(record)
            if self.lookahead is not None and epoch + 1 == config.epochs:
                self.lookahead.update(self.model, 1.0)  # finish on the slow weights
            self._save({})
            self._emit("on_epoch_end", record)
        return "finished", "Finished."

    def _train_head_only(self, only: bool) -> None:
        """Transfer learning's first phase: the trained features stay fixed (batch norm in inference
        mode, no gradients), only the new head learns; then the whole net does."""
        features = [p for p in self.features if p.requires_grad == only]  # those to switch
        for parameter in features:
            parameter.requires_grad_(not only)
            parameter.grad = None  # optimizers skip parameters without a gradient: frozen for real
        if only:
            self.forward_model.eval()
        if features and self.world_size > 1:
            self.forward_model = self._wrap_model()

    def _freeze_whitening(self) -> None:
        """Stop training the fast net's whitening bias: its frozen input then needs no backward pass."""
        bias = getattr(getattr(self.model, "whiten", None), "bias", None)
        self.features = [p for p in self.features if p is not bias]  # a new head's second phase leaves it too
        if bias is None or not bias.requires_grad:
            return
        bias.requires_grad_(False)
        bias.grad = None
        if self.world_size > 1:  # DDP fixes its set of gradients when built: build it again without this one
            self.forward_model = self._wrap_model()

    def _wrap_model(self) -> nn.Module:
        """The model as the training step calls it: compiled and/or data-parallel as configured."""
        wrapped: nn.Module = self.model
        if self.config.compile:
            wrapped = torch.compile(wrapped)
        if self.world_size > 1:
            wrapped = nn.parallel.DistributedDataParallel(
                wrapped, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        return wrapped

    def _all_reduce(self, loss_sum: float, sums: dict[str, float], count: int) -> tuple[float, dict[str, float], int]:
        if self.world_size == 1:
            return loss_sum, sums, count
        keys = sorted(sums)
        packed = torch.tensor([loss_sum, count, *(sums[k] for k in keys)], dtype=torch.float64)
        dist.all_reduce(packed)
        return float(packed[0]), {k: float(v) for k, v in zip(keys, packed[2:], strict=True)}, int(packed[1])

    # ---- checkpoints ------------------------------------------------------------------------------
    def _save(self, test_metrics: dict[str, float]) -> None:
        if not self.is_main:
            return
        last = self.history[-1] if self.history else None
        metrics = dict(test_metrics)
        meta = {
            "name": self.name,
            "task": self.config.task,
            "architecture": self.config.arch,
            "arch_args": self.arch_args,
            "dataset": self.config.dataset,
            **({"classes": list(self.train_data.classes)} if self.config.task == "classification" else {}),
            **({"evaluated_on": self.evaluated_on} if self.evaluated_on else {}),
            "metrics": metrics,
            "measured_by": dict.fromkeys(metrics, self.command),
            "recipe": {**self.config.to_dict(), "command": self.command},
            "training": {
                "epochs_completed": len(self.history),
                "seconds": round(sum(r.seconds for r in self.history), 1),
                "device": devices.describe(self.device),
                "world_size": self.world_size,
                "last_val_metrics": last.val_metrics if last else {},
                **({"skipped_files": self.skipped_files[:100]} if self.skipped_files else {}),
            },
        }
        try:
            checkpoints.save(self.model, self.checkpoint_path, meta)
            self._save_training_state()
        except OSError as error:
            reason = error.strerror or str(error)
            raise CheckpointWriteError(
                f"Could not write the checkpoint to {self.checkpoint_path.parent}: {reason}. Any checkpoint saved "
                "there before is untouched; free some space or choose another folder, then resume.") from error

    def _save_training_state(self) -> None:
        resume.save(resume_path(self.checkpoint_path), self.model, self.optimizer, [asdict(r) for r in self.history])

    def _restore_training_state(self, path: Path) -> None:
        history, self.start_epoch = resume.load(path, self.model, self.optimizer, self.device)
        self.history = [EpochRecord(**record) for record in history]
