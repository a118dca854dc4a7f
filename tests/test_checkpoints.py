"""core.checkpoints: safetensors + JSON round trip, atomic writes, and refusal of bad files."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from core import checkpoints, display, models, paths


def tiny_classifier() -> torch.nn.Module:
    return models.build("resnet18", width=8)


def meta_for(name: str) -> dict:
    return {"name": name, "task": "classification", "architecture": "resnet18",
            "arch_args": {"width": 8}, "dataset": "cifar10",
            "metrics": {"test_accuracy": 0.5}, "measured_by": "pytest", "recipe": {"epochs": 1}}


def save_user_checkpoint(name: str) -> tuple[torch.nn.Module, Path]:
    model = tiny_classifier()
    path = paths.user_checkpoints() / name
    checkpoints.save(model, path, meta_for(name))
    return model, path.with_suffix(".safetensors")


def test_round_trip_by_name_restores_weights_and_meta(app_home: Path) -> None:
    model, weights = save_user_checkpoint("tiny")
    loaded, meta = checkpoints.load("tiny")
    assert not loaded.training and next(loaded.parameters()).device.type == "cpu"
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert meta["num_params"] == checkpoints.count_parameters(model)
    assert meta["metrics"] == {"test_accuracy": 0.5} and meta["created"]
    sidecar = json.loads(weights.with_suffix(".json").read_text())
    assert set(checkpoints.REQUIRED_FIELDS) <= set(sidecar)
    assert checkpoints.load(weights)[1]["name"] == "tiny"  # by path too


def test_listing_filters_by_task_and_includes_user_checkpoints(app_home: Path) -> None:
    save_user_checkpoint("mine")
    assert "mine" in [m["name"] for m in checkpoints.list_checkpoints("classification")]
    assert "mine" not in [m["name"] for m in checkpoints.list_checkpoints("denoising")]
    row = display.summary_row(checkpoints.list_checkpoints("classification")[-1])
    assert row["test metrics"] == "accuracy 50.00%" and row["shipped"] is False


def test_summary_rows_read_like_a_person_would_say_them() -> None:
    meta = {"name": "n", "task": "classification", "architecture": "fastnet", "dataset": "cifar10",
            "num_params": 1_970_000, "path": "/elsewhere/n.safetensors",
            "metrics": {"test_accuracy": 0.9193, "test_accuracy_tta": 0.926, "latency_ms": 10.5,
                        "throughput_batch256": 278, "test_f1": 0.5}}
    row = display.summary_row(meta)
    assert row["test metrics"] == "accuracy 91.93%, with TTA 92.60%, 10.5 ms per image, f1 0.5"
    assert row["parameters"] == "1.97M"
    denoiser = {**meta, "metrics": {"test_psnr_gaussian25": 28.604, "test_psnr_dataset_gaussian25": 28.42,
                                    "test_ssim_gaussian25": 0.889, "ms_per_image_gaussian25": 4.6,
                                    "test_psnr_salt_pepper0.07": 42.294}}
    assert display.summary_row(denoiser)["test metrics"] == "Gaussian σ=25: 28.60 dB, salt & pepper 0.07: 42.29 dB"
    hinted = {**meta, "task": "colorization",
              "metrics": {"test_psnr_dataset": 23.16, "test_psnr_dataset_hints0": 23.16,
                          "test_psnr_dataset_hints1": 24.2, "test_psnr_dataset_hints10": 27.163,
                          "photos_psnr_dataset_hints20": 25.3}}
    assert display.summary_row(hinted)["test metrics"] == "PSNR (set) 23.16 dB, with 10 hints: 27.16 dB"
    assert display.checkpoint_label(meta) == "n (accuracy 91.93%, with TTA 92.60%, 10.5 ms per image, f1 0.5, " \
        "1.97M parameters · trained here)"


def test_a_result_is_downloaded_under_a_name_every_file_system_takes() -> None:
    assert display.result_file_name("test image #3: cat", "denoised") == "test_image_3_cat-denoised.png"
    assert display.result_file_name("my holiday photo.jpeg", "colorized") == "my_holiday_photo-colorized.png"
    assert display.result_file_name("", "denoised") == "image-denoised.png"
    assert len(display.result_file_name("x" * 300 + ".png", "colorized")) == 40 + len("-colorized.png")


def test_selectors_open_on_the_best_measured_checkpoint() -> None:
    def meta(name: str, task: str, **metrics: float) -> dict:
        return {"name": name, "task": task, "metrics": metrics}
    colorizers = [meta("a-unmeasured", "colorization"), meta("b-vivid", "colorization", test_psnr_dataset=22.19),
                  meta("c-faithful", "colorization", test_psnr_dataset=23.55),
                  meta("d-broken", "colorization", test_psnr_dataset=float("nan"))]
    assert [m["name"] for m in checkpoints.best_first(colorizers)] == ["c-faithful", "b-vivid", "a-unmeasured",
                                                                      "d-broken"]
    # A hint colorizer measured a little better still comes after the plain ones.
    hinted = {**meta("e-hints", "colorization", test_psnr_dataset=23.58), "architecture": "hint_refiner",
              "arch_args": {}}
    assert [m["name"] for m in checkpoints.best_first([hinted, *colorizers])][:2] == ["c-faithful", "b-vivid"]
    classifiers = [meta("fast", "classification", test_accuracy=0.9374),
                   meta("staged", "classification", test_accuracy=0.8907, test_psnr_dataset=99.0)]
    assert [m["name"] for m in checkpoints.best_first(classifiers)] == ["fast", "staged"]
    digits = {**meta("digits", "classification", test_accuracy=0.99), "dataset": "mnist"}
    photos = [{**m, "dataset": "cifar10"} for m in classifiers]
    assert checkpoints.best_first([digits, *photos])[0]["name"] == "digits"
    # Visitors bring photos: a selector prefers the CIFAR-10 models, however well the digits model scores.
    assert [m["name"] for m in checkpoints.best_first([digits, *photos], "cifar10")] == ["fast", "staged", "digits"]


def test_wrapper_prefixes_are_stripped(app_home: Path) -> None:
    model = tiny_classifier()
    wrapped = torch.nn.Module()
    wrapped.module = model  # what DistributedDataParallel looks like
    checkpoints.save(wrapped.module, paths.user_checkpoints() / "plain", meta_for("plain"))
    from safetensors.torch import save_file

    state = {f"module._orig_mod.{k}": v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(paths.user_checkpoints() / "prefixed.safetensors"))
    (paths.user_checkpoints() / "prefixed.json").write_text(
        (paths.user_checkpoints() / "plain.json").read_text())
    loaded, _ = checkpoints.load("prefixed")
    assert torch.equal(loaded.head.weight, model.head.weight)


def test_failed_write_leaves_the_previous_checkpoint_whole(app_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, weights = save_user_checkpoint("safe")
    before = weights.read_bytes(), weights.with_suffix(".json").read_text()

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_file", disk_full)
    with pytest.raises(OSError, match="No space left"):
        checkpoints.save(tiny_classifier(), weights, meta_for("safe"))
    assert (weights.read_bytes(), weights.with_suffix(".json").read_text()) == before
    assert [p.name for p in weights.parent.iterdir() if p.name.endswith(".tmp")] == []
    checkpoints.load("safe")


def test_missing_metadata_is_refused(app_home: Path) -> None:
    meta = meta_for("x")
    del meta["dataset"]
    with pytest.raises(ValueError, match="dataset"):
        checkpoints.save(tiny_classifier(), paths.user_checkpoints() / "x", meta)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda w: w.write_bytes(w.read_bytes()[: len(w.read_bytes()) // 2]), "not a readable safetensors"),
        (lambda w: w.with_suffix(".json").write_text("{not json"), "not valid JSON"),
        (lambda w: w.with_suffix(".json").unlink(), "no JSON sidecar"),
        (lambda w: _edit_sidecar(w, architecture="vgg99"), "Unknown architecture 'vgg99'"),
        (lambda w: _edit_sidecar(w, arch_args={"width": 16}), "do not fit resnet18"),
        (lambda w: _edit_sidecar(w, task="denoising"), "is a classification model"),
    ],
    ids=["truncated", "sidecar-not-json", "no-sidecar", "unknown-arch", "wrong-shapes", "wrong-task"],
)
def test_bad_checkpoints_raise_a_named_error(app_home: Path, damage, message: str) -> None:
    _, weights = save_user_checkpoint("bad")
    damage(weights)
    with pytest.raises(checkpoints.CheckpointError, match=message):
        checkpoints.load("bad")


def _edit_sidecar(weights: Path, **changes: object) -> None:
    sidecar = weights.with_suffix(".json")
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), **changes}))


class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickles_are_ignored_with_a_warning_and_never_run(app_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = app_home / "pwned"
    folder = paths.user_checkpoints()
    (folder / "evil.pt").write_bytes(pickle.dumps(_Payload(str(marker))))
    (folder / "evil.json").write_text(json.dumps(meta_for("evil")))
    save_user_checkpoint("good")

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load must never be called")

    monkeypatch.setattr(torch, "load", forbidden)
    metas, problems = checkpoints.scan_checkpoints()
    assert [m["name"] for m in metas if m["path"].startswith(str(folder))] == ["good"]
    messages = " ".join(p.message for p in problems)
    assert "evil.pt was ignored" in messages and "evil.json has no weights" in messages
    with pytest.raises(checkpoints.CheckpointError):
        checkpoints.load(folder / "evil.pt")
    assert not marker.exists()


def test_damaged_files_are_listed_as_problems_not_checkpoints(app_home: Path) -> None:
    _, weights = save_user_checkpoint("broken")
    weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    save_user_checkpoint("fine")
    metas, problems = checkpoints.scan_checkpoints()
    names = [m["name"] for m in metas]
    assert "fine" in names and "broken" not in names
    assert any(p.path == weights and "safetensors" in p.message for p in problems)


def test_unknown_name_lists_where_it_looked(app_home: Path) -> None:
    with pytest.raises(checkpoints.CheckpointError, match="No checkpoint named 'nope'"):
        checkpoints.load("nope")


def test_saved_files_are_readable_by_others(app_home: Path) -> None:
    _, weights = save_user_checkpoint("perm")
    assert os.stat(weights).st_mode & 0o044 == 0o044
