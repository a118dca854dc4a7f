"""Your own images: reading class folders, checking uploads and zips, and fine-tuning a classifier on them."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import checkpoints, own_data
from core.classify import InputFormat
from core.train import ConfigError, TrainConfig, Trainer
from core.train.config import ServerLimits, own_images_preset
from core.train.engine import Callback
from core.train.jobs import JobManager
from core.train.runs import RunStore
from tests.factories import tiny_classifier


def picture(colour: tuple[int, int, int], size: tuple[int, int], seed: int, fmt: str = "PNG") -> bytes:
    """A noisy picture of one colour (the class is its colour), encoded as ``fmt``."""
    rng = np.random.default_rng(seed)
    array = np.clip(np.array(colour) + rng.normal(0, 30, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def colour_classes(per_class: int = 6) -> list[tuple[str, list[tuple[str, bytes]]]]:
    """Two classes a model can learn in seconds: red JPEGs of one size, blue PNGs of another."""
    return [("red", [(f"r{i}.jpg", picture((220, 30, 30), (48, 40), i, "JPEG")) for i in range(per_class)]),
            ("blue", [(f"b{i}.png", picture((30, 30, 220), (20, 26), 100 + i)) for i in range(per_class)])]


def write_folder(root: Path, per_class: int = 6) -> Path:
    for name, files in colour_classes(per_class):
        (root / name).mkdir(parents=True, exist_ok=True)
        for file_name, payload in files:
            (root / name / file_name).write_bytes(payload)
    return root


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def test_a_folder_is_read_as_the_classifier_sees_images_and_unreadable_files_are_named(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "pets")
    (root / "red" / "notes.txt").write_text("not an image")
    (root / "blue" / "broken.png").write_bytes(picture((0, 0, 255), (20, 20), 1)[:40])
    split = own_data.read_image_folder(root)
    assert split.classes == ["blue", "red"]
    assert split.images.shape == (12, 3, 32, 32) and split.images.dtype == torch.uint8
    assert split.counts() == {"blue": 6, "red": 6}
    assert sorted(s.split(":")[0] for s in split.skipped) == ["blue/broken.png", "red/notes.txt"]
    red = split.images[split.labels == 1].float().mean(dim=(0, 2, 3))
    assert red[0] > 150 and red[2] < 100  # decoded as RGB, red stays red
    grey = own_data.read_image_folder(root, InputFormat(1, 28))
    assert grey.images.shape == (12, 1, 28, 28)
    with pytest.raises(own_data.OwnDataError, match="at least 2 class folders"):
        own_data.read_image_folder(root / "red")


def test_the_holdout_keeps_every_class_in_both_parts() -> None:
    labels = torch.tensor([0] * 10 + [1] * 5 + [2] * 2)
    train, val = own_data.holdout(labels, 0.2, seed=3)
    assert sorted(torch.cat([train, val]).tolist()) == list(range(17))
    assert [int((labels[val] == c).sum()) for c in range(3)] == [2, 1, 1]
    assert own_data.holdout(labels, 0.0)[1].numel() == 0


@pytest.mark.parametrize("names, message", [
    (["cats"], "between 2 and 10"),
    ([str(i) for i in range(11)], "between 2 and 10"),
    (["cats", " "], "has no name"),
    (["Cats", "cats"], "used twice"),
    (["cats", "../dogs"], "cannot be used"),
])
def test_bad_class_names_are_refused(names: list[str], message: str) -> None:
    with pytest.raises(own_data.OwnDataError, match=message):
        own_data.check_class_names(names)


def test_uploads_need_enough_readable_images_per_class(tmp_path: Path) -> None:
    classes = colour_classes(per_class=6)
    assert own_data.write_classes(tmp_path / "ok", classes) == {"blue": 6, "red": 6}
    short = [classes[0], ("blue", classes[1][1][:3] + [("x.png", b"not an image")] * 3)]
    with pytest.raises(own_data.OwnDataError, match=r"at least 5 images.*blue \(3\)"):
        own_data.write_classes(tmp_path / "short", short)
    empty = [classes[0], ("blue", [])]
    with pytest.raises(own_data.OwnDataError, match="no images: blue"):
        own_data.write_classes(tmp_path / "empty", empty)
    with pytest.raises(own_data.OwnDataError, match="too much"):
        own_data.write_classes(tmp_path / "big", classes, own_data.UploadLimits(max_total_mb=0.001))


def test_a_zip_of_class_folders_unpacks_with_or_without_a_top_folder(tmp_path: Path) -> None:
    members = {f"{name}/{file_name}": payload for name, files in colour_classes() for file_name, payload in files}
    assert own_data.extract_zip(zipped(members), tmp_path / "flat") == {"blue": 6, "red": 6}
    nested = {f"photos/{k}": v for k, v in members.items()} | {"__MACOSX/photos/._x": b"", "photos/.DS_Store": b""}
    assert own_data.extract_zip(zipped(nested), tmp_path / "nested") == {"blue": 6, "red": 6}
    assert own_data.read_image_folder(tmp_path / "nested").classes == ["blue", "red"]


@pytest.mark.parametrize("case, message", [
    ("traversal", "outside its own folder"),
    ("absolute", "outside its own folder"),
    ("bomb", "zip bomb"),
    ("many", "too many"),
    ("not images", "no images"),
    ("loose files", "one folder per class"),
    ("not a zip", "not a zip file"),
])
def test_dangerous_or_unusable_zips_are_refused_before_training(tmp_path: Path, case: str, message: str) -> None:
    good = {f"{name}/{file_name}": payload for name, files in colour_classes() for file_name, payload in files}
    payload = {
        "traversal": lambda: zipped(good | {"red/../../evil.png": b"x"}),
        "absolute": lambda: zipped(good | {"/etc/evil.png": b"x"}),
        "bomb": lambda: zipped(good | {"red/huge.png": bytes(200 * 2**20)}),
        "many": lambda: zipped({f"c{i % 2}/{i}.png": b"" for i in range(10_000)}),
        "not images": lambda: zipped(good | {f"green/{i}.txt": b"words" for i in range(6)}),
        "loose files": lambda: zipped(good | {"readme.txt": b"hello"}),
        "not a zip": lambda: b"PK but not really a zip",
    }[case]()
    with pytest.raises(own_data.OwnDataError, match=message):
        own_data.extract_zip(payload, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.png")) or case == "not images"
    assert not (tmp_path / "evil.png").exists() and not (tmp_path.parent / "evil.png").exists()


class Snapshots(Callback):
    """A feature layer's weights after every epoch."""

    def __init__(self) -> None:
        self.features: list[torch.Tensor] = []

    def on_epoch_end(self, trainer, record) -> None:
        conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
        self.features.append(conv.weight.detach().clone())


