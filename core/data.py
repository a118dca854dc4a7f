"""Datasets as whole uint8 tensors, and a batched loader that augments on the device.

``load_dataset`` finds a dataset under the data root, decodes it once and caches
the result as a safetensors file keyed by its source, so later loads take a
fraction of a second. ``TensorLoader`` keeps the whole split on the training
device and crops and flips entire batches at once: no per-image Python runs in
the training loop (the airbench recipe).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load, save_file
from torchvision.io import ImageReadMode, decode_png, read_file

from core import images, paths
from core.fileio import atomic_write_bytes, temp_path

# torchvision 0.29 (pinned) deprecates its image codecs in favour of torchcodec, which it does not ship.
# They still work and decode CIFAR-10 1.4x faster than Pillow here (the Quick preset's wall time counts it).
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                        category=DeprecationWarning)

ProgressFn = Callable[[int, int], None]


class DatasetNotFoundError(FileNotFoundError):
    """No usable copy of a dataset was found; the message says what to put where."""


class DatasetError(RuntimeError):
    """A dataset was found but could not be read."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    channels: int
    size: int
    classes: tuple[str, ...]
    torchvision_class: str  # name in torchvision.datasets
    torchvision_files: dict[str, tuple[str, ...]]  # split -> files under root that torchvision reads


DATASETS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(
        name="cifar10",
        title="CIFAR-10",
        channels=3,
        size=32,
        classes=("airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"),
        torchvision_class="CIFAR10",
        torchvision_files={
            "train": tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
            "test": ("cifar-10-batches-py/test_batch",),
        },
    ),
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        channels=1,
        size=28,
        classes=tuple(str(d) for d in range(10)),
        torchvision_class="MNIST",
        torchvision_files={
            "train": ("MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/train-labels-idx1-ubyte"),
            "test": ("MNIST/raw/t10k-images-idx3-ubyte", "MNIST/raw/t10k-labels-idx1-ubyte"),
        },
    ),
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist",
        title="Fashion-MNIST",
        channels=1,
        size=28,
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        torchvision_class="FashionMNIST",
        torchvision_files={
            "train": ("FashionMNIST/raw/train-images-idx3-ubyte",
                      "FashionMNIST/raw/train-labels-idx1-ubyte"),
            "test": ("FashionMNIST/raw/t10k-images-idx3-ubyte",
                     "FashionMNIST/raw/t10k-labels-idx1-ubyte"),
        },
    ),
}
SPLITS = ("train", "test")


def title(dataset: str) -> str:
    """How a dataset reads on a page: its title, or for an image folder (your images) the folder's name."""
    spec = DATASETS.get(dataset)
    name = Path(dataset).name
    return spec.title if spec else "your images" if name == "your-images" else f"the image folder {name}"


@dataclass
class ImageDataset:
    """One split of a dataset, fully in memory."""

    name: str
    split: str
    images: torch.Tensor  # uint8, N x C x H x W
    labels: torch.Tensor  # int64, N
    classes: list[str]
    source: str  # where it was read from, for the UI

    def __len__(self) -> int:
        return len(self.labels)

    def indices_of(self, class_name: str | None) -> list[int]:
        """Indices of the images of one class, or of every image for None."""
        if class_name is None:
            return list(range(len(self)))
        return (self.labels == self.classes.index(class_name)).nonzero().flatten().tolist()

    def picture(self, index: int) -> Image.Image:
        """Image ``index`` as it is stored: RGB, or one-channel grey for MNIST's kind."""
        return Image.fromarray(self.images[index].permute(1, 2, 0).squeeze(-1).numpy())


@dataclass(frozen=True)
class Source:
    """A place a dataset split can be read from."""

    kind: str  # "torchvision" or "png"
    path: Path

    def describe(self) -> str:
        what = "torchvision files" if self.kind == "torchvision" else "PNG folders"
        return f"{what} in {self.path}"


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    return DATASETS[name]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose 'train' or 'test'.")


