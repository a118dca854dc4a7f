"""core.train: tasks, schedules, validation, stop, divergence, reproducibility, resume, run store, DDP."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from core import checkpoints, color, data, metrics
from core.charts import ema_smooth, outlier_free_range, training_figure
from core.display import format_headline, metric_title, run_progress, run_row, run_summary
from core.train import ConfigError, TrainConfig, Trainer
from core.train.__main__ import main as cli_main
from core.train.config import OPTIMIZER_LABELS, config_to_command, form_lr, lr_for_batch, optimizers_for
from core.train.engine import Callback
from core.train.optim import Lookahead, lr_factor, parameter_groups
from core.train.runs import RunRecorder, RunStore, history_csv
from core.train.tasks import Classification, Colorization, Denoising, TeacherLoss
from tests.factories import tiny_classifier, tiny_colorizer

REPO = Path(__file__).resolve().parent.parent


def tiny(tmp_path: Path, **overrides) -> TrainConfig:
    """A run of a few seconds on real CIFAR-10: 256 images, a width-8 staged CNN."""
    settings = dict(task="classification", arch="staged_cnn", arch_args={"variant": "baseline", "width": 8},
                    dataset="cifar10", epochs=2, batch_size=64, subset=256, val_size=128, lr=0.05,
                    schedule="cosine", seed=3, out=str(tmp_path / "ckpt"), name="tiny")
    settings.update(overrides)
    return TrainConfig(**settings)


# ---- tasks -------------------------------------------------------------------------------------------

def test_classification_loss_and_accuracy() -> None:
    task = Classification(TrainConfig(label_smoothing=0.0))
    logits = torch.tensor([[5.0, 0.0], [0.0, 5.0], [5.0, 0.0]])
    labels = torch.tensor([0, 1, 1])
    assert {k: float(v) for k, v in task.metric_sums(logits, labels).items()} == {"accuracy": 2.0}
    assert task.finalize({"accuracy": 2.0}, 3) == {"accuracy": pytest.approx(2 / 3)}
    expected = torch.nn.functional.cross_entropy(logits, labels)
    assert float(task.loss(logits, labels)) == pytest.approx(float(expected))
    smoothed = Classification(TrainConfig(label_smoothing=0.2)).loss(logits, labels)
    assert float(smoothed) != pytest.approx(float(expected))


def test_denoising_task_adds_seeded_noise_and_measures_psnr() -> None:
    task = Denoising(TrainConfig(task="denoising", arch="conv_dae", dataset="mnist", noise="gaussian",
                                 noise_level=25.0))
    clean = torch.full((4, 3, 32, 32), 0.5)
    noisy, target = task.prepare(clean, torch.zeros(4), torch.Generator().manual_seed(0))
    again, _ = task.prepare(clean, torch.zeros(4), torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again) and torch.equal(target, clean)
    assert float((noisy - clean).std()) == pytest.approx(25 / 255, rel=0.05)
    # A uniform error of 0.1 is a PSNR of exactly 20 dB (peak 1).
    sums = task.metric_sums(clean + 0.1, clean)
    assert sums["psnr"] / 4 == pytest.approx(20.0, abs=1e-4)
    assert task.finalize(sums, 4)["psnr_dataset"] == pytest.approx(20.0, abs=1e-4)


def test_psnr_loss_is_minus_the_mean_per_image_psnr_and_weighs_the_easy_image_more() -> None:
    task = Denoising(TrainConfig(task="denoising", arch="conv_dae", dataset="mnist", loss="psnr"))
    clean = torch.full((2, 1, 8, 8), 0.5)
    estimate = (clean + torch.tensor([0.05, 0.25]).view(2, 1, 1, 1)).requires_grad_(True)
    loss = task.loss(estimate, clean)
    assert float(loss.detach()) == pytest.approx(-float(metrics.psnr(estimate.detach(), clean).mean()), abs=0.02)
    loss.backward()
    easy, hard = estimate.grad.abs().flatten(1).mean(1)
    # A squared error would push the image five times further off five times harder; -PSNR weighs each
    # image by 1 / its error, so the nearly right image gets the larger push.
    assert easy > 3 * hard
    with pytest.raises(ConfigError, match="Unknown loss"):
        TrainConfig(task="denoising", loss="psnrr").validate()


def test_blind_denoising_draws_a_level_per_image() -> None:
    task = Denoising(TrainConfig(task="denoising", arch="conv_dae", dataset="mnist", noise_level=0.0,
                                 noise_max_level=50.0))
    noisy, clean = task.prepare(torch.full((64, 1, 16, 16), 0.5), torch.zeros(64), torch.Generator().manual_seed(1))
    spread = (noisy - clean).flatten(1).std(1)
    assert spread.min() < 10 / 255 and spread.max() > 35 / 255


def test_colorization_task_feeds_bt601_luma() -> None:
    task = Colorization(TrainConfig(task="colorization", arch="unet_colorizer"))
    images = torch.rand(2, 3, 8, 8)
    luma, target = task.prepare(images, torch.zeros(2), torch.Generator())
    expected = 0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]
    assert luma.shape == (2, 1, 8, 8) and torch.allclose(luma[:, 0], expected, atol=1e-6)
    assert torch.equal(target, images)
    assert task.headline == "psnr_dataset"


def test_metrics_psnr_known_values() -> None:
    target = torch.zeros(1, 1, 4, 4)
    assert float(metrics.psnr(target + 0.5, target)) == pytest.approx(10 * math.log10(4))
    assert float(metrics.psnr(target, target)) == metrics.MAX_PSNR
    assert metrics.psnr_from_mse(0.01) == pytest.approx(20.0)


# ---- schedules and configuration ---------------------------------------------------------------------

def test_schedules() -> None:
    assert lr_factor("constant", 50, 100, 0) == 1.0
    assert [lr_factor("step", s, 100, 0) for s in (0, 49, 50, 75)] == pytest.approx([1, 1, 0.1, 0.01])
    assert lr_factor("onecycle", 0, 100, 10) == pytest.approx(0.1)
    assert lr_factor("onecycle", 9, 100, 10) == pytest.approx(1.0)
    assert lr_factor("onecycle", 100, 100, 10) == pytest.approx(0.0)
    assert lr_factor("cosine", 55, 100, 10) == pytest.approx(0.5)


def test_norm_layers_get_their_own_rate_with_the_same_decay_per_step() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2))
    model[1].weight.requires_grad_(False)  # frozen parameters are left out
    others, norms = parameter_groups(model, lr=0.5, weight_decay=1e-3, norm_lr_scale=64)
    assert [p.shape for p in norms["params"]] == [torch.Size([4])]  # the BN shift only
    assert len(others["params"]) == 4  # conv and linear weights and biases
    assert norms["lr"] == 32 and others["lr"] == 0.5
    assert norms["lr"] * norms["weight_decay"] == pytest.approx(others["lr"] * others["weight_decay"])
    assert len(parameter_groups(torch.nn.Linear(2, 2), 0.1, 0.0, 64)) == 1


def test_lookahead_pulls_weights_to_the_slow_copy() -> None:
    model = torch.nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(1.0)
    lookahead = Lookahead(model)
    model.weight.data.fill_(3.0)
    lookahead.update(model, decay=0.0)  # no memory: the slow copy follows the weights
    assert model.weight.item() == 3.0
    model.weight.data.fill_(5.0)
    lookahead.update(model, decay=0.5)  # half way back to the slow copy
    assert model.weight.item() == 4.0
    model.weight.data.fill_(10.0)
    lookahead.update(model, decay=1.0)  # back to the slow weights
    assert model.weight.item() == 4.0


def test_whitening_bias_trains_only_for_its_epochs(tmp_path: Path) -> None:
    config = tiny(tmp_path, arch="fastnet", arch_args={"width": 8}, epochs=3, val_size=0, whiten_bias_epochs=1)
    biases = []

    class Watch(Callback):
        def on_epoch_end(self, trainer, record) -> None:
            biases.append(trainer.model.whiten.bias.detach().clone())

    trainer = Trainer(config, [Watch()])
    assert trainer.fit().status == "finished"
    assert not torch.equal(biases[0], torch.zeros_like(biases[0]))  # it learned in epoch 1 ...
    assert torch.equal(biases[1], biases[0]) and torch.equal(biases[2], biases[0])  # ... and then stayed put
    assert not trainer.model.whiten.bias.requires_grad


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "epochs must be between 1"),
        ({"epochs": -3}, "epochs must be between 1"),
        ({"epochs": 2.5}, "epochs must be a whole number"),
        ({"epochs": "10"}, "epochs must be a whole number"),
        ({"lr": float("nan")}, "lr must be between"),
        ({"lr": 1e9}, "lr must be between"),
        ({"batch_size": True}, "batch_size must be a whole number"),
        ({"subset": 0}, "subset must be between"),
        ({"arch": "vgg99"}, "Unknown architecture 'vgg99'"),
        ({"arch": "conv_dae"}, "conv_dae is a denoising model"),
        ({"dataset": "imagenet"}, "Unknown dataset"),
        ({"optimizer": "lbfgs"}, "Unknown optimizer"),
        ({"schedule": "exp"}, "Unknown schedule"),
        ({"norm_lr_scale": 0}, "norm_lr_scale must be between"),
        ({"whiten_bias_epochs": -1}, "whiten_bias_epochs must be between"),
        ({"arch_args": {"depth": 3}}, "has no option 'depth'"),
        ({"arch_args": {"width": 1e6}}, "width must be between"),
        ({"name": "../escape"}, "cannot be used as a file name"),
        ({"task": "segmentation"}, "Unknown task"),
        ({"teacher": "fastnet-cifar10"}, "A teacher guides colorizers only"),
        ({"resume": "a", "init_from": "b"}, "not both"),
        ({"teacher_weight": -1.0}, "teacher_weight must be between"),
        ({"max_hints": -1}, "max_hints must be between"),
        ({"max_hints": 2.5}, "max_hints must be a whole number"),
        ({"grey": True}, "grey trains denoisers only"),
    ],
)
def test_bad_configurations_are_refused_before_anything_starts(change: dict, message: str) -> None:
    config = TrainConfig(**{**dict(arch="resnet18"), **change})
    with pytest.raises(ConfigError, match=message):
        config.validate()


def test_noise_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="gaussian strength must be between 0 and 255"):
        TrainConfig(task="denoising", arch="conv_dae", noise_level=500.0).validate()
    with pytest.raises(ConfigError, match="Unknown noise"):
        TrainConfig(task="denoising", arch="conv_dae", noise="pink").validate()
    blind = TrainConfig(task="denoising", arch="conv_dae", noise="blind").validate()
    noisy, clean = Denoising(blind).prepare(torch.full((64, 1, 8, 8), 0.5), None, torch.Generator().manual_seed(0))
    assert not torch.equal(noisy, clean) and torch.equal(clean, torch.full((64, 1, 8, 8), 0.5))


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="Unknown setting"):
        TrainConfig.from_dict({"epochz": 3})


def test_cli_refuses_bad_values_with_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--epochs", "-1", "--arch", "nope"]) == 2
    err = capsys.readouterr().err
    assert "epochs must be between 1" in err and "Unknown architecture 'nope'" in err


# ---- the loop ----------------------------------------------------------------------------------------

class StopAt(Callback):
    """Requests a stop once ``step`` batches have run, and counts the batches."""

    def __init__(self, trainer_stop: threading.Event, step: int) -> None:
        self.stop, self.at, self.batches = trainer_stop, step, 0

    def on_batch_end(self, trainer, step, loss, batch_size) -> None:
        self.batches += 1
        if step == self.at:
            self.stop.set()


def test_a_run_trains_writes_its_checkpoint_and_records_history(tmp_path: Path, data_root: Path) -> None:
    result = Trainer(tiny(tmp_path, epochs=3)).fit()
    assert result.status == "finished" and result.epochs_completed == 3
    assert 0.0 <= result.test_metrics["test_accuracy"] <= 1.0
    _, meta = checkpoints.load(result.checkpoint)
    assert meta["metrics"] == result.test_metrics
    command = meta["measured_by"]["test_accuracy"]
    assert command.startswith("python -m core.train --task classification --arch staged_cnn")
    # The Classify page's "unsure" threshold comes with the run, measured on the same test images.
    assert meta["measured_by"]["test_unsure_below"] == command
    assert isinstance(meta["metrics"]["test_unsure_below"], float)
    assert meta["recipe"]["epochs"] == 3 and meta["training"]["epochs_completed"] == 3
    assert meta["arch_args"]["num_classes"] == 10 and len(meta["arch_args"]["mean"]) == 3
    assert [r.epoch for r in result.history] == [1, 2, 3]
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_stop_ends_within_one_batch_and_keeps_the_last_epoch(tmp_path: Path, data_root: Path) -> None:
    stop = threading.Event()
    # 4 batches per epoch: stop after the 2nd batch of epoch 2.
    counter = StopAt(stop, step=6)
    result = Trainer(tiny(tmp_path, epochs=3), callbacks=[counter], stop_event=stop).fit()
    assert result.status == "stopped" and counter.batches == 6
    assert result.epochs_completed == 1
    _, meta = checkpoints.load(result.checkpoint)
    assert meta["training"]["epochs_completed"] == 1 and meta["metrics"] == {}


def test_non_finite_loss_stops_the_run_as_diverged(tmp_path: Path, data_root: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    original = Classification.loss

    def poisoned(self, output, target):
        calls["n"] += 1
        loss = original(self, output, target)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(Classification, "loss", poisoned)
    result = Trainer(tiny(tmp_path)).fit()
    assert result.status == "diverged" and "loss became nan" in result.message
    assert "learning rate" in result.message


def test_same_config_and_seed_give_the_same_result(tmp_path: Path, data_root: Path) -> None:
    first = Trainer(tiny(tmp_path / "a")).fit()
    second = Trainer(tiny(tmp_path / "b")).fit()
    assert first.test_metrics == second.test_metrics
    assert [r.train_loss for r in first.history] == [r.train_loss for r in second.history]
    a, b = load_file(first.checkpoint), load_file(second.checkpoint)
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = Trainer(tiny(tmp_path / "c", seed=4)).fit()
    assert [r.train_loss for r in other.history] != [r.train_loss for r in first.history]
    # The airbench recipe's extras (scaled norm rates, lookahead) keep runs repeatable too.
    airbench = dict(arch_args={"variant": "advanced", "width": 8}, norm_lr_scale=16, lookahead=True)
    third, fourth = (Trainer(tiny(tmp_path / d, **airbench)).fit() for d in "de")
    assert third.status == "finished" and third.test_metrics == fourth.test_metrics


def test_resume_continues_where_the_checkpoint_left_off(tmp_path: Path, data_root: Path) -> None:
    straight = Trainer(tiny(tmp_path / "straight", epochs=3)).fit()
    stop = threading.Event()
    interrupted = Trainer(tiny(tmp_path / "resumed", epochs=3), callbacks=[StopAt(stop, step=9)],
                          stop_event=stop).fit()
    assert interrupted.status == "stopped" and interrupted.epochs_completed == 2
    resumed = Trainer(tiny(tmp_path / "resumed", epochs=3, resume=interrupted.checkpoint)).fit()
    assert resumed.status == "finished" and [r.epoch for r in resumed.history] == [1, 2, 3]
    assert resumed.history[-1].train_loss == pytest.approx(straight.history[-1].train_loss, rel=1e-5)
    a, b = load_file(straight.checkpoint), load_file(resumed.checkpoint)
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)


def test_init_from_starts_a_new_run_from_the_checkpoint_weights(tmp_path: Path, data_root: Path) -> None:
    first = Trainer(tiny(tmp_path / "first", epochs=1)).fit()
    # A rate too small to move the weights: the new run must end where the old one did, as a run of its own.
    tuned = Trainer(tiny(tmp_path / "tuned", epochs=1, init_from=first.checkpoint, lr=1e-7,
                         arch_args={"variant": "baseline", "width": 16})).fit()
    assert tuned.status == "finished" and [r.epoch for r in tuned.history] == [1]
    assert Path(tuned.checkpoint).parent == tmp_path / "tuned" / "ckpt"
    assert checkpoints.read_meta(Path(tuned.checkpoint))["arch_args"]["width"] == 8  # the weights' shape wins
    a, b = load_file(first.checkpoint), load_file(tuned.checkpoint)
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-3) for k in a if "running" not in k)
    assert tuned.test_metrics["test_accuracy"] == pytest.approx(first.test_metrics["test_accuracy"], abs=0.02)
    with pytest.raises(ValueError, match="Cannot start conv_dae from staged_cnn weights"):
        Trainer(tiny(tmp_path / "wrong", task="denoising", arch="conv_dae", arch_args={}, dataset="cifar10",
                     init_from=first.checkpoint, optimizer="adam")).fit()


def test_a_teacher_adds_its_divergence_to_the_colorization_loss(tmp_path: Path, data_root: Path) -> None:
    teacher = tiny_classifier(tmp_path, "teacher")
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    gray = images.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    plain = Colorization(TrainConfig(task="colorization", arch="unet_colorizer"))
    guided = Colorization(TrainConfig(task="colorization", arch="unet_colorizer", teacher=str(teacher),
                                      teacher_weight=2.0))
    assert float(guided.teacher(images, images)) == pytest.approx(0.0, abs=1e-6)
    divergence = guided.teacher(gray, images)
    assert float(divergence) > 0
    assert float(guided.loss(gray, images)) == pytest.approx(float(plain.loss(gray, images) + 2 * divergence))
    colorized = gray.clone().requires_grad_(True)
    guided.loss(colorized, images).backward()
    assert colorized.grad is not None and colorized.grad.abs().sum() > 0
    assert all(p.grad is None for p in guided.teacher.models[0].parameters())  # the teacher stays frozen
    second = tiny_classifier(tmp_path, "second-teacher", width=12)
    pair = TeacherLoss(f"{teacher}, {second}")
    alone = TeacherLoss(str(second))
    assert float(alone(gray, images)) != pytest.approx(float(divergence), rel=1e-3)  # two different teachers
    assert float(pair(gray, images)) == pytest.approx((float(divergence) + float(alone(gray, images))) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="not a classifier"):
        TeacherLoss(str(tiny_colorizer(tmp_path, "not-a-teacher")))


@pytest.mark.parametrize(
    ("task", "arch", "dataset", "headline"),
    [("denoising", "conv_dae", "mnist", "test_psnr"), ("colorization", "unet_colorizer", "cifar10",
                                                        "test_psnr_dataset")],
)
def test_denoising_and_colorization_runs(tmp_path: Path, data_root: Path, task: str, arch: str, dataset: str,
                                         headline: str) -> None:
    config = tiny(tmp_path, task=task, arch=arch, arch_args={"width": 8}, dataset=dataset, epochs=1,
                  optimizer="adam", lr=2e-3, loss="l1", noise_level=50.0)
    result = Trainer(config).fit()
    assert result.status == "finished" and 5.0 < result.test_metrics[headline] < 60.0


def test_a_grey_denoiser_learns_and_is_tested_on_grey_images(tmp_path: Path, data_root: Path) -> None:
    config = tiny(tmp_path, task="denoising", arch="unet_denoiser", arch_args={"width": 8}, epochs=1,
                  optimizer="adam", lr=2e-3, grey=True)
    trainer = Trainer(config)
    result = trainer.fit()
    assert result.status == "finished" and 5.0 < result.test_metrics["test_psnr"] < 60.0
    assert trainer.train_data.images.shape[1] == 1 and trainer.test.images.shape[1] == 1
    colour = data.load_dataset("cifar10", "test").images[:4]
    expected = color.luma(colour.float() / 255).mul(255).round().to(torch.uint8)
    assert torch.equal(trainer.test.images[:4], expected)
    meta = checkpoints.read_meta(Path(result.checkpoint))
    assert meta["arch_args"]["in_channels"] == 1 and meta["recipe"]["grey"] is True
    assert "--grey" in meta["recipe"]["command"]


# ---- the run store -----------------------------------------------------------------------------------

def test_run_store_records_runs_and_epochs(tmp_path: Path, data_root: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    result = Trainer(tiny(tmp_path), callbacks=[RunRecorder(store)]).fit()
    (run,) = store.runs()
    assert run["status"] == "finished" and run["name"] == "tiny"
    assert [e["epoch"] for e in run["epochs"]] == [1, 2]
    assert run["test_metrics"] == result.test_metrics and run["checkpoint"] == result.checkpoint
    assert run["config"]["arch"] == "staged_cnn" and run["command"].startswith("python -m core.train")
    # History survives a "restart": a new store object on the same file sees it.
    assert RunStore(tmp_path / "runs.sqlite3").get(run["id"])["epochs"][1]["val_metrics"]
    # Its CSV has a row per epoch and a column per metric, with the numbers the store holds.
    rows = list(csv.DictReader(io.StringIO(history_csv(run))))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"train_loss", "val_loss", "val_accuracy", "lr", "images_per_second"} <= set(rows[0])
    assert float(rows[1]["val_accuracy"]) == pytest.approx(run["epochs"][1]["val_metrics"]["accuracy"])


def test_smoothing_is_tensorboards_debiased_moving_average() -> None:
    values = [1.0, 3.0, None, 2.0, float("nan"), 5.0]
    assert ema_smooth(values, 0.0)[:2] == [1.0, 3.0]
    smoothed = ema_smooth(values, 0.6)
    assert smoothed[0] == pytest.approx(1.0)  # debiased: the first point is not dragged towards zero
    assert smoothed[1] == pytest.approx((0.4 * 0.6 * 1 + 0.4 * 3) / (1 - 0.36))
    assert smoothed[2] is None and smoothed[4] is None  # gaps stay gaps and do not reset the average
    assert all(1.0 <= v <= 5.0 for v in smoothed if v is not None)
    assert ema_smooth([2.0] * 5, 0.9) == pytest.approx([2.0] * 5)
    with pytest.raises(ValueError, match="Smoothing"):
        ema_smooth(values, 1.0)


def test_a_learning_rate_follows_the_batch_size_as_timm_scales_it() -> None:
    assert lr_for_batch(0.8, 512, 64, "sgd") == pytest.approx(0.1)
    assert lr_for_batch(0.8, 512, 2048, "muon") == pytest.approx(3.2)
    assert lr_for_batch(1e-3, 256, 64, "adam") == pytest.approx(5e-4)
    assert lr_for_batch(1e-3, 256, 256, "adamw") == 1e-3


def test_muon_is_offered_only_to_the_nets_it_can_train() -> None:
    assert optimizers_for("fastnet") == ["sgd", "adam", "adamw", "muon"]
    assert optimizers_for("unet_denoiser") == ["sgd", "adam", "adamw"]  # a conv without a batch norm after it
    assert all(name in OPTIMIZER_LABELS for name in optimizers_for("fastnet"))


def test_a_form_scales_only_a_rate_left_as_the_preset_tuned_it() -> None:
    preset = TrainConfig(task="classification", lr=0.8, batch_size=512)
    assert form_lr(0.8, preset, 512, "sgd") == (0.8, None)  # nothing changed
    assert form_lr(0.3, preset, 64, "sgd") == (0.3, None)  # a typed rate is the visitor's
    lr, note = form_lr(0.8, preset, 64, "sgd")
    assert lr == pytest.approx(0.1) and note.startswith("Learning rate scaled from 0.8 (tuned for batch 512) to 0.1")


def test_a_diverging_batch_does_not_flatten_the_loss_chart() -> None:
    falling = [2.3 * math.exp(-step / 50) + 0.3 + 0.01 * (step % 7) for step in range(300)]
    assert outlier_free_range(falling) is None  # a loss falling from 2.6 keeps its start on the chart
    spiky = [*falling[:40], 780.0, 300.0, 100.0, 50.0, *falling[44:]]
    low, high = outlier_free_range(spiky)
    assert low < min(falling) and max(falling[44:]) < high < 5
    snapshot = {"config": {"task": "classification", "epochs": 3}, "total_steps": 300,
                "batch_losses": list(enumerate(spiky)),
                "history": [{"epoch": e, "train_loss": 1.0, "val_loss": 1.1, "train_metrics": {"accuracy": 0.5},
                             "val_metrics": {"accuracy": 0.5}} for e in (1, 2, 3)]}
    figure = training_figure(snapshot)
    assert tuple(figure.layout.yaxis.range) == (low, high)
    assert figure.layout.yaxis2.range is None  # the metric keeps plotly's own scale
    assert "4 spikes above, up to 780" in [note.text for note in figure.layout.annotations]
    # Whatever the curve, the range leaves something out whenever it is set: the note never counts nothing.
    generator = np.random.default_rng(0)
    for _ in range(300):
        values = list(generator.lognormal(0, generator.uniform(0.1, 3), size=int(generator.integers(10, 60))))
        shown = outlier_free_range(values)
        assert shown is None or max(values) > shown[1]


def test_headline_metrics_read_as_a_person_reads_them() -> None:
    assert metric_title("psnr_dataset") == "PSNR of the set's MSE (dB)"  # not "Psnr, dataset (db)"
    assert metric_title("accuracy") == "Accuracy"
    assert format_headline("accuracy", 0.91204) == "91.20%"
    assert format_headline("psnr_dataset", 23.62163) == "23.62 dB"
    assert format_headline("psnr", None) == "–"
    snapshot = {"config": {"task": "colorization", "epochs": 1}, "total_steps": 10, "batch_losses": [(1, 2.9)],
                "history": [{"epoch": 1, "train_loss": 2.9, "val_loss": 2.9, "train_metrics": {"psnr_dataset": 23.5},
                             "val_metrics": {"psnr_dataset": 23.6}}]}
    figure = training_figure(snapshot)
    titles = [note.text for note in figure.layout.annotations]
    assert "PSNR of the set's MSE (dB)" in titles
    assert "validation PSNR of the set's MSE (dB)" in [trace.name for trace in figure.data]
    assert "measured at the end of each epoch" not in titles
    # Stopped during its first epoch: losses, but no metric yet. The panel says when one comes.
    first_epoch = {**snapshot, "history": []}
    notes = [note.text for note in training_figure(first_epoch).layout.annotations]
    assert "measured at the end of each epoch" in notes


def test_a_past_run_reads_as_its_tiles_do() -> None:
    run = {"id": 3, "name": "colorize-it", "task": "colorization", "arch": "unet_colorizer", "dataset": "cifar10",
           "status": "finished", "epochs": [{}, {}], "seconds": 3725.0, "started": 0.0,
           "config": {"epochs": 2, "batch_size": 256, "optimizer": "adam", "lr": 0.002, "subset": None},
           "test_metrics": {"test_loss": 2.91, "test_psnr_dataset": 23.5381, "test_psnr": 23.9}}
    row = run_row(run)
    # The headline metric, formatted, not whichever key came first (a loss, or "psnr_dataset 23.5381").
    assert row["test"] == "PSNR of the set's MSE 23.54 dB"
    assert (row["dataset"], row["epochs"], row["train images"], row["duration"]) == ("CIFAR-10", 2, "all", "1:02:05")
    assert run_row({**run, "config": {**run["config"], "lr": 1.465e-3 * 1000}})["lr"] == 1.465
    stopped = {**run, "task": "classification", "test_metrics": {}}
    assert run_row(stopped)["test"] == ""
    assert run_row({**stopped, "test_metrics": {"test_accuracy": 0.9374}})["test"] == "accuracy 93.74%"


def test_a_live_runs_progress_and_summary_read_as_the_train_page_shows_them() -> None:
    snapshot = {"config": {"epochs": 6, "arch": "fastnet", "dataset": "cifar10"}, "step": 45, "total_steps": 270,
                "epoch": 1, "elapsed": 75.0, "eta": None, "device": "CPU (2 threads)"}
    fraction, text = run_progress(snapshot)
    assert fraction == 45 / 270
    assert text == "Epoch 2 of 6 · step 45 of 270 · elapsed 1:15 · ETA –"
    # Past the planned steps (the clock's schedule, a finished run's last epoch) the bar stays full and the
    # epoch never passes the plan; before the first step is known it is empty.
    assert run_progress({**snapshot, "step": 300, "epoch": 6})[0] == 1.0
    assert run_progress({**snapshot, "step": 300, "epoch": 6})[1].startswith("Epoch 6 of 6")
    assert run_progress({**snapshot, "step": 0, "total_steps": 0})[0] == 0.0
    assert run_summary(snapshot) == "`fastnet` on CIFAR-10, 6 epochs, device: CPU (2 threads)"
    assert run_summary({**snapshot, "device": ""}).endswith("device: …")


def test_the_run_store_lists_one_tasks_runs_newest_first_and_finds_one_by_id(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")

    def create(name: str, task: str) -> int:
        return store.create(name, TrainConfig(task=task).to_dict(), "cmd", "CPU", None)

    first, denoiser, latest = create("first", "classification"), create("denoiser", "denoising"), \
        create("latest", "classification")
    assert [r["id"] for r in store.runs(task="classification")] == [latest, first]
    assert [r["id"] for r in store.runs(task="denoising")] == [denoiser]
    assert [r["id"] for r in store.runs(limit=2)] == [latest, denoiser]
    assert store.runs(task="colorization") == []
    assert store.get(first)["name"] == "first" and store.get(10_000) is None


def test_a_run_whose_process_died_reads_as_interrupted(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run_id = store.create("ghost", TrainConfig().to_dict(), "cmd", "CPU", None)
    with store._connect() as connection:
        connection.execute("UPDATE runs SET pid = ? WHERE id = ?", (dead.pid, run_id))
    assert store.get(run_id)["status"] == "interrupted"


def test_a_presets_derived_rates_read_as_typed_in_its_command() -> None:
    from core.train.config import preset

    command = config_to_command(preset("classification", "Quick"))
    # Per-image rates times the batch, rounded: not 1.4649999999999999 and 0.0013304347826086956.
    assert " --lr 1.465 " in command and " --weight-decay 0.00133043 " in command
    assert lr_for_batch(1.465, 1000, 768, "muon") == 1.12512


def test_config_round_trips_through_its_command_line() -> None:
    config = TrainConfig(arch="staged_cnn", arch_args={"variant": "advanced", "width": 32}, epochs=7,
                         optimizer="adamw", augment=False, subset=1000)
    command = config_to_command(config)
    assert "--no-augment" in command and "--arch-arg 'variant=\"advanced\"'" in command  # quoted for a shell
    import shlex

    from core.train.__main__ import build_parser

    args = vars(build_parser().parse_args(shlex.split(command)[3:]))
    for supervision in ("no_record", "live_file", "run_store", "memory_limit_mb"):
        args.pop(supervision)
    args["arch_args"] = dict(args.pop("arch_arg"))
    assert TrainConfig(**args) == config


# ---- distributed -------------------------------------------------------------------------------------

def test_two_process_ddp_matches_a_single_process_run(tmp_path: Path, data_root: Path) -> None:
    env = {**os.environ, "WORKER_THREADS": "1", "PYTHONPATH": str(REPO)}
    worker = str(REPO / "tests" / "ddp_worker.py")
    single = subprocess.run([sys.executable, worker, str(tmp_path / "single")], env=env, capture_output=True,
                            text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", worker,
         str(tmp_path / "ddp")], env=env, capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    rank0, rank1 = (load_file(str(tmp_path / f"ddp/rank{rank}.safetensors")) for rank in (0, 1))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), "ranks ended with different weights"
    alone = load_file(str(tmp_path / "single/rank0.safetensors"))
    for key in alone:
        assert torch.allclose(rank0[key], alone[key], atol=1e-4, rtol=1e-3), key
    assert (tmp_path / "ddp/ddp.safetensors").exists() and not (tmp_path / "ddp/rank2.safetensors").exists()


def test_the_torchrun_form_of_a_command_trains_the_same_run_on_two_processes(tmp_path: Path, data_root: Path) -> None:
    import shlex

    from core.train.config import config_to_command, torchrun_form

    config = TrainConfig(task="classification", arch="staged_cnn", arch_args={"variant": "baseline", "width": 8},
                         dataset="cifar10", epochs=1, batch_size=64, subset=256, val_size=64, out=str(tmp_path),
                         name="two")
    command = shlex.split(torchrun_form(config_to_command(config), 2))
    assert command[:4] == ["torchrun", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", *command[1:], "--no-record"], env=env,
                            capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    meta = json.loads((tmp_path / "two.json").read_text())
    assert meta["training"]["world_size"] == 2 and meta["recipe"]["batch_size"] == 64
    with pytest.raises(ValueError):
        torchrun_form("rm -rf /")


def test_every_preset_is_a_valid_configuration() -> None:
    from core.train.config import PRESET_NOTES, PRESETS, preset

    for task, presets in PRESETS.items():
        assert {"Quick", "Full"} == set(presets) == set(PRESET_NOTES[task])
        for label in presets:
            config = preset(task, label).validate()
            assert config.task == task


# ---- Muon ----------------------------------------------------------------------------------------------

def test_orthogonalize_flattens_the_singular_values() -> None:
    from core.train.optim import orthogonalize

    generator = torch.Generator().manual_seed(0)
    for shape in ((16, 72), (72, 16)):
        left, _ = torch.linalg.qr(torch.randn(shape[0], 16, generator=generator))
        right, _ = torch.linalg.qr(torch.randn(shape[1], 16, generator=generator))
        matrix = left @ torch.diag(torch.logspace(-2, 1, 16)) @ right.T  # singular values 0.01 to 10
        before = torch.linalg.svdvals(matrix)
        quick = torch.linalg.svdvals(orthogonalize(matrix))  # training's 3 steps
        converged = torch.linalg.svdvals(orthogonalize(matrix, steps=8))
        assert before.max() / before.min() > 900
        assert quick.max() / quick.min() < 40 and quick.max() < 1.3
        assert converged.min() > 0.6 and converged.max() < 1.25  # every direction gets about the same step
        assert orthogonalize(matrix).shape == matrix.shape


def test_muon_keeps_filter_norms_and_trains_the_fast_net(tmp_path: Path, data_root: Path) -> None:
    config = tiny(tmp_path, arch="fastnet", arch_args={"width": 8}, optimizer="muon", epochs=2, lr=0.5,
                  batch_size=32, subset=512, muon_lr=0.1, muon_momentum=0.8, label_smoothing=0.2)
    trainer = Trainer(config)
    result = trainer.fit()
    assert result.status == "finished"
    assert result.history[-1].train_loss < result.history[0].train_loss
    groups = trainer.optimizer.param_groups
    filters = next(g for g in groups if g["orthogonal"])["params"]
    assert filters and all(p.ndim == 4 for p in filters)
    assert all(p.ndim < 4 for g in groups if not g["orthogonal"] for p in g["params"])
    # Each filter bank was renormalised to sqrt(out_channels) before its last step of at most lr x sqrt(out).
    for weight in filters:
        assert abs(weight.norm().item() / len(weight) ** 0.5 - 1) < 0.2
    resumed = Trainer(tiny(tmp_path, **{**config.to_dict(), "epochs": 3, "resume": result.checkpoint})).fit()
    assert resumed.status == "finished" and [r.epoch for r in resumed.history] == [1, 2, 3]


def test_muon_is_refused_for_models_whose_filters_do_not_all_feed_a_norm() -> None:
    with pytest.raises(ConfigError, match="muon optimizer trains fastnet only"):
        TrainConfig(arch="resnet18", optimizer="muon").validate()


def test_switching_a_preset_to_another_architecture_takes_that_architectures_recipe() -> None:
    from core.train.config import for_architecture, preset

    quick = preset("classification", "Quick")
    assert for_architecture(quick, "fastnet") == quick
    staged = for_architecture(quick, "staged_cnn")
    shipped = checkpoints.read_meta(checkpoints.resolve("staged-advanced-cifar10"))["recipe"]
    assert (staged.optimizer, staged.lr, staged.batch_size) == (shipped["optimizer"], shipped["lr"],
                                                                 shipped["batch_size"])
    assert staged.epochs == quick.epochs and staged.arch_args == {}  # the preset's length, the net's own options
    resnet = for_architecture(quick, "resnet18")  # no shipped checkpoint: a standard recipe, never Muon's rate
    assert resnet.optimizer == "sgd" and resnet.lr == 0.1 and resnet.norm_lr_scale == 1.0
    resnet.validate()
    unet = for_architecture(preset("denoising", "Quick"), "unet_denoiser")
    assert unet.optimizer == "adam" and unet.lr <= 0.001
