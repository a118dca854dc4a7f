"""core.data: real datasets load with the published statistics; errors say what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import data

EXPECTED = {
    # name: (train size, test size, train channel means, per-class train count or None)
    "cifar10": (50_000, 10_000, (0.4914, 0.4822, 0.4465)),
    "mnist": (60_000, 10_000, (0.1307,)),
    "fashion_mnist": (60_000, 10_000, (0.2860,)),
}


def channel_means(images: torch.Tensor) -> list[float]:
    return (images.double().mean(dim=(0, 2, 3)) / 255).tolist()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_datasets_match_published_statistics(name: str, data_root: Path) -> None:
    train_size, test_size, means = EXPECTED[name]
    train = data.load_dataset(name, "train", data_root)
    test = data.load_dataset(name, "test", data_root)
    assert train.images.shape[0] == train_size and test.images.shape[0] == test_size
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert train.images.shape[1] == len(means)
    assert [round(m, 4) for m in channel_means(train.images)] == pytest.approx(means, abs=1e-4)
    assert len(train.classes) == 10 and train.labels.unique().tolist() == list(range(10))
    if name != "mnist":  # MNIST's classes are not balanced
        assert train.labels.bincount().tolist() == [train_size // 10] * 10
        assert test.labels.bincount().tolist() == [test_size // 10] * 10


def test_cifar10_test_split_statistics_and_order(data_root: Path) -> None:
    test = data.load_dataset("cifar10", "test", data_root)
    assert test.classes[0] == "airplane" and test.classes[9] == "truck"
    assert [round(m, 4) for m in channel_means(test.images)] == pytest.approx([0.4942, 0.4851, 0.4504], abs=1e-4)
    # Rows keep the official order: the first official test image is a cat.
    assert test.classes[test.labels[0]] == "cat"


def test_second_load_comes_from_the_cache(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = data.load_dataset("cifar10", "test", data_root)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(data, "_read_png_folders", refuse)
    monkeypatch.setattr(data, "_read_torchvision", refuse)
    second = data.load_dataset("cifar10", "test", data_root)
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)


def write_png_dataset(root: Path, name: str, split: str, per_class: int, size: int, mode: str) -> None:
    classes = data.DATASETS[name].classes
    generator = torch.Generator().manual_seed(0)
    for label, class_name in enumerate(classes[:3]):
        folder = root / name / split / class_name
        folder.mkdir(parents=True)
        for index in range(per_class):
            pixels = torch.randint(0, 256, (size, size, 3 if mode == "RGB" else 1), generator=generator)
            array = pixels.to(torch.uint8).squeeze(-1).numpy()
            Image.fromarray(array, mode=mode).save(folder / f"{label * per_class + index:05d}.png")


def test_png_folder_layout_round_trips_exact_pixels(tmp_path: Path) -> None:
    write_png_dataset(tmp_path, "cifar10", "test", per_class=4, size=32, mode="RGB")
    loaded = data.load_dataset("cifar10", "test", tmp_path, progress=lambda done, total: None)
    assert loaded.images.shape == (12, 3, 32, 32)
    assert loaded.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert loaded.indices_of(loaded.classes[1]) == [4, 5, 6, 7] and loaded.indices_of(None) == list(range(12))
    expected = torch.from_numpy(np.array(Image.open(tmp_path / "cifar10/test/bird/00011.png"))).permute(2, 0, 1)
    assert torch.equal(loaded.images[11], expected)
    picture = loaded.picture(11)  # as the pages show a test image: the stored pixels, unchanged
    assert picture.mode == "RGB" and np.array_equal(np.array(picture), expected.permute(1, 2, 0).numpy())


def test_gray_png_folders_decode_to_one_channel(tmp_path: Path) -> None:
    write_png_dataset(tmp_path, "mnist", "train", per_class=2, size=28, mode="L")
    loaded = data.load_dataset("mnist", "train", tmp_path)
    assert loaded.images.shape == (6, 1, 28, 28)
    assert loaded.picture(5).mode == "L" and loaded.picture(5).size == (28, 28)


def test_progress_is_reported_while_decoding(tmp_path: Path) -> None:
    write_png_dataset(tmp_path, "cifar10", "train", per_class=2, size=32, mode="RGB")
    calls: list[tuple[int, int]] = []
    data.load_dataset("cifar10", "train", tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (6, 6)


def test_missing_dataset_says_what_to_put_where(tmp_path: Path) -> None:
    with pytest.raises(data.DatasetNotFoundError) as caught:
        data.load_dataset("cifar10", "train", tmp_path)
    message = str(caught.value)
    assert str(tmp_path.resolve() / "cifar-10-batches-py") in message
    assert str(tmp_path.resolve() / "cifar10") + "/{train,test}/<class>/<index>.png" in message


def test_download_failure_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFAR_LAB_DATA_MIRROR", "http://127.0.0.1:1/")  # nothing listens there: as if offline
    with pytest.raises(data.DatasetNotFoundError, match="Downloading CIFAR-10 failed") as caught:
        data.load_dataset("cifar10", "test", tmp_path, download=True)
    assert "No internet connection here" in str(caught.value) and "make data" in str(caught.value)


def test_corrupt_png_names_the_file(tmp_path: Path) -> None:
    write_png_dataset(tmp_path, "cifar10", "test", per_class=1, size=32, mode="RGB")
    bad = tmp_path / "cifar10/test/airplane/00000.png"
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(data.DatasetError, match=r"00000\.png"):
        data.load_dataset("cifar10", "test", tmp_path)


def test_wrong_image_size_is_refused(tmp_path: Path) -> None:
    write_png_dataset(tmp_path, "cifar10", "test", per_class=1, size=30, mode="RGB")
    with pytest.raises(data.DatasetError, match=r"30x30"):
        data.load_dataset("cifar10", "test", tmp_path)


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match="Unknown dataset"):
        data.load_dataset("imagenet", "train")
    with pytest.raises(ValueError, match="Unknown split"):
        data.load_dataset("cifar10", "validation")


def test_dataset_status_reports_found_and_missing(tmp_path: Path) -> None:
    write_png_dataset(tmp_path, "cifar10", "test", per_class=1, size=32, mode="RGB")
    rows = {(r["dataset"], r["split"]): r for r in data.dataset_status(tmp_path)}
    assert rows["cifar10", "test"]["found"] and rows["cifar10", "test"]["source"] == "PNG folders in cifar10/test"
    assert not rows["mnist", "train"]["found"] and "MNIST/raw" in rows["mnist", "train"]["source"]
    (tmp_path / "MNIST/raw").mkdir(parents=True)
    for file in data.DATASETS["mnist"].torchvision_files["test"]:
        (tmp_path / file).write_bytes(b"")
    rows = {(r["dataset"], r["split"]): r for r in data.dataset_status(tmp_path)}
    assert rows["mnist", "test"]["source"] == "torchvision files in MNIST/raw"  # inside the data folder, not "."


# ---- the batched loader -------------------------------------------------------------------------

def numbered_images(count: int, size: int = 8) -> torch.Tensor:
    """Images whose pixels encode (image index, row, column), so any mix-up is visible."""
    index = torch.arange(count).view(count, 1, 1, 1)
    rows = torch.arange(size).view(1, 1, size, 1)
    cols = torch.arange(size).view(1, 1, 1, size)
    return (index * 7 + rows * 3 + cols * 11).remainder(256).to(torch.uint8).expand(count, 3, size, size).clone()


def test_loader_visits_every_image_once_per_epoch() -> None:
    images, labels = numbered_images(103), torch.arange(103)
    loader = data.TensorLoader(images, labels, batch_size=10, seed=3)
    seen = torch.cat([batch_labels for _, batch_labels in loader])
    assert len(loader) == 11 and sorted(seen.tolist()) == list(range(103))
    for batch, batch_labels in loader:
        assert batch.dtype == torch.float32 and batch.min() >= 0 and batch.max() <= 1
        assert torch.equal((batch * 255).round().to(torch.uint8), images[batch_labels])


def test_loader_is_seeded_and_changes_between_epochs() -> None:
    images, labels = numbered_images(64), torch.arange(64)

    def epoch_order(seed: int, epoch: int) -> list[int]:
        loader = data.TensorLoader(images, labels, 16, seed=seed, flip=True, translate=2)
        loader.set_epoch(epoch)
        return torch.cat([y for _, y in loader]).tolist()

    assert epoch_order(1, 0) == epoch_order(1, 0)
    assert epoch_order(1, 0) != epoch_order(1, 1)
    assert epoch_order(1, 0) != epoch_order(2, 0)


def test_flip_and_translate_move_pixels_and_keep_content() -> None:
    images = numbered_images(1)
    flipped = data.augment(images, None, torch.tensor([True]))
    assert torch.equal(flipped, images.flip(-1))
    shifted = data.augment(images, torch.tensor([[0, 2]]), None)
    assert torch.equal(shifted[..., :-2], images[..., 2:])
    # Reflected edge: columns 8 and 9 (out of range) mirror to 6 and 5, without repeating column 7.
    assert torch.equal(shifted[..., -2:], images[..., [6, 5]])
    augmented = data.TensorLoader(numbered_images(256), torch.arange(256), 256, flip=True, translate=2, seed=0)
    batch, _ = next(iter(augmented))
    plain = numbered_images(256)[_].float() / 255
    changed = (batch != plain).flatten(1).any(1).float().mean()
    assert 0.5 < changed < 1.0  # most, not all, images move


def test_drop_last_and_shards_split_the_data_disjointly() -> None:
    images, labels = numbered_images(50), torch.arange(50)
    loader = data.TensorLoader(images, labels, 8, drop_last=True)
    assert len(loader) == 6 and all(len(y) == 8 for _, y in loader)
    shards = [torch.cat([y for _, y in data.TensorLoader(images, labels, 5, seed=4, rank=r, world_size=3)])
              for r in range(3)]
    assert all(len(s) == 16 for s in shards)
    everything = torch.cat(shards).tolist()
    assert len(set(everything)) == 48


def test_loader_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="uint8"):
        data.TensorLoader(torch.zeros(2, 3, 4, 4), torch.zeros(2), 1)
    with pytest.raises(ValueError, match="batch_size"):
        data.TensorLoader(numbered_images(2), torch.zeros(2), 0)
    with pytest.raises(ValueError, match="rank"):
        data.TensorLoader(numbered_images(2), torch.zeros(2), 1, rank=2, world_size=2)