def find_source(name: str, split: str, root: str | Path | None = None) -> Source | None:
    """The first usable source of ``name``/``split`` under ``root``, or None."""
    spec, root = _spec(name), Path(root) if root is not None else paths.data_root()
    _check_split(split)
    if all((root / f).is_file() for f in spec.torchvision_files[split]):
        return Source("torchvision", root)
    png_dir = root / name / split
    if png_dir.is_dir() and any(p.is_dir() for p in png_dir.iterdir()):
        return Source("png", png_dir)
    return None


def how_to_get(name: str, root: str | Path | None = None) -> str:
    """Plain instructions for putting a missing dataset where CIFAR Lab looks."""
    from core.download import manual_route  # core.download reads this module's specs

    spec, root = _spec(name), Path(root) if root is not None else paths.data_root()
    root = root.resolve()
    tv_dir = Path(spec.torchvision_files["test"][0]).parent
    return (
        f"{spec.title} was not found under {root}. Run `make data` (or `python -m core.download {name}`) "
        f"to download it with its checksums verified, or {manual_route(name)} so that its files "
        f"are in {root / tv_dir}. PNG files as {root / name}/{{train,test}}/<class>/<index>.png work too. "
        "Set CIFAR_LAB_DATA to use another folder."
    )


def _within_root(spec: DatasetSpec, split: str, source: Source) -> str:
    """Where a found split lies inside the data folder ("PNG folders in cifar10/train", "torchvision files in
    MNIST/raw"): the Home page names the data folder once rather than in every row."""
    if source.kind == "torchvision":
        return f"torchvision files in {Path(spec.torchvision_files[split][0]).parent}"
    return f"PNG folders in {Path(spec.name) / split}"


def dataset_status(root: str | Path | None = None) -> list[dict[str, str | bool]]:
    """For every dataset and split: whether it was found, and where under the data root (for the Home page)."""
    rows: list[dict[str, str | bool]] = []
    for name, spec in DATASETS.items():
        for split in SPLITS:
            source = find_source(name, split, root)
            rows.append({
                "dataset": name,
                "title": spec.title,
                "split": split,
                "found": source is not None,
                "source": _within_root(spec, split, source) if source else how_to_get(name, root),
            })
    return rows


def load_dataset(
    name: str,
    split: str,
    root: str | Path | None = None,
    *,
    download: bool = False,
    progress: ProgressFn | None = None,
) -> ImageDataset:
    """Load one split as uint8 N x C x H x W images, int64 labels and class names.

    Looks for torchvision's files under ``root``, then for PNG folders
    ``root/<name>/<split>/<class>/*.png``. With ``download=True`` and neither found,
    the official files are downloaded and checked (core.download; needs internet).
    Raises DatasetNotFoundError with instructions when nothing is usable.
    """
    spec = _spec(name)
    _check_split(split)
    root = Path(root) if root is not None else paths.data_root()
    source = find_source(name, split, root)
    if source is None and download:
        _download(spec, split, root)
        source = find_source(name, split, root)
    if source is None:
        raise DatasetNotFoundError(how_to_get(name, root))

    cache_file = paths.cache_dir() / f"{name}-{split}-{_source_key(spec, split, source)}.safetensors"
    cached = _read_cache(cache_file)
    if cached is not None:
        images, labels, classes = cached
    else:
        if source.kind == "torchvision":
            images, labels = _read_torchvision(spec, split, source.path)
            classes = list(spec.classes)
        else:
            images, labels, classes = _read_png_folders(spec, source.path, progress)
        _write_cache(cache_file, images, labels, classes)
    return ImageDataset(name, split, images, labels, classes, source.describe())


def _download(spec: DatasetSpec, split: str, root: Path) -> None:
    from core.download import DownloadError, download_datasets

    try:
        download_datasets([spec.name], root)
    except DownloadError as error:
        raise DatasetNotFoundError(
            f"Downloading {spec.title} failed ({error}). " + how_to_get(spec.name, root)
        ) from error