def test_a_classifier_fine_tuned_on_a_folder_gets_a_new_head_and_keeps_the_class_names(
        tmp_path: Path, data_root: Path) -> None:
    start = tiny_classifier(tmp_path, "start")
    before, _ = checkpoints.load(start)
    conv_before = next(m for m in before.modules() if isinstance(m, torch.nn.Conv2d)).weight
    root = write_folder(tmp_path / "colours", per_class=8)
    (root / "red" / "notes.txt").write_text("not an image")
    snapshots = Snapshots()
    config = own_images_preset(dataset=str(root), arch="staged_cnn", init_from=str(start), epochs=3, head_epochs=1,
                               batch_size=4, max_minutes=None, out=str(tmp_path), name="colours", val_share=0.25)
    result = Trainer(config, [snapshots]).fit()
    assert result.status == "finished", result.message
    assert torch.equal(snapshots.features[0], conv_before)  # the head alone learned in the first epoch
    assert not torch.equal(snapshots.features[2], conv_before)  # then the whole net
    model, meta = checkpoints.load(result.checkpoint)
    assert meta["classes"] == ["blue", "red"] and checkpoints.class_names(meta) == ["blue", "red"]
    assert meta["arch_args"]["num_classes"] == 2 and model(torch.rand(1, 3, 32, 32)).shape == (1, 2)
    assert "held out" in meta["evaluated_on"] and meta["metrics"]["test_accuracy"] >= 0.75
    assert meta["training"]["skipped_files"][0].startswith("red/notes.txt")


def test_a_capped_server_trains_on_uploads_only_and_starts_from_checkpoints_by_name(tmp_path: Path) -> None:
    limits = ServerLimits(max_epochs=100)
    folder = write_folder(tmp_path / "server-folder")
    with pytest.raises(ConfigError, match="not on the server's folders"):
        limits.apply(own_images_preset(dataset=str(folder)).validate())
    with pytest.raises(ConfigError, match="init_from only by checkpoint name"):
        limits.apply(own_images_preset(dataset="cifar10", init_from="/etc/passwd"))
    named = TrainConfig(arch="fastnet", init_from="fastnet-cifar10", epochs=1)
    assert limits.apply(named).init_from == "fastnet-cifar10"
    with pytest.raises(ConfigError, match="trains classifiers only"):
        TrainConfig(task="denoising", arch="conv_dae", dataset=str(folder)).validate()


def test_a_page_run_trains_on_its_uploads_and_removes_them_when_it_ends(tmp_path: Path, data_root: Path,
                                                                         app_home: Path) -> None:
    start = tiny_classifier(tmp_path, "start")
    manager, store = JobManager(), RunStore(tmp_path / "runs.sqlite3")
    config = own_images_preset(dataset=".", arch="staged_cnn", init_from=str(start), epochs=2, head_epochs=1,
                               batch_size=4, max_minutes=None, name="page-colours", out=str(tmp_path))
    with pytest.raises(own_data.OwnDataError, match="used twice"):
        manager.start(config, store, ServerLimits(), own_images=lambda folder: own_data.write_classes(
            folder, [("red", []), ("Red", [])]))
    assert manager.current() is None and not list((app_home / "jobs").iterdir())  # nothing started, nothing left
    job = manager.start(config, store, ServerLimits(), owner="me",
                        own_images=lambda folder: own_data.write_classes(folder, colour_classes()))
    images = Path(job.config.dataset)
    assert images.is_relative_to(job.folder) and len(list(images.rglob("*.*"))) == 12
    job.thread.join(180)
    snap = job.snapshot()
    assert snap["status"] == "finished", snap["message"]
    assert not job.folder.exists()  # the uploads went with the run
    meta = json.loads(Path(snap["checkpoint"]).with_suffix(".json").read_text())
    assert meta["classes"] == ["blue", "red"]