def _source_key(spec: DatasetSpec, split: str, source: Source) -> str:
    """A short hash that changes when the source's files change."""
    parts: list[str] = [source.kind, str(source.path.resolve())]
    if source.kind == "torchvision":
        for rel in spec.torchvision_files[split]:
            stat = (source.path / rel).stat()
            parts.append(f"{rel}:{stat.st_size}:{stat.st_mtime_ns}")
    else:
        for class_dir in sorted(p for p in source.path.iterdir() if p.is_dir()):
            parts.append(f"{class_dir.name}:{class_dir.stat().st_mtime_ns}:{len(os.listdir(class_dir))}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def _read_cache(path: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]] | None:
    if not path.is_file():
        return None
    try:
        # Read the bytes outright: lazily mapped pages would make the first epoch pay for the disk.
        tensors = load(path.read_bytes())
        classes = json.loads(path.with_suffix(".json").read_text())["classes"]
        return tensors["images"], tensors["labels"], classes
    except Exception:  # a damaged cache is rebuilt, never trusted
        return None


def _write_cache(path: Path, images: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> None:
    try:
        atomic_write_bytes(path.with_suffix(".json"), json.dumps({"classes": classes}).encode())
        tmp = temp_path(path)
        try:
            save_file({"images": images.contiguous(), "labels": labels.contiguous()}, str(tmp))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as error:  # a read-only cache only costs speed
        print(f"cifar_lab: could not write dataset cache {path}: {error}", file=sys.stderr)


def _read_torchvision(spec: DatasetSpec, split: str, root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read torchvision's files. For CIFAR-10 torchvision checks each batch file's MD5
    against the official one before reading it, so only the official files are parsed."""
    import torchvision.datasets

    cls = getattr(torchvision.datasets, spec.torchvision_class)
    try:
        ds = cls(root=str(root), train=split == "train", download=False)
    except Exception as error:
        raise DatasetError(f"torchvision could not read {spec.title} in {root}: {error}") from error
    data = torch.as_tensor(ds.data)
    images = data.permute(0, 3, 1, 2) if data.ndim == 4 else data.unsqueeze(1)
    labels = torch.as_tensor(ds.targets, dtype=torch.int64)
    return images.contiguous(), labels


def _read_png_folders(
    spec: DatasetSpec, folder: Path, progress: ProgressFn | None
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = [(path, label) for label, name in enumerate(classes)
             for path in (folder / name).iterdir() if path.suffix.lower() == ".png"]
    if not files:
        raise DatasetError(f"No PNG files in the class folders of {folder}.")
    # Numeric file names are rows of the official order; keep it so indices mean the same everywhere.
    if all(path.stem.isdigit() for path, _ in files):
        files.sort(key=lambda item: int(item[0].stem))
    else:
        files.sort(key=lambda item: (item[1], item[0].name))

    mode = ImageReadMode.RGB if spec.channels == 3 else ImageReadMode.GRAY
    images = torch.empty(len(files), spec.channels, spec.size, spec.size, dtype=torch.uint8)
    report = progress or _tqdm_progress(f"Decoding {spec.title} ({folder.name})")

    def decode(path: Path) -> torch.Tensor:
        try:
            array = decode_png(read_file(str(path)), mode=mode)
        except (OSError, RuntimeError, ValueError) as error:
            raise DatasetError(f"Could not decode {path}: {error}") from error
        if tuple(array.shape[1:]) != (spec.size, spec.size):
            raise DatasetError(
                f"{path} is {array.shape[2]}x{array.shape[1]}; {spec.title} images are {spec.size}x{spec.size}."
            )
        return array

    # torchvision's libpng decoder releases the GIL and skips Pillow's per-image overhead: on two cores,
    # two threads decode the 60,000 CIFAR-10 PNGs about 1.4x faster than Pillow on threads did.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        arrays = pool.map(decode, [path for path, _ in files], chunksize=256)
        for index, array in enumerate(arrays):
            images[index] = array
            if index % 500 == 0 or index == len(files) - 1:
                report(index + 1, len(files))
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    return images, labels, classes


def _tqdm_progress(description: str) -> ProgressFn:
    from tqdm import tqdm

    bar: list[tqdm] = []

    def report(done: int, total: int) -> None:
        if not bar:
            bar.append(tqdm(total=total, desc=description, unit="img", file=sys.stderr))
        bar[0].update(done - bar[0].n)
        if done >= total:
            bar[0].close()

    return report


class TensorLoader:
    """Batches from a split held as one uint8 tensor on ``device``.

    Random translation (reflect-padded, up to ``translate`` pixels) and horizontal
    flips (random, or alternating between epochs) are drawn for the whole epoch at
    once from a seeded generator and applied to each batch with a single gather.
    Augmentation is drawn in dataset order, so a sample gets the same augmentation
    whichever rank of a distributed run takes it.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        flip: bool = False,
        alternate_flips: bool = False,
        translate: int = 0,
        drop_last: bool = False,
        seed: int = 0,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("images must be a uint8 tensor N x C x H x W")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of size {world_size}")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size = batch_size
        self.shuffle, self.flip, self.translate = shuffle, flip, translate
        self.alternate_flips = alternate_flips
        self.drop_last, self.seed = drop_last, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle and augmentation to draw (as DistributedSampler does)."""
        self.epoch = epoch

    def _shard_size(self) -> int:
        # Every rank gets the same number of samples, or DDP's collective calls would hang.
        return len(self.labels) // self.world_size

    def __len__(self) -> int:
        size = self._shard_size()
        return size // self.batch_size if self.drop_last else -(-size // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        count = len(self.labels)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(count, generator=generator) if self.shuffle else torch.arange(count)
        shift = torch.randint(-self.translate, self.translate + 1, (count, 2), generator=generator)
        if self.alternate_flips:
            # Airbench's alternating flips: a fixed random half in even epochs, the other half in odd
            # ones, so every image is seen both ways every two epochs instead of at random.
            base = torch.rand(count, generator=torch.Generator().manual_seed(self.seed)) < 0.5
            flips = base ^ bool(self.epoch % 2)
        else:
            flips = torch.rand(count, generator=generator) < 0.5
        mine = order[: self._shard_size() * self.world_size][self.rank :: self.world_size]
        for batch in range(len(self)):
            index = mine[batch * self.batch_size : (batch + 1) * self.batch_size]
            on_device = index.to(self.device)
            images = self.images[on_device]
            if self.translate or self.flip:
                images = augment(images, shift[index] if self.translate else None,
                                 flips[index] if self.flip else None)
            yield images.float().div_(255), self.labels[on_device]


def augment(images: torch.Tensor, shift: torch.Tensor | None, flip: torch.Tensor | None) -> torch.Tensor:
    """Translate each image by ``shift`` (dy, dx; edges reflected) and mirror those with ``flip``."""
    count, channels, height, width = images.shape
    device = images.device
    rows = torch.arange(height).expand(count, height)
    cols = torch.arange(width).expand(count, width)
    if shift is not None:
        rows = _reflect(rows + shift[:, :1], height)
        cols = _reflect(cols + shift[:, 1:], width)
    if flip is not None:
        cols = torch.where(flip[:, None], cols.flip(1), cols)
    n = torch.arange(count, device=device)[:, None, None, None]
    c = torch.arange(channels, device=device)[None, :, None, None]
    return images[n, c, rows.to(device)[:, None, :, None], cols.to(device)[:, None, None, :]]


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Mirror out-of-range indices back inside [0, size) without repeating the edge pixel."""
    index = index.abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)


def photo_folders(root: str | Path | None = None) -> dict[str, list[Path]]:
    """The development photos (``<data root>/photos/<folder>/``: Set5, Set14, Sun-Hays 80), by folder.

    Full-size colour photos, unlabelled, for measuring what the pages do to a visitor's picture;
    an empty dict where they are absent.
    """
    base = Path(root) if root is not None else paths.data_root()
    photos = base / "photos"
    if not photos.is_dir():
        return {}
    folders = {folder.name: sorted(p for p in folder.iterdir() if p.suffix.lower() in images.IMAGE_SUFFIXES)
               for folder in sorted(photos.iterdir()) if folder.is_dir()}
    return {name: files for name, files in folders.items() if files}
